"""A small static map of one event: its grid, the neighbouring grids, the street outline and the
point, drawn from the replica's vector data (``app.dossier.build_map``) as a dark SVG. No
second WebEngine view: an SVG renderer paints it."""

from __future__ import annotations

from xml.sax.saxutils import escape

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QSizePolicy, QWidget

BG = "#081a40"


def map_svg(m: dict, event_id: int) -> str:
    """The dark console version of the dossier's map snapshot (``m`` from ``build_map``)."""
    s = m["size"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {s} {s}" width="{s}" height="{s}">',
        f'<rect x="0" y="0" width="{s}" height="{s}" fill="{BG}"/>',
    ]
    if m.get("water"):
        parts.append(f'<path d="{m["water"]}" fill="#0d3566" stroke="#1b5a95" stroke-width="1" fill-rule="evenodd"/>')
    parts.append('<g fill="#0b2150" stroke="#2a5a9a" stroke-width="1.2" fill-rule="evenodd">')
    parts += [f'<path d="{g["d"]}"/>' for g in m.get("grids", [])]
    parts.append("</g>")
    eg = m.get("event_grid")
    if eg:
        parts.append(
            f'<path d="{eg["d"]}" fill="#00E4FF" fill-opacity="0.16" stroke="#00E4FF" stroke-width="3.5" '
            'fill-rule="evenodd"/>'
        )
    if m.get("street"):
        parts.append(
            f'<path d="{m["street"]["d"]}" fill="none" stroke="#B9B8CE" stroke-width="2.4" '
            'stroke-dasharray="12 6" fill-rule="evenodd"/>'
        )
    px, py = m["point"]
    if eg and eg.get("label_xy"):
        lx, ly = eg["label_xy"]
        name = escape(str(eg["name"]))
        # QtSvg has no paint-order: a halo copy first, then the label on top
        parts.append(
            f'<text x="{lx}" y="{ly + 6}" text-anchor="middle" font-size="26" font-weight="bold" fill="{BG}" '
            f'stroke="{BG}" stroke-width="7" stroke-linejoin="round">{name}</text>'
            f'<text x="{lx}" y="{ly + 6}" text-anchor="middle" font-size="26" font-weight="bold" '
            f'fill="#00E4FF">{name}</text>'
        )
    parts += [
        f'<circle cx="{px}" cy="{py}" r="30" fill="#ff6e76" fill-opacity="0.18" stroke="#ff6e76" stroke-width="2"/>',
        f'<path d="M{px},{py} c-8,-12 -19,-21 -19,-35 a19,19 0 1 1 38,0 c0,14 -11,23 -19,35 Z" '
        'fill="#d9001b" stroke="#ffffff" stroke-width="3"/>',
        f'<circle cx="{px}" cy="{py - 35}" r="7" fill="#ffffff"/>',
        f'<rect x="{px + 24}" y="{py - 62}" width="{40 + len(str(event_id)) * 15}" height="32" rx="4" fill="#0a1a3a" '
        'stroke="#00E4FF" stroke-width="1.5"/>',
        f'<text x="{px + 32}" y="{py - 38}" font-size="22" font-weight="bold" fill="#ffffff">#{event_id}</text>',
    ]
    sc = m.get("scale")
    if sc:
        y = s - 28
        parts += [
            f'<rect x="14" y="{y - 30}" width="{sc["len"] + 24}" height="44" fill="{BG}" fill-opacity="0.8"/>',
            f'<path d="M24,{y - 6} L24,{y} L{24 + sc["len"]},{y} L{24 + sc["len"]},{y - 6}" fill="none" '
            'stroke="#d3d6dd" stroke-width="3"/>',
            f'<text x="24" y="{y - 12}" font-size="20" fill="#d3d6dd">{escape(sc["text"])}</text>',
        ]
    parts += [
        f'<g transform="translate({s - 36},22)"><path d="M0,0 L11,30 L0,22 L-11,30 Z" fill="#d3d6dd"/>'
        '<text x="0" y="52" text-anchor="middle" font-size="20" fill="#d3d6dd">北</text></g>',
        f'<rect x="1" y="1" width="{s - 2}" height="{s - 2}" fill="none" stroke="#1d4f8f" stroke-width="2"/>',
        "</svg>",
    ]
    return "".join(parts)


class MiniMap(QWidget):
    """Paints the SVG of ``set_map`` keeping its aspect ratio; an empty state otherwise."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("MiniMap")
        self._renderer: QSvgRenderer | None = None
        self._empty = "无位置信息"
        self.svg = ""
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(260, 260)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, w: int) -> int:  # noqa: N802
        return max(160, min(w, 320))

    def set_map(self, m: dict | None, event_id: int | None, empty: str = "无位置信息") -> None:
        self._empty = empty
        if m is None or event_id is None:
            self._renderer = None
            self.svg = ""
        else:
            self.svg = map_svg(m, event_id)
            self._renderer = QSvgRenderer(QByteArray(self.svg.encode("utf-8")), self)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(BG))
        if self._renderer is None:
            p.setPen(QColor("#B9B8CE"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._empty)
            return
        side = min(self.width(), self.height())
        x = (self.width() - side) / 2
        target = QRectF(x, 0, side, side)
        p.setClipRect(target)  # outlines run a little past the view box; QtSvg does not clip them
        self._renderer.render(p, target)
