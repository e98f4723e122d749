"""The simulators serve access data in the documented shapes, refuse it on demand, and evolve it.

Scalr: ``/roles``, ``/access-policies`` and each service account's ``access-tokens``
(``api/scalr-access.md``); PlanetScale: ``databases`` and ``analyst_databases`` on team objects
(``api/planetscale.md``). Everything goes over real HTTP to the simulators on 127.0.0.1.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import (
    PlanetScaleEvolver,
    PlanetScaleState,
    populate_planetscale,
)
from daemon.simulate.scalr import world as scalr_world
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import (
    ADMIN_PERMISSION,
    ADMIN_ROLE_ID,
    USER_ROLE_ID,
    ScalrAccessPolicy,
    ScalrAccessToken,
    ScalrEvolver,
    ScalrState,
    live_policies,
    populate_scalr,
    scope_exists,
    subject_exists,
)

API = "/api/iacp/v3"
NOW = datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC)
CLIENT_TIMEOUT = 10
RELATIONSHIPS = {"roles", "user", "team", "service-account", "account", "environment", "workspace"}


def populated(seed: int = 3) -> ScalrState:
    state = ScalrState()
    populate_scalr(state, random.Random(seed), users=25, service_accounts=4, teams=5, now=NOW)
    return state


def scalr_client(sim: ScalrSimulator) -> httpx.Client:
    return httpx.Client(
        base_url=sim.url + API,
        timeout=CLIENT_TIMEOUT,
        headers={"Authorization": f"Bearer {sim.state.token}"},
    )


def read_all(client: httpx.Client, path: str, **params) -> tuple[list[dict], list[dict], int]:
    """Every item and included resource of a listing, and how many pages it took."""
    data: list[dict] = []
    included: list[dict] = []
    page, pages = 1, 0
    while page:
        response = client.get(path, params={**params, "page[number]": page, "page[size]": 100})
        assert response.status_code == 200, response.text
        body = response.json()
        data += body["data"]
        included += body.get("included", [])
        page, pages = body["meta"]["pagination"]["next-page"], pages + 1
    return data, included, pages


def assert_scalr_access_consistent(state: ScalrState) -> None:
    for policy in state.access_policies.values():
        assert subject_exists(state, policy.subject_kind, policy.subject_id), policy
        assert scope_exists(state, policy.scope_kind, policy.scope_id), policy
        assert policy.role_ids and set(policy.role_ids) <= set(state.roles), policy
    assert set(state.access_tokens) <= set(state.service_accounts)
    for ws in state.workspaces.values():
        assert ws.environment_id in state.environments
    ids = [t for tokens in state.access_tokens.values() for t in tokens]
    assert len(ids) == len(set(ids))


# -- population ------------------------------------------------------------------------------------


def test_populate_gives_a_plausible_access_setup():
    state = populated()
    assert_scalr_access_consistent(state)
    assert len(state.environments) == 2 and 3 <= len(state.workspaces) <= 5
    custom = [r for r in state.roles.values() if not r.is_system]
    assert 2 <= len(custom) <= 3 and USER_ROLE_ID in state.roles
    assert ADMIN_PERMISSION in state.roles[ADMIN_ROLE_ID].permissions
    policies = state.access_policies.values()
    assert any(
        p.subject_kind == "user" and p.scope_kind == "account" and ADMIN_ROLE_ID in p.role_ids
        for p in policies
    )
    assert {p.subject_kind for p in policies} == {"user", "team", "service-account"}
    assert {p.scope_kind for p in policies} == {"account", "environment", "workspace"}
    tokens = [t for per_sa in state.access_tokens.values() for t in per_sa.values()]
    assert any(t.expires_at is None for t in tokens)
    assert any(t.last_used_at is None for t in tokens)
    assert all(t.id.startswith("at-") and t.token for t in tokens)


def test_access_population_leaves_the_people_draws_alone(monkeypatch):
    """Seeded histories of people and teams are the same as before access data existed."""
    rng = random.Random(9)
    state = ScalrState()
    populate_scalr(state, rng, users=10, service_accounts=2, teams=3, now=NOW)
    after = rng.random()
    monkeypatch.setattr(scalr_world, "populate_scalr_access", lambda *args: None)
    again = random.Random(9)
    bare = ScalrState()
    populate_scalr(bare, again, users=10, service_accounts=2, teams=3, now=NOW)
    assert again.random() == after
    assert sorted(state.users) == sorted(bare.users) and not bare.access_policies


# -- roles -------------------------------------------------------------------------------------


def test_roles_list_system_and_custom_roles_in_the_documented_shape():
    state = populated()
    with ScalrSimulator(state) as sim, scalr_client(sim) as c:
        roles, _, _ = read_all(c, "/roles", **{"filter[account]": f"in:null,{state.account_id}"})
        assert {r["id"] for r in roles} == set(state.roles)
        for item in roles:
            role = state.roles[item["id"]]
            assert item["type"] == "roles"
            assert item["attributes"] == {
                "name": role.name,
                "description": role.description,
                "is-system": role.is_system,
            }
            account = item["relationships"]["account"]["data"]
            assert account is None if role.is_system else account["id"] == state.account_id
            assert item["relationships"]["permissions"]["data"] == [
                {"type": "permissions", "id": p} for p in sorted(role.permissions)
            ]
        system_only, _, _ = read_all(c, "/roles", **{"filter[account]": "in:null,acc-other"})
        assert {r["id"] for r in system_only} == {r.id for r in state.roles.values() if r.is_system}
        user_role = c.get(f"/roles/{USER_ROLE_ID}").json()["data"]
        assert user_role["attributes"]["name"] == "user"
        assert c.get("/roles/role-nonexisting").status_code == 404


# -- access policies ---------------------------------------------------------------------------


def test_access_policies_carry_seven_relationships_and_included_scopes():
    state = populated()
    with ScalrSimulator(state) as sim, scalr_client(sim) as c:
        params = {"filter[account]": state.account_id, "include": "environment,workspace"}
        policies, included, _ = read_all(c, "/access-policies", **params)
    assert {p["id"] for p in policies} == set(state.access_policies)
    names = {(i["type"], i["id"]): i["attributes"]["name"] for i in included}
    for item in policies:
        policy = state.access_policies[item["id"]]
        assert item["type"] == "access-policies"
        assert item["attributes"] == {"is-system": policy.is_system}
        rel = item["relationships"]
        assert set(rel) == RELATIONSHIPS
        assert rel["roles"]["data"] == [{"type": "roles", "id": r} for r in policy.role_ids]
        subjects = [k for k in ("user", "team", "service-account") if rel[k]["data"] is not None]
        assert subjects == [policy.subject_kind]
        assert rel[policy.subject_kind]["data"] == {
            "type": f"{policy.subject_kind}s",
            "id": policy.subject_id,
        }
        assert rel["account"]["data"] == {"type": "accounts", "id": state.account_id}
        for kind in ("environment", "workspace"):
            if kind == policy.scope_kind:
                assert rel[kind]["data"]["id"] == policy.scope_id
                assert names[(f"{kind}s", policy.scope_id)] in {
                    s.name for s in (*state.environments.values(), *state.workspaces.values())
                }
            else:
                assert rel[kind]["data"] is None


def test_access_policies_page_past_a_hundred_and_filter():
    state = populated()
    users = sorted(state.users)
    for n in range(130):
        ident = f"ap-bulk{n:012d}"
        state.access_policies[ident] = ScalrAccessPolicy(
            ident, "user", users[n % len(users)], "account", state.account_id, [USER_ROLE_ID]
        )
    with ScalrSimulator(state) as sim, scalr_client(sim) as c:
        policies, _, pages = read_all(
            c, "/access-policies", **{"filter[account]": state.account_id}
        )
        assert len(policies) == len(live_policies(state)) > 100 and pages == 2
        assert read_all(c, "/access-policies", **{"filter[account]": "acc-other"})[0] == []
        mine, _, _ = read_all(c, "/access-policies", **{"filter[user]": users[0]})
        assert {p["id"] for p in mine} == {
            p.id for p in state.access_policies.values() if p.subject_id == users[0]
        }
        one = sorted(state.access_policies)[0]
        body = c.get(f"/access-policies/{one}", params={"include": "roles"}).json()
        assert body["data"]["id"] == one and body["included"][0]["type"] == "roles"


# -- tokens ------------------------------------------------------------------------------------


def test_access_tokens_carry_their_secret_and_nullable_times():
    state = populated()
    with ScalrSimulator(state) as sim, scalr_client(sim) as c:
        for sa_id, tokens in state.access_tokens.items():
            served, _, _ = read_all(c, f"/service-accounts/{sa_id}/access-tokens")
            assert {t["id"] for t in served} == set(tokens)
            for item in served:
                token = tokens[item["id"]]
                assert item["type"] == "access-tokens"
                attributes = item["attributes"]
                assert attributes["token"] == token.token and token.token
                assert attributes["name"] == token.name
                assert attributes["description"] == token.description
                assert attributes["created-at"] == token.created_at
                assert attributes["expires-at"] == token.expires_at
                assert attributes["last-used-at"] == token.last_used_at
        missing = c.get("/service-accounts/sa-notexisting/access-tokens")
        assert missing.status_code == 404
        assert "ServiceAccount with ID 'sa-notexisting'" in missing.json()["errors"][0]["detail"]


def test_access_tokens_page_past_a_hundred():
    state = populated()
    sa_id = sorted(state.service_accounts)[0]
    for n in range(120):
        ident = f"at-bulk{n:012d}"
        state.access_tokens[sa_id][ident] = ScalrAccessToken(ident, f"t{n}", token=f"secret-{n}")
    with ScalrSimulator(state) as sim, scalr_client(sim) as c:
        served, _, pages = read_all(c, f"/service-accounts/{sa_id}/access-tokens")
    assert len(served) == len(state.access_tokens[sa_id]) > 100 and pages == 2


# -- refusals and faults -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forbidden", "refused", "allowed"),
    [
        ("roles", ["/roles"], ["/access-policies", "TOKENS0"]),
        ("access-policies", ["/access-policies"], ["/roles", "TOKENS0"]),
        ("access-tokens", ["TOKENS0", "TOKENS1"], ["/roles", "/access-policies"]),
        ("access-tokens:SA0", ["TOKENS0"], ["TOKENS1", "/roles"]),
    ],
)
def test_each_listing_can_answer_403(forbidden, refused, allowed):
    state = populated()
    sa = sorted(state.service_accounts)
    state.forbidden.add(forbidden.replace("SA0", sa[0]))

    def path(name: str) -> str:
        return f"/service-accounts/{sa[int(name[-1])]}/access-tokens" if "TOKENS" in name else name

    with ScalrSimulator(state) as sim, scalr_client(sim) as c:
        for name in refused:
            response = c.get(path(name), params={"filter[account]": state.account_id})
            assert response.status_code == 403, name
            assert response.json() == {
                "errors": [
                    {
                        "status": "403",
                        "title": "Forbidden",
                        "detail": "User unauthorized to perform this action.",
                    }
                ]
            }
        for name in allowed:
            assert c.get(path(name)).status_code == 200, name


def test_faults_apply_to_the_new_paths():
    state = populated()
    with ScalrSimulator(state) as sim, scalr_client(sim) as c:
        sim.add_fault(path=r"/roles$", status=500, times=1)
        sim.add_fault(path=r"/access-policies$", status=429, headers={"Retry-After": "1"}, times=1)
        sim.add_fault(path=r"/access-tokens$", malformed=True, times=1)
        assert c.get("/roles").status_code == 500
        limited = c.get("/access-policies")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        sa = sorted(state.service_accounts)[0]
        broken = c.get(f"/service-accounts/{sa}/access-tokens")
        with pytest.raises(ValueError):
            broken.json()
        assert c.get("/roles").status_code == 200


# -- evolution ---------------------------------------------------------------------------------


def test_each_scalr_access_mutation_keeps_the_state_consistent():
    state = populated()
    evolver = ScalrEvolver(state, random.Random(1))
    for _, mutation in evolver._access_mutations:
        for hour in range(5):
            description = mutation(NOW + timedelta(hours=hour))
            assert description is None or description.startswith("scalr: ")
            assert_scalr_access_consistent(state)
    # removing subjects removes their policies and tokens
    for mutation in (evolver._leaver, evolver._remove_team, evolver._remove_service_account):
        for _ in range(3):
            mutation(NOW)
            assert_scalr_access_consistent(state)
            assert live_policies(state) == sorted(
                state.access_policies.values(), key=lambda p: p.id
            )


def test_scalr_evolution_reaches_every_access_mutation():
    state = populated()
    evolver = ScalrEvolver(state, random.Random(2))
    log = []
    for step in range(300):
        log += evolver.step(NOW + timedelta(hours=step))
        assert_scalr_access_consistent(state)
    text = "\n".join(log)
    for phrase in (
        " granted ",
        " lost ",
        "promoted to admin",
        ": roles ",
        "created for service account",
        " used",
        "token ",
        "deleted",
        "role ",
        " permissions ",
    ):
        assert phrase in text, phrase
    used = [t for per_sa in state.access_tokens.values() for t in per_sa.values()]
    assert any(t.last_used_at and t.last_used_at.endswith("Z") for t in used)


# -- PlanetScale team database access ----------------------------------------------------------


def ps_state(seed: int = 4) -> PlanetScaleState:
    state = PlanetScaleState()
    populate_planetscale(state, random.Random(seed), orgs=2, users=15, teams_per_org=3, now=NOW)
    return state


def ps_teams(state: PlanetScaleState, org_name: str) -> list[dict]:
    headers = {"Authorization": f"{state.token_id}:{state.token_secret}"}
    with (
        PlanetScaleSimulator(state) as sim,
        httpx.Client(base_url=sim.url + "/v1", headers=headers, timeout=CLIENT_TIMEOUT) as c,
    ):
        return c.get(f"/organizations/{org_name}/teams", params={"per_page": 100}).json()["data"]


def assert_ps_grants_consistent(state: PlanetScaleState) -> None:
    for org in state.organizations.values():
        for team in org.teams.values():
            assert team.databases <= set(org.databases)
            assert team.analyst_databases <= set(org.databases)


def test_planetscale_teams_carry_database_access():
    state = ps_state()
    assert any(t.databases for o in state.organizations.values() for t in o.teams.values())
    assert any(t.analyst_databases for o in state.organizations.values() for t in o.teams.values())
    for org in state.organizations.values():
        for item in ps_teams(state, org.name):
            team = org.teams[item["id"]]
            for key, ids in (
                ("databases", team.databases),
                ("analyst_databases", team.analyst_databases),
            ):
                assert {d["id"] for d in item[key]} == ids
                for database in item[key]:
                    assert set(database) == {"id", "name", "url", "branches_url"}
                    assert database["name"] == org.databases[database["id"]].name
                    assert database["branches_url"] == database["url"] + "/branches"


def test_planetscale_teams_can_be_served_without_database_keys():
    state = ps_state()
    state.team_database_keys = False
    org = next(iter(state.organizations.values()))
    for item in ps_teams(state, org.name):
        assert "databases" not in item and "analyst_databases" not in item
        assert item["slug"]


def test_planetscale_database_mutations_keep_the_state_consistent():
    state = ps_state()
    evolver = PlanetScaleEvolver(state, random.Random(5))
    log = []
    for _, mutation in evolver._access_mutations:
        for _ in range(6):
            description = mutation(NOW)
            if description:
                log.append(description)
            assert_ps_grants_consistent(state)
    for step in range(100):
        log += evolver.step(NOW + timedelta(hours=step))
        assert_ps_grants_consistent(state)
    text = "\n".join(log)
    assert "admin access to database" in text and "analyst access to database" in text
    assert " given " in text and " lost " in text
