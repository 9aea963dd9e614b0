"""`--lang en`: the robot panel, the thresholds dialog, the dashboard dock, the wall control and the
queue tools show English (only data values — names, explanations — stay Chinese)."""

from __future__ import annotations

import re

import pytest
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QPushButton

from app.robot import engine
from app.state import AppState, Session
from db.replica import open_replica
from tests.conftest import DEMO_UNTIL
from widgets.dashboard import install_console_panels
from widgets.main_window import MainWindow
from widgets.robot_panel import RobotPanel
from widgets.robot_thresholds import RobotThresholdsDialog

CJK = re.compile(r"[\u4e00-\u9fff]")
EN = Session(role="district", user="op1", lang="en")


def english(text: str) -> bool:
    return bool(text) and not CJK.search(text)


@pytest.fixture
def replica(demo_copy):
    r = open_replica(demo_copy)
    engine.run_pass(r, now=DEMO_UNTIL)
    yield r
    r.close()


def test_robot_panel_in_english(qtbot, replica):
    panel = RobotPanel(replica, EN, autorun=False)
    qtbot.addWidget(panel)
    for b in (panel.run_button, panel.thresholds_button, panel.accept_button, panel.dismiss_button):
        assert english(b.text()), b.text()
    assert panel.run_button.text() == "Run now"
    assert english(panel.reason.placeholderText())
    headers = [panel.model.headerData(i, panel.table.horizontalHeader().orientation()) for i in range(5)]
    assert headers == ["Level", "Rule", "Scope", "Explanation", "Updated"]
    ws = panel.warnings()
    assert ws
    assert panel.model.data(panel.model.index(0, 0)).startswith("Level ")
    for row in range(len(ws)):
        assert english(panel.model.data(panel.model.index(row, 1)))  # rule titles
    assert panel.precision.text().startswith("Precision")
    assert english(panel.precision.text())
    hot = next(w for w in ws if w["rule"] == "hotspot")
    panel.select_warning(hot["id"])
    assert panel.action.text().startswith("Suggested: ")
    assert panel.explanation.text().startswith("Level ")  # level and rule in English, then the data
    head = panel.explanation.text().split(": ", 1)[0]
    assert english(head) and "Hot spots" in head
    assert panel.evidence.item(0).text().startswith("Event #")
    panel.dismiss_current()
    assert panel.message.text() == "A dismissal needs a reason"


def test_thresholds_dialog_in_english(qtbot, replica):
    dialog = RobotThresholdsDialog(replica, EN)
    qtbot.addWidget(dialog)
    assert english(dialog.windowTitle())
    boxes = dialog.findChildren(QGroupBox)
    assert len(boxes) == len(engine.RULES)
    for box in boxes:
        assert english(box.title()), box.title()
        form = box.layout()
        assert isinstance(form, QFormLayout)
        for i in range(form.rowCount()):
            label = form.itemAt(i, QFormLayout.ItemRole.LabelRole).widget()
            assert english(label.text()), label.text()
    for field in dialog.fields.values():
        assert not CJK.search(field.suffix()) and english(field.toolTip())
    for label in dialog.findChildren(QLabel):
        assert not CJK.search(label.text()), label.text()
    for b in dialog.findChildren(QPushButton):
        assert english(b.text()), b.text()
    read_only = RobotThresholdsDialog(replica, Session(role="street", scope="320613006", lang="en"))
    qtbot.addWidget(read_only)
    assert read_only.message.text().startswith("Read-only")


def test_dashboard_wall_control_and_queue_tools_in_english(qtbot, demo_copy):
    rep = open_replica(demo_copy)
    win = MainWindow(rep, AppState(EN))
    install_console_panels(win)
    qtbot.addWidget(win)
    win.resize(1920, 1080)
    with qtbot.waitSignal(win.mapReady, timeout=60000):
        win.show()
    try:
        qtbot.waitUntil(lambda: win.dashboard.controller.data is not None, timeout=20000)
        assert win.dashboard_dock.windowTitle() == "Dashboard"
        assert win.robot_dock.windowTitle() == "Robot warnings"
        assert win.findChild(QPushButton, "RobotToggle").text().startswith("Robot warnings")
        for title in win.dashboard.charts.titles.values():
            assert english(title), title
        for chart in win.dashboard.charts.charts().values():
            assert chart.empty_text.textItem.toPlainText() == "no data"
        charts = win.dashboard.charts
        for chart in (charts.category, charts.source, charts.departments):  # names with an English form
            assert chart.labels and all(english(lab) for lab in chart.labels), chart.labels
        tiles = win.dashboard.tiles.tiles
        assert tiles
        for tile in tiles.values():
            label, _value, unit, _tip = tile.texts()
            assert english(label) and not CJK.search(unit), (label, unit)
        assert english(win.dashboard.scope_label.text())
        # queue tools and wall control in the header
        assert win.findChild(type(win.dashboard.reset_button), "WallControlButton").text() == "Wall control"
        from PySide6.QtWidgets import QToolButton

        assert win.findChild(QToolButton, "SavedFiltersButton").text() == "Saved filters ▾"
        assert win.findChild(QToolButton, "ExportQueueButton").text() == "Export queue"
        dialog = win.open_wall_control()
        assert english(dialog.windowTitle())
        for b in dialog.buttons.values():
            assert english(b.text()), b.text()
        assert [dialog.theme.itemText(i) for i in range(dialog.theme.count())] and all(
            english(dialog.theme.itemText(i)) for i in range(dialog.theme.count()))
        dialog.buttons["pause"].click()
        assert dialog.status.text().startswith("Sent: ")
        dialog.close()
    finally:
        win.shutdown()
        rep.close()
