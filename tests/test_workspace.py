"""The audit workspace: Datasette's metadata, database page, dashboard, plugins and defaults.

A database filled by real syncs against the simulators, served by ``accesstrail serve`` in its
own process and read over HTTP, as an auditor's browser would.
"""

import io
import re
import zipfile
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from datasette_auth_passwords.utils import hash_password

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSUser
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import (
    ADMIN_ROLE_ID,
    USER_ROLE_ID,
    ScalrAccessPolicy,
    ScalrRole,
    ScalrState,
    ScalrTeam,
    ScalrUser,
)
from store.datasette.dashboards import build_dashboard
from store.datasette.queries import QUERIES
from store.schema import TABLES, VIEWS
from tests.helpers import next_round, query, serving, sync

#: Datasette reads a page of this small database in milliseconds; 10 s is room for a loaded
#: machine.
READ_TIMEOUT = 10

ACC = ScalrState().account_id
ADA, BOB, CARL = "user-wsada00000001", "user-wsbob00000001", "user-wscarl0000001"
OPS, SUPER = "team-wsops00000001", "role-wssuper000001"


def _world() -> tuple[ScalrState, PlanetScaleState]:
    scalr = ScalrState()
    scalr.teams = {OPS: ScalrTeam(OPS, "Ops")}
    scalr.users = {
        ADA: ScalrUser(ADA, "ada@example.com", "Ada"),
        BOB: ScalrUser(BOB, "bob@example.com", "Bob"),
        CARL: ScalrUser(CARL, "carl@example.com", "Carl", teams={OPS}),
    }
    # a custom role with every permission makes an admin too, here through a team
    scalr.roles[SUPER] = ScalrRole(SUPER, "superuser", "Everything", False, {"*:*"})
    policies = [
        ScalrAccessPolicy("ap-wsada000000001", "user", ADA, "account", ACC, [ADMIN_ROLE_ID]),
        ScalrAccessPolicy("ap-wsbob000000001", "user", BOB, "account", ACC, [USER_ROLE_ID]),
        ScalrAccessPolicy("ap-wsops000000001", "team", OPS, "account", ACC, [SUPER]),
    ]
    scalr.access_policies = {policy.id: policy for policy in policies}
    planetscale = PlanetScaleState()
    for ident, email in (("pbob", "bob@example.com"), ("perin", "erin@example.com")):
        planetscale.users[ident] = PSUser(id=ident, email=email, name=ident[1:].title())
    planetscale.organizations["oacme"] = PSOrganization(
        id="oacme", name="acme", members={"pbob": "admin", "perin": "member"}
    )
    return scalr, planetscale


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """Two rounds of syncs: Ada loses her admin grant, Erin becomes PlanetScale admin, Bob not."""
    db_path = tmp_path_factory.mktemp("workspace") / "audit.db"
    scalr_state, ps_state = _world()
    with ScalrSimulator(scalr_state) as scalr_sim, PlanetScaleSimulator(ps_state) as ps_sim:
        sync(db_path, scalr=scalr_sim)
        sync(db_path, planetscale=ps_sim)
        next_round(db_path)
        del scalr_state.access_policies["ap-wsada000000001"]
        ps_state.organizations["oacme"].members.update({"pbob": "member", "perin": "admin"})
        sync(db_path, scalr=scalr_sim)
        sync(db_path, planetscale=ps_sim)
    return db_path


@pytest.fixture(scope="module")
def base(database):
    with serving(database) as url:
        yield url


def _get(url, **kwargs):
    response = httpx.get(url, timeout=READ_TIMEOUT, **kwargs)
    assert response.status_code == 200, response.text
    return response


def test_changes_are_newest_first_with_kind_and_provider_facets(base):
    page = _get(f"{base}/audit/changes.json", params={"_shape": "objects"}).json()
    ids = [row["id"] for row in page["rows"]]
    assert ids == sorted(ids, reverse=True) and len(ids) > 2
    assert {"kind", "provider"} <= set(page["facet_results"])
    kinds = {item["value"] for item in page["facet_results"]["kind"]["results"]}
    assert {"grant_removed", "role_changed"} <= kinds


def test_tables_offer_facets_and_label_columns(base):
    users = _get(f"{base}/audit/users.json").json()
    assert {"provider", "status", "account_type"} <= set(users["facet_results"])
    metadata = _get(f"{base}/-/metadata.json").json()
    tables = metadata["databases"]["audit"]["tables"]
    assert tables["users"]["label_column"] == "email"
    assert tables["changes"]["sort_desc"] == "id"
    assert {tables[name]["label_column"] for name in ("organizations", "teams", "roles")} == {
        "name"
    }


def test_internal_tables_are_hidden(base):
    listed = _get(f"{base}/audit.json").json()["tables"]
    shown = {table["name"] for table in listed if not table["hidden"]}
    hidden = {table["name"] for table in listed if table["hidden"]}
    assert "_sqlite_migrations" in hidden
    assert shown <= set(TABLES) | set(VIEWS)
    assert shown >= {"changes", "users", "grants"}
    html = _get(f"{base}/audit").text
    assert "_sqlite_migrations" not in html


def test_database_page_starts_with_the_questions(base):
    html = _get(f"{base}/audit").text
    questions, tables = html.index('id="queries"'), html.index('id="tables"')
    assert questions < tables
    for name, canned in QUERIES.items():
        assert html.index(f"/audit/{name}") < tables, name
        assert canned["title"] in html
    (sql_box,) = re.findall(r'<textarea id="sql-editor" name="sql">(.*?)</textarea>', html, re.S)
    assert "_sqlite_migrations" not in sql_box and "changes" in sql_box
    assert "/-/dashboards/accesstrail" in html


def test_dashboard_defines_its_tiles_and_charts(base):
    html = _get(f"{base}/-/dashboards/accesstrail").text
    charts = build_dashboard("audit")["charts"]
    for slug, chart in charts.items():
        assert f"renderChart('{slug}'" in html, slug
        assert chart["title"] in html
    assert {"metric", "table", "vega-lite"} == {chart["library"] for chart in charts.values()}


def _chart(base, slug):
    sql = build_dashboard("audit")["charts"][slug]["query"]
    return _get(f"{base}/audit.json", params={"sql": sql, "_shape": "array"}).json()


def test_dashboard_counts_admins_direct_and_through_a_team(base):
    # Ada's admin grant went; Carl holds a `*:*` role through Ops; Erin is PlanetScale's admin
    assert _chart(base, "admins-list") == [
        {"provider": "planetscale", "email": "erin@example.com"},
        {"provider": "scalr", "email": "carl@example.com"},
    ]
    assert _chart(base, "admins-now") == [{"count": 2}]
    assert _chart(base, "people-scalr") == [{"count": 3}]
    assert _chart(base, "people-planetscale") == [{"count": 2}]
    assert _chart(base, "changes-7d")[0]["count"] > 0
    synced = {row["provider"]: row for row in _chart(base, "last-sync")}
    assert set(synced) == {"scalr", "planetscale"}
    assert all(0 <= row["age_minutes"] < 60 for row in synced.values())


def test_admins_over_time_comes_from_the_version_tables(database, base):
    rows = _chart(base, "admins-over-time")
    runs = query(database, "SELECT provider, started_at FROM sync_runs ORDER BY id")
    first_ps, last_ps = [r["started_at"] for r in runs if r["provider"] == "planetscale"]
    first_sc, last_sc = [r["started_at"] for r in runs if r["provider"] == "scalr"]
    counts = {(row["at"], row["provider"]): row["admins"] for row in rows}
    assert counts[(first_sc, "scalr")] == 2  # Ada directly, Carl through Ops
    assert counts[(last_sc, "scalr")] == 1
    assert counts[(first_ps, "planetscale")] == 1 and counts[(last_ps, "planetscale")] == 1
    assert _chart(base, "accounts-by-status")
    assert {row["kind"] for row in _chart(base, "changes-per-day")} >= {"grant_removed"}


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("path", ["/-/dashboards/accesstrail", "/audit", "/audit/changes", "/"])
def test_every_page_and_asset_is_served_locally(base, path):
    html = _get(base + path).text
    host = urlsplit(base).netloc
    references = [urljoin(base + path, ref) for ref in _references(html)]
    off_host = [ref for ref in references if urlsplit(ref).netloc not in (host, "")]
    assert off_host == [] and references
    assets = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html) + re.findall(
        r'<link[^>]*\shref="([^"]+)"', html
    )
    for asset in assets:
        _get(urljoin(base + path, asset))
    if path.startswith("/-/dashboards"):
        scripts = " ".join(assets)
        assert all(name in scripts for name in ("vega.min.js", "vega-lite", "vega-embed"))


def test_robots_are_kept_out(base):
    assert _get(base + "/robots.txt").text.split() == ["User-agent:", "*", "Disallow:", "/"]


def test_evidence_exports_as_xlsx(base):
    response = _get(f"{base}/audit/changes.xlsx")
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as workbook:
        assert any(name.startswith("xl/worksheets/") for name in workbook.namelist())


def test_the_workspace_only_reads(base):
    # Datasette 0.65 has no write API and no writing plugin is installed: a write is refused
    response = httpx.get(
        f"{base}/audit.json",
        params={"sql": "DELETE FROM changes"},
        timeout=READ_TIMEOUT,
    )
    assert response.status_code == 400
    assert query_count(base) > 0


def query_count(base) -> int:
    sql = "SELECT COUNT(*) AS n FROM changes"
    return _get(f"{base}/audit.json", params={"sql": sql, "_shape": "array"}).json()[0]["n"]


def test_a_password_keeps_anonymous_readers_out(database, monkeypatch):
    monkeypatch.setenv("ACCESSTRAIL_WEB_PASSWORD_HASH", hash_password("open sesame"))
    monkeypatch.setenv("ACCESSTRAIL_WEB_USER", "auditor")
    with serving(database) as url:
        anonymous = httpx.get(f"{url}/audit/users.json", timeout=READ_TIMEOUT)
        assert anonymous.status_code == 403
        assert httpx.get(f"{url}/-/dashboards/accesstrail", timeout=READ_TIMEOUT).status_code in (
            401,
            403,
        )
        wrong = httpx.get(f"{url}/audit/users.json", auth=("auditor", "nope"), timeout=10)
        assert wrong.status_code == 403
        basic = httpx.get(f"{url}/audit/users.json", auth=("auditor", "open sesame"), timeout=10)
        assert basic.status_code == 200 and basic.json()["rows"]
        with httpx.Client(base_url=url, timeout=READ_TIMEOUT) as browser:
            login = browser.post(
                "/-/login", data={"username": "auditor", "password": "open sesame"}
            )
            assert login.status_code == 302
            assert browser.get("/audit/users.json").json()["rows"]
