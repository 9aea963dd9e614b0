"""研判阈值 dialog: the grid robot's operator-settable thresholds, one form row per parameter.

A thin view over ``app.robot.engine`` (``RULES``, ``thresholds``, ``set_threshold``): values are
checked there against each rule's :class:`app.robot.base.Param` and stored in ``robot_settings``.
Only the district role edits thresholds (they change what every street sees).
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.robot import engine, views

EDIT_ROLES = ("district",)


def tr(zh: str, en: str, lang: str) -> str:
    """``en`` for an English session, else ``zh``."""
    return en if lang == "en" else zh


def can_edit(session) -> bool:
    return session.role in EDIT_ROLES


class RobotThresholdsDialog(QDialog):
    """Edit every rule's thresholds; shows each rule's precision (accepted ÷ decided) beside it."""

    def __init__(self, replica, session, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("RobotThresholdsDialog")
        lang = getattr(session, "lang", "zh")
        self.lang = lang
        self.setWindowTitle(tr("研判阈值设置", "Robot thresholds", lang))
        self.replica = replica
        self.session = session
        self.fields: dict[tuple[str, str], QSpinBox | QDoubleSpinBox] = {}
        conn = replica.reader()
        try:
            current = engine.thresholds(conn)
            precision = {p.rule: p for p in views.precision_by_rule(conn)}
        finally:
            conn.close()
        self.initial = {(r, k): v for r, params in current.items() for k, v in params.items()}

        body = QWidget()
        col = QVBoxLayout(body)
        for rule in engine.RULES:
            p = precision.get(rule.name)
            rate = "—" if p is None or p.precision is None else f"{p.precision:.0%}"
            if lang == "en":
                decided = f" ({p.accepted} accepted / {p.decided} decided)" if p is not None else ""
                box = QGroupBox(f"{rule.title_en or rule.name}   precision {rate}{decided}")
            else:
                decided = f"（采纳 {p.accepted} / 已研判 {p.decided}）" if p is not None else ""
                box = QGroupBox(f"{rule.title_zh}　采纳率 {rate}{decided}")
            form = QFormLayout(box)
            for key, par in rule.params.items():
                field = self._field(par, lang)
                field.setValue(current[rule.name][key])
                unit = (par.unit_en or par.unit) if lang == "en" else par.unit
                field.setToolTip(tr(f"默认 {par.default:g} {unit}；范围 {par.minimum:g}–{par.maximum:g}",
                                    f"default {par.default:g} {unit}; range {par.minimum:g}–{par.maximum:g}", lang))
                field.setEnabled(can_edit(session))
                field.setObjectName(f"threshold:{rule.name}.{key}")
                self.fields[(rule.name, key)] = field
                form.addRow((par.label_en or key) if lang == "en" else par.label_zh, field)
            col.addWidget(box)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)

        self.message = QLabel("" if can_edit(session) else self._read_only_text())
        self.message.setObjectName("RobotThresholdsMessage")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Save).setText(tr("保存", "Save", lang))
        buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(can_edit(session))
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消", "Cancel", lang))
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("阈值改动在下一次研判时生效（每 5 分钟或点“立即研判”）。",
                                   "Changes take effect at the next pass (every 5 minutes or on “Run now”).", lang)))
        layout.addWidget(scroll, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(560, 640)

    def _read_only_text(self) -> str:
        return tr("只读：仅区指挥中心可修改研判阈值。", "Read-only: only the district centre can change thresholds.", self.lang)

    @staticmethod
    def _field(par, lang: str = "zh") -> QSpinBox | QDoubleSpinBox:
        if par.integer:
            field = QSpinBox()
            field.setRange(int(par.minimum), int(min(par.maximum, 2**31 - 1)))
        else:
            field = QDoubleSpinBox()
            field.setDecimals(2)
            field.setRange(par.minimum, par.maximum)
        unit = (par.unit_en or par.unit) if lang == "en" else par.unit
        if unit:
            field.setSuffix(f" {unit}")
        return field

    def changes(self) -> dict[tuple[str, str], float]:
        """The thresholds the operator changed: (rule, key) -> new value."""
        return {k: float(f.value()) for k, f in self.fields.items() if float(f.value()) != self.initial[k]}

    def save(self) -> None:
        """Store the changed thresholds (each checked by the rule's Param); stays open on an error."""
        if not can_edit(self.session):
            self.message.setText(self._read_only_text())
            return
        actor = self.session.user or self.session.role
        try:
            for (rule, key), value in self.changes().items():
                engine.set_threshold(self.replica, rule, key, value, actor=actor)
        except ValueError as exc:
            self.message.setText(tr(f"未保存：{exc}", f"Not saved: {exc}", self.lang))
            return
        self.accept()
