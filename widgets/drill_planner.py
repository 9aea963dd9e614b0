"""The drill planner (演练计划): week / month calendar, drill list, plan editor with recurrence,
templates and live conflict warnings, the inject table (MSEL) with grid picking on the map, run
controls with the scenario clock, attendance, evaluation and the after-action report.

A thin view: reads come from ``app.drills.queries``/``measure``, writes go through ``db.drills``
(run controls through :class:`widgets.drill_console.DrillController`). Players (every role but
``drill``) see the calendar and the plans, and of the scenario only the injects already sent,
without expected actions; they cannot edit.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from PySide6.QtCore import QDate, QDateTime, Qt, QTime, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import access, timeutil
from app.drills import clock, conflicts, measure, queries, recurrence
from db import drills as db_drills

log = logging.getLogger(__name__)
LEVELS = (("district", "区级"), ("street", "街道级"), ("grid", "网格级"))
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
STATUS_COLOUR = {"scheduled": "#4992ff", "running": "#ff8a45", "paused": "#fddd60", "completed": "#5fd38d",
                 "stopped": "#ff6e76", "cancelled": "#8a93a0"}  # fmt: skip
INJECT_COLUMNS = (
    ("offset_min", "偏移(分)"), ("title", "标题"), ("content", "内容"), ("category", "事件类型"),
    ("class", "类别"), ("grid_id", "网格"), ("lon", "经度"), ("lat", "纬度"), ("target_level", "目标层级"),
    ("target_department", "目标部门"), ("expected_action", "预期行动"), ("expected_stage", "考核环节"),
    ("allowed_min", "时限(分)"), ("parent_seq", "跟进于#"), ("status", "状态"),
)  # fmt: skip
PLAYER_COLUMNS = ("offset_min", "title", "content", "category", "grid_id", "target_level", "target_department", "status")
RESULT_EN = {"on_time": "on time", "late": "late", "missed": "missed", "open": "running", "not_fired": "not fired",
             "skipped": "not fired (follow-up not triggered)"}  # fmt: skip
FINDING_ZH = {"open": "未开始", "in_progress": "进行中", "done": "已完成"}
FINDING_EN = {"open": "open", "in_progress": "in progress", "done": "done"}
ROLE_ZH = {"coordinator": "演练协调员", "grid_leader": "网格长", "street_centre": "街道指挥中心"}
INJECT_STATUS_ZH = {"pending": "待下发", "fired": "已下发", "skipped": "未下发"}
INJECT_STATUS_EN = {"pending": "pending", "fired": "fired", "skipped": "skipped"}
LEVELS_EN = {"district": "District", "street": "Street", "grid": "Grid"}
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
INJECT_COLUMNS_EN = {
    "offset_min": "Offset (min)", "title": "Title", "content": "Content", "category": "Event type", "class": "Class",
    "grid_id": "Grid", "lon": "Lon", "lat": "Lat", "target_level": "Target level",
    "target_department": "Target department", "expected_action": "Expected action", "expected_stage": "Assessed stage",
    "allowed_min": "Limit (min)", "parent_seq": "Follows #", "status": "Status",
}  # fmt: skip
ROLE_EN = {"coordinator": "coordinator", "grid_leader": "grid leader", "street_centre": "street centre"}


def _tr(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else zh


def _qdt(iso: str) -> QDateTime:
    t = timeutil.parse(iso)
    return QDateTime(QDate(t.year, t.month, t.day), QTime(t.hour, t.minute))


def _iso(q: QDateTime) -> str:
    d, t = q.date(), q.time()
    return timeutil.to_iso(dt.datetime(d.year(), d.month(), d.day(), t.hour(), t.minute(), tzinfo=timeutil.TZ))


class CalendarView(QWidget):
    """Week or month grid of drills; a click on a day lists its drills, a double click opens one."""

    daySelected = Signal(object)  # noqa: N815 - dt.date
    drillActivated = Signal(int)  # noqa: N815

    def __init__(self, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.lang = lang
        self.mode = "week"
        self.anchor = timeutil.now().date()
        self.drills: list[dict] = []
        self.prev_button = QPushButton("◀")
        self.today_button = QPushButton(_tr("今天", "Today", lang))
        self.next_button = QPushButton("▶")
        self.week_button = QPushButton(_tr("周", "Week", lang))
        self.month_button = QPushButton(_tr("月", "Month", lang))
        for b in (self.week_button, self.month_button):
            b.setCheckable(True)
        group = QButtonGroup(self)
        group.addButton(self.week_button)
        group.addButton(self.month_button)
        self.week_button.setChecked(True)
        self.range_label = QLabel("")
        self.range_label.setObjectName("calendarRange")
        top = QHBoxLayout()
        for w in (self.prev_button, self.today_button, self.next_button, self.range_label):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.week_button)
        top.addWidget(self.month_button)
        self.table = QTableWidget(1, 7)
        self.table.setObjectName("drillCalendar")
        self.table.setHorizontalHeaderLabels(list(WEEKDAYS_EN if lang == "en" else WEEKDAYS_ZH))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.today_button.clicked.connect(lambda: self.go(timeutil.now().date()))
        self.week_button.clicked.connect(lambda: self.set_mode("week"))
        self.month_button.clicked.connect(lambda: self.set_mode("month"))
        self.table.cellClicked.connect(self._clicked)
        self.table.cellDoubleClicked.connect(self._double)

    def days(self) -> list[dt.date]:
        if self.mode == "week":
            start = self.anchor - dt.timedelta(days=self.anchor.weekday())
            return [start + dt.timedelta(days=i) for i in range(7)]
        first = self.anchor.replace(day=1)
        start = first - dt.timedelta(days=first.weekday())
        return [start + dt.timedelta(days=i) for i in range(42)]

    def window(self) -> tuple[str, str]:
        days = self.days()
        return (timeutil.to_iso(dt.datetime.combine(days[0], dt.time(), tzinfo=timeutil.TZ)),
                timeutil.to_iso(dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), tzinfo=timeutil.TZ)))  # fmt: skip

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.week_button.setChecked(mode == "week")
        self.month_button.setChecked(mode == "month")
        self.render()

    def go(self, day: dt.date) -> None:
        self.anchor = day
        self.render()

    def step(self, n: int) -> None:
        if self.mode == "week":
            self.go(self.anchor + dt.timedelta(weeks=n))
        else:
            m = self.anchor.month - 1 + n
            self.go(dt.date(self.anchor.year + m // 12, m % 12 + 1, 1))

    def set_drills(self, drills: list[dict]) -> None:
        self.drills = drills
        self.render()

    def drills_on(self, day: dt.date) -> list[dict]:
        key = day.isoformat()
        return [d for d in self.drills if d["starts_at"][:10] == key]

    def render(self) -> None:
        days = self.days()
        rows = len(days) // 7
        self.table.setRowCount(rows)
        today = timeutil.now().date()
        if self.mode == "week":
            self.range_label.setText(f"{days[0]:%Y-%m-%d} – {days[-1]:%m-%d}")
        else:
            self.range_label.setText(f"{self.anchor:%Y-%m}" if self.lang == "en" else f"{self.anchor:%Y 年 %m 月}")
        for i, day in enumerate(days):
            items = self.drills_on(day)
            lines = [f"{day.month}-{day.day:02d}" if self.mode == "week" else f"{day.day}"]
            for d in items[: 6 if self.mode == "week" else 3]:
                words = (queries.STATUS_EN if self.lang == "en" else queries.STATUS_ZH)[d["status"]]
                theme = queries.theme_label(d["theme"], self.lang)
                lines.append(f"{d['starts_at'][11:16]} {theme} #{d['id']} · {words}")
            if len(items) > (6 if self.mode == "week" else 3):
                lines.append(_tr(f"… 共 {len(items)} 场", f"… {len(items)} in all", self.lang))
            cell = QTableWidgetItem("\n".join(lines))
            cell.setData(Qt.ItemDataRole.UserRole, day.isoformat())
            cell.setTextAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            if items:
                cell.setToolTip("\n".join(f"#{d['id']} {d['title']}（{queries.STATUS_ZH[d['status']]}）" for d in items))
                cell.setForeground(Qt.GlobalColor.white)
            if self.mode == "month" and day.month != self.anchor.month:
                cell.setForeground(Qt.GlobalColor.gray)
            if day == today:
                cell.setBackground(Qt.GlobalColor.darkCyan)
            elif items:
                cell.setBackground(Qt.GlobalColor.darkBlue)
            self.table.setItem(i // 7, i % 7, cell)
        h = max(60, (self.table.viewport().height() or 360) // rows)
        for r in range(rows):
            self.table.setRowHeight(r, h)

    def _day(self, row: int, col: int) -> dt.date | None:
        item = self.table.item(row, col)
        return dt.date.fromisoformat(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def _clicked(self, row: int, col: int) -> None:
        day = self._day(row, col)
        if day:
            self.daySelected.emit(day)

    def _double(self, row: int, col: int) -> None:
        day = self._day(row, col)
        items = self.drills_on(day) if day else []
        if items:
            self.drillActivated.emit(items[0]["id"])


class DrillPlanner(QWidget):
    """The planner panel (calendar | list | editor tabs)."""

    def __init__(self, replica, session, *, controller=None, map_view=None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("DrillPlanner")
        self.replica = replica
        self.session = session
        self.lang = getattr(session, "lang", "zh")
        self.actor = access.actor_of(session)
        self.coordinator = queries.can_see_scenario(session)
        if controller is None:
            from widgets.drill_console import DrillController

            controller = DrillController(replica, session, self)
        self.controller = controller
        self.map_view = map_view
        self.drill: dict | None = None  # the drill in the editor (None: a new plan)
        self.picking_row: int | None = None
        conn = replica.reader()
        try:
            self.streets = [tuple(r) for r in conn.execute("SELECT code, name FROM streets ORDER BY code")]
            self.departments = [tuple(r) for r in conn.execute("SELECT code, name FROM departments ORDER BY code")]
            self.coordinators = [tuple(r) for r in conn.execute(
                "SELECT uid, name FROM people WHERE role = 'drill_coordinator' ORDER BY id")]  # fmt: skip
            self.templates = queries.templates(conn)
        finally:
            conn.close()
        self._build()
        self.controller.changed.connect(self._on_clock)
        if map_view is not None:
            map_view.gridClicked.connect(self.pick_grid)
        self.reload()
        self.new_drill()

    def _inject_status(self, status: str) -> str:
        table = INJECT_STATUS_EN if self.lang == "en" else INJECT_STATUS_ZH
        return table.get(status, status)

    def _t(self, zh: str, en: str) -> str:
        return _tr(zh, en, self.lang)

    # -- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.calendar = CalendarView(lang=self.lang)
        self.list = QListWidget()
        self.list.setObjectName("drillList")
        self.new_button = QPushButton(self._t("新建演练", "New drill"))
        self.new_button.setObjectName("newDrill")
        self.new_button.setVisible(self.coordinator)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.calendar, 3)
        row = QHBoxLayout()
        self.list_title = QLabel(self._t("本周演练", "This week"))
        row.addWidget(self.list_title)
        row.addStretch(1)
        row.addWidget(self.new_button)
        lv.addLayout(row)
        lv.addWidget(self.list, 2)
        self.readiness_label = QLabel("")
        self.readiness_label.setObjectName("drillReadiness")
        self.readiness_label.setWordWrap(True)
        lv.addWidget(self.readiness_label)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._plan_tab(), self._t("计划", "Plan"))
        self.tabs.addTab(self._inject_tab(), self._t("脚本（注入）", "Script (injects)"))
        self.tabs.addTab(self._run_tab(), self._t("运行", "Run"))
        self.tabs.addTab(self._eval_tab(), self._t("评估与报告", "Evaluation and report"))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setSizes([560, 720])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.message = QLabel("")
        self.message.setObjectName("drillMessage")
        self.message.setWordWrap(True)
        lay.addWidget(split, 1)
        lay.addWidget(self.message)

        self.calendar.daySelected.connect(self._show_day)
        self.calendar.drillActivated.connect(self.select_drill)
        for b in (self.calendar.prev_button, self.calendar.next_button, self.calendar.today_button,
                  self.calendar.week_button, self.calendar.month_button):  # fmt: skip
            b.clicked.connect(self.reload)
        self.list.itemClicked.connect(lambda it: self.select_drill(it.data(Qt.ItemDataRole.UserRole)))
        self.new_button.clicked.connect(lambda: self.new_drill())

    def _plan_tab(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.template = QComboBox()
        self.template.setObjectName("drillTemplate")
        self.template.addItem(self._t("（不使用模板）", "(no template)"), None)
        for t in self.templates:
            n = len(t["scenario"])
            self.template.addItem(f"{queries.theme_label(t['theme'], self.lang)} · {t['title']}"
                                  + self._t(f"（{n} 条注入）", f" ({n} injects)"), t["id"])  # fmt: skip
        self.template.activated.connect(lambda _i: self.apply_template(self.template.currentData()))
        self.title = QLineEdit()
        self.title.setObjectName("drillTitle")
        self.theme = QComboBox()
        self.theme.setEditable(True)
        self.theme.addItems(list(db_drills.THEMES))
        self.level = QComboBox()
        for code, name in LEVELS:
            self.level.addItem(LEVELS_EN[code] if self.lang == "en" else name, code)
        self.street_list = QListWidget()
        self.street_list.setObjectName("drillStreets")
        self.street_list.setMaximumHeight(110)
        for code, name in self.streets:
            it = QListWidgetItem(name)
            it.setData(Qt.ItemDataRole.UserRole, code)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Unchecked)
            self.street_list.addItem(it)
        self.grids = QLineEdit()
        self.grids.setObjectName("drillGrids")
        self.grids.setPlaceholderText(self._t("网格编号，逗号分隔；或在地图上点选网格", "Grid ids, comma separated; or click grids on the map"))
        self.coordinator_box = QComboBox()
        for uid, name in self.coordinators:
            self.coordinator_box.addItem(name, uid)
        self.start = QDateTimeEdit()
        self.start.setObjectName("drillStart")
        self.start.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.start.setCalendarPopup(True)
        self.duration = QSpinBox()
        self.duration.setRange(5, 24 * 60)
        self.duration.setSuffix(self._t(" 分钟", " min"))
        self.objectives = QPlainTextEdit()
        self.objectives.setMaximumHeight(70)
        self.recur = QComboBox()
        self.recur.setObjectName("drillRecurrence")
        recur = ((("none", "不重复"), ("weekly", "每周"), ("monthly", "每月（月底自动取最后一天）"), ("dates", "指定日期系列"))
                 if self.lang != "en" else (("none", "No repeat"), ("weekly", "Weekly"),
                                            ("monthly", "Monthly (month end: last day)"), ("dates", "Date series")))  # fmt: skip
        for code, name in recur:
            self.recur.addItem(name, code)
        self.weekday = QComboBox()
        self.weekday.addItems(list(WEEKDAYS_EN if self.lang == "en" else WEEKDAYS_ZH))
        self.interval = QSpinBox()
        self.interval.setRange(1, 12)
        self.interval.setPrefix(self._t("每 ", "every "))
        self.interval.setSuffix(self._t(" 周/月", " week(s)/month(s)"))
        self.count = QSpinBox()
        self.count.setRange(1, recurrence.MAX_OCCURRENCES)
        self.count.setValue(4)
        self.count.setSuffix(self._t(" 次", " times"))
        self.dates = QLineEdit()
        self.dates.setPlaceholderText("2026-12-01, 2026-12-15, …")
        rrow = QHBoxLayout()
        for x in (self.recur, self.weekday, self.interval, self.count):
            rrow.addWidget(x)
        self.conflict_label = QLabel("")
        self.conflict_label.setObjectName("drillConflicts")
        self.conflict_label.setWordWrap(True)
        self.save_button = QPushButton(self._t("保存计划", "Save plan"))
        self.save_button.setObjectName("savePlan")
        self.cancel_button = QPushButton(self._t("取消该演练", "Cancel this drill"))
        f.addRow(self._t("模板", "Template"), self.template)
        f.addRow(self._t("标题", "Title"), self.title)
        f.addRow(self._t("主题", "Theme"), self.theme)
        f.addRow(self._t("层级", "Level"), self.level)
        f.addRow(self._t("参演街道", "Streets"), self.street_list)
        f.addRow(self._t("参演网格", "Grids"), self.grids)
        f.addRow(self._t("协调员", "Coordinator"), self.coordinator_box)
        f.addRow(self._t("开始时间", "Start"), self.start)
        f.addRow(self._t("预计时长", "Duration"), self.duration)
        f.addRow(self._t("演练目标", "Objectives"), self.objectives)
        f.addRow(self._t("重复", "Repeat"), rrow)
        f.addRow(self._t("系列日期", "Series dates"), self.dates)
        f.addRow("", self.conflict_label)
        brow = QHBoxLayout()
        brow.addStretch(1)
        brow.addWidget(self.cancel_button)
        brow.addWidget(self.save_button)
        f.addRow(brow)
        self.save_button.clicked.connect(self.save_plan)
        self.cancel_button.clicked.connect(self.cancel_drill)
        self._conflict_timer = QTimer(self)
        self._conflict_timer.setSingleShot(True)
        self._conflict_timer.setInterval(250)
        self._conflict_timer.timeout.connect(self.check_conflicts)
        for sig in (self.start.dateTimeChanged, self.duration.valueChanged, self.grids.textChanged,
                    self.street_list.itemChanged, self.level.currentIndexChanged):  # fmt: skip
            sig.connect(lambda *_: self._conflict_timer.start())
        self.recur.currentIndexChanged.connect(self._recur_visibility)
        self._recur_visibility()
        for x in (self.template, self.title, self.theme, self.level, self.street_list, self.grids,
                  self.coordinator_box, self.start, self.duration, self.objectives, self.recur, self.weekday,
                  self.interval, self.count, self.dates, self.save_button, self.cancel_button):  # fmt: skip
            x.setEnabled(self.coordinator)
        return w

    def _recur_visibility(self) -> None:
        code = self.recur.currentData()
        self.weekday.setVisible(code == "weekly")
        self.interval.setVisible(code in ("weekly", "monthly"))
        self.count.setVisible(code in ("weekly", "monthly"))
        self.dates.setEnabled(self.coordinator and code == "dates")

    def _inject_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        cols = INJECT_COLUMNS if self.coordinator else [c for c in INJECT_COLUMNS if c[0] in PLAYER_COLUMNS]
        self.inject_cols = [c[0] for c in cols]
        self.injects = QTableWidget(0, len(cols))
        self.injects.setObjectName("injectTable")
        self.injects.setHorizontalHeaderLabels([INJECT_COLUMNS_EN[c[0]] if self.lang == "en" else c[1] for c in cols])
        self.injects.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        if not self.coordinator:
            self.injects.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        if self.lang == "en":
            note = QLabel("The coordinator sees the whole script; players see only fired injects, without expected "
                          "actions and limits." if self.coordinator else "Only fired injects are shown.")  # fmt: skip
        else:
            note = QLabel("演练协调员可见全部脚本；参演人员只看到已下发的注入，看不到预期行动与时限。"
                          if self.coordinator else "仅显示已下发的注入。")  # fmt: skip
        note.setObjectName("hint")
        row = QHBoxLayout()
        self.add_inject_button = QPushButton(self._t("添加注入", "Add inject"))
        self.del_inject_button = QPushButton(self._t("删除注入", "Delete inject"))
        self.pick_button = QPushButton(self._t("在地图上选网格", "Pick grid on map"))
        self.pick_button.setObjectName("pickGrid")
        self.save_injects_button = QPushButton(self._t("保存脚本", "Save script"))
        self.save_injects_button.setObjectName("saveInjects")
        for b in (self.add_inject_button, self.del_inject_button, self.pick_button, self.save_injects_button):
            row.addWidget(b)
            b.setVisible(self.coordinator)
        row.addStretch(1)
        v.addWidget(note)
        v.addWidget(self.injects, 1)
        v.addLayout(row)
        self.add_inject_button.clicked.connect(lambda: self.add_inject_row())
        self.del_inject_button.clicked.connect(self.delete_inject_row)
        self.pick_button.clicked.connect(self.start_pick)
        self.save_injects_button.clicked.connect(self.save_injects)
        return w

    def _run_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        self.clock_label = QLabel(self._t("场景时间 0:00:00", "Scenario time 0:00:00"))
        self.clock_label.setObjectName("scenarioClock")
        self.clock_label.setStyleSheet("font-size: 28px; font-weight: 700;")
        self.state_label = QLabel("")
        row = QHBoxLayout()
        self.start_button = QPushButton(self._t("开始", "Start"))
        self.start_button.setObjectName("startDrill")
        self.pause_button = QPushButton(self._t("暂停", "Pause"))
        self.resume_button = QPushButton(self._t("继续", "Resume"))
        self.stop_button = QPushButton(self._t("结束", "Stop"))
        self.speed = QComboBox()
        from widgets.drill_console import SPEEDS

        for s in SPEEDS:
            self.speed.addItem(f"×{s:g}", s)
        self.speed.setCurrentIndex(1)
        for b in (self.start_button, self.pause_button, self.resume_button, self.speed, self.stop_button):
            row.addWidget(b)
            b.setVisible(self.coordinator)
        row.addStretch(1)
        self.start_button.clicked.connect(lambda: self._run(self.controller.start))
        self.pause_button.clicked.connect(lambda: self._run(self.controller.pause))
        self.resume_button.clicked.connect(lambda: self._run(self.controller.resume))
        self.stop_button.clicked.connect(lambda: self._run(self.controller.stop))
        self.speed.activated.connect(lambda i: self._run(lambda d: self.controller.set_speed(d, self.speed.itemData(i))))
        self.progress = QTableWidget(0, 5)
        self.progress.setObjectName("runProgress")
        self.progress.setHorizontalHeaderLabels(["#", "Inject", "Event", "Status", "Result"] if self.lang == "en"
                                                  else ["#", "注入", "事件", "状态", "结果"])  # fmt: skip
        self.progress.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.progress.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.attendance = QListWidget()
        self.attendance.setObjectName("attendance")
        self.attendance.itemChanged.connect(self._attendance_changed)
        self.attendance_label = QLabel(self._t("参演与出勤", "Participants & attendance"))
        v.addWidget(self.clock_label)
        v.addWidget(self.state_label)
        v.addLayout(row)
        v.addWidget(self.progress, 2)
        v.addWidget(self.attendance_label)
        v.addWidget(self.attendance, 1)
        return w

    def _eval_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        self.strengths = QPlainTextEdit()
        self.strengths.setPlaceholderText(self._t("做得好的方面，每行一条", "What went well, one per line"))
        self.improvements = QPlainTextEdit()
        self.improvements.setPlaceholderText(self._t("需要改进的方面，每行一条", "What to improve, one per line"))
        self.findings = QTableWidget(0, 4)
        self.findings.setObjectName("findings")
        self.findings.setHorizontalHeaderLabels(["Improvement", "Owner", "Due", "Status"] if self.lang == "en"
                                                  else ["改进措施", "责任人", "完成期限", "状态"])  # fmt: skip
        self.findings.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.findings.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        frow = QHBoxLayout()
        self.f_action = QLineEdit()
        self.f_action.setPlaceholderText(self._t("改进措施", "Improvement"))
        self.f_owner = QLineEdit()
        self.f_owner.setPlaceholderText(self._t("责任人", "Owner"))
        self.f_due = QLineEdit()
        self.f_due.setPlaceholderText("YYYY-MM-DD")
        self.f_add = QPushButton(self._t("添加改进项", "Add improvement"))
        for x in (self.f_action, self.f_owner, self.f_due, self.f_add):
            frow.addWidget(x)
        self.save_eval_button = QPushButton(self._t("保存评估", "Save evaluation"))
        self.report_button = QPushButton(self._t("生成评估报告（HTML / PDF）…", "Evaluation report (HTML / PDF)…"))
        self.report_button.setObjectName("drillReport")
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        v.addWidget(self.summary_label)
        v.addWidget(QLabel(self._t("做得好的方面", "What went well")))
        v.addWidget(self.strengths, 1)
        v.addWidget(QLabel(self._t("需要改进的方面", "What to improve")))
        v.addWidget(self.improvements, 1)
        v.addWidget(QLabel(self._t("改进计划", "Improvement plan")))
        v.addWidget(self.findings, 2)
        v.addLayout(frow)
        brow = QHBoxLayout()
        brow.addStretch(1)
        brow.addWidget(self.save_eval_button)
        brow.addWidget(self.report_button)
        v.addLayout(brow)
        for x in (self.strengths, self.improvements, self.f_action, self.f_owner, self.f_due, self.f_add,
                  self.save_eval_button):  # fmt: skip
            x.setEnabled(self.coordinator)
        self.f_add.clicked.connect(self.add_finding)
        self.findings.cellDoubleClicked.connect(lambda row, _c: self.advance_finding(row))
        self.findings.setToolTip(self._t("双击切换状态：未开始 → 进行中 → 已完成",
                                         "Double-click to cycle: open → in progress → done"))  # fmt: skip
        self.save_eval_button.clicked.connect(self.save_evaluation)
        self.report_button.clicked.connect(lambda: self.export_report())
        return w

    # -- data ---------------------------------------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #ff6e76;" if error else "color: #5fd38d;")

    def reload(self) -> None:
        since, until = self.calendar.window()
        conn = self.replica.reader()
        try:
            drills = queries.list_drills(conn, since=since, until=until)
        finally:
            conn.close()
        self.calendar.set_drills(drills)
        self._fill_readiness()
        self._fill_list(drills, self._t("本周演练", "This week") if self.calendar.mode == "week"
                        else self._t("本月演练", "This month"))  # fmt: skip

    def _fill_readiness(self) -> None:
        """Training records → readiness: grid-leader participation over the last 90 days."""
        since = timeutil.to_iso(timeutil.now() - dt.timedelta(days=90))
        conn = self.replica.reader()
        try:
            per_street = measure.readiness(conn, since=since)
        finally:
            conn.close()
        att = sum(v["attended"] for v in per_street.values())
        exp = sum(v["expected"] for v in per_street.values())
        if not exp:
            self.readiness_label.setText(self._t("近90天无已进行的演练", "No drill run in the last 90 days"))
            return
        names = dict(self.streets)
        low = sorted((v["rate"], names.get(k, k)) for k, v in per_street.items() if v["rate"] is not None)[:3]
        if self.lang == "en":
            self.readiness_label.setText(f"Grid-leader attendance, last 90 days {att / exp:.0%} ({att}/{exp}) · lowest: "
                                         + ", ".join(f"{n} {r:.0%}" for r, n in low))  # fmt: skip
        else:
            self.readiness_label.setText(f"近90天网格长参演率 {att / exp:.0%}（{att}/{exp}）· 偏低：" +
                                         "、".join(f"{n} {r:.0%}" for r, n in low))  # fmt: skip

    def _fill_list(self, drills: list[dict], title: str) -> None:
        self.list_title.setText(f"{title} ({len(drills)})" if self.lang == "en" else f"{title}（{len(drills)}）")
        self.list.clear()
        for d in drills:
            en = self.lang == "en"
            theme = queries.theme_label(d["theme"], self.lang)
            level = (queries.LEVEL_EN if en else queries.LEVEL_ZH)[d["level"]]
            status = (queries.STATUS_EN if en else queries.STATUS_ZH)[d["status"]]
            it = QListWidgetItem(f"#{d['id']}  {d['starts_at'][5:16].replace('T', ' ')}  {theme}  "
                                 f"{level}  {status}  {d['title']}")  # fmt: skip
            it.setData(Qt.ItemDataRole.UserRole, d["id"])
            self.list.addItem(it)

    def _show_day(self, day: dt.date) -> None:
        self._fill_list(self.calendar.drills_on(day), self._t(f"{day:%m-%d} 的演练", f"Drills on {day:%m-%d}"))

    def new_drill(self, start: dt.datetime | None = None) -> None:
        self.drill = None
        self.template.setCurrentIndex(0)
        self.title.clear()
        self.theme.setCurrentIndex(0)
        self.level.setCurrentIndex(1)
        for i in range(self.street_list.count()):
            self.street_list.item(i).setCheckState(Qt.CheckState.Unchecked)
        self.grids.clear()
        t = start or (timeutil.now() + dt.timedelta(days=1)).replace(hour=9, minute=30, second=0)
        self.start.setDateTime(_qdt(timeutil.to_iso(t)))
        self.duration.setValue(60)
        self.objectives.clear()
        self.recur.setCurrentIndex(0)
        self.injects.setRowCount(0)
        self.tabs.setCurrentIndex(0)
        self._fill_run()
        self._say(self._t("新建演练：填写计划，或选择模板。", "New drill: fill in the plan or pick a template."))

    def apply_template(self, template_id: int | None) -> None:
        t = next((t for t in self.templates if t["id"] == template_id), None)
        if t is None:
            return
        self.title.setText(t["title"])
        self.theme.setCurrentText(t["theme"])
        self.level.setCurrentIndex([c for c, _ in LEVELS].index(t["level"]))
        self.duration.setValue(t["duration_min"])
        self.objectives.setPlainText(t["objectives"] or "")
        self.injects.setRowCount(0)
        for inj in t["scenario"]:
            self.add_inject_row(dict(inj, offset_min=inj["offset_s"] / 60))

    def select_drill(self, drill_id: int) -> None:
        conn = self.replica.reader()
        try:
            d = queries.get_drill(conn, drill_id)
            injects = queries.injects(conn, drill_id, coordinator=self.coordinator)
        finally:
            conn.close()
        self.drill = d
        self.title.setText(d["title"])
        self.theme.setCurrentText(d["theme"])
        self.level.setCurrentIndex([c for c, _ in LEVELS].index(d["level"]))
        for i in range(self.street_list.count()):
            it = self.street_list.item(i)
            it.setCheckState(Qt.CheckState.Checked if it.data(Qt.ItemDataRole.UserRole) in d["streets"]
                             else Qt.CheckState.Unchecked)  # fmt: skip
        self.grids.setText(", ".join(d["grids"]))
        i = self.coordinator_box.findData(d["coordinator"])
        if i >= 0:
            self.coordinator_box.setCurrentIndex(i)
        self.start.setDateTime(_qdt(d["starts_at"]))
        self.duration.setValue(d["duration_min"])
        self.objectives.setPlainText(d["objectives"] or "")
        self.recur.setCurrentIndex(0)
        seq_of = {i["id"]: i["seq"] for i in injects}
        self.injects.setRowCount(0)
        for inj in injects:
            self.add_inject_row(dict(inj, offset_min=inj["offset_s"] / 60, parent_seq=seq_of.get(inj.get("parent_id"))),
                                inject_id=inj["id"])  # fmt: skip
        self.strengths.setPlainText(d.get("strengths") or "")
        self.improvements.setPlainText(d.get("improvements") or "")
        editable = self.coordinator and d["status"] == "scheduled"
        self.save_button.setEnabled(editable)
        self.cancel_button.setEnabled(editable)
        self._fill_run()
        self._fill_findings()
        self._say(self._t(f"演练 #{d['id']}：{queries.STATUS_ZH[d['status']]}", f"Drill #{d['id']}: {queries.STATUS_EN[d['status']]}"))
        self.check_conflicts()

    def plan(self) -> dict:
        streets = [self.street_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.street_list.count())
                   if self.street_list.item(i).checkState() == Qt.CheckState.Checked]  # fmt: skip
        grids = [g.strip() for g in self.grids.text().replace("，", ",").split(",") if g.strip()]
        return {"title": self.title.text(), "theme": self.theme.currentText(), "level": self.level.currentData(),
                "streets": streets, "grids": grids, "coordinator": self.coordinator_box.currentData(),
                "starts_at": _iso(self.start.dateTime()), "duration_min": self.duration.value(),
                "objectives": self.objectives.toPlainText(), "template_id": self.template.currentData()}  # fmt: skip

    def rule(self) -> dict | None:
        code = self.recur.currentData()
        if code == "none":
            return None
        start = _iso(self.start.dateTime())
        r = {"rule": code, "time_of_day": start[11:16], "first_date": start[:10], "interval": self.interval.value(),
             "count": self.count.value()}  # fmt: skip
        if code == "weekly":
            r["weekday"] = self.weekday.currentIndex()
        elif code == "monthly":
            r["month_day"] = int(start[8:10])
        else:
            r["dates"] = [x.strip() for x in self.dates.text().replace("，", ",").split(",") if x.strip()]
            r.pop("count")
        return r

    def check_conflicts(self) -> list:
        """Warn (live) when a participating street or grid is booked by another drill at that time."""
        p = self.plan()
        if self.drill is not None:
            p["id"] = self.drill["id"]
        starts = [p["starts_at"]]
        try:
            if self.drill is None and self.rule():
                starts = recurrence.expand(self.rule())
        except recurrence.RecurrenceError as exc:
            self.conflict_label.setText(f"⚠ {exc}")
            return []
        found = []
        conn = self.replica.reader()
        try:
            for s in starts:
                found += conflicts.find_conflicts(conn, dict(p, starts_at=s))
        finally:
            conn.close()
        names = dict(self.streets)
        if found:
            self.conflict_label.setText(self._t("⚠ 冲突：", "⚠ Conflicts: ") + "；".join(c.message(names) for c in found[:4]))
            self.conflict_label.setStyleSheet("color: #fddd60; font-weight: 600;")
        else:
            self.conflict_label.setText(self._t("✓ 无时间冲突", "✓ No time conflicts") if p["streets"] or p["grids"] else "")
            self.conflict_label.setStyleSheet("color: #5fd38d;")
        return found

    def save_plan(self) -> list[int]:
        """Create (a single drill or a series) or update the plan in the editor; returns ids."""
        p = self.plan()
        injects = self._table_injects()
        try:
            if self.drill is not None:
                db_drills.update_plan(self.replica, self.drill["id"], p, actor=self.actor)
                ids = [self.drill["id"]]
            elif self.rule():
                starts = recurrence.expand(self.rule())
                ids = db_drills.create_series(self.replica, p, self.rule(), starts, actor=self.actor,
                                              injects=[i for _id, i in injects])  # fmt: skip
            else:
                ids = [db_drills.create_drill(self.replica, p, actor=self.actor, injects=[i for _id, i in injects])]
        except (db_drills.DrillError, recurrence.RecurrenceError, ValueError) as exc:
            self._say(str(exc), error=True)
            return []
        clashes = self.check_conflicts()
        self.reload()
        self.select_drill(ids[0])
        self._say(self._t(f"已保存 {len(ids)} 场演练", f"Saved {len(ids)} drills")
                  + (self._t(f"（注意：{len(clashes)} 处冲突）", f" (note: {len(clashes)} conflicts)") if clashes else ""))
        return ids

    def cancel_drill(self) -> None:
        if self.drill is None:
            return
        try:
            db_drills.cancel_drill(self.replica, self.drill["id"], actor=self.actor)
        except db_drills.DrillError as exc:
            self._say(str(exc), error=True)
            return
        self.reload()
        self.select_drill(self.drill["id"])

    # -- injects ------------------------------------------------------------------------------------
    def add_inject_row(self, values: dict | None = None, *, inject_id: int | None = None) -> int:
        values = values or {"offset_min": 0, "category": "EMG", "class": "emergency", "target_level": "street",
                            "expected_stage": "on_site", "allowed_min": 10}  # fmt: skip
        row = self.injects.rowCount()
        self.injects.insertRow(row)
        for c, key in enumerate(self.inject_cols):
            v = values.get(key)
            if key == "status":
                v = self._inject_status(v or "pending")
            elif key == "offset_min" and v is not None:
                v = f"{float(v):g}"
            elif isinstance(v, float):
                v = f"{v:.6f}".rstrip("0").rstrip(".") if key in ("lon", "lat") else f"{v:g}"
            item = QTableWidgetItem("" if v is None else str(v))
            if c == 0:
                item.setData(Qt.ItemDataRole.UserRole, inject_id)
            if key == "status" or (values.get("status") not in (None, "pending")):
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.injects.setItem(row, c, item)
        return row

    def delete_inject_row(self) -> None:
        row = self.injects.currentRow()
        if row < 0:
            return
        inject_id = self.injects.item(row, 0).data(Qt.ItemDataRole.UserRole)
        if inject_id:
            try:
                db_drills.delete_inject(self.replica, inject_id, actor=self.actor)
            except db_drills.DrillError as exc:
                self._say(str(exc), error=True)
                return
        self.injects.removeRow(row)

    def _table_injects(self) -> list[tuple[int | None, dict]]:
        out = []
        for r in range(self.injects.rowCount()):
            vals = {k: (self.injects.item(r, c).text().strip() if self.injects.item(r, c) else "")
                    for c, k in enumerate(self.inject_cols)}  # fmt: skip
            if vals.get("status") not in ("", self._inject_status("pending")):
                continue
            inj = {k: v for k, v in vals.items() if v and k not in ("status", "offset_min", "parent_seq")}
            try:
                inj["offset_s"] = int(round(float(vals.get("offset_min") or 0) * 60))
                for k in ("lon", "lat", "allowed_min"):
                    if k in inj:
                        inj[k] = float(inj[k])
                if vals.get("parent_seq"):
                    inj["parent_seq"] = int(vals["parent_seq"])
            except ValueError as exc:
                raise db_drills.DrillError(self._t(f"第 {r + 1} 行数值无效：{exc}", f"row {r + 1}: invalid number ({exc})")) from None
            if "grid_id" in inj and "lon" not in inj:
                inj.pop("lat", None)
            out.append((self.injects.item(r, 0).data(Qt.ItemDataRole.UserRole), inj))
        return out

    def save_injects(self) -> bool:
        """Write the table: new rows are added, edited pending rows updated. A point outside the
        district is refused with the row number and the reason."""
        if self.drill is None:
            return bool(self.save_plan())
        try:
            rows = self._table_injects()
        except db_drills.DrillError as exc:
            self._say(str(exc), error=True)
            return False
        for n, (inject_id, inj) in enumerate(rows, 1):
            try:
                if inject_id:
                    db_drills.update_inject(self.replica, inject_id, inj, actor=self.actor)
                else:
                    db_drills.add_inject(self.replica, self.drill["id"], inj, actor=self.actor)
            except db_drills.DrillError as exc:
                self._say(self._t(f"第 {n} 条注入：{exc}", f"inject {n}: {exc}"), error=True)
                return False
        self.select_drill(self.drill["id"])
        self.tabs.setCurrentIndex(1)
        self._say(self._t(f"脚本已保存（{len(rows)} 条待下发注入）", f"Script saved ({len(rows)} pending injects)"))
        return True

    def start_pick(self) -> None:
        row = self.injects.currentRow()
        if row < 0:
            self._say(self._t("先选中一条注入，再到地图上点选网格", "Select an inject first, then click a grid on the map"), error=True)
            return
        self.picking_row = row
        self._say(self._t(f"请在地图上点选第 {row + 1} 条注入的网格…", f"Click the grid of inject {row + 1} on the map…"))

    def pick_grid(self, grid_id: str) -> None:
        """A grid clicked on the map: the inject being picked, else the plan's grid list."""
        if self.picking_row is not None and self.picking_row < self.injects.rowCount():
            c = self.inject_cols.index("grid_id")
            self.injects.item(self.picking_row, c).setText(grid_id)
            for k in ("lon", "lat"):
                self.injects.item(self.picking_row, self.inject_cols.index(k)).setText("")
            self._say(self._t(f"第 {self.picking_row + 1} 条注入位置：网格 {grid_id}", f"Inject {self.picking_row + 1} placed in grid {grid_id}"))
            self.picking_row = None
        elif self.coordinator and self.isVisible() and self.tabs.currentIndex() == 0:
            grids = [g.strip() for g in self.grids.text().split(",") if g.strip()]
            if grid_id not in grids:
                self.grids.setText(", ".join(grids + [grid_id]))

    # -- running ------------------------------------------------------------------------------------
    def _run(self, fn) -> None:
        if self.drill is None:
            return
        fn(self.drill["id"])
        self.select_drill(self.drill["id"])
        self.tabs.setCurrentIndex(2)

    def _on_clock(self) -> None:
        if self.drill is None:
            return
        act = next((d for d in self.controller.active if d["id"] == self.drill["id"]), None)
        if act is not None or self.drill["status"] in ("running", "paused"):
            self._fill_run(attendance=False)

    def _fill_run(self, *, attendance: bool = True) -> None:
        d = self.drill
        if d is None:
            self.clock_label.setText(self._t("场景时间 —", "Scenario time —"))
            self.state_label.setText(self._t("先保存计划", "Save the plan first"))
            for b in (self.start_button, self.pause_button, self.resume_button, self.stop_button, self.speed):
                b.setEnabled(False)
            self.progress.setRowCount(0)
            self.attendance.clear()
            return
        conn = self.replica.reader()
        try:
            fresh = queries.get_drill(conn, d["id"])
            res = measure.results(conn, d["id"])
            att = measure.attendance(conn, d["id"])
        finally:
            conn.close()
        d.update(fresh)
        st = d["status"]
        self.clock_label.setText(self._t("场景时间 ", "Scenario time ") + f"{clock.fmt(clock.elapsed(d))}  ×{d['speed']:g}")
        extra = f" · {d['stop_reason']}" if d.get("stop_reason") else ""
        self.state_label.setText(f"#{d['id']} {queries.STATUS_ZH[st]}{extra}")
        self.start_button.setEnabled(st == "scheduled")
        self.pause_button.setEnabled(st == "running")
        self.resume_button.setEnabled(st == "paused")
        self.stop_button.setEnabled(st in ("running", "paused"))
        self.speed.setEnabled(st in ("scheduled", "running", "paused"))
        shown = [r for r in res if self.coordinator or r.event is not None]
        self.progress.setRowCount(len(shown))
        for i, r in enumerate(shown):
            vals = [str(r.inject["seq"]), r.inject["title"], f"#{r.event['id']}" if r.event else "—",
                    self._inject_status(r.inject["status"]),
                    (RESULT_EN.get(r.result, r.result) if self.lang == "en" else measure.RESULT_ZH[r.result]) if self.coordinator else ""]  # fmt: skip
            for c, v in enumerate(vals):
                self.progress.setItem(i, c, QTableWidgetItem(v))
        rate = "—" if att["leader_rate"] is None else f"{att['leader_rate']:.0%}"
        on_time = sum(r.result == "on_time" for r in res)
        measured = sum(r.result in ("on_time", "late", "missed") for r in res)
        if self.lang == "en":
            self.summary_label.setText(f"#{d['id']} {queries.STATUS_EN[st]} · on time {on_time}/{measured} · attended "
                                       f"{att['attended']}/{att['expected']} · grid-leader rate {rate}")  # fmt: skip
            self.attendance_label.setText(f"Attendance: {att['attended']}/{att['expected']} · grid-leader rate {rate}")
        else:
            self.summary_label.setText(f"#{d['id']} {queries.STATUS_ZH[st]} · 按时 {on_time}/{measured} · 出勤 "
                                       f"{att['attended']}/{att['expected']} · 网格长参与率 {rate}")  # fmt: skip
            self.attendance_label.setText(f"参演与出勤：实到 {att['attended']}/{att['expected']} · 网格长参与率 {rate}")
        if not attendance:  # the once-a-second clock refresh leaves the list the user may be ticking alone
            return
        self.attendance.blockSignals(True)
        self.attendance.clear()
        for p in att["rows"]:
            role = (ROLE_EN if self.lang == "en" else ROLE_ZH).get(p["role"] or "", p["role"] or p["kind"])
            if self.lang == "en":
                it = QListWidgetItem(f"{p['name']} ({role})" + ("" if p["expected"] else " · unplanned"))
            else:
                it = QListWidgetItem(f"{p['name']}（{role}）" + ("" if p["expected"] else " · 计划外"))
            it.setData(Qt.ItemDataRole.UserRole, (p["kind"], p["ref"]))
            if self.coordinator:
                it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked if p["attended"] else Qt.CheckState.Unchecked)
            self.attendance.addItem(it)
        self.attendance.blockSignals(False)

    def _attendance_changed(self, item: QListWidgetItem) -> None:
        if self.drill is None or not self.coordinator:
            return
        kind, ref = item.data(Qt.ItemDataRole.UserRole)
        db_drills.set_attendance(self.replica, self.drill["id"], kind, ref,
                                 item.checkState() == Qt.CheckState.Checked, actor=self.actor)  # fmt: skip

    # -- evaluation and report ----------------------------------------------------------------------
    def _fill_findings(self) -> None:
        if self.drill is None:
            self.findings.setRowCount(0)
            return
        conn = self.replica.reader()
        try:
            rows = queries.findings(conn, self.drill["id"])
        finally:
            conn.close()
        self.finding_rows = rows
        self.findings.setRowCount(len(rows))
        for i, f in enumerate(rows):
            for c, v in enumerate((f["action"], f["owner"] or "", f["due_date"] or "",
                                   (FINDING_EN if self.lang == "en" else FINDING_ZH)[f["status"]])):  # fmt: skip
                self.findings.setItem(i, c, QTableWidgetItem(v))

    def advance_finding(self, row: int) -> None:
        """Track the improvement plan: open → in progress → done (→ open)."""
        rows = getattr(self, "finding_rows", [])
        if not self.coordinator or not 0 <= row < len(rows):
            return
        nxt = {"open": "in_progress", "in_progress": "done", "done": "open"}[rows[row]["status"]]
        db_drills.set_finding_status(self.replica, rows[row]["id"], nxt, actor=self.actor)
        self._fill_findings()

    def save_evaluation(self) -> None:
        if self.drill is None:
            return
        db_drills.set_evaluation(self.replica, self.drill["id"], strengths=self.strengths.toPlainText(),
                                 improvements=self.improvements.toPlainText(), actor=self.actor)  # fmt: skip
        self._say(self._t("评估已保存", "Evaluation saved"))

    def add_finding(self) -> None:
        if self.drill is None:
            return
        try:
            db_drills.add_finding(self.replica, self.drill["id"], self.f_action.text(), owner=self.f_owner.text() or None,
                                  due_date=self.f_due.text() or None, actor=self.actor)  # fmt: skip
        except db_drills.DrillError as exc:
            self._say(str(exc), error=True)
            return
        self.f_action.clear()
        self._fill_findings()

    def export_report(self, path: str | None = None) -> Path | None:
        """Write the after-action report (HTML; PDF when the name ends in .pdf) off the UI thread."""
        if self.drill is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, self._t("保存演练评估报告", "Save the drill evaluation report"), f"drill-{self.drill['id']}.html",
                                                  "HTML (*.html);;PDF (*.pdf)")  # fmt: skip
            if not path:
                return None
        out = Path(path)
        from app.drills import report
        from widgets.workers import run_in_thread

        drill_id = self.drill["id"]

        def job():
            conn = self.replica.reader()
            try:
                return report.build_report(conn, drill_id)
            finally:
                conn.close()

        def done(rep) -> None:
            try:
                if out.suffix.lower() == ".pdf":
                    from widgets.pdf import html_to_pdf

                    html_to_pdf(rep.html, out)
                else:
                    report.write_html(rep, out)
            except (OSError, RuntimeError) as exc:
                self._say(self._t(f"报告写入失败：{exc}", f"Could not write the report: {exc}"), error=True)
                return
            self._say(self._t("评估报告已写入 ", "Evaluation report written to ") + f"{out}")
            self.report_written = out

        self.report_written = None
        self._say(self._t("正在生成评估报告…", "Building the evaluation report…"))
        run_in_thread(job, on_result=done, on_error=lambda exc: self._say(self._t(f"报告生成失败：{exc}", f"Report failed: {exc}"), error=True))
        return out


class DrillPlannerWindow(QDialog):
    """The planner as a non-modal window of the console."""

    def __init__(self, replica, session, *, controller=None, map_view=None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Drill planning and runs" if getattr(session, "lang", "zh") == "en" else "演练计划与运行 Drills")
        self.setModal(False)
        self.resize(1320, 820)
        self.planner = DrillPlanner(replica, session, controller=controller, map_view=map_view, parent=self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.planner)
