"""Apply one provider snapshot: diff it against the current state and write only what changed.

The whole apply is one transaction taken *after* the fetch finished, so the write lock is never
held across network waits and a reader sees either the old state or the new, never half of a
run. The snapshot is already in TEMP tables (``store/staging.py``); the diff is a fixed series of
SQL statements over them and the current tables, joined by primary key, so its cost does not
depend on Python and its memory does not grow with the organisation. An unchanged row is never
written: a sync that finds nothing new adds nothing but its run row.

What the diff decides (``docs/sync-rules.md#what-a-change-implies``):
* new key → ``*_added`` plus a current row and, for users and memberships, a version row;
* a removed key that comes back → ``*_added`` again, ``removed_at`` cleared, ``first_seen_at`` kept;
* a tracked value that differs (``IS NOT``, so NULL-safe) → one change row per column and a new
  version;
* a key missing from a *completed* scope → ``*_removed``, ``removed_at`` set, version closed.
The first run of a provider that applies anything is its baseline: rows and versions, no changes;
into tables it at least doubles, it is a bulk load whose secondary indexes are built after it
(``store/bulkload.py``).
Roles, grants and credentials follow, with a baseline of their own (``store/apply_access.py``).

Each entity is diffed in the same three steps: a ``delta_*`` TEMP table of the keys that differ
(computed against the state before any write), the change rows (unless this is the baseline),
then the writes. Later entities read the earlier ones' *written* rows for a membership's email and
resource name, which is exactly "the snapshot's value if it has one, else the last known one".
"""

from __future__ import annotations

from collections import Counter

import sqlite_utils

from store import runs
from store.alerts import Alerting, raise_alerts
from store.apply_access import AccessDiff, access_baselines
from store.bulkload import indexes_built_after, tables_worth_rebuilding
from store.diffsql import Statements, differs, row_changes, upsert_sql
from store.model import Snapshot
from store.schema import USER_VALUES
from store.staging import settled
from store.transactions import transaction

USER_TRACKED = tuple(USER_VALUES)
USER_CHANGE_KIND = {"status": "status_changed", "last_sign_in_at": "last_sign_in_changed"}
TEAM_TRACKED = ("organization_id", "name", "slug", "description")

SNAP_ORGS, SNAP_TEAMS = settled("organizations"), settled("teams")
SNAP_USERS, SNAP_MEMBERSHIPS = settled("users"), settled("memberships")
#: How a change row names its subject, over a ``d`` row of a delta or gone table: a
#: membership's email and resource name are read from the rows this run has already written.
ORGANIZATION_CONTEXT = (
    "NULL AS user_id, NULL AS email, 'organization' AS resource_type, d.id AS resource_id, "
    "d.name AS resource_name"
)
TEAM_CONTEXT = ORGANIZATION_CONTEXT.replace("'organization'", "'team'")
USER_CONTEXT = (
    "d.id AS user_id, d.email AS email, NULL AS resource_type, NULL AS resource_id, "
    "NULL AS resource_name"
)
MEMBERSHIP_CONTEXT = (
    "d.user_id AS user_id, "
    "(SELECT email FROM users u WHERE u.provider = :provider AND u.id = d.user_id) AS email, "
    "d.resource_type AS resource_type, d.resource_id AS resource_id, "
    "CASE d.resource_type "
    "WHEN 'organization' THEN (SELECT name FROM organizations o "
    "WHERE o.provider = :provider AND o.id = d.resource_id) "
    "ELSE (SELECT name FROM teams t WHERE t.provider = :provider AND t.id = d.resource_id) "
    "END AS resource_name"
)
MEMBERSHIP_KEY = ("resource_type", "resource_id", "user_id")


def apply_snapshot(
    db: sqlite_utils.Database,
    snapshot: Snapshot,
    run: runs.Run,
    alerting: Alerting | None = None,
) -> runs.RunResult:
    """Diff ``snapshot`` against the database and write what changed, stamped as ``run``.

    One transaction (a savepoint when the caller already holds one, as the sync does so that
    the run row closes in the same commit). The run's alerts (``alerting``: all rules, owed to
    no sink, when None) are written in it, after the change rows; a baseline has none.
    """
    with transaction(db):
        baseline = not runs.has_applied_before(db, snapshot.provider, run)
        snapshot.staging.settle()
        diff = _Diff(db, snapshot, run, baseline)
        with indexes_built_after(db.conn, diff.bulk_loaded_tables()):
            diff.run()
        AccessDiff(db, snapshot, run, access_baselines(db, snapshot.provider, baseline)).run()
        raise_alerts(db, run.id, alerting or Alerting())
        counted = db.execute(
            "SELECT kind, COUNT(*) FROM changes WHERE run_id = ? GROUP BY kind", [run.id]
        ).fetchall()
    error = "; ".join(f"{f.scope}: {f.error}" for f in snapshot.failures) or None
    return runs.RunResult(
        status="partial" if snapshot.partial else "succeeded",
        error=error,
        changes=Counter(dict(counted)),
    )


class _Diff(Statements):
    """The diff's statements, in the order the rules need them."""

    def __init__(
        self, db: sqlite_utils.Database, snapshot: Snapshot, run: runs.Run, baseline: bool
    ):
        super().__init__(db, snapshot.provider, run, baseline)
        self.snapshot = snapshot
        #: The provider has no users yet, so none can be gone after this run writes its own.
        self.fresh = not db.execute(
            "SELECT 1 FROM users WHERE provider = ? LIMIT 1", [snapshot.provider]
        ).fetchone()

    def bulk_loaded_tables(self) -> list[str]:
        """The tables this run loads in bulk (``store/bulkload.py``): a first snapshot's."""
        if not (self.baseline and self.fresh):
            return []
        users, memberships = (
            self.conn.execute(f"SELECT COUNT(*) FROM temp.{table}").fetchone()[0]
            for table in (SNAP_USERS, SNAP_MEMBERSHIPS)
        )
        incoming = {
            "users": users,
            "user_versions": users,
            "memberships": memberships,
            "membership_versions": memberships,
        }
        return tables_worth_rebuilding(self.conn, incoming)

    def run(self) -> None:
        self._stage_scopes()
        self._organizations()
        self._teams()
        self._users()
        self._memberships()
        self._users_without_memberships()

    def _stage_scopes(self) -> None:
        """What the snapshot read completely, as tables the removal rules can join."""
        self.temp("team_scopes", "SELECT NULL AS organization_id WHERE 0")
        self.conn.executemany(
            "INSERT INTO temp.team_scopes VALUES (?)",
            [(org,) for org in sorted(self.snapshot.team_scopes)],
        )
        self.temp(
            "membership_scopes",
            "SELECT NULL AS resource_type, NULL AS resource_id, NULL AS account_type WHERE 0",
        )
        self.conn.executemany(
            "INSERT INTO temp.membership_scopes VALUES (?, ?, ?)",
            [
                (s.resource_type, s.resource_id, s.account_type)
                for s in self.snapshot.membership_scopes
            ],
        )

    # -- organisations -------------------------------------------------------------------------

    def _organizations(self) -> None:
        self.temp(
            "delta_organizations",
            f"SELECT s.ord AS ord, s.id, s.name, c.name AS old_name, "
            f"c.first_seen_at, (c.id IS NULL OR c.removed_at IS NOT NULL) AS added "
            f"FROM {SNAP_ORGS} s LEFT JOIN organizations c "
            f"ON c.provider = :provider AND c.id = s.id "
            f"WHERE c.id IS NULL OR c.removed_at IS NOT NULL OR c.name IS NOT s.name",
        )
        self.temp(
            "gone_organizations",
            f"SELECT c.rowid AS ord, c.id, c.name FROM organizations c "
            f"WHERE c.provider = :provider AND c.removed_at IS NULL "
            f"AND c.id NOT IN (SELECT id FROM {SNAP_ORGS})",
        )
        self.changes(
            row_changes(
                "delta_organizations",
                ("name",),
                ORGANIZATION_CONTEXT,
                added="organization_added",
                kind_of=lambda column: "organization_updated",
            )
        )
        self.changes(
            f"SELECT 'organization_removed', {ORGANIZATION_CONTEXT}, NULL, NULL, NULL "
            "FROM gone_organizations d ORDER BY ord"
        )
        self.execute(
            upsert_sql(
                "organizations",
                ("provider", "id", "name", "first_seen_at", "removed_at"),
                "SELECT :provider, id, name, COALESCE(first_seen_at, :stamp), NULL "
                "FROM delta_organizations WHERE true",
            )
        )
        self.execute(
            "UPDATE organizations SET removed_at = :stamp WHERE provider = :provider "
            "AND id IN (SELECT id FROM gone_organizations)"
        )

    # -- teams ---------------------------------------------------------------------------------

    def _teams(self) -> None:
        self.temp(
            "delta_teams",
            "SELECT s.*, c.first_seen_at, "
            "(c.id IS NULL OR c.removed_at IS NOT NULL) AS added, "
            + ", ".join(f"c.{column} AS old_{column}" for column in TEAM_TRACKED)
            + f" FROM {SNAP_TEAMS} s LEFT JOIN teams c ON c.provider = :provider AND c.id = s.id "
            f"WHERE c.id IS NULL OR c.removed_at IS NOT NULL OR {differs(TEAM_TRACKED)}",
        )
        # A team missing from its organisation's completed listing, or from an organisation
        # that is gone, is gone; one whose listing failed is kept.
        self.temp(
            "gone_teams",
            f"SELECT c.rowid AS ord, c.id, c.name FROM teams c "
            f"WHERE c.provider = :provider AND c.removed_at IS NULL "
            f"AND c.id NOT IN (SELECT id FROM {SNAP_TEAMS}) "
            f"AND (c.organization_id IN (SELECT organization_id FROM team_scopes) "
            f"OR c.organization_id IN (SELECT id FROM gone_organizations))",
        )
        self.changes(
            row_changes(
                "delta_teams",
                TEAM_TRACKED,
                TEAM_CONTEXT,
                added="team_added",
                kind_of=lambda column: "team_updated",
            )
        )
        self.changes(
            f"SELECT 'team_removed', {TEAM_CONTEXT}, NULL, NULL, NULL FROM gone_teams d "
            "ORDER BY ord"
        )
        columns = ("provider", "id", *TEAM_TRACKED, "first_seen_at", "removed_at")
        self.execute(
            upsert_sql(
                "teams",
                columns,
                f"SELECT :provider, id, {', '.join(TEAM_TRACKED)}, "
                f"COALESCE(first_seen_at, :stamp), NULL FROM delta_teams WHERE true",
            )
        )
        self.execute(
            "UPDATE teams SET removed_at = :stamp WHERE provider = :provider "
            "AND id IN (SELECT id FROM gone_teams)"
        )

    # -- users ---------------------------------------------------------------------------------

    def _users(self) -> None:
        user_differs = differs(USER_TRACKED)
        self.temp(
            "delta_users",
            f"SELECT s.*, c.first_seen_at, "
            f"(c.id IS NULL OR c.removed_at IS NOT NULL) AS added, "
            f"(c.id IS NOT NULL AND c.removed_at IS NULL AND {user_differs}) AS changed, "
            + ", ".join(f"c.{column} AS old_{column}" for column in USER_TRACKED)
            + f" FROM {SNAP_USERS} s LEFT JOIN users c ON c.provider = :provider AND c.id = s.id "
            f"WHERE c.id IS NULL OR c.removed_at IS NOT NULL OR {user_differs} "
            f"OR c.created_at IS NOT s.created_at",
        )
        self.changes(
            row_changes(
                "delta_users",
                USER_TRACKED,
                USER_CONTEXT,
                added="user_added",
                kind_of=lambda column: USER_CHANGE_KIND.get(column, "user_updated"),
                # one status_changed row says both the status and the provider's own word
                unless={"provider_status": "d.old_status IS NOT d.status"},
            )
        )
        self.execute(
            "UPDATE user_versions SET valid_to = :stamp WHERE provider = :provider "
            "AND valid_to IS NULL AND id IN (SELECT id FROM delta_users WHERE changed)"
        )
        tracked = ", ".join(USER_TRACKED)
        self.execute(
            f"INSERT INTO user_versions (provider, id, {tracked}, valid_from, valid_to, run_id) "
            f"SELECT :provider, id, {tracked}, :stamp, NULL, :run FROM delta_users "
            f"WHERE added OR changed ORDER BY ord"
        )
        self.execute(
            upsert_sql(
                "users",
                ("provider", "id", *USER_TRACKED, "created_at", "first_seen_at", "removed_at"),
                f"SELECT :provider, id, {tracked}, created_at, COALESCE(first_seen_at, :stamp), "
                f"NULL FROM delta_users WHERE true",
            )
        )

    # -- memberships ---------------------------------------------------------------------------

    def _memberships(self) -> None:
        # In key order (the snapshot's primary key gives it for free), so that a delta row's
        # rowid is its key order and the version and membership indexes grow at their ends.
        self.temp(
            "delta_memberships",
            f"SELECT s.*, c.role AS old_role, c.first_seen_at, "
            f"(c.user_id IS NULL OR c.removed_at IS NOT NULL) AS added "
            f"FROM {SNAP_MEMBERSHIPS} s LEFT JOIN memberships c ON c.provider = :provider "
            f"AND c.resource_type = s.resource_type AND c.resource_id = s.resource_id "
            f"AND c.user_id = s.user_id "
            f"WHERE c.user_id IS NULL OR c.removed_at IS NOT NULL OR c.role IS NOT s.role "
            f"ORDER BY s.resource_type, s.resource_id, s.user_id",
        )
        # Gone: absent from the snapshot, and either its resource is gone or a completed scope
        # covers it (for the user's account type, as the snapshot or the last run saw it).
        self.temp(
            "gone_memberships",
            f"SELECT c.rowid AS ord, c.resource_type, c.resource_id, c.user_id "
            f"FROM memberships c WHERE c.provider = :provider AND c.removed_at IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {SNAP_MEMBERSHIPS} s "
            f"WHERE s.resource_type = c.resource_type AND s.resource_id = c.resource_id "
            f"AND s.user_id = c.user_id) "
            f"AND ((c.resource_type = 'organization' "
            f"AND c.resource_id IN (SELECT id FROM gone_organizations)) "
            f"OR (c.resource_type = 'team' AND c.resource_id IN (SELECT id FROM gone_teams)) "
            f"OR EXISTS (SELECT 1 FROM membership_scopes m "
            f"WHERE m.resource_type = c.resource_type "
            f"AND (m.resource_id IS NULL OR m.resource_id = c.resource_id) "
            f"AND (m.account_type IS NULL OR m.account_type = (SELECT account_type FROM users u "
            f"WHERE u.provider = :provider AND u.id = c.user_id)))) "
            # in key order: read along the primary key, as the snapshot is, not row by row
            f"ORDER BY c.resource_type, c.resource_id, c.user_id",
        )
        self.changes(
            row_changes(
                "delta_memberships",
                ("role",),
                MEMBERSHIP_CONTEXT,
                added="membership_added",
                kind_of=lambda column: "role_changed",
            )
        )
        self.changes(
            f"SELECT 'membership_removed', {MEMBERSHIP_CONTEXT}, NULL, NULL, NULL "
            "FROM gone_memberships d ORDER BY ord"
        )
        key = ", ".join(MEMBERSHIP_KEY)
        # One statement per source: an IN over a UNION ALL is not used to probe the key, and
        # the update would read every open version of the provider.
        for closed in ("delta_memberships WHERE NOT added", "gone_memberships"):
            self.execute(
                f"UPDATE membership_versions SET valid_to = :stamp WHERE provider = :provider "
                f"AND valid_to IS NULL AND ({key}) IN (SELECT {key} FROM {closed})"
            )
        self.execute(
            f"INSERT INTO membership_versions (provider, {key}, role, valid_from, valid_to, "
            f"run_id) SELECT :provider, {key}, role, :stamp, NULL, :run FROM delta_memberships "
            f"ORDER BY rowid"
        )
        self.execute(
            upsert_sql(
                "memberships",
                ("provider", *MEMBERSHIP_KEY, "role", "first_seen_at", "removed_at"),
                f"SELECT :provider, {key}, role, COALESCE(first_seen_at, :stamp), NULL "
                f"FROM delta_memberships WHERE true ORDER BY rowid",
            )
        )
        self.execute(
            f"UPDATE memberships SET removed_at = :stamp WHERE provider = :provider "
            f"AND ({key}) IN (SELECT {key} FROM gone_memberships)"
        )

    def _users_without_memberships(self) -> None:
        """A user the snapshot did not list has left once none of their memberships is left.

        A provider's first users are all the snapshot's own: none is gone, and finding that out
        would look up every one of them in memberships whose index is still to be built.
        """
        self.temp(
            "gone_users",
            f"SELECT c.rowid AS ord, c.id, c.email FROM users c "
            f"WHERE {'0' if self.fresh else '1'} AND c.provider = :provider "
            f"AND c.removed_at IS NULL "
            f"AND c.id NOT IN (SELECT id FROM {SNAP_USERS}) "
            f"AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.provider = :provider "
            f"AND m.user_id = c.id AND m.removed_at IS NULL) ORDER BY c.id",
        )
        self.changes(
            f"SELECT 'user_removed', {USER_CONTEXT}, NULL, NULL, NULL FROM gone_users d "
            "ORDER BY ord"
        )
        self.execute(
            "UPDATE users SET removed_at = :stamp WHERE provider = :provider "
            "AND id IN (SELECT id FROM gone_users)"
        )
        self.execute(
            "UPDATE user_versions SET valid_to = :stamp WHERE provider = :provider "
            "AND valid_to IS NULL AND id IN (SELECT id FROM gone_users)"
        )
