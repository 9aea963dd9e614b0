"""The wall's event ticker: new events scroll smoothly from right to left.

At most 100 px@1080 per second (about 4 characters a second), redrawn at 30 frames a second.
Items are plain dicts already masked in ``app/`` (``app.dashboard_data.ticker_rows(mask=True)``);
the ticker draws text only. Emergency items carry their level in words and a tinted colour.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QWidget

from app.labels import PRIORITIES
from widgets import wall_style as ws

FRAME_MS = 33
SPEED_PX_AT_1080 = 90.0
MAX_ITEMS = 40


def item_text(row: dict, lang: str = "zh") -> str:
    """``[19:29] 紧急 Ⅱ级 · 学田街道 · 道路积水 · 标题`` (English: ``[19:29] EMERGENCY P2 · 学田街道 ·
    Waterlogged road · title``; street names and titles are data)."""
    en = lang == "en"
    t = (row.get("reported_at") or "")[11:16]
    level = PRIORITIES.get(row.get("priority"), ("", ""))[1 if en else 0]
    kind = ("EMERGENCY " if en else "紧急 ") if row.get("class") == "emergency" else ""
    category = (row.get("category_name_en") if en else None) or row.get("category_name") or ""
    parts = [f"[{t}] {kind}{level}".strip(), row.get("street_name") or "", category,
             row.get("title") or ""]  # fmt: skip
    return " · ".join(p for p in parts if p)


class Ticker(QWidget):
    def __init__(self, u: float = 1.0, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.setObjectName("Ticker")
        self.u = u
        self.lang = lang
        self.font_ = QFont(ws.FONT_FAMILY)
        self.font_.setPixelSize(ws.px("event", u))
        self.setFixedHeight(ws.px("ticker", u))
        self.items: list[tuple[str, QColor]] = []
        self.seen: set[int] = set()
        self.offset = 0.0
        self.speed = SPEED_PX_AT_1080 * u  # px per second
        self._last = time.monotonic()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._step)
        self._timer.start(FRAME_MS)

    def texts(self) -> list[str]:
        return [t for t, _ in self.items]

    def add_rows(self, rows: list[dict]) -> int:
        """Add rows not seen before (newest first in ``rows``); returns how many were new."""
        new = [r for r in reversed(rows) if r.get("id") not in self.seen]
        if new and not self.items:  # start with text on screen, from the left edge
            self.offset = float(self.width() - ws.px(24, self.u))
        for r in new:
            self.seen.add(r.get("id"))
            color = QColor(ws.SEVERITY.get(r.get("priority"), ws.TEXT)) if r.get("class") == "emergency" else QColor(ws.TEXT)
            self.items.append((item_text(r, self.lang), color))
        if len(self.items) > MAX_ITEMS:
            drop = len(self.items) - MAX_ITEMS
            self.items = self.items[drop:]
        if len(self.seen) > 5000:
            self.seen = {r.get("id") for r in rows}
        return len(new)

    def _step(self) -> None:
        now = time.monotonic()
        dt_s, self._last = min(now - self._last, 0.2), now
        if not self.items:
            return
        self.offset += self.speed * dt_s
        fm = QFontMetrics(self.font_)
        first_w = fm.horizontalAdvance(self.items[0][0]) + self._gap()
        if self.offset > first_w + self.width() and len(self.items) > 1:
            # the first item has left the screen: move it to the end, keep the flow continuous
            self.items.append(self.items.pop(0))
            self.offset -= first_w
        self.update()

    def _gap(self) -> int:
        return ws.px(120, self.u)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(6, 30, 93, 200))
        p.setPen(QColor(*ws.PANEL_EDGE))
        p.drawLine(0, 0, self.width(), 0)
        p.setFont(self.font_)
        fm = QFontMetrics(self.font_)
        x = self.width() - self.offset
        for text, color in self.items:
            w = fm.horizontalAdvance(text)
            if x > self.width():
                break
            if x + w > 0:
                p.setPen(color)
                p.drawText(QRectF(x, 0, w + 4, self.height()), Qt.AlignmentFlag.AlignVCenter, text)
            x += w + self._gap()
        p.end()

    def stop(self) -> None:
        self._timer.stop()
