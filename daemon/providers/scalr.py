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

from collections.abc import Callable, Iterator

from loguru import logger

from daemon import errors
from daemon.config import ScalrSettings
from daemon.http import HttpPolicy, ProviderHTTP
from daemon.paging import Page, expect_list, iterate_pages, optional_int
from store import timestamps
from store.model import (Membership, MembershipScope, Organization, ScopeFailure, Snapshot, Team,
                         User)

PROVIDER = "scalr"
API = "/api/iacp/v3"
PAGE_SIZE = 100
STATUS_MAP = {"Active": "enabled", "Pending": "enabled", "Inactive": "disabled"}

Progress = Callable[[str], None]


def make_http(settings: ScalrSettings, policy: HttpPolicy | None = None) -> ProviderHTTP:
    return ProviderHTTP(
        PROVIDER, settings.origin,
        {"Authorization": f"Bearer {settings.token.reveal()}",
         "Accept": "application/vnd.api+json"},
        describe_error=describe_error,
        credential_hint="check SCALR_API_TOKEN: the Scalr token was refused",
        secrets=(settings.token.reveal(),),
        policy=policy,
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


def _pages(http: ProviderHTTP, resource: str, params: dict) -> Iterator[Page]:
    return iterate_pages(http, f"{API}/{resource}", {**params, "page[size]": PAGE_SIZE},
                         page_param="page[number]", read_page=_read_page)


def fetch_account(http: ProviderHTTP, account_name: str | None) -> dict:
    """The ``accounts`` resource for the configured subdomain (or the token's only account)."""
    if account_name:
        document = http.get_json(f"{API}/accounts", {"filter[name]": account_name})
        found = expect_list(document, "data", PROVIDER, f"{API}/accounts")
        if len(found) == 1:
            return found[0]
    document = http.get_json(f"{API}/accounts", {"page[size]": PAGE_SIZE})
    visible = expect_list(document, "data", PROVIDER, f"{API}/accounts")
    if len(visible) == 1:
        return visible[0]
    wanted = f"an account named '{account_name}'" if account_name else "exactly one account"
    raise errors.ProviderError(
        PROVIDER, f"the token does not see {wanted} ({len(visible)} visible)",
        path=f"{API}/accounts",
        hint="check SCALR_ACCOUNT and that the token belongs to that account")


def fetch_account_users(http: ProviderHTTP, account_id: str) -> Iterator[tuple[dict, dict]]:
    """Yield ``(account-user, included user)`` pairs; the included user carries email and name."""
    path = f"{API}/account-users"
    counted: set[str] = set()
    last_total = None
    for page in _pages(http, "account-users",
                       {"filter[account]": account_id, "include": "user,teams"}):
        included = {(item.get("type"), item.get("id")): item
                    for item in page.document.get("included") or [] if isinstance(item, dict)}
        for item in page.items:
            user_id = _relation_id(item, "user")
            user = included.get(("users", user_id))
            if user_id is None or user is None:
                raise errors.BadResponse(PROVIDER, "listed an account user without its included "
                                         "user", path=path)
            counted.add(user_id)
            yield item, user
        last_total = page.total_count
    _check_complete(counted, last_total, path)


def fetch_service_accounts(http: ProviderHTTP, account_id: str) -> Iterator[dict]:
    yield from _all_items(http, "service-accounts", {"filter[account]": account_id})


def fetch_teams(http: ProviderHTTP, account_id: str) -> Iterator[dict]:
    yield from _all_items(http, "teams", {"filter[account]": account_id})


def _all_items(http: ProviderHTTP, resource: str, params: dict) -> Iterator[dict]:
    seen: set[str] = set()
    last_total = None
    for page in _pages(http, resource, params):
        for item in page.items:
            seen.add(_required(item, "id", f"{API}/{resource}"))
            yield item
        last_total = page.total_count
    _check_complete(seen, last_total, f"{API}/{resource}")


def _check_complete(seen: set[str], total: int | None, path: str) -> None:
    """Fewer distinct items than the listing's total means the pages shifted under us: an item
    may have been skipped, and a skipped item would be recorded as a removal."""
    if total is not None and len(seen) < total:
        raise errors.BadResponse(
            PROVIDER, f"listing changed while it was read ({len(seen)} of {total} items seen)",
            path=path, hint="nothing was recorded; the next sync will read it again")


# -- normalise: JSON:API resources → snapshot objects ------------------------------------------

def user_from_account_user(account_user: dict, user: dict) -> User:
    attributes = _attributes(account_user)
    user_attributes = _attributes(user)
    provider_status = attributes.get("status")
    return User(
        id=user["id"],
        email=user_attributes.get("email"),
        name=user_attributes.get("full-name"),
        account_type="human",
        status=_status(provider_status),
        provider_status=provider_status,
        last_sign_in_at=_timestamp(attributes.get("last-login-at")),
        mfa_enabled=None,
        created_at=_timestamp(user_attributes.get("created-at")),
    )


def user_from_service_account(item: dict) -> User:
    attributes = _attributes(item)
    provider_status = attributes.get("status")
    return User(
        id=item["id"],
        email=attributes.get("email"),
        name=attributes.get("name"),
        account_type="service",
        status=_status(provider_status),
        provider_status=provider_status,
        last_sign_in_at=None,
        mfa_enabled=None,
        created_at=_timestamp(attributes.get("created-at")),
    )


def team_from_item(item: dict, account_id: str) -> Team:
    attributes = _attributes(item)
    return Team(id=item["id"], organization_id=account_id, name=attributes.get("name"),
                slug=None, description=attributes.get("description"))


def _status(provider_status: str | None) -> str:
    status = STATUS_MAP.get(provider_status or "")
    if status is None:
        # An unknown word is recorded as it is in provider_status; for access purposes a status
        # Scalr has not documented is not assumed to grant access.
        logger.warning("scalr: unknown account status {!r}; recorded as disabled", provider_status)
        return "disabled"
    return status


def _timestamp(value) -> str | None:
    try:
        return timestamps.normalise(value)
    except (ValueError, AttributeError):
        raise errors.BadResponse(PROVIDER, f"sent a timestamp that is not ISO-8601: {value!r}")


def _attributes(item: dict) -> dict:
    attributes = item.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def _relation_id(item: dict, name: str) -> str | None:
    data = ((item.get("relationships") or {}).get(name) or {}).get("data")
    return data.get("id") if isinstance(data, dict) else None


def _relation_ids(item: dict, name: str) -> list[str]:
    data = ((item.get("relationships") or {}).get(name) or {}).get("data")
    return [ref["id"] for ref in data or [] if isinstance(ref, dict) and ref.get("id")]


def _required(item: dict, key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise errors.BadResponse(PROVIDER, f"listed an item without '{key}'", path=path)
    return value


# -- assemble ----------------------------------------------------------------------------------

def fetch_snapshot(http: ProviderHTTP, settings: ScalrSettings,
                   progress: Progress = lambda _: None) -> Snapshot:
    account = fetch_account(http, settings.account)
    account_id = _required(account, "id", f"{API}/accounts")
    organization = Organization(id=account_id,
                                name=_attributes(account).get("name") or settings.account)
    snapshot = Snapshot(provider=PROVIDER, organizations=[organization])
    users: dict[str, User] = {}
    memberships: list[Membership] = []

    for count, (account_user, user) in enumerate(fetch_account_users(http, account_id), 1):
        normalised = user_from_account_user(account_user, user)
        users[normalised.id] = normalised
        memberships.append(Membership("organization", account_id, normalised.id, "member"))
        memberships.extend(Membership("team", team_id, normalised.id, "member")
                           for team_id in _relation_ids(account_user, "teams"))
        if count % 100 == 0:
            progress(f"scalr: {count} account users read")

    service_accounts_complete = True
    try:
        for item in fetch_service_accounts(http, account_id):
            normalised = user_from_service_account(item)
            users[normalised.id] = normalised
            memberships.append(Membership("organization", account_id, normalised.id, "member"))
    except errors.ProviderError as exc:
        service_accounts_complete = False
        snapshot.failures.append(ScopeFailure("service accounts", str(exc)))
        users = {k: u for k, u in users.items() if u.account_type == "human"}
        memberships = [m for m in memberships if m.user_id in users]

    try:
        snapshot.teams = [team_from_item(item, account_id) for item in fetch_teams(http, account_id)]
        snapshot.team_scopes = {account_id}
    except errors.ProviderError as exc:
        snapshot.failures.append(ScopeFailure("teams", str(exc)))

    if http.stalled is not None:  # not one scope's failure: the provider stopped answering
        raise http.stalled
    snapshot.users = list(users.values())
    snapshot.memberships = memberships
    snapshot.membership_scopes = [
        MembershipScope("organization", account_id,
                        None if service_accounts_complete else "human"),
        MembershipScope("team"),
    ]
    return snapshot
