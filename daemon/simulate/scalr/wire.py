"""A simulated Scalr IaCP v3 API (JSON:API) for one account.

Wire format follows /work/shared/api/scalr.md: ``Authorization: Bearer <token>``, kebab-case
attributes, ``meta.pagination`` with ``next-page`` null on the last page, errors as
``{"errors":[{status,title,detail}]}`` and "<Type> with ID '<id>' not found or user unauthorized"
for missing single resources. The state is deliberately simple (one account; each user appears in it
exactly once) because that is what the product reads; tests mutate it directly or via
:class:`daemon.simulate.world.ScalrEvolver`.
"""

from __future__ import annotations

import functools
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.simulate.server import (
    BadParameter,
    Reply,
    SimRequest,
    SimServer,
    encode_query,
    page_slice,
    parse_int,
    reason,
)

API_PREFIX = "/api/iacp/v3"
JSONAPI = "application/vnd.api+json"
MAX_PAGE_SIZE = 100
DEFAULT_ACCOUNT_CREATED_AT = "2021-03-01T00:00:00Z"

# Derives account-users ids (UUID-like in the real API) from (account, user), so they are stable
# across requests and across a leaver coming back.
_ACCOUNT_USER_NAMESPACE = uuid.UUID("6f6d2a4e-5c0b-4d8e-9a51-3c2f0e7d9b11")

_DEFAULT_DETAILS = {
    400: "Bad request.",
    401: "Invalid authentication token.",
    403: "User unauthorized to perform this action.",
    404: "The requested resource was not found.",
    405: "Method not allowed.",
    422: "Invalid parameter.",
    429: "Rate limit exceeded. Retry later.",
}


def format_scalr_time(moment: datetime) -> str:
    """Scalr's timestamp form, ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (naive datetimes count as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ScalrUser:
    """A human user and its account-user relation in the one simulated account."""

    id: str
    email: str
    full_name: str | None = None
    username: str | None = None  # None -> the email is emitted, Scalr's usual convention
    status: str = "Active"  # account-users status: Active | Inactive | Pending
    last_login_at: str | None = None
    created_at: str = "2024-01-01T00:00:00Z"
    teams: set[str] = field(default_factory=set)


@dataclass
class ScalrServiceAccount:
    id: str
    name: str
    email: str
    description: str | None = None
    status: str = "Active"  # Active | Inactive (service accounts are never Pending)
    created_at: str = "2024-01-01T00:00:00Z"


@dataclass
class ScalrTeam:
    id: str
    name: str
    description: str | None = None


@dataclass
class ScalrState:
    """Everything the simulated account knows; hold ``lock`` to mutate it under a live server."""

    account_id: str = "acc-v0osim1acme0001"
    account_name: str = "acme"
    token: str = "sim-scalr-token.v1.0123456789abcdefghijklmnopqrstuv"
    users: dict[str, ScalrUser] = field(default_factory=dict)
    service_accounts: dict[str, ScalrServiceAccount] = field(default_factory=dict)
    teams: dict[str, ScalrTeam] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)


@functools.lru_cache(maxsize=200_000)
def _account_user_uuid(account_id: str, user_id: str) -> str:
    return str(uuid.uuid5(_ACCOUNT_USER_NAMESPACE, f"{account_id}/{user_id}"))


def _ref(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}


class ScalrSimulator(SimServer):
    """Serves ``/api/iacp/v3`` for :class:`ScalrState`; see the module docstring for the format."""

    json_content_type = JSONAPI

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

    def page_number(self, request: SimRequest) -> int | None:
        try:
            return int(request.param("page[number]") or 1)
        except ValueError:
            return None

    # -- resource builders ---------------------------------------------------------------------

    def _account_resource(self) -> dict[str, Any]:
        s = self.state
        return {
            "type": "accounts",
            "id": s.account_id,
            "attributes": {
                "name": s.account_name,
                "created-at": DEFAULT_ACCOUNT_CREATED_AT,
                "allowed-ips": [],
                "quotas": {
                    "users": None,
                    "service-accounts-available": True,
                    "sso-available": True,
                },
                "support-access-enabled": False,
            },
            "relationships": {"owner": {"data": None}, "identity-provider": {"data": None}},
            "links": {"self": f"{API_PREFIX}/accounts/{s.account_id}"},
        }

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
        """Team id → member ids, built once per response rather than once per team."""
        index: dict[str, list[str]] = {}
        for user_id in sorted(self.state.users):
            for team_id in self.state.users[user_id].teams:
                index.setdefault(team_id, []).append(user_id)
        return index

    def _team_member_ids(self, team_id: str) -> list[str]:
        return self._team_members_index().get(team_id, [])

    def _team_resource(
        self, team: ScalrTeam, members: dict[str, list[str]] | None = None
    ) -> dict[str, Any]:
        member_ids = (
            members.get(team.id, []) if members is not None else self._team_member_ids(team.id)
        )
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
        self, request: SimRequest, resources: list, include_for_page=None, build=None
    ) -> Reply:
        """Paginate already ordered resources into a JSON:API list document.

        ``build`` turns the page's records into resources, so a large listing only renders the
        page asked for (a 20,000-user account stays fast to page through).
        """
        page = parse_int(request.param("page[number]"), 1, "page[number]", bad_status=422)
        size = parse_int(
            request.param("page[size]"), self.default_page_size, "page[size]", bad_status=422
        )
        if page < 1:
            raise BadParameter(422, "page[number] must be 1 or greater.", "page[number]")
        size = max(1, min(size, MAX_PAGE_SIZE))
        items, total_pages = page_slice(resources, page, size)
        if build is not None:
            items = [build(item) for item in items]
        next_page = page + 1 if page < total_pages else None
        base = f"{request.origin}{request.path}"
        links = {"self": f"{base}?{encode_query(request.query)}"}
        if next_page is not None:
            links["next"] = f"{base}?" + encode_query(
                request.query, **{"page[number]": str(next_page), "page[size]": str(size)}
            )
        document: dict[str, Any] = {"data": items}
        if include_for_page is not None:
            document["included"] = include_for_page(items)
        document["links"] = links
        document["meta"] = {
            "pagination": {
                "current-page": page,
                "page-size": size,
                "prev-page": page - 1 if page > 1 else None,
                "next-page": next_page,
                "total-pages": total_pages,
                "total-count": len(resources),
            }
        }
        return self.json_reply(200, document)

    def _single_document(self, resource: dict[str, Any], included: list | None = None) -> Reply:
        document: dict[str, Any] = {"data": resource}
        if included is not None:
            document["included"] = included
        return self.json_reply(200, document)

    def _not_found(self, kind: str, ident: str) -> Reply:
        return self.error_reply(404, f"{kind} with ID '{ident}' not found or user unauthorized")

    def _included_teams(self, team_ids: list[str]) -> list[dict[str, Any]]:
        wanted = sorted(t for t in set(team_ids) if t in self.state.teams)
        members = self._team_members_index() if wanted else {}
        return [
            self._team_resource(self.state.teams[t], members)
            for t in wanted
            if t in self.state.teams
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
        needle = request.param("query")
        return not needle or any(needle.lower() in (text or "").lower() for text in texts)

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
                return self._not_found("Account", ident)
            return self._single_document(self._account_resource())

    def _list_account_users(self, request: SimRequest) -> Reply:
        if request.param("filter[account]") is None and request.param("filter[user]") is None:
            raise BadParameter(422, "Either filter[account] or filter[user] is required.", "filter")
        with self.state.lock:
            includes = self._includes(request, {"user", "teams", "account"})
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

    def _list_users(self, request: SimRequest) -> Reply:
        with self.state.lock:
            includes = self._includes(request, {"identity-providers", "teams"})
            user_ids = self._id_filter(request, "filter[user]")
            email = request.param("filter[email]")
            users = [
                u
                for u in self._sorted_users()
                if (user_ids is None or u.id in user_ids)
                and (email is None or u.email.lower() == email.lower())
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
            user = self.state.users.get(ident)
            if user is None:
                return self._not_found("User", ident)
            included = None
            if includes:
                included = (
                    self._included_teams(self._user_team_ids(user)) if "teams" in includes else []
                )
            return self._single_document(self._user_resource(user), included)

    def _list_service_accounts(self, request: SimRequest) -> Reply:
        with self.state.lock:
            includes = self._includes(request, {"account", "created-by"})
            sa_ids = self._id_filter(request, "filter[service-account]")
            email = request.param("filter[email]")
            accounts = [
                self.state.service_accounts[k]
                for k in sorted(self.state.service_accounts)
                if self._account_filter_matches(request)
                and (sa_ids is None or k in sa_ids)
                and (email is None or self.state.service_accounts[k].email.lower() == email.lower())
            ]
            accounts = [
                sa
                for sa in accounts
                if self._query_matches(request, sa.name, sa.email, sa.description)
            ]

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
            sa = self.state.service_accounts.get(ident)
            if sa is None:
                return self._not_found("ServiceAccount", ident)
            return self._single_document(self._service_account_resource(sa))

    def _list_teams(self, request: SimRequest) -> Reply:
        with self.state.lock:
            includes = self._includes(request, {"account", "users"})
            team_ids = self._id_filter(request, "filter[team]")
            name = request.param("filter[name]")
            teams = [
                self.state.teams[k]
                for k in sorted(self.state.teams)
                if self._account_filter_matches(request)
                and (team_ids is None or k in team_ids)
                and (name is None or self.state.teams[k].name == name)
            ]
            teams = [t for t in teams if self._query_matches(request, t.name, t.description)]
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
            team = self.state.teams.get(ident)
            if team is None:
                return self._not_found("Team", ident)
            return self._single_document(self._team_resource(team))
