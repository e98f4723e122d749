"""Configuration: where settings come from, which values are accepted, and how a
mistake is reported.

Settings decide where credentials are sent and where history is written, so every rule here is a
safety rule: the real environment beats the env file, ``NAME_FILE`` stands in for each secret,
non-loopback URLs must be https, and each mistake is one ``ConfigError`` line that names the
variable and never shows a secret. The last section drives the real CLI to prove a bad setting
ends in exit status 2 with one line on stderr, before any network traffic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, load_settings
from tests.helpers import query, run_cli, scalr_env

SCALR_TOKEN = "scalr-token-0123456789abcdef.SECRET"
PS_ID = "tokid12345ab"
PS_VALUE = "pscale_tkn_SECRETvalue0123456789"
PS_TOKEN = f"{PS_ID}:{PS_VALUE}"

SCALR_MIN = {"SCALR_API_TOKEN": SCALR_TOKEN, "SCALR_ACCOUNT": "acme"}
PS_MIN = {"PLANETSCALE_SERVICE_TOKEN": PS_TOKEN}


def load(env: dict[str, str], **kwargs):
    return load_settings(environ=env, **kwargs)


def config_error(env: dict[str, str], **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(env, **kwargs)
    return caught.value


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- where values come from ----------------------------------------------------------------------


def test_env_file_given_explicitly_is_read(tmp_path):
    env_file = write(
        tmp_path / "x.env",
        f"SCALR_API_TOKEN={SCALR_TOKEN}\nSCALR_ACCOUNT=acme\nACCESSTRAIL_SYNC_INTERVAL=1h\n",
    )
    settings = load({}, env_file=env_file)
    assert settings.providers["scalr"] is not None
    assert settings.providers["scalr"].token.reveal() == SCALR_TOKEN
    assert settings.providers["scalr"].origin == "https://acme.scalr.io"
    assert settings.interval("scalr") == 3600


def test_dotenv_in_working_directory_is_read_by_default(tmp_path):
    write(tmp_path / ".env", f"PLANETSCALE_SERVICE_TOKEN={PS_TOKEN}\nACCESSTRAIL_LOG_LEVEL=debug\n")
    settings = load({})
    assert settings.providers["planetscale"] is not None
    assert settings.providers["planetscale"].token_id == PS_ID
    assert settings.providers["planetscale"].token.reveal() == PS_VALUE
    assert settings.log_level == "DEBUG"


def test_explicit_env_file_replaces_the_default_dotenv(tmp_path):
    write(tmp_path / ".env", f"PLANETSCALE_SERVICE_TOKEN={PS_TOKEN}\n")
    other = write(tmp_path / "other.env", f"SCALR_API_TOKEN={SCALR_TOKEN}\nSCALR_ACCOUNT=acme\n")
    settings = load({}, env_file=other)
    assert settings.enabled_providers == ["scalr"]


def test_missing_env_file_is_a_config_error(tmp_path):
    error = config_error({}, env_file=tmp_path / "nope.env")
    assert error.variable == "--env-file"
    assert "nope.env" in str(error)


def test_real_environment_wins_over_env_file(tmp_path):
    env_file = write(
        tmp_path / "x.env",
        "SCALR_API_TOKEN=from-file-token\nSCALR_ACCOUNT=fileacct\n"
        "ACCESSTRAIL_DB=/tmp/from-file.db\nACCESSTRAIL_PORT=9000\n",
    )
    settings = load({"SCALR_ACCOUNT": "envacct", "ACCESSTRAIL_PORT": "9100"}, env_file=env_file)
    assert settings.providers["scalr"].account == "envacct"
    assert settings.providers["scalr"].origin == "https://envacct.scalr.io"
    assert (
        settings.providers["scalr"].token.reveal() == "from-file-token"
    )  # only in the file: still read
    assert settings.db_path == Path("/tmp/from-file.db")
    assert settings.port == 9100


# -- NAME_FILE secrets ---------------------------------------------------------------------------


def test_scalr_token_file_from_environment_is_read_and_stripped(tmp_path):
    secret = write(tmp_path / "scalr_token", f"  \n{SCALR_TOKEN}\t \n")
    settings = load({"SCALR_API_TOKEN_FILE": str(secret), "SCALR_ACCOUNT": "acme"})
    assert settings.providers["scalr"].token.reveal() == SCALR_TOKEN


def test_scalr_token_file_named_in_env_file_is_read(tmp_path):
    secret = write(tmp_path / "scalr_token", SCALR_TOKEN + "\n")
    env_file = write(tmp_path / "x.env", f"SCALR_API_TOKEN_FILE={secret}\nSCALR_ACCOUNT=acme\n")
    settings = load({}, env_file=env_file)
    assert settings.providers["scalr"].token.reveal() == SCALR_TOKEN


def test_planetscale_token_file_from_environment_is_read_and_stripped(tmp_path):
    secret = write(tmp_path / "ps_token", f"\n {PS_TOKEN} \n\n")
    settings = load({"PLANETSCALE_SERVICE_TOKEN_FILE": str(secret)})
    assert settings.providers["planetscale"].token_id == PS_ID
    assert settings.providers["planetscale"].token.reveal() == PS_VALUE


def test_planetscale_token_file_named_in_default_dotenv_is_read(tmp_path):
    secret = write(tmp_path / "ps_token", PS_TOKEN + "\n")
    write(tmp_path / ".env", f"PLANETSCALE_SERVICE_TOKEN_FILE={secret}\n")
    settings = load({})
    assert settings.providers["planetscale"].token_id == PS_ID
    assert settings.providers["planetscale"].token.reveal() == PS_VALUE


@pytest.mark.parametrize(
    "name, value", [("SCALR_API_TOKEN", SCALR_TOKEN), ("PLANETSCALE_SERVICE_TOKEN", PS_TOKEN)]
)
def test_both_secret_and_secret_file_is_a_config_error(tmp_path, name, value):
    secret = write(tmp_path / "secret", value)
    error = config_error({name: value, f"{name}_FILE": str(secret), "SCALR_ACCOUNT": "acme"})
    assert name in str(error)
    assert value not in str(error)
    assert PS_VALUE not in str(error)


def test_secret_in_environment_and_secret_file_in_env_file_is_a_config_error(tmp_path):
    """Mixing sources does not make the ambiguity go away: still both set, still an error."""
    secret = write(tmp_path / "secret", "file-token")
    env_file = write(tmp_path / "x.env", f"SCALR_API_TOKEN_FILE={secret}\n")
    error = config_error(
        {"SCALR_API_TOKEN": SCALR_TOKEN, "SCALR_ACCOUNT": "acme"}, env_file=env_file
    )
    assert "SCALR_API_TOKEN" in str(error)
    assert SCALR_TOKEN not in str(error)
    assert "file-token" not in str(error)


@pytest.mark.parametrize("name", ["SCALR_API_TOKEN", "PLANETSCALE_SERVICE_TOKEN"])
def test_missing_secret_file_is_a_config_error_naming_the_variable(tmp_path, name):
    error = config_error({f"{name}_FILE": str(tmp_path / "absent"), "SCALR_ACCOUNT": "acme"})
    assert error.variable == f"{name}_FILE"
    assert f"{name}_FILE" in str(error)
    assert "\n" not in str(error)


def test_secret_file_that_is_a_directory_is_a_config_error(tmp_path):
    (tmp_path / "adir").mkdir()
    error = config_error({"SCALR_API_TOKEN_FILE": str(tmp_path / "adir"), "SCALR_ACCOUNT": "acme"})
    assert error.variable == "SCALR_API_TOKEN_FILE"


def test_empty_secret_file_is_a_config_error(tmp_path):
    secret = write(tmp_path / "empty", "  \n")
    error = config_error({"PLANETSCALE_SERVICE_TOKEN_FILE": str(secret)})
    assert error.variable == "PLANETSCALE_SERVICE_TOKEN_FILE"


# -- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, origin",
    [
        ("https://scalr.example.com", "https://scalr.example.com"),
        ("https://scalr.example.com/", "https://scalr.example.com"),
        ("https://scalr.example.com:8443/api/iacp/v3", "https://scalr.example.com:8443"),
        ("https://scalr.example.com/api/iacp/v3/", "https://scalr.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.2:9000/", "http://127.0.0.2:9000"),
        ("http://127.255.0.9:1", "http://127.255.0.9:1"),
        ("http://localhost:5000/api/iacp/v3", "http://localhost:5000"),
        ("http://[::1]:7000", "http://[::1]:7000"),
    ],
)
def test_scalr_base_url_accepted_forms(url, origin):
    settings = load({**SCALR_MIN, "SCALR_BASE_URL": url})
    assert settings.providers["scalr"].origin == origin


@pytest.mark.parametrize(
    "url",
    [
        "http://scalr.example.com",  # plain http off loopback
        "http://10.0.0.5:8080",
        "http://192.168.1.10",
        "http://127.0.0.1.nip.io",  # looks loopback, is not
        "http://localhost.example.com",
        "https://scalr.example.com/api/iacp/v2",  # another path
        "https://scalr.example.com/scalr",
        "https://scalr.example.com/api/iacp/v3/accounts",
        "https://scalr.example.com/?x=1",  # query
        "https://scalr.example.com#frag",
        "https://user:pw@scalr.example.com",  # credentials
        "ftp://scalr.example.com",
        "scalr.example.com",
        "https://",
    ],
)
def test_scalr_base_url_refused_forms(url):
    error = config_error({**SCALR_MIN, "SCALR_BASE_URL": url})
    assert error.variable == "SCALR_BASE_URL"
    assert str(error).startswith("configuration error: SCALR_BASE_URL")


@pytest.mark.parametrize(
    "url, origin",
    [
        ("https://api.planetscale.com/", "https://api.planetscale.com"),
        ("http://127.0.0.3:4444", "http://127.0.0.3:4444"),
        ("http://localhost:4444", "http://localhost:4444"),
    ],
)
def test_planetscale_api_url_accepted_forms(url, origin):
    settings = load({**PS_MIN, "PLANETSCALE_API_URL": url})
    assert settings.providers["planetscale"].origin == origin


def test_planetscale_api_url_defaults_to_the_public_api():
    assert load(PS_MIN).providers["planetscale"].origin == "https://api.planetscale.com"


@pytest.mark.parametrize(
    "url",
    [
        "http://api.planetscale.com",
        "https://api.planetscale.com/v2",
        "https://api.planetscale.com/?a=b",
        "https://u:p@api.planetscale.com",
    ],
)
def test_planetscale_api_url_refused_forms(url):
    error = config_error({**PS_MIN, "PLANETSCALE_API_URL": url})
    assert error.variable == "PLANETSCALE_API_URL"


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:hunter2-PASSWORD@scalr.example.com:notaport",
        "ftp://admin:hunter2-PASSWORD@scalr.example.com",
        "https://admin:hunter2-PASSWORD@scalr.example.com/other/path",
        "https://admin:hunter2-PASSWORD@scalr.example.com",
        # generated passwords often carry '/' or '@'; pasted unescaped they must not leak either
        "https://admin:hunter2/hunter2-PASSWORD@scalr.example.com",
        "ftp://admin:hunter2@hunter2-PASSWORD@scalr.example.com",
        "http://admin:hunter2/hunter2-PASSWORD@10.0.0.1",
    ],
)
def test_url_error_never_repeats_a_password_embedded_in_the_url(url):
    """Whatever else is wrong with it, a URL carrying a password must not be echoed back."""
    error = config_error({**SCALR_MIN, "SCALR_BASE_URL": url})
    assert error.variable == "SCALR_BASE_URL"
    assert "hunter2-PASSWORD" not in str(error)


def test_scalr_account_alone_gives_the_saas_origin():
    settings = load({"SCALR_API_TOKEN": SCALR_TOKEN, "SCALR_ACCOUNT": "Acme-Corp"})
    assert settings.providers["scalr"].origin == "https://acme-corp.scalr.io"


def test_scalr_token_without_account_or_base_url_is_a_config_error():
    error = config_error({"SCALR_API_TOKEN": SCALR_TOKEN})
    assert error.variable == "SCALR_ACCOUNT"
    assert SCALR_TOKEN not in str(error)


@pytest.mark.parametrize("account", ["acme.scalr.io", "https://acme.scalr.io", "ac me", "-acme"])
def test_scalr_account_must_be_a_subdomain(account):
    error = config_error({"SCALR_API_TOKEN": SCALR_TOKEN, "SCALR_ACCOUNT": account})
    assert error.variable == "SCALR_ACCOUNT"


# -- the Scalr access switches -------------------------------------------------------------------

SWITCHES = ("SCALR_READ_ACCESS_POLICIES", "SCALR_READ_TOKENS")


def test_scalr_access_listings_are_read_by_default():
    settings = load(SCALR_MIN).providers["scalr"]
    assert (settings.read_access_policies, settings.read_tokens) == (True, True)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), (" Yes ", True)]
    + [("false", False), ("False", False), ("0", False), ("no", False), ("", True)],
)
def test_scalr_access_switch_words(text, value):
    settings = load({**SCALR_MIN, "SCALR_READ_ACCESS_POLICIES": text, "SCALR_READ_TOKENS": text})
    scalr = settings.providers["scalr"]
    assert (scalr.read_access_policies, scalr.read_tokens) == (value, value)


def test_scalr_access_switches_are_independent(tmp_path):
    env_file = write(tmp_path / "access.env", "SCALR_READ_TOKENS=no\n")
    scalr = load(SCALR_MIN, env_file=env_file).providers["scalr"]
    assert (scalr.read_access_policies, scalr.read_tokens) == (True, False)


@pytest.mark.parametrize("variable", SWITCHES)
@pytest.mark.parametrize("text", ["maybe", "on", "2", "truee"])
def test_bad_scalr_access_switch_is_one_line_naming_the_variable(variable, text):
    error = config_error({**SCALR_MIN, variable: text})
    assert error.variable == variable
    assert "\n" not in str(error) and text in str(error)


@pytest.mark.parametrize("variable", SWITCHES)
def test_bad_scalr_access_switch_is_refused_even_while_scalr_is_off(variable):
    assert config_error({variable: "maybe"}).variable == variable


def test_bad_scalr_access_switch_exits_2_on_the_command_line(tmp_path):
    result = run_cli(
        ["check", "--db", str(tmp_path / "a.db")], {**SCALR_MIN, "SCALR_READ_TOKENS": "maybe"}
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SCALR_READ_TOKENS" in lines[0]


# -- intervals -----------------------------------------------------------------------------------


def test_default_interval_is_fifteen_minutes_for_both_providers():
    settings = load({})
    assert settings.interval("scalr") == 900
    assert settings.interval("planetscale") == 900


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("15m", 900), ("1h", 3600), ("2h", 7200), ("45m", 2700)]
)
def test_interval_units(text, seconds):
    settings = load({"ACCESSTRAIL_SYNC_INTERVAL": text})
    assert settings.interval("scalr") == seconds
    assert settings.interval("planetscale") == seconds


def test_per_provider_interval_overrides_the_default():
    settings = load({"ACCESSTRAIL_SYNC_INTERVAL": "1h", "SCALR_SYNC_INTERVAL": "90s"})
    assert settings.interval("scalr") == 90
    assert settings.interval("planetscale") == 3600
    settings = load({"PLANETSCALE_SYNC_INTERVAL": "30m"})
    assert settings.interval("scalr") == 900
    assert settings.interval("planetscale") == 1800


@pytest.mark.parametrize(
    "variable", ["ACCESSTRAIL_SYNC_INTERVAL", "SCALR_SYNC_INTERVAL", "PLANETSCALE_SYNC_INTERVAL"]
)
@pytest.mark.parametrize("text", ["soon", "15 minutes", "15x", "-5m", "1.5h", "m", "0s", "h1"])
def test_bad_interval_is_a_config_error_naming_the_variable(variable, text):
    error = config_error({variable: text})
    assert error.variable == variable
    assert variable in str(error)


# -- PlanetScale token shape ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "pscale_tkn_SECRETvalue0123456789",
        ":pscale_tkn_SECRETvalue01",
        "tokid12345ab:",
        "tokid 12:pscale_tkn_SECRETvalue01",
    ],
)
def test_planetscale_token_must_be_id_colon_value(token):
    error = config_error({"PLANETSCALE_SERVICE_TOKEN": token})
    assert error.variable == "PLANETSCALE_SERVICE_TOKEN"
    assert "pscale_tkn_SECRETvalue01" not in str(error)


def test_planetscale_token_is_split_into_id_and_value():
    settings = load({"PLANETSCALE_SERVICE_TOKEN": "abc:def:ghi"})
    assert settings.providers["planetscale"].token_id == "abc"
    assert settings.providers["planetscale"].token.reveal() == "def:ghi"


@pytest.mark.parametrize("budget", ["0", "-5", "lots", "1.5"])
def test_planetscale_request_budget_must_be_a_positive_whole_number(budget):
    error = config_error({**PS_MIN, "PLANETSCALE_REQUESTS_PER_MINUTE": budget})
    assert error.variable == "PLANETSCALE_REQUESTS_PER_MINUTE"


# -- database, log level, port -------------------------------------------------------------------


def test_default_database_is_accesstrail_db_in_the_working_directory():
    assert load({}).db_path == Path("./accesstrail.db")


def test_accesstrail_db_sets_the_database():
    assert load({"ACCESSTRAIL_DB": "/var/lib/x/audit.db"}).db_path == Path("/var/lib/x/audit.db")


def test_db_override_beats_accesstrail_db(tmp_path):
    env_file = write(tmp_path / "x.env", "ACCESSTRAIL_DB=/from/file.db\n")
    settings = load(
        {"ACCESSTRAIL_DB": "/from/env.db"}, env_file=env_file, db_override=tmp_path / "cli.db"
    )
    assert settings.db_path == tmp_path / "cli.db"


@pytest.mark.parametrize(
    "text, level",
    [("debug", "DEBUG"), ("WARNING", "WARNING"), ("trace", "TRACE"), ("error", "ERROR")],
)
def test_log_level_accepted(text, level):
    assert load({"ACCESSTRAIL_LOG_LEVEL": text}).log_level == level


def test_log_level_defaults_to_info():
    assert load({}).log_level == "INFO"


@pytest.mark.parametrize("text", ["verbose", "warn", "10", "INFO DEBUG"])
def test_bad_log_level_is_a_config_error(text):
    assert config_error({"ACCESSTRAIL_LOG_LEVEL": text}).variable == "ACCESSTRAIL_LOG_LEVEL"


def test_host_and_port_defaults_and_values():
    settings = load({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8001)
    settings = load({"ACCESSTRAIL_HOST": "0.0.0.0", "ACCESSTRAIL_PORT": "65535"})
    assert (settings.host, settings.port) == ("0.0.0.0", 65535)


@pytest.mark.parametrize("text", ["0", "65536", "-1", "http", "80.5", "1e3"])
def test_bad_port_is_a_config_error(text):
    assert config_error({"ACCESSTRAIL_PORT": text}).variable == "ACCESSTRAIL_PORT"


# -- which providers are enabled -----------------------------------------------------------------


def test_no_credentials_no_providers():
    settings = load(
        {
            "SCALR_ACCOUNT": "acme",
            "SCALR_BASE_URL": "https://scalr.example.com",
            "PLANETSCALE_API_URL": "https://api.planetscale.com",
        }
    )
    assert settings.enabled_providers == []
    assert settings.providers == {}


def test_empty_token_counts_as_unset():
    settings = load(
        {"SCALR_API_TOKEN": "", "SCALR_ACCOUNT": "acme", "PLANETSCALE_SERVICE_TOKEN": "  "}
    )
    assert settings.enabled_providers == []


def test_each_provider_enabled_by_its_own_credentials():
    assert load(SCALR_MIN).enabled_providers == ["scalr"]
    assert load(PS_MIN).enabled_providers == ["planetscale"]
    assert load({**SCALR_MIN, **PS_MIN}).enabled_providers == ["scalr", "planetscale"]


def test_settings_repr_hides_both_tokens():
    settings = load({**SCALR_MIN, **PS_MIN})
    text = (
        repr(settings)
        + str(settings)
        + repr(settings.providers["scalr"])
        + repr(settings.providers["planetscale"])
    )
    assert SCALR_TOKEN not in text
    assert PS_VALUE not in text


# -- through the CLI: exit 2, one line naming the variable -----------------------------------------

BAD_CONFIGS = [
    ({"ACCESSTRAIL_SYNC_INTERVAL": "often", **SCALR_MIN}, "ACCESSTRAIL_SYNC_INTERVAL"),
    ({"SCALR_SYNC_INTERVAL": "5 min", **SCALR_MIN}, "SCALR_SYNC_INTERVAL"),
    ({"ACCESSTRAIL_LOG_LEVEL": "chatty", **SCALR_MIN}, "ACCESSTRAIL_LOG_LEVEL"),
    ({"ACCESSTRAIL_PORT": "99999", **SCALR_MIN}, "ACCESSTRAIL_PORT"),
    ({**SCALR_MIN, "SCALR_BASE_URL": "http://scalr.example.com"}, "SCALR_BASE_URL"),
    ({"PLANETSCALE_SERVICE_TOKEN": PS_VALUE}, "PLANETSCALE_SERVICE_TOKEN"),
    ({**PS_MIN, "PLANETSCALE_API_URL": "http://api.planetscale.com"}, "PLANETSCALE_API_URL"),
    ({**SCALR_MIN, "SCALR_API_TOKEN_FILE": "/nonexistent/token"}, "SCALR_API_TOKEN"),
    (
        {"SCALR_API_TOKEN_FILE": "/nonexistent/token", "SCALR_ACCOUNT": "acme"},
        "SCALR_API_TOKEN_FILE",
    ),
    ({"PLANETSCALE_SERVICE_TOKEN_FILE": "/nonexistent/token"}, "PLANETSCALE_SERVICE_TOKEN_FILE"),
    ({"SCALR_API_TOKEN": SCALR_TOKEN}, "SCALR_ACCOUNT"),
]


@pytest.mark.parametrize(
    "env, variable", BAD_CONFIGS, ids=[f"{i}-{v}" for i, (_, v) in enumerate(BAD_CONFIGS)]
)
def test_cli_sync_with_bad_config_exits_2_with_one_line_naming_the_variable(
    tmp_path, env, variable
):
    result = run_cli(["sync"], env)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert SCALR_TOKEN not in result.stderr and PS_VALUE not in result.stderr
    assert not (tmp_path / "accesstrail.db").exists()  # stopped before touching the database


def test_cli_sync_with_missing_env_file_exits_2(tmp_path):
    result = run_cli(["sync", "--env-file", str(tmp_path / "missing.env")], {})
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--env-file" in lines[0]


def test_cli_sync_with_no_provider_configured_exits_2():
    result = run_cli(["sync"], {})
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SCALR_API_TOKEN" in lines[0] and "PLANETSCALE_SERVICE_TOKEN" in lines[0]


def test_cli_sync_of_a_provider_that_is_not_configured_exits_2():
    result = run_cli(["sync", "--provider", "planetscale"], SCALR_MIN)
    assert result.exit_code == 2
    assert "PLANETSCALE_SERVICE_TOKEN" in result.stderr.strip()


def test_cli_check_with_bad_config_exits_2():
    result = run_cli(["check"], {**SCALR_MIN, "ACCESSTRAIL_PORT": "x"})
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "ACCESSTRAIL_PORT" in result.stderr


def test_cli_db_option_beats_accesstrail_db(tmp_path, scalr_sim):
    env_db = tmp_path / "from-env.db"
    cli_db = tmp_path / "from-cli.db"
    result = run_cli(
        ["sync", "--db", str(cli_db)], {**scalr_env(scalr_sim), "ACCESSTRAIL_DB": str(env_db)}
    )
    assert result.exit_code == 0, result.output
    assert cli_db.exists()
    assert not env_db.exists()
    assert [r["status"] for r in query(cli_db, "SELECT status FROM sync_runs")] == ["succeeded"]


def test_cli_reads_env_file_option_and_env_wins(tmp_path, scalr_sim):
    """The env file supplies the token; the environment's database path beats the file's."""
    file_db = tmp_path / "file.db"
    env_db = tmp_path / "env.db"
    env_file = write(
        tmp_path / "conf.env",
        "".join(f"{k}={v}\n" for k, v in scalr_env(scalr_sim).items())
        + f"ACCESSTRAIL_DB={file_db}\n",
    )
    result = run_cli(["sync", "--env-file", str(env_file)], {"ACCESSTRAIL_DB": str(env_db)})
    assert result.exit_code == 0, result.output
    assert env_db.exists() and not file_db.exists()


def test_cli_uses_default_database_in_working_directory(tmp_path, scalr_sim):
    result = run_cli(["sync"], scalr_env(scalr_sim))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "accesstrail.db").exists()
