"""Where log lines go and what they may say.

One sink, stderr. Under systemd, stderr is the journal (``$JOURNAL_STREAM`` names the stream,
and it is ours when it matches stderr's device and inode): the journal stamps every line itself,
so ours carry no timestamp, and a ``<N>`` syslog prefix gives each line its priority (journald
reads it) so ``journalctl -p warning`` works. Elsewhere each line starts with a UTC timestamp.

Every record passes through ``redact`` first, on every sink: secrets are kept out of log lines
where they are made (``daemon/env.py``'s ``Secret``, the HTTP layer's redaction); this is the
second line of defence, for a value that slipped through an exception's text.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping

from loguru import logger

#: loguru level → syslog priority, for journald.
PRIORITIES = {
    "TRACE": 7,
    "DEBUG": 7,
    "INFO": 6,
    "SUCCESS": 5,
    "WARNING": 4,
    "ERROR": 3,
    "CRITICAL": 2,
}
REDACTED = "[redacted]"
#: Credentials shaped like the providers' and HTTP's, whatever value they hold.
_SHAPES = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=:-]{8,}")
#: A secret shorter than this is not searched for: it would match ordinary words.
MIN_SECRET_CHARS = 8


def configure_logging(
    level: str, secrets: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> None:
    """One stderr sink at ``level``; journald's format when stderr is the journal."""
    environ = os.environ if environ is None else environ
    journal = stderr_is_journal(environ)
    known = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    logger.remove()
    logger.configure(patcher=lambda record: _patch(record, known))
    # diagnose=False: loguru would otherwise print every local variable of a traceback, and
    # one of them may hold a token or a response body that echoes it.
    logger.add(
        sys.stderr,
        level=level,
        format=journal_format
        if journal
        else "{time:YYYY-MM-DDTHH:mm:ss.SSS!UTC}Z {level} {message}",
        colorize=False,
        diagnose=False,
        backtrace=False,
    )


def journal_format(record) -> str:
    """A callable format: loguru appends no newline or traceback to it, so it says both (and
    the syslog prefix is escaped, or loguru would read ``<4>`` as a colour tag)."""
    return f"\\<{PRIORITIES.get(record['level'].name, 6)}>{{level}} {{message}}\n{{exception}}"


def stderr_is_journal(environ: Mapping[str, str]) -> bool:
    """True when ``$JOURNAL_STREAM`` (``device:inode``) is the stream stderr writes to."""
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SHAPES.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _patch(record, secrets: list[str]) -> None:
    record["message"] = redact(record["message"], secrets)
    exception = record["exception"]
    if exception is not None and exception.value is not None:
        shown = str(exception.value)
        cleaned = redact(shown, secrets)
        if cleaned != shown:  # never print a traceback whose message would reveal a secret
            record["exception"] = None
            record["message"] += f" ({type(exception.value).__name__}: {cleaned})"
