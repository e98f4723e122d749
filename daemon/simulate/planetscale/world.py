"""The simulated PlanetScale service: its state, a plausible population, and how it evolves.

:class:`PlanetScaleState` is everything the simulator serves: a pool of users and the
organisations they belong to (each with its members' roles and its teams). Tests mutate it
directly or through :class:`PlanetScaleEvolver`, and ``populate_planetscale`` fills it with
plausible organisations. Nothing here speaks HTTP: :mod:`daemon.simulate.planetscale.wire`
renders this state.

The evolver keeps the state self-consistent: team members are always members of the team's
organisation, every organisation keeps at least one admin, and team database grants name only
the organisation's databases. Database access is drawn from a generator of its own
(:func:`~daemon.simulate.evolve.side_rng`), so seeded histories of people and teams written before
it existed are unchanged.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from daemon.simulate.evolve import (
    Evolver,
    email_local_part,
    fresh_id,
    moment_or_now,
    person_label,
    pick,
    random_person,
    renamed,
    side_rng,
    slugify,
    unique_email,
    unique_name,
)
from daemon.simulate.names import EMAIL_DOMAINS, ORGANIZATION_NAMES, TEAM_DESCRIPTIONS, TEAM_NAMES
from daemon.simulate.server import utc_timestamp

PS_ROLES = ("member", "admin", "analyst")
#: Team database access levels: ``databases`` (Database Administrator) and ``analyst_databases``.
TEAM_DATABASE_ROLES = ("admin", "analyst")
DATABASE_NAMES = ("orders", "users", "analytics", "billing", "events", "inventory", "search")


def format_ps_time(moment: datetime) -> str:
    """PlanetScale's timestamp form, ``YYYY-MM-DDTHH:MM:SS.000Z`` in UTC (naive counts as UTC)."""
    return utc_timestamp(moment, milliseconds=True)


@dataclass
class PSUser:
    """A person known to the service; organisations list them as members."""

    id: str
    email: str
    name: str | None
    display_name: str | None = None  # None -> name, then email, is emitted
    two_factor_auth_configured: bool = False
    created_at: str = "2024-01-01T00:00:00.000Z"
    updated_at: str | None = None  # None -> created_at


@dataclass
class PSTeam:
    """A team inside one organisation, addressed on the wire by its ``slug``."""

    id: str
    name: str
    slug: str
    description: str | None = None
    members: set[str] = field(default_factory=set)  # user ids
    creator_id: str | None = None  # None -> an admin of the organisation
    created_at: str = "2024-01-01T00:00:00.000Z"
    updated_at: str | None = None  # None -> created_at
    joined_at: dict[str, str] = field(default_factory=dict)  # user id -> team membership created_at
    databases: set[str] = field(default_factory=set)  # database ids: Database Administrator
    analyst_databases: set[str] = field(default_factory=set)  # database ids: analyst access

    def database_ids(self, role: str) -> set[str]:
        """The team's database ids for ``role`` (``admin`` or ``analyst``)."""
        return self.databases if role == "admin" else self.analyst_databases


@dataclass
class PSDatabase:
    """A database of an organisation; teams may be given access to it."""

    id: str
    name: str


@dataclass
class PSOrganization:
    """An organisation: its members with their roles, and its teams."""

    id: str
    name: str
    members: dict[str, str] = field(default_factory=dict)  # user id -> role
    teams: dict[str, PSTeam] = field(default_factory=dict)  # team id -> team
    databases: dict[str, PSDatabase] = field(default_factory=dict)  # database id -> database
    created_at: str = "2023-01-01T00:00:00.000Z"
    joined_at: dict[str, str] = field(default_factory=dict)  # user id -> membership created_at


@dataclass
class PlanetScaleState:
    """Everything the simulated service knows; hold ``lock`` to mutate it under a live server."""

    token_id: str = "s1mt0k3n1d0a"
    token_secret: str = "pscale_tkn_SimulatedSecret0123456789abcdefghijklmnopq"
    users: dict[str, PSUser] = field(default_factory=dict)
    organizations: dict[str, PSOrganization] = field(default_factory=dict)  # keyed by org id
    team_database_keys: bool = True  # False: team objects lack databases/analyst_databases
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)


def _ps_emails(state: PlanetScaleState) -> set[str]:
    return {u.email.lower() for u in state.users.values()}


def _new_ps_user(state: PlanetScaleState, rng: random.Random, created: datetime) -> PSUser:
    first, last = random_person(rng)
    email = unique_email(f"{first}.{last}", rng.choice(EMAIL_DOMAINS), _ps_emails(state))
    user = PSUser(
        id=fresh_id("", rng, state.users),
        email=email,
        name=f"{first} {last}",
        display_name=f"{first} {last}",
        two_factor_auth_configured=rng.random() < 0.6,
        created_at=format_ps_time(created),
    )
    state.users[user.id] = user
    return user


def _unique_slug(name: str, others: Iterable[PSTeam]) -> str:
    """The slug of ``name``, numbered (``-2``, ``-3``, ...) until no team in ``others`` has it."""
    taken = {team.slug for team in others}
    slug, n = slugify(name), 2
    while slug in taken:
        slug, n = f"{slugify(name)}-{n}", n + 1
    return slug


def _new_ps_team(
    state: PlanetScaleState, org: PSOrganization, rng: random.Random, created: datetime
) -> PSTeam:
    name = unique_name(TEAM_NAMES, {t.name for t in org.teams.values()}, rng)
    slug = _unique_slug(name, org.teams.values())
    admins = sorted(u for u, role in org.members.items() if role == "admin")
    team = PSTeam(
        id=fresh_id("", rng, {t for o in state.organizations.values() for t in o.teams}),
        name=name,
        slug=slug,
        description=rng.choice(TEAM_DESCRIPTIONS),
        creator_id=pick(rng, admins),
        created_at=format_ps_time(created),
    )
    org.teams[team.id] = team
    return team


def populate_planetscale(
    state: PlanetScaleState,
    rng: random.Random,
    orgs: int = 2,
    users: int = 30,
    teams_per_org: int = 3,
    now: datetime | None = None,
) -> None:
    """Add ``orgs`` organisations sharing a pool of ``users`` people, with roles and teams."""
    now = moment_or_now(now)
    with state.lock:
        pool = [
            _new_ps_user(state, rng, now - timedelta(days=rng.randint(60, 1200)))
            for _ in range(users)
        ]
        taken = {o.name for o in state.organizations.values()}
        for index in range(orgs):
            name = next((n for n in ORGANIZATION_NAMES if n not in taken), None)
            if name is None:
                name = f"org-{len(taken) + 1}"
            taken.add(name)
            created = now - timedelta(days=rng.randint(400, 1500))
            org = PSOrganization(
                id=fresh_id("", rng, state.organizations),
                name=name,
                created_at=format_ps_time(created),
            )
            state.organizations[org.id] = org
            share = 0.7 if index == 0 else 0.4
            members = [u for u in pool if rng.random() < share] or pool[:1]
            for position, user in enumerate(members):
                role = "admin" if position == 0 else rng.choices(PS_ROLES, (80, 12, 8))[0]
                org.members[user.id] = role
                org.joined_at[user.id] = format_ps_time(
                    created + timedelta(days=rng.randint(0, 300))
                )
            member_ids = sorted(org.members)
            for _ in range(teams_per_org):
                team = _new_ps_team(state, org, rng, created + timedelta(days=rng.randint(1, 300)))
                for user_id in rng.sample(member_ids, k=min(len(member_ids), rng.randint(0, 6))):
                    team.members.add(user_id)
                    team.joined_at[user_id] = team.created_at
        populate_planetscale_databases(state, side_rng(rng, "planetscale databases"))


def populate_planetscale_databases(state: PlanetScaleState, rng: random.Random) -> None:
    """Give each organisation 2-4 databases and most teams access to one or two of them."""
    with state.lock:
        taken = {d for o in state.organizations.values() for d in o.databases}
        for org_id in sorted(state.organizations):
            org = state.organizations[org_id]
            for name in rng.sample(DATABASE_NAMES, rng.randint(2, 4)):
                database = PSDatabase(fresh_id("", rng, taken), name)
                taken.add(database.id)
                org.databases[database.id] = database
            database_ids = sorted(org.databases)
            for number, team_id in enumerate(sorted(org.teams)):
                team = org.teams[team_id]
                if number == 0 or rng.random() < 0.6:
                    team.databases.add(rng.choice(database_ids))
                if number == 1 or rng.random() < 0.3:
                    team.analyst_databases.add(rng.choice(database_ids))


class PlanetScaleEvolver(Evolver):
    """Applies random, realistic changes to a :class:`PlanetScaleState`, one step at a time."""

    state: PlanetScaleState

    def __init__(self, state: PlanetScaleState, rng: random.Random, max_mutations: int = 3):
        super().__init__(rng, max_mutations)
        self.state = state
        self._mutations = [
            (2.0, self._join_org),
            (1.5, self._leave_org),
            (1.2, self._change_role),
            (1.5, self._team_join),
            (1.2, self._team_leave),
            (0.4, self._add_team),
            (0.25, self._remove_team),
            (0.3, self._rename_team),
            (0.6, self._rename_user),
            (0.4, self._change_email),
            (0.8, self._toggle_2fa),
        ]
        self._access_mutations = [
            (1.0, self._grant_team_database),
            (0.8, self._revoke_team_database),
        ]

    # -- helpers -------------------------------------------------------------------------------

    def _orgs(self) -> list[PSOrganization]:
        return [self.state.organizations[k] for k in sorted(self.state.organizations)]

    def _org(self) -> PSOrganization | None:
        return pick(self.rng, self._orgs())

    def _label(self, user_id: str) -> str:
        user = self.state.users[user_id]
        return person_label(user.name, user.email)

    def _visible_users(self) -> list[PSUser]:
        """Users who belong to at least one organisation (changes to others would be invisible)."""
        member_ids = {u for org in self.state.organizations.values() for u in org.members}
        return [self.state.users[u] for u in sorted(member_ids) if u in self.state.users]

    # -- organisation membership -----------------------------------------------------------------

    def _join_org(self, now: datetime) -> str | None:
        org = self._org()
        if org is None:
            return None
        outsiders = sorted(u for u in self.state.users if u not in org.members)
        if outsiders and self.rng.random() < 0.4:
            user_id = self.rng.choice(outsiders)
        else:
            user_id = _new_ps_user(self.state, self.rng, now).id
        role = self.rng.choices(PS_ROLES, (85, 8, 7))[0]
        org.members[user_id] = role
        org.joined_at[user_id] = format_ps_time(now)
        return f"planetscale: {self._label(user_id)} joined {org.name} as {role}"

    def _leave_org(self, now: datetime) -> str | None:
        org = self._org()
        if org is None:
            return None
        admins = [u for u, role in org.members.items() if role == "admin"]
        leavers = sorted(
            u for u, role in org.members.items() if role != "admin" or len(admins) > 1
        )  # keep someone in charge
        user_id = pick(self.rng, leavers)
        if user_id is None:
            return None
        del org.members[user_id]
        org.joined_at.pop(user_id, None)
        for team in org.teams.values():
            team.members.discard(user_id)
            team.joined_at.pop(user_id, None)
        return f"planetscale: {self._label(user_id)} left {org.name}"

    def _change_role(self, now: datetime) -> str | None:
        org = self._org()
        if org is None or not org.members:
            return None
        user_id = self.rng.choice(sorted(org.members))
        old = org.members[user_id]
        admins = [u for u, role in org.members.items() if role == "admin"]
        if old == "admin" and len(admins) == 1:
            return None
        new = self.rng.choice([r for r in PS_ROLES if r != old])
        org.members[user_id] = new
        return f"planetscale: {self._label(user_id)} in {org.name}: role {old} -> {new}"

    # -- team membership -------------------------------------------------------------------------

    def _team_join(self, now: datetime) -> str | None:
        org = self._org()
        if org is None:
            return None
        options = [
            (t, u)
            for t in sorted(org.teams)
            for u in sorted(org.members)
            if u not in org.teams[t].members
        ]
        choice = pick(self.rng, options)
        if choice is None:
            return None
        team = org.teams[choice[0]]
        team.members.add(choice[1])
        team.joined_at[choice[1]] = format_ps_time(now)
        return f"planetscale: {self._label(choice[1])} joined team {org.name}/{team.slug}"

    def _team_leave(self, now: datetime) -> str | None:
        org = self._org()
        if org is None:
            return None
        options = [(t, u) for t in sorted(org.teams) for u in sorted(org.teams[t].members)]
        choice = pick(self.rng, options)
        if choice is None:
            return None
        team = org.teams[choice[0]]
        team.members.discard(choice[1])
        team.joined_at.pop(choice[1], None)
        return f"planetscale: {self._label(choice[1])} left team {org.name}/{team.slug}"

    # -- teams -----------------------------------------------------------------------------------

    def _add_team(self, now: datetime) -> str | None:
        org = self._org()
        if org is None:
            return None
        team = _new_ps_team(self.state, org, self.rng, now)
        return f"planetscale: team {org.name}/{team.slug} created"

    def _remove_team(self, now: datetime) -> str | None:
        org = self._org()
        if org is None or not org.teams:
            return None
        team = org.teams.pop(self.rng.choice(sorted(org.teams)))
        return f"planetscale: team {org.name}/{team.slug} deleted"

    def _rename_team(self, now: datetime) -> str | None:
        org = self._org()
        if org is None or not org.teams:
            return None
        team = org.teams[self.rng.choice(sorted(org.teams))]
        old_slug = team.slug
        others = [t for t in org.teams.values() if t is not team]
        team.name = unique_name(TEAM_NAMES, {t.name for t in org.teams.values()}, self.rng)
        team.slug = _unique_slug(team.name, others)
        team.updated_at = format_ps_time(now)
        return f"planetscale: team {org.name}/{old_slug} renamed to {team.name} ({team.slug})"

    # -- user profile --------------------------------------------------------------------------

    def _rename_user(self, now: datetime) -> str | None:
        user = pick(self.rng, self._visible_users())
        if user is None:
            return None
        old = user.name
        user.name = user.display_name = renamed(old, self.rng)
        user.updated_at = format_ps_time(now)
        return f"planetscale: {old or user.email} renamed to {user.name}"

    def _change_email(self, now: datetime) -> str | None:
        user = pick(self.rng, self._visible_users())
        if user is None:
            return None
        old = user.email
        user.email = unique_email(
            email_local_part(user.name, old),
            self.rng.choice(EMAIL_DOMAINS),
            _ps_emails(self.state),
        )
        user.updated_at = format_ps_time(now)
        return f"planetscale: {old} changed email to {user.email}"

    def _toggle_2fa(self, now: datetime) -> str | None:
        user = pick(self.rng, self._visible_users())
        if user is None:
            return None
        user.two_factor_auth_configured = not user.two_factor_auth_configured
        user.updated_at = format_ps_time(now)
        state = "enabled" if user.two_factor_auth_configured else "disabled"
        return f"planetscale: {self._label(user.id)} {state} two-factor authentication"

    # -- team database access --------------------------------------------------------------------

    def _grant_team_database(self, now: datetime) -> str | None:
        rng = self.access_rng
        options = [
            (org, team_id, role, db)
            for org in self._orgs()
            for team_id in sorted(org.teams)
            for role in TEAM_DATABASE_ROLES
            for db in sorted(org.databases)
            if db not in org.teams[team_id].database_ids(role)
        ]
        choice = pick(rng, options)
        if choice is None:
            return None
        org, team_id, role, db = choice
        team = org.teams[team_id]
        team.database_ids(role).add(db)
        return (
            f"planetscale: team {org.name}/{team.slug} given {role} access to database "
            f"{org.databases[db].name}"
        )

    def _revoke_team_database(self, now: datetime) -> str | None:
        options = [
            (org, team_id, role, db)
            for org in self._orgs()
            for team_id in sorted(org.teams)
            for role in TEAM_DATABASE_ROLES
            for db in sorted(org.teams[team_id].database_ids(role))
        ]
        choice = pick(self.access_rng, options)
        if choice is None:
            return None
        org, team_id, role, db = choice
        team = org.teams[team_id]
        team.database_ids(role).discard(db)
        name = org.databases[db].name if db in org.databases else db
        return f"planetscale: team {org.name}/{team.slug} lost {role} access to database {name}"
