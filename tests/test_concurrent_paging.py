"""Pages and listings fetched at the same time, still proved whole, never one request too many.

A listing whose first page states its page count has its other pages fetched concurrently, and a
provider's independent listings are read together; the HTTP layer bounds the requests in flight.
These tests hold a request on the simulator until another one has arrived, so "in flight at the
same time" is a state the test waits for, not a timing it hopes for.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time

from daemon.providers import scalr
from daemon.simulate.scalr.world import ScalrState, populate_scalr
from tests.helpers import (
    ACME,
    BULK,
    EVERYONE,
    TEST_POLICY,
    WatchedPlanetScale,
    WatchedScalr,
    org_members,
    query,
    settings_for,
    sync,
    team_members,
    wait_for,
    world,
)
from tests.test_http import ACCOUNT_USERS, assert_failed_run, hits, serve_users_page

API = "/api/iacp/v3"
HOLD = 10.0  # how long a held request waits for the one it is waiting on, at most


def scalr_world(users: int) -> ScalrState:
    """An account of ``users`` people (``users // 100 + 1`` account-user pages)."""
    state = ScalrState()
    populate_scalr(state, random.Random(7), users=users, service_accounts=3, teams=5)
    return state


class HoldUntilArrived:
    """A ``before_answer`` hook for two requests, each named by a regular expression over
    ``path?page``: whichever arrives first is held until the other one arrives.

    ``overlapped`` says whether the other arrived while the first was still unanswered, which
    is only possible when the two were in flight at the same time.
    """

    def __init__(self, sim, one: str, other: str):
        self.sim, self.patterns = sim, (one, other)
        self.arrivals = [threading.Event(), threading.Event()]
        self.first: int | None = None
        self.lock = threading.Lock()
        self.overlapped: bool | None = None

    def __call__(self, request) -> None:
        name = f"{request.path}?{request.query.get(self.sim.page_param, [''])[0]}"
        for index, pattern in enumerate(self.patterns):
            if re.search(pattern, name):
                with self.lock:
                    is_first = self.first is None
                    if is_first:
                        self.first = index
                self.arrivals[index].set()
                if is_first:
                    self.overlapped = self.arrivals[1 - index].wait(timeout=HOLD)
                return


def users_in(db_path) -> int:
    return query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"]


# -- one listing's pages ---------------------------------------------------------------------


def test_the_pages_after_the_first_are_in_flight_together(db_path):
    # Page 2 is held until page 3 arrives: a client reading one page at a time would wait out
    # the hold (10 s) and the peak would stay at one request per listing.
    with WatchedScalr(scalr_world(950)) as sim:
        sim.before_answer = hold = HoldUntilArrived(sim, r"users\?2$", r"users\?3$")
        outcome = sync(db_path, scalr=sim)
        pages = [a.page for a in sim.arrived("/account-users")]

    assert outcome.status == "succeeded", outcome.error
    assert hold.overlapped is True  # page 3 was asked for before page 2 was answered
    assert sorted(pages, key=int) == [str(n) for n in range(1, 11)]  # each page once, no more
    assert users_in(db_path) == 950 + 3


def test_requests_in_flight_never_exceed_the_concurrency(db_path):
    policy = dataclasses.replace(TEST_POLICY, concurrency=3)
    with WatchedPlanetScale(world()) as sim:
        # Hold one team's members until another team's arrive, so two are surely in flight.
        sim.before_answer = hold = HoldUntilArrived(sim, r"squad-0/members", r"squad-1/members")
        outcome = sync(db_path, planetscale=sim, policy=policy)

    assert outcome.status == "succeeded", outcome.error
    assert hold.overlapped is True
    assert 2 <= sim.peak_in_flight <= 3
    assert team_members(db_path, EVERYONE) == set(BULK)
    assert len(org_members(db_path, ACME)) == 234


def test_a_failed_page_stops_the_pages_not_yet_sent(db_path):
    with WatchedScalr(scalr_world(2950)) as sim:  # 30 pages of account users
        sim.add_fault(path=ACCOUNT_USERS, page=2, status=404)
        outcome = sync(db_path, scalr=sim)

    assert_failed_run(db_path, outcome, "Scalr", "404", "account-users")
    # page 1, then at most one window of pages 2..9; none of the 21 after it
    assert 2 <= hits(sim, ACCOUNT_USERS) <= 1 + TEST_POLICY.concurrency
    assert users_in(db_path) == 0


def test_the_stated_last_page_naming_another_fails_without_asking_for_it(db_path):
    state = scalr_world(5)
    with WatchedScalr(state) as sim:
        serve_users_page(sim, ["user-s1"], page=1, next_page=2, total_pages=2, total_count=None)
        serve_users_page(sim, ["user-s2"], page=2, next_page=3, total_pages=None, total_count=None)
        outcome = sync(db_path, scalr=sim)

    assert_failed_run(db_path, outcome, "Scalr", "paging does not advance")
    assert hits(sim, ACCOUNT_USERS) == 2


def test_a_page_that_skips_its_successor_fails(db_path):
    with WatchedScalr(scalr_world(5)) as sim:
        serve_users_page(sim, ["user-k1"], page=1, next_page=2, total_pages=3, total_count=3)
        serve_users_page(sim, ["user-k2"], page=2, next_page=4, total_pages=None, total_count=3)
        serve_users_page(sim, ["user-k3"], page=3, next_page=None, total_pages=3, total_count=3)
        outcome = sync(db_path, scalr=sim)

    assert_failed_run(db_path, outcome, "Scalr", "page 2 points to page 4, not 3")
    assert hits(sim, ACCOUNT_USERS) == 3


def test_a_page_count_that_moves_while_fetching_ahead_fails(db_path):
    with WatchedScalr(scalr_world(5)) as sim:
        serve_users_page(sim, ["user-m1"], page=1, next_page=2, total_pages=2, total_count=None)
        serve_users_page(sim, ["user-m2"], page=2, next_page=3, total_pages=3, total_count=None)
        outcome = sync(db_path, scalr=sim)

    assert_failed_run(db_path, outcome, "Scalr", "changed while it was read", "page count")
    assert hits(sim, ACCOUNT_USERS) == 2


def test_a_listing_that_ends_before_its_stated_last_page_fails(db_path):
    with WatchedScalr(scalr_world(5)) as sim:
        serve_users_page(sim, ["user-e1"], page=1, next_page=2, total_pages=3, total_count=None)
        serve_users_page(sim, ["user-e2"], page=2, next_page=None, total_pages=3, total_count=None)
        serve_users_page(sim, ["user-e3"], page=3, next_page=None, total_pages=3, total_count=None)
        outcome = sync(db_path, scalr=sim)

    assert_failed_run(db_path, outcome, "Scalr", "page 2 of 3 was the last")


# -- several listings at once ------------------------------------------------------------------


def test_scalr_reads_its_three_listings_at_the_same_time(db_path):
    # The users' first page is held until the teams listing arrives: read one after the other,
    # the teams would only be asked for once the users were done.
    with WatchedScalr(scalr_world(150)) as sim:
        sim.before_answer = hold = HoldUntilArrived(sim, r"account-users\?1$", r"/teams\?")
        outcome = sync(db_path, scalr=sim)

    assert outcome.status == "succeeded", outcome.error
    assert hold.overlapped is True  # the teams were asked for while the users' page was held
    assert users_in(db_path) == 150 + 3


def test_planetscale_reads_every_organisations_members_at_the_same_time(db_path):
    with WatchedPlanetScale(world()) as sim:
        sim.before_answer = hold = HoldUntilArrived(sim, r"acme/members\?1$", r"globex/members")
        outcome = sync(db_path, planetscale=sim)

    assert outcome.status == "succeeded", outcome.error
    assert hold.overlapped is True
    assert len(org_members(db_path, ACME)) == 234


def test_a_backoff_holds_no_slot(db_path):
    """With one slot, a request waiting out a Retry-After lets another one through meanwhile.

    The teams request is refused once (Retry-After: 1); once it has arrived, a second thread
    asks for the service accounts. The teams retry is held until the service accounts have
    arrived: had the backoff kept the only slot, they could not arrive before the retry.
    """
    policy = dataclasses.replace(TEST_POLICY, concurrency=1, backoff_cap=5.0)
    with WatchedScalr(scalr_world(5)) as sim:
        sim.add_fault(path=r"/teams$", status=503, times=1, headers={"Retry-After": "1"})
        others_arrived_first: list[bool] = []

        def on_the_retry(request) -> None:
            if request.path.endswith("/teams") and len(sim.arrived("/teams")) == 2:
                others_arrived_first.append(
                    polled(lambda: bool(sim.arrived("/service-accounts")), HOLD)
                )

        sim.before_answer = on_the_retry
        settings = settings_for(db_path, scalr=sim)
        with scalr.make_http(settings.providers["scalr"], policy) as http:
            account = {"filter[account]": sim.state.account_id}
            teams = threading.Thread(target=http.get_json, args=(f"{API}/teams", account))
            teams.start()
            wait_for(lambda: sim.arrived("/teams"), HOLD, "the first teams request")
            http.get_json(f"{API}/service-accounts", account)
            teams.join()

    assert others_arrived_first == [True]


def polled(predicate, timeout: float) -> bool:
    """Whether ``predicate`` became true within ``timeout`` (checked every 10 ms)."""
    give_up = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.01)
    return True


def test_the_http_layer_counts_every_request_made_concurrently(db_path):
    with WatchedPlanetScale(world()) as sim:
        outcome = sync(db_path, planetscale=sim)
        seen = len(sim.requests)

    assert outcome.status == "succeeded", outcome.error
    assert query(db_path, "SELECT requests FROM sync_runs")[0]["requests"] == seen
