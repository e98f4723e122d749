"""The simulated Scalr account: its state, a plausible population, and how it evolves.

:class:`ScalrState` is everything the simulator serves (one account; each user appears in it
exactly once, because that is what the product reads); tests mutate it directly or through
:class:`ScalrEvolver`, and ``populate_scalr`` fills it with a plausible company. Nothing here
speaks HTTP: :mod:`daemon.simulate.scalr.wire` renders this state.

The evolver keeps the state self-consistent: team memberships refer only to existing teams;
access policies refer only to existing subjects, scopes and roles; removing a user, team or
service account removes its policies (and a service account's tokens), as Scalr does.

Access data (environments, workspaces, roles, policies, tokens) is drawn from a generator of its
own (:func:`~daemon.simulate.evolve.side_rng`), so seeded people-and-teams histories written
before it existed are unchanged.
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
    side_rng,
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
class ScalrEnvironment:
    """An environment of the account (a scope access policies may be bound to)."""

    id: str
    name: str
    created_at: str = "2024-01-01T00:00:00Z"


@dataclass
class ScalrWorkspace:
    """A workspace inside one environment (the narrowest scope of an access policy)."""

    id: str
    name: str
    environment_id: str
    created_at: str = "2024-01-01T00:00:00Z"


@dataclass
class ScalrRole:
    """A role: system roles (``is_system``) belong to no account and cannot be changed."""

    id: str
    name: str
    description: str | None = None
    is_system: bool = False
    permissions: set[str] = field(default_factory=set)  # permission ids, e.g. ``*:read``


#: Subject kinds of an access policy, as the wire names their relationships.
SUBJECT_KINDS = ("user", "team", "service-account")
#: Scope kinds of an access policy.
SCOPE_KINDS = ("account", "environment", "workspace")


@dataclass
class ScalrAccessPolicy:
    """Grants ``role_ids`` to one subject on one scope (account, environment or workspace)."""

    id: str
    subject_kind: str  # user | team | service-account
    subject_id: str
    scope_kind: str  # account | environment | workspace
    scope_id: str
    role_ids: list[str] = field(default_factory=list)
    is_system: bool = False


@dataclass
class ScalrAccessToken:
    """A service account's access token; ``token`` is the secret the API may show."""

    id: str
    name: str | None
    description: str | None = None
    created_at: str = "2024-01-01T00:00:00Z"
    expires_at: str | None = None  # None: never expires
    last_used_at: str | None = None  # None: never used
    token: str | None = None
    created_by: str | None = None  # a user id


# System roles are the same in every account. The first two ids are real (Scalr's Terraform
# provider tests name them); the admin role's id is the simulator's own.
ADMIN_ROLE_ID = "role-t67mjtmaadmin0sim"
USER_ROLE_ID = "role-t67mjtmauajto7g"
READER_ROLE_ID = "role-t67mjtmabulckto"
ADMIN_PERMISSION = "*:*"


def system_roles() -> dict[str, ScalrRole]:
    """A fresh copy of the system roles every account sees."""
    roles = (
        ScalrRole(USER_ROLE_ID, "user", "Sign in and see the account", True, {"accounts:read"}),
        ScalrRole(READER_ROLE_ID, "reader", "Read everything", True, {"*:read"}),
        ScalrRole(ADMIN_ROLE_ID, "admin", "Full access to everything", True, {ADMIN_PERMISSION}),
    )
    return {role.id: role for role in roles}


#: Names to listing keys in :attr:`ScalrState.forbidden`: the listings that answer 403.
FORBIDDEN_ROLES = "roles"
FORBIDDEN_ACCESS_POLICIES = "access-policies"
FORBIDDEN_ACCESS_TOKENS = "access-tokens"  # or "access-tokens:<sa-id>" for one service account


@dataclass
class ScalrState:
    """Everything the simulated account knows; hold ``lock`` to mutate it under a live server.

    ``forbidden`` holds listings the token may not read (they answer 403): ``"roles"``,
    ``"access-policies"``, ``"access-tokens"`` (every service account's) or
    ``"access-tokens:<sa-id>"`` (one service account's).
    """

    account_id: str = "acc-v0osim1acme0001"
    account_name: str = "acme"
    token: str = "sim-scalr-token.v1.0123456789abcdefghijklmnopqrstuv"
    users: dict[str, ScalrUser] = field(default_factory=dict)
    service_accounts: dict[str, ScalrServiceAccount] = field(default_factory=dict)
    teams: dict[str, ScalrTeam] = field(default_factory=dict)
    environments: dict[str, ScalrEnvironment] = field(default_factory=dict)
    workspaces: dict[str, ScalrWorkspace] = field(default_factory=dict)
    roles: dict[str, ScalrRole] = field(default_factory=system_roles)
    access_policies: dict[str, ScalrAccessPolicy] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, ScalrAccessToken]] = field(default_factory=dict)  # by SA
    forbidden: set[str] = field(default_factory=set)
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
        populate_scalr_access(state, side_rng(rng, "scalr access"), now)


# -- access: environments, workspaces, roles, policies, tokens --------------------------------

CUSTOM_ROLES = (
    ("Writer", "Change and run infrastructure", {"*:update", "*:create", "*:delete"}),
    ("WorkspaceAdmin", "Manage workspaces and their runs", {"workspaces:*", "runs:*"}),
    ("Deployer", "Queue runs from CI", {"runs:create", "workspaces:read", "accounts:read"}),
    ("Auditor", "Read the account and its policies", {"*:read", "access-policies:read"}),
)
ENVIRONMENT_NAMES = ("production", "staging", "development", "sandbox")
WORKSPACE_NAMES = (
    "networking",
    "payments-api",
    "data-warehouse",
    "ci-runners",
    "dns",
    "observability",
    "identity",
)
#: Permissions a custom role's permissions are changed among.
PERMISSION_POOL = (
    "*:read",
    "*:update",
    "accounts:read",
    "environments:read",
    "workspaces:*",
    "workspaces:read",
    "runs:create",
    "runs:*",
    "variables:update",
    "access-policies:read",
)
TOKEN_NAMES = ("ci", "deploy", "nightly", "terraform", "github-actions", "backup", "release")


def secret_token(rng: random.Random) -> str:
    """A JWT-looking secret: what a client must never store or log."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    body = "".join(rng.choice(alphabet) for _ in range(86))
    return f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{body[:60]}.{body[60:]}"


def scope_exists(state: ScalrState, kind: str, ident: str) -> bool:
    """Whether a policy's scope is still there."""
    if kind == "account":
        return ident == state.account_id
    if kind == "environment":
        return ident in state.environments
    return ident in state.workspaces


def subject_exists(state: ScalrState, kind: str, ident: str) -> bool:
    """Whether a policy's subject is still there."""
    pool: dict = {
        "user": state.users,
        "team": state.teams,
        "service-account": state.service_accounts,
    }[kind]
    return ident in pool


def live_policies(state: ScalrState) -> list[ScalrAccessPolicy]:
    """The policies the account serves, in id order: subject, scope and every role exist."""
    policies = (state.access_policies[k] for k in sorted(state.access_policies))
    return [
        p
        for p in policies
        if subject_exists(state, p.subject_kind, p.subject_id)
        and scope_exists(state, p.scope_kind, p.scope_id)
        and p.role_ids
        and all(r in state.roles for r in p.role_ids)
    ]


def forget_subject(state: ScalrState, kind: str, ident: str) -> None:
    """Drop a removed subject's policies (and a service account's tokens), as Scalr does."""
    for key in [
        k
        for k, p in state.access_policies.items()
        if p.subject_kind == kind and p.subject_id == ident
    ]:
        del state.access_policies[key]
    if kind == "service-account":
        state.access_tokens.pop(ident, None)


def add_policy(
    state: ScalrState,
    rng: random.Random,
    subject: tuple[str, str],
    scope: tuple[str, str],
    role_ids: Iterable[str],
    is_system: bool = False,
) -> ScalrAccessPolicy:
    """A new policy binding ``role_ids`` to ``subject`` (kind, id) on ``scope`` (kind, id)."""
    ident = fresh_id("ap", rng, state.access_policies)
    policy = ScalrAccessPolicy(
        ident, subject[0], subject[1], scope[0], scope[1], list(role_ids), is_system
    )
    state.access_policies[ident] = policy
    return policy


def add_token(
    state: ScalrState,
    rng: random.Random,
    sa_id: str,
    created: datetime,
    expires: datetime | None,
    last_used: datetime | None,
) -> ScalrAccessToken:
    """A new token of service account ``sa_id``."""
    tokens = state.access_tokens.setdefault(sa_id, {})
    taken = {t for per_sa in state.access_tokens.values() for t in per_sa}
    creator = pick(rng, sorted(state.users))
    token = ScalrAccessToken(
        id=fresh_id("at", rng, taken),
        name=rng.choice(TOKEN_NAMES),
        description=rng.choice((None, "Created for automation")),
        created_at=format_scalr_time(created),
        expires_at=format_scalr_time(expires) if expires else None,
        last_used_at=format_scalr_time(last_used) if last_used else None,
        token=secret_token(rng),
        created_by=creator,
    )
    tokens[token.id] = token
    return token


def populate_scalr_access(state: ScalrState, rng: random.Random, now: datetime) -> None:
    """Add environments, workspaces, custom roles, policies and service-account tokens.

    At least one user is an admin on the account, a team holds a grant, policies sit on the
    account, an environment and a workspace, and the first service account has a token that
    never expires and one that was never used.
    """
    with state.lock:
        _populate_scopes(state, rng, now)
        custom = _populate_custom_roles(state, rng)
        _populate_policies(state, rng, custom)
        for sa_id in sorted(state.service_accounts):
            _populate_tokens(state, rng, sa_id, now, first=sa_id == min(state.service_accounts))


def _populate_scopes(state: ScalrState, rng: random.Random, now: datetime) -> None:
    for name in ENVIRONMENT_NAMES[:2]:
        ident = fresh_id("env", rng, state.environments)
        created = format_scalr_time(now - timedelta(days=rng.randint(100, 900)))
        state.environments[ident] = ScalrEnvironment(ident, name, created)
    env_ids = sorted(state.environments)
    for name in rng.sample(WORKSPACE_NAMES, rng.randint(3, 5)):
        ident = fresh_id("ws", rng, state.workspaces)
        created = format_scalr_time(now - timedelta(days=rng.randint(10, 90)))
        state.workspaces[ident] = ScalrWorkspace(ident, name, rng.choice(env_ids), created)


def _populate_custom_roles(state: ScalrState, rng: random.Random) -> list[str]:
    ids = []
    for name, description, permissions in rng.sample(CUSTOM_ROLES, rng.randint(2, 3)):
        ident = fresh_id("role", rng, state.roles)
        state.roles[ident] = ScalrRole(ident, name, description, False, set(permissions))
        ids.append(ident)
    return ids


def _populate_policies(state: ScalrState, rng: random.Random, custom: list[str]) -> None:
    account = ("account", state.account_id)
    env = ("environment", rng.choice(sorted(state.environments)))
    ws = ("workspace", rng.choice(sorted(state.workspaces)))
    users = sorted(state.users)
    if users:
        active = [u for u in users if state.users[u].status == "Active"] or users
        add_policy(state, rng, ("user", rng.choice(active)), account, [ADMIN_ROLE_ID])
        for user_id in rng.sample(users, min(len(users), 3)):
            scope = rng.choice((env, ws))
            add_policy(state, rng, ("user", user_id), scope, [rng.choice(custom), READER_ROLE_ID])
        for user_id in users:
            add_policy(state, rng, ("user", user_id), account, [USER_ROLE_ID])
    for number, team_id in enumerate(sorted(state.teams)):
        scope = (account, env, ws)[number % 3]
        add_policy(state, rng, ("team", team_id), scope, [custom[number % len(custom)]])
    for sa_id in sorted(state.service_accounts):
        scope = rng.choice((account, ws))
        add_policy(state, rng, ("service-account", sa_id), scope, [rng.choice(custom)])


def _populate_tokens(
    state: ScalrState, rng: random.Random, sa_id: str, now: datetime, first: bool
) -> None:
    created = now - timedelta(days=rng.randint(20, 300))
    if first:
        add_token(state, rng, sa_id, created, None, now - timedelta(hours=rng.randint(1, 48)))
        add_token(state, rng, sa_id, created, created + timedelta(days=365), None)
        return
    for _ in range(rng.randint(1, 2)):
        expires = rng.choice((None, created + timedelta(days=rng.choice((90, 365)))))
        used = rng.choice((None, now - timedelta(days=rng.randint(0, 15))))
        add_token(state, rng, sa_id, created, expires, used)


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
        # Ids of users, service accounts and tokens the random changes leave alone, for a scripted
        # scenario (daemon.simulate.scenario) to keep its story; empty, it changes no draw.
        self.reserved: set[str] = set()
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
        self._access_mutations = [
            (2.0, self._use_token),
            (1.0, self._grant_role),
            (0.8, self._revoke_policy),
            (0.4, self._promote_admin),
            (0.8, self._change_policy_roles),
            (0.6, self._add_token),
            (0.4, self._remove_token),
            (0.3, self._rename_role),
            (0.4, self._change_role_permissions),
        ]

    # -- helpers -------------------------------------------------------------------------------

    def _users(self, where: Callable[[ScalrUser], bool] = lambda u: True) -> list[ScalrUser]:
        users = self.state.users
        return [users[k] for k in sorted(users) if k not in self.reserved and where(users[k])]

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
        forget_subject(self.state, "user", user.id)
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

    def _service_account_ids(self) -> list[str]:
        return [a for a in sorted(self.state.service_accounts) if a not in self.reserved]

    def _remove_service_account(self, now: datetime) -> str | None:
        ident = pick(self.rng, self._service_account_ids())
        if ident is None:
            return None
        sa = self.state.service_accounts.pop(ident)
        forget_subject(self.state, "service-account", ident)
        return f"scalr: service account {sa.name} deleted"

    def _disable_service_account(self, now: datetime) -> str | None:
        ident = pick(self.rng, self._service_account_ids())
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
        forget_subject(self.state, "team", ident)
        for user in list(self.state.users.values()) + list(self.departed.values()):
            user.teams.discard(ident)
        return f"scalr: team {team.name} deleted"

    # -- access ----------------------------------------------------------------------------------

    def _subjects(self) -> list[tuple[str, str]]:
        s = self.state
        return (
            [("user", u) for u in sorted(s.users)]
            + [("team", t) for t in sorted(s.teams)]
            + [("service-account", a) for a in sorted(s.service_accounts)]
        )

    def _scopes(self) -> list[tuple[str, str]]:
        s = self.state
        return (
            [("account", s.account_id)]
            + [("environment", e) for e in sorted(s.environments)]
            + [("workspace", w) for w in sorted(s.workspaces)]
        )

    def _subject_label(self, kind: str, ident: str) -> str:
        if kind == "user":
            return self._label(self.state.users[ident])
        if kind == "team":
            return f"team {self.state.teams[ident].name}"
        return f"service account {self.state.service_accounts[ident].name}"

    def _scope_label(self, kind: str, ident: str) -> str:
        if kind == "account":
            return f"account {self.state.account_name}"
        if kind == "environment":
            return f"environment {self.state.environments[ident].name}"
        return f"workspace {self.state.workspaces[ident].name}"

    def _role_names(self, role_ids: Iterable[str]) -> str:
        return ", ".join(self.state.roles[r].name for r in role_ids)

    def _changeable_policies(self) -> list[ScalrAccessPolicy]:
        policies = self.state.access_policies
        return [policies[k] for k in sorted(policies) if not policies[k].is_system]

    def _custom_roles(self) -> list[ScalrRole]:
        return [
            self.state.roles[k]
            for k in sorted(self.state.roles)
            if not self.state.roles[k].is_system
        ]

    def _grant_role(self, now: datetime) -> str | None:
        rng = self.access_rng
        subject, scope = pick(rng, self._subjects()), pick(rng, self._scopes())
        if subject is None or scope is None:
            return None
        roles = rng.sample(
            sorted(self.state.roles), k=min(len(self.state.roles), rng.randint(1, 2))
        )
        add_policy(self.state, rng, subject, scope, sorted(roles))
        return (
            f"scalr: {self._subject_label(*subject)} granted {self._role_names(sorted(roles))} "
            f"on {self._scope_label(*scope)}"
        )

    def _revoke_policy(self, now: datetime) -> str | None:
        policy = pick(self.access_rng, self._changeable_policies())
        if policy is None:
            return None
        del self.state.access_policies[policy.id]
        return (
            f"scalr: {self._subject_label(policy.subject_kind, policy.subject_id)} lost "
            f"{self._role_names(policy.role_ids)} on "
            f"{self._scope_label(policy.scope_kind, policy.scope_id)}"
        )

    def _promote_admin(self, now: datetime) -> str | None:
        admins = {
            p.subject_id
            for p in self.state.access_policies.values()
            if p.subject_kind == "user"
            and p.scope_kind == "account"
            and ADMIN_ROLE_ID in p.role_ids
        }
        user = pick(self.access_rng, self._users(lambda u: u.id not in admins))
        if user is None:
            return None
        account = ("account", self.state.account_id)
        add_policy(self.state, self.access_rng, ("user", user.id), account, [ADMIN_ROLE_ID])
        return f"scalr: {self._label(user)} promoted to admin of the account"

    def _change_policy_roles(self, now: datetime) -> str | None:
        rng = self.access_rng
        policy = pick(rng, self._changeable_policies())
        if policy is None or len(self.state.roles) < 2:
            return None
        old = list(policy.role_ids)
        new = old
        while new == old:
            new = sorted(rng.sample(sorted(self.state.roles), k=rng.randint(1, 2)))
        policy.role_ids = new
        return (
            f"scalr: {self._subject_label(policy.subject_kind, policy.subject_id)} on "
            f"{self._scope_label(policy.scope_kind, policy.scope_id)}: roles "
            f"{self._role_names(old)} -> {self._role_names(new)}"
        )

    def _add_token(self, now: datetime) -> str | None:
        rng = self.access_rng
        sa_id = pick(rng, sorted(self.state.service_accounts))
        if sa_id is None:
            return None
        expires = rng.choice((None, now + timedelta(days=rng.choice((30, 90, 365)))))
        token = add_token(self.state, rng, sa_id, now, expires, None)
        return f"scalr: token {token.name} created for service account {self._sa_name(sa_id)}"

    def _tokens(self) -> list[tuple[str, ScalrAccessToken]]:
        return [
            (sa_id, self.state.access_tokens[sa_id][t])
            for sa_id in sorted(self.state.access_tokens)
            if sa_id in self.state.service_accounts
            for t in sorted(self.state.access_tokens[sa_id])
            if t not in self.reserved
        ]

    def _sa_name(self, sa_id: str) -> str:
        return self.state.service_accounts[sa_id].name

    def _use_token(self, now: datetime) -> str | None:
        stamp = format_scalr_time(now)
        choice = pick(
            self.access_rng, [(s, t) for s, t in self._tokens() if t.last_used_at != stamp]
        )
        if choice is None:
            return None
        sa_id, token = choice
        token.last_used_at = stamp
        return f"scalr: token {token.name} of service account {self._sa_name(sa_id)} used"

    def _remove_token(self, now: datetime) -> str | None:
        choice = pick(self.access_rng, self._tokens())
        if choice is None:
            return None
        sa_id, token = choice
        del self.state.access_tokens[sa_id][token.id]
        return f"scalr: token {token.name} of service account {self._sa_name(sa_id)} deleted"

    def _rename_role(self, now: datetime) -> str | None:
        role = pick(self.access_rng, self._custom_roles())
        if role is None:
            return None
        taken = {r.name for r in self.state.roles.values()}
        old = role.name
        role.name = numbered_name(old.rstrip("0123456789") + "{}", taken)
        return f"scalr: role {old} renamed to {role.name}"

    def _change_role_permissions(self, now: datetime) -> str | None:
        rng = self.access_rng
        role = pick(rng, self._custom_roles())
        if role is None:
            return None
        old = set(role.permissions)
        while role.permissions == old:
            role.permissions = set(rng.sample(PERMISSION_POOL, rng.randint(1, 3)))
        return (
            f"scalr: role {role.name} permissions {', '.join(sorted(old))} -> "
            f"{', '.join(sorted(role.permissions))}"
        )
