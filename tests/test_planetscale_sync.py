"""PlanetScale end to end: a full sync over real HTTP against the simulated API, read back with SQL.

Covers the issue "PlanetScale, end to end" (build side): what a first sync records (organisations,
users, organisation roles including ``analyst`` and unknown words, teams, team memberships, a
user in two organisations as one user), the exact requests it makes (only the four contract GETs,
``per_page=100``, ``Authorization: <id>:<secret>`` with no ``Bearer``, next URLs built from the
configured origin), tolerant parsing of member pages, the token-shape config error, the
concurrency/limiter/back-off request budget, and running Scalr and PlanetScale together.

Change detection between syncs and partial scopes are in ``test_planetscale_scopes.py``, which
reuses the world built here.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter

import pytest

from daemon.config import load_settings
from daemon.providers import planetscale as ps_provider
from daemon.simulate.planetscale import (
    PlanetScaleSimulator,
    PlanetScaleState,
    PSOrganization,
    PSTeam,
    PSUser,
)
from daemon.simulate.scalr import ScalrSimulator, ScalrState
from daemon.simulate.world import populate_scalr
from daemon.sync import sync_provider
from tests.conftest import (
    FAST_POLICY,
    planetscale_env,
    query,
    run_cli,
    scalr_env,
    settings_for,
)

# -- the world -----------------------------------------------------------------------------------

ACME, GLOBEX = "orgacme00001", "orgglobex001"
ALICE, BOB, CAROL, DAVE = "ps0alice0001", "ps0bob000001", "ps0carol0001", "ps0dave00001"
ERIN, FRANK, GINA = "ps0erin00001", "ps0frank0001", "ps0gina00001"
BULK = [f"ps0bulk{n:05d}" for n in range(230)]

EVERYONE, PLATFORM, DATA, EMPTY = "tm0everyone1", "tm0platform1", "tm0data00001", "tm0empty0001"
SQUADS = [f"tm0squad{n:04d}" for n in range(13)]
OPS, ANALYTICS, QUIET = "tm0gxops0001", "tm0gxana0001", "tm0gxqui0001"

CONTRACT_PATHS = [
    re.compile(r"^/v1/organizations$"),
    re.compile(r"^/v1/organizations/[^/]+/members$"),
    re.compile(r"^/v1/organizations/[^/]+/teams$"),
    re.compile(r"^/v1/organizations/[^/]+/teams/[^/]+/members$"),
]


def world() -> PlanetScaleState:
    """Two organisations, a user in both, roles member/admin/analyst, 20 teams, one of 230 members.

    acme:   alice admin, bob member, carol analyst, dave member, 230 bulk members (234: 3 pages).
            teams: Everyone (the 230 bulk users), Platform (alice, bob), Data (carol, dave),
            Empty, and 13 squads of one bulk user each.
    globex: dave admin, erin member, frank analyst, gina member (in no team).
            teams: Ops (dave, erin), Analytics (frank), Quiet (empty).
    """
    state = PlanetScaleState()
    people = [
        PSUser(
            ALICE,
            "alice@acme.example",
            "Alice Archer",
            two_factor_auth_configured=True,
            created_at="2023-05-06T07:08:09.000Z",
        ),
        PSUser(BOB, "bob@acme.example", "Bob Baker"),
        PSUser(CAROL, "carol@acme.example", "Carol Cole", two_factor_auth_configured=True),
        PSUser(DAVE, "dave@acme.example", "Dave Dunn", two_factor_auth_configured=True),
        PSUser(ERIN, "erin@globex.example", "Erin East"),
        PSUser(FRANK, "frank@globex.example", "Frank Fox", two_factor_auth_configured=True),
        PSUser(GINA, "gina@globex.example", "Gina Gale"),
    ]
    people += [
        PSUser(
            ident, f"bulk{n}@acme.example", f"Bulk User {n}", two_factor_auth_configured=n % 2 == 0
        )
        for n, ident in enumerate(BULK)
    ]
    state.users = {user.id: user for user in people}

    acme = PSOrganization(
        ACME, "acme", members={ALICE: "admin", BOB: "member", CAROL: "analyst", DAVE: "member"}
    )
    acme.members.update({ident: "member" for ident in BULK})
    acme.teams[EVERYONE] = PSTeam(EVERYONE, "Everyone", "everyone", "All staff", set(BULK))
    acme.teams[PLATFORM] = PSTeam(
        PLATFORM, "Platform", "platform", "Runs the platform", {ALICE, BOB}
    )
    acme.teams[DATA] = PSTeam(DATA, "Data", "data", None, {CAROL, DAVE})
    acme.teams[EMPTY] = PSTeam(EMPTY, "Empty", "empty")
    for n, ident in enumerate(SQUADS):
        acme.teams[ident] = PSTeam(ident, f"Squad {n}", f"squad-{n}", None, {BULK[n]})

    globex = PSOrganization(
        GLOBEX, "globex", members={DAVE: "admin", ERIN: "member", FRANK: "analyst", GINA: "member"}
    )
    globex.teams[OPS] = PSTeam(OPS, "Ops", "ops", "On call", {DAVE, ERIN})
    globex.teams[ANALYTICS] = PSTeam(ANALYTICS, "Analytics", "analytics", None, {FRANK})
    globex.teams[QUIET] = PSTeam(QUIET, "Quiet", "quiet")
    state.organizations = {ACME: acme, GLOBEX: globex}
    return state


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


# -- helpers shared with test_planetscale_scopes.py ---------------------------------------------

CHANGE_FIELDS = (
    "kind",
    "user_id",
    "email",
    "resource_type",
    "resource_id",
    "resource_name",
    "field",
    "old_value",
    "new_value",
)


def change(kind: str, **columns) -> dict:
    """A change row as the test expects it: every column not named is NULL."""
    row = {name: None for name in CHANGE_FIELDS}
    row.update(kind=kind, **columns)
    return row


def sort_changes(rows: list[dict]) -> list[dict]:
    return sorted(
        rows, key=lambda r: tuple("" if r[k] is None else str(r[k]) for k in CHANGE_FIELDS)
    )


def run_changes(db_path, run_id: int) -> list[dict]:
    rows = query(
        db_path, f"SELECT {', '.join(CHANGE_FIELDS)} FROM changes WHERE run_id = ?", (run_id,)
    )
    return sort_changes(rows)


def run_row(db_path, run_id: int) -> dict:
    (row,) = query(db_path, "SELECT * FROM sync_runs WHERE id = ?", (run_id,))
    return row


def org_members(db_path, org_id: str) -> dict[str, str]:
    """Current (not removed) organisation memberships: user id -> role."""
    rows = query(
        db_path,
        "SELECT user_id, role FROM memberships WHERE provider = 'planetscale' "
        "AND resource_type = 'organization' AND resource_id = ? AND removed_at IS NULL",
        (org_id,),
    )
    return {r["user_id"]: r["role"] for r in rows}


def team_members(db_path, team_id: str) -> set[str]:
    rows = query(
        db_path,
        "SELECT user_id, role FROM memberships WHERE provider = 'planetscale' "
        "AND resource_type = 'team' AND resource_id = ? AND removed_at IS NULL",
        (team_id,),
    )
    assert {r["role"] for r in rows} <= {"member"}
    return {r["user_id"] for r in rows}


def sync(db_path, sim, policy=None):
    return sync_provider(
        settings_for(db_path, planetscale=sim), "planetscale", policy=policy or FAST_POLICY
    )


class RecordingSimulator(PlanetScaleSimulator):
    """The real simulator, also noting when each request arrived and how many ran at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals: list[tuple[float, str]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._flight_lock = threading.Lock()

    def _answer(self, request):
        with self._flight_lock:
            self.arrivals.append((time.monotonic(), request.path))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return super()._answer(request)
        finally:
            with self._flight_lock:
                self.in_flight -= 1


@pytest.fixture
def ps():
    with PlanetScaleSimulator(world()) as sim:
        yield sim


# -- first sync: what is recorded ---------------------------------------------------------------


def test_first_sync_succeeds_as_a_baseline_without_change_rows(db_path, ps):
    outcome = sync(db_path, ps)

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
    outcome = sync(db_path, ps)
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
    outcome = sync(db_path, ps)
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
    sync(db_path, ps)

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
    sync(db_path, ps)

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
    outcome = sync(db_path, ps)
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
    sync(db_path, ps)

    for org in ps.state.organizations.values():
        for team in org.teams.values():
            assert team_members(db_path, team.id) == team.members, team.name
    assert query(db_path, "SELECT COUNT(*) AS n FROM memberships WHERE resource_type = 'team'") == [
        {"n": 250}
    ]


def test_team_of_230_members_is_complete_over_three_pages_of_100(db_path, ps):
    sync(db_path, ps)

    assert team_members(db_path, EVERYONE) == set(BULK)
    pages = [
        r.param("page")
        for r in ps.requests
        if r.path == "/v1/organizations/acme/teams/everyone/members"
    ]
    assert pages == ["1", "2", "3"]


def test_first_sync_writes_one_version_per_user_and_membership(db_path, ps):
    outcome = sync(db_path, ps)
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


def test_only_the_four_contract_gets_are_made(db_path, ps):
    sync(db_path, ps)

    assert {r.method for r in ps.requests} == {"GET"}
    for request in ps.requests:
        assert any(p.match(request.path) for p in CONTRACT_PATHS), request.path


def test_every_request_is_needed_and_made_once(db_path, ps):
    sync(db_path, ps)

    made = Counter((r.path, int(r.param("page"))) for r in ps.requests)
    assert made == expected_requests(ps.state)
    assert sum(made.values()) == 29


def test_every_request_asks_for_100_per_page(db_path, ps):
    sync(db_path, ps)

    assert ps.requests
    assert {r.param("per_page") for r in ps.requests} == {"100"}


def test_authorization_is_exactly_id_colon_secret_without_bearer(db_path, ps):
    sync(db_path, ps)

    expected = f"{ps.state.token_id}:{ps.state.token_secret}"
    assert {r.headers.get("Authorization") for r in ps.requests} == {expected}
    assert not any("bearer" in r.headers.get("Authorization", "").lower() for r in ps.requests)


def test_next_page_url_host_in_the_body_is_never_followed(db_path):
    foreign = "http://198.51.100.23:9"  # TEST-NET-2: nothing answers there
    with PlanetScaleSimulator(world(), next_page_url_origin=foreign) as sim:
        outcome = sync(db_path, sim)
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
        outcome = sync(db_path, sim)
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

    outcome = sync(db_path, ps)

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

    outcome = sync(db_path, ps)

    assert outcome.status == "succeeded", outcome.error
    assert org_members(db_path, GLOBEX)[GINA] == "billing_viewer"
    assert query(
        db_path,
        "SELECT role FROM membership_versions WHERE user_id = ? AND resource_id = ?",
        (GINA, GLOBEX),
    ) == [{"role": "billing_viewer"}]


def test_change_to_an_unknown_role_word_is_a_role_change(db_path, ps):
    sync(db_path, ps)
    with ps.state.lock:
        ps.state.organizations[GLOBEX].members[FRANK] = "billing_viewer"

    outcome = sync(db_path, ps)

    assert run_changes(db_path, outcome.run_id) == [
        change(
            "role_changed",
            user_id=FRANK,
            email="frank@globex.example",
            resource_type="organization",
            resource_id=GLOBEX,
            resource_name="globex",
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
    with RecordingSimulator(world()) as sim:
        sim.add_fault(path=r"/teams/[^/]+/members$", status=200, delay=0.15)
        outcome = sync(db_path, sim)

    assert outcome.status == "succeeded", outcome.error
    assert team_members(db_path, EVERYONE) == set(BULK)
    assert sim.peak_in_flight >= 2
    assert sim.peak_in_flight <= min(ps_provider.TEAM_MEMBER_WORKERS, 10)


def test_requests_counted_in_the_run_equal_those_the_simulator_saw(db_path, ps):
    outcome = sync(db_path, ps)

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
    with RecordingSimulator(state) as sim:
        settings = load_settings(environ=planetscale_env(sim, per_minute=120), db_override=db_path)
        outcome = sync_provider(settings, "planetscale", policy=FAST_POLICY)

    assert outcome.status == "succeeded", outcome.error
    times = sorted(t for t, _ in sim.arrivals)
    assert len(times) == 6
    # 120 a minute is 2 a second: after a burst of at most ~2, the other 4 need about 2 s.
    assert times[-1] - times[0] >= 1.4
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert j - i + 1 <= 3 + 2 * (times[j] - times[i]), (i, j, times)


def test_429_is_retried_after_retry_after_and_counted(db_path):
    with RecordingSimulator(world()) as sim:
        sim.add_fault(
            path=r"/organizations/acme/teams/data/members$",
            status=429,
            times=1,
            headers={"Retry-After": "1"},
        )
        outcome = sync(db_path, sim)

    assert (outcome.status, outcome.error) == ("succeeded", None)
    assert team_members(db_path, DATA) == {CAROL, DAVE}
    tries = [t for t, path in sim.arrivals if path == "/v1/organizations/acme/teams/data/members"]
    assert len(tries) == 2
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
