"""The shared HTTP layer (``daemon/http.py``, ``daemon/paging.py``) over real HTTP (CONTRACT §4
rules 8 and 9).

Everything a misbehaving provider can do must end in a bounded, honest outcome: retryable answers
(429/502/503/504, dropped connections) are retried with ``Retry-After`` honoured and every attempt
counted in ``sync_runs.requests``; permanent errors are not retried; a silent or trickling server
cannot hang the daemon past its deadline; malformed bodies and paging that does not advance fail
the run instead of being read as "everyone else was removed"; and credentials never leave the
configured origin, whatever a body or a redirect names. The simulators are real HTTP servers on
127.0.0.1 with injected faults; only the pure helpers (``parse_retry_after``, ``RateLimiter``) are
unit-tested with injected time.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from daemon import errors, paging
from daemon.config import load_settings
from daemon.http import HttpPolicy, RateLimiter, parse_retry_after
from daemon.providers import planetscale, scalr
from daemon.simulate import planetscale as ps_sim_module
from daemon.simulate.planetscale import (
    PlanetScaleSimulator,
    PlanetScaleState,
    PSOrganization,
    PSTeam,
    PSUser,
)
from daemon.simulate.scalr import (
    ScalrServiceAccount,
    ScalrSimulator,
    ScalrState,
    ScalrTeam,
    ScalrUser,
)
from daemon.sync import sync_provider
from tests.conftest import FAST_POLICY, planetscale_env, query, settings_for, snapshot_tables

ACCOUNT_USERS = r"/api/iacp/v3/account-users$"
PS_ORGS = r"^/v1/organizations$"
PS_MEMBERS = r"^/v1/organizations/acme/members$"


# -- worlds --------------------------------------------------------------------------------------


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


def sync(db_path, provider, sim, policy: HttpPolicy = FAST_POLICY, **extra):
    settings = settings_for(db_path, **{provider: sim}, **extra)
    return sync_provider(settings, provider, policy=policy)


def run_row(db_path, run_id) -> dict:
    (row,) = query(db_path, "SELECT * FROM sync_runs WHERE id = ?", (run_id,))
    return row


def hits(sim, pattern: str) -> int:
    return sum(1 for r in sim.requests if re.search(pattern, r.path))


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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
    outcome = sync(db_path, "scalr", scalr_world)
    assert outcome.status == "succeeded", outcome.error
    assert hits(scalr_world, ACCOUNT_USERS) == 3
    assert len(scalr_world.requests) == 6  # 4 for a clean sync + 2 retries
    assert run_row(db_path, outcome.run_id)["requests"] == 6
    assert outcome.requests == 6
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
    outcome = sync(db_path, "planetscale", ps_world)
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
    outcome = sync(db_path, "scalr", scalr_world)
    row = assert_failed_run(db_path, outcome, "Scalr", needle, "account-users")
    assert hits(scalr_world, ACCOUNT_USERS) == 1
    assert row["requests"] == 2  # accounts + the one refused listing
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 0


def test_planetscale_404_on_a_scope_is_not_retried_and_makes_the_run_partial(db_path, ps_world):
    ps_world.add_fault(path=PS_MEMBERS, status=404)
    outcome = sync(db_path, "planetscale", ps_world)
    assert outcome.status == "partial"
    assert hits(ps_world, PS_MEMBERS) == 1
    assert run_row(db_path, outcome.run_id)["requests"] == 4
    assert "404" in outcome.error and "members" in outcome.error


def test_retry_after_seconds_is_honoured(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=503, times=1, headers={"Retry-After": "1"})
    started = time.monotonic()
    outcome = sync(db_path, "scalr", scalr_world)
    elapsed = time.monotonic() - started
    assert outcome.status == "succeeded", outcome.error
    assert elapsed >= 1.0  # FAST_POLICY's own backoff is ≤ 0.05 s
    assert elapsed < FAST_POLICY.request_deadline
    assert hits(scalr_world, ACCOUNT_USERS) == 2


def test_retry_after_on_429_is_honoured(db_path, ps_world):
    ps_world.add_fault(path=PS_ORGS, status=429, times=1, headers={"Retry-After": "1"})
    started = time.monotonic()
    outcome = sync(db_path, "planetscale", ps_world)
    assert outcome.status == "succeeded", outcome.error
    assert time.monotonic() - started >= 1.0
    assert run_row(db_path, outcome.run_id)["requests"] == 5


def test_retry_after_http_date_is_honoured(db_path, scalr_world):
    when = datetime.now(UTC) + timedelta(seconds=3)
    header = email.utils.format_datetime(when, usegmt=True)  # whole seconds: wait is 2..3 s
    scalr_world.add_fault(path=ACCOUNT_USERS, status=503, times=1, headers={"Retry-After": header})
    started = time.monotonic()
    outcome = sync(db_path, "scalr", scalr_world)
    elapsed = time.monotonic() - started
    assert outcome.status == "succeeded", outcome.error
    assert elapsed >= 1.5
    assert elapsed < FAST_POLICY.request_deadline
    assert hits(scalr_world, ACCOUNT_USERS) == 2


def test_retry_after_beyond_the_deadline_fails_at_once_instead_of_sleeping(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=503, headers={"Retry-After": "600"})
    started = time.monotonic()
    outcome = sync(db_path, "scalr", scalr_world)
    assert time.monotonic() - started < FAST_POLICY.request_deadline
    assert_failed_run(db_path, outcome, "Scalr", "503")


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
    outcome = sync(db_path, "scalr", scalr_world)
    row = assert_failed_run(db_path, outcome, "Scalr", "503")
    assert hits(scalr_world, ACCOUNT_USERS) == FAST_POLICY.max_attempts
    assert row["requests"] == 1 + FAST_POLICY.max_attempts


def test_permanent_502_on_planetscale_organizations_fails_after_max_attempts(db_path, ps_world):
    ps_world.add_fault(path=PS_ORGS, status=502)
    outcome = sync(db_path, "planetscale", ps_world)
    row = assert_failed_run(db_path, outcome, "PlanetScale", "502")
    assert hits(ps_world, PS_ORGS) == FAST_POLICY.max_attempts
    assert row["requests"] == FAST_POLICY.max_attempts


def test_connection_refused_is_retried_then_fails_with_one_line(db_path):
    port = closed_port()
    settings = settings_for(
        db_path,
        SCALR_API_TOKEN="tok",
        SCALR_ACCOUNT="acme",
        SCALR_BASE_URL=f"http://127.0.0.1:{port}",
    )
    started = time.monotonic()
    outcome = sync_provider(settings, "scalr", policy=FAST_POLICY)
    assert time.monotonic() - started < FAST_POLICY.request_deadline
    row = assert_failed_run(db_path, outcome, "Scalr", "could not be reached", f"127.0.0.1:{port}")
    assert row["requests"] == FAST_POLICY.max_attempts


@pytest.mark.timeout(60)
def test_server_that_stops_answering_fails_within_the_deadline(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=200, delay=8.0)  # > read_timeout (1 s)
    started = time.monotonic()
    outcome = sync(db_path, "scalr", scalr_world)
    elapsed = time.monotonic() - started
    assert elapsed < FAST_POLICY.request_deadline + 1.0
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
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
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
        started = time.monotonic()
        outcome = sync_provider(settings, "scalr", policy=FAST_POLICY)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert elapsed < FAST_POLICY.request_deadline + 1.5, f"took {elapsed:.1f}s"
    assert_failed_run(db_path, outcome, "Scalr")


def test_dropped_connection_is_retried(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, drop=True, times=1)
    outcome = sync(db_path, "scalr", scalr_world)
    assert outcome.status == "succeeded", outcome.error
    assert hits(scalr_world, ACCOUNT_USERS) == 2
    assert run_row(db_path, outcome.run_id)["requests"] == 5


def test_connection_dropped_every_time_fails_after_max_attempts(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, drop=True)
    outcome = sync(db_path, "scalr", scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "account-users")
    assert hits(scalr_world, ACCOUNT_USERS) == FAST_POLICY.max_attempts


# -- bodies we cannot trust ----------------------------------------------------------------------


def test_malformed_json_fails_the_run_and_changes_nothing_else(db_path, scalr_world):
    assert sync(db_path, "scalr", scalr_world).status == "succeeded"
    before = snapshot_tables(db_path)
    with scalr_world.state.lock:  # a change that must NOT be recorded
        del scalr_world.state.users["user-aaaaaaaaaaaaaaa02"]
    scalr_world.add_fault(path=ACCOUNT_USERS, malformed=True)
    outcome = sync(db_path, "scalr", scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "not JSON", "account-users")
    assert snapshot_tables(db_path) == before
    assert [r["status"] for r in query(db_path, "SELECT status FROM sync_runs ORDER BY id")] == [
        "succeeded",
        "failed",
    ]


def test_json_that_is_not_an_object_fails_the_run(db_path, ps_world):
    ps_world.add_fault(path=PS_ORGS, status=200, body="[1, 2, 3]")
    outcome = sync(db_path, "planetscale", ps_world)
    assert_failed_run(db_path, outcome, "PlanetScale", "not an object")


def test_listing_without_a_data_list_fails_the_run(db_path, scalr_world):
    scalr_world.add_fault(path=ACCOUNT_USERS, status=200, body='{"data": {"id": "x"}}')
    outcome = sync(db_path, "scalr", scalr_world)
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


def test_scalr_next_page_that_does_not_advance_fails(db_path, scalr_world):
    scalr_world.add_fault(
        path=ACCOUNT_USERS,
        page=1,
        status=200,
        body=scalr_users_page(["user-p1"], page=1, next_page=1, total_pages=3, total_count=3),
    )
    outcome = sync(db_path, "scalr", scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "paging does not advance")
    assert hits(scalr_world, ACCOUNT_USERS) == 1


def test_scalr_next_page_pointing_back_fails(db_path, scalr_world):
    scalr_world.add_fault(
        path=ACCOUNT_USERS,
        page=1,
        status=200,
        body=scalr_users_page(["user-p1"], page=1, next_page=2, total_pages=3, total_count=3),
    )
    scalr_world.add_fault(
        path=ACCOUNT_USERS,
        page=2,
        status=200,
        body=scalr_users_page(["user-p2"], page=2, next_page=1, total_pages=3, total_count=3),
    )
    outcome = sync(db_path, "scalr", scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "paging does not advance")
    assert hits(scalr_world, ACCOUNT_USERS) == 2
    assert query(db_path, "SELECT COUNT(*) AS n FROM users")[0]["n"] == 0


def test_scalr_next_page_beyond_total_pages_fails(db_path, scalr_world):
    scalr_world.add_fault(
        path=ACCOUNT_USERS,
        page=1,
        status=200,
        body=scalr_users_page(["user-p1"], page=1, next_page=2, total_pages=1, total_count=1),
    )
    outcome = sync(db_path, "scalr", scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "paging does not advance")
    assert hits(scalr_world, ACCOUNT_USERS) == 1


def test_scalr_empty_page_claiming_a_next_page_fails(db_path, scalr_world):
    scalr_world.add_fault(
        path=ACCOUNT_USERS,
        page=1,
        status=200,
        body=scalr_users_page([], page=1, next_page=2, total_pages=2, total_count=5),
    )
    outcome = sync(db_path, "scalr", scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "empty")
    assert hits(scalr_world, ACCOUNT_USERS) == 1


def test_scalr_listing_that_ends_short_of_its_total_fails_instead_of_ending_silently(
    db_path, scalr_world
):
    assert sync(db_path, "scalr", scalr_world).status == "succeeded"
    before = snapshot_tables(db_path)
    scalr_world.add_fault(
        path=ACCOUNT_USERS,
        page=1,
        status=200,
        body=scalr_users_page(
            ["user-aaaaaaaaaaaaaaa00"], page=1, next_page=None, total_pages=1, total_count=3
        ),
    )
    outcome = sync(db_path, "scalr", scalr_world)
    assert_failed_run(db_path, outcome, "Scalr", "1 of 3")
    assert snapshot_tables(db_path) == before  # no one recorded as removed


def test_planetscale_organizations_page_that_does_not_advance_fails(db_path, ps_world):
    ps_world.add_fault(
        path=PS_ORGS,
        page=1,
        status=200,
        body=json.dumps(
            {
                "type": "list",
                "current_page": 1,
                "next_page": 1,
                "next_page_url": None,
                "data": [{"id": "org000000001", "name": "acme"}],
            }
        ),
    )
    outcome = sync(db_path, "planetscale", ps_world)
    assert_failed_run(db_path, outcome, "PlanetScale", "paging does not advance")
    assert hits(ps_world, PS_ORGS) == 1


def test_planetscale_members_paging_fault_is_confined_to_its_scope(db_path, ps_world):
    assert sync(db_path, "planetscale", ps_world).status == "succeeded"
    before = query(
        db_path, "SELECT * FROM memberships WHERE resource_type = 'organization' ORDER BY user_id"
    )
    ps_world.add_fault(
        path=PS_MEMBERS,
        page=1,
        status=200,
        body=json.dumps(
            {
                "type": "list",
                "current_page": 1,
                "next_page": 5,
                "total_pages": 2,
                "total_count": 150,
                "data": [],
            }
        ),
    )
    outcome = sync(db_path, "planetscale", ps_world)
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
        scalr_world.add_fault(
            path=ACCOUNT_USERS,
            page=number,
            status=200,
            body=scalr_users_page(
                [f"user-cap{number}"],
                page=number,
                next_page=number + 1,
                total_pages=None,
                total_count=None,
            ),
        )
    settings = settings_for(db_path, scalr=scalr_world)
    http = scalr.make_http(settings.providers["scalr"], FAST_POLICY)
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
        outcome = sync(db_path, "planetscale", sim)
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
        outcome = sync(db_path, "scalr", scalr_world)
        assert decoy.requests == []  # the token never reached it
    assert_failed_run(db_path, outcome, "Scalr", "another origin")
    assert hits(scalr_world, ACCOUNT_USERS) == 1


def test_redirect_to_another_loopback_address_is_not_followed(db_path, scalr_world):
    target = f"http://127.0.0.2:{closed_port()}/x"
    scalr_world.add_fault(path=ACCOUNT_USERS, status=302, headers={"Location": target})
    outcome = sync(db_path, "scalr", scalr_world)
    row = assert_failed_run(db_path, outcome, "Scalr", "another origin")
    assert row["requests"] == 2  # accounts + the redirected listing only


def test_planetscale_redirect_to_another_origin_is_not_followed(db_path, ps_world):
    with PlanetScaleSimulator(ps_world.state) as decoy:
        ps_world.add_fault(
            path=PS_ORGS, status=301, headers={"Location": f"{decoy.url}/v1/organizations"}
        )
        outcome = sync(db_path, "planetscale", ps_world)
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
    outcome = sync(db_path, "scalr", scalr_world)
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

    To keep it quick, both sides run on the same clock sped up 60×: one real second is one
    simulated minute. The client's real limiter (as make_http configures it from
    PLANETSCALE_REQUESTS_PER_MINUTE) is rebuilt on that clock; the traffic is real HTTP.
    """
    speed = 60.0
    fast_clock = lambda: time.monotonic() * speed  # noqa: E731
    fast_sleep = lambda seconds: time.sleep(seconds / speed)  # noqa: E731
    with PlanetScaleSimulator(small_ps_state(teams=63, members=3), rate_limit_per_minute=60) as sim:
        sim.clock = fast_clock
        settings = load_settings(environ=planetscale_env(sim, per_minute=50), db_override=db_path)
        assert settings.providers["planetscale"].requests_per_minute == 50
        http = planetscale.make_http(settings.providers["planetscale"], FAST_POLICY)
        assert http.limiter is not None and http.limiter.rate == pytest.approx(50 / 60)
        http.limiter = RateLimiter(
            settings.providers["planetscale"].requests_per_minute,
            clock=fast_clock,
            sleep=fast_sleep,
        )
        try:
            snapshot = planetscale.PROVIDER.fetch_snapshot(http, settings.providers["planetscale"])
        finally:
            http.close()
        assert sim.rate_limited_count == 0
        assert http.requests == len(sim.requests) == 66
    assert snapshot.failures == []
    assert len([m for m in snapshot.memberships if m.resource_type == "team"]) == 63


@pytest.mark.timeout(60)
def test_planetscale_429_from_the_server_is_waited_out_and_the_sync_succeeds(db_path, monkeypatch):
    """Client budget far above the server's: the server's 429s and Retry-After are obeyed."""
    monkeypatch.setattr(ps_sim_module, "RATE_WINDOW_SECONDS", 2.0)  # a "minute" of 2 s
    policy = HttpPolicy(
        connect_timeout=1.0,
        read_timeout=2.0,
        request_deadline=10.0,
        max_attempts=5,
        backoff_base=0.01,
        backoff_cap=0.05,
    )
    with PlanetScaleSimulator(small_ps_state(teams=2, members=3), rate_limit_per_minute=3) as sim:
        started = time.monotonic()
        outcome = sync(db_path, "planetscale", sim, policy=policy)  # client budget 6000/min
        elapsed = time.monotonic() - started
        limited = sim.rate_limited_count
    assert outcome.status == "succeeded", outcome.error
    assert limited >= 1
    assert elapsed >= 1.0  # waited for Retry-After, not 50 ms backoff
    assert run_row(db_path, outcome.run_id)["requests"] == 5 + limited
    assert (
        query(
            db_path,
            "SELECT COUNT(*) AS n FROM memberships WHERE resource_type = 'team' "
            "AND removed_at IS NULL",
        )[0]["n"]
        == 2
    )
