"""Time window and playback data for the map (Qt-free).

- :func:`events_in_window` — the events layer for a time window (events reported in it).
- :class:`Playback` — a chosen day replayed: at simulated time ``t`` an event is on the map once
  reported, with the lifecycle status it had at ``t`` (from its stage timestamps); station
  colours follow the hourly class.  :meth:`Playback.frame` returns only what changed since the
  previous frame, as an ``onemap.applyDelta`` payload (no page reload).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np

from app import gb3838, timeutil
from db import ecology as eco_db
from layers import command

STAGES = (
    ("reported", "reported_at"), ("accepted", "accepted_at"), ("dispatched", "dispatched_at"),
    ("acknowledged", "acknowledged_at"), ("on_site", "on_site_at"), ("handled", "handled_at"),
    ("verified", "verified_at"), ("closed", "closed_at"), ("rejected", "rejected_at"),
)  # fmt: skip
TERMINAL = frozenset({"closed", "rejected", "merged"})
SPEEDS = (60, 300, 900, 3600)
"""Simulated seconds per real second offered by the console (1 min/s … 1 h/s)."""


def events_in_window(conn: sqlite3.Connection, start: str, end: str, scope: str | None = None,
                     limit: int = command.EVENTS_LIMIT) -> dict:  # fmt: skip
    """Events reported in [start, end) as the events layer's FeatureCollection (newest first up to
    ``limit``, important ones drawn on top)."""
    sql = (f"SELECT {command._EVENT_COLS} FROM events e WHERE e.reported_at >= ? AND e.reported_at < ? "
           "AND e.lon IS NOT NULL AND e.lat IS NOT NULL")  # fmt: skip
    args: list = [start, end]
    if scope:
        sql += " AND e.street_code = ?"
        args.append(scope)
    sql += " ORDER BY e.reported_at DESC LIMIT ?"
    args.append(int(limit))
    cur = conn.cursor()
    cur.row_factory = None
    feats = [command.event_feature(r) for r in cur.execute(sql, args)]
    feats.sort(key=command._event_sort_key)
    return {"type": "FeatureCollection", "features": feats, "truncated": len(feats) >= limit, "since": start}


def _epoch(ts: str | None) -> float:
    if not ts:
        return np.inf
    return dt.datetime.fromisoformat(ts).timestamp()


class Playback:
    """One day replayed.  ``frame(t)`` (epoch seconds) → delta since the previous frame."""

    def __init__(self, conn: sqlite3.Connection, day: dt.date, scope: str | None = None) -> None:
        start = dt.datetime.combine(day, dt.time(0), timeutil.TZ)
        self.start = start.timestamp()
        self.end = (start + dt.timedelta(days=1)).timestamp()
        s_iso, e_iso = timeutil.to_iso(start), timeutil.to_iso(start + dt.timedelta(days=1))
        cols = ", ".join(f"e.{c}" for _, c in STAGES)
        sql = (
            f"SELECT {command._EVENT_COLS}, {cols} FROM events e WHERE e.reported_at < ? "
            "AND (e.reported_at >= ? OR e.status NOT IN ('closed', 'rejected', 'merged') "
            "OR coalesce(e.closed_at, e.rejected_at, e.updated_at) >= ?) AND e.lon IS NOT NULL AND e.drill_id IS NULL"
        )
        args: list = [e_iso, s_iso, s_iso]
        if scope:
            sql += " AND e.street_code = ?"
            args.append(scope)
        cur = conn.cursor()
        cur.row_factory = None
        rows = cur.execute(sql + " ORDER BY e.reported_at", args).fetchall()
        n0 = command._N_EVENT_COLS
        self.features = [command.event_feature(r[:n0]) for r in rows]
        self.stage_times = np.array([[_epoch(r[n0 + i]) for i in range(len(STAGES))] for r in rows]).reshape(
            len(rows), len(STAGES))
        self.final_status = [r[4] for r in rows]
        self._shown = np.zeros(len(rows), dtype=bool)
        self._stage = np.full(len(rows), -1, dtype=np.int16)
        # station classes for each hour of the day
        self.station_ids = [r[0] for r in conn.execute("SELECT id FROM eco_stations ORDER BY id")] if _has(conn, "eco_stations") else []
        self.hours = np.arange(int(self.start // 3600), int(self.end // 3600))
        self.station_cls: dict[int, np.ndarray] = {}
        for sid in self.station_ids:
            ser = eco_db.station_series(conn, sid, int(self.hours[0]) - 48, int(self.hours[-1]) + 1)
            cls = np.zeros(ser["hour"].size, dtype=np.int8)
            for p in gb3838.CLASSIFIED:
                v = ser[p].copy()
                v[(ser["invalid"] & eco_db.BITS[p]) != 0] = np.nan
                cls = np.maximum(cls, gb3838.classify_array(p, v))
            self.station_cls[sid] = (ser["hour"], cls)
        self._hour = None

    @property
    def size(self) -> int:
        return len(self.features)

    def reset(self) -> None:
        self._shown[:] = False
        self._stage[:] = -1
        self._hour = None

    def frame(self, t: float) -> dict:
        """The applyDelta payload that brings the map from the previous frame to time ``t``."""
        st = self.stage_times
        shown = st[:, 0] <= t
        reached = st <= t
        # index of the latest stage reached (stages are in lifecycle order)
        stage = np.where(shown, len(STAGES) - 1 - np.argmax(reached[:, ::-1], axis=1), -1).astype(np.int16)
        changed = np.nonzero((shown != self._shown) | (stage != self._stage))[0]
        upsert, remove = [], []
        for i in changed.tolist():
            if not shown[i]:
                remove.append(self.features[i]["id"])
                continue
            f = self.features[i]
            status = STAGES[int(stage[i])][0]
            props = dict(f["properties"], status=status, open=status not in TERMINAL, hdue=None, adue=None)
            upsert.append({"type": "Feature", "id": f["id"], "geometry": f["geometry"], "properties": props})
        self._shown, self._stage = shown, stage
        delta: dict = {}
        if upsert or remove:
            delta["events"] = {"upsert": upsert, "remove": remove}
        hour = int(t // 3600)
        if hour != self._hour and self.station_ids:
            props = {}
            for sid, (hours, cls) in self.station_cls.items():
                k = int(np.searchsorted(hours, hour, side="right")) - 1
                c = int(cls[k]) if k >= 0 else 0
                props[sid] = {"cls": c, "cls_label": gb3838.class_label(c or None), "at": eco_db.hour_iso(hour)}
            delta["eco_stations"] = {"props": props}
            self._hour = hour
        return delta

    def visible_count(self) -> int:
        return int(self._shown.sum())


def _has(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None
