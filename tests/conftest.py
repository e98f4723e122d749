"""Shared fixtures: real simulators on 127.0.0.1, a real SQLite file, the real CLI.

Nothing on the sync path is mocked. Tests start the built-in simulators, point the product at
them through the same environment variables a user sets, and read the database back with SQL.
"""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.cli import main
from daemon.config import Settings, load_settings
from daemon.http import HttpPolicy
from daemon.simulate.planetscale import PlanetScaleSimulator, PlanetScaleState
from daemon.simulate.scalr import ScalrSimulator, ScalrState

#: Production timing shrunk so retry and timeout tests take a second, not a minute.
FAST_POLICY = HttpPolicy(
    connect_timeout=1.0,
    read_timeout=1.0,
    request_deadline=4.0,
    stall_limit=6.0,
    max_attempts=4,
    backoff_base=0.01,
    backoff_cap=0.05,
)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Run every test in its own directory so no stray ./.env or ./accesstrail.db leaks in,
    and with no accesstrail/provider variables inherited from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    import os

    for name in list(os.environ):
        if name.startswith(("ACCESSTRAIL_", "SCALR_", "PLANETSCALE_")):
            monkeypatch.delenv(name)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "accesstrail.db"


@pytest.fixture
def scalr_sim():
    with ScalrSimulator(ScalrState()) as sim:
        yield sim


@pytest.fixture
def planetscale_sim():
    with PlanetScaleSimulator(PlanetScaleState()) as sim:
        yield sim


def scalr_env(sim: ScalrSimulator) -> dict[str, str]:
    return {
        "SCALR_API_TOKEN": sim.state.token,
        "SCALR_ACCOUNT": sim.state.account_name,
        "SCALR_BASE_URL": sim.url,
    }


def planetscale_env(sim: PlanetScaleSimulator, per_minute: int = 6000) -> dict[str, str]:
    return {
        "PLANETSCALE_SERVICE_TOKEN": f"{sim.state.token_id}:{sim.state.token_secret}",
        "PLANETSCALE_API_URL": sim.url,
        "PLANETSCALE_REQUESTS_PER_MINUTE": str(per_minute),
    }


def settings_for(
    db_path: Path,
    *,
    scalr: ScalrSimulator | None = None,
    planetscale: PlanetScaleSimulator | None = None,
    **extra: str,
) -> Settings:
    env: dict[str, str] = dict(extra)
    if scalr is not None:
        env.update(scalr_env(scalr))
    if planetscale is not None:
        env.update(planetscale_env(planetscale))
    return load_settings(environ=env, db_override=db_path)


def run_cli(args: list[str], env: dict[str, str]):
    """Invoke ``accesstrail`` in-process with exactly ``env`` as its provider configuration."""
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result


def query(db_path: Path, sql: str, params=()) -> list[dict]:
    """Read the database the way an auditor would: plain SQL on the file."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def snapshot_tables(db_path: Path) -> dict[str, list[tuple]]:
    """Every public table's full content, for "nothing else changed" assertions."""
    tables = [
        "users",
        "organizations",
        "teams",
        "memberships",
        "changes",
        "user_versions",
        "membership_versions",
    ]
    conn = sqlite3.connect(db_path)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def free_port() -> int:
    """A loopback port nobody listens on right now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
