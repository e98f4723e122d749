"""Failures outside the provider's answers still end in one line and an honest run row."""

import sqlite3

from daemon.simulate.scalr.world import ScalrUser
from tests.helpers import query, run_cli, scalr_env, snapshot_tables, sync


def _users(state, count=3):
    for n in range(count):
        state.users[f"user-{n}"] = ScalrUser(id=f"user-{n}", email=f"u{n}@example.com")


def test_a_write_that_fails_during_apply_rolls_back_and_closes_the_run_as_failed(
    scalr_sim, db_path
):
    _users(scalr_sim.state)
    sync(db_path, scalr=scalr_sim)
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TRIGGER full_disk BEFORE INSERT ON changes "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    conn.commit()
    conn.close()
    before = snapshot_tables(db_path)
    scalr_sim.state.users["user-1"].status = "Inactive"

    outcome = sync(db_path, scalr=scalr_sim)

    assert outcome.status == "failed"
    assert "could not record the snapshot" in outcome.error and "disk is full" in outcome.error
    assert snapshot_tables(db_path) == before  # the status change was rolled back
    last = query(db_path, "SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")[0]
    assert last == {"status": "failed", "error": outcome.error}


def test_a_file_that_is_not_a_database_is_one_line_and_exit_2(scalr_sim, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite")
    for command in (["sync"], ["status"]):
        result = run_cli([*command, "--db", str(junk)], scalr_env(scalr_sim))
        assert result.exit_code == 2
        assert result.stderr.strip().count("\n") == 0
        assert "junk.db" in result.stderr and "not a database" in result.stderr
    assert scalr_sim.requests == []


def test_a_body_that_cannot_be_decoded_is_a_bad_response_not_a_crash(scalr_sim, db_path):
    _users(scalr_sim.state)
    scalr_sim.add_fault(
        path=r"/accounts$",
        status=200,
        body="this is not gzip",
        headers={"Content-Encoding": "gzip"},
    )
    check = run_cli(["check", "--db", str(db_path)], scalr_env(scalr_sim))
    assert check.exit_code == 1
    assert check.stderr.strip().count("\n") == 0
    assert "Scalr" in check.stderr and "could not be read" in check.stderr

    outcome = sync(db_path, scalr=scalr_sim)
    assert outcome.status == "failed" and "could not be read" in outcome.error
