"""The simulated Scalr API speaks the real wire format, and its faults and evolver behave.

Also covers the shared ``SimServer`` machinery (faults, journal, drops, delays), since Scalr is the
simplest provider to drive it through.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from daemon.simulate.evolve import make_id
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import (
    ScalrEvolver,
    ScalrServiceAccount,
    ScalrState,
    ScalrTeam,
    ScalrUser,
    populate_scalr,
)

API = "/api/iacp/v3"
NOW = datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC)
#: The simulator answers in milliseconds; 10 s only bounds a hang, also on a loaded machine.
CLIENT_TIMEOUT = 10


def small_state() -> ScalrState:
    state = ScalrState(account_id="acc-testacct0000001", account_name="acme", token="tok-123")
    state.teams["team-a"] = ScalrTeam("team-a", "Platform", "Owns infra")
    state.teams["team-b"] = ScalrTeam("team-b", "Security")
    for n in range(7):
        ident = f"user-{n:017d}"
        state.users[ident] = ScalrUser(
            id=ident,
            email=f"u{n}@acme.example",
            full_name=f"User {n}",
            status=("Active", "Inactive", "Pending")[n % 3],
            last_login_at="2026-08-01T10:00:00Z" if n % 3 == 0 else None,
            teams={"team-a"} if n < 3 else ({"team-b"} if n == 3 else set()),
        )
    state.service_accounts["sa-1"] = ScalrServiceAccount(
        "sa-1", "ci-deployer", "ci-deployer@acme.scalr.io", "CI", "Active"
    )
    state.service_accounts["sa-2"] = ScalrServiceAccount(
        "sa-2", "legacy-bot", "legacy-bot@acme.scalr.io", None, "Inactive"
    )
    return state


@pytest.fixture
def sim():
    with ScalrSimulator(small_state(), default_page_size=3) as server:
        yield server


@pytest.fixture
def client(sim):
    with httpx.Client(
        base_url=sim.url + API, timeout=CLIENT_TIMEOUT, headers={"Authorization": "Bearer tok-123"}
    ) as c:
        yield c


def account_users(client, **params):
    query = {"filter[account]": "acc-testacct0000001", **params}
    return client.get("/account-users", params=query)


# -- authentication and routing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "bearer tok-123", "tok-123", "Bearer  tok-123"]
)
def test_refuses_anything_but_the_exact_bearer_token(sim, header):
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{sim.url}{API}/users", headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "errors": [
            {"status": "401", "title": "Unauthorized", "detail": "Invalid authentication token."}
        ]
    }
    assert response.headers["content-type"] == "application/vnd.api+json"


def test_unknown_path_and_method_use_jsonapi_errors(client):
    missing = client.get("/workspaces")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["status"] == "404"
    post = client.post("/users", json={"data": {}})
    assert post.status_code == 405
    assert post.json()["errors"][0]["title"] == "Method Not Allowed"


@pytest.mark.parametrize(
    "path, kind, ident",
    [
        ("/users/user-nope", "User", "user-nope"),
        ("/teams/team-nope", "Team", "team-nope"),
        ("/accounts/acc-nope", "Account", "acc-nope"),
        ("/service-accounts/sa-nope", "ServiceAccount", "sa-nope"),
    ],
)
def test_single_resource_not_found_body(client, path, kind, ident):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "status": "404",
                "title": "Not Found",
                "detail": f"{kind} with ID '{ident}' not found or user unauthorized",
            }
        ]
    }


# -- listings --------------------------------------------------------------------------------


def test_pagination_meta_across_pages(client):
    seen, metas = [], []
    for page in (1, 2, 3):
        body = account_users(client, **{"page[number]": page}).json()
        metas.append(body["meta"]["pagination"])
        seen += [item["relationships"]["user"]["data"]["id"] for item in body["data"]]
        assert "self" in body["links"]
    assert metas[0] == {
        "current-page": 1,
        "page-size": 3,
        "prev-page": None,
        "next-page": 2,
        "total-pages": 3,
        "total-count": 7,
    }
    assert metas[1]["prev-page"] == 1 and metas[1]["next-page"] == 3
    assert metas[2]["next-page"] is None and metas[2]["current-page"] == 3
    assert sorted(seen) == sorted(f"user-{n:017d}" for n in range(7))
    beyond = account_users(client, **{"page[number]": 9}).json()
    assert beyond["data"] == [] and beyond["meta"]["pagination"]["next-page"] is None


def test_items_are_sorted_by_id_and_page_size_is_clamped(client):
    body = account_users(client, **{"page[size]": 500}).json()
    assert body["meta"]["pagination"]["page-size"] == 100
    ids = [item["id"] for item in body["data"]]
    assert ids == sorted(ids) and len(ids) == 7
    users = client.get("/users", params={"page[size]": 100}).json()["data"]
    assert [u["id"] for u in users] == sorted(u["id"] for u in users)


def test_bracket_params_arrive_the_same_raw_or_percent_encoded(sim):
    def fetch(target: str) -> dict:
        host, port = sim.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=CLIENT_TIMEOUT)
        connection.request("GET", target, headers={"Authorization": "Bearer tok-123"})
        response = connection.getresponse()
        document = json.loads(response.read())
        connection.close()
        return document

    raw = fetch(f"{API}/account-users?filter[account]=acc-testacct0000001&page[size]=2")
    encoded = fetch(f"{API}/account-users?filter%5Baccount%5D=acc-testacct0000001&page%5Bsize%5D=2")
    assert raw["data"] == encoded["data"] and len(raw["data"]) == 2
    assert raw["meta"]["pagination"]["total-count"] == 7
    assert (
        sim.requests[0].query
        == sim.requests[1].query
        == {"filter[account]": ["acc-testacct0000001"], "page[size]": ["2"]}
    )


def test_account_users_need_an_account_or_user_filter(client):
    response = client.get("/account-users")
    assert response.status_code == 422
    assert "filter[account]" in response.json()["errors"][0]["detail"]
    by_user = client.get("/account-users", params={"filter[user]": "user-00000000000000003"})
    assert [d["relationships"]["user"]["data"]["id"] for d in by_user.json()["data"]] == [
        "user-00000000000000003"
    ]
    other = account_users(client, **{"filter[account]": "acc-other"})
    assert other.status_code == 200 and other.json()["data"] == []


def test_account_user_shape_and_include(client):
    plain = account_users(client, **{"page[size]": 100}).json()
    assert "included" not in plain
    item = next(
        d
        for d in plain["data"]
        if d["relationships"]["user"]["data"]["id"] == "user-00000000000000000"
    )
    assert item["type"] == "account-users"
    assert item["attributes"] == {"status": "Active", "last-login-at": "2026-08-01T10:00:00Z"}
    assert item["relationships"]["account"]["data"] == {
        "type": "accounts",
        "id": "acc-testacct0000001",
    }
    assert item["relationships"]["teams"]["data"] == [{"type": "teams", "id": "team-a"}]

    with_users = account_users(client, include="user", **{"page[size]": 100}).json()
    assert {i["type"] for i in with_users["included"]} == {"users"}
    user = next(i for i in with_users["included"] if i["id"] == "user-00000000000000001")
    assert user["attributes"] == {
        "email": "u1@acme.example",
        "username": "u1@acme.example",
        "full-name": "User 1",
        "status": "Inactive",
        "created-at": "2024-01-01T00:00:00Z",
        "last-login-at": None,
    }
    assert set(user["relationships"]) == {"identity-providers", "teams"}

    everything = account_users(client, include="user,teams,account", **{"page[size]": 100}).json()
    kinds = [i["type"] for i in everything["included"]]
    assert kinds.count("accounts") == 1 and kinds.count("users") == 7
    teams = {i["id"]: i for i in everything["included"] if i["type"] == "teams"}
    assert set(teams) == {"team-a", "team-b"}
    assert teams["team-a"]["attributes"] == {"name": "Platform", "description": "Owns infra"}

    assert account_users(client, include="bogus").status_code == 400


def test_users_service_accounts_teams_and_accounts(client):
    by_email = client.get("/users", params={"filter[email]": "u2@acme.example"}).json()
    assert [u["id"] for u in by_email["data"]] == ["user-00000000000000002"]
    assert by_email["meta"]["pagination"]["total-count"] == 1
    assert client.get("/users", params={"filter[user]": "user-x"}).json()["data"] == []
    single = client.get("/users/user-00000000000000003").json()["data"]
    assert single["relationships"]["teams"]["data"] == [{"type": "teams", "id": "team-b"}]

    sas = client.get("/service-accounts", params={"filter[account]": "acc-testacct0000001"}).json()[
        "data"
    ]
    assert [(s["id"], s["attributes"]["status"]) for s in sas] == [
        ("sa-1", "Active"),
        ("sa-2", "Inactive"),
    ]
    assert sas[1]["attributes"]["description"] is None
    assert "last-login-at" not in sas[0]["attributes"]

    teams = client.get("/teams", params={"filter[account]": "acc-testacct0000001"}).json()
    team_a = teams["data"][0]
    assert team_a["id"] == "team-a" and team_a["type"] == "teams"
    assert [u["id"] for u in team_a["relationships"]["users"]["data"]] == [
        f"user-{n:017d}" for n in range(3)
    ]
    assert client.get("/teams/team-b").json()["data"]["attributes"]["name"] == "Security"

    accounts = client.get("/accounts", params={"filter[name]": "acme"}).json()
    assert [a["id"] for a in accounts["data"]] == ["acc-testacct0000001"]
    assert accounts["data"][0]["attributes"]["name"] == "acme"
    assert client.get("/accounts", params={"filter[name]": "nope"}).json()["data"] == []
    assert client.get("/accounts/acc-testacct0000001").json()["data"]["type"] == "accounts"


def test_state_changes_are_visible_immediately(sim, client):
    with sim.state.lock:
        sim.state.users["user-00000000000000000"].status = "Inactive"
        del sim.state.teams["team-a"]
    body = client.get(
        "/account-users", params={"filter[user]": "user-00000000000000000", "include": "teams"}
    ).json()
    assert body["data"][0]["attributes"]["status"] == "Inactive"
    assert body["data"][0]["relationships"]["teams"]["data"] == []  # no dangling team ids
    assert body["included"] == []


# -- faults and journal --------------------------------------------------------------------------


def test_fault_matches_path_page_and_times_with_headers(sim, client):
    fault = sim.add_fault(
        path=r"/account-users$", page=2, status=503, times=1, headers={"Retry-After": "1"}
    )
    assert account_users(client, **{"page[number]": 1}).status_code == 200
    hit = account_users(client, **{"page[number]": 2})
    assert hit.status_code == 503 and hit.headers["Retry-After"] == "1"
    assert hit.json() == {
        "errors": [
            {
                "status": "503",
                "title": "Service Unavailable",
                "detail": hit.json()["errors"][0]["detail"],
            }
        ]
    }
    assert account_users(client, **{"page[number]": 2}).status_code == 200
    assert fault.times == 0 and fault.hits == 1
    assert client.get("/users", params={"page[number]": 2}).status_code == 200


def test_first_matching_fault_wins_and_faults_precede_auth(sim):
    sim.add_fault(path=r"/users", status=429, headers={"Retry-After": "7"})
    sim.add_fault(path=r"/users", status=500)
    response = httpx.get(f"{sim.url}{API}/users")  # no token at all
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["errors"][0]["title"] == "Too Many Requests"
    sim.clear_faults()
    assert httpx.get(f"{sim.url}{API}/users").status_code == 401


def test_fault_custom_body_and_malformed(sim, client):
    sim.add_fault(path=r"/teams$", status=403, body='{"errors":[{"status":"403"}]}', times=1)
    assert client.get("/teams").json() == {"errors": [{"status": "403"}]}
    sim.add_fault(path=r"/teams$", malformed=True, times=1)
    broken = client.get("/teams")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    assert client.get("/teams").status_code == 200


def test_fault_drop_closes_without_response(sim, client):
    sim.add_fault(path=r"/users$", drop=True, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/users")
    assert client.get("/users").status_code == 200


def test_fault_delay_times_out_or_passes_through(sim, client):
    # The socket's own 0.15 s timeout fires while the server sleeps 0.6 s: the kernel keeps that
    # time, so a loaded machine cannot make the answer arrive first.
    sim.add_fault(path=r"/users$", delay=0.6, times=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/users", timeout=0.15)
    sim.add_fault(path=r"/teams$", status=200, delay=0.2, times=1, headers={"X-Sim": "slow"})
    started = time.monotonic()
    slow = client.get("/teams")
    assert time.monotonic() - started >= 0.2  # a lower bound: load only makes it longer
    assert slow.status_code == 200 and slow.json()["data"] and slow.headers["X-Sim"] == "slow"


def test_requests_are_recorded_and_clearable(sim, client):
    account_users(client, include="user")
    recorded = sim.requests[-1]
    assert recorded.method == "GET" and recorded.path == f"{API}/account-users"
    assert recorded.query["include"] == ["user"]
    assert (
        recorded.headers["authorization"] == recorded.headers["Authorization"] == "Bearer tok-123"
    )
    sim.clear_requests()
    assert sim.requests == []


# -- world ---------------------------------------------------------------------------------------


def test_make_id_shapes():
    rng = random.Random(3)
    assert make_id("user", rng).startswith("user-") and len(make_id("user-", rng)) == 22
    bare = make_id("", rng)
    assert len(bare) == 12 and bare.isalnum() and bare == bare.lower()


def assert_scalr_consistent(state: ScalrState) -> None:
    emails = [u.email.lower() for u in state.users.values()]
    assert len(emails) == len(set(emails))
    for key, user in state.users.items():
        assert key == user.id and user.id.startswith("user-")
        assert user.teams <= set(state.teams), f"{user.id} in a missing team"
        assert user.status in {"Active", "Inactive", "Pending"}
    for key, sa in state.service_accounts.items():
        assert key == sa.id and sa.status in {"Active", "Inactive"}
    assert all(key == team.id for key, team in state.teams.items())
    assert len({t.name for t in state.teams.values()}) == len(state.teams)


def evolve(seed: int, steps: int) -> tuple[ScalrState, ScalrEvolver, list[str]]:
    rng = random.Random(seed)
    state = ScalrState()
    populate_scalr(state, rng, users=20, service_accounts=3, teams=4, now=NOW)
    evolver = ScalrEvolver(state, rng)
    log = []
    for step in range(steps):
        changes = evolver.step(NOW + timedelta(hours=step))
        assert changes
        log += changes
        assert_scalr_consistent(state)
    return state, evolver, log


def test_evolver_stays_consistent_and_is_reproducible():
    state, evolver, log = evolve(seed=7, steps=200)
    assert evolve(seed=7, steps=200)[2] == log
    text = "\n".join(log)
    for kind in (
        "joined",
        "left the account",
        "came back",
        "disabled",
        "re-enabled",
        "signed in",
        "renamed",
        "changed email",
        "moved from team",
        "left team",
        "service account",
        "created",
        "deleted",
    ):
        assert kind in text, kind
    assert set(evolver.departed).isdisjoint(state.users)
    stamps = {u.last_login_at for u in state.users.values() if u.last_login_at}
    assert any(s.endswith("Z") and len(s) == 20 for s in stamps)


def test_evolved_state_is_served_faithfully():
    state, _, _ = evolve(seed=11, steps=60)
    with (
        ScalrSimulator(state, default_page_size=7) as server,
        httpx.Client(
            base_url=server.url + API,
            timeout=CLIENT_TIMEOUT,
            headers={"Authorization": f"Bearer {state.token}"},
        ) as c,
    ):
        seen: dict[str, dict] = {}
        page = 1
        while page:
            body = c.get(
                "/account-users",
                params={
                    "filter[account]": state.account_id,
                    "include": "user,teams",
                    "page[number]": page,
                },
            ).json()
            included = {(i["type"], i["id"]) for i in body["included"]}
            for item in body["data"]:
                user_id = item["relationships"]["user"]["data"]["id"]
                assert ("users", user_id) in included
                seen[user_id] = item
            page = body["meta"]["pagination"]["next-page"]
    assert set(seen) == set(state.users)
    for user_id, item in seen.items():
        user = state.users[user_id]
        assert item["attributes"]["status"] == user.status
        assert {t["id"] for t in item["relationships"]["teams"]["data"]} == user.teams
