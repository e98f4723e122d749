"""The benchmark still runs end to end: a tiny organisation, no latency, no timing asserted.

``make bench`` is not part of ``make test``; this proves it has not rotted, that its JSON line
carries what machines read from it, and that the real CLI makes exactly the minimum requests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNC_KEYS = {
    "exit_code",
    "wall_s",
    "cpu_s",
    "peak_rss_mb",
    "db_bytes_added",
    "change_rows",
    "version_rows",
    "requests",
    "minimum",
    "http_429",
}


def run_bench(*args: str) -> dict:
    command = [sys.executable, "-m", "bench", *args, "--json-only"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0].removeprefix("BENCH_JSON "))


def test_a_tiny_bench_makes_exactly_the_minimum_requests():
    figures = run_bench(
        "--users", "200", "--latency-ms", "0", "--limit", "off", "--big-users", "0",
        "--apply-users", "0",
    )  # fmt: skip
    assert {"users", "latency_ms", "machine", "runs", "targets", "ok"} <= set(figures)
    run = figures["runs"]["limit_off"]
    assert {"minimum", "floor_s", "bare_floor_s", "ratio", "syncs"} <= set(run)
    assert set(run["syncs"]) == {"first", "no_change", "one_percent"}
    for label, sync in run["syncs"].items():
        assert set(sync) == SYNC_KEYS, label
        assert sync["exit_code"] == 0, (label, run.get("errors"))
        assert sync["requests"] == sync["minimum"] == run["minimum"], label
        assert sync["http_429"] == 0
    first, quiet, changed = (run["syncs"][k] for k in ("first", "no_change", "one_percent"))
    assert first["version_rows"] > 0 and first["change_rows"] == 0  # a baseline
    assert quiet["change_rows"] == quiet["version_rows"] == 0
    assert changed["change_rows"] > 0
    names = {target["name"] for target in figures["targets"]}
    assert "requests - minimum, limit off" in names
    assert all(isinstance(target["ok"], bool) for target in figures["targets"])
