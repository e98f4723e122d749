"""Read one Scalr account's users, service accounts and teams into a Snapshot.

Only the GETs of CONTRACT §6, all under ``<origin>/api/iacp/v3``, JSON:API, paged with
``page[number]``/``page[size]=100`` until ``meta.pagination.next-page`` is null. The ``fetch_*``
generators yield raw JSON:API resources; the ``*_from_*`` functions normalise them; and
``fetch_snapshot`` assembles the lot with its scopes (see ``store.model.Snapshot``).

The account-users listing *is* the run: without it nobody's status is known, so its failure
fails the run. Service accounts and teams are scopes: when one fails its rows are kept as they
were and the run is partial.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from loguru import logger

from daemon import errors
from daemon.config import ScalrSettings
from daemon.http import HttpPolicy, ProviderHTTP
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

PROVIDER = "scalr"
API = "/api/iacp/v3"
PAGE_SIZE = 100
STATUS_MAP = {"Active": "enabled", "Pending": "enabled", "Inactive": "disabled"}

Progress = Callable[[str], None]


def make_http(
    settings: ScalrSettings, policy: HttpPolicy | None = None, stop: threading.Event | None = None
) -> ProviderHTTP:
    return ProviderHTTP(
        PROVIDER,
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
    items = expect_list(document, "data", PROVIDER, path)
    meta = document.get("meta")
    pagination = meta.get("pagination") if isinstance(meta, dict) else None
    pagination = pagination if isinstance(pagination, dict) else {}
    return Page(
        items=items,
        next_page=optional_int(pagination.get("next-page"), PROVIDER, path, "next-page"),
        total_pages=optional_int(pagination.get("total-pages"), PROVIDER, path, "total-pages"),
        total_count=optional_int(pagination.get("total-count"), PROVIDER, path, "total-count"),
        document=document,
    )


def _pages(
    http: ProviderHTTP, resource: str, params: dict, key: Callable[[dict], str]
) -> Iterator[Page]:
    return iterate_pages(
        http,
        f"{API}/{resource}",
        {**params, "page[size]": PAGE_SIZE},
        page_param="page[number]",
        read_page=_read_page,
        key=key,
    )


def fetch_account(http: ProviderHTTP, account_name: str | None) -> dict:
    """The ``accounts`` resource for the configured subdomain.

    When the name finds nothing and the token sees exactly one account, that one (CONTRACT §6):
    self-hosted installations may name their account differently from their host.
    """
    path = f"{API}/accounts"
    if account_name:
        document = http.get_json(path, {"filter[name]": account_name.lower()})
        found = expect_list(document, "data", PROVIDER, path)
        if len(found) == 1:
            return found[0]
        if found:
            raise errors.ProviderError(
                PROVIDER,
                f"{len(found)} accounts are named '{account_name}'",
                path=path,
                hint="check SCALR_ACCOUNT",
            )
    document = http.get_json(path, {"page[size]": PAGE_SIZE})
    visible = expect_list(document, "data", PROVIDER, path)
    if len(visible) == 1 and _read_page(document, path).next_page is None:
        return visible[0]
    wanted = f"an account named '{account_name}'" if account_name else "exactly one account"
    raise errors.ProviderError(
        PROVIDER,
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
            raise errors.BadResponse(PROVIDER, "listed an account user without its user", path=path)
        return ident

    for page in _pages(
        http, "account-users", {"filter[account]": account_id, "include": "user,teams"}, user_id
    ):
        included = {
            (item.get("type"), item.get("id")): item
            for item in page.document.get("included") or []
            if isinstance(item, dict)
        }
        for item in page.items:
            user = included.get(("users", user_id(item)))
            if user is None:
                raise errors.BadResponse(
                    PROVIDER, "listed an account user without its included user", path=path
                )
            yield item, user


def fetch_service_accounts(http: ProviderHTTP, account_id: str) -> Iterator[dict]:
    yield from _all_items(http, "service-accounts", {"filter[account]": account_id})


def fetch_teams(http: ProviderHTTP, account_id: str) -> Iterator[dict]:
    yield from _all_items(http, "teams", {"filter[account]": account_id})


def _all_items(http: ProviderHTTP, resource: str, params: dict) -> Iterator[dict]:
    path = f"{API}/{resource}"
    for page in _pages(http, resource, params, lambda item: _id(item, path)):
        yield from page.items


# -- normalise: JSON:API resources → snapshot objects ------------------------------------------


def user_from_account_user(account_user: dict, user: dict) -> User:
    path = f"{API}/account-users"
    attributes = _attributes(account_user)
    user_attributes = _attributes(user)
    provider_status = text(attributes, "status", PROVIDER, path)
    return User(
        id=_id(user, path),
        email=text(user_attributes, "email", PROVIDER, path),
        name=text(user_attributes, "full-name", PROVIDER, path),
        account_type="human",
        status=_status(provider_status),
        provider_status=provider_status,
        last_sign_in_at=timestamp(attributes.get("last-login-at"), PROVIDER, path),
        mfa_enabled=None,
        created_at=timestamp(user_attributes.get("created-at"), PROVIDER, path),
    )


def user_from_service_account(item: dict) -> User:
    path = f"{API}/service-accounts"
    attributes = _attributes(item)
    provider_status = text(attributes, "status", PROVIDER, path)
    return User(
        id=_id(item, path),
        email=text(attributes, "email", PROVIDER, path),
        name=text(attributes, "name", PROVIDER, path),
        account_type="service",
        status=_status(provider_status),
        provider_status=provider_status,
        last_sign_in_at=None,
        mfa_enabled=None,
        created_at=timestamp(attributes.get("created-at"), PROVIDER, path),
    )


def team_from_item(item: dict, account_id: str) -> Team:
    path = f"{API}/teams"
    attributes = _attributes(item)
    return Team(
        id=_id(item, path),
        organization_id=account_id,
        name=text(attributes, "name", PROVIDER, path),
        slug=None,
        description=text(attributes, "description", PROVIDER, path),
    )


def _status(provider_status: str | None) -> str:
    status = STATUS_MAP.get(provider_status or "")
    if status is None:
        # An unknown word is recorded as it is in provider_status; for access purposes a status
        # Scalr has not documented is not assumed to grant access.
        logger.warning("scalr: unknown account status {!r}; recorded as disabled", provider_status)
        return "disabled"
    return status


def _attributes(item: dict) -> dict:
    attributes = item.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def _relation_id(item: dict, name: str) -> str | None:
    data = ((item.get("relationships") or {}).get(name) or {}).get("data")
    ident = data.get("id") if isinstance(data, dict) else None
    return ident if isinstance(ident, str) and ident else None


def _relation_ids(item: dict, name: str) -> list[str]:
    data = ((item.get("relationships") or {}).get(name) or {}).get("data")
    return [
        ref["id"]
        for ref in data or []
        if isinstance(ref, dict) and isinstance(ref.get("id"), str) and ref["id"]
    ]


def _id(item: dict, path: str) -> str:
    return text(item, "id", PROVIDER, path, required=True)


# -- assemble ----------------------------------------------------------------------------------


def fetch_snapshot(
    http: ProviderHTTP, settings: ScalrSettings, progress: Progress = lambda _: None
) -> Snapshot:
    account = fetch_account(http, settings.account)
    account_id = _id(account, f"{API}/accounts")
    organization = Organization(
        id=account_id,
        name=text(_attributes(account), "name", PROVIDER, f"{API}/accounts") or settings.account,
    )
    snapshot = Snapshot(provider=PROVIDER, organizations=[organization])
    users: dict[str, User] = {}
    memberships: list[Membership] = []

    for count, (account_user, user) in enumerate(fetch_account_users(http, account_id), 1):
        normalised = user_from_account_user(account_user, user)
        users[normalised.id] = normalised
        memberships.append(Membership("organization", account_id, normalised.id, "member"))
        memberships.extend(
            Membership("team", team_id, normalised.id, "member")
            for team_id in _relation_ids(account_user, "teams")
        )
        if count % 100 == 0:
            progress(f"scalr: {count} account users read")

    try:
        service_accounts = [
            user_from_service_account(item) for item in fetch_service_accounts(http, account_id)
        ]
    except errors.ProviderError as exc:
        service_accounts = None
        snapshot.failures.append(ScopeFailure("service accounts", str(exc)))
    for service_account in service_accounts or []:
        users[service_account.id] = service_account
        memberships.append(Membership("organization", account_id, service_account.id, "member"))

    try:
        snapshot.teams = [
            team_from_item(item, account_id) for item in fetch_teams(http, account_id)
        ]
        snapshot.team_scopes = {account_id}
    except errors.ProviderError as exc:
        snapshot.failures.append(ScopeFailure("teams", str(exc)))

    http.raise_if_interrupted()  # provider-wide, not one scope's failure
    snapshot.users = list(users.values())
    snapshot.memberships = memberships
    snapshot.membership_scopes = [
        MembershipScope(
            "organization", account_id, None if service_accounts is not None else "human"
        ),
        MembershipScope("team"),
    ]
    return snapshot
