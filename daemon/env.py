"""Reading and checking environment values: the primitives every setting is built from.

Both ``daemon/config.py`` and each provider's own settings use these, so the rules are the same
for every variable: empty means unset, a secret may come from a ``NAME_FILE``, a URL must be
https except on loopback, and every mistake is one ``ConfigError`` line naming the variable.
Secrets are wrapped in ``Secret`` so that no repr, log line or error message can show them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import overload
from urllib.parse import urlsplit

from dotenv import dotenv_values

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_INTERVAL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


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


def read_environment(
    env_file: str | Path | None,
    environ: Mapping[str, str] | None,
    *,
    read_default_env_file: bool = True,
) -> EnvValues:
    """The env file's values (default ``./.env`` when present) under the real environment's."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if env_file is not None and not Path(env_file).is_file():
        raise ConfigError("--env-file", f"no such file: {env_file}")
    path = env_file_in_use(env_file, read_default_env_file=read_default_env_file)
    if path is not None:
        values.update(_read_env_file(path))
    values.update({k: v for k, v in environ.items() if v is not None})
    return EnvValues(values)


def env_file_in_use(
    env_file: str | Path | None, *, read_default_env_file: bool = True
) -> Path | None:
    """The env file ``read_environment`` reads: the one given, else ``./.env`` when present."""
    if env_file is not None:
        return Path(env_file)
    if read_default_env_file and Path(".env").is_file():
        return Path(".env")
    return None


def exposed_secrets_warning(path: Path, secret_names: Iterable[str]) -> str | None:
    """One line when ``path`` holds one of ``secret_names`` yet others may read it, or its group
    or others may write it (and so plant a token or an origin of their choosing); else None.

    Only the names are read back here, never shown with their values.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    problems = []
    if mode & stat.S_IROTH:
        problems.append("readable by other users")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append("writable by " + ("other users" if mode & stat.S_IWOTH else "its group"))
    if not problems:
        return None
    held = sorted(set(secret_names) & set(_read_env_file(path)))
    if not held:
        return None
    return (
        f"warning: env file {path} holds {', '.join(held)} and is {' and '.join(problems)} "
        f"(mode {mode:04o}): run chmod 600 {path}"
    )


def _read_env_file(path: Path) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


class EnvValues:
    """Lookup with the rules above: empty means unset, ``NAME_FILE`` stands in for a secret."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

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


def checked_webhook_url(variable: str, url: str, provider_origins: Iterable[str]) -> str:
    """The webhook URL, checked: https except loopback, no credentials, not a provider's origin.

    The URL is a secret (a Slack URL is its own credential): no message here shows it.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(variable, "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(variable, "must be an https:// URL")
    if parts.username or parts.password:
        raise ConfigError(variable, "must not contain user credentials")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            variable,
            "must use https:// (http:// is allowed only for loopback hosts "
            "such as 127.0.0.1 or localhost)",
        )
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    origin = f"{parts.scheme}://{host.lower()}{f':{port}' if port and port != default else ''}"
    for provider_origin in provider_origins:
        other = urlsplit(provider_origin)
        other_port = other.port or {"http": 80, "https": 443}.get(other.scheme)
        if (parts.scheme, host.lower(), port or default) == (
            other.scheme,
            (other.hostname or "").lower(),
            other_port,
        ):
            raise ConfigError(
                variable,
                f"is on a provider's origin ({provider_origin}); alerts never go to a provider",
            )
    return origin


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


def parse_port(variable: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(variable, f"must be a port number 1-65535, got {text!r}")
    return int(text)


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def parse_bool(variable: str, text: str | None, default: bool) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, any case); unset is ``default``."""
    if text is None:
        return default
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(variable, f"must be true or false (also 1/0, yes/no), got {text!r}")
