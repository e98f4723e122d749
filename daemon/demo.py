"""``accesstrail demo``: the whole product on simulated providers, a simulated month in one command.

It starts the built-in Scalr and PlanetScale simulators on 127.0.0.1, takes a baseline sync ``N``
days ago, then replays the days one by one: the simulated organisations evolve at random (sign-ins,
disables, role changes, team moves, joiners, leavers) and by a scripted scenario
(:mod:`daemon.simulate.scenario`: a joiner, people who stop signing in, a promotion to admin, an
organisation lost, a token never used, ...), and each day ends with one sync of each provider
stamped by the simulated clock. It prints one short line per day and ends by serving the result
with Datasette.

The simulated clock is a parameter of the in-process sync (``sync_provider(..., clock=...)``); the
product itself has no way to be given one. The demo never touches a real provider or the
configured database: it uses its own database file (``accesstrail-demo.db`` unless ``--db`` says
otherwise) and simulator credentials.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.config import DEFAULT_HOST, DEFAULT_PORT, Settings, load_settings
from daemon.providers import PROVIDERS
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import (
    PlanetScaleEvolver,
    PlanetScaleState,
    populate_planetscale,
)
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrEvolver, ScalrState, populate_scalr
from daemon.simulate.scenario import Scenario
from daemon.sync import SyncOutcome, sync_provider
from store import reads, schema

DEMO_DB = Path("accesstrail-demo.db")
#: What Datasette calls the demo, so nobody mistakes simulated people for real ones.
DEMO_TITLE = "accesstrail demo: simulated providers, not real accounts"
DEFAULT_DAYS = 30
#: Where the dashboard lives on the served Datasette.
DASHBOARD_PATH = "/-/dashboards/accesstrail"
#: The simulator needs no pacing: the demo's own budget, far above the real API's.
DEMO_PLANETSCALE_REQUESTS_PER_MINUTE = 60_000
#: When in a simulated day things happen, before that day's sync.
EVENTS_BEFORE_SYNC = timedelta(hours=1)


class SimulatedClock:
    """The demo's clock: a moment it is set to, running on with the real time since it was set
    (so a run's ``finished_at`` is its ``started_at`` plus how long it really took)."""

    def __init__(self, moment: datetime):
        self.set(moment)

    def set(self, moment: datetime) -> None:
        self._moment, self._since = moment, time.monotonic()

    def __call__(self) -> datetime:
        return self._moment + timedelta(seconds=time.monotonic() - self._since)


def run_demo(
    db_path: Path,
    days: int,
    serve: bool,
    seed: int,
    echo: Callable[[str], None] = print,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
) -> None:
    _fresh_database(db_path)
    rng = random.Random(seed)
    # Day 0 (the baseline) is `days` days ago; the last day's sync happens now.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
    clock = SimulatedClock(start)
    scalr_state, planetscale_state = ScalrState(), PlanetScaleState()
    populate_scalr(scalr_state, rng, users=40, service_accounts=5, teams=6, now=start)
    populate_planetscale(planetscale_state, rng, orgs=3, users=30, teams_per_org=4, now=start)

    with (
        ScalrSimulator(scalr_state) as scalr_sim,
        PlanetScaleSimulator(planetscale_state) as planetscale_sim,
    ):
        settings = load_settings(
            environ={
                "SCALR_API_TOKEN": scalr_state.token,
                "SCALR_ACCOUNT": scalr_state.account_name,
                "SCALR_BASE_URL": scalr_sim.url,
                "PLANETSCALE_SERVICE_TOKEN": (
                    f"{planetscale_state.token_id}:{planetscale_state.token_secret}"
                ),
                "PLANETSCALE_API_URL": planetscale_sim.url,
                "PLANETSCALE_REQUESTS_PER_MINUTE": str(DEMO_PLANETSCALE_REQUESTS_PER_MINUTE),
                "ACCESSTRAIL_EVENTS_FILE": str(events_file(db_path)),
            },
            db_override=db_path,
            read_default_env_file=False,
        )
        echo(
            f"Simulated Scalr at {scalr_sim.url}, simulated PlanetScale at "
            f"{planetscale_sim.url}; {days} simulated days of history in {db_path}"
        )
        echo(f"Day 0  {start:%a %d %b}  baseline · recorded: {_recorded(_sync(settings, clock))}")

        scalr = ScalrEvolver(scalr_state, rng)
        planetscale = PlanetScaleEvolver(planetscale_state, rng)
        scenario = Scenario(scalr, planetscale, random.Random(seed + 1), days)
        for day in range(1, days + 1):
            moment = start + timedelta(days=day)
            events_at = moment - EVENTS_BEFORE_SYNC
            random_changes = len(scalr.step(events_at)) + len(planetscale.step(events_at))
            scripted, sign_ins = scenario.step(day, events_at)
            clock.set(moment)
            outcomes = _sync(settings, clock)
            echo(
                f"Day {day}  {moment:%a %d %b}  happened: {sign_ins} sign-ins, "
                f"{random_changes} other changes · recorded: {_recorded(outcomes)}"
            )
            for line in scripted:
                echo(f"    * {line}")
            for line in _alerts_of(settings, outcomes):
                echo(f"    ! {line}")

    echo(f"Done: {days} simulated days recorded in {db_path}.")
    if serve:
        from daemon.config import WebSettings
        from daemon.serve import serve_database

        echo(f"Dashboard: http://{host}:{port}{DASHBOARD_PATH}")
        echo(f"History tables: http://{host}:{port}/{db_path.stem}")
        serve_database(db_path, host, port, WebSettings(title=DEMO_TITLE))


def _sync(settings: Settings, clock: SimulatedClock) -> list[SyncOutcome]:
    return [sync_provider(settings, p, clock=clock) for p in settings.enabled_providers]


def events_file(db_path: Path) -> Path:
    """Where the demo's alerts are delivered: a JSON-lines file beside its database."""
    return db_path.with_name(db_path.stem + "-alerts.jsonl")


def _alerts_of(settings: Settings, outcomes: list[SyncOutcome]) -> list[str]:
    """The alerts the day's runs raised, once delivered to the demo's events file."""
    from daemon.delivery import deliver_pending

    report = deliver_pending(settings)
    db = schema.connect(settings.db_path)
    try:
        raised = reads.alerts_of_runs(db, [outcome.run_id for outcome in outcomes])
    finally:
        db.close()
    lines = [f"alert {row['rule']}: {row['summary']}" for row in raised]
    if raised:
        lines.append(f"{report.delivered} delivered to {settings.events_file}")
    return lines


def _recorded(outcomes: list[SyncOutcome]) -> str:
    """``Scalr 12 (last_sign_in_changed 10, user_added 2), PlanetScale 0``: changes by kind."""
    parts = []
    for outcome in outcomes:
        text = f"{PROVIDERS[outcome.provider].label} {sum(outcome.changes.values())}"
        if outcome.status != "succeeded":
            text += f" [{outcome.status}: {outcome.error}]"
        if outcome.changes:
            kinds = Counter(outcome.changes)
            text += " (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")"
        parts.append(text)
    return ", ".join(parts)


def _fresh_database(db_path: Path) -> None:
    """Start from an empty history, but never delete something that is not a demo database."""
    is_demo = db_path.resolve() == DEMO_DB.resolve() or db_path.name.endswith("-demo.db")
    if db_path.exists() and not is_demo:
        raise SystemExit(
            f"demo: {db_path} already exists; the demo writes a fresh database, so "
            "pass a new --db path (or one ending in -demo.db)"
        )
    if not is_demo:
        return
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    events_file(db_path).unlink(missing_ok=True)  # the alerts of the last demo
