"""The issue's targets, each judged against the figures of one benchmark run.

A target whose figures were not measured in this run (a skipped limit setting, ``--big-users
0``) is left out rather than failed. Each entry says what was measured, so a miss reads on its
own: ``first sync / floor, limit on: 1.31 (target <= 1.15)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

RATIO_LIMITED = 1.15
RATIO_UNLIMITED = 2.0
BIG_RSS_MB = 150.0
RSS_GROWTH = 1.20
NO_CHANGE_BYTES = 8 * 1024
CHANGED_COST = 1.2
APPLY_CPU_S = 3.0


@dataclass(frozen=True)
class Target:
    name: str
    measured: float
    limit: str
    ok: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _at_most(name: str, measured: float, bound: float) -> Target:
    return Target(name, round(measured, 3), f"<= {bound:g}", measured <= bound)


def judge(figures: dict) -> list[Target]:
    return list(_targets(figures))


def _targets(figures: dict) -> Iterator[Target]:
    runs = figures.get("runs", {})
    for key, mode in (("limit_on", "limit on"), ("limit_off", "limit off")):
        run = runs.get(key)
        if run is None:
            continue
        if "ratio" in run:
            bound = RATIO_LIMITED if key == "limit_on" else RATIO_UNLIMITED
            yield _at_most(f"first sync / floor, {mode}", run["ratio"], bound)
        yield from _sync_targets(run, mode)
    big = figures.get("big")
    if big is not None:
        yield from _sync_targets(big, f"{big['users']} users, limit off")
        first = big["syncs"]["first"]["peak_rss_mb"]
        yield _at_most(f"peak RSS MB, {big['users']} users", first, BIG_RSS_MB)
        base = _base_rss(runs)
        if base:
            yield _at_most("peak RSS, big / base users", first / base, RSS_GROWTH)
    apply = figures.get("apply")
    if apply is not None:
        worst = max(apply[label]["cpu_s"] for label in ("baseline", "no_change", "one_percent"))
        yield _at_most(f"apply CPU s, {apply['users']} users (worst of 3)", worst, APPLY_CPU_S)


def _sync_targets(run: dict, mode: str) -> Iterator[Target]:
    syncs = run["syncs"]
    failed = [label for label, sync in syncs.items() if sync["exit_code"] != 0]
    yield Target(f"syncs exit 0, {mode}", len(failed), "= 0 failed", not failed)
    extra = sum(_requests_over_minimum(sync) for sync in syncs.values())
    yield Target(f"requests - minimum, {mode}", extra, "= 0", extra == 0)
    if mode == "limit on":
        refused = sum(sync["http_429"] for sync in syncs.values())
        yield Target(f"429s received, {mode}", refused, "= 0", refused == 0)
    quiet = syncs.get("no_change")
    if quiet is not None:
        yield _at_most(f"no-change change rows, {mode}", quiet["change_rows"], 0)
        yield _at_most(f"no-change version rows, {mode}", quiet["version_rows"], 0)
        yield _at_most(f"no-change DB bytes, {mode}", quiet["db_bytes_added"], NO_CHANGE_BYTES)
        changed = syncs.get("one_percent")
        if changed is not None:
            cost = changed["wall_s"] / max(quiet["wall_s"], 1e-9)
            yield _at_most(f"1%-changed / no-change wall, {mode}", cost, CHANGED_COST)


def _requests_over_minimum(sync: dict) -> int:
    """How far the requests are from the minimum, either way (fewer is also wrong)."""
    return sum(abs(sync["requests"][name] - sync["minimum"][name]) for name in sync["minimum"])


def _base_rss(runs: dict) -> float | None:
    run = runs.get("limit_off") or runs.get("limit_on")
    if run is None or "first" not in run["syncs"]:
        return None
    return run["syncs"]["first"]["peak_rss_mb"]
