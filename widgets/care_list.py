"""关爱名单 (care list) window: the residents of the session's scope, filters, and the forms to add,
edit, deactivate a resident and record a care visit.

Opened from the 智能预警 panel (``RobotPanel.open_care_list``). Data comes masked from
:mod:`app.care_list` for roles without personal-data rights; the wall never opens it and the
drill role only reads. Writes run in a worker (one transaction each); after one the table
reloads and :attr:`CareListWindow.changed` fires (the robot panel then runs a pass, so a
recorded visit clears its care warning).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from PySide6.QtCore import QDateTime, QModelIndex, Qt, QTimeZone, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import care_list as cl
from app import timeutil
from app.intake_views import bilingual
from widgets.intake_common import (
    MessageLine,
    RowsModel,
    debounce,
    human_error,
    labelled_form,
    plain,
    row_table,
)
from widgets.workers import Worker, run_in_thread

WARN = "#fddd60"  # overdue (WALL-UX warning yellow, the qss warn colour)
LATE = "#ff8a45"  # twice the interval and more
MUTED = "#8a93a6"  # deactivated


def tr(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else zh


class CareModel(RowsModel):
    COLUMNS = [("name", "姓名"), ("kind", "类别"), ("grid", "网格/社区"), ("address", "住址"), ("phone", "电话"),
               ("last_visit", "上次走访"), ("days", "距今(天)"), ("due", "应走访")]  # fmt: skip
    COLUMNS_EN = {"name": "Name", "kind": "Kind", "grid": "Grid / community", "address": "Address", "phone": "Phone",
                  "last_visit": "Last visit", "days": "Days since", "due": "Due"}  # fmt: skip

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        r = self.row_data(index.row())
        if r is None:
            return None
        key = self.COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(r, key)
        if role == Qt.ItemDataRole.ForegroundRole:
            if not r["active"]:
                return QColor(MUTED)
            if r["overdue"] and key in ("name", "days", "due"):
                return QColor(LATE if (r["days_since"] or 0) >= 2 * r["interval"] else WARN)
        if role == Qt.ItemDataRole.ToolTipRole and key in ("address", "grid"):
            return self.text(r, key)
        if role == Qt.ItemDataRole.TextAlignmentRole and key == "days":
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def text(self, r: dict, key: str) -> str:
        lang = self.lang
        if key == "name":
            return r["name"]
        if key == "kind":
            return cl.kind_label(r["kind"], lang)
        if key == "grid":
            return f"{r['street']} {r['grid_name']}"
        if key in ("address", "phone"):
            return r[key]
        if key == "last_visit":
            return (r["last_visit"] or "")[:16].replace("T", " ") or tr("从未走访", "never", lang)
        if key == "days":
            return "" if r["days_since"] is None else f"{r['days_since']:.0f}"
        if key == "due":
            if not r["active"]:
                return tr("已停用", "deactivated", lang)
            due = cl.due_at(r)
            if not due:
                return "—"
            if r["overdue"]:
                return tr(f"超期 {r['days_overdue']:.0f} 天", f"{r['days_overdue']:.0f} d overdue", lang)
            return due[5:10] + tr(f"（每 {r['interval']:g} 天）", f" (every {r['interval']:g} d)", lang)
        return ""


def _form_buttons(dialog: QDialog, ok_text: str, ok_name: str) -> QDialogButtonBox:
    """The care forms' tail: ``dialog.message`` (errors) and OK/Cancel, OK wired to ``try_accept``."""
    dialog.message = MessageLine(dialog, "intakeMessage")
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    dialog.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
    dialog.ok_button.setText(ok_text)
    dialog.ok_button.setObjectName(ok_name)
    buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消", "Cancel", dialog.lang))
    buttons.accepted.connect(dialog.try_accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


def _fail(dialog: QDialog, text: str) -> None:
    """Show a form's error under its fields and grow the dialog to fit it."""
    dialog.message.say("error", bilingual(text, dialog.lang))
    dialog.layout().activate()
    dialog.resize(max(dialog.width(), dialog.sizeHint().width()), max(dialog.height(), dialog.sizeHint().height()))


def _grid_combo(grids: list[dict], current: str | None = None, lang: str = "zh") -> QComboBox:
    """An editable grid picker: type any part of the street, community, grid name or id."""
    box = QComboBox()
    box.setObjectName("CareGrid")
    box.setEditable(True)
    box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    for g in grids:
        box.addItem(cl.grid_label(g), g["id"])
    comp = box.completer()
    comp.setFilterMode(Qt.MatchFlag.MatchContains)
    comp.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
    box.lineEdit().setPlaceholderText(tr("输入街道、社区、网格名或编号筛选", "Type a street, community, grid name or id", lang))
    box.setCurrentIndex(box.findData(current) if current else -1)
    if not current:
        box.setEditText("")
    return box


def combo_grid_id(box: QComboBox) -> str | None:
    """The grid id chosen or typed (a label from the list, or a bare grid id)."""
    text = box.currentText().strip()
    if not text:
        return None
    i = box.findText(text)
    if i >= 0:
        return box.itemData(i)
    for j in range(box.count()):
        if box.itemData(j) == text:
            return text
    return text  # unknown: the check names it


class ResidentDialog(QDialog):
    """Add (``resident`` None) or edit a resident; :meth:`record` holds the checked fields."""

    def __init__(self, grids: list[dict], lang: str, parent=None, resident: dict | None = None,
                 default_days: float = 7) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("CareResidentDialog")
        self.lang = lang
        self.grids = {g["id"]: g for g in grids}
        self.resident = resident
        r = resident or {}
        self.setWindowTitle(tr("修改关爱对象", "Edit resident", lang) if resident else tr("新增关爱对象", "Add resident", lang))
        self.name = QLineEdit(r.get("name", ""))
        self.name.setObjectName("CareName")
        self.kind = QComboBox()
        self.kind.setObjectName("CareKind")
        for k in cl.CARE_KINDS:
            self.kind.addItem(cl.kind_label(k, lang), k)
        self.kind.setCurrentIndex(max(self.kind.findData(r.get("kind", "elderly_alone")), 0))
        self.grid = _grid_combo(grids, r.get("grid_id"), lang)
        self.address = QLineEdit(r.get("address", ""))
        self.address.setObjectName("CareAddress")
        self.address.setPlaceholderText(tr("如：崇川区城东街道德民新村 9 幢 301 室", "e.g. building 9, room 301", lang))
        self.phone = QLineEdit(r.get("phone", ""))
        self.phone.setObjectName("CarePhone")
        self.phone.setPlaceholderText(tr("手机 11 位或座机 0513-85123456", "mobile (11 digits) or 0513-85123456", lang))
        self.id_no = QLineEdit(r.get("id_no", ""))
        self.id_no.setObjectName("CareIdNo")
        self.id_no.setPlaceholderText(tr("18 位身份证号（可不填）", "18-character ID number (optional)", lang))
        self.every = QSpinBox()
        self.every.setObjectName("CareEvery")
        self.every.setRange(0, 365)
        self.every.setSpecialValueText(tr(f"按默认（{default_days:g} 天）", f"default ({default_days:g} days)", lang))
        self.every.setSuffix(tr(" 天", " days", lang))
        self.every.setValue(int(r.get("visit_every_days") or 0))
        self.note = QPlainTextEdit(r.get("note", ""))
        self.note.setObjectName("CareNote")
        self.note.setFixedHeight(64)
        form = labelled_form()
        for label, w in ((tr("姓名 *", "Name *", lang), self.name), (tr("类别 *", "Kind *", lang), self.kind),
                         (tr("网格 *", "Grid *", lang), self.grid), (tr("住址", "Address", lang), self.address),
                         (tr("电话", "Phone", lang), self.phone), (tr("身份证号", "ID number", lang), self.id_no),
                         (tr("走访周期", "Visit every", lang), self.every), (tr("备注", "Note", lang), self.note)):  # fmt: skip
            form.addRow(label, w)
        buttons = _form_buttons(self, tr("保存", "Save", lang), "CareSave")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addWidget(buttons)
        self.setMinimumWidth(520)
        self.record: dict = {}

    def values(self) -> dict:
        return {"name": self.name.text(), "kind": self.kind.currentData(), "grid_id": combo_grid_id(self.grid),
                "address": self.address.text(), "phone": self.phone.text(), "id_no": self.id_no.text(),
                "visit_every_days": self.every.value() or None, "note": self.note.toPlainText()}  # fmt: skip

    def try_accept(self) -> None:
        """Check the fields; an error stays in the dialog, naming the field."""
        try:
            rec = cl.clean_care_fields(self.values())
            if rec["grid_id"] not in self.grids:
                raise cl.RobotError(tr(f"网格“{rec['grid_id']}”不在本辖区网格列表中，请从列表选择",
                                       f"grid {rec['grid_id']!r} is not one of your grids; pick one from the list",
                                       self.lang))  # fmt: skip
        except cl.RobotError as exc:
            _fail(self, human_error(exc))
            return
        if self.resident is not None:  # an edit sends only what changed
            try:
                old = cl.clean_care_fields({k: self.resident.get(k) for k in cl.CARE_FIELDS})
            except cl.RobotError:  # an older row that no longer passes the checks
                old = dict(self.resident)
            rec = {k: v for k, v in rec.items() if old.get(k) != v}
        self.record = rec
        self.accept()


class DeactivateDialog(QDialog):
    REASONS_ZH = ("已搬离本辖区", "已入住养老机构", "已去世", "情况好转，不再列入", "重复登记")
    REASONS_EN = ("Moved out of the area", "Moved into a care home", "Deceased", "Situation improved",
                  "Listed twice")  # fmt: skip

    def __init__(self, who: str, lang: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("CareDeactivateDialog")
        self.lang = lang
        self.setWindowTitle(tr("停用关爱对象", "Deactivate resident", lang))
        self.reason = QComboBox()
        self.reason.setObjectName("CareDeactivateReason")
        self.reason.setEditable(True)
        self.reason.addItems(self.REASONS_EN if lang == "en" else self.REASONS_ZH)
        self.reason.setCurrentIndex(-1)
        self.reason.setEditText("")
        self.reason.lineEdit().setPlaceholderText(tr("停用原因（必填）", "Reason (required)", lang))
        buttons = _form_buttons(self, tr("停用", "Deactivate", lang), "CareDeactivateOk")
        lay = QVBoxLayout(self)
        lay.addWidget(plain(tr(f"停用 {who}：不再提醒走访，走访记录保留，名单中可勾选“含已停用”查看。",
                               f"Deactivate {who}: no more visit reminders; the visits are kept "
                               "(tick 'incl. deactivated' to see them).", lang)))  # fmt: skip
        lay.addWidget(self.reason)
        lay.addWidget(self.message)
        lay.addWidget(buttons)
        self.setMinimumWidth(440)

    def text(self) -> str:
        return self.reason.currentText().strip()

    def try_accept(self) -> None:
        if not self.text():
            _fail(self, tr("请填写停用原因（如：已搬离、已入住养老机构）", "A reason is required", self.lang))
            return
        self.accept()


class VisitDialog(QDialog):
    """Record a visit: time (default now, Asia/Shanghai), visitor (the grid's people or free text), note."""

    def __init__(self, who: str, people: list[dict], lang: str, now: dt.datetime, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("CareVisitDialog")
        self.lang = lang
        self.now = now
        self.setWindowTitle(tr("登记走访", "Record a visit", lang))
        tz = QTimeZone(b"Asia/Shanghai")
        self.at = QDateTimeEdit(QDateTime(now.date(), now.time().replace(second=0), tz))
        self.at.setObjectName("CareVisitAt")
        self.at.setTimeZone(tz)
        self.at.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.at.setCalendarPopup(True)
        self.visitor = QComboBox()
        self.visitor.setObjectName("CareVisitor")
        self.visitor.setEditable(True)
        self.visitor.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for p in people:
            self.visitor.addItem(f"{p['position']} {p['name']}".strip(), p["id"])
        if not people:
            self.visitor.setEditText("")
        self.visitor.lineEdit().setPlaceholderText(tr("选择网格人员或填写走访人姓名", "Pick grid staff or type a name", lang))
        self.note = QPlainTextEdit()
        self.note.setObjectName("CareVisitNote")
        self.note.setPlaceholderText(tr("身体、生活状况，需协调解决的问题…", "Health, living conditions, needs …", lang))
        self.note.setFixedHeight(72)
        form = labelled_form()
        form.addRow(tr("关爱对象", "Resident", lang), plain(who))
        form.addRow(tr("走访时间 *", "Time *", lang), self.at)
        form.addRow(tr("走访人 *", "Visitor *", lang), self.visitor)
        form.addRow(tr("走访情况", "Note", lang), self.note)
        buttons = _form_buttons(self, tr("登记", "Record", lang), "CareVisitOk")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addWidget(buttons)
        self.setMinimumWidth(460)
        self.visit: dict = {}

    def when(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.at.dateTime().toSecsSinceEpoch(), timeutil.TZ)

    def try_accept(self) -> None:
        text = self.visitor.currentText().strip()
        i = self.visitor.findText(text) if text else -1
        person = self.visitor.itemData(i) if i >= 0 else None
        when = self.when()
        if not text:
            _fail(self, tr("请填写走访人", "A visitor is required", self.lang))
            return
        if (when - self.now).total_seconds() > 60:
            _fail(self, tr(f"走访时间 {when:%Y-%m-%d %H:%M} 晚于现在，不能登记未来的走访",
                                         f"The visit time {when:%Y-%m-%d %H:%M} lies in the future", self.lang))
            return
        self.visit = {"at": when, "person_id": person, "visitor": None if person is not None else text,
                      "note": self.note.toPlainText()}  # fmt: skip
        self.accept()


class CareListWindow(QDialog):
    """The 关爱名单 window. ``changed(int)`` after a write, once the table shows it (the resident's
    id); ``visitRecorded(int)``; ``loaded(int)`` after each read. Reads and writes run in workers."""

    changed = Signal(int)
    loaded = Signal(int)  # the rows are shown (their count)
    visitRecorded = Signal(int)  # noqa: N815

    def __init__(self, replica, session, parent=None, *, now: Callable[[], dt.datetime] = timeutil.now,
                 state=None) -> None:  # fmt: skip
        super().__init__(parent)
        if not cl.may_open(session):
            raise PermissionError(f"角色 {session.role} 不能查看关爱名单 role {session.role} may not open the care list")
        self.setObjectName("CareListWindow")
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.replica = replica
        self.session = session
        self.now = now
        lang = self.lang = getattr(session, "lang", "zh")
        self.personal = cl.may_see_personal(session)
        self.writable = cl.may_write(session)
        self._worker: Worker | None = None
        self.dialog: QDialog | None = None
        self.setWindowTitle(tr("重点人群关爱名单", "Care list (vulnerable residents)", lang))
        conn = replica.reader()
        try:
            self.street_list = cl.streets(conn, session)
            self.all_grids = cl.scope_grids(conn, session)
            self.default_days = cl.default_interval(conn)
        finally:
            conn.close()

        self.street = QComboBox()
        self.street.setObjectName("CareStreetFilter")
        self.street.addItem(tr("全部街道", "All streets", lang), None)
        for code, name in self.street_list:
            self.street.addItem(name, code)
        self.street.setVisible(session.role != "street")
        self.kind = QComboBox()
        self.kind.setObjectName("CareKindFilter")
        self.kind.addItem(tr("全部类别", "All kinds", lang), None)
        for k in cl.CARE_KINDS:
            self.kind.addItem(cl.kind_label(k, lang), k)
        self.grid = QComboBox()
        self.grid.setObjectName("CareGridFilter")
        self.grid.setMinimumWidth(200)
        self.search = QLineEdit()
        self.search.setObjectName("CareSearch")
        self.search.setPlaceholderText(tr("搜索姓名或住址", "Search name or address", lang))
        self.search.setClearButtonEnabled(True)
        self.overdue_only = QCheckBox(tr("只看超期", "Overdue only", lang))
        self.overdue_only.setObjectName("CareOverdueOnly")
        self.inactive = QCheckBox(tr("含已停用", "Incl. deactivated", lang))
        self.inactive.setObjectName("CareIncludeInactive")
        self._fill_grids()
        filters = QHBoxLayout()
        for w in (self.street, self.kind, self.grid):
            filters.addWidget(w)
        filters.addWidget(self.search, 1)
        filters.addWidget(self.overdue_only)
        filters.addWidget(self.inactive)
        self.street.currentIndexChanged.connect(lambda _i: (self._fill_grids(), self.reload()))
        for box in (self.kind, self.grid):
            box.currentIndexChanged.connect(lambda _i: self.reload())
        for cb in (self.overdue_only, self.inactive):
            cb.toggled.connect(lambda _on: self.reload())
        self._search_timer = debounce(self, 250, self.reload)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())

        self.model = CareModel(self, lang=lang)
        self.table = row_table(self, "CareTable", self.model)
        hh = self.table.horizontalHeader()
        widths = (110, 140, 190, 240, 110, 124, 84, 150) if lang == "en" else (92, 100, 190, 260, 110, 124, 72, 150)
        for col, width in enumerate(widths):
            hh.resizeSection(col, width)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._on_row)
        self.table.doubleClicked.connect(lambda _i: self.open_visit() if self.writable else None)

        self.summary = plain("", "CareSummary", wrap=False)
        self.banner = plain("", "CareBanner")
        notes = []
        if session.role == "drill":
            notes.append(tr("演练模式：关爱名单只读，不写入真实关爱数据。", "Drill mode: the care list is read-only here.", lang))
        if not self.personal:
            notes.append(tr("个人信息已脱敏（本角色无权查看姓名、电话、身份证号和门牌号）。",
                            "Personal data masked (this role may not see names, phones, ID numbers, house numbers).",
                            lang))  # fmt: skip
        self.banner.setText(" ".join(notes))
        self.banner.setVisible(bool(notes))
        self.banner.setStyleSheet(f"color: {WARN};")

        self.add_button = QPushButton(tr("新增…", "Add…", lang))
        self.edit_button = QPushButton(tr("修改…", "Edit…", lang))
        self.visit_button = QPushButton(tr("登记走访…", "Record visit…", lang))
        self.deactivate_button = QPushButton(tr("停用…", "Deactivate…", lang))
        for b, name, slot in ((self.add_button, "CareAdd", self.open_add), (self.edit_button, "CareEdit", self.open_edit),
                              (self.visit_button, "CareVisit", self.open_visit),
                              (self.deactivate_button, "CareDeactivate", self.open_deactivate)):  # fmt: skip
            b.setObjectName(name)
            b.clicked.connect(slot)
            b.setVisible(self.writable)
        actions = QHBoxLayout()
        actions.addWidget(self.summary, 1)
        for b in (self.visit_button, self.add_button, self.edit_button, self.deactivate_button):
            actions.addWidget(b)

        self.detail = plain("", "CareDetail")
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.visits = QListWidget()
        self.visits.setObjectName("CareVisits")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        rl.addWidget(self.detail)
        rl.addWidget(plain(tr("走访记录（最近 50 次）", "Visits (latest 50)", lang), "CareVisitsTitle"))
        rl.addWidget(self.visits, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(right)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([1000, 300])
        self.message = MessageLine(self, "intakeMessage")
        lay = QVBoxLayout(self)
        lay.addLayout(filters)
        lay.addWidget(self.banner)
        lay.addWidget(split, 1)
        lay.addLayout(actions)
        lay.addWidget(self.message)
        self.resize(1360, 720)
        self.current: dict | None = None
        self._loader: Worker | None = None
        self._select: int | None = None
        self._again = False
        self._after: list[Callable[[], None]] = []
        self.state = state  # app.state.AppState: a grid clicked on the map fills the open resident form
        if state is not None:
            state.grid_selected.connect(self.use_map_grid)
        self.reload()

    # -- data ------------------------------------------------------------------------------------
    def _fill_grids(self) -> None:
        street = self.street.currentData() if self.street.isVisible() or self.session.role != "street" else None
        self.grid.blockSignals(True)
        self.grid.clear()
        self.grid.addItem(tr("全部网格", "All grids", self.lang), None)
        for g in self.all_grids:
            if street is None or g["street_code"] == street:
                self.grid.addItem(f"{g['street']} {g['name']}", g["id"])
        self.grid.blockSignals(False)

    def reload(self, select: int | None = None, then: Callable[[], None] | None = None) -> None:
        """Re-read the residents with the filters in a worker (a district list of 20,000 takes
        about half a second); ``select`` keeps that resident selected, ``then`` runs once the rows
        are shown. A reload asked for while one runs starts again after it with the new filters."""
        if select is not None:
            self._select = select
        elif self._select is None and self.current is not None:
            self._select = self.current["id"]
        if then is not None:
            self._after.append(then)
        if self.loading:
            self._again = True
            return
        filters = {"street": self.street.currentData(), "kind": self.kind.currentData(), "grid": self.grid.currentData(),
                   "search": self.search.text(), "include_inactive": self.inactive.isChecked(),
                   "overdue_only": self.overdue_only.isChecked(), "now": self.now()}  # fmt: skip
        self.summary.setText(tr("读取中…", "Loading…", self.lang))
        self._loader = run_in_thread(self._read, filters, on_result=self._show_rows, on_error=self._read_failed)

    def _read(self, filters: dict) -> list[dict]:
        conn = self.replica.reader()
        try:
            return cl.list_residents(conn, self.session, **filters)
        finally:
            conn.close()

    @property
    def loading(self) -> bool:
        """A read runs or its rows are not shown yet (the worker is done before its result arrives)."""
        return self._loader is not None

    def _read_failed(self, exc: BaseException) -> None:
        self._loader = None
        self.message.say("error", bilingual(human_error(exc), self.lang))
        self.summary.setText("")

    def _show_rows(self, rows: list[dict]) -> None:
        self._loader = None
        if self._again:  # the filters changed meanwhile
            self._again = False
            self.reload()
            return
        keep, self._select = self._select, None
        self.model.set_rows(rows)
        n_over = sum(1 for r in rows if r["overdue"])
        self.summary.setText(tr(f"共 {len(rows)} 人 · 超期未走访 {n_over} 人", f"{len(rows)} residents · {n_over} overdue",
                                self.lang))  # fmt: skip
        row = self.model.row_of(keep) if keep is not None else -1
        if row >= 0:
            self.table.selectRow(row)
            self.table.scrollTo(self.model.index(row, 0))
            self.show_resident(self.model.row_data(row))
        else:
            self.table.clearSelection()
            self.show_resident(None)
        after, self._after = self._after, []
        for fn in after:
            fn()
        self.loaded.emit(len(rows))

    def residents(self) -> list[dict]:
        return self.model.rows()

    def select_resident(self, care_id: int) -> bool:
        row = self.model.row_of(care_id)
        if row < 0:
            return False
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def _on_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.show_resident(self.model.row_data(current.row()) if current.isValid() else None)

    def show_resident(self, r: dict | None) -> None:
        self.current = r
        self.visits.clear()
        busy = self.busy
        for b in (self.edit_button, self.visit_button, self.deactivate_button):
            b.setEnabled(r is not None and r["active"] and not busy)
        self.add_button.setEnabled(not busy)
        if r is None:
            self.detail.setText(tr("选择一位关爱对象查看详情和走访记录。", "Select a resident to see details and visits.",
                                   self.lang))  # fmt: skip
            return
        lang = self.lang
        lines = [f"{r['name']} · {cl.kind_label(r['kind'], lang)}" + ("" if r["active"] else tr("（已停用）", " (deactivated)", lang)),
                 f"{r['street']} {r['community']} {r['grid_name']}",
                 r["address"], r["phone"] + (f"  {r['id_no']}" if r["id_no"] else ""),
                 tr(f"走访周期：每 {r['interval']:g} 天", f"Visit every {r['interval']:g} days", lang)]  # fmt: skip
        conn = self.replica.reader()
        try:
            visits = cl.visits_of(conn, self.session, r["id"])
            note = r["note"] or cl.resident_note(conn, self.session, r["id"])
        finally:
            conn.close()
        if note:
            lines.append(tr("备注：", "Note: ", lang) + note)
        self.detail.setText("\n".join(x for x in lines if x))
        for v in visits:
            self.visits.addItem(f"{v['at'][:16].replace('T', ' ')}  {v['visitor']}  {v['note']}".rstrip())
        if not visits:
            self.visits.addItem(tr("暂无走访记录", "No visits yet", lang))

    # -- forms -------------------------------------------------------------------------------------
    def _grids_for_forms(self) -> list[dict]:
        return self.all_grids

    def open_add(self) -> ResidentDialog | None:
        if self._busy_form():
            return None
        if not self.writable:
            return None
        grid = self.grid.currentData()
        if not grid and self.state is not None and self.state.grid_id in {g["id"] for g in self.all_grids}:
            grid = self.state.grid_id  # the grid selected on the map
        dialog = ResidentDialog(self._grids_for_forms(), self.lang, self, default_days=self.default_days,
                                resident={"grid_id": grid} if grid else None)  # fmt: skip
        if grid:  # a pre-filled grid, but still an add
            dialog.resident = None
            dialog.setWindowTitle(tr("新增关爱对象", "Add resident", self.lang))
        dialog.accepted.connect(lambda: self._write(cl.add_resident, self.replica, self.session, dialog.record,
                                                    done=lambda cid: tr(f"已新增关爱对象 #{cid}", f"Resident #{cid} added",
                                                                        self.lang)))  # fmt: skip
        return self._show(dialog)

    def _full_resident(self, care_id: int) -> dict:
        conn = self.replica.reader()
        try:
            row = conn.execute("SELECT name, kind, grid_id, address, phone, id_no, visit_every_days, note FROM care_list "
                               "WHERE id = ?", (care_id,)).fetchone()  # fmt: skip
        finally:
            conn.close()
        keys = ("name", "kind", "grid_id", "address", "phone", "id_no", "visit_every_days", "note")
        return {k: ("" if v is None and k != "visit_every_days" else v) for k, v in zip(keys, row, strict=True)}

    def open_edit(self) -> ResidentDialog | None:
        if self._busy_form():
            return None
        r = self.current
        if not self.writable or r is None or not r["active"]:
            return None
        cid = r["id"]
        dialog = ResidentDialog(self._grids_for_forms(), self.lang, self, resident=self._full_resident(cid),
                                default_days=self.default_days)  # fmt: skip

        def save() -> None:
            if not dialog.record:
                self.message.say("info", tr("没有改动", "Nothing changed", self.lang))
                return
            self._write(cl.update_resident, self.replica, self.session, cid, dialog.record, select=cid,
                        done=lambda diff: tr(f"已保存 #{cid} 的修改（{len(diff)} 项）", f"Resident #{cid} saved "
                                             f"({len(diff)} field(s))", self.lang))  # fmt: skip

        dialog.accepted.connect(save)
        return self._show(dialog)

    def open_deactivate(self) -> DeactivateDialog | None:
        if self._busy_form():
            return None
        r = self.current
        if not self.writable or r is None or not r["active"]:
            return None
        cid = r["id"]
        dialog = DeactivateDialog(r["name"], self.lang, self)
        dialog.accepted.connect(lambda: self._write(
            cl.deactivate_resident, self.replica, self.session, cid, dialog.text(), select=cid,
            done=lambda _r: tr(f"已停用 #{cid}，走访记录保留", f"Resident #{cid} deactivated; visits kept", self.lang)))
        return self._show(dialog)

    def open_visit(self) -> VisitDialog | None:
        if self._busy_form():
            return None
        r = self.current
        if not self.writable or r is None or not r["active"]:
            return None
        cid = r["id"]
        conn = self.replica.reader()
        try:
            people = cl.grid_people(conn, r["grid_id"], self.session)
        finally:
            conn.close()
        now = self.now()
        dialog = VisitDialog(f"{r['name']}（{r['grid_name']}）", people, self.lang, now, self)

        def save() -> None:
            v = dialog.visit
            self._write(cl.record_visit, self.replica, self.session, cid, at=v["at"], person_id=v["person_id"],
                        visitor=v["visitor"], note=v["note"], now=now, select=cid, visit=True,
                        done=lambda _vid: tr("已登记走访，智能预警将据此更新", "Visit recorded; the robot re-checks now",
                                             self.lang))  # fmt: skip

        dialog.accepted.connect(save)
        return self._show(dialog)

    def use_map_grid(self, grid_id: str | None) -> bool:
        """A grid clicked on the map goes into the open add/edit form (when it is one of the
        session's grids); True when it was taken."""
        d = self.dialog
        if not grid_id or not isinstance(d, ResidentDialog) or not d.isVisible():
            return False
        if grid_id not in d.grids:
            _fail(d, tr(f"地图上选中的网格 {grid_id} 不在本辖区", f"grid {grid_id} clicked on the map is outside your scope",
                        self.lang))  # fmt: skip
            return False
        d.grid.setCurrentIndex(d.grid.findData(grid_id))
        d.message.say("info", tr("已按地图选中的网格填写", "Grid taken from the map", self.lang))
        return True

    def _busy_form(self) -> bool:
        """A form is still open: bring it forward instead of opening a second one (nothing typed is lost)."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            self.message.say("info", tr("请先保存或取消正在填写的表单", "Save or cancel the open form first", self.lang))
            return True
        return False

    def _show(self, dialog: QDialog) -> QDialog:
        """Show a form modeless (the map stays clickable for the grid); one form at a time."""
        self.dialog = dialog
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.show()
        dialog.raise_()
        return dialog

    def _write(self, fn, *args, done: Callable, select: int | None = None, visit: bool = False, **kwargs) -> Worker:
        def ok(result) -> None:
            self._worker = None
            cid = select if select is not None else int(result)
            if select is None and self.search.text():
                self.search.clear()
            text = done(result)

            def shown() -> None:
                self.message.say("ok", text)
                self.changed.emit(cid)
                if visit:
                    self.visitRecorded.emit(cid)

            self.reload(select=cid, then=shown)

        def failed(exc: BaseException) -> None:
            self._worker = None
            self.message.say("error", bilingual(human_error(exc), self.lang))
            self.show_resident(self.current)

        self._worker = run_in_thread(fn, *args, on_result=ok, on_error=failed, **kwargs)
        self.show_resident(self.current)
        return self._worker

    @property
    def busy(self) -> bool:
        """A write runs or its outcome is not shown yet."""
        return self._worker is not None
