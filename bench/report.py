"""The benchmark's two outputs: a table for people and one ``BENCH_JSON`` line for machines."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterator

from bench.targets import Target

JSON_PREFIX = "BENCH_JSON "
LABELS = {"first": "first", "no_change": "no change", "one_percent": "~1% changed"}
HEADER = (
    f"{'run':<24}{'sync':<13}{'wall s':>8}{'CPU s':>7}{'requests':>14}{'429':>5}"
    f"{'RSS MB':>8}{'DB KiB':>9}{'changes':>9}{'versions':>9}"
)


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table(figures: dict, targets: list[Target]) -> str:
    return "\n".join(_table_lines(figures, targets))


def _table_lines(figures: dict, targets: list[Target]) -> Iterator[str]:
    yield f"latency {figures['latency_ms']} ms; machine {json.dumps(figures['machine'])}"
    yield HEADER
    runs = [(f"{r['users']} users, limit {k[6:]}", r) for k, r in figures["runs"].items()]
    if figures.get("big"):
        runs.append((f"{figures['big']['users']} users, limit off", figures["big"]))
    for name, run in runs:
        for label, sync in run["syncs"].items():
            yield _sync_line(name, LABELS.get(label, label), sync)
        if "floor_s" in run:
            yield (
                f"{'':<24}floor {run['floor_s']:.2f} s (bare fetch {run['bare_floor_s']:.2f} s);"
                f" first sync = {run['ratio']:.2f} x floor"
            )
    apply = figures.get("apply")
    if apply:
        for step, key in (("staged", "stage_cpu_s"), ("applied (diff + write)", "cpu_s")):
            parts = [f"{LABELS[k]} {apply[k][key]:.2f}" for k in LABELS if k != "first"]
            yield (
                f"{apply['users']} users {step}, CPU s: baseline {apply['baseline'][key]:.2f}, "
                + ", ".join(parts)
            )
    yield ""
    for target in targets:
        verdict = "ok  " if target.ok else "MISS"
        yield f"{verdict} {target.name}: {target.measured:g} (target {target.limit})"


def _sync_line(name: str, label: str, sync: dict) -> str:
    made = sum(sync["requests"].values())
    needed = sum(sync["minimum"].values())
    failed = "" if sync["exit_code"] == 0 else f"  exit {sync['exit_code']}"
    return (
        f"{name:<24}{label:<13}{sync['wall_s']:>8.2f}{sync['cpu_s']:>7.2f}"
        f"{f'{made}/{needed}':>14}{sync['http_429']:>5}{sync['peak_rss_mb']:>8.1f}"
        f"{sync['db_bytes_added'] / 1024:>9.1f}{sync['change_rows']:>9}"
        f"{sync['version_rows']:>9}{failed}"
    )


def json_line(figures: dict) -> str:
    return JSON_PREFIX + json.dumps(figures, sort_keys=True)
