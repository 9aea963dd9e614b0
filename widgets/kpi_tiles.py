"""KPI tiles: label, big number, unit and a trend arrow; "—" with the reason as tooltip.

A changed value counts up from the old value to the new one (ease-out, 1.2 s, never looping).
The arrow compares with the previous window of equal length (▲ more, ▼ less, ＝ same or unknown).
"""

from __future__ import annotations

from PySide6.QtCore import QEasingCurve, Qt, QVariantAnimation
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.dashboard_data import Tile
from widgets.wall_panel import ChamferFrame

COUNT_UP_MS = 1200


def _label(name: str, text: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setObjectName(name)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    return lab


class KpiTile(ChamferFrame):
    """One KPI."""

    def __init__(self, key: str, lang: str = "zh", parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("KpiTile")
        self.key = key
        self.lang = lang
        self.tile: Tile | None = None
        self.label = _label("KpiLabel")
        self.value = _label("KpiValue", "—")
        self.unit = _label("KpiUnit")
        self.trend = _label("KpiTrendFlat", "")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(0)
        lay.addWidget(self.label)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.value)
        row.addWidget(self.unit, 0, Qt.AlignmentFlag.AlignBottom)
        row.addStretch(1)
        row.addWidget(self.trend, 0, Qt.AlignmentFlag.AlignBottom)
        lay.addLayout(row)
        self._anim = QVariantAnimation(self)
        self._anim.setDuration(COUNT_UP_MS)
        self._anim.setEasingCurve(QEasingCurve.Type.OutCubic)
        self._anim.valueChanged.connect(self._show_number)

    def set_tile(self, tile: Tile, *, animate: bool = True) -> None:
        old = self.tile
        self.tile = tile
        self.label.setText(tile.label_en if self.lang == "en" else tile.label_zh)
        unit = {"件": "" if self.lang == "en" else "件"}.get(tile.unit, tile.unit)
        self.unit.setText(unit)
        if tile.value is None:
            self._anim.stop()
            self.value.setText("—")
            why = tile.reason or ("no data" if self.lang == "en" else "无数据")
            self.setToolTip(why)
            self.value.setToolTip(why)
        else:
            self.setToolTip("")
            self.value.setToolTip("")
            start = old.value if (old is not None and old.value is not None and animate) else None
            if start is None or start == tile.value:
                self.value.setText(tile.text())
            else:
                self._anim.stop()
                self._anim.setStartValue(float(start))
                self._anim.setEndValue(float(tile.value))
                self._anim.start()
        arrow = {1: ("▲", "KpiTrendUp"), -1: ("▼", "KpiTrendDown")}.get(tile.trend, ("＝" if tile.previous is not None
                                                                                        and tile.value is not None else "",
                                                                                        "KpiTrendFlat"))
        self.trend.setText(arrow[0])
        if self.trend.objectName() != arrow[1]:
            self.trend.setObjectName(arrow[1])
            self.trend.style().unpolish(self.trend)
            self.trend.style().polish(self.trend)
        prev = "—" if tile.previous is None else Tile(tile.key, "", "", tile.previous, tile.unit).text()
        self.trend.setToolTip(("previous window: " if self.lang == "en" else "上一周期：") + prev)

    def _show_number(self, v) -> None:
        if self.tile is None or self.tile.value is None:
            return
        t = self.tile
        self.value.setText(Tile(t.key, "", "", float(v), t.unit).text())

    def texts(self) -> list[str]:
        return [self.label.text(), self.value.text(), self.unit.text(), self.toolTip()]


class KpiStrip(QWidget):
    """A row (or grid) of KPI tiles built from a list of :class:`Tile`."""

    def __init__(self, lang: str = "zh", columns: int = 0, parent=None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.columns = columns  # 0: one row
        self.tiles: dict[str, KpiTile] = {}
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(8)

    def set_tiles(self, tiles: list[Tile]) -> None:
        for i, t in enumerate(tiles):
            w = self.tiles.get(t.key)
            if w is None:
                w = KpiTile(t.key, self.lang, self)
                self.tiles[t.key] = w
                r, c = (divmod(i, self.columns) if self.columns else (0, i))
                self._grid.addWidget(w, r, c)
            w.set_tile(t)
