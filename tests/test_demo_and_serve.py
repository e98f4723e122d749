"""The demo runs the whole product on the simulators, and ``serve`` puts it behind Datasette."""

import json
import os
import re
import subprocess
import sys

import httpx

from tests.helpers import free_port, query, run_cli, serving, wait_for


def test_demo_records_a_history_of_real_changes(tmp_path):
    result = run_cli(
        ["demo", "--rounds", "4", "--no-serve", "--db", str(tmp_path / "x-demo.db")], env={}
    )
    assert result.exit_code == 0, result.output
    assert "Day 4" in result.output
    runs = query(tmp_path / "x-demo.db", "SELECT provider, status FROM sync_runs")
    assert len(runs) == 10 and {r["status"] for r in runs} == {"succeeded"}
    kinds = {r["kind"] for r in query(tmp_path / "x-demo.db", "SELECT kind FROM changes")}
    assert kinds, "the demo recorded no change"
    # what the demo printed as recorded is what the database holds, day by day
    printed = [
        int(n)
        for line in result.output.splitlines()
        if "recorded: " in line
        for n in re.findall(r"(?:Scalr|PlanetScale) (\d+)", line.split("recorded: ", 1)[1])
    ]
    stored = query(
        tmp_path / "x-demo.db",
        "SELECT (SELECT COUNT(*) FROM changes c WHERE c.run_id = r.id) AS n "
        "FROM sync_runs r ORDER BY r.id",
    )
    assert printed == [row["n"] for row in stored]


def test_demo_refuses_to_overwrite_a_database_that_is_not_a_demo(tmp_path):
    precious = tmp_path / "accesstrail.db"
    precious.write_bytes(b"keep me")
    result = _accesstrail(["demo", "--rounds", "1", "--no-serve", "--db", str(precious)])
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert precious.read_bytes() == b"keep me"


def _accesstrail(args):
    """The real command in its own process, as a user would run it."""
    # The demo of one round takes a few seconds; 120 s only bounds a hang on a loaded machine.
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args], capture_output=True, text=True, timeout=120
    )


def test_serve_shows_the_history_through_datasette(tmp_path):
    db = tmp_path / "served-demo.db"
    assert run_cli(["demo", "--rounds", "2", "--no-serve", "--db", str(db)], env={}).exit_code == 0
    with serving(db) as base:
        # Datasette reads this small database in milliseconds; 10 s is room for a loaded machine.
        response = httpx.get(f"{base}/{db.stem}/users.json?_shape=array&_size=max", timeout=10)
    assert response.status_code == 200
    served = {(row["provider"], row["id"]) for row in response.json()}
    stored = {(row["provider"], row["id"]) for row in query(db, "SELECT provider, id FROM users")}
    assert served == stored and served


def test_demo_ignores_a_real_configuration_in_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text(
        "SCALR_API_TOKEN_FILE=/nonexistent/token\nPLANETSCALE_REQUESTS_PER_MINUTE=abc\n"
    )
    result = _accesstrail(["demo", "--rounds", "1", "--no-serve"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "accesstrail-demo.db").exists()


def test_the_served_demo_says_it_is_a_demo_and_prints_the_dashboard(tmp_path):
    port = free_port()
    env = {**os.environ, "ACCESSTRAIL_PORT": str(port)}
    db = tmp_path / "shown-demo.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "demo", "--days", "2", "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the demo prints the dashboard's URL once it is served
            if "/-/dashboards/accesstrail" in line:
                break
        base = f"http://127.0.0.1:{port}"
        metadata = wait_for(
            lambda: _json_or_none(f"{base}/-/metadata.json"), 60, "the demo's Datasette answers"
        )
        assert "demo" in metadata["title"] and "simulated" in metadata["title"]
        assert "simulated" in httpx.get(f"{base}/", timeout=10).text
    finally:
        process.terminate()
        process.wait(timeout=30)


def _json_or_none(url):
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:  # not listening yet
        return None
    return response.json() if response.status_code == 200 else None


def test_the_demo_raises_alerts_and_delivers_them_to_its_events_file(tmp_path):
    db = tmp_path / "alerting-demo.db"
    result = _accesstrail(["demo", "--days", "30", "--no-serve", "--db", str(db)])
    assert result.returncode == 0, result.stderr
    alerts = query(db, "SELECT id, rule, delivered_at FROM alerts ORDER BY id")
    assert {"new_admin", "credential_added", "organization_access_lost"} <= {
        a["rule"] for a in alerts
    }
    assert all(a["delivered_at"] for a in alerts)
    lines = (tmp_path / "alerting-demo-alerts.jsonl").read_text().splitlines()
    delivered = [json.loads(line) for line in lines]
    assert [d["id"].rsplit(":", 1)[1] for d in delivered] == [str(a["id"]) for a in alerts]
    assert "alert new_admin" in result.stdout
