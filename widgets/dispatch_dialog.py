"""Bulk dispatch (批量派遣): one target for every selected queue row.

The dialog lists the events, offers the targets (the first event's suggestions, then every
department and street), and on Ctrl+Enter calls ``EventService.bulk_dispatch`` in a worker
(each event succeeds or fails on its own, in chunks of 100 per transaction). The result stays
on screen: how many were dispatched and, per failed event, why (wrong state, another
operator changed it, outside the session's scope).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from app import labels, panel_data
from app.access import AccessDenied
from db import event_ops
from widgets.action_forms import TargetPicker, plain_label, tr
from widgets.workers import run_in_thread


class BulkDispatchDialog(QDialog):
    """``rows``: queue rows (``id``, ``version``, ``title``, ``status``). ``dispatched`` carries
    the ``BulkResult`` list once the service has answered."""

    dispatched = Signal(list)

    def __init__(self, replica, service, rows: list[dict], parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.lang = lang
        self.setObjectName("BulkDispatchDialog")
        self.setWindowTitle(tr(f"批量派遣 — {len(rows)} 件事件", f"Bulk dispatch — {len(rows)} events", lang))
        self.resize(720, 640)
        self.service = service
        self.rows = list(rows)
        self.results: list | None = None
        self._running = False
        conn = replica.reader()
        try:
            depts, streets = panel_data.departments(conn), panel_data.streets(conn)
        finally:
            conn.close()
        suggestions = []
        if rows:
            try:
                suggestions = service.suggest_targets(rows[0]["id"])
            except (AccessDenied, event_ops.EventOpsError):
                suggestions = []

        self.events = QListWidget(self)
        self.events.setObjectName("bulkEvents")
        for r in self.rows:
            item = QListWidgetItem(f"#{r['id']}  [{labels.label('status', r.get('status'), lang)}] {r.get('title') or ''}")
            item.setData(Qt.ItemDataRole.UserRole, r["id"])
            self.events.addItem(item)
        self.events.setMaximumHeight(160)
        not_ready = [r for r in self.rows if r.get("status") not in ("accepted", "returned")]
        self.picker = TargetPicker(self, lang=lang)
        self.picker.populate(suggestions, depts, streets)
        self.note = QLineEdit(self)
        self.note.setObjectName("bulkNote")
        self.note.setPlaceholderText(tr("派遣说明（可选）", "Instructions (optional)", lang))
        self.message = plain_label("", "detailMessage")
        self.message.hide()
        self.failures = QListWidget(self)
        self.failures.setObjectName("bulkFailures")
        self.failures.hide()
        self.ok = QPushButton(tr("派遣全部", "Dispatch all", lang) + "  Ctrl+Enter", self)
        self.ok.setObjectName("ActionConfirm")
        self.ok.setAutoDefault(False)
        self.ok.clicked.connect(self.confirm)
        self.cancel = QPushButton(tr("关闭", "Close", lang) + "  Esc", self)
        self.cancel.setAutoDefault(False)
        self.cancel.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.ok)
        lay = QVBoxLayout(self)
        lay.addWidget(plain_label(tr(f"批量派遣 {len(self.rows)} 件事件到同一对象",
                                    f"Dispatch {len(self.rows)} events to one target", lang), "DialogTitle"))
        if suggestions:
            lay.addWidget(plain_label(tr("★ 推荐依据首条事件 ", "★ Suggestions from the first event ", lang)
                                      + f"#{self.rows[0]['id']}", "dialogHint"))
        if not_ready:
            lay.addWidget(plain_label(
                tr(f"注意：{len(not_ready)} 件不在「受理 / 退回」状态，派遣时将被拒绝并逐条列出原因。",
                   f"Note: {len(not_ready)} events are not accepted/returned; they will be refused, each with its reason.",
                   lang), "dialogHint"
            ))  # fmt: skip
        lay.addWidget(self.events)
        lay.addWidget(plain_label(tr("派遣对象", "Target", lang), "subTitle"))
        lay.addWidget(self.picker, 1)
        lay.addWidget(self.note)
        lay.addWidget(self.message)
        lay.addWidget(self.failures)
        lay.addLayout(buttons)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            sc = QShortcut(QKeySequence(keys), self)
            sc.activated.connect(self.confirm)
        self.picker.focus_widget().setFocus()

    def _say(self, kind: str, text: str) -> None:
        self.message.setText(text)
        self.message.setProperty("kind", kind)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setVisible(bool(text))

    def confirm(self) -> bool:
        if self._running or self.results is not None:
            return False
        target = self.picker.selected()
        if target is None:
            self._say("warn", tr("请选择派遣对象", "Choose a dispatch target", self.lang))
            return False
        versions = {int(r["id"]): int(r["version"]) for r in self.rows}
        note = self.note.text().strip() or None
        self._running = True
        self.ok.setEnabled(False)
        self._say("info", tr(f"正在派遣 {len(versions)} 件…", f"Dispatching {len(versions)} events…", self.lang))
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        run_in_thread(
            self.service.bulk_dispatch, versions, target[0], target[1], note,
            on_result=self._done, on_error=self._failed,
        )  # fmt: skip
        return True

    def _finish(self) -> None:
        self._running = False
        QApplication.restoreOverrideCursor()

    def _done(self, results: list) -> None:
        self._finish()
        self.results = results
        ok = [r for r in results if r.ok]
        bad = [r for r in results if not r.ok]
        if self.lang == "en":
            text = f"Dispatched {len(ok)}" + (f", {len(bad)} not dispatched:" if bad else ".")
        else:
            text = f"已派遣 {len(ok)} 件" + (f"，{len(bad)} 件未派遣：" if bad else "。")
        self._say("ok" if not bad else "warn", text)
        self.failures.clear()
        for r in bad:
            if self.lang == "en":
                why = "changed by another operator" if r.conflict else ("out of scope" if r.refused else "cannot dispatch")
                item = QListWidgetItem(f"#{r.event_id} · {why}: {r.error}")
            else:
                why = "他人已修改" if r.conflict else ("超出权限" if r.refused else "不可派遣")
                item = QListWidgetItem(f"#{r.event_id} · {why}：{r.error}")
            item.setToolTip(r.error or "")
            self.failures.addItem(item)
        self.failures.setVisible(bool(bad))
        self.ok.setText(tr("已完成", "Done", self.lang))
        self.cancel.setFocus()
        self.dispatched.emit(results)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        self.ok.setEnabled(True)
        self._say("error", tr("批量派遣失败：", "Bulk dispatch failed: ", self.lang) + f"{exc}")
