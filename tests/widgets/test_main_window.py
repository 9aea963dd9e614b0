"""The console window on a real (small) demo replica, offscreen."""

import sqlite3

import pytest

from app.state import AppState, Session
from db.replica import open_replica
from widgets.main_window import MainWindow

XSS = '<img src=x onerror="document.title=\'pwned\'">'


def js(window, qtbot, script):
    box = {}
    window.map.run_json(script, lambda v: box.setdefault("v", v))
    qtbot.waitUntil(lambda: "v" in box, timeout=5000)
    return box["v"]


@pytest.fixture
def window(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    win = MainWindow(rep, AppState(Session()))
    qtbot.addWidget(win)
    win.resize(1600, 900)
    with qtbot.waitSignal(win.mapReady, timeout=30000):
        win.show()
    yield win
    win.watcher.stop()
    win.queue.shutdown()
    rep.close()


def test_map_shows_824_grids_and_district(window, qtbot):
    counts = js(window, qtbot, "window.onemap.state()")["counts"]
    assert counts["grids"] == 824
    assert counts["streets"] == 16
    assert counts["events"] > 0


def test_selecting_a_queue_row_moves_the_map(window, qtbot):
    before = js(window, qtbot, "window.onemap.state()")
    qtbot.waitUntil(lambda: window.queue.model().rowCount() > 0, timeout=5000)
    event_id = window.queue.model().event_id(0)
    window.queue.table().selectRow(0)
    qtbot.waitUntil(lambda: window.state.event_id == event_id, timeout=3000)
    conn = sqlite3.connect(window.replica.path)
    lon, lat = conn.execute("SELECT lon, lat FROM events WHERE id = ?", (event_id,)).fetchone()
    conn.close()

    def moved():
        st = js(window, qtbot, "window.onemap.state()")
        return abs(st["center"]["lng"] - lon) < 0.002 and abs(st["center"]["lat"] - lat) < 0.002 and st["zoom"] > before["zoom"]

    qtbot.waitUntil(moved, timeout=8000)
    assert window.detail.current["id"] == event_id


def test_event_from_another_process_appears_and_citizen_text_stays_text(window, qtbot):
    other = sqlite3.connect(window.replica.path)
    row = other.execute("SELECT lon, lat, grid_id, community_code, street_code FROM events LIMIT 1").fetchone()
    with other:
        rev = other.execute("UPDATE counters SET value = value + 1 WHERE name='rev' RETURNING value").fetchone()[0]
        cur = other.execute(
            "INSERT INTO events (uid, source, external_id, category, class, priority, title, description, lon, lat,"
            " grid_id, community_code, street_code, status, reported_at, updated_at, rev)"
            " VALUES ('01TESTXSS0000000000000000A', 'grid_app', 'X-1', 'UNCLASSIFIED', 'emergency', 1, ?, ?, ?, ?, ?, ?, ?,"
            " 'reported', strftime('%Y-%m-%dT%H:%M:%S+08:00', 'now', '+8 hours'),"
            " strftime('%Y-%m-%dT%H:%M:%S+08:00', 'now', '+8 hours'), ?)",
            (XSS, "描述 " + XSS, *row, rev),
        )
        new_id = cur.lastrowid
    other.close()
    # the queue picks it up without a restart (another connection = another process for SQLite)
    qtbot.waitUntil(lambda: window.queue.model().row_of(new_id) >= 0, timeout=4000)
    r = window.queue.model().row_of(new_id)
    from widgets.event_queue import COL

    title_col = COL["title"]
    assert XSS in window.queue.model().index(r, title_col).data()
    # and the map, as a delta
    qtbot.waitUntil(lambda: js(window, qtbot, f"JSON.stringify(!!window.onemap.openEventPopup({new_id}))"), timeout=5000)
    window.state.select_event(new_id)
    assert window.detail.title.text() == XSS
    assert window.detail.description.text() == "描述 " + XSS
    imgs = js(window, qtbot, "JSON.stringify(document.querySelectorAll('img[src=x]').length)")
    assert imgs == 0
    assert js(window, qtbot, "JSON.stringify(document.title)") != "pwned"
    popup_text = js(window, qtbot, "JSON.stringify((document.querySelector('.leaflet-popup-content')||{}).textContent||'')")
    assert XSS in popup_text
