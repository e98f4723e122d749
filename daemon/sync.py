"""One provider sync, start to finish: lock, open a run, fetch, then apply or record the failure.

The order is what keeps the database honest (``docs/sync-rules.md#a-run``). The run row is
opened before any network traffic, the whole snapshot is fetched with no database lock held, and
the run is closed in one place, in the transaction that applies the snapshot: a fetch that failed,
or an apply that failed, leaves nothing but the run row's ``failed`` status and its one-line error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlite_utils
from loguru import logger

from daemon import errors, memory
from daemon.config import Settings
from daemon.http import HttpPolicy
from daemon.providers import PROVIDERS
from daemon.providers.base import Progress, Provider, no_progress
from store import lock, runs, schema
from store.apply import apply_snapshot
from store.model import Snapshot
from store.staging import Staging
from store.transactions import transaction


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
) -> SyncOutcome:
    """Sync one provider; ``stop`` (the daemon's shutdown signal) ends the fetch early.

    ``activity`` is called on every HTTP answer and before the apply: the daemon's watchdog
    tells a slow sync from a stuck one by it.
    """
    spec = PROVIDERS[provider]
    started = time.monotonic()

    def waiting() -> None:
        logger.info(
            "{}: waiting for another sync writing {} to finish", spec.label, settings.db_path
        )

    with lock.sync_lock(settings.db_path, provider, wait_seconds=lock_wait, on_wait=waiting):
        db = schema.connect(settings.db_path)
        try:
            closed = runs.close_stale_runs(db, provider)
            if closed:
                logger.warning(
                    "{}: closed {} run(s) left 'running' by an earlier crash", spec.label, closed
                )
            run = runs.start_run(db, provider)
            staging = Staging(db)
            fetched = fetch(
                spec, settings.providers[provider], policy, stop, progress, staging, activity
            )
            if activity:
                activity()
            result = record(db, run, fetched, spec.label)
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


def record(
    db: sqlite_utils.Database, run: runs.Run, fetched: Fetched, label: str
) -> runs.RunResult:
    """Apply the snapshot and close the run in one transaction; the one place a run is closed."""
    with transaction(db):
        result = _apply(db, run, fetched, label)
        runs.finish_run(db, run, result, fetched.requests)
    return result


def _apply(
    db: sqlite_utils.Database, run: runs.Run, fetched: Fetched, label: str
) -> runs.RunResult:
    if fetched.snapshot is None:
        return runs.RunResult("failed", fetched.error)
    try:
        return apply_snapshot(db, fetched.snapshot, run)  # a savepoint: rolled back on failure
    except Exception as exc:
        logger.opt(exception=exc).debug("applying the {} snapshot failed", run.provider)
        return runs.RunResult(
            "failed",
            f"{label}: could not record the snapshot ({type(exc).__name__}: {exc}); "
            "nothing was written",
        )
