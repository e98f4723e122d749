"""One sync per database at a time: a second sync waits for the first, or gives up clearly."""

import threading

import pytest

from daemon.simulate.scalr import ScalrUser
from daemon.sync import sync_provider
from store.lock import SyncLockBusy, sync_lock
from tests.conftest import query, settings_for


def _add_users(state, count):
    for n in range(count):
        state.users[f"user-{n:03d}"] = ScalrUser(id=f"user-{n:03d}", email=f"u{n}@example.com")


def test_a_second_sync_gives_up_with_a_clear_message_when_the_lock_is_held(scalr_sim, db_path):
    _add_users(scalr_sim.state, 3)
    settings = settings_for(db_path, scalr=scalr_sim)
    with sync_lock(db_path):
        with pytest.raises(SyncLockBusy) as caught:
            sync_provider(settings, "scalr", lock_wait=0.3)
    assert "another accesstrail sync" in str(caught.value)
    assert str(db_path) in str(caught.value)
    assert scalr_sim.requests == []  # it never started fetching
    assert not db_path.exists() or query(db_path, "SELECT * FROM sync_runs") == []


def test_concurrent_syncs_are_serialised_and_record_each_change_once(scalr_sim, db_path):
    _add_users(scalr_sim.state, 150)
    settings = settings_for(db_path, scalr=scalr_sim)
    sync_provider(settings, "scalr")  # baseline
    scalr_sim.state.users["user-007"].status = "Inactive"
    scalr_sim.state.users.pop("user-008")
    scalr_sim.add_fault(path=r"/account-users$", status=200, delay=0.3, times=1)  # widen overlap

    outcomes = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(sync_provider(settings, "scalr")))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(o.status for o in outcomes) == ["succeeded", "succeeded"]
    changes = query(db_path, "SELECT kind, user_id FROM changes ORDER BY id")
    assert changes == [
        {"kind": "status_changed", "user_id": "user-007"},
        {"kind": "membership_removed", "user_id": "user-008"},
        {"kind": "user_removed", "user_id": "user-008"},
    ]
    runs = query(db_path, "SELECT started_at, finished_at FROM sync_runs ORDER BY id")
    assert runs[2]["started_at"] >= runs[1]["finished_at"]  # the second began after the first
