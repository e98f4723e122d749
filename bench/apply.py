"""How much CPU does applying a large snapshot cost, with no network in the way?

The sync benchmark times whole syncs, where the providers' latency dominates; this one isolates
our own work on a generated snapshot, in a fresh database, for a baseline, an unchanged and a ~1%
changed snapshot, in two steps timed apart: staging it (what a fetch's scopes do page by page,
in batches, while the network is the wait) and applying it — settling the staging, the diff and
the writes, one transaction (``store/apply.py``). CPU is this process's user+system time; the
target is the apply's.

    .venv/bin/python -m bench.apply [--users 100000] [--json]

``make bench`` runs it in a process of its own, so that its CPU and memory are its alone.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from daemon.providers.scopes import SnapshotBuilder
from store import runs, schema
from store.apply import apply_snapshot
from store.model import Membership, MembershipScope, Organization, Team, User
from store.staging import Staging
from store.transactions import transaction

ACCOUNT = "acc-bench"
PROVIDER = "scalr"


def world(users: int, seed: int) -> dict:
    """A Scalr-shaped account: one organisation, a team per 200 users, ~1.5 teams per user."""
    rng = random.Random(seed)
    teams = [f"team-{n:05d}" for n in range(max(5, users // 200))]
    people = {}
    for n in range(users):
        people[f"user-{n:07d}"] = {
            "status": "enabled",
            "last_sign_in_at": f"2026-11-{rng.randint(1, 28):02d}T10:00:00Z",
            "teams": rng.sample(teams, rng.choice((1, 1, 2, 2))),
        }
    return {"teams": teams, "people": people}


def churn(state: dict, share: float, seed: int) -> None:
    """Change ``share`` of the people: sign-ins, disables, team moves."""
    rng = random.Random(seed)
    for user_id in rng.sample(sorted(state["people"]), int(len(state["people"]) * share)):
        person = state["people"][user_id]
        what = rng.choice(("sign_in", "disable", "team"))
        if what == "sign_in":
            person["last_sign_in_at"] = "2026-12-02T09:00:00Z"
        elif what == "disable":
            person["status"] = "disabled"
        else:
            person["teams"] = [rng.choice(state["teams"])]


def objects(state: dict) -> Iterator:
    yield Organization(ACCOUNT, "bench")
    for team_id in state["teams"]:
        yield Team(team_id, ACCOUNT, f"Team {team_id}")
    for user_id, person in state["people"].items():
        yield User(
            user_id,
            f"{user_id}@example.com",
            user_id,
            status=person["status"],
            provider_status="Active" if person["status"] == "enabled" else "Inactive",
            last_sign_in_at=person["last_sign_in_at"],
        )
        yield Membership("organization", ACCOUNT, user_id)
        for team_id in person["teams"]:
            yield Membership("team", team_id, user_id)


def measure(db_path: Path, state: dict) -> dict:
    """Stage and apply one snapshot of ``state``; CPU and wall of each step."""
    db = schema.connect(db_path)
    try:
        run = runs.start_run(db, PROVIDER)
        cpu = time.process_time()
        builder = SnapshotBuilder(PROVIDER, Staging(db))
        covers = [MembershipScope("organization", ACCOUNT), MembershipScope("team")]
        with builder.scope("everything", memberships=covers, teams_of=[ACCOUNT]) as scope:
            for item in objects(state):
                scope.add(item)
        snapshot = builder.build()
        staged, wall = time.process_time(), time.perf_counter()
        with transaction(db):
            result = apply_snapshot(db, snapshot, run)
            runs.finish_run(db, run, result, 0)
        return {
            "stage_cpu_s": round(staged - cpu, 3),
            "cpu_s": round(time.process_time() - staged, 3),
            "wall_s": round(time.perf_counter() - wall, 3),
            "changes": sum(result.changes.values()),
        }
    finally:
        db.close()


LABELS = ("baseline", "no_change", "one_percent")


def run(users: int, seed: int = 1, repeat: int = 3) -> dict:
    """Each of the three applies ``repeat`` times (a fresh database each round); the median.

    A single apply's CPU time varies by ±10% from run to run on a shared machine; the median of
    three is steady enough to judge a 3 s target by.
    """
    rounds = [_one_round(users, seed) for _ in range(repeat)]
    figures: dict = {"users": users, "repeat": repeat}
    for label in LABELS:
        by_cpu = sorted((r[label] for r in rounds), key=lambda row: row["cpu_s"])
        figures[label] = by_cpu[len(by_cpu) // 2]
    return figures


def _one_round(users: int, seed: int) -> dict:
    state = world(users, seed)
    with tempfile.TemporaryDirectory() as scratch:
        db_path = Path(scratch) / "apply.db"
        figures = {"baseline": measure(db_path, state)}
        figures["no_change"] = measure(db_path, state)
        churn(state, 0.01, seed)
        figures["one_percent"] = measure(db_path, state)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    figures = run(args.users, args.seed, args.repeat)
    if not args.json:
        print(
            f"a {args.users}-user snapshot, no network: staged, then applied (diff + write); "
            f"median of {args.repeat}"
        )
        for label in LABELS:
            row = figures[label]
            print(
                f"  {label:<12} stage cpu {row['stage_cpu_s']:6.2f}s  apply cpu "
                f"{row['cpu_s']:6.2f}s  wall {row['wall_s']:6.2f}s  changes {row['changes']}"
            )
    print("APPLY_JSON " + json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
