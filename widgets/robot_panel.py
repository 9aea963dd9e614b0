"""智能预警 (grid robot) panel: the open warnings by severity, one warning's evidence, Accept and
Dismiss, per-rule precision, and the robot's periodic pass.

- The list shows open warnings most severe first (Ⅰ → Ⅳ, with the level in words and the national
  warning colours). Selecting one shows its explanation, suggested action and evidence, and emits
  :attr:`RobotPanel.evidenceReady` with a GeoJSON FeatureCollection for the map.
- 采纳 turns the warning into an event in the closed loop (``app.robot.views.accept``); 驳回 needs a
  reason typed into the line next to it. Both run in a worker; the role rules are enforced below.
- A pass runs every ``interval_s`` seconds (default 5 min) and on 立即研判, always in a worker.

:func:`install_robot_panel` builds the panel as a dock of the main window and wires it to the
map (evidence overlay from ``resources/web/robot_overlay.js``), the event selection and the
replica watcher — one call from ``MainWindow``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.robot import engine, views
from app.robot.base import MAX_FINDINGS
from layers.base import json_for_html
from layers.robot import SEVERITY_COLOURS, evidence_features
from widgets.intake_common import MessageLine, RowsModel, human_error, plain, row_table
from widgets.workers import Worker, run_in_thread

log = logging.getLogger(__name__)
OVERLAY_JS = Path(__file__).resolve().parent.parent / "resources" / "web" / "robot_overlay.js"
COLUMNS = [("severity", "级别"), ("rule", "规则"), ("scope", "范围"), ("explanation", "说明"), ("updated", "更新")]
COLUMNS_EN = [("severity", "Level"), ("rule", "Rule"), ("scope", "Scope"), ("explanation", "Explanation"),
              ("updated", "Updated")]  # fmt: skip


def tr(zh: str, en: str, lang: str) -> str:
    """``en`` for an English session, else ``zh``."""
    return en if lang == "en" else zh


class WarningsModel(RowsModel):
    COLUMNS = COLUMNS

    def __init__(self, grid_names: dict | None = None, parent=None, lang: str = "zh") -> None:
        super().__init__(parent)
        self.grid_names = grid_names or {}
        self.lang = lang
        if lang == "en":
            self.COLUMNS = COLUMNS_EN

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        w = self.row_data(index.row())
        if w is None:
            return None
        key = COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "severity":
                return w.get("severity_en", w["severity_zh"]) if self.lang == "en" else w["severity_zh"]
            if key == "rule":
                return w.get("rule_en", w["rule_zh"]) if self.lang == "en" else w["rule_zh"]
            if key == "scope":
                g = w["scope"]["grid"]
                return self.grid_names.get(g, g) if g else (w["scope"]["street"] or tr("全区", "District", self.lang))
            if key == "explanation":
                return w["explanation_zh"]
            if key == "updated":
                return timeutil.display(w["updated_at"])[5:]
        if role == Qt.ItemDataRole.ForegroundRole and key == "severity":
            return QColor(SEVERITY_COLOURS.get(w["severity"], "#ffffff"))
        if role == Qt.ItemDataRole.ToolTipRole and key == "explanation":
            return w["explanation_zh"]
        return None


class RobotPanel(QWidget):
    """The 智能预警 panel. Signals: ``evidenceReady(dict)`` (FeatureCollection for the map),
    ``eventRequested(int)`` (show an evidence event), ``eventCreated(int)`` (after 采纳),
    ``passFinished(object)`` (the :class:`~app.robot.engine.PassResult`)."""

    evidenceReady = Signal(dict)  # noqa: N815
    eventRequested = Signal(int)  # noqa: N815
    eventCreated = Signal(int)  # noqa: N815
    passFinished = Signal(object)  # noqa: N815
    openCountChanged = Signal(int)  # noqa: N815

    def __init__(self, replica, session, parent=None, *, interval_s: int = engine.DEFAULT_INTERVAL_S,
                 autorun: bool = True, now=None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("RobotPanel")
        self.now = now  # a clock for the passes (tests); None: the real time
        self.app_state = None  # the main window's AppState (map grid clicks reach the care-list forms)
        self.replica = replica
        self.session = session
        self.current: dict | None = None
        self.details: dict | None = None
        self._pass_worker: Worker | None = None
        self._action_worker: Worker | None = None
        conn = replica.reader()
        try:
            names = {r[0]: f"{r[2] or ''}{r[1]}" for r in conn.execute(
                "SELECT g.id, g.name, s.name FROM grids g LEFT JOIN streets s ON s.code = g.street_code")}  # fmt: skip
        finally:
            conn.close()
        lang = self.lang = getattr(session, "lang", "zh")
        self.model = WarningsModel(names, self, lang)
        self.table = row_table(self, "RobotWarnings", self.model)
        hh = self.table.horizontalHeader()
        for col, width in ((0, 56), (1, 92), (2, 190), (4, 96)):
            hh.resizeSection(col, width)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._on_row)

        self.run_button = QPushButton(tr("立即研判", "Run now", lang))
        self.run_button.setObjectName("RobotRunButton")
        self.run_button.setToolTip(tr("立即运行全部研判规则（平时每 5 分钟自动运行）", "Run every rule now (runs every 5 minutes anyway)", lang))
        self.run_button.clicked.connect(self.run_now)
        self.status = plain("", "RobotStatus", wrap=False)
        self.precision = plain("", "RobotPrecision")
        self.thresholds_button = QPushButton(tr("阈值…", "Thresholds…", lang))
        self.thresholds_button.setObjectName("RobotThresholdsButton")
        self.thresholds_button.setToolTip(tr("查看与调整各研判规则的阈值（区指挥中心可修改）",
                                             "View and adjust the rules' thresholds (district centre may edit)", lang))
        self.thresholds_button.clicked.connect(self.edit_thresholds)
        self.care_button = QPushButton(tr("关爱名单…", "Care list…", lang))
        self.care_button.setObjectName("RobotCareListButton")
        self.care_button.setToolTip(tr("重点人群关爱名单：新增、修改、停用关爱对象，登记走访",
                                       "Care list: add, edit, deactivate residents, record visits", lang))
        self.care_button.clicked.connect(self.open_care_list)
        self.care_button.setVisible(session.role in ("district", "street", "drill"))  # never on the wall
        self.care_window = None
        self._pass_again = False  # a pass was asked for while one ran (run_soon)
        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(self.thresholds_button)
        top.addWidget(self.care_button)
        top.addWidget(self.status, 1)

        self.explanation = plain("", "RobotExplanation")
        self.action = plain("", "RobotAction")
        self.evidence = QListWidget()
        self.evidence.setObjectName("RobotEvidence")
        self.evidence.itemActivated.connect(self._on_evidence_activated)
        self.evidence.itemClicked.connect(self._on_evidence_activated)
        self.accept_button = QPushButton(tr("采纳：生成事件", "Accept: create event", lang))
        self.accept_button.setObjectName("RobotAcceptButton")
        self.accept_button.clicked.connect(self.accept_current)
        self.reason = QLineEdit()
        self.reason.setObjectName("RobotDismissReason")
        self.reason.setPlaceholderText(tr("驳回理由（必填）", "Reason for dismissal (required)", lang))
        self.reason.textChanged.connect(self._update_buttons)
        self.dismiss_button = QPushButton(tr("驳回", "Dismiss", lang))
        self.dismiss_button.setObjectName("RobotDismissButton")
        self.dismiss_button.clicked.connect(self.dismiss_current)
        self.message = MessageLine(self, "RobotMessage")
        decide = QHBoxLayout()
        decide.addWidget(self.accept_button)
        decide.addWidget(self.reason, 1)
        decide.addWidget(self.dismiss_button)
        self.read_only = session.role in ("wall", "department")
        for w in (self.accept_button, self.reason, self.dismiss_button):
            w.setVisible(not self.read_only)

        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(6, 0, 0, 0)
        dl.addWidget(self.explanation)
        dl.addWidget(self.action)
        dl.addWidget(plain(tr("依据（单击在地图上查看事件）", "Evidence (click to show an event on the map)", lang),
                           "RobotEvidenceTitle"))
        dl.addWidget(self.evidence, 1)
        dl.addLayout(decide)
        dl.addWidget(self.message)
        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(top)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.precision)
        split.addWidget(left)
        split.addWidget(detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(max(int(interval_s), 1) * 1000)
        self.timer.timeout.connect(self.run_now)
        self.reload()
        if autorun:
            self.timer.start()
            QTimer.singleShot(2000, self.run_now)  # a first pass soon after start-up

    # -- data --------------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the open warnings and the precision (a few ms: small tables, indexed)."""
        conn = self.replica.reader()
        try:
            rows = views.list_warnings(conn, session=self.session, limit=2000)
            prec = views.precision_by_rule(conn)
        finally:
            conn.close()
        keep = self.current["id"] if self.current else None
        self.model.set_rows(rows)
        self.openCountChanged.emit(sum(1 for r in rows if r.get("status", "open") == "open"))
        parts = []
        for p in prec:
            rate = "—" if p.precision is None else f"{p.precision:.0%}"
            if self.lang == "en":
                parts.append(f"{p.title_en or p.rule} {rate} ({p.accepted}/{p.decided})")
            else:
                parts.append(f"{p.title_zh} {rate}（{p.accepted}/{p.decided}）")
        if self.lang == "en":
            self.precision.setText("Precision (accepted ÷ decided): " + "   ".join(parts))
        else:
            self.precision.setText("采纳率（采纳÷已研判）：" + "　".join(parts))
        row = self.model.row_of(keep) if keep is not None else -1
        if row >= 0:
            self.table.selectRow(row)
        elif keep is not None:
            self.show_warning(None)
        self._update_buttons()

    def edit_thresholds(self) -> None:
        """Open the 研判阈值 dialog; a saved change re-reads the precision line."""
        from widgets.robot_thresholds import RobotThresholdsDialog

        dialog = RobotThresholdsDialog(self.replica, self.session, self)
        if dialog.exec():
            self.reload()

    def open_care_list(self):
        """Open (or raise) the 关爱名单 window; a write there runs a robot pass so a recorded visit
        clears its care warning at once. None for the wall and departments."""
        from app import care_list
        from widgets.care_list import CareListWindow

        if not care_list.may_open(self.session):
            return None
        if self.care_window is None:
            self.care_window = CareListWindow(self.replica, self.session, self, now=self.now or timeutil.now,
                                              state=self.app_state)
            self.care_window.changed.connect(lambda _cid: self.run_soon())
        self.care_window.show()
        self.care_window.raise_()
        self.care_window.activateWindow()
        return self.care_window

    def warnings(self) -> list[dict]:
        return self.model.rows()

    def select_warning(self, warning_id: int) -> bool:
        row = self.model.row_of(warning_id)
        if row < 0:
            return False
        self.table.selectRow(row)
        return True

    def _on_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.show_warning(self.model.row_data(current.row()) if current.isValid() else None)

    def show_warning(self, w: dict | None) -> None:
        self.current = w
        self.evidence.clear()
        self.reason.clear()
        self.message.say("", "")
        if w is None:
            self.details = None
            self.explanation.setText("")
            self.action.setText("")
            self._update_buttons()
            return
        conn = self.replica.reader()
        try:
            self.details = views.evidence_details(conn, w, self.session)
        finally:
            conn.close()
        if self.lang == "en":
            self.explanation.setText(f"{w.get('severity_en', w['severity_zh'])} · {w.get('rule_en', w['rule_zh'])}: "
                                     f"{w['explanation_zh']}")  # fmt: skip
        else:
            self.explanation.setText(f"{w['severity_zh']} · {w['rule_zh']}：{w['explanation_zh']}")
        self.action.setText(tr("建议：", "Suggested: ", self.lang) + str(w["suggested_action"]))
        for e in self.details["events"]:
            item = QListWidgetItem(tr("事件", "Event", self.lang) + f" #{e['id']}  {e['title']}  {timeutil.display(e['reported_at'])[5:]}  {e.get('external_id') or ''}")
            item.setData(Qt.ItemDataRole.UserRole, e["id"])
            self.evidence.addItem(item)
        for p in self.details["people"]:
            self.evidence.addItem(QListWidgetItem(tr("人员", "Person", self.lang) + f"  {p['label']}"))
        for d in self.details["devices"]:
            self.evidence.addItem(QListWidgetItem(tr("设备", "Device", self.lang) + f"  {d['name']} ({d['status']})"
                                                 if self.lang == "en" else f"设备  {d['name']}（{d['status']}）"))
        self._update_buttons()
        self.evidenceReady.emit(evidence_features(w, self.details))

    def _on_evidence_activated(self, item: QListWidgetItem) -> None:
        eid = item.data(Qt.ItemDataRole.UserRole)
        if eid is not None:
            self.eventRequested.emit(int(eid))

    def _update_buttons(self) -> None:
        busy = self._action_worker is not None and not self._action_worker.done
        has = self.current is not None and not self.read_only
        self.accept_button.setEnabled(has and not busy)
        self.dismiss_button.setEnabled(has and not busy and bool(self.reason.text().strip()))

    # -- robot pass ----------------------------------------------------------------------------
    def run_soon(self) -> None:
        """A pass now, or right after the one running (a care-list write must be seen by a pass
        that read the replica after it)."""
        if self._pass_worker is not None and not self._pass_worker.done:
            self._pass_again = True
        else:
            self.run_now()

    def run_now(self) -> Worker | None:
        """Start a pass in a worker (skipped while one is running)."""
        if self._pass_worker is not None and not self._pass_worker.done:
            return None
        self.run_button.setEnabled(False)
        self.status.setText(tr("研判中…", "Running…", self.lang))
        self._pass_worker = run_in_thread(engine.run_pass, self.replica, now=self.now() if self.now else None,
                                          on_result=self._on_pass,
                                          on_error=self._on_pass_error)  # fmt: skip
        return self._pass_worker

    def _on_pass(self, result) -> None:
        self.run_button.setEnabled(True)
        if self.lang == "en":
            errs = f" · {len(result.errors)} rule(s) failed, skipped" if result.errors else ""
            if result.truncated:
                errs += " · " + ", ".join(f"{engine.rule(k).title_en or k}: {n}, kept the largest {MAX_FINDINGS}"
                                          for k, n in result.truncated.items())  # fmt: skip
            self.status.setText(f"{timeutil.now():%H:%M:%S} pass done: new {len(result.new)} · updated "
                                f"{len(result.updated)} · cleared {len(result.cleared)}{errs}")  # fmt: skip
        else:
            errs = f" · {len(result.errors)} 条规则出错已跳过" if result.errors else ""
            if result.truncated:
                errs += " · " + "、".join(f"{engine.rule(k).title_zh}共 {n} 条仅保留最大的 {MAX_FINDINGS} 条"
                                          for k, n in result.truncated.items())
            self.status.setText(f"{timeutil.now():%H:%M:%S} 研判完成：新增 {len(result.new)} · 更新 {len(result.updated)}"
                                f" · 解除 {len(result.cleared)}{errs}")  # fmt: skip
        self.reload()
        if self.care_window is not None and self.care_window.isVisible() and not self.care_window.busy:
            self.care_window.reload()  # days since / due move on with each pass
        self.passFinished.emit(result)
        self._pass_again_if_asked()

    def _pass_again_if_asked(self) -> None:
        if self._pass_again:
            self._pass_again = False
            QTimer.singleShot(0, self.run_now)

    def _on_pass_error(self, exc: BaseException) -> None:
        self._pass_again_if_asked()
        self.run_button.setEnabled(True)
        log.error("robot pass failed", exc_info=exc)
        self.status.setText(tr("研判失败：", "Pass failed: ", self.lang) + human_error(exc))

    # -- decisions -------------------------------------------------------------------------------
    def accept_current(self) -> Worker | None:
        if self.current is None or self.read_only:
            return None
        wid = self.current["id"]
        return self._act(views.accept, self.replica, self.session, wid, done=lambda eid: self._accepted(wid, eid))

    def dismiss_current(self) -> Worker | None:
        if self.current is None or self.read_only:
            return None
        reason = self.reason.text().strip()
        if not reason:
            self.message.say("warn", tr("驳回须填写理由", "A dismissal needs a reason", self.lang))
            return None
        wid = self.current["id"]
        return self._act(views.dismiss, self.replica, self.session, wid, reason,
                         done=lambda _r: self._decided(tr(f"预警 #{wid} 已驳回，理由已记录",
                                                           f"Warning #{wid} dismissed, reason recorded", self.lang)))  # fmt: skip

    def _act(self, fn, *args, done) -> Worker:
        def failed(exc: BaseException) -> None:
            self._action_worker = None
            self.message.say("error", human_error(exc))
            self._update_buttons()

        def ok(result) -> None:
            self._action_worker = None
            done(result)

        self._action_worker = run_in_thread(fn, *args, on_result=ok, on_error=failed)
        self._update_buttons()
        return self._action_worker

    def _accepted(self, wid: int, event_id: int) -> None:
        self._decided(tr(f"预警 #{wid} 已采纳，生成事件 #{event_id}",
                         f"Warning #{wid} accepted, event #{event_id} created", self.lang))
        self.eventCreated.emit(int(event_id))

    def _decided(self, text: str) -> None:
        self.current = None
        self.reload()
        self.show_warning(None)
        self.message.say("ok", text)

    def shutdown(self) -> None:
        """Stop the timer and wait briefly for a running pass (before the replica closes)."""
        self.timer.stop()
        for w in (self._pass_worker, self._action_worker):
            if w is not None and not w.done:
                from PySide6.QtCore import QThreadPool

                QThreadPool.globalInstance().waitForDone(10_000)
                break


def show_evidence_on_map(map_view, fc: dict) -> None:
    """Draw a warning's evidence on the map (the overlay script is injected once per page)."""
    script = OVERLAY_JS.read_text(encoding="utf-8")
    map_view.run_js(script)

    map_view.run_js(f"window.onemapRobot && window.onemapRobot.show({json_for_html(fc)})")


def install_robot_panel(window) -> QDockWidget | None:
    """Add the 智能预警 dock to ``window`` (a MainWindow) and wire it; None for departments."""
    session = window.state.session
    if session.role == "department":
        return None
    panel = RobotPanel(window.replica, session, window, autorun=True)
    panel.app_state = window.state
    title = tr("智能预警", "Robot warnings", getattr(session, "lang", "zh"))
    dock = QDockWidget(title, window)
    dock.setObjectName("RobotDock")
    dock.setWidget(panel)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    window.resizeDocks([dock], [250], Qt.Orientation.Vertical)
    panel.evidenceReady.connect(lambda fc: show_evidence_on_map(window.map, fc))
    panel.eventRequested.connect(window.state.select_event)
    panel.eventCreated.connect(lambda eid: (window.queue.reload_now(), window.watcher.check(),
                                            window.state.select_event(eid)))  # fmt: skip
    window.watcher.changed.connect(panel.reload)
    toggle = dock.toggleViewAction()
    toggle.setText(title)
    button = QPushButton(title)
    button.setObjectName("RobotToggle")
    button.setCheckable(True)
    button.setToolTip(tr("网格管理员机器人：主动研判的预警（点击展开/收起）",
                         "Grid robot: proactive warnings (click to show/hide)", getattr(session, "lang", "zh")))
    button.toggled.connect(dock.setVisible)
    dock.visibilityChanged.connect(button.setChecked)
    panel.openCountChanged.connect(lambda n: button.setText(f"{title} {n}" if n else title))
    # the dock starts folded so the map keeps the room; the header button carries the open count
    dock.hide()
    button.setChecked(False)
    panel.openCountChanged.emit(len(panel.warnings()))
    window.header.tools.insertWidget(0, button)
    previous_shutdown = window.shutdown

    def shutdown() -> None:
        panel.shutdown()
        previous_shutdown()

    window.shutdown = shutdown
    window.robot_panel, window.robot_dock = panel, dock
    return dock
