"""The building-economy (楼宇经济) theme's layers: building footprints as a choropleth.

The choropleth metric is selectable (:data:`METRICS`: tax per m² or vacancy); the page switches
it with ``onemap.setLayerStyle("buildings", {"fillBy": METRICS[m]["fillBy"]})`` and shows
:func:`legend` for it.  ``building_heights`` is an optional 3D-like cue: each footprint's
"shadow" (the hull of the footprint and a copy lifted by its height), drawn under it.
All names are synthetic demo data (演示).
"""

from __future__ import annotations

import sqlite3

import shapely
from shapely import affinity

from db.economy import INDUSTRIES, INDUSTRY_COLOURS
from db.spatial import KM_PER_DEG_LAT, KM_PER_DEG_LON
from layers.base import Layer, feature_collection, parse_geometry, round_geometry

TAX_M2_BREAKS = [150, 300, 600, 1200, 2400]
TAX_M2_PALETTE = ["#1b3470", "#27508f", "#2f7aa6", "#47a9a8", "#a6cf6e", "#fddd60"]
VACANCY_BREAKS = [0.05, 0.1, 0.2, 0.3, 0.45]
VACANCY_PALETTE = ["#1f7a5c", "#3e9a68", "#93c05d", "#fddd60", "#ff8a45", "#ff6e76"]
METRICS = {
    "tax_m2": {
        "zh": "税收强度（元/㎡·年）", "en": "Tax per m² (yuan/yr)",
        "fillBy": {"prop": "tax_m2", "breaks": TAX_M2_BREAKS, "palette": TAX_M2_PALETTE},
        "fmt": "{:,.0f}",
    },
    "vacancy": {
        "zh": "空置率", "en": "Vacancy",
        "fillBy": {"prop": "vacancy", "breaks": VACANCY_BREAKS, "palette": VACANCY_PALETTE},
        "fmt": "{:.0%}",
    },
}  # fmt: skip
DEFAULT_METRIC = "tax_m2"
HEIGHT_M_PER_FLOOR = 1.6
"""Shadow offset per floor (a visual cue, not to scale)."""


def _rows(conn: sqlite3.Connection, scope: str | None):
    sql = (
        "SELECT b.id, b.name, b.street_code, s.name AS street, b.grid_id, b.floors, b.gfa_m2, b.occupancy, "
        "b.enterprises, b.tax_yuan, b.industry, b.yiyuan, b.repaired, b.lon, b.lat, b.geometry "
        "FROM buildings b LEFT JOIN streets s ON s.code = b.street_code"
    )
    args: tuple = ()
    if scope:
        sql += " WHERE b.street_code = ?"
        args = (scope,)
    try:
        return conn.execute(sql + " ORDER BY b.id", args).fetchall()
    except sqlite3.OperationalError:  # a replica from before migration m006
        return []


def building_properties(r: sqlite3.Row) -> dict:
    gfa = r["gfa_m2"] or 0
    return {
        "id": r["id"],
        "name": r["name"],
        "street": r["street"],
        "street_code": r["street_code"],
        "industry": r["industry"],
        "industry_name": INDUSTRIES.get(r["industry"], (r["industry"],))[0],
        "floors": r["floors"],
        "gfa": round(gfa),
        "occupancy": round(r["occupancy"], 3),
        "vacancy": round(1 - r["occupancy"], 3),
        "enterprises": r["enterprises"],
        "tax_wan": round(r["tax_yuan"] / 1e4, 1),
        "tax_m2": round(r["tax_yuan"] / gfa, 1) if gfa else 0,
        "yiyuan": bool(r["yiyuan"]),
    }


def buildings_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    """Building footprints with their economy figures (demo data)."""
    feats = []
    for r in _rows(conn, scope):
        geom = parse_geometry(r["geometry"])
        if geom is None:
            continue
        feats.append({"type": "Feature", "id": r["id"], "geometry": geom, "properties": building_properties(r)})
    return feature_collection(feats)


def dots_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    """One point per building (sized by floor area), for district and street zoom levels where
    the footprints are too small to see; hidden from zoom :data:`DOTS_MAX_ZOOM` on."""
    feats = []
    for r in _rows(conn, scope):
        props = building_properties(r)
        props["r"] = round(min(10.0, max(3.0, (r["gfa_m2"] ** 0.5) / 45)), 1)
        feats.append({"type": "Feature", "id": r["id"],
                      "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                      "properties": props})  # fmt: skip
    return feature_collection(feats)


def heights_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    """One "shadow" polygon per building: hull of the footprint and the footprint lifted by its
    height (north-east), for a 3D-like cue under the footprints."""
    rows = _rows(conn, scope)
    if not rows:
        return feature_collection([])
    geoms = shapely.from_geojson([r["geometry"] for r in rows])
    feats = []
    for r, g in zip(rows, geoms, strict=True):
        h = r["floors"] * HEIGHT_M_PER_FLOOR
        lifted = affinity.translate(g, h * 0.5 / (KM_PER_DEG_LON * 1000), h / (KM_PER_DEG_LAT * 1000))
        shadow = shapely.convex_hull(shapely.union(g, lifted))
        feats.append({
            "type": "Feature", "id": r["id"], "geometry": round_geometry(shapely.geometry.mapping(shadow)),
            "properties": {"id": r["id"], "name": r["name"], "floors": r["floors"]},
        })  # fmt: skip
    return feature_collection(feats)


def legend(metric: str = DEFAULT_METRIC, lang: str = "zh") -> list[dict]:
    """Legend sections for the economy theme with ``metric``'s classes."""
    m = METRICS[metric]
    fb = m["fillBy"]
    b = fb["breaks"]
    fmt = m["fmt"]
    items = []
    for i, colour in enumerate(fb["palette"]):
        if i == 0:
            label = f"< {fmt.format(b[0])}"
        elif i < len(b):
            label = f"{fmt.format(b[i - 1])} – {fmt.format(b[i])}"
        else:
            label = f"≥ {fmt.format(b[-1])}"
        items.append({"color": colour, "label": label, "kind": "box"})
    yiyuan = "亿元楼（金色边框）" if lang != "en" else "¥100M+ building (gold outline)"
    return [
        {"title": m["en" if lang == "en" else "zh"], "items": items, "ramp": True},
        {"title": "", "items": [{"color": "#fddd60", "label": yiyuan, "kind": "outline"}]},
        {"title": "演示数据" if lang != "en" else "Demo data", "items": []},
    ]


DOTS_MAX_ZOOM = 15.5
LAYERS: list[Layer] = [
    Layer(
        "building_heights", "楼宇高度示意", "Building height cue", "polygons", heights_features,
        visible=False,
        style={"stroke": False, "fillColor": "#01040f", "fillOpacity": 0.55},
    ),
    Layer(
        "building_dots", "楼宇分布（缩小时）", "Buildings (zoomed out)", "points", dots_features,
        interactive=True, in_control=False,
        style={"weight": 1, "color": "#e8f4ff", "opacity": 0.7, "fillOpacity": 0.9, "radiusProp": "r",
               "fillBy": METRICS[DEFAULT_METRIC]["fillBy"], "maxZoom": DOTS_MAX_ZOOM,
               "dimWhen": {"prop": "yiyuan", "equals": True, "style": {"color": "#fddd60", "weight": 2.4, "opacity": 1}}},
    ),
    Layer(
        "buildings", "楼宇（演示）", "Buildings (demo)", "polygons", buildings_features,
        min_zoom=16, interactive=True,
        style={
            "color": "#b9d7ff", "weight": 0.8, "opacity": 0.8, "fillOpacity": 0.88,
            "fillBy": METRICS[DEFAULT_METRIC]["fillBy"],
            "dimWhen": {"prop": "yiyuan", "equals": True, "style": {"color": "#fddd60", "weight": 2.6, "opacity": 1}},
            "label": "name", "labelClass": "om-label-grid",
        },
    ),
]
INDUSTRY_ORDER = list(INDUSTRIES)
__all__ = ["LAYERS", "METRICS", "INDUSTRY_COLOURS", "buildings_features", "heights_features", "legend"]
