"""One sync per database at a time, across processes.

SQLite's own locks protect a single transaction, but a sync is longer than that: it opens a run
row, fetches for seconds or minutes, then applies. Two overlapping syncs of one provider would
diff against the same old state and write every change twice. An advisory ``flock`` on a file
beside the database serialises them; the kernel drops it when a process dies, so a crash never
leaves the database locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path


class SyncLockBusy(Exception):
    """Another process kept the database's sync lock for longer than we were willing to wait."""


#: How long a sync waits for another one writing the same database before it gives up: longer
#: than a large sync takes, short enough that a stuck writer is reported within minutes.
WAIT_SECONDS = 300.0


@contextlib.contextmanager
def sync_lock(
    db_path: str | Path,
    wait_seconds: float = WAIT_SECONDS,
    on_wait: Callable[[], None] = lambda: None,
) -> Iterator[None]:
    """Hold the database's sync lock; ``on_wait`` is called once if another sync holds it."""
    lock_path = Path(f"{db_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    waited = True
                    on_wait()
                if time.monotonic() >= deadline:
                    raise SyncLockBusy(
                        f"another accesstrail sync is writing to {db_path} and did not finish "
                        f"within {wait_seconds:.0f}s; try again when it is done"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
