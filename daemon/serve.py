"""``accesstrail serve``: Datasette over the database, read-only, beside the writing daemon.

The database is in WAL mode, so Datasette reads a consistent snapshot while a sync commits.
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger


def serve_database(db_path: Path, host: str, port: int) -> None:
    import uvicorn
    from datasette.app import Datasette

    from store.datasette.metadata import build_metadata

    datasette = Datasette(
        [str(db_path)],
        metadata=build_metadata(Path(db_path).stem),
        settings={"sql_time_limit_ms": 5000},
    )
    logger.info("serving {} at http://{}:{}/", db_path, host, port)
    print(f"Datasette is serving {db_path} at http://{host}:{port}/", flush=True)
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning")
