"""A provider that stops answering fails the run within the stall limit, whatever the scope.

A hang confined to one listing is that scope's failure (the run is partial); a provider that
answers nothing at all for the stall limit is down, and the run fails instead of recording a
partial picture scope by scope, which at production limits would take minutes
(``docs/sync-rules.md``, "Failures").
"""

import time

from daemon.simulate.planetscale.world import PSOrganization, PSTeam, PSUser
from tests.helpers import FAST_POLICY, WatchedPlanetScale, query, snapshot_tables, sync


def _world(state, teams):
    state.users["u1"] = PSUser(id="u1", email="u1@example.com", name="User One")
    org = PSOrganization(id="org1", name="acme", members={"u1": "admin"})
    for n in range(teams):
        org.teams[f"t{n}"] = PSTeam(id=f"t{n}", name=f"Team {n}", slug=f"team-{n}", members={"u1"})
    state.organizations["org1"] = org


def test_provider_that_stops_answering_mid_run_fails_within_the_stall_limit(db_path):
    with WatchedPlanetScale() as sim:
        # 24 teams: fetched scope by scope, 4 at a time, each giving up at its 4 s deadline, the
        # run would take 24 s; the stall limit must end it after about 6.
        _world(sim.state, teams=24)
        assert sync(db_path, planetscale=sim).status == "succeeded"
        before = snapshot_tables(db_path)
        # every team-member list now hangs longer than the read timeout
        sim.add_fault(path=r"/teams/[^/]+/members$", status=200, delay=3.0)
        sim.state.organizations["org1"].members["u1"] = "member"

        outcome = sync(db_path, planetscale=sim, policy=FAST_POLICY)
        ended = time.monotonic()
        # the teams listing is the last request that is answered
        went_silent = sim.arrived("/v1/organizations/acme/teams")[-1].monotonic

    assert outcome.status == "failed"
    assert "PlanetScale" in outcome.error and "did not answer" in outcome.error
    # Measured from the provider's last answer: the stall limit (6 s here, 55 s in production),
    # plus one read timeout for a request in flight, plus 2 s of room for a loaded machine; far
    # below the 24 s of waiting out every scope.
    silent_for = ended - went_silent
    assert silent_for < FAST_POLICY.stall_limit + FAST_POLICY.read_timeout + 2, silent_for
    assert snapshot_tables(db_path) == before  # not even the role change was applied
    assert query(db_path, "SELECT status FROM sync_runs ORDER BY id")[-1]["status"] == "failed"


def test_one_listing_that_hangs_while_others_answer_is_a_partial_run(planetscale_sim, db_path):
    _world(planetscale_sim.state, teams=3)
    sync(db_path, planetscale=planetscale_sim)
    # team-0's list hangs past the 1 s read timeout and gives up at its 4 s deadline; the other
    # lists answer meanwhile, 2 s inside the 6 s stall limit, so the provider is not "down".
    planetscale_sim.add_fault(path=r"/teams/team-0/members$", status=200, delay=3.0)
    planetscale_sim.state.organizations["org1"].members["u1"] = "member"

    outcome = sync(db_path, planetscale=planetscale_sim, policy=FAST_POLICY)

    assert outcome.status == "partial"
    assert "team team-0 members" in outcome.error
    assert [r["kind"] for r in query(db_path, "SELECT kind FROM changes")] == ["role_changed"]
