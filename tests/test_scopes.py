"""The scope step: what a completed, a failed and a required listing put into a snapshot.

These rules decide whether an absence is a removal, so they are pinned here on their own, without
HTTP; the provider suites prove the same rules end to end over real HTTP.
"""

import sqlite3
import threading

import pytest
import sqlite_utils

from daemon import errors
from daemon.providers.scopes import SnapshotBuilder
from store.model import Membership, MembershipScope, Organization, ScopeFailure, Team, User
from store.staging import Staging

ORG_MEMBERS = MembershipScope("organization", "org-1")


def _builder(provider: str) -> SnapshotBuilder:
    """A builder staging into a private in-memory database, as a sync stages into its own."""
    connection = sqlite3.connect(":memory:", check_same_thread=False)  # scopes run in threads
    return SnapshotBuilder(provider, Staging(sqlite_utils.Database(connection)))


def _outage(label: str = "PlanetScale") -> errors.ProviderError:
    return errors.ServerError(label, "had a server error", path="/v1/organizations/acme/members")


def test_a_completed_scope_contributes_its_objects_and_what_it_covers():
    builder = _builder("planetscale")
    with builder.scope("organizations", required=True) as listing:
        listing.add(Organization("org-1", "acme"))
    with builder.scope("members", memberships=[ORG_MEMBERS]) as listing:
        listing.add(User("u-1", "a@example.com", "A"))
        listing.add(Membership("organization", "org-1", "u-1", "admin"))
    with builder.scope("teams", teams_of=["org-1"]) as listing:
        listing.add(Team("t-1", "org-1", "Ops", slug="ops"))

    snapshot = builder.build()

    assert snapshot.organizations == [Organization("org-1", "acme")]
    assert snapshot.users == [User("u-1", "a@example.com", "A")]
    assert snapshot.memberships == [Membership("organization", "org-1", "u-1", "admin")]
    assert snapshot.teams == [Team("t-1", "org-1", "Ops", slug="ops")]
    assert snapshot.membership_scopes == [ORG_MEMBERS]
    assert snapshot.team_scopes == {"org-1"}
    assert snapshot.failures == [] and not snapshot.partial


def test_a_failed_scope_contributes_nothing_it_read_and_covers_nothing():
    builder = _builder("planetscale")
    with builder.scope("organization acme members", memberships=[ORG_MEMBERS]) as listing:
        listing.add(User("u-1", "a@example.com", "A"))  # page 1 arrived ...
        raise _outage()  # ... page 2 did not

    snapshot = builder.build()

    assert snapshot.users == [] and snapshot.memberships == []
    assert snapshot.membership_scopes == []  # so no one in it can be inferred removed
    assert snapshot.failures == [ScopeFailure("organization acme members", str(_outage()))]
    assert snapshot.partial


def test_a_required_scope_fails_the_whole_fetch():
    builder = _builder("scalr")
    with pytest.raises(errors.ServerError):
        with builder.scope("account users", required=True):
            raise _outage("Scalr")


@pytest.mark.parametrize(
    "interruption",
    [errors.Stopped("Scalr"), KeyError("id")],
    ids=["a stop", "a bug"],
)
def test_a_stop_or_a_bug_is_never_taken_for_a_failed_scope(interruption):
    builder = _builder("scalr")
    with pytest.raises(type(interruption)):
        with builder.scope("teams", teams_of=["acc-1"]):
            raise interruption


def test_objects_can_be_added_only_while_their_scope_is_open():
    builder = _builder("scalr")
    scope = builder.scope("teams", teams_of=["acc-1"])
    with pytest.raises(RuntimeError, match="only while it is open"):
        scope.add(Team("t-1", "acc-1", "Ops"))
    with scope:
        scope.add(Team("t-1", "acc-1", "Ops"))
    with pytest.raises(RuntimeError, match="only while it is open"):
        scope.add(Team("t-2", "acc-1", "Dev"))


def test_a_scope_declared_but_never_read_cannot_be_built():
    builder = _builder("scalr")
    builder.scope("service accounts", memberships=[MembershipScope("organization", "acc-1")])
    with pytest.raises(RuntimeError, match="never read"):
        builder.build()


def test_a_scope_is_read_once():
    builder = _builder("scalr")
    scope = builder.scope("teams")
    with scope:
        pass
    with pytest.raises(RuntimeError, match="already read"):
        with scope:
            pass


def test_the_snapshot_follows_declaration_order_whatever_order_threads_finish_in():
    builder = _builder("planetscale")
    first = builder.scope("team a members", memberships=[MembershipScope("team", "a")])
    second = builder.scope("team b members", memberships=[MembershipScope("team", "b")])
    first_may_finish = threading.Event()

    def read_first():
        with first:
            first_may_finish.wait(timeout=30)  # released only once the second scope has ended
            first.add(User("u-1", "one@example.com", "from team a"))
            first.add(Membership("team", "a", "u-1"))

    worker = threading.Thread(target=read_first)
    worker.start()
    with second:
        second.add(User("u-1", "one@example.com", "from team b"))
        second.add(Membership("team", "b", "u-1"))
    first_may_finish.set()
    worker.join(timeout=30)

    snapshot = builder.build()

    assert [m.resource_id for m in snapshot.memberships] == ["a", "b"]
    assert snapshot.users == [User("u-1", "one@example.com", "from team a")]  # first declared
    assert snapshot.membership_scopes == [
        MembershipScope("team", "a"),
        MembershipScope("team", "b"),
    ]
