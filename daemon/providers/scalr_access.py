"""Scalr access beyond membership: roles, access policies and service-account tokens.

Three listings, each a scope (``daemon/providers/scopes.py``), switched by two settings:

* ``SCALR_READ_ACCESS_POLICIES``: ``GET /roles?filter[account]=in:null,<acc>`` (system and
  custom roles) and ``GET /access-policies?filter[account]=<acc>&include=environment,workspace``
  (one grant per role of each policy);
* ``SCALR_READ_TOKENS``: ``GET /service-accounts/{sa}/access-tokens`` for each service account
  the service-account listing read, one scope per service account.

Built to Scalr's published API spec and its Terraform provider. Relationship keys may be
absent or ``{"data": null}``; both read as "not set". An access token's ``token`` attribute
is dropped while its page is decoded, so the value never exists in a snapshot object, a log
line or an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from daemon import errors
from daemon.http import ProviderHTTP
from daemon.paging import Page, expect_list, iterate_pages, optional_int, text, timestamp
from daemon.providers.pool import read_concurrently
from daemon.providers.scalr import API, LABEL, PAGE_SIZE, _attributes, _id
from daemon.providers.scopes import Scope, SnapshotBuilder
from store.model import AccessScope, Credential, Grant, Role

ROLES_PATH = f"{API}/roles"
POLICIES_PATH = f"{API}/access-policies"

#: The subject of a policy, in the order Scalr's Terraform provider reads it, and the principal
#: type each becomes: a service account is a ``user`` principal (``users.id`` is its ``sa-…``).
SUBJECTS = (("user", "user"), ("team", "team"), ("service-account", "user"))
#: The scope of a policy, first non-null wins (an env- or ws-scoped policy may name the account
#: too), and the resource type each becomes.
RESOURCES = (
    ("workspace", "workspace"),
    ("environment", "environment"),
    ("account", "organization"),
)


def tokens_path(service_account_id: str) -> str:
    return f"{API}/service-accounts/{service_account_id}/access-tokens"


# -- decoding ----------------------------------------------------------------------------------


def drop_token_values(value: dict) -> dict:
    """A decoder hook that removes every ``token`` key as soon as its object is decoded.

    Scalr documents ``attributes.token`` as sent only in the response that creates a token; a
    listing that carried one anyway must not let it reach anything accesstrail keeps.
    """
    if "token" in value:
        return {key: item for key, item in value.items() if key != "token"}
    return value


def _read_page(document: dict, path: str) -> Page:
    """One page's items, paging numbers and the names of included environments/workspaces."""
    meta = document.get("meta")
    pagination = meta.get("pagination") if isinstance(meta, dict) else None
    pagination = pagination if isinstance(pagination, dict) else {}
    return Page(
        items=expect_list(document, "data", LABEL, path),
        next_page=optional_int(pagination.get("next-page"), LABEL, path, "next-page"),
        total_pages=optional_int(pagination.get("total-pages"), LABEL, path, "total-pages"),
        total_count=optional_int(pagination.get("total-count"), LABEL, path, "total-count"),
        included=included_names(document, path),
    )


def included_names(document: dict, path: str) -> dict[tuple[str, str], str | None]:
    """``(type, id) → attributes.name`` of the included environments and workspaces."""
    included = document.get("included")
    names: dict[tuple[str, str], str | None] = {}
    for item in included if isinstance(included, list) else []:
        if not isinstance(item, dict) or item.get("type") not in ("environments", "workspaces"):
            continue
        attributes = item.get("attributes")
        name = text(attributes, "name", LABEL, path) if isinstance(attributes, dict) else None
        names[(item["type"], _id(item, path))] = name
    return names


def _pages(http: ProviderHTTP, path: str, params: dict, object_hook=None) -> Iterator[Page]:
    return iterate_pages(
        http,
        path,
        {**params, "page[size]": PAGE_SIZE},
        page_param="page[number]",
        read_page=_read_page,
        key=lambda item: _id(item, path),
        object_hook=object_hook,
    )


def fetch_roles(http: ProviderHTTP, account_id: str) -> Iterator[dict]:
    for page in _pages(http, ROLES_PATH, {"filter[account]": f"in:null,{account_id}"}):
        yield from page.items


def fetch_access_policies(
    http: ProviderHTTP, account_id: str
) -> Iterator[tuple[dict, dict[tuple[str, str], str | None]]]:
    """Yield ``(policy, names of its page's included environments and workspaces)``."""
    params = {"filter[account]": account_id, "include": "environment,workspace"}
    for page in _pages(http, POLICIES_PATH, params):
        for item in page.items:
            yield item, page.included or {}


def fetch_access_tokens(http: ProviderHTTP, service_account_id: str) -> Iterator[dict]:
    """A service account's tokens, each without its ``token`` value (dropped while decoding)."""
    for page in _pages(http, tokens_path(service_account_id), {}, drop_token_values):
        yield from page.items


# -- normalise ---------------------------------------------------------------------------------


def _relationship(item: dict, name: str, path: str) -> dict | list | None:
    """``relationships.<name>.data``: absent key, absent data and null all read as None."""
    relationships = item.get("relationships")
    if relationships is None:
        return None
    if not isinstance(relationships, dict):
        raise errors.BadResponse(LABEL, "sent 'relationships' that is not an object", path=path)
    link = relationships.get(name)
    if link is None:
        return None
    if not isinstance(link, dict):
        raise errors.BadResponse(LABEL, f"sent a '{name}' link that is not an object", path=path)
    data = link.get("data")
    if data is not None and not isinstance(data, dict | list):
        raise errors.BadResponse(LABEL, f"sent a '{name}' link without a reference", path=path)
    return data


def _reference(item: dict, name: str, path: str) -> str | None:
    """The id of a to-one relationship, or None when it is not set."""
    data = _relationship(item, name, path)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise errors.BadResponse(LABEL, f"sent a list where '{name}' is one reference", path=path)
    return _id(data, path)


def _references(item: dict, name: str, path: str) -> list[str]:
    """The ids of a to-many relationship; not set reads as none."""
    data = _relationship(item, name, path)
    if data is None:
        return []
    if not isinstance(data, list):
        raise errors.BadResponse(LABEL, f"sent one reference where '{name}' is a list", path=path)
    return [_id(ref, path) if isinstance(ref, dict) else _bad_ref(name, path) for ref in data]


def _bad_ref(name: str, path: str) -> str:
    raise errors.BadResponse(LABEL, f"sent a '{name}' reference that is not an object", path=path)


def role_from_item(item: dict) -> Role:
    """A ``roles`` resource: ``is_system`` 1/0, permission ids sorted and joined with ``,``."""
    path = ROLES_PATH
    attributes = _attributes(item, path)
    is_system = attributes.get("is-system", False)
    if not isinstance(is_system, bool):
        raise errors.BadResponse(LABEL, "sent a non-boolean 'is-system'", path=path)
    return Role(
        id=_id(item, path),
        name=text(attributes, "name", LABEL, path),
        description=text(attributes, "description", LABEL, path),
        is_system=int(is_system),
        permissions=",".join(sorted(set(_references(item, "permissions", path)))),
    )


@dataclass(frozen=True)
class Account:
    """What a grant on the account itself needs: its id and name."""

    id: str
    name: str | None


def grants_from_policy(
    item: dict,
    account: Account,
    resource_names: dict[tuple[str, str], str | None],
    role_names: dict[str, str | None] | None,
) -> list[Grant]:
    """One grant per role of an access policy.

    The principal is the first of ``user``, ``team``, ``service-account`` that is set, the
    resource the first of ``workspace``, ``environment``, ``account``; a policy naming neither
    is a bad response (read as nothing, it would remove a grant that is still there).
    ``role_names``: the roles listing's names by id, or None when it was not read; a role it
    does not name has ``role`` None.
    """
    path = POLICIES_PATH
    policy_id = _id(item, path)
    principal = next(
        (
            (kind, ident)
            for name, kind in SUBJECTS
            if (ident := _reference(item, name, path)) is not None
        ),
        None,
    )
    if principal is None:
        raise errors.BadResponse(
            LABEL, f"listed access policy {policy_id} without a subject", path=path
        )
    resource = next(
        (
            (name, kind, ident)
            for name, kind in RESOURCES
            if (ident := _reference(item, name, path)) is not None
        ),
        None,
    )
    if resource is None:
        raise errors.BadResponse(
            LABEL, f"listed access policy {policy_id} without a scope", path=path
        )
    relation, resource_type, resource_id = resource
    if relation == "account":
        resource_name = account.name if resource_id == account.id else None
    else:
        resource_name = resource_names.get((f"{relation}s", resource_id))
    roles = _relationship(item, "roles", path)
    if not isinstance(roles, list):
        raise errors.BadResponse(
            LABEL, f"listed access policy {policy_id} without its roles", path=path
        )
    return [
        Grant(
            resource_type=resource_type,
            resource_id=resource_id,
            resource_name=resource_name,
            principal_type=principal[0],
            principal_id=principal[1],
            role_id=role_id,
            role=(role_names or {}).get(role_id),
            binding_id=policy_id,
        )
        for role_id in dict.fromkeys(_references(item, "roles", path))
    ]


def credential_from_token(item: dict, service_account_id: str) -> Credential:
    """An ``access-tokens`` resource of a service account (its owner is the listing's path)."""
    path = tokens_path(service_account_id)
    attributes = _attributes(item, path)
    return Credential(
        id=_id(item, path),
        owner_type="user",
        owner_id=service_account_id,
        name=text(attributes, "name", LABEL, path),
        description=text(attributes, "description", LABEL, path),
        created_at=timestamp(attributes.get("created-at"), LABEL, path),
        expires_at=timestamp(attributes.get("expires-at"), LABEL, path),
        last_used_at=timestamp(attributes.get("last-used-at"), LABEL, path),
    )


# -- assemble ----------------------------------------------------------------------------------


def declare_policy_scopes(builder: SnapshotBuilder) -> tuple[Scope, Scope]:
    """The roles and access-policies listings, declared before any listing is read."""
    return (
        builder.scope("roles", access=[AccessScope("roles")]),
        builder.scope("access policies", access=[AccessScope("grants")]),
    )


def read_roles_and_policies(
    http: ProviderHTTP, account: Account, roles: Scope, policies: Scope
) -> None:
    """Roles first (their names name the grants), then the access policies.

    A failed roles listing does not stop the policies: their grants then have no role name.
    Two policies granting the same role to the same principal on the same resource are one
    grant; the first policy listed is its ``binding_id``.
    """
    names_read: dict[str, str | None] = {}
    with roles:
        for item in fetch_roles(http, account.id):
            role = roles.add(role_from_item(item))
            names_read[role.id] = role.name
    role_names = names_read if roles.completed else None
    with policies:
        seen: set[tuple[str, str, str, str, str]] = set()
        for item, names in fetch_access_policies(http, account.id):
            for grant in grants_from_policy(item, account, names, role_names):
                key = (
                    grant.resource_type,
                    grant.resource_id,
                    grant.principal_type,
                    grant.principal_id,
                    grant.role_id,
                )
                if key not in seen:
                    seen.add(key)
                    policies.add(grant)


def read_tokens(http: ProviderHTTP, builder: SnapshotBuilder, service_account_ids: list[str]):
    """Each service account's token listing, declared now, read concurrently.

    Called only once the service-account listing completed: without it, which service accounts
    exist is unknown, so no token listing is read and no credential is removed.
    """
    jobs = []
    for service_account_id in service_account_ids:
        scope = builder.scope(
            f"service account {service_account_id} access tokens",
            access=[AccessScope("credentials", service_account_id)],
        )
        jobs.append(_token_job(http, scope, service_account_id))
    read_concurrently(jobs)


def _token_job(http: ProviderHTTP, scope: Scope, service_account_id: str):
    def read_service_account_tokens() -> None:
        with scope:
            for item in fetch_access_tokens(http, service_account_id):
                scope.add(credential_from_token(item, service_account_id))

    return read_service_account_tokens


# -- check -------------------------------------------------------------------------------------

REFUSALS = {
    "roles": "SCALR_READ_ACCESS_POLICIES",
    "access policies": "SCALR_READ_ACCESS_POLICIES",
    "service-account access tokens": "SCALR_READ_TOKENS",
}


def probe_listing(http: ProviderHTTP, what: str, path: str, params: dict) -> dict:
    """One page of one item of a listing; a 403 (or, for tokens, Scalr's 404 "not found or
    unauthorized") says which switch to turn off if the token is not meant to read it."""
    refused: tuple[type[errors.ProviderError], ...] = (errors.CredentialsRefused,)
    if what == "service-account access tokens":
        refused = (errors.CredentialsRefused, errors.NotFound)
    try:
        return http.get_page(
            path, {**params, "page[size]": 1, "page[number]": 1}, lambda doc: doc, drop_token_values
        )
    except refused as exc:
        if exc.status == 401:
            raise
        variable = REFUSALS[what]
        raise errors.CredentialsRefused(
            LABEL,
            f"the token may not read {what}",
            path=path,
            status=exc.status,
            detail=exc.detail,
            hint=f"give it the permission, or set {variable}=false",
        ) from None


def probe_access(http: ProviderHTTP, account_id: str, read_policies: bool, tokens: bool) -> str:
    """One cheap read of each enabled access listing; returns what was proven, for the line."""
    proven = []
    if read_policies:
        probe_listing(http, "roles", ROLES_PATH, {"filter[account]": f"in:null,{account_id}"})
        probe_listing(http, "access policies", POLICIES_PATH, {"filter[account]": account_id})
        proven.append("roles and access policies readable")
    if tokens:
        path = f"{API}/service-accounts"
        document = http.get_json(
            path, {"filter[account]": account_id, "page[size]": 1, "page[number]": 1}
        )
        first = expect_list(document, "data", LABEL, path)[:1]
        if first:
            probe_listing(
                http, "service-account access tokens", tokens_path(_id(first[0], path)), {}
            )
            proven.append("service-account tokens readable")
        else:
            proven.append("no service account to read tokens of")
    return "; ".join(proven)
