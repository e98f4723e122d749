"""``python -m bench``: the options, the order of the runs, and the exit status.

By default (what ``make bench`` runs): a 20,000-user organisation with PlanetScale's limit off
and then on, each with a first, a no-change and a ~1%-changed sync and its floor; a first sync of
a 100,000-user organisation (limit off) for peak memory; and the 100,000-user apply measurement.
``--check`` makes a missed target exit 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench import report
from bench.scenario import run_scenario
from bench.targets import judge

SYNCS = ("first", "no_change", "one_percent")
ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000, help="PlanetScale people (N)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--limit", choices=("on", "off", "both"), default="both")
    parser.add_argument("--big-users", type=int, default=100_000, help="0 skips the RSS run")
    parser.add_argument("--apply-users", type=int, default=100_000, help="0 skips it")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    latency = args.latency_ms / 1000
    say = (lambda text: None) if args.json_only else _progress
    figures: dict = {
        "users": args.users,
        "latency_ms": args.latency_ms,
        "machine": report.machine(),
        "runs": {},
    }
    modes = ("off",) if args.limit == "off" else ("on",) if args.limit == "on" else ("off", "on")
    for mode in modes:
        say(f"{args.users} users, PlanetScale limit {mode} ...")
        figures["runs"][f"limit_{mode}"] = run_scenario(args.users, latency, mode == "on", SYNCS)
    if args.big_users > 0:
        say(f"{args.big_users} users, first sync, limit off ...")
        figures["big"] = run_scenario(args.big_users, latency, False, ("first",))
    if args.apply_users > 0:
        say(f"apply of {args.apply_users} users ...")
        figures["apply"] = measure_apply(args.apply_users)
    targets = judge(figures)
    figures["targets"] = [target.as_dict() for target in targets]
    figures["ok"] = all(target.ok for target in targets)
    figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    if not args.json_only:
        print(report.table(figures, targets))
    print(report.json_line(figures), flush=True)
    return 1 if args.check and not figures["ok"] else 0


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def measure_apply(users: int) -> dict:
    """``bench.apply`` in a process of its own, so that its CPU time is its alone."""
    command = [sys.executable, "-m", "bench.apply", "--users", str(users), "--json"]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("APPLY_JSON "))
    return json.loads(line.removeprefix("APPLY_JSON "))
