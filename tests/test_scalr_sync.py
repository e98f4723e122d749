"""Scalr, end to end: simulated Scalr over real HTTP → sync → SQLite, read back with SQL.

Covers what a sync reads (only the four GETs a Scalr sync needs, Bearer auth, pages of 100), what
the first sync records (users, service accounts, the account as the one organisation, teams,
memberships, normalised timestamps and statuses, a baseline without change rows), what a later
sync records for each kind of change (exact ``changes`` rows, type-2 version rows, as-of queries),
that a sync finding nothing new writes nothing, how failures are recorded (a failed account-users
page → ``failed`` run and nothing else touched; a refused token → a clear line without the token;
a failed service-accounts or teams listing → ``partial`` with that scope left as it was), a
returning leaver, and the self-hosted base URL spellings.

Expected values are computed here from the simulator's state, never with the product's own
normalisers, so a wrong mapping in the product shows up as a difference.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrServiceAccount, ScalrState, ScalrTeam, ScalrUser
from tests.helpers import (
    SCALR_STATUS,
    TEST_POLICY,
    USER_FIELDS,
    change,
    changes_of,
    instant_after,
    memberships_as_of,
    organization,
    query,
    run_cli,
    run_row,
    scalr_env,
    scalr_time,
    snapshot_tables,
    sort_changes,
    sync,
    team,
    users_as_of,
)

API = "/api/iacp/v3"
ACCOUNT_ID = "acc-v0osim1acme0001"
ACCOUNT_NAME = "acme"
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

#: The resource columns of a change row about the account (Scalr's one organisation).
ACCOUNT = organization(ACCOUNT_ID, ACCOUNT_NAME)


# -- expected values, computed from the simulator's state -------------------------------------


def expected_users(state: ScalrState) -> dict[str, dict]:
    """id → the tracked user columns (plus created_at) the sync must record."""
    out: dict[str, dict] = {}
    for u in state.users.values():
        out[u.id] = {
            "email": u.email,
            "name": u.full_name,
            "account_type": "human",
            "status": SCALR_STATUS[u.status],
            "provider_status": u.status,
            "last_sign_in_at": scalr_time(u.last_login_at),
            "mfa_enabled": None,
            "created_at": scalr_time(u.created_at),
        }
    for sa in state.service_accounts.values():
        out[sa.id] = {
            "email": sa.email,
            "name": sa.name,
            "account_type": "service",
            "status": SCALR_STATUS[sa.status],
            "provider_status": sa.status,
            "last_sign_in_at": None,
            "mfa_enabled": None,
            "created_at": scalr_time(sa.created_at),
        }
    return out


def expected_memberships(state: ScalrState) -> set[tuple[str, str, str, str]]:
    """(resource_type, resource_id, user_id, role): everyone in the account, humans in teams."""
    out = {
        ("organization", state.account_id, ident, "member")
        for ident in list(state.users) + list(state.service_accounts)
    }
    out |= {
        ("team", team, u.id, "member")
        for u in state.users.values()
        for team in u.teams
        if team in state.teams
    }
    return out


def tracked(users: dict[str, dict]) -> dict[str, tuple]:
    return {ident: tuple(values[f] for f in USER_FIELDS) for ident, values in users.items()}


# -- states ------------------------------------------------------------------------------------


def large_state(users: int = 250, service_accounts: int = 10, teams: int = 8) -> ScalrState:
    """A deterministic account: every status, with and without sign-ins, names and teams."""
    state = ScalrState()
    team_ids = [f"team-t{n:016d}" for n in range(teams)]
    for n, ident in enumerate(team_ids):
        state.teams[ident] = ScalrTeam(ident, f"Team {n}", None if n % 3 == 0 else f"Team {n} desc")
    for n in range(users):
        status = ("Active", "Active", "Active", "Inactive", "Pending")[n % 5]
        login = None
        if status == "Active" or (status == "Inactive" and n % 2 == 0):
            login = f"2026-08-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{(7 * n) % 60:02d}Z"
        member_of: set[str] = set()
        if n % 11 != 0:
            member_of.add(team_ids[n % teams])
            if n % 3 == 0:
                member_of.add(team_ids[(n + 3) % teams])
        state.users[f"user-u{n:016d}"] = ScalrUser(
            id=f"user-u{n:016d}",
            email=f"person{n}@acme.example",
            full_name=None if n % 17 == 0 else f"Person Number{n}",
            status=status,
            last_login_at=login,
            created_at=f"2025-{1 + n % 12:02d}-15T08:30:{n % 60:02d}Z",
            teams=member_of,
        )
    for n in range(service_accounts):
        ident = f"sa-s{n:016d}"
        state.service_accounts[ident] = ScalrServiceAccount(
            ident,
            f"bot-{n}",
            f"bot-{n}@acme.scalr.io",
            None if n % 2 else f"Bot {n}",
            "Inactive" if n % 4 == 3 else "Active",
            created_at=f"2024-06-{1 + n:02d}T00:00:00Z",
        )
    return state


L0, L1, L2 = "2026-07-01T09:00:00Z", "2026-08-01T10:00:00Z", "2026-08-20T07:03:11Z"


def small_state() -> ScalrState:
    """A handful of users, one per kind of change the second sync must see."""
    state = ScalrState()
    for ident, name in (("team-a", "Platform"), ("team-b", "Security"), ("team-c", "Data")):
        state.teams[ident] = ScalrTeam(ident, name, f"{name} team")

    def user(ident, status="Active", login=L1, teams=(), name=None):
        state.users[ident] = ScalrUser(
            id=ident,
            email=f"{ident}@acme.example",
            full_name=name or ident.title(),
            status=status,
            last_login_at=login,
            created_at="2025-01-01T00:00:00Z",
            teams=set(teams),
        )

    user("user-disable", teams={"team-a"})
    user("user-signin")
    user("user-pending", status="Pending", login=None, teams={"team-b"})
    user("user-leaver", teams={"team-a", "team-c"})
    user("user-mover", teams={"team-a"})
    user("user-rename", name="Rita Old")
    user("user-steady", status="Inactive", login=L0, teams={"team-b"})
    state.service_accounts["sa-1"] = ScalrServiceAccount(
        "sa-1", "ci-deployer", "ci-deployer@acme.scalr.io", "CI", "Active"
    )
    state.service_accounts["sa-2"] = ScalrServiceAccount(
        "sa-2", "legacy-bot", "legacy-bot@acme.scalr.io", None, "Inactive"
    )
    return state


def apply_second_round(state: ScalrState) -> None:
    """One of each change: disable, sign-in, Pending→Active, leaver, joiner, team move, rename."""
    with state.lock:
        state.users["user-disable"].status = "Inactive"
        state.users["user-signin"].last_login_at = L2
        state.users["user-pending"].status = "Active"  # accepted, no sign-in recorded yet
        del state.users["user-leaver"]
        state.users["user-new"] = ScalrUser(
            id="user-new",
            email="user-new@acme.example",
            full_name="New Person",
            status="Active",
            last_login_at=L2,
            created_at="2026-08-20T07:00:00Z",
            teams={"team-c"},
        )
        state.users["user-mover"].teams = {"team-b"}
        state.users["user-rename"].full_name = "Rita New"


# -- helpers -----------------------------------------------------------------------------------


def person(user_id: str) -> dict:
    """The user columns of a change row about one of this file's users."""
    return dict(user_id=user_id, email=f"{user_id}@acme.example")


def membership_set(as_of: dict[tuple, str]) -> set[tuple[str, str, str, str]]:
    """``memberships_as_of`` in the (resource_type, resource_id, user_id, role) form used here."""
    return {(*key, role) for key, role in as_of.items()}


def all_text_in_database(db_path: Path) -> str:
    """Every value of every table (sync_runs included), plus the raw file bytes, as one text."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        parts = [repr(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables]
    finally:
        conn.close()
    for suffix in ("", "-wal"):
        path = Path(str(db_path) + suffix)
        if path.exists():
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


# -- the change rows of small_state's changes -----------------------------------------------

#: user-disable disabled (one row: the status, not also its provider_status).
DISABLED = change(
    "status_changed",
    **person("user-disable"),
    field="status",
    old_value="enabled",
    new_value="disabled",
)
#: user-signin signed in again (L1 → L2).
SIGNED_IN = change(
    "last_sign_in_changed",
    **person("user-signin"),
    field="last_sign_in_at",
    old_value="2026-08-01T10:00:00.000Z",
    new_value="2026-08-20T07:03:11.000Z",
)
#: user-leaver left: out of the account and both its teams, then removed as a user.
LEFT = [
    change("membership_removed", **person("user-leaver"), **ACCOUNT),
    change("membership_removed", **person("user-leaver"), **team("team-a", "Platform")),
    change("membership_removed", **person("user-leaver"), **team("team-c", "Data")),
    change("user_removed", **person("user-leaver")),
]
#: user-mover moved from Platform to Security.
MOVED = [
    change("membership_removed", **person("user-mover"), **team("team-a", "Platform")),
    change("membership_added", **person("user-mover"), **team("team-b", "Security")),
]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def large_sim():
    with ScalrSimulator(large_state()) as sim:
        yield sim


@pytest.fixture
def small_sim():
    with ScalrSimulator(small_state()) as sim:
        yield sim


@pytest.fixture
def two_syncs(db_path, small_sim):
    """Baseline, then one of each change, then a second sync; with the states and an instant
    strictly between the two runs."""
    before_users = expected_users(small_sim.state)
    before_memberships = expected_memberships(small_sim.state)
    first = sync(db_path, scalr=small_sim)
    run1 = run_row(db_path, first.run_id)
    assert first.status == "succeeded", first.error
    # An instant strictly after the first run (waited for: the clock moves on within a
    # millisecond) and strictly before the second, which starts after it.
    between = instant_after(run1["finished_at"])
    instant_after(between)
    apply_second_round(small_sim.state)
    after_users = expected_users(small_sim.state)
    after_memberships = expected_memberships(small_sim.state)
    second = sync(db_path, scalr=small_sim)
    run2 = run_row(db_path, second.run_id)
    assert second.status == "succeeded", second.error
    return {
        "sim": small_sim,
        "run1": run1,
        "run2": run2,
        "between": between,
        "before_users": before_users,
        "after_users": after_users,
        "before_memberships": before_memberships,
        "after_memberships": after_memberships,
    }


# -- the first sync ----------------------------------------------------------------------------


def test_first_sync_records_every_user_and_service_account_with_normalised_fields(
    db_path, large_sim
):
    outcome = sync(db_path, scalr=large_sim)
    run = run_row(db_path, outcome.run_id)
    assert outcome.status == "succeeded", outcome.error
    expected = expected_users(large_sim.state)
    assert len(expected) == 260
    rows = query(db_path, "SELECT * FROM users")
    assert {
        row["id"]: {k: row[k] for k in (*USER_FIELDS, "created_at")} for row in rows
    } == expected
    assert all(row["provider"] == "scalr" for row in rows)
    assert {(row["first_seen_at"], row["removed_at"]) for row in rows} == {
        (run["started_at"], None)
    }
    # the mapping really was exercised in every direction
    kinds = Counter((r["account_type"], r["provider_status"], r["status"]) for r in rows)
    assert kinds == Counter(
        {
            ("human", "Active", "enabled"): 150,
            ("human", "Inactive", "disabled"): 50,
            ("human", "Pending", "enabled"): 50,
            ("service", "Active", "enabled"): 8,
            ("service", "Inactive", "disabled"): 2,
        }
    )
    stamps = [r["last_sign_in_at"] for r in rows if r["last_sign_in_at"] is not None]
    assert len(stamps) == 175 and all(STAMP.match(s) for s in stamps)


def test_first_sync_records_the_account_as_the_one_organization_and_every_team(db_path, large_sim):
    outcome = sync(db_path, scalr=large_sim)
    run = run_row(db_path, outcome.run_id)
    assert outcome.status == "succeeded", outcome.error
    assert query(db_path, "SELECT * FROM organizations") == [
        {
            "provider": "scalr",
            "id": ACCOUNT_ID,
            "name": ACCOUNT_NAME,
            "first_seen_at": run["started_at"],
            "removed_at": None,
        }
    ]
    teams = query(db_path, "SELECT * FROM teams ORDER BY id")
    assert [
        (
            t["provider"],
            t["id"],
            t["organization_id"],
            t["name"],
            t["description"],
            t["first_seen_at"],
            t["removed_at"],
        )
        for t in teams
    ] == [
        ("scalr", team.id, ACCOUNT_ID, team.name, team.description, run["started_at"], None)
        for team in sorted(large_sim.state.teams.values(), key=lambda t: t.id)
    ]


def test_first_sync_records_organization_and_team_memberships(db_path, large_sim):
    outcome = sync(db_path, scalr=large_sim)
    run = run_row(db_path, outcome.run_id)
    assert outcome.status == "succeeded", outcome.error
    rows = query(db_path, "SELECT * FROM memberships")
    got = {(r["resource_type"], r["resource_id"], r["user_id"], r["role"]) for r in rows}
    assert len(rows) == len(got)
    expected = expected_memberships(large_sim.state)
    assert got == expected
    assert sum(1 for m in got if m[0] == "organization") == 260
    assert sum(1 for m in got if m[0] == "team") == sum(
        len(u.teams) for u in large_sim.state.users.values()
    )
    assert {(r["provider"], r["first_seen_at"], r["removed_at"]) for r in rows} == {
        ("scalr", run["started_at"], None)
    }


def test_sync_reads_only_the_documented_endpoints_with_bearer_auth_and_pages_of_100(
    db_path, large_sim
):
    outcome = sync(db_path, scalr=large_sim)
    run = run_row(db_path, outcome.run_id)
    assert outcome.status == "succeeded", outcome.error
    requests = list(large_sim.requests)
    assert requests, "no request reached the simulator"
    assert {r.method for r in requests} == {"GET"}
    assert {r.headers.get("Authorization") for r in requests} == {f"Bearer {large_sim.state.token}"}
    tokens = {
        f"{API}/service-accounts/{sa}/access-tokens" for sa in large_sim.state.service_accounts
    }
    listings = {
        "accounts",
        "account-users",
        "service-accounts",
        "teams",
        "roles",
        "access-policies",
    }
    assert {r.path for r in requests} == {f"{API}/{name}" for name in listings} | tokens
    by_path: dict[str, list] = {}
    for r in requests:
        by_path.setdefault(r.path, []).append(r)

    for r in by_path[f"{API}/accounts"]:
        assert r.param("filter[name]") in (ACCOUNT_NAME, None)
    account_users = by_path[f"{API}/account-users"]
    assert sorted(int(r.param("page[number]") or 1) for r in account_users) == [1, 2, 3]
    for r in account_users:
        assert r.param("filter[account]") == ACCOUNT_ID
        assert set(r.param("include").split(",")) == {"user", "teams"}
        assert r.param("page[size]") == "100"
    for path in (f"{API}/service-accounts", f"{API}/teams", f"{API}/access-policies"):
        assert len(by_path[path]) == 1, path
        assert by_path[path][0].param("filter[account]") == ACCOUNT_ID
        assert by_path[path][0].param("page[size]") == "100"
    (roles,) = by_path[f"{API}/roles"]
    assert roles.param("filter[account]") == f"in:null,{ACCOUNT_ID}"
    (policies,) = by_path[f"{API}/access-policies"]
    assert set(policies.param("include").split(",")) == {"environment", "workspace"}
    for path in tokens:
        assert len(by_path[path]) == 1 and by_path[path][0].param("page[size]") == "100", path
    assert run["requests"] == len(requests)


def test_first_sync_is_a_baseline_with_current_versions_and_no_change_rows(db_path, large_sim):
    outcome = sync(db_path, scalr=large_sim)
    run = run_row(db_path, outcome.run_id)
    assert outcome.status == "succeeded", outcome.error
    assert run["status"] == "succeeded" and run["error"] is None and run["changes"] == 0
    assert run["finished_at"] is not None and run["finished_at"] >= run["started_at"]
    assert STAMP.match(run["started_at"]) and STAMP.match(run["finished_at"])
    assert query(db_path, "SELECT COUNT(*) AS n FROM changes") == [{"n": 0}]
    versions = query(db_path, "SELECT * FROM user_versions")
    assert len(versions) == 260
    assert {(v["valid_from"], v["valid_to"], v["run_id"]) for v in versions} == {
        (run["started_at"], None, run["id"])
    }
    assert {v["id"]: tuple(v[f] for f in USER_FIELDS) for v in versions} == tracked(
        expected_users(large_sim.state)
    )
    memberships = query(db_path, "SELECT * FROM membership_versions")
    assert {
        (m["resource_type"], m["resource_id"], m["user_id"], m["role"]) for m in memberships
    } == expected_memberships(large_sim.state)
    assert len(memberships) == len(expected_memberships(large_sim.state))
    assert {(m["valid_from"], m["valid_to"], m["run_id"]) for m in memberships} == {
        (run["started_at"], None, run["id"])
    }


# -- the second sync: each kind of change ------------------------------------------------------


def test_second_sync_records_exactly_one_change_row_per_change(db_path, two_syncs):
    run2 = two_syncs["run2"]
    assert changes_of(db_path, run2["id"]) == sort_changes(
        [
            DISABLED,
            SIGNED_IN,
            change(
                "user_updated",
                **person("user-pending"),
                field="provider_status",
                old_value="Pending",
                new_value="Active",
            ),
            *LEFT,
            change("user_added", **person("user-new")),
            change("membership_added", **person("user-new"), **ACCOUNT),
            change("membership_added", **person("user-new"), **team("team-c", "Data")),
            *MOVED,
            change(
                "user_updated",
                **person("user-rename"),
                field="name",
                old_value="Rita Old",
                new_value="Rita New",
            ),
        ]
    )
    rows = query(
        db_path, "SELECT provider, observed_at FROM changes WHERE run_id = ?", [run2["id"]]
    )
    assert {(r["provider"], r["observed_at"]) for r in rows} == {("scalr", run2["started_at"])}
    assert run2["status"] == "succeeded" and run2["changes"] == 13


def test_a_disable_is_one_status_changed_row_without_a_provider_status_row(db_path, two_syncs):
    rows = query(
        db_path,
        "SELECT kind, field, old_value, new_value FROM changes WHERE user_id = 'user-disable'",
    )
    assert rows == [
        {
            "kind": "status_changed",
            "field": "status",
            "old_value": "enabled",
            "new_value": "disabled",
        }
    ]
    user = query(db_path, "SELECT status, provider_status FROM users WHERE id = 'user-disable'")
    assert user == [{"status": "disabled", "provider_status": "Inactive"}]


def test_second_sync_closes_the_old_version_and_opens_a_new_one_only_for_changed_users(
    db_path, two_syncs
):
    r1, r2 = two_syncs["run1"], two_syncs["run2"]
    before, after = tracked(two_syncs["before_users"]), tracked(two_syncs["after_users"])
    for ident in sorted(set(before) | set(after)):
        versions = [
            (tuple(v[f] for f in USER_FIELDS), v["valid_from"], v["valid_to"], v["run_id"])
            for v in query(
                db_path, "SELECT * FROM user_versions WHERE id = ? ORDER BY valid_from", [ident]
            )
        ]
        if ident not in after:  # removed: closed, nothing new
            expected = [(before[ident], r1["started_at"], r2["started_at"], r1["id"])]
        elif ident not in before:  # added
            expected = [(after[ident], r2["started_at"], None, r2["id"])]
        elif before[ident] != after[ident]:
            expected = [
                (before[ident], r1["started_at"], r2["started_at"], r1["id"]),
                (after[ident], r2["started_at"], None, r2["id"]),
            ]
        else:
            expected = [(before[ident], r1["started_at"], None, r1["id"])]
        assert versions == expected, ident
    changed = {i for i in before if i in after and before[i] != after[i]}
    assert changed == {"user-disable", "user-signin", "user-pending", "user-rename"}


def test_second_sync_versions_memberships_that_were_added_or_removed(db_path, two_syncs):
    r1, r2 = two_syncs["run1"], two_syncs["run2"]
    before, after = two_syncs["before_memberships"], two_syncs["after_memberships"]
    rows = query(db_path, "SELECT * FROM membership_versions")
    got = Counter(
        (
            (r["resource_type"], r["resource_id"], r["user_id"], r["role"]),
            r["valid_from"],
            r["valid_to"],
            r["run_id"],
        )
        for r in rows
    )
    expected = Counter()
    for key in before | after:
        if key in before and key in after:
            expected[(key, r1["started_at"], None, r1["id"])] += 1
        elif key in before:
            expected[(key, r1["started_at"], r2["started_at"], r1["id"])] += 1
        else:
            expected[(key, r2["started_at"], None, r2["id"])] += 1
    assert got == expected
    assert len(before - after) == 4 and len(after - before) == 3


def test_removed_user_keeps_its_rows_with_removed_at_set(db_path, two_syncs):
    r1, r2 = two_syncs["run1"], two_syncs["run2"]
    user = query(db_path, "SELECT * FROM users WHERE id = 'user-leaver'")
    assert len(user) == 1
    assert (user[0]["first_seen_at"], user[0]["removed_at"]) == (r1["started_at"], r2["started_at"])
    assert user[0]["email"] == "user-leaver@acme.example" and user[0]["status"] == "enabled"
    memberships = query(
        db_path,
        "SELECT resource_type, resource_id, first_seen_at, removed_at "
        "FROM memberships WHERE user_id = 'user-leaver' ORDER BY resource_id",
    )
    assert memberships == [
        {
            "resource_type": "organization",
            "resource_id": ACCOUNT_ID,
            "first_seen_at": r1["started_at"],
            "removed_at": r2["started_at"],
        },
        {
            "resource_type": "team",
            "resource_id": "team-a",
            "first_seen_at": r1["started_at"],
            "removed_at": r2["started_at"],
        },
        {
            "resource_type": "team",
            "resource_id": "team-c",
            "first_seen_at": r1["started_at"],
            "removed_at": r2["started_at"],
        },
    ]
    new = query(db_path, "SELECT first_seen_at, removed_at FROM users WHERE id = 'user-new'")
    assert new == [{"first_seen_at": r2["started_at"], "removed_at": None}]


def test_current_tables_match_the_account_after_the_second_sync(db_path, two_syncs):
    users = query(db_path, "SELECT * FROM users WHERE removed_at IS NULL")
    assert {u["id"]: {k: u[k] for k in (*USER_FIELDS, "created_at")} for u in users} == two_syncs[
        "after_users"
    ]
    memberships = query(db_path, "SELECT * FROM memberships WHERE removed_at IS NULL")
    assert {
        (m["resource_type"], m["resource_id"], m["user_id"], m["role"]) for m in memberships
    } == two_syncs["after_memberships"]


def test_as_of_an_instant_between_two_syncs_returns_the_earlier_state(db_path, two_syncs):
    r1, r2, between = two_syncs["run1"], two_syncs["run2"], two_syncs["between"]
    assert r1["started_at"] < between < r2["started_at"]
    assert users_as_of(db_path, "scalr", between) == tracked(two_syncs["before_users"])
    assert (
        membership_set(memberships_as_of(db_path, "scalr", between))
        == two_syncs["before_memberships"]
    )
    assert users_as_of(db_path, "scalr", r2["started_at"]) == tracked(two_syncs["after_users"])
    assert (
        membership_set(memberships_as_of(db_path, "scalr", r2["started_at"]))
        == two_syncs["after_memberships"]
    )
    before_first = "2000-01-01T00:00:00.000Z"
    assert users_as_of(db_path, "scalr", before_first) == {}
    assert membership_set(memberships_as_of(db_path, "scalr", before_first)) == set()


def test_sync_that_finds_nothing_new_writes_only_its_run_row(db_path, two_syncs):
    before = snapshot_tables(db_path)
    outcome = sync(db_path, scalr=two_syncs["sim"])
    run3 = run_row(db_path, outcome.run_id)
    assert outcome.status == "succeeded", outcome.error
    assert (run3["status"], run3["changes"], run3["error"]) == ("succeeded", 0, None)
    assert snapshot_tables(db_path) == before
    assert query(db_path, "SELECT COUNT(*) AS n FROM sync_runs") == [{"n": 3}]


# -- failures ----------------------------------------------------------------------------------


def test_500_on_the_third_account_users_page_fails_the_run_and_changes_nothing(db_path, large_sim):
    env = scalr_env(large_sim)
    first = run_cli(["sync", "--db", str(db_path)], env)
    assert first.exit_code == 0, first.stderr
    # changes the failing sync must not record: a disable on page 1, a leaver, a new team
    with large_sim.state.lock:
        large_sim.state.users["user-u0000000000000001"].status = "Inactive"
        del large_sim.state.users["user-u0000000000000002"]
        large_sim.state.teams["team-new0000000000001"] = ScalrTeam("team-new0000000000001", "New")
    before = snapshot_tables(db_path)
    runs_before = query(db_path, "SELECT * FROM sync_runs")
    fault = large_sim.add_fault(path=r"/account-users$", page=3, status=500)

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 1
    assert fault.hits >= 1
    assert snapshot_tables(db_path) == before
    runs = query(db_path, "SELECT * FROM sync_runs ORDER BY id")
    assert runs[:-1] == runs_before
    failed = runs[-1]
    assert (failed["provider"], failed["status"], failed["changes"]) == ("scalr", "failed", 0)
    assert failed["finished_at"] is not None
    assert "Scalr" in failed["error"] and "500" in failed["error"]
    assert "\n" not in failed["error"]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_refused_token_exits_1_says_so_and_never_shows_the_token(db_path, small_sim):
    good = run_cli(["sync", "--db", str(db_path)], scalr_env(small_sim))
    assert good.exit_code == 0, good.stderr
    wrong = "wrong-tok3n-Zq81xVbN5pL0secretvalue"
    env = {**scalr_env(small_sim), "SCALR_API_TOKEN": wrong}

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 1
    assert re.search(
        r"scalr.*token.*refused|scalr.*refused.*token", result.stderr, re.IGNORECASE | re.DOTALL
    ), result.stderr
    assert "Traceback" not in result.stderr
    for secret in (wrong, small_sim.state.token):
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert secret not in all_text_in_database(db_path)
    last = query(db_path, "SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")[0]
    assert last["status"] == "failed" and "401" in last["error"]
    assert {r.headers.get("Authorization") for r in small_sim.requests[-1:]} == {f"Bearer {wrong}"}


def _service_account_state(db_path: Path) -> dict:
    return {
        "users": query(db_path, "SELECT * FROM users WHERE account_type = 'service' ORDER BY id"),
        "memberships": query(
            db_path, "SELECT * FROM memberships WHERE user_id LIKE 'sa-%' ORDER BY user_id"
        ),
        "versions": query(
            db_path, "SELECT * FROM user_versions WHERE id LIKE 'sa-%' ORDER BY id, valid_from"
        ),
        "membership_versions": query(
            db_path,
            "SELECT * FROM membership_versions "
            "WHERE user_id LIKE 'sa-%' ORDER BY user_id, valid_from",
        ),
    }


def test_service_accounts_listing_failing_makes_the_run_partial_and_keeps_them(db_path, small_sim):
    first = sync(db_path, scalr=small_sim)
    assert first.status == "succeeded", first.error
    kept = _service_account_state(db_path)
    assert len(kept["users"]) == 2 and len(kept["memberships"]) == 2
    with small_sim.state.lock:
        del small_sim.state.service_accounts["sa-1"]  # would be a removal
        small_sim.state.service_accounts["sa-2"].status = "Active"  # would be a status change
        small_sim.state.users["user-disable"].status = "Inactive"  # human changes: recorded
        del small_sim.state.users["user-leaver"]
    fault = small_sim.add_fault(path=r"/service-accounts$", status=503)
    small_sim.clear_requests()

    outcome = sync(db_path, scalr=small_sim)
    run = run_row(db_path, outcome.run_id)

    assert outcome.status == "partial"
    assert 2 <= fault.hits <= TEST_POLICY.max_attempts  # 503 is retried, boundedly
    assert run["status"] == "partial"
    assert "service account" in run["error"].lower() and "503" in run["error"]
    assert _service_account_state(db_path) == kept
    assert changes_of(db_path, run["id"]) == sort_changes([DISABLED, *LEFT])
    assert run["changes"] == 5
    assert run["requests"] == len(small_sim.requests)  # retries included


def test_service_accounts_forbidden_exits_1_with_a_partial_run(db_path, small_sim):
    env = scalr_env(small_sim)
    assert run_cli(["sync", "--db", str(db_path)], env).exit_code == 0
    kept = _service_account_state(db_path)
    with small_sim.state.lock:
        small_sim.state.users["user-signin"].last_login_at = L2
    small_sim.add_fault(path=r"/service-accounts$", status=403)

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 1
    run = query(db_path, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1")[0]
    assert run["status"] == "partial"
    assert "service account" in run["error"].lower() and "403" in run["error"]
    assert _service_account_state(db_path) == kept
    assert changes_of(db_path, run["id"]) == [SIGNED_IN]


def test_teams_listing_failing_keeps_team_rows_but_applies_team_memberships(db_path, small_sim):
    first = sync(db_path, scalr=small_sim)
    assert first.status == "succeeded", first.error
    teams_before = query(db_path, "SELECT * FROM teams ORDER BY id")
    with small_sim.state.lock:
        small_sim.state.users["user-mover"].teams = {"team-b"}  # team memberships: applied
        small_sim.state.teams["team-c"].name = "Analytics"  # team rows: untouched
        small_sim.state.teams["team-d"] = ScalrTeam("team-d", "Empty", None)
    small_sim.add_fault(path=r"/teams$", status=500)

    outcome = sync(db_path, scalr=small_sim)
    run = run_row(db_path, outcome.run_id)

    assert outcome.status == "partial"
    assert run["status"] == "partial"
    assert "team" in run["error"].lower() and "500" in run["error"]
    assert query(db_path, "SELECT * FROM teams ORDER BY id") == teams_before
    assert changes_of(db_path, run["id"]) == sort_changes(MOVED)
    current = query(
        db_path,
        "SELECT resource_id FROM memberships WHERE user_id = 'user-mover' "
        "AND resource_type = 'team' AND removed_at IS NULL",
    )
    assert current == [{"resource_id": "team-b"}]


def test_first_sync_that_applies_after_a_failed_one_is_the_baseline(db_path, small_sim):
    small_sim.add_fault(path=r"/account-users$", status=500, times=1)
    failed = sync(db_path, scalr=small_sim)
    run1 = run_row(db_path, failed.run_id)
    assert failed.status == "failed" and run1["status"] == "failed"
    assert query(db_path, "SELECT COUNT(*) AS n FROM users") == [{"n": 0}]

    outcome = sync(db_path, scalr=small_sim)
    run2 = run_row(db_path, outcome.run_id)

    assert outcome.status == "succeeded", outcome.error
    assert (run2["status"], run2["changes"]) == ("succeeded", 0)
    assert query(db_path, "SELECT COUNT(*) AS n FROM changes") == [{"n": 0}]
    assert query(
        db_path, "SELECT COUNT(*) AS n FROM users WHERE first_seen_at = ?", [run2["started_at"]]
    ) == [{"n": 9}]


@pytest.mark.parametrize("account", ["other-name", None])
def test_the_tokens_only_account_is_used_when_the_name_finds_nothing(db_path, small_sim, account):
    env = {**scalr_env(small_sim)}
    env.pop("SCALR_ACCOUNT")
    if account is not None:
        env["SCALR_ACCOUNT"] = account

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert query(db_path, "SELECT id, name FROM organizations") == [
        {"id": ACCOUNT_ID, "name": ACCOUNT_NAME}
    ]
    assert query(
        db_path, "SELECT DISTINCT resource_id FROM memberships WHERE resource_type = 'organization'"
    ) == [{"resource_id": ACCOUNT_ID}]
    tokens = {
        f"{API}/service-accounts/{sa}/access-tokens" for sa in small_sim.state.service_accounts
    }
    assert {r.path for r in small_sim.requests} <= {
        f"{API}/accounts",
        f"{API}/account-users",
        f"{API}/service-accounts",
        f"{API}/teams",
        f"{API}/roles",
        f"{API}/access-policies",
    } | tokens


# -- a returning leaver ------------------------------------------------------------------------


def test_user_who_leaves_and_comes_back_is_added_again_with_first_seen_at_kept(db_path, small_sim):
    run1 = run_row(db_path, sync(db_path, scalr=small_sim).run_id)
    with small_sim.state.lock:
        leaver = small_sim.state.users.pop("user-leaver")
    run2 = run_row(db_path, sync(db_path, scalr=small_sim).run_id)
    assert query(db_path, "SELECT removed_at FROM users WHERE id = 'user-leaver'") == [
        {"removed_at": run2["started_at"]}
    ]
    with small_sim.state.lock:
        leaver.status, leaver.last_login_at, leaver.teams = "Pending", None, {"team-a"}
        small_sim.state.users["user-leaver"] = leaver

    outcome = sync(db_path, scalr=small_sim)
    run3 = run_row(db_path, outcome.run_id)

    assert outcome.status == "succeeded", outcome.error
    assert changes_of(db_path, run3["id"]) == sort_changes(
        [
            change("user_added", **person("user-leaver")),
            change("membership_added", **person("user-leaver"), **ACCOUNT),
            change("membership_added", **person("user-leaver"), **team("team-a", "Platform")),
        ]
    )
    user = query(db_path, "SELECT * FROM users WHERE id = 'user-leaver'")[0]
    assert (user["first_seen_at"], user["removed_at"]) == (run1["started_at"], None)
    assert (user["status"], user["provider_status"], user["last_sign_in_at"]) == (
        "enabled",
        "Pending",
        None,
    )
    memberships = query(
        db_path,
        "SELECT resource_id, first_seen_at, removed_at FROM memberships "
        "WHERE user_id = 'user-leaver' ORDER BY resource_id",
    )
    assert memberships == [
        {"resource_id": ACCOUNT_ID, "first_seen_at": run1["started_at"], "removed_at": None},
        {"resource_id": "team-a", "first_seen_at": run1["started_at"], "removed_at": None},
        {
            "resource_id": "team-c",
            "first_seen_at": run1["started_at"],
            "removed_at": run2["started_at"],
        },
    ]
    versions = query(
        db_path,
        "SELECT provider_status, last_sign_in_at, valid_from, valid_to "
        "FROM user_versions WHERE id = 'user-leaver' ORDER BY valid_from",
    )
    assert versions == [
        {
            "provider_status": "Active",
            "last_sign_in_at": "2026-08-01T10:00:00.000Z",
            "valid_from": run1["started_at"],
            "valid_to": run2["started_at"],
        },
        {
            "provider_status": "Pending",
            "last_sign_in_at": None,
            "valid_from": run3["started_at"],
            "valid_to": None,
        },
    ]
    assert "user-leaver" not in users_as_of(db_path, "scalr", run2["started_at"])


# -- self-hosted Scalr -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/", "/api/iacp/v3", "/api/iacp/v3/"])
def test_self_hosted_base_url_with_slash_or_api_suffix_works(db_path, small_sim, suffix):
    env = {**scalr_env(small_sim), "SCALR_BASE_URL": small_sim.url + suffix}

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 0, result.stderr
    paths = {r.path for r in small_sim.requests}
    tokens = {
        f"{API}/service-accounts/{sa}/access-tokens" for sa in small_sim.state.service_accounts
    }
    listings = {
        "accounts",
        "account-users",
        "service-accounts",
        "teams",
        "roles",
        "access-policies",
    }
    assert paths == {f"{API}/{name}" for name in listings} | tokens
    assert query(db_path, "SELECT COUNT(*) AS n FROM users WHERE removed_at IS NULL") == [{"n": 9}]
