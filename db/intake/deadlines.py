"""Vectorised due times for bulk imports: the same answers as :func:`app.workcal.due_at`, for
thousands of report times at once.

Working time is 08:30–12:00 and 13:30–17:30 on working days (the replica's calendar). With
``W(t)`` the working seconds since a reference day, a deadline of ``h`` working hours after ``t``
is the earliest ``t'`` with ``W(t') = W(t) + h·3600``: a cumulative sum over days and a
``searchsorted`` instead of a day-by-day walk per record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np

from app import workcal

OFFSET_S = 8 * 3600  # Asia/Shanghai, no DST
DAY_S = 86400
P1_START, P1_LEN = 8 * 3600 + 1800, 3 * 3600 + 1800  # 08:30–12:00
P2_START, P2_LEN = 13 * 3600 + 1800, 4 * 3600  # 13:30–17:30
WORK_DAY_S = P1_LEN + P2_LEN
assert WORK_DAY_S == int(workcal.HOURS_PER_DAY * 3600)
_EPOCH = dt.date(1970, 1, 1)


class WorkClock:
    """Working-time arithmetic over a growing range of days of one calendar."""

    def __init__(self, is_workday: Callable[[dt.date], bool]) -> None:
        self._is_workday = is_workday
        self._d0 = 0
        self._flags = np.zeros(0, dtype=np.int64)
        self._cum = np.zeros(1, dtype=np.int64)

    def _ensure(self, d_lo: int, d_hi: int) -> None:
        """Cover local day numbers ``d_lo … d_hi`` (days since 1970-01-01)."""
        if self._flags.size and self._d0 <= d_lo and d_hi < self._d0 + self._flags.size:
            return
        lo = min(d_lo, self._d0) if self._flags.size else d_lo
        hi = max(d_hi, self._d0 + self._flags.size - 1) if self._flags.size else d_hi
        flags = np.fromiter(
            (1 if self._is_workday(_EPOCH + dt.timedelta(days=int(d))) else 0 for d in range(lo, hi + 1)),
            dtype=np.int64,
            count=hi - lo + 1,
        )
        self._d0, self._flags = lo, flags
        self._cum = np.concatenate([[0], np.cumsum(flags * WORK_DAY_S)])

    def add_working_seconds(self, epoch: np.ndarray, seconds: np.ndarray | float) -> np.ndarray:
        """``epoch`` (UTC seconds) plus ``seconds`` of working time, as UTC seconds."""
        epoch = np.asarray(epoch, dtype=np.int64)
        seconds = np.broadcast_to(np.asarray(seconds, dtype=np.float64), epoch.shape)
        if epoch.size == 0:
            return epoch.copy()
        local = epoch + OFFSET_S
        day = local // DAY_S
        tod = local - day * DAY_S
        span_days = int(np.ceil(float(seconds.max()) / WORK_DAY_S) * 1.5) + 14
        self._ensure(int(day.min()) - 1, int(day.max()) + span_days)
        while True:
            idx = day - self._d0
            w_start = self._cum[idx] + self._flags[idx] * (
                np.clip(tod - P1_START, 0, P1_LEN) + np.clip(tod - P2_START, 0, P2_LEN)
            )
            target = w_start + np.round(seconds).astype(np.int64)
            if target.max() <= self._cum[-1]:
                break
            self._ensure(self._d0, self._d0 + self._flags.size + span_days + 365)
        ends = self._cum[1:]
        d = np.searchsorted(ends, target, side="left")
        r = target - self._cum[d]
        tod_out = np.where(r <= P1_LEN, P1_START + r, P2_START + (r - P1_LEN))
        return (d + self._d0) * DAY_S + tod_out - OFFSET_S

    UNIT_CODES = {"hours": 1, "working_hours": 2, "working_days": 3}

    def due(self, epoch: np.ndarray, amount: np.ndarray, unit) -> np.ndarray:
        """Deadlines (UTC seconds; -1 where there is none) for per-record ``amount`` and ``unit``
        (``hours``, ``working_hours``, ``working_days`` or None; or their :data:`UNIT_CODES`)."""
        unit = np.asarray(unit)
        if unit.dtype == object:
            codes = self.UNIT_CODES
            unit = np.fromiter((codes.get(u, 0) for u in unit.tolist()), dtype=np.int8, count=unit.size)
        return self.due_codes(epoch, amount, unit)

    def due_codes(self, epoch: np.ndarray, amount: np.ndarray, code: np.ndarray) -> np.ndarray:
        epoch = np.asarray(epoch, dtype=np.int64)
        amount = np.asarray(amount, dtype=np.float64)
        code = np.asarray(code, dtype=np.int8)
        out = np.full(epoch.shape, -1, dtype=np.int64)
        ok = np.isfinite(amount) & (amount > 0)
        sel = ok & (code == 1)
        out[sel] = epoch[sel] + np.round(amount[sel] * 3600).astype(np.int64)
        sel = ok & (code >= 2)
        if sel.any():
            hours = np.where(code[sel] == 3, amount[sel] * workcal.HOURS_PER_DAY, amount[sel])
            out[sel] = self.add_working_seconds(epoch[sel], hours * 3600)
        return out


def iso_local(epoch, *, as_bytes: bool = False) -> list[str | None]:
    """UTC seconds → the replica's ISO text (``YYYY-MM-DDTHH:MM:SS+08:00``); negative → ``None``.

    Digits are computed with integer arithmetic on the whole array (civil-from-days), several
    times faster than ``numpy.datetime_as_string`` plus string concatenation. ``as_bytes``: the
    ASCII texts as a numpy ``S25`` array instead (negative epochs not blanked)."""
    epoch = np.asarray(epoch, dtype=np.int64)
    n = epoch.size
    if n == 0:
        return []
    neg = epoch < 0
    local = np.where(neg, 0, epoch) + OFFSET_S
    days = local // DAY_S
    sod = local - days * DAY_S
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    hour, minute, second = sod // 3600, (sod // 60) % 60, sod % 60
    buf = np.empty((n, 25), dtype=np.uint8)
    buf[:, 0] = 48 + year // 1000
    buf[:, 1] = 48 + (year // 100) % 10
    buf[:, 2] = 48 + (year // 10) % 10
    buf[:, 3] = 48 + year % 10
    for col, value in ((5, month), (8, day), (11, hour), (14, minute), (17, second)):
        buf[:, col] = 48 + value // 10
        buf[:, col + 1] = 48 + value % 10
    buf[:, 4] = buf[:, 7] = ord("-")
    buf[:, 10] = ord("T")
    buf[:, 13] = buf[:, 16] = buf[:, 22] = ord(":")
    buf[:, 19:25] = np.frombuffer(b"+08:00", dtype=np.uint8)
    buf[:, 22] = ord(":")
    if as_bytes:
        return buf.view("S25").ravel()
    out = buf.view("S25").ravel().astype("U25").tolist()
    if neg.any():
        for i in np.flatnonzero(neg).tolist():
            out[i] = None
    return out
