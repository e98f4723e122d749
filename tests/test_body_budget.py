"""Answers waiting for the decoder are bounded by bytes, not only by count.

The rules on their own (``BodyBudget``), then the HTTP layer over a real simulator: while the
decoder is busy, requests stop being sent once the answers already waiting fill the budget, and
every listing still completes with exactly its pages.
"""

from __future__ import annotations

import dataclasses
import random
import threading

from daemon import errors
from daemon.body_budget import REMEMBERED_FROM, BodyBudget
from daemon.providers import scalr
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState, populate_scalr
from tests.helpers import TEST_POLICY, query, sync

MB = 1 << 20
PAGES = "/api/iacp/v3/account-users"


def test_a_request_is_admitted_while_the_waiting_answers_leave_room_for_it():
    budget = BodyBudget(3 * MB)
    first = budget.try_admit(PAGES)
    assert first is not None and first.reserved == 0  # nothing known of this path yet
    budget.received(first, 2 * MB)

    second = budget.try_admit(PAGES)  # 2 MB waiting + 2 MB expected > 3 MB
    small = budget.try_admit("/api/iacp/v3/roles")  # nothing expected of it: it fits

    assert second is None
    assert small is not None
    budget.cancel(small)
    budget.decoded(2 * MB)
    assert budget.waiting == 0 and budget.reserved == 0
    again = budget.try_admit(PAGES)
    assert again is not None and again.reserved == 2 * MB  # expected from the last answer


def test_reservations_count_until_their_answers_arrive():
    budget = BodyBudget(5 * MB)
    budget.received(budget.try_admit(PAGES), 2 * MB)  # the path's pages are 2 MB
    budget.decoded(2 * MB)

    first, second = budget.try_admit(PAGES), budget.try_admit(PAGES)
    assert first and second and budget.reserved == 4 * MB
    assert budget.try_admit(PAGES) is None  # 4 reserved + 2 expected > 5
    budget.received(first, 1 * MB)  # smaller than guessed, and the path's new guess
    assert budget.waiting == 1 * MB and budget.reserved == 2 * MB
    third = budget.try_admit(PAGES)  # 1 waiting + 2 reserved + 1 expected <= 5
    assert third is not None and budget.reserved == 3 * MB
    for ticket in (second, third):
        budget.cancel(ticket)
    budget.decoded(1 * MB)
    assert budget.waiting == 0 and budget.reserved == 0


def test_an_answer_larger_than_the_budget_is_still_read_alone():
    budget = BodyBudget(1 * MB)
    budget.received(budget.try_admit(PAGES), 4 * MB)
    assert budget.try_admit(PAGES) is None
    budget.decoded(4 * MB)
    alone = budget.try_admit(PAGES)  # nothing waiting or reserved: admitted, whatever its size
    assert alone is not None and alone.reserved == 4 * MB
    assert budget.try_admit("/api/iacp/v3/teams") is None  # 4 MB reserved fills the budget


def test_small_answers_are_not_remembered_so_the_guesses_do_not_grow_with_the_listings():
    budget = BodyBudget(1 * MB)
    for n in range(100):
        path = f"/api/iacp/v3/service-accounts/sa-{n}/access-tokens"
        ticket = budget.try_admit(path)
        budget.received(ticket, REMEMBERED_FROM - 1)
        budget.decoded(REMEMBERED_FROM - 1)
    assert budget._expected == {}


def test_a_waiting_request_ends_with_stopped_when_the_sync_stops():
    budget = BodyBudget(1 * MB)
    budget.received(budget.try_admit(PAGES), 2 * MB)
    stop = threading.Event()
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            budget.admit(PAGES, stop, "Scalr")
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    stop.set()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], errors.Stopped)


def test_a_waiting_request_is_admitted_once_the_decoder_frees_room():
    budget = BodyBudget(3 * MB)
    budget.received(budget.try_admit(PAGES), 2 * MB)
    admitted = threading.Event()

    def wait() -> None:
        budget.admit(PAGES, threading.Event(), "Scalr")
        admitted.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert budget.try_admit(PAGES) is None  # the waiter cannot be admitted either
    budget.decoded(2 * MB)
    assert admitted.wait(timeout=10)
    waiter.join(timeout=10)


# -- the HTTP layer over a real simulator ------------------------------------------------------


def large_pages_world() -> ScalrState:
    """An account whose account-user pages are tens of KB each: each page includes the teams
    of its users, and each included team lists its hundreds of members."""
    state = ScalrState()
    populate_scalr(state, random.Random(11), users=1500, service_accounts=2, teams=3)
    return state


class Recorded(BodyBudget):
    """A budget that says when it first refused a request, and how much was waiting then."""

    def __init__(self, budget: int):
        super().__init__(budget)
        self.refused = threading.Event()
        self.waiting_when_refused: int | None = None
        self.largest = 0
        RECORDED.append(self)

    def received(self, ticket, size: int) -> None:
        self.largest = max(self.largest, size)
        super().received(ticket, size)

    def _try_admit(self, path: str):
        ticket = super()._try_admit(path)
        if ticket is None and not self.refused.is_set():
            self.waiting_when_refused = self._waiting
            self.refused.set()
        return ticket


RECORDED: list[Recorded] = []


def _sync_with_a_held_decoder(db_path, monkeypatch, budget: int):
    """Sync the large account while the decoder is held on its second account-user page until
    the budget refuses a request (or the test gives up waiting for it)."""
    RECORDED.clear()
    monkeypatch.setattr("daemon.http.BodyBudget", Recorded)
    release = threading.Event()
    read_page = scalr._read_page

    def held_read_page(document, path):
        if path.endswith("/account-users") and not release.is_set():
            pagination = document.get("meta", {}).get("pagination", {})
            if pagination.get("current-page") == 2:
                RECORDED[0].refused.wait(timeout=HOLD)
                release.set()
        return read_page(document, path)

    monkeypatch.setattr(scalr, "_read_page", held_read_page)
    with ScalrSimulator(large_pages_world()) as sim:
        policy = dataclasses.replace(TEST_POLICY, concurrency=8, answer_budget=budget)
        outcome = sync(db_path, scalr=sim, policy=policy)
        requests = len(sim.requests)
    (recorded,) = RECORDED
    return outcome, requests, recorded


HOLD = 10.0  # how long the held decoder waits for the refusal, at most


def test_while_the_decoder_is_busy_requests_stop_once_the_waiting_answers_fill_the_budget(
    tmp_path, monkeypatch
):
    tight, tight_requests, recorded = _sync_with_a_held_decoder(
        tmp_path / "tight.db", monkeypatch, 64 << 10
    )
    assert recorded.refused.is_set(), "the budget never held a request back"
    assert recorded.waiting_when_refused <= recorded.budget + recorded.largest
    assert recorded.largest > REMEMBERED_FROM  # the pages really were large
    assert tight.status == "succeeded", tight.error
    assert recorded.waiting == 0 and recorded.reserved == 0  # every answer was decoded

    with ScalrSimulator(large_pages_world()) as sim:  # the same account, no budget to speak of
        roomy = sync(
            tmp_path / "roomy.db",
            scalr=sim,
            policy=dataclasses.replace(TEST_POLICY, answer_budget=1 << 40),
        )
        roomy_requests = len(sim.requests)
    assert roomy.status == "succeeded", roomy.error
    assert tight_requests == roomy_requests == tight.requests  # the minimum, either way
    # the same world built twice (its stamps are relative to now): compare who is in what
    for sql in (
        "SELECT id, email, account_type, status FROM users ORDER BY id",
        "SELECT resource_type, resource_id, user_id FROM memberships ORDER BY 1, 2, 3",
        "SELECT id, name FROM teams ORDER BY id",
    ):
        assert query(tmp_path / "tight.db", sql) == query(tmp_path / "roomy.db", sql)
