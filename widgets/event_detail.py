"""Event detail side panel: the selected event's facts and its timeline (read-only view)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QScrollArea,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import labels, timeutil
from app.event_detail import get_event, get_log

FIELDS = (
    ("id", "编号", "ID"),
    ("status", "状态", "Status"),
    ("class", "类别", "Class"),
    ("priority", "等级", "Priority"),
    ("category_name", "事项分类", "Category"),
    ("source", "来源", "Source"),
    ("external_id", "来源编号", "Source id"),
    ("street_name", "街道", "Street"),
    ("grid_name", "网格", "Grid"),
    ("address", "地址", "Address"),
    ("reported_at", "上报时间", "Reported"),
    ("arrival_due_at", "到场时限", "Arrival due"),
    ("handle_due_at", "办结时限", "Handling due"),
    ("reporter_name", "反映人", "Reporter"),
    ("reporter_phone", "联系电话", "Phone"),
)


def _plain(text: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab


class EventDetailPanel(QWidget):
    """Shows one event; ``show_event(id)`` reads it through ``connect_fn``."""

    def __init__(self, connect_fn: Callable, *, street_scope: str | None = None, lang: str = "zh", parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("EventDetailPanel")
        self._connect = connect_fn
        self._scope = street_scope
        self._lang = lang
        self.current: dict | None = None
        self.title = _plain("请选择事件" if lang == "zh" else "Select an event")
        self.title.setObjectName("detailTitle")
        self.drill_tag = _plain("演练")
        self.drill_tag.setObjectName("drillTag")
        self.drill_tag.hide()
        self.description = _plain()
        self.description.setObjectName("detailDescription")
        form_box = QWidget()
        self.form = QFormLayout(form_box)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.values: dict[str, QLabel] = {}
        for key, zh, en in FIELDS:
            val = _plain()
            self.values[key] = val
            self.form.addRow(_plain(zh if lang == "zh" else en), val)
        self.timeline = QTreeWidget()
        self.timeline.setObjectName("timeline")
        self.timeline.setHeaderLabels(["时间", "环节", "处理人", "说明"] if lang == "zh" else ["Time", "Step", "Actor", "Note"])
        self.timeline.setRootIsDecorated(False)
        self.timeline.setColumnWidth(0, 110)
        self.timeline.setColumnWidth(1, 80)
        self.timeline.setColumnWidth(2, 120)

        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.addWidget(self.title)
        lay.addWidget(self.drill_tag)
        lay.addWidget(self.description)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        lay.addWidget(line)
        lay.addWidget(form_box)
        lay.addWidget(_plain("处置时间线" if lang == "zh" else "Timeline"))
        lay.addWidget(self.timeline, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def show_event(self, event_id: int | None) -> None:
        if event_id is None:
            self.current = None
            self.title.setText("请选择事件")
            return
        conn = self._connect()
        try:
            ev = get_event(conn, event_id, street_scope=self._scope)
            log = get_log(conn, event_id) if ev else []
        finally:
            conn.close()
        self.current = ev
        if ev is None:
            self.title.setText(f"事件 {event_id} 不存在或不在本辖区")
            return
        lang = self._lang
        self.title.setText(ev["title"] or "")
        self.description.setText(ev["description"] or "")
        self.drill_tag.setVisible(ev.get("drill_id") is not None)
        shown = dict(ev)
        shown["status"] = labels.label("status", ev["status"], lang)
        shown["class"] = labels.label("class", ev["class"], lang)
        shown["priority"] = labels.label("priority", ev["priority"], lang)
        shown["source"] = labels.label("source", ev["source"], lang)
        for key in ("reported_at", "arrival_due_at", "handle_due_at"):
            shown[key] = timeutil.display(ev.get(key))
        for key, label in self.values.items():
            value = shown.get(key)
            label.setText("" if value is None else str(value))
        self.timeline.clear()
        for entry in log:
            actor = entry.get("actor_name") or entry["actor"]
            if entry["actor"].startswith("source:"):
                actor = labels.label("source", entry["actor"][7:], lang)
            note = entry.get("note") or ""
            if entry["action"] == "evaluate" and entry["payload"]:
                note = f"满意度 {entry['payload'].get('satisfaction')}/5"
            item = QTreeWidgetItem([timeutil.display(entry["at"]), entry["action_label"], actor, note])
            self.timeline.addTopLevelItem(item)
