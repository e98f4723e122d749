"""The daemon's settings: the env file under the real environment, validated up front.

Every mistake a user can make here ends in one ``ConfigError`` line that names the variable and
says what is wrong, before any network traffic or database write. What each provider reads is
declared by that provider (``daemon/providers/``); this module reads the settings every provider
shares (database, intervals, logging, the web UI's address) and asks each provider for its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.env import (
    ConfigError,
    EnvValues,
    Secret,
    checked_webhook_url,
    parse_interval,
    parse_port,
    read_environment,
)
from daemon.providers import PROVIDERS
from store.alerts import Alerting, UnknownRule, parse_rules

DEFAULT_DB = "./accesstrail.db"
DEFAULT_INTERVAL = "15m"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
WEBHOOK_FORMATS = ("json", "slack")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")

__all__ = ["ConfigError", "Settings", "load_settings"]


@dataclass(frozen=True)
class WebSettings:
    """What ``serve`` puts in front of Datasette: a password, and the key that signs its login."""

    password_hash: Secret | None = None  # from ``datasette hash-password``
    user: str = "auditor"
    secret: Secret | None = None  # signs the login cookie, so a login outlives a restart
    title: str = "accesstrail"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs; ``providers`` holds only the enabled providers' settings."""

    db_path: Path
    providers: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, int] = field(default_factory=dict)
    log_level: str = "INFO"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    webhook_url: Secret | None = None
    webhook_format: str = "json"
    events_file: Path | None = None
    alert_rules: frozenset[str] = field(default_factory=lambda: parse_rules(None))
    web: WebSettings = field(default_factory=lambda: WebSettings())

    @property
    def sinks(self) -> tuple[str, ...]:
        """The alert sinks configured: each alert raised now is owed to these."""
        return tuple(
            name
            for name, on in (("webhook", self.webhook_url), ("events_file", self.events_file))
            if on is not None
        )

    @property
    def alerting(self) -> Alerting:
        return Alerting(rules=self.alert_rules, sinks=self.sinks)

    @property
    def enabled_providers(self) -> list[str]:
        """Enabled provider names, in the registry's order (so output is always in one order)."""
        return [name for name in PROVIDERS if name in self.providers]

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
    values = read_environment(env_file, environ, read_default_env_file=read_default_env_file)
    return _build(values, db_override)


def _build(values: EnvValues, db_override: str | Path | None) -> Settings:
    db_path = Path(db_override or values.get("ACCESSTRAIL_DB", DEFAULT_DB))
    default_interval = parse_interval(
        "ACCESSTRAIL_SYNC_INTERVAL", values.get("ACCESSTRAIL_SYNC_INTERVAL", DEFAULT_INTERVAL)
    )
    providers: dict[str, Any] = {}
    intervals: dict[str, int] = {}
    for name, provider in PROVIDERS.items():
        provider_settings = provider.read_settings(values)
        if provider_settings is not None:
            providers[name] = provider_settings
        variable = f"{provider.env_prefix}_SYNC_INTERVAL"
        raw = values.get(variable)
        intervals[name] = parse_interval(variable, raw) if raw else default_interval
    level = values.get("ACCESSTRAIL_LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError("ACCESSTRAIL_LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}")
    webhook_url = values.secret("ACCESSTRAIL_WEBHOOK_URL")
    if webhook_url is not None:
        origins = [getattr(p, "origin", None) for p in providers.values()]
        checked_webhook_url(
            "ACCESSTRAIL_WEBHOOK_URL", webhook_url.reveal(), [o for o in origins if o]
        )
    webhook_format = values.get("ACCESSTRAIL_WEBHOOK_FORMAT", "json").lower()
    if webhook_format not in WEBHOOK_FORMATS:
        raise ConfigError("ACCESSTRAIL_WEBHOOK_FORMAT", "must be json or slack")
    events_file = values.get("ACCESSTRAIL_EVENTS_FILE")
    try:
        rules = parse_rules(values.get("ACCESSTRAIL_ALERTS"))
    except UnknownRule as exc:
        raise ConfigError("ACCESSTRAIL_ALERTS", str(exc)) from None
    return Settings(
        db_path=db_path,
        providers=providers,
        intervals=intervals,
        log_level=level,
        host=values.get("ACCESSTRAIL_HOST", DEFAULT_HOST),
        port=parse_port("ACCESSTRAIL_PORT", values.get("ACCESSTRAIL_PORT", str(DEFAULT_PORT))),
        webhook_url=webhook_url,
        webhook_format=webhook_format,
        events_file=Path(events_file) if events_file else None,
        alert_rules=rules,
        web=WebSettings(
            password_hash=values.secret("ACCESSTRAIL_WEB_PASSWORD_HASH"),
            user=values.get("ACCESSTRAIL_WEB_USER", "auditor"),
            secret=values.secret("ACCESSTRAIL_WEB_SECRET"),
        ),
    )
