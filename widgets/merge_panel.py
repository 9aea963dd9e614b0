"""合并建议 (possible duplicates found by imports): the open suggestions — event, the older event
it may repeat, distance and minutes apart — with 合并 and 忽略.

An import never merges; here an operator decides. 合并 merges the newer event into the older
one through the lifecycle (the ``merge`` transition, one ``event_log`` row, the suggestion marked
accepted, one transaction; :func:`app.intake_views.accept_suggestion`), against the version the
operator saw. When the lifecycle or the role does not allow it, the panel says why and writes
nothing. 忽略 records "not a duplicate" (:func:`db.merge_suggestions.dismiss`). Reads and
writes run in workers; the list refreshes when the replica changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import labels, timeutil
from app.intake_views import accept_suggestion, bilingual, load_suggestions, merge_check, tr
from widgets.intake_common import (
    MessageLine,
    RowsModel,
    debounce,
    human_error,
    one_shot,
    plain,
    row_table,
    select_row,
)

COLUMNS = [
    ("event", "事件（较新）"),
    ("other", "疑似重复于（较早）"),
    ("category", "类别"),
    ("street", "街道"),
    ("time", "上报时间"),
    ("distance", "相距"),
    ("minutes", "间隔"),
    ("status", "事件状态"),
    ("check", "可否合并"),
]
COLUMNS_EN = {
    "event": "Event (newer)",
    "other": "Possible duplicate of (older)",
    "category": "Category",
    "street": "Street",
    "time": "Reported",
    "distance": "Distance",
    "minutes": "Apart",
    "status": "Event states",
    "check": "Can merge",
}
IdRole = Qt.ItemDataRole.UserRole


class MergeModel(RowsModel):
    COLUMNS = COLUMNS
    COLUMNS_EN = COLUMNS_EN

    def __init__(self, session=None, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent, lang=lang)
        self.session = session
        self._checks: list = []

    def set_rows(self, rows: list[dict]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._checks = [merge_check(r, self.session, self.lang) for r in rows]
        self.endResetModel()

    def check(self, i: int):
        return self._checks[i] if 0 <= i < len(self._checks) else None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, key = self._rows[index.row()], COLUMNS[index.column()][0]
        ok = self._checks[index.row()]
        en = self.lang == "en"
        if role == IdRole:
            return r["id"]
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "event":
                return f"#{r['event_id']} {r.get('event_title') or ''}"
            if key == "other":
                return f"#{r['other_id']} {r.get('other_title') or ''}"
            if key == "category":
                return (r.get("category_name_en") if en else None) or r.get("category_name") or r.get("category") or ""
            if key == "street":
                return r.get("street_name") or ""
            if key == "time":
                return timeutil.display(r.get("event_reported_at"))
            if key == "distance":
                return f"{r['distance_m']:.0f} " + ("m" if en else "米")
            if key == "minutes":
                return f"{r['minutes']:.0f} " + ("min" if en else "分钟")
            if key == "status":
                return (f"{labels.label('status', r.get('event_status'), self.lang)} / "
                        f"{labels.label('status', r.get('other_status'), self.lang)}")  # fmt: skip
            if key == "check":
                return tr("可合并", "Yes", self.lang) if ok.ok else tr("不可合并", "No", self.lang)
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "check":
                return ok.why or tr("合并：较新的事件并入较早的事件", "Merge: the newer event goes into the older one",
                                    self.lang)  # fmt: skip
            if key in ("event", "other"):
                at = r.get("event_reported_at") if key == "event" else r.get("other_reported_at")
                return tr("上报 ", "Reported ", self.lang) + (timeutil.display(at) if at else "")
        if role == Qt.ItemDataRole.ForegroundRole and key == "check" and not ok.ok:
            from PySide6.QtGui import QBrush, QColor

            return QBrush(QColor("#fddd60"))
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("distance", "minutes"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class MergeSuggestionsPanel(QWidget):
    """``eventSelected(id)`` to show an event; ``merged(event_id)`` after an accepted merge."""

    eventSelected = Signal(int)
    merged = Signal(int)
    loaded = Signal()
    actionDone = Signal(str, str)  # kind, message

    RELOAD_MS = 300

    def __init__(self, replica, service, parent: QWidget | None = None, *, watcher=None,
                 lang: str | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("mergePanel")
        self.lang = lang or getattr(getattr(service, "session", None), "lang", None) or "zh"
        t = self._tr
        self.replica = replica
        self.service = service
        self._gen = 0
        self._busy = False
        self._selected: int | None = None
        self.model = MergeModel(service.session, self, lang=self.lang)
        self.table = row_table(self, "mergeTable", self.model)
        hh = self.table.horizontalHeader()
        for c in range(len(COLUMNS)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda _i: self.show_event())

        self.hint = plain("", "mergeHint")
        self.note = QLineEdit(self)
        self.note.setObjectName("mergeNote")
        self.note.setPlaceholderText(t("说明（可选）", "Note (optional)"))
        self.merge_button = QPushButton(t("合并", "Merge"), self)
        self.merge_button.setObjectName("mergeAcceptButton")
        self.merge_button.setProperty("kind", "primary")
        self.merge_button.setToolTip(t("把较新的事件并入较早的事件（生命周期「合并」，写入事件日志）",
                                       "Merge the newer event into the older one (the lifecycle's merge, logged)"))
        self.merge_button.clicked.connect(self.accept_selected)
        self.dismiss_button = QPushButton(t("忽略", "Dismiss"), self)
        self.dismiss_button.setObjectName("mergeDismissButton")
        self.dismiss_button.setProperty("kind", "overlay")
        self.dismiss_button.setToolTip(t("不是重复事件：记录判断，不再提示",
                                         "Not a duplicate: the decision is recorded and not suggested again"))
        self.dismiss_button.clicked.connect(self.dismiss_selected)
        self.view_button = QPushButton(t("查看事件", "Show event"), self)
        self.view_button.setProperty("kind", "overlay")
        self.view_button.clicked.connect(self.show_event)
        for b in (self.merge_button, self.dismiss_button, self.view_button):
            b.setAutoDefault(False)
        self.message = MessageLine(self)
        self.status = plain("", "dialogHint", wrap=False)

        buttons = QHBoxLayout()
        buttons.addWidget(self.note, 1)
        buttons.addWidget(self.view_button)
        buttons.addWidget(self.dismiss_button)
        buttons.addWidget(self.merge_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 6, 0, 0)
        lay.addWidget(plain(t("导入时发现的疑似重复：同类别、相距 50 米以内、间隔 2 小时以内。导入从不自动合并。",
                              "Possible duplicates found by imports: same category, within 50 m and 2 hours. "
                              "An import never merges by itself."), "dialogHint"))  # fmt: skip
        lay.addWidget(self.table, 1)
        lay.addWidget(self.hint)
        lay.addWidget(self.message)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        self._update_buttons()

        self._timer = debounce(self, self.RELOAD_MS, self.reload_now)
        if watcher is not None:
            watcher.changed.connect(self.reload)
        self.reload_now()

    def _tr(self, zh: str, en: str) -> str:
        return tr(zh, en, self.lang)

    # -- loading ------------------------------------------------------------------------------------
    def reload(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def reload_now(self) -> None:
        self._gen += 1
        gen, replica = self._gen, self.replica

        def job():
            conn = replica.reader()
            try:
                return load_suggestions(conn)
            finally:
                conn.close()

        one_shot(job, on_result=lambda rows: self._apply(gen, rows),
                 on_error=lambda exc: self.status.setText(self._tr("读取失败：", "Reading failed: ") + str(exc)))  # fmt: skip

    def _apply(self, gen: int, rows: list[dict]) -> None:
        if gen != self._gen:
            return
        self.model.set_rows(rows)
        self.status.setText(self._tr(f"待处理的合并建议 {len(rows)} 条", f"{len(rows)} open merge suggestion(s)"))
        row = self.model.row_of(self._selected)
        if row >= 0:
            self.table.selectRow(row)
        else:
            self._selected = None
        self._update_buttons()
        self.loaded.emit()

    # -- selection ----------------------------------------------------------------------------------
    def select(self, sid: int) -> bool:
        return select_row(self.table, self.model, sid)

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_data(rows[0].row()) if rows else None

    def _on_selection(self, *_a) -> None:
        r = self.selected()
        self._selected = r["id"] if r else None
        self._update_buttons()

    def _update_buttons(self) -> None:
        r = self.selected()
        for b in (self.merge_button, self.dismiss_button, self.view_button):
            b.setEnabled(r is not None and not self._busy)
        t = self._tr
        if r is None:
            self.hint.setText(t("选择一条建议：合并，或忽略（不是重复）。",
                                "Select a suggestion: merge it, or dismiss it (not a duplicate)."))
            return
        check = self.model.check(self.model.row_of(r["id"]))
        if check.ok:
            self.hint.setText(t(f"合并：事件 #{r['event_id']} 并入 #{r['other_id']}"
                                f"（相距 {r['distance_m']:.0f} 米，间隔 {r['minutes']:.0f} 分钟）",
                                f"Merge: event #{r['event_id']} into #{r['other_id']} "
                                f"({r['distance_m']:.0f} m, {r['minutes']:.0f} min apart)"))  # fmt: skip
        else:
            self.hint.setText(t("不可合并：", "Cannot merge: ") + check.why)

    # -- actions -----------------------------------------------------------------------------------
    def show_event(self) -> None:
        r = self.selected()
        if r is not None:
            self.eventSelected.emit(int(r["event_id"]))

    def _say(self, kind: str, text: str) -> None:
        self.message.say(kind, text)
        self.actionDone.emit(kind, text)

    def accept_selected(self) -> bool:
        """合并: check the lifecycle and role first (say why, write nothing), then merge in a worker."""
        r = self.selected()
        if r is None or self._busy:
            return False
        check = merge_check(r, self.service.session, self.lang)
        if not check.ok:
            self._say("error", self._tr("未合并：", "Not merged: ") + check.why)
            return False
        self._busy = True
        self._update_buttons()
        self.message.say("info", self._tr("正在合并 ", "Merging ") + f"#{r['event_id']} → #{r['other_id']}…")
        one_shot(accept_suggestion, self.service, r,
                 on_result=lambda row: self._merged(r, row), on_error=self._failed)  # fmt: skip
        return True

    def _merged(self, r: dict, _row: dict) -> None:
        self._busy = False
        self._selected = None
        self._say("ok", self._tr(f"已合并：事件 #{r['event_id']} 并入 #{r['other_id']}（已写入事件日志）",
                                 f"Merged: event #{r['event_id']} into #{r['other_id']} (logged)"))
        self.merged.emit(int(r["event_id"]))
        self.reload_now()

    def dismiss_selected(self) -> bool:
        r = self.selected()
        if r is None or self._busy:
            return False
        from db import merge_suggestions

        self._busy = True
        self._update_buttons()
        note = self.note.text().strip() or self._tr("不是重复事件", "not a duplicate")
        one_shot(merge_suggestions.dismiss, self.replica, int(r["id"]), actor=self.service.actor, note=note,
                 on_result=lambda _v: self._dismissed(r), on_error=self._failed)  # fmt: skip
        return True

    def _dismissed(self, r: dict) -> None:
        self._busy = False
        self._selected = None
        self.note.clear()
        self._say("ok", self._tr(f"已忽略建议 #{r['id']}（#{r['event_id']} 与 #{r['other_id']} 不是重复）",
                                 f"Suggestion #{r['id']} dismissed (#{r['event_id']} and #{r['other_id']} are not "
                                 "duplicates)"))  # fmt: skip
        self.reload_now()

    def _failed(self, exc: BaseException) -> None:
        self._busy = False
        self._update_buttons()
        self._say("error", self._tr("未执行：", "Not done: ") + bilingual(human_error(exc), self.lang))
        self.reload_now()
