"""The simulated Scalr IaCP v3 API (JSON:API) for one account, served from a :class:`ScalrState`.

The wire follows the real API: ``Authorization: Bearer <token>``, kebab-case attributes,
``meta.pagination`` with ``next-page`` null on the last page, errors as
``{"errors":[{status,title,detail}]}`` and "<Type> with ID '<id>' not found or user unauthorized"
for missing single resources. Access data follows ``api/scalr-access.md``: ``/roles`` (system
roles with a null account), ``/access-policies`` (all seven relationship keys, nulls for the
unused ones, ``included`` scopes), and each service account's ``access-tokens`` (with the secret
``token`` attribute a client must never keep); a listing named in ``ScalrState.forbidden``
answers 403. The state, its population and its evolution live in
:mod:`daemon.simulate.scalr.world`; this module only renders it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from daemon.simulate.scalr.world import (
    FORBIDDEN_ACCESS_POLICIES,
    FORBIDDEN_ACCESS_TOKENS,
    FORBIDDEN_ROLES,
    SUBJECT_KINDS,
    ScalrAccessPolicy,
    ScalrAccessToken,
    ScalrEnvironment,
    ScalrRole,
    ScalrServiceAccount,
    ScalrState,
    ScalrTeam,
    ScalrUser,
    ScalrWorkspace,
    live_policies,
)
from daemon.simulate.server import (
    BadParameter,
    NotFound,
    Paging,
    Reply,
    SimRequest,
    SimServer,
    cut_page,
    mentions,
    reason,
    utc_timestamp,
)

API_PREFIX = "/api/iacp/v3"
JSONAPI = "application/vnd.api+json"
MAX_PAGE_SIZE = 100
PAGING = Paging("page[number]", "page[size]", MAX_PAGE_SIZE, bad_value_status=422)
#: The documented quota object, with the values of a mid-sized plan.
ACCOUNT_QUOTAS = {
    "agent-relay-available": False,
    "agents": 5,
    "before-after-hooks-available": True,
    "environments": 50,
    "max-concurrent-runs": 10,
    "policy-group-checks-available": True,
    "policy-groups": 25,
    "registry-modules": 100,
    "registry-templates": 25,
    "run-triggers": 100,
    "service-accounts-available": True,
    "sso-available": True,
    "users": 250,
    "vcs-providers": 10,
    "workspaces": 1000,
}
DEFAULT_ACCOUNT_CREATED_AT = "2021-03-01T00:00:00Z"

# Derives account-users ids (UUID-like in the real API) from (account, user), so they are stable
# across requests and across a leaver coming back.
_ACCOUNT_USER_NAMESPACE = uuid.UUID("6f6d2a4e-5c0b-4d8e-9a51-3c2f0e7d9b11")

Record = TypeVar("Record")
#: What ``include`` may name on ``/access-policies`` (the spec's enum).
POLICY_INCLUDES = {
    "account",
    "environment",
    "roles",
    "service-account",
    "team",
    "user",
    "workspace",
}

_DEFAULT_DETAILS = {
    400: "Bad request.",
    401: "Invalid authentication token.",
    403: "User unauthorized to perform this action.",
    404: "The requested resource was not found.",
    405: "Method not allowed.",
    422: "Invalid parameter.",
    429: "Rate limit exceeded. Retry later.",
}


@functools.lru_cache(maxsize=200_000)
def _account_user_uuid(account_id: str, user_id: str) -> str:
    return str(uuid.uuid5(_ACCOUNT_USER_NAMESPACE, f"{account_id}/{user_id}"))


def _encode_query(query: dict[str, list[str]], **overrides: str) -> str:
    """Re-encode a decoded query the way clients do (brackets become %5B/%5D)."""
    merged = {key: list(values) for key, values in query.items()}
    for key, value in overrides.items():
        merged[key] = [value]
    return urlencode(merged, doseq=True)


def _email_matches(wanted: str | None, email: str) -> bool:
    """The ``filter[email]`` test: absent, or the same address ignoring case."""
    return wanted is None or email.lower() == wanted.lower()


def _missing(kind: str, ident: str) -> NotFound:
    """Scalr's 404 for a single resource, which names its type and the id asked for."""
    return NotFound(f"{kind} with ID '{ident}' not found or user unauthorized")


def _existing(record: Record | None, kind: str, ident: str) -> Record:
    """``record`` when there is one; otherwise the request ends in :func:`_missing`."""
    if record is None:
        raise _missing(kind, ident)
    return record


class Forbidden(BadParameter):
    """The token may not read this listing: Scalr's documented 403."""

    def __init__(self) -> None:
        super().__init__(403, _DEFAULT_DETAILS[403])


def _ref(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}


class ScalrSimulator(SimServer):
    """Serves ``/api/iacp/v3`` for :class:`ScalrState`; see the module docstring for the format."""

    json_content_type = JSONAPI
    paging = PAGING

    def __init__(self, state: ScalrState | None = None, default_page_size: int = 20):
        super().__init__()
        self.state = state if state is not None else ScalrState()
        self.default_page_size = default_page_size
        p = API_PREFIX
        self.route(rf"{p}/accounts", self._list_accounts)
        self.route(rf"{p}/accounts/(?P<ident>[^/]+)", self._get_account)
        self.route(rf"{p}/account-users", self._list_account_users)
        self.route(rf"{p}/users", self._list_users)
        self.route(rf"{p}/users/(?P<ident>[^/]+)", self._get_user)
        self.route(rf"{p}/service-accounts", self._list_service_accounts)
        self.route(rf"{p}/service-accounts/(?P<ident>[^/]+)", self._get_service_account)
        self.route(
            rf"{p}/service-accounts/(?P<ident>[^/]+)/access-tokens", self._list_access_tokens
        )
        self.route(rf"{p}/roles", self._list_roles)
        self.route(rf"{p}/roles/(?P<ident>[^/]+)", self._get_role)
        self.route(rf"{p}/access-policies", self._list_access_policies)
        self.route(rf"{p}/access-policies/(?P<ident>[^/]+)", self._get_access_policy)
        self.route(rf"{p}/teams", self._list_teams)
        self.route(rf"{p}/teams/(?P<ident>[^/]+)", self._get_team)

    # -- provider hooks ------------------------------------------------------------------------

    def authenticate(self, request: SimRequest) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.state.token}"

    def error_reply(
        self, status: int, detail: str | None = None, parameter: str | None = None
    ) -> Reply:
        error: dict[str, Any] = {
            "status": str(status),
            "title": "Invalid Parameter" if status == 422 and parameter else reason(status),
            "detail": detail
            or _DEFAULT_DETAILS.get(status, f"Simulated {reason(status).lower()}."),
        }
        if parameter:
            error["source"] = {"parameter": parameter}
        return self.json_reply(status, {"errors": [error]})

    # -- resource builders ---------------------------------------------------------------------

    def _account_resource(self) -> dict[str, Any]:
        s = self.state
        return {
            "type": "accounts",
            "id": s.account_id,
            "attributes": {
                "name": s.account_name,
                "created-at": DEFAULT_ACCOUNT_CREATED_AT,
                "allowed-ips": ["0.0.0.0/0"],
                "last-login-attempt-at": None,  # deprecated; still in the documented shape
                "login-attempts": None,
                "quotas": ACCOUNT_QUOTAS,
                "support-access-enabled": False,
            },
            "relationships": {
                "billing-plan": {"data": _ref("billing-plans", f"bp-{s.account_id[4:]}")},
                "identity-provider": {"data": None},
                "owner": {"data": _ref("users", self._owner_id())},  # every account has one
            },
            "links": {"self": f"{API_PREFIX}/accounts/{s.account_id}"},
        }

    def _owner_id(self) -> str:
        """The account's owner: its longest-standing user (a fixed id in an empty account)."""
        users = sorted(self.state.users.values(), key=lambda u: (u.created_at or "", u.id))
        return users[0].id if users else f"user-owner-{self.state.account_id[4:]}"

    def _user_team_ids(self, user: ScalrUser) -> list[str]:
        """A user's teams that still exist, in id order (dangling ids are never emitted)."""
        return sorted(t for t in user.teams if t in self.state.teams)

    def _user_resource(self, user: ScalrUser) -> dict[str, Any]:
        return {
            "type": "users",
            "id": user.id,
            "attributes": {
                "email": user.email,
                "username": user.username if user.username is not None else user.email,
                "full-name": user.full_name,
                "status": user.status,
                "created-at": user.created_at,
                "last-login-at": user.last_login_at,
            },
            "relationships": {
                "identity-providers": {"data": []},
                "teams": {"data": [_ref("teams", t) for t in self._user_team_ids(user)]},
            },
            "links": {"self": f"{API_PREFIX}/users/{user.id}"},
        }

    def account_user_id(self, user_id: str) -> str:
        """The stable account-users id for a user in this account."""
        return _account_user_uuid(self.state.account_id, user_id)

    def _account_user_resource(self, user: ScalrUser) -> dict[str, Any]:
        return {
            "type": "account-users",
            "id": self.account_user_id(user.id),
            "attributes": {"status": user.status, "last-login-at": user.last_login_at},
            "relationships": {
                "account": {"data": _ref("accounts", self.state.account_id)},
                "user": {"data": _ref("users", user.id)},
                "teams": {"data": [_ref("teams", t) for t in self._user_team_ids(user)]},
            },
            "links": {},
        }

    def _service_account_resource(self, sa: ScalrServiceAccount) -> dict[str, Any]:
        return {
            "type": "service-accounts",
            "id": sa.id,
            "attributes": {
                "name": sa.name,
                "email": sa.email,
                "description": sa.description,
                "status": sa.status,
                "created-at": sa.created_at,
            },
            "relationships": {
                "account": {"data": _ref("accounts", self.state.account_id)},
                "created-by": {"data": None},
                "owners": {"data": []},
            },
            "links": {"self": f"{API_PREFIX}/service-accounts/{sa.id}"},
        }

    def _team_members_index(self) -> dict[str, list[str]]:
        """Team id → member ids, built once per response (once per state, when caching)."""
        return self.memo("team members", self._index_team_members)

    def _index_team_members(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for user_id in sorted(self.state.users):
            for team_id in self.state.users[user_id].teams:
                index.setdefault(team_id, []).append(user_id)
        return index

    def _team_resource(self, team: ScalrTeam, members: dict[str, list[str]]) -> dict[str, Any]:
        """A team resource; ``members`` is :meth:`_team_members_index` for this response."""
        member_ids = members.get(team.id, [])
        return {
            "type": "teams",
            "id": team.id,
            "attributes": {"name": team.name, "description": team.description},
            "relationships": {
                "account": {"data": _ref("accounts", self.state.account_id)},
                "identity-provider": {"data": None},
                "users": {"data": [_ref("users", u) for u in member_ids]},
            },
            "links": {"self": f"{API_PREFIX}/teams/{team.id}"},
        }

    # -- documents -----------------------------------------------------------------------------

    def _includes(self, request: SimRequest, allowed: set[str]) -> set[str]:
        wanted = {
            part.strip()
            for value in request.query.get("include", [])
            for part in value.split(",")
            if part.strip()
        }
        unknown = wanted - allowed
        if unknown:
            raise BadParameter(
                400, f"Invalid include parameter: {', '.join(sorted(unknown))}.", "include"
            )
        return wanted

    def _list_document(
        self, request: SimRequest, records: list, include_for_page=None, build=None
    ) -> Reply:
        """Paginate already ordered records into a JSON:API list document.

        ``build`` renders the page's records into resources; ``include_for_page`` gives the
        ``included`` resources for the rendered page.
        """
        page = cut_page(request, records, PAGING, self.default_page_size, build)
        document: dict[str, Any] = {"data": page.items}
        if include_for_page is not None:
            document["included"] = include_for_page(page.items)
        document["links"] = self._list_links(request, page.next_number, page.size)
        document["meta"] = {
            "pagination": {
                "current-page": page.number,
                "page-size": page.size,
                "prev-page": page.prev_number,
                "next-page": page.next_number,
                "total-pages": page.total_pages,
                "total-count": page.total_count,
            }
        }
        return self.json_reply(200, document)

    @staticmethod
    def _list_links(request: SimRequest, next_page: int | None, size: int) -> dict[str, str]:
        """``self`` repeats the request; ``next`` (absent on the last page) pins number and size."""
        base = f"{request.origin}{request.path}"
        links = {"self": f"{base}?{_encode_query(request.query)}"}
        if next_page is not None:
            links["next"] = f"{base}?" + _encode_query(
                request.query, **{"page[number]": str(next_page), "page[size]": str(size)}
            )
        return links

    def _single_document(self, resource: dict[str, Any], included: list | None = None) -> Reply:
        document: dict[str, Any] = {"data": resource}
        if included is not None:
            document["included"] = included
        return self.json_reply(200, document)

    def _included_teams(self, team_ids: list[str]) -> list[dict[str, Any]]:
        wanted = sorted(t for t in set(team_ids) if t in self.state.teams)
        members = self._team_members_index() if wanted else {}
        return [
            self.memo(("team", t), lambda t=t: self._team_resource(self.state.teams[t], members))
            for t in wanted
        ]

    # -- filters -------------------------------------------------------------------------------

    @staticmethod
    def _id_filter(request: SimRequest, name: str) -> set[str] | None:
        """A comma-separated id filter as a set, or None when the filter is absent."""
        value = request.param(name)
        if value is None:
            return None
        return {part.strip() for part in value.split(",") if part.strip()}

    def _account_filter_matches(self, request: SimRequest) -> bool:
        wanted = self._id_filter(request, "filter[account]")
        return wanted is None or self.state.account_id in wanted

    @staticmethod
    def _query_matches(request: SimRequest, *texts: str | None) -> bool:
        """The ``query`` free-text search over ``texts``."""
        return mentions(request.param("query"), *texts)

    def _account_records(
        self,
        request: SimRequest,
        records: dict[str, Record],
        id_filter: str,
        keep: Callable[[Record], bool],
    ) -> list[Record]:
        """The account's ``records`` in id order that pass the ``id_filter`` parameter and ``keep``.

        Nothing passes when ``filter[account]`` names another account.
        """
        if not self._account_filter_matches(request):
            return []
        wanted = self._id_filter(request, id_filter)
        return [
            records[k]
            for k in sorted(records)
            if (wanted is None or k in wanted) and keep(records[k])
        ]

    def _sorted_users(self) -> list[ScalrUser]:
        return [self.state.users[k] for k in sorted(self.state.users)]

    # -- handlers ------------------------------------------------------------------------------

    def _list_accounts(self, request: SimRequest) -> Reply:
        with self.state.lock:
            self._includes(request, {"billing-plan", "identity-provider", "owner"})
            name = request.param("filter[name]")
            accounts = (
                []
                if name is not None and name != self.state.account_name
                else [self._account_resource()]
            )
            if not self._account_filter_matches(request):
                accounts = []
            return self._list_document(request, accounts)

    def _get_account(self, request: SimRequest, ident: str) -> Reply:
        with self.state.lock:
            self._includes(request, {"billing-plan", "identity-provider", "owner"})
            if ident != self.state.account_id:
                raise _missing("Account", ident)
            return self._single_document(self._account_resource())

    def _list_account_users(self, request: SimRequest) -> Reply:
        if request.param("filter[account]") is None and request.param("filter[user]") is None:
            raise BadParameter(422, "Either filter[account] or filter[user] is required.", "filter")
        with self.state.lock:
            includes = self._includes(request, {"user", "teams", "account"})
            filters = tuple(
                (name, tuple(values))
                for name, values in sorted(request.query.items())
                if not name.startswith("page[")
            )
            users = self.memo(("account users", filters), lambda: self._account_users(request))

            def included(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
                out: list[dict[str, Any]] = []
                page_users = [
                    self.state.users[r["relationships"]["user"]["data"]["id"]] for r in page
                ]
                if "account" in includes and page:
                    out.append(self._account_resource())
                if "user" in includes:
                    out.extend(self._user_resource(u) for u in page_users)
                if "teams" in includes:
                    out.extend(
                        self._included_teams(
                            [t for u in page_users for t in self._user_team_ids(u)]
                        )
                    )
                return out

            return self._list_document(
                request, users, included if includes else None, build=self._account_user_resource
            )

    def _account_users(self, request: SimRequest) -> list[ScalrUser]:
        """The users an account-users listing names, in the order it pages through them."""
        user_ids = self._id_filter(request, "filter[user]")
        team_ids = self._id_filter(request, "filter[team]")
        statuses = self._id_filter(request, "filter[status]")
        in_account = self._account_filter_matches(request)
        users = [
            u
            for u in self.state.users.values()
            if in_account
            and (user_ids is None or u.id in user_ids)
            and (team_ids is None or team_ids & u.teams)
            and (statuses is None or u.status in statuses)
            and self._query_matches(request, u.email, u.full_name, u.username)
        ]
        # Order by the account-users id, which is what the real listing pages through.
        users.sort(key=lambda u: self.account_user_id(u.id))
        return users

    def _list_users(self, request: SimRequest) -> Reply:
        with self.state.lock:
            includes = self._includes(request, {"identity-providers", "teams"})
            user_ids = self._id_filter(request, "filter[user]")
            email = request.param("filter[email]")
            users = [
                u
                for u in self._sorted_users()
                if (user_ids is None or u.id in user_ids)
                and _email_matches(email, u.email)
                and self._query_matches(request, u.email, u.full_name, u.username)
            ]

            def included(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
                if "teams" not in includes:
                    return []
                return self._included_teams(
                    [t["id"] for r in page for t in r["relationships"]["teams"]["data"]]
                )

            return self._list_document(
                request, users, included if includes else None, build=self._user_resource
            )

    def _get_user(self, request: SimRequest, ident: str) -> Reply:
        with self.state.lock:
            includes = self._includes(request, {"identity-providers", "teams"})
            user = _existing(self.state.users.get(ident), "User", ident)
            included = None
            if includes:
                included = (
                    self._included_teams(self._user_team_ids(user)) if "teams" in includes else []
                )
            return self._single_document(self._user_resource(user), included)

    def _list_service_accounts(self, request: SimRequest) -> Reply:
        with self.state.lock:
            includes = self._includes(request, {"account", "created-by"})
            email = request.param("filter[email]")
            accounts = self._account_records(
                request,
                self.state.service_accounts,
                "filter[service-account]",
                lambda sa: (
                    _email_matches(email, sa.email)
                    and self._query_matches(request, sa.name, sa.email, sa.description)
                ),
            )

            def included(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [self._account_resource()] if "account" in includes and page else []

            return self._list_document(
                request,
                accounts,
                included if includes else None,
                build=self._service_account_resource,
            )

    def _get_service_account(self, request: SimRequest, ident: str) -> Reply:
        with self.state.lock:
            self._includes(request, {"account", "created-by"})
            sa = _existing(self.state.service_accounts.get(ident), "ServiceAccount", ident)
            return self._single_document(self._service_account_resource(sa))

    def _list_teams(self, request: SimRequest) -> Reply:
        with self.state.lock:
            includes = self._includes(request, {"account", "users"})
            name = request.param("filter[name]")
            teams = self._account_records(
                request,
                self.state.teams,
                "filter[team]",
                lambda team: (
                    (name is None or team.name == name)
                    and self._query_matches(request, team.name, team.description)
                ),
            )
            members = self._team_members_index()

            def included(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
                out: list[dict[str, Any]] = []
                if "account" in includes and page:
                    out.append(self._account_resource())
                if "users" in includes:
                    member_ids = sorted(
                        {u["id"] for r in page for u in r["relationships"]["users"]["data"]}
                    )
                    out.extend(self._user_resource(self.state.users[u]) for u in member_ids)
                return out

            return self._list_document(
                request,
                teams,
                included if includes else None,
                build=lambda team: self._team_resource(team, members),
            )

    def _get_team(self, request: SimRequest, ident: str) -> Reply:
        with self.state.lock:
            self._includes(request, {"account", "users"})
            team = _existing(self.state.teams.get(ident), "Team", ident)
            return self._single_document(self._team_resource(team, self._team_members_index()))

    # -- access: roles, policies, tokens -------------------------------------------------------

    def _refuse_if_forbidden(self, *listings: str) -> None:
        """403 in Scalr's error shape when any of ``listings`` is in ``state.forbidden``."""
        if self.state.forbidden.intersection(listings):
            raise Forbidden()

    def _role_resource(self, role: ScalrRole) -> dict[str, Any]:
        account = None if role.is_system else _ref("accounts", self.state.account_id)
        return {
            "type": "roles",
            "id": role.id,
            "attributes": {
                "name": role.name,
                "description": role.description,
                "is-system": role.is_system,
            },
            "relationships": {
                "account": {"data": account},
                "permissions": {"data": [_ref("permissions", p) for p in sorted(role.permissions)]},
            },
            "links": {"self": f"{API_PREFIX}/roles/{role.id}"},
        }

    @staticmethod
    def _permission_resource(ident: str) -> dict[str, Any]:
        return {
            "type": "permissions",
            "id": ident,
            "attributes": {
                "applicable-scopes": ["account", "environment", "workspace"],
                "description": None,
            },
            "relationships": {},
            "links": {},
        }

    def _environment_resource(self, env: ScalrEnvironment) -> dict[str, Any]:
        return {
            "type": "environments",
            "id": env.id,
            "attributes": {"name": env.name, "status": "Active", "created-at": env.created_at},
            "relationships": {"account": {"data": _ref("accounts", self.state.account_id)}},
            "links": {"self": f"{API_PREFIX}/environments/{env.id}"},
        }

    def _workspace_resource(self, ws: ScalrWorkspace) -> dict[str, Any]:
        return {
            "type": "workspaces",
            "id": ws.id,
            "attributes": {
                "name": ws.name,
                "created-at": ws.created_at,
                "environment-type": "unmapped",
            },
            "relationships": {"environment": {"data": _ref("environments", ws.environment_id)}},
            "links": {"self": f"{API_PREFIX}/workspaces/{ws.id}"},
        }

    def _policy_resource(self, policy: ScalrAccessPolicy) -> dict[str, Any]:
        """All seven relationship keys; the unused subjects and scopes are ``{"data": null}``.

        Environment- and workspace-scoped policies carry the account too (the fact sheet infers
        it from the precedence Scalr's provider reads scopes in: workspace, environment, account).
        """
        relationships: dict[str, Any] = {
            "roles": {"data": [_ref("roles", r) for r in policy.role_ids]},
        }
        for kind in SUBJECT_KINDS:
            wanted = kind == policy.subject_kind
            relationships[kind] = {"data": _ref(f"{kind}s", policy.subject_id) if wanted else None}
        relationships["account"] = {"data": _ref("accounts", self.state.account_id)}
        for kind in ("environment", "workspace"):
            wanted = kind == policy.scope_kind
            relationships[kind] = {"data": _ref(f"{kind}s", policy.scope_id) if wanted else None}
        return {
            "type": "access-policies",
            "id": policy.id,
            "attributes": {"is-system": policy.is_system},
            "relationships": relationships,
            "links": {},
        }

    def _token_resource(self, token: ScalrAccessToken) -> dict[str, Any]:
        now = utc_timestamp(datetime.now(UTC))
        creator = _ref("users", token.created_by) if token.created_by else None
        return {
            "type": "access-tokens",
            "id": token.id,
            "attributes": {
                "name": token.name,
                "description": token.description,
                "created-at": token.created_at,
                "expires-at": token.expires_at,
                "expires-in": None,
                "is-expired": token.expires_at is not None and token.expires_at <= now,
                "last-used-at": token.last_used_at,
                "token": token.token,
            },
            "relationships": {"created-by": {"data": creator}},
            "links": {"self": f"{API_PREFIX}/access-tokens/{token.id}"},
        }

    def _role_matches_account(self, request: SimRequest, role: ScalrRole) -> bool:
        """``filter[account]``: ``in:null,<acc>`` names system (null) and the account's roles."""
        value = request.param("filter[account]")
        if value is None:
            return True
        wanted = {part.strip() for part in value.removeprefix("in:").split(",") if part.strip()}
        return ("null" if role.is_system else self.state.account_id) in wanted

    def _list_roles(self, request: SimRequest) -> Reply:
        with self.state.lock:
            self._refuse_if_forbidden(FORBIDDEN_ROLES)
            includes = self._includes(request, {"account", "permissions"})
            role_ids = self._id_filter(request, "filter[role]")
            name = request.param("filter[name]")
            roles = [
                self.state.roles[k]
                for k in sorted(self.state.roles)
                if self._role_matches_account(request, self.state.roles[k])
                and (role_ids is None or k in role_ids)
                and (name is None or self.state.roles[k].name == name)
                and self._query_matches(request, self.state.roles[k].name)
            ]

            def included(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
                out: list[dict[str, Any]] = []
                if "account" in includes and any(
                    r["relationships"]["account"]["data"] for r in page
                ):
                    out.append(self._account_resource())
                if "permissions" in includes:
                    names = sorted(
                        {p["id"] for r in page for p in r["relationships"]["permissions"]["data"]}
                    )
                    out.extend(self._permission_resource(p) for p in names)
                return out

            return self._list_document(
                request, roles, included if includes else None, build=self._role_resource
            )

    def _get_role(self, request: SimRequest, ident: str) -> Reply:
        with self.state.lock:
            self._includes(request, {"account", "permissions"})
            role = _existing(self.state.roles.get(ident), "IamRole", ident)
            return self._single_document(self._role_resource(role))

    def _policy_matches(self, request: SimRequest, policy: ScalrAccessPolicy) -> bool:
        """The id filters of ``/access-policies``; ``filter[account]`` spans every scope in it."""
        ws = (
            self.state.workspaces.get(policy.scope_id) if policy.scope_kind == "workspace" else None
        )
        scope_ids = {policy.scope_kind: {policy.scope_id}}
        if ws is not None:
            scope_ids["environment"] = {ws.environment_id}  # a workspace sits in its environment
        checks = {
            "filter[access-policy]": {policy.id},
            "filter[environment]": scope_ids.get("environment", set()),
            "filter[workspace]": scope_ids.get("workspace", set()),
            "filter[user]": {policy.subject_id} if policy.subject_kind == "user" else set(),
            "filter[team]": {policy.subject_id} if policy.subject_kind == "team" else set(),
            "filter[service-account]": (
                {policy.subject_id} if policy.subject_kind == "service-account" else set()
            ),
            "filter[role]": set(policy.role_ids),
        }
        for name, have in checks.items():
            wanted = self._id_filter(request, name)
            if wanted is not None and not wanted & have:
                return False
        return True

    def _visible_policies(self, request: SimRequest) -> list[ScalrAccessPolicy]:
        """Policies whose subject, scope and roles all exist, in id order, that pass the filters."""
        if not self._account_filter_matches(request):
            return []
        return [p for p in live_policies(self.state) if self._policy_matches(request, p)]

    def _policy_includes(
        self, includes: set[str], page: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The resources the page's policies refer to, one each, for the included names."""
        s = self.state
        render: dict[str, tuple[str, Callable[[str], dict[str, Any] | None]]] = {
            "roles": ("roles", lambda i: self._role_resource(s.roles[i])),
            "user": ("users", lambda i: self._user_resource(s.users[i])),
            "team": (
                "teams",
                lambda i: self._team_resource(s.teams[i], self._team_members_index()),
            ),
            "service-account": (
                "service-accounts",
                lambda i: self._service_account_resource(s.service_accounts[i]),
            ),
            "account": ("accounts", lambda i: self._account_resource()),
            "environment": (
                "environments",
                lambda i: self._environment_resource(s.environments[i]),
            ),
            "workspace": ("workspaces", lambda i: self._workspace_resource(s.workspaces[i])),
        }
        out: list[dict[str, Any]] = []
        for name in (
            "roles",
            "user",
            "team",
            "service-account",
            "account",
            "environment",
            "workspace",
        ):
            if name not in includes:
                continue
            kind, build = render[name]
            ids: set[str] = set()
            for policy in page:
                data = policy["relationships"][name]["data"]
                for ref in data if isinstance(data, list) else [data]:
                    if ref is not None and ref["type"] == kind:
                        ids.add(ref["id"])
            out.extend(resource for i in sorted(ids) if (resource := build(i)) is not None)
        return out

    def _list_access_policies(self, request: SimRequest) -> Reply:
        with self.state.lock:
            self._refuse_if_forbidden(FORBIDDEN_ACCESS_POLICIES)
            includes = self._includes(request, POLICY_INCLUDES)
            policies = self._visible_policies(request)
            return self._list_document(
                request,
                policies,
                (lambda page: self._policy_includes(includes, page)) if includes else None,
                build=self._policy_resource,
            )

    def _get_access_policy(self, request: SimRequest, ident: str) -> Reply:
        with self.state.lock:
            includes = self._includes(request, POLICY_INCLUDES)
            policy = self.state.access_policies.get(ident)
            visible = {p.id for p in self._visible_policies(request)} if policy else set()
            policy = _existing(policy if ident in visible else None, "IamAccessPolicy", ident)
            resource = self._policy_resource(policy)
            included = self._policy_includes(includes, [resource]) if includes else None
            return self._single_document(resource, included)

    def _list_access_tokens(self, request: SimRequest, ident: str) -> Reply:
        with self.state.lock:
            self._includes(request, {"created-by"})
            _existing(self.state.service_accounts.get(ident), "ServiceAccount", ident)
            self._refuse_if_forbidden(FORBIDDEN_ACCESS_TOKENS, f"{FORBIDDEN_ACCESS_TOKENS}:{ident}")
            tokens = self.state.access_tokens.get(ident, {})
            ordered = sorted(tokens.values(), key=lambda t: (t.created_at, t.id))
            return self._list_document(request, ordered, build=self._token_resource)
