"""pyqtgraph helpers in the console's navy look (time axes, bars, class bands)."""

from __future__ import annotations

import datetime as dt

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont

from app.timeutil import TZ

BG = "#081a40"
AXIS = "#B9B8CE"
GRID_ALPHA = 0.15
pg.setConfigOptions(antialias=False, background=BG, foreground=AXIS)


class ShanghaiAxis(pg.DateAxisItem):
    """Date axis that labels in Asia/Shanghai whatever the machine's zone."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        offset = dt.datetime.now(TZ).utcoffset() or dt.timedelta(hours=8)
        self.utcOffset = -int(offset.total_seconds())


def plot(title: str = "", *, time_axis: bool = False, height: int = 170) -> pg.PlotWidget:
    axis = {"bottom": ShanghaiAxis(orientation="bottom")} if time_axis else {}
    w = pg.PlotWidget(axisItems=axis)
    w.setMinimumHeight(height)
    w.setBackground(BG)
    w.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    w.setMenuEnabled(False)
    w.hideButtons()
    font = QFont()
    font.setPixelSize(12)
    for name in ("left", "bottom"):
        ax = w.getAxis(name)
        ax.setStyle(tickFont=font)
        ax.setTextPen(pg.mkPen(AXIS))
        ax.setPen(pg.mkPen("#1d4f8f"))
    if title:
        w.setTitle(title, color="#00E4FF", size="11pt")
    return w


def colour(hex_: str, alpha: int = 255) -> QColor:
    c = QColor(hex_)
    c.setAlpha(alpha)
    return c
