"""``accesstrail run`` under systemd's notify protocol, and where its first syncs are scheduled.

A real Unix datagram socket stands in for systemd: the daemon runs as its own process with
``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``, exactly as systemd starts a ``Type=notify`` unit, and
the test reads what arrives. Health (the scheduler's heartbeat, a stuck sync) is tested on an
in-process ``Daemon`` whose notifier points at the same kind of socket.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from daemon.notify import Notifier
from daemon.scheduler import Daemon
from store import timestamps
from tests.helpers import (
    WatchedScalr,
    planetscale_env,
    query,
    scalr_env,
    settings_for,
    start_daemon,
    sync,
    wait_for,
)


class FakeSystemd:
    """Collects the notify datagrams sent to a socket, as systemd would receive them."""

    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append(fields)

    def having(self, name: str) -> list[dict[str, str]]:
        return [m for m in list(self.messages) if name in m]

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def systemd(request, tmp_path):
    address = (
        str(tmp_path / "notify.sock")
        if request.param == "path"
        else f"@accesstrail-test-{uuid.uuid4().hex}"
    )
    receiver = FakeSystemd(address)
    yield receiver
    receiver.close()


def _daemon_env(db_path, systemd, scalr_sim, planetscale_sim, **extra) -> dict[str, str]:
    return {
        **os.environ,
        **scalr_env(scalr_sim),
        **planetscale_env(planetscale_sim),
        "ACCESSTRAIL_DB": str(db_path),
        "NOTIFY_SOCKET": systemd.address,
        "WATCHDOG_USEC": "1500000",  # 1.5 s: a ping every 0.5 s
        **extra,
    }


def _finished_runs(db_path, provider: str) -> list[dict]:
    if not db_path.exists():
        return []
    try:
        rows = query(db_path, "SELECT * FROM sync_runs WHERE provider = ? ORDER BY id", [provider])
    except Exception:  # the schema may not exist yet in the first instant
        return []
    return [r for r in rows if r["status"] != "running"]


def test_run_says_ready_status_watchdog_and_stopping_in_order(
    systemd, db_path, scalr_sim, planetscale_sim
):
    env = _daemon_env(db_path, systemd, scalr_sim, planetscale_sim, ACCESSTRAIL_SYNC_INTERVAL="1h")
    process = start_daemon(env)
    try:
        wait_for(lambda: systemd.having("READY"), 30, "READY=1")
        wait_for(
            lambda: any(
                "succeeded" in m["STATUS"] and "PlanetScale: succeeded" in m["STATUS"]
                for m in systemd.having("STATUS")
            ),
            60,
            "a STATUS= line saying both providers' runs succeeded",
        )
        wait_for(lambda: len(systemd.having("WATCHDOG")) >= 3, 30, "three WATCHDOG=1 pings")
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        out, err = process.communicate(timeout=10)
        assert time.monotonic() - stopped_at < 10
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    wait_for(lambda: systemd.having("STOPPING"), 10, "STOPPING=1")
    kinds = [
        next(iter(k for k in ("READY", "WATCHDOG", "STOPPING") if k in m), "STATUS")
        for m in systemd.messages
    ]
    assert kinds[0] == "READY"  # nothing before it: ready once set up, before the first sync
    first_stop = kinds.index("STOPPING")
    assert "WATCHDOG" in kinds[:first_stop]
    assert "WATCHDOG" not in kinds[first_stop:]
    assert systemd.messages[0]["READY"] == "1"
    assert "Scalr" in systemd.messages[0]["STATUS"]
    secrets = [scalr_sim.state.token, planetscale_sim.state.token_secret]
    for message in systemd.messages:
        assert not any(secret in value for secret in secrets for value in message.values())


def test_a_restart_after_a_recent_success_waits_and_after_a_stale_one_syncs_at_once(
    db_path, tmp_path, scalr_sim, planetscale_sim
):
    assert sync(db_path, scalr=scalr_sim).status == "succeeded"
    assert sync(db_path, planetscale=planetscale_sim).status == "succeeded"
    # Age PlanetScale's success beyond its interval; Scalr's stays a second old.
    aged = timestamps.format_instant(datetime.now(UTC) - timedelta(hours=2))
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE sync_runs SET started_at = ? WHERE provider = 'planetscale'", [aged])
    systemd = FakeSystemd(str(tmp_path / "notify.sock"))
    env = _daemon_env(db_path, systemd, scalr_sim, planetscale_sim, ACCESSTRAIL_SYNC_INTERVAL="1h")
    process = start_daemon(env)
    try:
        wait_for(lambda: len(_finished_runs(db_path, "planetscale")) == 2, 60, "a stale one syncs")
        # The scheduler is running its jobs (its heartbeat keeps the pings coming) well past
        # the moment a due Scalr sync would have started; none did.
        pings = len(systemd.having("WATCHDOG"))
        wait_for(lambda: len(systemd.having("WATCHDOG")) >= pings + 4, 30, "four more pings")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        systemd.close()
    assert process.returncode == 0, err
    assert len(query(db_path, "SELECT * FROM sync_runs WHERE provider = 'scalr'")) == 1
    assert "Scalr: syncing every 3600s" in err and "one interval after its last success" in err


def _notifier(address: str) -> Notifier:
    return Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"})


def test_a_hung_scheduler_stops_the_watchdog_pings(db_path, tmp_path, scalr_sim):
    systemd = FakeSystemd(str(tmp_path / "notify.sock"))
    settings = settings_for(db_path, scalr=scalr_sim, ACCESSTRAIL_SYNC_INTERVAL="1h")
    daemon = Daemon(settings, notifier=_notifier(systemd.address))
    runner = threading.Thread(target=daemon.wait_until_stopped)
    try:
        daemon.start()
        runner.start()
        wait_for(lambda: len(systemd.having("WATCHDOG")) >= 2, 30, "pings while healthy")
        daemon.scheduler.pause()  # its thread no longer runs jobs: the heartbeat stops
        wait_for(lambda: not daemon.healthy(), 30, "the missing heartbeat noticed")
        pings = len(systemd.having("WATCHDOG"))
        time_of_check = time.monotonic()
        wait_for(lambda: time.monotonic() - time_of_check > 1.0, 5, "three ping periods")
        assert len(systemd.having("WATCHDOG")) == pings
        daemon.scheduler.resume()
        wait_for(lambda: len(systemd.having("WATCHDOG")) > pings, 30, "pings again once healthy")
    finally:
        daemon.stop.set()
        if runner.is_alive():
            runner.join(timeout=30)
        systemd.close()


def test_a_stuck_sync_stops_the_watchdog_pings(db_path, tmp_path):
    release = threading.Event()
    with WatchedScalr() as sim:
        sim.before_answer = lambda request: release.wait(60)
        systemd = FakeSystemd(str(tmp_path / "notify.sock"))
        settings = settings_for(db_path, scalr=sim, ACCESSTRAIL_SYNC_INTERVAL="1h")
        daemon = Daemon(settings, notifier=_notifier(systemd.address), stuck_after=1.0)
        runner = threading.Thread(target=daemon.wait_until_stopped)
        try:
            daemon.start()
            runner.start()
            wait_for(lambda: sim.arrivals, 30, "the sync's first request held")
            wait_for(lambda: not daemon.healthy(), 30, "the stuck sync noticed")
            release.set()
            wait_for(lambda: _finished_runs(db_path, "scalr"), 60, "the sync finishing")
            wait_for(daemon.healthy, 30, "healthy again")
        finally:
            release.set()
            daemon.stop.set()
            if runner.is_alive():
                runner.join(timeout=60)
            systemd.close()
    assert _finished_runs(db_path, "scalr")[0]["status"] == "succeeded"


def test_notifier_outside_systemd_does_nothing_and_honours_watchdog_pid():
    assert not Notifier({}).send(ready="1")
    assert Notifier({"WATCHDOG_USEC": "3000000"}).watchdog_seconds == 1.0
    other = {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(other).watchdog_seconds is None
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).address is None
