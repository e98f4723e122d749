"""PlanetScale end to end: a full sync over real HTTP against the simulated API, read back with SQL.

Covers what a first sync records (organisations, users, organisation roles including ``analyst``
and unknown words, teams, team memberships, a user in two organisations as one user), the exact
requests it makes (only the four GETs a PlanetScale sync needs, ``per_page=100``,
``Authorization: <id>:<secret>`` with no ``Bearer``, next pages built from the configured origin
whatever URL a body names), tolerant parsing of member pages, the token-shape config error, the
request budget (bounded concurrency, the client-side limiter, waiting out a 429), and running
Scalr and PlanetScale together.

Change detection between syncs and partial scopes are in ``test_planetscale_scopes.py``; both
files sync the same world, ``helpers.world()``.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
from collections import Counter

import pytest

from daemon.config import load_settings
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSTeam, PSUser
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState, populate_scalr
from daemon.sync import sync_provider
from tests.helpers import (
    ACME,
    ALICE,
    BOB,
    BULK,
    CAROL,
    DATA,
    DAVE,
    ERIN,
    EVERYONE,
    FRANK,
    GINA,
    GLOBEX,
    TEST_POLICY,
    WatchedPlanetScale,
    change,
    changes_of,
    of,
    org_members,
    organization,
    planetscale_env,
    query,
    run_cli,
    run_row,
    scalr_env,
    sync,
    team_members,
    world,
)

#: The only four endpoints a PlanetScale sync reads.
SYNC_PATHS = [
    re.compile(r"^/v1/organizations$"),
    re.compile(r"^/v1/organizations/[^/]+/members$"),
    re.compile(r"^/v1/organizations/[^/]+/teams$"),
    re.compile(r"^/v1/organizations/[^/]+/teams/[^/]+/members$"),
]


def expected_requests(state: PlanetScaleState) -> Counter:
    """(path, page) of every request one complete sync of ``state`` needs at per_page=100."""

    def pages(count: int) -> range:
        return range(1, max(1, -(-count // 100)) + 1)

    wanted: Counter = Counter()
    for page in pages(len(state.organizations)):
        wanted[("/v1/organizations", page)] += 1
    for org in state.organizations.values():
        base = f"/v1/organizations/{org.name}"
        for page in pages(len(org.members)):
            wanted[(f"{base}/members", page)] += 1
        for page in pages(len(org.teams)):
            wanted[(f"{base}/teams", page)] += 1
        for team in org.teams.values():
            for page in pages(len(team.members & set(org.members))):
                wanted[(f"{base}/teams/{team.slug}/members", page)] += 1
    return wanted


# -- first sync: what is recorded ---------------------------------------------------------------


def test_first_sync_succeeds_as_a_baseline_without_change_rows(db_path, ps):
    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "succeeded"
    row = run_row(db_path, outcome.run_id)
    assert (row["provider"], row["status"], row["error"], row["changes"]) == (
        "planetscale",
        "succeeded",
        None,
        0,
    )
    assert query(db_path, "SELECT COUNT(*) AS n FROM changes") == [{"n": 0}]


def test_first_sync_records_both_organisations(db_path, ps):
    outcome = sync(db_path, planetscale=ps)
    started = run_row(db_path, outcome.run_id)["started_at"]

    assert query(db_path, "SELECT * FROM organizations ORDER BY id") == [
        {
            "provider": "planetscale",
            "id": ACME,
            "name": "acme",
            "first_seen_at": started,
            "removed_at": None,
        },
        {
            "provider": "planetscale",
            "id": GLOBEX,
            "name": "globex",
            "first_seen_at": started,
            "removed_at": None,
        },
    ]


def test_first_sync_records_every_user_as_an_enabled_human_with_mfa_from_two_factor(db_path, ps):
    outcome = sync(db_path, planetscale=ps)
    started = run_row(db_path, outcome.run_id)["started_at"]

    rows = query(db_path, "SELECT * FROM users ORDER BY id")
    expected = sorted(
        (
            {
                "provider": "planetscale",
                "id": u.id,
                "email": u.email,
                "name": u.name,
                "account_type": "human",
                "status": "enabled",
                "provider_status": None,
                "last_sign_in_at": None,
                "mfa_enabled": 1 if u.two_factor_auth_configured else 0,
                "created_at": u.created_at,
                "first_seen_at": started,
                "removed_at": None,
            }
            for u in ps.state.users.values()
        ),
        key=lambda r: r["id"],
    )
    assert len(rows) == 237
    assert rows == expected
    (alice,) = [r for r in rows if r["id"] == ALICE]
    assert (alice["mfa_enabled"], alice["created_at"]) == (1, "2023-05-06T07:08:09.000Z")
    (bob,) = [r for r in rows if r["id"] == BOB]
    assert bob["mfa_enabled"] == 0


def test_first_sync_records_organisation_roles_keeping_analyst(db_path, ps):
    sync(db_path, planetscale=ps)

    acme = org_members(db_path, ACME)
    assert len(acme) == 234
    assert {u: acme[u] for u in (ALICE, BOB, CAROL, DAVE)} == {
        ALICE: "admin",
        BOB: "member",
        CAROL: "analyst",
        DAVE: "member",
    }
    assert {acme[u] for u in BULK} == {"member"}
    assert org_members(db_path, GLOBEX) == {
        DAVE: "admin",
        ERIN: "member",
        FRANK: "analyst",
        GINA: "member",
    }


def test_user_in_two_organisations_is_one_user_with_two_memberships(db_path, ps):
    sync(db_path, planetscale=ps)

    assert query(db_path, "SELECT COUNT(*) AS n FROM users WHERE id = ?", (DAVE,)) == [{"n": 1}]
    assert query(
        db_path,
        "SELECT resource_id, role FROM memberships WHERE user_id = ? AND "
        "resource_type = 'organization' ORDER BY resource_id",
        (DAVE,),
    ) == [{"resource_id": ACME, "role": "member"}, {"resource_id": GLOBEX, "role": "admin"}]
    assert query(db_path, "SELECT COUNT(*) AS n FROM user_versions WHERE id = ?", (DAVE,)) == [
        {"n": 1}
    ]


def test_first_sync_records_all_twenty_teams_by_id_with_organisation_and_slug(db_path, ps):
    outcome = sync(db_path, planetscale=ps)
    started = run_row(db_path, outcome.run_id)["started_at"]

    rows = query(db_path, "SELECT * FROM teams ORDER BY id")
    expected = sorted(
        (
            {
                "provider": "planetscale",
                "id": t.id,
                "organization_id": org.id,
                "name": t.name,
                "slug": t.slug,
                "description": t.description,
                "first_seen_at": started,
                "removed_at": None,
            }
            for org in ps.state.organizations.values()
            for t in org.teams.values()
        ),
        key=lambda r: r["id"],
    )
    assert len(rows) == 20
    assert rows == expected


def test_first_sync_records_every_team_membership(db_path, ps):
    sync(db_path, planetscale=ps)

    for org in ps.state.organizations.values():
        for team in org.teams.values():
            assert team_members(db_path, team.id) == team.members, team.name
    assert query(db_path, "SELECT COUNT(*) AS n FROM memberships WHERE resource_type = 'team'") == [
        {"n": 250}
    ]


def test_team_of_230_members_is_complete_over_three_pages_of_100(db_path, ps):
    sync(db_path, planetscale=ps)

    assert team_members(db_path, EVERYONE) == set(BULK)
    pages = [
        r.param("page")
        for r in ps.requests
        if r.path == "/v1/organizations/acme/teams/everyone/members"
    ]
    assert pages[0] == "1" and sorted(pages) == ["1", "2", "3"]  # 2 and 3 are asked for together


def test_first_sync_writes_one_version_per_user_and_membership(db_path, ps):
    outcome = sync(db_path, planetscale=ps)
    started = run_row(db_path, outcome.run_id)["started_at"]

    assert query(
        db_path,
        "SELECT COUNT(*) AS n, MIN(valid_from) AS f, MAX(valid_from) AS l, "
        "COUNT(valid_to) AS closed, MIN(run_id) AS r FROM user_versions",
    ) == [{"n": 237, "f": started, "l": started, "closed": 0, "r": outcome.run_id}]
    assert query(
        db_path, "SELECT COUNT(*) AS n, COUNT(valid_to) AS closed FROM membership_versions"
    ) == [{"n": 238 + 250, "closed": 0}]
    assert query(
        db_path,
        "SELECT role FROM membership_versions WHERE resource_type = "
        "'organization' AND resource_id = ? AND user_id = ?",
        (GLOBEX, FRANK),
    ) == [{"role": "analyst"}]


# -- first sync: what is asked ------------------------------------------------------------------


def test_only_the_four_sync_gets_are_made(db_path, ps):
    sync(db_path, planetscale=ps)

    assert {r.method for r in ps.requests} == {"GET"}
    for request in ps.requests:
        assert any(p.match(request.path) for p in SYNC_PATHS), request.path


def test_every_request_is_needed_and_made_once(db_path, ps):
    sync(db_path, planetscale=ps)

    made = Counter((r.path, int(r.param("page"))) for r in ps.requests)
    assert made == expected_requests(ps.state)
    assert sum(made.values()) == 29


def test_every_request_asks_for_100_per_page(db_path, ps):
    sync(db_path, planetscale=ps)

    assert ps.requests
    assert {r.param("per_page") for r in ps.requests} == {"100"}


def test_authorization_is_exactly_id_colon_secret_without_bearer(db_path, ps):
    sync(db_path, planetscale=ps)

    expected = f"{ps.state.token_id}:{ps.state.token_secret}"
    assert {r.headers.get("Authorization") for r in ps.requests} == {expected}
    assert not any("bearer" in r.headers.get("Authorization", "").lower() for r in ps.requests)


def test_next_page_url_host_in_the_body_is_never_followed(db_path):
    foreign = "http://198.51.100.23:9"  # TEST-NET-2: nothing answers there
    with PlanetScaleSimulator(world(), next_page_url_origin=foreign) as sim:
        outcome = sync(db_path, planetscale=sim)
        made = Counter((r.path, int(r.param("page"))) for r in sim.requests)

        assert outcome.status == "succeeded", outcome.error
        assert made == expected_requests(sim.state)
        assert team_members(db_path, EVERYONE) == set(BULK)
        assert len(org_members(db_path, ACME)) == 234


def test_a_second_page_of_organisations_is_read(db_path):
    state = world()
    for n in range(101):
        ident = f"orgextra{n:04d}"
        state.organizations[ident] = PSOrganization(ident, f"extra-{n}", members={BOB: "member"})
    with PlanetScaleSimulator(state) as sim:
        outcome = sync(db_path, planetscale=sim)
        pages = [r.param("page") for r in sim.requests if r.path == "/v1/organizations"]

    assert outcome.status == "succeeded", outcome.error
    assert pages == ["1", "2"]
    assert query(db_path, "SELECT COUNT(*) AS n FROM organizations") == [{"n": 103}]
    assert query(
        db_path,
        "SELECT COUNT(*) AS n FROM memberships WHERE user_id = ? AND "
        "resource_type = 'organization'",
        (BOB,),
    ) == [{"n": 102}]


# -- tolerant parsing ---------------------------------------------------------------------------

TOLERANT_PAGE = {
    "type": "list",
    "current_page": 1,
    "next_page": None,
    "prev_page": None,
    "a_future_envelope_key": {"nested": [1, 2, 3]},
    "data": [
        {
            "id": "mem0tolly001",
            "role": "member",
            "created_at": "2025-01-02T03:04:05.000Z",
            "updated_at": "2025-01-02T03:04:05.000Z",
            "a_future_membership_key": ["x"],
            "user": {
                "id": "ps0tolly0001",
                "display_name": "Tolly Rant",
                "name": None,
                "email": "tolly@globex.example",
                "avatar_url": None,
                "created_at": "2024-03-04T05:06:07.000Z",
                "updated_at": "2024-03-04T05:06:07.000Z",
                "two_factor_auth_configured": True,
                "default_organization": None,
                "sso": None,
                "managed": None,
                "directory_managed": None,
                "email_verified": None,
                "a_future_user_key": {"deep": True},
            },
        },
        {
            "id": "mem0quiet001",
            "role": "billing_viewer",
            "user": {
                "id": "ps0quiet0001",
                "display_name": "Quinn Quiet",
                "name": "Quinn Quiet",
                "email": "quinn@globex.example",
                "two_factor_auth_configured": None,
                "sso": None,
                "managed": None,
            },
        },
    ],
}


def test_tolerant_member_page_is_recorded(db_path, ps):
    ps.add_fault(path=r"/organizations/globex/members$", status=200, body=json.dumps(TOLERANT_PAGE))

    outcome = sync(db_path, planetscale=ps)

    assert (outcome.status, outcome.error) == ("succeeded", None)
    assert query(
        db_path,
        "SELECT id, email, name, account_type, status, provider_status, "
        "last_sign_in_at, mfa_enabled, created_at, removed_at FROM users WHERE id IN "
        "(?, ?) ORDER BY id",
        ("ps0quiet0001", "ps0tolly0001"),
    ) == [
        {
            "id": "ps0quiet0001",
            "email": "quinn@globex.example",
            "name": "Quinn Quiet",
            "account_type": "human",
            "status": "enabled",
            "provider_status": None,
            "last_sign_in_at": None,
            "mfa_enabled": None,
            "created_at": None,
            "removed_at": None,
        },
        {
            "id": "ps0tolly0001",
            "email": "tolly@globex.example",
            "name": "Tolly Rant",
            "account_type": "human",
            "status": "enabled",
            "provider_status": None,
            "last_sign_in_at": None,
            "mfa_enabled": 1,
            "created_at": "2024-03-04T05:06:07.000Z",
            "removed_at": None,
        },
    ]
    assert org_members(db_path, GLOBEX) == {
        "ps0tolly0001": "member",
        "ps0quiet0001": "billing_viewer",
    }


def test_unknown_role_word_is_kept_as_its_own_word(db_path, ps):
    with ps.state.lock:
        ps.state.organizations[GLOBEX].members[GINA] = "billing_viewer"

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "succeeded", outcome.error
    assert org_members(db_path, GLOBEX)[GINA] == "billing_viewer"
    assert query(
        db_path,
        "SELECT role FROM membership_versions WHERE user_id = ? AND resource_id = ?",
        (GINA, GLOBEX),
    ) == [{"role": "billing_viewer"}]


def test_change_to_an_unknown_role_word_is_a_role_change(db_path, ps):
    sync(db_path, planetscale=ps)
    with ps.state.lock:
        ps.state.organizations[GLOBEX].members[FRANK] = "billing_viewer"

    outcome = sync(db_path, planetscale=ps)

    assert changes_of(db_path, outcome.run_id) == [
        change(
            "role_changed",
            **of(FRANK, "frank@globex.example"),
            **organization(GLOBEX, "globex"),
            field="role",
            old_value="analyst",
            new_value="billing_viewer",
        )
    ]


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["pscale_tkn_NoColonAtAllSecret42", ":pscale_tkn_OnlyTheSecret42", "s1mt0k3n1d0a:"]
)
def test_token_not_shaped_id_colon_value_is_a_config_error(db_path, ps, token):
    env = {"PLANETSCALE_SERVICE_TOKEN": token, "PLANETSCALE_API_URL": ps.url}

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 2
    assert "<token-id>:<token-value>" in result.stderr
    assert "PLANETSCALE_SERVICE_TOKEN" in result.stderr
    secret = token.strip(":").split(":")[-1]
    assert secret not in result.output
    assert "Traceback" not in result.output
    assert ps.requests == []
    assert not db_path.exists()


# -- request budget: concurrency, limiter, 429 --------------------------------------------------


def test_team_member_lists_are_fetched_concurrently_within_a_bound(db_path):
    # The first team-member request is held until a second one has arrived, so the two are in
    # flight at once exactly when the client fetches concurrently; a client fetching one list at
    # a time would release it only after the 5 s hold, well inside TEST_POLICY's 10 s read
    # timeout, and the peak would stay 1.
    second_arrived = threading.Event()
    team_member_requests = itertools.count(1)

    def hold_the_first_until_a_second_arrives(request):
        if re.search(r"/teams/[^/]+/members$", request.path):
            if next(team_member_requests) == 1:
                second_arrived.wait(timeout=5)
            else:
                second_arrived.set()

    with WatchedPlanetScale(world()) as sim:
        sim.before_answer = hold_the_first_until_a_second_arrives
        outcome = sync(db_path, planetscale=sim)

    assert outcome.status == "succeeded", outcome.error
    assert team_members(db_path, EVERYONE) == set(BULK)
    assert sim.peak_in_flight >= 2
    assert sim.peak_in_flight <= TEST_POLICY.concurrency


def test_requests_counted_in_the_run_equal_those_the_simulator_saw(db_path, ps):
    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "succeeded"
    assert run_row(db_path, outcome.run_id)["requests"] == len(ps.requests) == 29
    assert outcome.requests == 29


def test_client_side_limiter_keeps_requests_under_the_budget(db_path):
    state = PlanetScaleState()
    state.users[BOB] = PSUser(BOB, "bob@acme.example", "Bob Baker")
    org = PSOrganization(ACME, "acme", members={BOB: "member"})
    for n in range(3):
        org.teams[f"tm{n}"] = PSTeam(f"tm{n}", f"T{n}", f"t{n}", None, {BOB})
    state.organizations[ACME] = org
    with WatchedPlanetScale(state) as sim:
        settings = load_settings(environ=planetscale_env(sim, per_minute=120), db_override=db_path)
        outcome = sync_provider(settings, "planetscale", policy=TEST_POLICY)

    assert outcome.status == "succeeded", outcome.error
    times = sorted(a.monotonic for a in sim.arrivals)
    assert len(times) == 6
    # 120 a minute is one request every 0.5 s, so the six span about 2.5 s. A loaded machine
    # only makes them later, so both bounds below are lower bounds with room: 1.4 s for the whole
    # span, and at most 3 (a burst) plus 2 a second in any stretch, which a request's arrival
    # could only break by being held up about 1 s longer than the one sent before it.
    assert times[-1] - times[0] >= 1.4
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert j - i + 1 <= 3 + 2 * (times[j] - times[i]), (i, j, times)


def test_429_is_retried_after_retry_after_and_counted(db_path):
    with WatchedPlanetScale(world()) as sim:
        sim.add_fault(
            path=r"/organizations/acme/teams/data/members$",
            status=429,
            times=1,
            headers={"Retry-After": "1"},
        )
        outcome = sync(db_path, planetscale=sim)

    assert (outcome.status, outcome.error) == ("succeeded", None)
    assert team_members(db_path, DATA) == {CAROL, DAVE}
    tries = [a.monotonic for a in sim.arrived("/v1/organizations/acme/teams/data/members")]
    assert len(tries) == 2
    # Retry-After: 1 was waited out; the 0.1 s below it is the slack of stamping the first try
    # on arrival, not on its answer. A loaded machine only makes the gap longer.
    assert tries[1] - tries[0] >= 0.9
    assert run_row(db_path, outcome.run_id)["requests"] == len(sim.requests) == 30


# -- both providers -----------------------------------------------------------------------------


def test_scalr_and_planetscale_sync_together(db_path, ps):
    scalr_state = ScalrState()
    populate_scalr(scalr_state, random.Random(11), users=8, service_accounts=2, teams=2)
    with ScalrSimulator(scalr_state) as scalr:
        result = run_cli(
            ["sync", "--db", str(db_path)], {**scalr_env(scalr), **planetscale_env(ps)}
        )

    assert result.exit_code == 0, result.output
    assert query(db_path, "SELECT provider, status, error FROM sync_runs ORDER BY provider") == [
        {"provider": "planetscale", "status": "succeeded", "error": None},
        {"provider": "scalr", "status": "succeeded", "error": None},
    ]
    assert query(
        db_path, "SELECT provider, COUNT(*) AS n FROM users GROUP BY provider ORDER BY provider"
    ) == [{"provider": "planetscale", "n": 237}, {"provider": "scalr", "n": 10}]
    assert "PlanetScale" in result.stdout and "Scalr" in result.stdout
