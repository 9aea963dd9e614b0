"""Shift handover log (交接班): recent notes, and a new note with open items for the next shift.

A thin view: the notes and the open events come from ``app.panel_data``; the note is written
by ``EventService.handover`` (append-only ``handover_notes``; the wall may only read).
Ctrl+Enter saves, Esc closes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import labels, panel_data
from app.access import AccessDenied
from db import event_ops
from widgets.action_forms import plain_label

IdRole = Qt.ItemDataRole.UserRole


class HandoverDialog(QDialog):
    """Recent notes (newest first, each with its open items and their current status) and the
    form for a new note. ``saved(note_id)`` after a note is written."""

    saved = Signal(int)

    def __init__(self, replica, session, service, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("HandoverDialog")
        self.setWindowTitle("交接班记录 — 一张图指挥台")
        self.resize(980, 640)
        self.replica = replica
        self.session = session
        self.service = service
        self.read_only = session.role == "wall"

        self.notes = QTreeWidget(self)
        self.notes.setObjectName("handoverNotes")
        self.notes.setHeaderLabels(["时间", "班次", "值班人", "交接内容 / 遗留事项"])
        self.notes.setColumnWidth(0, 120)
        self.notes.setColumnWidth(1, 130)
        self.notes.setColumnWidth(2, 90)
        self.notes.setWordWrap(True)

        form = QWidget(self)
        fl = QVBoxLayout(form)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(plain_label("新的交接记录", "DialogTitle"))
        row = QHBoxLayout()
        row.addWidget(plain_label("班次", wrap=False))
        self.shift = QLineEdit(panel_data.shift_of(), form)
        self.shift.setObjectName("handoverShift")
        row.addWidget(self.shift, 1)
        fl.addLayout(row)
        self.text = QPlainTextEdit(form)
        self.text.setObjectName("handoverText")
        self.text.setPlaceholderText("本班情况、需下一班跟进的事项、注意事项…（Ctrl+Enter 保存）")
        self.text.setTabChangesFocus(True)
        fl.addWidget(self.text, 2)
        fl.addWidget(plain_label("遗留事项（勾选仍在办理的事件，空格勾选）", "dialogHint"))
        self.filter = QLineEdit(form)
        self.filter.setPlaceholderText("筛选事件（编号或标题）")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter)
        fl.addWidget(self.filter)
        self.open_items = QListWidget(form)
        self.open_items.setObjectName("handoverOpenItems")
        self.open_items.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        fl.addWidget(self.open_items, 3)
        self.message = plain_label("", "detailMessage")
        self.message.hide()
        fl.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.close_button = QPushButton("关闭  Esc", form)
        self.close_button.clicked.connect(self.reject)
        self.save_button = QPushButton("保存交接  Ctrl+Enter", form)
        self.save_button.setObjectName("ActionConfirm")
        self.save_button.clicked.connect(self.save)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.save_button)
        fl.addLayout(buttons)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.notes)
        split.addWidget(form)
        split.setSizes([560, 420])
        form.setVisible(not self.read_only)
        lay = QVBoxLayout(self)
        lay.addWidget(plain_label("交接班（本班 → 下一班）", "DialogTitle"))
        lay.addWidget(split, 1)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            sc = QShortcut(QKeySequence(keys), self)
            sc.activated.connect(self.save)
        self.reload()
        self.text.setFocus()

    def reload(self) -> None:
        conn = self.replica.reader()
        try:
            notes = panel_data.handover_notes(conn, limit=30)
            events = [] if self.read_only else panel_data.open_events_brief(conn, self.session, limit=300)
        finally:
            conn.close()
        self.notes.clear()
        for n in notes:
            top = QTreeWidgetItem([n["at"][5:16].replace("T", " "), n["shift"], n["author_name"], n["text"]])
            top.setToolTip(3, n["text"])
            for item in n["open_items"]:
                status = labels.label("status", item.get("status")) if item.get("status") else "?"
                child = QTreeWidgetItem(["", "", f"#{item['event_id']}", f"[{status}] {item.get('title') or ''}"])
                top.addChild(child)
            self.notes.addTopLevelItem(top)
            top.setExpanded(True)
        if not notes:
            self.notes.addTopLevelItem(QTreeWidgetItem(["", "", "", "暂无交接记录"]))
        checked = set(self.checked_ids())
        self.open_items.clear()
        for e in events:
            tag = "【演练】" if e["drill_id"] is not None else ""
            item = QListWidgetItem(
                f"#{e['id']}  {labels.label('priority', e['priority'])} [{labels.label('status', e['status'])}] "
                f"{tag}{e['title']}"
            )
            item.setData(IdRole, e["id"])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if e["id"] in checked else Qt.CheckState.Unchecked)
            self.open_items.addItem(item)

    def _filter(self, text: str) -> None:
        text = text.strip().lower()
        for i in range(self.open_items.count()):
            it = self.open_items.item(i)
            it.setHidden(bool(text) and text not in it.text().lower())

    def checked_ids(self) -> list[int]:
        return [
            self.open_items.item(i).data(IdRole)
            for i in range(self.open_items.count())
            if self.open_items.item(i).checkState() == Qt.CheckState.Checked
        ]

    def set_checked(self, event_ids) -> None:
        ids = set(event_ids)
        for i in range(self.open_items.count()):
            it = self.open_items.item(i)
            it.setCheckState(Qt.CheckState.Checked if it.data(IdRole) in ids else Qt.CheckState.Unchecked)

    def _say(self, kind: str, text: str) -> None:
        self.message.setText(text)
        self.message.setProperty("kind", kind)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setVisible(bool(text))

    def save(self) -> int | None:
        if self.read_only:
            return None
        text = self.text.toPlainText().strip()
        if not text:
            self._say("warn", "请填写交接内容")
            self.text.setFocus()
            return None
        try:
            note_id = self.service.handover(self.shift.text().strip(), text, self.checked_ids())
        except AccessDenied as exc:
            self._say("error", f"无权写交接记录：{exc.reason}")
            return None
        except event_ops.EventOpsError as exc:
            self._say("error", f"未保存：{exc}")
            return None
        self.text.clear()
        self.set_checked([])
        self.reload()
        self._say("ok", f"交接记录已保存（#{note_id}）")
        self.saved.emit(note_id)
        return note_id
