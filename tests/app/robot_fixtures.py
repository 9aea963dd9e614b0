"""Hand-built replicas for the robot rules: one street, two square grids near the district
centre, the shipped catalogue, a grid leader per grid, a few devices; events written directly."""

from __future__ import annotations

import datetime as dt
import itertools

from db import catalogue
from db.replica import open_replica

TZ8 = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=TZ8)  # a Friday, in working time
STREET = "320613002"
G1, G2 = "G1", "G2"
LON0, LAT0 = 120.86, 32.01
DEG_PER_M_LAT = 1 / 110_574
_ids = itertools.count(1)


def iso(t: dt.datetime) -> str:
    return t.astimezone(TZ8).replace(microsecond=0).isoformat()


def square(x0, y0, d=0.01) -> str:
    return (f'{{"type":"Polygon","coordinates":[[[{x0},{y0}],[{x0 + d},{y0}],[{x0 + d},{y0 + d}],'
            f'[{x0},{y0 + d}],[{x0},{y0}]]]}}')  # fmt: skip


def build(path):
    """A migrated replica with the tiny organisation; returns the open Replica."""
    r = open_replica(path)
    with r.write() as c:
        c.execute("INSERT INTO streets (code, name, geometry, lon, lat) VALUES (?, '和平桥街道', ?, ?, ?)",
                  (STREET, square(LON0, LAT0, 0.02), LON0 + 0.01, LAT0 + 0.005))  # fmt: skip
        c.execute("INSERT INTO communities (code, name, street_code, geometry) VALUES ('C1', '测试社区', ?, ?)",
                  (STREET, square(LON0, LAT0, 0.02)))  # fmt: skip
        for gid, x0 in ((G1, LON0), (G2, LON0 + 0.01)):
            c.execute(
                "INSERT INTO grids (id, name, kind, community_code, street_code, population, households, lon, lat, "
                "min_lon, min_lat, max_lon, max_lat, geometry) VALUES (?, ?, 'comprehensive', 'C1', ?, 1000, 400, "
                "?, ?, ?, ?, ?, ?, ?)",
                (gid, f"测试{gid}网格", STREET, x0 + 0.005, LAT0 + 0.005, x0, LAT0, x0 + 0.01, LAT0 + 0.01,
                 square(x0, LAT0)),
            )  # fmt: skip
        cols = ("code", "parent", "name_zh", "name_en", "class", "default_department", "response_limit_min",
                "handle_limit", "handle_unit", "arrival_clock")  # fmt: skip
        c.executemany(f"INSERT INTO categories ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                      [tuple(cat.get(k) for k in cols) for cat in catalogue.load_categories()])  # fmt: skip
        c.executemany("INSERT INTO departments (code, name) VALUES (?, ?)",
                      [(d["code"], d["name"]) for d in catalogue.load_departments()])  # fmt: skip
        for pid, gid in ((1, G1), (2, G2)):
            c.execute(
                "INSERT INTO people (id, uid, name, role, position, grid_id, street_code, lon, lat) "
                "VALUES (?, ?, ?, 'grid_leader', '网格长', ?, ?, ?, ?)",
                (pid, f"P{pid}", f"网格长{pid}", gid, STREET, LON0 + 0.005 if gid == G1 else LON0 + 0.015, LAT0 + 0.005),
            )  # fmt: skip
    return r


def add_event(r, *, at: dt.datetime, category="ENV.GARBAGE", grid=G1, dx_m=0.0, dy_m=0.0, source="grid_app",
              status="reported", drill_id=None, phone=None, address=None, source_code=None, dispatched_at=None,
              handled_at=None, due=None, assignee="SANITATION") -> int:  # fmt: skip
    """One event at (grid centre + dx, dy metres)."""
    eid = next(_ids) + 10_000
    x0 = LON0 + 0.005 if grid == G1 else LON0 + 0.015
    lon = x0 + dx_m * DEG_PER_M_LAT / 0.848
    lat = LAT0 + 0.005 + dy_m * DEG_PER_M_LAT
    with r.write("events") as c:
        if drill_id is not None:
            c.execute("INSERT OR IGNORE INTO drills (id, uid, title, theme, level, starts_at) "
                      "VALUES (?, ?, '演练', 'fire', 'grid', ?)", (drill_id, f"D{drill_id}", iso(at)))  # fmt: skip
        cur = c.execute(
            "INSERT INTO events (id, uid, source, external_id, category, class, priority, title, lon, lat, address, "
            "grid_id, community_code, street_code, status, reported_at, dispatched_at, handled_at, handle_due_at, "
            "assignee_kind, assignee_code, drill_id, reporter_phone, source_code, needs_classification, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 'ordinary', 3, '测试事件', ?, ?, ?, ?, 'C1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (None, f"U{eid}", source, f"X{eid}", category, round(lon, 7), round(lat, 7), address, grid, STREET, status,
             iso(at), iso(dispatched_at) if dispatched_at else None, iso(handled_at) if handled_at else None,
             iso(due) if due else None, "department" if dispatched_at else None, assignee if dispatched_at else None,
             drill_id, phone, source_code, 1 if category == "UNCLASSIFIED" else 0, iso(at)),
        )  # fmt: skip
        return int(cur.lastrowid)


def patrol_everywhere(r, at: dt.datetime) -> None:
    """A patrol record in every grid (keeps the patrol-gap rule quiet)."""
    with r.write() as c:
        for gid in (G1, G2):
            c.execute("INSERT INTO visits (uid, kind, grid_id, person_id, at) VALUES (?, 'patrol', ?, 1, ?)",
                      (f"V{gid}{at.timestamp()}", gid, iso(at)))  # fmt: skip
