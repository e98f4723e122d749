"""``config.example.env`` states the defaults the code really has.

Each default is defined once, in the code; the example file repeats them for the reader, so this
test is what keeps the two from drifting apart.
"""

from pathlib import Path

from daemon import config
from daemon.config import load_settings
from daemon.providers import planetscale

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.env"


def _example_values() -> dict[str, str]:
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_the_example_values_are_the_code_defaults():
    example = _example_values()
    assert example["ACCESSTRAIL_DB"] == config.DEFAULT_DB
    assert example["ACCESSTRAIL_SYNC_INTERVAL"] == config.DEFAULT_INTERVAL
    assert example["ACCESSTRAIL_LOG_LEVEL"] == "INFO"
    assert example["ACCESSTRAIL_HOST"] == config.DEFAULT_HOST
    assert example["ACCESSTRAIL_PORT"] == str(config.DEFAULT_PORT)
    assert example["SCALR_READ_ACCESS_POLICIES"] == "true"
    assert example["SCALR_READ_TOKENS"] == "true"
    assert example["PLANETSCALE_API_URL"] == planetscale.DEFAULT_API_URL
    assert example["PLANETSCALE_REQUESTS_PER_MINUTE"] == str(
        planetscale.DEFAULT_REQUESTS_PER_MINUTE
    )


def test_the_example_loads_as_it_is_and_enables_nothing():
    settings = load_settings(env_file=EXAMPLE, environ={})
    example_defaults = load_settings(environ={}, read_default_env_file=False)
    assert settings.providers == {}
    assert settings == example_defaults  # every value it spells out is the default anyway


def test_the_scalr_access_switches_default_to_what_the_example_says():
    settings = load_settings(
        environ={"SCALR_API_TOKEN": "tok", "SCALR_ACCOUNT": "acme"}, read_default_env_file=False
    )
    from_example = load_settings(
        env_file=EXAMPLE, environ={"SCALR_API_TOKEN": "tok", "SCALR_ACCOUNT": "acme"}
    )
    assert settings.providers["scalr"] == from_example.providers["scalr"]
    assert settings.providers["scalr"].read_access_policies is True
    assert settings.providers["scalr"].read_tokens is True
