"""How fast, and in how much memory, does a sync of a large organisation run?

The simulators run in a child process (forked, so it shares the seeded world without pickling)
so that the numbers measured here — wall time of fetch and apply, peak resident memory — are the
sync's own, not the simulated provider's. Traffic stays on 127.0.0.1.

    .venv/bin/python bench/sync_bench.py [--users 20000] [--rounds 3] [--churn 200]

For each provider: a baseline sync, a sync that finds nothing new, and syncs after ``--churn``
random changes, each split into fetch and apply time, plus the database size at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger  # noqa: E402

from daemon.config import load_settings  # noqa: E402
from daemon.providers import PROVIDERS  # noqa: E402
from daemon.providers.base import no_progress  # noqa: E402
from daemon.sync import fetch, record  # noqa: E402
from store import runs, schema  # noqa: E402


def serve_world(connection, users: int, seed: int) -> None:
    """Child process: build both worlds, serve them, evolve on request until told to stop."""
    from daemon.simulate.planetscale.wire import PlanetScaleSimulator
    from daemon.simulate.planetscale.world import (
        PlanetScaleEvolver,
        PlanetScaleState,
        populate_planetscale,
    )
    from daemon.simulate.scalr.wire import ScalrSimulator
    from daemon.simulate.scalr.world import ScalrEvolver, ScalrState, populate_scalr

    rng = random.Random(seed)
    now = datetime.now(UTC)
    scalr_state, ps_state = ScalrState(), PlanetScaleState()
    populate_scalr(
        scalr_state,
        rng,
        users=users,
        service_accounts=max(1, users // 100),
        teams=max(5, users // 200),
        now=now,
    )
    populate_planetscale(
        ps_state,
        rng,
        orgs=3,
        users=max(10, users // 4),
        teams_per_org=max(3, users // 400),
        now=now,
    )
    evolvers = {
        "scalr": ScalrEvolver(scalr_state, rng, max_mutations=1),
        "planetscale": PlanetScaleEvolver(ps_state, rng, max_mutations=1),
    }
    with ScalrSimulator(scalr_state) as scalr_sim, PlanetScaleSimulator(ps_state) as ps_sim:
        connection.send(
            {
                "SCALR_API_TOKEN": scalr_state.token,
                "SCALR_ACCOUNT": scalr_state.account_name,
                "SCALR_BASE_URL": scalr_sim.url,
                "PLANETSCALE_SERVICE_TOKEN": f"{ps_state.token_id}:{ps_state.token_secret}",
                "PLANETSCALE_API_URL": ps_sim.url,
                # measure our code, not PlanetScale's budget (which the limiter tests cover)
                "PLANETSCALE_REQUESTS_PER_MINUTE": "600000",
            }
        )
        while True:
            command = connection.recv()
            if command[0] == "stop":
                return
            _, provider, count = command
            for _ in range(count):
                evolvers[provider].step(datetime.now(UTC))
            connection.send("done")


def timed_sync(settings, provider: str) -> dict:
    """The sync's own fetch and record steps, timed apart."""
    spec = PROVIDERS[provider]
    db = schema.connect(settings.db_path)
    try:
        run = runs.start_run(db, provider)
        started = time.perf_counter()
        fetched = fetch(spec, settings.providers[provider], None, None, no_progress)
        if fetched.snapshot is None:
            raise SystemExit(f"bench: the fetch failed: {fetched.error}")
        done_fetching = time.perf_counter()
        result = record(db, run, fetched, spec.label)
        applied = time.perf_counter()
    finally:
        db.close()
    return {
        "users": len(fetched.snapshot.users),
        "memberships": len(fetched.snapshot.memberships),
        "requests": fetched.requests,
        "changes": sum(result.changes.values()),
        "fetch_s": done_fetching - started,
        "apply_s": applied - done_fetching,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--churn", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logger.remove()  # the report is the output; per-request debug lines would drown it
    logger.add(sys.stderr, level="WARNING")

    parent, child = multiprocessing.get_context("fork").Pipe()
    world = multiprocessing.get_context("fork").Process(
        target=serve_world, args=(child, args.users, args.seed), daemon=True
    )
    world.start()
    env = parent.recv()
    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(environ=env, db_override=Path(scratch) / "bench.db")
        print(
            f"{'provider':<12}{'sync':<10}{'users':>7}{'grants':>8}{'requests':>9}"
            f"{'changes':>8}{'fetch s':>9}{'apply s':>9}"
        )
        for provider in ("scalr", "planetscale"):
            for label in ["baseline", "no-op"] + [f"churn {n}" for n in range(1, args.rounds + 1)]:
                if label.startswith("churn"):
                    parent.send(("evolve", provider, args.churn))
                    parent.recv()
                row = timed_sync(settings, provider)
                print(
                    f"{provider:<12}{label:<10}{row['users']:>7}{row['memberships']:>8}"
                    f"{row['requests']:>9}{row['changes']:>8}{row['fetch_s']:>9.2f}"
                    f"{row['apply_s']:>9.2f}"
                )
        size = sum(p.stat().st_size for p in Path(scratch).glob("bench.db*"))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"database {size / 1e6:.1f} MB; peak resident memory of the syncing process "
            f"{peak:.0f} MB"
        )
    parent.send(("stop",))
    world.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
