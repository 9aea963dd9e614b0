"""Report times from feeds, parsed in bulk.

Fast path: a batch whose values all look like ``YYYY-MM-DD[ T]HH:MM[:SS]`` (no zone: Asia/Shanghai
local time, as 12345 and city-management systems write) is parsed by numpy in one call. Anything
else goes value by value: ISO 8601 with ``Z`` or an offset, ``YYYY/M/D H:MM``, ``YYYY年M月D日 H时M分``,
``YYYYMMDDHHMMSS``, and epoch seconds or milliseconds (IoT). Impossible dates (month 13, hour 25,
30 February) are bad dates, as are years before 1992 (the last DST in China was 1991) and times more than a day in the future.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import numpy as np

from app.timeutil import TZ

BAD = np.iinfo(np.int64).min
OFFSET_S = 8 * 3600
MIN_EPOCH = int(dt.datetime(1992, 1, 1, tzinfo=TZ).timestamp())  # Asia/Shanghai had DST until 1991
FUTURE_SLACK_S = 86400

_FLEX = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]+(\d{1,2})\s*[:时点]\s*(\d{1,2})(?:\s*[:分]\s*(\d{1,2})(?:[.,](\d{1,6}))?\s*秒?)?\s*分?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?$")


def _one(value) -> int | None:
    """Epoch seconds of one value, or None when it is not a date."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not np.isfinite(value):
            return None
        v = float(value)
        return int(v / 1000) if v > 1e11 else int(v)
    s = str(value).strip()
    if not s:
        return None
    if s.isdigit() and len(s) in (10, 13):
        v = int(s)
        return v // 1000 if len(s) == 13 else v
    m = _FLEX.match(s)
    if m:
        y, mo, d, h, mi, sec, _frac, tz = m.groups()
        try:
            t = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0))
        except ValueError:
            return None
        if tz:
            if tz == "Z":
                t = t.replace(tzinfo=dt.UTC)
            else:
                sign = 1 if tz[0] == "+" else -1
                hh, mm = int(tz[1:3]), int(tz[-2:])
                t = t.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=hh, minutes=mm)))
        else:
            t = t.replace(tzinfo=TZ)
        return int(t.timestamp())
    m = _COMPACT.match(s)
    if m:
        y, mo, d, h, mi, sec = m.groups()
        try:
            return int(dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec or 0), tzinfo=TZ).timestamp())
        except ValueError:
            return None
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=TZ)
    return int(t.timestamp())


def _looks_fast(v) -> bool:
    return isinstance(v, str) and len(v) in (16, 19) and v[4] == "-" and v[7] == "-" and v[10] in " T"


def parse_times(values: list, *, now: float | None = None) -> tuple[np.ndarray, list[str | None]]:
    """``(epoch seconds, problems)``: epoch is ``BAD`` where ``problems[i]`` is ``'missing'``,
    ``'bad'`` or ``'future'``."""
    n = len(values)
    epoch = np.full(n, BAD, dtype=np.int64)
    problems: list[str | None] = [None] * n
    if n == 0:
        return epoch, problems
    if all(map(_looks_fast, values)):
        try:
            local = np.array([v.replace(" ", "T", 1) for v in values], dtype="datetime64[s]").astype(np.int64)
            epoch = local - OFFSET_S
            values = None  # parsed
        except ValueError:
            pass
    if values is not None:
        for i, v in enumerate(values):
            if v is None or (isinstance(v, str) and not v.strip()):
                problems[i] = "missing"
                continue
            e = _one(v)
            if e is None:
                problems[i] = "bad"
            else:
                epoch[i] = e
    limit = int((time.time() if now is None else now) + FUTURE_SLACK_S)
    bad = (epoch != BAD) & ((epoch < MIN_EPOCH) | (epoch > limit))
    for i in np.flatnonzero(bad).tolist():
        problems[i] = "future" if epoch[i] > limit else "bad"
        epoch[i] = BAD
    return epoch, problems
