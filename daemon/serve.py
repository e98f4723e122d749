"""``accesstrail serve``: Datasette over the database, read-only, beside the writing daemon.

The database is in WAL mode, so Datasette reads a consistent snapshot while a sync commits.
Datasette opens it in mutable mode (never immutable: the daemon writes it), bound to the
configured host (127.0.0.1 by default). Datasette 0.65 has no write API, and no plugin that
writes is installed, so the workspace only reads.

What it puts in front (``WebSettings``, from ``ACCESSTRAIL_WEB_PASSWORD_HASH``,
``ACCESSTRAIL_WEB_USER`` and ``ACCESSTRAIL_WEB_SECRET``, each secret also as ``_FILE``): with a
password hash from ``datasette hash-password`` only the web user, logged in at ``/-/login`` or by
HTTP Basic, sees anything; the secret signs the login cookie, so a login outlives a restart.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loguru import logger

from daemon.config import WebSettings

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


def build_datasette(db_path: Path, web: WebSettings | None = None):
    from datasette.app import Datasette

    from store.datasette.metadata import build_metadata

    web = web or WebSettings()
    metadata = build_metadata(
        Path(db_path).stem,
        existing_tables=table_names(db_path),
        password_hash=web.password_hash.reveal() if web.password_hash else None,
        web_user=web.user,
        title=web.title,
    )
    return Datasette(
        [str(db_path)],
        metadata=metadata,
        settings=SETTINGS,
        template_dir=str(TEMPLATES),
        # signs the login cookie; without it a new one is drawn at every start
        secret=web.secret.reveal() if web.secret else None,
    )


def serve_database(db_path: Path, host: str, port: int, web: WebSettings | None = None) -> None:
    import uvicorn

    datasette = build_datasette(db_path, web)
    logger.info("serving {} at http://{}:{}/", db_path, host, port)
    print(f"Datasette is serving {db_path} at http://{host}:{port}/", flush=True)
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning")
