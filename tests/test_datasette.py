"""Datasette over a synced database: the project's descriptions and the audit questions.

The database is filled by real syncs against the simulators; Datasette runs as ``accesstrail
serve`` in its own process and is read over HTTP, as an auditor's browser would.
"""

import httpx
import pytest

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.scalr.wire import ScalrSimulator
from tests.helpers import audit_world, query, serving, sync_two_audit_rounds


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """Two syncs of each provider with known changes between them, then a running server."""
    db_path = tmp_path_factory.mktemp("audit") / "audit.db"
    scalr_state, ps_state = audit_world()
    with ScalrSimulator(scalr_state) as scalr_sim, PlanetScaleSimulator(ps_state) as ps_sim:
        sync_two_audit_rounds(db_path, scalr_sim, ps_sim)
    runs = query(
        db_path, "SELECT started_at FROM sync_runs WHERE provider = 'planetscale' ORDER BY id"
    )
    with serving(db_path) as base:
        yield {
            "base": base,
            "db": "audit",
            "first": runs[0]["started_at"],
            "second": runs[1]["started_at"],
        }


#: Datasette reads a page of this small database in milliseconds; 10 s is room for a loaded
#: machine.
READ_TIMEOUT = 10


def _canned(audited, name, **params):
    response = httpx.get(
        f"{audited['base']}/{audited['db']}/{name}.json",
        params={**params, "_shape": "array"},
        timeout=READ_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_tables_and_columns_carry_their_descriptions(audited):
    metadata = httpx.get(audited["base"] + "/-/metadata.json", timeout=READ_TIMEOUT).json()
    users = metadata["databases"]["audit"]["tables"]["users"]
    assert users["description"].startswith("Every account ever seen")
    assert users["columns"]["status"] == "`enabled` or `disabled`"
    page = httpx.get(f"{audited['base']}/audit/users", timeout=READ_TIMEOUT).text
    assert "Every account ever seen" in page


def test_admins_as_of_answers_for_each_side_of_a_role_change(audited):
    between = audited["second"]  # the instant the second run saw the change
    before = _canned(audited, "admins_as_of", as_of=audited["first"], organization="acme")
    after = _canned(audited, "admins_as_of", as_of=between, organization="acme")
    assert [row["email"] for row in before] == ["bob@example.com"]
    assert [row["email"] for row in after] == ["erin@example.com"]
    assert _canned(audited, "admins_as_of", as_of="2000-01-01", organization="") == []


def test_no_sign_in_for_days_lists_the_stale_and_the_never_signed_in(audited):
    rows = _canned(audited, "no_sign_in_for_days", days="90")
    assert [row["email"] for row in rows] == ["dave@example.com", "alice@example.com"]


def test_left_scalr_still_in_planetscale(audited):
    rows = _canned(audited, "left_scalr_still_in_planetscale")
    assert [(row["email"], row["planetscale_organizations"]) for row in rows] == [
        ("carol@example.com", "acme (member)")
    ]


def test_metadata_hides_every_table_that_is_not_public():
    from store.datasette.metadata import build_metadata

    tables = build_metadata("x", existing_tables=["users", "_locks", "outbox_internal"])[
        "databases"
    ]["x"]["tables"]
    assert tables["_sqlite_migrations"] == {"hidden": True}
    assert tables["_locks"] == {"hidden": True}
    assert tables["outbox_internal"] == {"hidden": True}
    assert not tables["users"].get("hidden")


def test_metadata_asks_for_a_password_only_when_a_hash_is_given():
    from store.datasette.metadata import build_metadata

    open_metadata = build_metadata("x")
    assert "allow" not in open_metadata
    assert "datasette-auth-passwords" not in open_metadata["plugins"]
    guarded = build_metadata("x", password_hash="pbkdf2_sha256$1$a$b", web_user="eve")
    assert guarded["allow"] == {"id": "eve"}
    assert guarded["plugins"]["datasette-auth-passwords"] == {
        "eve_password_hash": "pbkdf2_sha256$1$a$b"
    }
