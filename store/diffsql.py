"""The SQL building blocks every part of the diff is written with.

The diff (``store/apply.py`` for identities, ``store/apply_access.py`` for roles, grants and
credentials) is a fixed series of statements over TEMP tables; these helpers are what each of
those statements is made of, so that "NULL equals NULL", "update only what is not the key" and
"one change row per column that differs" are written once.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from store import runs
from store.schema import TABLES

#: The columns a change row is written with, in schema order (``id`` is assigned by SQLite);
#: ``detail`` is given only by the rows that have one.
CHANGE_COLUMNS = tuple(
    column for column in TABLES["changes"]["columns"] if column not in ("id", "detail")
)


class Statements:
    """Runs the diff's statements with the run's ``:provider``, ``:stamp`` and ``:run``."""

    def __init__(self, db: sqlite_utils.Database, provider: str, run: runs.Run, baseline: bool):
        self.conn = db.conn
        self.baseline = baseline
        self.params = {"provider": provider, "stamp": run.started_at, "run": run.id}

    def execute(self, sql: str) -> None:
        self.conn.execute(sql, self.params)

    def temp(self, name: str, select: str) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
        self.execute(f"CREATE TEMP TABLE {name} AS {select}")

    def changes(self, select: str, *, baseline: bool | None = None, detail: bool = False) -> None:
        """Append change rows; ``select`` yields (kind, user_id, email, resource_type,
        resource_id, resource_name, field, old_value, new_value[, detail]). Nothing during a
        baseline (the run's, or ``baseline`` when a kind of record has its own)."""
        if self.baseline if baseline is None else baseline:
            return
        columns = (*CHANGE_COLUMNS, "detail") if detail else CHANGE_COLUMNS
        self.execute(
            f"INSERT INTO changes ({', '.join(columns)}) "
            f"SELECT :run, :provider, :stamp, * FROM ({select})"
        )


def differs(columns, old: str = "c", new: str = "s") -> str:
    """SQL true when any of ``columns`` differs between two rows, NULL equal to NULL."""
    return "(" + " OR ".join(f"{old}.{c} IS NOT {new}.{c}" for c in columns) + ")"


def upsert_sql(table: str, columns: tuple[str, ...], select: str) -> str:
    """INSERT … SELECT that updates every non-key column of an existing row (``select`` must
    end in a WHERE clause, which SQLite needs to tell the upsert from a join)."""
    key = TABLES[table]["pk"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {select} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def row_changes(
    delta: str,
    columns: tuple[str, ...],
    context: str,
    *,
    added: str,
    kind_of: Callable[[str], str],
    unless: dict[str, str] | None = None,
) -> str:
    """The change rows of a delta table, in snapshot order: ``added`` for a key that is new or
    back, else one row per tracked column that differs (``unless`` names a column whose
    difference another row already says, and when)."""
    parts = [
        f"SELECT '{added}' AS kind, {context}, NULL AS field, NULL AS old_value, "
        f"NULL AS new_value, d.ord AS ord, -1 AS col FROM {delta} d WHERE d.added"
    ]
    for n, column in enumerate(columns):
        condition = f"NOT d.added AND d.old_{column} IS NOT d.{column}"
        if unless and column in unless:
            condition += f" AND NOT ({unless[column]})"
        parts.append(
            f"SELECT '{kind_of(column)}', {context}, '{column}', CAST(d.old_{column} AS TEXT), "
            f"CAST(d.{column} AS TEXT), d.ord, {n} FROM {delta} d WHERE {condition}"
        )
    return (
        "SELECT kind, user_id, email, resource_type, resource_id, resource_name, field, "
        f"old_value, new_value FROM ({' UNION ALL '.join(parts)}) ORDER BY ord, col"
    )
