"""A listing that changes while it is paged must not turn a skipped item into a removal.

Offset paging over a list that loses an item between two page reads shifts every later item one
place forward, so one item is never served. Recording that item as removed would be a change
that did not happen; the sync must fail instead and let the next run read a stable listing
(``docs/sync-rules.md``, "Paging").
"""

from daemon.simulate.scalr.world import ScalrUser
from tests.helpers import WatchedScalr, query, snapshot_tables, sync


def _is_page_two(request) -> bool:
    return request.path.endswith("/account-users") and request.param("page[number]") == "2"


def test_a_user_leaving_between_two_pages_fails_the_run_instead_of_skipping_someone(db_path):
    with WatchedScalr() as sim:
        state = sim.state
        for n in range(150):
            state.users[f"user-{n:03d}"] = ScalrUser(id=f"user-{n:03d}", email=f"u{n}@example.com")
        assert sync(db_path, scalr=sim).status == "succeeded"
        before = snapshot_tables(db_path)
        sim.clear_requests()
        left = []

        def leave_when_page_two_is_asked_for(request):
            # Someone listed on page 1 leaves after page 1 was served and before page 2 is: on
            # the server's thread, at that exact point of the sync, instead of during a delay.
            if _is_page_two(request) and not left:
                with state.lock:
                    left.append(sorted(state.users, key=sim.account_user_id)[0])
                    del state.users[left[0]]

        sim.before_answer = leave_when_page_two_is_asked_for
        outcome = sync(db_path, scalr=sim)
        sim.before_answer = None

        assert len(left) == 1
        page_two = [r for r in sim.requests if _is_page_two(r)]
        assert len(page_two) == 1  # answered once, not retried
        assert outcome.status == "failed"
        assert "changed while it was read" in outcome.error
        assert snapshot_tables(db_path) == before  # in particular no false user_removed
        # the next run reads a stable listing and records exactly the one real leaver
        assert sync(db_path, scalr=sim).status == "succeeded"
    removed = query(db_path, "SELECT user_id FROM changes WHERE kind = 'user_removed'")
    assert removed == [{"user_id": left[0]}]
