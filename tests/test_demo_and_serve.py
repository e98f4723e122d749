"""The demo runs the whole product on the simulators, and ``serve`` puts it behind Datasette."""

import os
import subprocess
import sys
import time

import httpx

from tests.conftest import free_port, query, run_cli


def test_demo_records_a_history_of_real_changes(tmp_path):
    result = run_cli(
        ["demo", "--rounds", "4", "--no-serve", "--db", str(tmp_path / "x-demo.db")], env={}
    )
    assert result.exit_code == 0, result.output
    assert "Round 4" in result.output
    runs = query(tmp_path / "x-demo.db", "SELECT provider, status FROM sync_runs")
    assert len(runs) == 10 and {r["status"] for r in runs} == {"succeeded"}
    kinds = {r["kind"] for r in query(tmp_path / "x-demo.db", "SELECT kind FROM changes")}
    assert kinds, "the demo recorded no change"
    # what the demo printed as recorded is what the database holds
    for row in query(
        tmp_path / "x-demo.db", "SELECT kind, email FROM changes WHERE email IS NOT NULL"
    ):
        assert f"{row['kind']}  {row['email']}" in result.output


def test_demo_refuses_to_overwrite_a_database_that_is_not_a_demo(tmp_path):
    precious = tmp_path / "accesstrail.db"
    precious.write_bytes(b"keep me")
    result = _accesstrail(["demo", "--rounds", "1", "--no-serve", "--db", str(precious)])
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert precious.read_bytes() == b"keep me"


def _accesstrail(args):
    """The real command in its own process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args], capture_output=True, text=True, timeout=60
    )


def test_serve_shows_the_history_through_datasette(tmp_path):
    db = tmp_path / "served-demo.db"
    assert run_cli(["demo", "--rounds", "2", "--no-serve", "--db", str(db)], env={}).exit_code == 0
    port = free_port()
    env = {**os.environ, "ACCESSTRAIL_PORT": str(port), "ACCESSTRAIL_HOST": "127.0.0.1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "daemon", "serve", "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/{db.stem}/users.json?_shape=array&_size=max"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, server.stderr.read() if server.poll() else ""
                time.sleep(0.2)
        assert response.status_code == 200
        served = {(row["provider"], row["id"]) for row in response.json()}
        stored = {
            (row["provider"], row["id"]) for row in query(db, "SELECT provider, id FROM users")
        }
        assert served == stored and served
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_demo_ignores_a_real_configuration_in_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text(
        "SCALR_API_TOKEN_FILE=/nonexistent/token\nPLANETSCALE_REQUESTS_PER_MINUTE=abc\n"
    )
    result = _accesstrail(["demo", "--rounds", "1", "--no-serve"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "accesstrail-demo.db").exists()
