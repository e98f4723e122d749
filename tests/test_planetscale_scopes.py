"""PlanetScale between syncs: exact change rows, versions, and partial scopes.

Each test syncs ``helpers.world()`` once as a baseline, changes the simulated PlanetScale the way
the real one changes (a promotion, a team join, a leaver, a team created/deleted/renamed, an
organisation the token no longer reaches), syncs again over real HTTP, and asserts the exact
``changes`` rows of that second run and the rows it left behind.

The second half covers scopes (``docs/sync-rules.md``, "Scopes"): a listing that fails only
tells us nothing about what it would have listed, so a 404 or a persistent outage confined to one
organisation's members, one organisation's teams, or one team's members keeps that scope's last
known state (no removals, no role changes there) while every other scope is applied; the run is
``partial`` and its error names the failed scope; ``sync`` exits 1. A failed organisation listing
fails the run and changes nothing else. A sync that finds nothing new writes only its run row.
"""

from __future__ import annotations

import pytest

from daemon.simulate.planetscale.world import PSTeam
from tests.helpers import (
    ACME,
    ALICE,
    ANALYTICS,
    BOB,
    BULK,
    CAROL,
    DATA,
    DAVE,
    EMPTY,
    ERIN,
    EVERYONE,
    FRANK,
    GINA,
    GLOBEX,
    OPS,
    PLATFORM,
    QUIET,
    change,
    changes_of,
    of,
    org_members,
    organization,
    planetscale_env,
    query,
    run_cli,
    run_row,
    snapshot_tables,
    sort_changes,
    sync,
    team,
    team_members,
)

NOT_FOUND = '{"code":"not_found","message":"Not Found"}'

#: Ways one scope's listing can fail for good: the documented 404 for a token without access,
#: a 503 that outlasts every retry, and a connection that is dropped on every attempt.
SCOPE_FAULTS = [dict(status=404, body=NOT_FOUND), dict(status=503), dict(drop=True)]
SCOPE_FAULT_IDS = ["not-found", "persistent-503", "persistent-drop"]


@pytest.fixture
def baseline(db_path, ps):
    """The world synced once (the baseline run); returns its outcome."""
    outcome = sync(db_path, planetscale=ps)
    assert outcome.status == "succeeded", outcome.error
    return outcome


def acme():
    return organization(ACME, "acme")


def globex():
    return organization(GLOBEX, "globex")


#: Bob promoted from member to admin in acme, as its change row.
BOB_PROMOTED = change(
    "role_changed",
    **of(BOB, "bob@acme.example"),
    **acme(),
    field="role",
    old_value="member",
    new_value="admin",
)

#: globex's organisation members and roles as the baseline recorded them.
GLOBEX_AT_BASELINE = {DAVE: "admin", ERIN: "member", FRANK: "analyst", GINA: "member"}


def change_globex_members_and_promote_bob(ps) -> None:
    """Changes in globex's members (which the tests' faults hide) and one in acme's."""
    with ps.state.lock:
        gx = ps.state.organizations[GLOBEX]
        gx.members[ERIN] = "admin"
        del gx.members[GINA]
        ps.state.organizations[ACME].members[BOB] = "admin"


def membership_row(db_path, resource_type, resource_id, user_id) -> dict:
    (row,) = query(
        db_path,
        "SELECT role, first_seen_at, removed_at FROM memberships WHERE "
        "provider = 'planetscale' AND resource_type = ? AND resource_id = ? AND "
        "user_id = ?",
        (resource_type, resource_id, user_id),
    )
    return row


# -- changes between syncs ----------------------------------------------------------------------


def test_promotion_is_one_role_changed_row(db_path, ps, baseline):
    with ps.state.lock:
        ps.state.organizations[ACME].members[BOB] = "admin"

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "succeeded", outcome.error
    assert changes_of(db_path, outcome.run_id) == [BOB_PROMOTED]
    row = run_row(db_path, outcome.run_id)
    assert row["changes"] == 1
    assert query(
        db_path, "SELECT observed_at FROM changes WHERE run_id = ?", (outcome.run_id,)
    ) == [{"observed_at": row["started_at"]}]
    assert org_members(db_path, ACME)[BOB] == "admin"


def test_promotion_closes_the_old_membership_version_and_opens_one(db_path, ps, baseline):
    with ps.state.lock:
        ps.state.organizations[ACME].members[BOB] = "admin"

    outcome = sync(db_path, planetscale=ps)

    first = run_row(db_path, baseline.run_id)["started_at"]
    second = run_row(db_path, outcome.run_id)["started_at"]
    assert query(
        db_path,
        "SELECT role, valid_from, valid_to, run_id FROM membership_versions "
        "WHERE resource_type = 'organization' AND resource_id = ? AND user_id = ? "
        "ORDER BY valid_from",
        (ACME, BOB),
    ) == [
        {"role": "member", "valid_from": first, "valid_to": second, "run_id": baseline.run_id},
        {"role": "admin", "valid_from": second, "valid_to": None, "run_id": outcome.run_id},
    ]
    assert query(
        db_path, "SELECT COUNT(*) AS n FROM membership_versions WHERE run_id = ?", (outcome.run_id,)
    ) == [{"n": 1}]
    assert query(
        db_path, "SELECT COUNT(*) AS n FROM user_versions WHERE run_id = ?", (outcome.run_id,)
    ) == [{"n": 0}]


def test_team_join_and_leave_are_membership_added_and_removed(db_path, ps, baseline):
    with ps.state.lock:
        data = ps.state.organizations[ACME].teams[DATA]
        data.members.add(BOB)
        data.members.discard(CAROL)

    outcome = sync(db_path, planetscale=ps)

    started = run_row(db_path, outcome.run_id)["started_at"]
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            change("membership_added", **of(BOB, "bob@acme.example"), **team(DATA, "Data")),
            change("membership_removed", **of(CAROL, "carol@acme.example"), **team(DATA, "Data")),
        ]
    )
    assert team_members(db_path, DATA) == {BOB, DAVE}
    assert membership_row(db_path, "team", DATA, CAROL)["removed_at"] == started
    assert membership_row(db_path, "team", DATA, BOB) == {
        "role": "member",
        "first_seen_at": started,
        "removed_at": None,
    }


def test_member_leaving_their_only_organisation_loses_memberships_and_user(db_path, ps, baseline):
    with ps.state.lock:
        org = ps.state.organizations[ACME]
        del org.members[ALICE]
        org.teams[PLATFORM].members.discard(ALICE)

    outcome = sync(db_path, planetscale=ps)

    started = run_row(db_path, outcome.run_id)["started_at"]
    alice = of(ALICE, "alice@acme.example")
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            change("membership_removed", **alice, **acme()),
            change("membership_removed", **alice, **team(PLATFORM, "Platform")),
            change("user_removed", **alice),
        ]
    )
    assert query(db_path, "SELECT removed_at FROM users WHERE id = ?", (ALICE,)) == [
        {"removed_at": started}
    ]
    assert query(db_path, "SELECT valid_to FROM user_versions WHERE id = ?", (ALICE,)) == [
        {"valid_to": started}
    ]


def test_member_leaving_one_of_two_organisations_stays_a_user(db_path, ps, baseline):
    with ps.state.lock:
        org = ps.state.organizations[ACME]
        del org.members[DAVE]
        org.teams[DATA].members.discard(DAVE)

    outcome = sync(db_path, planetscale=ps)

    dave = of(DAVE, "dave@acme.example")
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            change("membership_removed", **dave, **acme()),
            change("membership_removed", **dave, **team(DATA, "Data")),
        ]
    )
    assert query(db_path, "SELECT removed_at FROM users WHERE id = ?", (DAVE,)) == [
        {"removed_at": None}
    ]
    assert org_members(db_path, GLOBEX)[DAVE] == "admin"
    assert team_members(db_path, OPS) == {DAVE, ERIN}


def test_new_team_is_team_added_with_its_members(db_path, ps, baseline):
    with ps.state.lock:
        ps.state.organizations[ACME].teams["tm0newteam01"] = PSTeam(
            "tm0newteam01", "Security", "security", "Keeps watch", {BOB}
        )

    outcome = sync(db_path, planetscale=ps)

    started = run_row(db_path, outcome.run_id)["started_at"]
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            change("team_added", **team("tm0newteam01", "Security")),
            change(
                "membership_added",
                **of(BOB, "bob@acme.example"),
                **team("tm0newteam01", "Security"),
            ),
        ]
    )
    assert query(db_path, "SELECT * FROM teams WHERE id = 'tm0newteam01'") == [
        {
            "provider": "planetscale",
            "id": "tm0newteam01",
            "organization_id": ACME,
            "name": "Security",
            "slug": "security",
            "description": "Keeps watch",
            "first_seen_at": started,
            "removed_at": None,
        }
    ]


def test_removed_team_is_team_removed_and_each_membership_removed(db_path, ps, baseline):
    with ps.state.lock:
        del ps.state.organizations[ACME].teams[DATA]

    outcome = sync(db_path, planetscale=ps)

    started = run_row(db_path, outcome.run_id)["started_at"]
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            change("team_removed", **team(DATA, "Data")),
            change("membership_removed", **of(CAROL, "carol@acme.example"), **team(DATA, "Data")),
            change("membership_removed", **of(DAVE, "dave@acme.example"), **team(DATA, "Data")),
        ]
    )
    assert query(db_path, "SELECT removed_at FROM teams WHERE id = ?", (DATA,)) == [
        {"removed_at": started}
    ]
    assert team_members(db_path, DATA) == set()


def test_team_rename_is_team_updated_name(db_path, ps, baseline):
    with ps.state.lock:
        ps.state.organizations[ACME].teams[PLATFORM].name = "Platform Engineering"

    outcome = sync(db_path, planetscale=ps)

    assert changes_of(db_path, outcome.run_id) == [
        change(
            "team_updated",
            **team(PLATFORM, "Platform Engineering"),
            field="name",
            old_value="Platform",
            new_value="Platform Engineering",
        )
    ]
    assert query(db_path, "SELECT name, slug FROM teams WHERE id = ?", (PLATFORM,)) == [
        {"name": "Platform Engineering", "slug": "platform"}
    ]


def test_organisation_no_longer_reached_is_removed_with_everything_in_it(db_path, ps, baseline):
    with ps.state.lock:
        del ps.state.organizations[GLOBEX]

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "succeeded", outcome.error
    started = run_row(db_path, outcome.run_id)["started_at"]
    dave, erin = of(DAVE, "dave@acme.example"), of(ERIN, "erin@globex.example")
    frank, gina = of(FRANK, "frank@globex.example"), of(GINA, "gina@globex.example")
    assert changes_of(db_path, outcome.run_id) == sort_changes(
        [
            change("organization_removed", **globex()),
            change("team_removed", **team(OPS, "Ops")),
            change("team_removed", **team(ANALYTICS, "Analytics")),
            change("team_removed", **team(QUIET, "Quiet")),
            change("membership_removed", **dave, **globex()),
            change("membership_removed", **erin, **globex()),
            change("membership_removed", **frank, **globex()),
            change("membership_removed", **gina, **globex()),
            change("membership_removed", **dave, **team(OPS, "Ops")),
            change("membership_removed", **erin, **team(OPS, "Ops")),
            change("membership_removed", **frank, **team(ANALYTICS, "Analytics")),
            change("user_removed", **erin),
            change("user_removed", **frank),
            change("user_removed", **gina),
        ]
    )
    assert query(db_path, "SELECT id, removed_at FROM organizations ORDER BY id") == [
        {"id": ACME, "removed_at": None},
        {"id": GLOBEX, "removed_at": started},
    ]
    assert query(db_path, "SELECT id FROM users WHERE removed_at IS NOT NULL ORDER BY id") == [
        {"id": ERIN},
        {"id": FRANK},
        {"id": GINA},
    ]
    assert org_members(db_path, ACME)[DAVE] == "member"


def test_no_change_resync_writes_only_its_run_row(db_path, ps, baseline):
    before = snapshot_tables(db_path)

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "succeeded"
    assert snapshot_tables(db_path) == before
    row = run_row(db_path, outcome.run_id)
    assert (row["status"], row["changes"], row["error"]) == ("succeeded", 0, None)
    assert query(db_path, "SELECT COUNT(*) AS n FROM sync_runs") == [{"n": 2}]


# -- partial scopes -----------------------------------------------------------------------------


def test_members_404_on_one_organisation_keeps_it_and_applies_the_other(db_path, ps, baseline):
    ps.add_fault(path=r"/organizations/globex/members$", status=404, body=NOT_FOUND)
    change_globex_members_and_promote_bob(ps)
    before_globex = query(
        db_path,
        "SELECT * FROM memberships WHERE resource_type = "
        "'organization' AND resource_id = ? ORDER BY user_id",
        (GLOBEX,),
    )

    result = run_cli(["sync", "--db", str(db_path)], planetscale_env(ps))

    assert result.exit_code == 1, result.output
    (run,) = query(db_path, "SELECT * FROM sync_runs WHERE id != ?", (baseline.run_id,))
    assert run["status"] == "partial"
    assert "globex" in run["error"] and "members" in run["error"]
    assert "acme" not in run["error"]
    assert ps.state.token_secret not in run["error"] + result.output
    assert (
        query(
            db_path,
            "SELECT * FROM memberships WHERE resource_type = 'organization' AND "
            "resource_id = ? ORDER BY user_id",
            (GLOBEX,),
        )
        == before_globex
    )
    assert org_members(db_path, GLOBEX) == GLOBEX_AT_BASELINE
    assert query(db_path, "SELECT removed_at FROM users WHERE id = ?", (GINA,)) == [
        {"removed_at": None}
    ]
    assert changes_of(db_path, run["id"]) == [BOB_PROMOTED]
    assert run["changes"] == 1


@pytest.mark.parametrize("fault", SCOPE_FAULTS[1:], ids=SCOPE_FAULT_IDS[1:])
def test_members_failing_for_good_on_one_organisation_is_partial_not_failed(
    db_path, ps, baseline, fault
):
    ps.add_fault(path=r"/organizations/globex/members$", **fault)
    change_globex_members_and_promote_bob(ps)

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "partial", outcome.error
    run = run_row(db_path, outcome.run_id)
    assert "globex" in run["error"] and "members" in run["error"]
    assert org_members(db_path, GLOBEX) == GLOBEX_AT_BASELINE
    assert changes_of(db_path, outcome.run_id) == [BOB_PROMOTED]


@pytest.mark.parametrize("fault", SCOPE_FAULTS, ids=SCOPE_FAULT_IDS)
def test_one_team_members_failing_keeps_that_team_and_applies_the_others(
    db_path, ps, baseline, fault
):
    ps.add_fault(path=r"/organizations/acme/teams/data/members$", **fault)
    with ps.state.lock:
        teams = ps.state.organizations[ACME].teams
        teams[DATA].members.add(BOB)
        teams[DATA].members.discard(CAROL)
        teams[PLATFORM].members.discard(BOB)

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "partial", outcome.error
    run = run_row(db_path, outcome.run_id)
    assert run["status"] == "partial"
    assert "acme" in run["error"] and "data" in run["error"] and "members" in run["error"]
    assert "platform" not in run["error"] and "globex" not in run["error"]
    assert team_members(db_path, DATA) == {CAROL, DAVE}
    assert changes_of(db_path, outcome.run_id) == [
        change("membership_removed", **of(BOB, "bob@acme.example"), **team(PLATFORM, "Platform"))
    ]


@pytest.mark.parametrize("fault", SCOPE_FAULTS, ids=SCOPE_FAULT_IDS)
def test_teams_listing_failing_keeps_that_organisations_teams(db_path, ps, baseline, fault):
    ps.add_fault(path=r"/organizations/acme/teams$", **fault)
    with ps.state.lock:
        acme_teams = ps.state.organizations[ACME].teams
        del acme_teams[DATA]
        acme_teams[PLATFORM].name = "Platform Engineering"
        acme_teams[EMPTY].members.add(BOB)
        ps.state.organizations[GLOBEX].teams[OPS].name = "Operations"
    before_acme_teams = query(
        db_path, "SELECT * FROM teams WHERE organization_id = ? ORDER BY id", (ACME,)
    )

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "partial", outcome.error
    run = run_row(db_path, outcome.run_id)
    assert "acme" in run["error"] and "teams" in run["error"]
    assert "globex" not in run["error"]
    assert (
        query(db_path, "SELECT * FROM teams WHERE organization_id = ? ORDER BY id", (ACME,))
        == before_acme_teams
    )
    assert team_members(db_path, DATA) == {CAROL, DAVE}
    assert team_members(db_path, EMPTY) == set()
    assert team_members(db_path, EVERYONE) == set(BULK)
    assert changes_of(db_path, outcome.run_id) == [
        change(
            "team_updated",
            **team(OPS, "Operations"),
            field="name",
            old_value="Ops",
            new_value="Operations",
        )
    ]


def test_partial_run_exits_1_from_the_cli(db_path, ps, baseline):
    ps.add_fault(path=r"/organizations/acme/teams/platform/members$", status=404, body=NOT_FOUND)

    result = run_cli(["sync", "--db", str(db_path)], planetscale_env(ps))

    assert result.exit_code == 1
    assert "partial" in result.stdout
    assert "platform" in result.stderr


@pytest.mark.parametrize(
    "status, body", [(404, NOT_FOUND), (503, None)], ids=["not-found", "persistent-outage"]
)
def test_organisation_listing_failing_fails_the_run_and_changes_nothing(
    db_path, ps, baseline, status, body
):
    ps.add_fault(path=r"/organizations$", status=status, body=body)
    with ps.state.lock:
        del ps.state.organizations[GLOBEX]
        ps.state.organizations[ACME].members[BOB] = "admin"
    before = snapshot_tables(db_path)

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "failed"
    run = run_row(db_path, outcome.run_id)
    assert (run["status"], run["changes"]) == ("failed", 0)
    assert "/organizations" in run["error"]
    assert snapshot_tables(db_path) == before
    assert run["requests"] == len([r for r in ps.requests if r.path == "/v1/organizations"]) - 1


def test_organisation_listing_failing_exits_1_from_the_cli(db_path, ps, baseline):
    ps.add_fault(path=r"/organizations$", status=404, body=NOT_FOUND)
    before = snapshot_tables(db_path)

    result = run_cli(["sync", "--db", str(db_path)], planetscale_env(ps))

    assert result.exit_code == 1
    assert "failed" in result.stdout
    assert snapshot_tables(db_path) == before


def test_scope_failing_on_the_first_sync_still_makes_a_partial_baseline(db_path, ps):
    ps.add_fault(path=r"/organizations/globex/members$", status=404, body=NOT_FOUND)

    outcome = sync(db_path, planetscale=ps)

    assert outcome.status == "partial"
    assert query(db_path, "SELECT COUNT(*) AS n FROM changes") == [{"n": 0}]
    assert org_members(db_path, GLOBEX) == {}
    assert len(org_members(db_path, ACME)) == 234
    ps.clear_faults()

    second = sync(db_path, planetscale=ps)

    assert second.status == "succeeded"
    globex_added = [c for c in changes_of(db_path, second.run_id) if c["resource_id"] == GLOBEX]
    assert globex_added == sort_changes(
        [
            change("membership_added", **of(u, e), **globex())
            for u, e in (
                (DAVE, "dave@acme.example"),
                (ERIN, "erin@globex.example"),
                (FRANK, "frank@globex.example"),
                (GINA, "gina@globex.example"),
            )
        ]
    )
