"""Where a fetch streams what it reads: TEMP tables on the connection that will apply it.

A large organisation must not cost memory in proportion to its size, so nothing a sync reads is
kept in Python beyond the page in hand: each scope hands its objects here in small batches, and
the diff (``store/apply.py``) later runs in SQL over these tables. TEMP tables belong to this
one connection, live in SQLite's temporary file (not in the database, so a fetch writes nothing
to the history), take no lock on the database, and vanish when the connection closes.

Every staged row carries the sequence number of the scope that read it. That number is the
scope's place in declaration order, which is what ``settle`` needs to assemble the snapshot the
same way whatever order concurrent scopes finished in, and what lets a failed scope's rows be
dropped again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import fields
from operator import attrgetter

import sqlite_utils

from store.model import Credential, Grant, Membership, Organization, Role, Team, User

#: Each kind of snapshot object, the columns it is staged with (its dataclass fields, in order)
#: and the key that identifies one object of that kind in the snapshot.
KINDS: dict[type, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    Organization: ("organizations", tuple(f.name for f in fields(Organization)), ("id",)),
    Team: ("teams", tuple(f.name for f in fields(Team)), ("id",)),
    User: ("users", tuple(f.name for f in fields(User)), ("id",)),
    Membership: (
        "memberships",
        tuple(f.name for f in fields(Membership)),
        ("resource_type", "resource_id", "user_id"),
    ),
    Role: ("roles", tuple(f.name for f in fields(Role)), ("id",)),
    Grant: (
        "grants",
        tuple(f.name for f in fields(Grant)),
        ("resource_type", "resource_id", "principal_type", "principal_id", "role_id"),
    ),
    Credential: ("credentials", tuple(f.name for f in fields(Credential)), ("id",)),
}
#: Reads an object's staged columns in one call (``attrgetter`` of several names gives a tuple).
VALUES_OF = {kind: attrgetter(*columns) for kind, (_, columns, _) in KINDS.items()}
#: When two scopes name the same key, which one the snapshot keeps. A user listed by several
#: scopes is the first declared one's (the organisation's own member listing comes before any
#: team's); anything else is the last one read, as a later page supersedes an earlier one.
FIRST_WINS = {"users"}


def staged(table: str) -> str:
    """The TEMP table a fetch appends to."""
    return f"staged_{table}"


def settled(table: str) -> str:
    """The TEMP table holding the snapshot's objects of one kind, one row per key."""
    return f"snap_{table}"


class Staging:
    """TEMP tables a fetch appends to from any thread, settled into a snapshot for the diff."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self._lock = threading.Lock()
        with self._lock:
            for table, columns, _ in KINDS.values():
                self._script(
                    f"DROP TABLE IF EXISTS temp.{staged(table)}",
                    f"CREATE TEMP TABLE {staged(table)} (seq INTEGER NOT NULL, "
                    + ", ".join(columns)
                    + ")",
                )

    def add(self, seq: int, items: Iterable) -> None:
        """Append one scope's objects; safe to call from the scope's own thread."""
        rows: dict[type, list[tuple]] = {}
        for item in items:
            kind = type(item)
            rows.setdefault(kind, []).append((seq, *VALUES_OF[kind](item)))
        if not rows:
            return
        with self._lock:
            conn = self.db.conn
            for kind, values in rows.items():
                table, columns, _ = KINDS[kind]
                conn.executemany(
                    f"INSERT INTO temp.{staged(table)} VALUES "
                    f"({', '.join('?' * (len(columns) + 1))})",
                    values,
                )
            conn.commit()  # a TEMP-only transaction: it never touches the database file

    def discard(self, seq: int) -> None:
        """Forget everything a scope staged: a failed scope contributes nothing."""
        with self._lock:
            for table, _, _ in KINDS.values():
                self.db.conn.execute(f"DELETE FROM temp.{staged(table)} WHERE seq = ?", [seq])
            self.db.conn.commit()

    def settle(self) -> None:
        """Build the snapshot's tables: one row per key, the winner chosen as ``FIRST_WINS`` says.

        ``ord`` is the row's place in declaration order (scope, then arrival within the scope),
        which the diff writes its change rows in. The rows are inserted in key order, so each
        ``snap_*`` primary key grows at its end instead of being split page by page; a key seen
        twice keeps the row whose ``ord`` wins (the lowest or the highest), so the result does
        not depend on the order rows are inserted in. (An upsert: twice as fast as ranking every
        row with a window function, since almost every key is seen once.)
        """
        conn = self.db.conn
        outside_a_transaction = not conn.in_transaction
        for table, columns, key in KINDS.values():
            names, keys = ", ".join(columns), ", ".join(key)
            wins = "<" if table in FIRST_WINS else ">"
            updates = ", ".join(f"{c} = excluded.{c}" for c in ("ord", *columns) if c not in key)
            self._script(
                f"DROP TABLE IF EXISTS temp.{settled(table)}",
                f"CREATE TEMP TABLE {settled(table)} (ord INTEGER, {names}, PRIMARY KEY ({keys})) "
                "WITHOUT ROWID",
                f"INSERT INTO temp.{settled(table)} (ord, {names}) "
                f"SELECT (seq << 32) + rowid, {names} FROM temp.{staged(table)} WHERE true "
                f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {updates} "
                f"WHERE excluded.ord {wins} {settled(table)}.ord",
            )
        if outside_a_transaction and conn.in_transaction:
            conn.commit()  # only TEMP tables were written; leave no transaction open

    def objects(self, kind: type) -> Iterator:
        """The settled snapshot's objects of one kind, in order (for tests and inspection)."""
        table, columns, _ = KINDS[kind]
        self.settle()
        cursor = self.db.conn.execute(
            f"SELECT {', '.join(columns)} FROM temp.{settled(table)} ORDER BY ord"
        )
        for values in cursor:
            yield kind(*values)

    def _script(self, *statements: str) -> None:
        for statement in statements:
            self.db.conn.execute(statement)
