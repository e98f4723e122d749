"""An error is one line, whatever the provider's error body says.

A provider's own message is quoted in the error, and a message with a newline in it must neither
split a log line nor let a response body forge a second one.
"""

import json

from daemon import errors
from daemon.simulate.scalr.world import ScalrUser
from tests.helpers import query, run_cli, scalr_env, sync

TWO_LINES = "the first line\n2026-01-01T00:00:00.000Z INFO a forged log line"


def test_an_error_renders_as_one_line_whatever_its_parts_hold():
    error = errors.ServerError(
        "Scalr", "had a\nserver error", path="/x", status=500, detail=TWO_LINES, hint="try\r\nagain"
    )
    assert "\n" not in str(error) and "\r" not in str(error)
    assert "the first line 2026-01-01T00:00:00.000Z INFO a forged log line" in str(error)


def test_a_provider_message_with_a_newline_stays_on_one_line(scalr_sim, db_path):
    scalr_sim.state.users["user-1"] = ScalrUser(id="user-1", email="one@example.com")
    body = json.dumps({"errors": [{"status": "500", "detail": TWO_LINES}]})
    scalr_sim.add_fault(path=r"/account-users$", status=500, body=body)

    outcome = sync(db_path, scalr=scalr_sim)
    result = run_cli(["sync", "--db", str(db_path)], scalr_env(scalr_sim))

    assert outcome.status == "failed" and "\n" not in outcome.error
    assert "the first line 2026-01-01" in outcome.error
    assert query(db_path, "SELECT error FROM sync_runs WHERE id = ?", [outcome.run_id]) == [
        {"error": outcome.error}
    ]
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if "forged" in line] == [
        line for line in result.stderr.splitlines() if "the first line" in line
    ]
