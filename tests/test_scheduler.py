"""``accesstrail run`` as systemd runs it: a real process, real simulators, a real stop signal."""

import os
import signal
import subprocess
import sys
import time

from store.timestamps import parse_instant
from tests.helpers import planetscale_env, query, scalr_env, start_daemon, wait_for


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM, as ``systemctl stop`` sends it; returns what the daemon printed."""
    process.send_signal(signal.SIGTERM)
    # systemd allows TimeoutStopSec=60; 30 s is only a bound on a hang, the stop takes about one
    # in-flight request.
    return process.communicate(timeout=30)


def _runs(db_path, provider):
    if not db_path.exists():
        return []
    try:
        return query(db_path, "SELECT * FROM sync_runs WHERE provider = ? ORDER BY id", [provider])
    except Exception:  # the schema may not exist yet in the first instant
        return []


def test_run_syncs_each_provider_on_its_interval_and_stops_cleanly_on_sigterm(
    scalr_sim, planetscale_sim, db_path
):
    env = {
        **os.environ,
        **scalr_env(scalr_sim),
        **planetscale_env(planetscale_sim),
        "ACCESSTRAIL_DB": str(db_path),
        "SCALR_SYNC_INTERVAL": "10s",
        "PLANETSCALE_SYNC_INTERVAL": "1h",
    }
    process = start_daemon(env)

    def finished(provider):
        return [r for r in _runs(db_path, provider) if r["status"] != "running"]

    try:
        # Wait for the state, not a duration: two Scalr runs and one PlanetScale run *finished*
        # (a run still 'running' would be cut short by the SIGTERM and recorded as failed). The
        # bound is six Scalr intervals, room for a loaded machine; the test ends when it holds.
        wait_for(
            lambda: len(finished("scalr")) >= 2 and len(finished("planetscale")) >= 1,
            60,
            "two finished Scalr runs and one finished PlanetScale run",
        )
        out, err = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    scalr_runs = _runs(db_path, "scalr")
    assert [r["status"] for r in scalr_runs[:2]] == ["succeeded", "succeeded"]
    # A third run can only have begun if the machine stalled for a whole interval between the
    # check above and the signal; the stop then ends it, and it says so.
    for late in scalr_runs[2:]:
        assert late["status"] == "succeeded" or "stopped" in late["error"]
    # the second Scalr run came one interval after the first, not back to back
    gap = (
        parse_instant(scalr_runs[1]["started_at"]) - parse_instant(scalr_runs[0]["started_at"])
    ).total_seconds()
    # The schedule is one run every 10 s from the daemon's start, so the gap is 10 s less however
    # late the first run began (it may wait for the PlanetScale run's lock on a loaded machine):
    # at least 5 s is "not back to back" with 5 s of room; at most 30 s (three intervals) only
    # catches a schedule gone wrong.
    assert 5 <= gap <= 30
    assert len(_runs(db_path, "planetscale")) == 1  # its interval is an hour
    assert "stopped" in err
    assert scalr_sim.state.token not in out + err


def test_run_without_any_provider_is_a_config_error(db_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALR_", "PLANETSCALE_", "ACCESSTRAIL_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--db", str(db_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # only a bound on a hang: a config error exits as soon as Python has started
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no provider is configured" in result.stderr


def test_sigterm_during_a_fetch_ends_it_at_the_next_request_and_records_nothing_else(
    scalr_sim, db_path
):
    scalr_sim.add_fault(path=r"/account-users$", status=200, delay=2.0)
    env = {**os.environ, **scalr_env(scalr_sim), "ACCESSTRAIL_DB": str(db_path)}
    process = start_daemon(env)
    try:
        # The first request the daemon sends (the account) is answered at once; then the
        # account users (held), service accounts, teams, roles and then access policies are asked
        # for; the account has no service account, so no token listing follows. Once all have
        # been sent, only the held one is left. 60 s is room for the interpreter to start and the
        # first sync to begin on a loaded machine.
        listings = ("/account-users", "/service-accounts", "/teams", "/roles", "/access-policies")
        wait_for(
            lambda: all(
                any(r.path.endswith(name) for r in list(scalr_sim.requests)) for name in listings
            ),
            60,
            "the daemon's requests for the account's listings",
        )
        sent = len(scalr_sim.requests)
        signalled = time.monotonic()
        out, err = _stop(process)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    # The 2 s request in flight finishes and nothing after it is sent, then the daemon exits: the
    # stop costs at most one request (systemd's TimeoutStopSec=60 covers one 20 s request). It
    # takes about 2.1 s even beside a CPU hog; the 4 s of room is for recording the run and
    # exiting, and still fails a daemon that waits for anything more than the request in flight.
    assert took < 6
    run = _runs(db_path, "scalr")[-1]
    assert run["status"] == "failed" and "stopped" in run["error"]
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 0
    assert len(scalr_sim.requests) == sent  # not one request after the signal


def test_a_provider_that_keeps_failing_is_retried_on_its_schedule_and_the_other_is_unaffected(
    scalr_sim, planetscale_sim, db_path
):
    """A revoked PlanetScale token fails every run, each logged; Scalr keeps syncing."""
    env = {
        **os.environ,
        **scalr_env(scalr_sim),
        **planetscale_env(planetscale_sim),
        "PLANETSCALE_SERVICE_TOKEN": f"{planetscale_sim.state.token_id}:revoked-secret-value",
        "ACCESSTRAIL_DB": str(db_path),
        "SCALR_SYNC_INTERVAL": "10s",
        "PLANETSCALE_SYNC_INTERVAL": "10s",
    }
    process = start_daemon(env)

    def finished(provider):
        return [r for r in _runs(db_path, provider) if r["status"] != "running"]

    try:
        wait_for(
            lambda: len(finished("scalr")) >= 2 and len(finished("planetscale")) >= 2,
            90,
            "two finished runs of each provider",
        )
        out, err = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    failed = finished("planetscale")
    assert [r["status"] for r in failed[:2]] == ["failed", "failed"]
    assert all("PlanetScale" in r["error"] for r in failed[:2])
    assert [r["status"] for r in finished("scalr")[:2]] == ["succeeded", "succeeded"]
    # retried on its schedule: one interval apart, not back to back and not given up on
    gap = (
        parse_instant(failed[1]["started_at"]) - parse_instant(failed[0]["started_at"])
    ).total_seconds()
    assert 5 <= gap <= 30
    # each failure is logged, with the provider's own detail
    failure_lines = [line for line in err.splitlines() if "PlanetScale: failed" in line]
    assert len(failure_lines) >= 2, err
    assert failed[0]["error"] in failure_lines[0]
    assert "revoked-secret-value" not in out + err
