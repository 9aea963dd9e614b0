"""The three one-maps in the console: theme switcher, time window + playback bar, theme panels.

:func:`install_onemaps` is the one call the main window makes.  It
- puts a one-click theme switcher (联动指挥 | 楼宇经济 | 长江生态眼 | user themes ▾) in the header;
- wraps the map with a bar holding the shared time window (1 h / 24 h / 7 d / 30 d / custom) and
  the playback controls (day, speed, play/pause, position);
- replaces the right-hand panel with a stack: the event detail (linked command), the economy
  panel and the ecology panel, switched with the theme;
- binds ``AppState.theme_changed`` to the page (``onemap.setTheme``: layers toggle in the page,
  centre and zoom stay) and ``AppState.time_window_changed`` to the events layer and panels;
- raises ecology alerts as events in a worker at start and every few minutes (not for the wall).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from PySide6.QtCore import QDate, QDateTime, Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.playback import SPEEDS, Playback, events_in_window
from app.timewindow import PRESETS, TimeWindow
from db import themes as theme_store
from db.ecology import hour_of
from layers import economy as economy_layers
from layers import themes as map_themes
from layers.command import events_features
from widgets.flow_layout import FlowLayout
from widgets.workers import run_in_thread

log = logging.getLogger(__name__)
ALERT_SCAN_MS = 5 * 60 * 1000
ALERT_FIRST_SCAN_MS = 10_000
"""First scan 10 s after start (after the first screen has settled), then every 5 minutes."""
PLAYBACK_TICK_MS = 100


def _tr(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else zh


class ThemeSwitcher(QWidget):
    """One button per theme (checkable, exclusive) plus a menu for user themes."""

    def __init__(self, state, open_conn, lang: str, parent=None) -> None:
        super().__init__(parent)
        self.state, self.open_conn, self.lang = state, open_conn, lang
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QPushButton] = {}
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        for i, name in enumerate(map_themes.BUILTIN, start=1):
            t = map_themes.THEMES[name]
            b = QPushButton(t.title(lang).replace("一张图", ""))
            b.setObjectName("ThemeButton")
            b.setCheckable(True)
            b.setToolTip(_tr(f"切换到{t.title_zh}（Alt+{i}）", f"Switch to {t.title_en} (Alt+{i})", lang))
            b.setShortcut(f"Alt+{i}")
            b.clicked.connect(lambda _c=False, n=name: state.set_theme(n))
            self.group.addButton(b)
            self.buttons[name] = b
            lay.addWidget(b)
        self.more = QToolButton()
        self.more.setObjectName("ThemeMore")
        self.more.setText(_tr("我的主题 ▾", "My themes ▾", lang))
        self.more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self)
        self.more.setMenu(self.menu)
        self.menu.aboutToShow.connect(self._fill_menu)
        lay.addWidget(self.more)
        state.theme_changed.connect(self.show_theme)
        self.show_theme(state.theme)

    def show_theme(self, name: str) -> None:
        b = self.buttons.get(name)
        if b is not None:
            b.setChecked(True)
        else:  # a user theme: no built-in button is on
            self.group.setExclusive(False)
            for x in self.buttons.values():
                x.setChecked(False)
            self.group.setExclusive(True)

    def _fill_menu(self) -> None:
        self.menu.clear()
        conn = self.open_conn()
        try:
            users = map_themes.user_themes(conn)
        finally:
            conn.close()
        for name, t in users.items():
            act = self.menu.addAction(("● " if name == self.state.theme else "") + t.title_zh)
            act.triggered.connect(lambda _c=False, n=name: self.state.set_theme(n))
        if users:
            self.menu.addSeparator()
        self.menu.addAction(_tr("保存为我的主题…", "Save as my theme…", self.lang)).triggered.connect(
            lambda: self.parent_controller.save_theme_dialog() if hasattr(self, "parent_controller") else None
        )
        if users:
            delete = self.menu.addMenu(_tr("删除主题", "Delete theme", self.lang))
            for name in users:
                delete.addAction(name).triggered.connect(
                    lambda _c=False, n=name: self.parent_controller.delete_theme(n)
                    if hasattr(self, "parent_controller") else None
                )


class SaveThemeDialog(QDialog):
    """Choose a name, a base theme (legend and panel) and the layers of a user theme."""

    def __init__(self, lang: str, current: str, visible: list[str] | None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_tr("保存为我的主题", "Save as my theme", lang))
        self.name = QLineEdit()
        self.name.setMaxLength(40)
        self.name.setPlaceholderText(_tr("例如：沿江巡查", "e.g. Riverside patrol", lang))
        self.base = QComboBox()
        for n in map_themes.BUILTIN:
            self.base.addItem(map_themes.THEMES[n].title(lang), n)
        base = current if current in map_themes.BUILTIN else "command"
        self.base.setCurrentIndex(list(map_themes.BUILTIN).index(base))
        self.checks: dict[str, QCheckBox] = {}
        box = QWidget()
        bl = QVBoxLayout(box)
        bl.setContentsMargins(0, 0, 0, 0)
        on = set(visible or map_themes.THEMES[base].visible)
        for key, title in map_themes.layer_titles(lang).items():
            c = QCheckBox(title)
            c.setChecked(key in on)
            self.checks[key] = c
            bl.addWidget(c)
        form = QFormLayout(self)
        form.addRow(_tr("名称", "Name", lang), self.name)
        form.addRow(_tr("图例与面板", "Legend and panel", lang), self.base)
        form.addRow(_tr("图层", "Layers", lang), box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, str, list[str]]:
        return self.name.text().strip(), self.base.currentData(), [k for k, c in self.checks.items() if c.isChecked()]


class TimeBar(QWidget):
    """The shared time window and the playback controls."""

    def __init__(self, lang: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("TimeBar")
        self.lang = lang
        self.window = QComboBox()
        self.window.setObjectName("TimeWindowCombo")
        for key, (_span, zh, en) in PRESETS.items():
            self.window.addItem(en if lang == "en" else zh, key)
        self.start = QDateTimeEdit()
        self.end = QDateTimeEdit()
        for w in (self.start, self.end):
            w.setDisplayFormat("yyyy-MM-dd HH:mm")
            w.setCalendarPopup(True)
            w.setVisible(False)
        self.apply = QPushButton(_tr("应用", "Apply", lang))
        self.apply.setVisible(False)
        self.day = QDateEdit()
        self.day.setDisplayFormat("yyyy-MM-dd")
        self.day.setCalendarPopup(True)
        self.day.setToolTip(_tr("回放日期", "Day to replay", lang))
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(_tr(f"{s // 60} 分钟/秒", f"{s // 60} min/s", lang), s)
        self.speed.setCurrentIndex(2)
        self.play = QPushButton(_tr("▶ 回放", "▶ Play", lang))
        self.play.setObjectName("PlayButton")
        self.play.setCheckable(True)
        self.stop = QPushButton(_tr("■ 退出回放", "■ Stop", lang))
        self.stop.setEnabled(False)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 24 * 3600 - 1)
        self.slider.setMinimumWidth(120)
        self.clock = QLabel("")
        self.clock.setObjectName("HeaderClock")
        self.clock.setMinimumWidth(150)
        lay = FlowLayout(self, spacing=6)  # wraps onto a second row when the map is narrow
        lay.setContentsMargins(6, 3, 6, 3)
        policy = self.sizePolicy()
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        lay.addWidget(QLabel(_tr("时间窗", "Window", lang)))
        lay.addWidget(self.window)
        lay.addWidget(self.start)
        lay.addWidget(self.end)
        lay.addWidget(self.apply)
        lay.addWidget(QLabel("  " + _tr("回放", "Playback", lang)))
        lay.addWidget(self.day)
        lay.addWidget(self.speed)
        lay.addWidget(self.play)
        lay.addWidget(self.stop)
        lay.addWidget(self.slider)
        lay.addWidget(self.clock)


class OneMapsController:
    """Binds the theme state, the time window and playback to the map and the theme panels."""

    def __init__(self, window) -> None:
        from widgets.ecology_panel import EcologyPanel
        from widgets.economy_panel import EconomyPanel

        self.w = window
        self.state = window.state
        self.map = window.map
        self.replica = window.replica
        self.lang = lang = self.state.session.lang
        self.scope = self.state.session.street_scope
        self.switch_ms: list[float] = []
        self.playback: Playback | None = None
        self._play_t = 0.0
        self._metric = economy_layers.DEFAULT_METRIC
        self._heights = False
        self._eco_filter: list[dict] = []
        # header: theme switcher
        self.switcher = ThemeSwitcher(self.state, self.replica.reader, lang)
        self.switcher.parent_controller = self
        window.header.tools.insertWidget(0, self.switcher)
        # map + time bar
        split = window.splitter
        self.timebar = TimeBar(lang)
        holder = QWidget()
        hl = QVBoxLayout(holder)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.setSpacing(0)
        hl.addWidget(self.timebar)
        sizes = split.sizes()
        hl.addWidget(self.map, 1)  # takes the map out of the splitter
        split.insertWidget(1, holder)
        # right: stack of theme panels (the event detail panel first)
        old_panel = split.widget(2)
        self.stack = QStackedWidget()
        self.stack.addWidget(old_panel)
        split.insertWidget(2, self.stack)
        for i, f in enumerate((0, 1, 0)):
            split.setStretchFactor(i, f)
        split.setSizes(sizes)
        split.setCollapsible(2, False)
        self.economy = EconomyPanel(self.replica.reader, lang)
        self.ecology = EcologyPanel(self.replica.reader, lang)
        self.panels = {"command": old_panel,
                       "economy": window._panel(_tr("楼宇经济", "Building economy", lang), self.economy),
                       "ecology": window._panel(_tr("长江生态眼", "Yangtze ecology eye", lang), self.ecology)}  # fmt: skip
        self.stack.addWidget(self.panels["economy"])
        self.stack.addWidget(self.panels["ecology"])
        # bindings
        self.state.theme_changed.connect(self.on_theme)
        self.state.time_window_changed.connect(self.on_time_window)
        self.map.featureClicked.connect(self.on_feature)
        self.map.loaded.connect(self.on_map_loaded)
        self.economy.metricChanged.connect(self.set_metric)
        self.economy.heightsToggled.connect(self.set_heights)
        self.economy.filterChanged.connect(self.set_economy_filter)
        self.economy.buildingActivated.connect(lambda _i, lon, lat: self.map.fly_to(lon, lat, 17))
        self.ecology.stationActivated.connect(lambda _i, lon, lat: self.map.fly_to(lon, lat, 15))
        self.ecology.eventActivated.connect(self._open_event)
        tb = self.timebar
        tb.window.currentIndexChanged.connect(self._window_picked)
        tb.apply.clicked.connect(self._apply_custom)
        tb.play.toggled.connect(self._play_toggled)
        tb.stop.clicked.connect(self.stop_playback)
        tb.slider.sliderMoved.connect(self._seek)
        today = timeutil.now()
        tb.day.setDate(QDate(today.year, today.month, today.day))
        tb.start.setDateTime(QDateTime.currentDateTime().addDays(-1))
        tb.end.setDateTime(QDateTime.currentDateTime())
        self.timer = QTimer(window)
        self.timer.setInterval(PLAYBACK_TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.show_panel(self.state.theme)
        # ecology alerts → events (the wall is read-only)
        self.alert_timer = QTimer(window)
        if not self.state.session.read_only:
            self.alert_timer.setInterval(ALERT_SCAN_MS)
            self.alert_timer.timeout.connect(self.scan_alerts)
            self.alert_timer.start()
            self.first_scan = QTimer(window)  # dies with the window (a bare singleShot would not)
            self.first_scan.setSingleShot(True)
            self.first_scan.timeout.connect(self.scan_alerts)
            self.first_scan.start(ALERT_FIRST_SCAN_MS)

    # -- themes ---------------------------------------------------------------------------------
    def _theme(self, name: str):
        conn = self.replica.reader()
        try:
            return map_themes.get(name, conn)
        finally:
            conn.close()

    def show_panel(self, name: str) -> None:
        try:
            panel = self._theme(name).panel
        except ValueError:
            panel = "command"
        self.stack.setCurrentWidget(self.panels.get(panel, self.panels["command"]))
        try:
            t = self._theme(name)
            self.w.header.theme_label.setText(t.title(self.lang))
        except ValueError:
            pass

    def on_theme(self, name: str) -> None:
        t0 = time.perf_counter()
        self.show_panel(name)
        try:
            theme = self._theme(name)
        except ValueError as exc:
            self.w.statusBar().showMessage(str(exc), 8000)
            return
        if theme.user:  # the page may not know a theme saved after it was built
            self.map.add_theme(name, theme.client_config(self.lang))

        def done(res) -> None:
            ms = (time.perf_counter() - t0) * 1000
            self.switch_ms.append(ms)
            log.info("theme %s in %.0f ms (page %.0f ms)", name, ms, (res or {}).get("ms", -1))

        self.map.set_theme(name, done)

    def save_theme_dialog(self) -> None:
        def with_state(st) -> None:
            dlg = SaveThemeDialog(self.lang, self.state.theme, (st or {}).get("visible"), self.w)
            if dlg.exec() != QDialog.DialogCode.Accepted:
                return
            name, base, keys = dlg.values()
            try:
                theme_store.save_theme(self.replica, name, name, base, keys,
                                       known_layers=list(map_themes.layer_titles()), actor=self.state.session.user)  # fmt: skip
            except ValueError as exc:
                QMessageBox.warning(self.w, _tr("不能保存主题", "Cannot save the theme", self.lang), str(exc))
                return
            self.state.set_theme(name)
            if self.state.theme == name:
                self.on_theme(name)

        self.map.map_state(with_state)

    def delete_theme(self, name: str) -> None:
        theme_store.delete_theme(self.replica, name)
        if self.state.theme == name:
            self.state.set_theme("command")

    # -- map interplay ----------------------------------------------------------------------------
    def on_map_loaded(self, ok: bool) -> None:
        """A rebuilt page starts from the Python-side choices again."""
        if not ok:
            return
        if self._metric != economy_layers.DEFAULT_METRIC:
            self.set_metric(self._metric)
        if self._heights:
            self.set_heights(True)
        if self._eco_filter:
            for key in ("buildings", "building_dots", "building_heights"):
                self.map.set_filter(key, self._eco_filter)
        if self.state.time_window.key != "today":
            self.on_time_window(self.state.time_window)

    def set_metric(self, metric: str) -> None:
        self._metric = metric
        for key in ("buildings", "building_dots"):
            self.map.set_layer_style(key, {"fillBy": economy_layers.METRICS[metric]["fillBy"]})
        if self._theme(self.state.theme).legend == "economy":
            self.map.set_legend(economy_layers.legend(metric, self.lang))

    def set_heights(self, on: bool) -> None:
        self._heights = bool(on)
        self.map.set_layer_visible("building_heights", on)

    def set_economy_filter(self, flt) -> None:
        self._eco_filter = flt.map_filters()
        for key in ("buildings", "building_dots", "building_heights"):
            self.map.set_filter(key, self._eco_filter)

    def on_feature(self, key: str, fid: str) -> None:
        if key in ("buildings", "building_dots", "building_heights"):
            self.economy.show_building(int(fid))
        elif key == "eco_stations":
            self.ecology.select_station(int(fid))

    def _open_event(self, event_id: int) -> None:
        self.state.set_theme("command")
        self.state.select_event(event_id)

    # -- time window ------------------------------------------------------------------------------
    def _window_picked(self, _i: int) -> None:
        key = self.timebar.window.currentData()
        custom = key == "custom"
        for w in (self.timebar.start, self.timebar.end, self.timebar.apply):
            w.setVisible(custom)
        if not custom:
            self.state.set_time_window(TimeWindow(key))

    def _apply_custom(self) -> None:
        start = self.timebar.start.dateTime().toString("yyyy-MM-ddTHH:mm:ss")
        end = self.timebar.end.dateTime().toString("yyyy-MM-ddTHH:mm:ss")
        try:
            self.state.set_time_window(TimeWindow("custom", start, end))
        except ValueError as exc:
            QMessageBox.warning(self.w, _tr("时间窗无效", "Invalid time window", self.lang), str(exc))

    def on_time_window(self, window: TimeWindow) -> None:
        """Events layer, ecology chart and alert list follow the one time window."""
        start, end = window.resolve()
        scope = self.scope

        def job():
            conn = self.replica.reader()
            try:
                if start is None:
                    return events_features(conn, scope)
                return events_in_window(conn, start, end, scope)
            finally:
                conn.close()

        run_in_thread(job, on_result=lambda fc: self.map.set_layer_data("events", fc))
        if start is None:
            self.ecology.set_window(None, None)
        else:
            self.ecology.set_window(hour_of(start), hour_of(end) + 1)

    # -- playback ---------------------------------------------------------------------------------
    def start_playback(self, day: dt.date | None = None) -> Playback:
        qd = self.timebar.day.date()
        day = day or dt.date(qd.year(), qd.month(), qd.day())
        conn = self.replica.reader()
        try:
            self.playback = Playback(conn, day, self.scope)
        finally:
            conn.close()
        self.map.set_layer_data("events", {"type": "FeatureCollection", "features": []})
        self.map.page_rev = None  # live deltas pause while the day is replayed (reload_map resumes them)
        self._play_t = self.playback.start
        self.timebar.stop.setEnabled(True)
        return self.playback

    def _play_toggled(self, on: bool) -> None:
        if on:
            if self.playback is None:
                self.start_playback()
            self.timer.start()
            self.timebar.play.setText(_tr("⏸ 暂停", "⏸ Pause", self.lang))
        else:
            self.timer.stop()
            self.timebar.play.setText(_tr("▶ 回放", "▶ Play", self.lang))

    def _seek(self, pos: int) -> None:
        if self.playback is None:
            self.start_playback()
        self._play_t = self.playback.start + pos
        self._push_frame()

    def _tick(self) -> None:
        if self.playback is None:
            return
        speed = self.timebar.speed.currentData() or 900
        self._play_t += speed * PLAYBACK_TICK_MS / 1000
        if self._play_t >= self.playback.end:
            self._play_t = self.playback.end - 1
            self.timebar.play.setChecked(False)
        self._push_frame()

    def _push_frame(self) -> None:
        pb = self.playback
        delta = pb.frame(self._play_t)
        if delta:
            self.map.apply_delta(delta)
        self.timebar.slider.blockSignals(True)
        self.timebar.slider.setValue(int(self._play_t - pb.start))
        self.timebar.slider.blockSignals(False)
        self.timebar.clock.setText(f"{timeutil.epoch_to_iso(self._play_t)[5:16].replace('T', ' ')} · {pb.visible_count()}")

    def stop_playback(self) -> None:
        self.timer.stop()
        self.timebar.play.setChecked(False)
        self.playback = None
        self.timebar.stop.setEnabled(False)
        self.timebar.clock.setText("")
        self.w.reload_map()  # back to the live map (time window re-applied on load)

    # -- ecology alerts ---------------------------------------------------------------------------
    def scan_alerts(self) -> None:
        """Raise new ecology alerts as events (never in a headless screenshot run)."""
        from app.ecology_alerts import raise_alerts

        if getattr(self.w, "screenshot_mode", False):
            return

        def done(res) -> None:
            if res.created and shiboken_alive(self.w):
                self.w.statusBar().showMessage(
                    _tr(f"长江生态眼：新告警事件 {res.created} 件", f"Ecology eye: {res.created} new alert events",
                        self.lang), 10000)  # fmt: skip
                self.ecology.reload()
                self.w.watcher.check()

        run_in_thread(raise_alerts, self.replica, on_result=done,
                      on_error=lambda exc: log.warning("ecology alert scan failed: %s", exc))  # fmt: skip


def shiboken_alive(obj) -> bool:
    """False once the Qt object behind ``obj`` has been deleted (e.g. a closed window)."""
    from shiboken6 import isValid

    return isValid(obj)


def install_onemaps(window) -> OneMapsController:
    """Install the theme switcher, time bar and theme panels into ``window`` (MainWindow)."""
    return OneMapsController(window)
