"""The Yangtze ecology eye (长江生态眼) theme's layers: shoreline, zones, cameras, stations.

Stations are coloured by their GB 3838-2002 class (property ``cls``: 1–6, 0 when the latest
reading is invalid); :func:`station_classes_at` gives the classes at any hour, for the time
window and playback (the page recolours the stations through ``applyDelta``'s ``counts``-like
``props`` part).
"""

from __future__ import annotations

import sqlite3

from app import gb3838
from db.ecology import BITS, hour_iso
from layers.base import Layer, feature_collection, parse_geometry, point_feature

CLASSIFIED_MASK = BITS["do"] | BITS["nh3n"] | BITS["cod"]
CAMERA_COLOURS = {"online": "#9fe080", "offline": "#8a8fa3"}
ZONE_COLOURS = {"no_fishing": "#36c5f0", "no_construction": "#ff8a45"}
CLASS_COLOUR_MAP = {str(k): v for k, v in gb3838.CLASS_COLOURS.items()} | {"0": gb3838.INVALID_COLOUR}


def _safe(conn: sqlite3.Connection, sql: str, args: tuple = ()) -> list:
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # replica from before m006
        return []


def shoreline_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    sql = ("SELECT s.id, s.name, s.grid_id, s.street_code, s.length_m, s.geometry, g.name AS grid "
           "FROM shoreline_segments s LEFT JOIN grids g ON g.id = s.grid_id")  # fmt: skip
    args: tuple = ()
    if scope:
        sql += " WHERE s.street_code = ?"
        args = (scope,)
    feats = []
    for r in _safe(conn, sql + " ORDER BY s.id", args):
        feats.append({
            "type": "Feature", "id": r["id"], "geometry": parse_geometry(r["geometry"]),
            "properties": {"id": r["id"], "name": r["name"], "grid_id": r["grid_id"], "grid": r["grid"],
                           "length_m": round(r["length_m"])},
        })  # fmt: skip
    return feature_collection(feats)


def zones_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    feats = []
    for r in _safe(conn, "SELECT id, name, kind, buffer_m, geometry FROM eco_zones ORDER BY id"):
        feats.append({
            "type": "Feature", "id": r["id"], "geometry": parse_geometry(r["geometry"]),
            "properties": {"id": r["id"], "name": r["name"], "kind": r["kind"], "buffer_m": r["buffer_m"]},
        })  # fmt: skip
    return feature_collection(feats)


def cameras_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    sql = "SELECT id, code, name, segment_id, status, lon, lat FROM eco_cameras"
    args: tuple = ()
    if scope:
        sql += " WHERE street_code = ?"
        args = (scope,)
    feats = [
        point_feature(r["id"], r["lon"], r["lat"], {"id": r["id"], "code": r["code"], "name": r["name"],
                                                    "segment": r["segment_id"], "status": r["status"]})
        for r in _safe(conn, sql + " ORDER BY id", args)
    ]  # fmt: skip
    return feature_collection(feats)


def latest_hour(conn: sqlite3.Connection) -> int | None:
    rows = _safe(conn, "SELECT max(hour) FROM eco_readings WHERE station_id = (SELECT min(id) FROM eco_stations)")
    return rows[0][0] if rows and rows[0][0] is not None else None


def station_classes_at(conn: sqlite3.Connection, hour: int | None = None) -> dict[int, dict]:
    """Station id → ``{"cls", "hour", "invalid", "ph_ok"}`` of its reading at ``hour`` (the newest
    reading at or before it; the latest when None).  ``cls`` 0 means that reading was invalid
    for every classified parameter; invalid parameters never count."""
    out: dict[int, dict] = {}
    for s in _safe(conn, "SELECT id FROM eco_stations ORDER BY id"):
        sql = "SELECT hour, do, nh3n, cod, ph, turbidity, invalid FROM eco_readings WHERE station_id = ?"
        args: tuple = (s["id"],)
        if hour is not None:
            sql += " AND hour <= ?"
            args += (int(hour),)
        r = conn.execute(sql + " ORDER BY hour DESC LIMIT 1", args).fetchone()
        if r is None:
            continue
        a = gb3838.assess({p: r[p] for p in gb3838.PARAMETERS})
        out[s["id"]] = {"cls": a.station_class or 0, "hour": r["hour"], "invalid": bool(r["invalid"]),
                        "ph_ok": a.ph_pass}  # fmt: skip
    return out


def stations_features(conn: sqlite3.Connection, scope: str | None = None, *, hour: int | None = None) -> dict:
    sql = "SELECT id, code, name, segment_id, grid_id, lon, lat, target_class FROM eco_stations"
    args: tuple = ()
    if scope:
        sql += " WHERE street_code = ?"
        args = (scope,)
    rows = _safe(conn, sql + " ORDER BY id", args)
    classes = station_classes_at(conn, hour) if rows else {}
    feats = []
    for r in rows:
        c = classes.get(r["id"], {"cls": 0, "hour": None, "invalid": True, "ph_ok": None})
        feats.append(point_feature(r["id"], r["lon"], r["lat"], {
            "id": r["id"], "code": r["code"], "name": r["name"], "segment": r["segment_id"],
            "cls": c["cls"], "cls_label": gb3838.class_label(c["cls"] or None), "target": r["target_class"],
            "at": hour_iso(c["hour"]) if c["hour"] is not None else None, "invalid": c["invalid"],
            "ph_ok": c["ph_ok"],
        }))  # fmt: skip
    return feature_collection(feats)


def legend(lang: str = "zh") -> list[dict]:
    en = lang == "en"
    classes = [{"color": gb3838.CLASS_COLOURS[k], "label": gb3838.class_label(k, lang), "kind": "dot"} for k in range(1, 7)]
    classes.append({"color": gb3838.INVALID_COLOUR, "label": "数据无效" if not en else "Invalid reading", "kind": "dot"})
    return [
        {"title": "水质类别（GB 3838-2002）" if not en else "Water class (GB 3838-2002)", "items": classes},
        {"title": "岸线与设施" if not en else "Shoreline and sites", "items": [
            {"color": "#00e4ff", "label": "长江岸线（分段责任网格）" if not en else "Shoreline (grid segments)", "kind": "line"},
            {"color": "#9fe080", "label": "沿江监控" if not en else "Bank camera", "kind": "square"},
            {"color": ZONE_COLOURS["no_fishing"], "label": "禁捕缓冲区 1 km" if not en else "No-fishing zone 1 km", "kind": "box"},
            {"color": ZONE_COLOURS["no_construction"], "label": "禁建缓冲区 1 km" if not en else "No-construction zone 1 km", "kind": "box"},
            {"color": "#ff6e76", "label": "生态告警事件" if not en else "Ecology alert events", "kind": "dot"},
        ]},
    ]  # fmt: skip


LAYERS: list[Layer] = [
    Layer(
        "eco_zones", "保护区（1公里缓冲，示意）", "Protected zones (1 km, approx.)", "polygons", zones_features,
        pane="streets", interactive=False,
        style={"weight": 1.2, "opacity": 0.8, "dashArray": "4 4", "fillOpacity": 0.16,
               "colorBy": {"prop": "kind", "map": ZONE_COLOURS, "default": "#36c5f0", "target": "color"},
               "fillColorBy": {"prop": "kind", "map": ZONE_COLOURS, "default": "#36c5f0"}},
    ),
    Layer(
        "shoreline", "长江岸线（网格+长江大保护）", "Yangtze shoreline (grid segments)", "lines", shoreline_features,
        min_zoom=13, interactive=True,
        style={"color": "#00e4ff", "weight": 3.5, "opacity": 0.9, "fill": False,
               "label": "name", "labelClass": "om-label-street"},
    ),
    Layer(
        "eco_cameras", "沿江监控", "Bank cameras", "points", cameras_features,
        interactive=True,
        style={"radius": 4, "weight": 1, "color": "#071330", "fillOpacity": 0.9,
               "colorBy": {"prop": "status", "map": CAMERA_COLOURS, "default": "#9fe080", "target": "fillColor"}},
    ),
    Layer(
        "eco_stations", "水质监测站", "Water-quality stations", "points", stations_features,
        min_zoom=12, interactive=True,
        style={"radius": 8, "weight": 2, "color": "#e8f4ff", "fillOpacity": 0.95,
               "colorBy": {"prop": "cls", "map": CLASS_COLOUR_MAP, "default": gb3838.INVALID_COLOUR, "target": "fillColor"},
               "label": "code", "labelClass": "om-label-grid"},
    ),
]
