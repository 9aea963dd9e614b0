"""Yangtze ecology (长江生态眼) storage helpers (Qt-free).

Readings are keyed by station and *hour* (hours since the Unix epoch, UTC; see
:func:`hour_of` / :func:`hour_iso`).  Each stored reading carries an ``invalid`` bit mask over
:data:`app.gb3838.PARAMETERS` (bit 0 = DO … bit 4 = turbidity): a missing or impossible value is
kept as received (NULL when missing) and flagged, so it is never classified and never alerts.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Mapping

import numpy as np

from app import gb3838
from app.timeutil import TZ

BITS = {p: 1 << i for i, p in enumerate(gb3838.PARAMETERS)}
READING_COLUMNS = ("station_id", "hour", *gb3838.PARAMETERS, "invalid")


def hour_of(ts: str | dt.datetime) -> int:
    """Hours since the epoch of an ISO timestamp or aware datetime (floored)."""
    if isinstance(ts, str):
        ts = dt.datetime.fromisoformat(ts)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=TZ)
    return int(ts.timestamp() // 3600)


def hour_iso(hour: int) -> str:
    """The replica's timestamp text (+08:00) of an hour key."""
    return dt.datetime.fromtimestamp(hour * 3600, TZ).isoformat(timespec="seconds")


def invalid_mask(reading: Mapping[str, float | None]) -> int:
    mask = 0
    for p, bit in BITS.items():
        if gb3838.invalid_reason(p, reading.get(p)) is not None:
            mask |= bit
    return mask


def invalid_mask_arrays(values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Vectorised :func:`invalid_mask` for columns of equal length (NaN = missing)."""
    n = len(next(iter(values.values())))
    mask = np.zeros(n, dtype=np.int64)
    for p, bit in BITS.items():
        v = np.asarray(values[p], dtype=float)
        lo, hi = gb3838.VALID_RANGE[p]
        bad = ~(np.isfinite(v) & (v >= lo) & (v <= hi))
        mask[bad] |= bit
    return mask


def insert_readings(conn: sqlite3.Connection, rows: Iterable[Mapping]) -> int:
    """Insert (or replace) readings ``{"station_id", "hour" | "at", "do", …}`` inside the caller's
    transaction, flagging invalid values; returns the number written."""
    out = []
    for r in rows:
        hour = r["hour"] if "hour" in r else hour_of(r["at"])
        vals = []
        for p in gb3838.PARAMETERS:
            v = r.get(p)
            try:
                vals.append(None if v is None else float(v))
            except (TypeError, ValueError):
                vals.append(None)
        out.append((int(r["station_id"]), int(hour), *vals, invalid_mask(r)))
    marks = ", ".join("?" * len(READING_COLUMNS))
    conn.executemany(f"INSERT OR REPLACE INTO eco_readings ({', '.join(READING_COLUMNS)}) VALUES ({marks})", out)
    return len(out)


def add_readings(replica, rows: Iterable[Mapping]) -> int:
    """:func:`insert_readings` in one write transaction."""
    with replica.write("eco_readings") as conn:
        return insert_readings(conn, rows)


def station_series(conn: sqlite3.Connection, station_id: int, start_hour: int, end_hour: int) -> dict[str, np.ndarray]:
    """One station's readings in [start_hour, end_hour) as numpy columns (NaN where NULL):
    ``hour`` (int64), one float64 array per parameter, ``invalid`` (int64 mask)."""
    cur = conn.cursor()
    cur.row_factory = None
    rows = cur.execute(
        "SELECT hour, do, nh3n, cod, ph, turbidity, invalid FROM eco_readings "
        "WHERE station_id = ? AND hour >= ? AND hour < ? ORDER BY hour",
        (int(station_id), int(start_hour), int(end_hour)),
    ).fetchall()
    if not rows:
        empty = np.zeros(0)
        return {"hour": empty.astype(np.int64), **{p: empty for p in gb3838.PARAMETERS},
                "invalid": empty.astype(np.int64)}  # fmt: skip
    arr = np.array(rows, dtype=float)  # None → nan
    out = {"hour": arr[:, 0].astype(np.int64), "invalid": arr[:, 6].astype(np.int64)}
    for i, p in enumerate(gb3838.PARAMETERS, start=1):
        out[p] = arr[:, i]
    return out
