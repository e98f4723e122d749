"""Alert delivery (README, "Alerts") over real HTTP to a loopback receiver, and to an events file.

The receiver is a tiny ``http.server`` in a thread on 127.0.0.1 that records each body and
answers from a script (500 then 200, a redirect, or hang until released). Syncs are real: the
simulators change, ``accesstrail sync`` runs (in-process, or in its own process where a kill -9
or the logs matter) and the database is read back with SQL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from daemon import delivery
from daemon.simulate.scalr.world import ScalrAccessToken, ScalrServiceAccount, ScalrUser
from tests.helpers import query, run_cli, scalr_env, start_daemon, sync, wait_for

DEPLOY = "sa-accdeploy00001"
ADA = "user-accada0000001"
SECRET_PATH = "/hooks/T0SECRET/B0S3CRETT0KEN4xyzzy"


class Receiver:
    """A webhook receiver: ``answers`` is a list of status codes (then 200), or "hang"."""

    def __init__(self, answers=(), hang: bool = False):
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.answers = list(answers)
        self.hang = hang
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.bodies.append(body)
                receiver.paths.append(self.path)
                if receiver.hang:
                    receiver.release.wait(120)
                    return
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for body in self.bodies]


@pytest.fixture
def scalr(scalr_sim):
    """A Scalr account with a service account; adding a token to it raises two alerts."""
    scalr_sim.state.users = {ADA: ScalrUser(ADA, "ada@acme.example", "Ada")}
    scalr_sim.state.service_accounts = {
        DEPLOY: ScalrServiceAccount(DEPLOY, "deploy", "deploy@acme.example")
    }
    scalr_sim.state.access_tokens = {DEPLOY: {}}
    return scalr_sim


def add_token(scalr, ident="at-accforever0001", name="forever"):
    """credential_added + credential_never_expires on the next sync."""
    scalr.state.access_tokens[DEPLOY][ident] = ScalrAccessToken(ident, name)


def env_for(scalr, receiver=None, **extra) -> dict[str, str]:
    env = dict(scalr_env(scalr))
    if receiver is not None:
        env["ACCESSTRAIL_WEBHOOK_URL"] = receiver.url
    env.update(extra)
    return env


def alert_rows(db_path) -> list[dict]:
    return query(db_path, "SELECT * FROM alerts ORDER BY id")


def test_500_then_200_is_delivered_once_more_and_marked_delivered(db_path, scalr):
    sync(db_path, scalr=scalr)  # the baseline
    add_token(scalr)
    with Receiver(answers=[500, 500]) as receiver:
        env = env_for(scalr, receiver)
        first = run_cli(["sync", "--db", str(db_path)], env)
        assert first.exit_code == 0, first.stderr  # the run succeeded: delivery does not count
        assert len(receiver.bodies) == 2  # each of the two alerts tried once
        rows = alert_rows(db_path)
        assert [(r["delivered_at"], r["attempts"], r["last_error"]) for r in rows] == [
            (None, 1, "webhook: HTTP 500"),
            (None, 1, "webhook: HTTP 500"),
        ]
        second = run_cli(["sync", "--db", str(db_path)], env)
        assert second.exit_code == 0
        assert len(receiver.bodies) == 4
        assert receiver.payloads()[2:] == receiver.payloads()[:2]  # the same ids: deduplicable
        assert [json.loads(r["payload"]) for r in rows] == receiver.payloads()[:2]
        rows = alert_rows(db_path)
        assert all(r["delivered_at"] and r["last_error"] is None for r in rows)
        assert [r["attempts"] for r in rows] == [1, 1]
        run_cli(["sync", "--db", str(db_path)], env)
        assert len(receiver.bodies) == 4  # delivered: never again

        listing = run_cli(["alerts", "--db", str(db_path)], env)
        assert listing.exit_code == 0
        lines = listing.stdout.splitlines()
        assert [line.split()[0] for line in lines] == ["#2", "#1"]  # newest first
        assert all("delivered" in line for line in lines)


def test_a_redirect_is_a_failure_and_is_not_followed(db_path, scalr):
    sync(db_path, scalr=scalr)
    add_token(scalr)
    with Receiver(answers=[302, 302]) as receiver:
        run_cli(["sync", "--db", str(db_path)], env_for(scalr, receiver))
        assert len(receiver.bodies) == 2
        assert {r["last_error"] for r in alert_rows(db_path)} == {
            "webhook: HTTP 302 redirect, not followed"
        }


def test_a_hanging_receiver_does_not_hold_sync_past_its_bound(db_path, scalr, monkeypatch):
    monkeypatch.setattr(delivery, "SYNC_BUDGET_SECONDS", 3.0)
    sync(db_path, scalr=scalr)
    add_token(scalr)
    with Receiver(hang=True) as receiver:
        started = time.monotonic()
        result = run_cli(["sync", "--db", str(db_path)], env_for(scalr, receiver))
        elapsed = time.monotonic() - started
        assert result.exit_code == 0, result.stderr
        assert "Scalr: succeeded" in result.stdout
        assert elapsed < 3.0 + 5.0  # the budget, and the sync itself (well under a second)
        rows = alert_rows(db_path)
        assert rows[0]["attempts"] == 1 and "timed out" in rows[0]["last_error"]
        assert rows[1]["attempts"] == 0  # out of time: left for the next run
        assert "alerts: 0 delivered, 1 failed, 1 left for later" in result.stderr


def test_kill_9_after_the_commit_before_delivery_then_the_next_run_delivers(db_path, scalr):
    sync(db_path, scalr=scalr)
    add_token(scalr)
    with Receiver(hang=True) as hanging:
        env = {**os.environ, **env_for(scalr, hanging)}
        process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "sync", "--db", str(db_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # the commit happened (alert rows exist) and delivery is in flight; 60 s is room
            # for a loaded machine to start Python and sync a three-account simulator
            wait_for(lambda: hanging.bodies, 60, "the sync to start delivering")
            assert len(alert_rows(db_path)) == 2
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
    assert all(r["delivered_at"] is None for r in alert_rows(db_path))
    with Receiver() as good:
        result = run_cli(["sync", "--db", str(db_path)], env_for(scalr, good))
        assert result.exit_code == 0
        assert sorted(p["rule"] for p in good.payloads()) == [
            "credential_added",
            "credential_never_expires",
        ]
    assert all(r["delivered_at"] for r in alert_rows(db_path))


def test_the_url_never_appears_in_output_logs_or_the_database(db_path, scalr):
    sync(db_path, scalr=scalr)
    add_token(scalr)
    secret_bits = [SECRET_PATH, "B0S3CRETT0KEN4xyzzy"]
    with Receiver(answers=[500, 500, 500]) as receiver:
        env = {**os.environ, **env_for(scalr, receiver, ACCESSTRAIL_LOG_LEVEL="DEBUG")}
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "sync", "--db", str(db_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "not delivered to webhook: HTTP 500" in done.stderr
        listed = subprocess.run(
            [sys.executable, "-m", "daemon", "alerts", "--db", str(db_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        checked = run_cli(["check", "--webhook", "--db", str(db_path)], env_for(scalr, receiver))
        assert checked.exit_code == 1  # the receiver said 500
        assert receiver.paths == [SECRET_PATH] * 3  # the URL was used, just never shown
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    stored = b"".join(
        path.read_bytes() for path in db_path.parent.iterdir() if path.name.startswith("acc")
    )
    for bit in secret_bits:
        for text in (done.stdout, done.stderr, listed.stdout, listed.stderr):
            assert bit not in text
        assert bit not in checked.stdout + checked.stderr
        assert bit.encode() not in stored
        assert receiver.url not in done.stderr


def test_a_bad_webhook_url_is_a_config_error_that_does_not_show_it(db_path, scalr):
    for url in (
        "http://hooks.example.com/services/T0SECRET/B0S3CRETT0KEN4xyzzy",  # http, not loopback
        f"{scalr.url}/services/T0SECRET/B0S3CRETT0KEN4xyzzy",  # the provider's origin
    ):
        result = run_cli(
            ["sync", "--db", str(db_path)], env_for(scalr, ACCESSTRAIL_WEBHOOK_URL=url)
        )
        assert result.exit_code == 2, result.stderr
        assert "ACCESSTRAIL_WEBHOOK_URL" in result.stderr
        assert "B0S3CRETT0KEN4xyzzy" not in result.stderr
    result = run_cli(
        ["sync", "--db", str(db_path)], env_for(scalr, ACCESSTRAIL_WEBHOOK_FORMAT="xml")
    )
    assert result.exit_code == 2 and "ACCESSTRAIL_WEBHOOK_FORMAT" in result.stderr


def test_the_webhook_url_may_come_from_a_file(db_path, scalr, tmp_path):
    sync(db_path, scalr=scalr)
    add_token(scalr)
    with Receiver() as receiver:
        secret_file = tmp_path / "webhook"
        secret_file.write_text(receiver.url + "\n")
        env = {**scalr_env(scalr), "ACCESSTRAIL_WEBHOOK_URL_FILE": str(secret_file)}
        assert run_cli(["sync", "--db", str(db_path)], env).exit_code == 0
        assert len(receiver.bodies) == 2


def test_slack_format_posts_the_summary_as_text(db_path, scalr):
    sync(db_path, scalr=scalr)
    add_token(scalr)
    with Receiver() as receiver:
        env = env_for(scalr, receiver, ACCESSTRAIL_WEBHOOK_FORMAT="slack")
        run_cli(["sync", "--db", str(db_path)], env)
        summaries = [r["summary"] for r in alert_rows(db_path)]
        assert receiver.payloads() == [{"text": summary} for summary in summaries]
        assert summaries == [
            "Scalr: credential forever created for deploy@acme.example",
            "Scalr: credential forever for deploy@acme.example never expires",
        ]
        # the payload column always holds the json form
        assert json.loads(alert_rows(db_path)[0]["payload"])["rule"] == "credential_added"


def test_events_file_gets_one_line_per_alert_once_with_mode_0640(db_path, scalr, tmp_path):
    events = tmp_path / "out" / "events.jsonl"
    sync(db_path, scalr=scalr)
    add_token(scalr)
    old = os.umask(0)
    try:
        with Receiver(answers=[500, 500]) as receiver:
            env = env_for(scalr, receiver, ACCESSTRAIL_EVENTS_FILE=str(events))
            run_cli(["sync", "--db", str(db_path)], env)
            run_cli(["sync", "--db", str(db_path)], env)  # the webhook's retry
            assert len(receiver.bodies) == 4
    finally:
        os.umask(old)
    assert events.stat().st_mode & 0o777 == 0o640
    lines = events.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(r["payload"]) for r in alert_rows(db_path)
    ]  # each alert once, though the webhook needed a second try
    assert all(r["delivered_at"] for r in alert_rows(db_path))
    # an alert raised with only the events file configured is owed to it alone
    add_token(scalr, "at-accsecond00001")
    run_cli(["sync", "--db", str(db_path)], env_for(scalr, ACCESSTRAIL_EVENTS_FILE=str(events)))
    assert len(events.read_text().splitlines()) == 4
    assert all(r["delivered_at"] for r in alert_rows(db_path))


def test_alerts_are_raised_without_a_sink_and_not_owed_to_a_later_one(db_path, scalr):
    sync(db_path, scalr=scalr)
    add_token(scalr)
    sync(db_path, scalr=scalr)
    assert [r["rule"] for r in alert_rows(db_path)] == [
        "credential_added",
        "credential_never_expires",
    ]
    with Receiver() as receiver:
        run_cli(["sync", "--db", str(db_path)], env_for(scalr, receiver))
        assert receiver.bodies == []
    listing = run_cli(["alerts", "--db", str(db_path)], env_for(scalr))
    assert "no sink configured when raised" in listing.stdout


def test_check_sends_a_test_message_only_when_asked(db_path, scalr):
    with Receiver() as receiver:
        env = env_for(scalr, receiver)
        assert run_cli(["check", "--db", str(db_path)], env).exit_code == 0
        assert receiver.bodies == []
        result = run_cli(["check", "--webhook", "--db", str(db_path)], env)
        assert result.exit_code == 0, result.stderr
        assert "webhook: ok" in result.stdout
        (message,) = receiver.payloads()
        assert message["test"] is True and message["rule"] == "test"
        assert "test message" in message["summary"] and "not an alert" in message["summary"]
    without = run_cli(["check", "--webhook", "--db", str(db_path)], env_for(scalr))
    assert without.exit_code == 2


def test_run_delivers_continuously_with_backoff(db_path, scalr, monkeypatch):
    sync(db_path, scalr=scalr)
    add_token(scalr)
    with Receiver(answers=[500, 500]) as down:
        run_cli(["sync", "--db", str(db_path)], env_for(scalr, down))
    # the backoff: a second round right away skips what just failed
    with Receiver() as receiver:
        env = env_for(scalr, receiver)
        from daemon.config import load_settings

        settings = load_settings(environ=env, db_override=db_path)
        report = delivery.deliver_pending(settings, 5, due_only=True)
        assert (report.delivered, report.left) == (0, 2)
        # `accesstrail run` delivers them once their backoff (5 s after one failure) is over
        daemon = start_daemon({**os.environ, **env, "ACCESSTRAIL_DB": str(db_path)})
        try:
            wait_for(lambda: len(receiver.bodies) == 2, 60, "the daemon to deliver both alerts")
        finally:
            daemon.terminate()
            daemon.communicate(timeout=60)
    assert all(r["delivered_at"] for r in alert_rows(db_path))


def test_the_log_sink_redacts_the_webhook_url_and_its_token(capsys, scalr):
    from loguru import logger

    from daemon.cli import configure_logging
    from daemon.config import load_settings

    url = f"https://hooks.example.com{SECRET_PATH}"
    settings = load_settings(environ={**scalr_env(scalr), "ACCESSTRAIL_WEBHOOK_URL": url})
    configure_logging("INFO", settings)
    logger.warning("posting to {} failed", url)
    logger.warning("token B0S3CRETT0KEN4xyzzy leaked")
    err = capsys.readouterr().err
    assert "B0S3CRETT0KEN4xyzzy" not in err and "hooks.example.com" not in err
    assert err.count("[redacted]") == 2
