"""The diff of access beyond membership: roles, grants and credentials.

Runs in the apply's transaction after the identities (``store/apply.py``), because two of its
rules read what that diff decided: a user or a team that is gone holds nothing, so its grants
(and a service account's tokens) are removed even in a run whose access listings failed; and a
grant's change row names its principal by the email or team name this run wrote.

Each kind has its own baseline (``baselines``): the first run that completes a listing of a
kind, for a provider that never recorded that kind, writes rows and versions without change
rows — after an upgrade an account's existing grants are not news. Absences count only inside
a completed ``AccessScope``: the whole provider (``owner_id`` NULL) or one principal or owner.
"""

from __future__ import annotations

import sqlite_utils

from store import runs
from store.diffsql import Statements, differs, row_changes, upsert_sql
from store.model import ACCESS_KINDS, Snapshot
from store.schema import GRANT_KEY
from store.staging import settled

ROLE_TRACKED = ("name", "description", "is_system", "permissions")
CREDENTIAL_TRACKED = ("name", "description", "expires_at", "last_used_at")
CREDENTIAL_KIND = {"last_used_at": "credential_used"}
GRANT_COLUMNS = tuple(column for column in GRANT_KEY if column != "provider")
SNAP_ROLES, SNAP_GRANTS = settled("roles"), settled("grants")
SNAP_CREDENTIALS = settled("credentials")

ROLE_CONTEXT = (
    "NULL AS user_id, NULL AS email, 'role' AS resource_type, d.id AS resource_id, "
    "d.name AS resource_name"
)
CREDENTIAL_CONTEXT = (
    "d.owner_id AS user_id, "
    "(SELECT email FROM users u WHERE u.provider = :provider AND u.id = d.owner_id) AS email, "
    "'credential' AS resource_type, d.id AS resource_id, d.name AS resource_name"
)
#: A grant row names its principal: a user's email as a column, and in ``detail`` the principal
#: with its name (a user's email or a team's name), over a ``d`` row of a grant delta.
GRANT_EMAIL = (
    "CASE WHEN d.principal_type = 'user' THEN (SELECT email FROM users u "
    "WHERE u.provider = :provider AND u.id = d.principal_id) END"
)
GRANT_CONTEXT = (
    "CASE WHEN d.principal_type = 'user' THEN d.principal_id END AS user_id, "
    f"{GRANT_EMAIL} AS email, d.resource_type AS resource_type, d.resource_id AS resource_id, "
    "d.resource_name AS resource_name"
)
GRANT_DETAIL = (
    "json_object('principal_type', d.principal_type, 'principal_id', d.principal_id, "
    f"'principal_name', CASE WHEN d.principal_type = 'user' THEN {GRANT_EMAIL} "
    "ELSE (SELECT name FROM teams t WHERE t.provider = :provider AND t.id = d.principal_id) END, "
    "'role_id', d.role_id)"
)


def access_baselines(db: sqlite_utils.Database, provider: str, run_is_baseline: bool) -> set[str]:
    """The kinds whose rows this run records without change rows."""
    if run_is_baseline:
        return set(ACCESS_KINDS)
    done = {
        row[0] for row in db.execute("SELECT kind FROM baselines WHERE provider = ?", [provider])
    }
    return set(ACCESS_KINDS) - done


class AccessDiff(Statements):
    """Roles, then grants, then credentials; after the identities' diff, in its transaction."""

    def __init__(
        self, db: sqlite_utils.Database, snapshot: Snapshot, run: runs.Run, baselines: set[str]
    ):
        super().__init__(db, snapshot.provider, run, baseline=False)
        self.snapshot = snapshot
        self.baselines = baselines
        self.completed = {scope.kind for scope in snapshot.access_scopes}

    def run(self) -> None:
        self._stage_access_scopes()
        self._roles()
        self._grants()
        self._credentials()
        self._record_baselines()

    def _stage_access_scopes(self) -> None:
        self.temp("access_scopes", "SELECT NULL AS kind, NULL AS owner_id WHERE 0")
        self.conn.executemany(
            "INSERT INTO temp.access_scopes VALUES (?, ?)",
            [(scope.kind, scope.owner_id) for scope in self.snapshot.access_scopes],
        )

    def _covered(self, kind: str, owner: str) -> str:
        """SQL true when a completed listing of ``kind`` covers the row whose owner is ``owner``."""
        return (
            f"EXISTS (SELECT 1 FROM access_scopes a WHERE a.kind = '{kind}' "
            f"AND (a.owner_id IS NULL OR a.owner_id = {owner}))"
        )

    def _record_baselines(self) -> None:
        """A kind is baselined by the first run that completed a listing of it."""
        for kind in sorted(self.completed & self.baselines):
            self.execute(
                "INSERT INTO baselines (provider, kind, run_id, baselined_at) "
                f"VALUES (:provider, '{kind}', :run, :stamp) ON CONFLICT DO NOTHING"
            )

    # -- roles ---------------------------------------------------------------------------------

    def _roles(self) -> None:
        self.temp(
            "delta_roles",
            "SELECT s.*, c.first_seen_at, (c.id IS NULL OR c.removed_at IS NOT NULL) AS added, "
            + ", ".join(f"c.{column} AS old_{column}" for column in ROLE_TRACKED)
            + f" FROM {SNAP_ROLES} s LEFT JOIN roles c ON c.provider = :provider AND c.id = s.id "
            f"WHERE c.id IS NULL OR c.removed_at IS NOT NULL OR {differs(ROLE_TRACKED)}",
        )
        self.temp(
            "gone_roles",
            f"SELECT c.rowid AS ord, c.id, c.name FROM roles c "
            f"WHERE c.provider = :provider AND c.removed_at IS NULL "
            f"AND c.id NOT IN (SELECT id FROM {SNAP_ROLES}) AND {self._covered('roles', 'NULL')}",
        )
        skip = "roles" in self.baselines
        self.changes(
            row_changes(
                "delta_roles",
                ROLE_TRACKED,
                ROLE_CONTEXT,
                added="role_added",
                kind_of=lambda column: "role_updated",
            ),
            baseline=skip,
        )
        self.changes(
            f"SELECT 'role_removed', {ROLE_CONTEXT}, NULL, NULL, NULL FROM gone_roles d "
            "ORDER BY ord",
            baseline=skip,
        )
        columns = ("provider", "id", *ROLE_TRACKED, "first_seen_at", "removed_at")
        self.execute(
            upsert_sql(
                "roles",
                columns,
                f"SELECT :provider, id, {', '.join(ROLE_TRACKED)}, "
                f"COALESCE(first_seen_at, :stamp), NULL FROM delta_roles WHERE true",
            )
        )
        self.execute(
            "UPDATE roles SET removed_at = :stamp WHERE provider = :provider "
            "AND id IN (SELECT id FROM gone_roles)"
        )
        # A renamed role renames its grants, even those whose listing was not read this run.
        self.execute(
            "UPDATE grants SET role = (SELECT name FROM delta_roles d WHERE d.id = grants.role_id) "
            "WHERE provider = :provider AND removed_at IS NULL "
            "AND role_id IN (SELECT id FROM delta_roles WHERE name IS NOT NULL)"
        )

    # -- grants --------------------------------------------------------------------------------

    def _grants(self) -> None:
        key = ", ".join(GRANT_COLUMNS)
        joined = " AND ".join(f"c.{column} = s.{column}" for column in GRANT_COLUMNS)
        # Names follow renames without a change row (a grant has no values of its own); a name
        # the snapshot does not know is the role's as this run wrote it, else the last known.
        self.temp(
            "snap_grants_named",
            f"SELECT s.ord, {', '.join(f's.{c}' for c in GRANT_COLUMNS)}, s.binding_id, "
            "COALESCE(s.role, (SELECT name FROM roles r WHERE r.provider = :provider "
            "AND r.id = s.role_id), c.role) AS role, "
            "COALESCE(s.resource_name, c.resource_name) AS resource_name, "
            "c.first_seen_at, (c.role_id IS NULL OR c.removed_at IS NOT NULL) AS added, "
            "c.role AS old_role, c.resource_name AS old_resource_name, "
            "c.binding_id AS old_binding_id "
            f"FROM {SNAP_GRANTS} s LEFT JOIN grants c ON c.provider = :provider AND {joined}",
        )
        self.temp(
            "delta_grants",
            "SELECT * FROM snap_grants_named WHERE added OR role IS NOT old_role "
            "OR resource_name IS NOT old_resource_name OR binding_id IS NOT old_binding_id "
            f"ORDER BY {key}",
        )
        # Gone: absent from a listing that covers it, or held by a user or team that is gone.
        self.temp(
            "gone_grants",
            f"SELECT c.rowid AS ord, c.* FROM grants c "
            f"WHERE c.provider = :provider AND c.removed_at IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {SNAP_GRANTS} s WHERE {joined}) "
            f"AND ({self._covered('grants', 'c.principal_id')} "
            "OR (c.principal_type = 'user' AND c.principal_id IN (SELECT id FROM gone_users)) "
            "OR (c.principal_type = 'team' AND c.principal_id IN (SELECT id FROM gone_teams)))",
        )
        skip = "grants" in self.baselines
        self.changes(
            f"SELECT 'grant_added', {GRANT_CONTEXT}, NULL, NULL, d.role, {GRANT_DETAIL} "
            "FROM delta_grants d WHERE d.added ORDER BY d.ord",
            baseline=skip,
            detail=True,
        )
        self.changes(
            f"SELECT 'grant_removed', {GRANT_CONTEXT}, NULL, d.role, NULL, {GRANT_DETAIL} "
            "FROM gone_grants d ORDER BY d.ord",
            baseline=skip,
            detail=True,
        )
        self.execute(
            f"UPDATE grant_versions SET valid_to = :stamp WHERE provider = :provider "
            f"AND valid_to IS NULL AND ({key}) IN (SELECT {key} FROM gone_grants)"
        )
        self.execute(
            f"INSERT INTO grant_versions (provider, {key}, valid_from, valid_to, run_id) "
            f"SELECT :provider, {key}, :stamp, NULL, :run FROM delta_grants WHERE added "
            "ORDER BY rowid"
        )
        columns = ("provider", *GRANT_COLUMNS, "resource_name", "role", "binding_id")
        self.execute(
            upsert_sql(
                "grants",
                (*columns, "first_seen_at", "removed_at"),
                f"SELECT :provider, {key}, resource_name, role, binding_id, "
                "COALESCE(first_seen_at, :stamp), NULL FROM delta_grants WHERE true ORDER BY rowid",
            )
        )
        self.execute(
            f"UPDATE grants SET removed_at = :stamp WHERE provider = :provider "
            f"AND ({key}) IN (SELECT {key} FROM gone_grants)"
        )

    # -- credentials ---------------------------------------------------------------------------

    def _credentials(self) -> None:
        self.temp(
            "delta_credentials",
            "SELECT s.*, c.first_seen_at, (c.id IS NULL OR c.removed_at IS NOT NULL) AS added, "
            + ", ".join(f"c.{column} AS old_{column}" for column in CREDENTIAL_TRACKED)
            + f" FROM {SNAP_CREDENTIALS} s LEFT JOIN credentials c "
            "ON c.provider = :provider AND c.id = s.id "
            f"WHERE c.id IS NULL OR c.removed_at IS NOT NULL OR {differs(CREDENTIAL_TRACKED)} "
            "OR c.created_at IS NOT s.created_at OR c.owner_id IS NOT s.owner_id",
        )
        self.temp(
            "gone_credentials",
            f"SELECT c.rowid AS ord, c.id, c.name, c.owner_id FROM credentials c "
            f"WHERE c.provider = :provider AND c.removed_at IS NULL "
            f"AND c.id NOT IN (SELECT id FROM {SNAP_CREDENTIALS}) "
            f"AND ({self._covered('credentials', 'c.owner_id')} "
            "OR c.owner_id IN (SELECT id FROM gone_users))",
        )
        skip = "credentials" in self.baselines
        self.changes(
            row_changes(
                "delta_credentials",
                CREDENTIAL_TRACKED,
                CREDENTIAL_CONTEXT,
                added="credential_added",
                kind_of=lambda column: CREDENTIAL_KIND.get(column, "credential_updated"),
            ),
            baseline=skip,
        )
        self.changes(
            f"SELECT 'credential_removed', {CREDENTIAL_CONTEXT}, NULL, NULL, NULL "
            "FROM gone_credentials d ORDER BY ord",
            baseline=skip,
        )
        columns = ("provider", "id", "owner_type", "owner_id", *CREDENTIAL_TRACKED, "created_at")
        self.execute(
            upsert_sql(
                "credentials",
                (*columns, "first_seen_at", "removed_at"),
                f"SELECT :provider, id, owner_type, owner_id, {', '.join(CREDENTIAL_TRACKED)}, "
                "created_at, COALESCE(first_seen_at, :stamp), NULL FROM delta_credentials "
                "WHERE true",
            )
        )
        self.execute(
            "UPDATE credentials SET removed_at = :stamp WHERE provider = :provider "
            "AND id IN (SELECT id FROM gone_credentials)"
        )
