"""The public schema, declared once and created through sqlite-utils migrations.

Auditors query these tables directly, so the shape is a promise: a new column or table is a new
migration appended below, never an edit of an old one. ``tests/test_schema.py`` pins the result.

``TABLES`` is the shape of today's schema. Each table says the release that created it
(``since``, 1 when absent) and any column added by a later one (``added``), so each migration
creates exactly what its release added, from the same declaration the README and Datasette use:
a new database runs every migration in order and ends up with the same shape as one upgraded.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

TEXT, INTEGER = str, int

#: A user's tracked values: a change in any of them is a change row and a new version, so the
#: current row and every version carry exactly these.
USER_VALUES = {
    "email": TEXT,
    "name": TEXT,
    "account_type": TEXT,
    "status": TEXT,
    "provider_status": TEXT,
    "last_sign_in_at": TEXT,
    "mfa_enabled": INTEGER,
}
#: Kept on the current row only: not part of what makes a new version.
USER_PRESENCE = {"created_at": TEXT, "first_seen_at": TEXT, "removed_at": TEXT}
#: Who belongs to what: a membership's identity, in its current row and in its versions.
MEMBERSHIP_KEY = {"provider": TEXT, "resource_type": TEXT, "resource_id": TEXT, "user_id": TEXT}
#: When a version's values held, and the run that saw them first.
VALIDITY = {"valid_from": TEXT, "valid_to": TEXT, "run_id": INTEGER}
#: "Principal P holds role R on resource X": a grant's identity, in its row and its versions.
GRANT_KEY = {
    "provider": TEXT,
    "resource_type": TEXT,
    "resource_id": TEXT,
    "principal_type": TEXT,
    "principal_id": TEXT,
    "role_id": TEXT,
}
#: Release 2 recorded access beyond membership: roles, grants, credentials.
ACCESS_RELEASE = 2
#: Release 3 raised alerts on risky changes: the ``alerts`` outbox.
ALERTS_RELEASE = 3

#: Every public table, its columns in order, and its primary key. Kept as data so the README,
#: the schema test and the Datasette metadata can all be generated from the one source.
TABLES: dict[str, dict] = {
    "sync_runs": {
        "columns": {
            "id": INTEGER,
            "provider": TEXT,
            "started_at": TEXT,
            "finished_at": TEXT,
            "status": TEXT,
            "error": TEXT,
            "requests": INTEGER,
            "changes": INTEGER,
        },
        "pk": "id",
    },
    "users": {
        "columns": {"provider": TEXT, "id": TEXT, **USER_VALUES, **USER_PRESENCE},
        "pk": ("provider", "id"),
    },
    "organizations": {
        "columns": {
            "provider": TEXT,
            "id": TEXT,
            "name": TEXT,
            "first_seen_at": TEXT,
            "removed_at": TEXT,
        },
        "pk": ("provider", "id"),
    },
    "teams": {
        "columns": {
            "provider": TEXT,
            "id": TEXT,
            "organization_id": TEXT,
            "name": TEXT,
            "slug": TEXT,
            "description": TEXT,
            "first_seen_at": TEXT,
            "removed_at": TEXT,
        },
        "pk": ("provider", "id"),
    },
    "memberships": {
        "columns": {**MEMBERSHIP_KEY, "role": TEXT, "first_seen_at": TEXT, "removed_at": TEXT},
        "pk": tuple(MEMBERSHIP_KEY),
    },
    "changes": {
        "columns": {
            "id": INTEGER,
            "run_id": INTEGER,
            "provider": TEXT,
            "observed_at": TEXT,
            "kind": TEXT,
            "user_id": TEXT,
            "email": TEXT,
            "resource_type": TEXT,
            "resource_id": TEXT,
            "resource_name": TEXT,
            "field": TEXT,
            "old_value": TEXT,
            "new_value": TEXT,
            "detail": TEXT,
        },
        "pk": "id",
        "foreign_keys": [("run_id", "sync_runs", "id")],
        "added": {"detail": ACCESS_RELEASE},
    },
    "user_versions": {
        "columns": {"provider": TEXT, "id": TEXT, **USER_VALUES, **VALIDITY},
        "pk": ("provider", "id", "valid_from"),
        "foreign_keys": [("run_id", "sync_runs", "id")],
    },
    "membership_versions": {
        "columns": {**MEMBERSHIP_KEY, "role": TEXT, **VALIDITY},
        "pk": (*MEMBERSHIP_KEY, "valid_from"),
        "foreign_keys": [("run_id", "sync_runs", "id")],
    },
    "roles": {
        "columns": {
            "provider": TEXT,
            "id": TEXT,
            "name": TEXT,
            "description": TEXT,
            "is_system": INTEGER,
            "permissions": TEXT,
            "first_seen_at": TEXT,
            "removed_at": TEXT,
        },
        "pk": ("provider", "id"),
        "since": ACCESS_RELEASE,
    },
    "grants": {
        "columns": {
            "provider": TEXT,
            "resource_type": TEXT,
            "resource_id": TEXT,
            "resource_name": TEXT,
            "principal_type": TEXT,
            "principal_id": TEXT,
            "role_id": TEXT,
            "role": TEXT,
            "binding_id": TEXT,
            "first_seen_at": TEXT,
            "removed_at": TEXT,
        },
        "pk": tuple(GRANT_KEY),
        "since": ACCESS_RELEASE,
    },
    "grant_versions": {
        "columns": {**GRANT_KEY, **VALIDITY},
        "pk": (*GRANT_KEY, "valid_from"),
        "foreign_keys": [("run_id", "sync_runs", "id")],
        "since": ACCESS_RELEASE,
    },
    "credentials": {
        "columns": {
            "provider": TEXT,
            "id": TEXT,
            "owner_type": TEXT,
            "owner_id": TEXT,
            "name": TEXT,
            "description": TEXT,
            "created_at": TEXT,
            "expires_at": TEXT,
            "last_used_at": TEXT,
            "first_seen_at": TEXT,
            "removed_at": TEXT,
        },
        "pk": ("provider", "id"),
        "since": ACCESS_RELEASE,
    },
    "baselines": {
        "columns": {"provider": TEXT, "kind": TEXT, "run_id": INTEGER, "baselined_at": TEXT},
        "pk": ("provider", "kind"),
        "foreign_keys": [("run_id", "sync_runs", "id")],
        "since": ACCESS_RELEASE,
    },
    "alerts": {
        "columns": {
            "id": INTEGER,
            "run_id": INTEGER,
            "provider": TEXT,
            "rule": TEXT,
            "observed_at": TEXT,
            "summary": TEXT,
            "payload": TEXT,
            "delivered_at": TEXT,
            "attempts": INTEGER,
            "last_error": TEXT,
        },
        "pk": "id",
        "foreign_keys": [("run_id", "sync_runs", "id")],
        "since": ALERTS_RELEASE,
    },
}

#: Indexes for the audit questions: "as of T", "what changed when", "who is in org X"; each with
#: the release that added it.
INDEXES: list[tuple[str, list[str]] | tuple[str, list[str], int]] = [
    ("sync_runs", ["provider", "started_at"]),
    ("users", ["email"]),
    ("users", ["provider", "last_sign_in_at"]),
    ("teams", ["provider", "organization_id"]),
    ("memberships", ["provider", "user_id"]),
    ("changes", ["observed_at"]),
    ("changes", ["provider", "kind", "observed_at"]),
    ("changes", ["user_id"]),
    ("changes", ["run_id"]),
    ("user_versions", ["valid_from", "valid_to"]),
    ("membership_versions", ["provider", "user_id", "valid_from"]),
    ("membership_versions", ["resource_type", "resource_id", "valid_from"]),
    ("grants", ["provider", "principal_type", "principal_id"], ACCESS_RELEASE),
    ("grant_versions", ["provider", "principal_id", "valid_from"], ACCESS_RELEASE),
    ("grant_versions", ["resource_type", "resource_id", "valid_from"], ACCESS_RELEASE),
    ("credentials", ["provider", "owner_id"], ACCESS_RELEASE),
    ("alerts", ["run_id"], ALERTS_RELEASE),
]
#: Indexes on an expression, which sqlite-utils does not declare: name, table, expression,
#: release. ``lower(email)`` is how a person is matched across providers (offboarding gaps).
EXPRESSION_INDEXES: list[tuple[str, str, str, int]] = [
    ("idx_users_lower_email", "users", "lower(email)", ALERTS_RELEASE),
]

#: Views over the tables, each with the release that added it. ``effective_grants``: every
#: current grant, a team's grant expanded to each current member of the team.
VIEWS: dict[str, dict] = {
    "effective_grants": {
        "columns": (
            "provider",
            "user_id",
            "email",
            "resource_type",
            "resource_id",
            "resource_name",
            "role_id",
            "role",
            "via_team_id",
            "via_team_name",
        ),
        "sql": "SELECT g.provider, g.principal_id AS user_id, u.email, g.resource_type, "
        "g.resource_id, g.resource_name, g.role_id, g.role, NULL AS via_team_id, "
        "NULL AS via_team_name "
        "FROM grants g LEFT JOIN users u ON u.provider = g.provider AND u.id = g.principal_id "
        "WHERE g.removed_at IS NULL AND g.principal_type = 'user' "
        "UNION ALL "
        "SELECT g.provider, m.user_id, u.email, g.resource_type, g.resource_id, "
        "g.resource_name, g.role_id, g.role, t.id, t.name "
        "FROM grants g JOIN teams t ON t.provider = g.provider AND t.id = g.principal_id "
        "JOIN memberships m ON m.provider = g.provider AND m.resource_type = 'team' "
        "AND m.resource_id = t.id AND m.removed_at IS NULL "
        "LEFT JOIN users u ON u.provider = g.provider AND u.id = m.user_id "
        "WHERE g.removed_at IS NULL AND g.principal_type = 'team'",
        "since": ACCESS_RELEASE,
    },
}

migrations = Migrations("accesstrail")


@migrations()
def m001_public_schema(db: sqlite_utils.Database) -> None:
    _create_release(db, 1)


@migrations()
def m002_access(db: sqlite_utils.Database) -> None:
    """Roles, grants and their versions, credentials, per-kind baselines, ``changes.detail``."""
    _create_release(db, ACCESS_RELEASE)


@migrations()
def m003_alerts(db: sqlite_utils.Database) -> None:
    """The ``alerts`` outbox; internal: the database's random id (given once, here, whether the
    database is new or upgraded) and which sinks each alert is owed to."""
    from store.alerts import create_internal_tables

    _create_release(db, ALERTS_RELEASE)
    create_internal_tables(db)


def _create_release(db: sqlite_utils.Database, release: int) -> None:
    """Create the tables, columns, indexes and views that ``release`` added to the schema."""
    for name, spec in TABLES.items():
        added = spec.get("added", {})
        if spec.get("since", 1) == release:
            db.table(name).create(
                {c: t for c, t in spec["columns"].items() if added.get(c, release) <= release},
                pk=spec["pk"],
                not_null=set(_key_columns(spec["pk"])),
                foreign_keys=spec.get("foreign_keys"),
            )
        for column, since in added.items():
            if since == release and spec.get("since", 1) < release:
                db.table(name).add_column(column, spec["columns"][column])
    for table, columns, *since in INDEXES:
        if (since[0] if since else 1) == release:
            db.table(table).create_index(columns)
    for index, table, expression, since in EXPRESSION_INDEXES:
        if since == release:
            db.execute(f"CREATE INDEX {index} ON {table} ({expression})")
    for view, spec in VIEWS.items():
        if spec["since"] == release:
            db.create_view(view, spec["sql"])


def _key_columns(pk) -> tuple[str, ...]:
    return (pk,) if isinstance(pk, str) else tuple(pk)


#: Modes of what the product creates beside the database (README, "Run as a service"): it holds
#: who can get into what, so only the owner writes and only its group (the web UI's user) reads.
FILE_MODE = 0o640
DIR_MODE = 0o750


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with ``DIR_MODE`` (``Path.mkdir`` would give
    the parents 0777 less the umask); an existing directory keeps its mode."""
    if directory.is_dir():
        return
    make_private_dirs(directory.parent)
    try:
        os.mkdir(directory, DIR_MODE)  # the umask can only make it stricter
    except FileExistsError:  # another thread or process was first
        return


def create_private_file(path: Path, mode: int = FILE_MODE) -> None:
    """Create ``path`` empty with at most ``mode`` whatever the umask, if it is missing.

    ``O_CREAT`` applies the umask, which can only take bits away; the ``fchmod`` then takes away
    any a default ACL may have added, keeping whatever is stricter. An existing file is left as
    it is: an operator's stricter mode is never loosened.
    """
    if path.exists():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:  # another thread or process was first
        return
    try:
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) & mode)
    finally:
        os.close(fd)


#: Switching to WAL and migrating are not safe to race from two connections; other processes are
#: kept out by the sync lock, threads of this one by this.
_setting_up = threading.Lock()


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (creating and migrating if needed) the database in WAL mode.

    WAL lets Datasette read while a sync writes; ``busy_timeout`` makes a reader or a second
    writer wait for a lock instead of failing at once.
    """
    path = Path(path)
    make_private_dirs(path.parent)
    create_private_file(path)  # before SQLite, which gives -wal and -shm the file's mode
    # One connection may be used by several threads of one sync, one at a time: the fetch's
    # scopes stream into its TEMP tables (``store/staging.py``) under the staging's own lock.
    db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=False))
    db.execute("PRAGMA busy_timeout = 30000")
    db.execute("PRAGMA foreign_keys = ON")
    with _setting_up:  # two providers of one process open the new database together
        if db.journal_mode != "wal":
            db.enable_wal()
        migrations.apply(db)
    return db
