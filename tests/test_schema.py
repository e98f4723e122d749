"""The public schema (the tables auditors query) is a promise to them: this file pins it.

The expected tables, columns (in order, with declared types) and primary keys are written out
literally here, not derived from ``store/schema.py``, so that any edit to the schema — a renamed,
dropped, retyped or reordered column, a changed key, an extra table — fails this test and has to
be made deliberately, as a new migration and a new issue. Also checks that the database is in WAL
mode (Datasette reads while the daemon writes) and that migrating twice is harmless.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
from pathlib import Path

from store import schema

EXPECTED: dict[str, dict] = {
    "sync_runs": {
        "columns": [
            ("id", "INTEGER"),
            ("provider", "TEXT"),
            ("started_at", "TEXT"),
            ("finished_at", "TEXT"),
            ("status", "TEXT"),
            ("error", "TEXT"),
            ("requests", "INTEGER"),
            ("changes", "INTEGER"),
        ],
        "pk": ["id"],
    },
    "users": {
        "columns": [
            ("provider", "TEXT"),
            ("id", "TEXT"),
            ("email", "TEXT"),
            ("name", "TEXT"),
            ("account_type", "TEXT"),
            ("status", "TEXT"),
            ("provider_status", "TEXT"),
            ("last_sign_in_at", "TEXT"),
            ("mfa_enabled", "INTEGER"),
            ("created_at", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("removed_at", "TEXT"),
        ],
        "pk": ["provider", "id"],
    },
    "organizations": {
        "columns": [
            ("provider", "TEXT"),
            ("id", "TEXT"),
            ("name", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("removed_at", "TEXT"),
        ],
        "pk": ["provider", "id"],
    },
    "teams": {
        "columns": [
            ("provider", "TEXT"),
            ("id", "TEXT"),
            ("organization_id", "TEXT"),
            ("name", "TEXT"),
            ("slug", "TEXT"),
            ("description", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("removed_at", "TEXT"),
        ],
        "pk": ["provider", "id"],
    },
    "memberships": {
        "columns": [
            ("provider", "TEXT"),
            ("resource_type", "TEXT"),
            ("resource_id", "TEXT"),
            ("user_id", "TEXT"),
            ("role", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("removed_at", "TEXT"),
        ],
        "pk": ["provider", "resource_type", "resource_id", "user_id"],
    },
    "changes": {
        "columns": [
            ("id", "INTEGER"),
            ("run_id", "INTEGER"),
            ("provider", "TEXT"),
            ("observed_at", "TEXT"),
            ("kind", "TEXT"),
            ("user_id", "TEXT"),
            ("email", "TEXT"),
            ("resource_type", "TEXT"),
            ("resource_id", "TEXT"),
            ("resource_name", "TEXT"),
            ("field", "TEXT"),
            ("old_value", "TEXT"),
            ("new_value", "TEXT"),
            ("detail", "TEXT"),
        ],
        "pk": ["id"],
    },
    "user_versions": {
        "columns": [
            ("provider", "TEXT"),
            ("id", "TEXT"),
            ("email", "TEXT"),
            ("name", "TEXT"),
            ("account_type", "TEXT"),
            ("status", "TEXT"),
            ("provider_status", "TEXT"),
            ("last_sign_in_at", "TEXT"),
            ("mfa_enabled", "INTEGER"),
            ("valid_from", "TEXT"),
            ("valid_to", "TEXT"),
            ("run_id", "INTEGER"),
        ],
        "pk": ["provider", "id", "valid_from"],
    },
    "membership_versions": {
        "columns": [
            ("provider", "TEXT"),
            ("resource_type", "TEXT"),
            ("resource_id", "TEXT"),
            ("user_id", "TEXT"),
            ("role", "TEXT"),
            ("valid_from", "TEXT"),
            ("valid_to", "TEXT"),
            ("run_id", "INTEGER"),
        ],
        "pk": ["provider", "resource_type", "resource_id", "user_id", "valid_from"],
    },
    "roles": {
        "columns": [
            ("provider", "TEXT"),
            ("id", "TEXT"),
            ("name", "TEXT"),
            ("description", "TEXT"),
            ("is_system", "INTEGER"),
            ("permissions", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("removed_at", "TEXT"),
        ],
        "pk": ["provider", "id"],
    },
    "grants": {
        "columns": [
            ("provider", "TEXT"),
            ("resource_type", "TEXT"),
            ("resource_id", "TEXT"),
            ("resource_name", "TEXT"),
            ("principal_type", "TEXT"),
            ("principal_id", "TEXT"),
            ("role_id", "TEXT"),
            ("role", "TEXT"),
            ("binding_id", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("removed_at", "TEXT"),
        ],
        "pk": [
            "provider",
            "resource_type",
            "resource_id",
            "principal_type",
            "principal_id",
            "role_id",
        ],
    },
    "grant_versions": {
        "columns": [
            ("provider", "TEXT"),
            ("resource_type", "TEXT"),
            ("resource_id", "TEXT"),
            ("principal_type", "TEXT"),
            ("principal_id", "TEXT"),
            ("role_id", "TEXT"),
            ("valid_from", "TEXT"),
            ("valid_to", "TEXT"),
            ("run_id", "INTEGER"),
        ],
        "pk": [
            "provider",
            "resource_type",
            "resource_id",
            "principal_type",
            "principal_id",
            "role_id",
            "valid_from",
        ],
    },
    "credentials": {
        "columns": [
            ("provider", "TEXT"),
            ("id", "TEXT"),
            ("owner_type", "TEXT"),
            ("owner_id", "TEXT"),
            ("name", "TEXT"),
            ("description", "TEXT"),
            ("created_at", "TEXT"),
            ("expires_at", "TEXT"),
            ("last_used_at", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("removed_at", "TEXT"),
        ],
        "pk": ["provider", "id"],
    },
    "baselines": {
        "columns": [
            ("provider", "TEXT"),
            ("kind", "TEXT"),
            ("run_id", "INTEGER"),
            ("baselined_at", "TEXT"),
        ],
        "pk": ["provider", "kind"],
    },
    "alerts": {
        "columns": [
            ("id", "INTEGER"),
            ("run_id", "INTEGER"),
            ("provider", "TEXT"),
            ("rule", "TEXT"),
            ("observed_at", "TEXT"),
            ("summary", "TEXT"),
            ("payload", "TEXT"),
            ("delivered_at", "TEXT"),
            ("attempts", "INTEGER"),
            ("last_error", "TEXT"),
        ],
        "pk": ["id"],
    },
}
#: Views an auditor queries, with their columns in order.
EXPECTED_VIEWS = {
    "effective_grants": [
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
    ],
}


def public_tables(conn: sqlite3.Connection) -> list[str]:
    """Every table an auditor sees: not SQLite's own, not the migration bookkeeping."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [name for (name,) in rows if not name.startswith("sqlite_") and not name.startswith("_")]


def columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return [(row[1], row[2]) for row in conn.execute(f"PRAGMA table_info({table})")]


def primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    info = [(row[5], row[1]) for row in conn.execute(f"PRAGMA table_info({table})") if row[5]]
    return [name for _, name in sorted(info)]


@contextlib.contextmanager
def migrated(db_path):
    """A plain sqlite3 connection to ``db_path`` after the product has created its schema."""
    schema.connect(db_path).close()
    conn = sqlite3.connect(db_path)
    try:
        yield conn
    finally:
        conn.close()


def schema_of(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {
            table: {
                "columns": columns(conn, table),
                "pk": primary_key(conn, table),
                "sql": conn.execute(
                    "SELECT sql FROM sqlite_master WHERE name = ?", [table]
                ).fetchone()[0],
            }
            for table in public_tables(conn)
        }
    finally:
        conn.close()


def test_public_tables_are_exactly_the_promised_tables(db_path):
    with migrated(db_path) as conn:
        assert public_tables(conn) == sorted(EXPECTED)


def test_every_table_has_the_promised_columns_in_order_with_declared_types(db_path):
    with migrated(db_path) as conn:
        for table, spec in EXPECTED.items():
            assert columns(conn, table) == spec["columns"], table


def test_every_table_has_the_promised_primary_key(db_path):
    with migrated(db_path) as conn:
        for table, spec in EXPECTED.items():
            assert primary_key(conn, table) == spec["pk"], table


def test_integer_ids_are_rowid_aliases_so_they_count_up(db_path):
    """``sync_runs.id`` and ``changes.id`` are ``INTEGER PRIMARY KEY``: assigned by SQLite."""
    with migrated(db_path) as conn:
        for table in ("sync_runs", "changes"):
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()
            assert re.search(r'["\[`]?id["\]`]?\s+INTEGER\s+PRIMARY\s+KEY', sql[0]), sql[0]
        conn.execute(
            "INSERT INTO sync_runs (provider, started_at, status, requests, changes) "
            "VALUES ('scalr', '2026-01-01T00:00:00.000Z', 'succeeded', 0, 0)"
        )
        conn.execute(
            "INSERT INTO sync_runs (provider, started_at, status, requests, changes) "
            "VALUES ('scalr', '2026-01-01T00:00:01.000Z', 'succeeded', 0, 0)"
        )
        assert [r[0] for r in conn.execute("SELECT id FROM sync_runs ORDER BY id")] == [1, 2]


def test_database_is_in_wal_mode_after_connect(db_path):
    with migrated(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_connect_reports_wal_on_its_own_connection(db_path):
    db = schema.connect(db_path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_migrating_twice_changes_nothing_and_keeps_data(db_path):
    schema.connect(db_path).close()
    first = schema_of(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO sync_runs (provider, started_at, status, requests, changes) "
        "VALUES ('scalr', '2026-01-01T00:00:00.000Z', 'succeeded', 3, 0)"
    )
    conn.commit()
    migrations_applied = conn.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0]
    conn.close()

    schema.connect(db_path).close()
    schema.connect(db_path).close()

    assert schema_of(db_path) == first
    conn = sqlite3.connect(db_path)
    try:
        assert (
            conn.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0]
            == migrations_applied
        )
        assert conn.execute("SELECT provider, requests FROM sync_runs").fetchall() == [("scalr", 3)]
    finally:
        conn.close()


def test_connect_creates_a_missing_parent_directory(tmp_path):
    path = tmp_path / "nested" / "dir" / "accesstrail.db"
    with migrated(path) as conn:
        assert path.is_file()
        assert public_tables(conn) == sorted(EXPECTED)


def test_views_are_exactly_the_promised_views_with_their_columns(db_path):
    with migrated(db_path) as conn:
        views = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")]
        assert sorted(views) == sorted(EXPECTED_VIEWS)
        for view, expected in EXPECTED_VIEWS.items():
            assert [row[1] for row in conn.execute(f"PRAGMA table_info({view})")] == expected


def test_a_new_database_and_an_upgraded_one_have_the_same_schema(db_path, tmp_path):
    """Each migration creates what its release added: the order of creation cannot show."""
    upgraded = tmp_path / "upgraded.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "db-before-access.db", upgraded)
    schema.connect(db_path).close()
    schema.connect(upgraded).close()
    fresh, old = schema_of(db_path), schema_of(upgraded)
    assert {t: (s["columns"], s["pk"]) for t, s in fresh.items()} == {
        t: (s["columns"], s["pk"]) for t, s in old.items()
    }
