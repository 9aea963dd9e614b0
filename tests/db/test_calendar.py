"""The replica's working calendar (work_calendar): seeded 2024–2026, editable, Monday–Friday
with a warning beyond the known years; deadlines use it."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from app import workcal
from app.timeutil import TZ
from db import calendar
from db import event_ops as ops
from db.replica import open_replica


@pytest.fixture
def empty(tmp_path):
    r = open_replica(tmp_path / "r.db")
    yield r
    r.close()


@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


def t(y, m, d, hh=0, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_migration_seeds_2024_to_2026_with_holidays_and_make_up_days(empty):
    c = empty.reader()
    assert c.execute("SELECT count(*) FROM work_calendar").fetchone()[0] == 366 + 365 + 365
    assert calendar.known_years(c) == [2024, 2025, 2026]
    rows = {r[0]: (r[1], r[2]) for r in c.execute("SELECT day, is_workday, note FROM work_calendar")}
    assert rows["2025-10-01"] == (0, "国庆节")
    assert rows["2025-10-11"] == (1, "调休上班（国庆节）")  # a Saturday
    assert rows["2026-02-17"] == (0, "春节")
    assert rows["2026-02-14"] == (1, "调休上班（春节）")  # a Saturday
    assert rows["2026-11-25"] == (1, None) and rows["2026-11-28"] == (0, None)  # Wednesday, Saturday
    c.close()


def test_is_workday_fn_matches_the_official_calendar(empty):
    c = empty.reader()
    is_workday = calendar.is_workday_fn(c)
    c.close()
    day = dt.date(2024, 1, 1)
    import chinese_calendar

    while day.year <= 2026:
        assert is_workday(day) == chinese_calendar.is_workday(day), day
        day += dt.timedelta(days=1)


def test_fallback_beyond_known_years_warns_once(empty, caplog):
    c = empty.reader()
    is_workday = calendar.is_workday_fn(c)
    c.close()
    calendar._warned_years.discard(2031)
    with caplog.at_level(logging.WARNING, logger="db.calendar"):
        assert is_workday(dt.date(2031, 10, 1)) is True  # a Wednesday; no holiday data
        assert is_workday(dt.date(2031, 10, 4)) is False  # Saturday
        assert is_workday(dt.date(2031, 10, 6)) is True
    warnings = [r for r in caplog.records if "2031" in r.getMessage()]
    assert len(warnings) == 1 and "Monday–Friday" in warnings[0].getMessage()


def test_days_are_editable_and_edits_survive_reseeding(empty):
    calendar.set_day(empty, "2026-11-27", False, "区级防汛应急停工（演示）", actor="admin")
    calendar.set_day(empty, dt.date(2026, 11, 28), True, "补班", actor="admin")
    with empty.write() as conn:
        assert calendar.seed_work_calendar(conn, [2026]) == 0
    c = empty.reader()
    row = c.execute(
        "SELECT is_workday, note, edited_by FROM work_calendar WHERE day = '2026-11-27'"
    ).fetchone()
    assert tuple(row) == (0, "区级防汛应急停工（演示）", "admin")
    is_workday = calendar.is_workday_fn(c)
    c.close()
    assert not is_workday(dt.date(2026, 11, 27)) and is_workday(dt.date(2026, 11, 28))
    with pytest.raises(ValueError):
        calendar.set_day(empty, "2026-13-01", True, actor="admin")


def test_working_deadlines_across_weekend_holiday_and_make_up_day_with_the_replica_calendar(empty):
    c = empty.reader()
    cal = calendar.is_workday_fn(c)
    c.close()
    # weekend: Friday 16:30 + 3 working hours → Monday 10:30
    assert workcal.add_working_hours(t(2026, 11, 27, 16, 30), 3, cal) == t(2026, 11, 30, 10, 30)
    # National Day 2025: 09-30 + 1 working day → 10-09 (10-01..10-08 off)
    assert workcal.add_working_days(t(2025, 9, 30, 9, 0), 1, cal) == t(2025, 10, 9, 9, 0)
    # 调休: Saturday 2025-10-11 is a working day
    assert workcal.add_working_days(t(2025, 10, 10, 9, 0), 1, cal) == t(2025, 10, 11, 9, 0)
    # Spring Festival 2026: Saturday 02-14 works, 02-15..02-23 off
    assert workcal.add_working_hours(t(2026, 2, 14, 16, 30), 2, cal) == t(2026, 2, 24, 9, 30)


def test_new_reports_use_the_replicas_edited_calendar(rep):
    c = rep.reader()
    lon, lat = c.execute("SELECT lon, lat FROM grids LIMIT 1").fetchone()
    c.close()
    record = {"source": "manual", "category": "ENV.TOILET", "lon": lon, "lat": lat,  # 1 working day
              "reported_at": "2026-11-26T10:00:00+08:00"}  # fmt: skip
    first = ops.create_event(rep, record, actor="x")
    calendar.set_day(rep, "2026-11-27", False, "临时停工", actor="admin")
    second = ops.create_event(rep, record, actor="x")
    c = rep.reader()
    due = dict(
        c.execute("SELECT id, handle_due_at FROM events WHERE id IN (?, ?)", (first, second)).fetchall()
    )
    c.close()
    assert due[first] == "2026-11-27T10:00:00+08:00"  # Thursday → Friday
    assert due[second] == "2026-11-30T10:00:00+08:00"  # Friday made a holiday → Monday
