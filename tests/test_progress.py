"""Long syncs show progress on a terminal, and nothing of it when output goes to a file."""

import os
import pty
import subprocess
import sys

from daemon.simulate.scalr.world import ScalrUser
from tests.helpers import scalr_env


def _sync(env, stderr):
    return subprocess.run(
        [sys.executable, "-m", "daemon", "sync"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=stderr,
        timeout=120,  # a sync of 250 users takes a second or two; this only bounds a hang
    )


def _world(state):
    for n in range(250):
        state.users[f"user-{n:04d}"] = ScalrUser(id=f"user-{n:04d}", email=f"u{n}@example.com")


def test_progress_is_shown_on_a_terminal(scalr_sim, db_path):
    _world(scalr_sim.state)
    main_fd, terminal_fd = pty.openpty()
    try:
        result = _sync({**scalr_env(scalr_sim), "ACCESSTRAIL_DB": str(db_path)}, terminal_fd)
        os.close(terminal_fd)
        shown = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main_fd)
    assert result.returncode == 0
    assert b"scalr: 200 account users read" in shown
    assert b"\r" in shown  # rewritten in place, not one line per step
    assert b"Scalr: succeeded" in result.stdout


def test_no_progress_when_stderr_is_not_a_terminal(scalr_sim, db_path):
    _world(scalr_sim.state)
    result = _sync({**scalr_env(scalr_sim), "ACCESSTRAIL_DB": str(db_path)}, subprocess.PIPE)
    assert result.returncode == 0
    assert b"account users read" not in result.stderr
