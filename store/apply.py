"""Apply one provider snapshot: diff it against the current state and write only what changed.

The whole apply is one transaction taken *after* the fetch finished, so the write lock is never
held across network waits and a reader sees either the old state or the new, never half of a
run. The diff loads the provider's current rows in one query per table, compares
in Python dictionaries, and writes with ``executemany``: no per-row round trips.

What the diff decides (``docs/sync-rules.md#what-a-change-implies``):
* new key → ``*_added`` plus a current row and, for users and memberships, a version row;
* a removed key that comes back → ``*_added`` again, ``removed_at`` cleared, ``first_seen_at`` kept;
* a tracked value that differs (``None``-safe) → one change row per column and a new version;
* a key missing from a *completed* scope → ``*_removed``, ``removed_at`` set, version closed.
The first run of a provider that applies anything is its baseline: rows and versions, no changes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields

import sqlite_utils

from store import runs
from store.model import Membership, MembershipScope, Organization, Snapshot, Team, User
from store.schema import TABLES, USER_VALUES
from store.transactions import transaction

USER_TRACKED = tuple(USER_VALUES)
USER_CHANGE_KIND = {"status": "status_changed", "last_sign_in_at": "last_sign_in_changed"}
TEAM_TRACKED = ("organization_id", "name", "slug", "description")
#: The columns a change row is written with, in schema order (``id`` is assigned by SQLite).
CHANGE_COLUMNS = tuple(column for column in TABLES["changes"]["columns"] if column != "id")
KIND = CHANGE_COLUMNS.index("kind")


def apply_snapshot(db: sqlite_utils.Database, snapshot: Snapshot, run: runs.Run) -> runs.RunResult:
    """Diff ``snapshot`` against the database and write what changed, stamped as ``run``.

    One transaction (a savepoint when the caller already holds one, as the sync does so that
    the run row closes in the same commit).
    """
    with transaction(db):
        baseline = not runs.has_applied_before(db, snapshot.provider, run)
        diff = _Diff(db, snapshot, run, baseline)
        diff.compute()
        diff.write()
    error = "; ".join(f"{f.scope}: {f.error}" for f in snapshot.failures) or None
    return runs.RunResult(
        status="partial" if snapshot.partial else "succeeded",
        error=error,
        changes=Counter(row[KIND] for row in diff.change_rows),
    )


def _differs(old, new) -> bool:
    """SQL's ``IS NOT`` (NULL equals NULL and differs from any value), which Python's ``!=``
    on None already is; named so the diff reads as the rule is stated (docs/sync-rules.md)."""
    return old != new


def _text(value) -> str | None:
    """A value as SQLite's CAST(... AS TEXT) renders it, for old_value/new_value."""
    return None if value is None else str(value)


class _Diff:
    """Holds one provider's current state in memory and collects the rows the run must write."""

    def __init__(
        self, db: sqlite_utils.Database, snapshot: Snapshot, run: runs.Run, baseline: bool
    ):
        self.db = db
        self.snap = snapshot
        self.run = run
        self.stamp = run.started_at
        self.baseline = baseline
        provider = snapshot.provider
        self.orgs = self._load("organizations", ("id",), provider)
        self.teams = self._load("teams", ("id",), provider)
        self.users = self._load("users", ("id",), provider)
        self.memberships = self._load(
            "memberships", ("resource_type", "resource_id", "user_id"), provider
        )
        self.change_rows: list[tuple] = []
        self.upserts: dict[str, dict[tuple, dict]] = {
            "organizations": {},
            "teams": {},
            "users": {},
            "memberships": {},
        }
        self.closed_user_versions: list[tuple] = []
        self.new_user_versions: list[tuple] = []
        self.closed_membership_versions: list[tuple] = []
        self.new_membership_versions: list[tuple] = []
        self.snap_users = {u.id: u for u in snapshot.users}
        self.snap_orgs = {o.id: o for o in snapshot.organizations}
        self.snap_teams = {t.id: t for t in snapshot.teams}

    def _load(self, table: str, key: tuple[str, ...], provider: str) -> dict[tuple, dict]:
        rows = self.db.execute(f"SELECT * FROM {table} WHERE provider = ?", [provider])
        names = [d[0] for d in rows.description]
        loaded = {}
        for values in rows:
            row = dict(zip(names, values, strict=True))
            loaded[tuple(row[k] for k in key)] = row
        return loaded

    # -- change rows -------------------------------------------------------------------------

    def _change(
        self,
        kind: str,
        *,
        user_id=None,
        email=None,
        resource_type=None,
        resource_id=None,
        resource_name=None,
        field=None,
        old=None,
        new=None,
    ) -> None:
        if self.baseline:
            return
        self.change_rows.append(
            (
                self.run.id,
                self.snap.provider,
                self.stamp,
                kind,
                user_id,
                email,
                resource_type,
                resource_id,
                resource_name,
                field,
                _text(old),
                _text(new),
            )
        )

    def _resource_name(self, resource_type: str, resource_id: str) -> str | None:
        if resource_type == "organization":
            org = self.snap_orgs.get(resource_id)
            return org.name if org else (self.orgs.get((resource_id,)) or {}).get("name")
        team = self.snap_teams.get(resource_id)
        return team.name if team else (self.teams.get((resource_id,)) or {}).get("name")

    def _user_email(self, user_id: str) -> str | None:
        user = self.snap_users.get(user_id)
        return user.email if user else (self.users.get((user_id,)) or {}).get("email")

    def _upsert(self, table: str, key: tuple, row: dict) -> None:
        self.upserts[table][key] = row

    # -- the diff ----------------------------------------------------------------------------

    def compute(self) -> None:
        removed_orgs = self._diff_organizations()
        removed_teams = self._diff_teams(removed_orgs)
        self._diff_users()
        self._diff_memberships(removed_orgs, removed_teams)
        self._remove_users_without_memberships()

    def _diff_organizations(self) -> set[str]:
        for org in self.snap.organizations:
            current = self.orgs.get((org.id,))
            row = {"provider": self.snap.provider, "id": org.id, "name": org.name}
            common = dict(resource_type="organization", resource_id=org.id, resource_name=org.name)
            if current is None or current["removed_at"] is not None:
                row["first_seen_at"] = current["first_seen_at"] if current else self.stamp
                row["removed_at"] = None
                self._upsert("organizations", (org.id,), row)
                self._change("organization_added", **common)
            elif _differs(current["name"], org.name):
                self._upsert("organizations", (org.id,), {**current, **row})
                self._change(
                    "organization_updated",
                    field="name",
                    old=current["name"],
                    new=org.name,
                    **common,
                )
        removed = set()
        for (org_id,), current in self.orgs.items():
            if current["removed_at"] is None and org_id not in self.snap_orgs:
                removed.add(org_id)
                self._upsert("organizations", (org_id,), {**current, "removed_at": self.stamp})
                self._change(
                    "organization_removed",
                    resource_type="organization",
                    resource_id=org_id,
                    resource_name=current["name"],
                )
        return removed

    def _diff_teams(self, removed_orgs: set[str]) -> set[str]:
        for team in self.snap.teams:
            current = self.teams.get((team.id,))
            row = {
                "provider": self.snap.provider,
                "id": team.id,
                **{k: getattr(team, k) for k in TEAM_TRACKED},
            }
            common = dict(resource_type="team", resource_id=team.id, resource_name=team.name)
            if current is None or current["removed_at"] is not None:
                row["first_seen_at"] = current["first_seen_at"] if current else self.stamp
                row["removed_at"] = None
                self._upsert("teams", (team.id,), row)
                self._change("team_added", **common)
                continue
            changed = [k for k in TEAM_TRACKED if _differs(current[k], row[k])]
            if changed:
                self._upsert("teams", (team.id,), {**current, **row})
            for column in changed:
                self._change(
                    "team_updated", field=column, old=current[column], new=row[column], **common
                )
        removed = set()
        for (team_id,), current in self.teams.items():
            if current["removed_at"] is not None or team_id in self.snap_teams:
                continue
            org_id = current["organization_id"]
            if org_id in self.snap.team_scopes or org_id in removed_orgs:
                removed.add(team_id)
                self._upsert("teams", (team_id,), {**current, "removed_at": self.stamp})
                self._change(
                    "team_removed",
                    resource_type="team",
                    resource_id=team_id,
                    resource_name=current["name"],
                )
        return removed

    def _diff_users(self) -> None:
        for user in self.snap.users:
            current = self.users.get((user.id,))
            row = {"provider": self.snap.provider, **_as_dict(user)}
            if current is None or current["removed_at"] is not None:
                row["first_seen_at"] = current["first_seen_at"] if current else self.stamp
                row["removed_at"] = None
                self._upsert("users", (user.id,), row)
                self._open_user_version(user)
                self._change("user_added", user_id=user.id, email=user.email)
                continue
            changed = [k for k in USER_TRACKED if _differs(current[k], row[k])]
            if changed or _differs(current["created_at"], row["created_at"]):
                self._upsert("users", (user.id,), {**current, **row})
            if not changed:
                continue
            self.closed_user_versions.append((self.stamp, self.snap.provider, user.id))
            self._open_user_version(user)
            if "status" in changed and "provider_status" in changed:
                changed.remove("provider_status")  # one status_changed row says both
            for column in changed:
                self._change(
                    USER_CHANGE_KIND.get(column, "user_updated"),
                    user_id=user.id,
                    email=user.email,
                    field=column,
                    old=current[column],
                    new=row[column],
                )

    def _open_user_version(self, user: User) -> None:
        self.new_user_versions.append(
            (
                self.snap.provider,
                user.id,
                *(getattr(user, k) for k in USER_TRACKED),
                self.stamp,
                None,
                self.run.id,
            )
        )

    def _diff_memberships(self, removed_orgs: set[str], removed_teams: set[str]) -> None:
        seen: dict[tuple, Membership] = {}
        for membership in self.snap.memberships:
            seen[(membership.resource_type, membership.resource_id, membership.user_id)] = (
                membership
            )
        for key, membership in seen.items():
            current = self.memberships.get(key)
            common = self._membership_context(key)
            if current is None or current["removed_at"] is not None:
                self._upsert(
                    "memberships",
                    key,
                    {
                        "provider": self.snap.provider,
                        "resource_type": key[0],
                        "resource_id": key[1],
                        "user_id": key[2],
                        "role": membership.role,
                        "first_seen_at": current["first_seen_at"] if current else self.stamp,
                        "removed_at": None,
                    },
                )
                self._open_membership_version(key, membership.role)
                self._change("membership_added", **common)
            elif _differs(current["role"], membership.role):
                self._upsert("memberships", key, {**current, "role": membership.role})
                self.closed_membership_versions.append((self.stamp, self.snap.provider, *key))
                self._open_membership_version(key, membership.role)
                self._change(
                    "role_changed", field="role", old=current["role"], new=membership.role, **common
                )
        for key, current in self.memberships.items():
            if current["removed_at"] is not None or key in seen:
                continue
            resource_type, resource_id, _ = key
            gone_with_resource = (
                resource_type == "organization" and resource_id in removed_orgs
            ) or (resource_type == "team" and resource_id in removed_teams)
            if gone_with_resource or self._in_completed_scope(key):
                self._upsert("memberships", key, {**current, "removed_at": self.stamp})
                self.closed_membership_versions.append((self.stamp, self.snap.provider, *key))
                self._change("membership_removed", **self._membership_context(key))

    def _membership_context(self, key: tuple) -> dict:
        resource_type, resource_id, user_id = key
        return dict(
            user_id=user_id,
            email=self._user_email(user_id),
            resource_type=resource_type,
            resource_id=resource_id,
            resource_name=self._resource_name(resource_type, resource_id),
        )

    def _in_completed_scope(self, key: tuple) -> bool:
        resource_type, resource_id, user_id = key
        return any(
            _scope_covers(scope, resource_type, resource_id, self._account_type(user_id))
            for scope in self.snap.membership_scopes
        )

    def _account_type(self, user_id: str) -> str | None:
        user = self.snap_users.get(user_id)
        return user.account_type if user else (self.users.get((user_id,)) or {}).get("account_type")

    def _open_membership_version(self, key: tuple, role: str) -> None:
        self.new_membership_versions.append(
            (self.snap.provider, *key, role, self.stamp, None, self.run.id)
        )

    def _remove_users_without_memberships(self) -> None:
        after = {**self.memberships, **self.upserts["memberships"]}
        holding = {key[2] for key, row in after.items() if row["removed_at"] is None}
        for (user_id,), current in self.users.items():
            if current["removed_at"] is not None or user_id in self.snap_users:
                continue
            if user_id in holding:
                continue
            self._upsert("users", (user_id,), {**current, "removed_at": self.stamp})
            self.closed_user_versions.append((self.stamp, self.snap.provider, user_id))
            self._change("user_removed", user_id=user_id, email=current["email"])

    # -- writes ------------------------------------------------------------------------------

    def write(self) -> None:
        conn = self.db.conn
        for table, rows in self.upserts.items():
            if rows:
                _upsert_rows(conn, table, list(rows.values()))
        conn.executemany(
            "UPDATE user_versions SET valid_to = ? WHERE provider = ? AND id = ? "
            "AND valid_to IS NULL",
            self.closed_user_versions,
        )
        conn.executemany(
            "UPDATE membership_versions SET valid_to = ? WHERE provider = ? AND resource_type = ? "
            "AND resource_id = ? AND user_id = ? AND valid_to IS NULL",
            self.closed_membership_versions,
        )
        _insert_rows(
            conn, "user_versions", tuple(TABLES["user_versions"]["columns"]), self.new_user_versions
        )
        _insert_rows(
            conn,
            "membership_versions",
            tuple(TABLES["membership_versions"]["columns"]),
            self.new_membership_versions,
        )
        _insert_rows(conn, "changes", CHANGE_COLUMNS, self.change_rows)


def _scope_covers(
    scope: MembershipScope, resource_type: str, resource_id: str, account_type: str | None
) -> bool:
    return (
        scope.resource_type == resource_type
        and scope.resource_id in (None, resource_id)
        and scope.account_type in (None, account_type)
    )


def _as_dict(item: User | Organization | Team) -> dict:
    return {f.name: getattr(item, f.name) for f in fields(item)}


def _upsert_rows(conn, table: str, rows: list[dict]) -> None:
    """Insert or update whole rows by the table's key; every row carries every column."""
    columns = list(TABLES[table]["columns"])
    key = TABLES[table]["pk"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
        [tuple(row[c] for c in columns) for row in rows],
    )


def _insert_rows(conn, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Append rows whose values are in ``columns`` order."""
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        rows,
    )
