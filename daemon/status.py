"""What ``accesstrail status`` reports: per provider, the last run, the last success and counts.

A provider is *fresh* when its last success is no older than three sync intervals; a stale
provider, or one whose last run failed, makes ``status`` exit 1 so monitoring can alert on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from daemon.errors import PROVIDER_LABELS
from store import timestamps

STALE_AFTER_INTERVALS = 3


@dataclass
class ProviderStatus:
    provider: str
    last_run: dict | None
    last_success: dict | None
    counts: dict[str, int]
    interval: int

    @property
    def age_seconds(self) -> float | None:
        if not self.last_success:
            return None
        moment = timestamps.parse_instant(self.last_success["started_at"])
        return (datetime.now(UTC) - moment).total_seconds()

    @property
    def fresh(self) -> bool:
        age = self.age_seconds
        return age is not None and age <= STALE_AFTER_INTERVALS * self.interval

    @property
    def healthy(self) -> bool:
        return self.last_run is not None and self.last_run["status"] != "failed" and self.fresh

    def lines(self) -> list[str]:
        label = PROVIDER_LABELS[self.provider]
        if self.last_run is None:
            return [f"{label}: never synced"]
        run = self.last_run
        out = [
            f"{label}: last run #{run['id']} {run['status']} at {run['started_at']} "
            f"({run['requests']} requests, {run['changes']} changes)"
        ]
        if run["error"]:
            out.append(f"  error: {run['error']}")
        if self.last_success:
            out.append(
                f"  last success {_age(self.age_seconds)} ago "
                f"({self.last_success['started_at']}); "
                f"{'fresh' if self.fresh else 'stale'}"
            )
        else:
            out.append("  no successful run yet")
        c = self.counts
        out.append(
            f"  {c['users']} users ({c['enabled']} enabled, {c['service']} service), "
            f"{c['organizations']} organisations, {c['teams']} teams, "
            f"{c['memberships']} memberships"
        )
        return out


def provider_status(db: sqlite_utils.Database, provider: str, interval: int) -> ProviderStatus:
    def one(sql: str) -> dict | None:
        rows = list(db.query(sql, [provider]))
        return rows[0] if rows else None

    last_run = one("SELECT * FROM sync_runs WHERE provider = ? ORDER BY id DESC LIMIT 1")
    last_success = one(
        "SELECT * FROM sync_runs WHERE provider = ? "
        "AND status IN ('succeeded', 'partial') ORDER BY id DESC LIMIT 1"
    )
    counts = one(
        "SELECT "
        "(SELECT COUNT(*) FROM users WHERE provider = :p AND removed_at IS NULL) AS users, "
        "(SELECT COUNT(*) FROM users WHERE provider = :p AND removed_at IS NULL "
        "  AND status = 'enabled') AS enabled, "
        "(SELECT COUNT(*) FROM users WHERE provider = :p AND removed_at IS NULL "
        "  AND account_type = 'service') AS service, "
        "(SELECT COUNT(*) FROM organizations WHERE provider = :p AND removed_at IS NULL) "
        "  AS organizations, "
        "(SELECT COUNT(*) FROM teams WHERE provider = :p AND removed_at IS NULL) AS teams, "
        "(SELECT COUNT(*) FROM memberships WHERE provider = :p AND removed_at IS NULL) "
        "  AS memberships".replace(":p", "?1")
    )
    return ProviderStatus(provider, last_run, last_success, counts, interval)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
