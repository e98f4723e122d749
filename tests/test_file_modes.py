"""Modes of what the product creates (README, "Run as a service"): 0640 or stricter, any umask.

The database holds who can get into what. ``accesstrail sync`` runs here in its own process under
``umask 000``, the worst an operator's shell or a unit could give it, and is held in the middle of
its fetch, while the database is open and SQLite's ``-wal`` and ``-shm`` exist, so that every file
beside the database is seen as the product created it; the directories it created are 0750.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon.simulate.scalr.world import ScalrState, ScalrUser
from store import schema
from tests.helpers import WatchedScalr, run_cli, scalr_env, wait_for

#: Bits nobody but the owner (write) and its group (read) may have on a file, or beyond 0750 on a
#: directory.
NOT_FILE = 0o7777 & ~0o640
NOT_DIR = 0o7777 & ~0o750


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def held_scalr():
    """A Scalr whose account-users listing waits until the test releases it."""
    state = ScalrState()
    state.users["user-1"] = ScalrUser(id="user-1", email="u1@acme.example")
    release = threading.Event()
    with WatchedScalr(state) as sim:

        def hold(request) -> None:
            if request.path.endswith("/account-users"):
                # Released by the test as soon as it has looked; the bound only ends a test
                # that failed before releasing it.
                release.wait(60)

        sim.before_answer = hold
        try:
            yield sim, release
        finally:
            release.set()


def test_every_file_and_directory_a_sync_creates_is_private_under_umask_000(tmp_path, held_scalr):
    sim, release = held_scalr
    state_dir = tmp_path / "state" / "accesstrail"
    db_path = state_dir / "audit.db"
    sync = subprocess.Popen(
        [sys.executable, "-m", "daemon", "sync", "--db", str(db_path)],
        env={**os.environ, **scalr_env(sim)},
        cwd=tmp_path,
        preexec_fn=lambda: os.umask(0o000),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Starting Python and reaching Scalr takes a second or two; 60 s allows a loaded machine.
        wait_for(lambda: sim.arrived("/account-users"), 60, "the sync to list account users")
        beside = sorted(p.name for p in state_dir.iterdir())
        modes = {name: mode(state_dir / name) for name in beside}
    finally:
        release.set()
        output, _ = sync.communicate(timeout=120)
    assert sync.returncode == 0, output

    assert beside == ["audit.db", "audit.db-shm", "audit.db-wal", "audit.db.lock"]
    for name, bits in modes.items():
        assert bits & NOT_FILE == 0, f"{name} is {bits:o} under umask 000"
    assert modes["audit.db"] == 0o640  # exactly what we ask for: the web UI's group reads it
    for directory in (tmp_path / "state", state_dir):
        assert mode(directory) == 0o750, f"{directory} is {mode(directory):o}"
    for path in state_dir.iterdir():  # what is left once the sync is over
        assert mode(path) & NOT_FILE == 0, f"{path.name} is {mode(path):o}"


def test_a_stricter_mode_an_operator_set_is_kept(tmp_path, scalr_sim):
    scalr_sim.state.users["user-1"] = ScalrUser(id="user-1", email="u1@acme.example")
    db_path = tmp_path / "accesstrail.db"
    env = scalr_env(scalr_sim)
    assert run_cli(["sync", "--db", str(db_path)], env).exit_code == 0
    os.chmod(db_path, 0o600)
    os.chmod(f"{db_path}.lock", 0o400)

    assert run_cli(["sync", "--db", str(db_path)], env).exit_code == 0

    assert mode(db_path) == 0o600
    assert mode(Path(f"{db_path}.lock")) == 0o400


def test_existing_directories_keep_their_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)

    schema.connect(shared / "new" / "accesstrail.db").close()

    assert mode(shared) == 0o755
    assert mode(shared / "new") & NOT_DIR == 0
    assert mode(shared / "new" / "accesstrail.db") & NOT_FILE == 0


# -- the env file ------------------------------------------------------------------------------


def env_file_with(path: Path, text: str, file_mode: int) -> Path:
    path.write_text(text)
    os.chmod(path, file_mode)
    return path


def scalr_lines(sim) -> str:
    return "".join(f"{name}={value}\n" for name, value in scalr_env(sim).items())


@pytest.mark.parametrize(
    ("file_mode", "problem"),
    [
        (0o644, "readable by other users"),
        (0o604, "readable by other users"),
        (0o620, "writable by its group"),
        (0o602, "writable by other users"),
    ],
)
def test_check_warns_about_an_env_file_others_can_read_or_write(
    tmp_path, scalr_sim, file_mode, problem
):
    env_file = env_file_with(tmp_path / "prod.env", scalr_lines(scalr_sim), file_mode)

    result = run_cli(["check", "--env-file", str(env_file)], {})

    assert result.exit_code == 0, result.stdout + result.stderr  # a warning, not a failure
    (line,) = result.stderr.splitlines()
    assert f"env file {env_file} holds SCALR_API_TOKEN" in line
    assert problem in line and f"mode {file_mode:04o}" in line
    assert line.endswith(f"chmod 600 {env_file}")
    assert scalr_sim.state.token not in result.stdout + result.stderr


def test_check_is_silent_about_a_private_env_file(tmp_path, scalr_sim):
    env_file = env_file_with(tmp_path / "prod.env", scalr_lines(scalr_sim), 0o640)

    result = run_cli(["check", "--env-file", str(env_file)], {})

    assert result.exit_code == 0 and result.stderr == ""


def test_an_env_file_without_a_secret_needs_no_warning(tmp_path, scalr_sim):
    token_file = tmp_path / "token"
    token_file.write_text(scalr_sim.state.token)
    os.chmod(token_file, 0o600)
    env = {**scalr_env(scalr_sim), "SCALR_API_TOKEN_FILE": str(token_file)}
    del env["SCALR_API_TOKEN"]
    text = "".join(f"{name}={value}\n" for name, value in env.items())
    env_file = env_file_with(tmp_path / "prod.env", text, 0o644)

    result = run_cli(["check", "--env-file", str(env_file)], {})

    assert result.exit_code == 0 and result.stderr == ""


def test_the_default_env_file_is_checked_and_the_exit_status_is_unchanged(tmp_path, scalr_sim):
    text = scalr_lines(scalr_sim).replace(scalr_sim.state.token, "refused-token")
    env_file_with(tmp_path / ".env", text, 0o644)  # the tests run in tmp_path

    result = run_cli(["check"], {})

    assert result.exit_code == 1  # the token is refused; the warning does not change that
    warning, refusal = result.stderr.splitlines()
    assert warning.startswith("warning: env file .env holds SCALR_API_TOKEN")
    assert warning.endswith("chmod 600 .env")
    assert "Scalr" in refusal
    assert "refused-token" not in result.stderr
