"""SLA clocks (app/clocks.py): pure functions, no replica."""

from __future__ import annotations

import datetime as dt

import pytest

from app import clocks
from app.timeutil import TZ, to_iso
from app.workcal import default_is_workday


def t(y, m, d, hh=0, mm=0, ss=0):
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=TZ)


def iso(*a):
    return to_iso(t(*a))


def test_working_seconds_between():
    ws = clocks.working_seconds_between
    assert ws(t(2026, 11, 25, 9), t(2026, 11, 25, 11)) == 2 * 3600
    assert ws(t(2026, 11, 25, 11), t(2026, 11, 25, 14)) == 1 * 3600 + 1800  # lunch does not count
    assert ws(t(2026, 11, 27, 17), t(2026, 11, 30, 8, 30)) == 1800  # the weekend does not count
    assert ws(t(2025, 9, 30, 17), t(2025, 10, 9, 8, 30)) == 1800  # National Day holiday
    assert ws(t(2025, 10, 10, 17), t(2025, 10, 13, 8, 30)) == 1800 + 7.5 * 3600  # 调休 Saturday 10-11 counts
    assert ws(t(2026, 11, 25, 11), t(2026, 11, 25, 9)) == -2 * 3600


def test_shift_deadline_by_working_or_wall_time():
    due = t(2026, 11, 27, 17, 30)
    assert clocks.shift_deadline(due, t(2026, 11, 27, 17), t(2026, 11, 30, 8, 30), "working_hours") == t(
        2026, 11, 30, 9, 0
    )
    assert clocks.shift_deadline(due, t(2026, 11, 27, 17), t(2026, 11, 27, 19), "hours") == t(
        2026, 11, 27, 19, 30
    )
    assert (
        clocks.shift_deadline(due, t(2026, 11, 28, 9), t(2026, 11, 28, 18), "working_days") == due
    )  # Saturday
    assert clocks.shift_deadline(due, t(2026, 11, 27, 17), t(2026, 11, 27, 16), "hours") == due
    every_day = lambda d: True  # noqa: E731
    assert clocks.shift_deadline(
        due, t(2026, 11, 28, 9), t(2026, 11, 28, 10), "working_hours", every_day
    ) == t(2026, 11, 28, 9, 30)


def base_event(**kw) -> dict:
    e = {
        "status": "dispatched",
        "reported_at": iso(2026, 11, 25, 9),
        "accepted_at": iso(2026, 11, 25, 9, 2),
        "response_due_at": iso(2026, 11, 25, 9, 30),
        "arrival_due_at": iso(2026, 11, 25, 9, 10),
        "handle_due_at": iso(2026, 11, 25, 14, 30),
        "on_site_at": None,
        "handled_at": None,
        "rejected_at": None,
        "deferred_at": None,
    }
    e.update(kw)
    return e


def test_states_ok_soon_overdue():
    e = base_event()
    s = clocks.sla_state(e, t(2026, 11, 25, 9, 5))
    assert s["arrival"]["state"] == "soon" and s["arrival"]["remaining_s"] == 300 and s["arrival"]["running"]
    assert s["response"]["state"] == "ok" and not s["response"]["running"]  # stopped at accepted_at, in time
    assert s["handle"]["state"] == "ok" and s["state"] == "soon"
    s = clocks.sla_state(e, t(2026, 11, 25, 9, 20))
    assert s["arrival"]["state"] == "overdue" and s["arrival"]["remaining_s"] == -600
    assert s["overdue"] == ["arrival"] and s["state"] == "overdue"
    s = clocks.sla_state(e, t(2026, 11, 25, 13))
    assert s["handle"]["state"] == "soon"


def test_arrival_clock_stops_at_first_arrival():
    e = base_event(status="on_site", on_site_at=iso(2026, 11, 25, 9, 8))
    s = clocks.sla_state(e, t(2026, 11, 26))
    assert (
        s["arrival"]["state"] == "ok" and s["arrival"]["remaining_s"] == 120 and not s["arrival"]["running"]
    )
    late = base_event(status="on_site", on_site_at=iso(2026, 11, 25, 9, 15))
    assert clocks.arrival_clock(late, t(2026, 11, 25, 9, 16))["state"] == "overdue"
    assert clocks.arrival_clock(base_event(arrival_due_at=None)) is None  # category without the clock


def test_deferral_suspends_handling_but_not_arrival():
    e = base_event(status="deferred", deferred_at=iso(2026, 11, 25, 10))
    s = clocks.sla_state(e, t(2026, 11, 26, 12))  # long after both deadlines
    assert s["handle"]["suspended"] and not s["handle"]["running"]
    assert s["handle"]["state"] == "ok" and s["handle"]["remaining_s"] == int(
        4.5 * 3600
    )  # frozen at deferral
    assert s["arrival"]["running"] and s["arrival"]["state"] == "overdue"
    assert s["overdue"] == ["arrival"]


def test_handling_clock_stops_when_handled_and_runs_again_after_rework():
    handled = base_event(
        status="handled", on_site_at=iso(2026, 11, 25, 9, 8), handled_at=iso(2026, 11, 25, 15)
    )
    s = clocks.sla_state(handled, t(2026, 11, 27))
    assert s["handle"]["state"] == "overdue" and s["handle"]["stopped_at"] == iso(2026, 11, 25, 15)
    assert s["handle"]["remaining_s"] == -1800
    rework = dict(handled, status="dispatched", handled_at=None)
    assert clocks.handling_clock(rework, t(2026, 11, 25, 14))["running"]
    closed = dict(handled, status="closed", handled_at=iso(2026, 11, 25, 14))
    assert clocks.handling_clock(closed, t(2027, 1, 1))["state"] == "ok"


@pytest.mark.parametrize("status", ["rejected", "merged"])
def test_no_clocks_for_rejected_or_merged(status):
    e = base_event(
        status=status, accepted_at=None, rejected_at=iso(2026, 11, 25, 9, 3) if status == "rejected" else None
    )
    s = clocks.sla_state(e, t(2026, 11, 26))
    assert s["arrival"] is None and s["handle"] is None
    assert (s["response"] is not None) == (status == "rejected")


def test_default_calendar_is_the_official_one():
    assert not default_is_workday(dt.date(2026, 10, 1))
