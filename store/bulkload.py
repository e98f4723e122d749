"""A provider's first snapshot is a bulk load: its tables' secondary indexes are built after it.

A baseline writes every user and membership of the organisation, with a version of each, into
tables that hold few rows or none yet. Inserted one by one, each row also goes into every
secondary index of its table, in an order that is not the index's own (memberships arrive team
by team, an index on ``user_id`` wants them person by person), so each insert lands on a
different index page: at 100,000 users that was most of the apply's CPU, and it needs a page
cache the size of the indexes to stay cheap. Building an index afterwards sorts its keys once
and writes its pages in order, which costs a fraction of that with the default cache.

The indexes are dropped and re-created from their own ``CREATE INDEX`` statements as SQLite
recorded them, inside the apply's transaction, so the schema after a baseline is exactly the
schema before it, a reader (WAL) never sees the tables without their indexes, and a failed
apply rolls the drop back with everything else. Only a table the load at least doubles is
rebuilt: re-indexing rows that were already there costs more than inserting the new ones.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping


def tables_worth_rebuilding(conn: sqlite3.Connection, incoming: Mapping[str, int]) -> list[str]:
    """The tables of ``incoming`` (table → rows about to be inserted) the load at least doubles."""
    worth = []
    for table, rows in incoming.items():
        if rows and _row_count(conn, table) <= rows:
            worth.append(table)
    return worth


@contextlib.contextmanager
def indexes_built_after(conn: sqlite3.Connection, tables: list[str]) -> Iterator[None]:
    """Drop the secondary indexes of ``tables``, run the block, then create them again.

    Must run inside a transaction. Primary keys (SQLite's automatic indexes, which have no
    ``sql``) stay: the load's own lookups and upserts need them. On an exception the indexes
    are not re-created here: the enclosing transaction's rollback restores them.
    """
    indexes = _secondary_indexes(conn, tables)
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        conn.execute(sql)


def _secondary_indexes(conn: sqlite3.Connection, tables: list[str]) -> list[tuple[str, str]]:
    if not tables:
        return []
    marks = ", ".join("?" * len(tables))
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks}) ORDER BY tbl_name, name",
        tables,
    ).fetchall()


def _row_count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
