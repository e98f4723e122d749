"""One world, one limit setting: the floor, then a first, a no-change and a ~1%-changed sync.

The floor is the faster of two bare fetches of the warmed pages. Before each sync the
simulators' caches are warmed with an untimed fetch of the minimum pages (with PlanetScale's
limit lifted for it) and their counters and rate window reset, so that each sync finds a
provider that answers every page at the injected latency and a fresh minute, as a daemon
syncing every 15 minutes does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import floor
from bench.syncrun import SyncFigures, measure_db, run_sync, write_env_file
from bench.world import World

CLIENT_BUDGET_LIMITED = 540  # the daemon's default PLANETSCALE_REQUESTS_PER_MINUTE
CLIENT_BUDGET_UNLIMITED = 1_000_000
CHURN_SHARE = 0.01
FLOOR_TRIES = 2  # the best of two: a floor is what the machine can do, not its worst moment


def run_scenario(users: int, latency_s: float, limit: bool, syncs: tuple[str, ...]) -> dict:
    """Figures of ``syncs`` (``first``, ``no_change``, ``one_percent``) of one fresh world."""
    with World(users, latency_s, limit) as world, tempfile.TemporaryDirectory() as scratch:
        pages = world.minimum()
        minimum = {name: len(listing) for name, listing in pages.items()}
        result: dict = {"users": users, "limit": limit, "minimum": minimum, "syncs": {}}
        if "first" in syncs and len(syncs) > 1:
            result.update(_floor(world, pages, limit))
        budget = CLIENT_BUDGET_LIMITED if limit else CLIENT_BUDGET_UNLIMITED
        env_file = write_env_file(Path(scratch) / "bench.env", world.config, budget)
        db, log = Path(scratch) / "bench.db", Path(scratch) / "sync.log"
        for label in syncs:
            if label == "one_percent":
                world.churn(CHURN_SHARE)
            if len(syncs) > 1:
                _warm(world, pages, limit)
            world.reset()
            figures = _sync(world, env_file, db, log, minimum)
            if figures.exit_code != 0:
                figures_log = log.read_text(errors="replace")[-2000:]
                result.setdefault("errors", {})[label] = figures_log
            result["syncs"][label] = figures.as_dict()
        if "floor_s" in result and "first" in result["syncs"]:
            result["ratio"] = round(result["syncs"]["first"]["wall_s"] / result["floor_s"], 3)
        return result


def _floor(world: World, pages: dict, limit: bool) -> dict:
    _warm(world, pages, limit)
    world.limit(False)
    bare = min(floor.bare_fetch(world.config, pages) for _ in range(FLOOR_TRIES))
    world.limit(limit)
    world.reset()
    figures = {"bare_floor_s": round(bare, 3)}
    figures["floor_s"] = round(
        floor.limited_floor(bare, len(pages["planetscale"])) if limit else bare, 3
    )
    return figures


def _warm(world: World, pages: dict, limit: bool) -> None:
    """Render every minimum page once, untimed, so a sync is not waiting on the simulator."""
    world.limit(False)
    floor.bare_fetch(world.config, pages)
    world.limit(limit)


def _sync(world: World, env_file: Path, db: Path, log: Path, minimum: dict) -> SyncFigures:
    before = measure_db(db)
    code, wall, cpu, rss = run_sync(env_file, db, log)
    grown = measure_db(db)
    stats = world.stats()
    return SyncFigures(
        exit_code=code,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        peak_rss_mb=round(rss, 1),
        db_bytes_added=grown.bytes - before.bytes,
        change_rows=grown.change_rows - before.change_rows,
        version_rows=grown.version_rows - before.version_rows,
        requests={"scalr": stats["scalr"], "planetscale": stats["planetscale"]},
        minimum=minimum,
        http_429=stats["429"],
    )
