"""Log lines under journald and elsewhere, and the redaction every sink passes through."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import scalr_env

SCRIPT = (
    "import os\n"
    "from loguru import logger\n"
    "from daemon.logs import configure_logging\n"
    "configure_logging('INFO', ['s3cret-token-value'])\n"
    "logger.warning('token s3cret-token-value in Authorization: Bearer abcdefghijkl')\n"
    "logger.info('plain line')\n"
)


def _run(env: dict[str, str], journal: bool) -> str:
    """Run SCRIPT with stderr on a file; with ``journal``, JOURNAL_STREAM names that file."""
    import tempfile

    with tempfile.TemporaryFile() as err:
        stat = os.fstat(err.fileno())
        if journal:
            env = {**env, "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, stderr=err, check=True)
        err.seek(0)
        return err.read().decode()


def test_under_journald_lines_carry_a_priority_and_no_timestamp():
    lines = _run(dict(os.environ), journal=True).splitlines()
    assert lines[0].startswith("<4>WARNING ")
    assert lines[1] == "<6>INFO plain line"


def test_elsewhere_lines_start_with_a_utc_timestamp():
    lines = _run(dict(os.environ), journal=False).splitlines()
    assert lines[1].endswith("Z INFO plain line") and lines[1][:4].isdigit()


def test_a_journal_stream_that_is_not_stderr_is_ignored():
    env = {**os.environ, "JOURNAL_STREAM": "1:1"}
    assert "Z INFO plain line" in _run(env, journal=False)


def test_every_sink_redacts_known_secrets_and_credential_shapes():
    text = _run(dict(os.environ), journal=False)
    assert "s3cret-token-value" not in text and "abcdefghijkl" not in text
    assert "[redacted]" in text


def test_the_cli_redacts_the_configured_tokens(scalr_sim, tmp_path):
    """A debug line that somehow carried the token is cut by the sink, not shown."""
    env = {**os.environ, **scalr_env(scalr_sim), "ACCESSTRAIL_LOG_LEVEL": "DEBUG"}
    script = (
        "import sys\n"
        "from daemon import cli\n"
        "from loguru import logger\n"
        "settings = cli.settings_or_exit(None, None)\n"
        "token = settings.providers['scalr'].token.reveal()\n"
        "logger.debug('leaked ' + token)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "leaked [redacted]" in done.stderr
    assert scalr_sim.state.token not in done.stderr
