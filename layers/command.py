"""The linked-command (联动指挥) theme: base geography, streets, grids, events, staff, devices.

Every ``*_features(conn, scope)`` reads the replica (a ``sqlite3`` connection with
``row_factory = sqlite3.Row``) and returns a GeoJSON FeatureCollection dict with
coordinates rounded to 6 decimals.  ``scope`` is a street code, or ``None`` for the
district.  Citizen text (event titles) is passed through as data: the page renders it
with ``textContent`` only, and :func:`layers.base.json_for_html` escapes it for embedding.

:func:`build_delta` turns everything that changed since a revision into the delta the
page's ``onemap.applyDelta`` understands (see ``layers/render.py`` for the format).
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import shapely
from shapely.geometry import box, mapping, shape

from db.schema import TERMINAL_STATUSES
from layers.base import (
    Layer,
    feature_collection,
    parse_geometry,
    point_feature,
    round_geometry,
)

GEODATA = Path(__file__).resolve().parent.parent / "resources" / "geodata"
DISTRICT_FILE = GEODATA / "district_boundary_wgs84.geojson"
WATER_FILE = GEODATA / "yangtze_water_gshhg_wgs84.geojson"
DISTRICT_CODE = "320613"
DISTRICT_NAME_ZH = "崇川区"
DISTRICT_NAME_EN = "Chongchuan District"

TZ = ZoneInfo("Asia/Shanghai")  # same zone and text format as app.timeutil
TS_FMT = "%Y-%m-%dT%H:%M:%S+08:00"
EVENTS_LIMIT = 20_000
WATER_MARGIN_DEG = 0.25
"""How far around the district's bounding box the Yangtze water is drawn."""

_TERMINAL_SQL = ", ".join(f"'{s}'" for s in TERMINAL_STATUSES)
OPEN_SQL = f"status NOT IN ({_TERMINAL_SQL})"
"""Matches the partial indexes in db/schema.py textually, so SQLite can use them."""

CLASS_COLOURS = {"emergency": "#ff6e76", "assigned": "#fddd60", "ordinary": "#4992ff"}
CLASS_RANK = {"ordinary": 0, "assigned": 1, "emergency": 2}
GRID_BREAKS = [1, 2, 4, 7, 11]
"""Open-event classes for grid colours: 0 | 1 | 2–3 | 4–6 | 7–10 | 11+."""
GRID_PALETTE = ["#0d2a5c", "#12407a", "#145e92", "#167ea4", "#1a9eae", "#2fc1b8"]
"""Single-hue navy → teal ramp: never the event-class colours, and never so light that the
light labels on top lose contrast."""
GRID_FILL_OPACITY = [0.15, 0.35, 0.42, 0.5, 0.56, 0.62]
DEVICE_COLOURS = {
    "camera": "#9fe080",
    "door_sensor": "#b9b8ce",
    "manhole": "#ff8a45",
    "throwing_detector": "#c38bff",
}


# -- static geography --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _geography() -> dict:
    """District outline, Yangtze water (clipped) and land, as shapely geometries (cached)."""
    district = shape(orjson.loads(DISTRICT_FILE.read_bytes())["features"][0]["geometry"])
    water_all = shapely.union_all(
        [shape(f["geometry"]) for f in orjson.loads(WATER_FILE.read_bytes())["features"]]
    )
    minx, miny, maxx, maxy = district.bounds
    m = WATER_MARGIN_DEG
    frame = box(minx - m, miny - m, maxx + m, maxy + m)
    water = water_all.intersection(frame).simplify(0.0001, preserve_topology=True)
    land = district.difference(water_all).simplify(0.00005, preserve_topology=True)
    return {"district": district, "water": water, "land": land, "frame": frame}


def district_bounds() -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of the district boundary."""
    return tuple(_geography()["district"].bounds)  # type: ignore[return-value]


def _geom_feature(fid: str, geom, properties: dict) -> dict:
    return {"type": "Feature", "id": fid, "geometry": round_geometry(mapping(geom)), "properties": properties}


def district_features(conn: sqlite3.Connection | None = None, scope: str | None = None) -> dict:
    """The district boundary (real, WGS-84); the union of the streets when the file is missing."""
    try:
        geom = _geography()["district"]
    except FileNotFoundError:
        if conn is None:
            raise
        geoms = [shape(orjson.loads(r["geometry"])) for r in conn.execute("SELECT geometry FROM streets")]
        geom = shapely.union_all(geoms)
    return feature_collection(
        [_geom_feature(DISTRICT_CODE, geom, {"code": DISTRICT_CODE, "name": DISTRICT_NAME_ZH})]
    )


@functools.lru_cache(maxsize=4)
def _static_fc(name: str) -> dict:
    props = {"water": {"name": "长江"}, "land": {"name": DISTRICT_NAME_ZH}}[name]
    return feature_collection([_geom_feature(name, _geography()[name], props)])


def water_features(conn: sqlite3.Connection | None = None, scope: str | None = None) -> dict:
    """The Yangtze (GSHHG), clipped to the district's box plus ``WATER_MARGIN_DEG`` (cached: do
    not modify the result)."""
    return _static_fc("water")


def land_features(conn: sqlite3.Connection | None = None, scope: str | None = None) -> dict:
    """District boundary minus Yangtze water (cached: do not modify the result)."""
    return _static_fc("land")


# -- organisation -------------------------------------------------------------------------------


def _label_points(texts: list[str], geoms: list[dict | None]) -> list[list[float] | None]:
    """Representative points (inside each polygon) as [lon, lat], computed in one shapely call."""
    if not texts:
        return []
    try:
        arr = shapely.from_geojson(texts, on_invalid="ignore")
    except Exception:  # noqa: BLE001 - fall back to one geometry at a time
        arr = [shape(g) if g else None for g in geoms]
    pts = shapely.point_on_surface(arr)
    out: list[list[float] | None] = []
    for p in pts:
        if p is None or p.is_empty:
            out.append(None)
        else:
            out.append([round(p.x, 6), round(p.y, 6)])
    return out


def _polygon_rows(conn: sqlite3.Connection, sql: str, args: tuple) -> list[tuple]:
    """(row, parsed geometry, label point) for each row of a polygon query that has a geometry."""
    rows = [r for r in conn.execute(sql, args) if r["geometry"]]
    geoms = [parse_geometry(r["geometry"]) for r in rows]
    lps = _label_points([r["geometry"] for r in rows], geoms)
    return list(zip(rows, geoms, lps, strict=True))


def streets_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    """Street polygons (approximate), label at the polygon's representative point."""
    sql = "SELECT code, name, approximate, population, area_km2, geometry FROM streets"
    args: tuple = ()
    if scope:
        sql += " WHERE code = ?"
        args = (scope,)
    feats = []
    for r, geom, lp in _polygon_rows(conn, sql + " ORDER BY code", args):
        if geom is None:
            continue
        feats.append(
            {
                "type": "Feature",
                "id": r["code"],
                "geometry": geom,
                "properties": {
                    "code": r["code"],
                    "name": r["name"],
                    "approximate": bool(r["approximate"]),
                    "population": r["population"],
                    "lp": lp,
                },
            }
        )
    return feature_collection(feats)


def grid_open_counts(
    conn: sqlite3.Connection, scope: str | None = None, grid_ids: Iterable[str] | None = None
) -> dict[str, int]:
    """Open, non-drill events per grid (grids without open events are absent unless named)."""
    # "+grid_id": keep SQLite from walking ix_events_grid over every event just to group;
    # the partial open-events indexes are far smaller (0.36 s → 0.01 s on 100k events)
    sql = f"SELECT grid_id, count(*) AS n FROM events WHERE {OPEN_SQL} AND drill_id IS NULL AND +grid_id IS NOT NULL"
    args: list = []
    if scope:
        sql += " AND street_code = ?"
        args.append(scope)
    ids = None
    if grid_ids is not None:
        ids = sorted(set(grid_ids))
        if not ids:
            return {}
        sql += f" AND grid_id IN ({', '.join('?' * len(ids))})"
        args.extend(ids)
    counts = {r["grid_id"]: r["n"] for r in conn.execute(sql + " GROUP BY +grid_id", args)}
    if ids is not None:
        return {g: counts.get(g, 0) for g in ids}
    return counts


def grids_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    """Grids coloured by their number of open non-drill events (property ``open``)."""
    counts = grid_open_counts(conn, scope)
    sql = (
        "SELECT g.id, g.name, g.kind, g.street_code, s.name AS street, c.name AS community, "
        "g.population, g.households, g.geometry "
        "FROM grids g LEFT JOIN streets s ON s.code = g.street_code "
        "LEFT JOIN communities c ON c.code = g.community_code"
    )
    args: tuple = ()
    if scope:
        sql += " WHERE g.street_code = ?"
        args = (scope,)
    # dedicated grids (hospital, school, market, site) lie inside comprehensive ones: draw them
    # last so that they stay visible and take the click
    feats = []
    for r, geom, lp in _polygon_rows(conn, sql + " ORDER BY g.kind <> 'comprehensive', g.id", args):
        if geom is None:
            continue
        gid = r["id"]
        feats.append(
            {
                "type": "Feature",
                "id": gid,
                "geometry": geom,
                "properties": {
                    "id": gid,
                    "name": r["name"],
                    "kind": r["kind"],
                    "street": r["street"],
                    "street_code": r["street_code"],
                    "community": r["community"],
                    "population": r["population"],
                    "open": counts.get(gid, 0),
                    "lp": lp,
                },
            }
        )
    return feature_collection(feats)


# -- events ---------------------------------------------------------------------------------------


def start_of_today(now: dt.datetime | None = None) -> str:
    """Midnight of ``now``'s day in Asia/Shanghai, in the replica's timestamp format."""
    now = now or dt.datetime.now(TZ)
    if now.tzinfo is None:
        now = now.replace(tzinfo=TZ)
    local = now.astimezone(TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).strftime(TS_FMT)


_EVENT_COLS = (
    "e.id, round(e.lon, 6) AS lon, round(e.lat, 6) AS lat, e.title, e.status, e.class, e.priority, "
    "e.category, e.reported_at, e.grid_id, e.street_code, e.drill_id, e.handle_due_at, e.arrival_due_at, "
    "e.on_site_at"
)
_N_EVENT_COLS = 15
# the handling clock stops once handled and is suspended while deferred (缓办); the arrival clock
# runs until someone is on site (deferral does not stop it)
_HANDLING_STOPPED = frozenset({"handled", "verified", "deferred"})
_PRE_ARRIVAL = frozenset({"reported", "accepted", "dispatched", "returned", "acknowledged", "deferred"})


def _epoch_ms(ts: str | None) -> int | None:
    if not ts:
        return None
    try:
        return int(dt.datetime.fromisoformat(ts).timestamp() * 1000)
    except ValueError:
        return None
_TERMINAL = frozenset(TERMINAL_STATUSES)


def _event(eid, lon, lat, title, status, cls, priority, category, reported_at, grid_id, _street, drill_id,
           handle_due=None, arrival_due=None, on_site=None) -> dict:
    is_open = status not in _TERMINAL
    hdue = _epoch_ms(handle_due) if is_open and status not in _HANDLING_STOPPED else None
    adue = _epoch_ms(arrival_due) if is_open and on_site is None and status in _PRE_ARRIVAL else None
    return {
        "type": "Feature",
        "id": eid,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "id": eid,
            "title": title,
            "status": status,
            "class": cls,
            "priority": priority,
            "category": category,
            "reported_at": reported_at,
            "grid_id": grid_id,
            "open": is_open,
            "drill": drill_id is not None,
            "hdue": hdue,
            "adue": adue,
        },
    }


def event_feature(row: sqlite3.Row | tuple) -> dict:
    """One event as a point feature from a row of ``_EVENT_COLS`` (title is raw text: the
    page renders it with textContent only)."""
    return _event(*tuple(row)[:_N_EVENT_COLS])


def _event_sort_key(f: dict) -> tuple:
    p = f["properties"]
    # drawn in list order: closed first, then ordinary → emergency, low → high priority on top
    return (p["open"], CLASS_RANK.get(p["class"], 0), -(p["priority"] or 4))


def events_features(
    conn: sqlite3.Connection,
    scope: str | None = None,
    *,
    now: dt.datetime | None = None,
    limit: int = EVENTS_LIMIT,
) -> dict:
    """Today's events plus every open event (newest first up to ``limit``), drills included
    (property ``drill``); features are ordered so that the most important draw on top."""
    today = start_of_today(now)
    sql = (
        "WITH ids AS ("
        "  SELECT id FROM events WHERE reported_at >= :today"
        f"  UNION SELECT id FROM events WHERE {OPEN_SQL}"
        f") SELECT {_EVENT_COLS} FROM ids JOIN events e ON e.id = ids.id "
        "WHERE e.lon IS NOT NULL AND e.lat IS NOT NULL"
    )
    args: dict = {"today": today, "limit": int(limit)}
    if scope:
        sql += " AND e.street_code = :scope"
        args["scope"] = scope
    sql += f" ORDER BY (e.status IN ({_TERMINAL_SQL})), e.reported_at DESC LIMIT :limit"
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: about twice as fast for 20k rows
    feats = [_event(*r) for r in cur.execute(sql, args)]
    feats.sort(key=_event_sort_key)
    return feature_collection(feats, truncated=len(feats) >= limit, since=today)


def _event_on_map(row: sqlite3.Row, today: str, scope: str | None) -> bool:
    if row["lon"] is None or row["lat"] is None:
        return False
    if scope and row["street_code"] != scope:
        return False
    return row["status"] not in TERMINAL_STATUSES or row["reported_at"] >= today


def _event_in_window(row: sqlite3.Row, window: tuple[str, str], scope: str | None) -> bool:
    if row["lon"] is None or row["lat"] is None:
        return False
    if scope and row["street_code"] != scope:
        return False
    return window[0] <= row["reported_at"] < window[1]


# -- staff and devices --------------------------------------------------------------------------

_STAFF_COLS = "id, uid, name, grid_id, street_code, status, lon, lat, position_at, rev"


def staff_feature(row: sqlite3.Row) -> dict:
    return point_feature(
        row["id"],
        row["lon"],
        row["lat"],
        {
            "id": row["id"],
            "name": row["name"],
            "grid_id": row["grid_id"],
            "status": row["status"],
            "position_at": row["position_at"],
        },
    )


def staff_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    """Grid leaders with a known position."""
    sql = f"SELECT {_STAFF_COLS} FROM people WHERE role = 'grid_leader' AND lon IS NOT NULL AND lat IS NOT NULL"
    args: tuple = ()
    if scope:
        sql += " AND street_code = ?"
        args = (scope,)
    return feature_collection(staff_feature(r) for r in conn.execute(sql + " ORDER BY id", args))


def devices_features(conn: sqlite3.Connection, scope: str | None = None) -> dict:
    """Cameras, door sensors, manhole covers and throwing detectors (circle markers by kind)."""
    sql = "SELECT id, uid, kind, name, grid_id, status, lon, lat FROM devices WHERE lon IS NOT NULL AND lat IS NOT NULL"
    args: tuple = ()
    if scope:
        sql += " AND street_code = ?"
        args = (scope,)
    feats = [
        point_feature(
            r["id"],
            r["lon"],
            r["lat"],
            {
                "id": r["id"],
                "kind": r["kind"],
                "name": r["name"],
                "grid_id": r["grid_id"],
                "status": r["status"],
                "online": r["status"] == "online",
            },
        )
        for r in conn.execute(sql + " ORDER BY id", args)
    ]
    return feature_collection(feats)


def category_names(conn: sqlite3.Connection, lang: str = "zh") -> dict[str, str]:
    """Category code → display name, for popups (empty when the catalogue is not loaded)."""
    col = "name_en" if lang == "en" else "name_zh"
    try:
        return {r["code"]: r[col] for r in conn.execute(f"SELECT code, {col} FROM categories")}
    except sqlite3.OperationalError:
        return {}


# -- incremental updates ----------------------------------------------------------------------


def current_rev(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()
    return int(row[0]) if row else 0


def build_delta(
    conn: sqlite3.Connection,
    since_rev: int,
    scope: str | None = None,
    *,
    now: dt.datetime | None = None,
    window: tuple[str, str] | None = None,
) -> tuple[dict, int]:
    """Everything that changed after ``since_rev`` as an ``applyDelta`` payload, and the new rev.

    Changed events that still belong on the map (open, or reported today; in scope; located)
    are upserted, the others removed; with a time ``window`` (start, end ISO text: the map shows
    the events reported in [start, end), as ``app.playback.events_in_window``) that is the rule instead; the grids they sit in get fresh open counts; changed
    grid leaders are upserted (or removed once they lose their position).  An event moved
    to another grid leaves its old grid's count stale until the next full page build.
    Returns ``({}, since_rev)`` when nothing changed.
    """
    today = start_of_today(now)
    delta: dict = {}
    top = since_rev
    upsert, remove, grids = [], [], set()
    for r in conn.execute(
        f"SELECT {_EVENT_COLS}, e.rev FROM events e WHERE e.rev > ? ORDER BY e.rev", (since_rev,)
    ):
        top = max(top, r["rev"])
        if scope and r["street_code"] != scope:
            continue
        if _event_in_window(r, window, scope) if window else _event_on_map(r, today, scope):
            upsert.append(event_feature(r))
        else:
            remove.append(r["id"])
        if r["grid_id"]:
            grids.add(r["grid_id"])
    if upsert or remove:
        upsert.sort(key=_event_sort_key)
        delta["events"] = {"upsert": upsert, "remove": remove}
    if grids:
        delta["grids"] = {"counts": grid_open_counts(conn, scope, grids)}
    s_up, s_rm = [], []
    for r in conn.execute(f"SELECT {_STAFF_COLS}, role FROM people WHERE rev > ? ORDER BY rev", (since_rev,)):
        top = max(top, r["rev"])
        if scope and r["street_code"] != scope:
            continue
        if r["role"] == "grid_leader" and r["lon"] is not None and r["lat"] is not None:
            s_up.append(staff_feature(r))
        else:
            s_rm.append(r["id"])
    if s_up or s_rm:
        delta["staff"] = {"upsert": s_up, "remove": s_rm}
    return delta, top


events_delta = build_delta
"""Alias of :func:`build_delta` (events, grid counts and staff since a revision)."""


# -- the layers of the theme ------------------------------------------------------------------

LAYERS: list[Layer] = [
    Layer(
        "water", "长江水域", "Yangtze water", "polygons", water_features,
        pane="base", in_control=False,
        style={"stroke": True, "color": "#1d5f8a", "weight": 1, "opacity": 0.6,
               "fillColor": "#0b3a5e", "fillOpacity": 0.75},
    ),
    Layer(
        "land", "陆域", "Land", "polygons", land_features,
        pane="base", in_control=False,
        style={"stroke": False, "fillColor": "#10275a", "fillOpacity": 0.9},
    ),
    Layer(
        "grids", "网格（按未结事件）", "Grids (open events)", "polygons", grids_features,
        min_zoom=15, interactive=True,
        style={
            "color": "#4992ff", "weight": 0.6, "opacity": 0.45,
            "fillBy": {"prop": "open", "breaks": GRID_BREAKS, "palette": GRID_PALETTE,
                       "opacity": GRID_FILL_OPACITY},
            "label": "name", "labelPoint": "lp", "labelClass": "om-label-grid",
            "selected": {"color": "#00e4ff", "weight": 3, "opacity": 1},
        },
    ),
    Layer(
        "streets", "街道（边界为示意）", "Streets (approximate)", "polygons", streets_features,
        min_zoom=10, pane="streets",
        style={"color": "#93ebf8", "weight": 1.4, "opacity": 0.55, "dashArray": "6 4",
               "fill": False, "label": "name", "labelPoint": "lp", "labelClass": "om-label-street",
               "labelMaxZoom": 15},
    ),
    Layer(
        "district", "区界", "District boundary", "polygons", district_features,
        pane="district", in_control=False,
        style={"color": "rgba(147,235,248,0.8)", "weight": 2.5, "opacity": 1, "fill": False, "glow": True},
    ),
    Layer(
        "devices", "物联感知设备", "IoT devices", "points", devices_features,
        visible=False, interactive=True,
        style={"radius": 3.5, "weight": 1, "color": "#071330", "fillOpacity": 0.85,
               "colorBy": {"prop": "kind", "map": DEVICE_COLOURS, "default": "#b9b8ce", "target": "fillColor"},
               "dimWhen": {"prop": "online", "equals": False, "style": {"fillOpacity": 0.25}}},
    ),
    Layer(
        "staff", "网格长", "Grid leaders", "points", staff_features,
        visible=True, interactive=True,
        style={"radius": 5, "weight": 2, "color": "#00e4ff", "fillColor": "#071330", "fillOpacity": 0.9},
    ),
    Layer(
        "events", "今日事件", "Today's events", "points", events_features,
        interactive=True,
        style={
            "radius": 5, "weight": 1.2, "color": "#e8f4ff", "opacity": 0.9, "fillOpacity": 0.9,
            "colorBy": {"prop": "class", "map": CLASS_COLOURS, "default": "#4992ff", "target": "fillColor"},
            "radiusBy": {"prop": "priority", "map": {"1": 8, "2": 7, "3": 6, "4": 5}, "default": 5},
            "dimWhen": {"prop": "open", "equals": False,
                        "style": {"fillOpacity": 0.22, "opacity": 0.35, "weight": 0.8, "radius": 3.5,
                                  "colorFromFill": True}},
            "dueRing": {"overdue": {"color": "#ff6e76", "weight": 3, "opacity": 1},
                        "soon": {"color": "#fddd60", "weight": 2.5, "opacity": 1}},
            "drill": {"dashArray": "2 2", "color": "#ffffff"},
        },
    ),
]
LAYER_BY_KEY = {layer.key: layer for layer in LAYERS}
