"""Time helpers: every timestamp in the replica is ISO 8601 in Asia/Shanghai (+08:00).

China has no daylight saving time, so the fixed-offset text sorts lexicographically
in time order, and ``substr(ts, 1, 13)`` buckets by hour.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
FMT = "%Y-%m-%dT%H:%M:%S+08:00"


def now() -> dt.datetime:
    """The current time in Asia/Shanghai, to the second."""
    return dt.datetime.now(TZ).replace(microsecond=0)


def to_iso(t: dt.datetime) -> str:
    """Format an aware (or naive, taken as Shanghai) datetime for storage."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=TZ)
    return t.astimezone(TZ).strftime(FMT)


def now_iso() -> str:
    return to_iso(now())


def parse(text: str) -> dt.datetime:
    """Parse a stored or user-given timestamp; naive input is taken as Asia/Shanghai."""
    t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=TZ)
    return t.astimezone(TZ)


def parse_or_none(text: str | None) -> dt.datetime | None:
    """:func:`parse`, or None for an empty or malformed stored timestamp."""
    if not text:
        return None
    try:
        return parse(text)
    except ValueError:
        return None


def epoch_to_iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), TZ).strftime(FMT)


def display(text: str | None) -> str:
    """Short local display form, ``MM-DD HH:MM``."""
    if not text:
        return ""
    return text[5:16].replace("T", " ")
