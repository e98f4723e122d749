"""The audit questions as Datasette canned queries, answered over a database made by real syncs.

Two rounds of syncs against the simulators, with known changes between them, fill one SQLite
file; ``accesstrail serve`` (a real Datasette, in its own process) answers each canned query as
``.json?_shape=array`` and as HTML, and every test asserts the exact rows it must give — including
the rows a mistaken query would wrongly give (a team's database admin in ``admins_now``, a
baseline admin in ``new_admins``, a disabled account in ``dormant_accounts``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from daemon.config import load_settings
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import (
    PlanetScaleState,
    PSDatabase,
    PSOrganization,
    PSTeam,
    PSUser,
)
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import (
    ADMIN_ROLE_ID,
    READER_ROLE_ID,
    USER_ROLE_ID,
    ScalrAccessPolicy,
    ScalrAccessToken,
    ScalrEnvironment,
    ScalrRole,
    ScalrServiceAccount,
    ScalrState,
    ScalrTeam,
    ScalrUser,
)
from daemon.sync import sync_provider
from store.datasette.queries import QUERIES
from tests.helpers import (
    TEST_POLICY,
    free_port,
    next_round,
    query,
    scalr_env,
    serving,
    settings_for,
    sync,
)

ACC = ScalrState().account_id  # the Scalr account, named "acme"
ADA, BOB, CAT = "user-accada0000001", "user-accbob0000001", "user-acccat0000001"
DAN, EVE, QUINN = "user-accdan0000001", "user-acceve0000001", "user-accquinn00001"
DEPLOY, BACKUP = "sa-accdeploy00001", "sa-accbackup00001"
PLATFORM, PROD = "team-accplatform01", "env-accprod000001"
SUPER, DEPLOYER = "role-accsuper00001", "role-accdeployer01"
CI, SPARE, NIGHTLY = "at-accci00000001", "at-accspare000001", "at-accnightly0001"

ORG, DBA, ORDERS = "orgacmeps0001", "tm0dba000001", "dbacmeorders1"
PAM, PDAN, PERIN, PQUINN = "ps0pam000001", "ps0dan000001", "ps0erin00001", "ps0quinn0001"


#: One "now" for the module, so a state built twice has the same timestamps.
NOW = datetime.now(UTC)


def _ago(days: int) -> str:
    """A Scalr timestamp ``days`` days before now (windows in the tests are far from it)."""
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _db(stamp: str) -> str:
    return stamp[:-1] + ".000Z"


def scalr_state() -> ScalrState:
    """ada admin (system role ``admin``), eve admin (custom role with ``*:*``), bob in Platform
    (last sign-in 400 days ago), cat never signed in, dan (200 days ago; disabled in round 2)
    and quinn also in PlanetScale; two service accounts, one with a used and an unused token,
    one whose only token is stale."""
    state = ScalrState()
    state.teams = {PLATFORM: ScalrTeam(PLATFORM, "Platform")}
    state.environments = {PROD: ScalrEnvironment(PROD, "production")}
    state.users = {
        ADA: ScalrUser(ADA, "ada@acme.example", "Ada", last_login_at=_ago(1)),
        BOB: ScalrUser(BOB, "bob@acme.example", "Bob", last_login_at=_ago(400), teams={PLATFORM}),
        CAT: ScalrUser(CAT, "cat@acme.example", "Cat", last_login_at=None),
        DAN: ScalrUser(DAN, "dan@acme.example", "Dan", last_login_at=_ago(200)),
        EVE: ScalrUser(EVE, "eve@acme.example", "Eve", last_login_at=_ago(3)),
        QUINN: ScalrUser(QUINN, "quinn@acme.example", "Quinn", last_login_at=_ago(1)),
    }
    state.service_accounts = {
        DEPLOY: ScalrServiceAccount(DEPLOY, "deploy", "deploy@acme.example"),
        BACKUP: ScalrServiceAccount(BACKUP, "backup", "backup@acme.example"),
    }
    state.roles[SUPER] = ScalrRole(SUPER, "superuser", "Everything", False, {"*:*"})
    state.roles[DEPLOYER] = ScalrRole(DEPLOYER, "deployer", None, False, {"runs:create", "*:read"})
    policies = [
        ScalrAccessPolicy("ap-accada0000001", "user", ADA, "account", ACC, [ADMIN_ROLE_ID]),
        ScalrAccessPolicy("ap-acceve0000001", "user", EVE, "account", ACC, [SUPER]),
        ScalrAccessPolicy("ap-accbob0000001", "user", BOB, "account", ACC, [USER_ROLE_ID]),
        ScalrAccessPolicy(
            "ap-accteam000001", "team", PLATFORM, "environment", PROD, [READER_ROLE_ID]
        ),
        ScalrAccessPolicy(
            "ap-accdeploy0001", "service-account", DEPLOY, "environment", PROD, [DEPLOYER]
        ),
        # the admin role on an environment is not an admin of the account
        ScalrAccessPolicy(
            "ap-accdeploy0002", "service-account", DEPLOY, "environment", PROD, [ADMIN_ROLE_ID]
        ),
    ]
    state.access_policies = {policy.id: policy for policy in policies}
    state.access_tokens = {
        DEPLOY: {
            CI: ScalrAccessToken(CI, "ci", last_used_at=_ago(1), token="sekrit-ci-0123456789"),
            SPARE: ScalrAccessToken(SPARE, "spare", last_used_at=None, token="sekrit-spare-01234"),
        },
        BACKUP: {
            NIGHTLY: ScalrAccessToken(
                NIGHTLY, "nightly", last_used_at=_ago(300), token="sekrit-nightly-0123"
            )
        },
    }
    return state


def planetscale_state() -> PlanetScaleState:
    """pam admin of acme-ps; Dan (same person as Scalr's dan, email in another case) a member
    and in team DBA, which is Database Administrator of ``orders`` (not an organisation admin)."""
    state = PlanetScaleState()
    people = [
        PSUser(PAM, "pam@acme.example", "Pam"),
        PSUser(PDAN, "Dan@Acme.example", "Dan"),
        PSUser(PERIN, "erin@acme.example", "Erin"),
        PSUser(PQUINN, "quinn@acme.example", "Quinn"),
    ]
    state.users = {user.id: user for user in people}
    org = PSOrganization(
        ORG,
        "acme-ps",
        members={PAM: "admin", PDAN: "member", PERIN: "member", PQUINN: "member"},
    )
    org.databases = {ORDERS: PSDatabase(ORDERS, "orders")}
    org.teams[DBA] = PSTeam(DBA, "DBA", "dba", None, {PDAN}, databases={ORDERS})
    state.organizations = {ORG: org}
    return state


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """Round 1 (the baselines) and round 2, then a running server.

    Round 2: dan is disabled in Scalr (still enabled in PlanetScale); Platform gets the ``*:*``
    role on the account (bob becomes an admin through the team); erin is promoted to admin of
    acme-ps; quinn leaves acme-ps (still enabled in Scalr).
    """
    db_path = tmp_path_factory.mktemp("canned") / "audit.db"
    with (
        ScalrSimulator(scalr_state()) as scalr_sim,
        PlanetScaleSimulator(planetscale_state()) as ps_sim,
    ):
        for outcome in (sync(db_path, scalr=scalr_sim), sync(db_path, planetscale=ps_sim)):
            assert outcome.status == "succeeded", outcome.error
        next_round(db_path)
        with scalr_sim.state.lock:
            scalr_sim.state.users[DAN].status = "Inactive"
            scalr_sim.state.access_policies["ap-accteam000002"] = ScalrAccessPolicy(
                "ap-accteam000002", "team", PLATFORM, "account", ACC, [SUPER]
            )
        with ps_sim.state.lock:
            members = ps_sim.state.organizations[ORG].members
            members[PERIN] = "admin"
            del members[PQUINN]
        for outcome in (sync(db_path, scalr=scalr_sim), sync(db_path, planetscale=ps_sim)):
            assert outcome.status == "succeeded", outcome.error
    runs = query(db_path, "SELECT id, provider, started_at FROM sync_runs ORDER BY id")
    with serving(db_path) as base:
        yield {"base": base, "db": "audit", "path": db_path, "runs": runs}


#: Datasette reads this small database in milliseconds; 10 s is room for a loaded machine.
READ_TIMEOUT = 10


def canned(audited, name: str, **params) -> list[dict]:
    response = httpx.get(
        f"{audited['base']}/{audited['db']}/{name}.json",
        params={**params, "_shape": "array"},
        timeout=READ_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def run(audited, provider: str, round_: int) -> dict:
    return [r for r in audited["runs"] if r["provider"] == provider][round_ - 1]


def pick(rows: list[dict], *columns: str) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in rows]


def stamps(audited) -> tuple[str, str, str, str]:
    """started_at of Scalr round 1, PlanetScale round 1, Scalr round 2, PlanetScale round 2."""
    s1, p1, s2, p2 = (r["started_at"] for r in audited["runs"])
    return s1, p1, s2, p2


def test_every_query_is_offered_with_a_title_a_description_and_an_html_page(audited):
    names = {
        "admins_as_of",
        "no_sign_in_for_days",
        "left_scalr_still_in_planetscale",
        "access_as_of",
        "current_access",
        "admins_now",
        "new_admins",
        "dormant_accounts",
        "recent_changes",
        "person_timeline",
        "offboarding_gaps",
        "sync_health",
        "risky_changes",
    }
    assert set(QUERIES) == names
    params = {
        "admins_as_of": {"as_of": "2026-03-01", "organization": ""},
        "no_sign_in_for_days": {"days": "90"},
        "access_as_of": {"at": "2026-03-01"},
        "current_access": {"email": ""},
        "new_admins": {"days": "7"},
        "dormant_accounts": {"days": "90"},
        "recent_changes": {"days": "7"},
        "person_timeline": {"email": "ada@acme.example"},
    }
    for name in sorted(names):
        assert QUERIES[name]["title"] and QUERIES[name]["description"]
        page = httpx.get(
            f"{audited['base']}/{audited['db']}/{name}",
            params=params.get(name, {}),
            timeout=READ_TIMEOUT,
        )
        assert page.status_code == 200, (name, page.text)
        assert QUERIES[name]["title"] in page.text.replace("&#39;", "'"), name
        canned(audited, name, **params.get(name, {}))


ACCESS = (
    "provider",
    "email",
    "user_id",
    "status",
    "access",
    "resource_type",
    "resource_id",
    "resource_name",
    "role",
    "role_id",
    "via_team_name",
)


def test_current_access_of_one_person_lists_memberships_and_grants_through_teams(audited):
    rows = canned(audited, "current_access", email="BOB@acme.example")
    bob = ("scalr", "bob@acme.example", BOB, "enabled")
    assert pick(rows, *ACCESS) == [
        (*bob, "membership", "organization", ACC, "acme", "member", None, None),
        (*bob, "membership", "team", PLATFORM, "Platform", "member", None, None),
        (*bob, "grant", "environment", PROD, "production", "reader", READER_ROLE_ID, "Platform"),
        (*bob, "grant", "organization", ACC, "acme", "superuser", SUPER, "Platform"),
        (*bob, "grant", "organization", ACC, "acme", "user", USER_ROLE_ID, None),
    ]
    # both providers' accounts of one person (emails compared case-insensitively)
    dan = canned(audited, "current_access", email="dan@acme.example")
    assert pick(dan, *ACCESS) == [
        ("planetscale", "Dan@Acme.example", PDAN, "enabled", "membership", "organization", ORG,
         "acme-ps", "member", None, None),
        ("planetscale", "Dan@Acme.example", PDAN, "enabled", "membership", "team", DBA, "DBA",
         "member", None, None),
        ("planetscale", "Dan@Acme.example", PDAN, "enabled", "grant", "database", ORDERS,
         "orders", "admin", "admin", "DBA"),
        ("scalr", "dan@acme.example", DAN, "disabled", "membership", "organization", ACC,
         "acme", "member", None, None),
    ]  # fmt: skip
    # quinn left acme-ps: only the Scalr membership is current
    quinn = canned(audited, "current_access", email="quinn@acme.example")
    assert pick(quinn, "provider", "access", "resource_name") == [("scalr", "membership", "acme")]


def test_current_access_for_everyone_is_every_current_membership_and_effective_grant(audited):
    rows = canned(audited, "current_access", email="")
    db = audited["path"]
    memberships = query(db, "SELECT COUNT(*) AS n FROM memberships WHERE removed_at IS NULL")
    grants = query(db, "SELECT COUNT(*) AS n FROM effective_grants")
    assert len(rows) == memberships[0]["n"] + grants[0]["n"] == 21
    assert {row["email"] for row in rows} == {
        "ada@acme.example",
        "backup@acme.example",
        "bob@acme.example",
        "cat@acme.example",
        "dan@acme.example",
        "Dan@Acme.example",
        "deploy@acme.example",
        "erin@acme.example",
        "eve@acme.example",
        "pam@acme.example",
        "quinn@acme.example",
    }


ADMIN = ("provider", "email", "user_id", "organization", "role", "role_id", "via_team_name")


def test_admins_now_counts_the_admin_role_star_star_and_teams_but_not_database_admins(audited):
    rows = canned(audited, "admins_now")
    assert pick(rows, *ADMIN) == [
        ("planetscale", "erin@acme.example", PERIN, "acme-ps", "admin", None, None),
        ("planetscale", "pam@acme.example", PAM, "acme-ps", "admin", None, None),
        ("scalr", "ada@acme.example", ADA, "acme", "admin", ADMIN_ROLE_ID, None),
        ("scalr", "bob@acme.example", BOB, "acme", "superuser", SUPER, "Platform"),
        ("scalr", "eve@acme.example", EVE, "acme", "superuser", SUPER, None),
    ]
    # Dan administers a PlanetScale database through DBA, deploy holds the admin role on an
    # environment: neither is an admin of an organisation
    assert {row["email"].lower() for row in rows}.isdisjoint(
        {"dan@acme.example", "deploy@acme.example"}
    )


def test_new_admins_are_the_promotions_and_grants_after_the_baselines(audited):
    _, _, s2, p2 = stamps(audited)
    rows = canned(audited, "new_admins", days="1")
    assert pick(rows, *ADMIN, "became_admin_at") == [
        ("planetscale", "erin@acme.example", PERIN, "acme-ps", "admin", None, None, p2),
        ("scalr", "bob@acme.example", BOB, "acme", "superuser", SUPER, "Platform", s2),
    ]
    # pam, ada and eve were admins at the baselines: not new. A window that ends before now
    # is empty.
    assert canned(audited, "new_admins", days="0") == []


@pytest.fixture
def upgraded(tmp_path):
    """A Scalr account first synced without access policies (an older release), then with
    them (the grants' own baseline: ada admin, Platform with ``*:*``, bob in it), then cat joins
    Platform: cat becomes an admin through the team in the third run, and only cat."""
    db_path = tmp_path / "upgraded.db"
    state = scalr_state()
    state.access_policies["ap-accteam000002"] = ScalrAccessPolicy(
        "ap-accteam000002", "team", PLATFORM, "account", ACC, [SUPER]
    )
    with ScalrSimulator(state) as sim:
        older = settings_for(db_path, scalr=sim, SCALR_READ_ACCESS_POLICIES="false")
        assert sync_provider(older, "scalr", policy=TEST_POLICY).status == "succeeded"
        for step in ("access on", "cat joins"):
            if step == "cat joins":
                with sim.state.lock:
                    sim.state.users[CAT].teams.add(PLATFORM)
            next_round(db_path)
            assert sync(db_path, scalr=sim).status == "succeeded"
        # then Scalr refuses the token, and PlanetScale never answered at all
        refused = load_settings(
            environ={**scalr_env(sim), "SCALR_API_TOKEN": "revoked"}, db_override=db_path
        )
        assert sync_provider(refused, "scalr", policy=TEST_POLICY).status == "failed"
    nobody = load_settings(
        environ={
            "PLANETSCALE_SERVICE_TOKEN": "id:secret",
            "PLANETSCALE_API_URL": f"http://127.0.0.1:{free_port()}",
        },
        db_override=db_path,
    )
    assert sync_provider(nobody, "planetscale", policy=TEST_POLICY).status == "failed"
    runs = query(db_path, "SELECT id, started_at FROM sync_runs ORDER BY id")
    assert query(db_path, "SELECT kind, run_id FROM baselines WHERE kind = 'grants'") == [
        {"kind": "grants", "run_id": runs[1]["id"]}
    ]
    with serving(db_path) as base:
        yield {"base": base, "db": "upgraded", "runs": runs}


def test_new_admins_leaves_out_a_grants_baseline_taken_after_the_providers(upgraded):
    rows = canned(upgraded, "new_admins", days="1")
    third = upgraded["runs"][2]
    assert pick(rows, *ADMIN, "became_admin_at", "run_id") == [
        ("scalr", "cat@acme.example", CAT, "acme", "superuser", SUPER, "Platform",
         third["started_at"], third["id"]),
    ]  # fmt: skip
    admins = canned(upgraded, "admins_now")  # the failed runs changed nothing
    assert pick(admins, "email", "via_team_name") == [
        ("ada@acme.example", None),
        ("bob@acme.example", "Platform"),
        ("cat@acme.example", "Platform"),
        ("eve@acme.example", None),
    ]


DORMANT = ("kind", "account_type", "id", "email", "name", "last_active_at", "measured_by")


def test_dormant_accounts_are_stale_or_never_used_humans_service_accounts_and_tokens(audited):
    state = scalr_state()
    bob_login = _db(state.users[BOB].last_login_at)
    nightly = _db(state.access_tokens[BACKUP][NIGHTLY].last_used_at)
    rows = canned(audited, "dormant_accounts", days="90")
    assert pick(rows, *DORMANT) == [
        ("account", "human", CAT, "cat@acme.example", "Cat", None, "last sign-in"),
        ("account", "human", BOB, "bob@acme.example", "Bob", bob_login, "last sign-in"),
        ("account", "service", BACKUP, "backup@acme.example", "backup", nightly,
         "last token use"),
        ("token", "credential", SPARE, "deploy@acme.example", "spare", None, "last use"),
        ("token", "credential", NIGHTLY, "backup@acme.example", "nightly", nightly, "last use"),
    ]  # fmt: skip
    # dan (disabled, last sign-in 200 days ago) is left out; over 1000 days only the never-used
    # remain
    assert pick(canned(audited, "dormant_accounts", days="1000"), "id") == [(CAT,), (SPARE,)]


def test_recent_changes_are_the_window_newest_first(audited):
    rows = canned(audited, "recent_changes", days="1")
    everything = query(audited["path"], "SELECT id, kind, email FROM changes ORDER BY id DESC")
    assert pick(rows, "id", "kind", "email") == [tuple(r.values()) for r in everything]
    assert pick(rows, "kind", "email") == [
        ("user_removed", "quinn@acme.example"),
        ("membership_removed", "quinn@acme.example"),
        ("role_changed", "erin@acme.example"),
        ("grant_added", None),
        ("status_changed", "dan@acme.example"),
    ]
    assert canned(audited, "recent_changes", days="0") == []


TIMELINE = ("observed_at", "provider", "kind", "resource_type", "resource_name", "field",
            "old_value", "new_value")  # fmt: skip


def test_person_timeline_follows_one_person_across_both_providers_oldest_first(audited):
    s1, p1, s2, p2 = stamps(audited)
    rows = canned(audited, "person_timeline", email="DAN@acme.example")
    assert pick(rows, *TIMELINE) == [
        (s1, "scalr", "seen_at_baseline", None, None, "status", None, "enabled"),
        (s1, "scalr", "seen_at_baseline", "organization", "acme", "role", None, "member"),
        (p1, "planetscale", "seen_at_baseline", None, None, "status", None, "enabled"),
        (p1, "planetscale", "seen_at_baseline", "organization", "acme-ps", "role", None,
         "member"),
        (p1, "planetscale", "seen_at_baseline", "team", "DBA", "role", None, "member"),
        (s2, "scalr", "status_changed", None, None, "status", "enabled", "disabled"),
    ]  # fmt: skip
    quinn = canned(audited, "person_timeline", email="quinn@acme.example")
    assert pick(quinn, "observed_at", "provider", "kind")[-2:] == [
        (p2, "planetscale", "membership_removed"),
        (p2, "planetscale", "user_removed"),
    ]
    # ada's admin grant, held since the baseline (no change row says so)
    ada = canned(audited, "person_timeline", email="ada@acme.example")
    assert (s1, "scalr", "seen_at_baseline", "organization", "acme", "role", None, "admin") in (
        pick(ada, *TIMELINE)
    )
    assert canned(audited, "person_timeline", email="nobody@acme.example") == []


def test_offboarding_gaps_in_both_directions(audited):
    _, _, s2, p2 = stamps(audited)
    rows = canned(audited, "offboarding_gaps")
    assert pick(rows, "offboarded_in", "offboarded_user_id", "how", "since", "still_in",
                "still_user_id") == [
        ("planetscale", PQUINN, "removed", p2, "scalr", QUINN),
        ("scalr", DAN, "disabled", s2, "planetscale", PDAN),
    ]  # fmt: skip


def test_sync_health_shows_each_providers_last_run_and_last_success(audited):
    rows = canned(audited, "sync_health")
    _, _, s2, p2 = stamps(audited)
    assert pick(rows, "provider", "last_run_id", "last_status", "last_started_at",
                "last_error", "last_success_run_id", "last_success_at",
                "failed_since_success") == [
        ("planetscale", 4, "succeeded", p2, None, 4, p2, 0),
        ("scalr", 3, "succeeded", s2, None, 3, s2, 0),
    ]  # fmt: skip
    for row in rows:
        # the fixture's syncs ran moments ago; an hour is room for a slow machine
        assert 0 <= row["last_success_age_seconds"] < 3600
        assert row["last_success_age_minutes"] == row["last_success_age_seconds"] // 60 or (
            abs(row["last_success_age_minutes"] * 60 - row["last_success_age_seconds"]) <= 30
        )


def test_access_as_of_expands_team_grants_with_the_members_of_that_time(audited):
    s1, p1, s2, p2 = stamps(audited)

    def bob_at(at: str) -> list[tuple]:
        rows = canned(audited, "access_as_of", at=at)
        return pick([r for r in rows if r["user_id"] == BOB], "resource_type", "resource_name",
                    "role", "role_id", "via_team_name")  # fmt: skip

    before = [
        ("environment", "production", "reader", READER_ROLE_ID, "Platform"),
        ("organization", "acme", "member", None, None),
        ("organization", "acme", "user", USER_ROLE_ID, None),
        ("team", "Platform", "member", None, None),
    ]
    assert bob_at(p1) == before
    assert bob_at(s2) == sorted(
        [*before, ("organization", "acme", "superuser", SUPER, "Platform")],
        key=lambda r: (r[0], r[2]),
    )
    # erin was a member between the PlanetScale runs, an admin from the second
    erin = [(r["role"], r["resource_name"]) for r in canned(audited, "access_as_of", at=s2)
            if r["user_id"] == PERIN]  # fmt: skip
    assert erin == [("member", "acme-ps")]
    assert [r["role"] for r in canned(audited, "access_as_of", at=p2) if r["user_id"] == PERIN] == [
        "admin"
    ]
    assert canned(audited, "access_as_of", at="2000-01-01") == []
    # a stamp in another form SQLite reads (seconds, no milliseconds) means the same instant
    later = (datetime.fromisoformat(p2) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [r["role"] for r in canned(audited, "access_as_of", at=later)
            if r["user_id"] == PERIN] == ["admin"]  # fmt: skip
    assert pick(canned(audited, "admins_as_of", as_of=later, organization="acme-ps"),
                "email") == [("erin@acme.example",), ("pam@acme.example",)]  # fmt: skip


def test_sync_health_shows_failures_and_a_provider_that_never_succeeded(upgraded):
    runs = upgraded["runs"]
    rows = canned(upgraded, "sync_health")
    assert pick(rows, "provider", "last_run_id", "last_status", "last_success_run_id",
                "last_success_at", "last_success_age_seconds", "failed_since_success") == [
        ("planetscale", runs[4]["id"], "failed", None, None, None, 1),
        ("scalr", runs[3]["id"], "failed", runs[2]["id"], runs[2]["started_at"],
         rows[1]["last_success_age_seconds"], 1),
    ]  # fmt: skip
    assert all(row["last_error"] for row in rows)
    assert 0 <= rows[1]["last_success_age_seconds"] < 3600
