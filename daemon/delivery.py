"""Delivering the outbox: each pending alert to each sink it is owed to, after the commit.

Delivery never fails a sync nor holds it: ``sync`` calls ``deliver_pending`` once after its runs
with a budget of ``SYNC_BUDGET_SECONDS`` in all, and ``run`` calls it every few seconds with
``due_only``, which skips an alert until its backoff (from its failed ``attempts`` and the last
attempt's time, both in the database, so backoff survives a restart) has passed.

Sinks: the webhook (``json``: the payload; ``slack``: ``{"text": summary}``), POSTed with httpx
directly — it is not a provider — with redirects not followed and at most ``ATTEMPT_SECONDS`` per
attempt; and the events file, one JSON line per alert, appended and flushed, created 0640. The
webhook URL is a secret: no reason recorded or logged here ever contains it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlite_utils
from loguru import logger

from daemon.config import Settings
from store import alerts, schema, timestamps

SYNC_BUDGET_SECONDS = 30.0
ATTEMPT_SECONDS = 10.0
#: ``run``'s backoff: BACKOFF_BASE * 2**(attempts-1), at most BACKOFF_CAP.
BACKOFF_BASE = 5.0
BACKOFF_CAP = 600.0
TEST_MESSAGE = "accesstrail test message: the webhook works (this is not an alert)"


@dataclass
class Report:
    delivered: int = 0
    failed: int = 0
    left: int = 0  # not tried: out of time, or not due yet
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = f"alerts: {self.delivered} delivered, {self.failed} failed"
        if self.left:
            text += f", {self.left} left for later"
        if self.errors:
            text += f" (last error: {self.errors[-1]})"
        return text


def webhook_body(settings: Settings, payload: str, summary: str) -> bytes:
    if settings.webhook_format == "slack":
        return json.dumps({"text": summary}).encode()
    return payload.encode()


def post_webhook(settings: Settings, body: bytes, timeout: float | None = None) -> str | None:
    """POST ``body``; None on a 2xx, else the reason (never the URL)."""
    assert settings.webhook_url is not None
    timeout = ATTEMPT_SECONDS if timeout is None else timeout
    try:
        with httpx.Client(follow_redirects=False, timeout=httpx.Timeout(timeout)) as client:
            answer = client.post(
                settings.webhook_url.reveal(),
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": "accesstrail"},
            )
    except httpx.TimeoutException:
        return f"timed out after {timeout:g}s"
    except httpx.HTTPError as exc:
        return f"request failed ({type(exc).__name__})"
    if 200 <= answer.status_code < 300:
        return None
    if answer.is_redirect:
        return f"HTTP {answer.status_code} redirect, not followed"
    return f"HTTP {answer.status_code}"


def append_event(path: Path, payload: str) -> str | None:
    """Append one JSON line to the events file; None on success, else the reason."""
    try:
        schema.make_private_dirs(path.parent)
        schema.create_private_file(path)
        with open(path, "a", encoding="utf-8") as events:
            events.write(json.dumps(json.loads(payload), separators=(",", ":")) + "\n")
            events.flush()
    except OSError as exc:
        return f"cannot write the events file: {exc.strerror}"
    return None


def backoff_seconds(attempts: int) -> float:
    if attempts <= 0:
        return 0.0
    return min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_CAP)


def _due(item: alerts.Pending, now: float) -> bool:
    if not item.attempts or item.attempted_at is None:
        return True
    last = timestamps.parse_instant(item.attempted_at).timestamp()
    return now >= last + backoff_seconds(item.attempts)


def deliver_pending(
    settings: Settings,
    budget: float | None = None,
    *,
    due_only: bool = False,
    db: sqlite_utils.Database | None = None,
) -> Report:
    """Try each pending (alert, sink) once, within ``budget`` seconds in all."""
    report = Report()
    if not settings.sinks:
        return report
    deadline = time.monotonic() + (SYNC_BUDGET_SECONDS if budget is None else budget)
    own = db is None
    database = schema.connect(settings.db_path) if db is None else db
    try:
        items = alerts.pending(database, settings.sinks)
        now = time.time()
        webhook_down = False
        for item in items:
            remaining = deadline - time.monotonic()
            if remaining <= 0.05 or (due_only and not _due(item, now)):
                report.left += 1
                continue
            if item.sink == "webhook":
                if webhook_down and due_only:  # the receiver is down: the rest waits too
                    report.left += 1
                    continue
                error = post_webhook(
                    settings,
                    webhook_body(settings, item.payload, item.summary),
                    min(ATTEMPT_SECONDS, remaining),
                )
                webhook_down = webhook_down or error is not None
            else:
                assert settings.events_file is not None
                error = append_event(settings.events_file, item.payload)
            alerts.mark(database, item.alert_id, item.sink, error)
            if error is None:
                report.delivered += 1
            else:
                report.failed += 1
                report.errors.append(f"{item.sink}: {error}")
                logger.warning("alert {} not delivered to {}: {}", item.alert_id, item.sink, error)
    finally:
        if own:
            database.close()
    return report


def send_test_message(settings: Settings) -> str | None:
    """``check --webhook``: one clearly marked test message; None when it was accepted."""
    database = schema.connect(settings.db_path)
    try:
        ident = alerts.database_id(database)
    finally:
        database.close()
    payload = {
        "id": f"accesstrail:{ident}:test",
        "rule": "test",
        "test": True,
        "provider": None,
        "observed_at": timestamps.now(),
        "run_id": None,
        "summary": TEST_MESSAGE,
        "changes": [],
    }
    return post_webhook(settings, webhook_body(settings, json.dumps(payload), TEST_MESSAGE))
