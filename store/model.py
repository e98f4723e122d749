"""Plain snapshot objects: the one interface between provider clients and the store.

A provider client knows HTTP and its provider's JSON; the store knows SQLite. Neither knows the
other, so everything a sync learned travels in these frozen dataclasses. They live with the store
because the store defines what it can record; ``daemon/`` imports them, never the other way round.

A snapshot also says which *scopes* it read completely. Removals are only ever inferred inside a
completed scope: a listing that failed must never look like "everyone was removed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the staging module imports these dataclasses
    from store.staging import Staging


@dataclass(frozen=True)
class User:
    """One account as the provider reports it, already normalised to the schema's words."""

    id: str
    email: str | None
    name: str | None
    account_type: str = "human"
    status: str = "enabled"
    provider_status: str | None = None
    last_sign_in_at: str | None = None
    mfa_enabled: int | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class Organization:
    id: str
    name: str | None


@dataclass(frozen=True)
class Team:
    id: str
    organization_id: str
    name: str | None
    slug: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Membership:
    """A grant of a user on an organisation or a team; ``role`` is the provider's own word."""

    resource_type: str
    resource_id: str
    user_id: str
    role: str = "member"


@dataclass(frozen=True)
class MembershipScope:
    """A set of memberships whose listing completed, so absences inside it are real removals.

    ``resource_id=None`` covers every resource of ``resource_type`` in the provider (Scalr's team
    memberships all come from the one account-users listing). ``account_type`` narrows the scope to
    users of that type (Scalr's organisation membership is complete for humans even when the
    service-account listing failed).
    """

    resource_type: str
    resource_id: str | None = None
    account_type: str | None = None


@dataclass(frozen=True)
class Role:
    """A provider role (Scalr ``role-…``, system or custom); ``permissions`` sorted, joined by ,."""

    id: str
    name: str | None
    description: str | None = None
    is_system: int = 0
    permissions: str = ""


@dataclass(frozen=True)
class Grant:
    """ "Principal P holds role R on resource X", as one access policy (or team) says it.

    ``resource_type`` is ``organization`` (the Scalr account), ``environment``, ``workspace`` or
    ``database``; ``principal_type`` is ``user`` (humans and service accounts) or ``team``.
    ``role_id`` is the provider's role id or, where it has none, its word (``admin``).
    """

    resource_type: str
    resource_id: str
    resource_name: str | None
    principal_type: str
    principal_id: str
    role_id: str
    role: str | None
    binding_id: str | None = None


@dataclass(frozen=True)
class Credential:
    """A non-human credential (a Scalr service account's access token). Never its value."""

    id: str
    owner_type: str
    owner_id: str
    name: str | None
    description: str | None = None
    created_at: str | None = None
    expires_at: str | None = None
    last_used_at: str | None = None


#: The kinds of access record a provider may read beyond membership; each is baselined apart.
ACCESS_KINDS = ("roles", "grants", "credentials")


@dataclass(frozen=True)
class AccessScope:
    """A listing of roles, grants or credentials that completed, so absences inside it are real.

    ``kind`` is one of ``ACCESS_KINDS``. ``owner_id=None`` covers every row of that kind in the
    provider (Scalr's one access-policy listing); otherwise only the rows of one principal or
    owner (a PlanetScale team's database access, one service account's tokens).
    """

    kind: str
    owner_id: str | None = None


@dataclass(frozen=True)
class ScopeFailure:
    """A scope that could not be read: its last known state is kept and the run is partial."""

    scope: str
    error: str


@dataclass
class Snapshot:
    """Everything one provider run saw, plus what it saw completely.

    The objects themselves are in ``staging`` (TEMP tables, ``store/staging.py``), so that a
    snapshot of any size costs no memory; the properties below read them back, for tests.

    The organisation listing is always complete: a run that cannot list organisations fails
    and applies nothing, so an organisation missing here has really gone. Beyond that:

    * ``team_scopes``: organisation ids whose team listing finished.
    * ``membership_scopes``: membership listings that finished.
    * ``access_scopes``: role, grant and credential listings that finished.
    * ``failures``: scopes that could not be read (the run becomes ``partial``).

    A user absent from ``users`` has left only when no membership of theirs survives the diff:
    a user whose only listing failed keeps the memberships that scope protects, and so stays.
    """

    provider: str
    staging: Staging
    team_scopes: set[str] = field(default_factory=set)
    membership_scopes: list[MembershipScope] = field(default_factory=list)
    access_scopes: list[AccessScope] = field(default_factory=list)
    failures: list[ScopeFailure] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.failures)

    @property
    def organizations(self) -> list[Organization]:
        return list(self.staging.objects(Organization))

    @property
    def users(self) -> list[User]:
        return list(self.staging.objects(User))

    @property
    def teams(self) -> list[Team]:
        return list(self.staging.objects(Team))

    @property
    def memberships(self) -> list[Membership]:
        return list(self.staging.objects(Membership))

    @property
    def roles(self) -> list[Role]:
        return list(self.staging.objects(Role))

    @property
    def grants(self) -> list[Grant]:
        return list(self.staging.objects(Grant))

    @property
    def credentials(self) -> list[Credential]:
        return list(self.staging.objects(Credential))
