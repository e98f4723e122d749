"""The ``sync_runs`` ledger: one row per provider run, opened before the fetch, closed after.

The row is written *before* any network traffic so that a crash mid-fetch leaves evidence (a
``running`` row), which the next writer closes as ``failed``. Run stamps are kept strictly
increasing per database, because every version row a run writes is stamped with its
``started_at`` and an as-of query needs ``valid_from < valid_to``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from store import timestamps

STALE_RUN_ERROR = "interrupted: the process stopped before this run finished"


@dataclass(frozen=True)
class Run:
    id: int
    provider: str
    started_at: str


def close_stale_runs(db: sqlite_utils.Database) -> int:
    """Close every ``running`` row as failed; call only while holding the sync lock."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?, "
            "error = COALESCE(error, ?) WHERE status = 'running'",
            [timestamps.now(), STALE_RUN_ERROR],
        )
    return cursor.rowcount


def start_run(db: sqlite_utils.Database, provider: str) -> Run:
    with db.atomic():
        stamp = timestamps.now()
        (latest,) = db.execute("SELECT MAX(started_at) FROM sync_runs").fetchone()
        if latest is not None and stamp <= latest:
            stamp = timestamps.after(latest)
        cursor = db.execute(
            "INSERT INTO sync_runs (provider, started_at, status, requests, changes) "
            "VALUES (?, ?, 'running', 0, 0)",
            [provider, stamp],
        )
    return Run(id=cursor.lastrowid, provider=provider, started_at=stamp)


def fail_run(db: sqlite_utils.Database, run: Run, error: str, requests: int) -> None:
    """Record a run whose fetch failed: the run row is the only thing it may touch."""
    with db.atomic():
        db.execute(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?, error = ?, requests = ?, "
            "changes = 0 WHERE id = ?",
            [timestamps.now(), error, requests, run.id],
        )


def finish_run(
    db: sqlite_utils.Database,
    run: Run,
    status: str,
    error: str | None,
    requests: int,
    changes: int,
) -> None:
    """Close a run that applied a snapshot; called inside the apply transaction."""
    db.execute(
        "UPDATE sync_runs SET status = ?, finished_at = ?, error = ?, requests = ?, changes = ? "
        "WHERE id = ?",
        [status, timestamps.now(), error, requests, changes, run.id],
    )


def has_applied_before(db: sqlite_utils.Database, provider: str, run: Run) -> bool:
    """Whether an earlier run of this provider applied a snapshot (else this one is a baseline)."""
    row = db.execute(
        "SELECT 1 FROM sync_runs WHERE provider = ? AND id != ? "
        "AND status IN ('succeeded', 'partial') LIMIT 1",
        [provider, run.id],
    ).fetchone()
    return row is not None
