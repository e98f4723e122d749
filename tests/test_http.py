"""The shared HTTP layer (``daemon/http.py``, ``daemon/paging.py``) over real HTTP.

Everything a misbehaving provider can do must end in a bounded, honest outcome
(``docs/sync-rules.md``, "Failures" and "Paging"): retryable answers (429/502/503/504, dropped
connections) are retried with ``Retry-After`` honoured and every attempt counted in
``sync_runs.requests``; permanent errors are not retried; a silent or trickling server cannot
hang the daemon past its deadline; malformed bodies and paging that does not advance fail the run
instead of being read as "everyone else was removed"; and credentials never leave the configured
origin, whatever a body or a redirect names. The simulators are real HTTP servers on 127.0.0.1
with injected faults; only the pure helpers (``parse_retry_after``, ``RateLimiter``) are
unit-tested with injected time.

Most tests sync with ``TEST_POLICY`` (millisecond back-off, patient timeouts); the ones about
timeouts and deadlines use ``FAST_POLICY``, whose 1 s read timeout and 4 s request deadline stand
for production's 20 s and 50 s.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from daemon import errors, paging
from daemon.config import load_settings
from daemon.http import HttpPolicy, RateLimiter, parse_retry_after
from daemon.providers import planetscale, scalr
from daemon.simulate.planetscale import wire as ps_wire
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSTeam, PSUser
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrServiceAccount, ScalrState, ScalrTeam, ScalrUser
from daemon.sync import sync_provider
from store import schema
from store.staging import Staging
from tests.helpers import (
    FAST_POLICY,
    TEST_POLICY,
    WatchedPlanetScale,
    WatchedScalr,
    free_port,
    planetscale_env,
    query,
    run_row,
    settings_for,
    snapshot_tables,
    sync,
)

ACCOUNT_USERS = r"/api/iacp/v3/account-users$"
PS_ORGS = r"^/v1/organizations$"
PS_MEMBERS = r"^/v1/organizations/acme/members$"


# -- worlds --------------------------------------------------------------------------------------


#: Requests of a clean sync of ``small_scalr_state``: accounts, account users, service accounts,
#: teams, roles, access policies and the one service account's tokens.
SCALR_CLEAN_SYNC = 7


def small_scalr_state() -> ScalrState:
    """Three users, one service account, one team: a clean sync is exactly four requests."""
    state = ScalrState()
    state.teams["team-aaaaaaaaaaaaaaaa1"] = ScalrTeam("team-aaaaaaaaaaaaaaaa1", "Platform")
    for n in range(3):
        ident = f"user-aaaaaaaaaaaaaaa{n:02d}"
        state.users[ident] = ScalrUser(
            ident,
            f"u{n}@acme.example",
            f"User {n}",
            teams={"team-aaaaaaaaaaaaaaaa1"} if n == 0 else set(),
        )
    state.service_accounts["sa-aaaaaaaaaaaaaaaaa1"] = ScalrServiceAccount(
        "sa-aaaaaaaaaaaaaaaaa1", "ci", "ci@acme.example"
    )
    return state


def small_ps_state(teams: int = 1, members: int = 3) -> PlanetScaleState:
    """One organisation ``acme``; a clean sync is 3 + ``teams`` requests."""
    state = PlanetScaleState()
    org = PSOrganization("org000000001", "acme")
    for n in range(members):
        ident = f"psuser{n:06d}"
        state.users[ident] = PSUser(ident, f"p{n}@acme.example", f"Person {n}")
        org.members[ident] = "admin" if n == 0 else "member"
    member_ids = sorted(org.members)
    for t in range(teams):
        ident = f"team{t:08d}"
        org.teams[ident] = PSTeam(
            ident, f"Team {t}", f"team-{t}", members={member_ids[t % len(member_ids)]}
        )
    state.organizations[org.id] = org
    return state


@pytest.fixture
def scalr_world():
    with ScalrSimulator(small_scalr_state()) as sim:
        yield sim


@pytest.fixture
def ps_world():
    with PlanetScaleSimulator(small_ps_state()) as sim:
        yield sim


def hits(sim, pattern: str) -> int:
    return sum(1 for r in sim.requests if re.search(pattern, r.path))


def assert_failed_run(db_path, outcome, *needles: str) -> dict:
    row = run_row(db_path, outcome.run_id)
    assert outcome.status == "failed"
    assert row["status"] == "failed"
    assert row["changes"] == 0
    assert row["finished_at"] is not None
    assert row["error"] == outcome.error
    assert "\n" not in row["error"]
    for needle in needles:
        assert needle in row["error"], row["error"]
    return row


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_scalr_retryable_status_is_retried_and_every_attempt_counted(db_path, scalr_world, status):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=status, times=2)
    outcome = sync(db_path, scalr=scalr_world)
    assert outcome.status == "succeeded", outcome.error
    assert hits(scalr_world, ACCOUNT_USERS) == 3
    assert len(scalr_world.requests) == SCALR_CLEAN_SYNC + 2  # 2 retries
    assert run_row(db_path, outcome.run_id)["requests"] == SCALR_CLEAN_SYNC + 2
    assert outcome.requests == SCALR_CLEAN_SYNC + 2
    users = query(db_path, "SELECT id, account_type FROM users ORDER BY id")
    assert [u["id"] for u in users] == [
        "sa-aaaaaaaaaaaaaaaaa1",
        "user-aaaaaaaaaaaaaaa00",
        "user-aaaaaaaaaaaaaaa01",
        "user-aaaaaaaaaaaaaaa02",
    ]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_planetscale_retryable_status_is_retried_and_every_attempt_counted(
    db_path, ps_world, status
):
    ps_world.add_fault(path=PS_ORGS, status=status, times=2)
    outcome = sync(db_path, planetscale=ps_world)
    assert outcome.status == "succeeded", outcome.error
    assert hits(ps_world, PS_ORGS) == 3
    assert len(ps_world.requests) == 6  # orgs, members, teams, 1 team's members + 2
    assert run_row(db_path, outcome.run_id)["requests"] == 6
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 3


@pytest.mark.parametrize(
    "status, needle", [(500, "500"), (404, "404"), (401, "401"), (403, "403"), (400, "400")]
)
def test_non_retryable_status_fails_the_run_after_one_request(db_path, scalr_world, status, needle):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=status)
    outcome = sync(db_path, scalr=scalr_world)
    row = assert_failed_run(db_path, outcome, "Scalr", needle, "account-users")
    assert hits(scalr_world, ACCOUNT_USERS) == 1
    # accounts and the one refused request, plus those of the other listings that were already
    # on their way when it was refused (the listings are read together)
    assert 2 <= row["requests"] == len(scalr_world.requests) <= SCALR_CLEAN_SYNC
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 0


def test_planetscale_404_on_a_scope_is_not_retried_and_makes_the_run_partial(db_path, ps_world):
    ps_world.add_fault(path=PS_MEMBERS, status=404)
    outcome = sync(db_path, planetscale=ps_world)
    assert outcome.status == "partial"
    assert hits(ps_world, PS_MEMBERS) == 1
    assert run_row(db_path, outcome.run_id)["requests"] == 4
    assert "404" in outcome.error and "members" in outcome.error


def test_retry_after_seconds_is_honoured(db_path):
    with WatchedScalr(small_scalr_state()) as sim:
        sim.add_fault(path=ACCOUNT_USERS, status=503, times=1, headers={"Retry-After": "1"})
        outcome = sync(db_path, scalr=sim)
    assert outcome.status == "succeeded", outcome.error
    first, retry = (a.monotonic for a in sim.arrived("/account-users"))
    # The 1 s asked for was waited out, not TEST_POLICY's own back-off (at most 0.05 s). The
    # upper bound only catches a wait of another order (the header read as minutes, say); its
    # 3 s above the second asked for are room for a loaded machine.
    assert 1.0 <= retry - first < 4.0
    assert hits(sim, ACCOUNT_USERS) == 2


def test_retry_after_on_429_is_honoured(db_path):
    with WatchedPlanetScale(small_ps_state()) as sim:
        sim.add_fault(path=PS_ORGS, status=429, times=1, headers={"Retry-After": "1"})
        outcome = sync(db_path, planetscale=sim)
    assert outcome.status == "succeeded", outcome.error
    first, retry = (a.monotonic for a in sim.arrived("/v1/organizations"))
    assert retry - first >= 1.0  # a lower bound: a loaded machine only makes the gap longer
    assert run_row(db_path, outcome.run_id)["requests"] == 5


def test_retry_after_http_date_is_honoured(db_path):
    when = datetime.now(UTC) + timedelta(seconds=3)
    header = email.utils.format_datetime(when, usegmt=True)  # whole seconds: 2 to 3 s from now
    named = email.utils.parsedate_to_datetime(header).timestamp()
    with WatchedScalr(small_scalr_state()) as sim:
        sim.add_fault(path=ACCOUNT_USERS, status=503, times=1, headers={"Retry-After": header})
        outcome = sync(db_path, scalr=sim)
    assert outcome.status == "succeeded", outcome.error
    first, retry = sim.arrived("/account-users")
    # The retry came no earlier than the instant the header names (0.1 s of slack for the two
    # clocks involved), however late the first try was on a loaded machine; and it came at that
    # instant, not an interval later: 3 s of room above it.
    assert named - 0.1 <= retry.wall < named + 3.0
    assert hits(sim, ACCOUNT_USERS) == 2


def test_retry_after_beyond_the_deadline_fails_at_once_instead_of_sleeping(db_path):
    with WatchedScalr(small_scalr_state()) as sim:
        sim.add_fault(path=ACCOUNT_USERS, status=503, headers={"Retry-After": "600"})
        outcome = sync(db_path, scalr=sim, policy=FAST_POLICY)
        ended = time.monotonic()
    assert_failed_run(db_path, outcome, "Scalr", "503")
    (first,) = sim.arrived("/account-users")
    # At once: within 2 s of the refused request, half of the 4 s deadline a client that slept
    # "as long as it may" would wait out; answering and recording the failure takes milliseconds.
    assert ended - first.monotonic < FAST_POLICY.request_deadline / 2


@pytest.mark.parametrize("value, seconds", [("5", 5.0), (" 120 ", 120.0), ("0", 0.0)])
def test_parse_retry_after_delta_seconds(value, seconds):
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date():
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:02:00 GMT", now=now) == 120.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:59:00 GMT", now=now) == 0.0  # in the past


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5s", "Someday, 99 Foo 2026"])
def test_parse_retry_after_unusable_values_give_none(value):
    assert parse_retry_after(value) is None


# -- bounded attempts ----------------------------------------------------------------------------


def test_permanent_503_fails_after_max_attempts(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=503)
    outcome = sync(db_path, scalr=scalr_world)
    row = assert_failed_run(db_path, outcome, "Scalr", "503")
    assert hits(scalr_world, ACCOUNT_USERS) == TEST_POLICY.max_attempts
    assert row["requests"] == len(scalr_world.requests)  # + accounts, service accounts, teams


def test_permanent_502_on_planetscale_organizations_fails_after_max_attempts(db_path, ps_world):
    ps_world.add_fault(path=PS_ORGS, status=502)
    outcome = sync(db_path, planetscale=ps_world)
    row = assert_failed_run(db_path, outcome, "PlanetScale", "502")
    assert hits(ps_world, PS_ORGS) == TEST_POLICY.max_attempts
    assert row["requests"] == TEST_POLICY.max_attempts


def test_connection_refused_is_retried_then_fails_with_one_line(db_path):
    port = free_port()
    settings = settings_for(
        db_path,
        SCALR_API_TOKEN="tok",
        SCALR_ACCOUNT="acme",
        SCALR_BASE_URL=f"http://127.0.0.1:{port}",
    )
    started = time.monotonic()
    outcome = sync_provider(settings, "scalr", policy=FAST_POLICY)
    # A refused connection is refused at once and the back-off between attempts is at most
    # 0.05 s, so the whole sync ends well inside one request deadline (4 s), also when loaded.
    assert time.monotonic() - started < FAST_POLICY.request_deadline
    row = assert_failed_run(db_path, outcome, "Scalr", "could not be reached", f"127.0.0.1:{port}")
    assert row["requests"] == FAST_POLICY.max_attempts


@pytest.mark.timeout(60)
def test_server_that_stops_answering_fails_within_the_deadline(db_path):
    with WatchedScalr(small_scalr_state()) as sim:
        sim.add_fault(path=ACCOUNT_USERS, status=200, delay=8.0)  # > read_timeout (1 s)
        outcome = sync(db_path, scalr=sim, policy=FAST_POLICY)
        ended = time.monotonic()
    first = sim.arrived("/account-users")[0]
    # The request's deadline (4 s here, 50 s in production) runs from its first attempt; the
    # 1.5 s above it are room for recording the failure on a loaded machine, far below the 8 s
    # the server would have kept the request.
    assert ended - first.monotonic < FAST_POLICY.request_deadline + 1.5
    assert_failed_run(db_path, outcome, "Scalr", "account-users")
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 0


def test_production_policy_bounds_a_silent_provider_within_a_minute():
    policy = HttpPolicy()
    assert policy.request_deadline <= 60
    assert policy.read_timeout < policy.request_deadline
    assert policy.connect_timeout < policy.request_deadline
    assert 1 < policy.max_attempts <= 10


class TricklingServer:
    """Answers every request with headers and then one byte every 0.3 s: always "answering",
    never finishing. Gives up after ``limit`` seconds so a hung client cannot hang the suite."""

    def __init__(self, limit: float = 10.0):
        self.limit = limit
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.first_request_at: float | None = None  # time.monotonic() of the first connection
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            if self.first_request_at is None:
                self.first_request_at = time.monotonic()
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        started = time.monotonic()
        try:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000\r\n\r\n{"
            )
            while not self.stop.is_set() and time.monotonic() - started < self.limit:
                conn.sendall(b" ")
                time.sleep(0.3)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.mark.timeout(60)
def test_trickling_server_cannot_hold_a_request_past_its_deadline(db_path):
    """A provider (or proxy) that sends a byte now and then never trips a per-read timeout; the
    per-request deadline must still end the request, or the daemon hangs on it."""
    server = TricklingServer(limit=10.0)
    try:
        settings = settings_for(
            db_path, SCALR_API_TOKEN="tok", SCALR_ACCOUNT="acme", SCALR_BASE_URL=server.url
        )
        outcome = sync_provider(settings, "scalr", policy=FAST_POLICY)
        ended = time.monotonic()
    finally:
        server.close()
    # As above: the 4 s deadline from the first attempt, and 1.5 s of room for a loaded machine,
    # far below the 10 s the server would go on trickling.
    assert server.first_request_at is not None
    elapsed = ended - server.first_request_at
    assert elapsed < FAST_POLICY.request_deadline + 1.5, f"took {elapsed:.1f}s"
    assert_failed_run(db_path, outcome, "Scalr")


def test_dropped_connection_is_retried(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, drop=True, times=1)
    outcome = sync(db_path, scalr=scalr_world)
    assert outcome.status == "succeeded", outcome.error
    assert hits(scalr_world, ACCOUNT_USERS) == 2
    assert run_row(db_path, outcome.run_id)["requests"] == SCALR_CLEAN_SYNC + 1


def test_connection_dropped_every_time_fails_after_max_attempts(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, drop=True)
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "account-users")
    assert hits(scalr_world, ACCOUNT_USERS) == TEST_POLICY.max_attempts


# -- bodies we cannot trust ----------------------------------------------------------------------


def test_malformed_json_fails_the_run_and_changes_nothing_else(db_path, scalr_world):
    assert sync(db_path, scalr=scalr_world).status == "succeeded"
    before = snapshot_tables(db_path)
    with scalr_world.state.lock:  # a change that must NOT be recorded
        del scalr_world.state.users["user-aaaaaaaaaaaaaaa02"]
    scalr_world.add_fault(path=ACCOUNT_USERS, malformed=True)
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "not JSON", "account-users")
    assert snapshot_tables(db_path) == before
    assert [r["status"] for r in query(db_path, "SELECT status FROM sync_runs ORDER BY id")] == [
        "succeeded",
        "failed",
    ]


@pytest.mark.parametrize(
    "broken",
    [lambda user: user.pop("attributes"), lambda user: user["relationships"].pop("teams")],
    ids=["no attributes", "no team links"],
)
def test_an_account_user_missing_what_it_must_say_fails_the_run_instead_of_a_false_change(
    db_path, scalr_world, broken
):
    """Read as "no status" or "no teams", it would record a disable or a removal that never
    happened; so the page is refused and the history stays as it was."""
    assert sync(db_path, scalr=scalr_world).status == "succeeded"
    before = snapshot_tables(db_path)
    page = httpx.get(
        f"{scalr_world.url}/api/iacp/v3/account-users",
        params={
            "filter[account]": scalr_world.state.account_id,
            "include": "user,teams",
            "page[size]": 100,
        },
        headers={"Authorization": f"Bearer {scalr_world.state.token}"},
    ).json()
    broken(page["data"][0])
    scalr_world.add_fault(path=ACCOUNT_USERS, status=200, body=json.dumps(page))
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "account-users")
    assert snapshot_tables(db_path) == before


def test_json_that_is_not_an_object_fails_the_run(db_path, ps_world):
    ps_world.add_fault(path=PS_ORGS, status=200, body="[1, 2, 3]")
    outcome = sync(db_path, planetscale=ps_world)
    assert_failed_run(db_path, outcome, "PlanetScale", "not an object")


def test_listing_without_a_data_list_fails_the_run(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=200, body='{"data": {"id": "x"}}')
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "data")


# -- pagination guards ---------------------------------------------------------------------------


def scalr_users_page(user_ids, *, page, next_page, total_pages, total_count) -> str:
    """A JSON:API account-users page (with its included users) as Scalr would send it."""
    data, included = [], []
    for uid in user_ids:
        data.append(
            {
                "type": "account-users",
                "id": f"au-{uid}",
                "attributes": {"status": "Active", "last-login-at": None},
                "relationships": {
                    "user": {"data": {"type": "users", "id": uid}},
                    "teams": {"data": []},
                },
            }
        )
        included.append(
            {
                "type": "users",
                "id": uid,
                "attributes": {
                    "email": f"{uid}@acme.example",
                    "full-name": uid,
                    "created-at": "2024-01-01T00:00:00Z",
                },
            }
        )
    return json.dumps(
        {
            "data": data,
            "included": included,
            "meta": {
                "pagination": {
                    "current-page": page,
                    "page-size": 100,
                    "prev-page": page - 1 if page > 1 else None,
                    "next-page": next_page,
                    "total-pages": total_pages,
                    "total-count": total_count,
                }
            },
        }
    )


def serve_users_page(sim, user_ids, *, page, next_page, total_pages, total_count) -> None:
    """Have ``sim`` answer that page of the account-users listing with the page given."""
    body = scalr_users_page(
        user_ids, page=page, next_page=next_page, total_pages=total_pages, total_count=total_count
    )
    sim.add_fault(path=ACCOUNT_USERS, page=page, status=200, body=body)


@pytest.mark.parametrize(
    "user_ids, meta, needle",
    [
        (["user-p1"], dict(next_page=1, total_pages=3, total_count=3), "paging does not advance"),
        (["user-p1"], dict(next_page=2, total_pages=1, total_count=1), "paging does not advance"),
        ([], dict(next_page=2, total_pages=2, total_count=5), "empty"),
    ],
    ids=["next-page-does-not-advance", "next-page-beyond-total-pages", "empty-page-with-a-next"],
)
def test_scalr_first_page_whose_next_page_cannot_be_right_fails(
    db_path, scalr_world, user_ids, meta, needle
):
    serve_users_page(scalr_world, user_ids, page=1, **meta)
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", needle)
    assert hits(scalr_world, ACCOUNT_USERS) == 1


def test_scalr_next_page_pointing_back_fails(db_path, scalr_world):
    serve_users_page(scalr_world, ["user-p1"], page=1, next_page=2, total_pages=3, total_count=3)
    serve_users_page(scalr_world, ["user-p2"], page=2, next_page=1, total_pages=3, total_count=3)
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "paging does not advance")
    assert hits(scalr_world, ACCOUNT_USERS) == 3  # pages 2 and 3 asked for together, no more
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 0


def test_scalr_listing_that_ends_short_of_its_total_fails_instead_of_ending_silently(
    db_path, scalr_world
):
    assert sync(db_path, scalr=scalr_world).status == "succeeded"
    before = snapshot_tables(db_path)
    serve_users_page(
        scalr_world,
        ["user-aaaaaaaaaaaaaaa00"],
        page=1,
        next_page=None,
        total_pages=1,
        total_count=3,
    )
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "1 of 3")
    assert snapshot_tables(db_path) == before  # no one recorded as removed


def test_scalr_listing_that_names_someone_twice_fails_even_when_the_count_adds_up(
    db_path, scalr_world
):
    """Page 2 repeats page 1's user instead of serving the second one: 2 items, 1 distinct."""
    assert sync(db_path, scalr=scalr_world).status == "succeeded"
    before = snapshot_tables(db_path)
    for number, next_page in ((1, 2), (2, None)):
        serve_users_page(
            scalr_world,
            ["user-aaaaaaaaaaaaaaa00"],
            page=number,
            next_page=next_page,
            total_pages=2,
            total_count=2,
        )
    outcome = sync(db_path, scalr=scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "1 of 2 items seen")
    assert snapshot_tables(db_path) == before


def serve_first_ps_page(sim, path: str, **document) -> None:
    """Have ``sim`` answer page 1 of the PlanetScale listing at ``path`` with ``document``."""
    body = json.dumps({"type": "list", "current_page": 1, **document})
    sim.add_fault(path=path, page=1, status=200, body=body)


def test_planetscale_organizations_page_that_does_not_advance_fails(db_path, ps_world):
    serve_first_ps_page(
        ps_world,
        PS_ORGS,
        next_page=1,
        next_page_url=None,
        data=[{"id": "org000000001", "name": "acme"}],
    )
    outcome = sync(db_path, planetscale=ps_world)
    assert_failed_run(db_path, outcome, "PlanetScale", "paging does not advance")
    assert hits(ps_world, PS_ORGS) == 1


def test_planetscale_members_paging_fault_is_confined_to_its_scope(db_path, ps_world):
    assert sync(db_path, planetscale=ps_world).status == "succeeded"
    before = query(
        db_path, "SELECT * FROM memberships WHERE resource_type = 'organization' ORDER BY user_id"
    )
    serve_first_ps_page(ps_world, PS_MEMBERS, next_page=5, total_pages=2, total_count=150, data=[])
    outcome = sync(db_path, planetscale=ps_world)
    assert outcome.status == "partial"
    assert "paging does not advance" in outcome.error
    assert (
        query(
            db_path,
            "SELECT * FROM memberships WHERE resource_type = 'organization' ORDER BY user_id",
        )
        == before
    )
    assert query(db_path, "SELECT COUNT(*) AS n FROM changes")[0]["n"] == 0


def test_paging_stops_at_the_page_cap(db_path, scalr_world):
    """A listing that keeps advancing forever is cut off at the cap, as an error."""
    for number in (1, 2, 3):
        serve_users_page(
            scalr_world,
            [f"user-cap{number}"],
            page=number,
            next_page=number + 1,
            total_pages=None,
            total_count=None,
        )
    settings = settings_for(db_path, scalr=scalr_world)
    http = scalr.make_http(settings.providers["scalr"], TEST_POLICY)
    try:
        pages = paging.iterate_pages(
            http,
            "/api/iacp/v3/account-users",
            {"filter[account]": scalr_world.state.account_id},
            page_param="page[number]",
            read_page=scalr._read_page,
            key=lambda item: item["id"],
            max_pages=3,
        )
        seen = []
        with pytest.raises(errors.BadResponse, match="within 3 pages"):
            for page in pages:
                seen.append(page.items[0]["id"])
    finally:
        http.close()
    assert seen == ["au-user-cap1", "au-user-cap2", "au-user-cap3"]
    assert hits(scalr_world, ACCOUNT_USERS) == 3
    assert 100 <= paging.MAX_PAGES <= 100_000


# -- credentials stay on the configured origin ---------------------------------------------------


def test_planetscale_next_page_url_to_a_foreign_host_is_ignored(db_path):
    state = small_ps_state(teams=0, members=105)  # two pages of members at per_page=100
    with PlanetScaleSimulator(state, next_page_url_origin="http://203.0.113.9:9") as sim:
        outcome = sync(db_path, planetscale=sim)
        assert outcome.status == "succeeded", outcome.error
        member_pages = [r.param("page") for r in sim.requests if r.path.endswith("/members")]
        assert member_pages == ["1", "2"]
        assert run_row(db_path, outcome.run_id)["requests"] == len(sim.requests) == 4
    assert query(db_path, "SELECT COUNT(*) AS n FROM users WHERE removed_at IS NULL")[0]["n"] == 105


def test_redirect_to_another_origin_is_not_followed(db_path, scalr_world):
    with ScalrSimulator(scalr_world.state) as decoy:  # same API, another origin (port)
        scalr_world.add_fault(
            path=ACCOUNT_USERS,
            status=302,
            headers={
                "Location": f"{decoy.url}/api/iacp/v3/account-users?filter%5Baccount%5D="
                f"{scalr_world.state.account_id}"
            },
        )
        outcome = sync(db_path, scalr=scalr_world)
        assert decoy.requests == []  # the token never reached it
    assert_failed_run(db_path, outcome, "Scalr", "another origin")
    assert hits(scalr_world, ACCOUNT_USERS) == 1


def test_redirect_to_another_loopback_address_is_not_followed(db_path, scalr_world):
    target = f"http://127.0.0.2:{free_port()}/x"
    scalr_world.add_fault(path=ACCOUNT_USERS, status=302, headers={"Location": target})
    outcome = sync(db_path, scalr=scalr_world)
    row = assert_failed_run(db_path, outcome, "Scalr", "another origin")
    assert row["requests"] == len(scalr_world.requests) <= SCALR_CLEAN_SYNC  # + the others


def test_planetscale_redirect_to_another_origin_is_not_followed(db_path, ps_world):
    with PlanetScaleSimulator(ps_world.state) as decoy:
        ps_world.add_fault(
            path=PS_ORGS, status=301, headers={"Location": f"{decoy.url}/v1/organizations"}
        )
        outcome = sync(db_path, planetscale=ps_world)
        assert decoy.requests == []
    assert_failed_run(db_path, outcome, "PlanetScale", "another origin")


def test_redirect_within_the_configured_origin_is_followed(db_path, scalr_world):
    account = scalr_world.state.account_id
    scalr_world.add_fault(
        path=ACCOUNT_USERS,
        status=307,
        times=1,
        headers={
            "Location": f"/api/iacp/v3/account-users?filter%5Baccount%5D={account}"
            "&include=user%2Cteams&page%5Bsize%5D=100&page%5Bnumber%5D=1"
        },
    )
    outcome = sync(db_path, scalr=scalr_world)
    assert outcome.status == "succeeded", outcome.error
    assert hits(scalr_world, ACCOUNT_USERS) == 2
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 4


# -- rate limiting -------------------------------------------------------------------------------


class FakeTime:
    """A clock and a sleep that advance together; sleeps take at least a microsecond, as real
    ones do, so a limiter that asks for a vanishing wait still sees time pass."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        seconds = max(seconds, 1e-6)
        self.now += seconds
        self.slept += seconds


def most_in_any_window(stamps: list[float], window: float = 60.0) -> int:
    """The most stamps in any half-open window (t - window, t] — the simulator's definition."""
    worst, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamps[first] <= stamp - window:
            first += 1
        worst = max(worst, last - first + 1)
    return worst


@pytest.mark.parametrize("per_minute", [1, 30, 50, 60, 540, 600])
def test_rate_limiter_never_exceeds_its_budget_in_any_minute(per_minute):
    fake = FakeTime()
    limiter = RateLimiter(per_minute, clock=fake.clock, sleep=fake.sleep)
    stamps = []
    for _ in range(per_minute * 3 + 5):
        limiter.acquire()
        stamps.append(fake.now)
    assert most_in_any_window(stamps) <= per_minute
    # and it is not needlessly slow: the budget is actually used over the long run
    assert len(stamps) / ((stamps[-1] - stamps[0]) / 60.0) >= per_minute * 0.9


def test_rate_limiter_does_not_sleep_while_it_has_budget():
    fake = FakeTime()
    limiter = RateLimiter(60, clock=fake.clock, sleep=fake.sleep)
    limiter.acquire()
    assert fake.slept == 0.0


def test_planetscale_client_stays_under_the_simulator_rate_limit(db_path):
    """Simulator 60/min, client 50/min, ~66 requests: unthrottled, the client would be refused.

    To keep it quick, both sides run on the same clock sped up 20×: three real seconds are one
    simulated minute, and the test takes about 4 s. The client's real limiter (as make_http
    configures it from PLANETSCALE_REQUESTS_PER_MINUTE) is rebuilt on that clock; the traffic is
    real HTTP. The speed-up is what load can break: the 10 requests of margin in any window
    (60 allowed, 50 sent) are used up only if a request reaches the simulator about 0.6 real
    seconds later than one sent after it, several times any hold-up of a loaded machine.
    """
    speed = 20.0
    fast_clock = lambda: time.monotonic() * speed  # noqa: E731
    fast_sleep = lambda seconds: time.sleep(seconds / speed)  # noqa: E731
    with PlanetScaleSimulator(small_ps_state(teams=63, members=3), rate_limit_per_minute=60) as sim:
        sim.clock = fast_clock
        settings = load_settings(environ=planetscale_env(sim, per_minute=50), db_override=db_path)
        assert settings.providers["planetscale"].requests_per_minute == 50
        http = planetscale.make_http(settings.providers["planetscale"], TEST_POLICY)
        assert http.limiter is not None and http.limiter.rate == pytest.approx(50 / 60)
        http.limiter = RateLimiter(
            settings.providers["planetscale"].requests_per_minute,
            clock=fast_clock,
            sleep=fast_sleep,
        )
        try:
            staging = Staging(schema.connect(db_path))
            snapshot = planetscale.PROVIDER.fetch_snapshot(
                http, settings.providers["planetscale"], staging
            )
        finally:
            http.close()
        assert sim.rate_limited_count == 0
        assert http.requests == len(sim.requests) == 66
    assert snapshot.failures == []
    assert len([m for m in snapshot.memberships if m.resource_type == "team"]) == 63


@pytest.mark.timeout(60)
def test_planetscale_429_from_the_server_is_waited_out_and_the_sync_succeeds(db_path, monkeypatch):
    """Client budget far above the server's: the server's 429s and Retry-After are obeyed."""
    monkeypatch.setattr(ps_wire, "RATE_WINDOW_SECONDS", 2.0)  # a "minute" of 2 s
    # A fifth attempt: the two team-member lists may each be refused while the window fills.
    policy = dataclasses.replace(TEST_POLICY, max_attempts=5)
    with PlanetScaleSimulator(small_ps_state(teams=2, members=3), rate_limit_per_minute=3) as sim:
        started = time.monotonic()
        outcome = sync(db_path, planetscale=sim, policy=policy)  # client budget 6000/min
        elapsed = time.monotonic() - started
        limited = sim.rate_limited_count
    assert outcome.status == "succeeded", outcome.error
    assert limited >= 1
    # waited for Retry-After, not the 50 ms back-off (a lower bound: load only adds to it)
    assert elapsed >= 1.0
    assert run_row(db_path, outcome.run_id)["requests"] == 5 + limited
    assert (
        query(
            db_path,
            "SELECT COUNT(*) AS n FROM memberships WHERE resource_type = 'team' "
            "AND removed_at IS NULL",
        )[0]["n"]
        == 2
    )
