"""SLA clocks of one event (pure functions): response, arrival and handling.

- **response** (响应): report → accepted (or rejected), against ``response_due_at``.
- **arrival** (到场, the district's 10-minute promise): report → first on site, against
  ``arrival_due_at``; only categories with ``arrival_clock = 1`` have one. Deferral (缓办)
  does **not** suspend it.
- **handling** (处置): report → handled, against ``handle_due_at`` (working hours/days from the
  catalogue and the replica's calendar). It is suspended while the event is ``deferred``
  (``deferred_at`` holds when the suspension began); on resume/arrive the write path moves
  ``handle_due_at`` by the suspended working time (:func:`shift_deadline`). Rework clears
  ``handled_at``, so the clock runs again. Extension (延期) moves ``handle_due_at``.

Consistent with :mod:`app.queue`: the same ``SOON`` window (2 h) and the same rule that a
stopped clock is overdue when it stopped after its due time. One deliberate difference: the
queue treats ``deferred`` as suspending every clock, while here (as issue 3 says) the arrival
clock keeps running through a deferral.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from app import timeutil, workcal
from app.queue import SOON

TERMINAL = ("closed", "rejected", "merged")
STATE_ORDER = {"ok": 0, "soon": 1, "overdue": 2}
IsWorkday = Callable[[dt.date], bool]


def _dt(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=timeutil.TZ)
    return timeutil.parse(value)


def _now(now: str | dt.datetime | None) -> dt.datetime:
    return _dt(now) or timeutil.now()


# -- working time -----------------------------------------------------------------------------------
def working_seconds_between(
    start: dt.datetime, end: dt.datetime, is_workday: IsWorkday = workcal.default_is_workday
) -> int:
    """Working seconds (08:30–12:00, 13:30–17:30 on working days) between two instants
    (negative when ``end`` is before ``start``)."""
    if end < start:
        return -working_seconds_between(end, start, is_workday)
    tz = start.tzinfo or timeutil.TZ
    a = start.astimezone(tz)
    b = end.astimezone(tz)
    total = 0.0
    day = a.date()
    while day <= b.date():
        if is_workday(day):
            for p0, p1 in workcal.PERIODS:
                lo = max(dt.datetime.combine(day, p0, tz), a)
                hi = min(dt.datetime.combine(day, p1, tz), b)
                if hi > lo:
                    total += (hi - lo).total_seconds()
        day += dt.timedelta(days=1)
    return int(round(total))


def shift_deadline(
    due: dt.datetime,
    suspended_from: dt.datetime,
    suspended_to: dt.datetime,
    unit: str | None,
    is_workday: IsWorkday = workcal.default_is_workday,
) -> dt.datetime:
    """``due`` moved by the time suspended between ``suspended_from`` and ``suspended_to``.

    For working-time units (working_hours, working_days) the shift is the *working* time that
    passed while suspended, so a deferral over a weekend costs nothing; for calendar ``hours``
    (and unknown units) it is the wall-clock time.
    """
    if suspended_to <= suspended_from:
        return due
    if unit in ("working_hours", "working_days"):
        secs = working_seconds_between(suspended_from, suspended_to, is_workday)
        if secs <= 0:
            return due
        return workcal.add_working_hours(due, secs / 3600.0, is_workday).replace(microsecond=0)
    return due + (suspended_to - suspended_from)


# -- clocks -------------------------------------------------------------------------------------------
def _clock(kind: str, due: dt.datetime, now: dt.datetime, *, stopped_at=None, suspended_at=None) -> dict:
    if stopped_at is not None:
        ref, running = stopped_at, False
    elif suspended_at is not None:
        ref, running = suspended_at, False
    else:
        ref, running = now, True
    remaining = math.floor((due - ref).total_seconds())
    if remaining < 0:
        state = "overdue"
    elif running and due - now <= SOON:
        state = "soon"
    else:
        state = "ok"
    return {
        "kind": kind,
        "due": timeutil.to_iso(due),
        "remaining_s": remaining,
        "state": state,
        "running": running,
        "suspended": suspended_at is not None and stopped_at is None,
        "stopped_at": timeutil.to_iso(stopped_at) if stopped_at is not None else None,
    }


def response_clock(event: dict, now: str | dt.datetime | None = None) -> dict | None:
    """Report → accepted/rejected against ``response_due_at``; ``None`` when not applicable."""
    due = _dt(event.get("response_due_at"))
    if due is None:
        return None
    stop = _dt(event.get("accepted_at")) or _dt(event.get("rejected_at"))
    if stop is None and event.get("status") != "reported":
        return None  # merged straight from reported: no response stage
    return _clock("response", due, _now(now), stopped_at=stop)


def arrival_clock(event: dict, now: str | dt.datetime | None = None) -> dict | None:
    """Report → first on site (10 minutes where the catalogue says so). Never suspended."""
    due = _dt(event.get("arrival_due_at"))
    if due is None:
        return None
    stop = _dt(event.get("on_site_at"))
    if stop is None and event.get("status") in TERMINAL:
        return None  # rejected / merged / closed without anyone on site: nothing to measure
    return _clock("arrival", due, _now(now), stopped_at=stop)


def handling_clock(event: dict, now: str | dt.datetime | None = None) -> dict | None:
    """Report → handled against ``handle_due_at``; suspended while deferred."""
    due = _dt(event.get("handle_due_at"))
    status = event.get("status")
    if due is None or status in ("rejected", "merged"):
        return None
    stop = _dt(event.get("handled_at")) if status in ("handled", "verified", "closed") else None
    if status == "closed" and stop is None:
        return None
    suspended = None
    if status == "deferred":
        suspended = _dt(event.get("deferred_at")) or _now(now)
    return _clock("handle", due, _now(now), stopped_at=stop, suspended_at=suspended)


def sla_state(event: dict, now: str | dt.datetime | None = None) -> dict:
    """Every clock of ``event`` at ``now`` and the worst state.

    ``{'response': clock|None, 'arrival': clock|None, 'handle': clock|None,
    'state': 'overdue'|'soon'|'ok', 'overdue': [kinds]}`` where a clock is
    ``{'kind', 'due', 'remaining_s', 'state', 'running', 'suspended', 'stopped_at'}``;
    ``remaining_s`` is negative when overdue (frozen while stopped or suspended).
    """
    t = _now(now)
    out: dict = {
        "response": response_clock(event, t),
        "arrival": arrival_clock(event, t),
        "handle": handling_clock(event, t),
    }
    clocks = [c for c in (out["response"], out["arrival"], out["handle"]) if c]
    out["overdue"] = [c["kind"] for c in clocks if c["state"] == "overdue"]
    out["state"] = max((c["state"] for c in clocks), key=STATE_ORDER.__getitem__, default="ok")
    return out
