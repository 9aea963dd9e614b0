"""A layout that lays its widgets out in a row and wraps them onto further rows when the row is too
narrow (Qt's "Flow Layout" example, in Python). Used for rows of controls (the header's tools,
the queue's filters, the map's time bar) so the console fits 1366- and 1600-pixel desktops.

Hidden widgets take no room. Each widget gets its size hint (its minimum when it alone is wider
than the row); the room left in a row goes to its horizontally expanding widgets (sliders, line
edits), else stays at the end (or at the start with ``align_right``)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QWidget, QWidgetItem


class FlowLayout(QLayout):
    """Left-to-right rows that wrap; ``align_right`` packs each row against the right edge."""

    def __init__(self, parent: QWidget | None = None, *, spacing: int = 6, align_right: bool = False) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._align_right = align_right
        self.setContentsMargins(0, 0, 0, 0)

    # -- QLayout ---------------------------------------------------------------------------------
    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 (Qt API)
        self._items.append(item)

    def insertWidget(self, index: int, widget: QWidget) -> None:  # noqa: N802 (as QBoxLayout)
        """Insert ``widget`` before item ``index`` (QBoxLayout's call, used by the header's hooks)."""
        self.addChildWidget(widget)  # reparents only; the item is ours to place
        self._items.insert(max(0, min(index, len(self._items))), QWidgetItem(widget))
        self.invalidate()

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._do_layout(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._do_layout(rect, apply=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        """One row of everything."""
        w = h = 0
        for item in self._visible():
            hint = item.sizeHint()
            w += hint.width() + (self._spacing if w else 0)
            h = max(h, hint.height())
        m = self.contentsMargins()
        return QSize(w + m.left() + m.right(), h + m.top() + m.bottom())

    def minimumSize(self) -> QSize:  # noqa: N802
        """The widest single widget: everything else can wrap."""
        size = QSize()
        for item in self._visible():
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    # -- layout ----------------------------------------------------------------------------------
    def _visible(self) -> list[QLayoutItem]:
        return [it for it in self._items if not it.isEmpty()]

    def _do_layout(self, rect: QRect, *, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        rows: list[list[tuple[QLayoutItem, QSize]]] = [[]]
        x = 0
        for item in self._visible():
            hint = item.sizeHint()
            if hint.width() > area.width():  # alone wider than the row: shrink to fit (not below its minimum)
                hint = QSize(max(item.minimumSize().width(), area.width()), hint.height())
            if rows[-1] and x + self._spacing + hint.width() > area.width():
                rows.append([])
                x = 0
            x += (self._spacing if rows[-1] else 0) + hint.width()
            rows[-1].append((item, hint))
        y = area.y()
        for row in rows:
            if not row:
                continue
            height = max(h.height() for _, h in row)
            used = sum(h.width() for _, h in row) + self._spacing * (len(row) - 1)
            spare = max(0, area.width() - used)
            wide = [k for k, (item, _) in enumerate(row) if item.expandingDirections() & Qt.Orientation.Horizontal]
            if wide and spare:  # horizontally expanding widgets (a slider, a search field) take the rest
                row = [(item, QSize(hint.width() + (spare // len(wide) if k in wide else 0), hint.height()))
                       for k, (item, hint) in enumerate(row)]  # fmt: skip
                spare = 0
            x = area.x() + (spare if self._align_right else 0)
            for item, hint in row:
                if apply:
                    top = y + (height - hint.height()) // 2
                    item.setGeometry(QRect(QPoint(x, top), hint))
                x += hint.width() + self._spacing
            y += height + self._spacing
        return y - self._spacing - rect.y() + m.bottom() if any(rows) else m.top() + m.bottom()


def flow_container(*, align_right: bool = False, spacing: int = 6) -> tuple[QWidget, FlowLayout]:
    """A widget holding a :class:`FlowLayout` whose height follows its width."""
    box = QWidget()
    lay = FlowLayout(box, spacing=spacing, align_right=align_right)
    policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
    policy.setHeightForWidth(True)
    box.setSizePolicy(policy)
    return box, lay
