"""``accesstrail status --json`` and the exit status of ``status`` (README).

Monitoring reads these, so every field is asserted against the ``sync_runs`` row it comes from,
after real syncs against the simulators: a success, a ``partial`` run (one scope refused), a
failed run, a stale success (its ``started_at`` aged in the database) and a provider that is
configured but never synced. ``status`` exits 0 only when every provider is fresh and its last
run ended ``succeeded``; the text form exits alike.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest

from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrServiceAccount, ScalrState, ScalrTeam, ScalrUser
from store import timestamps
from tests.helpers import planetscale_env, query, run_cli, scalr_env

#: Intervals set on purpose to differ, so each provider is shown to carry its own.
INTERVALS = {"ACCESSTRAIL_SYNC_INTERVAL": "10m", "SCALR_SYNC_INTERVAL": "1h"}
SCALR_INTERVAL, PLANETSCALE_INTERVAL = 3600, 600

#: What ``small_state`` holds once synced.
SCALR_COUNTS = {
    "users": 4,
    "enabled": 3,
    "service": 1,
    "organizations": 1,
    "teams": 1,
    "memberships": 6,
}
NO_COUNTS = dict.fromkeys(SCALR_COUNTS, 0)


def small_state() -> ScalrState:
    """3 humans (one Inactive), 1 service account, 1 team with 2 members."""
    state = ScalrState()
    state.teams["team-a"] = ScalrTeam("team-a", "Platform")
    for n in range(3):
        state.users[f"user-{n}"] = ScalrUser(
            id=f"user-{n}",
            email=f"u{n}@acme.example",
            status="Inactive" if n == 2 else "Active",
            teams={"team-a"} if n < 2 else set(),
        )
    state.service_accounts["sa-1"] = ScalrServiceAccount("sa-1", "ci", "ci@acme.scalr.io")
    return state


@pytest.fixture
def sim():
    with ScalrSimulator(small_state()) as server:
        yield server


@pytest.fixture
def env(sim, planetscale_sim) -> dict[str, str]:
    """Both providers configured; only Scalr is ever synced by these tests."""
    return {**scalr_env(sim), **planetscale_env(planetscale_sim), **INTERVALS}


def sync_scalr(db_path, env, expected_exit: int) -> dict:
    result = run_cli(["sync", "--provider", "scalr", "--db", str(db_path)], env)
    assert result.exit_code == expected_exit, result.stdout + result.stderr
    return query(db_path, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1")[0]


def status_json(db_path, env) -> tuple[int, dict, float, float]:
    """The exit status and the parsed object, with the clock read just before and after."""
    before = datetime.now(UTC)
    result = run_cli(["status", "--json", "--db", str(db_path)], env)
    after = datetime.now(UTC)
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()  # exactly one JSON object, on one line
    return result.exit_code, json.loads(line), before.timestamp(), after.timestamp()


def scalr_object(run: dict, success: dict | None, *, fresh: bool, healthy: bool) -> dict:
    """The Scalr object expected from its last run row and its last success row."""
    return {
        "provider": "scalr",
        "last_run_id": run["id"],
        "last_run_status": run["status"],
        "last_run_started_at": run["started_at"],
        "last_run_finished_at": run["finished_at"],
        "last_run_requests": run["requests"],
        "last_run_changes": run["changes"],
        "last_success_at": success["started_at"] if success else None,
        "fresh": fresh,
        "healthy": healthy,
        "error": run["error"],
        "interval_seconds": SCALR_INTERVAL,
        "stale_after_seconds": 3 * SCALR_INTERVAL,
        "counts": SCALR_COUNTS,
    }


NEVER_SYNCED = {
    "provider": "planetscale",
    "last_run_id": None,
    "last_run_status": None,
    "last_run_started_at": None,
    "last_run_finished_at": None,
    "last_run_requests": None,
    "last_run_changes": None,
    "last_success_at": None,
    "age_seconds": None,
    "fresh": False,
    "healthy": False,
    "error": None,
    "interval_seconds": PLANETSCALE_INTERVAL,
    "stale_after_seconds": 3 * PLANETSCALE_INTERVAL,
    "counts": NO_COUNTS,
}


def check_age(shown: dict, success: dict, before: float, after: float) -> dict:
    """``age_seconds`` lies between the clock readings around the command; returns the object
    without it, for the exact comparison of every other field."""
    stamp = timestamps.parse_instant(success["started_at"]).timestamp()
    age = shown["age_seconds"]
    assert isinstance(age, float | int)
    assert before - stamp - 0.001 <= age <= after - stamp + 0.001, (age, before, after, stamp)
    return {k: v for k, v in shown.items() if k != "age_seconds"}


def assert_no_secret(text: str, env: dict) -> None:
    for name in ("SCALR_API_TOKEN", "PLANETSCALE_SERVICE_TOKEN"):
        assert env[name] not in text
        assert env[name].split(":")[-1] not in text


def test_succeeded_and_never_synced(db_path, env):
    run = sync_scalr(db_path, env, 0)
    assert run["status"] == "succeeded"

    code, shown, before, after = status_json(db_path, env)

    scalr, planetscale = shown["providers"]
    assert set(shown) == {"providers"}
    assert check_age(scalr, run, before, after) == scalr_object(run, run, fresh=True, healthy=True)
    assert planetscale == NEVER_SYNCED
    assert code == 1  # PlanetScale is configured and has never succeeded
    assert_no_secret(json.dumps(shown), env)


def test_only_fresh_successes_exit_0(db_path, sim):
    env = {**scalr_env(sim), **INTERVALS}
    run = sync_scalr(db_path, env, 0)

    code, shown, before, after = status_json(db_path, env)

    (scalr,) = shown["providers"]
    assert check_age(scalr, run, before, after) == scalr_object(run, run, fresh=True, healthy=True)
    assert code == 0
    assert run_cli(["status", "--db", str(db_path)], env).exit_code == 0


def test_a_partial_run_is_a_success_but_exits_1(db_path, sim, env):
    sync_scalr(db_path, env, 0)
    sim.add_fault(path=r"/teams$", status=403)  # one scope refused, the rest read
    run = sync_scalr(db_path, env, 1)
    assert run["status"] == "partial" and "teams" in run["error"]

    code, shown, before, after = status_json(db_path, env)

    scalr = shown["providers"][0]
    assert check_age(scalr, run, before, after) == scalr_object(run, run, fresh=True, healthy=False)
    assert code == 1
    text = run_cli(["status", "--db", str(db_path)], env)
    assert text.exit_code == 1 and "partial" in text.stdout


def test_a_failed_run_keeps_the_last_success_and_exits_1(db_path, sim, env):
    success = sync_scalr(db_path, env, 0)
    bad = {**env, "SCALR_API_TOKEN": "wrong-token-value"}
    run = sync_scalr(db_path, bad, 1)
    assert run["status"] == "failed" and run["error"]

    code, shown, before, after = status_json(db_path, env)

    scalr = shown["providers"][0]
    assert check_age(scalr, success, before, after) == scalr_object(
        run, success, fresh=True, healthy=False
    )
    assert code == 1
    assert "wrong-token-value" not in json.dumps(shown)


def test_a_stale_success_is_not_fresh_and_exits_1(db_path, sim):
    env = {**scalr_env(sim), **INTERVALS}
    sync_scalr(db_path, env, 0)
    # Older than three intervals (3 h) by a minute: just past the line, not years past it.
    aged = datetime.now(UTC).timestamp() - 3 * SCALR_INTERVAL - 60
    stamp = timestamps.format_instant(datetime.fromtimestamp(aged, UTC))
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE sync_runs SET started_at = ?", [stamp])
    conn.commit()
    conn.close()
    (run,) = query(db_path, "SELECT * FROM sync_runs")

    code, shown, before, after = status_json(db_path, env)

    (scalr,) = shown["providers"]
    assert check_age(scalr, run, before, after) == scalr_object(
        run, run, fresh=False, healthy=False
    )
    assert scalr["age_seconds"] > 3 * SCALR_INTERVAL
    assert code == 1
    text = run_cli(["status", "--db", str(db_path)], env)
    assert text.exit_code == 1 and "stale" in text.stdout


def test_a_success_just_inside_three_intervals_is_fresh(db_path, sim):
    env = {**scalr_env(sim), **INTERVALS}
    sync_scalr(db_path, env, 0)
    aged = datetime.now(UTC).timestamp() - 3 * SCALR_INTERVAL + 60
    stamp = timestamps.format_instant(datetime.fromtimestamp(aged, UTC))
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE sync_runs SET started_at = ?", [stamp])
    conn.commit()
    conn.close()

    code, shown, _, _ = status_json(db_path, env)

    assert shown["providers"][0]["fresh"] is True
    assert code == 0
