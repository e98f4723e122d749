"""The one timestamp format of the database: ``YYYY-MM-DDTHH:MM:SS.sssZ`` in UTC.

Fixed width and always UTC, so that comparing the text compares the instants: auditors write
``valid_from <= '2026-03-01T00:00:00.000Z'`` and get the right answer without date functions.
Provider timestamps arrive in several ISO-8601 spellings and are normalised here on the way in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

#: What tells the time: an in-process parameter only (the demo passes a simulated one). Production
#: code never receives one, so every real run is stamped with the real time.
Clock = Callable[[], datetime]

_FORMAT = "%Y-%m-%dT%H:%M:%S"
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|z|[+-]\d{2}:?\d{2})?$"
)


def format_instant(moment: datetime) -> str:
    """Render an aware datetime in the database format (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime(_FORMAT) + f".{moment.microsecond // 1000:03d}Z"


def now(clock: Clock | None = None) -> str:
    """The current instant in the database format, by ``clock`` when given, else the real time."""
    return format_instant(clock() if clock is not None else datetime.now(UTC))


def parse_instant(text: str) -> datetime:
    """Parse a database timestamp (or any ISO-8601 instant) into an aware UTC datetime."""
    match = _ISO.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        micros,
        tzinfo=UTC,
    )
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        moment -= sign * offset
    return moment


def normalise(text: str | None) -> str | None:
    """A provider timestamp in the database format; None stays None.

    Raises ValueError on text that is not a timestamp: a malformed response must fail the fetch
    rather than quietly store something an audit query would misorder.
    """
    if text is None or text == "":
        return None
    match = _ISO.match(text.strip())
    if match and match.group(8) in (None, "Z", "z"):
        # Already UTC: validate the date and time, then spell it out without a round trip
        # through strftime (a sync normalises one or two stamps per user it reads).
        year, month, day, hour, minute, second, fraction, _ = match.groups()
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{(fraction or '')[:3]:0<3}Z"
    return format_instant(parse_instant(text))


def after(stamp: str, milliseconds: int = 1) -> str:
    """The stamp a few milliseconds later (keeps run stamps strictly increasing)."""
    return format_instant(parse_instant(stamp) + timedelta(milliseconds=milliseconds))
