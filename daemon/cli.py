"""The ``accesstrail`` command line.

Exit statuses are a promise: scripts and systemd act on them. Every expected failure
(bad configuration, a refused token, an unreachable host) ends in one line on stderr, never a
traceback.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from pathlib import Path

import click
from loguru import logger

from daemon import errors, logs, memory
from daemon.config import DEFAULT_HOST, DEFAULT_PORT, ConfigError, Settings, load_settings
from daemon.env import Secret
from daemon.providers import PROVIDERS
from store.lock import SyncLockBusy

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

env_file_option = click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Env file to read settings from (default: ./.env when present).",
)
db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite database file (beats ACCESSTRAIL_DB).",
)


def settings_options(command):
    """``--env-file`` and ``--db``: every command that reads the settings takes both."""
    return env_file_option(db_option(command))


def configure_logging(level: str, settings: Settings | None = None) -> None:
    """``daemon/logs.py``'s sink, told the configured secrets so that it can redact them."""
    logs.configure_logging(level, _secrets(settings) if settings else ())


def _secrets(settings: Settings) -> list[str]:
    """Every configured secret, and each part of a ``<id>:<value>`` token on its own."""
    found: list[str] = []
    for provider_settings in settings.providers.values():
        for value in vars(provider_settings).values():
            if isinstance(value, Secret):
                found += [value.reveal(), *value.reveal().split(":")]
    if settings.webhook_url is not None:  # a Slack URL is its own credential, its path too
        from urllib.parse import urlsplit

        url = settings.webhook_url.reveal()
        path = urlsplit(url).path
        found += [url, path, path.rstrip("/").rpartition("/")[2]]  # the last part: the token
    return found


def settings_or_exit(env_file: Path | None, db: Path | None) -> Settings:
    try:
        settings = load_settings(env_file, db)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    configure_logging(settings.log_level, settings)
    return settings


def require_providers(settings: Settings, only: str | None) -> list[str]:
    enabled = settings.enabled_providers
    if only:
        if only not in enabled:
            variable = PROVIDERS[only].token_variable
            click.echo(
                f"configuration error: {variable}: not set, so {only} is not enabled", err=True
            )
            sys.exit(EXIT_USAGE)
        return [only]
    if not enabled:
        click.echo(
            "configuration error: no provider is configured: set "
            + " and/or ".join(spec.how_to_enable for spec in PROVIDERS.values()),
            err=True,
        )
        sys.exit(EXIT_USAGE)
    return enabled


@contextlib.contextmanager
def database_errors(path: Path):
    """A database file that cannot be opened or is not SQLite is a configuration mistake: say so
    in one line instead of a traceback."""
    try:
        yield
    except (sqlite3.DatabaseError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        click.echo(
            f"configuration error: database {path}: {reason}; check --db or ACCESSTRAIL_DB",
            err=True,
        )
        sys.exit(EXIT_USAGE)


def require_database(settings: Settings) -> None:
    """``status`` and ``serve`` read an existing history; they never create an empty one."""
    if not settings.db_path.is_file():
        click.echo(f"no database at {settings.db_path}: run 'accesstrail sync' first", err=True)
        sys.exit(EXIT_FAILED)


class TerminalProgress:
    """Progress for long syncs on a terminal: one rewritten line on stderr, nothing elsewhere."""

    def __init__(self):
        self.active = sys.stderr.isatty()
        self.shown = False

    def __call__(self, message: str) -> None:
        if self.active:
            click.echo(f"\r\033[K{message}", err=True, nl=False)
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\033[K", err=True, nl=False)
            self.shown = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="accesstrail")
def main() -> None:
    """accesstrail keeps an auditable history of who can get into your Scalr and PlanetScale
    accounts, in SQLite, browsable with Datasette."""
    memory.tune_malloc()  # before any thread starts (daemon/memory.py says why)


@main.command()
@click.option(
    "--provider",
    type=click.Choice(list(PROVIDERS)),
    default=None,
    help="Sync only this provider.",
)
@settings_options
def sync(provider: str | None, env_file: Path | None, db: Path | None) -> None:
    """Sync each enabled provider once now, print what changed, and exit."""
    from daemon.sync import StorageError, sync_all

    settings = settings_or_exit(env_file, db)
    progress = TerminalProgress()
    results = sync_all(settings, require_providers(settings, provider), progress=progress)
    progress.clear()
    failed = False
    for name, result in results:
        if isinstance(result, SyncLockBusy):
            click.echo(f"{PROVIDERS[name].label}: not synced: {result}", err=True)
            failed = True
            continue
        if isinstance(result, StorageError):  # not a configuration error: the disk, the mount
            click.echo(str(result), err=True)
            failed = True
            continue
        if isinstance(result, Exception):
            with database_errors(settings.db_path):
                raise result
        click.echo(result.summary())
        if result.error:
            click.echo(f"  {result.error}", err=True)
        failed = failed or not result.ok
    deliver_after_sync(settings)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def deliver_after_sync(settings: Settings) -> None:
    """Try every pending alert once, within its budget; never changes the exit status."""
    if not settings.sinks or not settings.db_path.is_file():
        return
    from daemon.delivery import deliver_pending

    try:
        report = deliver_pending(settings)
    except Exception as exc:  # delivery must never fail a sync
        logger.opt(exception=exc).debug("delivering alerts failed")
        click.echo(f"alerts: not delivered ({type(exc).__name__}); next sync retries", err=True)
        return
    if report.delivered or report.failed or report.left:
        click.echo(report.line(), err=True)


@main.command()
@settings_options
def run(env_file: Path | None, db: Path | None) -> None:
    """Run the daemon: sync each provider on its interval until SIGTERM/SIGINT."""
    from daemon.scheduler import run_daemon

    settings = settings_or_exit(env_file, db)
    require_providers(settings, None)
    sys.exit(run_daemon(settings))


#: Variables whose value is a credential: an env file holding one must be private. The webhook
#: URL is one too (a Slack URL is its own credential).
SECRET_VARIABLES = {spec.token_variable for spec in PROVIDERS.values()} | {
    "ACCESSTRAIL_WEBHOOK_URL"
}


def warn_about_env_file(env_file: Path | None) -> None:
    """Warn (stderr, one line; the exit status is unchanged) about an env file that exposes a
    secret to other users."""
    from daemon.env import env_file_in_use, exposed_secrets_warning

    path = env_file_in_use(env_file)
    warning = exposed_secrets_warning(path, SECRET_VARIABLES) if path is not None else None
    if warning:
        click.echo(warning, err=True)


@main.command()
@click.option(
    "--webhook",
    is_flag=True,
    help="Also POST a clearly marked test message to ACCESSTRAIL_WEBHOOK_URL.",
)
@settings_options
def check(webhook: bool, env_file: Path | None, db: Path | None) -> None:
    """Validate the configuration and prove each credential with one cheap read."""
    from daemon.probe import probe_provider

    settings = settings_or_exit(env_file, db)
    warn_about_env_file(env_file)
    if webhook and settings.webhook_url is None:
        click.echo("configuration error: ACCESSTRAIL_WEBHOOK_URL: not set", err=True)
        sys.exit(EXIT_USAGE)
    refused = False
    if webhook:
        from daemon.delivery import send_test_message

        with database_errors(settings.db_path):
            error = send_test_message(settings)
        if error is None:
            click.echo(f"webhook: ok: test message accepted ({settings.webhook_format})")
        else:
            click.echo(f"webhook: test message not accepted: {error}", err=True)
            refused = True
    for name in require_providers(settings, None):
        try:
            click.echo(f"{PROVIDERS[name].label}: ok: {probe_provider(settings, name)}")
        except errors.ProviderError as exc:
            click.echo(str(exc), err=True)
            refused = True
        except Exception as exc:  # a bug must still be one line, and must not hide the rest
            logger.opt(exception=exc).debug("check of {} crashed", name)
            click.echo(
                f"{PROVIDERS[name].label}: check failed with an internal error "
                f"({type(exc).__name__}); please report it",
                err=True,
            )
            refused = True
    sys.exit(EXIT_FAILED if refused else EXIT_OK)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for monitoring.")
@settings_options
def status(as_json: bool, env_file: Path | None, db: Path | None) -> None:
    """Per provider: last run, last success, its age and what is recorded now.

    Exits 1 when a provider is stale or its last run did not end ``succeeded``."""
    from daemon.status import provider_status
    from store import reads, schema

    settings = settings_or_exit(env_file, db)
    require_database(settings)
    with database_errors(settings.db_path):
        database = schema.connect(settings.db_path)
        recorded = reads.recorded_providers(database)
        providers = [p for p in PROVIDERS if p in recorded or p in settings.enabled_providers]
        reports = [provider_status(database, p, settings.interval(p)) for p in providers]
    if as_json:
        click.echo(json.dumps({"providers": [report.as_json() for report in reports]}))
    else:
        for report in reports:
            for line in report.lines():
                click.echo(line)
    if not reports:
        click.echo("no provider has been synced and none is configured", err=True)
    healthy = bool(reports) and all(report.healthy for report in reports)
    sys.exit(EXIT_OK if healthy else EXIT_FAILED)


@main.command("alerts")
@click.option(
    "--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="How many."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@settings_options
def alerts_command(limit: int, as_json: bool, env_file: Path | None, db: Path | None) -> None:
    """List recent alerts, newest first, and their delivery state."""
    from store import alerts, schema

    settings = settings_or_exit(env_file, db)
    require_database(settings)
    with database_errors(settings.db_path):
        database = schema.connect(settings.db_path)
        try:
            rows = alerts.recent(database, limit)
        finally:
            database.close()
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
            continue
        if row["delivered_at"]:
            state = f"delivered {row['delivered_at']}"
        elif not row["sinks"]:
            state = "no sink configured when raised"
        else:
            state = f"pending ({row['sinks']}; {row['attempts']} failed attempt(s)"
            state += f"; {row['last_error']})" if row["last_error"] else ")"
        click.echo(
            f"#{row['id']} {row['observed_at']} {row['provider']} {row['rule']}: "
            f"{row['summary']} [{state}]"
        )
    if not rows:
        click.echo("no alerts")
    sys.exit(EXIT_OK)


@main.command()
@settings_options
def serve(env_file: Path | None, db: Path | None) -> None:
    """Serve the database with Datasette (read-only browsing and SQL)."""
    from daemon.serve import serve_database

    settings = settings_or_exit(env_file, db)
    require_database(settings)
    serve_database(settings.db_path, settings.host, settings.port, settings.web)


@main.command()
@click.option(
    "--days",
    "--rounds",
    "days",
    type=click.IntRange(1, 1000),
    default=30,
    show_default=True,
    help="How many simulated days to replay after the baseline sync, one sync a day "
    "(--rounds is the older spelling).",
)
@click.option("--no-serve", is_flag=True, help="Exit after the last day instead of serving.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed of the world.")
@settings_options
def demo(days: int, no_serve: bool, seed: int, env_file: Path | None, db: Path | None) -> None:
    """Replay a simulated month of Scalr and PlanetScale, one sync a day, then serve it."""
    from daemon.demo import DEMO_DB, run_demo

    configure_logging("WARNING")
    try:  # the demo honours ACCESSTRAIL_HOST/PORT for serving, and nothing else of the config
        settings = load_settings(env_file)
        host, port = settings.host, settings.port
    except ConfigError:
        host, port = DEFAULT_HOST, DEFAULT_PORT
    run_demo(
        db_path=db or DEMO_DB,
        days=days,
        serve=not no_serve,
        seed=seed,
        echo=click.echo,
        host=host,
        port=port,
    )
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
