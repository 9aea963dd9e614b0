"""Start-up role picker: who is at this console (the same as ``--role/--scope/--user``).

Shown by ``widgets.app_main`` when the console starts without any of ``--role``, ``--station``,
``--wall``, ``--scope`` or ``--user`` and not in ``--screenshot`` mode. There is no
authentication yet: the choice sets the session's role, scope and the actor written to the log.
Keys: 1–5 pick the role, Enter confirms, Esc quits.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)

from app import panel_data
from widgets.action_forms import plain_label

ROLE_ORDER = ("district", "street", "department", "drill", "wall")
ROLE_HINTS = {
    "district": "全区事件，全部操作",
    "street": "本街道事件；可向区级吹哨",
    "department": "仅本部门受派遣、被召集的事件",
    "drill": "演练协调：只处置演练事件",
    "wall": "大屏展示：只读",
}
ROLE_HINTS_EN = {
    "district": "all events, every action",
    "street": "its street's events; may whistle up to the district",
    "department": "events dispatched to it or that summoned it",
    "drill": "drill coordination: drill events only",
    "wall": "the video wall: read-only",
}
ROLE_LABELS_EN = {"district": "District centre", "street": "Street centre", "department": "Department",
                  "drill": "Drill coordination", "wall": "Video wall"}  # fmt: skip
RoleData = Qt.ItemDataRole.UserRole


class RolePickerDialog(QDialog):
    """Pick role, scope (street or department) and user. ``choice()`` → ``(role, scope, user)``."""

    def __init__(self, replica, parent=None, *, default_role: str = "district",
                 default_scope: str | None = None, lang: str = "zh") -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("RolePicker")
        self.lang = lang
        en = lang == "en"
        self.setWindowTitle("OneMap Console — choose your post" if en else "一张图指挥台 — 选择岗位")
        self.setMinimumWidth(600 if lang == "en" else 520)
        conn = replica.reader()
        try:
            self._streets = panel_data.streets(conn)
            self._departments = panel_data.departments(conn)
            self._people: dict[tuple[str, str | None], list[dict]] = {}
            for role in ROLE_ORDER:
                if role == "street":
                    for code, _ in self._streets:
                        self._people[(role, code)] = panel_data.people_for_role(conn, role, code)
                elif role == "department":
                    for code, _ in self._departments:
                        self._people[(role, code)] = panel_data.people_for_role(conn, role, code)
                else:
                    self._people[(role, None)] = panel_data.people_for_role(conn, role)
        finally:
            conn.close()

        self.roles = QListWidget(self)
        self.roles.setObjectName("roleList")
        for i, role in enumerate(ROLE_ORDER, 1):
            label = ROLE_LABELS_EN[role] if en else panel_data.ROLE_LABELS[role]
            item = QListWidgetItem(f"{i}  {label}　— {(ROLE_HINTS_EN if en else ROLE_HINTS)[role]}")
            item.setData(RoleData, role)
            self.roles.addItem(item)
        self.roles.setFixedHeight(self.roles.sizeHintForRow(0) * len(ROLE_ORDER) + 8)
        self.scope = QComboBox(self)
        self.scope.setObjectName("scopeCombo")
        self.scope_label = QLabel("Scope" if en else "范围", self)
        self.user = QComboBox(self)
        self.user.setObjectName("userCombo")
        form = QFormLayout()
        form.addRow(self.scope_label, self.scope)
        form.addRow(QLabel("On duty" if en else "值班人员", self), self.user)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Open the console  Enter" if en else "进入指挥台  Enter")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Quit  Esc" if en else "退出  Esc")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(plain_label("Chongchuan · OneMap Console" if en else "崇川区 · 一张图指挥台", "DialogTitle"))
        lay.addWidget(plain_label("Choose this seat's post and the operator on duty (demo: no login)" if en
                                  else "请选择本席位的岗位与值班人员（演示环境，无需登录）", "dialogHint"))  # fmt: skip
        lay.addWidget(self.roles)
        lay.addLayout(form)
        lay.addWidget(buttons)
        self.roles.currentRowChanged.connect(self._on_role)
        self.scope.currentIndexChanged.connect(self._on_scope)
        for i in range(len(ROLE_ORDER)):
            sc = QShortcut(QKeySequence(str(i + 1)), self)
            sc.activated.connect(lambda r=i: self.roles.setCurrentRow(r))
        self.roles.setCurrentRow(ROLE_ORDER.index(default_role) if default_role in ROLE_ORDER else 0)
        if default_scope is not None and self.scope.findData(default_scope) >= 0:
            self.scope.setCurrentIndex(self.scope.findData(default_scope))
        self.roles.setFocus()

    def role(self) -> str:
        item = self.roles.currentItem()
        return item.data(RoleData) if item is not None else "district"

    def _on_role(self, _row: int) -> None:
        role = self.role()
        self.scope.blockSignals(True)
        self.scope.clear()
        en = self.lang == "en"
        if role == "street":
            self.scope_label.setText("Street" if en else "街道")
            for code, name in self._streets:
                self.scope.addItem(f"{name}（{code}）", code)
        elif role == "department":
            self.scope_label.setText("Department" if en else "部门")
            for code, name in self._departments:
                self.scope.addItem(f"{name}（{code}）", code)
        else:
            self.scope_label.setText("Scope" if en else "范围")
            whole = ("Whole district" if role != "wall" else "Whole district (read-only)") if en else (
                "全区" if role != "wall" else "全区（只读）")
            self.scope.addItem(whole, None)
        self.scope.setEnabled(role in ("street", "department"))
        self.scope.blockSignals(False)
        self._on_scope()

    def _on_scope(self, *_args) -> None:
        role = self.role()
        scope = self.scope.currentData() if role in ("street", "department") else None
        self.user.clear()
        people = self._people.get((role, scope), [])
        for p in people:
            self.user.addItem(f"{p['name']} · {p['position']}" if p["position"] else p["name"], p["uid"])
        if not people:
            self.user.addItem("(no personal identity: logged as the post)" if self.lang == "en"
                              else "（无个人身份，以岗位记录）", None)  # fmt: skip
        self.user.setEnabled(bool(people))

    def choice(self) -> tuple[str, str | None, str | None]:
        role = self.role()
        scope = self.scope.currentData() if role in ("street", "department") else None
        return role, scope, self.user.currentData()
