"""``--lang en``: the action forms and their messages, the drill planner and the import dialog
show English texts (no CJK outside data values such as department or drill names)."""

from __future__ import annotations

import re

import pytest
from PySide6.QtWidgets import QFormLayout, QLabel

from app.services import EventService
from app.state import Session
from db.replica import open_replica

CJK = re.compile(r"[\u4e00-\u9fff]")
OPERATOR = "33"
EBIKE = {"source": "hotline_12345", "category": "ORDER.EBIKE", "title": "电瓶车乱停占道（测试）",
         "lon": 120.87, "lat": 32.01}  # fmt: skip


@pytest.fixture
def replica(demo_copy):
    rep = open_replica(demo_copy)
    yield rep
    rep.close()


def english(*texts: str) -> None:
    for text in texts:
        assert text and not CJK.search(text), text


def form_labels(form) -> list[str]:
    out = []
    for i in range(form.form.rowCount()):
        item = form.form.itemAt(i, QFormLayout.ItemRole.LabelRole)
        if item is not None and isinstance(item.widget(), QLabel):
            out.append(item.widget().text())
    return out


def test_action_forms_and_messages_are_english(qtbot, replica):
    from widgets.event_detail import EventDetailPanel

    session = Session(role="district", user=OPERATOR, lang="en")
    svc = EventService(replica, session)
    eid = svc.create(EBIKE)
    panel = EventDetailPanel(replica, session, lang="en")
    qtbot.addWidget(panel)
    panel.show_event(eid)
    form = panel.trigger("reject")
    assert form is not None
    english(form.title.text(), form.ok.text(), form.cancel.text(), *form_labels(form))
    assert form.title.text().startswith("Reject")
    problem = form.validate()
    english(problem)
    panel.close_form()

    panel.trigger("accept")
    assert panel.confirm(), panel.last_message
    kind, text = panel.last_message
    assert kind == "ok" and text.startswith("Accept done") and f"event #{eid}" in text
    english(text)

    form = panel.trigger("dispatch")
    labels = form_labels(form)
    assert labels[0].startswith("Target")
    english(form.title.text(), form.ok.text(), form.cancel.text(), *labels,
            form.fields["target"].filter.placeholderText())  # fmt: skip
    # suggestions name a data value (the department), the rest of the line is English
    first = form.fields["target"].list.item(0).text()
    assert first.startswith("★ Department ") and "category default department" in first
    assert panel.confirm(), panel.last_message
    assert panel.last_message[1].startswith("Dispatch done")

    form = panel.trigger("whistle")
    english(*form_labels(form), form.fields["level"].currentText(), form.fields["deadline"].suffix())


def test_bulk_dispatch_dialog_is_english(qtbot, replica):
    from widgets.dispatch_dialog import BulkDispatchDialog

    session = Session(role="district", user=OPERATOR, lang="en")
    svc = EventService(replica, session)
    eid = svc.create(EBIKE)
    dialog = BulkDispatchDialog(replica, svc, [{"id": eid, "version": 1, "title": "x", "status": "reported"}],
                                lang="en")  # fmt: skip
    qtbot.addWidget(dialog)
    english(dialog.windowTitle(), dialog.ok.text(), dialog.cancel.text(), dialog.note.placeholderText())


def test_drill_planner_is_english(qtbot, replica):
    from widgets.drill_planner import DrillPlannerWindow

    win = DrillPlannerWindow(replica, Session(role="drill", lang="en"))
    qtbot.addWidget(win)
    p = win.planner
    assert win.windowTitle() == "Drill planning and runs"
    tabs = [p.tabs.tabText(i) for i in range(p.tabs.count())]
    assert tabs == ["Plan", "Script (injects)", "Run", "Evaluation and report"]
    headers = [p.injects.horizontalHeaderItem(i).text() for i in range(p.injects.columnCount())]
    headers += [p.progress.horizontalHeaderItem(i).text() for i in range(p.progress.columnCount())]
    headers += [p.calendar.table.horizontalHeaderItem(i).text() for i in range(7)]
    buttons = [b.text() for b in (p.new_button, p.save_button, p.cancel_button, p.add_inject_button, p.save_injects_button,
                                  p.start_button, p.pause_button, p.resume_button, p.stop_button, p.report_button,
                                  p.calendar.today_button, p.calendar.week_button)]  # fmt: skip
    level_items = [p.level.itemText(i) for i in range(p.level.count())]
    english(*headers, *buttons, *level_items, p.clock_label.text(), p.template.itemText(0), p.list_title.text(),
            p.message.text())  # fmt: skip
    assert "Offset (min)" in headers and "Mon" in headers
    assert p.new_button.text() == "New drill"
    # drill list lines: theme, level and status in English; only the drill's title is data
    for i in range(p.list.count()):
        line = p.list.item(i).text()
        assert not CJK.search(line.split("  ")[2]) and not CJK.search(line.split("  ")[4]), line
    # a new inject row's status cell and the grid-picking prompt
    row = p.add_inject_row()
    assert p.injects.item(row, p.inject_cols.index("status")).text() == "pending"
    p.injects.setCurrentCell(-1, -1)
    p.pick_button.click()
    english(p.message.text())


def test_import_dialog_is_english(qtbot, replica):
    from widgets.import_dialog import ImportDialog

    dialog = ImportDialog(replica, "tester", lang="en")
    qtbot.addWidget(dialog)
    captions = [t.caption.text() for t in dialog.tiles.values()]
    assert captions == ["Created", "Updated", "Unchanged", "Quarantined"]
    formats = [dialog.fmt.itemText(i) for i in range(dialog.fmt.count())]
    english(dialog.windowTitle(), dialog.start_button.text(), dialog.cancel_button.text(), dialog.close_button.text(),
            dialog.browse.text(), dialog.quarantine_button.text(), dialog.path.placeholderText(), *formats,
            dialog.encoding.itemText(0), dialog.datum.currentText())  # fmt: skip


def test_export_dialog_is_english(qtbot, replica, tmp_path):
    from widgets.export_dialog import ExportDialog

    dialog = ExportDialog(replica, Session(role="district", lang="en"), out_dir=str(tmp_path))
    qtbot.addWidget(dialog)
    english(dialog.windowTitle(), dialog.start_button.text(), dialog.drills.text(), dialog.personal.text(),
            dialog.scope.itemText(0))  # fmt: skip


def test_chinese_mode_unchanged(qtbot, replica):
    from widgets.import_dialog import ImportDialog

    dialog = ImportDialog(replica, "tester")
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "数据导入 — 一张图指挥台"
    assert dialog.tiles["created"].caption.text() == "新建"
