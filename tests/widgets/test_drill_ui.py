"""Offscreen: planning and running a short drill through the real console; drill marking in the
queue, the map and the detail panel; field media that cannot play say 不可用; the player view."""

import datetime as dt

import pytest
from PySide6.QtCore import Qt

from app import timeutil
from app.state import AppState, Session
from db import drills as D
from db.replica import open_replica
from widgets.drill_media import FieldMediaPanel
from widgets.drill_planner import DrillPlanner
from widgets.event_queue import COL, DRILL_TAG
from widgets.main_window import MainWindow


def js(window, qtbot, script):
    box = {}
    window.map.run_json(script, lambda v: box.setdefault("v", v))
    qtbot.waitUntil(lambda: "v" in box, timeout=5000)
    return box["v"]


@pytest.fixture
def window(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    win = MainWindow(rep, AppState(Session(role="drill")))
    qtbot.addWidget(win)
    win.resize(1600, 900)
    with qtbot.waitSignal(win.mapReady, timeout=30000):
        win.show()
    yield win
    win.shutdown()
    rep.close()


def _check_street(planner, code):
    for i in range(planner.street_list.count()):
        it = planner.street_list.item(i)
        if it.data(Qt.ItemDataRole.UserRole) == code:
            it.setCheckState(Qt.CheckState.Checked)


def test_plan_and_run_a_short_drill_in_the_console(window, qtbot, tmp_path):
    dlg = window.open_drill_planner()
    p = dlg.planner
    conn = window.replica.reader()
    grid, street = conn.execute("SELECT id, street_code FROM grids WHERE kind = 'comprehensive' LIMIT 1").fetchone()
    conn.close()
    # plan from the 违章搭建 template, on a grid picked on the map
    idx = next(i for i in range(p.template.count()) if "违章搭建" in p.template.itemText(i))
    p.template.setCurrentIndex(idx)
    p.apply_template(p.template.currentData())
    assert p.injects.rowCount() == 3 and p.title.text() == "违章搭建快速处置演练"
    _check_street(p, street)
    p.tabs.setCurrentIndex(0)
    window.map.gridClicked.emit(grid)  # a grid clicked on the map joins the plan
    assert grid in p.grids.text()
    for r in range(p.injects.rowCount()):
        p.injects.setCurrentCell(r, 0)
        p.start_pick()
        window.map.gridClicked.emit(grid)
        assert p.injects.item(r, p.inject_cols.index("grid_id")).text() == grid
    p.start.setDateTime(p.start.dateTime().fromSecsSinceEpoch(int(timeutil.now().timestamp()) + 120))
    ids = p.save_plan()
    assert len(ids) == 1 and p.drill["id"] == ids[0]
    did = ids[0]
    conn = window.replica.reader()
    assert conn.execute("SELECT count(*) FROM drill_injects WHERE drill_id = ? AND grid_id = ?",
                        (did, grid)).fetchone()[0] == 3
    conn.close()
    # a second plan at the same time on the same grid is flagged
    p.new_drill()
    p.level.setCurrentIndex(2)
    _check_street(p, street)
    p.grids.setText(grid)
    p.start.setDateTime(p.start.dateTime().fromSecsSinceEpoch(int(timeutil.now().timestamp()) + 600))
    assert p.check_conflicts() and "冲突" in p.conflict_label.text()
    # run it: start fires the offset-0 inject into the real queue, marked 演练
    p.select_drill(did)
    p.start_button.click()
    assert did in window.drills.owned and p.drill["status"] == "running"
    conn = window.replica.reader()
    eid = conn.execute("SELECT event_id FROM drill_injects WHERE drill_id = ? AND seq = 1", (did,)).fetchone()[0]
    conn.close()
    assert eid is not None
    window.queue.reload_now()
    qtbot.waitUntil(lambda: window.queue.model().row_of(eid) >= 0, timeout=5000)
    m = window.queue.model()
    assert m.data(m.index(m.row_of(eid), COL["title"])).startswith(DRILL_TAG)
    qtbot.waitUntil(lambda: js(window, qtbot, "window.onemap.state()")["drill"] is True, timeout=5000)
    assert window.drill_bar.isVisible() and "演练进行中" in window.drill_bar.label.text()
    window.state.select_event(eid)
    qtbot.waitUntil(lambda: window.detail.current is not None and window.detail.current["id"] == eid, timeout=5000)
    assert window.detail.drill_tag.isVisibleTo(window.detail)
    # pause / speed / resume / stop through the planner's run controls
    p.pause_button.click()
    assert p.drill["status"] == "paused"
    p.resume_button.click()
    p.speed.setCurrentIndex(4)
    p.speed.activated.emit(4)
    assert p.drill["speed"] == 10.0
    p.stop_button.click()
    assert p.drill["status"] == "stopped"
    qtbot.waitUntil(lambda: js(window, qtbot, "window.onemap.state()")["drill"] is False, timeout=5000)
    # the report of the drill that was just stopped
    out = tmp_path / "aar.html"
    p.export_report(str(out))
    qtbot.waitUntil(lambda: getattr(p, "report_written", None) == out, timeout=15000)
    assert "提前结束" in out.read_text(encoding="utf-8")


def test_closing_the_coordinator_console_pauses_its_drill(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    try:
        conn = rep.reader()
        did = conn.execute("SELECT id FROM drills WHERE status = 'scheduled' ORDER BY starts_at LIMIT 1").fetchone()[0]
        conn.close()
        from widgets.drill_console import DrillController

        c = DrillController(rep, Session(role="drill"), autostart=False)
        assert c.start(did)["status"] == "running"
        c.shutdown()
        conn = rep.reader()
        status, elapsed = conn.execute("SELECT status, elapsed_s FROM drills WHERE id = ?", (did,)).fetchone()
        conn.close()
        assert status == "paused" and elapsed >= 0
        c2 = DrillController(rep, Session(role="drill"), autostart=False)
        assert c2.resume(did)["status"] == "running" and did in c2.owned
        assert c2.start(did) is None  # cannot start twice (the error is reported, nothing changes)
        c2.shutdown()
    finally:
        rep.close()


def test_player_sees_no_future_injects_or_expected_actions(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    try:
        conn = rep.reader()
        did = conn.execute("SELECT id FROM drills WHERE status = 'scheduled' ORDER BY starts_at LIMIT 1").fetchone()[0]
        done = conn.execute("SELECT id FROM drills WHERE status = 'completed' LIMIT 1").fetchone()[0]
        conn.close()
        p = DrillPlanner(rep, Session(role="street", scope="320613001"))
        qtbot.addWidget(p)
        assert "expected_action" not in p.inject_cols and "allowed_min" not in p.inject_cols
        p.select_drill(did)
        assert p.injects.rowCount() == 0  # nothing sent yet
        p.select_drill(done)
        assert p.injects.rowCount() > 0
        assert not p.save_button.isEnabled() and not p.start_button.isVisibleTo(p)
        assert p.calendar.table.rowCount() == 1
        p.calendar.set_mode("month")
        assert p.calendar.table.rowCount() == 6
    finally:
        rep.close()


def test_field_media_that_cannot_play_says_unavailable(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    try:
        conn = rep.reader()
        eid = conn.execute("SELECT id FROM events WHERE drill_id IS NULL LIMIT 1").fetchone()[0]
        conn.close()
        D.add_media(rep, {"event_id": eid, "kind": "video", "uri": "media/none.mp4", "device": "BODYCAM-1",
                          "recorded_at": timeutil.to_iso(timeutil.now() - dt.timedelta(minutes=5))}, actor="op")
        panel = FieldMediaPanel(rep)
        qtbot.addWidget(panel)
        panel.show_event(eid)
        assert panel.tree.topLevelItemCount() == 1
        dlg = panel.open_row(0)
        assert dlg.result and dlg.result.startswith("不可用") and "文件不存在" in dlg.result
        assert panel.tree.topLevelItem(0).text(4).startswith("不可用")
        dlg.close()
    finally:
        rep.close()


def test_media_reference_is_registered_and_a_dead_stream_times_out(qtbot, demo_copy, monkeypatch):
    import widgets.drill_media as dm

    monkeypatch.setattr(dm, "STREAM_TIMEOUT_MS", 300)
    rep = open_replica(demo_copy)
    try:
        conn = rep.reader()
        eid = conn.execute("SELECT id FROM events WHERE drill_id IS NULL LIMIT 1 OFFSET 3").fetchone()[0]
        conn.close()
        panel = FieldMediaPanel(rep)
        qtbot.addWidget(panel)
        panel.show_event(eid)
        panel.uri.setText("")
        assert panel.add_media() is None and "uri" in panel.message.text()
        panel.kind.setCurrentIndex(panel.kind.findData("stream"))
        panel.uri.setText("rtsp://192.0.2.1/live/none")  # TEST-NET: never answers
        assert panel.add_media() is not None and panel.tree.topLevelItemCount() == 1
        dlg = panel.open_row(0)
        qtbot.waitUntil(lambda: dlg.result is not None, timeout=15000)
        assert dlg.result.startswith("不可用")
        dlg.close()
    finally:
        rep.close()


def test_coordinator_evaluates_and_tracks_the_improvement_plan(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    try:
        conn = rep.reader()
        did = conn.execute("SELECT id FROM drills WHERE status = 'completed' ORDER BY starts_at DESC LIMIT 1").fetchone()[0]
        conn.close()
        p = DrillPlanner(rep, Session(role="drill"))
        qtbot.addWidget(p)
        p.select_drill(did)
        before = p.findings.rowCount()
        p.strengths.setPlainText("受理迅速\n部门联动顺畅")
        p.improvements.setPlainText("夜间值守需加强")
        p.save_evaluation()
        p.f_action.setText("组织夜间值守培训")
        p.f_owner.setText("区指挥中心")
        p.f_due.setText("2026-13-01")
        p.add_finding()
        assert p.findings.rowCount() == before and "日期无效" in p.message.text()
        p.f_due.setText("2026-12-31")
        p.add_finding()
        assert p.findings.rowCount() == before + 1
        p.advance_finding(before)
        assert p.findings.item(before, 3).text() == "进行中"
        conn = rep.reader()
        strengths, = conn.execute("SELECT strengths FROM drills WHERE id = ?", (did,)).fetchone()
        status, = conn.execute("SELECT status FROM drill_findings WHERE drill_id = ? ORDER BY id DESC LIMIT 1",
                               (did,)).fetchone()
        conn.close()
        assert strengths.splitlines() == ["受理迅速", "部门联动顺畅"] and status == "in_progress"
    finally:
        rep.close()
