"""Seeded randomized history: the database must reproduce the simulator's ground truth.

A simulated account (Scalr, then PlanetScale) evolves for many rounds through the world evolvers
(joiners, leavers, disables, re-enables, sign-ins, renames, e-mail changes, team moves, team
renames and deletions, returning leavers, role changes, 2FA toggles; and access: Scalr roles
granted, revoked and changed on policies, tokens added, used and removed, roles renamed or given
other permissions, PlanetScale team database access granted and revoked), and the product syncs
after every round. After each round this file's own reading of the simulator state — computed here,
never with the product's normalisers — is recorded as that round's ground truth, stamped with the
run's ``started_at``. Then:

* for every round so far, the users, memberships and grants reconstructed from ``user_versions``
  / ``membership_versions`` / ``grant_versions`` "as of" that round's ``started_at`` equal that
  round's ground truth (the version tables alone reproduce what every successful run saw);
* the round's ``changes`` rows equal, as a multiset, the differences between the ground truth of
  the previous round and this one: every change row is a real difference and every real
  difference has its row (with the user's e-mail and the organisation's or team's name; grant,
  role and credential rows with the names as they are after the run, and a grant's ``detail``);
* version rows are written only for what changed, and the current tables (users, memberships,
  teams, grants, roles, credentials) match the truth.

The seeds are fixed, so a failure reproduces; the round at which it happened is in the message.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import (
    PlanetScaleEvolver,
    PlanetScaleState,
    populate_planetscale,
)
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrEvolver, ScalrState, populate_scalr
from tests.helpers import (
    CHANGE_FIELDS,
    SCALR_STATUS,
    USER_FIELDS,
    change,
    memberships_as_of,
    of,
    organization,
    query,
    run_row,
    scalr_time,
    sync,
    users_as_of,
    versions_valid_at,
)
from tests.helpers import team as team_resource

SCALR_SEED = 20260901
SCALR_ROUNDS = 60
PLANETSCALE_SEED = 424242
PLANETSCALE_ROUNDS = 35
START = datetime(2026, 9, 1, 8, 0, 0, tzinfo=UTC)
USER_KIND = {"status": "status_changed", "last_sign_in_at": "last_sign_in_changed"}
#: The tracked columns of a role and of a credential, in ``roles`` / ``credentials`` alike.
ROLE_FIELDS = ("name", "description", "is_system", "permissions")
CREDENTIAL_FIELDS = ("owner_id", "name", "description", "created_at", "expires_at", "last_used_at")
#: The credential columns a change row is recorded for, and its kind.
CREDENTIAL_KIND = {
    "name": "credential_updated",
    "description": "credential_updated",
    "expires_at": "credential_updated",
    "last_used_at": "credential_used",
}
#: The keys of a grant row's ``detail`` this file checks (``detail`` may hold more).
DETAIL_KEYS = ("principal_type", "principal_id", "principal_name", "role_id")


@dataclass
class Truth:
    """What one provider looked like at one round, in the database's terms."""

    users: dict[str, tuple] = field(default_factory=dict)  # id → USER_FIELDS values
    memberships: dict[tuple, str] = field(default_factory=dict)  # (type, res, user) → role
    organizations: dict[str, tuple] = field(default_factory=dict)  # id → (name,)
    teams: dict[str, tuple] = field(default_factory=dict)  # id → tracked team values
    team_fields: tuple[str, ...] = ()
    roles: dict[str, tuple] = field(default_factory=dict)  # id → ROLE_FIELDS values
    # (resource_type, resource_id, principal_type, principal_id, role_id) → (role, resource_name)
    grants: dict[tuple, tuple] = field(default_factory=dict)
    credentials: dict[str, tuple] = field(default_factory=dict)  # id → CREDENTIAL_FIELDS values
    resources: dict[tuple, str] = field(default_factory=dict)  # (type, id) → name, grantable
    stamp: str = ""
    run_id: int = 0


# -- ground truth, read straight from the simulators' state ------------------------------------


def scalr_truth(state: ScalrState) -> Truth:
    truth = Truth(team_fields=("name", "description"))
    truth.organizations[state.account_id] = (state.account_name,)
    for team in state.teams.values():
        truth.teams[team.id] = (team.name, team.description)
    for u in state.users.values():
        truth.users[u.id] = (
            u.email,
            u.full_name,
            "human",
            SCALR_STATUS[u.status],
            u.status,
            scalr_time(u.last_login_at),
            None,
        )
        truth.memberships[("organization", state.account_id, u.id)] = "member"
        for team in u.teams:
            if team in state.teams:
                truth.memberships[("team", team, u.id)] = "member"
    for sa in state.service_accounts.values():
        truth.users[sa.id] = (
            sa.email,
            sa.name,
            "service",
            SCALR_STATUS[sa.status],
            sa.status,
            None,
            None,
        )
        truth.memberships[("organization", state.account_id, sa.id)] = "member"
    scalr_access_truth(state, truth)
    return truth


#: A Scalr policy's subject and scope kinds in the database's words.
PRINCIPAL_TYPE = {"user": "user", "service-account": "user", "team": "team"}
SCOPE_TYPE = {"account": "organization", "environment": "environment", "workspace": "workspace"}


def scalr_access_truth(state: ScalrState, truth: Truth) -> None:
    """Roles, grants and service-account tokens as the account serves them: a policy whose
    subject, scope or a role is gone (or that has no role) is not served, so grants nothing."""
    for role in state.roles.values():
        truth.roles[role.id] = (
            role.name,
            role.description,
            1 if role.is_system else 0,
            ",".join(sorted(role.permissions)),
        )
    truth.resources[("organization", state.account_id)] = state.account_name
    for env in state.environments.values():
        truth.resources[("environment", env.id)] = env.name
    for ws in state.workspaces.values():
        truth.resources[("workspace", ws.id)] = ws.name
    subjects = {"user": state.users, "team": state.teams, "service-account": state.service_accounts}
    for policy in state.access_policies.values():
        scope = (SCOPE_TYPE[policy.scope_kind], policy.scope_id)
        if policy.scope_kind == "account" and policy.scope_id != state.account_id:
            continue
        if (
            policy.subject_id not in subjects[policy.subject_kind]
            or scope not in truth.resources
            or not policy.role_ids
            or not all(r in state.roles for r in policy.role_ids)
        ):
            continue
        for role_id in policy.role_ids:
            key = (*scope, PRINCIPAL_TYPE[policy.subject_kind], policy.subject_id, role_id)
            truth.grants[key] = (state.roles[role_id].name, truth.resources[scope])
    for sa_id in state.service_accounts:
        for token in state.access_tokens.get(sa_id, {}).values():
            truth.credentials[token.id] = (
                sa_id,
                token.name,
                token.description,
                scalr_time(token.created_at),
                scalr_time(token.expires_at),
                scalr_time(token.last_used_at),
            )


def planetscale_truth(state: PlanetScaleState) -> Truth:
    truth = Truth(team_fields=("organization_id", "name", "slug", "description"))
    for org in state.organizations.values():
        truth.organizations[org.id] = (org.name,)
        members = {u for u in org.members if u in state.users}
        for user_id in members:
            user = state.users[user_id]
            truth.users[user_id] = (
                user.email,
                user.name,
                "human",
                "enabled",
                None,
                None,
                1 if user.two_factor_auth_configured else 0,
            )
            truth.memberships[("organization", org.id, user_id)] = org.members[user_id]
        for team in org.teams.values():
            truth.teams[team.id] = (org.id, team.name, team.slug, team.description)
            for user_id in team.members & members:
                truth.memberships[("team", team.id, user_id)] = "member"
        for database in org.databases.values():
            truth.resources[("database", database.id)] = database.name
        for team in org.teams.values():
            for role, ids in (("admin", team.databases), ("analyst", team.analyst_databases)):
                for db in ids & org.databases.keys():
                    key = ("database", db, "team", team.id, role)
                    truth.grants[key] = (role, org.databases[db].name)
    return truth


# -- what the database should say --------------------------------------------------------------


def text(value) -> str | None:
    return None if value is None else str(value)


def row(kind: str, detail: tuple | None = None, **columns) -> tuple:
    """A change row as a CHANGE_FIELDS tuple plus the DETAIL_KEYS of its ``detail`` (None for a
    row with none), the form the multiset comparisons here use."""
    return (*(change(kind, **columns)[f] for f in CHANGE_FIELDS), detail)


def stored_row(r: dict) -> tuple:
    """A ``changes`` row of the database in the form of :func:`row`."""
    detail = None
    if r["detail"] is not None:
        parsed = json.loads(r["detail"])
        detail = tuple(parsed.get(k) for k in DETAIL_KEYS)
    return (*(r[f] for f in CHANGE_FIELDS), detail)


def expected_changes(before: Truth, after: Truth) -> Counter:
    """The change rows between two consecutive ground truths (``docs/sync-rules.md``, "What a
    change implies"): one row per added, removed or changed thing, each user row with the user's
    e-mail and each membership row with the name of its organisation or team."""
    rows: Counter = Counter()
    name_at = after.team_fields.index("name")

    def email(user_id):
        return (after.users.get(user_id) or before.users[user_id])[0]

    def org_name(org_id):
        return (after.organizations.get(org_id) or before.organizations[org_id])[0]

    def team_name(team_id):
        values = after.teams.get(team_id) or before.teams.get(team_id)
        return values[name_at] if values else None

    def resource(resource_type, resource_id):
        if resource_type == "organization":
            return organization(resource_id, org_name(resource_id))
        return team_resource(resource_id, team_name(resource_id))

    def added_and_removed(old: dict, new: dict, what: str, columns) -> None:
        for key in new.keys() - old.keys():
            rows[row(f"{what}_added", **columns(key))] += 1
        for key in old.keys() - new.keys():
            rows[row(f"{what}_removed", **columns(key))] += 1

    def user(user_id):
        return of(user_id, email(user_id))

    def membership(key):
        return {**user(key[2]), **resource(key[0], key[1])}

    added_and_removed(
        before.organizations,
        after.organizations,
        "organization",
        lambda o: resource("organization", o),
    )
    added_and_removed(before.teams, after.teams, "team", lambda t: resource("team", t))
    added_and_removed(before.users, after.users, "user", user)
    added_and_removed(before.memberships, after.memberships, "membership", membership)

    for org_id in before.organizations.keys() & after.organizations.keys():
        old, new = before.organizations[org_id][0], after.organizations[org_id][0]
        if old != new:
            rows[
                row(
                    "organization_updated",
                    **resource("organization", org_id),
                    field="name",
                    old_value=old,
                    new_value=new,
                )
            ] += 1
    for team_id in before.teams.keys() & after.teams.keys():
        for column, old, new in zip(
            after.team_fields, before.teams[team_id], after.teams[team_id], strict=True
        ):
            if old != new:
                rows[
                    row(
                        "team_updated",
                        **resource("team", team_id),
                        field=column,
                        old_value=text(old),
                        new_value=text(new),
                    )
                ] += 1
    for user_id in before.users.keys() & after.users.keys():
        old_values = dict(zip(USER_FIELDS, before.users[user_id], strict=True))
        new_values = dict(zip(USER_FIELDS, after.users[user_id], strict=True))
        changed = [f for f in USER_FIELDS if old_values[f] != new_values[f]]
        if "status" in changed and "provider_status" in changed:
            changed.remove("provider_status")
        for column in changed:
            rows[
                row(
                    USER_KIND.get(column, "user_updated"),
                    **user(user_id),
                    field=column,
                    old_value=text(old_values[column]),
                    new_value=text(new_values[column]),
                )
            ] += 1
    for key in before.memberships.keys() & after.memberships.keys():
        if before.memberships[key] != after.memberships[key]:
            rows[
                row(
                    "role_changed",
                    **membership(key),
                    field="role",
                    old_value=before.memberships[key],
                    new_value=after.memberships[key],
                )
            ] += 1
    rows += expected_access_changes(before, after)
    return rows


def expected_access_changes(before: Truth, after: Truth) -> Counter:
    """The grant, role and credential rows between two consecutive ground truths
    (``docs/sync-rules.md``, "Access beyond membership"), names as they are after the run or,
    for something gone, as last known."""
    rows: Counter = Counter()
    name_at = after.team_fields.index("name")

    def email(user_id):
        return (after.users.get(user_id) or before.users[user_id])[0]

    def team_name(team_id):
        return (after.teams.get(team_id) or before.teams[team_id])[name_at]

    def role_name(key):
        role_id = key[4]
        if role_id in after.roles:
            return after.roles[role_id][0]
        return (after.grants.get(key) or before.grants[key])[0]

    def grant(kind, key, value_column):
        resource_type, resource_id, principal_type, principal_id, role_id = key
        resource_name = after.resources.get((resource_type, resource_id))
        if resource_name is None:
            resource_name = before.resources[(resource_type, resource_id)]
        user = of(principal_id, email(principal_id)) if principal_type == "user" else {}
        principal_name = user["email"] if user else team_name(principal_id)
        return row(
            kind,
            detail=(principal_type, principal_id, principal_name, role_id),
            **user,
            resource_type=resource_type,
            resource_id=resource_id,
            resource_name=resource_name,
            **{value_column: role_name(key)},
        )

    for key in after.grants.keys() - before.grants.keys():
        rows[grant("grant_added", key, "new_value")] += 1
    for key in before.grants.keys() - after.grants.keys():
        rows[grant("grant_removed", key, "old_value")] += 1

    def role(role_id):
        name = (after.roles.get(role_id) or before.roles[role_id])[0]
        return dict(resource_type="role", resource_id=role_id, resource_name=name)

    for role_id in after.roles.keys() - before.roles.keys():
        rows[row("role_added", **role(role_id))] += 1
    for role_id in before.roles.keys() - after.roles.keys():
        rows[row("role_removed", **role(role_id))] += 1
    for role_id in before.roles.keys() & after.roles.keys():
        for column, old, new in zip(
            ROLE_FIELDS, before.roles[role_id], after.roles[role_id], strict=True
        ):
            if old != new:
                rows[
                    row(
                        "role_updated",
                        **role(role_id),
                        field=column,
                        old_value=text(old),
                        new_value=text(new),
                    )
                ] += 1

    def credential(token_id):
        owner, name = (after.credentials.get(token_id) or before.credentials[token_id])[:2]
        return dict(
            **of(owner, email(owner)),
            resource_type="credential",
            resource_id=token_id,
            resource_name=name,
        )

    for token_id in after.credentials.keys() - before.credentials.keys():
        rows[row("credential_added", **credential(token_id))] += 1
    for token_id in before.credentials.keys() - after.credentials.keys():
        rows[row("credential_removed", **credential(token_id))] += 1
    for token_id in before.credentials.keys() & after.credentials.keys():
        old_values = dict(zip(CREDENTIAL_FIELDS, before.credentials[token_id], strict=True))
        new_values = dict(zip(CREDENTIAL_FIELDS, after.credentials[token_id], strict=True))
        for column, kind in CREDENTIAL_KIND.items():
            if old_values[column] != new_values[column]:
                rows[
                    row(
                        kind,
                        **credential(token_id),
                        field=column,
                        old_value=old_values[column],
                        new_value=new_values[column],
                    )
                ] += 1
    return rows


def grants_as_of(db_path: Path, provider: str, instant: str) -> set[tuple]:
    """(resource_type, resource_id, principal_type, principal_id, role_id) of every grant held
    at ``instant``, from ``grant_versions`` alone."""
    rows = versions_valid_at(db_path, "grant_versions", provider, instant)
    found = {tuple(r[k] for k in GRANT_KEY) for r in rows}
    assert len(found) == len(rows), f"two versions of one grant valid at {instant}"
    return found


GRANT_KEY = ("resource_type", "resource_id", "principal_type", "principal_id", "role_id")


def check_round(db_path: Path, provider: str, history: list[Truth], number: int) -> Counter:
    """Every check of one round; returns this round's change kinds."""
    truth = history[-1]
    where = f"{provider} round {number}"
    run = run_row(db_path, truth.run_id)
    assert run["status"] == "succeeded", (where, run["error"])

    rows = query(db_path, "SELECT * FROM changes WHERE run_id = ?", [truth.run_id])
    assert {(r["provider"], r["observed_at"]) for r in rows} <= {(provider, truth.stamp)}, where
    got = Counter(stored_row(r) for r in rows)
    if len(history) == 1:
        assert got == Counter(), f"{where}: the baseline wrote change rows"
    else:
        expected = expected_changes(history[-2], truth)
        assert got == expected, (
            f"{where}: unexpected rows {sorted(got - expected, key=repr)}; "
            f"missing rows {sorted(expected - got, key=repr)}"
        )
    assert run["changes"] == len(rows), where

    # versions only for what changed
    previous = history[-2] if len(history) > 1 else Truth()
    new_or_changed_users = sum(1 for u, v in truth.users.items() if previous.users.get(u) != v)
    new_or_changed_memberships = sum(
        1 for k, v in truth.memberships.items() if previous.memberships.get(k) != v
    )
    assert query(
        db_path, "SELECT COUNT(*) AS n FROM user_versions WHERE run_id = ?", [truth.run_id]
    ) == [{"n": new_or_changed_users}], where
    assert query(
        db_path, "SELECT COUNT(*) AS n FROM membership_versions WHERE run_id = ?", [truth.run_id]
    ) == [{"n": new_or_changed_memberships}], where
    new_grants = len(truth.grants.keys() - previous.grants.keys())
    assert query(
        db_path, "SELECT COUNT(*) AS n FROM grant_versions WHERE run_id = ?", [truth.run_id]
    ) == [{"n": new_grants}], where

    # the current tables are the newest truth
    current = query(
        db_path, "SELECT * FROM users WHERE provider = ? AND removed_at IS NULL", [provider]
    )
    assert {u["id"]: tuple(u[f] for f in USER_FIELDS) for u in current} == truth.users, where
    current_m = query(
        db_path, "SELECT * FROM memberships WHERE provider = ? AND removed_at IS NULL", [provider]
    )
    assert {
        (m["resource_type"], m["resource_id"], m["user_id"]): m["role"] for m in current_m
    } == truth.memberships, where
    teams = query(
        db_path, "SELECT * FROM teams WHERE provider = ? AND removed_at IS NULL", [provider]
    )
    assert {t["id"]: tuple(t[f] for f in truth.team_fields) for t in teams} == truth.teams, where
    grants = query(
        db_path, "SELECT * FROM grants WHERE provider = ? AND removed_at IS NULL", [provider]
    )
    assert {
        tuple(g[k] for k in GRANT_KEY): (g["role"], g["resource_name"]) for g in grants
    } == truth.grants, where
    roles = query(
        db_path, "SELECT * FROM roles WHERE provider = ? AND removed_at IS NULL", [provider]
    )
    assert {r["id"]: tuple(r[f] for f in ROLE_FIELDS) for r in roles} == truth.roles, where
    credentials = query(
        db_path, "SELECT * FROM credentials WHERE provider = ? AND removed_at IS NULL", [provider]
    )
    assert {c["owner_type"] for c in credentials} <= {"user"}, where
    assert {
        c["id"]: tuple(c[f] for f in CREDENTIAL_FIELDS) for c in credentials
    } == truth.credentials, where

    # every earlier round is reproduced by the version tables alone
    for earlier, past in enumerate(history):
        assert users_as_of(db_path, provider, past.stamp) == past.users, (
            f"{where}: users as of round {earlier}"
        )
        assert memberships_as_of(db_path, provider, past.stamp) == past.memberships, (
            f"{where}: memberships as of round {earlier}"
        )
        assert grants_as_of(db_path, provider, past.stamp) == past.grants.keys(), (
            f"{where}: grants as of round {earlier}"
        )
    return Counter(r["kind"] for r in rows)


def evolve_and_check(db_path, sim, provider, evolver, read_truth, rounds) -> tuple[Counter, list]:
    history: list[Truth] = []
    kinds: Counter = Counter()
    for number in range(rounds + 1):
        if number:
            evolver.step(START + timedelta(hours=number))
        with sim.state.lock:
            truth = read_truth(sim.state)
        outcome = sync(db_path, **{provider: sim})
        assert outcome.status == "succeeded", (number, outcome.error)
        run = run_row(db_path, outcome.run_id)
        truth.stamp, truth.run_id = run["started_at"], run["id"]
        if history:
            assert truth.stamp > history[-1].stamp
        history.append(truth)
        kinds += check_round(db_path, provider, history, number)
    return kinds, history


def returning_ids(db_path: Path, provider: str) -> set[str]:
    """Users recorded as removed and later added again."""
    rows = query(
        db_path,
        "SELECT user_id, kind FROM changes WHERE provider = ? AND kind IN "
        "('user_added', 'user_removed') ORDER BY id",
        [provider],
    )
    removed, returned = set(), set()
    for row in rows:
        if row["kind"] == "user_removed":
            removed.add(row["user_id"])
        elif row["user_id"] in removed:
            returned.add(row["user_id"])
    return returned


def assert_exercised(db_path: Path, kinds: Counter, wanted: list[str], updated_fields: set) -> None:
    """The evolution produced every kind of change in ``wanted`` and ``user_updated`` rows for
    at least each of ``updated_fields``: the checks above were not passed vacuously."""
    for kind in wanted:
        assert kinds[kind] > 0, (kind, kinds)
    seen = {
        r["field"]
        for r in query(db_path, "SELECT DISTINCT field FROM changes WHERE kind = 'user_updated'")
    }
    assert updated_fields <= seen, seen


# -- the tests ---------------------------------------------------------------------------------


def test_scalr_history_reproduces_every_round_of_a_randomized_evolution(db_path):
    rng = random.Random(SCALR_SEED)
    state = ScalrState()
    populate_scalr(state, rng, users=30, service_accounts=4, teams=5, now=START)
    with ScalrSimulator(state) as sim:
        evolver = ScalrEvolver(state, rng)
        kinds, history = evolve_and_check(db_path, sim, "scalr", evolver, scalr_truth, SCALR_ROUNDS)
    assert len(history) == SCALR_ROUNDS + 1
    # the evolution really exercised every kind of Scalr change
    assert_exercised(
        db_path,
        kinds,
        [
            "user_added",
            "user_removed",
            "status_changed",
            "last_sign_in_changed",
            "user_updated",
            "membership_added",
            "membership_removed",
            "team_added",
            "team_removed",
            "team_updated",
            "grant_added",
            "grant_removed",
            "role_updated",
            "credential_added",
            "credential_removed",
            "credential_used",
        ],
        updated_fields={"name", "email", "provider_status"},
    )
    directions = {
        r["new_value"]
        for r in query(
            db_path, "SELECT DISTINCT new_value FROM changes WHERE kind = 'status_changed'"
        )
    }
    assert directions == {"enabled", "disabled"}, "no disable and re-enable both"
    assert returning_ids(db_path, "scalr"), "no leaver came back during the evolution"
    # grants of humans, service accounts and teams; a role renamed and re-permissioned
    principals = {
        (r["kind"], r["principal"])
        for r in query(
            db_path,
            "SELECT kind, CASE WHEN user_id LIKE 'sa-%' THEN 'service' "
            "ELSE json_extract(detail, '$.principal_type') END AS principal "
            "FROM changes WHERE kind LIKE 'grant_%'",
        )
    }
    assert {("grant_added", "user"), ("grant_removed", "team"), ("grant_removed", "service")} <= (
        principals
    ), principals
    role_fields = {
        r["field"]
        for r in query(db_path, "SELECT DISTINCT field FROM changes WHERE kind = 'role_updated'")
    }
    assert {"name", "permissions"} <= role_fields, role_fields
    first_seen = query(
        db_path,
        "SELECT id, first_seen_at, removed_at FROM users WHERE id IN "
        "(SELECT user_id FROM changes WHERE kind = 'user_removed')",
    )
    baseline_stamp = history[0].stamp
    for row in first_seen:
        if row["id"] in history[0].users:
            assert row["first_seen_at"] == baseline_stamp, row


def test_planetscale_history_reproduces_every_round_of_a_randomized_evolution(db_path):
    rng = random.Random(PLANETSCALE_SEED)
    state = PlanetScaleState()
    populate_planetscale(state, rng, orgs=2, users=25, teams_per_org=3, now=START)
    with PlanetScaleSimulator(state) as sim:
        evolver = PlanetScaleEvolver(state, rng)
        kinds, history = evolve_and_check(
            db_path, sim, "planetscale", evolver, planetscale_truth, PLANETSCALE_ROUNDS
        )
    assert len(history) == PLANETSCALE_ROUNDS + 1
    assert_exercised(
        db_path,
        kinds,
        [
            "user_added",
            "user_removed",
            "membership_added",
            "membership_removed",
            "role_changed",
            "user_updated",
            "team_added",
            "team_removed",
            "team_updated",
            "grant_added",
            "grant_removed",
        ],
        updated_fields={"name", "email", "mfa_enabled"},
    )
    assert returning_ids(db_path, "planetscale"), "no member came back during the evolution"
    granted = {
        (r["kind"], r["role"])
        for r in query(
            db_path,
            "SELECT kind, COALESCE(new_value, old_value) AS role FROM changes "
            "WHERE kind LIKE 'grant_%'",
        )
    }
    assert granted == {
        (kind, role) for kind in ("grant_added", "grant_removed") for role in ("admin", "analyst")
    }, granted
