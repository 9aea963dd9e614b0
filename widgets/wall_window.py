"""The command wall (``onemap --wall``): laid out natively for ultra-wide walls (about 5.5 : 1).

Header (title over the map, clock, data freshness) · side columns of charts (two per side on an
ultra-wide wall, one on narrower ones) · the map in the centre with the KPI strip above it · the
event ticker at the bottom. Dark theme, sizes in px@1080 × ``u`` (height ÷ 1080).

Read-only: no action buttons. Theme rotation (:class:`app.wall.WallRotation`) runs every second;
a new emergency-class event takes the wall over (rotation stops, the map flies to the event,
the incident banner opens and its symbol flashes, the optional sound plays) until the takeover
ends. The district console's 大屏控制 (:mod:`widgets.wall_control`) writes ``wall_control`` rows;
the wall reads them whenever the replica changes. Every text shown here was masked in ``app/``
(``app.dashboard_data`` with ``mask=True``, ``app.masking.mask_layer`` for the map's layers).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QVBoxLayout, QWidget

from app import masking, timeutil
from app import wall as wall_rules
from app.dashboard_data import DashboardData, Scope, event_point, streets_bounds
from app.state import AppState
from db import wall_store
from db.replica import Replica
from layers import command as command_layers
from widgets import wall_probe
from widgets import wall_style as ws
from widgets.alert_sound import AlertSound, EmergencyAlerter
from widgets.dashboard import ChartSet, DashboardController
from widgets.kpi_tiles import KpiStrip
from widgets.map_view import MapView
from widgets.replica_watcher import ReplicaWatcher
from widgets.ticker import Ticker
from widgets.wall_panel import Panel

log = logging.getLogger(__name__)
WEEKDAYS_ZH = "一二三四五六日"
KPI_PERIOD_MS = 30_000
STALE_AFTER_S = 90
FLASH_MS = 333  # 1.5 Hz: on/off each 333 ms (never more than 3 flashes a second)
RECENT_ROWS = 8
CANVAS_PADDING = 0.1  # Leaflet's default; the page's 0.3 made each wall-wide canvas frame ~15 MiB (soak)
_FIT_LAND_JS = (
    "(function(b){for (var k in window) { if (k.indexOf('map_') === 0 && window[k] && window[k].options"
    " && window[k].fitBounds) { var m = window[k]; m.options.zoomSnap = 0.1; m.options.zoomDelta = 0.5;"
    " m.invalidateSize(false); m.fitBounds(b, {padding: [8, 8], animate: false}); } } return true;})(%s)"
)


def land_bounds_js(bounds: tuple[float, float, float, float] | None) -> str:
    """JS that fits the map to the streets (the river part of the district is left out, so the
    governed area fills the wall's wide map), with fine zoom steps."""
    import json

    if bounds is None:
        return "true"
    minx, miny, maxx, maxy = bounds
    return _FIT_LAND_JS % json.dumps([[miny, minx], [maxy, maxx]])


def _label(text: str = "", name: str | None = None) -> QLabel:
    lab = QLabel(text)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    if name:
        lab.setObjectName(name)
    return lab


class RecentEvents(QWidget):
    """The newest events, one line each (texts already masked)."""

    def __init__(self, rows: int = RECENT_ROWS, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.setObjectName("EventList")
        self.lang = lang
        self.empty = "No data" if lang == "en" else "无数据"
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.lines = [_label("") for _ in range(rows)]
        for lab in self.lines:
            lab.setWordWrap(False)
            lay.addWidget(lab)
        lay.addStretch(1)
        self.lines[0].setText(self.empty)

    def set_rows(self, rows: list[dict]) -> None:
        from widgets.ticker import item_text

        for i, lab in enumerate(self.lines):
            lab.setText(item_text(rows[i], self.lang) if i < len(rows) else (self.empty if i == 0 else ""))
            tint = ws.SEVERITY.get(rows[i].get("priority")) if i < len(rows) and rows[i].get("class") == "emergency" else None
            lab.setStyleSheet(f"color: {tint};" if tint else "")


class WallWindow(QMainWindow):
    """The wall. ``mapReady`` once the map has loaded (for screenshots)."""

    mapReady = Signal()

    def __init__(self, replica: Replica, state: AppState, *, tile_url: str | None = None,
                 geometry: QRect | None = None, themes: tuple[str, ...] = wall_rules.DEFAULT_THEMES,
                 period_s: float = wall_rules.DEFAULT_PERIOD_S, layout: dict | None = None,
                 sound: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.setObjectName("WallWindow")
        self.replica = replica
        self.state = state
        self.tile_url = tile_url
        self.setWindowTitle("一张图指挥台 · 大屏 — 崇川区")
        geo = geometry or QRect(0, 0, 7680, 1400)
        self.wall_size = (geo.width(), geo.height())
        self.u = max(geo.height() / 1080.0, 0.4)
        self.setStyleSheet(ws.wall_qss(self.u))
        self._map_loaded = False
        self.layout_spec = wall_rules.normalize_layout(layout or wall_rules.PRESETS["常态"])
        self.layout_name = "常态"
        conn = replica.reader()
        try:
            self.known_names = masking.known_names(conn)
            self.home_bounds = streets_bounds(conn)
        finally:
            conn.close()
        self.rotation = wall_rules.WallRotation(themes, period_s, set_theme=state.set_theme)
        self._control_seen: dict[str, str] = {}
        self._blinking = False
        self._flash_on = False
        self.last_data_at: float | None = None
        self.sync_online: bool | None = None  # None: not a sync client (widgets.sync_status.WallSync)
        self.watcher = ReplicaWatcher(replica, parent=self)
        self.controller = DashboardController(replica, Scope(), mask=True, watcher=self.watcher, parent=self)
        self.sound = AlertSound(self, persist=False, muted=not sound)
        self.alerter = EmergencyAlerter(replica, state.session, self.sound, self)
        self._build(geo)
        self._read_control(initial=True)
        if wall_probe.flag("ONEMAP_WALL_NO_ROTATION"):  # bench only (soak bisection)
            self.rotation.pause()
        self._probe = wall_probe.install(self)
        self.controller.updated.connect(self._show_data)
        self.watcher.changed.connect(self._on_replica_changed)
        self.alerter.newEmergencies.connect(self._on_new_emergencies)
        self.map.loaded.connect(self._on_map_loaded)
        state.theme_changed.connect(self._on_theme)
        self._second = QTimer(self)
        self._second.timeout.connect(self._tick)
        self._second.start(1000)
        self._kpi_timer = QTimer(self)
        self._kpi_timer.timeout.connect(self.controller.refresh)
        self._kpi_timer.start(KPI_PERIOD_MS)
        self._flash = QTimer(self)
        self._flash.timeout.connect(self._flash_step)
        self._tick()
        self.controller.refresh()
        self.reload_map()

    # -- layout ---------------------------------------------------------------------------------
    def _build(self, geo: QRect) -> None:
        u = self.u
        zh = self.state.session.lang != "en"
        central = QWidget()
        central.setObjectName("WallCentral")
        central.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        outer = QHBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.content = QWidget()
        outer.addWidget(self.content, 0)
        self.cctv_space = QWidget()  # the part of the wall given to CCTV in half/third layouts
        outer.addWidget(self.cctv_space, 1)
        root = QVBoxLayout(self.content)
        m = ws.px(12, u)
        root.setContentsMargins(m, 0, m, 0)
        root.setSpacing(ws.px(10, u))

        # header: mode/theme · title centred over the map · freshness · clock
        header = QWidget()
        header.setFixedHeight(ws.px("header", u))
        h = QHBoxLayout(header)
        h.setContentsMargins(0, 0, 0, 0)
        self.mode_label = _label("", "WallMode")
        self.demo_badge = _label("演示数据" if zh else "DEMO DATA", "WallMode")
        self.demo_badge.setVisible(self.replica.meta("demo") == "1")
        self.title = _label("崇川区 · 一张图指挥中心" if zh else "Chongchuan · OneMap Command", "WallTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.fresh = _label("", "WallFresh")
        self.clock = _label("", "WallClock")
        left = QHBoxLayout()
        left.addWidget(self.mode_label)
        left.addSpacing(ws.px(24, u))
        left.addWidget(self.demo_badge)
        left.addStretch(1)
        right = QHBoxLayout()
        right.addStretch(1)
        right.addWidget(self.fresh)
        right.addSpacing(ws.px(24, u))
        right.addWidget(self.clock)
        h.addLayout(left, 1)
        h.addWidget(self.title, 2)
        h.addLayout(right, 1)
        root.addWidget(header)

        # body: columns | centre (KPI strip, incident banner, map) | columns
        self.charts = ChartSet(u, self.state.session.lang, self)
        if self.state.session.lang == "en":
            from widgets.dashboard import _english_names

            self.charts.names_en = _english_names(self.replica)
        self.recent = RecentEvents(lang=self.state.session.lang)
        t = self.charts.titles
        mk = lambda key, body: Panel(t.get(key, key), body, margin=ws.px(12, u), chamfer=ws.px(12, u))  # noqa: E731
        self.panels = {
            "hourly": mk("hourly", self.charts.hourly),
            "category": mk("category", self.charts.category),
            "source": mk("source", self.charts.source),
            "arrival": mk("arrival", self.charts.arrival),
            "departments": mk("departments", self.charts.departments),
            "streets": mk("streets", self.charts.streets),
            "recent": Panel("最新事件（已脱敏）" if zh else "Latest events (masked)", self.recent,
                            margin=ws.px(12, u), chamfer=ws.px(12, u)),
        }  # fmt: skip
        body = QHBoxLayout()
        body.setSpacing(ws.px(12, u))
        self.columns = {k: self._column() for k in ("left_outer", "left_inner", "right_inner", "right_outer")}
        centre = QVBoxLayout()
        centre.setSpacing(ws.px(8, u))
        per_row, rows = self.kpi_grid()
        self.max_tiles = per_row * rows
        self.kpis = KpiStrip(self.state.session.lang, columns=per_row)
        self.kpis.setFixedHeight(ws.px(130, u) * rows)
        centre.addWidget(self.kpis)
        self.banner = QWidget()
        self.banner.setObjectName("IncidentBanner")
        self.banner.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        b = QHBoxLayout(self.banner)
        b.setContentsMargins(ws.px(16, u), ws.px(6, u), ws.px(16, u), ws.px(6, u))
        self.banner_symbol = _label("●")
        self.banner_text = _label("")
        b.addWidget(self.banner_symbol)
        b.addWidget(self.banner_text, 1)
        self.banner.setVisible(False)
        centre.addWidget(self.banner)
        self.map = MapView()
        centre.addWidget(self.map, 1)
        body.addWidget(self.columns["left_outer"], 0)
        body.addWidget(self.columns["left_inner"], 0)
        body.addLayout(centre, 1)
        body.addWidget(self.columns["right_inner"], 0)
        body.addWidget(self.columns["right_outer"], 0)
        root.addLayout(body, 1)
        self.ticker = Ticker(u, lang=self.state.session.lang)
        root.addWidget(self.ticker)
        self.setCentralWidget(central)
        self.apply_layout(self.layout_spec, self.layout_name)

    def _column(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(ws.px(12, self.u))
        return w

    def kpi_grid(self, n_tiles: int = 11) -> tuple[int, int]:
        """(tiles per row, rows) for the KPI strip over the map: one row on an ultra-wide wall;
        on narrower ones at most two rows (the tiles that do not fit are left out, most important first)."""
        spec = wall_rules.normalize_layout(self.layout_spec)
        width = wall_rules.share_width(spec["mode"], self.wall_size[0])
        n = self.columns_per_side(spec)
        col_w = min(ws.px("column", self.u), int(width * (0.12 if n == 2 else 0.22)))
        centre = width - 2 * n * col_w - ws.px(24 + 12 * 2 * n, self.u)
        per_row = max(3, centre // ws.px(230, self.u))
        if per_row >= n_tiles:
            return n_tiles, 1
        return per_row, 2

    def columns_per_side(self, spec: dict | None = None) -> int:
        spec = spec or self.layout_spec
        if spec["mode"] == "map_only":
            return 0
        width = wall_rules.share_width(spec["mode"], self.wall_size[0])
        fit = 2 if width / self.wall_size[1] >= 3.2 else 1
        return min(fit, spec.get("columns", 2))

    def apply_layout(self, spec: dict, name: str | None = None) -> None:
        """Place the panels for ``spec`` (mode, columns); half/third modes leave the rest black."""
        spec = wall_rules.normalize_layout(spec)
        self.layout_spec = spec
        self.layout_name = name or self.layout_name
        width = wall_rules.share_width(spec["mode"], self.wall_size[0])
        self.content.setFixedWidth(width)
        n = self.columns_per_side(spec)
        col_w = min(ws.px("column", self.u), int(width * (0.12 if n == 2 else 0.22)))
        if n == 2:
            plan = {"left_outer": ("hourly", "category", "source"), "left_inner": ("arrival", "departments"),
                    "right_inner": ("streets",), "right_outer": ("recent",)}  # fmt: skip
        elif n == 1:
            plan = {"left_outer": ("hourly", "category", "arrival"), "left_inner": (),
                    "right_inner": (), "right_outer": ("streets", "recent")}  # fmt: skip
        else:
            plan = {k: () for k in self.columns}
        for p in self.panels.values():
            p.setParent(None)
        for key, col in self.columns.items():
            lay = col.layout()
            for name_ in plan[key]:
                lay.addWidget(self.panels[name_], 1)
            col.setVisible(bool(plan[key]))
            col.setFixedWidth(col_w)
        self._incident_layout(self.rotation.takeover is not None)
        self._show_mode()

    def _incident_layout(self, on: bool) -> None:
        """非常态: the inner columns give their width to the map while an incident is open."""
        if self.columns_per_side() == 2:
            for key in ("left_inner", "right_inner"):
                self.columns[key].setVisible(not on)
        self.banner.setVisible(on)

    # -- map ------------------------------------------------------------------------------------
    def reload_map(self) -> None:
        names = self.known_names
        self.map.rebuild(self.replica.reader, theme=self.state.theme, scope=None, tile_url=self.tile_url,
                         lang=self.state.session.lang,
                         transform=lambda key, fc: masking.mask_layer(key, fc, names))  # fmt: skip

    def _on_theme(self, name: str) -> None:
        """Rotation: the page carries every theme's layers, so switch inside it. Reloading the page
        per theme grew the renderer by ~60 MiB a rotation (bench/soak_wall.py)."""
        if self._map_loaded:
            self.map.set_theme(name)
        else:
            self.reload_map()

    def _on_map_loaded(self, ok: bool) -> None:
        self._map_loaded = ok
        if ok:
            self.map.set_ui_scale(self.u)
            self.map.set_canvas_padding(CANVAS_PADDING)
            # finer zoom steps, so that the district fills the wide map area, then fit it
            self.map.run_js(land_bounds_js(self.home_bounds))
            self.mapReady.emit()

    @property
    def map_loaded(self) -> bool:
        return self._map_loaded

    def _push_map_delta(self) -> None:
        if not self._map_loaded or self.map.page_rev is None or wall_probe.flag("ONEMAP_WALL_NO_DELTAS"):
            return
        conn = self.replica.reader()
        try:
            delta, rev = command_layers.build_delta(conn, self.map.page_rev, scope=None)
        finally:
            conn.close()
        self.map.page_rev = rev
        if delta:
            self.map.apply_delta(masking.mask_map_delta(delta, self.known_names))

    # -- data -----------------------------------------------------------------------------------
    def _show_data(self, data: DashboardData) -> None:
        self.last_data_at = time.monotonic()
        self.kpis.set_tiles(data.tiles[: self.max_tiles])
        self.charts.update(data)
        self.ticker.add_rows(data.ticker)
        self.recent.set_rows(data.ticker)
        self._tick()

    def _on_replica_changed(self) -> None:
        self._push_map_delta()
        self._read_control()
        self.alerter.check()

    # -- clock, freshness, rotation ---------------------------------------------------------------
    def _tick(self) -> None:
        now = timeutil.now()
        if self.state.session.lang == "en":
            self.clock.setText(f"{now:%Y-%m-%d %a %H:%M:%S}")
        else:
            self.clock.setText(f"{now:%Y-%m-%d} 周{WEEKDAYS_ZH[now.weekday()]} {now:%H:%M:%S}")
        if self.last_data_at is None:
            self.fresh.setText("Loading data…" if self.state.session.lang == "en" else "数据加载中…")
            stale = False
        else:
            age = int(time.monotonic() - self.last_data_at)
            at = now - dt.timedelta(seconds=age)
            if self.state.session.lang == "en":
                self.fresh.setText(f"Data {at:%H:%M:%S}" + (f" ({age} s ago)" if age >= 5 else ""))
            else:
                self.fresh.setText(f"数据更新 {at:%H:%M:%S}" + (f"（{age}秒前）" if age >= 5 else ""))
            stale = age > STALE_AFTER_S
        if self.sync_online is False:  # the picture may lag the other centres: say so, in the warning colour
            self.fresh.setText(self.fresh.text() + (" · upstream offline" if self.state.session.lang == "en"
                                                    else " · 上游同步中断"))  # fmt: skip
            stale = True
        if self.fresh.property("stale") != stale:
            self.fresh.setProperty("stale", stale)
            self.fresh.style().unpolish(self.fresh)
            self.fresh.style().polish(self.fresh)
        was_takeover = self.rotation.takeover is not None
        self.rotation.tick(time.monotonic())
        if was_takeover and self.rotation.takeover is None:
            self._takeover_ended()
        self._show_mode()

    def set_sync_online(self, online: bool) -> None:
        """The sync worker's last round reached the upstream (True) or not (False)."""
        if online != self.sync_online:
            self.sync_online = online
            self._tick()

    def _show_mode(self) -> None:
        if self.state.session.lang == "en":
            theme = wall_rules.THEME_NAMES_EN.get(self.state.theme, self.state.theme)
            layout = wall_rules.LAYOUT_NAMES_EN.get(self.layout_name, self.layout_name)
            self.mode_label.setText(f"{theme} · {self.rotation.status_en} · layout: {layout}")
            return
        theme = wall_rules.THEME_NAMES_ZH.get(self.state.theme, self.state.theme)
        self.mode_label.setText(f"{theme} · {self.rotation.status_zh} · 布局：{self.layout_name}")

    # -- emergency takeover -----------------------------------------------------------------------
    def _on_new_emergencies(self, events: list) -> None:
        """Take the wall over for the newest one (drills too, marked 演练)."""
        ev = events[-1]
        self.take_over(int(ev["id"]))

    def take_over(self, event_id: int) -> None:
        conn = self.replica.reader()
        try:
            point = event_point(conn, event_id, mask=True)
        finally:
            conn.close()
        self.rotation.start_takeover(event_id, time.monotonic())
        if point is None:
            return
        en = self.state.session.lang == "en"
        drill = ("[DRILL] " if en else "【演练】") if point.get("drill_id") is not None else ""
        from widgets.ticker import item_text

        self.banner_text.setText(f"{'Emergency takeover' if en else '应急接管'} {drill}{item_text(point, self.state.session.lang)}")
        self._incident_layout(True)
        self.map.fly_to(point.get("lon"), point.get("lat"), 17, event_id)
        self._blinking = True
        self._flash.start(FLASH_MS)
        self._show_mode()

    def _flash_step(self) -> None:
        """Only the symbol flashes; the text holds steady."""
        self._flash_on = not self._flash_on
        self.banner_symbol.setStyleSheet("color: #ffffff;" if self._flash_on else "color: transparent;")

    def stop_blink(self) -> None:
        self._flash.stop()
        self._blinking = False
        self.banner_symbol.setStyleSheet("color: #ffffff;")

    def end_takeover(self) -> None:
        self.rotation.end_takeover(time.monotonic())
        self._takeover_ended()

    def _takeover_ended(self) -> None:
        self.stop_blink()
        self._incident_layout(False)
        self.map.run_js(land_bounds_js(self.home_bounds))
        self._show_mode()

    # -- wall control (written by the district console, read here) --------------------------------
    def _read_control(self, initial: bool = False) -> None:
        conn = self.replica.reader()
        try:
            control = wall_store.read_control(conn)
            layouts = wall_store.load_layouts(conn) if "layout" in control else {}
        finally:
            conn.close()
        changed = {k: v for k, (v, at) in control.items() if self._control_seen.get(k) != at}
        self._control_seen = {k: at for k, (_v, at) in control.items()}
        if initial:  # start-up: take the standing settings, not one-shot commands
            changed.pop("end_takeover", None)
            changed.pop("stop_blink", None)
        self.apply_control(changed, layouts)

    def apply_control(self, changed: dict[str, str | None], layouts: dict[str, dict] | None = None) -> None:
        now = time.monotonic()
        if "period_s" in changed and changed["period_s"]:
            try:
                self.rotation.set_period(float(changed["period_s"]))
            except ValueError:
                log.warning("wall control: bad period %r", changed["period_s"])
        if "rotation" in changed or "pinned_theme" in changed:
            mode = changed.get("rotation") or self.rotation.mode
            if mode == "paused":
                self.rotation.pause()
            elif mode == "pinned":
                theme = changed.get("pinned_theme") or self.rotation.current
                try:
                    self.rotation.pin(theme)
                except ValueError as exc:
                    log.warning("wall control: %s", exc)
            else:
                self.rotation.resume(now)
        if "layout" in changed and changed["layout"]:
            name = changed["layout"]
            spec = (layouts or {}).get(name) or wall_rules.PRESETS.get(name)
            if spec is not None:
                self.apply_layout(spec, name)
                if "themes" in spec:
                    self.rotation.set_themes(spec["themes"])
                if "period_s" in spec:
                    self.rotation.set_period(spec["period_s"])
        if "end_takeover" in changed and self.rotation.takeover is not None:
            self.end_takeover()
        if "stop_blink" in changed:
            self.stop_blink()
        self._show_mode()

    # -- texts (for the masking test) and shutdown -------------------------------------------------
    def visible_texts(self) -> list[str]:
        out = [w.text() for w in self.findChildren(QLabel)]
        out += [w.toolTip() for w in self.findChildren(QWidget) if w.toolTip()]
        out += self.ticker.texts()
        for chart in self.charts.charts().values():
            out += getattr(chart, "labels", [])
        return out

    def shutdown(self) -> None:
        self.controller.close()
        self._second.stop()
        self._kpi_timer.stop()
        self._flash.stop()
        self.ticker.stop()
        self.watcher.stop()
        self.sound.close()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.shutdown()
        super().closeEvent(event)


def wall_geometry(app, *, size: tuple[int, int] | None = None,
                  geometry: tuple[int, int, int, int] | None = None) -> tuple[QRect, bool]:
    """Where the wall goes and whether that is the whole desktop: ``--size`` (exact, at
    ``--geometry``'s position if given), else ``--geometry WxH+X+Y``, else all screens together."""
    if size:
        x, y = (geometry[2], geometry[3]) if geometry else (0, 0)
        return QRect(x, y, size[0], size[1]), False
    if geometry:
        w, h, x, y = geometry
        return QRect(x, y, w, h), False
    rect = QRect()
    for screen in app.screens():
        rect = rect.united(screen.geometry())
    return (rect if rect.isValid() else QRect(0, 0, 1920, 1080)), True


def create_wall(replica: Replica, state: AppState, args, app) -> WallWindow:
    """The wall window for ``onemap --wall`` (frameless, across all screens unless placed)."""
    rect, _whole = wall_geometry(app, size=args.size, geometry=getattr(args, "geometry", None))
    window = WallWindow(replica, state, tile_url=args.tile_url, geometry=rect)
    window.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
    window.setGeometry(rect)
    return window
