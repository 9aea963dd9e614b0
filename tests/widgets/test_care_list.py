"""The 关爱名单 window: scope, masking, the add / edit / visit / deactivate forms, and the robot
panel's button that opens it (a recorded visit clears the care warning)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app import care_list as cl
from app.robot import engine
from app.state import Session
from db.replica import open_replica
from tests.conftest import DEMO_UNTIL
from widgets.care_list import CareListWindow
from widgets.robot_panel import RobotPanel


@pytest.fixture
def replica(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


def settle(qtbot, w: CareListWindow) -> CareListWindow:
    """Wait for the window's read (it runs in a worker)."""
    qtbot.waitUntil(lambda: not w.loading and not w._again, timeout=10_000)
    return w


def window(qtbot, replica, **session) -> CareListWindow:
    w = CareListWindow(replica, Session(**{"role": "district", "user": "op1", **session}), now=lambda: DEMO_UNTIL)
    qtbot.addWidget(w)
    return settle(qtbot, w)


def written(qtbot, w: CareListWindow, click) -> int:
    with qtbot.waitSignal(w.changed, timeout=10_000) as sig:
        click()
    return sig.args[0]


def test_scope_filters_and_overdue(qtbot, replica):
    w = window(qtbot, replica)
    every = w.residents()
    assert len(every) > 500 and w.street.isVisibleTo(w)
    street = every[0]["street_code"]
    w.street.setCurrentIndex(w.street.findData(street))
    settle(qtbot, w)
    assert {r["street_code"] for r in w.residents()} == {street}
    assert all(w.grid.itemData(i) is None or w.grid.itemData(i).startswith(street) for i in range(w.grid.count()))
    w.overdue_only.setChecked(True)
    settle(qtbot, w)
    over = w.residents()
    assert over and all(r["overdue"] for r in over)
    assert "超期" in w.model.text(over[0], "due")

    st = window(qtbot, replica, role="street", scope=street)
    assert not st.street.isVisibleTo(st) and {r["street_code"] for r in st.residents()} == {street}
    assert {g["street_code"] for g in st.all_grids} == {street}  # the add form offers only its grids


def test_masked_for_a_role_without_personal_rights(qtbot, replica):
    full = window(qtbot, replica).residents()[0]
    w = window(qtbot, replica, role="drill")
    r = next(x for x in w.residents() if x["id"] == full["id"])
    name_cell = w.model.text(r, "name")
    assert name_cell.startswith(full["name"][0]) and "*" in name_cell and full["name"] not in name_cell
    assert "****" in w.model.text(r, "phone") and full["phone"] not in w.model.text(r, "phone")
    w.select_resident(r["id"])
    assert full["name"] not in w.detail.text() and full["phone"] not in w.detail.text()
    assert "脱敏" in w.banner.text() and "演练" in w.banner.text()
    assert not w.add_button.isVisibleTo(w) and w.open_add() is None and w.open_visit() is None
    with pytest.raises(PermissionError):
        CareListWindow(replica, Session(role="wall"))


def test_add_edit_visit_and_deactivate_through_the_forms(qtbot, replica):
    w = window(qtbot, replica)
    grid = w.all_grids[3]
    d = w.open_add()
    d.name.setText("林淑珍")
    d.kind.setCurrentIndex(d.kind.findData("disabled"))
    d.phone.setText("1381234")  # too short
    d.grid.setEditText(grid["id"])
    d.ok_button.click()
    assert d.isVisible() and "电话号码格式不对" in d.message.text()
    d.phone.setText("13912345678")
    d.grid.setEditText("no-such-grid")
    d.ok_button.click()
    assert "不在本辖区" in d.message.text()
    d.grid.setCurrentIndex(d.grid.findData(grid["id"]))
    d.address.setText("崇川区某小区 3 幢 101 室")
    d.every.setValue(10)
    cid = written(qtbot, w, d.ok_button.click)
    assert not d.isVisible()
    row = next(r for r in w.residents() if r["id"] == cid)
    assert (row["name"], row["kind"], row["grid_id"], row["interval"]) == ("林淑珍", "disabled", grid["id"], 10)
    assert w.current["id"] == cid and w.model.text(row, "last_visit") == "从未走访"

    e = w.open_edit()
    assert e.name.text() == "林淑珍" and e.every.value() == 10
    e.note.setPlainText("独居，行动不便")
    written(qtbot, w, e.ok_button.click)
    assert w.current["note"] == "独居，行动不便" and "已保存" in w.message.text()

    v = w.open_visit()
    assert v.at.dateTime().toSecsSinceEpoch() == int(DEMO_UNTIL.timestamp())
    v.at.setDateTime(v.at.dateTime().addDays(1))
    v.ok_button.click()
    assert v.isVisible() and "未来" in v.message.text()
    v.at.setDateTime(v.at.dateTime().addDays(-1).addSecs(-3600))
    assert v.visitor.count() >= 1  # the grid's people are offered
    v.visitor.setEditText("社区志愿者 周红")
    v.note.setPlainText("身体尚好")
    written(qtbot, w, v.ok_button.click)
    row = next(r for r in w.residents() if r["id"] == cid)
    assert row["last_visit"] == "2026-11-20T14:30:00+08:00" and not row["overdue"]
    assert "社区志愿者 周红" in w.visits.item(0).text()

    x = w.open_deactivate()
    x.ok_button.click()
    assert x.isVisible() and "原因" in x.message.text()
    x.reason.setEditText("已入住养老机构")
    written(qtbot, w, x.ok_button.click)
    assert cid not in [r["id"] for r in w.residents()]
    w.inactive.setChecked(True)
    settle(qtbot, w)
    assert w.select_resident(cid)
    assert not w.current["active"] and not w.visit_button.isEnabled()
    assert "社区志愿者 周红" in w.visits.item(0).text()  # the visits stay
    assert "已入住养老机构" in w.detail.text()


def test_robot_panel_opens_the_list_and_a_visit_clears_the_warning(qtbot, replica):
    engine.run_pass(replica, now=DEMO_UNTIL)
    panel = RobotPanel(replica, Session(role="district", user="op1"), autorun=False, now=lambda: DEMO_UNTIL)
    qtbot.addWidget(panel)
    care = next(w for w in panel.warnings() if w["rule"] == "care_gap")
    cid = int(care["evidence"]["people"][0].split(":")[1])
    assert panel.care_button.isVisibleTo(panel)
    w = settle(qtbot, panel.open_care_list())
    assert w.select_resident(cid) and w.current["overdue"]
    v = w.open_visit()
    v.at.setDateTime(v.at.dateTime().addSecs(-1800))
    v.visitor.setCurrentIndex(0)
    with qtbot.waitSignal(panel.passFinished, timeout=20_000):  # the window's write triggers a pass
        v.ok_button.click()
    assert care["id"] not in [x["id"] for x in panel.warnings()]
    conn = replica.reader()
    assert conn.execute("SELECT status FROM robot_warnings WHERE id = ?", (care["id"],)).fetchone()[0] == "cleared"
    assert conn.execute("SELECT person_id FROM visits WHERE care_id = ? ORDER BY id DESC", (cid,)).fetchone()[0]
    conn.close()
    assert panel.open_care_list() is w  # raised, not a second window

    wall = RobotPanel(replica, Session(role="wall"), autorun=False)
    qtbot.addWidget(wall)
    assert not wall.care_button.isVisibleTo(wall) and wall.open_care_list() is None


def test_a_map_click_fills_the_grid_of_the_open_form(qtbot, replica):
    from app.state import AppState

    every = window(qtbot, replica).residents()
    street = every[0]["street_code"]
    session = Session(role="street", scope=street, user="st1")
    state = AppState(session)
    w = CareListWindow(replica, session, state=state, now=lambda: DEMO_UNTIL)
    qtbot.addWidget(w)
    settle(qtbot, w)
    mine, theirs = w.all_grids[1]["id"], next(r["grid_id"] for r in every if r["street_code"] != street)
    state.select_grid(mine)
    d = w.open_add()
    assert d.values()["grid_id"] == mine  # the grid selected on the map
    assert w.open_visit() is None and "表单" in w.message.text()  # one form at a time, nothing typed is lost
    state.select_grid(theirs)
    assert "不在本辖区" in d.message.text() and d.values()["grid_id"] == mine
    state.select_grid(w.all_grids[2]["id"])
    assert d.values()["grid_id"] == w.all_grids[2]["id"]


def test_console_wiring_map_click_reaches_the_form(qtbot, demo_copy):
    """In the console: the 智能预警 dock opens the list; a grid clicked on the map fills the add form."""
    from app.state import AppState
    from widgets.main_window import MainWindow

    rep = open_replica(demo_copy)
    win = MainWindow(rep, AppState(Session(role="district", user="op1")))
    qtbot.addWidget(win)
    try:
        win.robot_panel.timer.stop()
        care = settle(qtbot, win.robot_panel.open_care_list())
        assert care is not None and care.isVisible()
        d = care.open_add()
        gid = care.all_grids[5]["id"]
        win.map.gridClicked.emit(gid)
        assert d.values()["grid_id"] == gid
        d.reject()
    finally:
        win.robot_panel.shutdown()
        win.watcher.stop()
        win.queue.shutdown()
        rep.close()


def test_english_labels(qtbot, replica):
    w = window(qtbot, replica, lang="en")
    assert w.windowTitle().startswith("Care list")
    headers = [w.model.headerData(i, Qt.Orientation.Horizontal) for i in range(w.model.columnCount())]
    assert headers[:3] == ["Name", "Kind", "Grid / community"] and headers[-1] == "Due"
    r = w.residents()[0]
    assert w.model.text(r, "kind") in cl.KIND_EN.values() and "overdue" in w.model.text(r, "due")
    d = w.open_add()
    d.name.setText("Li")
    d.phone.setText("12345")
    d.grid.setCurrentIndex(0)
    d.ok_button.click()
    assert d.message.text().startswith("phone '12345' must be")  # the English half of the refusal
