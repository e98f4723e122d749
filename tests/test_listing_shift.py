"""A listing that changes while it is paged must not turn a skipped item into a removal.

Offset paging over a list that loses an item between two page reads shifts every later item one
place forward, so one item is never served. Recording that item as removed would be a change
that did not happen; the sync must fail instead and let the next run read a stable listing.
"""

import threading
import time

from daemon.simulate.scalr import ScalrUser
from daemon.sync import sync_provider
from tests.conftest import query, settings_for, snapshot_tables


def test_a_user_leaving_between_two_pages_fails_the_run_instead_of_skipping_someone(
    scalr_sim, db_path
):
    state = scalr_sim.state
    for n in range(150):
        state.users[f"user-{n:03d}"] = ScalrUser(id=f"user-{n:03d}", email=f"u{n}@example.com")
    settings = settings_for(db_path, scalr=scalr_sim)
    assert sync_provider(settings, "scalr").status == "succeeded"
    before = snapshot_tables(db_path)
    scalr_sim.clear_requests()
    # page 2 is held for a moment; meanwhile someone listed on page 1 leaves
    scalr_sim.add_fault(path=r"/account-users$", page=2, status=200, delay=1.5, times=1)
    first_page_user = None

    def leave_during_page_two():
        nonlocal first_page_user
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(
                r.path.endswith("/account-users") and r.param("page[number]") == "2"
                for r in list(scalr_sim.requests)
            ):
                with state.lock:
                    first_page_user = sorted(state.users, key=scalr_sim.account_user_id)[0]
                    del state.users[first_page_user]
                return
            time.sleep(0.01)

    mover = threading.Thread(target=leave_during_page_two)
    mover.start()
    outcome = sync_provider(settings, "scalr")
    mover.join()

    assert first_page_user is not None
    page_two = [
        r
        for r in scalr_sim.requests
        if r.path.endswith("/account-users") and r.param("page[number]") == "2"
    ]
    assert len(page_two) == 1  # answered once, late, not retried
    assert outcome.status == "failed"
    assert "changed while it was read" in outcome.error
    assert snapshot_tables(db_path) == before  # in particular no false user_removed
    # the next run reads a stable listing and records exactly the one real leaver
    assert sync_provider(settings, "scalr").status == "succeeded"
    removed = query(db_path, "SELECT user_id FROM changes WHERE kind = 'user_removed'")
    assert removed == [{"user_id": first_page_user}]
