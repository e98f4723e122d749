"""Seeded randomized history: the database must reproduce the simulator's ground truth.

A simulated account (Scalr, then PlanetScale) evolves for many rounds through the world evolvers
(joiners, leavers, disables, re-enables, sign-ins, renames, e-mail changes, team moves, team
renames and deletions, returning leavers, role changes, 2FA toggles), and the product syncs after
every round. After each round this file's own reading of the simulator state — computed here,
never with the product's normalisers — is recorded as that round's ground truth, stamped with the
run's ``started_at``. Then:

* for every round so far, the users and memberships reconstructed from ``user_versions`` /
  ``membership_versions`` "as of" that round's ``started_at`` equal that round's ground truth
  (CONTRACT §4 rule 7: the version tables alone reproduce every successful run);
* the round's ``changes`` rows equal, as a multiset, the differences between the ground truth of
  the previous round and this one: every change row is a real difference and every real
  difference has its row (with the e-mail and resource name the contract asks for);
* version rows are written only for what changed, and the current tables match the truth.

The seeds are fixed, so a failure reproduces; the round at which it happened is in the message.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.simulate.planetscale import PlanetScaleSimulator, PlanetScaleState
from daemon.simulate.scalr import ScalrSimulator, ScalrState
from daemon.simulate.world import (
    PlanetScaleEvolver,
    ScalrEvolver,
    populate_planetscale,
    populate_scalr,
)
from daemon.sync import sync_provider
from tests.conftest import query, settings_for

SCALR_SEED = 20260901
SCALR_ROUNDS = 60
PLANETSCALE_SEED = 424242
PLANETSCALE_ROUNDS = 35
START = datetime(2026, 9, 1, 8, 0, 0, tzinfo=UTC)
USER_FIELDS = (
    "email",
    "name",
    "account_type",
    "status",
    "provider_status",
    "last_sign_in_at",
    "mfa_enabled",
)
USER_KIND = {"status": "status_changed", "last_sign_in_at": "last_sign_in_changed"}
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


@dataclass
class Truth:
    """What one provider looked like at one round, in the database's terms."""

    users: dict[str, tuple] = field(default_factory=dict)  # id → USER_FIELDS values
    memberships: dict[tuple, str] = field(default_factory=dict)  # (type, res, user) → role
    organizations: dict[str, tuple] = field(default_factory=dict)  # id → (name,)
    teams: dict[str, tuple] = field(default_factory=dict)  # id → tracked team values
    team_fields: tuple[str, ...] = ()
    stamp: str = ""
    run_id: int = 0


# -- ground truth, read straight from the simulators' state ------------------------------------

SCALR_STATUS = {"Active": "enabled", "Pending": "enabled", "Inactive": "disabled"}


def scalr_time(value: str | None) -> str | None:
    """``2026-09-01T08:00:00Z`` → ``2026-09-01T08:00:00.000Z`` (the simulator's one form)."""
    if value is None:
        return None
    assert len(value) == 20 and value.endswith("Z"), value
    return value[:-1] + ".000Z"


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
    return truth


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
    return truth


# -- what the database says ----------------------------------------------------------------------


def users_as_of(db_path: Path, provider: str, instant: str) -> dict[str, tuple]:
    rows = query(
        db_path,
        "SELECT * FROM user_versions WHERE provider = ? AND valid_from <= ? "
        "AND (valid_to IS NULL OR valid_to > ?)",
        [provider, instant, instant],
    )
    found = {row["id"]: tuple(row[f] for f in USER_FIELDS) for row in rows}
    assert len(found) == len(rows), f"overlapping user versions at {instant}"
    return found


def memberships_as_of(db_path: Path, provider: str, instant: str) -> dict[tuple, str]:
    rows = query(
        db_path,
        "SELECT * FROM membership_versions WHERE provider = ? AND "
        "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)",
        [provider, instant, instant],
    )
    found = {(r["resource_type"], r["resource_id"], r["user_id"]): r["role"] for r in rows}
    assert len(found) == len(rows), f"overlapping membership versions at {instant}"
    return found


def text(value) -> str | None:
    return None if value is None else str(value)


def expected_changes(before: Truth, after: Truth) -> Counter:
    """The change rows CONTRACT §4 asks for between two consecutive ground truths."""
    rows: Counter = Counter()

    def email(user_id):
        return (after.users.get(user_id) or before.users[user_id])[0]

    def resource_name(resource_type, resource_id):
        if resource_type == "organization":
            values = after.organizations.get(resource_id) or before.organizations[resource_id]
            return values[0]
        index = after.team_fields.index("name")
        values = after.teams.get(resource_id) or before.teams.get(resource_id)
        return values[index] if values else None

    for org_id in after.organizations.keys() - before.organizations.keys():
        rows[
            (
                "organization_added",
                None,
                None,
                "organization",
                org_id,
                after.organizations[org_id][0],
                None,
                None,
                None,
            )
        ] += 1
    for org_id in before.organizations.keys() - after.organizations.keys():
        rows[
            (
                "organization_removed",
                None,
                None,
                "organization",
                org_id,
                before.organizations[org_id][0],
                None,
                None,
                None,
            )
        ] += 1
    for org_id in before.organizations.keys() & after.organizations.keys():
        if before.organizations[org_id] != after.organizations[org_id]:
            rows[
                (
                    "organization_updated",
                    None,
                    None,
                    "organization",
                    org_id,
                    after.organizations[org_id][0],
                    "name",
                    before.organizations[org_id][0],
                    after.organizations[org_id][0],
                )
            ] += 1

    name_at = after.team_fields.index("name")
    for team_id in after.teams.keys() - before.teams.keys():
        rows[
            (
                "team_added",
                None,
                None,
                "team",
                team_id,
                after.teams[team_id][name_at],
                None,
                None,
                None,
            )
        ] += 1
    for team_id in before.teams.keys() - after.teams.keys():
        rows[
            (
                "team_removed",
                None,
                None,
                "team",
                team_id,
                before.teams[team_id][name_at],
                None,
                None,
                None,
            )
        ] += 1
    for team_id in before.teams.keys() & after.teams.keys():
        for column, old, new in zip(
            after.team_fields, before.teams[team_id], after.teams[team_id], strict=True
        ):
            if old != new:
                rows[
                    (
                        "team_updated",
                        None,
                        None,
                        "team",
                        team_id,
                        after.teams[team_id][name_at],
                        column,
                        text(old),
                        text(new),
                    )
                ] += 1

    for user_id in after.users.keys() - before.users.keys():
        rows[("user_added", user_id, email(user_id), None, None, None, None, None, None)] += 1
    for user_id in before.users.keys() - after.users.keys():
        rows[("user_removed", user_id, email(user_id), None, None, None, None, None, None)] += 1
    for user_id in before.users.keys() & after.users.keys():
        old_values = dict(zip(USER_FIELDS, before.users[user_id], strict=True))
        new_values = dict(zip(USER_FIELDS, after.users[user_id], strict=True))
        changed = [f for f in USER_FIELDS if old_values[f] != new_values[f]]
        if "status" in changed and "provider_status" in changed:
            changed.remove("provider_status")
        for column in changed:
            rows[
                (
                    USER_KIND.get(column, "user_updated"),
                    user_id,
                    email(user_id),
                    None,
                    None,
                    None,
                    column,
                    text(old_values[column]),
                    text(new_values[column]),
                )
            ] += 1

    for key in after.memberships.keys() - before.memberships.keys():
        rows[
            (
                "membership_added",
                key[2],
                email(key[2]),
                key[0],
                key[1],
                resource_name(key[0], key[1]),
                None,
                None,
                None,
            )
        ] += 1
    for key in before.memberships.keys() - after.memberships.keys():
        rows[
            (
                "membership_removed",
                key[2],
                email(key[2]),
                key[0],
                key[1],
                resource_name(key[0], key[1]),
                None,
                None,
                None,
            )
        ] += 1
    for key in before.memberships.keys() & after.memberships.keys():
        if before.memberships[key] != after.memberships[key]:
            rows[
                (
                    "role_changed",
                    key[2],
                    email(key[2]),
                    key[0],
                    key[1],
                    resource_name(key[0], key[1]),
                    "role",
                    before.memberships[key],
                    after.memberships[key],
                )
            ] += 1
    return rows


def check_round(db_path: Path, provider: str, history: list[Truth], number: int) -> Counter:
    """Every check of one round; returns this round's change kinds."""
    truth = history[-1]
    where = f"{provider} round {number}"
    run = query(db_path, "SELECT * FROM sync_runs WHERE id = ?", [truth.run_id])[0]
    assert run["status"] == "succeeded", (where, run["error"])

    rows = query(db_path, "SELECT * FROM changes WHERE run_id = ?", [truth.run_id])
    assert {(r["provider"], r["observed_at"]) for r in rows} <= {(provider, truth.stamp)}, where
    got = Counter(tuple(r[f] for f in CHANGE_FIELDS) for r in rows)
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

    # every earlier round is reproduced by the version tables alone
    for earlier, past in enumerate(history):
        assert users_as_of(db_path, provider, past.stamp) == past.users, (
            f"{where}: users as of round {earlier}"
        )
        assert memberships_as_of(db_path, provider, past.stamp) == past.memberships, (
            f"{where}: memberships as of round {earlier}"
        )
    return Counter(r["kind"] for r in rows)


def evolve_and_check(db_path, sim, provider, evolver, read_truth, rounds) -> tuple[Counter, list]:
    settings = settings_for(db_path, **{provider: sim})
    history: list[Truth] = []
    kinds: Counter = Counter()
    for number in range(rounds + 1):
        if number:
            evolver.step(START + timedelta(hours=number))
        with sim.state.lock:
            truth = read_truth(sim.state)
        outcome = sync_provider(settings, provider)
        assert outcome.status == "succeeded", (number, outcome.error)
        run = query(db_path, "SELECT * FROM sync_runs WHERE id = ?", [outcome.run_id])[0]
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
    for kind in (
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
    ):
        assert kinds[kind] > 0, (kind, kinds)
    updated_fields = {
        r["field"]
        for r in query(db_path, "SELECT DISTINCT field FROM changes WHERE kind = 'user_updated'")
    }
    assert {"name", "email", "provider_status"} <= updated_fields, updated_fields
    directions = {
        r["new_value"]
        for r in query(
            db_path, "SELECT DISTINCT new_value FROM changes WHERE kind = 'status_changed'"
        )
    }
    assert directions == {"enabled", "disabled"}, "no disable and re-enable both"
    assert returning_ids(db_path, "scalr"), "no leaver came back during the evolution"
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
    for kind in (
        "user_added",
        "user_removed",
        "membership_added",
        "membership_removed",
        "role_changed",
        "user_updated",
        "team_added",
        "team_removed",
        "team_updated",
    ):
        assert kinds[kind] > 0, (kind, kinds)
    updated_fields = {
        r["field"]
        for r in query(db_path, "SELECT DISTINCT field FROM changes WHERE kind = 'user_updated'")
    }
    assert {"name", "email", "mfa_enabled"} <= updated_fields, updated_fields
    assert returning_ids(db_path, "planetscale"), "no member came back during the evolution"
