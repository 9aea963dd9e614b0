"""One frame style for every panel (shared/WALL-UX.md): navy fill, chamfered corners, a thin cyan top edge."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from widgets import wall_style as ws


class ChamferFrame(QFrame):
    """A QFrame painted as a chamfered panel (corner cut = ``chamfer`` px)."""

    def __init__(self, parent=None, chamfer: int = 10) -> None:
        super().__init__(parent)
        self.chamfer = chamfer
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground, False)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h, c = self.width() - 1, self.height() - 1, min(self.chamfer, self.width() // 4, self.height() // 4)
        poly = QPolygonF([QPointF(c, 0), QPointF(w - c, 0), QPointF(w, c), QPointF(w, h - c), QPointF(w - c, h),
                          QPointF(c, h), QPointF(0, h - c), QPointF(0, c)])  # fmt: skip
        path = QPainterPath()
        path.addPolygon(poly)
        path.closeSubpath()
        p.fillPath(path, QColor(*ws.PANEL_FILL))
        p.setPen(QPen(QColor(*ws.PANEL_EDGE), max(1, c // 6)))
        p.drawLine(QPointF(c, 0), QPointF(w - c, 0))
        p.setPen(QPen(QColor(1, 153, 209, 60), 1))
        p.drawPolygon(poly)
        p.end()
        super().paintEvent(event)


class Panel(ChamferFrame):
    """A titled panel holding one body widget."""

    def __init__(self, title: str, body: QWidget, parent=None, *, margin: int = 8, chamfer: int = 10) -> None:
        super().__init__(parent, chamfer)
        self.setObjectName("WallPanel")
        self.title = QLabel(title)
        self.title.setObjectName("PanelTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.body = body
        lay = QVBoxLayout(self)
        lay.setContentsMargins(margin, margin // 2, margin, margin)
        lay.setSpacing(margin // 2)
        lay.addWidget(self.title)
        lay.addWidget(body, 1)
