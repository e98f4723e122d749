"""Every listing a provider reads is a scope: the rule that prevents false removals, written once.

A removal is never observed, only inferred: someone is gone because a listing that should have
named them did not. That inference is true only when the listing was read whole. So a provider
reads each listing inside ``with builder.scope(...) as scope:`` and adds what it read to that
scope; the builder decides what reaches the snapshot:

* a scope that completes contributes its objects *and* what it covers (the memberships or teams
  whose absence now means a removal);
* a scope that fails with a provider error contributes nothing but a ``ScopeFailure`` (the run
  becomes partial and the rows it would have covered keep their last known state);
* a ``required`` scope (the listing that *is* the run, such as the organisations) re-raises its
  failure, so the run fails and nothing is applied;
* a stop (``errors.Stopped``) always ends the whole fetch.

Objects can only be added inside an open scope, and ``build()`` refuses a scope that was declared
but never read, so a new listing cannot forget the rule. The rules themselves are described in
``docs/sync-rules.md#scopes``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TypeVar

from daemon import errors
from store.model import (
    AccessScope,
    Credential,
    Grant,
    Membership,
    MembershipScope,
    Organization,
    Role,
    ScopeFailure,
    Snapshot,
    Team,
    User,
)
from store.staging import Staging

T = TypeVar("T", Organization, User, Team, Membership, Role, Grant, Credential)

PENDING, OPEN, COMPLETED, FAILED = "pending", "open", "completed", "failed"


#: Objects a scope holds before it hands them to the staging tables: a few pages' worth, so
#: memory stays flat however long the listing is.
BATCH = 500


class Scope:
    """One listing: what it read, what it covers once complete, and how it ended."""

    def __init__(
        self,
        label: str,
        seq: int,
        staging: Staging,
        memberships: Iterable[MembershipScope],
        teams_of: Iterable[str],
        required: bool,
        access: Iterable[AccessScope] = (),
    ):
        self.label = label
        self.seq = seq  # its place in declaration order, which the snapshot follows
        self.staging = staging
        self.covers_memberships = list(memberships)
        self.covers_teams_of = list(teams_of)
        self.covers_access = list(access)
        self.required = required
        self.state = PENDING
        self.error: str | None = None
        self.pending: list = []

    def add(self, item: T) -> T:
        """Record one object read by this listing; returns it, so a caller can keep it too."""
        if self.state != OPEN:
            raise RuntimeError(f"scope {self.label!r}: objects are added only while it is open")
        self.pending.append(item)
        if len(self.pending) >= BATCH:
            self._flush()
        return item

    def cover(self, *access: AccessScope) -> None:
        """Extend what this listing covers once complete, while it is being read.

        A listing may learn only as it reads which sets it lists whole (a PlanetScale team
        object that carries its database keys covers that team's grants); like everything the
        scope holds, the extra coverage counts only if the listing completes.
        """
        if self.state != OPEN:
            raise RuntimeError(f"scope {self.label!r}: coverage is extended only while it is open")
        self.covers_access.extend(access)

    @property
    def completed(self) -> bool:
        """The listing was read to its end (so what depends on it may be read too)."""
        return self.state == COMPLETED

    def _flush(self) -> None:
        self.staging.add(self.seq, self.pending)
        self.pending = []

    def __enter__(self) -> Scope:
        if self.state != PENDING:
            raise RuntimeError(f"scope {self.label!r} was already read")
        self.state = OPEN
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None:
            self._flush()
            self.state = COMPLETED
            return False
        self.state = FAILED
        self.pending = []
        self.staging.discard(self.seq)
        if isinstance(exc, errors.ProviderError) and not isinstance(exc, errors.Stopped):
            self.error = str(exc)
            return not self.required  # an optional scope's failure is recorded, not raised
        return False


class SnapshotBuilder:
    """Collects a provider's scopes in the order they were declared and assembles the Snapshot.

    Scopes may be read concurrently (each by one thread); what they read streams into
    ``staging`` (``store/staging.py``), stamped with the scope's place in declaration order, so
    the snapshot does not depend on thread timing. When two listings report the same user, the
    first declared wins (the organisation's own member listing is declared before any team's).
    """

    def __init__(self, provider: str, staging: Staging):
        self.provider = provider
        self.staging = staging
        self.scopes: list[Scope] = []
        self._declaring = threading.Lock()

    def scope(
        self,
        label: str,
        *,
        memberships: Iterable[MembershipScope] = (),
        teams_of: Iterable[str] = (),
        access: Iterable[AccessScope] = (),
        required: bool = False,
    ) -> Scope:
        """Declare a listing. ``memberships``: the membership sets it lists whole; ``teams_of``:
        the organisation ids whose teams it lists whole; ``access``: the role, grant or
        credential sets it lists whole; ``required``: its failure fails the run.

        Safe to call from a scope's thread (a service account's token listing is declared once
        the service accounts are known).
        """
        with self._declaring:
            declared = Scope(
                label, len(self.scopes), self.staging, memberships, teams_of, required, access
            )
            self.scopes.append(declared)
        return declared

    def build(self) -> Snapshot:
        snapshot = Snapshot(provider=self.provider, staging=self.staging)
        for scope in self.scopes:
            if scope.state in (PENDING, OPEN):
                raise RuntimeError(f"scope {scope.label!r} was declared but never read to its end")
            if scope.state == FAILED:
                snapshot.failures.append(ScopeFailure(scope.label, scope.error or "failed"))
                continue
            snapshot.membership_scopes.extend(scope.covers_memberships)
            snapshot.team_scopes.update(scope.covers_teams_of)
            snapshot.access_scopes.extend(scope.covers_access)
        return snapshot
