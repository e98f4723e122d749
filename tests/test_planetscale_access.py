"""PlanetScale team database access: grants read from the team objects already listed.

``databases[]`` is a grant of role ``admin`` on each database, ``analyst_databases[]`` one of
role ``analyst``; the principal is the team. No request is added for it, and a team object
without those keys (an older API) says nothing about its access.
"""

from __future__ import annotations

import pytest

from daemon.simulate.planetscale.world import PSDatabase
from tests.helpers import (
    ACME,
    ALICE,
    BOB,
    CAROL,
    DATA,
    DAVE,
    ERIN,
    GLOBEX,
    OPS,
    PLATFORM,
    WatchedPlanetScale,
    change,
    changes_of,
    query,
    sort_changes,
    sync,
    world,
)

ORDERS, EVENTS, LEDGER = "dbacmeorders1", "dbacmeevents1", "dbgxledger001"


def access_world():
    state = world()
    acme, globex = state.organizations[ACME], state.organizations[GLOBEX]
    acme.databases = {ORDERS: PSDatabase(ORDERS, "orders"), EVENTS: PSDatabase(EVENTS, "events")}
    globex.databases = {LEDGER: PSDatabase(LEDGER, "ledger")}
    acme.teams[PLATFORM].databases = {ORDERS, EVENTS}
    acme.teams[DATA].analyst_databases = {EVENTS}
    globex.teams[OPS].databases = {LEDGER}
    return state


@pytest.fixture
def sim():
    with WatchedPlanetScale(access_world()) as simulator:
        yield simulator


def current_grants(db_path) -> set[tuple]:
    rows = query(
        db_path,
        "SELECT resource_type, resource_id, resource_name, principal_type, principal_id, "
        "role_id, role, binding_id FROM grants WHERE provider = 'planetscale' "
        "AND removed_at IS NULL",
    )
    return {tuple(row.values()) for row in rows}


BASE = {
    ("database", ORDERS, "orders", "team", PLATFORM, "admin", "admin", None),
    ("database", EVENTS, "events", "team", PLATFORM, "admin", "admin", None),
    ("database", EVENTS, "events", "team", DATA, "analyst", "analyst", None),
    ("database", LEDGER, "ledger", "team", OPS, "admin", "admin", None),
}


def test_team_database_access_is_recorded_from_the_team_listing_with_no_extra_request(
    sim, db_path, ps
):
    outcome = sync(db_path, planetscale=sim)
    assert outcome.status == "succeeded", outcome.error
    assert current_grants(db_path) == BASE
    assert query(db_path, "SELECT COUNT(*) AS n FROM changes") == [{"n": 0}]
    # the same world without database access costs exactly as many requests
    plain_db = db_path.with_name("plain.db")
    assert sync(plain_db, planetscale=ps).requests == outcome.requests
    assert not any("/databases" in arrival.path for arrival in sim.arrivals)
    effective = query(
        db_path,
        "SELECT user_id, resource_name, role, via_team_name FROM effective_grants "
        "WHERE provider = 'planetscale' ORDER BY resource_name, role, user_id",
    )
    assert [tuple(row.values()) for row in effective] == [
        (ALICE, "events", "admin", "Platform"),
        (BOB, "events", "admin", "Platform"),
        (CAROL, "events", "analyst", "Data"),
        (DAVE, "events", "analyst", "Data"),
        (DAVE, "ledger", "admin", "Ops"),
        (ERIN, "ledger", "admin", "Ops"),
        (ALICE, "orders", "admin", "Platform"),
        (BOB, "orders", "admin", "Platform"),
    ]


def test_access_given_and_taken_away_is_one_row_each(sim, db_path):
    sync(db_path, planetscale=sim)
    with sim.state.lock:
        acme = sim.state.organizations[ACME]
        acme.teams[DATA].analyst_databases.discard(EVENTS)
        acme.teams[DATA].databases.add(ORDERS)
    outcome = sync(db_path, planetscale=sim)
    orders = dict(resource_type="database", resource_id=ORDERS, resource_name="orders")
    events = dict(resource_type="database", resource_id=EVENTS, resource_name="events")
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            change("grant_added", **orders, new_value="admin"),
            change("grant_removed", **events, old_value="analyst"),
        ]
    )
    details = query(
        db_path, "SELECT detail FROM changes WHERE run_id = ? ORDER BY id", [outcome.run_id]
    )
    assert {row["detail"] for row in details} == {
        '{"principal_type":"team","principal_id":"tm0data00001","principal_name":"Data",'
        '"role_id":"admin"}',
        '{"principal_type":"team","principal_id":"tm0data00001","principal_name":"Data",'
        '"role_id":"analyst"}',
    }


def test_team_objects_without_the_database_keys_change_nothing(sim, db_path):
    sync(db_path, planetscale=sim)
    with sim.state.lock:
        sim.state.team_database_keys = False
    outcome = sync(db_path, planetscale=sim)
    assert outcome.status == "succeeded"
    assert changes_of(db_path, outcome.run_id) == []
    assert current_grants(db_path) == BASE


def test_a_team_removed_takes_its_database_access_with_it(sim, db_path):
    sync(db_path, planetscale=sim)
    with sim.state.lock:
        del sim.state.organizations[GLOBEX].teams[OPS]
    outcome = sync(db_path, planetscale=sim)
    removed = [r for r in changes_of(db_path, outcome.run_id) if r["kind"] == "grant_removed"]
    assert [(r["resource_id"], r["old_value"]) for r in removed] == [(LEDGER, "admin")]
    assert current_grants(db_path) == BASE - {
        ("database", LEDGER, "ledger", "team", OPS, "admin", "admin", None)
    }


def test_a_first_release_reading_database_access_baselines_it_without_changes(sim, db_path):
    """Teams served without the keys first (an older API), then with: the access is a baseline."""
    with sim.state.lock:
        sim.state.team_database_keys = False
    sync(db_path, planetscale=sim)
    assert query(db_path, "SELECT COUNT(*) AS n FROM baselines WHERE kind = 'grants'") == [{"n": 0}]
    with sim.state.lock:
        sim.state.team_database_keys = True
    outcome = sync(db_path, planetscale=sim)
    assert changes_of(db_path, outcome.run_id) == []
    assert current_grants(db_path) == BASE
    with sim.state.lock:
        sim.state.organizations[ACME].teams[DATA].databases.add(ORDERS)
    later = sync(db_path, planetscale=sim)
    assert [r["kind"] for r in changes_of(db_path, later.run_id)] == ["grant_added"]
