"""Shared fixtures: real simulators on 127.0.0.1, a real SQLite file, a clean environment.

Nothing on the sync path is mocked. Tests start the built-in simulators, point the product at
them through the same environment variables a user sets, and read the database back with SQL.
Everything that is not a fixture (policies, ``sync``, ``query``, ``wait_for``...) is in
``tests/helpers.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.simulate.planetscale.wire import PlanetScaleSimulator
from daemon.simulate.planetscale.world import PlanetScaleState
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState
from tests.helpers import world


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Run every test in its own directory so no stray ./.env or ./accesstrail.db leaks in,
    and with no accesstrail/provider variables inherited from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("ACCESSTRAIL_", "SCALR_", "PLANETSCALE_")):
            monkeypatch.delenv(name)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "accesstrail.db"


@pytest.fixture
def scalr_sim():
    """A simulated Scalr with an empty account; tests add what they need to ``.state``."""
    with ScalrSimulator(ScalrState()) as sim:
        yield sim


@pytest.fixture
def planetscale_sim():
    """A simulated PlanetScale with no organisation; tests add what they need to ``.state``."""
    with PlanetScaleSimulator(PlanetScaleState()) as sim:
        yield sim


@pytest.fixture
def ps():
    """A simulated PlanetScale serving ``helpers.world()``: two organisations, 237 users."""
    with PlanetScaleSimulator(world()) as sim:
        yield sim
