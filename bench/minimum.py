"""The pages a correct sync must read, counted from the simulated world, not from the client.

A sync that makes more requests than these repeats or wastes some; one that makes fewer cannot
have read everything. The list follows ``docs/sync-rules.md``, endpoint by endpoint:
Scalr's account lookup by name, then every page of account-users (with their users and teams),
service accounts and teams, and, where the product reads them (:class:`ScalrReads`), every page
of roles and access policies and of each service account's access tokens; PlanetScale's
organisations, each organisation's members and teams,
and each team's members. A listing always costs at least its first page, even when empty. The
same list is what the floor fetches, with the parameters the client sends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import live_policies

PAGE_SIZE = 100
SCALR_API = "/api/iacp/v3"
PS_API = "/v1"


@dataclass(frozen=True)
class PageRequest:
    """One GET: a path under the provider's origin and its query parameters."""

    path: str
    params: tuple[tuple[str, str], ...]


def _pages(count: int) -> range:
    return range(1, max(1, math.ceil(count / PAGE_SIZE)) + 1)


def _listing(path: str, count: int, number: str, size: str, **fixed: str) -> list[PageRequest]:
    return [
        PageRequest(path, tuple({**fixed, size: str(PAGE_SIZE), number: str(page)}.items()))
        for page in _pages(count)
    ]


@dataclass(frozen=True)
class ScalrReads:
    """Which of Scalr's optional listings a sync reads (``SCALR_READ_ACCESS_POLICIES``,
    ``SCALR_READ_TOKENS``); both on by default, as the contract has them."""

    access_policies: bool = True
    tokens: bool = True

    @classmethod
    def of_product(cls, config: dict[str, str]) -> ScalrReads:
        """What the product reads with ``config``: its own Scalr settings say it."""
        from daemon.config import load_settings

        settings = load_settings(environ=config, read_default_env_file=False)
        scalr = settings.providers.get("scalr")
        if scalr is None:
            return cls(access_policies=False, tokens=False)
        return cls(access_policies=scalr.read_access_policies, tokens=scalr.read_tokens)


def scalr_pages(sim: ScalrSimulator, reads: ScalrReads | None = None) -> list[PageRequest]:
    state = sim.state
    reads = reads if reads is not None else ScalrReads()
    account = {"filter[account]": state.account_id}

    def listing(resource: str, count: int, **extra: str) -> list[PageRequest]:
        path = f"{SCALR_API}/{resource}"
        return _listing(path, count, "page[number]", "page[size]", **account, **extra)

    lookup = PageRequest(f"{SCALR_API}/accounts", (("filter[name]", state.account_name),))
    pages = [
        lookup,
        *listing("account-users", len(state.users), include="user,teams"),
        *listing("service-accounts", len(state.service_accounts)),
        *listing("teams", len(state.teams)),
    ]
    if reads.access_policies:
        roles = f"{SCALR_API}/roles"
        filter_roles = {"filter[account]": f"in:null,{state.account_id}"}
        pages += _listing(roles, len(state.roles), "page[number]", "page[size]", **filter_roles)
        pages += listing(
            "access-policies", len(live_policies(state)), include="environment,workspace"
        )
    if reads.tokens:
        for sa_id in sorted(state.service_accounts):
            path = f"{SCALR_API}/service-accounts/{sa_id}/access-tokens"
            count = len(state.access_tokens.get(sa_id, {}))
            pages += _listing(path, count, "page[number]", "page[size]")
    return pages


def planetscale_pages(sim: PlanetScaleSimulator) -> list[PageRequest]:
    state = sim.state
    orgs = [state.organizations[k] for k in sorted(state.organizations)]
    pages = _listing(f"{PS_API}/organizations", len(orgs), "page", "per_page")
    for org in orgs:
        base = f"{PS_API}/organizations/{quote(org.name, safe='')}"
        members = [u for u in org.members if u in state.users]
        pages += _listing(f"{base}/members", len(members), "page", "per_page")
        pages += _listing(f"{base}/teams", len(org.teams), "page", "per_page")
        for team in org.teams.values():
            path = f"{base}/teams/{quote(team.slug, safe='')}/members"
            pages += _listing(path, len(sim._team_member_ids(org, team)), "page", "per_page")
    return pages
