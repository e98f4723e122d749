"""``accesstrail run``: sync each enabled provider on its own interval until told to stop.

APScheduler's BackgroundScheduler runs one job per provider. ``max_instances=1`` and
``coalesce`` mean a slow sync is never overlapped by its own next run and missed runs collapse
into one: an outage never leaves a backlog. Each provider's first run is due one interval after
its last success in ``sync_runs`` (at once when it never succeeded or that is past), so a restart
never causes a burst. The two providers' jobs run at the same time; each apply is one
transaction, so the database sees them one after the other.

Under systemd (``Type=notify``, ``daemon/notify.py``) the daemon says ``READY=1`` once the
configuration, the database and the schedule are set up, before any network traffic; a
``STATUS=`` line after each run; and ``WATCHDOG=1`` only while it is healthy: the scheduler's
own heartbeat job keeps running, and no sync has gone without an answer or a step for longer
than a healthy one can (the HTTP layer fails a silent provider well within that). A hung
scheduler or a stuck sync thus stops the pings, and systemd restarts us.

SIGTERM/SIGINT say ``STOPPING=1``, end a fetch in flight at its next request (the run is
recorded as failed, nothing else is written) and then stop the scheduler; an apply in flight,
which takes seconds, always finishes, so a stop never leaves a half-applied run.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from daemon.config import Settings
from daemon.http import HttpPolicy
from daemon.notify import Notifier
from daemon.providers import PROVIDERS
from daemon.sync import StorageError, SyncOutcome, sync_provider
from store import reads, schema, timestamps
from store.lock import SyncLockBusy

#: A sync with no HTTP answer and no step for this long is stuck: the HTTP layer gives up on a
#: silent provider after its stall limit, and an apply takes seconds.
STUCK_AFTER_SECONDS = HttpPolicy().stall_limit + 60.0
#: The scheduler's heartbeat job runs this often at most (more often for a short watchdog).
HEARTBEAT_SECONDS = 10.0
#: How often ``run`` looks for alerts due for delivery (each waits out its own backoff).
DELIVERY_SECONDS = 5.0
#: How long one delivery round may take, so a dead receiver never holds a stop for long.
DELIVERY_ROUND_SECONDS = 60.0
#: How much of the error a STATUS= line carries.
STATUS_ERROR_CHARS = 80


class _Activity:
    """When each running sync last did something: started, got an answer, or applied."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def begin(self, provider: str) -> None:
        self.touch(provider)

    def touch(self, provider: str) -> None:
        with self._lock:
            self._last[provider] = time.monotonic()

    def end(self, provider: str) -> None:
        with self._lock:
            self._last.pop(provider, None)

    def stuck(self, limit: float) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [p for p, at in self._last.items() if now - at > limit]


class Daemon:
    """The scheduler, its jobs, and what it tells systemd."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event | None = None,
        notifier: Notifier | None = None,
        *,
        policy: HttpPolicy | None = None,
        stuck_after: float = STUCK_AFTER_SECONDS,
    ):
        self.settings = settings
        self.stop = stop or threading.Event()
        self.notifier = notifier or Notifier()
        self.policy = policy
        self.stuck_after = stuck_after
        self.activity = _Activity()
        self.results: dict[str, str] = {}
        self._results_lock = threading.Lock()
        watchdog = self.notifier.watchdog_seconds
        self.heartbeat_seconds = min(HEARTBEAT_SECONDS, watchdog) if watchdog else None
        self._last_beat = time.monotonic()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- start-up ------------------------------------------------------------------------------

    def start(self) -> None:
        """Open (create, migrate) the database, schedule every provider, say READY=1."""
        db = schema.connect(self.settings.db_path)
        try:
            for provider in self.settings.enabled_providers:
                self._schedule(provider, reads.last_success(db, provider))
        finally:
            db.close()
        if self.settings.sinks:
            self.scheduler.add_job(
                self.delivery_job,
                IntervalTrigger(seconds=DELIVERY_SECONDS),
                id="deliver",
                name="deliver alerts",
                next_run_time=datetime.now(UTC),
            )
        if self.heartbeat_seconds:
            self.scheduler.add_job(
                self._beat,
                IntervalTrigger(seconds=self.heartbeat_seconds),
                id="heartbeat",
                name="heartbeat",
            )
        self.scheduler.start()
        self.notifier.ready(self.status_line())

    def _schedule(self, provider: str, last_success: dict | None) -> None:
        interval = self.settings.interval(provider)
        label = PROVIDERS[provider].label
        now = datetime.now(UTC)
        first = now
        if last_success:
            since = timestamps.parse_instant(last_success["started_at"])
            first = max(now, since + timedelta(seconds=interval))
            self._record(provider, f"last success {last_success['started_at']}")
        else:
            self._record(provider, "never synced")
        self.scheduler.add_job(
            self.sync_job,
            IntervalTrigger(seconds=interval, start_date=first),
            args=[provider],
            id=provider,
            name=f"sync {provider}",
            next_run_time=first,
        )
        wait = (first - now).total_seconds()
        when = "now" if wait < 1 else f"in {wait:.0f}s, one interval after its last success"
        logger.info(
            "{}: syncing every {}s into {}; first sync {}",
            label,
            interval,
            self.settings.db_path,
            when,
        )

    # -- jobs ----------------------------------------------------------------------------------

    def sync_job(self, provider: str) -> None:
        """One scheduled sync; never raises, so one bad run cannot stop the schedule."""
        if self.stop.is_set():
            return
        label = PROVIDERS[provider].label
        self.activity.begin(provider)
        try:
            outcome = sync_provider(
                self.settings,
                provider,
                policy=self.policy,
                stop=self.stop,
                activity=lambda: self.activity.touch(provider),
            )
        except SyncLockBusy as exc:
            logger.warning("{}: sync skipped: {}", label, exc)
            self._record(provider, "skipped: another sync holds the database")
            return
        except StorageError as exc:  # the disk or the mount, not a bug: its own one line
            logger.error("{}; the next run will try again", exc)
            self._record(provider, "failed: the database could not be written")
            return
        except Exception as exc:  # keep the daemon alive; the traceback goes to debug
            logger.opt(exception=exc).debug("sync of {} crashed", provider)
            logger.error(
                "{}: sync crashed ({}: {}); the next run will try again",
                label,
                type(exc).__name__,
                exc,
            )
            self._record(provider, f"crashed ({type(exc).__name__})")
            return
        finally:
            self.activity.end(provider)
        self._report(outcome)

    def delivery_job(self) -> None:
        """Deliver the alerts that are due; never raises (the next round tries again)."""
        if self.stop.is_set():
            return
        from daemon.delivery import deliver_pending

        try:
            report = deliver_pending(self.settings, DELIVERY_ROUND_SECONDS, due_only=True)
        except Exception as exc:
            logger.opt(exception=exc).debug("delivering alerts crashed")
            logger.warning("alerts: delivery failed ({}); will retry", type(exc).__name__)
            return
        if report.delivered:
            logger.info(report.line())

    def _report(self, outcome: SyncOutcome) -> None:
        if outcome.status == "succeeded":
            logger.info(outcome.summary())
        else:
            logger.warning("{} — {}", outcome.summary(), outcome.error)
        interval = self.settings.interval(outcome.provider)
        if outcome.seconds > interval:
            logger.warning(
                "{}: the sync took {:.0f}s, longer than its {}s interval; syncs never overlap, "
                "so the next one starts at the next interval after this one ended",
                PROVIDERS[outcome.provider].label,
                outcome.seconds,
                interval,
            )
        stamp = datetime.now(UTC).strftime("%H:%M:%SZ")
        text = f"{outcome.status} at {stamp}, {sum(outcome.changes.values())} changes"
        if outcome.error and outcome.status != "succeeded":
            error = outcome.error.removeprefix(PROVIDERS[outcome.provider].label + ": ")
            text += f" ({error[:STATUS_ERROR_CHARS]})"
        self._record(outcome.provider, text)

    def _record(self, provider: str, text: str) -> None:
        with self._results_lock:
            self.results[provider] = text
        if self.scheduler.running:
            self.notifier.status(self.status_line())

    def status_line(self) -> str:
        """Every provider's last result on one line, as ``systemctl status`` shows it."""
        with self._results_lock:
            return "; ".join(
                f"{PROVIDERS[p].label}: {self.results.get(p, 'waiting')}"
                for p in self.settings.enabled_providers
            )

    def _beat(self) -> None:
        self._last_beat = time.monotonic()

    # -- health --------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """The scheduler runs its jobs and no sync is stuck: what a WATCHDOG=1 vouches for."""
        if not self.scheduler.running:
            return False
        if self.heartbeat_seconds is not None:
            late = time.monotonic() - self._last_beat
            if late > 2 * self.heartbeat_seconds + 5:
                logger.error("the scheduler has not run its heartbeat for {:.0f}s", late)
                return False
        stuck = self.activity.stuck(self.stuck_after)
        if stuck:
            logger.error(
                "{}: sync stuck for over {:.0f}s with no answer or step; "
                "the watchdog will restart the service",
                ", ".join(PROVIDERS[p].label for p in stuck),
                self.stuck_after,
            )
            return False
        return True

    # -- running and stopping ------------------------------------------------------------------

    def wait_until_stopped(self) -> None:
        """Ping the watchdog while healthy until ``stop`` is set, then stop the scheduler."""
        period = self.notifier.watchdog_seconds
        try:
            if period is None:
                self.stop.wait()
            else:
                while not self.stop.wait(period):
                    if self.healthy():
                        self.notifier.watchdog()
        finally:
            self.notifier.stopping()
            self.scheduler.shutdown(wait=True)
        logger.info("stopped")

    def request_stop(self, signum: int, _frame: object = None) -> None:
        logger.info("received {}; stopping after the sync in progress", signal.Signals(signum).name)
        self.notifier.stopping()
        self.stop.set()


def run_daemon(settings: Settings, stop: threading.Event | None = None) -> int:
    daemon = Daemon(settings, stop)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, daemon.request_stop)
        signal.signal(signal.SIGINT, daemon.request_stop)
    daemon.start()
    daemon.wait_until_stopped()
    return 0
