"""Building-economy side panel (楼宇经济): metric and filters, totals per street, top 20,
industry mix chart and the building card (enterprises, occupancy history, tax trend).

A thin view over ``app/economy.py``; it reads with its own short read connections and tells
the map what to show through signals (``metricChanged``, ``heightsToggled``, ``filterChanged``,
``buildingActivated``).  All figures are synthetic demo data (演示).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import economy as eco
from app.timeutil import TZ
from db.economy import INDUSTRIES, INDUSTRY_COLOURS
from layers.economy import METRICS
from widgets import charts


def _tr(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else zh


def _wan(yuan: float | None) -> str:
    return f"{(yuan or 0) / 1e4:,.0f}"


def _yi(yuan: float | None) -> str:
    return f"{(yuan or 0) / 1e8:,.2f}"


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setAlternatingRowColors(True)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _item(text, align_right: bool = False, data=None) -> QTableWidgetItem:
    it = QTableWidgetItem(str(text))
    if align_right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if data is not None:
        it.setData(Qt.ItemDataRole.UserRole, data)
    return it


def _fill(table: QTableWidget, rows: list[list], right: set[int], data: list | None = None) -> None:
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            table.setItem(i, j, _item(v, j in right, data[i] if (data and j == 0) else None))


class BuildingCard(QWidget):
    """One building: facts, enterprises, occupancy history and tax trend."""

    def __init__(self, lang: str = "zh", parent=None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.card: dict | None = None
        self.title = QLabel(_tr("点击地图上的楼宇或 TOP20 中的一行查看楼宇卡片",
                                "Click a building on the map or a TOP-20 row", lang))
        self.title.setObjectName("detailTitle")
        self.title.setWordWrap(True)
        self.facts = QLabel("")
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.PlainText)
        self.enterprises = _table([_tr("企业（演示）", "Enterprise (demo)", lang), _tr("行业", "Industry", lang),
                                   _tr("楼层", "Floor", lang), _tr("年税收(万元)", "Tax (10k ¥)", lang)])
        self.enterprises.setMinimumHeight(90)  # small minimums: the console fits a 768-px-high screen
        self.occ_plot = charts.plot(_tr("入驻率（月）", "Occupancy (monthly)", lang), time_axis=True, height=90)
        self.tax_plot = charts.plot(_tr("税收趋势（万元/月）", "Tax trend (10k ¥/month)", lang), time_axis=True, height=90)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.title)
        lay.addWidget(self.facts)
        lay.addWidget(self.enterprises, 2)
        lay.addWidget(self.occ_plot, 1)
        lay.addWidget(self.tax_plot, 1)

    def show_card(self, card: dict | None) -> None:
        self.card = card
        self.occ_plot.clear()
        self.tax_plot.clear()
        if card is None:
            self.facts.setText("")
            self.enterprises.setRowCount(0)
            return
        lang = self.lang
        self.title.setText(card["name"] + ("  · 亿元楼" if card["yiyuan"] and lang != "en" else
                                           ("  · ¥100M+ building" if card["yiyuan"] else "")))
        ind = eco.industry_name(card["industry"], lang)
        self.facts.setText(
            _tr(
                f"{card['street'] or ''} · {card['grid'] or ''}\n主导产业 {ind} · {card['floors']} 层 · "
                f"建筑面积 {card['gfa_m2']:,.0f} ㎡\n入驻率 {card['occupancy']:.0%} · 企业 {card['enterprises']} 家 · "
                f"年税收 {_wan(card['tax_yuan'])} 万元（{card['tax_yuan'] / card['gfa_m2']:,.0f} 元/㎡）"
                + ("\n（演示数据；轮廓已自动修复）" if card.get("repaired") else "\n（演示数据）"),
                f"{card['street'] or ''} · {card['grid'] or ''}\nIndustry {ind} · {card['floors']} floors · "
                f"GFA {card['gfa_m2']:,.0f} m²\nOccupancy {card['occupancy']:.0%} · {card['enterprises']} enterprises · "
                f"tax {_wan(card['tax_yuan'])}×10k ¥ ({card['tax_yuan'] / card['gfa_m2']:,.0f} ¥/m²)"
                + ("\n(demo data; footprint repaired)" if card.get("repaired") else "\n(demo data)"),
                lang,
            )
        )
        rows = [[e["name"], eco.industry_name(e["industry"], lang), e["floor"], _wan(e["tax_yuan"])]
                for e in card["enterprise_rows"]]  # fmt: skip
        _fill(self.enterprises, rows, {2, 3})
        hist = card["history"]
        if hist:
            x = np.array([dt.datetime.strptime(h["month"] + "-15", "%Y-%m-%d").replace(tzinfo=TZ).timestamp()
                          for h in hist])  # fmt: skip
            occ = np.array([h["occupancy"] * 100 for h in hist])
            tax = np.array([h["tax_yuan"] / 1e4 for h in hist])
            self.occ_plot.plot(x, occ, pen=pg.mkPen("#00E4FF", width=2), symbol="o", symbolSize=4,
                               symbolBrush="#00E4FF")  # fmt: skip
            self.occ_plot.setYRange(max(0, occ.min() - 10), min(100, occ.max() + 5))
            bars = pg.BarGraphItem(x=x, height=tax, width=20 * 86400, brush=charts.colour("#fddd60", 200), pen=None)
            self.tax_plot.addItem(bars)
            self.tax_plot.setYRange(0, tax.max() * 1.1)


class EconomyPanel(QWidget):
    """楼宇经济 side panel."""

    metricChanged = Signal(str)  # noqa: N815
    heightsToggled = Signal(bool)  # noqa: N815
    filterChanged = Signal(object)  # noqa: N815 (app.economy.EconomyFilter)
    buildingActivated = Signal(int, float, float)  # noqa: N815 (id, lon, lat)

    def __init__(self, open_conn, lang: str = "zh", parent=None) -> None:
        super().__init__(parent)
        self.open_conn = open_conn
        self.lang = lang
        self.filter = eco.EconomyFilter()
        self.metric = QComboBox()
        for key, m in METRICS.items():
            self.metric.addItem(m["en" if lang == "en" else "zh"], key)
        self.heights = QCheckBox(_tr("高度示意", "Height cue", lang))
        self.industry = QComboBox()
        self.industry.addItem(_tr("全部行业", "All industries", lang), None)
        for code, (zh, en) in INDUSTRIES.items():
            self.industry.addItem(en if lang == "en" else zh, code)
        self.street = QComboBox()
        self.street.addItem(_tr("全部街道", "All streets", lang), None)
        conn = open_conn()
        try:
            for code, name in eco.streets(conn):
                self.street.addItem(name, code)
        finally:
            conn.close()
        self.kpis = QLabel("")
        self.kpis.setObjectName("EconomyKpis")
        self.kpis.setWordWrap(True)
        self.kpis.setTextFormat(Qt.TextFormat.PlainText)
        self.streets_table = _table([_tr("街道", "Street", lang), _tr("楼宇", "Bldgs", lang),
                                     _tr("入驻率", "Occ.", lang), _tr("企业", "Ents", lang),
                                     _tr("税收(亿元)", "Tax (100M ¥)", lang), _tr("亿元楼", "¥100M+", lang)])
        self.top_table = _table(["#", _tr("楼宇（演示）", "Building (demo)", lang), _tr("街道", "Street", lang),
                                 _tr("税收(万元)", "Tax (10k ¥)", lang), _tr("入驻率", "Occ.", lang)])
        self.top_table.cellClicked.connect(self._top_clicked)
        self.mix_plot = charts.plot(_tr("行业结构：企业年税收（亿元）", "Industry mix: enterprise tax (100M ¥)", lang),
                                    height=200)
        self.card = BuildingCard(lang)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.streets_table, _tr("街道汇总", "Streets", lang))
        self.tabs.addTab(self.top_table, "TOP20")
        self.tabs.addTab(self.mix_plot, _tr("行业结构", "Industry mix", lang))
        self.tabs.addTab(self.card, _tr("楼宇卡片", "Building card", lang))
        grid = QGridLayout()
        grid.addWidget(QLabel(_tr("着色", "Colour by", lang)), 0, 0)
        grid.addWidget(self.metric, 0, 1)
        grid.addWidget(self.heights, 0, 2)
        grid.addWidget(QLabel(_tr("筛选", "Filter", lang)), 1, 0)
        grid.addWidget(self.industry, 1, 1)
        grid.addWidget(self.street, 1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(grid)
        lay.addWidget(self.kpis)
        lay.addWidget(self.tabs, 1)
        note = QLabel(_tr("楼宇、企业与税收均为合成演示数据", "Buildings, enterprises and tax are synthetic demo data", lang))
        note.setObjectName("factLabel")
        lay.addWidget(note)
        self.metric.currentIndexChanged.connect(lambda _i: self.metricChanged.emit(self.metric.currentData()))
        self.heights.toggled.connect(self.heightsToggled)
        self.industry.currentIndexChanged.connect(self._filter_changed)
        self.street.currentIndexChanged.connect(self._filter_changed)
        self.reload()

    # -- data -------------------------------------------------------------------------------
    def _filter_changed(self, _i: int = 0) -> None:
        ind, st = self.industry.currentData(), self.street.currentData()
        self.filter = eco.EconomyFilter(industries=(ind,) if ind else (), streets=(st,) if st else ())
        self.reload()
        self.filterChanged.emit(self.filter)

    def reload(self) -> None:
        lang = self.lang
        conn = self.open_conn()
        try:
            tot = eco.totals(conn, self.filter)
            streets = eco.street_totals(conn, self.filter)
            top = eco.top_buildings(conn, self.filter, 20)
            mix = eco.industry_mix(conn, self.filter)
        finally:
            conn.close()
        self.kpis.setText(_tr(
            f"楼宇 {tot['buildings']} 栋 · 建筑面积 {tot['gfa'] / 1e4:,.1f} 万㎡ · 入驻率 {tot['occupancy']:.0%} · "
            f"企业 {tot['enterprises']:,} 家 · 年税收 {_yi(tot['tax'])} 亿元 · 亿元楼 {tot['yiyuan']} 栋",
            f"{tot['buildings']} buildings · GFA {tot['gfa'] / 1e4:,.1f}×10k m² · occupancy {tot['occupancy']:.0%} · "
            f"{tot['enterprises']:,} enterprises · tax {_yi(tot['tax'])}×100M ¥ · {tot['yiyuan']} ¥100M+ buildings",
            lang))  # fmt: skip
        _fill(self.streets_table,
              [[s["street"] or s["code"], s["buildings"], f"{s['occupancy']:.0%}", s["enterprises"], _yi(s["tax"]),
                s["yiyuan"]] for s in streets], {1, 2, 3, 4, 5})  # fmt: skip
        self._top = top
        _fill(self.top_table,
              [[i + 1, b["name"] + (" ★" if b["yiyuan"] else ""), b["street"] or "", _wan(b["tax_yuan"]),
                f"{b['occupancy']:.0%}"] for i, b in enumerate(top)], {0, 3, 4},
              data=[b["id"] for b in top])  # fmt: skip
        self.mix_plot.clear()
        if mix:
            x = np.arange(len(mix))
            heights = np.array([m["tax"] / 1e8 for m in mix])
            brushes = [charts.colour(INDUSTRY_COLOURS.get(m["industry"], "#4992ff"), 220) for m in mix]
            self.mix_plot.addItem(pg.BarGraphItem(x=x, height=heights, width=0.7, brushes=brushes, pen=None))
            ax = self.mix_plot.getAxis("bottom")
            ax.setTicks([[(i, eco.industry_name(m["industry"], lang)[:4]) for i, m in enumerate(mix)]])
            self.mix_plot.setYRange(0, heights.max() * 1.15)

    def _top_clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._top):
            b = self._top[row]
            self.show_building(b["id"])
            self.buildingActivated.emit(int(b["id"]), float(b["lon"]), float(b["lat"]))

    def show_building(self, building_id: int) -> None:
        conn = self.open_conn()
        try:
            card = eco.building_card(conn, building_id)
        finally:
            conn.close()
        self.card.show_card(card)
        self.tabs.setCurrentWidget(self.card)
