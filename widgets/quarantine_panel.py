"""隔离区 (the quarantine): records an import could not take, one row each with file, line, reason
and the raw record; the operator corrects and re-submits them, or discards them with a reason.

Thin view over :mod:`db.quarantine`: the list (with counts per status) is read in a worker
(:func:`app.intake_views.load_quarantine`) and refreshed when the replica changes; re-submission
(the import's own validation for that one record, then the event written in the same transaction
that marks the row fixed) and discarding run in workers too. The raw record is shown and edited
as plain text; the fields the reader found can be edited instead.

A second tab holds the merge suggestions (:class:`widgets.merge_panel.MergeSuggestionsPanel`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabBar,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.intake_views import (
    bilingual,
    changed_fields,
    excerpt,
    load_quarantine,
    load_quarantine_row,
    quarantine_status,
    reason_short,
    reason_zh,
    resolution_zh,
    tr,
)
from widgets.event_queue import plain_tooltip
from widgets.intake_common import (
    MessageLine,
    RowsModel,
    debounce,
    fit_columns,
    human_error,
    one_shot,
    plain,
    row_table,
    select_row,
)

COLUMNS = [
    ("id", "编号"),
    ("file", "文件"),
    ("line", "行"),
    ("reason", "原因"),
    ("raw", "原始内容（摘录）"),
    ("status", "状态"),
]
COLUMNS_EN = {"id": "No.", "file": "File", "line": "Line", "reason": "Reason", "raw": "Raw record (excerpt)",
              "status": "Status"}  # fmt: skip
COL = {k: i for i, (k, _) in enumerate(COLUMNS)}
#: canonical fields of a record (db.intake.records.FIELDS) and what an operator calls them
FIELD_LABELS: dict[str, str] = {
    "ext_id": "来源编号",
    "time": "时间",
    "content": "内容",
    "title": "标题",
    "code": "类别代码",
    "code_alt": "备用类别",
    "address": "地址",
    "name": "联系人",
    "phone": "联系电话",
    "lon": "经度",
    "lat": "纬度",
    "datum": "坐标系",
    "status": "来源状态",
    "updated": "更新时间",
}
FIELD_LABELS_EN: dict[str, str] = {
    "ext_id": "Source id",
    "time": "Time",
    "content": "Content",
    "title": "Title",
    "code": "Category code",
    "code_alt": "Alternative category",
    "address": "Address",
    "name": "Contact",
    "phone": "Phone",
    "lon": "Longitude",
    "lat": "Latitude",
    "datum": "Datum",
    "status": "Source status",
    "updated": "Updated at",
}
STATUS_TINT = {"open": "#fddd60", "fixed": "#7fd6a4", "discarded": "#B9B8CE"}
IdRole = Qt.ItemDataRole.UserRole


class QuarantineModel(RowsModel):
    """Quarantine rows (``app.intake_views.load_quarantine``); ``UserRole`` is the row id."""

    COLUMNS = COLUMNS
    COLUMNS_EN = COLUMNS_EN

    def __init__(self, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent, lang=lang)
        self._brushes = {k: QBrush(QColor(v)) for k, v in STATUS_TINT.items()}

    def set_rows(self, rows: list[dict]) -> None:
        if [r["id"] for r in rows] == [r["id"] for r in self._rows]:
            self._rows = list(rows)
            if rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(COLUMNS) - 1))
            return
        super().set_rows(rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, key = self._rows[index.row()], COLUMNS[index.column()][0]
        if role == IdRole:
            return r["id"]
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "id":
                return f"#{r['id']}"
            if key == "file":
                return r.get("file") or ""
            if key == "line":
                return "" if r.get("line") is None else str(r["line"])
            if key == "reason":
                return reason_short(r.get("last_error") if r["status"] == "open" and r.get("last_error") else r["reason"],
                                    self.lang)  # fmt: skip
            if key == "raw":
                return excerpt(r.get("raw"), 90)
            if key == "status":
                return quarantine_status(r["status"], self.lang)
        if role == Qt.ItemDataRole.ToolTipRole and key in ("reason", "raw"):
            if key == "reason":
                still = tr("重新提交仍未通过：", "Re-submission still failed: ", self.lang)
                return plain_tooltip(r["reason"], r.get("last_error") and f"{still}{r['last_error']}")
            return plain_tooltip((r.get("raw") or "")[:2000])  # raw text is escaped, never rendered
        if role == Qt.ItemDataRole.ForegroundRole and key == "status":
            return self._brushes.get(r["status"])
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("id", "line"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class QuarantineEditor(QWidget):
    """The selected record: where it came from, why it was held, its raw text and fields, and
    重新提交 / 丢弃. Emits ``resubmitRequested(raw|None, fields|None, note)`` and
    ``discardRequested(reason)``; the panel does the writing."""

    resubmitRequested = Signal(object, object, str)
    discardRequested = Signal(str)
    showEventRequested = Signal(int)

    def __init__(self, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.setObjectName("quarantineEditor")
        self.lang = lang
        t = self._tr
        self.row: dict | None = None
        self.title = plain("", "detailTitle")
        self.origin = plain("", "dialogHint")
        self.reason = plain("", "quarantineReason")
        self.resolution = plain("", "dialogHint")
        self.raw = QPlainTextEdit(self)
        self.raw.setObjectName("quarantineRaw")
        self.raw.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.raw.setTabChangesFocus(True)
        self.raw.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.raw.setPlaceholderText(t("原始记录（按文件原格式修改，例如补全被截断的行）",
                                      "Raw record (edit it in the file's own format, e.g. complete a truncated line)"))
        self.fields = QTableWidget(len(FIELD_LABELS), 2, self)
        self.fields.setObjectName("quarantineFields")
        self.fields.setHorizontalHeaderLabels([t("字段", "Field"), t("值", "Value")])
        self.fields.verticalHeader().setVisible(False)
        self.fields.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.fields.horizontalHeader().setStretchLastSection(True)
        for i, (key, zh) in enumerate(FIELD_LABELS.items()):
            item = QTableWidgetItem(f"{t(zh, FIELD_LABELS_EN.get(key, key))}  {key}")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setData(IdRole, key)
            self.fields.setItem(i, 0, item)
            self.fields.setItem(i, 1, QTableWidgetItem(""))
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("quarantineEditTabs")
        self.tabs.addTab(self.raw, t("原始记录", "Raw record"))
        self.tabs.addTab(self.fields, t("按字段修改", "Edit by field"))
        self.note = QLineEdit(self)
        self.note.setObjectName("quarantineNote")
        self.note.setPlaceholderText(t("处理说明（可选）", "Note (optional)"))
        self.resubmit_button = QPushButton(t("重新提交", "Re-submit"), self)
        self.resubmit_button.setObjectName("resubmitButton")
        self.resubmit_button.setProperty("kind", "primary")
        self.resubmit_button.setToolTip(t("按导入时的规则重新校验这一条；通过则创建（或更新）事件",
                                          "Validate this record again by the import's rules; if it passes, an event "
                                          "is created (or updated)"))  # fmt: skip
        self.resubmit_button.clicked.connect(self._resubmit)
        self.discard_reason = QLineEdit(self)
        self.discard_reason.setObjectName("discardReason")
        self.discard_reason.setPlaceholderText(t("丢弃理由（必填）", "Reason for discarding (required)"))
        self.discard_button = QPushButton(t("丢弃", "Discard"), self)
        self.discard_button.setObjectName("discardButton")
        self.discard_button.setProperty("kind", "danger")
        self.discard_button.clicked.connect(self._discard)
        self.event_button = QPushButton("", self)
        self.event_button.setObjectName("quarantineEventButton")
        self.event_button.setProperty("kind", "overlay")
        self.event_button.clicked.connect(self._show_event)
        self.event_button.hide()
        for b in (self.resubmit_button, self.discard_button, self.event_button):
            b.setAutoDefault(False)
        self.message = MessageLine(self)

        resubmit_row = QHBoxLayout()
        resubmit_row.addWidget(self.note, 1)
        resubmit_row.addWidget(self.resubmit_button)
        discard_row = QHBoxLayout()
        discard_row.addWidget(self.discard_reason, 1)
        discard_row.addWidget(self.discard_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.origin)
        lay.addWidget(self.reason)
        lay.addWidget(self.resolution)
        lay.addWidget(self.tabs, 1)
        lay.addLayout(resubmit_row)
        lay.addLayout(discard_row)
        lay.addWidget(self.message)
        lay.addWidget(self.event_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.show_row(None)

    def _tr(self, zh: str, en: str) -> str:
        return tr(zh, en, self.lang)

    # -- showing ----------------------------------------------------------------------------------
    def show_row(self, row: dict | None, *, keep_edits: bool = False) -> None:
        """Show ``row``. ``keep_edits``: the same record refreshed — leave what the operator typed."""
        same = keep_edits and row is not None and self.row is not None and row["id"] == self.row["id"]
        self.row = row
        t, lang = self._tr, self.lang
        if row is None:
            self.title.setText(t("选择左侧一条隔离记录", "Select a quarantined record on the left"))
            for w in (self.origin, self.reason, self.resolution):
                w.setText("")
            self.resolution.hide()
            self.raw.setPlainText("")
            self._fill_fields({})
            self._set_editable(False)
            self.event_button.hide()
            return
        status = quarantine_status(row["status"], lang)
        self.title.setText(t(f"隔离记录 #{row['id']} · {status}", f"Quarantined record #{row['id']} · {status}"))
        if lang == "en":
            where = f"{row.get('file') or '(no file name)'} line {row.get('line') or '?'}"
            self.origin.setText(f"{where} · format {row.get('format')} · source id {row.get('external_id') or '(missing)'}"
                                f" · quarantined {timeutil.display(row['created_at'])}")  # fmt: skip
        else:
            where = f"{row.get('file') or '（无文件名）'} 第 {row.get('line') or '?'} 行"
            self.origin.setText(f"{where} · 格式 {row.get('format')} · 来源编号 {row.get('external_id') or '（缺）'} · "
                                f"入隔离区 {timeutil.display(row['created_at'])}")  # fmt: skip
        reason = t("原因：", "Reason: ") + reason_zh(row["reason"], lang)
        if row["status"] == "open" and row.get("last_error"):
            reason += "\n" + t("重新提交仍未通过：", "Re-submission still failed: ") + reason_zh(row["last_error"], lang)
        self.reason.setText(reason)
        self.resolution.setVisible(row["status"] != "open")
        if row["status"] == "open":
            self.resolution.setText("")
        else:
            who = row.get("resolved_by_name") or row.get("resolved_by") or ""
            when = timeutil.display(row["resolved_at"]) if row.get("resolved_at") else ""
            note = resolution_zh(row.get("resolution_note"), lang)
            event = (t(" · 事件 #", " · event #") + str(row["event_id"])) if row.get("event_id") else ""
            if lang == "en":
                self.resolution.setText(f"{status} by {who} at {when} · {note}{event}")
            else:
                done = "已修复" if row["status"] == "fixed" else "已丢弃"
                self.resolution.setText(f"{done}：{who} 于 {when} · {note}{event}")
        if not same:
            shown = row.get("fixed_raw") if row["status"] == "fixed" and row.get("fixed_raw") else row.get("raw")
            self.raw.setPlainText(shown or "")
            self._fill_fields(row.get("fields_dict") or {})
            self.note.clear()
            self.discard_reason.clear()
            self.message.say("", "")
        self._set_editable(row["status"] == "open")
        if row.get("event_id"):
            self._set_event_button(int(row["event_id"]))
        elif not same:
            self.event_button.hide()

    def _fill_fields(self, fields: dict) -> None:
        for i, key in enumerate(FIELD_LABELS):
            v = fields.get(key)
            self.fields.item(i, 1).setText("" if v is None else str(v))

    def _set_editable(self, on: bool) -> None:
        self.raw.setReadOnly(not on)
        self.fields.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers if on
                                    else QAbstractItemView.EditTrigger.NoEditTriggers)  # fmt: skip
        for w in (self.note, self.resubmit_button, self.discard_reason, self.discard_button):
            w.setEnabled(on)

    def set_busy(self, busy: bool) -> None:
        open_ = self.row is not None and self.row["status"] == "open"
        for w in (self.resubmit_button, self.discard_button):
            w.setEnabled(open_ and not busy)

    def _set_event_button(self, event_id: int) -> None:
        self.event_button.setText(self._tr(f"查看事件 #{event_id}", f"Show event #{event_id}"))
        self.event_button.setProperty("event_id", event_id)
        self.event_button.show()

    def _show_event(self) -> None:
        eid = self.event_button.property("event_id")
        if eid:
            self.showEventRequested.emit(int(eid))

    # -- values -------------------------------------------------------------------------------------
    def edited_fields(self) -> dict:
        out = {}
        for i, key in enumerate(FIELD_LABELS):
            out[key] = self.fields.item(i, 1).text()
        return out

    def resubmission(self) -> tuple[str | None, dict | None]:
        """``(fixed_raw, fixed_fields)`` from the active tab: the raw text when it was changed,
        else the fields that were changed; neither: re-submit as it is."""
        row = self.row or {}
        if self.tabs.currentWidget() is self.fields:
            changed = changed_fields(row.get("fields_dict") or {}, self.edited_fields())
            return None, changed or None
        text = self.raw.toPlainText()
        return (text if text.strip() != (row.get("raw") or "").strip() else None), None

    def _resubmit(self) -> None:
        if self.row is None or self.row["status"] != "open":
            return
        raw, fields = self.resubmission()
        self.resubmitRequested.emit(raw, fields, self.note.text().strip())

    def _discard(self) -> None:
        if self.row is None or self.row["status"] != "open":
            return
        reason = self.discard_reason.text().strip()
        if not reason:
            self.message.say("warn", self._tr("丢弃须填写理由：请说明为什么这条记录不再导入。",
                                              "Discarding needs a reason: say why this record is not imported."))
            self.discard_reason.setFocus()
            return
        self.discardRequested.emit(reason)


class QuarantinePanel(QWidget):
    """隔离记录 | 合并建议. ``eventSelected(id)`` asks the console to show an event."""

    eventSelected = Signal(int)
    loaded = Signal()
    resubmitted = Signal(object)  # db.quarantine.Resubmitted
    discarded = Signal(int)
    failed = Signal(str)

    RELOAD_MS = 300
    STATUS_ORDER = ("open", "fixed", "discarded", None)

    def __init__(self, replica, service, parent: QWidget | None = None, *, watcher=None,
                 lang: str | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("quarantinePanel")
        self.lang = lang or getattr(getattr(service, "session", None), "lang", None) or "zh"
        t = self._tr
        self.replica = replica
        self.service = service
        self.status_filter: str | None = "open"
        self.counts: dict[str, int] = {}
        self._gen = 0
        self._busy = False
        self._selected: int | None = None

        self.status_tabs = QTabBar(self)
        self.status_tabs.setObjectName("quarantineStatusTabs")
        self.status_tabs.setExpanding(False)
        self.status_tabs.setDrawBase(False)
        for st in self.STATUS_ORDER:
            i = self.status_tabs.addTab(quarantine_status(st, self.lang))
            self.status_tabs.setTabData(i, st)
        self.status_tabs.currentChanged.connect(self._on_status_tab)

        self.model = QuarantineModel(self, lang=self.lang)
        self.table = row_table(self, "quarantineTable", self.model)
        widths = {"id": 3.5, "file": 9, "line": 2.5, "reason": 13, "status": 4}
        if self.lang == "en":  # English reason kinds run longer than their Chinese names
            widths.update(reason=18, status=5)
        fit_columns(self.table, self.fontMetrics(), {COL[k]: w for k, w in widths.items()}, COL["raw"])
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.status_label = plain("", "dialogHint", wrap=False)

        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.status_tabs)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.status_label)
        self.editor = QuarantineEditor(self, lang=self.lang)
        self.editor.resubmitRequested.connect(self.resubmit)
        self.editor.discardRequested.connect(self.discard)
        self.editor.showEventRequested.connect(self.eventSelected)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(self.editor)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        self.splitter = split
        page = QWidget(self)
        pl = QVBoxLayout(page)
        pl.setContentsMargins(0, 6, 0, 0)
        pl.addWidget(split, 1)

        from widgets.merge_panel import MergeSuggestionsPanel

        self.merge = MergeSuggestionsPanel(replica, service, self, watcher=watcher, lang=self.lang)
        self.merge.eventSelected.connect(self.eventSelected)
        self.merge.loaded.connect(self._update_tab_titles)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("intakeTabs")
        self.tabs.addTab(page, t("隔离记录", "Quarantine"))
        self.tabs.addTab(self.merge, t("合并建议", "Merge suggestions"))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.tabs)

        self._timer = debounce(self, self.RELOAD_MS, self.reload_now)
        if watcher is not None:
            watcher.changed.connect(self.reload)
        self.reload_now()

    def _tr(self, zh: str, en: str) -> str:
        return tr(zh, en, self.lang)

    # -- state → view ------------------------------------------------------------------------------
    def show_tab(self, name: str) -> None:
        self.tabs.setCurrentIndex(1 if name == "merge" else 0)

    def set_status_filter(self, status: str | None) -> None:
        i = self.STATUS_ORDER.index(status)
        if self.status_tabs.currentIndex() != i:
            self.status_tabs.setCurrentIndex(i)  # → _on_status_tab
        else:
            self.reload_now()

    def _on_status_tab(self, index: int) -> None:
        self.status_filter = self.status_tabs.tabData(index)
        self.reload_now()

    def _update_tab_titles(self) -> None:
        for i, st in enumerate(self.STATUS_ORDER):
            n = sum(self.counts.values()) if st is None else self.counts.get(st, 0)
            self.status_tabs.setTabText(i, f"{quarantine_status(st, self.lang)} ({n})")
        self.tabs.setTabText(0, self._tr("隔离记录", "Quarantine") + f" ({self.counts.get('open', 0)})")
        self.tabs.setTabText(1, self._tr("合并建议", "Merge suggestions") + f" ({self.merge.model.rowCount()})")

    # -- loading -----------------------------------------------------------------------------------
    def reload(self) -> None:
        """The replica changed: reload soon (a burst of changes makes one read)."""
        if not self._timer.isActive():
            self._timer.start()

    def reload_now(self) -> None:
        self._gen += 1
        gen, replica, status, selected = self._gen, self.replica, self.status_filter, self._selected

        def job():
            conn = replica.reader()
            try:
                view = load_quarantine(conn, status)
                shown = None  # the selected record, also when it has left the filter (fixed, discarded)
                if selected is not None and not any(r["id"] == selected for r in view.rows):
                    shown = load_quarantine_row(conn, selected)
                return view, shown
            finally:
                conn.close()

        one_shot(job, on_result=lambda out: self._apply(gen, *out),
                 on_error=lambda exc: self.status_label.setText(self._tr("读取隔离区失败：", "Reading the quarantine failed: ")
                                                                 + str(exc)))  # fmt: skip

    def _apply(self, gen: int, view, shown: dict | None = None) -> None:
        if gen != self._gen:
            return
        self.model.set_rows(view.rows)
        self.counts = view.counts
        self._update_tab_titles()
        text = self._tr(f"显示 {len(view.rows)} 条", f"{len(view.rows)} shown")
        if view.truncated:
            text += self._tr("（仅最新 500 条）", " (newest 500 only)")
        self.status_label.setText(text)
        row = self.model.row_of(self._selected)
        if row >= 0:
            self.table.selectRow(row)
            self.editor.show_row(self.model.row_data(row), keep_edits=True)
        elif shown is not None and shown["id"] == self._selected:
            self.editor.show_row(shown, keep_edits=True)  # left this filter (fixed / discarded): show the outcome
        elif view.rows and self._selected is None:
            self.table.selectRow(0)
        self.loaded.emit()

    # -- selection ----------------------------------------------------------------------------------
    def select(self, qid: int) -> bool:
        return select_row(self.table, self.model, qid)

    def _on_selection(self, *_a) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        r = self.model.row_data(rows[0].row())
        if r is None:
            return
        keep = r["id"] == self._selected
        self._selected = r["id"]
        self.editor.show_row(r, keep_edits=keep)

    # -- writes --------------------------------------------------------------------------------------
    def resubmit(self, raw: str | None = None, fields: dict | None = None, note: str = "") -> bool:
        """重新提交 the selected record (in a worker): the new reason, or the created event."""
        row = self.editor.row
        if row is None or row["status"] != "open" or self._busy:
            return False
        from db import quarantine

        self._set_busy(True)
        if self.lang == "en":
            how = "corrected text" if raw is not None else ("corrected fields" if fields else "record as it is")
            self.editor.message.say("info", f"Validating #{row['id']} again by the import's rules ({how})…")
        else:
            how = "修改后的原文" if raw is not None else ("修改后的字段" if fields else "原记录")
            self.editor.message.say("info", f"正在按导入规则重新校验 #{row['id']}（{how}）…")
        qid = int(row["id"])
        one_shot(quarantine.resubmit, self.replica, qid, actor=self.service.actor, fixed_raw=raw, fixed_fields=fields,
                 note=note or None, on_result=self._resubmitted, on_error=lambda exc: self._failed(qid, exc))  # fmt: skip
        return True

    def _resubmitted(self, res) -> None:
        self._set_busy(False)
        if self.lang == "en":
            verb = "created" if res.created else "updated"
            self.editor.message.say("ok", f"Re-submitted: event #{res.event_id} {verb} (quarantined record "
                                          f"#{res.quarantine_id} fixed)")  # fmt: skip
        else:
            verb = "创建" if res.created else "更新"
            self.editor.message.say("ok", f"重新提交成功：已{verb}事件 #{res.event_id}（隔离记录 #{res.quarantine_id} 已修复）")
        self.editor._set_event_button(res.event_id)
        self.resubmitted.emit(res)
        self.reload_now()

    def discard(self, reason: str) -> bool:
        """丢弃 the selected record with ``reason`` (required) in a worker."""
        row = self.editor.row
        if row is None or row["status"] != "open" or self._busy:
            return False
        if not (reason or "").strip():
            self.editor.message.say("warn", self._tr("丢弃须填写理由：请说明为什么这条记录不再导入。",
                                                     "Discarding needs a reason: say why this record is not imported."))
            return False
        from db import quarantine

        self._set_busy(True)
        qid = int(row["id"])
        one_shot(quarantine.discard, self.replica, qid, reason, actor=self.service.actor,
                 on_result=lambda _r: self._discarded(qid, reason), on_error=lambda exc: self._failed(qid, exc))  # fmt: skip
        return True

    def _discarded(self, qid: int, reason: str) -> None:
        self._set_busy(False)
        self.editor.message.say("ok", self._tr(f"已丢弃隔离记录 #{qid}：{reason}",
                                               f"Quarantined record #{qid} discarded: {reason}"))
        self.discarded.emit(qid)
        self.reload_now()

    def _failed(self, qid: int, exc: BaseException) -> None:
        from db.quarantine import QuarantineError

        self._set_busy(False)
        if isinstance(exc, QuarantineError):
            text = self._tr("仍未通过：", "Still not accepted: ") + reason_zh(bilingual(str(exc), self.lang), self.lang)
        else:
            text = self._tr("未执行：", "Not done: ") + f"{type(exc).__name__}: {bilingual(human_error(exc), self.lang)}"
        self.editor.message.say("error", text)
        self.failed.emit(text)
        self.reload_now()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.editor.set_busy(busy)
