"""The simulated PlanetScale API speaks the real wire format; limit, faults and evolver behave."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import (
    PS_ROLES,
    PlanetScaleEvolver,
    PlanetScaleState,
    PSOrganization,
    PSTeam,
    PSUser,
    populate_planetscale,
)

TOKEN_ID = "abcdefghij01"
TOKEN_SECRET = "pscale_tkn_testsecret"
AUTH = {"Authorization": f"{TOKEN_ID}:{TOKEN_SECRET}"}
NOW = datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC)
#: The simulator answers in milliseconds; 10 s only bounds a hang, also on a loaded machine.
CLIENT_TIMEOUT = 10
LIST_KEYS = [
    "type",
    "current_page",
    "per_page",
    "next_page",
    "next_page_url",
    "prev_page",
    "prev_page_url",
]


def small_state() -> PlanetScaleState:
    state = PlanetScaleState(token_id=TOKEN_ID, token_secret=TOKEN_SECRET)
    for n in range(5):
        ident = f"user{n:08d}"
        state.users[ident] = PSUser(
            ident, f"u{n}@acme.example", f"User {n}", two_factor_auth_configured=n % 2 == 0
        )
    state.users["user00000009"] = PSUser("user00000009", "nameless@acme.example", None)
    acme = PSOrganization(
        "org000000001",
        "acme",
        members={
            "user00000000": "admin",
            "user00000001": "member",
            "user00000002": "analyst",
            "user00000003": "member",
            "user00000009": "member",
        },
    )
    acme.teams["team00000001"] = PSTeam(
        "team00000001",
        "Platform",
        "platform",
        "Infra",
        members={"user00000001", "user00000002"},
        creator_id="user00000000",
    )
    acme.teams["team00000002"] = PSTeam("team00000002", "Data", "data")
    state.organizations[acme.id] = acme
    state.organizations["org000000002"] = PSOrganization(
        "org000000002", "globex", members={"user00000004": "admin"}
    )
    return state


@pytest.fixture
def sim():
    with PlanetScaleSimulator(small_state(), default_per_page=2) as server:
        yield server


@pytest.fixture
def client(sim):
    with httpx.Client(base_url=sim.url + "/v1", headers=AUTH, timeout=CLIENT_TIMEOUT) as c:
        yield c


# -- authentication and errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [None, f"Bearer {TOKEN_ID}:{TOKEN_SECRET}", f"{TOKEN_ID}:wrong", TOKEN_SECRET]
)
def test_refuses_anything_but_the_exact_service_token(sim, header):
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{sim.url}/v1/organizations", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": "unauthorized", "message": "Unauthorized"}


@pytest.mark.parametrize(
    "path",
    [
        "/organizations/nope",
        "/organizations/nope/members",
        "/organizations/acme/teams/nope",
        "/organizations/acme/teams/nope/members",
        "/organizations/acme/members/user00000004",
        "/organizations/acme/databases",
    ],
)
def test_not_found_body(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not Found"}


def test_non_get_is_405(client):
    response = client.delete("/organizations/acme/members/user00000001")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# -- envelopes and objects -----------------------------------------------------------------------


def test_organizations_envelope_has_no_totals(client):
    body = client.get("/organizations").json()
    assert list(body) == LIST_KEYS + ["data"]
    assert body["type"] == "list" and body["per_page"] == 2 and body["next_page"] is None
    assert [o["name"] for o in body["data"]] == ["acme", "globex"]
    org = client.get("/organizations/acme").json()
    assert org["id"] == "org000000001" and org["created_at"].endswith(".000Z")
    for key in (
        "billing_email",
        "plan",
        "sso",
        "features",
        "idp_managed_roles",
        "invoice_budget_amount",
        "database_count",
    ):
        assert key in org


def test_members_pages_with_totals_and_request_origin_urls(sim, client):
    first = client.get("/organizations/acme/members").json()
    assert list(first) == LIST_KEYS + ["total_count", "total_pages", "data"]
    assert (first["current_page"], first["next_page"], first["prev_page"]) == (1, 2, None)
    assert first["next_page_url"] == f"{sim.url}/v1/organizations/acme/members?page=2"
    assert first["prev_page_url"] is None
    assert (first["total_count"], first["total_pages"]) == (5, 3)
    users, page = [], 1
    while page:
        body = client.get("/organizations/acme/members", params={"page": page}).json()
        users += [m["user"]["id"] for m in body["data"]]
        page = body["next_page"]
    assert users == sorted(sim.state.organizations["org000000001"].members)
    last = client.get("/organizations/acme/members", params={"page": 3}).json()
    assert last["next_page_url"] is None
    assert last["prev_page_url"] == f"{sim.url}/v1/organizations/acme/members?page=2"
    beyond = client.get("/organizations/acme/members", params={"page": 7}).json()
    assert beyond["data"] == [] and beyond["next_page"] is None and beyond["prev_page"] == 6
    clamped = client.get("/organizations/acme/members", params={"per_page": 1000}).json()
    assert clamped["per_page"] == 100 and len(clamped["data"]) == 5


def test_next_page_url_origin_override():
    with PlanetScaleSimulator(
        small_state(), default_per_page=1, next_page_url_origin="https://evil.example"
    ) as server:
        body = httpx.get(f"{server.url}/v1/organizations", headers=AUTH).json()
        assert body["next_page_url"] == "https://evil.example/v1/organizations?page=2"


def test_membership_and_user_objects(client):
    membership = client.get("/organizations/acme/members/user00000002").json()
    assert set(membership) == {"id", "user", "role", "created_at", "updated_at"}
    assert membership["role"] == "analyst"
    assert membership["id"] != "user00000002" and len(membership["id"]) == 12
    assert client.get("/organizations/acme/members/user00000002").json()["id"] == membership["id"]
    user = membership["user"]
    assert set(user) == {
        "id",
        "display_name",
        "name",
        "email",
        "avatar_url",
        "created_at",
        "updated_at",
        "two_factor_auth_configured",
        "default_organization",
        "sso",
        "managed",
        "directory_managed",
        "email_verified",
    }
    assert user["two_factor_auth_configured"] is True and user["sso"] is None
    nameless = client.get("/organizations/acme/members/user00000009").json()["user"]
    assert nameless["name"] is None and nameless["display_name"] == "nameless@acme.example"


def test_member_search(client):
    body = client.get("/organizations/acme/members", params={"q": "u3@", "per_page": 10}).json()
    assert [m["user"]["id"] for m in body["data"]] == ["user00000003"]


def test_teams_and_team_members(sim, client):
    teams = client.get("/organizations/acme/teams").json()
    assert teams["total_count"] == 2
    platform = teams["data"][0]
    assert set(platform) == {
        "id",
        "display_name",
        "name",
        "slug",
        "description",
        "managed",
        "creator",
        "members",
        "databases",
        "analyst_databases",
        "created_at",
        "updated_at",
    }
    assert platform["slug"] == "platform" and platform["creator"]["id"] == "user00000000"
    assert [m["id"] for m in platform["members"]] == ["user00000001", "user00000002"]
    assert client.get("/organizations/acme/teams/data").json()["members"] == []

    members = client.get("/organizations/acme/teams/platform/members").json()
    assert list(members) == LIST_KEYS + ["total_count", "total_pages", "data"]
    first = members["data"][0]
    assert set(first) == {"id", "user", "actor", "created_at", "updated_at", "passwords"}
    assert first["user"]["id"] == "user00000001" and first["passwords"] == []
    assert set(first["actor"]) == {"id", "display_name", "avatar_url"}

    # A team member who left the organisation is not served as a team member.
    with sim.state.lock:
        del sim.state.organizations["org000000001"].members["user00000001"]
    again = client.get("/organizations/acme/teams/platform/members").json()
    assert [m["user"]["id"] for m in again["data"]] == ["user00000002"]


# -- rate limit ----------------------------------------------------------------------------------


def test_rate_limit_sliding_window_with_retry_after():
    clock = [1000.0]
    with PlanetScaleSimulator(small_state(), rate_limit_per_minute=3) as server:
        server.clock = lambda: clock[0]
        with httpx.Client(base_url=server.url + "/v1", headers=AUTH, timeout=CLIENT_TIMEOUT) as c:
            assert httpx.get(f"{server.url}/v1/organizations").status_code == 401  # not counted
            for offset in (0, 10, 20):
                clock[0] = 1000.0 + offset
                assert c.get("/organizations").status_code == 200
            clock[0] = 1030.0
            limited = c.get("/organizations/nope")  # counted even though it would 404
            assert limited.status_code == 429
            assert limited.headers["Retry-After"] == "30"
            assert limited.json() == {
                "code": "rate_limited",
                "message": (
                    "Too Many Requests. Reduce the frequency of requests and try again soon."
                ),
            }
            clock[0] = 1059.7
            assert c.get("/organizations").headers["Retry-After"] == "1"
            assert server.rate_limited_count == 2
            clock[0] = 1060.0  # the first slot has left the window
            assert c.get("/organizations").status_code == 200
            assert c.get("/organizations").status_code == 429
            assert server.rate_limited_count == 3


# -- faults ------------------------------------------------------------------------------------


def test_fault_on_one_page_with_default_body_and_retry_after(sim, client):
    fault = sim.add_fault(
        path=r"/members$", page=2, status=429, times=2, headers={"Retry-After": "1"}
    )
    assert client.get("/organizations/acme/members").status_code == 200
    for _ in range(2):
        hit = client.get("/organizations/acme/members", params={"page": 2})
        assert hit.status_code == 429 and hit.headers["Retry-After"] == "1"
        assert hit.json()["code"] == "rate_limited"
    assert client.get("/organizations/acme/members", params={"page": 2}).status_code == 200
    assert fault.times == 0 and fault.hits == 2


def test_fault_500_and_malformed_and_drop(sim, client):
    sim.add_fault(path=r"/teams$", status=500, times=1)
    error = client.get("/organizations/acme/teams")
    assert error.status_code == 500 and set(error.json()) == {"code", "message"}
    sim.add_fault(path=r"/teams$", malformed=True, times=1)
    with pytest.raises(json.JSONDecodeError):
        json.loads(client.get("/organizations/acme/teams").text)
    sim.add_fault(path=r"^/v1/organizations$", drop=True, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/organizations")
    assert client.get("/organizations").status_code == 200


# -- world -------------------------------------------------------------------------------------


def assert_planetscale_consistent(state: PlanetScaleState) -> None:
    names = [o.name for o in state.organizations.values()]
    assert len(names) == len(set(names))
    for org_id, org in state.organizations.items():
        assert org_id == org.id
        assert set(org.members) <= set(state.users)
        assert set(org.members.values()) <= set(PS_ROLES)
        assert "admin" in org.members.values()
        slugs = [t.slug for t in org.teams.values()]
        assert len(slugs) == len(set(slugs))
        for team_id, team in org.teams.items():
            assert team_id == team.id
            assert team.members <= set(org.members), f"{team.slug} has non-members"
            assert set(team.joined_at) <= team.members
    emails = [u.email.lower() for u in state.users.values()]
    assert len(emails) == len(set(emails))


def test_evolver_stays_consistent_and_is_served_faithfully():
    rng = random.Random(5)
    state = PlanetScaleState(token_id=TOKEN_ID, token_secret=TOKEN_SECRET)
    populate_planetscale(state, rng, orgs=2, users=15, teams_per_org=3, now=NOW)
    assert_planetscale_consistent(state)
    evolver = PlanetScaleEvolver(state, rng)
    log = []
    for step in range(200):
        changes = evolver.step(NOW + timedelta(hours=step))
        assert changes
        log += changes
        assert_planetscale_consistent(state)
    text = "\n".join(log)
    for kind in (
        "joined acme",
        "left acme",
        "role",
        "joined team",
        "left team",
        "created",
        "deleted",
        "renamed to",
        "changed email",
        "two-factor",
    ):
        assert kind in text, kind

    with (
        PlanetScaleSimulator(state, default_per_page=4) as server,
        httpx.Client(base_url=server.url + "/v1", headers=AUTH, timeout=CLIENT_TIMEOUT) as c,
    ):
        for org in state.organizations.values():
            served, page = {}, 1
            while page:
                body = c.get(f"/organizations/{org.name}/members", params={"page": page}).json()
                served.update({m["user"]["id"]: m["role"] for m in body["data"]})
                page = body["next_page"]
            assert served == org.members
            for team in org.teams.values():
                members = c.get(
                    f"/organizations/{org.name}/teams/{team.slug}/members", params={"per_page": 100}
                ).json()
                assert {m["user"]["id"] for m in members["data"]} == team.members
