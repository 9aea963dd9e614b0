"""Dashboards (pyqtgraph): events per hour vs. 7 days earlier, events by category and by source,
the arrival-time distribution with the 10-minute line, the street ranking and department on-time
rates; plus the controller that loads :func:`app.dashboard_data.load_dashboard` in a worker.

Charts are views: ``update(data)`` sets new values on existing plot items (no rebuild).
The street ranking emits ``streetClicked(code)`` when a bar or its label is clicked.
An empty series shows 无数据 (never NaN).
"""

from __future__ import annotations

import logging
import time

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app import labels
from app.dashboard_data import DashboardData, Scope, load_dashboard
from widgets import wall_style as ws
from widgets.kpi_tiles import KpiStrip
from widgets.wall_panel import Panel
from widgets.workers import run_in_thread

log = logging.getLogger(__name__)
MIN_REFRESH_S = 1.0
TOP_N = 8


def _zh(lang: str) -> bool:
    return lang != "en"


class Chart(pg.PlotWidget):
    """A dark PlotWidget with scaled fonts and a centred 无数据 text for empty data."""

    def __init__(self, u: float = 0.5, lang: str = "zh", parent=None) -> None:
        super().__init__(parent, background=ws.BG)
        self.u = u
        self.lang = lang
        self.setAntialiasing(True)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.getPlotItem().getViewBox().setDefaultPadding(0.02)
        font = QFont(ws.FONT_FAMILY)
        font.setPixelSize(ws.px("smallest", u))
        self.tick_font = font
        for name in ("left", "bottom"):
            ax = self.getAxis(name)
            ax.setStyle(tickFont=font, tickLength=-max(4, int(6 * u)))
            ax.setTextPen(pg.mkPen(ws.TEXT_2))
            ax.setPen(pg.mkPen(ws.DECOR))
        self.empty_text = pg.TextItem("无数据" if _zh(lang) else "no data", color=ws.TEXT_2, anchor=(0.5, 0.5))
        self.empty_text.setFont(font)
        self.addItem(self.empty_text, ignoreBounds=True)
        self.empty_text.setVisible(False)

    def show_empty(self, empty: bool) -> None:
        self.empty_text.setVisible(empty)
        if empty:
            vb = self.getPlotItem().getViewBox()
            (x0, x1), (y0, y1) = vb.viewRange()
            self.empty_text.setPos((x0 + x1) / 2, (y0 + y1) / 2)


class HourlyChart(Chart):
    """Bars: events per hour over the last 24 hours; line: the same hours 7 days earlier."""

    def __init__(self, u: float = 0.5, lang: str = "zh", parent=None) -> None:
        super().__init__(u, lang, parent)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=QColor(ws.ACCENT), pen=pg.mkPen(None))
        self.prev = pg.PlotDataItem([], [], pen=pg.mkPen(ws.SEVERITY[3], width=max(2, int(3 * u))),
                                    symbol="o", symbolSize=max(4, int(7 * u)), symbolBrush=ws.SEVERITY[3])  # fmt: skip
        self.addItem(self.bars)
        self.addItem(self.prev)
        legend = self.getPlotItem().addLegend(offset=(-5, 5), labelTextColor=ws.TEXT_2,
                                              labelTextSize=f"{ws.px('smallest', u)}px")  # fmt: skip
        legend.addItem(self.bars, "近24小时" if _zh(lang) else "last 24 h")
        legend.addItem(self.prev, "7天前同时段" if _zh(lang) else "7 days earlier")
        self.values: list[int] = []
        self.prev_values: list[int] = []

    def update_data(self, data: DashboardData) -> None:
        self.values = [n for _, n in data.hourly]
        self.prev_values = [n for _, n in data.hourly_prev]
        xs = list(range(len(self.values)))
        self.bars.setOpts(x=xs, height=self.values, width=0.7)
        self.prev.setData(xs, self.prev_values)
        ticks = [(i, h[-2:]) for i, (h, _) in enumerate(data.hourly) if i % 3 == 0]
        self.getAxis("bottom").setTicks([ticks])
        top = max(self.values + self.prev_values + [1])
        self.setXRange(-0.6, max(len(xs), 1) - 0.4, padding=0)
        self.setYRange(0, top * 1.15, padding=0)
        self.show_empty(not any(self.values) and not any(self.prev_values))


class HBarChart(Chart):
    """Horizontal bars with category labels on the left (top first); ``barClicked(code)``."""

    barClicked = Signal(str)  # noqa: N815

    def __init__(self, u: float = 0.5, lang: str = "zh", *, percent: bool = False, color: str = ws.ACCENT,
                 top_n: int = TOP_N, parent=None) -> None:  # fmt: skip
        super().__init__(u, lang, parent)
        self.percent = percent
        self.top_n = top_n
        self.color = color
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.6, width=[], brush=QColor(color), pen=pg.mkPen(None))
        self.addItem(self.bars)
        self.codes: list[str] = []
        self.labels: list[str] = []
        self.values: list[float] = []
        self.highlight: str | None = None
        self.value_items: list[pg.TextItem] = []
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_items(self, items: list[tuple[str, str, float | None]]) -> None:
        """``items``: (code, label, value) best first; None values count as 0 and are shown as —.
        Only as many as have room for a readable label are drawn (the best first): a short dock
        on a 900-px screen shows the top of the ranking rather than 16 overlapping labels."""
        self._items = list(items)
        self._draw(self._items[: min(self.top_n, self._rows_that_fit())])

    def _rows_that_fit(self) -> int:
        if not self.isVisible():
            return self.top_n
        line = QFontMetrics(self.tick_font).height() + 2
        return max(3, int(self.getPlotItem().getViewBox().height() // max(line, 1)))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        items = getattr(self, "_items", None)
        if items is not None and min(len(items), self.top_n, self._rows_that_fit()) != len(self.codes):
            self._draw(items[: min(self.top_n, self._rows_that_fit())])

    def _draw(self, items: list[tuple[str, str, float | None]]) -> None:
        self.codes = [c for c, _, _ in items]
        self.labels = [lab for _, lab, _ in items]
        raw = [v for _, _, v in items]
        self.values = [float(v or 0.0) for v in raw]
        n = len(items)
        ys = [n - 1 - i for i in range(n)]
        brushes = [QColor(ws.SEVERITY[3]) if c == self.highlight else QColor(self.color) for c in self.codes]
        self.bars.setOpts(x0=[0] * n, y=ys, width=self.values, height=0.62, brushes=brushes)
        self.getAxis("left").setTicks([[(y, lab) for y, lab in zip(ys, self.labels, strict=True)]])
        for it in self.value_items:
            self.removeItem(it)
        self.value_items = []
        top = 1.0 if self.percent else max(self.values + [1.0])
        for y, v, r in zip(ys, self.values, raw, strict=True):
            text = "—" if r is None else (f"{v * 100:.0f}%" if self.percent else f"{int(v):,}")
            t = pg.TextItem(text, color=ws.TEXT, anchor=(0, 0.5))
            t.setFont(self.tick_font)
            t.setPos(v + top * 0.01, y)
            self.addItem(t)
            self.value_items.append(t)
        self.setYRange(-0.6, max(n, 1) - 0.4, padding=0)
        self.setXRange(0, top * 1.25, padding=0)
        self.show_empty(n == 0)

    def set_highlight(self, code: str | None) -> None:
        self.highlight = code
        if self.codes:
            brushes = [QColor(ws.SEVERITY[3]) if c == code else QColor(self.color) for c in self.codes]
            self.bars.setOpts(brushes=brushes)

    def code_at(self, y: float) -> str | None:
        n = len(self.codes)
        i = n - 1 - round(y)
        return self.codes[i] if 0 <= i < n and abs(y - round(y)) <= 0.45 else None

    def _clicked(self, ev) -> None:
        vb = self.getPlotItem().getViewBox()
        pos = vb.mapSceneToView(ev.scenePos())
        code = self.code_at(pos.y())
        if code:
            self.barClicked.emit(code)


class ArrivalChart(Chart):
    """Arrival-time histogram (2-minute bins, ≥60 in the last) with the 10-minute line."""

    def __init__(self, u: float = 0.5, lang: str = "zh", parent=None) -> None:
        super().__init__(u, lang, parent)
        self.bars = pg.BarGraphItem(x=[], height=[], width=1.8, brush=QColor(ws.DECOR), pen=pg.mkPen(ws.ACCENT))
        self.addItem(self.bars)
        self.line = pg.InfiniteLine(pos=10, angle=90, pen=pg.mkPen(ws.SEVERITY[1], width=max(2, int(3 * u))),
                                    label="10分钟" if _zh(lang) else "10 min",
                                    labelOpts={"position": 0.9, "color": ws.SEVERITY[1], "anchors": [(0, 0), (0, 0)]})  # fmt: skip
        self.line.label.setFont(self.tick_font)
        self.addItem(self.line)
        self.counts: list[int] = []

    def update_data(self, data: DashboardData) -> None:
        starts, counts = data.arrival_histogram()
        self.counts = counts
        self.bars.setOpts(x=[s + 1 for s in starts], height=counts, width=1.8)
        self.setXRange(0, 60, padding=0.01)
        self.setYRange(0, max(counts + [1]) * 1.15, padding=0)
        self.getAxis("bottom").setTicks([[(m, f"{m}") for m in range(0, 61, 10)]])
        self.show_empty(not any(counts))


def _dept_items(data: DashboardData) -> list[tuple[str, str, float | None]]:
    rows = [r for r in data.departments if r.get("due")]
    rows.sort(key=lambda r: -(r.get("due") or 0))
    rows = rows[:TOP_N]
    rows.sort(key=lambda r: -(r.get("ontime_closure_rate") or 0))
    return [(r["code"], r.get("name") or r["code"], r.get("ontime_closure_rate")) for r in rows]


def _street_items(data: DashboardData) -> list[tuple[str, str, float | None]]:
    rows = sorted(data.streets, key=lambda r: (r.get("rank") or 99, r.get("code")))
    key = "score" if any(r.get("score") is not None for r in rows) else "closure_rate"
    return [(r["code"], f"{r.get('rank', '')}. {r.get('name') or r['code']}", r.get(key)) for r in rows]


def _street_names(replica) -> dict[str, str]:
    """Street code → name (16 rows, read once) for the scope label."""
    conn = replica.reader()
    try:
        return {c: n for c, n in conn.execute("SELECT code, name FROM streets")}
    finally:
        conn.close()


def _english_names(replica) -> dict[tuple[str, str], str]:
    """English names of categories and departments (two small tables, read once)."""
    conn = replica.reader()
    try:
        out = {("category", c): n for c, n in conn.execute("SELECT code, name_en FROM categories") if n}
        out.update({("department", c): n for c, n in conn.execute("SELECT code, name_en FROM departments") if n})
    finally:
        conn.close()
    return out


class ChartSet(QObject):
    """The five charts for one scale; ``update(data)`` refreshes them all."""

    def __init__(self, u: float, lang: str = "zh", parent=None) -> None:
        super().__init__(parent)
        zh = _zh(lang)
        self.lang = lang
        self.names_en: dict[tuple[str, str], str] = {}
        """English category / department names by (kind, code), for an English session (set by the panel)."""
        self.hourly = HourlyChart(u, lang)
        self.category = HBarChart(u, lang, color=ws.ACCENT)
        self.source = HBarChart(u, lang, color="#5b8ff9")
        self.arrival = ArrivalChart(u, lang)
        self.streets = HBarChart(u, lang, percent=True, color="#3ba272", top_n=16)
        self.departments = HBarChart(u, lang, percent=True, color="#5b8ff9")
        self.titles = {
            "hourly": "事件量·每小时（近24小时 / 7天前）" if zh else "Events per hour (24 h / 7 days earlier)",
            "category": "事件类别 TOP8（近30天）" if zh else "Top categories (30 days)",
            "source": "事件来源（近30天）" if zh else "Sources (30 days)",
            "arrival": "到场时间分布（分钟）" if zh else "Arrival time (minutes)",
            "streets": "街道综合排名（综合得分）" if zh else "Street ranking (score)",
            "departments": "部门按期结案率" if zh else "Department on-time closure",
        }

    def charts(self) -> dict[str, Chart]:
        return {"hourly": self.hourly, "category": self.category, "source": self.source,
                "arrival": self.arrival, "streets": self.streets, "departments": self.departments}  # fmt: skip

    def update(self, data: DashboardData) -> None:
        self.hourly.update_data(data)
        en = self.lang == "en"
        self.category.set_items([(c, self.names_en.get(("category", c), lab) if en else lab, n)
                                 for c, lab, n in data.by_category])  # fmt: skip
        self.source.set_items([(c, labels.label("source", c, "en") if en else lab, n) for c, lab, n in data.by_source])
        self.arrival.update_data(data)
        self.streets.set_items(_street_items(data))
        depts = _dept_items(data)
        if en:
            depts = [(c, self.names_en.get(("department", c), lab), v) for c, lab, v in depts]
        self.departments.set_items(depts)


class DashboardController(QObject):
    """Loads dashboard data in a worker: at most one refresh per second, never two at once.

    ``refresh()`` asks for a reload; repeated asks while one runs coalesce into one more."""

    updated = Signal(object)  # DashboardData
    failed = Signal(str)

    def __init__(self, replica, scope: Scope | None = None, *, mask: bool = False, watcher=None,
                 parent=None) -> None:  # fmt: skip
        super().__init__(parent)
        self.replica = replica
        self.scope = scope or Scope()
        self.base_scope = self.scope
        self.mask = mask
        self.data: DashboardData | None = None
        self._running = False
        self._dirty = False
        self._last_start = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._start)
        self.loads = 0
        if watcher is not None:
            watcher.changed.connect(self.refresh)

    def set_scope(self, scope: Scope) -> None:
        if scope != self.scope:
            self.scope = scope
            self.refresh()

    def close(self) -> None:
        """Stop refreshing; a read still running is waited for (at most 5 s) and its result dropped."""
        self._closed = True
        self._timer.stop()
        if self._running:
            from PySide6.QtCore import QThreadPool

            QThreadPool.globalInstance().waitForDone(5000)

    def refresh(self) -> None:
        if getattr(self, "_closed", False):
            return
        if self._running:
            self._dirty = True
            return
        wait = MIN_REFRESH_S - (time.monotonic() - self._last_start)
        if wait > 0:
            if not self._timer.isActive():
                self._timer.start(int(wait * 1000) + 1)
            return
        self._start()

    def _start(self) -> None:
        if self._running:
            self._dirty = True
            return
        self._running = True
        self._dirty = False
        self._last_start = time.monotonic()
        scope, mask, previous = self.scope, self.mask, self.data

        def job() -> DashboardData:
            conn = self.replica.reader()
            try:
                return load_dashboard(conn, scope, mask=mask, previous=previous)
            finally:
                conn.close()

        run_in_thread(job, on_result=self._done, on_error=self._error)

    def _done(self, data: DashboardData) -> None:
        self._running = False
        if getattr(self, "_closed", False):
            return
        self.loads += 1
        self.data = data
        self.updated.emit(data)
        if self._dirty:
            self.refresh()

    def _error(self, exc: BaseException) -> None:
        self._running = False
        log.error("dashboard load failed", exc_info=exc)
        self.failed.emit(f"{type(exc).__name__}: {exc}")


class DashboardPanel(QWidget):
    """The desktop dashboard (a dock in the console): KPI tiles over a 3×2 grid of charts.

    Linked views: clicking a street bar emits ``streetSelected(code)``; :meth:`set_grid` scopes
    the charts to a grid (a station's base scope is kept for everything else)."""

    streetSelected = Signal(object)  # noqa: N815 - str | None

    def __init__(self, replica, scope: Scope | None = None, *, lang: str = "zh", watcher=None,
                 parent=None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("DashboardPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(ws.desktop_qss())
        self.lang = lang
        self.controller = DashboardController(replica, scope, watcher=watcher, parent=self)
        self.tiles = KpiStrip(lang)
        self.charts = ChartSet(0.5, lang, self)
        if lang == "en":
            self.charts.names_en = _english_names(replica)
        self.scope_label = QLabel("")
        self.scope_label.setObjectName("PanelTitle")
        self.street_names = _street_names(replica)
        self.reset_button = QPushButton("全区" if _zh(lang) else "Whole scope")
        self.reset_button.setToolTip("取消街道/网格筛选" if _zh(lang) else "Clear the street / grid filter")
        self.reset_button.clicked.connect(self.clear_selection)
        self.reset_button.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.scope_label)
        top.addWidget(self.reset_button)
        top.addWidget(self.tiles, 1)
        grid = QGridLayout()
        grid.setSpacing(6)
        for i, (key, chart) in enumerate(self.charts.charts().items()):  # one row: bars get the height
            grid.addWidget(Panel(self.charts.titles[key], chart, margin=6, chamfer=6), 0, i)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.addLayout(top)
        lay.addLayout(grid, 1)
        self.charts.streets.barClicked.connect(self._street_clicked)
        self.controller.updated.connect(self._show)
        self.selected_street: str | None = None
        self._update_scope_label()
        self.controller.refresh()

    def _update_scope_label(self) -> None:
        s = self.controller.scope
        zh = _zh(self.lang)
        street = self.street_names.get(str(s.code), str(s.code))
        text = {"district": "全区" if zh else "District", "street": street if zh else f"Street {street}",
                "grid": ("网格 " if zh else "Grid ") + str(s.code)}.get(s.kind, str(s.code))  # fmt: skip
        self.scope_label.setText(text)
        self.reset_button.setVisible(s != self.controller.base_scope or self.selected_street is not None)

    def _show(self, data: DashboardData) -> None:
        self.tiles.set_tiles(data.tiles)
        self.charts.update(data)
        self.charts.streets.set_highlight(self.selected_street)

    def _street_clicked(self, code: str) -> None:
        if self.controller.base_scope.kind == "street":
            return  # a station sees its own street only
        code = None if code == self.selected_street else code
        self.selected_street = code
        self.charts.streets.set_highlight(code)
        self.controller.set_scope(Scope("street", code) if code else self.controller.base_scope)
        self._update_scope_label()
        self.streetSelected.emit(code)

    def set_grid(self, grid_id: str | None) -> None:
        """The map's selected grid scopes the charts (None: back to the street or base scope)."""
        if grid_id:
            self.controller.set_scope(Scope("grid", grid_id))
        elif self.selected_street:
            self.controller.set_scope(Scope("street", self.selected_street))
        else:
            self.controller.set_scope(self.controller.base_scope)
        self._update_scope_label()

    def clear_selection(self) -> None:
        had_street = self.selected_street is not None
        self.selected_street = None
        self.charts.streets.set_highlight(None)
        self.controller.set_scope(self.controller.base_scope)
        self._update_scope_label()
        if had_street:
            self.streetSelected.emit(None)


def install_dashboard(window) -> DashboardPanel:
    """Add the dashboard as a bottom dock to the console ``window`` (a ``MainWindow``) and link it:
    a street picked in a chart filters the queue and the map; a grid picked on the map scopes the charts."""
    from PySide6.QtWidgets import QDockWidget, QFrame, QScrollArea

    session = window.state.session
    scope = Scope("street", session.street_scope) if session.street_scope else Scope()
    panel = DashboardPanel(window.replica, scope, lang=session.lang, watcher=window.watcher)
    dock = QDockWidget("统计看板" if _zh(session.lang) else "Dashboard", window)
    dock.setObjectName("DashboardDock")
    scroll = QScrollArea()  # the dock may be dragged lower than the charts' minimum (768-px screens)
    scroll.setObjectName("DashboardScroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(panel)
    scroll.setMinimumHeight(48)
    dock.setWidget(scroll)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable)  # fmt: skip
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    window.resizeDocks([dock], [330], Qt.Orientation.Vertical)
    window.state.grid_selected.connect(panel.set_grid)

    def on_street(code: str | None) -> None:
        window.queue.set_filter(window.queue.filter().with_(street=code))
        window.map.rebuild(window.replica.reader, theme=window.state.theme, scope=code or session.street_scope,
                           tile_url=window.tile_url, lang=session.lang)  # fmt: skip

    panel.streetSelected.connect(on_street)
    base_shutdown = window.shutdown

    def shutdown() -> None:  # stop the dashboard's reads before the replica closes
        panel.controller.close()
        base_shutdown()

    window.shutdown = shutdown
    window.dashboard = panel
    window.dashboard_dock = dock
    return panel





def install_console_panels(window) -> None:
    """Issue 6 on the desktop console (district and street roles): the dashboard dock, saved
    filters and queue export; for the district also the wall control."""
    from widgets.station_tools import install_station_tools

    install_dashboard(window)
    install_station_tools(window)
    if window.state.session.role == "district":
        from widgets.wall_control import install_wall_control

        install_wall_control(window)
