"""The ``sync_runs`` ledger: one row per provider run, opened before the fetch, closed after.

The row is written *before* any network traffic so that a crash mid-fetch leaves evidence (a
``running`` row), which the next writer closes as ``failed``. Run stamps are kept strictly
increasing per database, because every version row a run writes is stamped with its
``started_at`` and an as-of query needs ``valid_from < valid_to``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlite_utils

from store import timestamps
from store.transactions import transaction

STALE_RUN_ERROR = "interrupted: the process stopped before this run finished"


@dataclass(frozen=True)
class Run:
    id: int
    provider: str
    started_at: str


@dataclass(frozen=True)
class RunResult:
    """How a run ended: its status, its one-line error, and its change rows counted by kind."""

    status: str  # succeeded | partial | failed
    error: str | None = None
    changes: Counter = field(default_factory=Counter)


def close_stale_runs(
    db: sqlite_utils.Database, provider: str, clock: timestamps.Clock | None = None
) -> int:
    """Close ``provider``'s ``running`` rows as failed; call only while holding its sync lock
    (then no live sync of it can own one: the other provider's may well be running)."""
    with transaction(db):
        cursor = db.execute(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?, "
            "error = COALESCE(error, ?) WHERE status = 'running' AND provider = ?",
            [timestamps.now(clock), STALE_RUN_ERROR, provider],
        )
    return cursor.rowcount


def start_run(
    db: sqlite_utils.Database, provider: str, clock: timestamps.Clock | None = None
) -> Run:
    """Open a run stamped by ``clock`` (the real time when None), always after the latest run:
    a stamp that is not after it (a clock set back, or two runs in the same millisecond) is
    bumped to a millisecond past it."""
    with transaction(db):
        stamp = timestamps.now(clock)
        (latest,) = db.execute("SELECT MAX(started_at) FROM sync_runs").fetchone()
        if latest is not None and stamp <= latest:
            stamp = timestamps.after(latest)
        cursor = db.execute(
            "INSERT INTO sync_runs (provider, started_at, status, requests, changes) "
            "VALUES (?, ?, 'running', 0, 0)",
            [provider, stamp],
        )
    assert cursor.lastrowid is not None  # an INSERT into a rowid table always has one
    return Run(id=cursor.lastrowid, provider=provider, started_at=stamp)


def finish_run(
    db: sqlite_utils.Database,
    run: Run,
    result: RunResult,
    requests: int,
    clock: timestamps.Clock | None = None,
) -> None:
    """Close ``run`` with its result: the one writer of a finished run row.

    Called inside the transaction that applied the run's rows (or, for a failed run, wrote
    nothing else), so the rows and the run's status commit together or not at all.
    """
    with transaction(db):
        db.execute(
            "UPDATE sync_runs SET status = ?, finished_at = ?, error = ?, requests = ?, "
            "changes = ? WHERE id = ?",
            [
                result.status,
                max(timestamps.now(clock), run.started_at),
                result.error,
                requests,
                sum(result.changes.values()),
                run.id,
            ],
        )


def has_applied_before(db: sqlite_utils.Database, provider: str, run: Run) -> bool:
    """Whether an earlier run of this provider applied a snapshot (else this one is a baseline)."""
    row = db.execute(
        "SELECT 1 FROM sync_runs WHERE provider = ? AND id != ? "
        "AND status IN ('succeeded', 'partial') LIMIT 1",
        [provider, run.id],
    ).fetchone()
    return row is not None
