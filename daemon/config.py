"""Settings from the process environment and an env file, validated up front.

Every mistake a user can make here ends in one ``ConfigError`` line that names the variable and
says what is wrong, before any network traffic or database write. Secrets are wrapped in
``Secret`` so that no repr, log line or error message can show them by accident.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

SCALR_API_PATH = "/api/iacp/v3"
DEFAULT_INTERVAL = "15m"
# Below this, waiting for the client-side limiter would eat into each request's deadline.
MIN_REQUESTS_PER_MINUTE = 30
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_INTERVAL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


class ConfigError(Exception):
    """A configuration mistake: ``str()`` is one line naming the variable."""

    def __init__(self, variable: str, problem: str):
        self.variable = variable
        self.problem = problem
        super().__init__(f"configuration error: {variable}: {problem}")


class Secret:
    """A credential that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ScalrSettings:
    account: str | None
    token: Secret
    origin: str  # scheme://host[:port], no path

    @property
    def api_root(self) -> str:
        return self.origin + SCALR_API_PATH


@dataclass(frozen=True)
class PlanetScaleSettings:
    token_id: str
    token: Secret
    origin: str
    requests_per_minute: int = 540

    @property
    def api_root(self) -> str:
        return self.origin + "/v1"


@dataclass(frozen=True)
class Settings:
    db_path: Path
    scalr: ScalrSettings | None = None
    planetscale: PlanetScaleSettings | None = None
    intervals: dict[str, int] = field(default_factory=dict)
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8001

    @property
    def enabled_providers(self) -> list[str]:
        return [name for name in ("scalr", "planetscale") if getattr(self, name) is not None]

    def interval(self, provider: str) -> int:
        return self.intervals[provider]


def load_settings(
    env_file: str | Path | None = None,
    db_override: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    read_default_env_file: bool = True,
) -> Settings:
    """Merge the env file (default ``./.env`` when present) under the real environment.

    ``read_default_env_file=False`` is for settings built entirely by the program (the demo's
    simulators), which must not pick up a real configuration lying in the working directory.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if env_file is not None:
        path = Path(env_file)
        if not path.is_file():
            raise ConfigError("--env-file", f"no such file: {path}")
        values.update(_read_env_file(path))
    elif read_default_env_file and Path(".env").is_file():
        values.update(_read_env_file(Path(".env")))
    values.update({k: v for k, v in environ.items() if v is not None})
    return _build(_Values(values), db_override)


def _read_env_file(path: Path) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


class _Values:
    """Lookup with the contract's rules: empty means unset, ``NAME_FILE`` stands in for secrets."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def secret(self, name: str) -> Secret | None:
        direct = self.get(name)
        file_name = self.get(f"{name}_FILE")
        if direct is not None and file_name is not None:
            raise ConfigError(name, f"both {name} and {name}_FILE are set; set only one")
        if file_name is None:
            return Secret(direct) if direct is not None else None
        try:
            text = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE", f"cannot read {file_name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{name}_FILE", f"{file_name} is not UTF-8 text") from None
        if not text:
            raise ConfigError(f"{name}_FILE", f"{file_name} is empty")
        return Secret(text)


def _build(values: _Values, db_override) -> Settings:
    db_path = Path(db_override or values.get("ACCESSTRAIL_DB", "./accesstrail.db"))
    default_interval = parse_interval(
        "ACCESSTRAIL_SYNC_INTERVAL", values.get("ACCESSTRAIL_SYNC_INTERVAL", DEFAULT_INTERVAL)
    )
    intervals = {}
    for provider, variable in (
        ("scalr", "SCALR_SYNC_INTERVAL"),
        ("planetscale", "PLANETSCALE_SYNC_INTERVAL"),
    ):
        raw = values.get(variable)
        intervals[provider] = parse_interval(variable, raw) if raw else default_interval
    level = values.get("ACCESSTRAIL_LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError("ACCESSTRAIL_LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}")
    return Settings(
        db_path=db_path,
        scalr=_scalr(values),
        planetscale=_planetscale(values),
        intervals=intervals,
        log_level=level,
        host=values.get("ACCESSTRAIL_HOST", "127.0.0.1"),
        port=_port(values.get("ACCESSTRAIL_PORT", "8001")),
    )


def _scalr(values: _Values) -> ScalrSettings | None:
    token = values.secret("SCALR_API_TOKEN")
    if token is None:
        return None
    account = values.get("SCALR_ACCOUNT")
    base_url = values.get("SCALR_BASE_URL")
    if account is not None and not _SUBDOMAIN.match(account):
        raise ConfigError(
            "SCALR_ACCOUNT",
            "must be the account's subdomain, such as 'acme' for https://acme.scalr.io",
        )
    if base_url is not None:
        origin = checked_origin("SCALR_BASE_URL", base_url, allowed_path=SCALR_API_PATH)
    elif account is not None:
        origin = f"https://{account.lower()}.scalr.io"
    else:
        raise ConfigError(
            "SCALR_ACCOUNT",
            "required when SCALR_API_TOKEN is set (or set SCALR_BASE_URL for a self-hosted Scalr)",
        )
    return ScalrSettings(account=account, token=token, origin=origin)


def _planetscale(values: _Values) -> PlanetScaleSettings | None:
    token = values.secret("PLANETSCALE_SERVICE_TOKEN")
    if token is None:
        return None
    token_id, colon, token_value = token.reveal().partition(":")
    if not colon or not token_id or not token_value or re.search(r"\s", token.reveal()):
        raise ConfigError(
            "PLANETSCALE_SERVICE_TOKEN",
            "expected '<token-id>:<token-value>': the "
            "service token's id, a colon, then the token itself",
        )
    origin = checked_origin(
        "PLANETSCALE_API_URL",
        values.get("PLANETSCALE_API_URL", "https://api.planetscale.com"),
        allowed_path="/v1",
    )
    raw_budget = values.get("PLANETSCALE_REQUESTS_PER_MINUTE", "540")
    if not raw_budget.isdigit() or int(raw_budget) < MIN_REQUESTS_PER_MINUTE:
        raise ConfigError(
            "PLANETSCALE_REQUESTS_PER_MINUTE",
            f"must be a whole number of at least {MIN_REQUESTS_PER_MINUTE}",
        )
    return PlanetScaleSettings(
        token_id=token_id,
        token=Secret(token_value),
        origin=origin,
        requests_per_minute=int(raw_budget),
    )


def checked_origin(variable: str, url: str, allowed_path: str = "") -> str:
    """The ``scheme://host[:port]`` of ``url``, enforcing https except on loopback hosts.

    A trailing slash, or a path equal to the API's own prefix (``allowed_path``), is tolerated
    because people paste both; anything else in the path, a query or credentials is refused.
    """
    shown = _without_userinfo(url.strip())
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(variable, f"not a valid URL: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(variable, f"must be an https:// URL, got {shown!r}")
    if parts.username or parts.password:
        raise ConfigError(variable, "must not contain credentials; set the token variable instead")
    if parts.query or parts.fragment:
        raise ConfigError(variable, "must not contain a query or fragment")
    path = parts.path.rstrip("/")
    if path not in ("", allowed_path):
        raise ConfigError(
            variable,
            f"must be an origin such as https://host[:port]"
            f"{' (optionally ending in ' + allowed_path + ')' if allowed_path else ''}"
            f", got path {parts.path!r}",
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            variable,
            "must use https:// (http:// is allowed only for loopback hosts "
            "such as 127.0.0.1 or localhost)",
        )
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host.lower()}{f':{port}' if port else ''}"


def _without_userinfo(url: str) -> str:
    """The URL as safe to print: a password pasted into it must not reach a log or terminal.

    Any ``@`` may be the end of credentials, however oddly the rest is spelt, so such a URL is
    shown only up to its scheme.
    """
    if "@" not in url:
        return url
    scheme, separator, _ = url.partition("://")
    return f"{scheme}://***" if separator else "***"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_interval(variable: str, text: str) -> int:
    """``90s``, ``15m``, ``1h`` (or a bare number of seconds) as seconds; at least 10 s."""
    match = _INTERVAL.match(text or "")
    if not match:
        raise ConfigError(variable, f"must be a duration such as 90s, 15m or 1h, got {text!r}")
    seconds = int(match.group(1)) * _INTERVAL_UNITS[match.group(2).lower()]
    if seconds < 10:
        raise ConfigError(variable, "must be at least 10s")
    return seconds


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError("ACCESSTRAIL_PORT", f"must be a port number 1-65535, got {text!r}")
    return int(text)
