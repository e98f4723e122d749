"""Scalr: one account's users, service accounts and teams, read into a Snapshot.

Only read-only GETs under ``<origin>/api/iacp/v3``, JSON:API, paged with ``page[number]`` and
``page[size]=100`` until ``meta.pagination.next-page`` is null. The ``fetch_*`` generators yield
raw JSON:API resources; the ``*_from_*`` functions normalise them; and ``read`` declares each
listing as a scope (``daemon/providers/scopes.py``).

The account and its account-users listing *are* the run: without them nobody's status is known,
so their failure fails the run. Service accounts and teams are scopes: when one fails its rows
are kept as they were and the run is partial (``docs/sync-rules.md#scopes``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from loguru import logger

from daemon import errors
from daemon.env import ConfigError, EnvValues, Secret, checked_origin, parse_bool
from daemon.http import HttpPolicy, ProviderHTTP
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
from daemon.providers.scopes import Scope, SnapshotBuilder
from store.model import Membership, MembershipScope, Organization, Team, User

NAME = "scalr"
LABEL = "Scalr"
API = "/api/iacp/v3"
PAGE_SIZE = 100
STATUS_MAP = {"Active": "enabled", "Pending": "enabled", "Inactive": "disabled"}
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalrSettings:
    account: str | None
    token: Secret
    origin: str  # scheme://host[:port], no path
    read_access_policies: bool = True  # SCALR_READ_ACCESS_POLICIES: roles and access policies
    read_tokens: bool = True  # SCALR_READ_TOKENS: each service account's access tokens


def read_settings(values: EnvValues) -> ScalrSettings | None:
    """``SCALR_API_TOKEN`` enables Scalr; ``SCALR_ACCOUNT`` or ``SCALR_BASE_URL`` says where.

    The two listing switches are checked even while Scalr is disabled, so that a mistyped value
    is found when the file is written, not when the token is added.
    """
    read_access_policies = parse_bool(
        "SCALR_READ_ACCESS_POLICIES", values.get("SCALR_READ_ACCESS_POLICIES"), True
    )
    read_tokens = parse_bool("SCALR_READ_TOKENS", values.get("SCALR_READ_TOKENS"), True)
    token = values.secret("SCALR_API_TOKEN")
    if token is None:
        return None
    account = values.get("SCALR_ACCOUNT")
    base_url = values.get("SCALR_BASE_URL")
    if account is not None and not _SUBDOMAIN.match(account):
        raise ConfigError(
            "SCALR_ACCOUNT",
            "must be the account's subdomain, such as 'acme' for https://acme.scalr.io",
        )
    if base_url is not None:
        origin = checked_origin("SCALR_BASE_URL", base_url, allowed_path=API)
    elif account is not None:
        origin = f"https://{account.lower()}.scalr.io"
    else:
        raise ConfigError(
            "SCALR_ACCOUNT",
            "required when SCALR_API_TOKEN is set (or set SCALR_BASE_URL for a self-hosted Scalr)",
        )
    return ScalrSettings(
        account=account,
        token=token,
        origin=origin,
        read_access_policies=read_access_policies,
        read_tokens=read_tokens,
    )


def make_http(
    settings: ScalrSettings, policy: HttpPolicy | None = None, stop: threading.Event | None = None
) -> ProviderHTTP:
    return ProviderHTTP(
        LABEL,
        settings.origin,
        {
            "Authorization": f"Bearer {settings.token.reveal()}",
            "Accept": "application/vnd.api+json",
        },
        describe_error=describe_error,
        credential_hint="check SCALR_API_TOKEN: the Scalr token was refused",
        secrets=(settings.token.reveal(),),
        policy=policy,
        stop=stop,
    )


def describe_error(response) -> str | None:
    """The first JSON:API error's detail (else title), as Scalr's own clients read it."""
    body = response.json()
    first = (body.get("errors") or [{}])[0]
    return first.get("detail") or first.get("title")


# -- fetch: raw JSON:API resources -------------------------------------------------------------


def _read_page(document: dict, path: str) -> Page:
    """One page's items and paging numbers, and the included users, keyed by id.

    The included users are the only included resources the sync reads (teams are listed on their
    own); the rest, such as included teams with their member lists, is dropped as soon as the
    page is read, so the pages fetched ahead hold little memory.
    """
    items = expect_list(document, "data", LABEL, path)
    meta = document.get("meta")
    pagination = meta.get("pagination") if isinstance(meta, dict) else None
    pagination = pagination if isinstance(pagination, dict) else {}
    return Page(
        items=items,
        next_page=optional_int(pagination.get("next-page"), LABEL, path, "next-page"),
        total_pages=optional_int(pagination.get("total-pages"), LABEL, path, "total-pages"),
        total_count=optional_int(pagination.get("total-count"), LABEL, path, "total-count"),
        included=_included_users(document),
    )


def _included_users(document: dict) -> dict[str, dict]:
    included = document.get("included")
    return {
        item["id"]: item
        for item in (included if isinstance(included, list) else [])
        if isinstance(item, dict)
        and item.get("type") == "users"
        and isinstance(item.get("id"), str)
    }


def _reference_only(resource_type: str) -> Callable[[dict], dict]:
    """A decoder hook that shrinks each whole ``resource_type`` resource to its reference.

    ``/account-users?include=user,teams`` includes every team of the page's users, each with
    the ids of all its members: a page of 100 account users decodes to about 12 MB at 100,000
    identities, and more as teams grow. The sync reads teams from ``/teams``, so an included
    team is cut down as soon as it is decoded and a page never holds more than one team's
    member list. Relationship references (no ``attributes``) pass unchanged.
    """

    def hook(value: dict) -> dict:
        if value.get("type") == resource_type and "attributes" in value:
            return {"type": resource_type, "id": value.get("id")}
        return value

    return hook


def _without_relationships(resource_type: str) -> Callable[[dict], dict]:
    """A decoder hook that drops the relationships of each whole ``resource_type`` resource.

    A ``/teams`` item links every member of the team; the sync reads a team's id and attributes
    only (memberships come from each account user's ``teams``), so a page of 100 teams would
    otherwise hold every member id of the account while it waits to be read. The list of one
    team is dropped as soon as that team is decoded.
    """

    def hook(value: dict) -> dict:
        if value.get("type") == resource_type and "attributes" in value:
            value.pop("relationships", None)
        return value

    return hook


def _pages(
    http: ProviderHTTP,
    resource: str,
    params: dict,
    key: Callable[[dict], str],
    object_hook: Callable[[dict], dict] | None = None,
) -> Iterator[Page]:
    return iterate_pages(
        http,
        f"{API}/{resource}",
        {**params, "page[size]": PAGE_SIZE},
        page_param="page[number]",
        read_page=_read_page,
        key=key,
        object_hook=object_hook,
    )


def fetch_account(http: ProviderHTTP, account_name: str | None) -> dict:
    """The ``accounts`` resource for the configured subdomain.

    When the name finds nothing and the token sees exactly one account, that one:
    self-hosted installations may name their account differently from their host.
    """
    path = f"{API}/accounts"
    if account_name:
        document = http.get_json(path, {"filter[name]": account_name.lower()})
        found = expect_list(document, "data", LABEL, path)
        if len(found) == 1:
            return found[0]
        if found:
            raise errors.ProviderError(
                LABEL,
                f"{len(found)} accounts are named '{account_name}'",
                path=path,
                hint="check SCALR_ACCOUNT",
            )
    document = http.get_json(path, {"page[size]": PAGE_SIZE})
    visible = expect_list(document, "data", LABEL, path)
    if len(visible) == 1 and _read_page(document, path).next_page is None:
        return visible[0]
    wanted = f"an account named '{account_name}'" if account_name else "exactly one account"
    raise errors.ProviderError(
        LABEL,
        f"the token does not see {wanted}",
        path=path,
        hint="check SCALR_ACCOUNT and that the token belongs to that account",
    )


def fetch_account_users(http: ProviderHTTP, account_id: str) -> Iterator[tuple[dict, dict]]:
    """Yield ``(account-user, included user)`` pairs; the included user carries email and name."""
    path = f"{API}/account-users"

    def user_id(item: dict) -> str:
        ident = _relation_id(item, "user")
        if ident is None:
            raise errors.BadResponse(LABEL, "listed an account user without its user", path=path)
        return ident

    params = {"filter[account]": account_id, "include": "user,teams"}
    for page in _pages(http, "account-users", params, user_id, _reference_only("teams")):
        included = page.included or {}
        for item in page.items:
            user = included.get(user_id(item))
            if user is None:
                raise errors.BadResponse(
                    LABEL, "listed an account user without its included user", path=path
                )
            yield item, user


def fetch_service_accounts(http: ProviderHTTP, account_id: str) -> Iterator[dict]:
    yield from _all_items(http, "service-accounts", {"filter[account]": account_id})


def fetch_teams(http: ProviderHTTP, account_id: str) -> Iterator[dict]:
    """The account's teams, each without its member links (see ``_without_relationships``)."""
    hook = _without_relationships("teams")
    yield from _all_items(http, "teams", {"filter[account]": account_id}, hook)


def _all_items(
    http: ProviderHTTP,
    resource: str,
    params: dict,
    object_hook: Callable[[dict], dict] | None = None,
) -> Iterator[dict]:
    path = f"{API}/{resource}"
    for page in _pages(http, resource, params, lambda item: _id(item, path), object_hook):
        yield from page.items


# -- normalise: JSON:API resources → snapshot objects ------------------------------------------


def user_from_account_user(account_user: dict, user: dict) -> User:
    path = f"{API}/account-users"
    attributes = _attributes(account_user, path)
    user_attributes = _attributes(user, path)
    provider_status = required_text(attributes, "status", LABEL, path)
    return User(
        id=_id(user, path),
        email=text(user_attributes, "email", LABEL, path),
        name=text(user_attributes, "full-name", LABEL, path),
        account_type="human",
        status=_status(provider_status),
        provider_status=provider_status,
        last_sign_in_at=timestamp(attributes.get("last-login-at"), LABEL, path),
        mfa_enabled=None,
        created_at=timestamp(user_attributes.get("created-at"), LABEL, path),
    )


def user_from_service_account(item: dict) -> User:
    path = f"{API}/service-accounts"
    attributes = _attributes(item, path)
    provider_status = required_text(attributes, "status", LABEL, path)
    return User(
        id=_id(item, path),
        email=text(attributes, "email", LABEL, path),
        name=text(attributes, "name", LABEL, path),
        account_type="service",
        status=_status(provider_status),
        provider_status=provider_status,
        last_sign_in_at=None,
        mfa_enabled=None,
        created_at=timestamp(attributes.get("created-at"), LABEL, path),
    )


def team_from_item(item: dict, account_id: str) -> Team:
    path = f"{API}/teams"
    attributes = _attributes(item, path)
    return Team(
        id=_id(item, path),
        organization_id=account_id,
        name=text(attributes, "name", LABEL, path),
        slug=None,
        description=text(attributes, "description", LABEL, path),
    )


def _status(provider_status: str | None) -> str:
    status = STATUS_MAP.get(provider_status or "")
    if status is None:
        # An unknown word is recorded as it is in provider_status; for access purposes a status
        # Scalr has not documented is not assumed to grant access.
        logger.warning("scalr: unknown account status {!r}; recorded as disabled", provider_status)
        return "disabled"
    return status


def _attributes(item: dict, path: str) -> dict:
    """A resource's attributes. Without them a user would read as having no status, and be
    recorded as disabled: a change that did not happen."""
    attributes = item.get("attributes")
    if not isinstance(attributes, dict):
        raise errors.BadResponse(LABEL, "listed an item without its attributes", path=path)
    return attributes


def _relation_id(item: dict, name: str) -> str | None:
    data = ((item.get("relationships") or {}).get(name) or {}).get("data")
    ident = data.get("id") if isinstance(data, dict) else None
    return ident if isinstance(ident, str) and ident else None


def team_ids_of(account_user: dict, path: str) -> list[str]:
    """The teams an account user belongs to, from ``relationships.teams.data``.

    This listing is the only source of team memberships, so anything but a list of team
    references is a bad response: read as "no teams", it would remove every membership.
    """
    relationships = account_user.get("relationships")
    teams = relationships.get("teams") if isinstance(relationships, dict) else None
    data = teams.get("data") if isinstance(teams, dict) else None
    if not isinstance(data, list):
        raise errors.BadResponse(LABEL, "listed an account user without its teams", path=path)
    return [_team_ref(ref, path) for ref in data]


def _team_ref(ref: object, path: str) -> str:
    if not isinstance(ref, dict) or ref.get("type") != "teams":
        raise errors.BadResponse(LABEL, "listed a team link that is not a team", path=path)
    return required_text(ref, "id", LABEL, path)


def _id(item: dict, path: str) -> str:
    return required_text(item, "id", LABEL, path)


# -- assemble ----------------------------------------------------------------------------------


def read(
    http: ProviderHTTP, settings: ScalrSettings, builder: SnapshotBuilder, progress: Progress
) -> None:
    """The account, its users (with their team memberships), service accounts and teams; with
    the access switches on, its roles, access policies and service-account tokens."""
    from daemon.providers import scalr_access  # it builds on this module's readers

    with builder.scope("account", required=True) as listing:
        account = fetch_account(http, settings.account)
        account_id = _id(account, f"{API}/accounts")
        name = (
            text(_attributes(account, f"{API}/accounts"), "name", LABEL, f"{API}/accounts")
            or settings.account
        )
        listing.add(Organization(id=account_id, name=name))

    users = builder.scope(
        "account users",
        memberships=[
            MembershipScope("organization", account_id, "human"),
            MembershipScope("team"),  # every team membership comes from the account-users listing
        ],
        required=True,
    )
    service_accounts = builder.scope(
        "service accounts", memberships=[MembershipScope("organization", account_id, "service")]
    )
    teams = builder.scope("teams", teams_of=[account_id])
    jobs: list[Callable[[], None]] = [
        lambda: _read_account_users(http, account_id, users, progress),
        lambda: _read_service_accounts(http, account_id, service_accounts, builder, settings),
        lambda: _read_teams(http, account_id, teams),
    ]
    if settings.read_access_policies:
        roles, policies = scalr_access.declare_policy_scopes(builder)
        the_account = scalr_access.Account(account_id, name)
        jobs.append(
            lambda: scalr_access.read_roles_and_policies(http, the_account, roles, policies)
        )
    read_concurrently(jobs)


def _read_account_users(http: ProviderHTTP, account_id: str, scope: Scope, progress: Progress):
    with scope:
        for count, (account_user, user) in enumerate(fetch_account_users(http, account_id), 1):
            person = scope.add(user_from_account_user(account_user, user))
            scope.add(Membership("organization", account_id, person.id, "member"))
            for team_id in team_ids_of(account_user, f"{API}/account-users"):
                scope.add(Membership("team", team_id, person.id, "member"))
            if count % 100 == 0:
                progress(f"scalr: {count} account users read")


def _read_service_accounts(
    http: ProviderHTTP,
    account_id: str,
    scope: Scope,
    builder: SnapshotBuilder,
    settings: ScalrSettings,
) -> None:
    """The service accounts; then, once that listing completed, each one's tokens."""
    from daemon.providers import scalr_access

    ids: list[str] = []
    with scope:
        for item in fetch_service_accounts(http, account_id):
            service_account = scope.add(user_from_service_account(item))
            scope.add(Membership("organization", account_id, service_account.id, "member"))
            ids.append(service_account.id)
    if settings.read_tokens and scope.completed:
        scalr_access.read_tokens(http, builder, ids)


def _read_teams(http: ProviderHTTP, account_id: str, scope: Scope) -> None:
    with scope:
        for item in fetch_teams(http, account_id):
            scope.add(team_from_item(item, account_id))


# -- check -------------------------------------------------------------------------------------


def probe(http: ProviderHTTP, settings: ScalrSettings) -> str:
    """The account resource, which needs the token to be valid for that account; then one
    cheap read of each access listing that is switched on (``scalr_access.probe_access``)."""
    from daemon.providers import scalr_access

    account = fetch_account(http, settings.account)
    name = _attributes(account, f"{API}/accounts").get("name")
    line = f"account {name} ({account.get('id')}) at {settings.origin}"
    access = scalr_access.probe_access(
        http, _id(account, f"{API}/accounts"), settings.read_access_policies, settings.read_tokens
    )
    return f"{line}; {access}" if access else line


PROVIDER = Provider(
    name=NAME,
    label=LABEL,
    env_prefix="SCALR",
    token_variable="SCALR_API_TOKEN",
    how_to_enable="SCALR_API_TOKEN (with SCALR_ACCOUNT)",
    read_settings=read_settings,
    make_http=make_http,
    read=read,
    probe=probe,
)
