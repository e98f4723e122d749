"""Read every PlanetScale organisation a service token reaches into a Snapshot.

Only the GETs of CONTRACT §6 under ``<origin>/v1``, with ``Authorization: <id>:<token>`` (no
``Bearer``), paged with ``page``/``per_page=100`` until ``next_page`` is null; the next URL is
rebuilt from the configured origin, never taken from ``next_page_url``.

The organisation listing is the run. Each organisation's members, its teams, and each team's
members are scopes: a failure there (a 404 when the token lacks ``read_organization`` on that
organisation, an outage that outlasted the retries) keeps that scope's last known state and makes
the run partial. Team member lists are read concurrently, within a client-side request budget
below PlanetScale's documented 600 requests a minute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from daemon import errors
from daemon.config import PlanetScaleSettings
from daemon.http import HttpPolicy, ProviderHTTP, RateLimiter
from daemon.paging import Page, expect_list, iterate_pages, optional_int, text, timestamp
from store.model import (
    Membership,
    MembershipScope,
    Organization,
    ScopeFailure,
    Snapshot,
    Team,
    User,
)

PROVIDER = "planetscale"
API = "/v1"
PER_PAGE = 100
TEAM_MEMBER_WORKERS = 4

Progress = Callable[[str], None]


def make_http(
    settings: PlanetScaleSettings,
    policy: HttpPolicy | None = None,
    stop: threading.Event | None = None,
) -> ProviderHTTP:
    return ProviderHTTP(
        PROVIDER,
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
        items=expect_list(document, "data", PROVIDER, path),
        next_page=optional_int(document.get("next_page"), PROVIDER, path, "next_page"),
        total_pages=optional_int(document.get("total_pages"), PROVIDER, path, "total_pages"),
        total_count=optional_int(document.get("total_count"), PROVIDER, path, "total_count"),
    )


def _all_items(http: ProviderHTTP, path: str, key: Callable[[dict], str]) -> Iterator[dict]:
    for page in iterate_pages(
        http, path, {"per_page": PER_PAGE}, page_param="page", read_page=_read_page, key=key
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
    path = f"{_org_path(org_name)}/teams"
    yield from _all_items(http, path, lambda item: _id(item, path))


def fetch_team_members(http: ProviderHTTP, org_name: str, team_slug: str) -> Iterator[dict]:
    path = f"{_org_path(org_name)}/teams/{quote(team_slug, safe='')}/members"
    yield from _all_items(http, path, lambda item: _user_id(item, path))


# -- normalise ---------------------------------------------------------------------------------


def user_from_member(item: dict, path: str) -> User:
    user = item["user"]
    two_factor = user.get("two_factor_auth_configured")
    if two_factor is not None and not isinstance(two_factor, bool):
        raise errors.BadResponse(
            PROVIDER, "sent a non-boolean 'two_factor_auth_configured'", path=path
        )
    return User(
        id=_user_id(item, path),
        email=text(user, "email", PROVIDER, path),
        name=text(user, "name", PROVIDER, path) or text(user, "display_name", PROVIDER, path),
        account_type="human",
        status="enabled",
        provider_status=None,
        last_sign_in_at=None,
        mfa_enabled=None if two_factor is None else int(two_factor),
        created_at=timestamp(user.get("created_at"), PROVIDER, path),
    )


def organization_from_item(item: dict) -> Organization:
    path = f"{API}/organizations"
    return Organization(id=_id(item, path), name=text(item, "name", PROVIDER, path, required=True))


def team_from_item(item: dict, org_name: str, organization_id: str) -> Team:
    path = f"{_org_path(org_name)}/teams"
    return Team(
        id=_id(item, path),
        organization_id=organization_id,
        name=text(item, "name", PROVIDER, path),
        slug=text(item, "slug", PROVIDER, path, required=True),
        description=text(item, "description", PROVIDER, path),
    )


def _role(item: dict, org_name: str) -> str:
    """The org role word as PlanetScale sends it; unknown words (``analyst``, …) are kept.

    A missing role is an error rather than a guess: recording "member" for someone who is
    really an admin would be a change that did not happen.
    """
    role = item.get("role")
    if not isinstance(role, str) or not role:
        raise errors.BadResponse(
            PROVIDER, "listed a member without a role", path=f"{_org_path(org_name)}/members"
        )
    return role


def _user_id(item: dict, path: str) -> str:
    user = item.get("user")
    if not isinstance(user, dict):
        raise errors.BadResponse(PROVIDER, "listed a member without its user", path=path)
    return _id(user, path)


def _id(item: dict, path: str) -> str:
    return text(item, "id", PROVIDER, path, required=True)


# -- assemble ----------------------------------------------------------------------------------


def fetch_snapshot(
    http: ProviderHTTP, settings: PlanetScaleSettings, progress: Progress = lambda _: None
) -> Snapshot:
    snapshot = Snapshot(provider=PROVIDER)
    snapshot.organizations = [organization_from_item(item) for item in fetch_organizations(http)]
    users: dict[str, User] = {}
    memberships: list[Membership] = []
    team_jobs: list[tuple[Organization, Team]] = []

    for org in snapshot.organizations:
        members: list = []
        try:
            path = f"{_org_path(org.name)}/members"
            members = [
                (user_from_member(item, path), _role(item, org.name))
                for item in fetch_members(http, org.name)
            ]
        except errors.ProviderError as exc:
            snapshot.failures.append(ScopeFailure(f"organization {org.name} members", str(exc)))
        else:
            for user, role in members:
                users[user.id] = user
                memberships.append(Membership("organization", org.id, user.id, role))
            snapshot.membership_scopes.append(MembershipScope("organization", org.id))
        try:
            teams = [team_from_item(item, org.name, org.id) for item in fetch_teams(http, org.name)]
        except errors.ProviderError as exc:
            snapshot.failures.append(ScopeFailure(f"organization {org.name} teams", str(exc)))
            continue
        snapshot.teams.extend(teams)
        snapshot.team_scopes.add(org.id)
        team_jobs.extend((org, team) for team in teams)
        progress(f"planetscale: {org.name}: {len(members)} members, {len(teams)} teams")

    def read_team(job: tuple[Organization, Team]) -> list[User]:
        org, team = job
        path = f"{_org_path(org.name)}/teams/{team.slug}/members"
        return [
            user_from_member(item, path) for item in fetch_team_members(http, org.name, team.slug)
        ]

    with ThreadPoolExecutor(max_workers=TEAM_MEMBER_WORKERS) as pool:
        futures = [(job, pool.submit(read_team, job)) for job in team_jobs]
        for (org, team), future in futures:
            try:
                team_users = future.result()
            except errors.ProviderError as exc:
                snapshot.failures.append(
                    ScopeFailure(
                        f"organization {org.name} team {team.slug or team.id} members", str(exc)
                    )
                )
                continue
            for user in team_users:
                users.setdefault(user.id, user)
                memberships.append(Membership("team", team.id, user.id, "member"))
            snapshot.membership_scopes.append(MembershipScope("team", team.id))

    http.raise_if_interrupted()  # provider-wide, not one scope's failure
    snapshot.users = list(users.values())
    snapshot.memberships = memberships
    return snapshot
