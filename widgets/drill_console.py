"""Drills in the console: the scenario-clock controller, the run bar in the header, the map
watermark, the field-media tab of the detail panel, and the planner window — all installed by
:func:`install_drills` (one call in ``widgets/main_window.py``).

The clock runs in the coordinator's console (role ``drill``): the console that starts or resumes
a drill owns it, sends its due injects once a second (``app.drills.scheduler.tick``) and writes a
heartbeat every few seconds. When that console closes, its running drills are paused where they
stand; if it vanished without closing, the next coordinator console finds the stale heartbeat and
pauses the drill at its last heartbeat (``db.drills.pause_orphaned``). Other roles only see that
a drill runs (watermark, run bar), never its future injects.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from app import access, timeutil
from app.drills import clock, queries, scheduler
from db import drills as db_drills

log = logging.getLogger(__name__)
TICK_MS = 1000
HEARTBEAT_EVERY = 5  # ticks
SPEEDS = (0.5, 1.0, 2.0, 5.0, 10.0)


class DrillController(QObject):
    """Start / pause / resume / speed / stop, the inject ticker and the heartbeat (Qt glue over
    ``db.drills`` and ``app.drills``)."""

    changed = Signal()  # a drill's status or clock changed (views re-read ``active``)
    injected = Signal(list)  # [scheduler.Fired]
    error = Signal(str)

    def __init__(self, replica, session, parent=None, *, autostart: bool = True) -> None:
        super().__init__(parent)
        self.replica = replica
        self.session = session
        self.actor = access.actor_of(session)
        self.owned: set[int] = set()
        self.active: list[dict] = []
        self._ticks = 0
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.refresh()
        if self.coordinator:
            self._pause_orphans()
        if autostart:
            self.timer.start()

    @property
    def coordinator(self) -> bool:
        return queries.can_see_scenario(self.session)

    # -- reading ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        conn = self.replica.reader()
        try:
            self.active = queries.active_drills(conn)
        finally:
            conn.close()

    @property
    def running(self) -> bool:
        return any(d["status"] == "running" for d in self.active)

    def elapsed(self, drill: dict) -> float:
        return clock.elapsed(drill, timeutil.now())

    # -- run controls -------------------------------------------------------------------------------
    def _do(self, fn, *args, **kwargs) -> dict | None:
        if not self.coordinator:
            self.error.emit("只有演练协调角色可以控制演练 only the drill coordinator role runs drills")
            return None
        try:
            row = fn(self.replica, *args, actor=self.actor, **kwargs)
        except db_drills.DrillError as exc:
            self.error.emit(str(exc))
            return None
        self.refresh()
        self.changed.emit()
        return row

    def start(self, drill_id: int) -> dict | None:
        row = self._do(db_drills.start, drill_id)
        if row:
            self.owned.add(drill_id)
            self.tick()
        return row

    def pause(self, drill_id: int) -> dict | None:
        return self._do(db_drills.pause, drill_id)

    def resume(self, drill_id: int) -> dict | None:
        row = self._do(db_drills.resume, drill_id)
        if row:
            self.owned.add(drill_id)
        return row

    def set_speed(self, drill_id: int, speed: float) -> dict | None:
        return self._do(db_drills.set_speed, drill_id, speed)

    def stop(self, drill_id: int, reason: str | None = None) -> dict | None:
        row = self._do(db_drills.stop, drill_id, reason=reason)
        self.owned.discard(drill_id)
        return row

    # -- the ticker ---------------------------------------------------------------------------------
    def tick(self) -> list:
        """Send due injects of the drills this console owns; heartbeat; re-read the active drills."""
        self._ticks += 1
        fired = []
        before = [(d["id"], d["status"], d["speed"]) for d in self.active]
        self.refresh()
        for d in self.active:
            if d["id"] not in self.owned or d["status"] != "running":
                continue
            try:
                fired += scheduler.tick(self.replica, d["id"], actor=self.actor)
                if self._ticks % HEARTBEAT_EVERY == 0:
                    db_drills.heartbeat(self.replica, d["id"])
            except Exception as exc:  # noqa: BLE001 - a failed inject must not stop the clock
                log.exception("drill %s tick failed", d["id"])
                self.error.emit(f"注入下发失败 inject failed: {exc}")
        if fired:
            self.injected.emit(fired)
        after = [(d["id"], d["status"], d["speed"]) for d in self.active]
        if fired or before != after or self.active:
            self.changed.emit()
        return fired

    def _pause_orphans(self) -> None:
        for d in list(self.active):
            if d["status"] == "running" and clock.is_orphaned(d):
                db_drills.pause_orphaned(self.replica, d["id"], actor=self.actor)
        self.refresh()

    def shutdown(self) -> None:
        """The coordinator's console closes: its running drills pause where they stand."""
        self.timer.stop()
        for drill_id in list(self.owned):
            try:
                db_drills.pause(self.replica, drill_id, actor=self.actor, note="协调台关闭，演练自动暂停 console closed")
            except db_drills.DrillError:
                pass
        self.owned.clear()


class DrillRunBar(QWidget):
    """Header strip: which drill runs and its scenario clock; run controls for the coordinator."""

    def __init__(self, controller: DrillController, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("DrillRunBar")
        self.c = controller
        self.lang = getattr(controller.session, "lang", "zh")
        en = self.lang == "en"
        self.label = QLabel("")
        self.label.setObjectName("drillClock")
        self.pause_button = QPushButton("Pause" if en else "暂停")
        self.resume_button = QPushButton("Resume" if en else "继续")
        self.stop_button = QPushButton("Stop" if en else "结束")
        self.speed = QComboBox()
        self.speed.setObjectName("drillSpeed")
        for s in SPEEDS:
            self.speed.addItem(f"×{s:g}", s)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        for w in (self.speed, self.pause_button, self.resume_button, self.stop_button):
            lay.addWidget(w)
            w.setVisible(controller.coordinator)
        self.pause_button.clicked.connect(lambda: self._on(self.c.pause))
        self.resume_button.clicked.connect(lambda: self._on(self.c.resume))
        self.stop_button.clicked.connect(self._stop)
        self.speed.activated.connect(lambda i: self._on(lambda d: self.c.set_speed(d, self.speed.itemData(i))))
        controller.changed.connect(self.update_view)
        self.update_view()

    def current(self) -> dict | None:
        return self.c.active[0] if self.c.active else None

    def _on(self, fn) -> None:
        d = self.current()
        if d is not None:
            fn(d["id"])

    def _stop(self) -> None:
        d = self.current()
        if d is None:
            return
        if self.lang == "en":
            title, text = "Stop drill", f"Stop drill #{d['id']} “{d['title']}”? Pending injects will not be sent."
        else:
            title, text = "结束演练", f"结束演练 #{d['id']}「{d['title']}」？未下发的注入将不再下发。"
        if QMessageBox.question(self, title, text) != QMessageBox.StandardButton.Yes:
            return
        self.c.stop(d["id"])

    def update_view(self) -> None:
        d = self.current()
        self.setVisible(d is not None)
        if d is None:
            return
        if self.lang == "en":
            word = "drill running" if d["status"] == "running" else "drill paused"
            self.label.setText(f"[DRILL] {word} #{d['id']} {d['title'][:14]} · scenario time "
                               f"{clock.fmt(self.c.elapsed(d))} ×{d['speed']:g}")  # fmt: skip
        else:
            word = "演练进行中" if d["status"] == "running" else "演练已暂停"
            self.label.setText(f"【演练】{word} #{d['id']} {d['title'][:14]} · 场景时间 {clock.fmt(self.c.elapsed(d))}"
                               f" ×{d['speed']:g}")  # fmt: skip
        self.pause_button.setEnabled(d["status"] == "running")
        self.resume_button.setEnabled(d["status"] == "paused")
        i = self.speed.findData(float(d["speed"]))
        if i >= 0 and i != self.speed.currentIndex():
            self.speed.setCurrentIndex(i)


def install_drills(window) -> DrillController:
    """Everything drills add to the main window, in one call: the 演练 header button (planner),
    the run bar, the map watermark, the ticker and the field-media tab of the detail panel."""
    from widgets.drill_media import FieldMediaPanel
    from widgets.drill_planner import DrillPlannerWindow

    session = window.state.session
    c = DrillController(window.replica, session, window)
    window.drills = c
    window.drill_bar = DrillRunBar(c)
    window.header.tools.insertWidget(0, window.drill_bar)
    button = QPushButton("演练" if session.lang == "zh" else "Drills")
    button.setObjectName("DrillButton")
    button.setToolTip("演练计划、脚本、运行与评估报告" if session.lang == "zh" else "Drill plans, scripts, runs and reports")
    window.header.tools.insertWidget(1, button)
    window.drill_planner = None

    def open_planner():
        if window.drill_planner is None:
            window.drill_planner = DrillPlannerWindow(window.replica, session, controller=c, map_view=window.map,
                                                      parent=window)  # fmt: skip
        window.drill_planner.show()
        window.drill_planner.raise_()
        return window.drill_planner

    window.open_drill_planner = open_planner
    button.clicked.connect(open_planner)

    def watermark():
        if window.map_loaded:
            window.map.set_drill_watermark(bool(c.active))

    def on_injected(_fired):
        window.queue.reload_now()
        window.watcher.check()

    c.changed.connect(watermark)
    c.injected.connect(on_injected)
    c.error.connect(lambda text: window.statusBar().showMessage(text, 8000))
    window.map.loaded.connect(lambda ok: ok and watermark())
    media = FieldMediaPanel(window.replica, lang=session.lang, actor=access.actor_of(session),
                            can_add=session.role != "wall")  # fmt: skip
    window.detail.tabs.addTab(media, "现场音视频" if session.lang == "zh" else "Field media")
    window.field_media = media
    window.state.event_selected.connect(media.show_event)
    orig_shutdown = window.shutdown

    def shutdown():
        c.shutdown()
        orig_shutdown()

    window.shutdown = shutdown
    return c
