"""The replica's working calendar (工作日历): holidays and 调休 make-up workdays, editable.

``work_calendar`` holds one row per known day (``day`` 'YYYY-MM-DD', ``is_workday`` 0/1, ``note``).
Migration ``m002_closed_loop`` seeds 2024–2026 from the ``chinese-calendar`` package; operators
can edit single days (:func:`set_day`) or seed further years once they are published
(:func:`seed_work_calendar`). :func:`is_workday_fn` turns the table into the ``is_workday``
callable that :mod:`app.workcal` takes; beyond the known days it falls back to Monday–Friday and
logs a warning once per year and process.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

SEED_YEARS: tuple[int, ...] = (2024, 2025, 2026)
HOLIDAY_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}
_warned_years: set[int] = set()


def calendar_rows(years: Iterable[int]) -> list[tuple[str, int, str | None]]:
    """``(day, is_workday, note)`` for every day of ``years`` from ``chinese-calendar``.

    Notes: the holiday's Chinese name on holidays, ``调休上班（name）`` on make-up workdays,
    ``None`` on ordinary weekdays and weekends. Raises ``NotImplementedError`` for a year the
    package does not know.
    """
    import chinese_calendar

    rows: list[tuple[str, int, str | None]] = []
    for year in sorted(set(years)):
        day = dt.date(year, 1, 1)
        while day.year == year:
            workday = bool(chinese_calendar.is_workday(day))
            _, name = chinese_calendar.get_holiday_detail(day)
            note = None
            if name:
                zh = HOLIDAY_ZH.get(name, name)
                note = f"调休上班（{zh}）" if workday else zh
            rows.append((day.isoformat(), int(workday), note))
            day += dt.timedelta(days=1)
    return rows


def seed_work_calendar(conn: sqlite3.Connection, years: Iterable[int] = SEED_YEARS) -> int:
    """Insert the official calendar of ``years``; days already present (possibly edited) are kept.

    Runs in the caller's transaction. Returns the number of rows inserted. Years the
    ``chinese-calendar`` package does not know are skipped with a warning.
    """
    inserted = 0
    for year in sorted(set(years)):
        try:
            rows = calendar_rows([year])
        except (NotImplementedError, ImportError) as exc:
            log.warning("work calendar: no official holiday data for %s (%s); not seeded", year, exc)
            continue
        before = conn.total_changes
        conn.executemany("INSERT OR IGNORE INTO work_calendar (day, is_workday, note) VALUES (?, ?, ?)", rows)
        inserted += conn.total_changes - before
    return inserted


def load_days(conn: sqlite3.Connection) -> dict[str, bool]:
    """Every known day of the calendar: ``{'YYYY-MM-DD': is_workday}``."""
    return {day: bool(w) for day, w in conn.execute("SELECT day, is_workday FROM work_calendar")}


def known_years(conn: sqlite3.Connection) -> list[int]:
    rows = conn.execute("SELECT DISTINCT substr(day, 1, 4) FROM work_calendar ORDER BY 1").fetchall()
    return [int(r[0]) for r in rows]


def is_workday_fn(conn: sqlite3.Connection) -> Callable[[dt.date], bool]:
    """``is_workday(date)`` from the replica's calendar (a snapshot taken now).

    Known days answer from the table; any other day is Monday–Friday, with a warning
    logged once per year and process.
    """
    days = load_days(conn)

    def is_workday(day: dt.date) -> bool:
        if isinstance(day, dt.datetime):
            day = day.date()
        known = days.get(day.isoformat())
        if known is not None:
            return known
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning(
                "work calendar has no entry for %s (year %s): falling back to Monday–Friday; "
                "add the year's holidays to the work_calendar table",
                day.isoformat(),
                day.year,
            )
        return day.weekday() < 5

    is_workday.known_days = len(days)  # type: ignore[attr-defined]
    return is_workday


def set_day(replica, day: dt.date | str, is_workday: bool, note: str | None = None, *, actor: str) -> None:
    """Edit one day of the calendar (insert or replace), stamped with who edited it and when."""
    from app.timeutil import now_iso

    text = day.isoformat() if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)).isoformat()
    with replica.write("calendar") as conn:
        conn.execute(
            "INSERT INTO work_calendar (day, is_workday, note, edited_by, edited_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(day) DO UPDATE SET is_workday = excluded.is_workday, note = excluded.note, "
            "edited_by = excluded.edited_by, edited_at = excluded.edited_at",
            (text, int(bool(is_workday)), note, actor, now_iso()),
        )
