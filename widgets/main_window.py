"""Main window: assembly only. Header, event queue, map and event detail, bound to AppState.

Issue 4 wiring: the header's 数据 menu opens 导入… (Ctrl+I), 导出… (Ctrl+Shift+E), 隔离区 and
合并建议 (one non-modal window, two tabs) and 历史查询 (Ctrl+H; also the queue's 历史查询 button).
Import, quarantine and merge suggestions are the district centre's; every role but the wall may
export and search history (the role rules are enforced below the UI).

Issue 3 wiring: the detail panel acts through one ``EventService`` for the session; after a
commit the queue reloads at once and the map gets its delta (no wait for the watcher's poll);
the queue's bulk dispatch opens ``BulkDispatchDialog``; new emergency events sound the alert
(mutable in the header); the header opens the shift handover log.
"""

from __future__ import annotations

import datetime as dt
import logging

from PySide6.QtCore import QLocale, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import panel_data, timeutil
from app.linkage import linkage_stats
from app.services import EventService
from app.state import AppState
from db.replica import Replica
from layers import command as command_layers
from widgets.alert_sound import AlertSound, EmergencyAlerter
from widgets.dispatch_dialog import BulkDispatchDialog
from widgets.drill_console import install_drills
from widgets.event_detail import EventDetailPanel
from widgets.event_queue import EventQueuePanel
from widgets.flow_layout import flow_container
from widgets.map_view import MapView
from widgets.replica_watcher import ReplicaWatcher

log = logging.getLogger(__name__)
WEEKDAYS_ZH = "一二三四五六日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ROLE_TEXT_ZH = {"district": "区指挥中心", "street": "街道指挥中心", "department": "部门", "drill": "演练协调", "wall": "大屏"}
ROLE_TEXT_EN = {"district": "District command", "street": "Street command", "department": "Department",
                "drill": "Drill coordination", "wall": "Video wall"}


def tr(zh: str, en: str, lang: str) -> str:
    """``en`` for an English session, else ``zh``."""
    return en if lang == "en" else zh


def _plain(text: str = "", name: str | None = None) -> QLabel:
    lab = QLabel(text)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    if name:
        lab.setObjectName(name)
    return lab


def _scope_name(replica: Replica, state: AppState) -> str | None:
    """The session's street or department name (``app.panel_data.scope_name``)."""
    session = state.session
    conn = replica.reader()
    try:
        return panel_data.scope_name(conn, session.role, session.scope, session.lang)
    finally:
        conn.close()


class HeaderBar(QWidget):
    """Title, role, demo badge, data freshness and the clock (yyyy-MM-dd 周X HH:mm:ss)."""

    def __init__(self, state: AppState, *, demo: bool, scope_name: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("HeaderBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        zh = state.session.lang == "zh"
        self.lang = state.session.lang
        self.title = _plain("崇川区 · 一张图指挥台" if zh else "Chongchuan · OneMap Console", "HeaderTitle")
        self.theme_label = _plain("联动指挥一张图" if zh else "Linked command", "HeaderRole")
        role = state.session.role
        scope = state.session.scope
        role_text = ROLE_TEXT_EN if self.lang == "en" else ROLE_TEXT_ZH
        who = f" · {state.session.user}" if state.session.user else ""
        where = f" · {scope_name or scope}" if scope else ""  # the street's / department's name, not its code
        self.role = _plain(f"{role_text.get(role, role)}{where}{who}", "HeaderRole")
        if scope and scope_name:
            self.role.setToolTip(scope)
        self.badge = _plain("演示数据" if zh else "DEMO DATA", "DemoBadge")
        self.badge.setVisible(demo)
        self.freshness = _plain("", "HeaderFreshness")
        self.clock = _plain("", "HeaderClock")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 6, 12, 6)
        outer.setSpacing(4)
        lay = QHBoxLayout()
        lay.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(lay)
        self._row, self._second_row = lay, QHBoxLayout()
        outer.addLayout(self._second_row)
        lay.addWidget(self.title)
        lay.addSpacing(16)
        lay.addWidget(self.theme_label)
        lay.addStretch(1)
        lay.addSpacing(12)
        # the tool buttons wrap onto a second row on narrow screens (1366/1600 px desktops)
        self.tools_box, self.tools = flow_container(align_right=True)
        self.tools_box.setObjectName("HeaderTools")
        lay.addWidget(self.tools_box, 1)
        self._tools_at = lay.indexOf(self.tools_box)
        lay.removeWidget(self.tools_box)  # start in the second row: the narrowest minimum until placed
        self._second_row.addWidget(self.tools_box, 1)
        lay.addSpacing(12)
        lay.addWidget(self.badge)
        lay.addSpacing(12)
        lay.addWidget(self.role)
        lay.addSpacing(12)
        lay.addWidget(self.freshness)
        lay.addSpacing(12)
        lay.addWidget(self.clock)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.tick)
        self._timer.start(1000)
        self.tick()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        """The tool buttons sit in the title row when it has room for all of them in one line,
        else in a second row of their own (1366/1600/1920-px desktops); they wrap from there."""
        super().resizeEvent(event)
        self._place_tools()

    def _place_tools(self) -> None:
        m = self.layout().contentsMargins()
        others = sum(self._row.itemAt(i).sizeHint().width() for i in range(self._row.count())
                     if self._row.itemAt(i).widget() is not self.tools_box)  # fmt: skip
        spacing = self._row.spacing() * max(0, self._row.count() - 1)
        fits = others + spacing + self.tools.sizeHint().width() <= self.width() - m.left() - m.right()
        in_row = self._row.indexOf(self.tools_box) >= 0
        if fits and not in_row:
            self._second_row.removeWidget(self.tools_box)
            self._row.insertWidget(self._tools_at, self.tools_box, 1)
        elif not fits and in_row:
            self._row.removeWidget(self.tools_box)
            self._second_row.addWidget(self.tools_box, 1)

    def tick(self) -> None:
        """The clock runs in Asia/Shanghai whatever the machine's time zone."""
        now = timeutil.now()
        if self.lang == "en":
            self.clock.setText(f"{now:%Y-%m-%d} {WEEKDAYS_EN[now.weekday()]} {now:%H:%M:%S}")
        else:
            self.clock.setText(f"{now:%Y-%m-%d} 周{WEEKDAYS_ZH[now.weekday()]} {now:%H:%M:%S}")

    def mark_fresh(self) -> None:
        self.freshness.setText(tr("数据更新 ", "Data updated ", self.lang) + f"{timeutil.now():%H:%M:%S}")


class MainWindow(QMainWindow):
    """The desktop console: queue | map | detail."""

    mapReady = Signal()

    def __init__(self, replica: Replica, state: AppState, *, tile_url: str | None = None) -> None:
        super().__init__()
        self.replica = replica
        self.state = state
        self.tile_url = tile_url
        self._map_loaded = False
        self._own_commit = False
        self.setWindowTitle("一张图指挥台 OneMap Console — 崇川区")
        self.setLocale(QLocale(QLocale.Language.Chinese, QLocale.Country.China))
        session = state.session
        scope = session.street_scope
        self.service = EventService(replica, session)
        self.header = HeaderBar(state, demo=replica.meta("demo") == "1", scope_name=_scope_name(replica, state))
        self.watcher = ReplicaWatcher(replica, parent=self)
        assignee = session.scope if session.role == "department" else None
        self.queue = EventQueuePanel(replica.reader, scope_street=scope, watcher=self.watcher, assignee=assignee,
                                    lang=session.lang)
        self.queue.set_dark_theme(True)
        self.queue.set_bulk_dispatch_allowed(session.role in ("district", "street", "drill"))
        if assignee:  # a liaison's work is dispatched already: start on 办理中
            self.queue.set_filter(self.queue.filter().with_(tab="open"))
        self.map = MapView()
        self.detail = EventDetailPanel(replica, session, service=self.service, lang=session.lang)
        self.sound = AlertSound(self)
        self.alerter = EmergencyAlerter(replica, session, self.sound, self)
        self.mute_button = QToolButton()
        self.mute_button.setObjectName("MuteButton")
        self.mute_button.setCheckable(True)
        lang = session.lang
        self.mute_button.setToolTip(tr("新紧急事件提示音：开 / 静音（Ctrl+M）",
                                       "Sound for new emergency events: on / muted (Ctrl+M)", lang))
        self.mute_button.setChecked(self.sound.muted)
        self.mute_button.toggled.connect(self.sound.set_muted)
        self.sound.mutedChanged.connect(self._show_mute)
        self._show_mute(self.sound.muted)
        self.handover_button = QPushButton(tr("交接班  Ctrl+J", "Handover  Ctrl+J", lang))
        self.handover_button.setObjectName("HandoverButton")
        self.handover_button.setToolTip(tr("交接班记录：本班情况与遗留事项",
                                           "Shift handover: this shift's situation and open items", lang))
        self.handover_button.clicked.connect(self.open_handover)
        self.header.tools.addWidget(self.handover_button)
        self.header.tools.addWidget(self.mute_button)
        for keys, slot in (("Ctrl+M", self.mute_button.toggle), ("Ctrl+J", self.open_handover)):
            QShortcut(QKeySequence(keys), self).activated.connect(slot)
        self._build_data_menu(session)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._panel("事件队列" if state.session.lang == "zh" else "Event queue", self.queue))
        split.addWidget(self.map)
        split.addWidget(self._panel("事件详情" if state.session.lang == "zh" else "Event detail", self.detail))
        # spare width goes to the map; the side panels keep their working width
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([580, 900, 440])
        split.setChildrenCollapsible(False)
        self.splitter = split
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.header)
        lay.addWidget(split, 1)
        self.setCentralWidget(central)
        from widgets.onemaps import install_onemaps  # issue 5: theme switcher, time bar, theme panels

        self.onemaps = install_onemaps(self)
        self.statusBar().showMessage(tr("副本 ", "Replica ", lang) + f"{replica.path}")
        self.linkage_label = _plain("", "LinkageReadout")
        self.statusBar().addPermanentWidget(self.linkage_label)
        self._linkage_timer = QTimer(self)  # at most one recount every 5 s
        self._linkage_timer.setSingleShot(True)
        self._linkage_timer.setInterval(5000)
        self._linkage_timer.timeout.connect(self.update_linkage)

        # bindings: views → state → views
        self.queue.eventSelected.connect(state.select_event)
        self.map.eventClicked.connect(state.select_event)
        self.map.gridClicked.connect(state.select_grid)
        state.event_selected.connect(self._on_event_selected)
        self.map.loaded.connect(self._on_map_loaded)
        self.map.buildFailed.connect(self._on_error)
        self.watcher.changed.connect(self._on_replica_changed)
        self.detail.actionCommitted.connect(self._on_action_committed)
        self.queue.bulkDispatchRequested.connect(self.open_bulk_dispatch)
        self.queue.historySearchRequested.connect(self.open_history)
        self.alerter.newEmergencies.connect(self._on_new_emergencies)
        self.header.mark_fresh()
        self.update_linkage()
        install_drills(self)  # issue 7: planner, run bar, watermark, ticker, field media
        self.reload_map()
        from widgets.robot_panel import install_robot_panel  # issue 8: 智能预警 dock

        install_robot_panel(self)

    def _panel(self, title: str, body: QWidget) -> QWidget:
        box = QWidget()
        box.setObjectName("Panel")
        box.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        lay = QVBoxLayout(box)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.addWidget(_plain(title, "PanelTitle"))
        lay.addWidget(body, 1)
        return box

    def shutdown(self) -> None:
        """Stop timers and background readers before the replica closes."""
        running = [d for d in (self.import_dialog, self.export_dialog) if d is not None and d.running]
        for d in running:
            d.task.cancel()  # the worker stops at its next check (after a whole chunk at most)
        if running:  # let it stop before the replica closes: a chunk commits in about 0.5 s
            from PySide6.QtCore import QThreadPool

            QThreadPool.globalInstance().waitForDone(10_000)
        self.watcher.stop()
        self.queue.shutdown()
        self.detail.shutdown()
        self.sound.close()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.shutdown()
        super().closeEvent(event)

    # -- map --------------------------------------------------------------------------------
    def reload_map(self) -> None:
        """Build the map page in a worker (one read snapshot) and load it."""
        self.map.rebuild(
            self.replica.reader,
            theme=self.state.theme,
            scope=self.state.session.street_scope,
            tile_url=self.tile_url,
            lang=self.state.session.lang,
        )

    def _on_error(self, message: str) -> None:
        log.error("map page failed: %s", message)
        self.statusBar().showMessage(f"地图加载失败：{message}")

    def _on_map_loaded(self, ok: bool) -> None:
        self._map_loaded = ok
        if ok:
            self.mapReady.emit()

    @property
    def map_loaded(self) -> bool:
        return self._map_loaded

    # -- live refresh -------------------------------------------------------------------------
    def update_linkage(self) -> None:
        """联动处置率 over the last 30 days (whistled events, drills excluded), in the status bar."""
        since = timeutil.to_iso(timeutil.now() - dt.timedelta(days=30))
        conn = self.replica.reader()
        try:
            s = linkage_stats(conn, since=since, street=self.state.session.street_scope)
        finally:
            conn.close()
        if self.state.session.lang == "en":
            rate = "— (no whistles in 30 days)" if s.rate is None else f"{s.rate:.0%} ({s.linked}/{s.whistled})"
            self.linkage_label.setText(f"Linked handling rate · 30 days {rate} · late check-ins {s.late_check_ins}")
            return
        rate = "—（近30天无吹哨）" if s.rate is None else f"{s.rate:.0%}（{s.linked}/{s.whistled}）"
        self.linkage_label.setText(f"联动处置率·近30天 {rate} · 迟到报到 {s.late_check_ins}")

    def _on_replica_changed(self) -> None:
        # the queue panel listens to the same watcher and reloads itself
        self.header.mark_fresh()
        if not self._linkage_timer.isActive():
            self._linkage_timer.start()
        self._push_map_delta()
        if not self._own_commit:  # the panel has just reloaded after its own write
            self.detail.refresh()
        self.alerter.check()

    def _push_map_delta(self) -> None:
        if not self._map_loaded or self.map.page_rev is None:
            return
        conn = self.replica.reader()
        try:
            start, end = self.state.time_window.resolve()  # a chosen window: only its events come and go
            window = (start, end) if start is not None else None
            delta, rev = command_layers.build_delta(conn, self.map.page_rev, scope=self.state.session.street_scope,
                                                    window=window)  # fmt: skip
        finally:
            conn.close()
        self.map.page_rev = rev
        if delta:
            self.map.apply_delta(delta)

    def _on_event_selected(self, event_id: int | None) -> None:
        self.detail.show_event(event_id)
        ev = self.detail.current
        if ev and ev.get("lon") is not None:
            self.map.fly_to(ev["lon"], ev["lat"], 17, event_id)
        if event_id is not None:
            self.queue.select_event(event_id)

    # -- actions --------------------------------------------------------------------------------
    def _on_action_committed(self, _event_id: int, _action: str) -> None:
        """Our own write: refresh the queue now and push the map delta (don't wait for the poll)."""
        self.queue.reload_now()
        self._own_commit = True
        try:
            self.watcher.check()
        finally:
            self._own_commit = False

    def open_bulk_dispatch(self, rows: list) -> BulkDispatchDialog:
        dialog = BulkDispatchDialog(self.replica, self.service, rows, self, lang=self.state.session.lang)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.dispatched.connect(lambda _results: (self.queue.reload_now(), self.watcher.check()))
        dialog.open()
        return dialog

    def open_handover(self):
        from widgets.handover import HandoverDialog

        dialog = HandoverDialog(self.replica, self.state.session, self.service, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # -- data: import, export, quarantine, merge suggestions, history (issue 4) ----------------
    def _build_data_menu(self, session) -> None:
        role = session.role
        self.can_import = role == "district"
        self.can_export = role != "wall"
        self.can_search_history = role != "wall"
        self.import_dialog = None
        self.export_dialog = None
        self.quarantine_window: QDialog | None = None
        self.quarantine_panel = None
        self.history_dialog = None
        self.queue.set_history_search_allowed(self.can_search_history)
        lang = session.lang
        self.data_menu = QMenu(tr("数据", "Data", lang), self)
        self.data_menu.setObjectName("DataMenu")
        self.data_actions = {}
        entries = (
            ("import", tr("导入…", "Import…", lang), "Ctrl+I", self.open_import, self.can_import),
            ("export", tr("导出…", "Export…", lang), "Ctrl+Shift+E", self.open_export, self.can_export),
            (None, None, None, None, self.can_import),
            ("quarantine", tr("隔离区", "Quarantine", lang), None, self.open_quarantine, self.can_import),
            ("merge", tr("合并建议", "Merge suggestions", lang), None, self.open_merge_suggestions, self.can_import),
            (None, None, None, None, self.can_search_history),
            ("history", tr("历史查询（电话 / 地址）…", "History search (phone / address)…", lang), "Ctrl+H",
             self.open_history, self.can_search_history),
        )
        for key, text, keys, slot, allowed in entries:
            if not allowed:
                continue
            if key is None:
                self.data_menu.addSeparator()
                continue
            act = self.data_menu.addAction(text)
            act.setObjectName(f"dataAction_{key}")
            act.triggered.connect(lambda _c=False, f=slot: f())
            if keys:
                act.setShortcut(QKeySequence(keys))
                act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
                self.addAction(act)  # the shortcut works while the menu is closed
            self.data_actions[key] = act
        self.data_button = QToolButton()
        self.data_button.setObjectName("DataButton")
        self.data_button.setText(tr("数据 ▾", "Data ▾", lang))
        self.data_button.setToolTip(tr("数据导入、导出、隔离区、合并建议与历史查询",
                                       "Data import, export, quarantine, merge suggestions and history search", lang))
        self.data_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.data_button.setMenu(self.data_menu)
        self.data_button.setVisible(bool(self.data_actions))
        self.header.tools.insertWidget(0, self.data_button)

    def _after_data_write(self) -> None:
        """An import, resubmission or merge committed: refresh the queue and the map now."""
        self.queue.reload_now()
        self.watcher.check()
        self.detail.refresh()

    def _raise(self, dialog: QDialog) -> QDialog:
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def open_import(self):
        if not self.can_import:
            return None
        if self.import_dialog is None:
            from widgets.import_dialog import ImportDialog

            self.import_dialog = ImportDialog(self.replica, self.service.actor, self, lang=self.state.session.lang)
            self.import_dialog.imported.connect(lambda _r: self._after_data_write())
            self.import_dialog.openQuarantine.connect(self.open_quarantine)
        return self._raise(self.import_dialog)

    def open_export(self):
        if not self.can_export:
            return None
        if self.export_dialog is None:
            from widgets.export_dialog import ExportDialog

            self.export_dialog = ExportDialog(self.replica, self.state.session, self)
            done = tr("已导出：", "Exported: ", self.state.session.lang)
            self.export_dialog.exported.connect(lambda r: self.statusBar().showMessage(f"{done}{r.path}", 10000))
        return self._raise(self.export_dialog)

    def open_quarantine(self, tab: str = "quarantine"):
        if not self.can_import:
            return None
        if self.quarantine_window is None:
            from widgets.quarantine_panel import QuarantinePanel

            win = QDialog(self)
            win.setObjectName("QuarantineWindow")
            win.setWindowTitle(tr("隔离区与合并建议 — 一张图指挥台", "Quarantine and merge suggestions — OneMap Console",
                                  self.state.session.lang))  # fmt: skip
            win.resize(1280, 680)
            panel = QuarantinePanel(self.replica, self.service, win, watcher=self.watcher)
            panel.eventSelected.connect(self.state.select_event)
            panel.resubmitted.connect(lambda _r: self._after_data_write())
            panel.merge.merged.connect(lambda _e: self._after_data_write())
            lay = QVBoxLayout(win)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(panel)
            self.quarantine_window, self.quarantine_panel = win, panel
        self.quarantine_panel.show_tab(tab)
        return self._raise(self.quarantine_window)

    def open_merge_suggestions(self):
        return self.open_quarantine("merge")

    def open_history(self, text: str = ""):
        if not self.can_search_history:
            return None
        if self.history_dialog is None:
            from widgets.history_search import HistorySearchDialog

            self.history_dialog = HistorySearchDialog(self.replica, self.state.session, self)
            self.history_dialog.eventSelected.connect(self.state.select_event)
        dialog = self._raise(self.history_dialog)
        if text:
            self.history_dialog.set_query(text)
            self.history_dialog.search()
        self.history_dialog.focus_query()
        return dialog

    def _show_mute(self, muted: bool) -> None:
        self.mute_button.blockSignals(True)
        self.mute_button.setChecked(muted)
        self.mute_button.blockSignals(False)
        if self.state.session.lang == "en":
            self.mute_button.setText("Sound muted" if muted else "Sound on")
            return
        self.mute_button.setText("提示音 已静音" if muted else "提示音 开")

    def _on_new_emergencies(self, events: list) -> None:
        first = events[-1]
        if self.state.session.lang == "en":
            tag = "[Drill] " if first.get("drill_id") is not None else ""
            more = f" and {len(events) - 1} more" if len(events) > 1 else ""
            self.statusBar().showMessage(f"New emergency #{first['id']} {tag}{first['title']}{more}", 15000)
            return
        tag = "【演练】" if first.get("drill_id") is not None else ""
        more = f" 等 {len(events)} 件" if len(events) > 1 else ""
        self.statusBar().showMessage(f"新紧急事件 #{first['id']} {tag}{first['title']}{more}", 15000)
