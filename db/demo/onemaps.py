"""Demo data for the building-economy and Yangtze-ecology one-maps (演示数据, synthetic).

- Buildings: office buildings in the old city core (around 濠河) and along the longest roads
  (main corridors), each a rotated rectangle footprint on land, with synthetic names carrying
  "演示" and a code (never a real building or company with invented figures); enterprises,
  24 months of occupancy and tax history.  Two footprints are deliberately self-intersecting
  to exercise the repair path.
- Ecology: shoreline segments cut from the real water edge, each with the nearest grid as the
  responsible grid; 20 monitoring stations with a year of hourly readings (a few breach
  episodes and invalid readings planted, some in the last week); bank cameras with detections;
  1 km protected zones around a few segments.

Called once from ``db/demo/generate.py`` inside the demo transaction (marker ``[demo-5]``).
"""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import nearest_points

from app.timeutil import to_iso
from db import economy, shoreline
from db.demo.geography import CORE_CENTRE, CORE_STREETS
from db.ecology import READING_COLUMNS, hour_of, invalid_mask_arrays
from db.ids import ulid_at
from db.spatial import KM_PER_DEG_LAT, KM_PER_DEG_LON, to_geojson

N_BUILDINGS = 320
CORE_SHARE = 0.45
N_STATIONS = 20
N_CAMERAS = 36
HISTORY_MONTHS = 24
READING_DAYS = 365
STEMS = (
    "汇智 鼎信 恒泰 远景 启航 博雅 众创 卓越 凯旋 嘉信 瑞丰 金融 创新 科创 数智 云谷 星海 "
    "通和 泰富 联创 华汇 锦程 瑞景 德润 融通 新宇 宏图 海纳 东升 天衡"
).split()
SUFFIXES = ("大厦", "中心", "广场", "商务楼", "科技园", "国际", "金融港", "创意园")
INDUSTRY_WEIGHTS = {
    "finance": 0.14, "software": 0.18, "business": 0.2, "research": 0.12, "trade": 0.16,
    "culture": 0.08, "design": 0.06, "hr": 0.06,
}  # fmt: skip
TAX_PER_M2 = {  # median annual tax per occupied m² (yuan), demo figures
    "finance": 1500, "software": 650, "business": 420, "research": 520, "trade": 380,
    "culture": 260, "design": 340, "hr": 300,
}  # fmt: skip
STREET_PREFIX = "3206130"


def _km(lon, lat):
    return (lon - CORE_CENTRE[0]) * KM_PER_DEG_LON, (lat - CORE_CENTRE[1]) * KM_PER_DEG_LAT


def _rect(cx: float, cy: float, w_m: float, h_m: float, angle: float) -> Polygon:
    c, s = math.cos(angle), math.sin(angle)
    pts = []
    for dx, dy in ((-w_m / 2, -h_m / 2), (w_m / 2, -h_m / 2), (w_m / 2, h_m / 2), (-w_m / 2, h_m / 2)):
        x, y = dx * c - dy * s, dx * s + dy * c
        pts.append((cx + x / (KM_PER_DEG_LON * 1000), cy + y / (KM_PER_DEG_LAT * 1000)))
    return Polygon(pts)


def _bowtie(poly: Polygon) -> Polygon:
    a, b, c, d = list(poly.exterior.coords)[:4]
    return Polygon([a, c, b, d])  # crossing edges: invalid, repaired by make_valid


def generate(conn, geo, *, seed: int, until: dt.datetime) -> dict:
    """Write buildings and ecology demo rows with ``conn`` (inside the caller's transaction)."""
    stats = _buildings(conn, geo, seed=seed, until=until)
    stats.update(_ecology(conn, geo, seed=seed, until=until))
    return stats


# -- buildings ----------------------------------------------------------------------------------


def _building_sites(geo, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """(lon, lat, angle) of building sites: the old city core, then the main corridors."""
    land = geo.land
    shapely.prepare(land)
    core = shapely.union_all([s["geometry"] for s in geo.streets if s["code"] in CORE_STREETS])
    shapely.prepare(core)
    sites: list[tuple[float, float, float]] = []
    n_core = int(N_BUILDINGS * CORE_SHARE)
    while len(sites) < n_core:  # around 濠河, denser near the centre
        r = abs(rng.normal(0, 1.1))
        t = rng.uniform(0, 2 * math.pi)
        lon = CORE_CENTRE[0] + r * math.cos(t) / KM_PER_DEG_LON
        lat = CORE_CENTRE[1] + r * math.sin(t) / KM_PER_DEG_LAT
        if shapely.contains_xy(core, lon, lat) and shapely.contains_xy(land, lon, lat):
            sites.append((lon, lat, rng.normal(0, 0.12)))
    roads = [p for p in geo.places if p["kind"] == "road" and p.get("geometry") is not None]
    roads.sort(key=lambda p: -p["geometry"].length)
    corridors = roads[:14]
    while len(sites) < N_BUILDINGS:
        road: LineString = corridors[int(rng.integers(len(corridors)))]["geometry"]
        f = rng.uniform(0.02, 0.98)
        p = road.interpolate(f, normalized=True)
        q = road.interpolate(min(1.0, f + 0.01), normalized=True)
        angle = math.atan2((q.y - p.y) * KM_PER_DEG_LAT, (q.x - p.x) * KM_PER_DEG_LON)
        side = 1 if rng.random() < 0.5 else -1
        off = rng.uniform(45, 110) * side
        lon = p.x - math.sin(angle) * off / (KM_PER_DEG_LON * 1000)
        lat = p.y + math.cos(angle) * off / (KM_PER_DEG_LAT * 1000)
        if shapely.contains_xy(land, lon, lat):
            sites.append((lon, lat, angle))
    return sites


def _buildings(conn, geo, *, seed: int, until: dt.datetime) -> dict:
    rng = np.random.default_rng(seed + 505)
    prng = random.Random(seed + 505)
    until_ms = int(until.timestamp() * 1000)
    sites = _building_sites(geo, rng)
    lon = np.array([s[0] for s in sites])
    lat = np.array([s[1] for s in sites])
    grid_ix = geo.grid_index().assign(lon, lat)
    street_ix = geo.street_index().assign(lon, lat)
    grid_ids = geo.grid_index().ids
    street_codes = geo.street_index().ids
    industries = list(INDUSTRY_WEIGHTS)
    weights = np.array(list(INDUSTRY_WEIGHTS.values()))
    used: set[str] = set()
    buildings, placed = [], []
    for i, (x, y, angle) in enumerate(sites):
        dx, dy = _km(x, y)
        core_factor = math.exp(-math.hypot(dx, dy) / 2.5)
        w, h = rng.uniform(28, 75), rng.uniform(22, 48)
        poly = _rect(x, y, w, h, angle)
        if any(poly.intersects(o) for o in placed[-40:]):
            poly = _rect(x, y, w * 0.6, h * 0.6, angle)
        placed.append(poly)
        floors = int(np.clip(rng.normal(8 + 22 * core_factor, 6), 4, 58))
        industry = industries[int(rng.choice(len(industries), p=weights))]
        gfa = round(w * h * floors * 0.92, -1)
        occ = float(np.clip(rng.beta(6 + 4 * core_factor, 2.2), 0.18, 0.99))
        tax = gfa * occ * TAX_PER_M2[industry] * float(rng.lognormal(0, 0.55)) * (0.6 + core_factor)
        if i % 29 == 0 and industry in ("finance", "software"):  # a few 亿元楼 in the core
            tax = max(tax, float(rng.uniform(1.02e8, 2.4e8)))
        stem = STEMS[int(rng.integers(len(STEMS)))]
        suffix = SUFFIXES[int(rng.integers(len(SUFFIXES)))]
        name = f"{stem}{suffix}（演示B{i + 1:03d}）"
        while name in used:
            name = name.replace("）", "′）")
        used.add(name)
        footprint = _bowtie(poly) if i in (17, 211) else poly
        gi, si = int(grid_ix[i]), int(street_ix[i])
        n_ent = max(1, int(gfa * occ / float(rng.uniform(600, 1400))))
        buildings.append({
            "id": i + 1, "uid": ulid_at(until_ms - 86400_000 * 900 + i, prng), "name": name,
            "street_code": street_codes[si] if si >= 0 else None, "grid_id": grid_ids[gi] if gi >= 0 else None,
            "floors": floors, "gfa_m2": gfa, "occupancy": round(occ, 3), "enterprises": n_ent,
            "tax_yuan": round(tax, -3), "industry": industry, "footprint": footprint,
        })  # fmt: skip
    inserted, rejected = economy.insert_buildings(conn, buildings)
    ent_rows, hist_rows = [], []
    months = _months(until, HISTORY_MONTHS)
    short = {k: v[0][:2] for k, v in economy.INDUSTRIES.items()}
    n_ent_total = 0
    for b in buildings:
        n = b["enterprises"]
        shares = rng.dirichlet(np.full(n, 0.7))
        main = b["industry"]
        for j in range(n):
            ind = main if rng.random() < 0.65 else industries[int(rng.choice(len(industries), p=weights))]
            n_ent_total += 1
            ent_rows.append((
                b["id"], f"演示{short[ind]}企业{n_ent_total:05d}", ind, int(rng.integers(1, b["floors"] + 1)),
                round(b["gfa_m2"] * b["occupancy"] * shares[j], 1), int(rng.integers(3, 400)),
                round(b["tax_yuan"] * shares[j], -2), f"{int(rng.integers(2008, 2026))}-{int(rng.integers(1, 13)):02d}",
            ))  # fmt: skip
        occ = b["occupancy"]
        occ_path = np.clip(occ + np.cumsum(rng.normal(0, 0.012, len(months)))[::-1] - rng.normal(0.03, 0.02), 0.1, 1.0)
        occ_path[-1] = occ
        growth = rng.normal(0.05, 0.06)
        for k, m in enumerate(months):
            age = (len(months) - 1 - k) / 12
            monthly = b["tax_yuan"] / 12 * (1 + growth) ** (-age) * (1 + 0.15 * math.sin(k * math.pi / 6)) * rng.lognormal(0, 0.08)
            hist_rows.append((b["id"], m, round(float(occ_path[k]), 3), round(float(monthly), -2)))
    conn.executemany(f"INSERT INTO enterprises ({', '.join(economy.ENTERPRISE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ent_rows)
    conn.executemany(f"INSERT INTO building_history ({', '.join(economy.HISTORY_COLUMNS)}) VALUES (?, ?, ?, ?)", hist_rows)
    return {"buildings": inserted, "buildings_rejected": len(rejected), "enterprises": len(ent_rows)}


def _months(until: dt.datetime, n: int) -> list[str]:
    y, m = until.year, until.month
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        m -= 1
        if m == 0:
            y, m = y - 1, 12
    return out[::-1]


# -- ecology ------------------------------------------------------------------------------------


def _nearest_grid(geo, lon: float, lat: float) -> dict:
    gi = int(geo.grid_index().assign(np.array([lon]), np.array([lat]))[0])
    if gi >= 0:
        return geo.grids[gi]
    pt = Point(lon, lat)
    comp = [g for g in geo.grids if g["kind"] == "comprehensive"]
    return min(comp, key=lambda g: g["geometry"].distance(pt))


def _ecology(conn, geo, *, seed: int, until: dt.datetime) -> dict:
    rng = np.random.default_rng(seed + 606)
    segs = shoreline.shoreline_segments()
    seg_rows, seg_grid = [], []
    for i, s in enumerate(segs):
        mid = s.interpolate(0.5, normalized=True)
        g = _nearest_grid(geo, mid.x, mid.y)
        sid = f"SL{i + 1:02d}"
        seg_grid.append(g)
        seg_rows.append((sid, f"长江岸线{i + 1:02d}段 · {g['name']}", g["id"], g["street_code"], None,
                         round(shoreline.metres(s), 1), to_geojson(s)))  # fmt: skip
    conn.executemany("INSERT INTO shoreline_segments (id, name, grid_id, street_code, leader, length_m, geometry) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", seg_rows)  # fmt: skip
    # points spread evenly along the whole shoreline (segments are of about equal length)
    def along(n: int, phase: float) -> list[tuple[int, float, float]]:
        out = []
        for k in range(n):
            pos = (k + phase) / n * len(segs)
            si = min(int(pos), len(segs) - 1)
            p = segs[si].interpolate(pos - si, normalized=True)
            # on the bank, inside the responsible grid (events from it must land in a grid)
            inner = seg_grid[si]["geometry"].buffer(-0.0003)
            if not inner.is_empty and not inner.contains(p):
                p = nearest_points(inner, p)[0]
            out.append((si, round(p.x, 6), round(p.y, 6)))
        return out

    stations = []
    for k, (si, x, y) in enumerate(along(N_STATIONS, 0.5)):
        g = seg_grid[si]
        stations.append((k + 1, f"WQ{k + 1:02d}", f"水质自动站{k + 1:02d}（演示）", seg_rows[si][0], g["id"],
                         g["street_code"], x, y, 2 if k % 3 == 0 else 3))  # fmt: skip
    conn.executemany("INSERT INTO eco_stations (id, code, name, segment_id, grid_id, street_code, lon, lat, target_class) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", stations)  # fmt: skip
    cameras = []
    for k, (si, x, y) in enumerate(along(N_CAMERAS, 0.2)):
        g = seg_grid[si]
        cameras.append((k + 1, f"EC{k + 1:02d}", f"沿江监控{k + 1:02d}（演示）", seg_rows[si][0], g["id"],
                        g["street_code"], x, y, "offline" if k % 17 == 5 else "online"))  # fmt: skip
    conn.executemany("INSERT INTO eco_cameras (id, code, name, segment_id, grid_id, street_code, lon, lat, status) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", cameras)  # fmt: skip
    _zones(conn, segs, geo)
    n_readings = _readings(conn, len(stations), rng, until)
    n_det = _detections(conn, len(cameras), rng, until)
    return {"segments": len(seg_rows), "stations": len(stations), "readings": n_readings,
            "cameras": len(cameras), "detections": n_det}  # fmt: skip


def _zones(conn, segs, geo) -> None:
    from db.spatial import load_water

    water = load_water()
    rows = []
    for k, si in enumerate(sorted({len(segs) // 5, len(segs) // 2, (4 * len(segs)) // 5})):
        buf = shoreline.buffer_m(segs[si], 1000.0)
        fishing = buf.intersection(water)
        rows.append((f"ZF{k + 1}", f"长江禁捕缓冲区{k + 1}（1公里，示意）", "no_fishing", 1000.0,
                     to_geojson(shapely.make_valid(fishing))))  # fmt: skip
        build = buf.intersection(geo.land)
        rows.append((f"ZC{k + 1}", f"沿江禁建缓冲区{k + 1}（1公里，示意）", "no_construction", 1000.0,
                     to_geojson(shapely.make_valid(build))))  # fmt: skip
    conn.executemany("INSERT INTO eco_zones (id, name, kind, buffer_m, geometry) VALUES (?, ?, ?, ?, ?)", rows)


def _readings(conn, n_stations: int, rng: np.random.Generator, until: dt.datetime) -> int:
    end = hour_of(until) + 1
    start = end - READING_DAYS * 24
    hours = np.arange(start, end, dtype=np.int64)
    n = hours.size
    day = 2 * np.pi * ((hours + 8) % 24) / 24
    season = 2 * np.pi * (hours - start) / n
    total = 0
    cols = ", ".join(READING_COLUMNS)
    sql = f"INSERT INTO eco_readings ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    for sid in range(1, n_stations + 1):
        base = rng.normal(0, 1)
        do = 7.4 + 0.9 * np.cos(season) + 0.45 * np.sin(day) + 0.25 * base + rng.normal(0, 0.2, n)
        nh3 = np.exp(np.log(0.32) + 0.25 * base + 0.3 * np.sin(season + 1) + rng.normal(0, 0.18, n))
        cod = 12.5 + 2.5 * np.sin(season) + 1.2 * base + rng.normal(0, 1.1, n)
        ph = 7.6 + 0.15 * np.sin(day) + rng.normal(0, 0.08, n)
        turb = np.exp(np.log(35) + 0.4 * np.sin(season) + rng.normal(0, 0.25, n))
        # breach episodes: a few over the year, one for every other station in the last week
        starts = list(rng.integers(0, n - 200, 3))
        if sid % 2 == 0:
            starts.append(n - int(rng.integers(10, 160)))
        for s in starts:
            length = int(rng.integers(4, 14))
            shape_ = np.sin(np.linspace(0.3, np.pi - 0.3, length))
            kind = int(rng.integers(3))
            sl = slice(s, min(n, s + length))
            k = sl.stop - sl.start
            if kind == 0:
                nh3[sl] = 1.2 + 1.4 * shape_[:k]
            elif kind == 1:
                do[sl] = 3.6 - 1.8 * shape_[:k]
            else:
                cod[sl] = 24 + 20 * shape_[:k]
        # invalid readings: missing, negative DO, pH 20 (sensor faults)
        bad = rng.choice(n, 24, replace=False)
        do[bad[:8]] = np.nan
        do[bad[8:14]] = -1.0
        ph[bad[14:20]] = 20.0
        cod[bad[20:]] = np.nan
        do, nh3, cod, ph, turb = (np.round(a, 3) for a in (do, nh3, cod, ph, turb))
        mask = invalid_mask_arrays({"do": do, "nh3n": nh3, "cod": cod, "ph": ph, "turbidity": turb})
        rows = [
            (sid, int(h), None if a != a else a, None if b != b else b, None if c != c else c,
             None if d != d else d, None if e != e else e, int(m))
            for h, a, b, c, d, e, m in zip(hours.tolist(), do.tolist(), nh3.tolist(), cod.tolist(), ph.tolist(),
                                           turb.tolist(), mask.tolist(), strict=True)
        ]  # fmt: skip
        conn.executemany(sql, rows)
        total += len(rows)
    return total


DETECTION_KINDS = ("fishing", "sand_mining", "dumping")


def _detections(conn, n_cameras: int, rng: np.random.Generator, until: dt.datetime) -> int:
    rows = []
    until_s = until.timestamp()
    for k in range(140):
        recent = k < 10
        age = rng.uniform(0.05, 6.5) if recent else rng.uniform(7, READING_DAYS)
        at = dt.datetime.fromtimestamp(until_s - age * 86400, until.tzinfo).replace(microsecond=0)
        cam = int(rng.integers(1, n_cameras + 1))
        kind = DETECTION_KINDS[int(rng.choice(3, p=[0.5, 0.2, 0.3]))]
        conf = round(float(rng.uniform(0.62, 0.98)), 2)
        rows.append((cam, to_iso(at), kind, conf))
        if rng.random() < 0.3:  # the same scene seen again a few minutes later: one episode
            rows.append((cam, to_iso(at + dt.timedelta(minutes=int(rng.integers(2, 20)))), kind, conf))
    rows.sort(key=lambda r: r[1])
    conn.executemany("INSERT INTO eco_detections (camera_id, at, kind, confidence) VALUES (?, ?, ?, ?)", rows)
    return len(rows)

