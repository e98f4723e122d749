"""``accesstrail serve``: Datasette over the database, read-only, beside the writing daemon.

The database is in WAL mode, so Datasette reads a consistent snapshot while a sync commits.
Datasette opens it in mutable mode (never immutable: the daemon writes it), bound to the
configured host (127.0.0.1 by default). Datasette 0.65 has no write API, and no plugin that
writes is installed, so the workspace only reads.

Serve-time environment:

- ``ACCESSTRAIL_WEB_PASSWORD_HASH``: a hash from ``datasette hash-password`` (the
  ``datasette`` beside ``accesstrail``, with datasette-auth-passwords) or its ``/-/password-tool``
  page; when set, only the web user,
  logged in at ``/-/login`` or by HTTP Basic, sees anything.
- ``ACCESSTRAIL_WEB_USER``: that user's name, ``auditor`` by default.
- ``DATASETTE_SECRET``: signs the login cookie, so a login outlives a restart.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from loguru import logger

TEMPLATES = Path(__file__).resolve().parent.parent / "store" / "datasette" / "templates"

#: Datasette's settings for the workspace: a slow query is stopped rather than left to run.
SETTINGS = {"sql_time_limit_ms": 5000}


def table_names(db_path: Path) -> list[str]:
    """The database's tables, read without writing (so hidden internals are known)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        conn.close()


def build_datasette(db_path: Path, environ: dict[str, str] | None = None):
    from datasette.app import Datasette

    from store.datasette.metadata import build_metadata

    environ = dict(os.environ if environ is None else environ)
    metadata = build_metadata(
        Path(db_path).stem,
        existing_tables=table_names(db_path),
        password_hash=environ.get("ACCESSTRAIL_WEB_PASSWORD_HASH") or None,
        web_user=environ.get("ACCESSTRAIL_WEB_USER") or "auditor",
    )
    return Datasette(
        [str(db_path)],
        metadata=metadata,
        settings=SETTINGS,
        template_dir=str(TEMPLATES),
        # signs the login cookie; without it a new one is drawn at every start
        secret=environ.get("DATASETTE_SECRET") or None,
    )


def serve_database(db_path: Path, host: str, port: int) -> None:
    import uvicorn

    datasette = build_datasette(db_path)
    logger.info("serving {} at http://{}:{}/", db_path, host, port)
    print(f"Datasette is serving {db_path} at http://{host}:{port}/", flush=True)
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning")
