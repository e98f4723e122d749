"""One provider sync, start to finish: lock, open a run, fetch, then apply or record the failure.

The order is what keeps the database honest (``docs/sync-rules.md#a-run``). The run row is
opened before any network traffic, the whole snapshot is fetched with no database lock held, and
the run is closed in one place, in the transaction that applies the snapshot: a fetch that failed,
or an apply that failed, leaves nothing but the run row's ``failed`` status and its one-line error.

A database that cannot be written (a full disk, a read-only file or mount, an I/O error) is not a
bug nor a configuration mistake: it is one line naming the database and what to do, the run
recorded as ``failed`` when the database still takes that one small write, and ``StorageError``
when it does not.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils
from loguru import logger

from daemon import errors, memory
from daemon.config import Settings
from daemon.http import HttpPolicy
from daemon.providers import PROVIDERS
from daemon.providers.base import Progress, Provider, no_progress
from store import lock, runs, schema, timestamps
from store.alerts import Alerting
from store.apply import apply_snapshot
from store.model import Snapshot
from store.staging import Staging
from store.transactions import transaction


class StorageError(Exception):
    """The database could not be written; ``str()`` is the one line to show."""


#: What to do about a database that cannot be written, by SQLite's primary result code and by
#: ``errno`` (the lock file and the directory fail with an ``OSError``).
_FULL = "free space on its filesystem, then sync again"
_READ_ONLY = (
    "make the file, its -wal/-shm and its directory writable by this user "
    "(mode, owner, immutable flag, read-only mount), then sync again"
)
_IO = "check the disk and the filesystem (dmesg), then sync again"
_SQLITE_ADVICE = {
    sqlite3.SQLITE_FULL: _FULL,
    sqlite3.SQLITE_READONLY: _READ_ONLY,
    sqlite3.SQLITE_CANTOPEN: _READ_ONLY,
    sqlite3.SQLITE_PERM: _READ_ONLY,
    sqlite3.SQLITE_IOERR: _IO,
}
_ERRNO_ADVICE = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _FULL,
    errno.EROFS: _READ_ONLY,
    errno.EACCES: _READ_ONLY,
    errno.EPERM: _READ_ONLY,
    errno.EIO: _IO,
}


def storage_problem(db_path: Path, exc: BaseException) -> str | None:
    """``database PATH: what failed: what to do`` when ``exc`` says the database could not be
    written, else None (a file that is not a database, a bug: those are not storage failures)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        advice = _SQLITE_ADVICE.get(code & 0xFF) if code is not None else None
        reason = str(exc)
    elif isinstance(exc, OSError):
        advice = _ERRNO_ADVICE.get(exc.errno) if exc.errno is not None else None
        reason = f"{exc.strerror} ({exc.filename})" if exc.filename else str(exc.strerror)
    else:
        return None
    return f"database {db_path}: {reason}: {advice}" if advice else None


@dataclass
class SyncOutcome:
    provider: str
    run_id: int
    status: str  # succeeded | partial | failed
    error: str | None
    requests: int
    seconds: float
    changes: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def summary(self) -> str:
        """One line a person reads: how it went, and what changed by kind."""
        head = (
            f"{PROVIDERS[self.provider].label}: {self.status} in {self.seconds:.1f}s, "
            f"{self.requests} requests, {sum(self.changes.values())} changes"
        )
        if self.changes:
            head += (
                " (" + ", ".join(f"{kind} {n}" for kind, n in sorted(self.changes.items())) + ")"
            )
        return head


@dataclass(frozen=True)
class Fetched:
    """What a fetch produced: a snapshot to apply, or the one line saying why there is none."""

    snapshot: Snapshot | None
    error: str | None
    requests: int


def sync_provider(
    settings: Settings,
    provider: str,
    *,
    policy: HttpPolicy | None = None,
    progress: Progress = no_progress,
    lock_wait: float = lock.WAIT_SECONDS,
    stop: threading.Event | None = None,
    activity: Callable[[], None] | None = None,
    clock: timestamps.Clock | None = None,
) -> SyncOutcome:
    """Sync one provider; ``stop`` (the daemon's shutdown signal) ends the fetch early.

    ``activity`` is called on every HTTP answer and before the apply: the daemon's watchdog
    tells a slow sync from a stuck one by it. ``clock`` stamps the run (real time when None); only
    the demo passes one, in-process: no setting, variable or option of the product reaches it.
    """
    spec = PROVIDERS[provider]
    started = time.monotonic()

    def waiting() -> None:
        logger.info(
            "{}: waiting for another sync writing {} to finish", spec.label, settings.db_path
        )

    with storage_errors(settings.db_path, spec.label):
        with lock.sync_lock(settings.db_path, provider, wait_seconds=lock_wait, on_wait=waiting):
            db = schema.connect(settings.db_path)
            try:
                closed = runs.close_stale_runs(db, provider, clock)
                if closed:
                    logger.warning(
                        "{}: closed {} run(s) left 'running' by an earlier crash",
                        spec.label,
                        closed,
                    )
                run = runs.start_run(db, provider, clock)
                staging = Staging(db)
                provider_settings = settings.providers[provider]
                fetched = fetch(spec, provider_settings, policy, stop, progress, staging, activity)
                if activity:
                    activity()
                result = record(
                    db, run, fetched, spec.label, settings.db_path, settings.alerting, clock
                )
            finally:
                db.close()
                memory.hand_back_freed_memory()  # the pages and staging of this run are gone
    seconds = time.monotonic() - started
    return SyncOutcome(
        provider, run.id, result.status, result.error, fetched.requests, seconds, result.changes
    )


def sync_all(
    settings: Settings,
    providers: list[str],
    *,
    policy: HttpPolicy | None = None,
    progress: Progress = no_progress,
    lock_wait: float = lock.WAIT_SECONDS,
    stop: threading.Event | None = None,
) -> list[tuple[str, SyncOutcome | Exception]]:
    """Sync ``providers`` at the same time, each in its own thread; results in the given order.

    The fetches overlap, which is where the time goes; each apply is one ``IMMEDIATE``
    transaction, so the database sees them one after the other. A provider whose sync raised
    (its lock was busy, its database unreadable) has the exception as its result.
    """
    results: dict[str, SyncOutcome | Exception] = {}

    def one(name: str) -> None:
        try:
            results[name] = sync_provider(
                settings, name, policy=policy, progress=progress, lock_wait=lock_wait, stop=stop
            )
        except Exception as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=one, args=(name,), name=f"sync {name}") for name in providers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [(name, results[name]) for name in providers]


def fetch(
    spec: Provider,
    provider_settings: object,
    policy: HttpPolicy | None,
    stop: threading.Event | None,
    progress: Progress,
    staging: Staging,
    activity: Callable[[], None] | None = None,
) -> Fetched:
    """Read the provider into ``staging``; every failure becomes one line, never an exception."""
    http = spec.make_http(provider_settings, policy, stop)
    http.on_answer = activity
    try:
        snapshot = spec.fetch_snapshot(http, provider_settings, staging, progress)
        http.raise_if_interrupted()  # a stop or a silent provider fails the run, not a scope
        return Fetched(snapshot, None, http.requests)
    except errors.ProviderError as exc:
        return Fetched(None, str(exc), http.requests)
    except Exception as exc:  # a bug must still close the run, and say so plainly
        logger.opt(exception=exc).debug("unexpected error while fetching {}", spec.name)
        message = (
            f"{spec.label}: internal error while reading the response "
            f"({type(exc).__name__}); please report it"
        )
        return Fetched(None, message, http.requests)
    finally:
        http.close()


@contextlib.contextmanager
def storage_errors(db_path: Path, label: str) -> Iterator[None]:
    """Turn a database that cannot be written into ``StorageError``; anything else passes."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        problem = storage_problem(db_path, exc)
        if problem is None:
            raise
        logger.opt(exception=exc).debug("{}: the database could not be written", label)
        raise StorageError(f"{label}: not synced: {problem}") from None


def record(
    db: sqlite_utils.Database,
    run: runs.Run,
    fetched: Fetched,
    label: str,
    db_path: Path,
    alerting: Alerting | None = None,
    clock: timestamps.Clock | None = None,
) -> runs.RunResult:
    """Apply the snapshot and close the run in one transaction; the one place a run is closed.

    When that transaction cannot commit (the disk filled up, the file became read-only), the
    run is closed as failed in a transaction of its own, a far smaller write that often still
    fits; when that fails too, ``storage_errors`` above makes it one line.
    """
    try:
        with transaction(db):
            result = _apply(db, run, fetched, label, db_path, alerting)
            runs.finish_run(db, run, result, fetched.requests, clock)
        return result
    except (sqlite3.Error, OSError) as exc:
        problem = storage_problem(db_path, exc)
        if problem is None:
            raise
        logger.opt(exception=exc).debug("committing the {} run failed", run.provider)
    if db.conn.in_transaction:  # a COMMIT that failed may leave its transaction open
        db.conn.execute("ROLLBACK")
    failed = runs.RunResult("failed", _not_recorded(label, problem))
    with transaction(db):
        runs.finish_run(db, run, failed, fetched.requests, clock)
    return failed


def _not_recorded(label: str, problem: str) -> str:
    return f"{label}: could not record the snapshot, nothing of this run was written: {problem}"


def _apply(
    db: sqlite_utils.Database,
    run: runs.Run,
    fetched: Fetched,
    label: str,
    db_path: Path,
    alerting: Alerting | None = None,
) -> runs.RunResult:
    if fetched.snapshot is None:
        return runs.RunResult("failed", fetched.error)
    try:
        # a savepoint: rolled back on failure
        return apply_snapshot(db, fetched.snapshot, run, alerting)
    except Exception as exc:
        logger.opt(exception=exc).debug("applying the {} snapshot failed", run.provider)
        problem = storage_problem(db_path, exc)
        if problem is not None:
            return runs.RunResult("failed", _not_recorded(label, problem))
        return runs.RunResult(
            "failed",
            f"{label}: could not record the snapshot ({type(exc).__name__}: {exc}); "
            "nothing was written",
        )
