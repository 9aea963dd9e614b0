"""The three one-maps in the console: theme switch keeps the view, panels follow, screenshots differ."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.state import AppState, Session
from app.timewindow import TimeWindow
from db.replica import open_replica
from widgets.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]


def js(window, qtbot, script):
    box = {}
    window.map.run_json(script, lambda v: box.setdefault("v", v))
    qtbot.waitUntil(lambda: "v" in box, timeout=5000)
    return box["v"]


@pytest.fixture
def window(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    win = MainWindow(rep, AppState(Session()))
    win.screenshot_mode = True  # no background alert scan in this test
    qtbot.addWidget(win)
    win.resize(1600, 900)
    with qtbot.waitSignal(win.mapReady, timeout=30000):
        win.show()
    yield win
    win.shutdown()
    rep.close()


def test_theme_switch_keeps_the_view_and_swaps_layers_legend_panel(window, qtbot):
    js(window, qtbot, "JSON.stringify(window.onemap.map.setView([32.01, 120.87], 14, {animate: false}) && 1)")
    before = js(window, qtbot, "window.onemap.state()")
    assert before["theme"] == "command" and "events" in before["visible"] and "buildings" not in before["visible"]
    for name, must, must_not, panel in (
        ("economy", "buildings", "grids", window.onemaps.economy),
        ("ecology", "eco_stations", "buildings", window.onemaps.ecology),
        ("command", "grids", "eco_stations", window.detail),
    ):
        window.state.set_theme(name)
        qtbot.waitUntil(lambda n=name: js(window, qtbot, "window.onemap.state()")["theme"] == n, timeout=5000)
        st = js(window, qtbot, "window.onemap.state()")
        assert st["zoom"] == before["zoom"]
        assert st["center"]["lat"] == pytest.approx(before["center"]["lat"], abs=1e-9)
        assert st["center"]["lng"] == pytest.approx(before["center"]["lng"], abs=1e-9)
        assert must in st["visible"] and must_not not in st["visible"]
        assert window.onemaps.stack.currentWidget().isAncestorOf(panel)
        legend = js(window, qtbot, "JSON.stringify(document.querySelector('.om-legend').textContent)")
        assert {"economy": "税收强度", "ecology": "GB 3838", "command": "事件类型"}[name] in legend
    assert len(window.onemaps.switch_ms) == 3
    assert window.map.url().toString().endswith(".html")  # the page was never reloaded
    assert js(window, qtbot, "JSON.stringify(window.onemap.countFeatures('buildings'))") >= 300


def test_economy_metric_filter_and_building_card(window, qtbot):
    ctl = window.onemaps
    window.state.set_theme("economy")
    eco = ctl.economy
    eco.metric.setCurrentIndex(eco.metric.findData("vacancy"))
    qtbot.waitUntil(lambda: "空置率" in js(window, qtbot, "JSON.stringify(document.querySelector('.om-legend').textContent)"),
                    timeout=5000)
    eco.industry.setCurrentIndex(eco.industry.findData("finance"))
    n_fin = js(window, qtbot, "JSON.stringify(window.onemap.setFilter('buildings', [{prop: 'industry', in: ['finance']}]))")
    assert 0 < n_fin < 320
    assert eco.top_table.rowCount() > 0
    bid = eco._top[0]["id"]
    ctl.on_feature("buildings", str(bid))
    card = eco.card.card
    assert card["id"] == bid and card["industry"] == "finance"
    assert eco.card.enterprises.rowCount() == len(card["enterprise_rows"]) > 0
    assert len(card["history"]) == 24


def test_ecology_panel_chart_and_time_window(window, qtbot):
    ctl = window.onemaps
    window.state.set_theme("ecology")
    panel = ctl.ecology
    assert panel.stations.rowCount() == 20
    ser = panel.load_series(panel._stations[0]["id"])
    assert ser.n == 7 * 24
    panel.set_window(int(ser.x[-1] // 3600) - 365 * 24 + 1, int(ser.x[-1] // 3600) + 1)
    assert panel.series.n == 365 * 24
    assert panel.bands  # the class bands are drawn
    window.state.set_time_window(TimeWindow("7d"))
    qtbot.waitUntil(lambda: panel.window is not None, timeout=3000)


def test_playback_pushes_deltas(window, qtbot):
    import datetime as dt

    ctl = window.onemaps
    pb = ctl.start_playback(dt.date(2026, 11, 20))
    assert pb.size > 0
    delta = pb.frame(pb.start + 12 * 3600)
    assert delta["events"]["upsert"] and "eco_stations" in delta
    window.map.apply_delta(delta)
    qtbot.waitUntil(lambda: js(window, qtbot, "JSON.stringify(window.onemap.countFeatures('events'))") == pb.visible_count(),
                    timeout=5000)
    with qtbot.waitSignal(window.mapReady, timeout=30000):
        ctl.stop_playback()


def test_user_theme_is_saved_in_the_replica_and_switchable(window, qtbot):
    from db.themes import InvalidTheme, save_theme
    from layers import themes

    known = list(themes.layer_titles())
    save_theme(window.replica, "沿江巡查", "沿江巡查", "ecology", ["shoreline", "eco_cameras"], known_layers=known)
    with pytest.raises(InvalidTheme):
        save_theme(window.replica, "command", "x", "command", ["grids"], known_layers=known)
    with pytest.raises(InvalidTheme):
        save_theme(window.replica, "x", "x", "command", ["nope"], known_layers=known)
    window.state.set_theme("沿江巡查")
    qtbot.waitUntil(lambda: js(window, qtbot, "window.onemap.state()")["theme"] == "沿江巡查", timeout=5000)
    st = js(window, qtbot, "window.onemap.state()")
    assert set(st["visible"]) - {"water", "land", "district"} == {"shoreline", "eco_cameras"}
    assert window.onemaps.stack.currentWidget().isAncestorOf(window.onemaps.ecology)


def _shot(db: Path, out: Path, theme: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--db", str(db), "--screenshot", str(out),
                           "--size", "1280x720", "--theme", theme], capture_output=True, text=True, timeout=180, env=env)


def test_three_theme_screenshots_are_non_empty_and_differ(demo_copy, tmp_path):
    digests = {}
    for theme in ("command", "economy", "ecology"):
        out = tmp_path / f"{theme}.png"
        r = _shot(demo_copy, out, theme)
        assert r.returncode == 0, r.stderr[-2000:]
        assert out.stat().st_size > 50_000
        digests[theme] = hashlib.sha256(out.read_bytes()).hexdigest()
    assert len(set(digests.values())) == 3, json.dumps(digests)


def test_console_raises_ecology_alerts_into_the_queue(window, qtbot):
    window.screenshot_mode = False
    ctl = window.onemaps

    def n_eco():
        conn = window.replica.reader()
        try:
            return conn.execute("SELECT count(*) FROM events WHERE source = 'ecology_eye' "
                                "AND (external_id LIKE 'WQ-%' OR external_id LIKE 'CAM-%')").fetchone()[0]
        finally:
            conn.close()

    assert n_eco() == 0
    ctl.scan_alerts()
    qtbot.waitUntil(lambda: n_eco() > 0, timeout=30000)
    qtbot.waitUntil(lambda: ctl.ecology.alerts.rowCount() > 0, timeout=10000)
    created = n_eco()
    ctl.scan_alerts()
    qtbot.wait(3000)
    assert n_eco() == created
