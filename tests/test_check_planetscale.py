"""``check`` proves a PlanetScale token can do what a sync needs, not only that it is valid."""

from daemon.simulate.planetscale.world import PSOrganization, PSUser
from tests.helpers import planetscale_env, run_cli


def _world(state):
    state.users["u1"] = PSUser(id="u1", email="u1@example.com", name="One")
    state.organizations["o1"] = PSOrganization(id="o1", name="acme", members={"u1": "admin"})
    state.organizations["o2"] = PSOrganization(id="o2", name="globex", members={"u1": "member"})


def test_check_reports_the_readable_organisations(planetscale_sim, db_path):
    _world(planetscale_sim.state)
    result = run_cli(["check", "--db", str(db_path)], planetscale_env(planetscale_sim))
    assert result.exit_code == 0, result.stderr
    assert "2 organisation(s) readable" in result.stdout and "acme, globex" in result.stdout
    paths = [r.path for r in planetscale_sim.requests]
    assert paths == [
        "/v1/organizations",
        "/v1/organizations/acme/members",
        "/v1/organizations/globex/members",
    ]
    assert all(r.method == "GET" for r in planetscale_sim.requests)


def test_check_fails_when_the_token_lacks_read_organization_on_an_organisation(
    planetscale_sim, db_path
):
    _world(planetscale_sim.state)
    planetscale_sim.add_fault(
        path=r"/organizations/globex/members$",
        status=404,
        body='{"code":"not_found","message":"Not Found"}',
    )
    result = run_cli(["check", "--db", str(db_path)], planetscale_env(planetscale_sim))
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "globex" in result.stderr and "read_organization" in result.stderr
    assert planetscale_sim.state.token_secret not in result.stderr + result.stdout
