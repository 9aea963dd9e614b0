"""MapView + the app: scheme + onemap.js, offscreen (pytest-qt)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from db.replica import connect, open_replica
from layers import command
from layers.render import build_page
from widgets import scheme_handler
from widgets.map_view import MapView
from widgets.workers import run_in_thread

TZ = command.TZ
NOW = dt.datetime(2026, 11, 25, 15, 30, tzinfo=TZ)
TODAY = "2026-11-25T09:00:00+08:00"
XSS = '<img src=x onerror="window.__xss=1">'
COLS, ROWS, D = 4, 3, 0.01
X0, Y0 = 120.86, 31.98


def square(x: float, y: float, d: float = D) -> str:
    return json.dumps({"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]})


def event_row(eid, lon, lat, *, grid, title="占道经营", cls="ordinary", status="reported"):
    return (eid, f"E{eid}", f"X{eid}", cls, 2, title, lon, lat, grid, status, TODAY, TODAY)


@pytest.fixture
def replica_path(tmp_path) -> Path:
    """One street, one community, 12 grids (4 × 3 squares of 0.01°), 4 events."""
    path = tmp_path / "replica.db"
    rep = open_replica(path)
    with rep.write("org", "events") as c:
        c.execute("INSERT INTO streets (code, name, geometry) VALUES ('S1', '城东街道', ?)",
                  (square(X0, Y0, D * COLS),))
        c.execute("INSERT INTO communities (code, name, street_code, geometry) VALUES ('C1', '德民社区', 'S1', ?)",
                  (square(X0, Y0, D * COLS),))
        for r in range(ROWS):
            for k in range(COLS):
                c.execute(
                    "INSERT INTO grids (id, name, kind, community_code, street_code, population, households,"
                    " geometry) VALUES (?, ?, 'comprehensive', 'C1', 'S1', 900, 300, ?)",
                    (f"G{r}{k}", f"第{r}{k}网格", square(X0 + k * D, Y0 + r * D)),
                )
        c.executemany(
            "INSERT INTO events (id, uid, source, external_id, category, class, priority, title, lon, lat,"
            " grid_id, street_code, status, reported_at, updated_at) VALUES"
            " (?, ?, 'grid_app', ?, 'C01', ?, ?, ?, ?, ?, ?, 'S1', ?, ?, ?)",
            [
                event_row(1, X0 + 0.005, Y0 + 0.005, grid="G00"),
                event_row(2, X0 + 0.015, Y0 + 0.005, grid="G01", title=XSS, cls="emergency"),
                event_row(3, X0 + 0.025, Y0 + 0.005, grid="G02", status="closed"),
                event_row(4, X0 + 0.035, Y0 + 0.005, grid="G03", cls="assigned"),
            ],
        )
        c.execute("INSERT INTO people (id, uid, name, role, grid_id, street_code, lon, lat) "
                  "VALUES (1, 'P1', '张三', 'grid_leader', 'G11', 'S1', ?, ?)", (X0 + 0.012, Y0 + 0.018))
    rep.close()
    return path


@pytest.fixture
def html(replica_path) -> str:
    conn = connect(replica_path)
    try:
        return build_page(conn, now=NOW)
    finally:
        conn.close()


@pytest.fixture
def view(qtbot):
    v = MapView()
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    return v


def load(qtbot, view: MapView, html: str) -> None:
    with qtbot.waitSignal(view.loaded, timeout=20000) as blocker:
        view.show_page(html)
    assert blocker.args == [True], view.console_messages


def js(qtbot, view: MapView, script: str, *, as_json: bool = False):
    box: list = []
    if as_json:
        view.run_json(script, box.append)
    else:
        view.run_js(script, box.append)
    qtbot.waitUntil(lambda: len(box) == 1, timeout=5000)
    return box[0]


def count(qtbot, view: MapView, key: str) -> int:
    box: list[int] = []
    view.count_features(key, box.append)
    qtbot.waitUntil(lambda: len(box) == 1, timeout=5000)
    return box[0]


def container_point(qtbot, view: MapView, lon: float, lat: float) -> QPoint:
    p = js(qtbot, view, f"JSON.stringify(onemap.map.latLngToContainerPoint([{lat}, {lon}]))", as_json=True)
    return QPoint(round(p["x"]), round(p["y"]))


# -- the scheme handler -------------------------------------------------------------------------


def test_scheme_handler_resolves_assets_pages_and_refuses_the_rest(qapp):
    h = scheme_handler.AppSchemeHandler()
    body, mime = h.resolve("assets", "/leaflet/leaflet.js")
    assert body.startswith(b"/* @preserve") and mime.startswith("text/javascript")
    assert h.resolve("assets", "/leaflet/leaflet.css")[1].startswith("text/css")
    assert h.resolve("assets", "/leaflet/images/layers.png")[1] == "image/png"
    assert h.resolve("assets", "/markercluster/leaflet.markercluster.js") is not None
    assert h.resolve("assets", "/folium/leaflet_heat.min.js") is not None
    assert b"QWebChannel" in h.resolve("assets", "/qtwebchannel/qwebchannel.js")[0]
    assert h.resolve("web", "/onemap.js")[0].startswith(b"/* OneMap")
    assert h.put_page("p.html", "<p>页</p>") == "app://pages/p.html"
    assert h.resolve("pages", "/p.html") == ("<p>页</p>".encode(), "text/html;charset=utf-8")
    for host, path in [("web", "/../../db/schema.py"), ("assets", "/leaflet/../../../../etc/passwd"),
                       ("web", "/%2e%2e/pyproject.toml"), ("web", "/"), ("assets", "/nothing/x.js"),
                       ("pages", "/missing.html"), ("elsewhere", "/onemap.js"), ("web", "/../web/onemap.js")]:
        assert h.resolve(host, path) is None, (host, path)
    with pytest.raises(ValueError):
        h.put_page("../x.html", b"")
    for i in range(h.MAX_PAGES + 2):
        h.put_page(f"n{i}.html", b"x")
    assert h.page("n0.html") is None and h.page(f"n{h.MAX_PAGES + 1}.html") == b"x"
    assert scheme_handler.install() is scheme_handler.install()


# -- the map --------------------------------------------------------------------------------------


def test_loads_counts_and_logs_no_errors(qtbot, view, html):
    load(qtbot, view, html)
    assert view.ready
    assert count(qtbot, view, "grids") == COLS * ROWS
    assert count(qtbot, view, "events") == 4
    assert count(qtbot, view, "staff") == 1
    assert count(qtbot, view, "nope") == -1
    state = js(qtbot, view, "onemap.state()", as_json=True)
    assert state["counts"]["streets"] == 1 and state["counts"]["district"] == 1
    assert js(qtbot, view, "document.title") == "崇川区一张图 · 联动指挥"
    assert view.handler.not_found == []
    assert view.js_errors() == []


def test_delta_adds_updates_and_removes(qtbot, view, html):
    load(qtbot, view, html)
    new = {"type": "Feature", "id": 99, "geometry": {"type": "Point", "coordinates": [X0 + 0.005, Y0 + 0.025]},
           "properties": {"id": 99, "title": "新事件", "status": "reported", "class": "emergency", "priority": 1,
                          "category": "C01", "open": True, "drill": False}}
    box: list = []
    view.apply_delta({"events": {"upsert": [new]}, "grids": {"counts": {"G20": 1, "G00": 0}}}, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=5000)
    assert box[0] == {"upserted": 1, "removed": 0, "recoloured": 2}
    assert count(qtbot, view, "events") == 5
    fill = js(qtbot, view, "onemap.map._layers && (function(){var n=null;onemap.map.eachLayer(function(l){"
                           "if(l.feature&&l.feature.id==='G20'){n=l.options.fillColor;}});return n;})()")
    assert fill == command.GRID_PALETTE[1]
    moved = dict(new, geometry={"type": "Point", "coordinates": [X0 + 0.006, Y0 + 0.026]},
                 properties=dict(new["properties"], status="closed", open=False))
    view.apply_delta({"events": {"upsert": [moved], "remove": [1]}})
    assert count(qtbot, view, "events") == 4
    pos = js(qtbot, view, "(function(){var p=null;onemap.map.eachLayer(function(l){if(l.feature&&"
                          "l.feature.id===99&&l.getLatLng){p=JSON.stringify(l.getLatLng());}});return p;})()")
    assert json.loads(pos) == {"lat": pytest.approx(Y0 + 0.026), "lng": pytest.approx(X0 + 0.006)}
    assert view.js_errors() == []


def test_calls_before_load_are_queued(qtbot, view, html):
    box: list[int] = []
    view.count_features("grids", box.append)  # no page yet
    assert box == []
    load(qtbot, view, html)
    qtbot.waitUntil(lambda: box == [COLS * ROWS], timeout=5000)


def test_fly_to_moves_the_map_and_rings_the_event(qtbot, view, html):
    load(qtbot, view, html)
    before = js(qtbot, view, "JSON.stringify(onemap.map.getCenter())", as_json=True)
    lon, lat = X0 + 0.015, Y0 + 0.005
    view.fly_to(lon, lat, 16, event_id=2)

    def arrived():
        s = js(qtbot, view, "onemap.state()", as_json=True)
        c = s["center"]
        return abs(c["lng"] - lon) < 1e-4 and abs(c["lat"] - lat) < 1e-4 and s["zoom"] == 16

    qtbot.waitUntil(arrived, timeout=10000)
    assert before["lng"] != pytest.approx(lon, abs=1e-4) or before["lat"] != pytest.approx(lat, abs=1e-4)
    assert js(qtbot, view, "onemap.map.getZoom()") == 16
    assert js(qtbot, view, "document.querySelectorAll('.om-ring').length") == 1
    # by event id alone (no coordinates): the marker's position
    view.fly_to(None, None, 15, event_id=4)
    qtbot.waitUntil(lambda: abs(js(qtbot, view, "onemap.map.getCenter().lng") - (X0 + 0.035)) < 1e-4
                    and js(qtbot, view, "onemap.map.getZoom()") == 15, timeout=10000)


def test_citizen_text_reaches_the_dom_only_as_text(qtbot, view, html):
    load(qtbot, view, html)
    assert js(qtbot, view, "onemap.openEventPopup(2)") is True
    qtbot.waitUntil(lambda: js(qtbot, view, "document.querySelectorAll('.om-card-title').length") == 1)
    assert js(qtbot, view, "document.querySelector('.om-card-title').textContent") == XSS
    assert js(qtbot, view, "document.querySelectorAll('img[src=x]').length") == 0
    assert js(qtbot, view, "String(window.__xss)") == "undefined"
    assert "&lt;img" in js(qtbot, view, "document.querySelector('.leaflet-popup-content').innerHTML")
    assert js(qtbot, view, "onemap.openEventPopup(12345)") is False


def test_real_clicks_reach_python(qtbot, view, html):
    load(qtbot, view, html)
    qtbot.waitUntil(lambda: js(qtbot, view, "onemap.state()", as_json=True)["bridge"], timeout=5000)
    js(qtbot, view, f"onemap.map.setView([{Y0 + 0.015}, {X0 + 0.02}], 15, {{animate: false}}); true")
    target = view.focusProxy() or view
    # an event (the emergency one): hovering shows its title as text, clicking it gives
    # eventClicked(2) and opens its popup
    p = container_point(qtbot, view, X0 + 0.015, Y0 + 0.005)
    QTest.mouseMove(target, p + QPoint(0, 1))
    QTest.mouseMove(target, p)
    qtbot.waitUntil(lambda: js(qtbot, view, "(document.querySelector('.om-tip .om-tip-title') || {}).textContent")
                    == XSS, timeout=5000)
    assert js(qtbot, view, "document.querySelectorAll('img[src=x]').length") == 0
    with qtbot.waitSignal(view.eventClicked, timeout=5000) as blocker:
        QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    assert blocker.args == [2]
    assert js(qtbot, view, "document.querySelectorAll('img[src=x]').length") == 0
    js(qtbot, view, "onemap.map.closePopup(); true")  # (a Leaflet object would never come back)
    js(qtbot, view, f"onemap.map.setView([{Y0 + 0.015}, {X0 + 0.02}], 15, {{animate: false}}); true")
    QTest.qWait(600)  # not a double click
    # an empty part of grid G21: gridClicked('G21') and the grid is selected
    p = container_point(qtbot, view, X0 + 0.012, Y0 + 0.022)
    with qtbot.waitSignal(view.gridClicked, timeout=5000) as blocker:
        QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    assert blocker.args == ["G21"]
    assert js(qtbot, view, "onemap.state()", as_json=True)["selectedGrid"] == "G21"


def test_drill_watermark_and_ui_scale(qtbot, view, html):
    load(qtbot, view, html)
    view.set_drill_watermark(True)
    assert js(qtbot, view, "onemap.state()", as_json=True)["drill"] is True
    assert js(qtbot, view, "getComputedStyle(document.querySelector('.om-drill-watermark')).display") == "block"
    view.set_drill_watermark(False)
    assert js(qtbot, view, "onemap.state()", as_json=True)["drill"] is False
    view.set_ui_scale(2)
    assert js(qtbot, view, "getComputedStyle(document.documentElement).getPropertyValue('--om-u').trim()") == "2"


def test_rebuild_builds_off_the_ui_thread_and_pushes_points(qtbot, view, replica_path):
    threads: list[bool] = []
    main = threading.get_ident()

    def open_conn():
        threads.append(threading.get_ident() != main)
        return connect(replica_path)

    with qtbot.waitSignal(view.loaded, timeout=20000) as blocker:
        view.rebuild(open_conn, now=NOW)
    assert blocker.args == [True]
    assert threads == [True]
    assert view.page_rev == 0
    assert count(qtbot, view, "events") == 4  # pushed after load, before loaded() was emitted
    assert count(qtbot, view, "grids") == COLS * ROWS
    # a failing build reports on the UI thread
    with qtbot.waitSignal(view.buildFailed, timeout=10000) as failed:
        view.rebuild(open_conn, scope="NOPE", now=NOW)
    assert "unknown street" in failed.args[0]


def test_run_in_thread_reports_on_the_calling_thread(qtbot):
    main = threading.get_ident()
    seen: dict = {}

    def work(x, *, y):
        seen["work_thread"] = threading.get_ident()
        return x + y

    run_in_thread(work, 1, y=2, on_result=lambda v: seen.update(v=v, on_main=threading.get_ident() == main))
    qtbot.waitUntil(lambda: "v" in seen, timeout=5000)
    assert seen["v"] == 3 and seen["on_main"] and seen["work_thread"] != main

    def boom():
        raise RuntimeError("nope")

    run_in_thread(boom, on_error=lambda e: seen.update(err=e), on_finished=lambda: seen.update(done=True))
    qtbot.waitUntil(lambda: "done" in seen and "err" in seen, timeout=5000)
    assert isinstance(seen["err"], RuntimeError)
