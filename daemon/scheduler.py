"""``accesstrail run``: sync each enabled provider on its own interval until told to stop.

APScheduler's BackgroundScheduler runs one job per provider, first at start-up and then every
interval. ``max_instances=1`` and ``coalesce`` mean a slow sync is never overlapped by its own
next run and missed runs collapse into one. The two providers' jobs run at the same time (their
fetches overlap; each apply is one transaction, so the database sees them one after the other).
SIGTERM/SIGINT end a fetch in flight at its next request (the run is recorded as failed, nothing
else is written) and then stop the scheduler; an apply in flight, which takes seconds, always
finishes, so a stop never leaves a half-applied run.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from daemon.config import Settings
from daemon.sync import sync_provider
from store.lock import SyncLockBusy


def sync_job(settings: Settings, provider: str, stop: threading.Event) -> None:
    """One scheduled sync; never raises, so one bad run cannot stop the schedule."""
    if stop.is_set():
        return
    try:
        outcome = sync_provider(settings, provider, stop=stop)
    except SyncLockBusy as exc:
        logger.warning("{}: sync skipped: {}", provider, exc)
        return
    except Exception as exc:  # keep the daemon alive; the traceback goes to debug
        logger.opt(exception=exc).debug("sync of {} crashed", provider)
        logger.error(
            "{}: sync crashed ({}: {}); the next run will try again",
            provider,
            type(exc).__name__,
            exc,
        )
        return
    if outcome.status == "succeeded":
        logger.info(outcome.summary())
    else:
        logger.warning(outcome.summary())
        logger.warning(outcome.error)


def run_daemon(settings: Settings, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    for provider in settings.enabled_providers:
        interval = settings.interval(provider)
        scheduler.add_job(
            sync_job,
            IntervalTrigger(seconds=interval),
            args=[settings, provider, stop],
            id=provider,
            name=f"sync {provider}",
            next_run_time=datetime.now(UTC),
        )
        logger.info("{}: syncing every {}s into {}", provider, interval, settings.db_path)

    def request_stop(signum, _frame) -> None:
        logger.info("received {}; stopping after the sync in progress", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
    logger.info("stopped")
    return 0
