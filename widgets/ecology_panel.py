"""Yangtze ecology side panel (长江生态眼): stations with their latest class, the selected
station's series with GB 3838 class bands, and the alert history (episodes → events).

Invalid readings are never plotted as values: they show as grey ticks along the bottom of the
chart and are counted in the header line.  A thin view over ``app/ecology.py``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from app import ecology as eco
from app import gb3838
from app.timeutil import display
from widgets import charts
from widgets.economy_panel import _fill, _table, _tr

PARAM_ORDER = ("do", "nh3n", "cod", "ph", "turbidity")
DETECTION_ZH = {"fishing": "非法捕捞", "sand_mining": "非法采砂", "dumping": "沿江倾倒"}
DETECTION_EN = {"fishing": "Illegal fishing", "sand_mining": "Sand mining", "dumping": "Dumping"}


class EcologyPanel(QWidget):
    """长江生态眼 side panel."""

    stationActivated = Signal(int, float, float)  # noqa: N815 (id, lon, lat)
    eventActivated = Signal(int)  # noqa: N815

    def __init__(self, open_conn, lang: str = "zh", parent=None) -> None:
        super().__init__(parent)
        self.open_conn = open_conn
        self.lang = lang
        self.station_id: int | None = None
        self.window: tuple[int, int] | None = None
        """(start_hour, end_hour) of the chart; None = the last 7 days of readings."""
        self.series: eco.StationSeries | None = None
        self.stations = _table([_tr("站点", "Station", lang), _tr("名称", "Name", lang),
                                _tr("水质", "Class", lang), _tr("时间", "Time", lang)])  # fmt: skip
        self.stations.cellClicked.connect(self._station_clicked)
        self.param = QComboBox()
        for p in PARAM_ORDER:
            zh, en, unit = gb3838.NAMES[p]
            self.param.addItem(f"{en if lang == 'en' else zh} {unit}".strip(), p)
        self.param.currentIndexChanged.connect(lambda _i: self._draw())
        self.chart_info = QLabel("")
        self.chart_info.setTextFormat(Qt.TextFormat.PlainText)
        self.chart_info.setWordWrap(True)
        self.plot = charts.plot("", time_axis=True, height=220)
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#00E4FF", width=1.5), connect="finite")
        # a year is 8,760 points: draw what fits the pixels, keeping peaks (breaches stay visible)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        self.invalid_marks = pg.ScatterPlotItem(size=7, symbol="t1", brush=charts.colour(gb3838.INVALID_COLOUR), pen=None)
        self.plot.addItem(self.invalid_marks)
        self.bands: list = []
        self.alerts = _table([_tr("开始", "Start", lang), _tr("站点/监控", "Site", lang),
                              _tr("告警", "Alert", lang), _tr("事件", "Event", lang)])  # fmt: skip
        self.alerts.cellDoubleClicked.connect(self._alert_activated)
        head = QHBoxLayout()
        head.addWidget(QLabel(_tr("指标", "Parameter", lang)))
        head.addWidget(self.param, 1)
        chart_box = QWidget()
        cl = QVBoxLayout(chart_box)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addLayout(head)
        cl.addWidget(self.chart_info)
        cl.addWidget(self.plot, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.stations)
        split.addWidget(chart_box)
        split.addWidget(self.alerts)
        split.setSizes([260, 330, 220])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split, 1)
        note = QLabel(_tr("GB 3838-2002：DO、氨氮、COD 分类，取最差；pH 6–9；浊度仅显示数值。站点与读数为演示数据",
                          "GB 3838-2002: DO, NH3-N, COD classed, worst wins; pH 6–9; turbidity as value. Demo data",
                          lang))  # fmt: skip
        note.setObjectName("factLabel")
        note.setWordWrap(True)
        lay.addWidget(note)
        self.reload()

    # -- stations and alerts -------------------------------------------------------------------
    def reload(self) -> None:
        conn = self.open_conn()
        try:
            end_hour = self.window[1] - 1 if self.window else None
            self._stations = eco.station_list(conn, end_hour)
            since = until = None
            if self.window:
                from db.ecology import hour_iso

                since, until = hour_iso(self.window[0]), hour_iso(self.window[1])
            alerts = eco.alert_history(conn, since=since, until=until)
        finally:
            conn.close()
        lang = self.lang
        rows = [[s["code"], s["name"], gb3838.class_label(s["cls"] or None, lang), display(s["at"])]
                for s in self._stations]  # fmt: skip
        _fill(self.stations, rows, set(), data=[s["id"] for s in self._stations])
        for i, s in enumerate(self._stations):
            colour = gb3838.CLASS_COLOURS.get(s["cls"], gb3838.INVALID_COLOUR)
            self.stations.item(i, 2).setForeground(QBrush(charts.colour(colour)))
        names = DETECTION_EN if lang == "en" else DETECTION_ZH
        arows = []
        for a in alerts:
            if a["kind"] == "breach":
                zh, en, _unit = gb3838.NAMES[a["parameter"]]
                what = f"{en if lang == 'en' else zh} {gb3838.class_label(a['peak_class'], lang)}"
            else:
                what = names.get(a["parameter"], a["parameter"])
            arows.append([display(a["started_at"]), a["site"] or "", what, f"#{a['event_id']}" if a["event_id"] else "—"])
        self._alerts = alerts
        _fill(self.alerts, arows, set())
        if self.station_id is None and self._stations:
            self.select_station(self._stations[0]["id"])
        elif self.station_id is not None:
            self.load_series(self.station_id)

    def _station_clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._stations):
            s = self._stations[row]
            self.select_station(s["id"])
            self.stationActivated.emit(int(s["id"]), float(s["lon"]), float(s["lat"]))

    def _alert_activated(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._alerts) and self._alerts[row]["event_id"]:
            self.eventActivated.emit(int(self._alerts[row]["event_id"]))

    def select_station(self, station_id: int) -> None:
        self.station_id = int(station_id)
        for i, s in enumerate(self._stations):
            if s["id"] == self.station_id:
                self.stations.selectRow(i)
        self.load_series(self.station_id)

    def set_window(self, start_hour: int | None, end_hour: int | None) -> None:
        """Chart and alert list over [start_hour, end_hour) (None: the last 7 days of readings)."""
        self.window = (int(start_hour), int(end_hour)) if start_hour is not None and end_hour is not None else None
        self.reload()

    # -- the chart ------------------------------------------------------------------------------
    def load_series(self, station_id: int) -> eco.StationSeries:
        """Read and draw one station's series (the whole window; 1 year hourly = 8,760 points)."""
        conn = self.open_conn()
        try:
            if self.window:
                start, end = self.window
            else:
                last = eco.latest_hour(conn) or 0
                start, end = last + 1 - 7 * 24, last + 1
            self.series = eco.station_series(conn, station_id, start, end)
        finally:
            conn.close()
        self._draw()
        return self.series

    def _set_bands(self, p: str) -> None:
        """Class bands behind the curve; kept while the parameter stays the same."""
        if getattr(self, "_bands_for", None) == p:
            return
        for b in self.bands:
            self.plot.removeItem(b)
        self.bands = []
        self._bands_for = p
        if p in gb3838.LIMITS:
            spans = [(a, b, gb3838.CLASS_COLOURS[cls], 38) for cls, a, b in gb3838.band_edges(p)]
        elif p == "ph":
            spans = [(*gb3838.PH_RANGE, "#7dd87d", 30)]
        else:
            spans = []
        for a, b, colour, alpha in spans:
            band = pg.LinearRegionItem(values=(a, b), orientation="horizontal", movable=False,
                                       brush=charts.colour(colour, alpha), pen=pg.mkPen(None))  # fmt: skip
            band.setZValue(-10)
            self.plot.addItem(band)
            self.bands.append(band)

    def _draw(self) -> None:
        s = self.series
        p = self.param.currentData()
        self._set_bands(p)
        lang = self.lang
        if s is None or s.n == 0:
            self.curve.setData([], [])
            self.invalid_marks.setData([], [])
            self.chart_info.setText(_tr("该时段无读数", "No readings in this window", lang))
            return
        y = s.values[p]
        finite = y[np.isfinite(y)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if p in gb3838.LIMITS:
            limits = gb3838.LIMITS[p]
            lo, hi = min(lo, min(limits) * 0.8), max(hi, max(limits) * 1.05)
        elif p == "ph":
            lo, hi = min(lo, 5.5), max(hi, 9.5)
        self.curve.setData(s.x, y, connect="finite")
        bad = s.invalid[p]
        self.invalid_marks.setData(s.x[bad], np.full(int(bad.sum()), lo))
        self.plot.setYRange(lo, hi, padding=0.05)
        self.plot.setXRange(float(s.x[0]), float(s.x[-1]), padding=0.01)
        latest_cls = int(s.classes[-1]) if s.classes.size else 0
        n_bad = int(bad.sum())
        station = next((x for x in getattr(self, "_stations", []) if x["id"] == s.station_id), None)
        name = f"{station['code']} {station['name']}" if station else str(s.station_id)
        self.chart_info.setText(_tr(
            f"{name} · {s.n:,} 个小时读数 · 最新 {gb3838.class_label(latest_cls or None)} · 无效读数 {n_bad}（不参与分类与告警）",
            f"{name} · {s.n:,} hourly readings · latest {gb3838.class_label(latest_cls or None, 'en')} · "
            f"{n_bad} invalid (never classified or alerted)", lang))  # fmt: skip
