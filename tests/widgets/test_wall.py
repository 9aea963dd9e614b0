"""The command wall (widgets/wall_window.py) on a real demo replica, offscreen, at exact sizes."""

import re
import time

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QAbstractButton

from app import masking
from app.state import AppState, Session
from db import wall_store
from db.event_ops import create_event
from db.replica import open_replica
from widgets.app_main import _save_exact
from widgets.wall_window import WallWindow

NAME, PHONE, ID_NO = "欧阳明轩", "13912345678", "320613199001011236"
LON, LAT = 120.886923, 32.018057
PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])")


def _report(rep, *, klass="ordinary", category="ENV.GARBAGE", title=None):
    return create_event(rep, {
        "source": "hotline_12345", "category": category, "class": klass, "priority": 1 if klass == "emergency" else 3,
        "title": title or f"居民{NAME}反映工农路88号楼道堆物，电话{PHONE}",
        "description": f"来电人{NAME}，身份证{ID_NO}，电话{PHONE}。", "reporter_name": NAME,
        "reporter_phone": PHONE, "reporter_id_no": ID_NO, "lon": LON, "lat": LAT, "address": "工农路88号",
    }, actor="test")  # fmt: skip


def js(win, qtbot, script):
    box = {}
    win.map.run_json(script, lambda v: box.setdefault("v", v))
    qtbot.waitUntil(lambda: "v" in box, timeout=8000)
    return box["v"]


def _wait(pred, timeout_ms: int) -> None:
    from PySide6.QtCore import QDeadlineTimer, QEventLoop, QTimer

    deadline = QDeadlineTimer(timeout_ms)
    while not pred():
        assert not deadline.hasExpired(), "timed out"
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()


@pytest.fixture(scope="module")
def wall(qapp, demo_db, tmp_path_factory):
    """One wall for the module (3840×700, the same 5.5:1 shape; 7680×1400 is shot by tests/test_cli_wall.py)."""
    import shutil

    path = tmp_path_factory.mktemp("wall") / "demo.db"
    shutil.copy(demo_db, path)
    rep = open_replica(path)
    event_id = _report(rep)
    win = WallWindow(rep, AppState(Session(role="wall")), geometry=QRect(0, 0, 3840, 700), sound=False)
    win.resize(3840, 700)
    ready = []
    win.mapReady.connect(lambda: ready.append(True))
    win.show()
    _wait(lambda: ready and win.controller.data is not None, 90000)
    win.test_event_id = event_id
    yield win
    win.shutdown()
    win.close()
    win.deleteLater()
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the web page goes before the profile
    done = []
    from PySide6.QtCore import QTimer

    QTimer.singleShot(300, lambda: done.append(True))
    _wait(lambda: done, 5000)
    rep.close()


def test_wall_screenshot_is_exactly_the_size_asked(wall, tmp_path):
    out = tmp_path / "wall.png"
    _save_exact(wall, out, (3840, 700))
    from PySide6.QtGui import QImage

    img = QImage(str(out))
    assert (img.width(), img.height()) == (3840, 700)
    assert wall.columns_per_side() == 2  # ultra-wide: two columns per side
    assert wall.map.width() > 0.5 * 3840  # the spare width goes to the map


def test_wall_shows_no_action_buttons_and_has_clock_and_freshness(wall):
    assert wall.findChildren(QAbstractButton) == []
    assert re.match(r"\d{4}-\d{2}-\d{2} 周. \d{2}:\d{2}:\d{2}", wall.clock.text())
    assert wall.fresh.text().startswith("数据更新")
    assert wall.kpis.tiles and all("nan" not in t.value.text().lower() for t in wall.kpis.tiles.values())


def test_no_personal_data_in_wall_texts_or_page(wall, qtbot):
    texts = "\n".join(wall.visible_texts())
    assert any("堆物" in t for t in wall.ticker.texts())  # the test event is on the ticker, masked
    for pattern in (PHONE_RE, ID_RE):
        assert not pattern.search(texts), pattern.search(texts)
    assert NAME not in texts and masking.find_personal(texts, [NAME]) == []
    html = js(wall, qtbot, "JSON.stringify(document.documentElement.outerHTML)")
    assert NAME not in html and not PHONE_RE.search(html) and not ID_RE.search(html)
    js(wall, qtbot, f"JSON.stringify(window.onemap.openEventPopup({wall.test_event_id}))")
    popup = js(wall, qtbot, "JSON.stringify((document.querySelector('.leaflet-popup-content') || {}).innerText || '')")
    assert "堆物" in popup  # the popup shows the event …
    assert NAME not in popup and PHONE not in popup and "88号" not in popup  # … masked


def test_emergency_takes_over_and_wall_control_ends_it(wall, qtbot):
    rep = wall.replica
    eid = _report(rep, klass="emergency", category="EMG.FIRE", title=f"{NAME}家中起火，电话{PHONE}")
    wall.watcher.check()
    qtbot.waitUntil(lambda: wall.rotation.takeover is not None, timeout=5000)
    assert wall.rotation.takeover.event_id == eid
    assert wall.banner.isVisibleTo(wall)
    assert NAME not in wall.banner_text.text() and PHONE not in wall.banner_text.text()
    assert "应急接管" in wall.mode_label.text()
    wall_store.set_control(rep, "end_takeover", "1", actor="test")
    wall.watcher.check()
    qtbot.waitUntil(lambda: wall.rotation.takeover is None, timeout=5000)
    assert not wall.banner.isVisibleTo(wall)


def test_wall_control_pauses_and_switches_layouts(wall, qtbot):
    rep = wall.replica
    wall_store.save_layout(rep, "半屏", {"mode": "half", "columns": 1})
    wall_store.set_control(rep, "layout", "半屏")
    wall_store.set_control(rep, "rotation", "paused")
    wall.watcher.check()
    qtbot.waitUntil(lambda: wall.layout_name == "半屏", timeout=5000)
    assert wall.content.width() == 1920
    assert wall.rotation.mode == "paused"
    wall.apply_control({"layout": "仅地图"})
    assert wall.columns_per_side() == 0


def test_rotation_switches_theme_inside_the_page(wall, qtbot):
    """A theme rotation toggles layers in the loaded page: no reload (reloads grew the renderer)."""
    before = js(wall, qtbot, "JSON.stringify({n: window.__wallPageMark = (window.__wallPageMark || 0) + 1})")
    assert before == {"n": 1}
    wall.state.set_theme("ecology")
    qtbot.waitUntil(lambda: (js(wall, qtbot, "window.onemap.state()") or {}).get("theme") == "ecology",
                    timeout=8000)  # fmt: skip
    assert js(wall, qtbot, "JSON.stringify({n: window.__wallPageMark || 0})") == {"n": 1}  # the same document
    wall.state.set_theme("command")
    qtbot.waitUntil(lambda: (js(wall, qtbot, "window.onemap.state()") or {}).get("theme") == "command",
                    timeout=8000)  # fmt: skip


def test_clock_restyles_only_markers_whose_due_state_changed(wall, qtbot):
    """The page's 30-s clock tick restyles the markers whose due ring changes, not all of them
    (restyling every marker each tick grew the renderer during the wall soak)."""
    wall.rotation.pause()
    wall.state.set_theme("command")
    qtbot.waitUntil(lambda: (js(wall, qtbot, "window.onemap.state()") or {}).get("theme") == "command",
                    timeout=8000)  # fmt: skip
    assert js(wall, qtbot, "window.onemap.countFeatures('events')") > 100
    js(wall, qtbot, "JSON.stringify(window.onemap.restyleDue())")
    assert js(wall, qtbot, "JSON.stringify(window.onemap.restyleDue())") == 0  # nothing changed since
    # one open event becomes due-soon now and overdue a moment later
    soon = """JSON.stringify((function (id) {
      var m = null;
      window.onemap.map.eachLayer(function (l) { if (l.feature && String(l.feature.id) === id && l.getLatLng) { m = l; } });
      if (!m) { return -1; }
      var f = JSON.parse(JSON.stringify(m.feature));
      f.properties.open = true; f.properties.hdue = Date.now() + 400; delete f.properties.adue;
      window.onemap.applyDelta({events: {upsert: [f]}});
      return window.onemap.restyleDue();
    })('EVENT_ID'))""".replace("EVENT_ID", str(wall.test_event_id))  # fmt: skip
    assert js(wall, qtbot, soon) == 0  # the upsert styled it already
    qtbot.waitUntil(lambda: js(wall, qtbot, "JSON.stringify(window.onemap.restyleDue())") == 1, timeout=8000)
    assert js(wall, qtbot, "JSON.stringify(window.onemap.restyleDue())") == 0
    wall.rotation.resume(time.monotonic())


def test_wall_canvases_overdraw_little(wall, qtbot):
    """The wall's map canvases extend 10 % beyond the view on each side, not the page's 30 %."""
    sizes = js(wall, qtbot, """JSON.stringify({map: window.onemap.map.getSize(),
      canvases: Array.prototype.map.call(document.querySelectorAll('.leaflet-container canvas'),
        function (c) { return parseFloat(c.style.width); })})""")  # fmt: skip
    assert sizes["canvases"]
    for width in sizes["canvases"]:
        assert width == pytest.approx(sizes["map"]["x"] * 1.2, abs=2)


def test_wall_sync_pulls_in_the_background_and_shows_an_unreachable_upstream(wall, qtbot):
    """A wall over a sync replica runs the sync worker (it only pulls: the wall writes nothing);
    when the upstream cannot be reached the freshness line says so, in the warning colour."""
    from tests.test_sync_status import make_client
    from tests.widgets.test_sync_worker import FakeEngine
    from widgets.sync_status import install_wall_sync

    rep = wall.replica
    assert install_wall_sync(wall, None) is None  # a plain replica: no worker
    make_client(rep)
    try:
        engine = FakeEngine(rep)
        ui = install_wall_sync(wall, None, engine_factory=lambda: engine, interval_s=3600)
        qtbot.waitUntil(lambda: wall.sync_online is True, timeout=15000)
        assert engine.calls >= 1 and "上游同步中断" not in wall.fresh.text()
        ui.shutdown()
        down = install_wall_sync(wall, None, engine_factory=lambda: FakeEngine(rep, fail=OSError("refused")),
                                 interval_s=3600)  # fmt: skip
        qtbot.waitUntil(lambda: wall.sync_online is False, timeout=15000)
        assert "上游同步中断" in wall.fresh.text() and wall.fresh.property("stale") is True
        down.shutdown()
    finally:
        with rep.write("sync") as c:
            c.execute("DELETE FROM sync_state")
        wall.sync_online = None
