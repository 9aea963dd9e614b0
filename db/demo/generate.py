"""Build the synthetic demo replica (演示数据) from the shipped geodata and catalogue.

The replica is generated into a temporary file next to the target and moved into
place only when complete, so an interrupted run never leaves half a replica and an
existing replica is never replaced without ``force``.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from app.timeutil import TZ, now, to_iso
from db import catalogue, kpi_rollups
from db.demo import events as demo_events
from db.demo import org
from db.demo.geography import build_geography
from db.ids import ulid_at
from db.replica import Replica, ReplicaError, open_replica
from db.spatial import to_geojson

Progress = Callable[[float, str], None]
DEMO_LABEL = "演示数据（合成，非真实业务数据）"


@dataclass
class DemoOptions:
    seed: int = 20241
    until: dt.datetime | None = None
    events: int = 100_000
    days: int = 90


def _noop(frac: float, text: str) -> None:
    pass


def _insert(conn, table: str, columns: tuple[str, ...] | list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn.executemany(sql, rows)


def _secondary_sql(conn, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(type, name, sql) of the indexes and FTS triggers to drop during a bulk load."""
    marks = ",".join("?" * len(tables))
    rows = conn.execute(
        f"SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND sql IS NOT NULL "
        "AND (type = 'index' OR (type = 'trigger' AND (name LIKE 'events_fts_%' OR name LIKE 'kpi_%')))",
        tables,
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def generate_demo_file(path: str | os.PathLike, opts: DemoOptions, *, force: bool = False, progress: Progress | None = None) -> str:
    """Generate the demo into ``path`` (atomically replaced). Returns a one-line summary."""
    path = Path(path)
    if path.exists() and path.stat().st_size > 0:
        existing = open_replica(path)  # raises ReplicaError for corrupt / foreign / newer files
        try:
            empty = existing.is_empty()
        finally:
            existing.close()
        if not empty and not force:
            raise ReplicaError(f"{path}: already holds data; pass --force to replace it with the demo")
    tmp = path.with_name(path.name + ".generating")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        if p.exists():
            p.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    replica = open_replica(tmp)
    try:
        summary = generate_into(replica, opts, progress or _noop)
    except BaseException:
        replica.close()
        tmp.unlink(missing_ok=True)
        raise
    replica.close()
    for p in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            p.unlink()
    os.replace(tmp, path)
    return summary


def generate_into(replica: Replica, opts: DemoOptions, progress: Progress) -> str:
    """Fill an empty, migrated replica with the demo. One transaction."""
    t0 = time.perf_counter()
    until = (opts.until or now()).astimezone(TZ).replace(microsecond=0)
    until_iso = to_iso(until)
    until_ms = int(until.timestamp() * 1000)
    seed = opts.seed
    conn = replica.writer
    if not replica.is_empty():
        raise ReplicaError(f"{replica.path}: demo generation needs an empty replica")

    progress(0.02, "生成街道、社区与网格（示意边界）…")
    geo = build_geography(seed)
    cats = catalogue.load_categories()
    depts = catalogue.load_departments()
    problems = catalogue.validate_catalogue(cats, depts)
    if problems:
        raise ReplicaError("category catalogue is invalid: " + "; ".join(problems[:5]))

    conn.execute("BEGIN IMMEDIATE")
    try:
        secondary = _secondary_sql(conn, ("events", "event_log", "people", "devices", "places"))
        for kind, name, _sql in secondary:
            conn.execute(f"DROP {kind.upper()} {name}")
        progress(0.12, "写入组织架构与目录…")
        _insert(conn, "departments", ("code", "name", "name_en", "kind"),
                [(d["code"], d["name"], d.get("name_en"), d.get("kind")) for d in depts])  # fmt: skip
        cat_cols = ("code", "parent", "name_zh", "name_en", "class", "default_department", "response_limit_min",
                    "handle_limit", "handle_unit", "arrival_clock")  # fmt: skip
        _insert(conn, "categories", cat_cols, [tuple(c.get(k) for k in cat_cols) for c in cats])
        _write_geography(conn, geo)

        street_rows = [{"code": s["code"], "name": s["name"]} for s in geo.streets]
        people = org.build_people(geo.grids, street_rows, depts, seed=seed, until_ms=until_ms, until_iso=until_iso)
        _insert(conn, "people", org.PEOPLE_COLUMNS, people)
        devices = org.build_devices(geo.grids, None, seed=seed, until_ms=until_ms, until_iso=until_iso)
        _insert(conn, "devices", org.DEVICE_COLUMNS, devices)

        ctx = _event_context(geo, cats, people, until, opts.days, seed)
        n = opts.events
        done = 0
        prng = random.Random(seed + 101)
        log_cols = demo_events.LOG_COLUMNS
        for rows, logs, extra in demo_events.generate_events(ctx, n, seed):
            _insert(conn, "events", demo_events.EVENT_COLUMNS, rows)
            _insert(conn, "whistles", demo_events.WHISTLE_COLUMNS, extra["whistles"])
            _insert(conn, "whistle_departments", demo_events.WHISTLE_DEPT_COLUMNS, extra["whistle_departments"])
            fromiso = dt.datetime.fromisoformat
            logs = [(ulid_at(int(fromiso(r[2]).timestamp() * 1000), prng),) + r[1:] for r in logs]
            _insert(conn, "event_log", log_cols, logs)
            done += len(rows)
            progress(0.2 + 0.65 * done / max(n, 1), f"生成事件 {done:,}/{n:,} …")

        progress(0.87, "建立索引与全文检索…")
        for _kind, _name, sql in secondary:
            conn.execute(sql)
        conn.execute("INSERT INTO events_fts(events_fts) VALUES ('rebuild')")
        _closed_loop_seed(conn)
        # Demo extensions, one per issue, in this order (keep the markers: parallel branches merge here).
        # [demo-5] issue 5 — buildings, enterprises, shoreline, stations, readings, cameras

        # [demo-8] issue 8 — care list, visits, grid-leader positions, planted robot cases

        # [demo-7] issue 7 — drills, series, templates, injects

        # [demo-6] issue 6 — KPI rollups, rebuilt from every event above (keep last)
        kpi_rollups.rebuild(conn)
        # [demo-end]
        meta = {
            "demo": "1",
            "demo_label": DEMO_LABEL,
            "demo_seed": str(seed),
            "demo_until": until_iso,
            "demo_events": str(n),
            "district_code": "320613",
            "district_name": "崇川区",
        }
        _insert(conn, "meta", ("key", "value"), list(meta.items()))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    progress(0.97, "优化数据库…")
    conn.execute("ANALYZE")
    progress(1.0, "完成")
    return (
        f"demo replica: {len(geo.streets)} streets, {len(geo.communities)} communities, {len(geo.grids)} grids, "
        f"{n:,} events until {until_iso} (seed {seed}) in {time.perf_counter() - t0:.1f} s"
    )


# Synthetic category × street routing rules (issue 3's suggestion panel): (category, street or None, department)
DEMO_ROUTING_RULES = (
    ("ORDER.VENDOR", "320613002", "STREET_OFFICE", "演示规则：和平桥街道城管中队属地处置"),
    ("ENV.GARBAGE", "320613016", "STREET_OFFICE", "演示规则：永兴街道环卫由街道统一调度"),
    ("HOTLINE.NOISE", None, "PSB", "演示规则：夜间社会生活噪音由公安处置"),
    ("ECO.DUMPING", "320613018", "CITYMGMT", "演示规则：天生港镇沿江垃圾由城管清运"),
    ("FLOOD", "320613010", "MUNICIPAL", "演示规则：狼山镇街道防汛由市政设施养护队先期处置"),
    ("BUILD", "320613019", "CITYMGMT", "演示规则：秦灶街道施工管理由城管执法"),
)


def _closed_loop_seed(conn) -> None:
    """Closed-loop tables (migration m002): demo routing rules, and when a still-deferred event's
    handling clock was suspended (``deferred_at`` = its last 'defer' log row)."""
    _insert(conn, "routing_rules", ("category", "street_code", "department_code", "note"), list(DEMO_ROUTING_RULES))
    conn.execute(
        "UPDATE events SET deferred_at = (SELECT max(l.at) FROM event_log l WHERE l.event_id = events.id "
        "AND l.action = 'defer') WHERE status = 'deferred'"
    )


def _write_geography(conn, geo) -> None:
    def centre(g):
        p = g.representative_point()
        return round(p.x, 6), round(p.y, 6)

    rows = []
    for s in geo.streets:
        x, y = centre(s["geometry"])
        km2 = s["geometry"].area * (111.32 * 94.4)  # degrees² → km² at 32° N
        rows.append((s["code"], s["name"], 1, s.get("population"), round(km2, 2), x, y, to_geojson(s["geometry"])))
    _insert(conn, "streets", ("code", "name", "approximate", "population", "area_km2", "lon", "lat", "geometry"), rows)
    rows = []
    for c in geo.communities:
        x, y = centre(c["geometry"])
        rows.append((c["code"], c["name"], c["street_code"], 1, c.get("population"), x, y, to_geojson(c["geometry"])))
    _insert(conn, "communities", ("code", "name", "street_code", "approximate", "population", "lon", "lat", "geometry"), rows)
    rows = []
    for g in geo.grids:
        x, y = centre(g["geometry"])
        b = g["geometry"].bounds
        rows.append(
            (g["id"], g["name"], g["kind"], g["community_code"], g["street_code"], int(g["population"]),
             int(g["households"]), x, y, *(round(v, 6) for v in b), to_geojson(g["geometry"]))
        )  # fmt: skip
    _insert(
        conn, "grids",
        ("id", "name", "kind", "community_code", "street_code", "population", "households", "lon", "lat",
         "min_lon", "min_lat", "max_lon", "max_lat", "geometry"),
        rows,
    )  # fmt: skip
    _insert(conn, "neighbourhoods", ("id", "name", "grid_id", "households", "lon", "lat"),
            [(n["id"], n["name"], n["grid_id"], n.get("households"), n["lon"], n["lat"]) for n in geo.neighbourhoods])  # fmt: skip
    rows = []
    for p in geo.places:
        geom = p.get("geometry")
        rows.append(
            (p["kind"], p["name"], p.get("community_code"), p.get("street_code"), p.get("grid_id"),
             p.get("lon"), p.get("lat"), to_geojson(geom) if geom is not None else None)
        )  # fmt: skip
    _insert(conn, "places", ("kind", "name", "community_code", "street_code", "grid_id", "lon", "lat", "geometry"), rows)


def _event_context(geo, cats, people, until, days, seed) -> demo_events.EventContext:
    estates: dict[str, list[str]] = defaultdict(list)
    roads: dict[str, list[str]] = defaultdict(list)
    for p in geo.places:
        if p["kind"] == "estate" and p.get("grid_id"):
            estates[p["grid_id"]].append(p["name"])
        elif p["kind"] == "road" and p.get("street_code"):
            roads[p["street_code"]].append(p["name"])
    # grids without an estate borrow their community's estates
    by_comm: dict[str, list[str]] = defaultdict(list)
    for p in geo.places:
        if p["kind"] == "estate" and p.get("community_code"):
            by_comm[p["community_code"]].append(p["name"])
    for g in geo.grids:
        if not estates.get(g["id"]):
            estates[g["id"]] = by_comm.get(g["community_code"], [])[:3] or [g["name"].replace("网格", "") + "片区"]
    leader = {}
    operators: dict[str | None, list[str]] = defaultdict(list)
    liaisons: dict[str, list[str]] = defaultdict(list)
    cols = org.PEOPLE_COLUMNS
    i_uid, i_role, i_grid, i_street, i_dept = (cols.index(k) for k in ("uid", "role", "grid_id", "street_code", "department_code"))
    for r in people:
        if r[i_role] == "grid_leader":
            leader[r[i_grid]] = r[i_uid]
        elif r[i_role] == "operator":
            operators[r[i_street]].append(r[i_uid])
        elif r[i_role] == "liaison":
            liaisons[r[i_dept]].append(r[i_uid])
    leaves = demo_events._leaf_categories(cats)
    rng = np.random.default_rng(seed + 7)
    pops = np.array([g["population"] for g in geo.grids], dtype=float)
    hot_grids = rng.choice(len(geo.grids), 25, replace=False, p=pops / pops.sum())
    ordinary = [i for i, c in enumerate(leaves) if c["class"] == "ordinary" and c["code"] != "UNCLASSIFIED"]
    hot_cats = rng.choice(ordinary, 25)
    hotspots = [(int(g), int(c)) for g, c in zip(hot_grids, hot_cats, strict=True)]
    return demo_events.EventContext(
        until=until,
        days=days,
        categories=cats,
        grids=geo.grids,
        street_names={s["code"]: s["name"] for s in geo.streets},
        estates_by_grid=dict(estates),
        roads_by_street=dict(roads),
        leader_by_grid=leader,
        operators_by_street=dict(operators),
        liaisons_by_dept=dict(liaisons),
        hotspots=hotspots,
    )


def dumps(obj) -> str:
    return orjson.dumps(obj).decode()
