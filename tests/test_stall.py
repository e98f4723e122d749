"""A provider that stops answering fails the run within the stall limit, whatever the scope.

A hang confined to one listing is that scope's failure (the run is partial); a provider that
answers nothing at all for the stall limit is down, and the run fails instead of recording a
partial picture scope by scope, which at production limits would take minutes.
"""

import time

from daemon.simulate.planetscale import PSOrganization, PSTeam, PSUser
from daemon.sync import sync_provider
from tests.conftest import FAST_POLICY, query, settings_for, snapshot_tables


def _world(state, teams=12):
    state.users["u1"] = PSUser(id="u1", email="u1@example.com", name="User One")
    org = PSOrganization(id="org1", name="acme", members={"u1": "admin"})
    for n in range(teams):
        org.teams[f"t{n}"] = PSTeam(id=f"t{n}", name=f"Team {n}", slug=f"team-{n}", members={"u1"})
    state.organizations["org1"] = org


def test_provider_that_stops_answering_mid_run_fails_within_the_stall_limit(
    planetscale_sim, db_path
):
    _world(planetscale_sim.state)
    settings = settings_for(db_path, planetscale=planetscale_sim)
    assert sync_provider(settings, "planetscale", policy=FAST_POLICY).status == "succeeded"
    before = snapshot_tables(db_path)
    # every team-member list now hangs longer than the read timeout
    planetscale_sim.add_fault(path=r"/teams/[^/]+/members$", status=200, delay=3.0)
    planetscale_sim.state.organizations["org1"].members["u1"] = "member"

    started = time.monotonic()
    outcome = sync_provider(settings, "planetscale", policy=FAST_POLICY)
    elapsed = time.monotonic() - started

    assert outcome.status == "failed"
    assert "PlanetScale" in outcome.error and "did not answer" in outcome.error
    assert elapsed < FAST_POLICY.stall_limit + FAST_POLICY.read_timeout + 2
    assert snapshot_tables(db_path) == before  # not even the role change was applied
    assert query(db_path, "SELECT status FROM sync_runs ORDER BY id")[-1]["status"] == "failed"


def test_one_listing_that_hangs_while_others_answer_is_a_partial_run(planetscale_sim, db_path):
    _world(planetscale_sim.state, teams=3)
    settings = settings_for(db_path, planetscale=planetscale_sim)
    sync_provider(settings, "planetscale", policy=FAST_POLICY)
    planetscale_sim.add_fault(path=r"/teams/team-0/members$", status=200, delay=3.0)
    planetscale_sim.state.organizations["org1"].members["u1"] = "member"

    outcome = sync_provider(settings, "planetscale", policy=FAST_POLICY)

    assert outcome.status == "partial"
    assert "team team-0 members" in outcome.error
    assert [r["kind"] for r in query(db_path, "SELECT kind FROM changes")] == ["role_changed"]
