"""One syncing process per database, one sync per provider: a second waits, or gives up clearly.

Within one process the providers sync at the same time (their fetches overlap; their applies
are one transaction each), so the last test proves that the lock does not serialise them.
"""

import contextlib
import subprocess
import sys
import threading

import pytest
from loguru import logger

from daemon.simulate.scalr.world import ScalrUser
from daemon.sync import sync_all
from store.lock import SyncLockBusy
from tests.helpers import (
    WatchedPlanetScale,
    WatchedScalr,
    query,
    settings_for,
    sync,
    wait_for,
)

HOLD_THE_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@contextlib.contextmanager
def _lock_held_by_another_process(db_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def _add_users(state, count):
    for n in range(count):
        state.users[f"user-{n:03d}"] = ScalrUser(id=f"user-{n:03d}", email=f"u{n}@example.com")


def test_a_second_sync_gives_up_with_a_clear_message_when_the_lock_is_held(scalr_sim, db_path):
    _add_users(scalr_sim.state, 3)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with _lock_held_by_another_process(db_path):
        with pytest.raises(SyncLockBusy) as caught:
            # The lock is held for the whole wait, so 0.3 s gives up the same way on any machine.
            sync(db_path, scalr=scalr_sim, lock_wait=0.3)
    assert "another accesstrail sync" in str(caught.value)
    assert str(db_path) in str(caught.value)
    assert scalr_sim.requests == []  # it never started fetching
    assert not db_path.exists() or query(db_path, "SELECT * FROM sync_runs") == []


def test_concurrent_syncs_are_serialised_and_record_each_change_once(db_path):
    with WatchedScalr() as sim:
        _add_users(sim.state, 150)
        sync(db_path, scalr=sim)  # baseline
        sim.state.users["user-007"].status = "Inactive"
        sim.state.users.pop("user-008")

        # The first sync's account-users answer is held until the second sync says it is
        # waiting for the lock, so the two really overlap: the second waits while the first
        # holds the lock mid-fetch, then diffs against what the first wrote.
        first_is_fetching, second_is_waiting = threading.Event(), threading.Event()

        def hold_the_first_fetch(request):
            if request.path.endswith("/account-users") and not first_is_fetching.is_set():
                first_is_fetching.set()
                second_is_waiting.wait(timeout=60)  # a bound only; the log line comes in ms

        def note_the_wait(message):
            if "waiting for another sync" in message:
                second_is_waiting.set()

        def second_sync():
            outcomes.append(sync(db_path, scalr=sim))

        sim.before_answer = hold_the_first_fetch
        outcomes = []
        first = threading.Thread(target=lambda: outcomes.append(sync(db_path, scalr=sim)))
        first.start()
        # 60 s: far more than a sync's first two requests take on a loaded machine.
        wait_for(first_is_fetching.is_set, 60, "the first sync's account-users request")
        sink = logger.add(note_the_wait, level="INFO")
        try:
            second = threading.Thread(target=second_sync)
            second.start()
            for thread in (first, second):
                thread.join(timeout=120)  # two syncs of 150 users take about a second together
        finally:
            logger.remove(sink)
    assert second_is_waiting.is_set(), "the second sync never waited for the lock"

    assert sorted(o.status for o in outcomes) == ["succeeded", "succeeded"]
    changes = query(db_path, "SELECT kind, user_id FROM changes ORDER BY id")
    assert changes == [
        {"kind": "status_changed", "user_id": "user-007"},
        {"kind": "membership_removed", "user_id": "user-008"},
        {"kind": "user_removed", "user_id": "user-008"},
    ]
    runs = query(db_path, "SELECT started_at, finished_at FROM sync_runs ORDER BY id")
    assert runs[2]["started_at"] >= runs[1]["finished_at"]  # the second began after the first


def test_the_providers_of_one_sync_fetch_at_the_same_time(db_path):
    """Scalr's account-users answer is held until PlanetScale has been asked for something: with
    the providers synced one after the other that could never happen, and the hold would time
    out."""
    planetscale_asked = threading.Event()
    with WatchedScalr() as scalr_sim, WatchedPlanetScale() as ps_sim:
        _add_users(scalr_sim.state, 5)

        def hold_scalr(request):
            if request.path.endswith("/account-users"):
                planetscale_asked.wait(timeout=60)  # a bound only; it is set within ms

        scalr_sim.before_answer = hold_scalr
        ps_sim.before_answer = lambda request: planetscale_asked.set()
        settings = settings_for(db_path, scalr=scalr_sim, planetscale=ps_sim)
        results = sync_all(settings, ["scalr", "planetscale"])

    assert planetscale_asked.is_set()
    assert [(name, outcome.status) for name, outcome in results] == [
        ("scalr", "succeeded"),
        ("planetscale", "succeeded"),
    ]
    runs = query(db_path, "SELECT provider, status FROM sync_runs ORDER BY id")
    assert sorted(r["provider"] for r in runs) == ["planetscale", "scalr"]
    assert {r["status"] for r in runs} == {"succeeded"}
