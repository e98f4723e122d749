"""One provider sync, start to finish: lock, open a run, fetch, then apply or record the failure.

The order is what keeps the database honest. The run row is opened before any network traffic,
the whole snapshot is fetched with no database lock held, and only a complete fetch (whole or
with named failed scopes) is applied, in one transaction. A fetch that fails writes nothing but
the run row's ``failed`` status and its one-line error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from daemon import errors
from daemon.config import Settings
from daemon.http import HttpPolicy
from daemon.providers import planetscale, scalr
from store import runs, schema
from store.apply import apply_snapshot
from store.lock import sync_lock

PROVIDER_MODULES = {"scalr": scalr, "planetscale": planetscale}


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
            f"{errors.PROVIDER_LABELS[self.provider]}: {self.status} in {self.seconds:.1f}s, "
            f"{self.requests} requests, {sum(self.changes.values())} changes"
        )
        if self.changes:
            head += (
                " (" + ", ".join(f"{kind} {n}" for kind, n in sorted(self.changes.items())) + ")"
            )
        return head


def sync_provider(
    settings: Settings,
    provider: str,
    *,
    policy: HttpPolicy | None = None,
    progress: Callable[[str], None] = lambda _: None,
    lock_wait: float = 300.0,
    stop: threading.Event | None = None,
) -> SyncOutcome:
    """Sync one provider; ``stop`` (the daemon's shutdown signal) ends the fetch early."""
    module = PROVIDER_MODULES[provider]
    provider_settings = getattr(settings, provider)
    started = time.monotonic()
    with sync_lock(settings.db_path, wait_seconds=lock_wait):
        db = schema.connect(settings.db_path)
        try:
            closed = runs.close_stale_runs(db)
            if closed:
                logger.warning(
                    "closed {} run(s) left 'running' by an earlier crash as failed", closed
                )
            run = runs.start_run(db, provider)
            http = module.make_http(provider_settings, policy, stop)
            try:
                snapshot = module.fetch_snapshot(http, provider_settings, progress)
            except errors.ProviderError as exc:
                return _failed(db, run, provider, str(exc), http.requests, started)
            except Exception as exc:  # a bug must still close the run, and say so plainly
                logger.opt(exception=exc).debug("unexpected error while fetching {}", provider)
                message = (
                    f"{errors.PROVIDER_LABELS[provider]}: internal error while reading "
                    f"the response ({type(exc).__name__}); please report it"
                )
                return _failed(db, run, provider, message, http.requests, started)
            finally:
                http.close()
            try:
                result = apply_snapshot(db, snapshot, run, http.requests)
            except Exception as exc:  # rolled back: record why, never leave the run 'running'
                logger.opt(exception=exc).debug("applying the {} snapshot failed", provider)
                message = (
                    f"{errors.PROVIDER_LABELS[provider]}: could not record the snapshot "
                    f"({type(exc).__name__}: {exc}); nothing was written"
                )
                return _failed(db, run, provider, message, http.requests, started)
            return SyncOutcome(
                provider,
                run.id,
                result.status,
                result.error,
                http.requests,
                time.monotonic() - started,
                result.changes,
            )
        finally:
            db.close()


def _failed(db, run, provider, message, requests, started) -> SyncOutcome:
    runs.fail_run(db, run, message, requests)
    return SyncOutcome(provider, run.id, "failed", message, requests, time.monotonic() - started)
