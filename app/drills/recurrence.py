"""Recurrence expansion for drill series, in Asia/Shanghai (no DST: a wall time is a fixed instant).

Rules: ``weekly`` (on ``weekday`` 0 = Monday, every ``interval`` weeks), ``monthly`` (on
``month_day``; a day past the month's end falls on its last day, e.g. 31 → 28/29 Feb, 30 Apr)
and ``dates`` (an explicit series of dates). Each ends at ``count`` occurrences or ``until_date``
(inclusive), whichever comes first; without both, :data:`MAX_OCCURRENCES` caps it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping

from app.timeutil import TZ, to_iso

MAX_OCCURRENCES = 104
RULES = ("weekly", "monthly", "dates")


class RecurrenceError(ValueError):
    pass


def _time(text: str) -> dt.time:
    try:
        h, m = (int(x) for x in str(text).split(":")[:2])
        return dt.time(h, m)
    except (TypeError, ValueError):
        raise RecurrenceError(f"时刻无效 time_of_day must be HH:MM, not {text!r}") from None


def _date(text, name: str) -> dt.date:
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        raise RecurrenceError(f"日期无效 {name} must be YYYY-MM-DD, not {text!r}") from None


def _at(day: dt.date, t: dt.time) -> str:
    return to_iso(dt.datetime.combine(day, t, tzinfo=TZ))


def month_day(year: int, month: int, day: int) -> dt.date:
    """``day`` of the month, clamped to the month's last day."""
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def expand(rule: Mapping) -> list[str]:
    """The occurrences' start times (ISO 8601, +08:00), in order."""
    kind = rule.get("rule")
    if kind not in RULES:
        raise RecurrenceError(f"重复规则无效 rule must be one of {', '.join(RULES)}, not {kind!r}")
    t = _time(rule.get("time_of_day") or "09:00")
    count = rule.get("count")
    if count is not None:
        count = int(count)
        if count < 1:
            raise RecurrenceError("次数须 ≥ 1 count must be ≥ 1")
    limit = min(count or MAX_OCCURRENCES, MAX_OCCURRENCES)
    until = _date(rule["until_date"], "until_date") if rule.get("until_date") else None
    if kind == "dates":
        days = sorted({_date(d, "dates") for d in rule.get("dates") or ()})
        if not days:
            raise RecurrenceError("系列须至少包含一个日期 a series needs at least one date")
        return [_at(d, t) for d in days if until is None or d <= until][:limit]
    first = _date(rule.get("first_date"), "first_date")
    interval = int(rule.get("interval") or 1)
    if interval < 1:
        raise RecurrenceError("间隔须 ≥ 1 interval must be ≥ 1")
    if count is None and until is None:
        raise RecurrenceError("须给出次数或截止日期 give a count or an until date")
    out: list[str] = []
    if kind == "weekly":
        weekday = int(rule.get("weekday") if rule.get("weekday") is not None else first.weekday())
        if not 0 <= weekday <= 6:
            raise RecurrenceError("星期须为 0（周一）… 6（周日） weekday must be 0…6")
        day = first + dt.timedelta(days=(weekday - first.weekday()) % 7)
        while len(out) < limit and (until is None or day <= until):
            out.append(_at(day, t))
            day += dt.timedelta(weeks=interval)
        return out
    md = int(rule.get("month_day") or first.day)
    if not 1 <= md <= 31:
        raise RecurrenceError("日期须为 1…31 month_day must be 1…31")
    y, m = first.year, first.month
    while len(out) < limit:
        day = month_day(y, m, md)
        if until is not None and day > until:
            break
        if day >= first:
            out.append(_at(day, t))
        m += interval
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return out
