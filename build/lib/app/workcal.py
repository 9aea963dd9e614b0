"""Working-time arithmetic for handling deadlines (pure functions).

Working periods are 08:30–12:00 and 13:30–17:30 (7.5 h a day) on working days.
Whether a date is a working day comes from a callable, so the replica's editable
calendar (holidays and 调休 make-up days) can be plugged in; ``default_is_workday``
uses the ``chinese-calendar`` package and falls back to Monday–Friday outside the
years it knows.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

PERIODS: tuple[tuple[dt.time, dt.time], ...] = (
    (dt.time(8, 30), dt.time(12, 0)),
    (dt.time(13, 30), dt.time(17, 30)),
)
HOURS_PER_DAY = 7.5
IsWorkday = Callable[[dt.date], bool]
_warned: set[int] = set()


@functools.lru_cache(maxsize=4096)
def default_is_workday(day: dt.date) -> bool:
    """China's official calendar where known; Monday–Friday (with a warning) beyond it."""
    try:
        import chinese_calendar

        return bool(chinese_calendar.is_workday(day))
    except (NotImplementedError, ImportError):
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning("no holiday calendar for %s: falling back to Monday–Friday", day.year)
        return day.weekday() < 5


def _periods_on(day: dt.date, tz: dt.tzinfo | None) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(dt.datetime.combine(day, a, tz), dt.datetime.combine(day, b, tz)) for a, b in PERIODS]


def add_working_hours(start: dt.datetime, hours: float, is_workday: IsWorkday = default_is_workday) -> dt.datetime:
    """``start`` plus ``hours`` of working time."""
    remaining = dt.timedelta(hours=hours)
    day = start.date()
    cursor = start
    for _ in range(3700):  # ten years of days at most
        if is_workday(day):
            for a, b in _periods_on(day, start.tzinfo):
                if cursor >= b:
                    continue
                begin = max(cursor, a)
                span = b - begin
                if remaining <= span:
                    return begin + remaining
                remaining -= span
                cursor = b
        day += dt.timedelta(days=1)
        cursor = dt.datetime.combine(day, dt.time(0), start.tzinfo)
    raise ValueError("working-hours deadline beyond ten years")


def add_working_days(start: dt.datetime, days: float, is_workday: IsWorkday = default_is_workday) -> dt.datetime:
    """``start`` plus ``days`` working days (a working day counts 7.5 working hours)."""
    return add_working_hours(start, days * HOURS_PER_DAY, is_workday)


def due_at(
    start: dt.datetime, amount: float | None, unit: str | None, is_workday: IsWorkday = default_is_workday
) -> dt.datetime | None:
    """A deadline from a catalogue limit; ``unit`` is hours, working_hours or working_days."""
    if amount is None or not unit:
        return None
    if unit == "hours":
        return start + dt.timedelta(hours=amount)
    if unit == "working_hours":
        return add_working_hours(start, amount, is_workday)
    if unit == "working_days":
        return add_working_days(start, amount, is_workday)
    raise ValueError(f"unknown deadline unit '{unit}' (hours, working_hours, working_days)")
