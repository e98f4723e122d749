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
    * ``failures``: scopes that could not be read (the run becomes ``partial``).

    A user absent from ``users`` has left only when no membership of theirs survives the diff:
    a user whose only listing failed keeps the memberships that scope protects, and so stays.
    """

    provider: str
    staging: Staging
    team_scopes: set[str] = field(default_factory=set)
    membership_scopes: list[MembershipScope] = field(default_factory=list)
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
