"""A database that cannot be written during a sync: a full disk, a read-only file, a read-only
directory (issue 8, item 7).

Each ends in one line on stderr naming the database and what to do, no traceback, exit status 1
(not 2: the configuration is fine, the storage is not), the run recorded as ``failed`` when the
database can still take that one small write, and every table as it was before. Real failures on
real filesystems: a 2 MB tmpfs filled up, ``chattr +i``, a tmpfs remounted read-only (the tests
run as root, for whom ``chmod`` alone stops nothing). Where the kernel refuses to mount or
chattr, the test is skipped and says why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState, ScalrUser
from tests.helpers import query, run_cli, scalr_env

FULL_ADVICE = "free space on its filesystem, then sync again"
READ_ONLY_ADVICE = "writable by this user"


def add_users(state: ScalrState, count: int, start: int = 0) -> None:
    """``count`` users with long names, so that many of them take real space."""
    for n in range(start, start + count):
        state.users[f"user-{n}"] = ScalrUser(
            id=f"user-{n}",
            email=f"person-{n}@a-rather-long-domain-name.example",
            full_name=f"Person Number {n} " + "x" * 120,
            last_login_at="2026-08-01T10:00:00Z",
        )


@pytest.fixture
def sim():
    state = ScalrState()
    add_users(state, 20)
    with ScalrSimulator(state) as server:
        yield server


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted on ``directory`` for the test, unmounted after it."""
    directory.mkdir()
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(directory))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield directory
    finally:
        _run("mount", "-o", "remount,rw", str(directory))
        subprocess.run(["umount", "-l", str(directory)], check=True)


def fill(directory: Path, leave: int) -> None:
    """Fill the filesystem of ``directory`` until at most ``leave`` bytes are free."""
    chunk = b"\0" * 65536
    # Unbuffered: a write the disk refuses is refused there and then, never again when closing.
    with open(directory / "filler", "wb", buffering=0) as filler:
        with contextlib.suppress(OSError):
            while True:
                filler.write(chunk)
    stats = os.statvfs(directory)
    assert stats.f_bavail * stats.f_frsize < 65536 * 2
    with open(directory / "filler", "r+b") as filler:
        filler.truncate(max(0, os.path.getsize(directory / "filler") - leave))


def every_table(db_path: Path) -> dict[str, list[tuple]]:
    """Every table of the database, internal ones included, in full."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        names = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {n: sorted(conn.execute(f"SELECT * FROM [{n}]").fetchall(), key=repr) for n in names}
    finally:
        conn.close()


def sync_cli(db_path: Path, sim: ScalrSimulator):
    return run_cli(["sync", "--db", str(db_path)], scalr_env(sim))


def assert_one_line(result, *needles: str) -> str:
    text = result.stderr.strip()
    assert "\n" not in text, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "configuration error" not in text
    for needle in needles:
        assert needle in text, text
    return text


def without_run(tables: dict, run_id: int) -> dict:
    """``tables`` with the one ``sync_runs`` row of ``run_id`` left out."""
    return {**tables, "sync_runs": [r for r in tables["sync_runs"] if r[0] != run_id]}


def test_a_disk_that_fills_during_a_sync_fails_the_run_and_keeps_the_history(tmp_path, sim):
    small = tmp_path / "small"
    with tmpfs(small, "4m"):
        db_path = small / "accesstrail.db"
        assert sync_cli(db_path, sim).exit_code == 0
        before = every_table(db_path)
        add_users(sim.state, 4000, start=20)  # megabytes of new rows, on a nearly full disk
        fill(small, leave=256 * 1024)  # room for the run row, not for the snapshot

        result = sync_cli(db_path, sim)

        assert result.exit_code == 1, result.stdout + result.stderr
        line = assert_one_line(result, str(db_path), "database or disk is full", FULL_ADVICE)
        last = query(db_path, "SELECT * FROM sync_runs ORDER BY id DESC LIMIT 1")[0]
        assert last["status"] == "failed" and last["finished_at"] is not None
        assert last["error"] == line and "nothing of this run was written" in line
        assert without_run(every_table(db_path), last["id"]) == before


def test_a_disk_with_no_room_for_the_run_row_is_one_line_and_keeps_the_history(tmp_path, sim):
    small = tmp_path / "small"
    with tmpfs(small, "4m"):
        db_path = small / "accesstrail.db"
        assert sync_cli(db_path, sim).exit_code == 0
        before = every_table(db_path)
        fill(small, leave=0)

        result = sync_cli(db_path, sim)

        (small / "filler").unlink()  # room to read the database back
        assert result.exit_code == 1, result.stdout + result.stderr
        assert_one_line(result, "Scalr: not synced: database", str(db_path))
        assert every_table(db_path) == before


def test_an_immutable_database_file_is_one_line_and_exit_1(tmp_path, sim, db_path):
    assert sync_cli(db_path, sim).exit_code == 0
    before = every_table(db_path)
    made = _run("chattr", "+i", str(db_path))
    if made.returncode != 0:
        pytest.skip(f"cannot make a file immutable here ({made.stderr.strip()})")
    try:
        sim.state.users["user-1"].status = "Inactive"
        result = sync_cli(db_path, sim)
    finally:
        _run("chattr", "-i", str(db_path))

    assert result.exit_code == 1, result.stdout + result.stderr
    assert_one_line(result, "Scalr: not synced", str(db_path), "readonly", READ_ONLY_ADVICE)
    assert every_table(db_path) == before


def test_a_read_only_directory_is_one_line_and_exit_1(tmp_path, sim):
    state_dir = tmp_path / "state"
    with tmpfs(state_dir, "8m"):
        db_path = state_dir / "accesstrail.db"
        assert sync_cli(db_path, sim).exit_code == 0
        before = every_table(db_path)
        remounted = _run("mount", "-o", "remount,ro", str(state_dir))
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({remounted.stderr.strip()})")
        with pytest.raises(OSError) as refused:  # root is refused too: the test is real
            (state_dir / "probe").write_text("x")
        assert refused.value.errno == errno.EROFS

        result = sync_cli(db_path, sim)

        assert result.exit_code == 1, result.stdout + result.stderr
        assert_one_line(result, "Scalr: not synced", str(db_path), READ_ONLY_ADVICE)
        assert every_table(db_path) == before
