"""The 智能预警 panel on the planted demo: list by severity, evidence, accept, dismiss with reason."""

from __future__ import annotations

import pytest

from app.robot import engine
from app.state import Session
from db.replica import open_replica
from tests.conftest import DEMO_UNTIL
from widgets.robot_panel import RobotPanel


@pytest.fixture
def replica(demo_copy):
    r = open_replica(demo_copy)
    engine.run_pass(r, now=DEMO_UNTIL)
    yield r
    r.close()


def test_panel_lists_by_severity_and_shows_evidence(qtbot, replica):
    panel = RobotPanel(replica, Session(role="district", user="op1"), autorun=False)
    qtbot.addWidget(panel)
    ws = panel.warnings()
    assert len(ws) >= 9
    assert [w["severity"] for w in ws] == sorted(w["severity"] for w in ws)
    assert panel.model.data(panel.model.index(0, 0)).endswith("级")
    hot = next(w for w in ws if w["rule"] == "hotspot")
    with qtbot.waitSignal(panel.evidenceReady) as sig:
        assert panel.select_warning(hot["id"])
    fc = sig.args[0]
    assert {f["properties"]["event_id"] for f in fc["features"]} == set(hot["evidence"]["events"])
    assert panel.evidence.count() == len(hot["evidence"]["events"])
    assert "建议" in panel.action.text()
    with qtbot.waitSignal(panel.eventRequested) as sig2:
        panel.evidence.itemClicked.emit(panel.evidence.item(0))
    assert sig2.args[0] in hot["evidence"]["events"]


def test_panel_accept_and_dismiss(qtbot, replica):
    panel = RobotPanel(replica, Session(role="district", user="op1"), autorun=False)
    qtbot.addWidget(panel)
    care = next(w for w in panel.warnings() if w["rule"] == "care_gap")
    panel.select_warning(care["id"])
    assert "**" in panel.explanation.text()  # the resident's name is masked
    assert not panel.dismiss_button.isEnabled()  # no reason yet
    with qtbot.waitSignal(panel.eventCreated, timeout=10_000) as sig:
        panel.accept_current()
    event_id = sig.args[0]
    conn = replica.reader()
    assert conn.execute("SELECT category FROM events WHERE id = ?", (event_id,)).fetchone()[0] == "LIVE.ELDERLY"
    conn.close()
    assert care["id"] not in [w["id"] for w in panel.warnings()]
    dev = next(w for w in panel.warnings() if w["rule"] == "device_health")
    panel.select_warning(dev["id"])
    panel.reason.setText("设备已报修，运维单位今日上门")
    assert panel.dismiss_button.isEnabled()
    worker = panel.dismiss_current()
    qtbot.waitUntil(lambda: worker.done and dev["id"] not in [w["id"] for w in panel.warnings()], timeout=10_000)
    assert "采纳率" in panel.precision.text() and "设备健康 0%（0/1）" in panel.precision.text()
    assert "关爱走访超期 100%（1/1）" in panel.precision.text()


def test_panel_run_now_and_wall_is_read_only(qtbot, replica):
    panel = RobotPanel(replica, Session(role="wall"), autorun=False)
    qtbot.addWidget(panel)
    assert not panel.accept_button.isVisibleTo(panel) and not panel.dismiss_button.isVisibleTo(panel)
    with qtbot.waitSignal(panel.passFinished, timeout=20_000) as sig:
        panel.run_now()
    assert sig.args[0].errors == []
    assert panel.warnings()


def test_thresholds_dialog_saves_a_changed_threshold(qtbot, replica):
    from widgets.robot_thresholds import RobotThresholdsDialog

    dialog = RobotThresholdsDialog(replica, Session(role="district", user="op1"))
    qtbot.addWidget(dialog)
    field = dialog.fields[("hotspot", "radius_m")]
    assert field.isEnabled()
    field.setValue(field.value() + 50)
    assert dialog.changes() == {("hotspot", "radius_m"): field.value()}
    dialog.save()
    assert dialog.result() == dialog.DialogCode.Accepted
    conn = replica.reader()
    try:
        assert engine.thresholds(conn)["hotspot"]["radius_m"] == field.value()
        assert conn.execute("SELECT edited_by FROM robot_settings WHERE rule = 'hotspot'").fetchone()[0] == "op1"
    finally:
        conn.close()


def test_thresholds_dialog_is_read_only_for_a_street(qtbot, replica):
    from widgets.robot_thresholds import RobotThresholdsDialog

    dialog = RobotThresholdsDialog(replica, Session(role="street", scope="320613006"))
    qtbot.addWidget(dialog)
    assert not any(f.isEnabled() for f in dialog.fields.values())
    dialog.save()
    assert "只读" in dialog.message.text()
    conn = replica.reader()
    try:
        assert conn.execute("SELECT count(*) FROM robot_settings").fetchone()[0] == 0
    finally:
        conn.close()
