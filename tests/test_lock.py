"""One sync per database at a time: a second sync waits for the first, or gives up clearly."""

import threading

import pytest
from loguru import logger

from daemon.simulate.scalr.world import ScalrUser
from store.lock import SyncLockBusy, sync_lock
from tests.helpers import WatchedScalr, query, sync, wait_for


def _add_users(state, count):
    for n in range(count):
        state.users[f"user-{n:03d}"] = ScalrUser(id=f"user-{n:03d}", email=f"u{n}@example.com")


def test_a_second_sync_gives_up_with_a_clear_message_when_the_lock_is_held(scalr_sim, db_path):
    _add_users(scalr_sim.state, 3)
    with sync_lock(db_path):
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
