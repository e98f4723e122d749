"""The web UI in a real headless Chromium: what an auditor's browser shows of a synced history.

The database is filled by real syncs against the simulators, over three rounds of changes;
``accesstrail serve`` runs Datasette over it in its own process. Chromium is Debian's
(``make test`` installs it), driven by Playwright's Python package with ``executable_path``:
Playwright never downloads a browser of its own. Every page is opened, filled in and submitted
as a person would: typing into the canned queries' forms and pressing their button. Every request
a page makes is recorded and must stay on 127.0.0.1: the UI works offline, and tells nobody
outside what an auditor looks at. A screenshot of each page is left in ``artifacts/browser/``
(git-ignored) for a person to look at after a run.

Tests wait for states (Playwright's auto-waiting ``expect`` and ``wait_for_selector``), never
for durations.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrUser
from tests.helpers import audit_world, next_round, query, serving, sync, sync_two_audit_rounds

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

#: Datasette renders a page of this small database in milliseconds and Chromium lays it out in
#: well under a second; 30 s is only a bound that fails loudly on a loaded 2-core machine.
PAGE_TIMEOUT_MS = 30_000


def _chromium() -> str:
    """Debian's Chromium, which ``make test`` installs; skip only where it cannot."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail("chromium is missing: `make test` (or `make system-deps`) installs it here")
    pytest.skip("chromium is not installed and cannot be here (not root with apt-get)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Three rounds of syncs of both providers with known changes between them, then serve."""
    db_path = tmp_path_factory.mktemp("browser") / "audit.db"
    scalr_state, ps_state = audit_world()
    with ScalrSimulator(scalr_state) as scalr_sim, PlanetScaleSimulator(ps_state) as ps_sim:
        sync_two_audit_rounds(db_path, scalr_sim, ps_sim)
        # round 3: frank joins Scalr and never signs in; erin leaves PlanetScale's acme
        next_round(db_path)
        scalr_state.users["user-frank"] = ScalrUser(
            id="user-frank", email="frank@example.com", last_login_at=None
        )
        del ps_state.organizations["oacme"].members["perin"]
        sync(db_path, scalr=scalr_sim)
        sync(db_path, planetscale=ps_sim)
    runs = query(
        db_path, "SELECT started_at FROM sync_runs WHERE provider = 'planetscale' ORDER BY id"
    )
    assert len(runs) == 3
    with serving(db_path) as base:
        yield {"base": base, "db": db_path.stem, "ps_runs": [r["started_at"] for r in runs]}


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    # Chromium's sandbox needs user namespaces a root process in a container does not get
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    args.append("--disable-dev-shm-usage")  # containers' /dev/shm is often tiny
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    """A fresh page that records every request it makes; none may leave this machine."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    opened = context.new_page()
    requested: list[str] = []
    opened.on("request", lambda request: requested.append(request.url))
    try:
        yield opened
    finally:
        context.close()
    assert requested, "the page made no request at all"
    for url in requested:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue  # no network
        assert parts.scheme in ("http", "https", "ws", "wss"), url
        assert parts.hostname in LOCAL_HOSTS, f"the page requested {url}"


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _rows(page: Page):
    """The result table of a table or query page."""
    return page.locator("table.rows-and-columns")


def _run_canned(page: Page, served, name: str, fields: dict[str, str]) -> None:
    """Open a canned query's page, type each field into its form and press the button."""
    page.goto(f"{served['base']}/{served['db']}/{name}")
    for field, value in fields.items():
        box = page.locator(f"form.sql input[name={field}]")
        box.fill("")
        box.press_sequentially(value)
    page.locator("form.sql input[type=submit]").click()
    # the page that answers is the one whose address carries exactly the values typed in
    page.wait_for_url(
        lambda url: {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()} == fields
    )
    expect(_rows(page)).to_be_visible()


def test_home_page_lists_the_database(page, served):
    page.goto(served["base"] + "/")
    expect(page.locator("h1")).to_be_visible()
    expect(page.get_by_role("link", name=served["db"], exact=True).first).to_be_visible()
    _screenshot(page, "home")


def test_database_page_lists_the_history_tables_and_the_audit_questions(page, served):
    page.goto(f"{served['base']}/{served['db']}")
    for table in ("users", "changes", "memberships", "sync_runs"):
        expect(page.get_by_role("link", name=table, exact=True).first).to_be_visible()
    for title in (
        "Who was an admin of an organisation at a given time?",
        "Who has not signed in for a number of days?",
        "Who could do what at a given time?",
    ):
        expect(page.get_by_text(title).first).to_be_visible()
    _screenshot(page, "database")


def test_changes_table_shows_the_recorded_changes(page, served):
    page.goto(f"{served['base']}/{served['db']}/changes")
    rows = _rows(page)
    expect(rows).to_be_visible()
    expect(rows).to_contain_text("carol@example.com")  # left Scalr in round 2
    expect(rows).to_contain_text("frank@example.com")  # joined Scalr in round 3
    expect(rows).to_contain_text("role_changed")  # bob and erin swapped admin
    _screenshot(page, "changes")


def test_admins_as_of_form_answers_for_each_round(page, served):
    first, second, third = served["ps_runs"]
    _run_canned(page, served, "admins_as_of", {"as_of": first, "organization": "acme"})
    rows = _rows(page)
    expect(rows).to_contain_text("bob@example.com")
    expect(rows).not_to_contain_text("erin@example.com")
    _screenshot(page, "admins_as_of-round1")

    _run_canned(page, served, "admins_as_of", {"as_of": second, "organization": "acme"})
    expect(rows).to_contain_text("erin@example.com")
    expect(rows).not_to_contain_text("bob@example.com")
    _screenshot(page, "admins_as_of-round2")


def test_no_sign_in_for_days_form_lists_the_stale_and_the_never_signed_in(page, served):
    _run_canned(page, served, "no_sign_in_for_days", {"days": "90"})
    rows = _rows(page)
    for email in ("alice@example.com", "dave@example.com", "frank@example.com"):
        expect(rows).to_contain_text(email)
    expect(rows).not_to_contain_text("bob@example.com")  # signed in two days ago
    _screenshot(page, "no_sign_in_for_days")


def test_access_as_of_form_shows_who_could_get_in_then(page, served):
    first, _second, third = served["ps_runs"]
    _run_canned(page, served, "access_as_of", {"at": first})
    rows = _rows(page)
    expect(rows).to_contain_text("carol@example.com")  # in both providers in round 1
    expect(rows).to_contain_text("erin@example.com")
    _screenshot(page, "access_as_of-round1")

    _run_canned(page, served, "access_as_of", {"at": third})
    expect(rows).to_contain_text("frank@example.com")
    expect(rows).not_to_contain_text("erin@example.com")  # left acme in round 3
    _screenshot(page, "access_as_of-round3")


def test_dashboard_draws_a_chart_with_data(request, served):
    url = f"{served['base']}/-/dashboards/accesstrail"
    # activates by itself once datasette-dashboards and the dashboard are there
    if httpx.get(url, timeout=30).status_code == 404:
        pytest.skip("no dashboard at /-/dashboards/accesstrail yet (datasette-dashboards)")
    page = request.getfixturevalue("page")
    page.goto(url)
    # a chart is drawn: a canvas with an area, or an svg with at least one mark inside
    page.wait_for_function(
        """() => [...document.querySelectorAll('canvas')].some(c => c.width > 0 && c.height > 0)
              || [...document.querySelectorAll('svg')].some(s =>
                   s.querySelector('path, rect, circle, line, [class*="mark"]'))""",
        timeout=PAGE_TIMEOUT_MS,
    )
    expect(page.locator("svg, canvas").first).to_be_visible()
    _screenshot(page, "dashboard")
