"""PlanetScale: every organisation a service token reaches, read into a Snapshot.

Only read-only GETs under ``<origin>/v1``, with ``Authorization: <id>:<token>`` (no ``Bearer``),
paged with ``page``/``per_page=100`` until ``next_page`` is null; the next URL is rebuilt from
the configured origin, never taken from ``next_page_url``.

The organisation listing is the run. Each organisation's members, its teams, and each team's
members are scopes: a failure there (a 404 when the token lacks ``read_organization`` on that
organisation, an outage that outlasted the retries) keeps that scope's last known state and makes
the run partial (``docs/sync-rules.md#scopes``). Listings are read concurrently, within a
client-side request budget below PlanetScale's documented 600 requests a minute.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

from daemon import errors
from daemon.env import ConfigError, EnvValues, Secret, checked_origin
from daemon.http import HttpPolicy, ProviderHTTP, RateLimiter
from daemon.paging import (
    Page,
    expect_list,
    iterate_pages,
    optional_int,
    required_text,
    text,
    timestamp,
)
from daemon.providers.base import Progress, Provider
from daemon.providers.pool import read_concurrently
from daemon.providers.scopes import SnapshotBuilder
from store.model import (
    AccessScope,
    Grant,
    Membership,
    MembershipScope,
    Organization,
    Team,
    User,
)

NAME = "planetscale"
LABEL = "PlanetScale"
DEFAULT_API_URL = "https://api.planetscale.com"
API = "/v1"
PER_PAGE = 100
# 10% under PlanetScale's published 600 requests a minute, so clock skew never trips it.
DEFAULT_REQUESTS_PER_MINUTE = 540
# Below this, waiting for the client-side limiter would eat into each request's deadline.
MIN_REQUESTS_PER_MINUTE = 30


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanetScaleSettings:
    token_id: str
    token: Secret
    origin: str
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE


def read_settings(values: EnvValues) -> PlanetScaleSettings | None:
    """``PLANETSCALE_SERVICE_TOKEN`` (``<id>:<value>``) enables PlanetScale."""
    token = values.secret("PLANETSCALE_SERVICE_TOKEN")
    if token is None:
        return None
    token_id, colon, token_value = token.reveal().partition(":")
    if not colon or not token_id or not token_value or re.search(r"\s", token.reveal()):
        raise ConfigError(
            "PLANETSCALE_SERVICE_TOKEN",
            "expected '<token-id>:<token-value>': the service token's id, a colon, then the "
            "token itself",
        )
    origin = checked_origin(
        "PLANETSCALE_API_URL", values.get("PLANETSCALE_API_URL", DEFAULT_API_URL), allowed_path=API
    )
    raw_budget = values.get("PLANETSCALE_REQUESTS_PER_MINUTE", str(DEFAULT_REQUESTS_PER_MINUTE))
    if not raw_budget.isdigit() or int(raw_budget) < MIN_REQUESTS_PER_MINUTE:
        raise ConfigError(
            "PLANETSCALE_REQUESTS_PER_MINUTE",
            f"must be a whole number of at least {MIN_REQUESTS_PER_MINUTE}",
        )
    return PlanetScaleSettings(
        token_id=token_id,
        token=Secret(token_value),
        origin=origin,
        requests_per_minute=int(raw_budget),
    )


def make_http(
    settings: PlanetScaleSettings,
    policy: HttpPolicy | None = None,
    stop: threading.Event | None = None,
) -> ProviderHTTP:
    return ProviderHTTP(
        LABEL,
        settings.origin,
        {
            "Authorization": f"{settings.token_id}:{settings.token.reveal()}",
            "Accept": "application/json",
        },
        describe_error=describe_error,
        credential_hint="check PLANETSCALE_SERVICE_TOKEN: the PlanetScale service token was "
        "refused",
        secrets=(settings.token.reveal(),),
        policy=policy,
        stop=stop,
        limiter=RateLimiter(settings.requests_per_minute),
    )


def describe_error(response) -> str | None:
    body = response.json()
    return body.get("message") or body.get("code")


# -- fetch: raw JSON objects -------------------------------------------------------------------


def _read_page(document: dict, path: str) -> Page:
    return Page(
        items=expect_list(document, "data", LABEL, path),
        next_page=optional_int(document.get("next_page"), LABEL, path, "next_page"),
        total_pages=optional_int(document.get("total_pages"), LABEL, path, "total_pages"),
        total_count=optional_int(document.get("total_count"), LABEL, path, "total_count"),
    )


def _all_items(
    http: ProviderHTTP,
    path: str,
    key: Callable[[dict], str],
    object_hook: Callable[[dict], dict] | None = None,
) -> Iterator[dict]:
    for page in iterate_pages(
        http,
        path,
        {"per_page": PER_PAGE},
        page_param="page",
        read_page=_read_page,
        key=key,
        object_hook=object_hook,
    ):
        yield from page.items


def _org_path(org_name: str) -> str:
    return f"{API}/organizations/{quote(org_name, safe='')}"


def fetch_organizations(http: ProviderHTTP) -> Iterator[dict]:
    path = f"{API}/organizations"
    yield from _all_items(http, path, lambda item: _id(item, path))


def fetch_members(http: ProviderHTTP, org_name: str) -> Iterator[dict]:
    path = f"{_org_path(org_name)}/members"
    yield from _all_items(http, path, lambda item: _user_id(item, path))


def fetch_teams(http: ProviderHTTP, org_name: str) -> Iterator[dict]:
    """The organisation's teams, without the member lists they embed (``_without_members``)."""
    path = f"{_org_path(org_name)}/teams"
    yield from _all_items(http, path, lambda item: _id(item, path), _without_members)


def _without_members(value: dict) -> dict:
    """A decoder hook that drops the ``members`` list a team object embeds.

    Each team object carries every member as a whole user object; the sync reads a team's
    memberships from the team's own member listing, which is paged, so a page of 100 teams would
    otherwise hold a copy of much of the organisation while it waits to be read. One team's list
    is dropped as soon as that team is decoded. Only a ``members`` that is a list goes: anything
    else is left for the reader to judge.
    """
    if isinstance(value.get("members"), list):
        del value["members"]
    return value


def fetch_team_members(http: ProviderHTTP, org_name: str, team_slug: str) -> Iterator[dict]:
    path = f"{_org_path(org_name)}/teams/{quote(team_slug, safe='')}/members"
    yield from _all_items(http, path, lambda item: _user_id(item, path))


# -- normalise ---------------------------------------------------------------------------------


def user_from_member(item: dict, path: str) -> User:
    user_id = _user_id(item, path)  # also proves ``user`` is an object
    user = item["user"]
    two_factor = user.get("two_factor_auth_configured")
    if two_factor is not None and not isinstance(two_factor, bool):
        raise errors.BadResponse(
            LABEL, "sent a non-boolean 'two_factor_auth_configured'", path=path
        )
    return User(
        id=user_id,
        email=text(user, "email", LABEL, path),
        name=text(user, "name", LABEL, path) or text(user, "display_name", LABEL, path),
        account_type="human",
        status="enabled",
        provider_status=None,
        last_sign_in_at=None,
        mfa_enabled=None if two_factor is None else int(two_factor),
        created_at=timestamp(user.get("created_at"), LABEL, path),
    )


def organization_from_item(item: dict) -> Organization:
    path = f"{API}/organizations"
    return Organization(id=_id(item, path), name=required_text(item, "name", LABEL, path))


def team_from_item(item: dict, org_name: str, organization_id: str) -> Team:
    path = f"{_org_path(org_name)}/teams"
    return Team(
        id=_id(item, path),
        organization_id=organization_id,
        name=text(item, "name", LABEL, path),
        slug=required_text(item, "slug", LABEL, path),
        description=text(item, "description", LABEL, path),
    )


#: A team object's database lists and the role each grants: ``databases`` makes the team's
#: members Database Administrators, ``analyst_databases`` analysts (added after 2025-12).
DATABASE_ROLES = (("databases", "admin"), ("analyst_databases", "analyst"))


def team_database_grants(item: dict, org_name: str) -> list[Grant] | None:
    """The team's database grants, or None when the team object does not carry both keys.

    Without them the object says nothing about database access (older API versions): its
    grants are then neither read nor complete. With them, the lists are the team's whole
    database access, so ``[]`` means it grants none.
    """
    path = f"{_org_path(org_name)}/teams"
    if not all(key in item for key, _ in DATABASE_ROLES):
        return None
    team_id = _id(item, path)
    grants: list[Grant] = []
    for key, role in DATABASE_ROLES:
        databases = item[key]
        if not isinstance(databases, list) or not all(isinstance(db, dict) for db in databases):
            raise errors.BadResponse(
                LABEL, f"sent '{key}' that is not a list of objects", path=path
            )
        grants.extend(
            Grant(
                resource_type="database",
                resource_id=_id(db, path),
                resource_name=text(db, "name", LABEL, path),
                principal_type="team",
                principal_id=team_id,
                role_id=role,
                role=role,
                binding_id=None,
            )
            for db in databases
        )
    return grants


def member_role(item: dict, org_name: str) -> str:
    """The org role word as PlanetScale sends it; unknown words (``analyst``, …) are kept.

    A missing role is an error rather than a guess: recording "member" for someone who is
    really an admin would be a change that did not happen.
    """
    role = item.get("role")
    if not isinstance(role, str) or not role:
        raise errors.BadResponse(
            LABEL, "listed a member without a role", path=f"{_org_path(org_name)}/members"
        )
    return role


def _id(item: dict, path: str) -> str:
    return required_text(item, "id", LABEL, path)


def _user_id(item: dict, path: str) -> str:
    user = item.get("user")
    if not isinstance(user, dict):
        raise errors.BadResponse(LABEL, "listed a member without its user", path=path)
    return _id(user, path)


# -- assemble ----------------------------------------------------------------------------------


def read(
    http: ProviderHTTP, settings: PlanetScaleSettings, builder: SnapshotBuilder, progress: Progress
) -> None:
    """Organisations; then every organisation's members and teams; then every team's members.

    Each step's listings are read at the same time; a step starts when the one before it has
    named what it needs (the organisations, then their teams), and every scope is declared
    before its step starts, so the snapshot's order never depends on timing.
    """
    with builder.scope("organizations", required=True) as listing:
        organizations = [
            listing.add(organization_from_item(item)) for item in fetch_organizations(http)
        ]
    per_org = [_OrgListings(org, builder) for org in organizations]
    read_concurrently(job for listings in per_org for job in listings.jobs(http, progress))
    team_jobs = [
        _team_members_job(http, builder, listings.org, team)
        for listings in per_org
        for team in listings.teams
    ]
    read_concurrently(team_jobs)


class _OrgListings:
    """One organisation's member and team listings, declared in this order."""

    def __init__(self, org: Organization, builder: SnapshotBuilder):
        self.org = org
        self.name = org.name or org.id
        self.members = builder.scope(
            f"organization {self.name} members",
            memberships=[MembershipScope("organization", org.id)],
        )
        self.team_listing = builder.scope(f"organization {self.name} teams", teams_of=[org.id])
        self.teams: list[Team] = []  # none when the team listing failed (a failed scope)

    def jobs(self, http: ProviderHTTP, progress: Progress) -> list[Callable[[], None]]:
        return [lambda: self._read_members(http, progress), lambda: self._read_teams(http)]

    def _read_members(self, http: ProviderHTTP, progress: Progress) -> None:
        path = f"{_org_path(self.name)}/members"
        count = 0
        with self.members as listing:
            for item in fetch_members(http, self.name):
                user = listing.add(user_from_member(item, path))
                listing.add(
                    Membership("organization", self.org.id, user.id, member_role(item, self.name))
                )
                count += 1
        progress(f"planetscale: {self.name}: {count} members")

    def _read_teams(self, http: ProviderHTTP) -> None:
        """The teams, and from the same objects each team's database access: a team that
        carries the database keys adds its grants and covers them (``AccessScope("grants",
        team id)``), so a database dropped from its lists is a removal once the listing
        completes."""
        with self.team_listing as listing:
            for item in fetch_teams(http, self.name):
                team = listing.add(team_from_item(item, self.name, self.org.id))
                self.teams.append(team)
                grants = team_database_grants(item, self.name)
                if grants is not None:
                    for grant in grants:
                        listing.add(grant)
                    listing.cover(AccessScope("grants", team.id))
        if not listing.completed:
            self.teams = []


def _team_members_job(
    http: ProviderHTTP, builder: SnapshotBuilder, org: Organization, team: Team
) -> Callable[[], None]:
    """Declare one team's member listing now; the returned job reads it."""
    org_name, slug = org.name or org.id, team.slug or team.id
    scope = builder.scope(
        f"organization {org_name} team {slug} members",
        memberships=[MembershipScope("team", team.id)],
    )
    path = f"{_org_path(org_name)}/teams/{quote(slug, safe='')}/members"

    def read_team_members() -> None:
        with scope:
            for item in fetch_team_members(http, org_name, slug):
                user = scope.add(user_from_member(item, path))
                scope.add(Membership("team", team.id, user.id, "member"))

    return read_team_members


# -- check -------------------------------------------------------------------------------------


def probe(http: ProviderHTTP, settings: PlanetScaleSettings) -> str:
    """List organisations, then prove the token can read each one's members.

    Listing organisations needs no grant; reading members needs ``read_organization``, which
    every sync needs. A 404 there is PlanetScale's way of saying the grant is missing.
    """
    path = f"{API}/organizations"
    document = http.get_json(path, {"page": 1, "per_page": PER_PAGE})
    names = [str(org.get("name")) for org in expect_list(document, "data", LABEL, path)]
    for name in names:
        try:
            http.get_json(f"{_org_path(name)}/members", {"page": 1, "per_page": 1})
        except errors.NotFound:
            raise errors.CredentialsRefused(
                LABEL,
                f"the service token cannot read the members of {name}",
                hint="grant the token the read_organization access on that organisation",
            ) from None
    more = " and more" if document.get("next_page") else ""
    return f"{len(names)} organisation(s) readable at {settings.origin}: {', '.join(names)}{more}"


PROVIDER = Provider(
    name=NAME,
    label=LABEL,
    env_prefix="PLANETSCALE",
    token_variable="PLANETSCALE_SERVICE_TOKEN",
    how_to_enable="PLANETSCALE_SERVICE_TOKEN",
    read_settings=read_settings,
    make_http=make_http,
    read=read,
    probe=probe,
)
