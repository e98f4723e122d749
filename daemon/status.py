"""What ``accesstrail status`` reports: per provider, the last run, the last success and counts.

A provider is *fresh* when its last success (a run that ended ``succeeded`` or ``partial``) is no
older than three sync intervals. It is *healthy* when it is fresh and its last run ended
``succeeded``: a stale provider, a failed run and a ``partial`` one (part of the access is not
being tracked) all make ``status`` exit 1, so monitoring alerts on each. ``as_json`` is the
machine-readable form of the same facts (README, "Run as a service"), for scripts and monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from daemon.providers import PROVIDERS
from store import reads, timestamps

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
        """Fresh, and the last run tracked everything. A run still ``running`` is judged by the
        freshness alone: every sync would otherwise be an alert while it lasts."""
        if self.last_run is None or not self.fresh:
            return False
        return self.last_run["status"] in ("succeeded", "running")

    def as_json(self) -> dict:
        """The ``status --json`` object of this provider; no secret is among these values."""
        run = self.last_run or {}
        age = self.age_seconds
        return {
            "provider": self.provider,
            "last_run_id": run.get("id"),
            "last_run_status": run.get("status"),
            "last_run_started_at": run.get("started_at"),
            "last_run_finished_at": run.get("finished_at"),
            "last_run_requests": run.get("requests"),
            "last_run_changes": run.get("changes"),
            "last_success_at": self.last_success["started_at"] if self.last_success else None,
            "age_seconds": None if age is None else round(age, 3),
            "fresh": self.fresh,
            "healthy": self.healthy,
            "error": run.get("error"),
            "interval_seconds": self.interval,
            "stale_after_seconds": STALE_AFTER_INTERVALS * self.interval,
            "counts": dict(self.counts),
        }

    def lines(self) -> list[str]:
        label = PROVIDERS[self.provider].label
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
    return ProviderStatus(
        provider,
        last_run=reads.last_run(db, provider),
        last_success=reads.last_success(db, provider),
        counts=reads.current_counts(db, provider),
        interval=interval,
    )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
