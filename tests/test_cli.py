"""The command line's promises: exit statuses, one-line errors, options.

Scripts and systemd act on ``accesstrail``'s exit status, and people read its errors, so these
tests pin both: ``status`` (0 fresh, 1 failed/stale/no database), ``check`` (0 ok, 1 refused,
2 bad config), ``sync`` (2 for an unconfigured provider), every expected failure as one line on
stderr without a traceback and without the secret, ``--db`` beating ``ACCESSTRAIL_DB``,
``python -m daemon``, and a ``running`` row left by a crash being closed by the next sync.
All against the simulated Scalr on 127.0.0.1 through the real CLI.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrServiceAccount, ScalrState, ScalrTeam, ScalrUser
from tests.helpers import query, run_cli, scalr_env

REPO = Path(__file__).resolve().parents[1]


def cli_state() -> ScalrState:
    """9 accounts (7 enabled, 2 service), 2 teams, 9 + 3 memberships."""
    state = ScalrState()
    state.teams["team-a"] = ScalrTeam("team-a", "Platform")
    state.teams["team-b"] = ScalrTeam("team-b", "Security")
    teams = {0: {"team-a"}, 1: {"team-a", "team-b"}}
    for n in range(7):
        state.users[f"user-{n}"] = ScalrUser(
            id=f"user-{n}",
            email=f"u{n}@acme.example",
            full_name=f"User {n}",
            status="Inactive" if n == 6 else "Active",
            last_login_at="2026-08-01T10:00:00Z",
            teams=set(teams.get(n, set())),
        )
    state.service_accounts["sa-1"] = ScalrServiceAccount(
        "sa-1", "ci", "ci@acme.scalr.io", None, "Active"
    )
    state.service_accounts["sa-2"] = ScalrServiceAccount(
        "sa-2", "old", "old@acme.scalr.io", None, "Inactive"
    )
    return state


@pytest.fixture
def sim():
    with ScalrSimulator(cli_state()) as server:
        yield server


def sync_ok(db_path: Path, env: dict) -> None:
    result = run_cli(["sync", "--db", str(db_path)], env)
    assert result.exit_code == 0, result.stdout + result.stderr


def assert_one_line_error(result) -> str:
    """stderr holds exactly one non-empty line and no traceback; returns it."""
    text = result.stderr.strip()
    assert text, "no error message on stderr"
    assert "\n" not in text, f"error is not one line:\n{result.stderr}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return text


# -- status ------------------------------------------------------------------------------------


def test_status_after_a_successful_sync_exits_0_and_prints_counts(db_path, sim):
    env = scalr_env(sim)
    sync_ok(db_path, env)

    result = run_cli(["status", "--db", str(db_path)], env)

    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "scalr" in out.lower() and "succeeded" in out
    assert re.search(r"\b9 users\b", out), out
    assert re.search(r"\b7 enabled\b", out), out
    assert re.search(r"\b2 service\b", out), out
    assert re.search(r"\b1 organi[sz]ations?\b", out), out
    assert re.search(r"\b2 teams\b", out), out
    assert re.search(r"\b12 memberships\b", out), out


def test_status_exits_1_when_the_last_run_failed(db_path, sim):
    env = scalr_env(sim)
    sync_ok(db_path, env)
    failed = run_cli(["sync", "--db", str(db_path)], {**env, "SCALR_API_TOKEN": "nope-wrong"})
    assert failed.exit_code == 1

    result = run_cli(["status", "--db", str(db_path)], env)

    assert result.exit_code == 1
    assert "failed" in result.stdout + result.stderr


def test_status_exits_1_when_the_last_success_is_stale(db_path, sim):
    env = scalr_env(sim)
    sync_ok(db_path, env)
    conn = sqlite3.connect(db_path)
    conn.execute(
        "UPDATE sync_runs SET started_at = '2020-01-01T00:00:00.000Z', "
        "finished_at = '2020-01-01T00:00:01.000Z'"
    )
    conn.commit()
    conn.close()

    result = run_cli(["status", "--db", str(db_path)], env)

    assert result.exit_code == 1
    assert "stale" in result.stdout


def test_status_without_a_database_exits_1_with_one_line(db_path, sim):
    result = run_cli(["status", "--db", str(db_path)], scalr_env(sim))

    assert result.exit_code == 1
    assert_one_line_error(result)
    assert not db_path.exists()


# -- check -------------------------------------------------------------------------------------


def test_check_with_a_good_token_exits_0_and_names_the_account(db_path, sim):
    result = run_cli(["check", "--db", str(db_path)], scalr_env(sim))

    assert result.exit_code == 0, result.stdout + result.stderr
    assert sim.state.account_name in result.stdout
    assert sim.state.account_id in result.stdout
    # one cheap read per listing the sync needs beyond the account: roles, access policies, and
    # one service account's tokens (found with the service-account listing)
    paths = [r.path for r in sim.requests]
    service_account = next(p for p in paths if p.endswith("/access-tokens"))
    assert sorted(set(paths)) == sorted(
        {
            "/api/iacp/v3/accounts",
            "/api/iacp/v3/roles",
            "/api/iacp/v3/access-policies",
            "/api/iacp/v3/service-accounts",
            service_account,
        }
    )
    assert len(paths) <= 6
    assert sim.state.token not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "listing, variable",
    [
        ("roles", "SCALR_READ_ACCESS_POLICIES"),
        ("access-policies", "SCALR_READ_ACCESS_POLICIES"),
        ("access-tokens", "SCALR_READ_TOKENS"),
    ],
)
def test_check_says_which_variable_to_switch_off_when_a_listing_is_forbidden(
    db_path, sim, listing, variable
):
    with sim.state.lock:
        sim.state.forbidden.add(listing)
    result = run_cli(["check", "--db", str(db_path)], scalr_env(sim))
    assert result.exit_code == 1
    line = assert_one_line_error(result)
    assert "Scalr" in line and "403" in line and f"{variable}=false" in line
    # switched off as it says, check passes without reading that listing
    result = run_cli(["check", "--db", str(db_path)], {**scalr_env(sim), variable: "false"})
    assert result.exit_code == 0, result.stdout + result.stderr


def test_check_with_a_refused_token_exits_1_with_one_line(db_path, sim):
    wrong = "refused-t0ken-Kd93hsPq0Z"
    result = run_cli(["check", "--db", str(db_path)], {**scalr_env(sim), "SCALR_API_TOKEN": wrong})

    assert result.exit_code == 1
    line = assert_one_line_error(result)
    assert "Scalr" in line and "refused" in line and "token" in line.lower()
    assert wrong not in result.stdout + result.stderr


def test_sync_with_a_refused_token_exits_1_with_one_line_on_stderr(db_path, sim):
    wrong = "refused-t0ken-Yy72mmQa1B"
    result = run_cli(["sync", "--db", str(db_path)], {**scalr_env(sim), "SCALR_API_TOKEN": wrong})

    assert result.exit_code == 1
    line = assert_one_line_error(result)
    assert "Scalr" in line and "SCALR_API_TOKEN" in line
    assert wrong not in result.stdout + result.stderr


def _token_file(tmp_path: Path, value: str) -> str:
    path = tmp_path / "scalr-token"
    path.write_text(value)
    return str(path)


BAD_CONFIGS = {
    "planetscale token without colon": (
        {"PLANETSCALE_SERVICE_TOKEN": "pscaletokenwithoutcolonSECRET99"},
        "PLANETSCALE_SERVICE_TOKEN",
        "pscaletokenwithoutcolonSECRET99",
    ),
    "plain http to a non-loopback host": (
        {
            "SCALR_API_TOKEN": "tok-SECRET-http",
            "SCALR_ACCOUNT": "acme",
            "SCALR_BASE_URL": "http://scalr.example.com",
        },
        "SCALR_BASE_URL",
        "tok-SECRET-http",
    ),
    "token and token file both set": (
        {
            "SCALR_API_TOKEN": "tok-SECRET-both",
            "SCALR_ACCOUNT": "acme",
            "SCALR_API_TOKEN_FILE": "<file>",
        },
        "SCALR_API_TOKEN",
        "tok-SECRET-both",
    ),
}


@pytest.mark.parametrize("command", ["check", "sync"])
@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line_naming_the_variable(db_path, tmp_path, command, case):
    env, variable, secret = BAD_CONFIGS[case]
    env = {
        k: (_token_file(tmp_path, "tok-from-file") if v == "<file>" else v) for k, v in env.items()
    }

    result = run_cli([command, "--db", str(db_path)], env)

    assert result.exit_code == 2
    line = assert_one_line_error(result)
    assert variable in line
    assert secret not in result.stdout + result.stderr
    assert not db_path.exists() or query(db_path, "SELECT * FROM sync_runs") == []


def test_check_reads_the_token_from_a_file_stripped_of_whitespace(db_path, tmp_path, sim):
    env = {k: v for k, v in scalr_env(sim).items() if k != "SCALR_API_TOKEN"}
    env["SCALR_API_TOKEN_FILE"] = _token_file(tmp_path, f"  {sim.state.token}\n")

    result = run_cli(["check", "--db", str(db_path)], env)

    assert result.exit_code == 0, result.stdout + result.stderr


def test_check_reads_settings_from_an_env_file_and_the_environment_wins(db_path, tmp_path, sim):
    env_file = tmp_path / "custom.env"
    env_file.write_text(
        f"SCALR_API_TOKEN=wrong-in-file\nSCALR_ACCOUNT=acme\nSCALR_BASE_URL={sim.url}\n"
    )

    from_file = run_cli(["check", "--env-file", str(env_file), "--db", str(db_path)], {})
    assert from_file.exit_code == 1  # the file's (wrong) token was used
    real_wins = run_cli(
        ["check", "--env-file", str(env_file), "--db", str(db_path)],
        {"SCALR_API_TOKEN": sim.state.token},
    )
    assert real_wins.exit_code == 0, real_wins.stdout + real_wins.stderr


# -- sync --------------------------------------------------------------------------------------


def test_sync_of_an_unconfigured_provider_exits_2_with_one_line(db_path, sim):
    result = run_cli(["sync", "--provider", "planetscale", "--db", str(db_path)], scalr_env(sim))

    assert result.exit_code == 2
    line = assert_one_line_error(result)
    assert "planetscale" in line.lower()
    assert sim.requests == []


def test_sync_with_no_provider_configured_exits_2_with_one_line(db_path):
    result = run_cli(["sync", "--db", str(db_path)], {})

    assert result.exit_code == 2
    assert_one_line_error(result)


def test_sync_prints_a_summary_with_changes_per_kind(db_path, sim):
    env = scalr_env(sim)
    sync_ok(db_path, env)
    with sim.state.lock:
        sim.state.users["user-0"].status = "Inactive"
        sim.state.users["user-1"].status = "Inactive"
        sim.state.users["user-2"].full_name = "Renamed"

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert re.search(r"status_changed\W{0,3}2\b", result.stdout), result.stdout
    assert re.search(r"user_updated\W{0,3}1\b", result.stdout), result.stdout


def test_db_option_beats_accesstrail_db(tmp_path, sim):
    from_env = tmp_path / "from-env.db"
    from_option = tmp_path / "from-option.db"
    env = {**scalr_env(sim), "ACCESSTRAIL_DB": str(from_env)}

    result = run_cli(["sync", "--db", str(from_option)], env)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert from_option.is_file() and not from_env.exists()
    assert query(from_option, "SELECT COUNT(*) AS n FROM users") == [{"n": 9}]


def test_accesstrail_db_is_used_without_the_option(tmp_path, sim):
    from_env = tmp_path / "from-env.db"

    result = run_cli(["sync"], {**scalr_env(sim), "ACCESSTRAIL_DB": str(from_env)})

    assert result.exit_code == 0, result.stdout + result.stderr
    assert from_env.is_file()
    assert not (tmp_path / "accesstrail.db").exists()


def test_running_row_left_behind_is_closed_as_failed_by_the_next_sync(db_path, sim):
    env = scalr_env(sim)
    sync_ok(db_path, env)
    first = query(db_path, "SELECT * FROM sync_runs")[0]
    conn = sqlite3.connect(db_path)
    cursor = conn.execute(
        "INSERT INTO sync_runs (provider, started_at, status, requests, changes) "
        "VALUES ('scalr', ?, 'running', 2, 0)",
        [first["started_at"][:-4] + "999Z"],
    )
    stale_id = cursor.lastrowid
    conn.commit()
    conn.close()

    result = run_cli(["sync", "--db", str(db_path)], env)

    assert result.exit_code == 0, result.stdout + result.stderr
    stale = query(db_path, "SELECT * FROM sync_runs WHERE id = ?", [stale_id])[0]
    assert stale["status"] == "failed"
    assert stale["finished_at"] is not None and stale["error"]
    newest = query(db_path, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1")[0]
    assert newest["id"] > stale_id and newest["status"] == "succeeded"
    assert query(db_path, "SELECT COUNT(*) AS n FROM sync_runs WHERE status = 'running'") == [
        {"n": 0}
    ]


# -- python -m daemon --------------------------------------------------------------------------


def test_python_m_daemon_help_works(tmp_path):
    python = REPO / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACCESSTRAIL_", "SCALR_", "PLANETSCALE_"))
    }

    result = subprocess.run(
        [str(python), "-m", "daemon", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # ``--help`` answers as soon as Python has started; this only bounds a hang
    )

    assert result.returncode == 0, result.stderr
    for command in ("sync", "check", "status", "serve", "run", "demo"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.MULTILINE), (command, result.stdout)
