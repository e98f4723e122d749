"""One syncing process per database, and one sync per provider within it.

SQLite's own locks protect a single transaction, but a sync is longer than that: it opens a run
row, fetches for seconds or minutes, then applies. Two overlapping syncs of one provider would
diff against the same old state and write every change twice, and a second process could not
tell another's ``running`` row from a crashed one. So:

* across processes, an advisory ``flock`` on a file beside the database: the kernel drops it
  when a process dies, so a crash never leaves the database locked. Within one process it is
  shared: the providers of one ``sync`` or one daemon fetch at the same time under one hold
  (their applies are one at a time anyway: each is an ``IMMEDIATE`` transaction);
* within the process, one lock per provider, so the same provider is never synced twice at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from store import schema


class SyncLockBusy(Exception):
    """Another sync kept the lock for longer than we were willing to wait."""


#: How long a sync waits for another one writing the same database before it gives up: longer
#: than a large sync takes, short enough that a stuck writer is reported within minutes.
WAIT_SECONDS = 300.0
POLL_SECONDS = 0.1
#: Only this user's processes take the lock; nobody else needs even to read it.
LOCK_FILE_MODE = 0o600


class _ProcessHold:
    """This process's share of one database's lock file: taken by the first user, released by
    the last."""

    def __init__(self, lock_path: Path):
        self.lock_path = lock_path
        self.users = 0
        self.fd: int | None = None
        self.taking = threading.Lock()  # one thread waits for the file; the others wait for it


_registry = threading.Lock()
_holds: dict[str, _ProcessHold] = {}
_provider_locks: dict[tuple[str, str], threading.Lock] = {}


def _key(db_path: str | Path) -> str:
    return os.path.realpath(db_path)


@contextlib.contextmanager
def sync_lock(
    db_path: str | Path,
    provider: str | None = None,
    wait_seconds: float = WAIT_SECONDS,
    on_wait: Callable[[], None] = lambda: None,
) -> Iterator[None]:
    """Hold the database for this process and, when named, ``provider`` for this thread.

    ``on_wait`` is called once if another sync holds either; after ``wait_seconds`` the wait ends
    in ``SyncLockBusy``.
    """
    deadline = time.monotonic() + wait_seconds
    waited = [False]

    def waiting() -> None:
        if not waited[0]:
            waited[0] = True
            on_wait()

    busy = SyncLockBusy(
        f"another accesstrail sync is writing to {db_path} and did not finish "
        f"within {wait_seconds:.0f}s; try again when it is done"
    )
    with contextlib.ExitStack() as held:
        if provider is not None:
            held.enter_context(_provider_lock(_key(db_path), provider, deadline, waiting, busy))
        held.enter_context(_database_lock(Path(db_path), deadline, waiting, busy))
        yield


@contextlib.contextmanager
def _provider_lock(
    key: str, provider: str, deadline: float, waiting: Callable[[], None], busy: SyncLockBusy
) -> Iterator[None]:
    with _registry:
        lock = _provider_locks.setdefault((key, provider), threading.Lock())
    if not lock.acquire(blocking=False):
        waiting()
        if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise busy
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _database_lock(
    db_path: Path, deadline: float, waiting: Callable[[], None], busy: SyncLockBusy
) -> Iterator[None]:
    key = _key(db_path)
    with _registry:
        hold = _holds.setdefault(key, _ProcessHold(Path(f"{db_path}.lock")))
    if not hold.taking.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise busy
    try:
        with _registry:
            already_held = hold.users > 0
            if already_held:
                hold.users += 1
        if not already_held:
            taken = _take_file(hold.lock_path, deadline, waiting, busy)
            with _registry:
                hold.fd, hold.users = taken, 1
    finally:
        hold.taking.release()
    try:
        yield
    finally:
        # Under ``taking``, so that a thread arriving now finds the file either still held by
        # this process or already released, never half way.
        with hold.taking:
            with _registry:
                hold.users -= 1
                last, held_fd = hold.users == 0, hold.fd
                if last:
                    hold.fd = None
            if last and held_fd is not None:
                fcntl.flock(held_fd, fcntl.LOCK_UN)
                os.close(held_fd)


def _take_file(
    lock_path: Path, deadline: float, waiting: Callable[[], None], busy: SyncLockBusy
) -> int:
    """The lock file, locked by this process; waits for another process that holds it."""
    schema.make_private_dirs(lock_path.parent)  # the lock is taken before the database opens
    schema.create_private_file(lock_path, LOCK_FILE_MODE)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, LOCK_FILE_MODE)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            waiting()
            if time.monotonic() >= deadline:
                os.close(fd)
                raise busy from None
            time.sleep(POLL_SECONDS)
