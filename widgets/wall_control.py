"""大屏控制 (wall control) in the district console: rotation, takeover, blinking, named layouts.

The dialog writes ``wall_control`` rows and ``wall_layouts`` through ``db/wall_store.py``; every
wall process on the replica picks the change up within about a second (it polls the replica).
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from app import wall as wall_rules
from db import wall_store

THEME_NAMES_EN = wall_rules.THEME_NAMES_EN


def tr(zh: str, en: str, lang: str) -> str:
    """``en`` for an English session, else ``zh``."""
    return en if lang == "en" else zh


class WallControlDialog(QDialog):
    def __init__(self, replica, actor: str, parent=None, *, themes=wall_rules.DEFAULT_THEMES,
                 lang: str = "zh") -> None:  # fmt: skip
        super().__init__(parent)
        self.lang = lang
        self.setObjectName("WallControlDialog")
        self.setWindowTitle(tr("大屏控制 — 一张图指挥台", "Wall control — OneMap Console", lang))
        self.replica = replica
        self.actor = actor
        self.theme = QComboBox()
        for t in themes:
            names = THEME_NAMES_EN if lang == "en" else wall_rules.THEME_NAMES_ZH
            self.theme.addItem(names.get(t, t), t)
        self.period = QDoubleSpinBox()
        self.period.setRange(wall_rules.MIN_PERIOD_S, 3600)
        self.period.setValue(wall_rules.DEFAULT_PERIOD_S)
        self.period.setSuffix(tr(" 秒", " s", lang))
        self.layouts = QComboBox()
        self.status = QLabel("")
        buttons = {
            "auto": (tr("恢复轮播", "Resume rotation", lang), lambda: self._send(("rotation", "auto"), ("period_s", str(self.period.value())))),
            "pause": (tr("暂停轮播", "Pause rotation", lang), lambda: self._send(("rotation", "paused"))),
            "pin": (tr("固定当前主题", "Pin theme", lang), lambda: self._send(("rotation", "pinned"), ("pinned_theme", self.theme.currentData()))),
            "end": (tr("结束应急接管", "End takeover", lang), lambda: self._send(("end_takeover", self._stamp()))),
            "blink": (tr("停止闪烁", "Stop blinking", lang), lambda: self._send(("stop_blink", self._stamp()))),
            "layout": (tr("切换布局", "Switch layout", lang), lambda: self._send(("layout", self.layouts.currentText()))),
            "save": (tr("保存为新布局…", "Save as new layout…", lang), self.ask_save_layout),
        }  # fmt: skip
        self.buttons = {}
        for key, (text, slot) in buttons.items():
            b = QPushButton(text)
            b.setObjectName(f"wallControl_{key}")
            b.clicked.connect(slot)
            self.buttons[key] = b
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.buttons["auto"])
        row.addWidget(self.buttons["pause"])
        form.addRow(tr("轮播", "Rotation", lang), row)
        form.addRow(tr("轮播周期", "Period", lang), self.period)
        row = QHBoxLayout()
        row.addWidget(self.theme, 1)
        row.addWidget(self.buttons["pin"])
        form.addRow(tr("主题", "Theme", lang), row)
        row = QHBoxLayout()
        row.addWidget(self.buttons["end"])
        row.addWidget(self.buttons["blink"])
        form.addRow(tr("应急", "Emergency", lang), row)
        row = QHBoxLayout()
        row.addWidget(self.layouts, 1)
        row.addWidget(self.buttons["layout"])
        row.addWidget(self.buttons["save"])
        form.addRow(tr("布局", "Layout", lang), row)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.status)
        self.reload_layouts()

    def _stamp(self) -> str:
        from app import timeutil

        return timeutil.now_iso()

    def reload_layouts(self) -> None:
        conn = self.replica.reader()
        try:
            saved = wall_store.load_layouts(conn)
        finally:
            conn.close()
        self.layouts.clear()
        for name in [*wall_rules.PRESETS, *[n for n in saved if n not in wall_rules.PRESETS]]:
            self.layouts.addItem(name)

    def _send(self, *pairs: tuple[str, str | None]) -> None:
        for key, value in pairs:
            wall_store.set_control(self.replica, key, value, actor=self.actor)
        self.status.setText(tr("已发送：", "Sent: ", self.lang) + tr("，", ", ", self.lang).join(f"{k}={v}" for k, v in pairs))

    def save_layout(self, name: str, spec: dict) -> None:
        wall_store.save_layout(self.replica, name, wall_rules.normalize_layout(spec), actor=self.actor)
        self.reload_layouts()

    def ask_save_layout(self) -> None:
        title = tr("保存布局", "Save layout", self.lang)
        name, ok = QInputDialog.getText(self, title, tr("布局名称：", "Layout name:", self.lang))
        if not ok or not name.strip():
            return
        if self.lang == "en":
            modes = {"Routine (two columns each side)": "routine", "Map only": "map_only", "Half screen": "half",
                     "Third of the screen": "third"}  # fmt: skip
        else:
            modes = {"常态（两侧各两列）": "routine", "仅地图": "map_only", "二分之一屏": "half", "三分之一屏": "third"}
        mode, ok = QInputDialog.getItem(self, title, tr("版式：", "Format:", self.lang), list(modes), 0, False)
        if not ok:
            return
        spec = {"mode": modes[mode], "columns": 2, "period_s": self.period.value()}
        try:
            self.save_layout(name, spec)
        except ValueError as exc:
            QMessageBox.warning(self, title, str(exc))


def install_wall_control(window) -> QPushButton:
    """A 大屏控制 button in the district console's header."""
    lang = getattr(window.state.session, "lang", "zh")
    button = QPushButton(tr("大屏控制", "Wall control", lang))
    button.setObjectName("WallControlButton")
    button.setToolTip(tr("控制指挥大屏：轮播、应急接管、布局", "Control the command wall: rotation, takeover, layout", lang))

    def open_dialog() -> WallControlDialog:
        if getattr(window, "wall_control", None) is None:
            window.wall_control = WallControlDialog(window.replica, window.service.actor, window, lang=lang)
        window.wall_control.show()
        window.wall_control.raise_()
        return window.wall_control

    button.clicked.connect(open_dialog)
    window.header.tools.insertWidget(0, button)
    window.open_wall_control = open_dialog
    window.wall_control = None
    return button
