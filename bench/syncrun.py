"""One real ``accesstrail sync`` in a child process, with what it cost and what it wrote.

The sync is the installed console script, run exactly as an operator runs it (``--env-file``,
``--db``), so the benchmark measures whatever the client code does today. ``os.wait4`` gives the
child's own CPU time. Its peak resident memory is the kernel's high-water mark of the child's
own address space (``VmHWM``), read until it exits: ``ru_maxrss`` would not do, since Linux
carries the parent's resident size at fork into the child's maximum, so every sync would report
at least the benchmark's own size. The database is measured before and after: its
bytes (the main file plus ``-wal``; ``-shm`` is an index, not data) and its change and version
rows.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# Variables of a real configuration in the caller's environment would beat the env file.
_OWN_PREFIXES = ("SCALR_", "PLANETSCALE_", "ACCESSTRAIL_")


@dataclass(frozen=True)
class DbFigures:
    bytes: int
    change_rows: int
    version_rows: int


@dataclass
class SyncFigures:
    """What one sync cost, and what it added to the database."""

    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    db_bytes_added: int
    change_rows: int
    version_rows: int
    requests: dict[str, int]
    minimum: dict[str, int]
    http_429: int

    def as_dict(self) -> dict:
        return asdict(self)


def write_env_file(path: Path, config: dict[str, str], requests_per_minute: int) -> Path:
    lines = {**config, "PLANETSCALE_REQUESTS_PER_MINUTE": str(requests_per_minute)}
    path.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
    return path


def measure_db(db: Path) -> DbFigures:
    """The database's bytes with its ``-wal``, and its change and version rows."""
    files = (db, db.with_name(db.name + "-wal"))
    size = sum(f.stat().st_size for f in files if f.exists())
    if not db.exists():
        return DbFigures(size, 0, 0)
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "select name from sqlite_master where type = 'table' and name like '%\\_versions'"
                " escape '\\'"
            )
        ]
        versions = sum(_count(connection, name) for name in tables)
        return DbFigures(size, _count(connection, "changes"), versions)
    finally:
        connection.close()


def _count(connection: sqlite3.Connection, table: str) -> int:
    return connection.execute(f'select count(*) from "{table}"').fetchone()[0]


def run_sync(env_file: Path, db: Path, log: Path) -> tuple[int, float, float, float]:
    """Exit code, wall seconds, CPU seconds and peak RSS (MB) of one ``accesstrail sync``."""
    command = [str(Path(sys.executable).with_name("accesstrail")), "sync"]
    command += ["--env-file", str(env_file), "--db", str(db)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    with log.open("ab") as output:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=output, stderr=output, env=env, cwd=db.parent)
        peak = _HighWaterMark(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        peak.stop()
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    cpu = usage.ru_utime + usage.ru_stime
    return child.returncode, wall, cpu, peak.kib / 1024


class _HighWaterMark:
    """Follows ``VmHWM`` of a running process (its peak RSS since exec) until it exits.

    The mark only rises, so the last reading is the peak but for the exiting process's final
    moments, which allocate nothing.
    """

    INTERVAL = 0.02

    def __init__(self, pid: int):
        self.path = Path(f"/proc/{pid}/status")
        self.kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._done.is_set():
            self._read()
            self._done.wait(self.INTERVAL)

    def _read(self) -> None:
        try:
            for line in self.path.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.kib = max(self.kib, int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            pass  # exited (or a zombie with no memory left): the last reading stands

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
