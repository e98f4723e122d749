"""The simulated PlanetScale REST API (``/v1``) for organisations, members and teams.

The wire follows the real API: ``Authorization: <token_id>:<token_secret>`` (no Bearer), the
``type: "list"`` envelope with ``next_page``/``next_page_url`` (totals only on members, teams and
team members), ``{"code","message"}`` errors, 404 ``not_found`` for unknown organisations and
teams, team objects with their ``databases`` and ``analyst_databases`` (switched off by
``PlanetScaleState.team_database_keys = False``, as older API versions), and an optional
600-requests-a-minute style sliding-window rate limit. The state, its
population and its evolution live in :mod:`daemon.simulate.planetscale.world`; this module only
renders it.

``next_page_url_origin`` lets a test make the server advertise a foreign host in
``next_page_url``, to prove the client builds its own next URL instead of following the body.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSTeam, PSUser
from daemon.simulate.server import (
    NotFound,
    Paging,
    Reply,
    SimRequest,
    SimServer,
    cut_page,
    mentions,
    reason,
)

API_PREFIX = "/v1"
MAX_PER_PAGE = 100
PAGING = Paging("page", "per_page", MAX_PER_PAGE, bad_value_status=400)
RATE_WINDOW_SECONDS = 60.0
RATE_LIMITED_MESSAGE = "Too Many Requests. Reduce the frequency of requests and try again soon."

_ERROR_CODES = {
    400: ("bad_request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not Found"),
    405: ("method_not_allowed", "Method Not Allowed"),
    422: ("unprocessable", "Unprocessable Entity"),
    429: ("rate_limited", RATE_LIMITED_MESSAGE),
}

_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def derived_id(*parts: str) -> str:
    """A stable 12-character PlanetScale-style id derived from ``parts``.

    Membership ids are not stored in the state, yet must not change between requests (nor when a
    user leaves and rejoins), so they are a hash of what they relate.
    """
    number = int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:10], "big")
    chars = []
    for _ in range(12):
        number, digit = divmod(number, 36)
        chars.append(_ID_ALPHABET[digit])
    return "".join(chars)


class PlanetScaleSimulator(SimServer):
    """Serves ``/v1`` for :class:`PlanetScaleState`; see the module docstring for the format."""

    json_content_type = "application/json; charset=utf-8"
    paging = PAGING

    def __init__(
        self,
        state: PlanetScaleState | None = None,
        default_per_page: int = 25,
        rate_limit_per_minute: int | None = None,
        next_page_url_origin: str | None = None,
    ):
        super().__init__()
        self.state = state if state is not None else PlanetScaleState()
        self.default_per_page = default_per_page
        self.rate_limit_per_minute = rate_limit_per_minute
        self.next_page_url_origin = next_page_url_origin
        self.rate_limited_count = 0
        self.clock: Callable[[], float] = time.monotonic  # replaceable so tests need not wait
        self._admitted: deque[float] = deque()
        self._rate_lock = threading.Lock()
        org = rf"{API_PREFIX}/organizations/(?P<org>[^/]+)"
        self.route(rf"{API_PREFIX}/organizations", self._list_organizations)
        self.route(org, self._get_organization)
        self.route(rf"{org}/members", self._list_members)
        self.route(rf"{org}/members/(?P<user_id>[^/]+)", self._get_member)
        self.route(rf"{org}/teams", self._list_teams)
        self.route(rf"{org}/teams/(?P<slug>[^/]+)", self._get_team)
        self.route(rf"{org}/teams/(?P<slug>[^/]+)/members", self._list_team_members)

    # -- provider hooks ------------------------------------------------------------------------

    def authenticate(self, request: SimRequest) -> bool:
        expected = f"{self.state.token_id}:{self.state.token_secret}"
        return request.headers.get("Authorization") == expected

    def error_reply(
        self, status: int, detail: str | None = None, parameter: str | None = None
    ) -> Reply:
        code, message = _ERROR_CODES.get(status, (None, reason(status)))
        if code is None:
            code = reason(status).lower().replace(" ", "_").replace("-", "_")
        if status in (400, 422) and detail:
            message = detail
        return self.json_reply(status, {"code": code, "message": message})

    def admit(self, request: SimRequest) -> Reply | None:
        """Sliding 60-second window over admitted requests; refusals do not take a slot."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        with self._rate_lock:
            now = self.clock()
            while self._admitted and self._admitted[0] <= now - RATE_WINDOW_SECONDS:
                self._admitted.popleft()
            if len(self._admitted) < limit:
                self._admitted.append(now)
                return None
            self.rate_limited_count += 1
            wait = self._admitted[0] + RATE_WINDOW_SECONDS - now
        reply = self.error_reply(429)
        reply.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return reply

    def reset_rate_window(self) -> None:
        """Forget the requests admitted so far and the 429s counted: a fresh minute."""
        with self._rate_lock:
            self._admitted.clear()
            self.rate_limited_count = 0

    # -- object builders -----------------------------------------------------------------------

    def _avatar(self, ident: str) -> str:
        return f"https://example.invalid/avatars/{ident}.png"

    def _user_object(self, user: PSUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "display_name": user.display_name or user.name or user.email,
            "name": user.name,
            "email": user.email,
            "avatar_url": self._avatar(user.id),
            "created_at": user.created_at,
            "updated_at": user.updated_at or user.created_at,
            "two_factor_auth_configured": user.two_factor_auth_configured,
            "default_organization": None,
            "sso": None,
            "managed": None,
            "directory_managed": None,
            "email_verified": True,
        }

    def _actor_object(self, user_id: str | None, org: PSOrganization) -> dict[str, Any]:
        """The ``{id, display_name, avatar_url}`` actor: the given user, else an org admin."""
        user = self.state.users.get(user_id) if user_id else None
        if user is None:
            admins = sorted(
                u for u, role in org.members.items() if role == "admin" and u in self.state.users
            )
            user = self.state.users[admins[0]] if admins else None
        if user is None:
            ident = derived_id("actor", org.id)
            return {"id": ident, "display_name": "PlanetScale", "avatar_url": self._avatar(ident)}
        return {
            "id": user.id,
            "display_name": user.display_name or user.name or user.email,
            "avatar_url": self._avatar(user.id),
        }

    def _organization_object(self, org: PSOrganization) -> dict[str, Any]:
        return {
            "id": org.id,
            "name": org.name,
            "billing_email": f"billing@{org.name}.example",
            "created_at": org.created_at,
            "updated_at": org.created_at,
            "plan": "scaler_pro",
            "valid_billing_info": True,
            "sso": False,
            "sso_directory": False,
            "single_tenancy": False,
            "managed_tenancy": False,
            "has_past_due_invoices": False,
            "database_count": len(org.teams),
            "sso_portal_url": None,
            "features": {"insights": True},
            "idp_managed_roles": False,
            "invoice_budget_amount": "0.0",
            "keyspace_shard_limit": 32,
            "has_card": True,
            "payment_info_required": False,
        }

    def _membership_object(self, org: PSOrganization, user_id: str) -> dict[str, Any]:
        user = self.state.users[user_id]
        since = org.joined_at.get(user_id, user.created_at)
        return {
            "id": derived_id("membership", org.id, user_id),
            "user": self._user_object(user),
            "role": org.members[user_id],
            "created_at": since,
            "updated_at": since,
        }

    def _team_member_ids(self, org: PSOrganization, team: PSTeam) -> list[str]:
        """Members shown for a team: existing users who are still members of its organisation."""
        return sorted(u for u in team.members if u in self.state.users and u in org.members)

    def _full_team_object(self, org: PSOrganization, team: PSTeam) -> dict[str, Any]:
        return {
            "id": team.id,
            "display_name": team.name,
            "name": team.name,
            "slug": team.slug,
            "description": team.description,
            "managed": False,
            "creator": self._actor_object(team.creator_id, org),
            "members": [
                self._user_object(self.state.users[u]) for u in self._team_member_ids(org, team)
            ],
            "databases": self._database_objects(org, team.databases),
            "analyst_databases": self._database_objects(org, team.analyst_databases),
            "created_at": team.created_at,
            "updated_at": team.updated_at or team.created_at,
        }

    def _team_object(self, org: PSOrganization, team: PSTeam) -> dict[str, Any]:
        """A team; without ``state.team_database_keys`` it lacks ``databases`` and
        ``analyst_databases``, as older API versions answered."""
        team_object = self._full_team_object(org, team)
        if not self.state.team_database_keys:
            del team_object["databases"], team_object["analyst_databases"]
        return team_object

    def _database_objects(self, org: PSOrganization, ids: set[str]) -> list[dict[str, Any]]:
        """The documented ``{id, name, url, branches_url}`` of the organisation's databases."""
        base = f"{self.url or 'https://api.planetscale.com'}{API_PREFIX}/organizations/{org.name}"
        out = []
        for ident in sorted(
            ids, key=lambda i: (org.databases[i].name, i) if i in org.databases else ("", i)
        ):
            database = org.databases.get(ident)
            if database is None:
                continue  # never a dangling grant
            url = f"{base}/databases/{database.name}"
            out.append(
                {
                    "id": database.id,
                    "name": database.name,
                    "url": url,
                    "branches_url": f"{url}/branches",
                }
            )
        return out

    def _team_membership_object(
        self, org: PSOrganization, team: PSTeam, user_id: str
    ) -> dict[str, Any]:
        since = team.joined_at.get(user_id, team.created_at)
        return {
            "id": derived_id("team-membership", team.id, user_id),
            "user": self._user_object(self.state.users[user_id]),
            "actor": self._actor_object(team.creator_id, org),
            "created_at": since,
            "updated_at": since,
            "passwords": [],
        }

    # -- documents -----------------------------------------------------------------------------

    def _list_document(
        self, request: SimRequest, records: list, with_totals: bool, build=None
    ) -> Reply:
        """Paginate ordered records into the list envelope; ``build`` renders only the page."""
        page = cut_page(request, records, PAGING, self.default_per_page, build)
        origin = self.next_page_url_origin or request.origin

        def url(number: int | None) -> str | None:
            # The real API's page URLs carry only ``page``, whatever else the request asked for.
            return None if number is None else f"{origin}{request.path}?page={number}"

        envelope: dict[str, Any] = {
            "type": "list",
            "current_page": page.number,
            "per_page": page.size,
            "next_page": page.next_number,
            "next_page_url": url(page.next_number),
            "prev_page": page.prev_number,
            "prev_page_url": url(page.prev_number),
        }
        if with_totals:
            envelope["total_count"] = page.total_count
            envelope["total_pages"] = page.total_pages
        envelope["data"] = page.items
        return self.json_reply(200, envelope)

    def _organization(self, name: str) -> PSOrganization:
        """The organisation called ``name``; :class:`NotFound` when there is none."""
        for org in self.state.organizations.values():
            if org.name == name:
                return org
        raise NotFound

    def _team(self, org_name: str, slug: str) -> tuple[PSOrganization, PSTeam]:
        """The organisation and its team with ``slug``; :class:`NotFound` when either is missing."""
        org = self._organization(org_name)
        for team in org.teams.values():
            if team.slug == slug:
                return org, team
        raise NotFound

    @staticmethod
    def _search(request: SimRequest, *texts: str | None) -> bool:
        """The ``q`` free-text search over ``texts``."""
        return mentions(request.param("q"), *texts)

    # -- handlers ------------------------------------------------------------------------------

    def _list_organizations(self, request: SimRequest) -> Reply:
        with self.state.lock:
            orgs = [self.state.organizations[k] for k in sorted(self.state.organizations)]
            return self._list_document(
                request, orgs, with_totals=False, build=self._organization_object
            )

    def _get_organization(self, request: SimRequest, org: str) -> Reply:
        with self.state.lock:
            return self.json_reply(200, self._organization_object(self._organization(org)))

    def _list_members(self, request: SimRequest, org: str) -> Reply:
        with self.state.lock:
            found = self._organization(org)
            member_ids = self.memo(
                ("members", org, request.param("q")), lambda: self._member_ids(request, found)
            )
            return self._list_document(
                request,
                member_ids,
                with_totals=True,
                build=lambda user_id: self._membership_object(found, user_id),
            )

    def _member_ids(self, request: SimRequest, org: PSOrganization) -> list[str]:
        """The members a member listing names, in id order, after its ``q`` search."""
        users = self.state.users
        return [
            u
            for u in sorted(org.members)
            if u in users
            and self._search(request, users[u].name, users[u].display_name, users[u].email)
        ]

    def _get_member(self, request: SimRequest, org: str, user_id: str) -> Reply:
        with self.state.lock:
            found = self._organization(org)
            if user_id not in found.members or user_id not in self.state.users:
                raise NotFound
            return self.json_reply(200, self._membership_object(found, user_id))

    def _list_teams(self, request: SimRequest, org: str) -> Reply:
        with self.state.lock:
            found = self._organization(org)
            teams = [
                found.teams[k]
                for k in sorted(found.teams)
                if self._search(request, found.teams[k].name)
            ]
            return self._list_document(
                request, teams, with_totals=True, build=lambda team: self._team_object(found, team)
            )

    def _get_team(self, request: SimRequest, org: str, slug: str) -> Reply:
        with self.state.lock:
            found, team = self._team(org, slug)
            return self.json_reply(200, self._team_object(found, team))

    def _list_team_members(self, request: SimRequest, org: str, slug: str) -> Reply:
        with self.state.lock:
            found, team = self._team(org, slug)
            return self._list_document(
                request,
                self._team_member_ids(found, team),
                with_totals=True,
                build=lambda user_id: self._team_membership_object(found, team, user_id),
            )
