"""Working-time deadlines across weekends, holidays and 调休 make-up days."""

import datetime as dt

import pytest

from app.timeutil import TZ
from app.workcal import add_working_days, add_working_hours, due_at


def t(y, m, d, hh=0, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_working_hours_within_a_day_and_over_lunch():
    assert add_working_hours(t(2026, 11, 25, 9, 0), 2) == t(2026, 11, 25, 11, 0)
    assert add_working_hours(t(2026, 11, 25, 11, 0), 2) == t(2026, 11, 25, 14, 30)


def test_working_hours_across_a_weekend():
    # Friday 2026-11-27 16:30 + 3 h → Monday 2026-11-30 10:30
    assert add_working_hours(t(2026, 11, 27, 16, 30), 3) == t(2026, 11, 30, 10, 30)


def test_report_at_night_starts_next_morning():
    assert add_working_hours(t(2026, 11, 25, 22, 0), 1) == t(2026, 11, 26, 9, 30)


def test_national_day_holiday_and_make_up_workday():
    # 2025: 10-01..10-08 off, Saturday 2025-10-11 is a make-up workday (调休)
    assert add_working_days(t(2025, 9, 30, 9, 0), 1) == t(2025, 10, 9, 9, 0)
    assert add_working_days(t(2025, 10, 10, 9, 0), 1) == t(2025, 10, 11, 9, 0)


def test_calendar_hours_and_units():
    assert due_at(t(2026, 11, 28, 23, 0), 2, "hours") == t(2026, 11, 29, 1, 0)
    assert due_at(t(2026, 11, 28, 23, 0), None, None) is None
    with pytest.raises(ValueError, match="unit"):
        due_at(t(2026, 11, 28), 1, "fortnights")


def test_custom_calendar_is_used():
    every_day = lambda d: True  # noqa: E731
    assert add_working_days(t(2026, 11, 28, 9, 0), 1, every_day) == t(2026, 11, 29, 9, 0)
