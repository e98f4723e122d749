"""The one way the store writes: ``with transaction(db):``.

The outermost block takes SQLite's write lock at once (``BEGIN IMMEDIATE``), so a writer waits
for the lock up front, under ``busy_timeout``, instead of failing half way through when it first
writes; it commits on success and rolls back on any exception. A block inside another is a
savepoint: its failure undoes only its own writes, and the enclosing transaction goes on (the sync
uses that to record a failed apply in the same transaction that closes the run).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import sqlite_utils

_savepoints = itertools.count(1)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    conn = db.conn
    if conn.in_transaction:
        yield from _savepoint(db)
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:  # an error such as a failed COMMIT may have ended it already
            conn.execute("ROLLBACK")
        raise
    if conn.in_transaction:  # a RAISE(ROLLBACK) in a nested block may have ended it already
        conn.execute("COMMIT")


def _savepoint(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    conn = db.conn
    name = f"accesstrail_{next(_savepoints)}"
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            conn.execute(f"RELEASE SAVEPOINT {name}")
        raise
    conn.execute(f"RELEASE SAVEPOINT {name}")
