"""An existing database migrates in place, keeps its rows, and its next sync records no false
change.

``tests/fixtures/db-before-access.db`` was written by the release before roles, grants and
credentials were read (``tests/fixtures/upgrade_world.py`` says how). The providers now also
serve access data; the upgraded database must take it in as a baseline per kind, not as news.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PSDatabase
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import (
    ADMIN_ROLE_ID,
    ScalrAccessPolicy,
    ScalrAccessToken,
)
from tests.fixtures import upgrade_world
from tests.helpers import ACME, PLATFORM, changes_of, query, sync

OLD_TABLES = (
    "sync_runs",
    "users",
    "organizations",
    "teams",
    "memberships",
    "changes",
    "user_versions",
    "membership_versions",
)


def rows_of(path: Path, table: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        conn.close()


def with_access(scalr, planetscale):
    """The same providers as when the fixture was written, now with access data to read."""
    account = scalr.account_id
    scalr.access_policies["ap-upgada0000001"] = ScalrAccessPolicy(
        "ap-upgada0000001", "user", "user-upgada0000001", "account", account, [ADMIN_ROLE_ID]
    )
    scalr.access_tokens["sa-upgdeploy000001"] = {
        "at-upgci000000001": ScalrAccessToken(
            "at-upgci000000001", "ci", None, created_at="2026-01-01T00:00:00Z", token="sekrit-u"
        )
    }
    acme = planetscale.organizations[ACME]
    acme.databases = {"dbupgorders01": PSDatabase("dbupgorders01", "orders")}
    acme.teams[PLATFORM].databases = {"dbupgorders01"}
    return scalr, planetscale


def test_a_database_of_the_previous_release_migrates_and_its_next_sync_changes_nothing(
    tmp_path,
):
    db_path = tmp_path / "accesstrail.db"
    shutil.copy(upgrade_world.FIXTURE, db_path)
    before = {table: rows_of(db_path, table) for table in OLD_TABLES}
    assert before["users"] and before["changes"] == []  # two baselines, as written

    scalr_state, ps_state = with_access(
        upgrade_world.scalr_state(), upgrade_world.planetscale_state()
    )
    with ScalrSimulator(scalr_state) as scalr, PlanetScaleSimulator(ps_state) as ps:
        outcomes = [sync(db_path, scalr=scalr), sync(db_path, planetscale=ps)]
        for outcome in outcomes:
            assert outcome.status == "succeeded", outcome.error
            assert changes_of(db_path, outcome.run_id) == []

        # every old row is still there, unchanged; only the two new runs were added
        for table in OLD_TABLES:
            after = rows_of(db_path, table)
            if table == "sync_runs":
                assert after[: len(before[table])] == before[table]
                assert len(after) == len(before[table]) + 2
            else:
                assert after == before[table], table
        migrations = query(db_path, "SELECT name FROM _sqlite_migrations ORDER BY id")
        assert [m["name"] for m in migrations] == [
            "m001_public_schema",
            "m002_access",
            "m003_alerts",
        ]
        # an upgraded database is given its id once, and its first runs raise no alert
        assert len(query(db_path, "SELECT value FROM _accesstrail WHERE key = 'database_id'")) == 1
        assert query(db_path, "SELECT * FROM alerts") == []
        # the new kinds were read and baselined by these runs
        assert query(db_path, "SELECT provider, kind FROM baselines ORDER BY provider, kind") == [
            {"provider": "planetscale", "kind": "grants"},
            {"provider": "scalr", "kind": "credentials"},
            {"provider": "scalr", "kind": "grants"},
            {"provider": "scalr", "kind": "roles"},
        ]
        assert query(
            db_path, "SELECT provider, principal_id, role FROM grants ORDER BY provider"
        ) == [
            {"provider": "planetscale", "principal_id": PLATFORM, "role": "admin"},
            {"provider": "scalr", "principal_id": "user-upgada0000001", "role": "admin"},
        ]
        assert query(db_path, "SELECT id FROM credentials") == [{"id": "at-upgci000000001"}]

        # from now on a difference is a change again
        with scalr_state.lock:
            del scalr_state.access_policies["ap-upgada0000001"]
        later = sync(db_path, scalr=scalr)
        assert [row["kind"] for row in changes_of(db_path, later.run_id)] == ["grant_removed"]
