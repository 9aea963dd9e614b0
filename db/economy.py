"""Building economy (楼宇经济) write path: footprint checks and bulk loading (Qt-free).

A footprint must be a polygon (or GeoJSON text of one) inside a plausible size range.  A
self-intersecting or otherwise invalid ring is repaired with ``shapely.make_valid`` (the
largest polygon of the result is kept, and the building is marked ``repaired``); what cannot
be repaired into a usable polygon is rejected with :class:`InvalidFootprint`, whose message
says why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from db.spatial import KM_PER_DEG_LAT, KM_PER_DEG_LON, to_geojson

YIYUAN_TAX = 100_000_000.0
"""A "亿元楼" pays at least 100 million yuan of tax a year."""
MIN_FOOTPRINT_M2 = 50.0
MAX_FOOTPRINT_M2 = 200_000.0

INDUSTRIES: dict[str, tuple[str, str]] = {
    "finance": ("金融服务", "Financial services"),
    "software": ("软件和信息服务", "Software and IT"),
    "business": ("商务服务", "Business services"),
    "research": ("科技研发", "R&D"),
    "trade": ("商贸流通", "Trade and logistics"),
    "culture": ("文化创意", "Culture and creative"),
    "design": ("建筑设计", "Architecture and design"),
    "hr": ("人力资源", "Human resources"),
}
INDUSTRY_COLOURS = {
    "finance": "#fddd60", "software": "#00e4ff", "business": "#4992ff", "research": "#9fe080",
    "trade": "#ff8a45", "culture": "#c38bff", "design": "#ff6e76", "hr": "#b9b8ce",
}  # fmt: skip

BUILDING_COLUMNS = (
    "id", "uid", "name", "street_code", "grid_id", "lon", "lat", "floors", "gfa_m2", "occupancy",
    "enterprises", "tax_yuan", "industry", "yiyuan", "geometry", "repaired", "demo",
)  # fmt: skip
ENTERPRISE_COLUMNS = ("building_id", "name", "industry", "floor", "area_m2", "employees", "tax_yuan", "since")
HISTORY_COLUMNS = ("building_id", "month", "occupancy", "tax_yuan")


class InvalidFootprint(ValueError):
    """A building footprint that is not a usable polygon (message says why)."""


def footprint_m2(poly) -> float:
    return float(shapely.area(poly)) * KM_PER_DEG_LON * KM_PER_DEG_LAT * 1e6


def prepare_footprint(geom: Any, *, name: str = "") -> tuple[Polygon, bool]:
    """A valid footprint polygon from ``geom`` (shapely geometry, GeoJSON dict or text), and
    whether it had to be repaired.  Raises :class:`InvalidFootprint`."""
    who = f"楼宇 {name}: " if name else ""
    try:
        if isinstance(geom, str | bytes):
            geom = shapely.from_geojson(geom)
        elif isinstance(geom, Mapping):
            geom = shape(geom)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad footprint
        raise InvalidFootprint(f"{who}footprint is not readable GeoJSON ({exc})") from None
    if geom is None or geom.is_empty:
        raise InvalidFootprint(f"{who}footprint is empty")
    if not isinstance(geom, Polygon | MultiPolygon):
        raise InvalidFootprint(f"{who}footprint must be a polygon, not {geom.geom_type}")
    repaired = False
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        fixed = shapely.make_valid(geom)
        polys = [p for p in shapely.get_parts(fixed) if isinstance(p, Polygon) and not p.is_empty]
        if not polys:
            raise InvalidFootprint(f"{who}footprint is invalid ({reason}) and cannot be repaired")
        geom = max(polys, key=lambda p: p.area)
        repaired = True
    if isinstance(geom, MultiPolygon):
        geom = max(geom.geoms, key=lambda p: p.area)
        repaired = True
    m2 = footprint_m2(geom)
    if m2 < MIN_FOOTPRINT_M2:
        raise InvalidFootprint(f"{who}footprint of {m2:.0f} m² is too small (< {MIN_FOOTPRINT_M2:.0f} m²)")
    if m2 > MAX_FOOTPRINT_M2:
        raise InvalidFootprint(f"{who}footprint of {m2:,.0f} m² is too large (> {MAX_FOOTPRINT_M2:,.0f} m²)")
    return geom, repaired


def building_row(b: Mapping[str, Any]) -> tuple:
    """One ``buildings`` row (tuple in :data:`BUILDING_COLUMNS` order) from a dict with a
    ``footprint``; the footprint is checked (repaired or rejected) and 亿元楼 derived from tax."""
    poly, repaired = prepare_footprint(b["footprint"], name=str(b.get("name", "")))
    if b["industry"] not in INDUSTRIES:
        raise ValueError(f"unknown industry {b['industry']!r}; known: {', '.join(INDUSTRIES)}")
    if not 0 <= float(b["occupancy"]) <= 1:
        raise ValueError(f"occupancy must be between 0 and 1, not {b['occupancy']!r}")
    p = poly.representative_point()
    tax = float(b["tax_yuan"])
    return (
        b.get("id"), b["uid"], b["name"], b.get("street_code"), b.get("grid_id"), round(p.x, 6), round(p.y, 6),
        int(b["floors"]), float(b["gfa_m2"]), float(b["occupancy"]), int(b.get("enterprises", 0)), tax,
        b["industry"], int(tax >= YIYUAN_TAX), to_geojson(poly), int(repaired), int(b.get("demo", 1)),
    )  # fmt: skip


def insert_buildings(conn: sqlite3.Connection, buildings: Iterable[Mapping[str, Any]]) -> tuple[int, list[str]]:
    """Insert buildings inside the caller's transaction; returns (inserted, rejection messages)."""
    rows, rejected = [], []
    for b in buildings:
        try:
            rows.append(building_row(b))
        except InvalidFootprint as exc:
            rejected.append(str(exc))
    marks = ", ".join("?" * len(BUILDING_COLUMNS))
    conn.executemany(f"INSERT INTO buildings ({', '.join(BUILDING_COLUMNS)}) VALUES ({marks})", rows)
    return len(rows), rejected


def add_building(replica, building: Mapping[str, Any]) -> int:
    """One building through the write path (footprint repaired or rejected); returns its id."""
    row = building_row(building)
    with replica.write("buildings") as conn:
        marks = ", ".join("?" * len(BUILDING_COLUMNS))
        cur = conn.execute(f"INSERT INTO buildings ({', '.join(BUILDING_COLUMNS)}) VALUES ({marks})", row)
        return int(cur.lastrowid)
