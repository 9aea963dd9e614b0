"""历史查询 (search history): past events — every status, closed ones included — by a resident's
phone number or an address, opened from the event queue.

A thin view over :func:`app.intake_views.search_history`, run in a worker with its own read
connection (the latest query wins; older answers are dropped). Reporters' names and phones are
shown only to roles that may see personal data (district, street); other roles get them masked
(``138****1234``) by the query itself, so the unmasked values never reach this widget.
Selecting a result emits ``eventSelected(id)``: the console shows that event.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.intake_views import may_see_personal, search_history, search_mode, tr
from widgets.event_queue import plain_tooltip
from widgets.intake_common import RowsModel, fit_columns, one_shot, plain, row_table

COLUMNS = [
    ("reported_at", "上报时间"),
    ("title", "标题"),
    ("status", "状态"),
    ("address", "地址"),
    ("reporter_name", "反映人"),
    ("reporter_phone", "联系电话"),
    ("source", "来源"),
    ("matched", "命中"),
]
COLUMNS_EN = {"reported_at": "Reported", "title": "Title", "status": "Status", "address": "Address",
              "reporter_name": "Reporter", "reporter_phone": "Phone", "source": "Source", "matched": "Matched"}  # fmt: skip
COL = {k: i for i, (k, _) in enumerate(COLUMNS)}
MODES = {"auto": "自动识别", "phone": "按电话号码", "address": "按地址"}
MODES_EN = {"auto": "Auto-detect", "phone": "By phone number", "address": "By address"}
MATCHED = {"phone": "联系电话", "description": "诉求内容", "address": "地址"}
MATCHED_EN = {"phone": "Phone", "description": "Description", "address": "Address"}
IdRole = Qt.ItemDataRole.UserRole


class HistoryModel(RowsModel):
    COLUMNS = COLUMNS
    COLUMNS_EN = COLUMNS_EN

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, key = self._rows[index.row()], COLUMNS[index.column()][0]
        en = self.lang == "en"
        if role == IdRole:
            return r["id"]
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "reported_at":
                return (r.get("reported_at") or "")[:16].replace("T", " ")
            if key == "title":
                drill = ("[Drill] " if en else "【演练】") if r.get("drill_id") is not None else ""
                return drill + (r.get("title") or "")
            if key == "status":
                return r.get("status_label") or r.get("status") or ""
            if key == "source":
                return r.get("source_label") or r.get("source") or ""
            if key == "matched":
                return (MATCHED_EN if en else MATCHED).get(r.get("matched"), r.get("matched") or "")
            return r.get(key) or ""
        if role == Qt.ItemDataRole.ToolTipRole and key in ("title", "address"):
            category = (r.get("category_name_en") if en else None) or r.get("category_name") or ""
            return plain_tooltip(r.get("title"), r.get("address"),
                                 f"{tr('事件', 'Event', self.lang)} #{r['id']} · {category} · {r.get('street_name') or ''}",
                                 f"{tr('结案', 'Closed', self.lang)} {timeutil.display(r['closed_at'])}"
                                 if r.get("closed_at") else None)  # fmt: skip
        return None


class HistorySearchDialog(QDialog):
    """Non-modal: the operator keeps it open while working the queue."""

    eventSelected = Signal(int)
    searched = Signal(object)  # HistoryResult

    def __init__(self, replica, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = getattr(session, "lang", None) or "zh"
        t = self._tr
        self.setObjectName("HistorySearchDialog")
        self.setWindowTitle(t("历史查询 — 按电话号码或地址", "Search history — by phone number or address"))
        self.resize(1040, 560)
        self.replica = replica
        self.session = session
        self.personal = may_see_personal(session)
        self.result = None
        self._gen = 0

        self.mode = QComboBox(self)
        self.mode.setObjectName("historyMode")
        for code, text in MODES.items():
            self.mode.addItem(t(text, MODES_EN[code]), code)
        self.query = QLineEdit(self)
        self.query.setObjectName("historyQuery")
        self.query.setPlaceholderText(t("电话号码（可输部分号码，至少 3 位）或地址关键词，如 138… / 弘运小区",
                                        "Phone number (part of it will do, at least 3 digits) or address keyword, "
                                        "e.g. 138… / an estate name"))  # fmt: skip
        self.query.setClearButtonEnabled(True)
        self.query.setMaxLength(100)
        self.query.returnPressed.connect(self.search)
        self.query.textChanged.connect(self._show_mode)
        self.button = QPushButton(t("查询", "Search"), self)
        self.button.setObjectName("historySearchButton")
        self.button.setProperty("kind", "primary")
        self.button.setAutoDefault(False)
        self.button.clicked.connect(self.search)
        self.mode_hint = plain("", "dialogHint", wrap=False)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.mode)
        row.addWidget(self.query, 1)
        row.addWidget(self.button)

        self.model = HistoryModel(self, lang=self.lang)
        self.table = row_table(self, "historyTable", self.model)
        widths = {"reported_at": 10, "status": 4.5, "address": 14, "reporter_name": 4.5, "reporter_phone": 7.5,
                  "source": 6, "matched": 4.5}  # fmt: skip
        if self.lang == "en":
            widths.update(source=8.5, matched=6)
        fit_columns(self.table, self.fontMetrics(), {COL[k]: w for k, w in widths.items()}, COL["title"])
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.activated.connect(lambda _i: self._on_selection())

        self.status = plain("", "dialogHint", wrap=False)
        self.privacy = plain(t("本岗位可查看反映人信息", "This post may see reporters' details") if self.personal
                             else t("个人信息已脱敏（本岗位不可查看）", "Personal data masked (not for this post)"),
                             "privacyNote", wrap=False)  # fmt: skip
        self.privacy.setToolTip(t("反映人姓名与电话仅向区、街道指挥中心岗位显示；其他岗位显示为 138****1234",
                                  "Reporters' names and phones show only to the district and street centre posts; "
                                  "other posts see 138****1234"))  # fmt: skip
        self.privacy.setProperty("masked", not self.personal)
        close = QPushButton(t("关闭", "Close") + "  Esc", self)
        close.setAutoDefault(False)
        close.clicked.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.privacy)
        bottom.addWidget(close)

        lay = QVBoxLayout(self)
        lay.setSpacing(8)
        lay.addWidget(plain(t("历史查询", "Search history"), "DialogTitle"))
        lay.addWidget(plain(t("查找以往事件（含已结案）：按来电号码、诉求内容中的号码，或按地址。选中一条即在地图和详情中显示。",
                              "Find past events (closed ones too): by caller number, a number in the description, or "
                              "by address. Selecting one shows it on the map and in the details."),
                            "dialogHint"))  # fmt: skip
        lay.addLayout(row)
        lay.addWidget(self.mode_hint)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)
        QShortcut(QKeySequence("Ctrl+F"), self).activated.connect(self.focus_query)
        self.mode.currentIndexChanged.connect(lambda _i: self._show_mode(""))
        self._show_mode("")

    def _tr(self, zh: str, en: str) -> str:
        return tr(zh, en, self.lang)

    # -- querying --------------------------------------------------------------------------------
    def focus_query(self) -> None:
        self.query.setFocus()
        self.query.selectAll()

    def set_query(self, text: str, mode: str = "auto") -> None:
        self.mode.setCurrentIndex(max(self.mode.findData(mode), 0))
        self.query.setText(text)

    def _show_mode(self, _text: str) -> None:
        text = self.query.text().strip()
        mode = self.mode.currentData()
        t = self._tr
        if not text:
            self.mode_hint.setText(t("输入号码按电话查询，输入文字按地址查询",
                                     "Type a number to search by phone, words to search by address"))
            return
        m = search_mode(text) if mode == "auto" else mode
        self.mode_hint.setText(t("将按电话号码查询（来电号码 + 诉求内容中的号码）",
                                 "Searching by phone number (caller number + numbers in the description)")
                               if m == "phone" else t("将按地址查询", "Searching by address"))  # fmt: skip

    def search(self) -> bool:
        """Run the query in a worker; the newest query's answer is the one shown."""
        text = self.query.text().strip()
        if not text:
            self.status.setText(self._tr("请输入电话号码或地址", "Enter a phone number or an address"))
            return False
        self._gen += 1
        gen, replica, session, mode, lang = self._gen, self.replica, self.session, self.mode.currentData(), self.lang
        self.status.setText(self._tr("正在查询…", "Searching…"))

        def job():
            conn = replica.reader()
            try:
                return search_history(conn, session, text, mode, lang=lang)
            finally:
                conn.close()

        one_shot(job, on_result=lambda res: self._apply(gen, res),
                 on_error=lambda exc: self._failed(gen, exc))  # fmt: skip
        return True

    def _apply(self, gen: int, res) -> None:
        if gen != self._gen:
            return
        self.result = res
        self.model.set_rows(res.rows)
        if self.lang == "en":
            how = "phone number" if res.mode == "phone" else "address"
            if res.rows:
                text = f"{len(res.rows)} found by {how} “{res.query}”" + (" (newest 200 only)" if res.truncated else "")
            else:
                text = res.message or "No past events found"
            self.status.setText(f"{text} · {res.elapsed_ms:.0f} ms")
        else:
            how = "电话号码" if res.mode == "phone" else "地址"
            if res.rows:
                text = f"按{how}「{res.query}」找到 {len(res.rows)} 件" + ("（仅显示最新 200 件）" if res.truncated else "")
            else:
                text = res.message or "未找到历史事件"
            self.status.setText(f"{text} · {res.elapsed_ms:.0f} 毫秒")
        self.searched.emit(res)

    def _failed(self, gen: int, exc: BaseException) -> None:
        if gen == self._gen:
            self.status.setText(self._tr("查询失败：", "Search failed: ") + str(exc))

    def _on_selection(self, *_a) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            r = self.model.row_data(rows[0].row())
            if r is not None:
                self.eventSelected.emit(int(r["id"]))
