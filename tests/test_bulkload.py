"""A provider's first snapshot builds its tables' secondary indexes after the load.

The speed is the benchmark's to measure (``python -m bench.apply``); what is pinned here is what
an auditor relies on: the schema after a baseline is exactly the schema before it, a reader never
sees a table without its indexes, a failed apply leaves them all in place, and only a table the
load at least doubles is rebuilt.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.providers.scopes import SnapshotBuilder
from daemon.simulate import bulk
from store import runs, schema
from store.apply import apply_snapshot
from store.bulkload import indexes_built_after, tables_worth_rebuilding
from store.model import Membership, MembershipScope, Organization, Team, User
from store.staging import Staging
from store.transactions import transaction
from tests.helpers import query, sync

LOADED = ["users", "user_versions", "memberships", "membership_versions"]


def _indexes(db_path: Path) -> list[tuple[str, str, str]]:
    return [
        (row["tbl_name"], row["name"], row["sql"])
        for row in query(
            db_path,
            "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' "
            "ORDER BY tbl_name, name",
        )
    ]


def _fresh_database(path: Path) -> Path:
    schema.connect(path).close()
    return path


def _populated(scalr_sim, planetscale_sim, people: int) -> None:
    sizes, now = bulk.Sizes.for_users(people), datetime.now(UTC)
    bulk.populate_scalr(scalr_sim.state, random.Random(7), sizes, now)
    bulk.populate_planetscale(planetscale_sim.state, random.Random(8), sizes, now)


def test_the_first_sync_of_each_provider_leaves_every_index_as_the_migrations_made_it(
    tmp_path, db_path, scalr_sim, planetscale_sim
):
    expected = _indexes(_fresh_database(tmp_path / "new.db"))
    _populated(scalr_sim, planetscale_sim, 400)

    first = sync(db_path, scalr=scalr_sim)
    second = sync(db_path, planetscale=planetscale_sim)

    assert first.status == second.status == "succeeded"
    assert _indexes(db_path) == expected
    counts = query(
        db_path,
        "SELECT (SELECT COUNT(*) FROM users) AS users, "
        "(SELECT COUNT(*) FROM memberships) AS memberships",
    )[0]
    assert counts["users"] > 0 and counts["memberships"] > 0
    # integrity_check proves every index holds exactly its table's rows
    assert query(db_path, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]


def _apply(db, people: int) -> None:
    """Stage and apply a snapshot of ``people`` users, each in the organisation and a team."""
    builder = SnapshotBuilder("scalr", Staging(db))
    covers = [MembershipScope("organization", "acc-1"), MembershipScope("team")]
    with builder.scope("all", memberships=covers, teams_of=["acc-1"]) as scope:
        scope.add(Organization("acc-1", "acme"))
        scope.add(Team("team-1", "acc-1", "Ops"))
        for n in range(people):
            scope.add(User(f"user-{n:04d}", f"{n}@example.com", f"User {n}"))
            scope.add(Membership("organization", "acc-1", f"user-{n:04d}"))
            scope.add(Membership("team", "team-1", f"user-{n:04d}"))
    run = runs.start_run(db, "scalr")
    with transaction(db):
        result = apply_snapshot(db, builder.build(), run)
        runs.finish_run(db, run, result, 0)


def test_a_baseline_builds_the_indexes_after_its_rows_and_a_later_run_does_not(db_path):
    db = schema.connect(db_path)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        _apply(db, 50)
        first = [s for s in statements if s.startswith(("DROP INDEX", "CREATE INDEX"))]
        statements.clear()
        _apply(db, 60)
        later = [s for s in statements if s.startswith(("DROP INDEX", "CREATE INDEX"))]
    finally:
        db.close()
    dropped = {s.removeprefix("DROP INDEX ").strip('"') for s in first if s.startswith("DROP")}
    created = {s.split()[2].strip('"') for s in first if s.startswith("CREATE INDEX")}
    assert dropped == created
    assert {"idx_users_email", "idx_memberships_provider_user_id"} <= dropped
    assert "idx_changes_run_id" not in dropped  # a baseline writes no change rows
    assert later == []
    assert query(db_path, "SELECT COUNT(*) AS n FROM users") == [{"n": 60}]
    assert query(db_path, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]


def test_only_a_table_the_load_at_least_doubles_is_rebuilt(db_path):
    db = schema.connect(db_path)
    try:
        db["users"].insert_all(
            {"provider": "scalr", "id": f"u-{n}", "email": f"{n}@example.com"} for n in range(10)
        )
        incoming = {"users": 10, "user_versions": 10, "memberships": 0, "teams": 3}
        worth = tables_worth_rebuilding(db.conn, incoming)
        assert worth == ["users", "user_versions", "teams"]  # nothing to load: not memberships
        incoming["users"] = 9
        assert tables_worth_rebuilding(db.conn, incoming) == ["user_versions", "teams"]
    finally:
        db.close()


def test_a_reader_sees_the_indexes_while_the_load_runs_and_after_it(db_path):
    db = schema.connect(db_path)
    reader = sqlite3.connect(db_path)
    before = _indexes(db_path)
    try:
        with transaction(db), indexes_built_after(db.conn, LOADED):
            assert db.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' "
                "AND sql IS NOT NULL"
            ).fetchone() == (0,)
            seen = reader.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' "
                "AND sql IS NOT NULL"
            ).fetchone()
            assert seen[0] >= 1  # the reader's snapshot is the committed schema
        assert _indexes(db_path) == before
    finally:
        reader.close()
        db.close()


def test_a_load_that_fails_leaves_every_index_in_place(db_path):
    db = schema.connect(db_path)
    before = _indexes(db_path)
    try:
        with pytest.raises(RuntimeError, match="the load failed"):
            with transaction(db), indexes_built_after(db.conn, LOADED):
                db["users"].insert({"provider": "scalr", "id": "u-1"})
                raise RuntimeError("the load failed")
        assert _indexes(db_path) == before
        assert query(db_path, "SELECT COUNT(*) AS n FROM users") == [{"n": 0}]
    finally:
        db.close()
