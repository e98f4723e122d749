"""``accesstrail demo --days N`` replays simulated days, each sync stamped by the demo's clock,
and the product itself cannot be given a clock: the CLI, the settings and the environment have no
way in, and ``accesstrail sync`` stamps its runs with the real time."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

import daemon
from daemon.cli import main
from daemon.config import Settings, load_settings
from daemon.providers import PROVIDERS
from store.timestamps import format_instant, parse_instant
from tests.helpers import db_now, query, run_cli, scalr_env

DAYS = 10
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str, str]:
    """The database and output of one ``demo --days 10 --no-serve``, and the real time after."""
    db = tmp_path_factory.mktemp("demo") / "days-demo.db"
    result = run_cli(["demo", "--days", str(DAYS), "--no-serve", "--db", str(db)], env={})
    assert result.exit_code == 0, result.output
    return db, result.output, db_now()


def test_runs_are_one_simulated_day_apart(demo):
    db, output, _ = demo
    runs = query(db, "SELECT provider, started_at, finished_at, status FROM sync_runs ORDER BY id")
    assert {r["status"] for r in runs} == {"succeeded"}
    stamps = [r["started_at"] for r in runs]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # strictly increasing
    for provider in PROVIDERS:
        starts = [parse_instant(r["started_at"]) for r in runs if r["provider"] == provider]
        assert len(starts) == DAYS + 1  # the baseline and one a day
        for earlier, later in zip(starts, starts[1:], strict=False):
            assert abs((later - earlier) - timedelta(days=1)) < timedelta(minutes=1)
    assert f"Day {DAYS} " in output and len(output.splitlines()) < 4 * DAYS


def test_changes_spread_over_the_simulated_days(demo):
    db, _, _ = demo
    (row,) = query(db, "SELECT COUNT(DISTINCT substr(observed_at, 1, 10)) AS days FROM changes")
    assert row["days"] >= DAYS - 1


def test_the_scenario_events_are_recorded(demo):
    db, _, _ = demo
    kinds = {r["kind"] for r in query(db, "SELECT DISTINCT kind FROM changes")}
    assert {
        "user_added",
        "user_removed",
        "status_changed",
        "last_sign_in_changed",
        "membership_added",
        "membership_removed",
        "organization_removed",
        "grant_added",
        "credential_added",
    } <= kinds
    # a promotion in each provider: a PlanetScale org role made admin, a Scalr admin policy
    assert query(
        db,
        "SELECT 1 FROM changes WHERE provider = 'planetscale' AND kind = 'role_changed' "
        "AND new_value = 'admin'",
    )
    scalr_admin = query(
        db, "SELECT detail FROM changes WHERE provider = 'scalr' AND kind = 'grant_added'"
    )
    assert any(json.loads(r["detail"])["principal_type"] == "user" for r in scalr_admin)
    assert any(json.loads(r["detail"])["principal_type"] == "team" for r in scalr_admin)


def test_a_token_is_created_and_never_used(demo):
    db, _, _ = demo
    (baseline,) = query(db, "SELECT MIN(started_at) AS at FROM sync_runs")
    unused = query(
        db,
        "SELECT c.id FROM changes ch JOIN credentials c ON c.provider = ch.provider "
        "AND c.id = ch.resource_id WHERE ch.kind = 'credential_added' AND ch.observed_at > ? "
        "AND c.last_used_at IS NULL AND c.removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM "
        "changes u WHERE u.resource_id = c.id AND u.kind != 'credential_added')",
        [baseline["at"]],
    )
    assert unused


def test_dormant_people_stop_signing_in_for_days(demo):
    db, _, _ = demo
    (last,) = query(db, "SELECT MAX(started_at) AS at FROM sync_runs")
    dormant = query(
        db,
        "SELECT id FROM users WHERE provider = 'scalr' AND last_sign_in_at IS NOT NULL "
        "AND last_sign_in_at < ?",
        [format_instant(parse_instant(last["at"]) - timedelta(days=DAYS // 2))],
    )
    assert dormant


def test_no_stamp_is_after_the_demos_clock(demo):
    db, _, real_now = demo
    (last,) = query(db, "SELECT MAX(finished_at) AS at FROM sync_runs")
    assert last["at"] <= real_now
    tables = [r["name"] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    checked = 0
    for table in tables:
        for column in query(db, f"SELECT name FROM pragma_table_info('{table}')"):
            name = column["name"]
            if "expires" in name:  # a token's expiry is rightly in the future
                continue
            if table in ("alerts", "_alert_sinks") and name in ("delivered_at", "attempted_at"):
                continue  # an alert's delivery happens now, in real time
            for row in query(db, f'SELECT "{name}" AS v FROM "{table}"'):
                value = row["v"]
                if isinstance(value, str) and STAMP.match(value):
                    assert value <= last["at"], (table, name, value)
                    checked += 1
    assert checked > 100


def test_the_rounds_spelling_still_works(tmp_path):
    result = run_cli(
        ["demo", "--rounds", "2", "--no-serve", "--db", str(tmp_path / "r-demo.db")], {}
    )
    assert result.exit_code == 0, result.output
    assert len(query(tmp_path / "r-demo.db", "SELECT id FROM sync_runs")) == 6


def test_serving_prints_the_dashboard_url(tmp_path, monkeypatch):
    import daemon.serve

    served = []
    monkeypatch.setattr(daemon.serve, "serve_database", lambda *args: served.append(args))
    result = run_cli(["demo", "--days", "1", "--db", str(tmp_path / "d-demo.db")], {})
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8001/-/dashboards/accesstrail" in result.output
    assert "http://127.0.0.1:8001/d-demo" in result.output
    ((path, host, port, web),) = served
    assert (path, host, port) == (tmp_path / "d-demo.db", "127.0.0.1", 8001)
    assert "demo" in web.title and "simulated" in web.title  # nobody takes it for real


# -- the production path has no clock ----------------------------------------------------------


def test_no_command_option_and_no_setting_can_set_the_clock():
    words = ("clock", "now", "time", "date", "fake")
    for command in main.commands.values():
        for param in command.params:
            names = [param.name or "", *getattr(param, "opts", [])]
            assert not any(w in n.lower() for n in names for w in words), (command.name, names)
    environ = {"SCALR_API_TOKEN": "t", "SCALR_ACCOUNT": "a", "PLANETSCALE_SERVICE_TOKEN": "i:s"}
    settings = load_settings(environ=environ, read_default_env_file=False)
    assert set(settings.providers) == set(PROVIDERS)
    for fields in [dataclasses.fields(Settings)] + [
        dataclasses.fields(value) for value in settings.providers.values()
    ]:
        assert not any(w in f.name.lower() for f in fields for w in ("clock", "now"))


def test_only_the_demo_passes_a_clock():
    """No module of the product but the demo calls anything with a ``clock=`` argument."""
    root = Path(daemon.__file__).parent.parent
    passing = set()
    for source in [*root.glob("daemon/**/*.py"), *root.glob("store/**/*.py")]:
        if "simulate" in source.parts:
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and any(k.arg == "clock" for k in node.keywords):
                passing.add(source.relative_to(root).as_posix())
    assert passing == {"daemon/demo.py"}


def test_accesstrail_sync_stamps_its_runs_with_the_real_time(db_path, scalr_sim, monkeypatch):
    # whatever a user might try in the environment, the run is stamped now
    past = "2020-01-01T00:00:00Z"
    for name in ("ACCESSTRAIL_CLOCK", "ACCESSTRAIL_NOW", "ACCESSTRAIL_TIME", "FAKETIME"):
        monkeypatch.setenv(name, past)
    before = db_now()
    result = run_cli(
        ["sync", "--db", str(db_path)],
        {**scalr_env(scalr_sim), "ACCESSTRAIL_CLOCK": past, "ACCESSTRAIL_NOW": past},
    )
    after = db_now()
    assert result.exit_code == 0, result.output
    (run,) = query(db_path, "SELECT started_at, finished_at FROM sync_runs")
    assert before <= run["started_at"] <= run["finished_at"] <= after
