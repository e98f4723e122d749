"""Evolving fake organisations for the demo and for randomized tests.

``populate_*`` fills a simulator state with a plausible company; an *evolver* then applies a few
random, realistic changes per step (joiners, leavers, sign-ins, disables, role changes, team moves,
...) and returns a human-readable line for each. Everything is driven by the ``random.Random``
passed in, and never by set or hash order, so a seed reproduces the same history in any process.

Evolvers keep their state self-consistent: team memberships refer only to existing teams and, for
PlanetScale, only to members of the team's organisation. They hold the state's lock for a whole
step, so a live simulator never serves a half-applied change.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from daemon.simulate import names
from daemon.simulate.planetscale import (
    PlanetScaleState,
    PSOrganization,
    PSTeam,
    PSUser,
    format_ps_time,
)
from daemon.simulate.scalr import (
    ScalrServiceAccount,
    ScalrState,
    ScalrTeam,
    ScalrUser,
    format_scalr_time,
)

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
PS_ROLES = ("member", "admin", "analyst")

T = TypeVar("T")


def make_id(prefix: str, rng: random.Random, length: int | None = None) -> str:
    """A realistic id: ``user-`` + 17 lowercase alnum for Scalr, 12 bare characters for PlanetScale.

    ``prefix`` may be given with or without its dash (``"user"`` or ``"user-"``); an empty prefix
    gives a bare PlanetScale-style id. ``length`` defaults to 17 with a prefix and 12 without.
    """
    if length is None:
        length = 17 if prefix else 12
    body = "".join(rng.choice(ID_ALPHABET) for _ in range(length))
    if not prefix:
        return body
    return prefix + body if prefix.endswith("-") else f"{prefix}-{body}"


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


def _fresh_id(prefix: str, rng: random.Random, taken: Iterable[str]) -> str:
    taken = set(taken)
    while True:
        ident = make_id(prefix, rng)
        if ident not in taken:
            return ident


def _pick(rng: random.Random, items: Iterable[T]) -> T | None:
    """A random element of ``items`` in a reproducible way (callers pass sorted sequences)."""
    pool = list(items)
    return rng.choice(pool) if pool else None


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "team"


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(names.FIRST_NAMES), rng.choice(names.LAST_NAMES)


def _unique_email(local: str, domain: str, taken: set[str]) -> str:
    local = re.sub(r"[^a-z0-9.]+", "", local.lower()) or "user"
    email, n = f"{local}@{domain}", 2
    while email.lower() in taken:
        email, n = f"{local}{n}@{domain}", n + 1
    return email


def _unique_name(candidates: Iterable[str], taken: set[str], rng: random.Random) -> str:
    free = [c for c in candidates if c not in taken]
    if free:
        return rng.choice(free)
    n = len(taken) + 1
    while f"Team {n}" in taken:
        n += 1
    return f"Team {n}"


def _weighted_order(rng: random.Random, options: list[tuple[float, T]]) -> list[T]:
    """All options in a random order where heavier ones tend to come first (weighted shuffle)."""
    keyed = [(rng.random() ** (1.0 / weight), option) for weight, option in options]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [option for _, option in keyed]


# --------------------------------------------------------------------------------------------- #
# Scalr
# --------------------------------------------------------------------------------------------- #


def _scalr_domain(state: ScalrState) -> str:
    return f"{state.account_name}.example"


def _scalr_emails(state: ScalrState, extra: Iterable[ScalrUser] = ()) -> set[str]:
    return {u.email.lower() for u in list(state.users.values()) + list(extra)}


def populate_scalr(
    state: ScalrState,
    rng: random.Random,
    users: int = 25,
    service_accounts: int = 4,
    teams: int = 5,
    now: datetime | None = None,
) -> None:
    """Add a plausible set of users, service accounts and teams to ``state``."""
    now = _now(now)
    with state.lock:
        taken_names = {t.name for t in state.teams.values()}
        for _ in range(teams):
            name = _unique_name(names.TEAM_NAMES, taken_names, rng)
            taken_names.add(name)
            ident = _fresh_id("team", rng, state.teams)
            state.teams[ident] = ScalrTeam(ident, name, rng.choice(names.TEAM_DESCRIPTIONS))
        team_ids = sorted(state.teams)
        emails = _scalr_emails(state)
        for _ in range(users):
            first, last = _person(rng)
            email = _unique_email(f"{first}.{last}", _scalr_domain(state), emails)
            emails.add(email.lower())
            status = rng.choices(("Active", "Inactive", "Pending"), (80, 10, 10))[0]
            created = now - timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399))
            last_login = None
            if status == "Active" and rng.random() > 0.05:
                last_login = now - timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
            elif status == "Inactive" and rng.random() > 0.3:
                last_login = created + timedelta(days=rng.randint(1, 25))
            ident = _fresh_id("user", rng, state.users)
            state.users[ident] = ScalrUser(
                id=ident,
                email=email,
                full_name=None if rng.random() < 0.08 else f"{first} {last}",
                status=status,
                last_login_at=format_scalr_time(min(last_login, now)) if last_login else None,
                created_at=format_scalr_time(created),
                teams=set(rng.sample(team_ids, k=min(len(team_ids), rng.choice((0, 1, 1, 2))))),
            )
        sa_names = {sa.name for sa in state.service_accounts.values()}
        for _ in range(service_accounts):
            _add_service_account(
                state,
                rng,
                now,
                sa_names,
                status=rng.choices(("Active", "Inactive"), (85, 15))[0],
                age_days=rng.randint(10, 700),
            )


def _add_service_account(
    state: ScalrState,
    rng: random.Random,
    now: datetime,
    taken: set[str],
    status: str = "Active",
    age_days: int = 0,
) -> ScalrServiceAccount:
    name = next(
        (
            n
            for n in rng.sample(names.SERVICE_ACCOUNT_NAMES, len(names.SERVICE_ACCOUNT_NAMES))
            if n not in taken
        ),
        None,
    )
    if name is None:
        n = len(taken) + 1
        while f"automation-{n}" in taken:
            n += 1
        name = f"automation-{n}"
    taken.add(name)
    ident = _fresh_id("sa", rng, state.service_accounts)
    sa = ScalrServiceAccount(
        id=ident,
        name=name,
        email=f"{name}@{state.account_name}.scalr.io",
        description=rng.choice((None, f"Used by {name.replace('-', ' ')}")),
        status=status,
        created_at=format_scalr_time(now - timedelta(days=age_days)),
    )
    state.service_accounts[ident] = sa
    return sa


class _Evolver:
    """Shared stepping: each step draws weighted mutations until one applies, 1..k times.

    Subclasses fill ``_mutations`` with ``(weight, mutation)`` pairs; a mutation returns its
    description, or None when it does not apply to the current state (no one to re-enable...).
    """

    state: ScalrState | PlanetScaleState
    _mutations: list[tuple[float, Callable[[datetime], str | None]]]

    def __init__(self, rng: random.Random, max_mutations: int):
        self.rng = rng
        self.max_mutations = max_mutations

    def step(self, now: datetime) -> list[str]:
        """Apply 1..max_mutations changes stamped ``now``; return one description per change."""
        with self.state.lock:
            changes = []
            for _ in range(self.rng.randint(1, self.max_mutations)):
                for mutation in _weighted_order(self.rng, self._mutations):
                    description = mutation(now)
                    if description is not None:
                        changes.append(description)
                        break
            return changes


class ScalrEvolver(_Evolver):
    """Applies random, realistic changes to a :class:`ScalrState`, one step at a time."""

    def __init__(self, state: ScalrState, rng: random.Random, max_mutations: int = 3):
        super().__init__(rng, max_mutations)
        self.state = state
        self.departed: dict[str, ScalrUser] = {}  # leavers, kept so the same id can come back
        self._mutations: list[tuple[float, Callable[[datetime], str | None]]] = [
            (6.0, self._sign_in),
            (2.0, self._joiner),
            (1.5, self._leaver),
            (0.7, self._returning_leaver),
            (1.0, self._disable),
            (0.8, self._re_enable),
            (1.5, self._activate_pending),
            (0.6, self._rename),
            (0.5, self._change_email),
            (1.0, self._team_move),
            (1.0, self._team_join),
            (0.8, self._team_leave),
            (0.4, self._add_service_account),
            (0.3, self._remove_service_account),
            (0.4, self._disable_service_account),
            (0.4, self._add_team),
            (0.3, self._rename_team),
            (0.2, self._remove_team),
        ]

    # -- helpers -------------------------------------------------------------------------------

    def _users(self, where: Callable[[ScalrUser], bool] = lambda u: True) -> list[ScalrUser]:
        return [self.state.users[k] for k in sorted(self.state.users) if where(self.state.users[k])]

    @staticmethod
    def _label(user: ScalrUser) -> str:
        return f"{user.full_name} <{user.email}>" if user.full_name else user.email

    def _team_name(self, team_id: str) -> str:
        return self.state.teams[team_id].name

    # -- people ----------------------------------------------------------------------------------

    def _joiner(self, now: datetime) -> str:
        first, last = _person(self.rng)
        email = _unique_email(
            f"{first}.{last}",
            _scalr_domain(self.state),
            _scalr_emails(self.state, self.departed.values()),
        )
        pending = self.rng.random() < 0.35
        user = ScalrUser(
            id=_fresh_id("user", self.rng, list(self.state.users) + list(self.departed)),
            email=email,
            full_name=f"{first} {last}",
            status="Pending" if pending else "Active",
            last_login_at=None if pending else format_scalr_time(now),
            created_at=format_scalr_time(now),
        )
        team = _pick(self.rng, sorted(self.state.teams))
        if team is not None and self.rng.random() < 0.5:
            user.teams.add(team)
        self.state.users[user.id] = user
        return f"scalr: {self._label(user)} joined ({user.status})"

    def _leaver(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users())
        if user is None:
            return None
        del self.state.users[user.id]
        user.teams.clear()
        self.departed[user.id] = user
        return f"scalr: {self._label(user)} left the account"

    def _returning_leaver(self, now: datetime) -> str | None:
        ident = _pick(self.rng, sorted(self.departed))
        if ident is None:
            return None
        user = self.departed.pop(ident)
        if any(u.email.lower() == user.email.lower() for u in self.state.users.values()):
            user.email = _unique_email(
                user.email.split("@")[0], _scalr_domain(self.state), _scalr_emails(self.state)
            )
        if self.rng.random() < 0.5:
            user.status = "Pending"
        else:
            user.status, user.last_login_at = "Active", format_scalr_time(now)
        self.state.users[user.id] = user
        return f"scalr: {self._label(user)} came back ({user.status})"

    def _disable(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users(lambda u: u.status == "Active"))
        if user is None:
            return None
        user.status = "Inactive"
        return f"scalr: {self._label(user)} disabled"

    def _re_enable(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users(lambda u: u.status == "Inactive"))
        if user is None:
            return None
        user.status = "Active"
        return f"scalr: {self._label(user)} re-enabled"

    def _activate_pending(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users(lambda u: u.status == "Pending"))
        if user is None:
            return None
        user.status, user.last_login_at = "Active", format_scalr_time(now)
        return f"scalr: {self._label(user)} accepted the invitation and signed in"

    def _sign_in(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users(lambda u: u.status == "Active"))
        if user is None:
            return None
        user.last_login_at = format_scalr_time(now)
        return f"scalr: {self._label(user)} signed in"

    def _rename(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users())
        if user is None:
            return None
        first = (user.full_name or "").split(" ")[0] or self.rng.choice(names.FIRST_NAMES)
        old = user.full_name
        new = old
        while new == old:
            new = f"{first} {self.rng.choice(names.LAST_NAMES)}"
        user.full_name = new
        return f"scalr: {old or user.email} renamed to {new}"

    def _change_email(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users())
        if user is None:
            return None
        old = user.email
        local = (user.full_name or old.split("@")[0]).replace(" ", ".")
        user.email = _unique_email(
            local,
            _scalr_domain(self.state),
            _scalr_emails(self.state, self.departed.values()) | {old.lower()},
        )
        if user.username is not None:
            user.username = user.email
        return f"scalr: {old} changed email to {user.email}"

    # -- team memberships ------------------------------------------------------------------------

    def _team_move(self, now: datetime) -> str | None:
        movers = self._users(lambda u: bool(u.teams) and bool(set(self.state.teams) - u.teams))
        user = _pick(self.rng, movers)
        if user is None:
            return None
        leave = self.rng.choice(sorted(user.teams))
        join = self.rng.choice(sorted(set(self.state.teams) - user.teams))
        user.teams.discard(leave)
        user.teams.add(join)
        return (
            f"scalr: {self._label(user)} moved from team {self._team_name(leave)} "
            f"to {self._team_name(join)}"
        )

    def _team_join(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users(lambda u: bool(set(self.state.teams) - u.teams)))
        if user is None:
            return None
        team = self.rng.choice(sorted(set(self.state.teams) - user.teams))
        user.teams.add(team)
        return f"scalr: {self._label(user)} joined team {self._team_name(team)}"

    def _team_leave(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._users(lambda u: bool(u.teams)))
        if user is None:
            return None
        team = self.rng.choice(sorted(user.teams))
        user.teams.discard(team)
        return f"scalr: {self._label(user)} left team {self._team_name(team)}"

    # -- service accounts ------------------------------------------------------------------------

    def _add_service_account(self, now: datetime) -> str:
        taken = {sa.name for sa in self.state.service_accounts.values()}
        sa = _add_service_account(self.state, self.rng, now, taken)
        return f"scalr: service account {sa.name} created"

    def _remove_service_account(self, now: datetime) -> str | None:
        ident = _pick(self.rng, sorted(self.state.service_accounts))
        if ident is None:
            return None
        sa = self.state.service_accounts.pop(ident)
        return f"scalr: service account {sa.name} deleted"

    def _disable_service_account(self, now: datetime) -> str | None:
        ident = _pick(self.rng, sorted(self.state.service_accounts))
        if ident is None:
            return None
        sa = self.state.service_accounts[ident]
        sa.status = "Inactive" if sa.status == "Active" else "Active"
        verb = "disabled" if sa.status == "Inactive" else "re-enabled"
        return f"scalr: service account {sa.name} {verb}"

    # -- teams -----------------------------------------------------------------------------------

    def _add_team(self, now: datetime) -> str:
        taken = {t.name for t in self.state.teams.values()}
        name = _unique_name(names.TEAM_NAMES, taken, self.rng)
        ident = _fresh_id("team", self.rng, self.state.teams)
        self.state.teams[ident] = ScalrTeam(ident, name, self.rng.choice(names.TEAM_DESCRIPTIONS))
        return f"scalr: team {name} created"

    def _rename_team(self, now: datetime) -> str | None:
        ident = _pick(self.rng, sorted(self.state.teams))
        if ident is None:
            return None
        team = self.state.teams[ident]
        old = team.name
        team.name = _unique_name(
            names.TEAM_NAMES, {t.name for t in self.state.teams.values()}, self.rng
        )
        return f"scalr: team {old} renamed to {team.name}"

    def _remove_team(self, now: datetime) -> str | None:
        ident = _pick(self.rng, sorted(self.state.teams))
        if ident is None:
            return None
        team = self.state.teams.pop(ident)
        for user in list(self.state.users.values()) + list(self.departed.values()):
            user.teams.discard(ident)
        return f"scalr: team {team.name} deleted"


# --------------------------------------------------------------------------------------------- #
# PlanetScale
# --------------------------------------------------------------------------------------------- #


def _ps_emails(state: PlanetScaleState) -> set[str]:
    return {u.email.lower() for u in state.users.values()}


def _new_ps_user(state: PlanetScaleState, rng: random.Random, created: datetime) -> PSUser:
    first, last = _person(rng)
    email = _unique_email(f"{first}.{last}", rng.choice(names.EMAIL_DOMAINS), _ps_emails(state))
    user = PSUser(
        id=_fresh_id("", rng, state.users),
        email=email,
        name=f"{first} {last}",
        display_name=f"{first} {last}",
        two_factor_auth_configured=rng.random() < 0.6,
        created_at=format_ps_time(created),
    )
    state.users[user.id] = user
    return user


def _new_ps_team(
    state: PlanetScaleState, org: PSOrganization, rng: random.Random, created: datetime
) -> PSTeam:
    name = _unique_name(names.TEAM_NAMES, {t.name for t in org.teams.values()}, rng)
    slug, n = slugify(name), 2
    while any(t.slug == slug for t in org.teams.values()):
        slug, n = f"{slugify(name)}-{n}", n + 1
    admins = sorted(u for u, role in org.members.items() if role == "admin")
    team = PSTeam(
        id=_fresh_id("", rng, {t for o in state.organizations.values() for t in o.teams}),
        name=name,
        slug=slug,
        description=rng.choice(names.TEAM_DESCRIPTIONS),
        creator_id=_pick(rng, admins),
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
    now = _now(now)
    with state.lock:
        pool = [
            _new_ps_user(state, rng, now - timedelta(days=rng.randint(60, 1200)))
            for _ in range(users)
        ]
        taken = {o.name for o in state.organizations.values()}
        for index in range(orgs):
            name = next((n for n in names.ORGANIZATION_NAMES if n not in taken), None)
            if name is None:
                name = f"org-{len(taken) + 1}"
            taken.add(name)
            created = now - timedelta(days=rng.randint(400, 1500))
            org = PSOrganization(
                id=_fresh_id("", rng, state.organizations),
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


class PlanetScaleEvolver(_Evolver):
    """Applies random, realistic changes to a :class:`PlanetScaleState`, one step at a time."""

    def __init__(self, state: PlanetScaleState, rng: random.Random, max_mutations: int = 3):
        super().__init__(rng, max_mutations)
        self.state = state
        self._mutations: list[tuple[float, Callable[[datetime], str | None]]] = [
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

    # -- helpers -------------------------------------------------------------------------------

    def _orgs(self) -> list[PSOrganization]:
        return [self.state.organizations[k] for k in sorted(self.state.organizations)]

    def _org(self) -> PSOrganization | None:
        return _pick(self.rng, self._orgs())

    def _label(self, user_id: str) -> str:
        user = self.state.users[user_id]
        return f"{user.name} <{user.email}>" if user.name else user.email

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
        user_id = _pick(self.rng, leavers)
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
        choice = _pick(self.rng, options)
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
        choice = _pick(self.rng, options)
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
        team.name = _unique_name(names.TEAM_NAMES, {t.name for t in org.teams.values()}, self.rng)
        slug, n = slugify(team.name), 2
        while any(t.slug == slug for t in others):
            slug, n = f"{slugify(team.name)}-{n}", n + 1
        team.slug = slug
        team.updated_at = format_ps_time(now)
        return f"planetscale: team {org.name}/{old_slug} renamed to {team.name} ({team.slug})"

    # -- user profile --------------------------------------------------------------------------

    def _rename_user(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._visible_users())
        if user is None:
            return None
        old = user.name
        first = (old or "").split(" ")[0] or self.rng.choice(names.FIRST_NAMES)
        new = old
        while new == old:
            new = f"{first} {self.rng.choice(names.LAST_NAMES)}"
        user.name = user.display_name = new
        user.updated_at = format_ps_time(now)
        return f"planetscale: {old or user.email} renamed to {new}"

    def _change_email(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._visible_users())
        if user is None:
            return None
        old = user.email
        local = (user.name or old.split("@")[0]).replace(" ", ".")
        user.email = _unique_email(
            local, self.rng.choice(names.EMAIL_DOMAINS), _ps_emails(self.state)
        )
        user.updated_at = format_ps_time(now)
        return f"planetscale: {old} changed email to {user.email}"

    def _toggle_2fa(self, now: datetime) -> str | None:
        user = _pick(self.rng, self._visible_users())
        if user is None:
            return None
        user.two_factor_auth_configured = not user.two_factor_auth_configured
        user.updated_at = format_ps_time(now)
        state = "enabled" if user.two_factor_auth_configured else "disabled"
        return f"planetscale: {self._label(user.id)} {state} two-factor authentication"
