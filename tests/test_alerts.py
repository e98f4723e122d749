"""Alert rules (README, "Alerts"): each fires exactly when it should, never on a baseline.

Real syncs against the simulators into a real SQLite file; the alerts are read back with SQL.
"""

from __future__ import annotations

import json
import re

import pytest

from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSUser
from daemon.simulate.scalr.world import (
    ADMIN_ROLE_ID,
    READER_ROLE_ID,
    ScalrAccessPolicy,
    ScalrAccessToken,
    ScalrRole,
    ScalrServiceAccount,
    ScalrState,
    ScalrUser,
)
from daemon.sync import sync_provider
from store import alerts
from tests.helpers import (
    ALICE,
    BOB,
    CAROL,
    GLOBEX,
    TEST_POLICY,
    query,
    run_cli,
    scalr_env,
    settings_for,
    sync,
)

ACC = ScalrState().account_id
ADA, EVE, PAT = "user-accada0000001", "user-acceve0000001", "user-accpat0000001"
DEPLOY = "sa-accdeploy00001"


def raised(db_path, run_id=None) -> list[tuple[str, str]]:
    """(rule, summary) of the alerts, of one run or all, in id order."""
    where, params = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
    return [
        (row["rule"], row["summary"])
        for row in query(db_path, f"SELECT rule, summary FROM alerts {where} ORDER BY id", params)
    ]


def rules_of(db_path, run_id=None) -> list[str]:
    return [rule for rule, _ in raised(db_path, run_id)]


def sync_with(db_path, **sims_and_env):
    env = {k: v for k, v in sims_and_env.items() if isinstance(v, str)}
    sims = {k: v for k, v in sims_and_env.items() if not isinstance(v, str)}
    (provider,) = sims
    settings = settings_for(db_path, **sims, **env)
    return sync_provider(settings, provider, policy=TEST_POLICY)


# -- PlanetScale ---------------------------------------------------------------------------------


def test_a_baseline_raises_no_alert_though_it_sees_admins(db_path, ps):
    outcome = sync(db_path, planetscale=ps)
    assert outcome.status == "succeeded"
    assert query(db_path, "SELECT * FROM alerts") == []
    assert sync(db_path, planetscale=ps).status == "succeeded"  # nothing changed: nothing raised
    assert query(db_path, "SELECT * FROM alerts") == []


def test_planetscale_role_to_admin_new_admin_member_mfa_off_and_lost_organisation(db_path, ps):
    sync(db_path, planetscale=ps)
    acme = ps.state.organizations["orgacme00001"]
    acme.members[BOB] = "admin"  # role_changed → new_admin
    ps.state.users["ps0hank00001"] = PSUser("ps0hank00001", "hank@acme.example", "Hank")
    acme.members["ps0hank00001"] = "admin"  # membership_added with role admin → new_admin
    ps.state.users["ps0ivy000001"] = PSUser("ps0ivy000001", "ivy@acme.example", "Ivy")
    acme.members["ps0ivy000001"] = "member"  # a plain member: nothing
    ps.state.users[CAROL].two_factor_auth_configured = False  # mfa_disabled
    ps.state.users[ALICE].two_factor_auth_configured = True  # already on: nothing
    del ps.state.organizations[GLOBEX]  # organization_access_lost (dave was its admin)
    outcome = sync(db_path, planetscale=ps)
    assert outcome.status == "succeeded", outcome.error
    assert sorted(raised(db_path, outcome.run_id)) == sorted(
        [
            ("new_admin", "PlanetScale: bob@acme.example made admin of acme"),
            ("new_admin", "PlanetScale: hank@acme.example added as admin of acme"),
            ("mfa_disabled", "PlanetScale: MFA switched off for carol@acme.example"),
            (
                "organization_access_lost",
                "PlanetScale: organisation globex is no longer visible to the token",
            ),
        ]
    )
    # the organisation coming back with its admin: new_admin for dave (a returning admin)
    ps.state.organizations[GLOBEX] = PSOrganization(
        GLOBEX, "globex", members={"ps0dave00001": "admin", "ps0erin00001": "member"}
    )
    back = sync(db_path, planetscale=ps)
    assert raised(db_path, back.run_id) == [
        ("new_admin", "PlanetScale: dave@acme.example added as admin of globex")
    ]


def test_payload_is_the_json_form_with_every_change_column_and_ocsf(db_path, ps):
    sync(db_path, planetscale=ps)
    ps.state.users[CAROL].two_factor_auth_configured = False
    outcome = sync(db_path, planetscale=ps)
    (row,) = query(db_path, "SELECT * FROM alerts")
    payload = json.loads(row["payload"])
    (database_id,) = query(db_path, "SELECT value FROM _accesstrail WHERE key = 'database_id'")
    assert re.fullmatch(r"[0-9a-f]{32}", database_id["value"])
    assert payload["id"] == f"accesstrail:{database_id['value']}:{row['id']}"
    assert {k: payload[k] for k in ("rule", "provider", "observed_at", "run_id", "summary")} == {
        "rule": "mfa_disabled",
        "provider": "planetscale",
        "observed_at": row["observed_at"],
        "run_id": outcome.run_id,
        "summary": row["summary"],
    }
    (changed,) = query(db_path, "SELECT * FROM changes WHERE run_id = ?", (outcome.run_id,))
    assert payload["changes"] == [
        {**changed, "class_uid": 3001, "activity_id": 11, "type_uid": 300111}
    ]
    assert (
        row["observed_at"]
        == query(db_path, "SELECT started_at FROM sync_runs WHERE id = ?", (outcome.run_id,))[0][
            "started_at"
        ]
    )
    assert (row["delivered_at"], row["attempts"], row["last_error"]) == (None, 0, None)


def test_ocsf_classification_of_each_kind():
    def of(kind, **columns):
        return alerts.ocsf_classification({"kind": kind, "field": None, **columns})

    assert of("user_added") == {"class_uid": 3001, "activity_id": 1, "type_uid": 300101}
    assert of("user_removed")["type_uid"] == 300106
    assert of("status_changed", new_value="enabled")["type_uid"] == 300102
    assert of("status_changed", new_value="disabled")["type_uid"] == 300105
    assert of("user_updated", field="mfa_enabled", new_value="1")["type_uid"] == 300110
    assert of("membership_added")["type_uid"] == 300603
    assert of("membership_removed")["type_uid"] == 300604
    assert of("role_changed")["type_uid"] == 300501
    assert of("grant_added")["type_uid"] == 300501
    assert of("grant_removed")["type_uid"] == 300502
    assert of("credential_added")["type_uid"] == 300401
    assert of("organization_removed")["type_uid"] == 300404


# -- Scalr -----------------------------------------------------------------------------------------


def scalr_state() -> ScalrState:
    state = ScalrState()
    state.users = {
        ADA: ScalrUser(ADA, "ada@acme.example", "Ada"),
        EVE: ScalrUser(EVE, "eve@acme.example", "Eve", status="Inactive"),
        PAT: ScalrUser(PAT, "pat@acme.example", "Pat", status="Pending"),
    }
    state.service_accounts = {DEPLOY: ScalrServiceAccount(DEPLOY, "deploy", "deploy@acme.example")}
    state.roles["role-accsuper00001"] = ScalrRole(
        "role-accsuper00001", "superuser", "Everything", False, {"*:*"}
    )
    state.access_tokens = {DEPLOY: {}}
    return state


@pytest.fixture
def scalr(scalr_sim):
    scalr_sim.state.__dict__.update(scalr_state().__dict__)
    return scalr_sim


def test_scalr_admin_grants_enabled_account_and_credentials(db_path, scalr):
    state = scalr.state
    state.access_policies = {
        "ap-accada0000001": ScalrAccessPolicy(
            "ap-accada0000001", "user", ADA, "account", ACC, [ADMIN_ROLE_ID]
        )
    }
    assert sync(db_path, scalr=scalr).status == "succeeded"
    assert query(db_path, "SELECT * FROM alerts") == []  # ada was admin at the baseline

    policies = {
        # the admin role on the account → new_admin
        "ap-accpat0000001": ("user", PAT, "account", ACC, [ADMIN_ROLE_ID]),
        # a custom role with *:* on the account → new_admin
        "ap-acceve0000001": ("user", EVE, "account", ACC, ["role-accsuper00001"]),
        # a reader on the account, and an admin on an environment: not admins of the account
        "ap-accsa00000001": ("service-account", DEPLOY, "account", ACC, [READER_ROLE_ID]),
    }
    for ident, (kind, subject, scope, scope_id, roles) in policies.items():
        state.access_policies[ident] = ScalrAccessPolicy(
            ident, kind, subject, scope, scope_id, roles
        )
    state.users[EVE].status = "Active"  # account_enabled
    state.users[ADA].status = "Inactive"  # disabled: no rule fires without another provider
    state.access_tokens[DEPLOY] = {
        "at-accforever0001": ScalrAccessToken("at-accforever0001", "forever", expires_at=None),
        "at-accexpires0001": ScalrAccessToken(
            "at-accexpires0001", "expires", expires_at="2027-01-01T00:00:00Z"
        ),
    }
    outcome = sync(db_path, scalr=scalr)
    assert outcome.status == "succeeded", outcome.error
    assert sorted(raised(db_path, outcome.run_id)) == sorted(
        [
            ("new_admin", "Scalr: pat@acme.example granted admin of acme"),
            ("new_admin", "Scalr: eve@acme.example granted superuser of acme"),
            ("account_enabled", "Scalr: disabled account eve@acme.example enabled again"),
            ("credential_added", "Scalr: credential forever created for deploy@acme.example"),
            ("credential_added", "Scalr: credential expires created for deploy@acme.example"),
            (
                "credential_never_expires",
                "Scalr: credential forever for deploy@acme.example never expires",
            ),
        ]
    )
    assert sync(db_path, scalr=scalr).changes == {}
    assert len(query(db_path, "SELECT * FROM alerts")) == 6  # nothing new


def test_a_credential_of_a_new_kind_baseline_raises_nothing(db_path, scalr):
    """Tokens first read after an upgrade (their own baseline) are not news."""
    scalr.state.access_tokens[DEPLOY] = {
        "at-accforever0001": ScalrAccessToken("at-accforever0001", "forever")
    }
    sync(db_path, scalr=scalr)
    assert query(db_path, "SELECT * FROM alerts") == []


# -- offboarding_gap ----------------------------------------------------------------------------


@pytest.fixture
def both(scalr, planetscale_sim):
    ps_state: PlanetScaleState = planetscale_sim.state
    ps_state.users = {
        "ps0ada000001": PSUser("ps0ada000001", "Ada@Acme.example", "Ada"),
        "ps0pat000001": PSUser("ps0pat000001", "pat@acme.example", "Pat"),
    }
    ps_state.organizations = {
        "orgacme00001": PSOrganization(
            "orgacme00001", "acme", members={"ps0ada000001": "member", "ps0pat000001": "member"}
        )
    }
    return scalr, planetscale_sim


def test_offboarding_gap_once_per_person_across_providers_case_insensitively(db_path, both):
    scalr, ps = both
    sync(db_path, scalr=scalr)
    sync(db_path, planetscale=ps)
    assert query(db_path, "SELECT * FROM alerts") == []  # baselines

    scalr.state.users[ADA].status = "Inactive"  # disabled in Scalr, enabled in PlanetScale
    first = sync(db_path, scalr=scalr)
    assert raised(db_path, first.run_id) == [
        (
            "offboarding_gap",
            "Scalr: ada@acme.example disabled, but still has an enabled account in another "
            "provider",
        )
    ]
    # removing the already-disabled account: the gap lasts, nothing new
    del scalr.state.users[ADA]
    second = sync(db_path, scalr=scalr)
    assert second.changes["user_removed"] == 1
    assert raised(db_path, second.run_id) == []

    # pat (Pending counts as enabled) removed from PlanetScale while present in Scalr: a gap
    del ps.state.organizations["orgacme00001"].members["ps0pat000001"]
    third = sync(db_path, planetscale=ps)
    assert rules_of(db_path, third.run_id) == ["offboarding_gap"]
    (payload,) = [
        json.loads(r["payload"])
        for r in query(db_path, "SELECT payload FROM alerts WHERE run_id = ?", (third.run_id,))
    ]
    # one alert per person: the membership removal is not the trigger, the user removal is
    assert [c["kind"] for c in payload["changes"]] == ["user_removed"]
    assert sync(db_path, planetscale=ps).changes == {}
    assert len(query(db_path, "SELECT * FROM alerts")) == 2


def test_no_gap_when_the_other_account_is_gone_or_disabled(db_path, both):
    scalr, ps = both
    scalr.state.users[ADA].status = "Inactive"
    sync(db_path, scalr=scalr)
    sync(db_path, planetscale=ps)
    del ps.state.organizations["orgacme00001"].members["ps0ada000001"]  # Scalr's is disabled
    outcome = sync(db_path, planetscale=ps)
    assert outcome.changes["user_removed"] == 1
    assert rules_of(db_path, outcome.run_id) == []


# -- selecting rules ------------------------------------------------------------------------------


def test_alerts_none_raises_nothing_and_a_list_raises_only_those(db_path, ps, tmp_path):
    sync(db_path, planetscale=ps)
    ps.state.users[CAROL].two_factor_auth_configured = False
    ps.state.organizations["orgacme00001"].members[BOB] = "admin"
    sync_with(db_path, planetscale=ps, ACCESSTRAIL_ALERTS="none")
    assert query(db_path, "SELECT * FROM alerts") == []

    other = tmp_path / "other.db"
    sync(other, planetscale=ps)
    ps.state.users[CAROL].two_factor_auth_configured = True
    sync(other, planetscale=ps)
    ps.state.users[CAROL].two_factor_auth_configured = False
    ps.state.organizations["orgacme00001"].members[BOB] = "member"
    sync(other, planetscale=ps)
    ps.state.organizations["orgacme00001"].members[BOB] = "admin"
    sync_with(other, planetscale=ps, ACCESSTRAIL_ALERTS=" MFA_Disabled , new_ad min ")
    assert sorted(rules_of(other)) == ["mfa_disabled", "new_admin"]


def test_parse_rules():
    assert alerts.parse_rules(None) == frozenset(alerts.RULES)
    assert alerts.parse_rules("none") == frozenset()
    assert alerts.parse_rules("NEW_ADMIN, credential_added ") == {"new_admin", "credential_added"}
    with pytest.raises(alerts.UnknownRule):
        alerts.parse_rules("new_admin,nope")


def test_an_unknown_rule_is_a_config_error_exit_2(db_path, scalr_sim):
    env = {**scalr_env(scalr_sim), "ACCESSTRAIL_ALERTS": "new_admin,made_up"}
    result = run_cli(["sync", "--db", str(db_path)], env)
    assert result.exit_code == 2
    assert "ACCESSTRAIL_ALERTS" in result.stderr and "made_up" in result.stderr
    assert not db_path.exists()
