"""Secrets never reach the database, a log line, an error message or a repr.

A token is a credential to the provider; the audit database and the logs are read by far more
people than may hold it (``docs/sync-rules.md``, "Secrets").

Both providers are synced through the real CLI with ``ACCESSTRAIL_LOG_LEVEL=DEBUG`` in every way
a token could escape: a clean sync, a refused (401) token, a provider whose 500/503 error body
echoes the token back (as misconfigured proxies and some APIs do), a failing scope whose error is
stored in ``sync_runs.error``, and a body the client cannot parse (the internal-error path that
logs a traceback). Afterwards the token values are searched for in the CLI's stdout and stderr
(where loguru writes), in every text of every table of the database, in the raw bytes of the
database file and its WAL, and in the ``repr`` of the settings.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from loguru import logger

from daemon.config import load_settings
from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState, PSOrganization, PSTeam, PSUser
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState, ScalrTeam, ScalrUser
from tests.helpers import planetscale_env, query, run_cli, scalr_env

SCALR_TOKEN = "scalrTOKENvalue.v1.LeakCanary0123456789abcdefXYZ"
PS_TOKEN_ID = "pstokenid0042"
PS_TOKEN_VALUE = "pscale_tkn_LeakCanary9876543210zyxwvutsrqponm"
WRONG_SCALR_TOKEN = "scalrWRONGtoken.v1.OtherCanary5555555555aaaa"
WRONG_PS_VALUE = "pscale_tkn_WrongCanary4444444444bbbbbbbbbbbb"

ALL_SECRETS = [SCALR_TOKEN, PS_TOKEN_VALUE, WRONG_SCALR_TOKEN, WRONG_PS_VALUE]

SCALR_ACCOUNT_USERS = r"/api/iacp/v3/account-users$"
SCALR_TEAMS = r"/api/iacp/v3/teams$"
PS_ORGS = r"^/v1/organizations$"
PS_MEMBERS = r"^/v1/organizations/acme/members$"


@pytest.fixture(autouse=True)
def _restore_loguru():
    """The CLI points loguru at the runner's captured stderr; put the default sink back after."""
    yield
    logger.remove()
    logger.add(sys.stderr)


@pytest.fixture
def scalr():
    state = ScalrState(token=SCALR_TOKEN)
    state.teams["team-secretsaaaaaaaa1"] = ScalrTeam("team-secretsaaaaaaaa1", "Platform")
    state.users["user-secretsaaaaaaaa1"] = ScalrUser(
        "user-secretsaaaaaaaa1", "ann@acme.example", "Ann", teams={"team-secretsaaaaaaaa1"}
    )
    state.users["user-secretsaaaaaaaa2"] = ScalrUser(
        "user-secretsaaaaaaaa2", "bob@acme.example", "Bob", status="Inactive"
    )
    with ScalrSimulator(state) as sim:
        yield sim


@pytest.fixture
def planetscale():
    state = PlanetScaleState(token_id=PS_TOKEN_ID, token_secret=PS_TOKEN_VALUE)
    state.users["psuser000001"] = PSUser("psuser000001", "cy@acme.example", "Cy")
    state.users["psuser000002"] = PSUser("psuser000002", "di@acme.example", "Di")
    org = PSOrganization(
        "org000000001", "acme", members={"psuser000001": "admin", "psuser000002": "member"}
    )
    org.teams["team00000001"] = PSTeam("team00000001", "Data", "data", members={"psuser000002"})
    state.organizations[org.id] = org
    with PlanetScaleSimulator(state) as sim:
        yield sim


def env_for(db_path: Path, scalr=None, planetscale=None, **extra: str) -> dict[str, str]:
    env = {"ACCESSTRAIL_LOG_LEVEL": "DEBUG", "ACCESSTRAIL_DB": str(db_path)}
    if scalr is not None:
        env.update(scalr_env(scalr))
    if planetscale is not None:
        env.update(planetscale_env(planetscale))
    env.update(extra)
    return env


def echo_body(provider: str) -> str:
    """An error document that repeats the credential back, the way a careless proxy might."""
    if provider == "scalr":
        return json.dumps(
            {
                "errors": [
                    {
                        "status": "500",
                        "title": "Internal Server Error",
                        "detail": f"backend rejected Authorization: Bearer "
                        f"{SCALR_TOKEN} (token={SCALR_TOKEN})",
                    }
                ]
            }
        )
    return json.dumps(
        {
            "code": "internal_error",
            "message": f"auth failed for {PS_TOKEN_ID}:{PS_TOKEN_VALUE} (secret {PS_TOKEN_VALUE})",
        }
    )


def database_texts(db_path: Path) -> list[str]:
    """Every value of every column of every table (internal ones included), as text."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        texts = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                texts.extend(str(value) for value in row if value is not None)
        texts.extend(row[0] or "" for row in conn.execute("SELECT sql FROM sqlite_master"))
        return texts
    finally:
        conn.close()


def raw_database_bytes(db_path: Path) -> bytes:
    blob = b""
    for suffix in ("", "-wal", "-journal"):
        path = Path(str(db_path) + suffix)
        if path.exists():
            blob += path.read_bytes()
    return blob


def assert_no_secret_anywhere(db_path: Path, *outputs: str) -> None:
    for secret in ALL_SECRETS:
        for number, text in enumerate(outputs):
            assert secret not in text, f"secret leaked in CLI output #{number}:\n{text}"
        for text in database_texts(db_path):
            assert secret not in text, f"secret leaked into the database: {text!r}"
        assert secret.encode() not in raw_database_bytes(db_path), "secret in the db file bytes"


def cli(args: list[str], env: dict[str, str]):
    result = run_cli(args, env)
    return result, result.stdout, result.stderr


def assert_debug_log_captured(stderr: str, path_fragment: str) -> None:
    """Guards against a vacuous pass: the DEBUG request log really was in what we searched."""
    assert "DEBUG" in stderr, stderr
    assert path_fragment in stderr, stderr


def sync_with_echoing_fault(db_path: Path, scalr, planetscale, provider: str, **fault):
    """``accesstrail sync --provider`` while ``provider``'s simulator answers with ``fault``,
    its body repeating the token back; returns the result, its stdout and its stderr."""
    sim = scalr if provider == "scalr" else planetscale
    sim.add_fault(body=echo_body(provider), **fault)
    return cli(["sync", "--provider", provider], env_for(db_path, scalr, planetscale))


# -- one sync per scenario and provider ----------------------------------------------------------


def test_successful_syncs_leak_no_token(db_path, scalr, planetscale):
    result, out, err = cli(["sync"], env_for(db_path, scalr, planetscale))
    assert result.exit_code == 0, out + err
    assert_debug_log_captured(err, "/api/iacp/v3/account-users")
    assert_debug_log_captured(err, "/v1/organizations")
    assert [r["status"] for r in query(db_path, "SELECT status FROM sync_runs ORDER BY id")] == [
        "succeeded",
        "succeeded",
    ]
    assert_no_secret_anywhere(db_path, out, err)


@pytest.mark.parametrize("provider", ["scalr", "planetscale"])
def test_refused_token_is_never_repeated(db_path, scalr, planetscale, provider):
    if provider == "scalr":
        env = env_for(db_path, scalr=scalr, SCALR_API_TOKEN=WRONG_SCALR_TOKEN)
    else:
        env = env_for(
            db_path,
            planetscale=planetscale,
            PLANETSCALE_SERVICE_TOKEN=f"{PS_TOKEN_ID}:{WRONG_PS_VALUE}",
        )
    result, out, err = cli(["sync"], env)
    assert result.exit_code == 1
    (row,) = query(db_path, "SELECT status, error FROM sync_runs")
    assert row["status"] == "failed"
    assert "401" in row["error"]
    assert "refused" in row["error"]
    assert_debug_log_captured(err, "401")
    assert_no_secret_anywhere(db_path, out, err)


@pytest.mark.parametrize(
    "provider, path", [("scalr", SCALR_ACCOUNT_USERS), ("planetscale", PS_ORGS)]
)
def test_token_echoed_in_a_500_body_is_redacted(db_path, scalr, planetscale, provider, path):
    result, out, err = sync_with_echoing_fault(
        db_path, scalr, planetscale, provider, path=path, status=500
    )
    assert result.exit_code == 1
    (row,) = query(db_path, "SELECT status, error FROM sync_runs")
    assert row["status"] == "failed"
    assert "HTTP 500" in row["error"]
    assert "rejected" in row["error"] or "auth failed" in row["error"]  # the detail is kept...
    assert row["error"] in err  # ...and shown once
    assert_no_secret_anywhere(db_path, out, err)


@pytest.mark.parametrize(
    "provider, path", [("scalr", SCALR_ACCOUNT_USERS), ("planetscale", PS_ORGS)]
)
def test_token_echoed_in_retried_503_bodies_stays_out_of_the_debug_log(
    db_path, scalr, planetscale, provider, path
):
    result, out, err = sync_with_echoing_fault(
        db_path,
        scalr,
        planetscale,
        provider,
        path=path,
        status=503,
        times=2,
        headers={"Retry-After": "0"},
    )
    assert result.exit_code == 0, out + err
    assert "retrying" in err  # the retry was logged at DEBUG...
    assert_no_secret_anywhere(db_path, out, err)  # ...without the echoed token


@pytest.mark.parametrize("provider, path", [("scalr", SCALR_TEAMS), ("planetscale", PS_MEMBERS)])
def test_token_echoed_in_a_failed_scope_is_redacted_from_the_partial_run(
    db_path, scalr, planetscale, provider, path
):
    result, out, err = sync_with_echoing_fault(
        db_path, scalr, planetscale, provider, path=path, status=500
    )
    assert result.exit_code == 1
    (row,) = query(db_path, "SELECT status, error FROM sync_runs")
    assert row["status"] == "partial"
    assert "500" in row["error"]
    assert_no_secret_anywhere(db_path, out, err)


def test_unparseable_response_echoing_the_token_leaves_no_token_in_the_debug_traceback(
    db_path, scalr
):
    """A body of an unexpected shape takes the 'internal error' path, which logs the exception
    at DEBUG. When that body echoes the token (a proxy's debug page, a misbehaving gateway), the
    logged traceback must not carry it either."""
    scalr.add_fault(
        path=SCALR_ACCOUNT_USERS,
        status=200,
        body=json.dumps(
            {
                "data": [{"type": "account-users", "id": "au-1", "relationships": [SCALR_TOKEN]}],
                "meta": {"pagination": {"next-page": None, "total-count": 1}},
            }
        ),
    )
    result, out, err = cli(["sync"], env_for(db_path, scalr))
    assert result.exit_code == 1
    (row,) = query(db_path, "SELECT status, error FROM sync_runs")
    assert row["status"] == "failed"
    assert "internal error" in row["error"]
    assert "AttributeError" in err  # the DEBUG traceback was captured
    assert_no_secret_anywhere(db_path, out, err)


def test_check_and_status_print_no_token(db_path, scalr, planetscale):
    planetscale.add_fault(path=PS_ORGS, status=500, body=echo_body("planetscale"))
    env = env_for(db_path, scalr, planetscale)
    result, out, err = cli(["check"], env)
    assert result.exit_code == 1
    assert "Scalr: ok" in out
    assert "PlanetScale" in err and "500" in err
    outputs = [out, err]
    sync_result, sync_out, sync_err = cli(["sync"], env)
    assert sync_result.exit_code == 1
    status_result, status_out, status_err = cli(["status"], env)
    assert "error" in status_out
    assert_no_secret_anywhere(db_path, *outputs, sync_out, sync_err, status_out, status_err)


def test_a_whole_history_of_good_and_bad_runs_leaves_no_token_in_the_file(
    db_path, scalr, planetscale
):
    """Several runs into one database, then the raw bytes (free pages and WAL included)."""
    env = env_for(db_path, scalr, planetscale)
    outputs = []
    for setup in (
        lambda: None,
        lambda: (
            scalr.add_fault(path=SCALR_ACCOUNT_USERS, status=500, times=1, body=echo_body("scalr")),
            planetscale.add_fault(path=PS_ORGS, status=500, times=1, body=echo_body("planetscale")),
        ),
        lambda: planetscale.add_fault(
            path=PS_MEMBERS, status=500, times=1, body=echo_body("planetscale")
        ),
        lambda: None,
    ):
        setup()
        result, out, err = cli(["sync"], env)
        outputs += [out, err]
    statuses = [
        (r["provider"], r["status"])
        # the two providers of one sync run at the same time, so order by provider
        for r in query(db_path, "SELECT provider, status FROM sync_runs ORDER BY provider, id")
    ]
    assert statuses == [
        ("planetscale", "succeeded"),
        ("planetscale", "failed"),
        ("planetscale", "partial"),
        ("planetscale", "succeeded"),
        ("scalr", "succeeded"),
        ("scalr", "failed"),
        ("scalr", "succeeded"),
        ("scalr", "succeeded"),
    ]
    assert_no_secret_anywhere(db_path, *outputs)


# -- settings ------------------------------------------------------------------------------------


def test_settings_repr_shows_no_token(tmp_path):
    settings = load_settings(
        environ={
            "SCALR_API_TOKEN": SCALR_TOKEN,
            "SCALR_ACCOUNT": "acme",
            "PLANETSCALE_SERVICE_TOKEN": f"{PS_TOKEN_ID}:{PS_TOKEN_VALUE}",
        }
    )
    assert settings.providers["scalr"].token.reveal() == SCALR_TOKEN
    for text in (
        repr(settings),
        str(settings),
        repr(settings.providers["scalr"]),
        repr(settings.providers["planetscale"]),
        f"{settings.providers['scalr'].token}",
        f"{settings.providers['planetscale'].token!r}",
    ):
        assert SCALR_TOKEN not in text
        assert PS_TOKEN_VALUE not in text


def test_settings_repr_shows_no_token_read_from_files(tmp_path):
    (tmp_path / "scalr").write_text(SCALR_TOKEN + "\n")
    (tmp_path / "ps").write_text(f"{PS_TOKEN_ID}:{PS_TOKEN_VALUE}\n")
    settings = load_settings(
        environ={
            "SCALR_API_TOKEN_FILE": str(tmp_path / "scalr"),
            "SCALR_ACCOUNT": "acme",
            "PLANETSCALE_SERVICE_TOKEN_FILE": str(tmp_path / "ps"),
        }
    )
    assert settings.providers["planetscale"].token.reveal() == PS_TOKEN_VALUE
    assert SCALR_TOKEN not in repr(settings)
    assert PS_TOKEN_VALUE not in repr(settings)
