"""Event detail panel: the selected event, its clocks, history and every legal next step.

A thin view over ``app.panel_data`` (reads) and ``app.services.EventService`` (writes, with
the role/scope checks): it draws a ``DetailBundle``, opens an inline form for the action the
operator picks (button or single-key shortcut), and on Ctrl+Enter calls the service. A write
is one short transaction and runs on the UI thread; refusals (lifecycle rule, access scope,
"changed by X at T") are shown in the panel's message line and the event is reloaded.
Exporting the dossier (一哨一档) builds it in a worker; PDF printing (a nested event loop in
``widgets.pdf``) runs after the file dialog has closed, under a busy cursor.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import labels, panel_data, timeutil
from app.access import AccessDenied
from app.lifecycle import IllegalTransition, action_label
from app.queue import countdown_text
from app.services import EventService
from db import event_ops
from widgets.action_bar import SHORTCUTS, ActionBar
from widgets.action_forms import ActionForm, build_form, plain_label
from widgets.mini_map import MiniMap
from widgets.workers import run_in_thread

log = logging.getLogger(__name__)

FIELDS = (
    ("category_name", "事项分类", "Category"),
    ("source", "来源", "Source"),
    ("external_id", "来源编号", "Source id"),
    ("street_name", "街道", "Street"),
    ("community_name", "社区", "Community"),
    ("grid_name", "网格", "Grid"),
    ("address", "地址", "Address"),
    ("assignee_name", "当前承办", "Assignee"),
    ("reported_at", "上报时间", "Reported"),
    ("reporter_name", "反映人", "Reporter"),
    ("reporter_phone", "联系电话", "Phone"),
    ("satisfaction", "满意度", "Satisfaction"),
    ("uid", "事件UID", "UID"),
)
PRIORITY_TINTS = {1: "#ff6e76", 2: "#ff8a45", 3: "#fddd60", 4: "#4992ff"}
STATE_COLOURS = {"overdue": "#ff6e76", "soon": "#fddd60", "ok": "#d3d6dd", "done": "#7fd6a4"}
CLOCK_LABELS = {"response": "响应时限", "arrival": "到场时限（10分钟）", "handle": "办结时限"}
CLOCK_LABELS_EN = {"response": "Response", "arrival": "Arrival (10 min)", "handle": "Handling"}


def tr(zh: str, en: str, lang: str) -> str:
    """``en`` for an English session, else ``zh``."""
    return en if lang == "en" else zh
EXPORT_KEY = "P"
MINIMAP_RADIUS_M = 450.0


def _ts(text: str | None) -> str:
    """``MM-DD HH:MM:SS`` for the timeline (seconds matter there)."""
    return text[5:19].replace("T", " ") if text else ""


def _chip(name: str) -> QLabel:
    lab = plain_label("", name, wrap=False)
    lab.setProperty("chip", True)
    return lab


def log_summary(entry: dict, names: dict | None = None) -> str:
    """One line for a log row: its note plus what its payload says (target, level, score …)."""
    p = entry.get("payload") or {}
    a = entry["action"]
    names = names or {}
    bits: list[str] = []
    if a in ("dispatch", "rework") and p.get("target_name"):
        kind = panel_data.TARGET_KIND_LABELS.get(p.get("target_kind") or "", "")
        bits.append(f"→ {kind} {p['target_name']}".replace("  ", " "))
    elif a == "whistle":
        if p.get("op") == "close":
            bits.append(f"结束哨#{p.get('whistle_id')}：{p.get('outcome', '')}")
            if p.get("not_checked_in"):
                bits.append("未报到 " + "、".join(names.get(c, c) for c in p["not_checked_in"]))
        else:
            lvl = panel_data.WHISTLE_LEVEL_LABELS.get(p.get("level"), p.get("level") or "")
            depts = "、".join(names.get(d.get("code", ""), d.get("code", "")) for d in p.get("departments") or [])
            bits.append(f"{lvl}哨#{p.get('whistle_id')}{'（升级）' if p.get('op') == 'escalate' else ''} 召集 {depts}")
    elif a == "check_in":
        code = p.get("department_code", "")
        bits.append(f"{names.get(code, code)} 报到" + ("（迟到 LATE）" if p.get("late") else "（按时）"))
    elif a == "evaluate" and p.get("satisfaction") is not None:
        bits.append(f"满意度 {p['satisfaction']}/5")
    elif a == "extend":
        bits.append(f"新时限 {_ts(p.get('new_due'))}，批准人 {p.get('approver', '')}")
    elif a == "supervise" and p.get("overdue"):
        bits.append("超时：" + "、".join(labels.label("clock", k) for k in p["overdue"]))
    elif a == "merge" and p.get("into"):
        bits.append(f"并入 #{p['into']}")
    elif a == "defer" and p.get("approver"):
        bits.append(f"批准人 {p['approver']}")
    note = entry.get("note") or ""
    if note and not (a == "whistle" and p.get("op") == "close"):  # a close's note is its outcome
        bits.append(note)
    return "；".join(b for b in bits if b)


class ClockPanel(QFrame):
    """The event's SLA clocks (``app.clocks.sla_state``) with a live countdown: one row per
    clock — name | countdown or outcome (coloured: overdue red, due within 2 h yellow) | due."""

    def __init__(self, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.setObjectName("ClockPanel")
        self._lang = lang
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(8, 5, 8, 5)
        self.grid.setHorizontalSpacing(12)
        self.grid.setVerticalSpacing(2)
        self.grid.setColumnStretch(1, 1)
        self.rows: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        for i, kind in enumerate(("response", "arrival", "handle")):
            name = plain_label((CLOCK_LABELS_EN if lang == "en" else CLOCK_LABELS)[kind], wrap=False)
            value = plain_label("", f"clock_{kind}", wrap=False)
            value.setProperty("clock", True)
            due = plain_label("", f"due_{kind}", wrap=False)
            due.setObjectName("clockDue")
            self.grid.addWidget(name, i, 0)
            self.grid.addWidget(value, i, 1)
            self.grid.addWidget(due, i, 2)
            self.rows[kind] = (name, value, due)
        self.state = "ok"

    def update_clocks(self, event: dict | None, now) -> None:
        sla = panel_data.sla(event, now) if event else {}
        shown = 0
        for kind, (name, value, due_label) in self.rows.items():
            c = sla.get(kind) if sla else None
            for w in (name, value, due_label):
                w.setVisible(c is not None)
            if c is None:
                continue
            shown += 1
            left = c["remaining_s"]
            en = self._lang == "en"
            if c["running"]:
                text, state = countdown_text(c["due"], now, self._lang), c["state"]
            elif c["suspended"] and en:
                text = "Paused (deferred) · " + (f"left {_hms(left, 'en')}" if left >= 0 else f"overdue {_hms(-left, 'en')}")
                state = "overdue" if left < 0 else "ok"
            elif c["suspended"]:
                text = "缓办暂停 · " + (f"剩余 {_hms(left)}" if left >= 0 else f"超时 {_hms(-left)}")
                state = "overdue" if left < 0 else "ok"
            elif left < 0:
                text = f"Completed late +{_hms(-left, 'en')}" if en else f"超时完成 +{_hms(-left)}"
                state = "overdue"
            else:
                text, state = tr("按时完成", "Completed in time", self._lang), "done"
            value.setText(text)
            value.setStyleSheet(f"color: {STATE_COLOURS[state]};" + ("font-weight: bold;" if state == "overdue" else ""))
            value.setProperty("state", state)
            due_label.setText(tr("时限 ", "Due ", self._lang) + f"{_ts(c['due'])[:-3]}")
            tip = f"{(CLOCK_LABELS_EN if en else CLOCK_LABELS)[kind]} {c['due'][:19].replace('T', ' ')}"
            if c.get("stopped_at"):
                tip += tr("\n完成于 ", "\nCompleted ", self._lang) + f"{c['stopped_at'][:19].replace('T', ' ')}"
            value.setToolTip(tip)
            due_label.setToolTip(tip)
        self.state = sla.get("state", "ok") if sla else "ok"
        self.setVisible(shown > 0)


def _empty_text(lang: str = "zh") -> str:
    """The empty state: what the panel shows and the keyboard map (static text, rich text is safe)."""
    en = lang == "en"
    keys = [(SHORTCUTS[a], action_label(a, "en") if en else panel_data.ACTION_LABELS[a]) for a in (
        "accept", "dispatch", "acknowledge", "arrive", "handle", "verify", "close", "return", "reject", "rework",
        "defer", "resume", "merge", "whistle", "close_whistle", "check_in", "supervise", "extend", "evaluate", "note",
    )]  # fmt: skip
    if en:
        keys += [(EXPORT_KEY, "Export dossier"), ("Ctrl+D", "Bulk dispatch (queue multi-select)"),
                 ("Ctrl+J", "Shift handover"), ("Ctrl+M", "Sound on/off")]  # fmt: skip
    else:
        keys += [(EXPORT_KEY, "导出档案（一哨一档）"), ("Ctrl+D", "批量派遣（队列多选）"),
                 ("Ctrl+J", "交接班记录"), ("Ctrl+M", "提示音 开/关")]  # fmt: skip
    cell = "<td style='color:#00E4FF; font-weight:bold; padding:2px 8px 2px 12px'>{}</td><td style='padding:2px 18px 2px 0'>{}</td>"
    half = (len(keys) + 1) // 2
    rows = []
    for i in range(half):
        right = keys[half + i] if half + i < len(keys) else ("", "")
        rows.append("<tr>" + cell.format(*keys[i]) + cell.format(*right) + "</tr>")
    if en:
        return (
            "<p>Pick an event in the queue on the left (↑↓ to move) or on the map; this panel shows its"
            " deadline countdowns, handling timeline, dispatch and whistle check-in records, and a location mini map.</p>"
            "<p>Keyboard: a key opens the action form, <b>Ctrl+Enter</b> confirms, <b>Esc</b> cancels.</p>"
            f"<table cellspacing='0'>{''.join(rows)}</table>"
        )
    return (
        "<p>在左侧队列（↑↓ 选择）或地图上点选事件，这里显示时限倒计时、处置时间线、派遣与吹哨报到记录、位置小地图。</p>"
        "<p>键盘操作：按键打开操作表单，<b>Ctrl+Enter</b> 确认，<b>Esc</b> 取消。</p>"
        f"<table cellspacing='0'>{''.join(rows)}</table>"
    )


def _signature(b: panel_data.DetailBundle) -> tuple:
    """What the panel draws changes only if this changes (every write bumps the version)."""
    whistles = tuple(
        (w["id"], w.get("closed_at"), tuple((d.get("checked_in_at"), d.get("late_flag")) for d in w["departments"]))
        for w in b.whistles
    )
    return b.event["id"], b.version, len(b.log), whistles


def _hms(seconds: int, lang: str = "zh") -> str:
    days, rem = divmod(int(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    unit = "d " if lang == "en" else "天"
    return f"{days}{unit}{h:02d}:{m:02d}:{s:02d}" if days else f"{h}:{m:02d}:{s:02d}"


class EventDetailPanel(QWidget):
    """Shows one event and acts on it for ``session`` through ``service`` (an ``EventService``).

    Signals: ``actionCommitted(event_id, action)`` after a successful write (the window then
    refreshes the queue and the map at once), ``messageShown(kind, text)``,
    ``exportFinished(path)`` / ``exportFailed(message)``.
    """

    actionCommitted = Signal(int, str)
    messageShown = Signal(str, str)
    exportFinished = Signal(str)
    exportFailed = Signal(str)

    def __init__(self, replica, session, *, service: EventService | None = None, lang: str = "zh",
                 now_fn=timeutil.now, parent=None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("EventDetailPanel")
        self.replica = replica
        self.session = session
        self.service = service or EventService(replica, session)
        self._lang = lang
        self._now_fn = now_fn
        self.current: dict | None = None
        self.bundle: panel_data.DetailBundle | None = None
        self.form: ActionForm | None = None
        self.last_message: tuple[str, str] = ("", "")
        self.last_action_ms: float | None = None
        self._directory: tuple[list, list] | None = None
        self._maps: dict[int, dict | None] = {}
        self._exporting = False
        self._build_ui()
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

    # -- UI ---------------------------------------------------------------------------------------
    def _export_caption(self) -> str:
        return f"{EXPORT_KEY} " + tr("导出档案（一哨一档）", "Export dossier", self._lang)

    def _build_ui(self) -> None:
        zh = self._lang == "zh"
        self.title = plain_label("请选择事件" if zh else "Select an event", "detailTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.id_label = _chip("chipId")
        self.priority_chip = _chip("chipPriority")
        self.class_chip = _chip("chipClass")
        self.status_chip = _chip("chipStatus")
        self.drill_tag = plain_label("演练" if zh else "Drill", "drillTag", wrap=False)
        self.drill_tag.hide()
        chips = QHBoxLayout()
        chips.setSpacing(6)
        for w in (self.id_label, self.priority_chip, self.class_chip, self.status_chip, self.drill_tag):
            chips.addWidget(w)
            w.setVisible(False)
        chips.addStretch(1)
        self.export_button = QPushButton(self._export_caption(), self)
        self.export_button.setObjectName("exportButton")
        self.export_button.setToolTip(tr("导出本事件的完整档案：HTML 或 PDF（快捷键 P）",
                                         "Export this event's full dossier as HTML or PDF (shortcut P)", self._lang))
        self.export_button.setAutoDefault(False)
        self.export_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.export_button.clicked.connect(lambda: self.export_dossier())
        self.export_button.setVisible(False)
        chips.addWidget(self.export_button)
        self.export_shortcut = QShortcut(QKeySequence(EXPORT_KEY), self, context=Qt.ShortcutContext.WindowShortcut)
        self.export_shortcut.setEnabled(False)
        self.export_shortcut.activated.connect(lambda: self.export_dossier())

        self.description = plain_label("", "detailDescription")
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.description.setMaximumHeight(64)
        self.message = plain_label("", "detailMessage")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        self.action_bar = ActionBar(self, lang=self._lang)
        self.action_bar.triggered.connect(self.trigger)
        self.action_bar.hide()
        self.form_host = QVBoxLayout()
        self.form_host.setContentsMargins(0, 0, 0, 0)
        self.clocks = ClockPanel(self, lang=self._lang)
        self.clocks.hide()

        # tabs: 概况 (mini map + facts) | 时间线 | 派遣·吹哨 | 附件
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("detailTabs")
        self.tabs.setDocumentMode(True)
        overview = QWidget()
        ov = QVBoxLayout(overview)
        ov.setContentsMargins(4, 6, 4, 4)
        self.mini_map = MiniMap(overview)
        ov.addWidget(self.mini_map)
        form_box = QWidget()
        self.facts = QFormLayout(form_box)
        self.facts.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.facts.setVerticalSpacing(3)
        self.values: dict[str, QLabel] = {}
        for key, zh_l, en_l in FIELDS:
            val = plain_label("")
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = val
            lab = plain_label(zh_l if zh else en_l, wrap=False)
            lab.setObjectName("factLabel")
            self.facts.addRow(lab, val)
        ov.addWidget(form_box)
        ov.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(overview)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        lang = self._lang
        self.tabs.addTab(scroll, tr("概况", "Overview", lang))

        self.timeline = QTreeWidget()
        self.timeline.setObjectName("timeline")
        self.timeline.setHeaderLabels(["时间", "环节", "处理人", "说明"] if zh else ["Time", "Step", "By", "Note"])
        self.timeline.setRootIsDecorated(False)
        self.timeline.setUniformRowHeights(True)
        self.timeline.setColumnWidth(0, 122)
        self.timeline.setColumnWidth(1, 76)
        self.timeline.setColumnWidth(2, 96)
        self.tabs.addTab(self.timeline, tr("时间线", "Timeline", lang))

        history = QWidget()
        hv = QVBoxLayout(history)
        hv.setContentsMargins(4, 6, 4, 4)
        hv.addWidget(plain_label(tr("派遣记录", "Dispatches", lang), "subTitle"))
        self.dispatch_tree = QTreeWidget()
        self.dispatch_tree.setObjectName("dispatchHistory")
        self.dispatch_tree.setHeaderLabels(["时间", "操作", "对象", "处理人", "说明"] if zh
                                           else ["Time", "Action", "Target", "By", "Note"])
        self.dispatch_tree.setRootIsDecorated(False)
        self.dispatch_tree.setColumnWidth(0, 122)
        self.dispatch_tree.setColumnWidth(1, 64)
        self.dispatch_tree.setColumnWidth(2, 130)
        hv.addWidget(self.dispatch_tree, 2)
        hv.addWidget(plain_label(tr("吹哨报到（每个部门的报到时限、报到时间、迟到标记）",
                                    "Whistle check-ins (each department's deadline, check-in time, late flag)", lang),
                                 "subTitle"))
        self.whistle_tree = QTreeWidget()
        self.whistle_tree.setObjectName("whistleHistory")
        self.whistle_tree.setHeaderLabels(["哨 / 部门", "时限", "报到", "状态"] if zh
                                          else ["Whistle / dept", "Due", "Checked in", "State"])
        self.whistle_tree.setColumnWidth(0, 150)
        self.whistle_tree.setColumnWidth(1, 100)
        self.whistle_tree.setColumnWidth(2, 100)
        hv.addWidget(self.whistle_tree, 3)
        self.tabs.addTab(history, tr("派遣·吹哨", "Dispatch · whistle", lang))

        media = QWidget()
        mv = QVBoxLayout(media)
        mv.setContentsMargins(4, 6, 4, 4)
        self.media_list = QListWidget()
        self.media_list.setObjectName("mediaList")
        self.media_empty = plain_label(tr("暂无图片、视频或附件（本事件的上报与处置记录未带媒体引用）",
                                          "No photos, videos or attachments (this event's records carry no media)",
                                          lang), "emptyState")
        self.media_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mv.addWidget(self.media_empty)
        mv.addWidget(self.media_list, 1)
        self.tabs.addTab(media, tr("附件", "Attachments", lang))

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 4)
        lay.setSpacing(6)
        lay.addWidget(self.title)
        lay.addLayout(chips)
        lay.addWidget(self.description)
        lay.addWidget(self.message)
        lay.addWidget(self.action_bar)
        lay.addLayout(self.form_host)
        lay.addWidget(self.clocks)
        lay.addWidget(self.tabs, 1)
        self.empty_hint = plain_label("", "detailEmpty")
        self.empty_hint.setTextFormat(Qt.TextFormat.RichText)
        self.empty_hint.setText(_empty_text(self._lang))
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.empty_hint, 1)
        self.tabs.hide()

    # -- loading ----------------------------------------------------------------------------------
    def show_event(self, event_id: int | None) -> None:
        """Load ``event_id`` (a refusal by the access rules is shown, and logged by the service)."""
        if self.current is None or event_id != self.current.get("id"):
            self.close_form()
            self._show_message("", "")
        if event_id is None:
            self._clear(tr("请选择事件", "Select an event", self._lang))
            return
        try:
            bundle = panel_data.load_detail(self.service, event_id, now=self._now_fn())
        except AccessDenied as exc:
            if self._lang == "en":
                self._clear(f"Not permitted to view event #{event_id}")
                self._show_message("error", f"Not permitted: {exc.reason}")
                return
            self._clear(f"无权查看事件 #{event_id}")
            self._show_message("error", f"无权查看：{exc.reason}")
            return
        except event_ops.EventNotFound:
            self._clear(f"Event {event_id} does not exist" if self._lang == "en" else f"事件 {event_id} 不存在")
            return
        if self.bundle is not None and _signature(bundle) == _signature(self.bundle):
            self.bundle, self.current = bundle, bundle.event  # nothing visible changed: keep the widgets
            self._tick()
            return
        self._render(bundle)

    def refresh(self) -> None:
        """Reload the event shown (after a change in the replica); nothing if none is shown."""
        if self.current is not None and not self._exporting:
            self.show_event(self.current["id"])

    def _clear(self, title: str) -> None:
        self.current = None
        self.bundle = None
        self.close_form()
        self.title.setText(title)
        self.description.setText("")
        for w in (self.id_label, self.priority_chip, self.class_chip, self.status_chip, self.drill_tag):
            w.setVisible(False)
        self.export_button.setVisible(False)
        self.export_shortcut.setEnabled(False)
        self.action_bar.set_actions([])
        self.clocks.hide()
        self._timer.stop()
        for v in self.values.values():
            v.setText("")
        for tree in (self.timeline, self.dispatch_tree, self.whistle_tree):
            tree.clear()
        self.media_list.clear()
        self.mini_map.set_map(None, None, "")
        self.tabs.hide()
        self.empty_hint.show()

    def _render(self, b: panel_data.DetailBundle) -> None:
        ev = b.event
        lang = self._lang
        self.bundle = b
        self.current = ev
        self.empty_hint.hide()
        self.tabs.show()
        self.title.setText(ev.get("title") or "")
        self.description.setText(ev.get("description") or "")
        self.description.setToolTip(ev.get("description") or "")
        self.id_label.setText(f"#{ev['id']}")
        pr = ev.get("priority")
        self.priority_chip.setText(labels.label("priority", pr, lang))
        self.priority_chip.setStyleSheet(f"color: {PRIORITY_TINTS.get(pr, '#d3d6dd')}; border-color: {PRIORITY_TINTS.get(pr, '#1d4f8f')};")
        self.class_chip.setText(labels.label("class", ev.get("class"), lang))
        self.class_chip.setProperty("emergency", ev.get("class") == "emergency")
        self.status_chip.setText(labels.label("status", ev.get("status"), lang))
        for w in (self.id_label, self.priority_chip, self.class_chip, self.status_chip):
            w.setVisible(True)
            w.style().unpolish(w)
            w.style().polish(w)
        self.drill_tag.setVisible(ev.get("drill_id") is not None)
        read_only = self.session.role == "wall"
        self.export_button.setVisible(not read_only)
        self.export_shortcut.setEnabled(not read_only and not self._exporting)

        shown = dict(ev)
        shown["source"] = labels.label("source", ev.get("source"), lang)
        shown["reported_at"] = _ts(ev.get("reported_at"))
        if ev.get("satisfaction") is not None:
            shown["satisfaction"] = f"{ev['satisfaction']} / 5"
        if ev.get("assignee_name"):
            kind = panel_data.TARGET_KIND_LABELS.get(ev.get("assignee_kind") or "", "")
            shown["assignee_name"] = f"{kind} {ev['assignee_name']}".strip()
        for key, label in self.values.items():
            value = shown.get(key)
            label.setText("" if value is None else str(value))

        # actions (kept while a form is open for the same event; the form guards its own step)
        self.action_bar.set_actions(b.actions)
        self.action_bar.set_keys_enabled(self.form is None and not self._exporting)
        if self.form is not None and self.form.action not in {s.action for s in b.actions if s.allowed}:
            self.close_form()
            self._show_message("warn", "事件状态已变化，该操作不再可用")
        elif self.form is not None and getattr(self.form, "seen_version", b.version) != b.version:
            who = b.log[-1].get("actor_name") or panel_data.actor_text(b.log[-1]["actor"], b.names) if b.log else "?"
            self._show_message("warn", f"事件刚被 {who} 更新（{b.log[-1]['action_label'] if b.log else ''}），"
                                       "确认前请核对；确认时将提示冲突。")  # fmt: skip

        self._fill_timeline(b)
        self._fill_history(b)
        self._fill_media(b)
        self._fill_map(ev)
        self.tabs.setTabText(1, tr("时间线", "Timeline", lang) + f" ({len(b.log)})")
        self.tabs.setTabText(2, tr("派遣·吹哨", "Dispatch · whistle", lang) + f" ({len(b.dispatches)}/{len(b.whistles)})")
        self.tabs.setTabText(3, tr("附件", "Attachments", lang) + f" ({len(b.media)})")
        self._tick()
        if not self._timer.isActive():
            self._timer.start()

    def _fill_timeline(self, b) -> None:
        self.timeline.clear()
        items = []
        for entry in b.log:
            actor = entry.get("actor_name") or panel_data.actor_text(entry["actor"], b.names)
            label = action_label(entry["action"], "en") if self._lang == "en" else entry["action_label"]
            summary = log_summary(entry, b.names)
            item = QTreeWidgetItem([_ts(entry["at"]), label, actor, summary])
            item.setToolTip(3, summary)
            if entry["action"] in ("reject", "return", "rework"):
                item.setForeground(1, QColor("#ff8a45"))
            elif entry["action"] in ("whistle", "supervise"):
                item.setForeground(1, QColor("#fddd60"))
            elif entry["action"] == "close":
                item.setForeground(1, QColor("#00E4FF"))
            items.append(item)
        self.timeline.addTopLevelItems(items)
        if items:
            self.timeline.scrollToItem(items[-1])

    def _fill_history(self, b) -> None:
        self.dispatch_tree.clear()
        for d in b.dispatches:
            item = QTreeWidgetItem([_ts(d["at"]), d["label"], d["target"], d["actor"], d["note"]])
            if d["action"] == "return":
                item.setForeground(1, QColor("#ff8a45"))
            self.dispatch_tree.addTopLevelItem(item)
        self.whistle_tree.clear()
        for w in b.whistles:
            lvl = panel_data.WHISTLE_LEVEL_LABELS.get(w["level"], w["level"])
            by = panel_data.actor_text(w["blown_by"], b.names)
            state = f"已结束：{panel_data.whistle_outcome(w.get('outcome'))}" if w.get("closed_at") else "进行中"
            top = QTreeWidgetItem([f"{lvl}哨 #{w['id']}", _ts(w["blown_at"])[:-3], by, state])
            top.setToolTip(0, f"事由：{w.get('reason') or ''}")
            top.setToolTip(3, state)
            top.setForeground(0, QColor("#00E4FF"))
            if not w.get("closed_at"):
                top.setForeground(3, QColor("#fddd60"))
            for d in w["departments"]:
                flag = d.get("late_flag")
                if d.get("checked_in_at"):
                    status = "迟到 LATE" if flag == "late" else "按时报到"
                else:
                    status = "超时未报到 LATE" if flag == "missing" else ("待报到" if not w.get("closed_at") else "未报到")
                child = QTreeWidgetItem([
                    d.get("department_name") or d["department_code"],
                    _ts(d["deadline_at"])[:-3],
                    _ts(d.get("checked_in_at"))[:-3] if d.get("checked_in_at") else "—",
                    status,
                ])  # fmt: skip
                if flag:
                    child.setForeground(3, QColor("#ff6e76"))
                    f = child.font(3)
                    f.setBold(True)
                    child.setFont(3, f)
                elif d.get("checked_in_at"):
                    child.setForeground(3, QColor("#7fd6a4"))
                top.addChild(child)
            self.whistle_tree.addTopLevelItem(top)
            top.setExpanded(True)
        if not b.whistles:
            self.whistle_tree.addTopLevelItem(QTreeWidgetItem(["本事件未吹哨", "", "", ""]))

    def _fill_media(self, b) -> None:
        self.media_list.clear()
        for m in b.media:
            item = QListWidgetItem(f"{_ts(m['at'])[:-3]}  [{m['kind']}] {m['name']}")
            item.setToolTip(m["ref"])
            self.media_list.addItem(item)
        self.media_list.setVisible(bool(b.media))
        self.media_empty.setVisible(not b.media)

    def _fill_map(self, ev: dict) -> None:
        eid = ev["id"]
        if eid not in self._maps:
            from app.dossier import build_map

            conn = self.replica.reader()
            try:
                self._maps[eid] = build_map(conn, ev, lang=self._lang, radius_m=MINIMAP_RADIUS_M)
            except Exception:  # noqa: BLE001 - a missing map must not hide the event
                log.exception("mini map of event %s failed", eid)
                self._maps[eid] = None
            finally:
                conn.close()
            if len(self._maps) > 64:
                self._maps.pop(next(iter(self._maps)))
        self.mini_map.set_map(self._maps[eid], eid, "无位置信息")

    def _tick(self) -> None:
        if self.current is None:
            self._timer.stop()
            return
        self.clocks.update_clocks(self.current, self._now_fn())

    # -- messages ---------------------------------------------------------------------------------
    def _show_message(self, kind: str, text: str, tooltip: str = "") -> None:
        self.last_message = (kind, text)
        self.message.setText(text)
        self.message.setToolTip(tooltip)
        self.message.setProperty("kind", kind)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setVisible(bool(text))
        if text:
            self.messageShown.emit(kind, text)

    # -- actions ----------------------------------------------------------------------------------
    def trigger(self, action: str) -> ActionForm | None:
        """Open the inline form of ``action`` (a button or its key). Returns the form."""
        b = self.bundle
        if b is None or self._exporting:
            return None
        state = next((s for s in b.actions if s.action == action), None)
        if state is None or not state.allowed:
            return None
        self.close_form()
        suggestions = []
        if action in ("dispatch", "rework", "whistle"):
            try:
                suggestions = self.service.suggest_targets(b.event["id"])
            except (AccessDenied, event_ops.EventOpsError) as exc:
                log.warning("no suggestions: %s", exc)
        depts, streets = self._lookup_directory()
        form = build_form(action, b, suggestions=suggestions, departments=depts, streets=streets,
                          session=self.session, now=self._now_fn(), parent=self, lang=self._lang)  # fmt: skip
        form.seen_version = b.version  # optimistic check: the version the operator acted on
        form.confirmed.connect(self.confirm)
        form.cancelled.connect(self.close_form)
        self.form = form
        self.form_host.addWidget(form)
        self.action_bar.set_keys_enabled(False)
        self.export_shortcut.setEnabled(False)
        if action in self.action_bar.buttons:
            self.action_bar.buttons[action].setProperty("active", True)
            self.action_bar.buttons[action].style().polish(self.action_bar.buttons[action])
        form.show()
        form.focus_first()
        return form

    def close_form(self) -> None:
        if self.form is None:
            return
        form, self.form = self.form, None
        self.form_host.removeWidget(form)
        form.hide()
        form.deleteLater()
        for b in self.action_bar.buttons.values():
            if b.property("active"):
                b.setProperty("active", False)
                b.style().polish(b)
        self.action_bar.set_keys_enabled(not self._exporting)
        self.export_shortcut.setEnabled(self.current is not None and self.session.role != "wall" and not self._exporting)
        if self.current is not None:
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    def _lookup_directory(self) -> tuple[list, list]:
        if self._directory is None:
            conn = self.replica.reader()
            try:
                self._directory = (panel_data.departments(conn), panel_data.streets(conn))
            finally:
                conn.close()
        return self._directory

    def confirm(self) -> bool:
        """Ctrl+Enter: validate the open form and run its action through the service."""
        form, b = self.form, self.bundle
        if form is None or b is None:
            return False
        problem = form.validate()
        if problem:
            self._show_message("warn", problem)
            return False
        action = form.action
        values = form.values()
        eid = b.event["id"]
        en = self._lang == "en"
        label = action_label(action, "en") if en else panel_data.ACTION_LABELS.get(action, action)
        t0 = time.perf_counter()
        try:
            self._execute(action, values, b, getattr(form, "seen_version", b.version))
        except event_ops.ConflictError as exc:
            zh, _, _en = str(exc).partition(" / ")
            self.close_form()
            self.show_event(eid)
            msg = (f"Not done: {_en or zh}. The latest state was reloaded." if en
                   else f"操作未执行：{zh}。已重新载入最新状态。")  # fmt: skip
            self._show_message("error", msg, str(exc))
            return False
        except AccessDenied as exc:
            self.close_form()
            self.show_event(eid)
            self._show_message("error", f"Not permitted: {label}: {exc.reason}" if en else f"无权执行「{label}」：{exc.reason}")
            return False
        except (IllegalTransition, event_ops.EventNotFound) as exc:
            self.close_form()
            self.show_event(eid)
            self._show_message("error", f"{label} not done: {exc}" if en else f"「{label}」未执行：{exc}")
            return False
        except event_ops.EventOpsError as exc:  # InvalidAction / InvalidRecord: fix the form and retry
            self._show_message("error", f"{label} not done: {exc}" if en else f"「{label}」未执行：{exc}")
            return False
        except sqlite3.OperationalError as exc:
            self._show_message("error", f"Replica busy, {label} not done; please retry ({exc})" if en
                               else f"副本繁忙，「{label}」未执行，请重试（{exc}）")  # fmt: skip
            return False
        self.last_action_ms = (time.perf_counter() - t0) * 1000
        target = ""
        if action in ("dispatch", "rework") and values["payload"].get("target"):
            item = form.fields["target"].list.currentItem()  # type: ignore[attr-defined]
            target = " → " + item.text().split("\n")[0].lstrip("★ ") if item is not None else ""
        self.close_form()
        self.show_event(eid)
        if en:
            self._show_message("ok", f"{label} done{target} · event #{eid} ({self.last_action_ms:.0f} ms)")
        else:
            self._show_message("ok", f"已{label}{target} · 事件 #{eid}（{self.last_action_ms:.0f} 毫秒）")
        self.actionCommitted.emit(eid, action)
        return True

    def _execute(self, action: str, values: dict, b, version: int) -> None:
        svc, eid = self.service, b.event["id"]
        if action == "whistle":
            svc.whistle(eid, values["level"], values["departments"], values["deadline_minutes"], values["note"] or "")
        elif action == "close_whistle":
            svc.close_whistle(values["whistle_id"], values["outcome"])
        elif action == "check_in":
            svc.check_in(values["whistle_id"], values["department_code"])
        elif action == "supervise":
            svc.supervise(eid, values["note"])
        else:
            svc.act(eid, action, version, values["note"], values["payload"] or None)

    # -- export -----------------------------------------------------------------------------------
    def export_dossier(self, path: str | None = None) -> bool:
        """Export the dossier (一哨一档) as HTML or PDF; without ``path`` a file dialog asks.
        HTML is built and written in a worker; a PDF is printed after the dialog has closed."""
        b = self.bundle
        if b is None or self._exporting or self.session.role == "wall":
            return False
        eid = b.event["id"]
        if path is None:
            default = str(Path.home() / f"一哨一档-{eid}.pdf")
            path, chosen = QFileDialog.getSaveFileName(
                self, "导出档案（一哨一档）", default, "PDF 文件 (*.pdf);;HTML 文件 (*.html)"
            )
            if not path:
                return False
            if Path(path).suffix.lower() not in (".pdf", ".html"):
                path += ".html" if "html" in chosen.lower() else ".pdf"
        out = Path(path)
        if out.suffix.lower() not in (".pdf", ".html", ".htm"):
            self._show_message("error", f"不支持的格式 {out.suffix or '（无扩展名）'}：请用 .pdf 或 .html")
            return False
        self._set_exporting(True, f"正在生成事件 #{eid} 的档案…")
        replica, lang, pdf = self.replica, self._lang, out.suffix.lower() == ".pdf"

        def job():
            from app.dossier import build_dossier, write_html

            conn = replica.reader()
            try:
                dossier = build_dossier(conn, eid, lang=lang)
            finally:
                conn.close()
            if not pdf:
                write_html(dossier, out)
            return dossier

        def done(dossier) -> None:
            if not pdf:
                self._export_done(out)
                return
            self._show_message("info", f"正在打印 PDF：{out.name}…")
            QTimer.singleShot(0, lambda: self._print_pdf(dossier.html, out))

        run_in_thread(job, on_result=done, on_error=lambda exc: self._export_failed(exc, out))
        return True

    def _print_pdf(self, html: str, out: Path) -> None:
        from widgets.pdf import html_to_pdf

        try:
            html_to_pdf(html, out)  # a nested event loop until pdfPrintingFinished
        except (RuntimeError, OSError) as exc:
            self._export_failed(exc, out)
            return
        self._export_done(out)

    def _export_done(self, out: Path) -> None:
        self._set_exporting(False)
        self._show_message("ok", f"档案已导出：{out}")
        self.exportFinished.emit(str(out))

    def _export_failed(self, exc: BaseException, out: Path) -> None:
        self._set_exporting(False)
        self._show_message("error", f"档案导出失败（{out.name}）：{exc}")
        self.exportFailed.emit(str(exc))

    def _set_exporting(self, on: bool, text: str = "") -> None:
        self._exporting = on
        self.export_button.setEnabled(not on)
        self.export_button.setText(tr("正在导出…", "Exporting…", self._lang) if on else self._export_caption())
        self.action_bar.set_all_enabled(not on)
        if self.form is not None:
            self.action_bar.set_keys_enabled(False)
        self.export_shortcut.setEnabled(not on and self.current is not None)
        if on:
            QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
            self._show_message("info", text)
        else:
            QApplication.restoreOverrideCursor()

    # -- for tests and the window -----------------------------------------------------------------
    def shortcut_key(self, action: str) -> str | None:
        return SHORTCUTS.get(action)

    def shutdown(self) -> None:
        self._timer.stop()
