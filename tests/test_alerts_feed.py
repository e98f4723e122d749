"""Alerts in Datasette: the ``risky_changes`` canned query and its Atom feed, password or not."""

from __future__ import annotations

from xml.etree import ElementTree

import httpx
import pytest
from datasette_auth_passwords.utils import hash_password

from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ADMIN_ROLE_ID, ScalrAccessPolicy, ScalrAccessToken
from tests.helpers import query, serving, sync
from tests.test_scalr_access import ACC, BOB, DEPLOY, access_state

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A baseline, then Bob made an admin and a token that never expires: three alerts."""
    db_path = tmp_path_factory.mktemp("feed") / "accesstrail.db"
    with ScalrSimulator(access_state()) as sim:
        sync(db_path, scalr=sim)
        with sim.state.lock:
            sim.state.access_policies["ap-feedbob0000001"] = ScalrAccessPolicy(
                "ap-feedbob0000001", "user", BOB, "account", ACC, [ADMIN_ROLE_ID]
            )
            sim.state.access_tokens[DEPLOY]["at-feednever00001"] = ScalrAccessToken(
                "at-feednever00001", "forever", None, created_at="2026-12-01T00:00:00Z"
            )
        sync(db_path, scalr=sim)
    return db_path


def test_risky_changes_lists_every_alert_newest_first(database):
    expected = query(database, "SELECT id, rule, summary FROM alerts ORDER BY id DESC")
    assert {row["rule"] for row in expected} == {
        "new_admin",
        "credential_added",
        "credential_never_expires",
    }
    with serving(database) as base:
        rows = httpx.get(f"{base}/accesstrail/risky_changes.json?_shape=array", timeout=10).json()
    assert [(r["id"], r["rule"], r["summary"]) for r in rows] == [
        (e["id"], e["rule"], e["summary"]) for e in expected
    ]
    assert any("bob@acme.example" in r["summary"] for r in rows if r["rule"] == "new_admin")


def test_the_atom_feed_has_an_entry_with_content_per_alert(database):
    with serving(database) as base:
        response = httpx.get(f"{base}/accesstrail/risky_changes.atom", timeout=10)
    assert response.status_code == 200
    assert "xml" in response.headers["content-type"]
    feed = ElementTree.fromstring(response.content)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 3
    for entry in entries:
        assert entry.findtext(f"{ATOM}id").startswith("tag:accesstrail,alert:")
        assert entry.findtext(f"{ATOM}title")
        assert entry.findtext(f"{ATOM}content")


def test_the_feed_is_readable_with_http_basic_when_a_password_is_set(database, monkeypatch):
    monkeypatch.setenv("ACCESSTRAIL_WEB_PASSWORD_HASH", hash_password("feed reader"))
    with serving(database) as base:
        url = f"{base}/accesstrail/risky_changes.atom"
        assert httpx.get(url, timeout=10).status_code == 403
        allowed = httpx.get(url, auth=("auditor", "feed reader"), timeout=10)
    assert allowed.status_code == 200
    assert len(ElementTree.fromstring(allowed.content).findall(f"{ATOM}entry")) == 3
