"""The recorded wire format in ``tests/payloads/`` is what the clients read and the simulators send.

Every other test talks to the built-in simulators, so a simulator that drifted from the real API
would let the clients drift with it, unnoticed. The payloads pin the real format down in one
place, one file per endpoint the clients call (``tests/payloads/README.md`` says what each one
answers). Two kinds of test hold both sides to it:

* the public normalisers turn each payload into exactly the snapshot objects accesstrail stores,
  and reject modified copies in which a field has the wrong JSON type (so the payload shows what
  the validators check);
* each simulator, asked the same request over real HTTP, answers a document of the same *shape*:
  the same keys and JSON types at every level. Lists are compared by their first element (a list
  of JSON:API resources by the first element of each resource type, because ``included`` mixes
  types); an empty list on either side has no element to compare. A null may stand for a value
  only where the API documents the field as nullable; those fields are listed explicitly below.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import sqlite_utils
from loguru import logger

from daemon import errors
from daemon.env import Secret
from daemon.providers import planetscale, scalr, scalr_access
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSTeam, PSUser
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrServiceAccount, ScalrState, ScalrTeam, ScalrUser
from store.model import (
    AccessScope,
    Credential,
    Grant,
    Organization,
    Role,
    Snapshot,
    Team,
    User,
)
from store.staging import Staging
from tests.helpers import run_cli

PAYLOADS = Path(__file__).parent / "payloads"
SCALR_API = "/api/iacp/v3"
ACCOUNT_ID = "acc-svrcncgh453bi8g"
ORG_ID = "ul8umvvqyk0j"
ORG = "acme"
MEMBERS_PATH = f"/v1/organizations/{ORG}/members"
TEAM_MEMBERS_PATH = f"/v1/organizations/{ORG}/teams/platform/members"


class _Missing:
    """``with_value`` removes the key instead of setting it."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def with_value(document: dict, path: tuple, value: object) -> dict:
    """A deep copy of ``document`` with the item at ``path`` replaced (or removed: MISSING)."""
    changed = copy.deepcopy(document)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


# -- normalising whole payloads ----------------------------------------------------------------


def scalr_account_users(document: dict) -> list[User]:
    """Each account-user with its ``included`` user, as ``fetch_account_users`` pairs them."""
    users = {item["id"]: item for item in document["included"] if item["type"] == "users"}
    return [
        scalr.user_from_account_user(item, users[item["relationships"]["user"]["data"]["id"]])
        for item in document["data"]
    ]


def scalr_service_accounts(document: dict) -> list[User]:
    return [scalr.user_from_service_account(item) for item in document["data"]]


def scalr_teams(document: dict) -> list[Team]:
    return [scalr.team_from_item(item, ACCOUNT_ID) for item in document["data"]]


def ps_organizations(document: dict) -> list[Organization]:
    return [planetscale.organization_from_item(item) for item in document["data"]]


def ps_members(document: dict) -> list[tuple[User, str]]:
    return [
        (planetscale.user_from_member(item, MEMBERS_PATH), planetscale.member_role(item, ORG))
        for item in document["data"]
    ]


def ps_teams(document: dict) -> list[Team]:
    return [planetscale.team_from_item(item, ORG, ORG_ID) for item in document["data"]]


def ps_team_members(document: dict) -> list[User]:
    return [planetscale.user_from_member(item, TEAM_MEMBERS_PATH) for item in document["data"]]


NORMALISERS: dict[str, Callable[[dict], list]] = {
    "scalr/account-users.json": scalr_account_users,
    "scalr/service-accounts.json": scalr_service_accounts,
    "scalr/teams.json": scalr_teams,
    "planetscale/organizations.json": ps_organizations,
    "planetscale/members.json": ps_members,
    "planetscale/teams.json": ps_teams,
    "planetscale/team-members.json": ps_team_members,
}


def scalr_user(ident, email, name, status, provider_status, sign_in, created, kind="human"):
    """A Scalr user as stored: Scalr reports no MFA, so ``mfa_enabled`` is always unknown."""
    return User(
        id=ident,
        email=email,
        name=name,
        account_type=kind,
        status=status,
        provider_status=provider_status,
        last_sign_in_at=sign_in,
        mfa_enabled=None,
        created_at=created,
    )


def ps_user(ident: str, email: str, name: str, mfa_enabled: int, created: str) -> User:
    """A PlanetScale member as stored: enabled (membership is all there is), no sign-in known."""
    return User(
        id=ident,
        email=email,
        name=name,
        account_type="human",
        status="enabled",
        provider_status=None,
        last_sign_in_at=None,
        mfa_enabled=mfa_enabled,
        created_at=created,
    )


ADA_PS = ps_user("a7nq3zr0p1ks", "ada@acme.example", "Ada Lovelace", 1, "2022-11-20T08:00:00.000Z")
GRACE_PS = ps_user(
    "g5vj8d2lq6wu", "grace@acme.example", "Grace Hopper", 0, "2024-01-09T15:29:10.000Z"
)

EXPECTED: dict[str, list] = {
    "scalr/account-users.json": [
        scalr_user(
            "user-svrcmmpcrkmit1g",
            "ada.lovelace@acme.com",
            "Ada Lovelace",
            "enabled",
            "Active",
            "2026-08-19T16:40:02.000Z",
            "2021-03-01T09:30:12.000Z",
        ),
        # Invited, never signed in: still enabled (the invitation can be accepted), no name yet.
        scalr_user(
            "user-suh84u6vuvidtbg",
            "new.hire@acme.com",
            None,
            "enabled",
            "Pending",
            None,
            "2026-08-18T10:00:00.000Z",
        ),
        # Status and last sign-in come from the account-user, not from the global user, which is
        # still Active and signed in later (elsewhere).
        scalr_user(
            "user-v0o2p4kq1n8m3r7b",
            "grace.hopper@acme.com",
            "Grace Hopper",
            "disabled",
            "Inactive",
            "2025-12-02T08:15:47.000Z",
            "2023-05-14T11:02:33.000Z",
        ),
    ],
    "scalr/service-accounts.json": [
        scalr_user(
            "sa-v0o3a1b2c3d4e5f6",
            "ci-deployer@acme.scalr.io",
            "ci-deployer",
            "enabled",
            "Active",
            None,
            "2025-05-06T10:11:12.000Z",
            kind="service",
        ),
        scalr_user(
            "sa-v0o3a1b2c3d4e5f7",
            "legacy-bot@acme.scalr.io",
            "legacy-bot",
            "disabled",
            "Inactive",
            None,
            "2023-01-20T08:00:00.000Z",
            kind="service",
        ),
    ],
    "scalr/teams.json": [
        Team(
            "team-tmhlublsnv43mt8",
            ACCOUNT_ID,
            "Platform",
            None,
            "Owns the shared Terraform modules",
        ),
        Team("team-v0os7i01qr63263l1", ACCOUNT_ID, "Security", None, None),
    ],
    "planetscale/organizations.json": [Organization(id=ORG_ID, name=ORG)],
    "planetscale/members.json": [(ADA_PS, "admin"), (GRACE_PS, "member")],
    "planetscale/teams.json": [
        Team("t9w2f7kd1e3z", ORG_ID, "Platform", "platform", "Platform engineering")
    ],
    "planetscale/team-members.json": [GRACE_PS],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_payload_normalises_to_the_recorded_objects(name):
    assert NORMALISERS[name](payload(name)) == EXPECTED[name]


def normalise_changed(name: str, path: tuple, value: object) -> list:
    return NORMALISERS[name](with_value(payload(name), path, value))


REJECTED = [
    ("scalr/account-users.json", ("data", 0, "attributes", "status"), 1),
    ("scalr/account-users.json", ("data", 0, "attributes", "status"), MISSING),
    ("scalr/account-users.json", ("data", 0, "attributes"), MISSING),
    ("scalr/account-users.json", ("data", 0, "attributes"), "Active"),
    ("scalr/service-accounts.json", ("data", 0, "attributes", "status"), MISSING),
    ("scalr/account-users.json", ("data", 0, "attributes", "last-login-at"), "last Tuesday"),
    ("scalr/account-users.json", ("included", 0, "attributes", "email"), 42),
    ("scalr/account-users.json", ("included", 0, "attributes", "full-name"), ["Ada"]),
    ("scalr/account-users.json", ("included", 0, "attributes", "created-at"), 1614591012),
    ("scalr/service-accounts.json", ("data", 0, "attributes", "name"), 7),
    ("scalr/service-accounts.json", ("data", 0, "attributes", "created-at"), 1746526272),
    ("scalr/service-accounts.json", ("data", 0, "id"), ""),
    ("scalr/teams.json", ("data", 0, "attributes", "description"), {"text": "x"}),
    ("scalr/teams.json", ("data", 0, "id"), 1234),
    ("planetscale/organizations.json", ("data", 0, "name"), MISSING),
    ("planetscale/organizations.json", ("data", 0, "id"), 99),
    ("planetscale/members.json", ("data", 0, "role"), MISSING),
    ("planetscale/members.json", ("data", 0, "role"), 2),
    ("planetscale/members.json", ("data", 0, "user", "email"), 42),
    ("planetscale/members.json", ("data", 0, "user", "two_factor_auth_configured"), "yes"),
    ("planetscale/members.json", ("data", 0, "user", "created_at"), "yesterday"),
    ("planetscale/members.json", ("data", 0, "user"), "pscale-user-1"),
    ("planetscale/teams.json", ("data", 0, "slug"), MISSING),
    ("planetscale/teams.json", ("data", 0, "name"), 5),
    ("planetscale/team-members.json", ("data", 0, "user", "id"), MISSING),
    ("planetscale/team-members.json", ("data", 0, "user", "two_factor_auth_configured"), 1),
]


@pytest.mark.parametrize(
    ("name", "path", "value"), REJECTED, ids=lambda part: str(part).replace(" ", "")
)
def test_a_field_not_as_documented_is_a_bad_response(name, path, value):
    """Wrong JSON types, missing required fields and timestamps that are not ISO-8601."""
    with pytest.raises(errors.BadResponse):
        normalise_changed(name, path, value)


def test_planetscale_role_words_are_kept_as_sent():
    (_, role), _ = normalise_changed("planetscale/members.json", ("data", 0, "role"), "analyst")
    assert role == "analyst"


def test_planetscale_name_falls_back_to_display_name():
    (user, _), _ = normalise_changed("planetscale/members.json", ("data", 0, "user", "name"), None)
    assert (user.id, user.name) == (ADA_PS.id, "Ada Lovelace")


def test_scalr_undocumented_status_is_kept_but_grants_nothing():
    users = normalise_changed(
        "scalr/account-users.json", ("data", 0, "attributes", "status"), "Suspended"
    )
    assert (users[0].status, users[0].provider_status) == ("disabled", "Suspended")


# -- comparing shapes --------------------------------------------------------------------------


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def samples(items: list, path: str) -> dict[str, object]:
    """The elements a list is compared by, keyed by their path.

    A list of JSON:API resources (or resource identifiers) gives the first element of each
    ``type``; any other list its first element.
    """
    if not items:
        return {}
    if all(isinstance(item, dict) and isinstance(item.get("type"), str) for item in items):
        if all("id" in item for item in items):
            first: dict[str, object] = {}
            for item in items:
                first.setdefault(f"{path}[{item['type']}]", item)
            return first
    return {f"{path}[]": items[0]}


def shape_differences(expected: object, actual: object, nullable: set[str], path: str = ""):
    """Where ``actual`` differs in shape from ``expected``: one line per difference."""
    kinds = json_type(expected), json_type(actual)
    if kinds[0] != kinds[1]:
        if "null" in kinds and path in nullable:
            return []
        return [f"{path or '<document>'}: payload has {kinds[0]}, simulator has {kinds[1]}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        return dict_differences(expected, actual, nullable, path)
    if isinstance(expected, list) and isinstance(actual, list) and expected and actual:
        return list_differences(expected, actual, nullable, path)
    return []


def dict_differences(expected: dict, actual: dict, nullable: set[str], path: str) -> list[str]:
    found = [f"{child(path, k)}: only in the payload" for k in sorted(expected.keys() - actual)]
    found += [f"{child(path, k)}: only in the simulator" for k in sorted(actual.keys() - expected)]
    for key in sorted(expected.keys() & actual.keys()):
        found += shape_differences(expected[key], actual[key], nullable, child(path, key))
    return found


def list_differences(expected: list, actual: list, nullable: set[str], path: str) -> list[str]:
    ours, theirs = samples(expected, path), samples(actual, path)
    found = [f"{key}: only in the payload" for key in sorted(ours.keys() - theirs)]
    found += [f"{key}: only in the simulator" for key in sorted(theirs.keys() - ours)]
    for key in sorted(ours.keys() & theirs.keys()):
        found += shape_differences(ours[key], theirs[key], nullable, key)
    return found


def paths(document: object, path: str = "") -> Iterator[str]:
    """Every path ``shape_differences`` can visit in ``document``."""
    if path:
        yield path
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, child(path, key))
    elif isinstance(document, list):
        for key, value in samples(document, path).items():
            yield from paths(value, key)


def test_the_shape_comparison_sees_a_drift():
    """The comparison itself: a renamed key, a retyped value and a stray null all show."""
    document = payload("scalr/service-accounts.json")
    drifted = with_value(document, ("data", 0, "attributes", "status"), MISSING)
    drifted = with_value(drifted, ("data", 0, "attributes", "state"), "Active")
    drifted = with_value(drifted, ("meta", "pagination", "total-count"), "2")
    drifted = with_value(drifted, ("data", 0, "attributes", "name"), None)
    assert shape_differences(document, drifted, set()) == [
        "data[service-accounts].attributes.status: only in the payload",
        "data[service-accounts].attributes.state: only in the simulator",
        "data[service-accounts].attributes.name: payload has string, simulator has null",
        "meta.pagination.total-count: payload has integer, simulator has string",
    ]


# -- fields the APIs document as nullable ------------------------------------------------------

SCALR_PAGINATION_NULLABLE = {"meta.pagination.prev-page", "meta.pagination.next-page"}

#: Per JSON:API resource type, the attributes and relationship data Scalr's OpenAPI spec types
#: as "... or null".
SCALR_NULLABLE_BY_TYPE = {
    "accounts": {
        "attributes.last-login-attempt-at",
        "attributes.login-attempts",
        "relationships.billing-plan.data",
        "relationships.identity-provider.data",
    },
    "account-users": {
        "attributes.last-login-at",
        "relationships.account.data",
        "relationships.user.data",
        "relationships.teams.data",
    },
    "users": {
        "attributes.full-name",
        "attributes.created-at",
        "attributes.last-login-at",
        "relationships.identity-providers.data",
        "relationships.teams.data",
    },
    "service-accounts": {
        "attributes.description",
        "relationships.created-by.data",
        "relationships.owners.data",
    },
    "teams": {
        "attributes.description",
        "relationships.account.data",
        "relationships.identity-provider.data",
        "relationships.users.data",
    },
}

PS_ENVELOPE_NULLABLE = {"next_page", "next_page_url", "prev_page", "prev_page_url"}
PS_USER_NULLABLE = {
    "name",
    "default_organization",
    "sso",
    "managed",
    "directory_managed",
    "email_verified",
}
PS_ORGANIZATION_NULLABLE = {"has_past_due_invoices", "sso_portal_url"}


def scalr_nullable(data_type: str, included_types: Iterable[str] = ()) -> set[str]:
    found = set(SCALR_PAGINATION_NULLABLE)
    for section, types in (("data", [data_type]), ("included", included_types)):
        for kind in types:
            found |= {f"{section}[{kind}].{field}" for field in SCALR_NULLABLE_BY_TYPE[kind]}
    return found


def ps_nullable(prefix: str, fields: Iterable[str]) -> set[str]:
    return PS_ENVELOPE_NULLABLE | {f"{prefix}.{field}" for field in fields}


# -- the simulators, given state that matches the payloads -------------------------------------


@dataclass(frozen=True)
class Served:
    url: str
    headers: dict[str, str]


def scalr_state() -> ScalrState:
    state = ScalrState(account_id=ACCOUNT_ID, account_name="acme")
    for ident, name, description in (
        ("team-tmhlublsnv43mt8", "Platform", "Owns the shared Terraform modules"),
        ("team-v0os7i01qr63263l1", "Security", None),
    ):
        state.teams[ident] = ScalrTeam(ident, name, description)
    for ident, email, full_name, status in (
        ("user-svrcmmpcrkmit1g", "ada.lovelace@acme.com", "Ada Lovelace", "Active"),
        ("user-suh84u6vuvidtbg", "new.hire@acme.com", None, "Pending"),
    ):
        state.users[ident] = ScalrUser(
            id=ident,
            email=email,
            full_name=full_name,
            status=status,
            last_login_at="2026-08-19T16:40:02Z" if status == "Active" else None,
            created_at="2021-03-01T09:30:12Z",
            teams={"team-tmhlublsnv43mt8"},
        )
    state.service_accounts["sa-v0o3a1b2c3d4e5f6"] = ScalrServiceAccount(
        "sa-v0o3a1b2c3d4e5f6", "ci-deployer", "ci-deployer@acme.scalr.io", "Used by CI", "Active"
    )
    return state


def planetscale_state() -> PlanetScaleState:
    state = PlanetScaleState()
    for ident, name, two_factor in (
        ("a7nq3zr0p1ks", "Ada Lovelace", True),
        ("g5vj8d2lq6wu", "Grace Hopper", False),
    ):
        email = f"{name.split()[0].lower()}@acme.example"
        state.users[ident] = PSUser(ident, email, name, name, two_factor)
    team = PSTeam(
        id="t9w2f7kd1e3z",
        name="Platform",
        slug="platform",
        description="Platform engineering",
        members={"g5vj8d2lq6wu"},
        creator_id="a7nq3zr0p1ks",
    )
    state.organizations[ORG_ID] = PSOrganization(
        id=ORG_ID,
        name=ORG,
        members={"a7nq3zr0p1ks": "admin", "g5vj8d2lq6wu": "member"},
        teams={team.id: team},
    )
    return state


@pytest.fixture(scope="module")
def scalr_sim() -> Iterator[Served]:
    state = scalr_state()
    with ScalrSimulator(state) as sim:
        yield Served(sim.url, {"Authorization": f"Bearer {state.token}"})


@pytest.fixture(scope="module")
def planetscale_sim() -> Iterator[Served]:
    state = planetscale_state()
    with PlanetScaleSimulator(state) as sim:
        yield Served(sim.url, {"Authorization": f"{state.token_id}:{state.token_secret}"})


@dataclass(frozen=True)
class ShapeCase:
    payload: str
    simulator: str  # the fixture serving it
    path: str
    params: dict
    nullable: set[str]


SCALR_PAGE = {"page[size]": 100, "page[number]": 1}
SCALR_ACCOUNT = {"filter[account]": ACCOUNT_ID}
PS_PAGE = {"per_page": 100, "page": 1}

SHAPE_CASES = [
    ShapeCase(
        "scalr/accounts.json",
        "scalr_sim",
        f"{SCALR_API}/accounts",
        {"filter[name]": "acme"},
        scalr_nullable("accounts"),
    ),
    ShapeCase(
        "scalr/account-users.json",
        "scalr_sim",
        f"{SCALR_API}/account-users",
        {**SCALR_ACCOUNT, "include": "user,teams", **SCALR_PAGE},
        scalr_nullable("account-users", ["users", "teams"]),
    ),
    ShapeCase(
        "scalr/service-accounts.json",
        "scalr_sim",
        f"{SCALR_API}/service-accounts",
        {**SCALR_ACCOUNT, **SCALR_PAGE},
        scalr_nullable("service-accounts"),
    ),
    ShapeCase(
        "scalr/teams.json",
        "scalr_sim",
        f"{SCALR_API}/teams",
        {**SCALR_ACCOUNT, **SCALR_PAGE},
        scalr_nullable("teams"),
    ),
    ShapeCase(
        "planetscale/organizations.json",
        "planetscale_sim",
        "/v1/organizations",
        PS_PAGE,
        ps_nullable("data[]", PS_ORGANIZATION_NULLABLE),
    ),
    ShapeCase(
        "planetscale/members.json",
        "planetscale_sim",
        MEMBERS_PATH,
        PS_PAGE,
        ps_nullable("data[].user", PS_USER_NULLABLE),
    ),
    ShapeCase(
        "planetscale/teams.json",
        "planetscale_sim",
        f"/v1/organizations/{ORG}/teams",
        PS_PAGE,
        ps_nullable("data[]", {"description"}) | ps_nullable("data[].members[]", PS_USER_NULLABLE),
    ),
    ShapeCase(
        "planetscale/team-members.json",
        "planetscale_sim",
        TEAM_MEMBERS_PATH,
        PS_PAGE,
        ps_nullable("data[].user", PS_USER_NULLABLE),
    ),
]


def served_document(served: Served, path: str, params: dict) -> dict:
    response = httpx.get(served.url + path, params=params, headers=served.headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("case", SHAPE_CASES, ids=lambda case: case.payload)
def test_nullable_fields_are_real_paths_of_the_payload(case):
    """A misspelt entry in the nullable lists would silently allow nothing."""
    assert case.nullable <= set(paths(payload(case.payload)))


@pytest.mark.parametrize("case", SHAPE_CASES, ids=lambda case: case.payload)
def test_the_simulator_sends_the_payload_shape(case, request):
    served = request.getfixturevalue(case.simulator)
    document = served_document(served, case.path, case.params)
    differences = shape_differences(payload(case.payload), document, case.nullable)
    assert not differences, "the simulator drifted from the payload:\n" + "\n".join(differences)


def team_ids(document: dict) -> list[list[str]]:
    return [scalr.team_ids_of(item, "/api/iacp/v3/account-users") for item in document["data"]]


def test_scalr_team_memberships_come_from_each_account_users_team_links():
    assert team_ids(payload("scalr/account-users.json"))[:3] == [
        ["team-tmhlublsnv43mt8", "team-v0os7i01qr63263l1"],
        ["team-tmhlublsnv43mt8"],
        [],
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("data", 0, "relationships", "teams", "data"), "team-tmhlublsnv43mt8"),
        (("data", 0, "relationships", "teams", "data"), {"type": "teams", "id": "team-1"}),
        (("data", 0, "relationships", "teams", "data", 0), {"type": "users", "id": "user-1"}),
        (("data", 0, "relationships", "teams", "data", 0, "id"), 7),
        (("data", 0, "relationships", "teams"), MISSING),
        (("data", 0, "relationships"), MISSING),
    ],
    ids=["a string", "an object", "not a team", "a numeric id", "no teams link", "no links"],
)
def test_scalr_team_links_not_as_documented_are_a_bad_response(path, value):
    """Read as "no teams", a malformed link list would remove every membership of the user."""
    with pytest.raises(errors.BadResponse):
        team_ids(with_value(payload("scalr/account-users.json"), path, value))


def test_scalr_included_teams_are_cut_to_references_while_decoding():
    """The hook drops only what the sync never reads: whole included teams, not links or users."""
    raw = (PAYLOADS / "scalr/account-users.json").read_text()
    plain = json.loads(raw)
    hooked = json.loads(raw, object_hook=scalr._reference_only("teams"))
    teams = [item for item in plain["included"] if item["type"] == "teams"]
    assert teams and all(item["relationships"]["users"]["data"] for item in teams)
    assert [item for item in hooked["included"] if item["type"] == "teams"] == [
        {"type": "teams", "id": item["id"]} for item in teams
    ]
    assert hooked["data"] == plain["data"]
    assert [i for i in hooked["included"] if i["type"] == "users"] == [
        i for i in plain["included"] if i["type"] == "users"
    ]
    assert team_ids(hooked) == team_ids(plain)


def test_scalr_team_member_links_are_dropped_while_decoding_and_the_team_reads_the_same():
    """A ``/teams`` item loses only its relationships: the sync reads its id and attributes."""
    raw = (PAYLOADS / "scalr/teams.json").read_text()
    plain = json.loads(raw)
    hooked = json.loads(raw, object_hook=scalr._without_relationships("teams"))
    assert any("relationships" in item for item in plain["data"])
    assert all("relationships" not in item for item in hooked["data"])
    assert [scalr.team_from_item(i, "acc-1") for i in hooked["data"]] == [
        scalr.team_from_item(i, "acc-1") for i in plain["data"]
    ]
    assert hooked["meta"] == plain["meta"]


def test_planetscale_team_member_lists_are_dropped_while_decoding_and_the_team_reads_the_same():
    """A team object's embedded members go; its fields and database lists stay."""
    raw = (PAYLOADS / "planetscale/teams.json").read_text()
    plain = json.loads(raw)
    hooked = json.loads(raw, object_hook=planetscale._without_members)
    assert all(item["members"] for item in plain["data"])
    assert all("members" not in item for item in hooked["data"])
    for before, after in zip(plain["data"], hooked["data"], strict=True):
        assert planetscale.team_from_item(after, "acme", "org") == planetscale.team_from_item(
            before, "acme", "org"
        )
        assert planetscale.team_database_grants(after, "acme") == (
            planetscale.team_database_grants(before, "acme")
        )
    assert {k: v for k, v in hooked.items() if k != "data"} == {
        k: v for k, v in plain.items() if k != "data"
    }


# -- access beyond membership: roles, access policies, tokens, team database access ------------
#
# The simulators do not serve these listings yet, so the payloads are also served as they are,
# over real HTTP, by ``RawPayloads``: the clients' whole read (requests, paging, decoding, scopes)
# is then proven against the recorded wire format itself.

SA_CI = "sa-v0o3a1b2c3d4e5f6"
SA_LEGACY = "sa-v0o3a1b2c3d4e5f7"
TOKEN_VALUE = "LEAKED-TOKEN-VALUE-a1b2c3"
READER, USER_ROLE = "role-t67mjtmabulckto", "role-t67mjtmauajto7g"
WS_ADMIN, PLACEHOLDER = "role-v0p2c9xq4m7k1a3b", "role-v0p2c9xq4m7k1a3c"
ENV, WS, ADA, PLATFORM = (
    "env-v0p1abcdefghijklm",
    "ws-v0p7ns9tcjerbbp3d",
    "user-svrcmmpcrkmit1g",
    "team-tmhlublsnv43mt8",
)
ROLE_NAMES = {READER: "Reader", USER_ROLE: "user", WS_ADMIN: "WorkspaceAdmin"}

EXPECTED_ROLES = [
    Role(READER, "Reader", "Read access to everything", 1, "*:read"),
    Role(USER_ROLE, "user", None, 1, "accounts:read,global-scope:read"),
    Role(
        WS_ADMIN,
        "WorkspaceAdmin",
        "Runs and state of one workspace",
        0,
        "runs:create,state-versions:read,workspaces:update",
    ),
    Role(PLACEHOLDER, "Placeholder", None, 0, ""),
]


def grant(resource_type, resource_id, name, principal_type, principal_id, role_id, binding):
    return Grant(
        resource_type,
        resource_id,
        name,
        principal_type,
        principal_id,
        role_id,
        ROLE_NAMES.get(role_id),
        binding,
    )


EXPECTED_GRANTS = [
    # environment over account: the first non-null of workspace, environment, account
    grant("environment", ENV, "production", "user", ADA, READER, "ap-v0p1q2r3s4t5u6v7w"),
    # a service account is a user principal; the account resource is the organisation
    grant("organization", ACCOUNT_ID, "acme", "user", SA_CI, USER_ROLE, "ap-v0p1q2r3s4t5u6v7x"),
    # workspace over environment and account; one grant per role of the policy
    grant("workspace", WS, "network-core", "team", PLATFORM, WS_ADMIN, "ap-v0p1q2r3s4t5u6v7y"),
    grant("workspace", WS, "network-core", "team", PLATFORM, READER, "ap-v0p1q2r3s4t5u6v7y"),
    # relationship keys absent (not even null): read as not set; is-system is a grant too
    grant("organization", ACCOUNT_ID, "acme", "user", ADA, USER_ROLE, "ap-v0p1q2r3s4t5u6v7z"),
    # ap-…v80 grants what ap-…v7w grants: one grant, the first policy its binding
]

EXPECTED_CREDENTIALS = [
    Credential(
        "at-v0p9k2m4n6q8r1s3t",
        "user",
        SA_CI,
        "gha-deploy",
        "GitHub Actions",
        "2026-01-05T10:00:00.000Z",
        "2027-01-05T10:00:00.000Z",
        "2026-08-20T06:12:44.000Z",
    ),
    Credential("at-v0p9k2m4n6q8r1s3u", "user", SA_CI, "nightly", None, "2025-11-30T23:59:59.000Z"),
]

PS_TEAM = "t9w2f7kd1e3z"
EXPECTED_PS_GRANTS = [
    Grant("database", "wzul1qu5i9wa", "orders", "team", PS_TEAM, "admin", "admin", None)
]

ACCOUNT = scalr_access.Account(ACCOUNT_ID, "acme")


def policy_grants(document: dict, role_names=ROLE_NAMES) -> list[Grant]:
    names = scalr_access.included_names(document, scalr_access.POLICIES_PATH)
    return [
        found
        for item in document["data"]
        for found in scalr_access.grants_from_policy(item, ACCOUNT, names, role_names)
    ]


def test_scalr_roles_normalise_to_the_recorded_objects():
    roles = [scalr_access.role_from_item(item) for item in payload("scalr/roles.json")["data"]]
    assert roles == EXPECTED_ROLES


def test_scalr_access_policies_normalise_to_one_grant_per_role():
    found = policy_grants(payload("scalr/access-policies.json"))
    # the duplicate policy (same resource, principal and role) repeats a grant here; the
    # client's read emits it once (test_scalr_access_is_read_over_http)
    duplicate = dataclasses.replace(EXPECTED_GRANTS[0], binding_id="ap-v0p1q2r3s4t5u6v80")
    assert found == [*EXPECTED_GRANTS, duplicate]


def test_scalr_grants_without_the_roles_listing_have_no_role_name():
    found = policy_grants(payload("scalr/access-policies.json"), role_names=None)
    assert {g.role for g in found} == {None}
    assert [g.role_id for g in found][:2] == [READER, USER_ROLE]


def test_scalr_tokens_normalise_without_their_value():
    raw = (PAYLOADS / "scalr/access-tokens.json").read_text()
    assert TOKEN_VALUE in raw  # the payload does carry one
    document = json.loads(raw, object_hook=scalr_access.drop_token_values)
    assert TOKEN_VALUE not in json.dumps(document)
    found = [scalr_access.credential_from_token(item, SA_CI) for item in document["data"]]
    assert found == EXPECTED_CREDENTIALS


def test_planetscale_team_objects_carry_their_database_grants():
    item = payload("planetscale/teams.json")["data"][0]
    assert planetscale.team_database_grants(item, ORG) == EXPECTED_PS_GRANTS
    analyst = {**item, "analyst_databases": item["databases"], "databases": []}
    assert planetscale.team_database_grants(analyst, ORG) == [
        Grant("database", "wzul1qu5i9wa", "orders", "team", PS_TEAM, "analyst", "analyst", None)
    ]
    for key in ("databases", "analyst_databases"):
        assert planetscale.team_database_grants(with_value(item, (key,), MISSING), ORG) is None


ACCESS_REJECTED = [
    ("scalr/roles.json", ("data", 0, "attributes", "is-system"), "yes"),
    ("scalr/roles.json", ("data", 0, "attributes", "name"), 3),
    ("scalr/roles.json", ("data", 0, "relationships", "permissions", "data"), "*:read"),
    ("scalr/roles.json", ("data", 0, "relationships", "permissions", "data", 0), "*:read"),
    ("scalr/access-policies.json", ("data", 0, "relationships", "roles"), MISSING),
    ("scalr/access-policies.json", ("data", 0, "relationships", "roles", "data"), None),
    ("scalr/access-policies.json", ("data", 0, "relationships", "user", "data"), None),
    ("scalr/access-policies.json", ("data", 1, "relationships", "account", "data"), None),
    ("scalr/access-policies.json", ("data", 0, "relationships", "user", "data"), ["user-1"]),
    ("scalr/access-policies.json", ("data", 0, "relationships", "user", "data", "id"), 7),
    ("scalr/access-policies.json", ("data", 0, "relationships"), "user-svrcmmpcrkmit1g"),
    ("scalr/access-tokens.json", ("data", 0, "attributes", "last-used-at"), "yesterday"),
    ("scalr/access-tokens.json", ("data", 0, "attributes", "name"), 12),
    ("scalr/access-tokens.json", ("data", 0, "attributes"), MISSING),
    ("planetscale/teams.json", ("data", 0, "databases"), None),
    ("planetscale/teams.json", ("data", 0, "databases", 0, "id"), MISSING),
    ("planetscale/teams.json", ("data", 0, "analyst_databases"), ["orders"]),
]


def normalise_access(name: str, document: dict) -> list:
    if name == "scalr/roles.json":
        return [scalr_access.role_from_item(item) for item in document["data"]]
    if name == "scalr/access-policies.json":
        return policy_grants(document)
    if name == "scalr/access-tokens.json":
        return [scalr_access.credential_from_token(item, SA_CI) for item in document["data"]]
    return [planetscale.team_database_grants(item, ORG) for item in document["data"]]


@pytest.mark.parametrize(
    ("name", "path", "value"), ACCESS_REJECTED, ids=lambda part: str(part).replace(" ", "")
)
def test_an_access_field_not_as_documented_is_a_bad_response(name, path, value):
    """Read as "nothing granted", a malformed policy or team would remove grants still held."""
    with pytest.raises(errors.BadResponse):
        normalise_access(name, with_value(payload(name), path, value))


def test_a_policy_whose_subject_or_scope_keys_are_all_absent_is_a_bad_response():
    document = payload("scalr/access-policies.json")
    for keys in (("user", "team", "service-account"), ("account", "environment", "workspace")):
        changed = copy.deepcopy(document)
        for key in keys:
            changed["data"][0]["relationships"].pop(key, None)
        with pytest.raises(errors.BadResponse):
            policy_grants(changed)


# -- the whole read, over HTTP, from the raw payloads ------------------------------------------


class RawPayloads:
    """A local HTTP server answering each path with a recorded payload (or an error status).

    Query strings are recorded, not matched: every listing here fits one page.
    """

    def __init__(self, routes: dict[str, object]):
        self.routes = routes
        self.requests: list[tuple[str, dict[str, str]]] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                served.requests.append((parts.path, dict(parse_qsl(parts.query))))
                answer = served.routes.get(parts.path, 404)
                if isinstance(answer, int):
                    status = answer
                    body = json.dumps({"errors": [{"status": str(status), "title": "refused"}]})
                else:
                    status, body = 200, (PAYLOADS / str(answer)).read_text()
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.api+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RawPayloads:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def params_of(self, path: str) -> list[dict[str, str]]:
        return [params for asked, params in self.requests if asked == path]


SCALR_ROUTES: dict[str, object] = {
    f"{SCALR_API}/accounts": "scalr/accounts.json",
    f"{SCALR_API}/account-users": "scalr/account-users.json",
    f"{SCALR_API}/service-accounts": "scalr/service-accounts.json",
    f"{SCALR_API}/teams": "scalr/teams.json",
    f"{SCALR_API}/roles": "scalr/roles.json",
    f"{SCALR_API}/access-policies": "scalr/access-policies.json",
    f"{SCALR_API}/service-accounts/{SA_CI}/access-tokens": "scalr/access-tokens.json",
    f"{SCALR_API}/service-accounts/{SA_LEGACY}/access-tokens": 403,
}


def _staging() -> Staging:
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    return Staging(sqlite_utils.Database(connection))


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE")
    try:
        yield lines
    finally:
        logger.remove(sink)


def scalr_snapshot(routes: dict[str, object], **switches) -> tuple[Snapshot, RawPayloads]:
    with RawPayloads(routes) as served:
        settings = scalr.ScalrSettings("acme", Secret("tok"), served.url, **switches)
        with scalr.make_http(settings) as http:
            snapshot = scalr.PROVIDER.fetch_snapshot(http, settings, _staging())
    return snapshot, served


def test_scalr_access_is_read_over_http(captured_logs):
    snapshot, served = scalr_snapshot(SCALR_ROUTES)
    assert snapshot.roles == EXPECTED_ROLES
    assert snapshot.grants == EXPECTED_GRANTS  # the duplicate policy emitted once
    assert snapshot.credentials == EXPECTED_CREDENTIALS
    # the refused token listing is that service account's failure alone: the run is partial
    assert [failure.scope for failure in snapshot.failures] == [
        f"service account {SA_LEGACY} access tokens"
    ]
    assert "HTTP 403" in snapshot.failures[0].error
    assert AccessScope("roles") in snapshot.access_scopes
    assert AccessScope("grants") in snapshot.access_scopes
    assert AccessScope("credentials", SA_CI) in snapshot.access_scopes
    assert AccessScope("credentials", SA_LEGACY) not in snapshot.access_scopes
    # exactly the requests docs/sync-rules.md lists
    assert served.params_of(f"{SCALR_API}/roles") == [
        {"filter[account]": f"in:null,{ACCOUNT_ID}", "page[size]": "100", "page[number]": "1"}
    ]
    assert served.params_of(f"{SCALR_API}/access-policies") == [
        {
            "filter[account]": ACCOUNT_ID,
            "include": "environment,workspace",
            "page[size]": "100",
            "page[number]": "1",
        }
    ]
    # the token value is nowhere: not in an object, a failure or a log line
    everything = repr((snapshot.credentials, snapshot.failures, captured_logs))
    assert TOKEN_VALUE not in everything


def test_scalr_switches_off_read_none_of_the_access_listings():
    snapshot, served = scalr_snapshot(SCALR_ROUTES, read_access_policies=False, read_tokens=False)
    assert (snapshot.roles, snapshot.grants, snapshot.credentials) == ([], [], [])
    assert snapshot.access_scopes == [] and snapshot.failures == []
    assert not [path for path, _ in served.requests if "role" in path or "access" in path]


def test_scalr_forbidden_policies_are_that_scopes_failure_and_roles_still_count():
    routes = {**SCALR_ROUTES, f"{SCALR_API}/access-policies": 403}
    snapshot, _ = scalr_snapshot(routes, read_tokens=False)
    assert [failure.scope for failure in snapshot.failures] == ["access policies"]
    assert snapshot.roles == EXPECTED_ROLES and snapshot.grants == []
    assert snapshot.access_scopes == [AccessScope("roles")]


def test_scalr_without_the_service_account_listing_no_token_is_read():
    routes = {**SCALR_ROUTES, f"{SCALR_API}/service-accounts": 503}
    snapshot, served = scalr_snapshot(routes, read_access_policies=False)
    assert [failure.scope for failure in snapshot.failures] == ["service accounts"]
    assert snapshot.credentials == [] and snapshot.access_scopes == []
    assert not [path for path, _ in served.requests if path.endswith("/access-tokens")]


def scalr_probe(routes: dict[str, object], **switches) -> str:
    with RawPayloads(routes) as served:
        settings = scalr.ScalrSettings("acme", Secret("tok"), served.url, **switches)
        with scalr.make_http(settings) as http:
            return scalr.probe(http, settings)


def test_scalr_check_reads_each_access_listing_once():
    line = scalr_probe(SCALR_ROUTES)
    assert "roles and access policies readable" in line
    assert "service-account tokens readable" in line
    assert TOKEN_VALUE not in line


@pytest.mark.parametrize(
    ("refused", "variable", "what"),
    [
        (f"{SCALR_API}/roles", "SCALR_READ_ACCESS_POLICIES", "roles"),
        (f"{SCALR_API}/access-policies", "SCALR_READ_ACCESS_POLICIES", "access policies"),
        (
            f"{SCALR_API}/service-accounts/{SA_CI}/access-tokens",
            "SCALR_READ_TOKENS",
            "service-account access tokens",
        ),
    ],
)
def test_scalr_check_says_which_switch_a_403_calls_for(refused, variable, what):
    with pytest.raises(errors.CredentialsRefused) as raised:
        scalr_probe({**SCALR_ROUTES, refused: 403})
    line = str(raised.value)
    assert line.startswith(f"Scalr: the token may not read {what}")
    assert "HTTP 403" in line and line.endswith(f"give it the permission, or set {variable}=false")
    assert "\n" not in line


def test_check_exits_1_with_one_line_naming_the_switch(tmp_path):
    routes = {**SCALR_ROUTES, f"{SCALR_API}/access-policies": 403}
    with RawPayloads(routes) as served:
        env = {"SCALR_API_TOKEN": "tok", "SCALR_ACCOUNT": "acme", "SCALR_BASE_URL": served.url}
        result = run_cli(["check", "--db", str(tmp_path / "a.db")], env)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SCALR_READ_ACCESS_POLICIES=false" in lines[0], result.stderr
    with RawPayloads(routes) as served:
        env = {"SCALR_API_TOKEN": "tok", "SCALR_ACCOUNT": "acme", "SCALR_BASE_URL": served.url}
        switched_off = {**env, "SCALR_READ_ACCESS_POLICIES": "false"}
        result = run_cli(["check", "--db", str(tmp_path / "a.db")], switched_off)
    assert result.exit_code == 0, result.stderr
    assert "Scalr: ok: account acme" in result.stdout


def test_scalr_check_skips_what_is_switched_off():
    routes = {**SCALR_ROUTES, f"{SCALR_API}/roles": 403, f"{SCALR_API}/access-policies": 403}
    line = scalr_probe(routes, read_access_policies=False, read_tokens=False)
    assert line.startswith("account acme")


PS_ROUTES: dict[str, object] = {
    "/v1/organizations": "planetscale/organizations.json",
    MEMBERS_PATH: "planetscale/members.json",
    f"/v1/organizations/{ORG}/teams": "planetscale/teams.json",
    TEAM_MEMBERS_PATH: "planetscale/team-members.json",
}


def planetscale_snapshot(routes: dict[str, object]) -> Snapshot:
    with RawPayloads(routes) as served:
        settings = planetscale.PlanetScaleSettings("id", Secret("tok"), served.url, 6000)
        with planetscale.make_http(settings) as http:
            return planetscale.PROVIDER.fetch_snapshot(http, settings, _staging())


def test_planetscale_team_listing_covers_each_team_that_carried_its_databases():
    snapshot = planetscale_snapshot(PS_ROUTES)
    assert snapshot.grants == EXPECTED_PS_GRANTS
    assert snapshot.access_scopes == [AccessScope("grants", PS_TEAM)]
    assert snapshot.failures == []


def test_planetscale_failed_team_listing_covers_no_grants():
    snapshot = planetscale_snapshot({**PS_ROUTES, f"/v1/organizations/{ORG}/teams": 503})
    assert snapshot.grants == [] and snapshot.access_scopes == []
    assert [failure.scope for failure in snapshot.failures] == [f"organization {ORG} teams"]
