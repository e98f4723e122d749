"""Large simulated organisations for the benchmark, built in seconds, and a ~1% change to them.

``populate_scalr`` and ``populate_planetscale`` in the world modules draw each id and email
against everything already there, which is right for a demo of dozens and quadratic at 100,000
people. These build the same state objects directly, with sizes and ratios chosen by the caller
(see :class:`Sizes`), and ``churn`` changes about one person in a hundred the way a working day
would: sign-ins, disables, team moves and renames in Scalr; role changes, team joins and leaves,
two-factor changes and renames in PlanetScale. Everything follows the ``random.Random`` given, so
a seed reproduces the same organisation.

Access data comes last, from a generator of its own (``side_rng``), so the people and teams of a
seed are what they were before it: about 20 roles, a few environments and workspaces, one policy
per team and one per ~50 users (plus an account admin), one or two tokens per service account;
PlanetScale organisations with databases, and teams with database access.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.simulate.evolve import make_id, random_person, renamed, side_rng
from daemon.simulate.names import EMAIL_DOMAINS, TEAM_DESCRIPTIONS
from daemon.simulate.planetscale.world import (
    DATABASE_NAMES,
    PS_ROLES,
    PlanetScaleState,
    PSDatabase,
    PSOrganization,
    PSTeam,
    PSUser,
    format_ps_time,
)
from daemon.simulate.scalr.world import (
    ADMIN_ROLE_ID,
    PERMISSION_POOL,
    READER_ROLE_ID,
    ScalrAccessPolicy,
    ScalrAccessToken,
    ScalrEnvironment,
    ScalrRole,
    ScalrServiceAccount,
    ScalrState,
    ScalrTeam,
    ScalrUser,
    ScalrWorkspace,
    format_scalr_time,
    secret_token,
)

PS_ORGANIZATIONS = ("acme", "acme-labs", "acme-data", "acme-ops")
SCALR_ROLES = 20  # system roles included
SCALR_ENVIRONMENTS = 4
SCALR_WORKSPACES = 40
USERS_PER_POLICY = 50
PS_DATABASES_PER_ORG = 20


@dataclass(frozen=True)
class Sizes:
    """How big each world is; :meth:`for_users` scales the issue's 20,000-user organisation."""

    scalr_users: int
    scalr_service_accounts: int
    scalr_teams: int
    scalr_team_memberships: int
    ps_people: int
    ps_organizations: int
    ps_org_memberships: int
    ps_teams: int
    ps_team_size: int

    @classmethod
    def for_users(cls, users: int) -> Sizes:
        """20,000 → 21,000 Scalr identities (100 teams, 51,000 memberships) and 20,000
        PlanetScale people in 4 organisations (200 teams, 46,000 memberships)."""
        users = max(1, users)
        return cls(
            scalr_users=round(users * 1.04),
            scalr_service_accounts=max(1, round(users * 0.01)),
            scalr_teams=max(1, users // 200),
            scalr_team_memberships=round(users * 1.5),
            ps_people=users,
            ps_organizations=len(PS_ORGANIZATIONS),
            ps_org_memberships=round(users * 2.05),
            ps_teams=max(len(PS_ORGANIZATIONS), users // 100),
            ps_team_size=25,
        )


def _unique_id(prefix: str, rng: random.Random, taken: set[str]) -> str:
    while True:
        ident = make_id(prefix, rng)
        if ident not in taken:
            taken.add(ident)
            return ident


def _unique_email(local: str, domain: str, taken: set[str]) -> str:
    email, n = f"{local}@{domain}", 2
    while email in taken:
        email, n = f"{local}{n}@{domain}", n + 1
    taken.add(email)
    return email


def _local_part(first: str, last: str) -> str:
    return f"{first}.{last}".lower()


# -- Scalr ---------------------------------------------------------------------------------------


def populate_scalr(state: ScalrState, rng: random.Random, sizes: Sizes, now: datetime) -> None:
    """Add ``sizes``' users, service accounts and teams to ``state``."""
    with state.lock:
        team_ids = _scalr_teams(state, rng, sizes.scalr_teams)
        per_user = sizes.scalr_team_memberships / max(1, sizes.scalr_users)
        ids: set[str] = set(state.users)
        emails: set[str] = {u.email.lower() for u in state.users.values()}
        for _ in range(sizes.scalr_users):
            user = _scalr_user(state, rng, now, ids, emails)
            count = min(len(team_ids), math.floor(per_user) + (rng.random() < per_user % 1))
            user.teams = set(rng.sample(team_ids, count))
            state.users[user.id] = user
        sa_ids: set[str] = set(state.service_accounts)
        for number in range(1, sizes.scalr_service_accounts + 1):
            ident = _unique_id("sa", rng, sa_ids)
            name = f"automation-{number}"
            state.service_accounts[ident] = ScalrServiceAccount(
                id=ident,
                name=name,
                email=f"{name}@{state.account_name}.scalr.io",
                status=rng.choices(("Active", "Inactive"), (85, 15))[0],
                created_at=format_scalr_time(now - timedelta(days=rng.randint(10, 700))),
            )
        _scalr_access(state, side_rng(rng, "bulk scalr access"), now)


def _scalr_access(state: ScalrState, rng: random.Random, now: datetime) -> None:
    """Scopes, custom roles up to :data:`SCALR_ROLES`, policies and tokens, at scale."""
    taken: set[str] = set(state.environments)
    for number in range(1, SCALR_ENVIRONMENTS + 1):
        ident = _unique_id("env", rng, taken)
        state.environments[ident] = ScalrEnvironment(ident, f"env-{number}")
    env_ids = sorted(state.environments)
    taken = set(state.workspaces)
    for number in range(1, SCALR_WORKSPACES + 1):
        ident = _unique_id("ws", rng, taken)
        state.workspaces[ident] = ScalrWorkspace(ident, f"workspace-{number}", rng.choice(env_ids))
    taken = set(state.roles)
    for number in range(1, SCALR_ROLES - len(state.roles) + 1):
        ident = _unique_id("role", rng, taken)
        permissions = set(rng.sample(PERMISSION_POOL, rng.randint(1, 3)))
        state.roles[ident] = ScalrRole(ident, f"Role {number}", None, False, permissions)
    role_ids = sorted(state.roles)
    scopes = (
        [("account", state.account_id)]
        + [("environment", e) for e in env_ids]
        + [("workspace", w) for w in sorted(state.workspaces)]
    )
    subjects = [("team", t) for t in sorted(state.teams)]
    subjects += [("user", u) for u in sorted(state.users)[::USERS_PER_POLICY]]
    taken = set(state.access_policies)
    for kind, ident in subjects:
        scope = rng.choice(scopes)
        policy_id = _unique_id("ap", rng, taken)
        roles = [rng.choice(role_ids)]
        state.access_policies[policy_id] = ScalrAccessPolicy(
            policy_id, kind, ident, scope[0], scope[1], roles
        )
    if state.users:
        policy_id = _unique_id("ap", rng, taken)
        admin = min(state.users)
        state.access_policies[policy_id] = ScalrAccessPolicy(
            policy_id, "user", admin, "account", state.account_id, [ADMIN_ROLE_ID, READER_ROLE_ID]
        )
    taken = set()
    for sa_id in sorted(state.service_accounts):
        tokens = state.access_tokens.setdefault(sa_id, {})
        for number in range(rng.randint(1, 2)):
            created = now - timedelta(days=rng.randint(1, 400))
            expires = rng.choice((None, created + timedelta(days=365)))
            used = rng.choice((None, now - timedelta(days=rng.randint(0, 30))))
            token = ScalrAccessToken(
                id=_unique_id("at", rng, taken),
                name=f"token-{number + 1}",
                created_at=format_scalr_time(created),
                expires_at=format_scalr_time(expires) if expires else None,
                last_used_at=format_scalr_time(used) if used else None,
                token=secret_token(rng),
            )
            tokens[token.id] = token


def _scalr_teams(state: ScalrState, rng: random.Random, count: int) -> list[str]:
    taken = set(state.teams)
    for number in range(1, count + 1):
        ident = _unique_id("team", rng, taken)
        state.teams[ident] = ScalrTeam(ident, f"Team {number}", rng.choice(TEAM_DESCRIPTIONS))
    return sorted(state.teams)


def _scalr_user(
    state: ScalrState, rng: random.Random, now: datetime, ids: set[str], emails: set[str]
) -> ScalrUser:
    first, last = random_person(rng)
    email = _unique_email(_local_part(first, last), f"{state.account_name}.example", emails)
    status = rng.choices(("Active", "Inactive", "Pending"), (80, 10, 10))[0]
    created = now - timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399))
    last_login = None
    if status == "Active" and rng.random() > 0.05:
        last_login = now - timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
    return ScalrUser(
        id=_unique_id("user", rng, ids),
        email=email,
        full_name=None if rng.random() < 0.08 else f"{first} {last}",
        status=status,
        last_login_at=format_scalr_time(max(created, last_login)) if last_login else None,
        created_at=format_scalr_time(created),
    )


# -- PlanetScale ---------------------------------------------------------------------------------


def populate_planetscale(
    state: PlanetScaleState, rng: random.Random, sizes: Sizes, now: datetime
) -> None:
    """Add ``sizes``' people, organisations, roles and teams to ``state``."""
    with state.lock:
        people = _ps_people(state, rng, sizes.ps_people, now)
        org_ids: set[str] = set(state.organizations)
        team_ids: set[str] = set()
        per_org = min(len(people), round(sizes.ps_org_memberships / sizes.ps_organizations))
        for index in range(sizes.ps_organizations):
            org = PSOrganization(
                id=_unique_id("", rng, org_ids),
                name=PS_ORGANIZATIONS[index % len(PS_ORGANIZATIONS)]
                + ("" if index < len(PS_ORGANIZATIONS) else f"-{index}"),
                created_at=format_ps_time(now - timedelta(days=rng.randint(400, 1500))),
            )
            members = sorted(rng.sample(people, max(1, per_org)))
            for position, user_id in enumerate(members):
                org.members[user_id] = (
                    "admin" if position == 0 else rng.choices(PS_ROLES, (80, 12, 8))[0]
                )
                org.joined_at[user_id] = org.created_at
            teams = sizes.ps_teams // sizes.ps_organizations
            teams += index < sizes.ps_teams % sizes.ps_organizations
            for number in range(1, teams + 1):
                team = _ps_team(org, rng, number, team_ids, members[0])
                team.members = set(rng.sample(members, min(sizes.ps_team_size, len(members))))
                team.joined_at = {user_id: team.created_at for user_id in team.members}
            state.organizations[org.id] = org
        _ps_databases(state, side_rng(rng, "bulk planetscale databases"))


def _ps_databases(state: PlanetScaleState, rng: random.Random) -> None:
    """Each organisation gets databases; each team admin access to one, some analyst to another."""
    taken: set[str] = set()
    for org_id in sorted(state.organizations):
        org = state.organizations[org_id]
        for number in range(1, PS_DATABASES_PER_ORG + 1):
            name = f"{DATABASE_NAMES[number % len(DATABASE_NAMES)]}-{number}"
            database = PSDatabase(_unique_id("", rng, taken), name)
            org.databases[database.id] = database
        database_ids = sorted(org.databases)
        for team_id in sorted(org.teams):
            team = org.teams[team_id]
            team.databases.add(rng.choice(database_ids))
            if rng.random() < 0.3:
                team.analyst_databases.add(rng.choice(database_ids))


def _ps_people(state: PlanetScaleState, rng: random.Random, count: int, now: datetime) -> list[str]:
    ids: set[str] = set(state.users)
    emails: set[str] = {u.email.lower() for u in state.users.values()}
    people = []
    for _ in range(count):
        first, last = random_person(rng)
        created = format_ps_time(now - timedelta(days=rng.randint(60, 1200)))
        user = PSUser(
            id=_unique_id("", rng, ids),
            email=_unique_email(_local_part(first, last), rng.choice(EMAIL_DOMAINS), emails),
            name=f"{first} {last}",
            display_name=f"{first} {last}",
            two_factor_auth_configured=rng.random() < 0.6,
            created_at=created,
        )
        state.users[user.id] = user
        people.append(user.id)
    return people


def _ps_team(
    org: PSOrganization, rng: random.Random, number: int, taken: set[str], creator: str
) -> PSTeam:
    team = PSTeam(
        id=_unique_id("", rng, taken),
        name=f"Team {number}",
        slug=f"team-{number}",
        description=rng.choice(TEAM_DESCRIPTIONS),
        creator_id=creator,
        created_at=org.created_at,
    )
    org.teams[team.id] = team
    return team


# -- a day's changes -----------------------------------------------------------------------------


def churn(
    scalr: ScalrState,
    planetscale: PlanetScaleState,
    rng: random.Random,
    share: float,
    now: datetime,
) -> int:
    """Change ``share`` of the people of both worlds, one change each; the number changed."""
    with scalr.lock, planetscale.lock:
        changed = _churn_scalr(scalr, rng, share, now)
        return changed + _churn_planetscale(planetscale, rng, share, now)


def _churn_scalr(state: ScalrState, rng: random.Random, share: float, now: datetime) -> int:
    users = sorted(state.users)
    chosen = rng.sample(users, max(1, round(len(users) * share)))
    teams = sorted(state.teams)
    for user_id in chosen:
        user = state.users[user_id]
        what = rng.choice(("sign in", "status", "team", "rename"))
        if what == "sign in":
            user.status, user.last_login_at = "Active", format_scalr_time(now)
        elif what == "status":
            user.status = "Inactive" if user.status == "Active" else "Active"
        elif what == "team" and len(teams) > 1:
            if user.teams:
                user.teams.discard(rng.choice(sorted(user.teams)))
            user.teams.add(rng.choice([t for t in teams if t not in user.teams]))
        else:
            user.full_name = renamed(user.full_name, rng)
    return len(chosen)


def _churn_planetscale(
    state: PlanetScaleState, rng: random.Random, share: float, now: datetime
) -> int:
    orgs = [state.organizations[k] for k in sorted(state.organizations)]
    people = sorted({u for org in orgs for u in org.members})
    chosen = rng.sample(people, max(1, round(len(people) * share))) if people else []
    stamp = format_ps_time(now)
    for user_id in chosen:
        org = rng.choice([o for o in orgs if user_id in o.members])
        what = rng.choice(("role", "team", "two-factor", "rename"))
        if what == "role" and org.members[user_id] != "admin":
            org.members[user_id] = rng.choice([r for r in PS_ROLES if r != org.members[user_id]])
        elif what == "team" and org.teams:
            _toggle_team(org.teams[rng.choice(sorted(org.teams))], user_id, stamp)
        else:
            user = state.users[user_id]
            if what == "two-factor":
                user.two_factor_auth_configured = not user.two_factor_auth_configured
            else:
                user.name = user.display_name = renamed(user.name, rng)
            user.updated_at = stamp
    return len(chosen)


def _toggle_team(team: PSTeam, user_id: str, stamp: str) -> None:
    if user_id in team.members:
        team.members.discard(user_id)
        team.joined_at.pop(user_id, None)
    else:
        team.members.add(user_id)
        team.joined_at[user_id] = stamp
