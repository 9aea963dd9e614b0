"""Street station mode (--station CODE): scope never leaks; dashboard, saved filters, CSV export."""

import csv
import sqlite3

import pytest

import layers.render
from app.state import AppState, Session
from db.event_ops import create_event
from db.replica import open_replica
from widgets.app_main import _save_exact
from widgets.dashboard import install_console_panels
from widgets.main_window import MainWindow

STREET = "320613006"


def _other_street_point(path):
    conn = sqlite3.connect(path)
    row = conn.execute("SELECT lon, lat, street_code FROM events WHERE street_code <> ? AND lon IS NOT NULL LIMIT 1",
                       (STREET,)).fetchone()  # fmt: skip
    conn.close()
    return row


@pytest.fixture
def station(qtbot, demo_copy, monkeypatch):
    pushed: list[dict] = []
    real = layers.render.layer_data

    def recording(*a, **kw):
        out = real(*a, **kw)
        pushed.append(out)
        return out

    monkeypatch.setattr(layers.render, "layer_data", recording)
    rep = open_replica(demo_copy)
    win = MainWindow(rep, AppState(Session(role="street", scope=STREET)))
    install_console_panels(win)
    qtbot.addWidget(win)
    win.resize(1920, 1080)
    with qtbot.waitSignal(win.mapReady, timeout=60000):
        win.show()
    qtbot.waitUntil(lambda: win.dashboard.controller.data is not None, timeout=20000)
    win.pushed = pushed
    yield win
    win.shutdown()
    rep.close()


def test_station_screenshot_exact_size(station, tmp_path):
    out = tmp_path / "station.png"
    _save_exact(station, out, (1920, 1080))
    from PySide6.QtGui import QImage

    img = QImage(str(out))
    assert (img.width(), img.height()) == (1920, 1080)


def test_station_never_shows_another_street(station, qtbot, demo_copy):
    # map: everything pushed to the page belongs to the street
    data = station.pushed[-1]
    assert data["events"]["features"], "the street has events on the map"
    for key in ("events", "staff", "devices"):
        for f in data.get(key, {}).get("features", []):
            gid = f["properties"].get("grid_id") or ""
            assert gid.startswith(STREET), (key, gid)
    # queue
    station.queue.set_filter(station.queue.filter().with_(tab="open"))
    qtbot.waitUntil(lambda: station.queue.model().rowCount() > 0, timeout=10000)
    assert {r["street_code"] for r in station.queue.model().rows()} == {STREET}
    # dashboard
    d = station.dashboard.controller.data
    assert [r["code"] for r in d.streets] == [STREET]
    assert {r["street_code"] for r in d.ticker} == {STREET}
    # a new event in another street reaches neither the map delta nor the queue
    deltas = []
    station.map.apply_delta = lambda delta, callback=None: deltas.append(delta)
    lon, lat, other = _other_street_point(demo_copy)
    eid = create_event(station.replica, {"source": "grid_app", "category": "ENV.GARBAGE", "title": "别的街道的事件",
                                         "lon": lon, "lat": lat}, actor="test")  # fmt: skip
    station.watcher.check()
    station.queue.reload_now()
    qtbot.wait(300)
    assert all(f["id"] != eid for d_ in deltas for f in d_.get("events", {}).get("upsert", []))
    assert eid not in {r["id"] for r in station.queue.model().rows()}


def test_saved_filters_keep_the_scope(station):
    tools = station.station_tools
    station.queue.set_filter(station.queue.filter().with_(tab="overdue", street="320613001"))
    tools.save_current("超时")
    station.queue.set_filter(station.queue.filter().with_(tab="pending", street=None))
    assert tools.apply("超时")
    f = station.queue.filter()
    assert f.tab == "overdue" and f.scope_street == STREET  # the scope is the session's, always
    assert "超时" in tools.saved()
    assert tools.delete("超时") and tools.saved() == {}


def test_export_current_queue_to_csv_with_bom(station, qtbot, tmp_path):
    out = tmp_path / "queue.csv"
    station.queue.set_filter(station.queue.filter().with_(tab="open"))
    with qtbot.waitSignal(station.station_tools.exported, timeout=20000) as blocker:
        station.station_tools.export(str(out))
    path, n = blocker.args
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][0] == "编号" and len(rows) == n + 1 and n > 0
    streets = {r[3] for r in rows[1:]}
    assert len(streets) == 1  # one street's name only


def test_dashboard_grid_selection_scopes_charts(station, qtbot):
    conn = sqlite3.connect(station.replica.path)
    gid = conn.execute("SELECT id FROM grids WHERE street_code = ? LIMIT 1", (STREET,)).fetchone()[0]
    conn.close()
    n = station.dashboard.controller.loads
    station.state.select_grid(gid)
    qtbot.waitUntil(lambda: station.dashboard.controller.loads > n, timeout=30000)  # slow under a loaded CI
    assert station.dashboard.controller.data.scope.kind == "grid"
    assert {r["grid_id"] for r in station.dashboard.controller.data.ticker} <= {gid}
