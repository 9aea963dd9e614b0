"""Demo data for the grid robot (issue 8): a care list, care visits and patrol records, recent
grid-leader positions, and one planted case for every robot rule.

Planting re-uses events the generator already wrote (their category, place, reporter or
deadline are changed; their timestamps and log chain stay as they were), so the demo's event
count and its audit trail stay consistent. What was planted is recorded in ``meta`` under
``robot_demo_cases`` (JSON), which the tests and a curious user can read:
``{"hotspot": {"events": [...]}, "hotspot_unclassified": {...}, "repeat": {...}, "patrol_gap":
{"grid": id}, "patrol_away": {"person": id}, "care_gap": {"care": id}, "deadline_risk": {...},
"anomaly": {...}, "device_silent": {"device": uid}, "device_chatter": {"device": uid}}``.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3

import numpy as np
import orjson
import shapely

from app import timeutil, workcal
from db.demo import texts
from db.ids import ulid_at
from db.spatial import sample_points

CARE_KINDS = (("elderly_alone", 0.55, 7), ("disabled", 0.2, 14), ("hardship", 0.15, 14), ("minor", 0.1, 14))
POSITION_SLOTS = 12
"""Grid-leader positions per person, every 30 working minutes back from the demo's end."""
OPEN_SQL = "status NOT IN ('rejected', 'merged')"
M_DEG = 1 / 111_000


def _iso(t: dt.datetime) -> str:
    return timeutil.to_iso(t)


def _working_slots(until: dt.datetime, n: int, is_workday) -> list[dt.datetime]:
    """The last ``n`` half-hour marks in working time before ``until``, oldest first."""
    out: list[dt.datetime] = []
    t = until.replace(minute=0 if until.minute < 30 else 30, second=0, microsecond=0)
    for _ in range(24 * 2 * 30):
        if len(out) >= n:
            break
        if is_workday(t.date()) and any(a <= t.time() <= b for a, b in workcal.PERIODS):
            out.append(t)
        t -= dt.timedelta(minutes=30)
    return sorted(out)


def _pick_events(conn, sql: str, params: tuple, n: int, used: set[int]) -> list[int]:
    ids = [r[0] for r in conn.execute(sql, params) if r[0] not in used][:n]
    used.update(ids)
    return ids


def _move(conn, ids: list[int], grid: sqlite3.Row, points: list[tuple[float, float]], street_names: dict,
          **changes) -> None:  # fmt: skip
    for k, (eid, (x, y)) in enumerate(zip(ids, points, strict=False)):
        cols = {"lon": x, "lat": y, "grid_id": grid["id"], "community_code": grid["community_code"],
                "street_code": grid["street_code"],
                "address": f"崇川区{street_names.get(grid['street_code'], '')}{grid['name']}{k + 1}号附近"}  # fmt: skip
        cols.update(changes)
        sets = ", ".join(f"{k} = ?" for k in cols)
        conn.execute(f"UPDATE events SET {sets} WHERE id = ?", (*cols.values(), eid))


def _cluster_points(geom, n: int, radius_m: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """``n`` points within ``radius_m`` of a centre well inside ``geom`` (all inside it)."""
    inner = geom.buffer(-radius_m * M_DEG * 1.5)
    base = inner if not inner.is_empty else geom
    for _ in range(50):
        cx, cy = sample_points(base, 1, rng)
        pts = []
        for _k in range(n):
            ang, r = rng.random() * 2 * np.pi, rng.random() * radius_m * M_DEG
            pts.append((round(float(cx[0]) + r * np.cos(ang) / 0.848, 6), round(float(cy[0]) + r * np.sin(ang), 6)))
        if all(geom.covers(shapely.Point(p)) for p in pts):
            return pts
    return [(round(float(cx[0]), 6), round(float(cy[0]), 6))] * n


def plant_robot_cases(conn: sqlite3.Connection, until: dt.datetime, seed: int) -> dict:
    """Write the robot's demo tables and plant its cases (inside the caller's transaction)."""
    from db import calendar

    prng = random.Random(seed + 808)
    rng = np.random.default_rng(seed + 808)
    until_ms = int(until.timestamp() * 1000)
    until_iso = _iso(until)
    is_workday = calendar.is_workday_fn(conn)
    grids = {r["id"]: r for r in conn.execute(
        "SELECT id, name, kind, community_code, street_code, lon, lat, geometry FROM grids ORDER BY id")}  # fmt: skip
    street_names = dict(conn.execute("SELECT code, name FROM streets").fetchall())
    leaders = {r[1]: r[0] for r in conn.execute(
        "SELECT id, grid_id FROM people WHERE role = 'grid_leader' ORDER BY id")}  # fmt: skip
    comprehensive = [g for g in grids.values() if g["kind"] == "comprehensive"]
    shape_cache: dict[str, object] = {}

    def geom(gid: str):
        if gid not in shape_cache:
            shape_cache[gid] = shapely.from_geojson(grids[gid]["geometry"])
        return shape_cache[gid]

    cases: dict[str, dict] = {}
    used: set[int] = set()
    day = dt.timedelta(days=1)

    # -- patrol gap: a comprehensive grid with no grid-app report in 7 days gets no patrol record
    recent_app = {r[0] for r in conn.execute(
        "SELECT DISTINCT grid_id FROM events WHERE source = 'grid_app' AND reported_at >= ?",
        (_iso(until - 8 * day),))}  # fmt: skip
    quiet = [g["id"] for g in comprehensive if g["id"] not in recent_app]
    silent_grid = quiet[prng.randrange(len(quiet))] if quiet else None
    cases["patrol_gap"] = {"grid": silent_grid}
    others = [g for g in comprehensive if g["id"] != silent_grid]  # the other cases stay out of it

    # -- care list and visits ------------------------------------------------------------------
    care_rows, visit_rows = [], []
    kinds = [k[0] for k in CARE_KINDS]
    weights = [k[1] for k in CARE_KINDS]
    period = {k[0]: k[2] for k in CARE_KINDS}
    cid = 0
    for g in others:
        n_here = prng.choice((1, 1, 2, 3))
        xs, ys = sample_points(geom(g["id"]), n_here, rng)
        for j in range(n_here):
            cid += 1
            kind = prng.choices(kinds, weights)[0]
            x, y = xs[j : j + 1], ys[j : j + 1]
            care_rows.append(
                (cid, ulid_at(until_ms - 86400_000 * 200 + cid, prng), texts.fake_name(prng), texts.fake_phone(prng),
                 kind, f"崇川区{street_names.get(g['street_code'], '')}{g['name']}{prng.randint(1, 30)}幢",
                 g["id"], g["street_code"], round(float(x[0]), 6), round(float(y[0]), 6), period[kind],
                 _iso(until - 200 * day))
            )  # fmt: skip
            every = period[kind]
            last = until - dt.timedelta(hours=prng.uniform(2, (every - 1) * 24))
            for t in (last - every * day, last):
                visit_rows.append(("care_visit", cid, g["id"], leaders.get(g["id"]), _iso(t.replace(microsecond=0))))
    # the planted case: an elderly resident living alone, last visited three weeks ago
    planted = next(r for r in care_rows if r[4] == "elderly_alone" and r[6] != silent_grid)
    visit_rows = [v for v in visit_rows if v[1] != planted[0]]
    visit_rows.append(("care_visit", planted[0], planted[6], leaders.get(planted[6]), _iso(until - 21 * day)))
    cases["care_gap"] = {"care": planted[0]}
    for g in grids.values():
        if g["id"] == silent_grid:
            continue
        for k in range(4):
            t = until - dt.timedelta(days=2 * k, hours=prng.uniform(0.5, 20))
            visit_rows.append(("patrol", None, g["id"], leaders.get(g["id"]), _iso(t.replace(microsecond=0))))
    conn.executemany(
        "INSERT INTO care_list (id, uid, name, phone, kind, address, grid_id, street_code, lon, lat, visit_every_days, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", care_rows)  # fmt: skip
    visit_rows.sort(key=lambda v: v[4])
    conn.executemany(
        "INSERT INTO visits (uid, kind, care_id, grid_id, person_id, at, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(ulid_at(int(timeutil.parse(v[4]).timestamp() * 1000), prng), *v, "演示走访记录") for v in visit_rows],
    )

    # -- grid-leader positions; one leader away from the grid for ~5.5 working hours -------------
    slots = _working_slots(until, POSITION_SLOTS, is_workday)
    people_pos = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT id, lon, lat FROM people WHERE role = 'grid_leader'")}  # fmt: skip
    away_grid = others[len(others) // 3]["id"]
    elsewhere = next(g for g in others if g["street_code"] == grids[away_grid]["street_code"]
                     and g["id"] != away_grid)  # fmt: skip
    away_person = leaders[away_grid]
    pos_rows = []
    for gid, pid in leaders.items():
        lon, lat = people_pos.get(pid, (None, None))
        if lon is None:
            continue
        for t in slots:
            if pid == away_person:
                pos_rows.append((pid, _iso(t), elsewhere["lon"], elsewhere["lat"], elsewhere["id"]))
            else:
                pos_rows.append((pid, _iso(t), lon, lat, gid))
    pos_rows.sort(key=lambda r: (r[1], r[0]))
    conn.executemany("INSERT INTO leader_positions (person_id, at, lon, lat, grid_id) VALUES (?, ?, ?, ?, ?)", pos_rows)
    if slots:
        conn.execute("UPDATE people SET lon = ?, lat = ?, position_at = ? WHERE id = ?",
                     (elsewhere["lon"], elsewhere["lat"], _iso(slots[-1]), away_person))  # fmt: skip
    cases["patrol_away"] = {"person": away_person, "grid": away_grid}

    # -- hot spot: four events of one category within 40 m in the last three days ----------------
    cat_name = dict(conn.execute("SELECT code, name_zh FROM categories").fetchall())
    window = (_iso(until - 3 * day), until_iso)
    hot_grid = grids[others[(2 * len(others)) // 3]["id"]]
    ids = _pick_events(conn, f"SELECT id FROM events WHERE reported_at >= ? AND reported_at <= ? AND {OPEN_SQL} "
                       "AND source <> 'iot' ORDER BY id", window, 4, used)  # fmt: skip
    _move(conn, ids, hot_grid, _cluster_points(geom(hot_grid["id"]), len(ids), 40, rng), street_names,
          category="ORDER.VENDOR", title=cat_name["ORDER.VENDOR"])  # fmt: skip
    cases["hotspot"] = {"events": ids, "category": "ORDER.VENDOR", "grid": hot_grid["id"]}

    # -- 待分类 cluster: three hotline records with the same unmapped source code ------------------
    unc_grid = grids[others[len(others) // 5]["id"]]
    ids = _pick_events(conn, f"SELECT id FROM events WHERE reported_at >= ? AND reported_at <= ? AND {OPEN_SQL} "
                       "AND source = 'hotline_12345' ORDER BY id", (_iso(until - 6 * day), until_iso), 3, used)  # fmt: skip
    _move(conn, ids, unc_grid, _cluster_points(geom(unc_grid["id"]), len(ids), 40, rng), street_names,
          category="UNCLASSIFIED", title="待分类诉求", source_code="QT-0917", needs_classification=1)  # fmt: skip
    cases["hotspot_unclassified"] = {"events": ids, "source": "hotline_12345", "source_code": "QT-0917"}

    # -- repeat demand: one caller, four hotline calls in three weeks -----------------------------
    ids = _pick_events(conn, f"SELECT id FROM events WHERE reported_at >= ? AND reported_at <= ? AND {OPEN_SQL} "
                       "AND source = 'hotline_12345' ORDER BY reported_at DESC", (_iso(until - 20 * day), until_iso),
                       4, used)  # fmt: skip
    phone, name = "13962809170", texts.fake_name(prng)
    for eid in ids:
        conn.execute("UPDATE events SET reporter_phone = ?, reporter_name = ? WHERE id = ?", (phone, name, eid))
    cases["repeat"] = {"events": ids}

    # -- anomaly: six events of a rare category in one grid today -------------------------------
    day0 = until.replace(hour=0, minute=0, second=0, microsecond=0)
    an_grid = grids[others[len(others) // 2]["id"]]
    ids = _pick_events(conn, f"SELECT id FROM events WHERE reported_at >= ? AND reported_at <= ? AND {OPEN_SQL} "
                       "AND source <> 'iot' ORDER BY id", (_iso(day0), until_iso), 6, used)  # fmt: skip
    xs, ys = sample_points(geom(an_grid["id"]), len(ids), rng)
    _move(conn, ids, an_grid, list(zip(xs.tolist(), ys.tolist(), strict=True)), street_names,
          category="SAFETY.GAS", title=cat_name["SAFETY.GAS"])  # fmt: skip
    cases["anomaly"] = {"events": ids, "grid": an_grid["id"], "category": "SAFETY.GAS"}

    # -- deadline risk: two dispatched events of a slow category due in two hours ----------------
    slow = conn.execute(
        "SELECT category, assignee_code FROM events WHERE handled_at IS NOT NULL AND dispatched_at IS NOT NULL "
        "AND reported_at >= ? AND drill_id IS NULL GROUP BY category, assignee_code HAVING count(*) >= 8 AND "
        "avg((julianday(substr(handled_at, 1, 19)) - julianday(substr(dispatched_at, 1, 19))) * 24) >= 12 "
        "ORDER BY count(*) DESC", (_iso(until - 30 * day),)).fetchall()  # fmt: skip
    ids = []
    for cat, dept in slow:
        ids += _pick_events(conn, "SELECT id FROM events WHERE status IN ('dispatched', 'acknowledged', 'on_site') "
                            "AND category = ? AND assignee_code = ? AND dispatched_at >= ? ORDER BY id",
                            (cat, dept, _iso(until - 2 * day)), 2 - len(ids), used)  # fmt: skip
        if len(ids) >= 2:
            break
    conn.executemany("UPDATE events SET handle_due_at = ? WHERE id = ?",
                     [(_iso(until + dt.timedelta(hours=2)), eid) for eid in ids])  # fmt: skip
    cases["deadline_risk"] = {"events": ids}

    # -- device health: a camera silent for four days, a door sensor chattering -----------------
    cam = conn.execute("SELECT uid FROM devices WHERE kind = 'camera' AND status = 'online' ORDER BY id LIMIT 1 OFFSET 17").fetchone()[0]
    conn.execute("UPDATE devices SET last_seen_at = ?, status = 'offline' WHERE uid = ?", (_iso(until - 4 * day), cam))
    door = conn.execute("SELECT uid FROM devices WHERE kind = 'door_sensor' AND status = 'online' ORDER BY id LIMIT 1 OFFSET 5").fetchone()[0]
    readings = []
    for k in range(30):
        t = until - dt.timedelta(minutes=40 * k + 7)
        readings.append((door, f"demo-chatter-{k:03d}", "door_open", _iso(t), 1.0, "1", 1, 0, 1))
    conn.executemany(
        "INSERT INTO device_readings (device_uid, record_id, type, at, value, raw_value, valid, invalid_reason, "
        "is_alarm) VALUES (?, ?, ?, ?, ?, ?, ?, NULLIF(?, 0), ?)", readings)  # fmt: skip
    conn.execute("UPDATE devices SET last_seen_at = ? WHERE uid = ?", (readings[0][3], door))
    cases["device_silent"] = {"device": cam}
    cases["device_chatter"] = {"device": door}
    conn.execute("INSERT INTO meta (key, value) VALUES ('robot_demo_cases', ?)", (orjson.dumps(cases).decode(),))
    return cases
