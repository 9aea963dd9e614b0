"""The detail panel's action bar: one button per legal next step, each with its shortcut.

``set_actions([ActionState])`` (from ``app.panel_data.action_states``) redraws the buttons;
an allowed action is a live button and a window-wide single-key shortcut, a refused one is a
disabled button whose tooltip names the access rule. ``triggered(action)`` fires on click or
key. Single-letter shortcuts never fire while a text field has focus (Qt gives the key to the
field), and the owner switches them off while an inline form is open.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QGridLayout, QPushButton, QWidget

from app.lifecycle import TRANSITIONS, action_label

# action -> key (shown on the button). Keep in step with the table in the module docs / report.
SHORTCUTS: dict[str, str] = {
    "accept": "A",
    "dispatch": "D",
    "acknowledge": "K",
    "arrive": "S",
    "handle": "H",
    "verify": "V",
    "close": "C",
    "return": "R",
    "reject": "X",
    "merge": "M",
    "defer": "F",
    "resume": "Y",
    "rework": "B",
    "whistle": "W",
    "close_whistle": "O",
    "check_in": "I",
    "supervise": "U",
    "extend": "T",
    "evaluate": "E",
    "note": "N",
}
DANGER = frozenset({"reject", "return", "rework", "merge", "defer"})
TRANSITION_ACTIONS = frozenset(a for nxt in TRANSITIONS.values() for a in nxt)
COLUMNS = 4


def button_kind(action: str) -> str:
    if action in DANGER:
        return "danger"
    if action in TRANSITION_ACTIONS:
        return "primary"
    return "overlay"


class ActionBar(QWidget):
    """Buttons for the actions of one event; ``buttons[action]`` and ``shortcuts[action]``."""

    triggered = Signal(str)

    def __init__(self, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.setObjectName("ActionBar")
        self._lang = lang
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(6)
        self.buttons: dict[str, QPushButton] = {}
        self.shortcuts: dict[str, QShortcut] = {}
        self._keys_enabled = True
        # one shortcut per key, made once: they live as long as the bar and follow set_actions
        for action, key in SHORTCUTS.items():
            sc = QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.WindowShortcut)
            sc.setAutoRepeat(False)
            sc.setEnabled(False)
            sc.activated.connect(lambda a=action: self._fire(a))
            self.shortcuts[action] = sc
        self._states: dict = {}

    def set_actions(self, states) -> None:
        for b in self.buttons.values():
            self.grid.removeWidget(b)
            b.deleteLater()
        self.buttons = {}
        self._states = {s.action: s for s in states}
        for i, s in enumerate(states):
            key = SHORTCUTS.get(s.action)
            en = self._lang == "en"
            name = action_label(s.action, "en") if en else s.label
            text = f"{key} {name}" if key else name
            b = QPushButton(text, self)
            b.setObjectName(f"action_{s.action}")
            b.setProperty("kind", button_kind(s.action))
            b.setAutoDefault(False)
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            b.setEnabled(s.allowed)
            if en:
                if s.allowed:
                    tip = f"{name} (shortcut {key})" if key else name
                    if s.needs_reason:
                        tip += ": a reason/text is required"
                else:
                    tip = f"Not permitted: {s.reason}"
            elif s.allowed:
                tip = f"{s.label}（快捷键 {key}）" if key else s.label
                if s.needs_reason:
                    tip += "：须填写理由/内容"
            else:
                tip = f"无权执行：{s.reason}"
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, a=s.action: self._fire(a))
            self.grid.addWidget(b, i // COLUMNS, i % COLUMNS)
            self.buttons[s.action] = b
        self._sync_shortcuts()
        self.setVisible(bool(states))

    def set_keys_enabled(self, on: bool) -> None:
        """Switch the single-key shortcuts off (e.g. while an inline form is open) or back on."""
        self._keys_enabled = on
        self._sync_shortcuts()

    def set_all_enabled(self, on: bool) -> None:
        for action, b in self.buttons.items():
            b.setEnabled(on and self._states[action].allowed)
        self.set_keys_enabled(on)

    def _sync_shortcuts(self) -> None:
        for action, sc in self.shortcuts.items():
            s = self._states.get(action)
            sc.setEnabled(bool(self._keys_enabled and s is not None and s.allowed))

    def _fire(self, action: str) -> None:
        s = self._states.get(action)
        if s is not None and s.allowed:
            self.triggered.emit(action)

    def actions_shown(self) -> list[str]:
        return list(self.buttons)
