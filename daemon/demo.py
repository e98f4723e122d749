"""``accesstrail demo``: the whole product on simulated providers, in one command.

It starts the built-in Scalr and PlanetScale simulators on 127.0.0.1, takes a baseline sync,
then lets the simulated organisations evolve for a few rounds (sign-ins, disables, role changes,
team moves, joiners, leavers), syncing after each round and printing what the history recorded
next to what really happened. It ends by serving the result with Datasette.

The demo never touches a real provider or the configured database: it uses its own database
file (``accesstrail-demo.db`` unless ``--db`` says otherwise) and simulator credentials.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.config import DEFAULT_HOST, DEFAULT_PORT, load_settings
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import (
    PlanetScaleEvolver,
    PlanetScaleState,
    populate_planetscale,
)
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrEvolver, ScalrState, populate_scalr
from daemon.sync import sync_provider
from store import reads, schema

DEMO_DB = Path("accesstrail-demo.db")


def run_demo(
    db_path: Path,
    rounds: int,
    serve: bool,
    seed: int,
    echo: Callable[[str], None] = print,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
) -> None:
    _fresh_database(db_path)
    rng = random.Random(seed)
    # The simulated clock starts `rounds` days ago and advances a day per round, so the history
    # reads like a few weeks of a real company rather than a few seconds.
    clock = datetime.now(UTC) - timedelta(days=rounds)
    scalr_state, planetscale_state = ScalrState(), PlanetScaleState()
    populate_scalr(scalr_state, rng, users=40, service_accounts=5, teams=6, now=clock)
    populate_planetscale(planetscale_state, rng, orgs=2, users=30, teams_per_org=4, now=clock)

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
            },
            db_override=db_path,
            read_default_env_file=False,
        )
        echo(
            f"Simulated Scalr at {scalr_sim.url}, simulated PlanetScale at "
            f"{planetscale_sim.url}; history in {db_path}"
        )
        echo("Round 0: baseline")
        for provider in settings.enabled_providers:
            echo("  " + sync_provider(settings, provider).summary())

        evolvers = [ScalrEvolver(scalr_state, rng), PlanetScaleEvolver(planetscale_state, rng)]
        for number in range(1, rounds + 1):
            clock += timedelta(days=1)
            echo(f"Round {number}: what happened")
            for evolver in evolvers:
                for line in evolver.step(clock):
                    echo(f"  - {line}")
            echo("  what accesstrail recorded:")
            for provider in settings.enabled_providers:
                outcome = sync_provider(settings, provider)
                echo("    " + outcome.summary())
                for line in _describe_changes(db_path, outcome.run_id):
                    echo(f"      {line}")

    echo(f"Done: {rounds} rounds recorded in {db_path}.")
    if serve:
        from daemon.serve import serve_database

        serve_database(db_path, host, port)


def _fresh_database(db_path: Path) -> None:
    """Start from an empty history, but never delete something that is not a demo database."""
    if not db_path.exists():
        return
    if db_path.resolve() != DEMO_DB.resolve() and not db_path.name.endswith("-demo.db"):
        raise SystemExit(
            f"demo: {db_path} already exists; the demo writes a fresh database, so "
            "pass a new --db path (or one ending in -demo.db)"
        )
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def _describe_changes(db_path: Path, run_id: int) -> list[str]:
    db = schema.connect(db_path)
    try:
        return [_describe(row) for row in reads.changes_of_run(db, run_id)]
    finally:
        db.close()


def _describe(row: dict) -> str:
    who = row["email"] or row["user_id"] or ""
    where = ""
    if row["resource_type"]:
        where = f"{row['resource_type']} {row['resource_name'] or row['resource_id']}"
    detail = ""
    if row["field"]:
        detail = f"{row['field']}: {row['old_value']} → {row['new_value']}"
    elif row["kind"].startswith("grant_"):  # the role granted or taken away, and to whom
        principal = json.loads(row["detail"] or "{}")
        detail = f"role {row['new_value'] or row['old_value']}"
        if principal.get("principal_type") == "team":
            detail += f" (team {principal.get('principal_name')})"
    return "  ".join(part for part in (row["kind"], who, where, detail) if part)
