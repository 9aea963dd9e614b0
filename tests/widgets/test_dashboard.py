"""Desktop dashboards linked to the map and the queue; the district's wall control."""

import sqlite3

import pytest

from app.dashboard_data import Scope
from app.state import AppState, Session
from db import wall_store
from db.replica import open_replica
from widgets.dashboard import HBarChart, install_console_panels
from widgets.main_window import MainWindow

STREET = "320613006"


@pytest.fixture
def console(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    win = MainWindow(rep, AppState(Session(role="district")))
    install_console_panels(win)
    qtbot.addWidget(win)
    win.resize(1920, 1080)
    with qtbot.waitSignal(win.mapReady, timeout=60000):
        win.show()
    qtbot.waitUntil(lambda: win.dashboard.controller.data is not None, timeout=20000)
    yield win
    win.shutdown()
    rep.close()


def test_street_picked_in_chart_filters_queue_map_and_charts(console, qtbot):
    rebuilt = []
    console.map.rebuild = lambda *a, **kw: rebuilt.append(kw)
    panel = console.dashboard
    chart = panel.charts.streets
    assert len(chart._items) == 16  # all streets ranked; the best ones drawn as far as labels stay readable
    assert 8 <= len(chart.codes) <= 16 and chart.codes == [c for c, _, _ in chart._items[: len(chart.codes)]]
    panel.charts.streets.barClicked.emit(STREET)
    assert console.queue.filter().street == STREET
    assert rebuilt and rebuilt[-1]["scope"] == STREET
    qtbot.waitUntil(lambda: panel.controller.data.scope == Scope("street", STREET), timeout=10000)
    name = sqlite3.connect(console.replica.path).execute("SELECT name FROM streets WHERE code = ?", (STREET,)).fetchone()[0]
    assert panel.scope_label.text() == name and STREET not in panel.scope_label.text()  # the name, not the code
    panel.charts.streets.barClicked.emit(STREET)  # a second click clears it
    assert console.queue.filter().street is None and rebuilt[-1]["scope"] is None


def test_grid_on_map_scopes_the_charts_and_refresh_is_throttled(console, qtbot):
    conn = sqlite3.connect(console.replica.path)
    gid = conn.execute("SELECT grid_id FROM events WHERE grid_id IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()[0]
    conn.close()
    ctl = console.dashboard.controller
    n = ctl.loads
    console.map.gridClicked.emit(gid)
    qtbot.waitUntil(lambda: ctl.loads > n and ctl.data.scope == Scope("grid", gid), timeout=10000)
    n = ctl.loads
    for _ in range(20):  # a burst of changes makes at most two loads (one now, one after)
        ctl.refresh()
    qtbot.wait(2500)
    assert ctl.loads - n <= 2


def test_bar_chart_maps_clicks_to_codes(qtbot):
    chart = HBarChart()
    qtbot.addWidget(chart)
    chart.set_items([("a", "A", 3), ("b", "B", None), ("c", "C", 1)])
    assert chart.code_at(2.0) == "a" and chart.code_at(0.1) == "c" and chart.code_at(0.5) is None
    assert [t.toPlainText() for t in chart.value_items] == ["3", "—", "1"]
    chart.set_items([])
    assert chart.empty_text.isVisible()


def test_wall_control_dialog_writes_control_rows(console):
    dialog = console.open_wall_control()
    dialog.buttons["pause"].click()
    dialog.save_layout("夜班", {"mode": "map_only"})
    dialog.layouts.setCurrentText("夜班")
    dialog.buttons["layout"].click()
    dialog.buttons["end"].click()
    conn = console.replica.reader()
    control = wall_store.read_control(conn)
    layouts = wall_store.load_layouts(conn)
    conn.close()
    assert control["rotation"][0] == "paused"
    assert control["layout"][0] == "夜班" and layouts["夜班"]["mode"] == "map_only"
    assert "end_takeover" in control


def test_the_district_console_fits_1366_by_768_desktops(console, qtbot):
    """Every header button stays inside a 1366×768 window (they wrap onto a row of their own); the
    window's minimum leaves room for a task bar; on a wide wall-side monitor they share the title row."""
    from PySide6.QtWidgets import QApplication

    hint = console.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 728
    for width, height, one_row in ((1366, 768, False), (2560, 1440, True), (1600, 900, False)):
        console.resize(width, height)
        qtbot.waitUntil(lambda w=width: console.width() == w, timeout=5000)
        QApplication.processEvents()
        tools = [console.header.tools.itemAt(i).widget() for i in range(console.header.tools.count())]
        shown = [t for t in tools if t.isVisible()]
        assert len(shown) >= 8
        for t in shown:
            corner = t.mapTo(console, t.rect().bottomRight())
            assert console.rect().contains(corner), (t.objectName(), width)
        assert (console.header._row.indexOf(console.header.tools_box) >= 0) is one_row
