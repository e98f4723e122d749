"""The simulated Scalr account: its state, a plausible population, and how it evolves.

:class:`ScalrState` is everything the simulator serves (one account; each user appears in it
exactly once, because that is what the product reads); tests mutate it directly or through
:class:`ScalrEvolver`, and ``populate_scalr`` fills it with a plausible company. Nothing here
speaks HTTP: :mod:`daemon.simulate.scalr.wire` renders this state.

The evolver keeps the state self-consistent: team memberships refer only to existing teams.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from daemon.simulate.evolve import (
    Evolver,
    email_local_part,
    fresh_id,
    moment_or_now,
    numbered_name,
    person_label,
    pick,
    random_person,
    renamed,
    unique_email,
    unique_name,
)
from daemon.simulate.names import SERVICE_ACCOUNT_NAMES, TEAM_DESCRIPTIONS, TEAM_NAMES
from daemon.simulate.server import utc_timestamp


def format_scalr_time(moment: datetime) -> str:
    """Scalr's timestamp form, ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (naive datetimes count as UTC)."""
    return utc_timestamp(moment)


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
    """A service account of the account (a non-human identity with its own email)."""

    id: str
    name: str
    email: str
    description: str | None = None
    status: str = "Active"  # Active | Inactive (service accounts are never Pending)
    created_at: str = "2024-01-01T00:00:00Z"


@dataclass
class ScalrTeam:
    """A team of the account; its members are the users whose ``teams`` name it."""

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
    now = moment_or_now(now)
    with state.lock:
        for _ in range(teams):
            _add_team(state, rng)
        team_ids = sorted(state.teams)
        emails = _scalr_emails(state)
        for _ in range(users):
            first, last = random_person(rng)
            email = unique_email(f"{first}.{last}", _scalr_domain(state), emails)
            emails.add(email.lower())
            status = rng.choices(("Active", "Inactive", "Pending"), (80, 10, 10))[0]
            created = now - timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399))
            last_login = None
            if status == "Active" and rng.random() > 0.05:
                last_login = now - timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
            elif status == "Inactive" and rng.random() > 0.3:
                last_login = created + timedelta(days=rng.randint(1, 25))
            ident = fresh_id("user", rng, state.users)
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


def _add_team(state: ScalrState, rng: random.Random) -> ScalrTeam:
    """A new team with a name no other team of the account has."""
    name = unique_name(TEAM_NAMES, {t.name for t in state.teams.values()}, rng)
    ident = fresh_id("team", rng, state.teams)
    team = state.teams[ident] = ScalrTeam(ident, name, rng.choice(TEAM_DESCRIPTIONS))
    return team


def _free_service_account_name(rng: random.Random, taken: set[str]) -> str:
    """A random unused name from the pool, else a numbered ``automation-N``."""
    shuffled = rng.sample(SERVICE_ACCOUNT_NAMES, len(SERVICE_ACCOUNT_NAMES))
    name = next((n for n in shuffled if n not in taken), None)
    return name if name is not None else numbered_name("automation-{}", taken)


def _add_service_account(
    state: ScalrState,
    rng: random.Random,
    now: datetime,
    taken: set[str],
    status: str = "Active",
    age_days: int = 0,
) -> ScalrServiceAccount:
    name = _free_service_account_name(rng, taken)
    taken.add(name)
    ident = fresh_id("sa", rng, state.service_accounts)
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


class ScalrEvolver(Evolver):
    """Applies random, realistic changes to a :class:`ScalrState`, one step at a time."""

    state: ScalrState

    def __init__(self, state: ScalrState, rng: random.Random, max_mutations: int = 3):
        super().__init__(rng, max_mutations)
        self.state = state
        self.departed: dict[str, ScalrUser] = {}  # leavers, kept so the same id can come back
        self._mutations = [
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

    def _random_user(self, status: str | None = None) -> ScalrUser | None:
        """A random user, or a random one of those with ``status``; None when there is none."""
        return pick(self.rng, self._users(lambda u: status is None or u.status == status))

    @staticmethod
    def _label(user: ScalrUser) -> str:
        return person_label(user.full_name, user.email)

    def _team_name(self, team_id: str) -> str:
        return self.state.teams[team_id].name

    # -- people ----------------------------------------------------------------------------------

    def _joiner(self, now: datetime) -> str:
        first, last = random_person(self.rng)
        email = unique_email(
            f"{first}.{last}",
            _scalr_domain(self.state),
            _scalr_emails(self.state, self.departed.values()),
        )
        pending = self.rng.random() < 0.35
        user = ScalrUser(
            id=fresh_id("user", self.rng, list(self.state.users) + list(self.departed)),
            email=email,
            full_name=f"{first} {last}",
            status="Pending" if pending else "Active",
            last_login_at=None if pending else format_scalr_time(now),
            created_at=format_scalr_time(now),
        )
        team = pick(self.rng, sorted(self.state.teams))
        if team is not None and self.rng.random() < 0.5:
            user.teams.add(team)
        self.state.users[user.id] = user
        return f"scalr: {self._label(user)} joined ({user.status})"

    def _leaver(self, now: datetime) -> str | None:
        user = self._random_user()
        if user is None:
            return None
        del self.state.users[user.id]
        user.teams.clear()
        self.departed[user.id] = user
        return f"scalr: {self._label(user)} left the account"

    def _returning_leaver(self, now: datetime) -> str | None:
        ident = pick(self.rng, sorted(self.departed))
        if ident is None:
            return None
        user = self.departed.pop(ident)
        if any(u.email.lower() == user.email.lower() for u in self.state.users.values()):
            user.email = unique_email(
                user.email.split("@")[0], _scalr_domain(self.state), _scalr_emails(self.state)
            )
        if self.rng.random() < 0.5:
            user.status = "Pending"
        else:
            user.status, user.last_login_at = "Active", format_scalr_time(now)
        self.state.users[user.id] = user
        return f"scalr: {self._label(user)} came back ({user.status})"

    def _switch_status(self, old: str, new: str, verb: str) -> str | None:
        """Move a random user from status ``old`` to ``new``; the change reads ``<user> <verb>``."""
        user = self._random_user(old)
        if user is None:
            return None
        user.status = new
        return f"scalr: {self._label(user)} {verb}"

    def _disable(self, now: datetime) -> str | None:
        return self._switch_status("Active", "Inactive", "disabled")

    def _re_enable(self, now: datetime) -> str | None:
        return self._switch_status("Inactive", "Active", "re-enabled")

    def _activate_pending(self, now: datetime) -> str | None:
        user = self._random_user("Pending")
        if user is None:
            return None
        user.status, user.last_login_at = "Active", format_scalr_time(now)
        return f"scalr: {self._label(user)} accepted the invitation and signed in"

    def _sign_in(self, now: datetime) -> str | None:
        user = self._random_user("Active")
        if user is None:
            return None
        user.last_login_at = format_scalr_time(now)
        return f"scalr: {self._label(user)} signed in"

    def _rename(self, now: datetime) -> str | None:
        user = self._random_user()
        if user is None:
            return None
        old = user.full_name
        user.full_name = renamed(old, self.rng)
        return f"scalr: {old or user.email} renamed to {user.full_name}"

    def _change_email(self, now: datetime) -> str | None:
        user = self._random_user()
        if user is None:
            return None
        old = user.email
        user.email = unique_email(
            email_local_part(user.full_name, old),
            _scalr_domain(self.state),
            _scalr_emails(self.state, self.departed.values()) | {old.lower()},
        )
        if user.username is not None:
            user.username = user.email
        return f"scalr: {old} changed email to {user.email}"

    # -- team memberships ------------------------------------------------------------------------

    def _team_move(self, now: datetime) -> str | None:
        movers = self._users(lambda u: bool(u.teams) and bool(set(self.state.teams) - u.teams))
        user = pick(self.rng, movers)
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
        user = pick(self.rng, self._users(lambda u: bool(set(self.state.teams) - u.teams)))
        if user is None:
            return None
        team = self.rng.choice(sorted(set(self.state.teams) - user.teams))
        user.teams.add(team)
        return f"scalr: {self._label(user)} joined team {self._team_name(team)}"

    def _team_leave(self, now: datetime) -> str | None:
        user = pick(self.rng, self._users(lambda u: bool(u.teams)))
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
        ident = pick(self.rng, sorted(self.state.service_accounts))
        if ident is None:
            return None
        sa = self.state.service_accounts.pop(ident)
        return f"scalr: service account {sa.name} deleted"

    def _disable_service_account(self, now: datetime) -> str | None:
        ident = pick(self.rng, sorted(self.state.service_accounts))
        if ident is None:
            return None
        sa = self.state.service_accounts[ident]
        sa.status = "Inactive" if sa.status == "Active" else "Active"
        verb = "disabled" if sa.status == "Inactive" else "re-enabled"
        return f"scalr: service account {sa.name} {verb}"

    # -- teams -----------------------------------------------------------------------------------

    def _add_team(self, now: datetime) -> str:
        return f"scalr: team {_add_team(self.state, self.rng).name} created"

    def _rename_team(self, now: datetime) -> str | None:
        ident = pick(self.rng, sorted(self.state.teams))
        if ident is None:
            return None
        team = self.state.teams[ident]
        old = team.name
        team.name = unique_name(TEAM_NAMES, {t.name for t in self.state.teams.values()}, self.rng)
        return f"scalr: team {old} renamed to {team.name}"

    def _remove_team(self, now: datetime) -> str | None:
        ident = pick(self.rng, sorted(self.state.teams))
        if ident is None:
            return None
        team = self.state.teams.pop(ident)
        for user in list(self.state.users.values()) + list(self.departed.values()):
            user.teams.discard(ident)
        return f"scalr: team {team.name} deleted"
