"""Scalr roles, access policies and service-account tokens, synced over HTTP from the simulator.

One account holds every shape the contract names: system and custom roles; policies on the
account, an environment and a workspace; bound to a user, a team and a service account; two
policies granting the same thing; tokens that never expire and one never used. Each test syncs it
into a real SQLite file and reads the exact rows back with SQL.
"""

from __future__ import annotations

import json

import pytest

from daemon.simulate.scalr.world import (
    ADMIN_ROLE_ID,
    READER_ROLE_ID,
    USER_ROLE_ID,
    ScalrAccessPolicy,
    ScalrAccessToken,
    ScalrEnvironment,
    ScalrRole,
    ScalrServiceAccount,
    ScalrState,
    ScalrTeam,
    ScalrUser,
    ScalrWorkspace,
)
from daemon.sync import sync_provider
from tests.helpers import (
    TEST_POLICY,
    WatchedScalr,
    change,
    changes_of,
    query,
    settings_for,
    sort_changes,
    sync,
)

ACC = ScalrState().account_id
ADA, BOB = "user-accada0000001", "user-accbob0000001"
DEPLOY = "sa-accdeploy00001"
PLATFORM = "team-accplatform01"
PROD, API = "env-accprod000001", "ws-accapi00000001"
DEPLOYER = "role-accdeployer01"
CI_TOKEN, SPARE_TOKEN = "at-accci00000001", "at-accspare000001"
SECRETS = ("sekrit-ci-token-value-0123456789", "sekrit-spare-token-value-98765")


def access_state() -> ScalrState:
    state = ScalrState()
    state.teams = {PLATFORM: ScalrTeam(PLATFORM, "Platform")}
    state.users = {
        ADA: ScalrUser(ADA, "ada@acme.example", "Ada Lovelace", teams={PLATFORM}),
        BOB: ScalrUser(BOB, "bob@acme.example", "Bob Baker"),
    }
    state.service_accounts = {
        DEPLOY: ScalrServiceAccount(DEPLOY, "deploy", "deploy@acme.example", "CI deploys")
    }
    state.environments = {PROD: ScalrEnvironment(PROD, "production")}
    state.workspaces = {API: ScalrWorkspace(API, "api", PROD)}
    state.roles[DEPLOYER] = ScalrRole(
        DEPLOYER, "deployer", "Runs deploys", False, {"runs:create", "*:read"}
    )
    policies = [
        ScalrAccessPolicy("ap-accada0000001", "user", ADA, "account", ACC, [ADMIN_ROLE_ID]),
        # the same grant again: one grant
        ScalrAccessPolicy("ap-accada0000002", "user", ADA, "account", ACC, [ADMIN_ROLE_ID]),
        ScalrAccessPolicy(
            "ap-accteam000001", "team", PLATFORM, "environment", PROD, [READER_ROLE_ID, DEPLOYER]
        ),
        ScalrAccessPolicy(
            "ap-accdeploy0001", "service-account", DEPLOY, "workspace", API, [DEPLOYER]
        ),
        ScalrAccessPolicy(
            "ap-accbob0000001", "user", BOB, "account", ACC, [USER_ROLE_ID], is_system=True
        ),
    ]
    state.access_policies = {policy.id: policy for policy in policies}
    state.access_tokens = {
        DEPLOY: {
            CI_TOKEN: ScalrAccessToken(
                CI_TOKEN,
                "ci",
                "CI pipeline",
                created_at="2026-01-02T03:04:05Z",
                expires_at=None,
                last_used_at="2026-11-30T10:00:00Z",
                token=SECRETS[0],
            ),
            SPARE_TOKEN: ScalrAccessToken(
                SPARE_TOKEN,
                "spare",
                None,
                created_at="2026-02-01T00:00:00Z",
                expires_at="2027-02-01T00:00:00Z",
                last_used_at=None,
                token=SECRETS[1],
            ),
        }
    }
    return state


@pytest.fixture
def sim():
    with WatchedScalr(access_state()) as simulator:
        yield simulator


def grants(db_path, where: str = "1") -> set[tuple]:
    rows = query(
        db_path,
        "SELECT resource_type, resource_id, resource_name, principal_type, principal_id, "
        f"role_id, role, removed_at IS NOT NULL AS removed FROM grants WHERE {where}",
    )
    return {tuple(row.values()) for row in rows}


def current_grants(db_path) -> set[tuple]:
    return {g[:-1] for g in grants(db_path) if not g[-1]}


BASE_GRANTS = {
    ("organization", ACC, "acme", "user", ADA, ADMIN_ROLE_ID, "admin"),
    ("organization", ACC, "acme", "user", BOB, USER_ROLE_ID, "user"),
    ("environment", PROD, "production", "team", PLATFORM, READER_ROLE_ID, "reader"),
    ("environment", PROD, "production", "team", PLATFORM, DEPLOYER, "deployer"),
    ("workspace", API, "api", "user", DEPLOY, DEPLOYER, "deployer"),
}


def test_a_first_sync_records_the_roles_grants_and_tokens_exactly(sim, db_path):
    outcome = sync(db_path, scalr=sim)
    assert outcome.status == "succeeded", outcome.error
    roles = query(
        db_path,
        "SELECT id, name, description, is_system, permissions, removed_at FROM roles "
        "WHERE provider = 'scalr' ORDER BY id",
    )
    by_id = {row["id"]: row for row in roles}
    assert set(by_id) == set(access_state().roles)
    assert by_id[DEPLOYER] == {
        "id": DEPLOYER,
        "name": "deployer",
        "description": "Runs deploys",
        "is_system": 0,
        "permissions": "*:read,runs:create",
        "removed_at": None,
    }
    assert by_id[ADMIN_ROLE_ID]["is_system"] == 1
    assert by_id[ADMIN_ROLE_ID]["permissions"] == "*:*"

    assert current_grants(db_path) == BASE_GRANTS
    binding = query(
        db_path,
        "SELECT binding_id FROM grants WHERE principal_id = ? AND role_id = ?",
        [ADA, ADMIN_ROLE_ID],
    )
    assert [row["binding_id"] for row in binding] in (["ap-accada0000001"], ["ap-accada0000002"])
    versions = query(db_path, "SELECT * FROM grant_versions")
    assert len(versions) == 5 and all(v["valid_to"] is None for v in versions)

    assert query(
        db_path,
        "SELECT id, owner_type, owner_id, name, description, created_at, expires_at, "
        "last_used_at, removed_at FROM credentials ORDER BY id",
    ) == [
        {
            "id": CI_TOKEN,
            "owner_type": "user",
            "owner_id": DEPLOY,
            "name": "ci",
            "description": "CI pipeline",
            "created_at": "2026-01-02T03:04:05.000Z",
            "expires_at": None,
            "last_used_at": "2026-11-30T10:00:00.000Z",
            "removed_at": None,
        },
        {
            "id": SPARE_TOKEN,
            "owner_type": "user",
            "owner_id": DEPLOY,
            "name": "spare",
            "description": None,
            "created_at": "2026-02-01T00:00:00.000Z",
            "expires_at": "2027-02-01T00:00:00.000Z",
            "last_used_at": None,
            "removed_at": None,
        },
    ]
    # the baseline: rows and versions, no change rows; every kind baselined by this run
    assert query(db_path, "SELECT COUNT(*) AS n FROM changes") == [{"n": 0}]
    assert {(row["kind"], row["run_id"]) for row in query(db_path, "SELECT * FROM baselines")} == {
        ("roles", outcome.run_id),
        ("grants", outcome.run_id),
        ("credentials", outcome.run_id),
    }
    # the token values were never written anywhere
    for path in db_path.parent.glob(db_path.name + "*"):
        data = path.read_bytes()
        assert not any(secret.encode() in data for secret in SECRETS), path


def test_effective_grants_expand_a_team_grant_to_its_current_members(sim, db_path):
    sync(db_path, scalr=sim)
    rows = query(
        db_path,
        "SELECT user_id, email, resource_type, resource_id, resource_name, role_id, role, "
        "via_team_id, via_team_name FROM effective_grants ORDER BY user_id, resource_id, role_id",
    )
    ada, bob, deploy = "ada@acme.example", "bob@acme.example", "deploy@acme.example"
    org, env = ("organization", ACC, "acme"), ("environment", PROD, "production")
    ws = ("workspace", API, "api")
    team = (PLATFORM, "Platform")
    expected = [
        (ADA, ada, *org, ADMIN_ROLE_ID, "admin", None, None),
        (ADA, ada, *env, DEPLOYER, "deployer", *team),
        (ADA, ada, *env, READER_ROLE_ID, "reader", *team),
        (BOB, bob, *org, USER_ROLE_ID, "user", None, None),
        (DEPLOY, deploy, *ws, DEPLOYER, "deployer", None, None),
    ]
    assert [tuple(row.values()) for row in rows] == sorted(
        expected, key=lambda r: (r[0], r[3], r[5])
    )
    # Bob joins the team: he gets its grants through it, with no new grant row
    with sim.state.lock:
        sim.state.users[BOB].teams.add(PLATFORM)
    sync(db_path, scalr=sim)
    via = query(
        db_path,
        "SELECT role FROM effective_grants WHERE user_id = ? AND via_team_id = ? ORDER BY role",
        [BOB, PLATFORM],
    )
    assert [row["role"] for row in via] == ["deployer", "reader"]
    assert current_grants(db_path) == BASE_GRANTS


def grant_row(kind, resource, principal, role_id, role, email=None, team_name=None):
    resource_type, resource_id, resource_name = resource
    principal_type, principal_id = principal
    is_user = principal_type == "user"
    value = {"new_value": role} if kind == "grant_added" else {"old_value": role}
    return change(
        kind,
        user_id=principal_id if is_user else None,
        email=email if is_user else None,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_name=resource_name,
        **value,
    ), {
        "principal_type": principal_type,
        "principal_id": principal_id,
        "principal_name": email if is_user else team_name,
        "role_id": role_id,
    }


def details_of(db_path, run_id) -> dict[tuple, dict | None]:
    rows = query(
        db_path, "SELECT kind, resource_id, user_id, detail FROM changes WHERE run_id = ?", [run_id]
    )
    return {
        (r["kind"], r["resource_id"], r["user_id"]): r["detail"] and json.loads(r["detail"])
        for r in rows
    }


def test_each_kind_of_access_change_records_exactly_its_rows(sim, db_path):
    sync(db_path, scalr=sim)
    state = sim.state
    with state.lock:
        # grants: a new policy for Bob on the workspace; Deploy's policy revoked; Ada's second
        # policy removed (the first still grants the same: no change)
        state.access_policies["ap-accbob0000002"] = ScalrAccessPolicy(
            "ap-accbob0000002", "user", BOB, "workspace", API, [READER_ROLE_ID]
        )
        del state.access_policies["ap-accdeploy0001"]
        del state.access_policies["ap-accada0000002"]
        # roles: one renamed with a permission more, one new, none removed
        state.roles[DEPLOYER].name = "release manager"
        state.roles[DEPLOYER].permissions.add("runs:update")
        state.roles["role-accauditor001"] = ScalrRole("role-accauditor001", "auditor", None, False)
        # tokens: one used, one renamed and its expiry moved, one new
        state.access_tokens[DEPLOY][CI_TOKEN].last_used_at = "2026-12-01T08:00:00Z"
        state.access_tokens[DEPLOY][SPARE_TOKEN].name = "spare-2"
        state.access_tokens[DEPLOY][SPARE_TOKEN].expires_at = "2027-06-01T00:00:00Z"
        state.access_tokens[DEPLOY]["at-accnew00000001"] = ScalrAccessToken(
            "at-accnew00000001", "new", None, created_at="2026-12-01T00:00:00Z", token="sekrit-3"
        )
    outcome = sync(db_path, scalr=sim)
    assert outcome.status == "succeeded", outcome.error
    workspace, deploy = ("workspace", API, "api"), ("user", DEPLOY)
    bob_added, bob_detail = grant_row(
        "grant_added", workspace, ("user", BOB), READER_ROLE_ID, "reader", "bob@acme.example"
    )
    deploy_removed, deploy_detail = grant_row(
        "grant_removed", workspace, deploy, DEPLOYER, "release manager", "deploy@acme.example"
    )
    deployer = dict(resource_type="role", resource_id=DEPLOYER, resource_name="release manager")
    auditor = dict(resource_type="role", resource_id="role-accauditor001", resource_name="auditor")
    owner = dict(user_id=DEPLOY, email="deploy@acme.example", resource_type="credential")
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            bob_added,
            deploy_removed,
            change(
                "role_updated",
                **deployer,
                field="name",
                old_value="deployer",
                new_value="release manager",
            ),
            change(
                "role_updated",
                **deployer,
                field="permissions",
                old_value="*:read,runs:create",
                new_value="*:read,runs:create,runs:update",
            ),
            change("role_added", **auditor),
            change(
                "credential_used",
                **owner,
                resource_id=CI_TOKEN,
                resource_name="ci",
                field="last_used_at",
                old_value="2026-11-30T10:00:00.000Z",
                new_value="2026-12-01T08:00:00.000Z",
            ),
            change(
                "credential_updated",
                **owner,
                resource_id=SPARE_TOKEN,
                resource_name="spare-2",
                field="name",
                old_value="spare",
                new_value="spare-2",
            ),
            change(
                "credential_updated",
                **owner,
                resource_id=SPARE_TOKEN,
                resource_name="spare-2",
                field="expires_at",
                old_value="2027-02-01T00:00:00.000Z",
                new_value="2027-06-01T00:00:00.000Z",
            ),
            change(
                "credential_added", **owner, resource_id="at-accnew00000001", resource_name="new"
            ),
        ]
    )
    details = details_of(db_path, outcome.run_id)
    assert details[("grant_added", API, BOB)] == bob_detail
    assert details[("grant_removed", API, DEPLOY)] == deploy_detail
    assert all(d is None for (kind, _, _), d in details.items() if not kind.startswith("grant"))
    # names follow the rename on the grants still held; versions: one opened, one closed
    assert ("environment", PROD, "production", "team", PLATFORM, DEPLOYER, "release manager") in (
        current_grants(db_path)
    )
    stamp = query(db_path, "SELECT started_at FROM sync_runs WHERE id = ?", [outcome.run_id])
    at = stamp[0]["started_at"]
    moved = query(
        db_path,
        "SELECT principal_id, role_id, valid_to IS NULL AS open FROM grant_versions "
        "WHERE valid_from = ?1 OR valid_to = ?1",
        [at],
    )
    assert {tuple(row.values()) for row in moved} == {
        (DEPLOY, DEPLOYER, 0),
        (BOB, READER_ROLE_ID, 1),
    }
    # the same state again: nothing
    again = sync(db_path, scalr=sim)
    assert changes_of(db_path, again.run_id) == []
    # a role deleted: role_removed; the grants it had stay until the policy listing drops them
    with state.lock:
        del state.roles["role-accauditor001"]
    gone = sync(db_path, scalr=sim)
    assert changes_of(db_path, gone.run_id) == [change("role_removed", **auditor)]


def test_a_user_team_or_service_account_that_is_gone_takes_its_grants_even_when_policies_fail(
    sim, db_path
):
    sync(db_path, scalr=sim)
    with sim.state.lock:
        sim.state.forbidden.add("access-policies")
        del sim.state.users[BOB]
        del sim.state.teams[PLATFORM]
        sim.state.users[ADA].teams.discard(PLATFORM)
        del sim.state.service_accounts[DEPLOY]
        sim.state.access_tokens.pop(DEPLOY, None)
    outcome = sync(db_path, scalr=sim)
    assert outcome.status == "partial"
    assert "access polic" in outcome.error.lower()
    rows = changes_of(db_path, outcome.run_id)
    kinds = sorted(row["kind"] for row in rows if row["kind"].startswith(("grant", "cred")))
    assert kinds == ["credential_removed"] * 2 + ["grant_removed"] * 4
    assert current_grants(db_path) == {
        ("organization", ACC, "acme", "user", ADA, ADMIN_ROLE_ID, "admin")
    }
    assert query(db_path, "SELECT COUNT(*) AS n FROM credentials WHERE removed_at IS NULL") == [
        {"n": 0}
    ]
    team_rows = [r for r in rows if r["kind"] == "grant_removed" and r["user_id"] is None]
    assert {(r["resource_id"], r["old_value"]) for r in team_rows} == {
        (PROD, "reader"),
        (PROD, "deployer"),
    }


def test_a_403_on_access_policies_is_a_partial_run_that_leaves_grants_as_they_were(sim, db_path):
    sync(db_path, scalr=sim)
    before = grants(db_path)
    with sim.state.lock:
        sim.state.forbidden.add("access-policies")
        del sim.state.access_policies["ap-accbob0000001"]  # unseen: must not become a removal
        sim.state.roles[DEPLOYER].description = "Deploys things"
    outcome = sync(db_path, scalr=sim)
    assert outcome.status == "partial"
    assert "403" in outcome.error or "forbidden" in outcome.error.lower()
    assert grants(db_path) == before
    kinds = {row["kind"] for row in changes_of(db_path, outcome.run_id)}
    assert kinds == {"role_updated"}  # the role listing was read; the grants were not
    with sim.state.lock:
        sim.state.forbidden.discard("access-policies")
    healed = sync(db_path, scalr=sim)
    assert healed.status == "succeeded"
    removed = [r for r in changes_of(db_path, healed.run_id) if r["kind"] == "grant_removed"]
    assert [(r["user_id"], r["old_value"]) for r in removed] == [(BOB, "user")]


def test_each_kind_has_its_own_baseline(sim, db_path):
    """Tokens switched off, then on: existing tokens are a baseline; a later token is news.
    Access policies forbidden in the first run: the first run that reads them is their baseline."""
    with sim.state.lock:
        sim.state.forbidden.add("access-policies")

    def sync_with(**env):
        settings = settings_for(db_path, scalr=sim, **env)
        return sync_provider(settings, "scalr", policy=TEST_POLICY)

    first = sync_with(SCALR_READ_TOKENS="false")
    assert first.status == "partial"
    assert query(db_path, "SELECT kind FROM baselines ORDER BY kind") == [{"kind": "roles"}]
    assert query(db_path, "SELECT COUNT(*) AS n FROM grants") == [{"n": 0}]
    assert query(db_path, "SELECT COUNT(*) AS n FROM credentials") == [{"n": 0}]

    with sim.state.lock:
        sim.state.forbidden.discard("access-policies")
        sim.state.roles["role-accauditor001"] = ScalrRole("role-accauditor001", "auditor")
    second = sync_with(SCALR_READ_TOKENS="true")
    assert second.status == "succeeded", second.error
    # roles were baselined by the first run: the new role is a change; grants and tokens are
    # first read now: their baseline, with no change rows
    assert [row["kind"] for row in changes_of(db_path, second.run_id)] == ["role_added"]
    assert current_grants(db_path) == BASE_GRANTS
    assert query(db_path, "SELECT COUNT(*) AS n FROM credentials") == [{"n": 2}]
    assert {row["kind"]: row["run_id"] for row in query(db_path, "SELECT * FROM baselines")} == {
        "roles": first.run_id,
        "grants": second.run_id,
        "credentials": second.run_id,
    }

    with sim.state.lock:
        sim.state.access_tokens[DEPLOY]["at-accnew00000001"] = ScalrAccessToken(
            "at-accnew00000001", "new", None, created_at="2026-12-01T00:00:00Z", token="sekrit-3"
        )
    third = sync_with()
    assert [row["kind"] for row in changes_of(db_path, third.run_id)] == ["credential_added"]


def test_switched_off_listings_are_not_read_and_their_rows_stay(sim, db_path):
    sync(db_path, scalr=sim)
    before = (grants(db_path), query(db_path, "SELECT * FROM credentials ORDER BY id"))
    sim.arrivals.clear()
    with sim.state.lock:
        sim.state.access_policies.clear()
        sim.state.access_tokens[DEPLOY].clear()
    settings = settings_for(
        db_path, scalr=sim, SCALR_READ_ACCESS_POLICIES="false", SCALR_READ_TOKENS="false"
    )
    outcome = sync_provider(settings, "scalr", policy=TEST_POLICY)
    assert outcome.status == "succeeded", outcome.error
    assert (grants(db_path), query(db_path, "SELECT * FROM credentials ORDER BY id")) == before
    assert changes_of(db_path, outcome.run_id) == []
    paths = {arrival.path.rsplit("/", 1)[-1] for arrival in sim.arrivals}
    assert paths == {"accounts", "account-users", "service-accounts", "teams"}


def test_a_403_on_one_service_accounts_tokens_keeps_its_tokens_as_they_were(sim, db_path):
    sync(db_path, scalr=sim)
    before = query(db_path, "SELECT * FROM credentials ORDER BY id")
    with sim.state.lock:
        sim.state.forbidden.add(f"access-tokens:{DEPLOY}")
        sim.state.access_tokens[DEPLOY].pop(CI_TOKEN)  # unseen: must not become a removal
    outcome = sync(db_path, scalr=sim)
    assert outcome.status == "partial"
    assert "403" in outcome.error
    assert query(db_path, "SELECT * FROM credentials ORDER BY id") == before
    assert changes_of(db_path, outcome.run_id) == []
