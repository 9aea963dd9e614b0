"""Compact inline forms of the event actions (thin views: they collect values, they write nothing).

``ActionForm`` is one form: a title, a few fields, 确认 (Ctrl+Enter) and 取消 (Esc). The detail
panel builds one with :func:`build_form` for the action the operator picked, reads
``values()`` on ``confirmed`` and calls the service itself. ``TargetPicker`` (dispatch target:
suggestions first, then every department and street, filtered as you type) is shared with
the bulk-dispatch dialog.
"""

from __future__ import annotations

import datetime as dt
import re

from PySide6.QtCore import QDate, QDateTime, QEvent, QObject, Qt, QTime, Signal
from PySide6.QtGui import QIntValidator, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateTimeEdit,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.lifecycle import action_label
from app.panel_data import ACTION_LABELS, TARGET_KIND_LABELS, WHISTLE_LEVEL_LABELS, WHISTLE_LEVELS
from widgets.intake_common import plain as plain_label

CONFIRM_KEYS = ("Ctrl+Return", "Ctrl+Enter")
TargetRole = Qt.ItemDataRole.UserRole
SUGGESTED_MARK = "★ "
KEEP_TARGET = ("", "")  # rework: keep the current assignee
WHISTLE_LEVEL_LABELS_EN = {"grid": "Grid", "street": "Street", "district": "District"}
TARGET_KIND_LABELS_EN = {"department": "Department", "grid": "Grid head", "street": "Street"}


def tr(zh: str, en: str, lang: str = "zh") -> str:
    """``en`` in English mode, else ``zh``."""
    return en if lang == "en" else zh


def _kind_label(kind: str, lang: str) -> str:
    return (TARGET_KIND_LABELS_EN if lang == "en" else TARGET_KIND_LABELS).get(kind, kind)


def _level_label(level: str, lang: str) -> str:
    return (WHISTLE_LEVEL_LABELS_EN if lang == "en" else WHISTLE_LEVEL_LABELS).get(level, level)


_EN_TAIL = re.compile(r"\s*[A-Za-z][A-Za-z '’-]*(?:#\d+)?\s*$")


def zh_only(text: str) -> str:
    """The Chinese part of a bilingual message ('类别默认部门 category default department')."""
    return _EN_TAIL.sub("", text or "").strip() or text


def en_only(text: str) -> str:
    """The English part of a bilingual message ('类别默认部门 category default department')."""
    m = _EN_TAIL.search(text or "")
    return m.group().strip() if m and m.group().strip() else text


class _ListKeys(QObject):
    """Up/Down/PageUp/PageDown typed in a filter box move the list's current row."""

    KEYS = (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown)

    def __init__(self, edit: QLineEdit, view: QListWidget) -> None:
        super().__init__(edit)
        self.view = view
        edit.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.KeyPress and event.key() in self.KEYS:
            self.view.keyPressEvent(event)
            return True
        return False


class TargetPicker(QWidget):
    """Pick one dispatch target: suggestions (★, with their reason and distance) first, then
    departments and streets. Type to filter; arrows move; the first suggestion is preselected."""

    changed = Signal()

    def __init__(self, parent=None, *, keep_option: str | None = None, lang: str = "zh") -> None:
        super().__init__(parent)
        self._lang = lang
        self.filter = QLineEdit(self)
        self.filter.setObjectName("targetFilter")
        self.filter.setPlaceholderText(tr("筛选派遣对象（部门、街道、网格长）",
                                          "Filter targets (department, street, grid head)", lang))
        self.filter.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setObjectName("targetList")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setMinimumHeight(150)
        self.list.setUniformItemSizes(False)
        self.list.setWordWrap(True)
        self.list.currentItemChanged.connect(lambda *_: self.changed.emit())
        self.filter.textChanged.connect(self._apply_filter)
        _ListKeys(self.filter, self.list)
        self._keep_option = keep_option
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.filter)
        lay.addWidget(self.list, 1)

    def populate(self, suggestions, departments, streets) -> None:
        """``suggestions``: ``app.services.Suggestion`` list; ``departments``/``streets``: (code, name)."""
        self.list.clear()
        if self._keep_option:
            self._add(self._keep_option, KEEP_TARGET, "")
        seen: set[tuple[str, str]] = set()
        for s in suggestions:
            unit = " m" if self._lang == "en" else " 米"
            dist = f" · {s.distance_m:.0f}{unit}" if s.distance_m is not None else ""
            reason = en_only(s.reason) if self._lang == "en" else zh_only(s.reason)
            text = f"{SUGGESTED_MARK}{_kind_label(s.kind, self._lang)} {s.name}{dist}\n    {reason}"
            self._add(text, (s.kind, s.code), s.reason, suggested=True)
            seen.add((s.kind, s.code))
        for code, name in departments:
            if ("department", code) not in seen:
                self._add(f"{_kind_label('department', self._lang)} {name}", ("department", code), code)
        for code, name in streets:
            if ("street", code) not in seen:
                self._add(f"{_kind_label('street', self._lang)} {name}", ("street", code), code)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _add(self, text: str, target: tuple[str, str], tip: str, *, suggested: bool = False) -> None:
        item = QListWidgetItem(text)
        item.setData(TargetRole, target)
        if tip:
            item.setToolTip(tip)
        if suggested:
            f = item.font()
            f.setBold(True)
            item.setFont(f)
        self.list.addItem(item)

    def _apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hide = bool(text) and text not in item.text().lower() and text not in (item.toolTip() or "").lower()
            item.setHidden(hide)
            if not hide and first is None:
                first = item
        cur = self.list.currentItem()
        if (cur is None or cur.isHidden()) and first is not None:
            self.list.setCurrentItem(first)

    def selected(self) -> tuple[str, str] | None:
        item = self.list.currentItem()
        if item is None or item.isHidden():
            return None
        kind, code = item.data(TargetRole)
        return (kind, code)

    def select(self, kind: str, code: str) -> bool:
        for i in range(self.list.count()):
            if tuple(self.list.item(i).data(TargetRole)) == (kind, code):
                self.list.setCurrentRow(i)
                return True
        return False

    def focus_widget(self) -> QWidget:
        return self.filter


class ActionForm(QFrame):
    """An inline form: fields in a form layout, 确认 (Ctrl+Enter) and 取消 (Esc).

    ``values()`` → ``{'note': str|None, 'payload': dict, ...}``; ``validate()`` → an error
    message or None. The owner connects ``confirmed`` / ``cancelled``."""

    confirmed = Signal()
    cancelled = Signal()

    def __init__(self, action: str, title: str, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.action = action
        self.lang = lang
        self.setObjectName("ActionForm")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.fields: dict[str, QWidget] = {}
        self.required: dict[str, str] = {}
        self.title = plain_label(title, "ActionFormTitle")
        self.hint = plain_label("", "ActionFormHint")
        self.hint.hide()
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.ok = QPushButton(tr("确认", "Confirm", lang) + "  Ctrl+Enter", self)
        self.ok.setObjectName("ActionConfirm")
        self.ok.setAutoDefault(False)
        self.cancel = QPushButton(tr("取消", "Cancel", lang) + "  Esc", self)
        self.cancel.setObjectName("ActionCancel")
        self.cancel.setAutoDefault(False)
        self.ok.clicked.connect(self.confirmed)
        self.cancel.clicked.connect(self.cancelled)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.ok)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.setSpacing(6)
        lay.addWidget(self.title)
        lay.addWidget(self.hint)
        lay.addLayout(self.form)
        lay.addLayout(buttons)
        self.shortcuts: list[QShortcut] = []
        for keys in CONFIRM_KEYS:
            sc = QShortcut(QKeySequence(keys), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(self.confirmed)
            self.shortcuts.append(sc)
        sc = QShortcut(QKeySequence("Esc"), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sc.activated.connect(self.cancelled)
        self.shortcuts.append(sc)
        self._first: QWidget | None = None

    # -- building ----------------------------------------------------------------------------
    def add(self, key: str, label: str, widget: QWidget, *, required: str | None = None,
            focus: QWidget | None = None, container: QWidget | None = None) -> QWidget:  # fmt: skip
        """Add field ``key`` (``container``, if given, is what the layout shows around it)."""
        widget.setObjectName(f"field_{key}")
        self.fields[key] = widget
        if required:
            self.required[key] = required
        self.form.addRow(plain_label(label + (("＊" if self.lang != "en" else " *") if required else ""), wrap=False), container or widget)
        if self._first is None:
            self._first = focus or widget
        return widget

    def set_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    def focus_first(self) -> None:
        if self._first is not None:
            self._first.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # -- reading -----------------------------------------------------------------------------
    def text(self, key: str) -> str:
        w = self.fields.get(key)
        if isinstance(w, QLineEdit):
            return w.text().strip()
        return ""

    def validate(self) -> str | None:
        for key, message in self.required.items():
            w = self.fields[key]
            if isinstance(w, QLineEdit) and not w.text().strip():
                w.setFocus()
                return message
            if isinstance(w, TargetPicker) and w.selected() is None:
                return message
            if isinstance(w, QListWidget) and not checked_codes(w):
                return message
            if isinstance(w, QComboBox) and w.currentData() is None:
                return message
        return None

    def values(self) -> dict:
        """``note`` and ``payload`` for ``EventService.act`` plus the action's own fields."""
        f = self.fields
        out: dict = {"note": self.text("note") or self.text("reason") or None, "payload": {}}
        a = self.action
        if a in ("dispatch", "rework"):
            target = f["target"].selected()  # type: ignore[union-attr]
            if target and target != KEEP_TARGET:
                out["payload"] = {"target_kind": target[0], "target": target[1]}
        elif a == "merge":
            out["payload"] = {"into": int(self.text("into") or 0)}
        elif a == "defer":
            if self.text("approver"):
                out["payload"] = {"approver": self.text("approver")}
        elif a == "extend":
            due: QDateTimeEdit = f["new_due"]  # type: ignore[assignment]
            d, t = due.date(), due.time()
            new_due = dt.datetime(d.year(), d.month(), d.day(), t.hour(), t.minute(), tzinfo=timeutil.TZ)
            out["payload"] = {"new_due": timeutil.to_iso(new_due), "approver": self.text("approver")}
        elif a == "evaluate":
            spin: QSpinBox = f["satisfaction"]  # type: ignore[assignment]
            out["payload"] = {"satisfaction": int(spin.value())}
            if self.text("comment"):
                out["payload"]["comment"] = self.text("comment")
            out["note"] = self.text("comment") or None
        elif a == "whistle":
            out["level"] = f["level"].currentData()  # type: ignore[union-attr]
            out["departments"] = checked_codes(f["departments"])  # type: ignore[arg-type]
            out["deadline_minutes"] = int(f["deadline"].value())  # type: ignore[union-attr]
        elif a == "check_in":
            out["whistle_id"], out["department_code"] = f["check_in"].currentData()  # type: ignore[union-attr]
        elif a == "close_whistle":
            out["whistle_id"] = f["whistle"].currentData()  # type: ignore[union-attr]
            out["outcome"] = self.text("reason")
        return out


def checked_codes(view: QListWidget) -> list[str]:
    return [
        view.item(i).data(TargetRole)
        for i in range(view.count())
        if view.item(i).checkState() == Qt.CheckState.Checked
    ]


def _line(placeholder: str = "", text: str = "") -> QLineEdit:
    e = QLineEdit()
    e.setPlaceholderText(placeholder)
    e.setMaxLength(500)
    if text:
        e.setText(text)
    return e


def _dept_checklist(departments, checked: set[str], lang: str = "zh") -> tuple[QWidget, QListWidget]:
    box = QWidget()
    filt = QLineEdit(box)
    filt.setPlaceholderText(tr("筛选部门；空格勾选", "Filter departments; Space toggles", lang))
    filt.setClearButtonEnabled(True)
    view = QListWidget(box)
    view.setObjectName("deptChecklist")
    view.setMinimumHeight(120)
    for code, name in departments:
        item = QListWidgetItem(name)
        item.setData(TargetRole, code)
        item.setToolTip(code)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if code in checked else Qt.CheckState.Unchecked)
        view.addItem(item)
    # checked ones first, so the operator sees the summoned departments at once
    for i in reversed(range(view.count())):
        if view.item(i).checkState() == Qt.CheckState.Checked:
            view.insertItem(0, view.takeItem(i))
    if view.count():
        view.setCurrentRow(0)

    def filter_(text: str) -> None:
        text = text.strip().lower()
        for i in range(view.count()):
            it = view.item(i)
            it.setHidden(bool(text) and text not in it.text().lower() and text not in it.toolTip().lower())

    class _Space(QObject):
        def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
            if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Space:
                it = view.currentItem()
                if it is not None:
                    checked = it.checkState() == Qt.CheckState.Checked
                    it.setCheckState(Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked)
                    return True
            return False

    filt.textChanged.connect(filter_)
    _ListKeys(filt, view)
    space = _Space(filt)
    filt.installEventFilter(space)
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(4)
    lay.addWidget(filt)
    lay.addWidget(view)
    box.filter = filt  # type: ignore[attr-defined]
    return box, view


def build_form(action: str, bundle, *, suggestions=(), departments=(), streets=(), session=None,
               now: dt.datetime | None = None, parent=None, lang: str = "zh") -> ActionForm:  # fmt: skip
    """The inline form of ``action`` for the event in ``bundle`` (an ``app.panel_data.DetailBundle``).
    ``lang`` 'en' shows the English texts."""
    ev = bundle.event

    def t(zh: str, en: str) -> str:
        return tr(zh, en, lang)

    label = action_label(action, "en") if lang == "en" else ACTION_LABELS.get(action, action)
    form = ActionForm(action, f"{label} · " + t("事件", "event") + f" #{ev['id']}", parent, lang=lang)
    now = now or timeutil.now()
    if action in ("dispatch", "rework"):
        keep = None
        if action == "rework":
            current = ev.get("assignee_name") or ev.get("assignee_code") or "—"
            keep = t("保持原承办对象：", "Keep the current assignee: ") + f"{current}"
        picker = TargetPicker(form, keep_option=keep, lang=lang)
        picker.populate(suggestions, departments, streets)
        form.add("target", t("派遣对象", "Target"), picker, required=t("请选择派遣对象", "Choose a dispatch target"),
                 focus=picker.focus_widget())  # fmt: skip
        if action == "rework":
            form.add("reason", t("返工理由", "Rework reason"), _line(t("核查未通过的原因", "Why verification failed")),
                     required=t("返工须填写理由", "Rework needs a reason"))  # fmt: skip
        else:
            form.add("note", t("派遣说明", "Instructions"), _line(t("可选：处置要求", "Optional: what to do")))
        if suggestions:
            s = suggestions[0]
            if lang == "en":
                form.set_hint(f"Suggested: {_kind_label(s.kind, lang)} {s.name} ({en_only(s.reason)})")
            else:
                form.set_hint(f"推荐：{TARGET_KIND_LABELS.get(s.kind, s.kind)} {s.name}（{zh_only(s.reason)}）")
    elif action in ("reject", "return", "defer"):
        if lang == "en":
            what = {"reject": "Rejection reason", "return": "Return reason", "defer": "Deferral reason"}[action]
        else:
            what = {"reject": "不予受理理由", "return": "退回理由", "defer": "缓办理由"}[action]
        form.add("reason", what, _line(t("必填", "Required")),
                 required=f"{label}: a reason is required" if lang == "en" else f"{label}须填写理由")  # fmt: skip
        if action == "defer":
            form.add("approver", t("批准人", "Approver"), _line(t("可选：批准缓办的领导", "Optional: approving leader")))
            form.set_hint(t("缓办期间暂停办理时限，到场时限不暂停。",
                            "The handling deadline pauses while deferred; the arrival deadline does not."))  # fmt: skip
    elif action == "merge":
        into = _line(t("并入的事件编号", "Event number to merge into"))
        into.setValidator(QIntValidator(1, 2_000_000_000, into))
        form.add("into", t("并入事件", "Merge into"), into,
                 required=t("请填写要并入的事件编号", "Enter the event number to merge into"))  # fmt: skip
        form.add("note", t("说明", "Note"), _line(t("可选：重复上报等", "Optional: duplicate report etc.")))
    elif action == "whistle":
        level = QComboBox()
        open_top = max(
            (WHISTLE_LEVELS.index(w["level"]) for w in bundle.whistles if not w.get("closed_at")), default=-1
        )
        for i, code in enumerate(WHISTLE_LEVELS):
            if i > open_top:
                level.addItem(_level_label(code, lang), code)
        default = "street" if session is not None and session.role == "street" else "district"
        i = level.findData(default)
        level.setCurrentIndex(i if i >= 0 else 0)
        form.add("level", t("吹哨层级", "Whistle level"), level)
        first = next((s.code for s in suggestions if s.kind == "department"), None)
        box, view = _dept_checklist(departments, {first} if first else set(), lang)
        form.add("departments", t("召集部门", "Summon"), view, required=t("至少召集一个部门", "Summon at least one department"),
                 focus=box.filter, container=box)  # type: ignore[attr-defined]  # fmt: skip
        spin = QSpinBox()
        spin.setRange(5, 24 * 60)
        spin.setSingleStep(5)
        spin.setValue(30)
        spin.setSuffix(t(" 分钟内报到", " min to check in"))
        form.add("deadline", t("报到时限", "Check-in deadline"), spin)
        form.add("reason", t("吹哨事由", "Whistle reason"),
                 _line(t("必填：需要哪些部门联动处置", "Required: which departments must act together")),
                 required=t("吹哨须填写事由", "A whistle needs a reason"))  # fmt: skip
        if open_top >= 0:
            if lang == "en":
                form.set_hint(f"A {_level_label(WHISTLE_LEVELS[open_top], lang).lower()} whistle is open: "
                              "blowing again escalates and closes it.")  # fmt: skip
            else:
                form.set_hint(f"已有{WHISTLE_LEVEL_LABELS[WHISTLE_LEVELS[open_top]]}哨进行中：再吹为升级，原哨随之结束。")
    elif action == "close_whistle":
        combo = QComboBox()
        for w in bundle.whistles:
            if not w.get("closed_at"):
                combo.addItem(f"#{w['id']} {_level_label(w['level'], lang)}" + t("哨", " whistle") + " · "
                              f"{timeutil.display(w['blown_at'])}", w["id"])  # fmt: skip
        form.add("whistle", t("结束哪一哨", "Whistle to close"), combo)
        form.add("reason", t("处置结果", "Outcome"), _line(t("必填：联动处置结果", "Required: outcome of the joint action")),
                 required=t("结束吹哨须填写结果", "Closing a whistle needs an outcome"))  # fmt: skip
    elif action == "check_in":
        combo = QComboBox()
        for w in bundle.whistles:
            if w.get("closed_at"):
                continue
            for d in w["departments"]:
                if d.get("checked_in_at"):
                    continue
                if session is not None and session.role == "department" and d["department_code"] != session.scope:
                    continue
                late = t("（已超时）", " (overdue)") if d["deadline_at"] < timeutil.to_iso(now) else ""
                combo.addItem(
                    f"{d.get('department_name') or d['department_code']} · " + t("哨", "whistle ") + f"#{w['id']} · "
                    + t("时限 ", "due ") + f"{timeutil.display(d['deadline_at'])}{late}",
                    (w["id"], d["department_code"]),
                )
        form.add("check_in", t("报到部门", "Department"), combo,
                 required=t("没有待报到的部门", "No department is waiting to check in"))  # fmt: skip
    elif action == "supervise":
        form.add("note", t("督办意见", "Supervision note"), _line("", t("督办：请加快办理", "Supervision: please speed up")))
    elif action == "extend":
        due = QDateTimeEdit()
        due.setDisplayFormat("yyyy-MM-dd HH:mm")
        due.setCalendarPopup(True)
        base = timeutil.parse(ev["handle_due_at"]) if ev.get("handle_due_at") else now
        proposal = max(base, now) + dt.timedelta(days=1)
        # wall-clock Beijing time in the editor (values() attaches Asia/Shanghai again)
        due.setDateTime(QDateTime(QDate(proposal.year, proposal.month, proposal.day),
                                  QTime(proposal.hour, proposal.minute)))  # fmt: skip
        form.add("new_due", t("新办结时限", "New handling deadline"), due)
        form.add("approver", t("批准人", "Approver"), _line(t("必填：批准延期的领导", "Required: approving leader")),
                 required=t("延期须填写批准人", "An extension needs an approver"))  # fmt: skip
        form.add("reason", t("延期理由", "Extension reason"), _line(t("必填", "Required")),
                 required=t("延期须填写理由", "An extension needs a reason"))  # fmt: skip
        if ev.get("handle_due_at"):
            form.set_hint(t("原办结时限 ", "Current handling deadline ") + f"{ev['handle_due_at'][:16].replace('T', ' ')}")
    elif action == "evaluate":
        spin = QSpinBox()
        spin.setRange(1, 5)
        spin.setValue(5)
        spin.setSuffix(t(" 分（1 不满意 … 5 非常满意）", " (1 dissatisfied … 5 very satisfied)"))
        form.add("satisfaction", t("满意度", "Satisfaction"), spin)
        form.add("comment", t("评价意见", "Comment"), _line(t("可选", "Optional")))
    elif action == "note":
        form.add("note", t("备注", "Note"), _line(t("必填", "Required")), required=t("备注不能为空", "The note must not be empty"))
    else:  # accept, acknowledge, arrive, resume, handle, verify, close
        form.add("note", t("说明", "Note"), _line(t("可选", "Optional")))
    return form
