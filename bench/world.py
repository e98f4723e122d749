"""The simulated providers in a process of their own, driven over a pipe.

The sync under test runs in another process again, so neither the simulators' CPU nor their
memory is counted as the sync's, and neither competes with it for a GIL. The child is forked
(nothing is pickled but the commands and their answers) and holds both worlds with their pages
cached (``SimServer.enable_cache``) so that serving a page again costs almost nothing.

Commands: ``minimum`` (the pages a sync must read), ``stats`` (requests per provider, 429s),
``reset`` (counters and PlanetScale's rate window), ``limit`` (PlanetScale's 600/minute on or
off), ``churn`` (change ~1% of both worlds) and ``stop``.
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.minimum import PageRequest, planetscale_pages, scalr_pages
from daemon.simulate import bulk
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState

PS_LIMIT_PER_MINUTE = 600


class World:
    """The parent's handle on the simulator process."""

    def __init__(self, users: int, latency_s: float, limit: bool, seed: int = 1):
        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, users, latency_s, limit, seed), daemon=True
        )
        self._process.start()
        self.config: dict[str, str] = self._pipe.recv()

    def call(self, *command: Any) -> Any:
        self._pipe.send(command)
        answer = self._pipe.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def minimum(self) -> dict[str, list[PageRequest]]:
        return self.call("minimum")

    def stats(self) -> dict[str, int]:
        return self.call("stats")

    def reset(self) -> None:
        self.call("reset")

    def limit(self, on: bool) -> None:
        self.call("limit", on)

    def churn(self, share: float) -> int:
        return self.call("churn", share)

    def stop(self) -> None:
        if self._process.is_alive():
            self._pipe.send(("stop",))
            self._process.join(timeout=10)

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(pipe, users: int, latency_s: float, limit: bool, seed: int) -> None:
    """Child process: build both worlds, serve them, answer commands until ``stop``."""
    rng = random.Random(seed)
    scalr, ps = ScalrState(), PlanetScaleState()
    sizes = bulk.Sizes.for_users(users)
    now = datetime.now(UTC)
    bulk.populate_scalr(scalr, rng, sizes, now)
    bulk.populate_planetscale(ps, rng, sizes, now)
    scalr_sim, ps_sim = ScalrSimulator(scalr), PlanetScaleSimulator(ps)
    for sim in (scalr_sim, ps_sim):
        sim.latency = latency_s
        sim.enable_cache()
        sim.start()
    ps_sim.rate_limit_per_minute = PS_LIMIT_PER_MINUTE if limit else None
    pipe.send(_config(scalr, ps, scalr_sim, ps_sim))
    commands = _commands(scalr_sim, ps_sim, rng)
    try:
        while True:
            name, *args = pipe.recv()
            if name == "stop":
                return
            try:
                pipe.send(commands[name](*args))
            except Exception as problem:  # noqa: BLE001 - handed to the parent, which raises it
                pipe.send(problem)
    finally:
        scalr_sim.stop()
        ps_sim.stop()


def _config(
    scalr: ScalrState, ps: PlanetScaleState, scalr_sim: ScalrSimulator, ps_sim: PlanetScaleSimulator
) -> dict[str, str]:
    return {
        "SCALR_API_TOKEN": scalr.token,
        "SCALR_ACCOUNT": scalr.account_name,
        "SCALR_BASE_URL": scalr_sim.url,
        # Until the simulator serves the access listings (roles, access policies, tokens).
        "SCALR_READ_ACCESS_POLICIES": "false",
        "SCALR_READ_TOKENS": "false",
        "PLANETSCALE_SERVICE_TOKEN": f"{ps.token_id}:{ps.token_secret}",
        "PLANETSCALE_API_URL": ps_sim.url,
    }


def _commands(
    scalr_sim: ScalrSimulator, ps_sim: PlanetScaleSimulator, rng: random.Random
) -> dict[str, Callable[..., Any]]:
    def stats() -> dict[str, int]:
        return {
            "scalr": len(scalr_sim.requests),
            "planetscale": len(ps_sim.requests),
            "429": ps_sim.rate_limited_count,
        }

    def reset() -> None:
        scalr_sim.clear_requests()
        ps_sim.clear_requests()
        ps_sim.reset_rate_window()

    def limit(on: bool) -> None:
        ps_sim.rate_limit_per_minute = PS_LIMIT_PER_MINUTE if on else None

    def churn(share: float) -> int:
        changed = bulk.churn(scalr_sim.state, ps_sim.state, rng, share, datetime.now(UTC))
        scalr_sim.invalidate()
        ps_sim.invalidate()
        return changed

    def minimum() -> dict[str, list[PageRequest]]:
        return {"scalr": scalr_pages(scalr_sim), "planetscale": planetscale_pages(ps_sim)}

    return {"stats": stats, "reset": reset, "limit": limit, "churn": churn, "minimum": minimum}
