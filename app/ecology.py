"""Yangtze ecology read models for the side panel (Qt-free)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from app import gb3838
from db import ecology as eco_db
from layers.ecology import station_classes_at


def station_list(conn: sqlite3.Connection, hour: int | None = None) -> list[dict]:
    """Stations with the class of their latest reading (at or before ``hour``)."""
    classes = station_classes_at(conn, hour)
    out = []
    for r in conn.execute(
        "SELECT s.id, s.code, s.name, s.lon, s.lat, s.target_class, s.segment_id, g.name AS grid "
        "FROM eco_stations s LEFT JOIN grids g ON g.id = s.grid_id ORDER BY s.id"
    ):
        c = classes.get(r["id"], {})
        d = dict(r)
        d["cls"] = c.get("cls", 0)
        d["at"] = eco_db.hour_iso(c["hour"]) if c.get("hour") is not None else None
        d["invalid"] = c.get("invalid", True)
        d["ph_ok"] = c.get("ph_ok")
        out.append(d)
    return out


@dataclass
class StationSeries:
    """One station's series ready to plot: x in epoch seconds, NaN where invalid/missing."""

    station_id: int
    x: np.ndarray
    values: dict[str, np.ndarray]
    invalid: dict[str, np.ndarray]
    """parameter → boolean array: the reading was flagged invalid (shown as such, not plotted)."""
    classes: np.ndarray
    """Station class per hour (0 = no valid classified value)."""

    @property
    def n(self) -> int:
        return int(self.x.size)


def station_series(conn: sqlite3.Connection, station_id: int, start_hour: int, end_hour: int) -> StationSeries:
    raw = eco_db.station_series(conn, station_id, start_hour, end_hour)
    x = raw["hour"].astype(np.float64) * 3600.0
    values, invalid = {}, {}
    for p, bit in eco_db.BITS.items():
        bad = (raw["invalid"] & bit) != 0
        v = raw[p].copy()
        v[bad] = np.nan
        values[p], invalid[p] = v, bad
    cls = np.zeros(x.size, dtype=np.int8)
    for p in gb3838.CLASSIFIED:
        cls = np.maximum(cls, gb3838.classify_array(p, values[p]))
    return StationSeries(station_id, x, values, invalid, cls)


def alert_history(conn: sqlite3.Connection, *, since: str | None = None, until: str | None = None,
                  limit: int = 200) -> list[dict]:  # fmt: skip
    """Alerts (breach and detection episodes) with their event, newest first."""
    sql = (
        "SELECT a.id, a.kind, a.parameter, a.started_at, a.last_at, a.peak, a.peak_class, a.event_id, "
        "coalesce(s.code, c.code) AS site, coalesce(s.name, c.name) AS site_name, e.status "
        "FROM eco_alerts a LEFT JOIN eco_stations s ON s.id = a.station_id "
        "LEFT JOIN eco_cameras c ON c.id = a.camera_id LEFT JOIN events e ON e.id = a.event_id WHERE 1=1"
    )
    args: list = []
    if since:
        sql += " AND a.last_at >= ?"
        args.append(since)
    if until:
        sql += " AND a.started_at <= ?"
        args.append(until)
    sql += " ORDER BY a.started_at DESC LIMIT ?"
    args.append(int(limit))
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    except sqlite3.OperationalError:
        return []


def latest_hour(conn: sqlite3.Connection) -> int | None:
    r = conn.execute("SELECT max(hour) FROM eco_readings").fetchone()
    return r[0] if r else None
