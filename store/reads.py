"""What the daemon reads back from the history: the last runs, what is current, a run's changes.

The daemon holds no SQL; ``status``, ``check`` and the demo ask these functions instead, so every
query over the public tables lives in ``store/``.
"""

from __future__ import annotations

import sqlite_utils

APPLIED = ("succeeded", "partial")


def recorded_providers(db: sqlite_utils.Database) -> set[str]:
    """Every provider that has at least one run in the ledger."""
    return {row["provider"] for row in db.query("SELECT DISTINCT provider FROM sync_runs")}


def last_run(db: sqlite_utils.Database, provider: str) -> dict | None:
    return _first(
        db, "SELECT * FROM sync_runs WHERE provider = ? ORDER BY id DESC LIMIT 1", provider
    )


def last_success(db: sqlite_utils.Database, provider: str) -> dict | None:
    """The provider's latest run that applied a snapshot (whole or partial)."""
    return _first(
        db,
        "SELECT * FROM sync_runs WHERE provider = ? AND status IN (?, ?) ORDER BY id DESC LIMIT 1",
        provider,
        *APPLIED,
    )


def current_counts(db: sqlite_utils.Database, provider: str) -> dict[str, int]:
    """What the provider holds now: users (enabled, service), organisations, teams, memberships."""
    present = "provider = ?1 AND removed_at IS NULL"
    row = _first(
        db,
        f"SELECT (SELECT COUNT(*) FROM users WHERE {present}) AS users, "
        f"(SELECT COUNT(*) FROM users WHERE {present} AND status = 'enabled') AS enabled, "
        f"(SELECT COUNT(*) FROM users WHERE {present} AND account_type = 'service') AS service, "
        f"(SELECT COUNT(*) FROM organizations WHERE {present}) AS organizations, "
        f"(SELECT COUNT(*) FROM teams WHERE {present}) AS teams, "
        f"(SELECT COUNT(*) FROM memberships WHERE {present}) AS memberships",
        provider,
    )
    assert row is not None  # an aggregate always returns its one row
    return row


def changes_of_run(db: sqlite_utils.Database, run_id: int) -> list[dict]:
    """The change rows one run wrote, in the order it wrote them."""
    return list(
        db.query(
            "SELECT kind, email, user_id, resource_type, resource_name, resource_id, field, "
            "old_value, new_value, detail FROM changes WHERE run_id = ? ORDER BY id",
            [run_id],
        )
    )


def _first(db: sqlite_utils.Database, sql: str, *params: object) -> dict | None:
    rows = list(db.query(sql, list(params)))
    return rows[0] if rows else None


def alerts_of_runs(db: sqlite_utils.Database, run_ids: list[int]) -> list[dict]:
    """The alerts some runs raised, in the order they were raised."""
    marks = ", ".join("?" * len(run_ids))
    return list(
        db.query(
            f"SELECT rule, summary, delivered_at FROM alerts WHERE run_id IN ({marks}) ORDER BY id",
            run_ids,
        )
    )
