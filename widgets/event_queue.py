"""The event queue: a table model over ``app.queue`` rows and the panel around it.

The panel is a thin view: it holds a ``QueueFilter`` (its state), turns widget changes into a
new filter, and asks a single background loader thread for a ``QueueSnapshot`` (rows + tab
counts read in one transaction). The UI thread never runs a query: the rows take a few ms,
but the counts scan every open event (~70 ms at 30k open events, ~0.7 s at 120k; they are
reused when only the tab changed). Reloads are throttled: a burst makes one query, at most
one per 300 ms (replica-driven reloads: per 2 × the last load time when that is longer), one
in flight; results for a filter that has since changed are dropped.

Citizen text (titles, addresses) is shown as plain text; tooltips escape it.
"""

from __future__ import annotations

import datetime as dt
import html
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QFont, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabBar,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.labels import label
from app.queue import (
    TABS,
    QueueFilter,
    QueueReader,
    QueueSnapshot,
    clocks,
    clocks_state,
    clocks_text,
)
from widgets.replica_watcher import ReplicaWatcher, connection_factory

COLUMNS: list[tuple[str, str]] = [
    ("priority", "优先级"),
    ("status", "状态"),
    ("title", "标题"),
    ("category", "类别"),
    ("source", "来源"),
    ("street", "街道"),
    ("reported_at", "上报时间"),
    ("deadline", "时限/倒计时"),
]
COLUMNS_EN: dict[str, str] = {
    "priority": "Priority",
    "status": "Status",
    "title": "Title",
    "category": "Category",
    "source": "Source",
    "street": "Street",
    "reported_at": "Reported",
    "deadline": "Deadline",
}
COL = {key: i for i, (key, _) in enumerate(COLUMNS)}
COL_DEADLINE = COL["deadline"]
DRILL_TAG = "【演练】"
DRILL_TAG_EN = "[Drill] "
UNSYNCED_TAG, UNSYNCED_TAG_EN = "【未同步】", "[Unsynced] "  # issue 9: local changes not yet confirmed upstream


def tr(zh: str, en: str, lang: str) -> str:
    """``en`` for an English session, else ``zh``."""
    return en if lang == "en" else zh

# (text, background) per due state; 'dark' are the brief's light tints for a navy theme,
# 'light' keep >= 4.5:1 on a light palette.
DUE_COLOURS: dict[str, dict[str, tuple[str, QColor]]] = {
    "dark": {
        "overdue": ("#ff6e76", QColor(255, 110, 118, 36)),
        "soon": ("#fddd60", QColor(253, 221, 96, 26)),
    },
    "light": {
        "overdue": ("#b42318", QColor("#fde8e8")),
        "soon": ("#7a5200", QColor("#fff4cc")),
    },
}

IdRole = Qt.ItemDataRole.UserRole
DueStateRole = Qt.ItemDataRole.UserRole + 1
RowRole = Qt.ItemDataRole.UserRole + 2


def plain_tooltip(*lines: str | None) -> str:
    """A tooltip that Qt renders as rich text but that shows ``lines`` literally."""
    body = "<br>".join(html.escape(line) for line in lines if line)
    return f"<p style='white-space:pre-wrap'>{body}</p>" if body else ""


class EventQueueModel(QAbstractTableModel):
    """Rows from ``app.queue.query_queue``; ``Qt.UserRole`` is the event id.

    A 1 s timer refreshes the countdown column; when a row's due state changes
    (ok → soon → overdue) the whole row is repainted and ``dueStatesChanged`` fires.
    """

    dueStatesChanged = Signal()

    def __init__(self, parent: QObject | None = None, *, now_fn: Callable[[], dt.datetime] = timeutil.now,
                 lang: str = "zh") -> None:
        super().__init__(parent)
        self.setObjectName("eventQueueModel")
        self._now_fn = now_fn
        self._lang = lang
        self._rows: list[dict] = []
        self._clocks: list[list] = []
        self._states: list[str] = []
        self._now = now_fn()
        self._scheme = "dark"
        self._brushes: dict[str, tuple[QBrush, QBrush]] = {}
        self._set_brushes()
        self._bold = QFont()
        self._bold.setBold(True)
        self._timer = QTimer(self)
        self._timer.setObjectName("eventQueueCountdown")
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.tick)
        self._unsynced: frozenset[str] = frozenset()

    def set_unsynced(self, uids: frozenset[str]) -> None:
        """Mark the events (by uid) whose local changes the upstream has not confirmed (issue 9)."""
        uids = frozenset(uids)
        if uids != self._unsynced:
            self._unsynced = uids
            if self._rows:
                col = COL["title"]
                self.dataChanged.emit(self.index(0, col), self.index(len(self._rows) - 1, col))

    def is_unsynced(self, row: int) -> bool:
        r = self.row_data(row)
        return bool(r and r.get("uid") in self._unsynced)

    # -- data in -----------------------------------------------------------------------------
    def refresh(self, rows: list[dict]) -> None:
        """Show ``rows``. Same ids in the same order → in-place update (selection and
        scroll untouched); otherwise a model reset (the panel restores the selection by id)."""
        self._now = self._now_fn()
        new_clocks = [clocks(r, self._now) for r in rows]
        new_states = [clocks_state(c, self._now) for c in new_clocks]
        same = [r["id"] for r in rows] == [r["id"] for r in self._rows]
        if same:
            self._rows, self._clocks, self._states = list(rows), new_clocks, new_states
            if rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(COLUMNS) - 1))
        else:
            self.beginResetModel()
            self._rows, self._clocks, self._states = list(rows), new_clocks, new_states
            self.endResetModel()
        if rows:
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()

    @Slot()
    def tick(self) -> None:
        """Advance the clocks: the countdown column, plus whole rows whose state changed."""
        if not self._rows:
            return
        self._now = self._now_fn()
        changed = []
        for i, cs in enumerate(self._clocks):
            state = clocks_state(cs, self._now)
            if state != self._states[i]:
                self._states[i] = state
                changed.append(i)
        last = len(self._rows) - 1
        self.dataChanged.emit(self.index(0, COL_DEADLINE), self.index(last, COL_DEADLINE),
                              [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole])
        for i in changed:
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
        if changed:
            self.dueStatesChanged.emit()

    def stop_clock(self) -> None:
        """Stop the 1 s countdown timer (``refresh`` with rows starts it again)."""
        self._timer.stop()

    def set_dark(self, dark: bool) -> None:
        scheme = "dark" if dark else "light"
        if scheme != self._scheme:
            self._scheme = scheme
            self._set_brushes()
            if self._rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1),
                                      [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole])

    def is_dark(self) -> bool:
        return self._scheme == "dark"

    def _set_brushes(self) -> None:
        self._brushes = {
            state: (QBrush(QColor(fg)), QBrush(bg)) for state, (fg, bg) in DUE_COLOURS[self._scheme].items()
        }

    # -- lookups -----------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        return list(self._rows)

    def row_data(self, row: int) -> dict | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def event_id(self, row: int) -> int | None:
        r = self.row_data(row)
        return r["id"] if r else None

    def row_of(self, event_id: int | None) -> int:
        if event_id is None:
            return -1
        for i, r in enumerate(self._rows):
            if r["id"] == event_id:
                return i
        return -1

    def due_state(self, row: int) -> str | None:
        return self._states[row] if 0 <= row < len(self._states) else None

    # -- Qt model API ------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                key, zh = COLUMNS[section]
                return COLUMNS_EN[key] if self._lang == "en" else zh
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        key = COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(index.row(), r, key)
        if role == IdRole:
            return r["id"]
        if role == DueStateRole:
            return self._states[index.row()]
        if role == RowRole:
            return r
        if role in (Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole):
            brushes = self._brushes.get(self._states[index.row()])
            if brushes is None:
                return None
            return brushes[0] if role == Qt.ItemDataRole.ForegroundRole else brushes[1]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(index.row(), r, key)
        if role == Qt.ItemDataRole.FontRole and key == "priority" and r["priority"] == 1:
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("priority", "reported_at"):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def _display(self, i: int, r: dict, key: str) -> str:
        lang = self._lang
        if key == "priority":
            return label("priority", r["priority"], lang)
        if key == "status":
            return label("status", r["status"], lang)
        if key == "title":
            title = r["title"] or ""
            title = self._drill_tag() + title if r.get("drill_id") is not None else title
            if r.get("uid") in self._unsynced:
                title = (UNSYNCED_TAG_EN if lang == "en" else UNSYNCED_TAG) + title
            return title
        if key == "category":
            name = r.get("category_name_en") if lang == "en" else r.get("category_name")
            return name or r["category"] or ""
        if key == "source":
            return label("source", r["source"], lang)
        if key == "street":
            return r.get("street_name") or r.get("street_code") or ""
        if key == "reported_at":
            return timeutil.display(r["reported_at"])
        if key == "deadline":
            return clocks_text(self._clocks[i], self._now, lang)
        return ""

    def _drill_tag(self) -> str:
        return DRILL_TAG_EN if self._lang == "en" else DRILL_TAG

    def _tooltip(self, i: int, r: dict, key: str) -> str | None:
        lang = self._lang
        if key == "title":
            ext = r.get("external_id")
            if lang == "en":
                ids = f"No. {r['id']} · {r['uid']}" + (f" · source id {ext}" if ext else "")
            else:
                ids = f"编号 {r['id']} · {r['uid']}" + (f" · 来源编号 {ext}" if ext else "")
            return plain_tooltip(
                (self._drill_tag() if r.get("drill_id") is not None else "") + (r["title"] or ""),
                r.get("address"),
                ids,
                tr("未同步：本机的改动尚未被上级服务器确认", "Unsynced: local changes not yet confirmed by the upstream",
                   lang) if r.get("uid") in self._unsynced else None,
            )
        if key == "reported_at":
            return plain_tooltip(tr("上报 ", "Reported ", lang) + f"{r['reported_at']}")

        if key == "deadline":
            lines = []
            for c in self._clocks[i]:
                due = timeutil.to_iso(c.due)[:19].replace("T", " ")
                if lang == "en":
                    line = f"{label('clock', c.kind, lang)} deadline {due}"
                else:
                    line = f"{label('clock', c.kind)}时限 {due}"
                if c.stopped_at is not None:
                    line += tr("（已超时完成）", " (completed late)", lang) if c.overdue(self._now) \
                        else tr("（已按时完成）", " (completed in time)", lang)
                elif c.suspended_at is not None:
                    line += tr("（缓办暂停）", " (paused: deferred)", lang)
                elif c.overdue(self._now):
                    line += tr("（已超时）", " (overdue)", lang)
                lines.append(line)
            return plain_tooltip(*lines) or None
        return None


class _Loader(QObject):
    """One background thread with its own read connection; results come back as a signal."""

    finished = Signal(int, object)  # generation, QueueSnapshot | Exception

    def __init__(self, connect_fn: Callable[[], sqlite3.Connection], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._connect_fn = connect_fn
        self._reader: QueueReader | None = None  # used only on the loader thread
        self._sync_reader: QueueReader | None = None  # used only on the UI thread
        self._closed = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-queue")

    def submit(self, gen: int, f: QueueFilter, now: str) -> None:
        if not self._closed.is_set():
            self._executor.submit(self._run, gen, f, now)

    def run_sync(self, f: QueueFilter, now: str) -> QueueSnapshot:
        """Run on the calling thread (tests, threaded=False); uses a separate connection."""
        if self._sync_reader is None:
            self._sync_reader = QueueReader(self._connect_fn())
        return self._sync_reader.load(f, now)

    def _run(self, gen: int, f: QueueFilter, now: str) -> None:
        try:
            if self._reader is None:
                self._reader = QueueReader(self._connect_fn())
            result: object = self._reader.load(f, now)
        except Exception as exc:  # reported to the panel, never raised in the thread
            result = exc
        if self._closed.is_set():
            return
        try:
            self.finished.emit(gen, result)
        except RuntimeError:  # the panel is gone
            pass

    def _close_conn(self) -> None:
        if self._reader is not None:
            self._reader.conn.close()
            self._reader = None

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._executor.submit(self._close_conn)
        self._executor.shutdown(wait=True)
        if self._sync_reader is not None:
            self._sync_reader.conn.close()
            self._sync_reader = None


class EventQueuePanel(QWidget):
    """Tabs 待处理 / 办理中 / 超时 with counts, a filter row and the queue table.

    ``source``: a callable returning a new sqlite3 read connection, or a ``Replica``.
    ``scope_street``: the operator's role scope; the street filter is locked to it.
    ``watcher``: a shared ``ReplicaWatcher``; if None and ``watch`` is true the panel makes its own.
    ``threaded=False`` runs queries on the UI thread (for simple embedding and tests).
    """

    eventSelected = Signal(int)
    eventActivated = Signal(int)
    countsChanged = Signal(dict)
    loaded = Signal()
    bulkDispatchRequested = Signal(list)  # the selected rows (dicts with id, version, title, status)
    historySearchRequested = Signal(str)  # 历史查询: past events by phone or address (the search text)

    THROTTLE_MS = 300
    SEARCH_DEBOUNCE_MS = 250
    RETRY_MS = 1000

    def __init__(self, source, scope_street: str | None = None, parent: QWidget | None = None, *,
                 watcher: ReplicaWatcher | None = None, watch: bool = True, threaded: bool = True,
                 now_fn: Callable[[], dt.datetime] = timeutil.now, limit: int = 500,
                 assignee: str | None = None, lang: str = "zh") -> None:
        super().__init__(parent)
        self.setObjectName("eventQueuePanel")
        self._lang = lang
        self._connect_fn = connection_factory(source)
        self._now_fn = now_fn
        self._threaded = threaded
        # assignee: a department liaison's queue (only what was dispatched to / summoned that department)
        self._filter = QueueFilter(tab="pending", scope_street=scope_street, assignee=assignee, limit=limit)
        self._counts: dict[str, int] = {}
        self._selected_id: int | None = None
        self._restoring = False
        self._dark_override: bool | None = None
        self.last_snapshot: QueueSnapshot | None = None
        self.query_runs = 0

        # reload throttling state
        self._gen = 0
        self._inflight = False
        self._dirty = False
        self._last_start = -1e9
        self._last_duration_ms = 0.0
        self._want_interval = float("inf")
        self._closed = False
        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.timeout.connect(self._throttle_fired)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(self.SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self._apply_search)

        self._loader = _Loader(self._connect_fn, self)
        self._loader.finished.connect(self._on_loaded)

        self._model = EventQueueModel(self, now_fn=now_fn, lang=lang)
        self._model.dueStatesChanged.connect(self.reload)
        self._build_ui()
        self.reload_options()
        self._update_scheme()

        self._own_watcher = False
        self._watcher = watcher
        if watcher is None and watch:
            self._watcher = ReplicaWatcher(source, parent=self)
            self._own_watcher = True
        if self._watcher is not None:
            self._watcher.changed.connect(self.reload)

        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.reload()

    # -- UI ----------------------------------------------------------------------------------
    NARROW_PX = 720
    """Below this width the source and street columns fold away so the title stays readable."""
    VERY_NARROW_PX = 560
    """Below this width (a 1366-px desktop) the category column folds away too (the title says it)."""

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        narrow = self.width() < self.NARROW_PX
        for key in ("source", "street"):
            self._table.setColumnHidden(COL[key], narrow)
        self._table.setColumnHidden(COL["category"], self.width() < self.VERY_NARROW_PX)

    def _build_ui(self) -> None:
        lang = self._lang
        self._tabs = QTabBar(self)
        self._tabs.setObjectName("queueTabBar")
        self._tabs.setExpanding(False)
        self._tabs.setDrawBase(False)
        for tab in TABS:
            i = self._tabs.addTab(label("tab", tab, lang))
            self._tabs.setTabData(i, tab)
        self._tabs.setCurrentIndex(TABS.index(self._filter.tab))
        self._tabs.currentChanged.connect(self._on_tab)

        self._street = self._combo("queueStreetCombo", tr("街道", "Street", lang))
        self._category = self._combo("queueCategoryCombo",
                                     tr("事件类别（大类含其下小类）", "Category (a group includes its subcategories)", lang))
        self._source = self._combo("queueSourceCombo", tr("来源渠道", "Source channel", lang))
        self._klass = self._combo("queueClassCombo", tr("事件性质", "Event class", lang))
        self._window = self._combo("queueWindowCombo", tr("上报时间范围", "Reported within", lang))
        self._source.addItem(tr("全部来源", "All sources", lang), None)
        for code in ("grid_app", "hotline_12345", "citymgmt", "video_ai", "iot", "ecology_eye", "robot", "manual"):
            self._source.addItem(label("source", code, lang), code)
        self._klass.addItem(tr("全部性质", "All classes", lang), None)
        for code in ("ordinary", "emergency", "assigned"):
            self._klass.addItem(label("class", code, lang), code)
        for code in ("1h", "24h", "7d", "30d", None):
            self._window.addItem(label("window", code, lang), code)
        self._window.setCurrentIndex(self._window.count() - 1)

        self._search = QLineEdit(self)
        self._search.setObjectName("queueSearchEdit")
        self._search.setPlaceholderText(tr("搜索标题/地址/编号", "Search title/address/no.", lang))
        self._search.setClearButtonEnabled(True)
        self._search.setMaxLength(200)
        self._search.textChanged.connect(lambda _t: self._search_timer.start())
        self._search.returnPressed.connect(self._apply_search)

        for combo, key in ((self._street, "street"), (self._category, "category"), (self._source, "source"),
                           (self._klass, "klass"), (self._window, "window")):
            combo.currentIndexChanged.connect(lambda _i, c=combo, k=key: self._on_combo(k, c))

        self._history = QToolButton(self)
        self._history.setObjectName("queueHistoryButton")
        self._history.setText(tr("历史查询", "History", lang))
        self._history.setToolTip(tr("历史查询：按电话号码或地址查找以往事件（含已结案）",
                                    "History search: past events by phone number or address (closed ones too)", lang))
        self._history.clicked.connect(lambda: self.historySearchRequested.emit(self._search.text().strip()))

        filters = QWidget(self)
        filters.setObjectName("queueFilterRow")
        row = QHBoxLayout(filters)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        for w in (self._street, self._category, self._source, self._klass, self._window):
            # combos shrink to a few characters so the search field keeps a usable width
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(2)
            row.addWidget(w, 1)
        self._search.setMinimumWidth(96)
        row.addWidget(self._search, 2)

        self._table = QTableView(self)
        self._table.setObjectName("queueTable")
        self._table.setModel(self._model)
        self._table.setSortingEnabled(False)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Ctrl/Shift+click select several rows for 批量派遣 (bulk dispatch)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setWordWrap(False)
        self._table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self._table.setAlternatingRowColors(False)
        self._table.setShowGrid(False)
        self._table.verticalHeader().setVisible(False)
        vh = self._table.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 10)
        hh = self._table.horizontalHeader()
        hh.setObjectName("queueTableHeader")
        hh.setHighlightSections(False)
        hh.setStretchLastSection(False)
        em = self.fontMetrics().horizontalAdvance("中")
        widths = {"priority": 3, "status": 4, "category": 6, "source": 5.5, "street": 5.5,
                  "reported_at": 5.5, "deadline": 9.5 if lang == "en" else 7}
        for key, w in widths.items():
            hh.setSectionResizeMode(COL[key], QHeaderView.ResizeMode.Interactive)
            hh.resizeSection(COL[key], int(w * em + 16))
        hh.setSectionResizeMode(COL["title"], QHeaderView.ResizeMode.Stretch)
        self._table.selectionModel().selectionChanged.connect(self._on_selection)
        self._table.doubleClicked.connect(self._on_activated)
        self._table.activated.connect(self._on_activated)

        self._status = QLabel(self)
        self._status.setObjectName("queueStatusLabel")
        self._status.setTextFormat(Qt.TextFormat.PlainText)
        self._selection_label = QLabel(self)
        self._selection_label.setObjectName("queueSelectionLabel")
        self._selection_label.setTextFormat(Qt.TextFormat.PlainText)
        self._bulk = QPushButton(tr("批量派遣  Ctrl+D", "Bulk dispatch  Ctrl+D", lang), self)
        self._bulk.setObjectName("bulkDispatchButton")
        self._bulk.setToolTip(tr("把选中的事件（Ctrl/Shift+点击多选）派遣到同一对象",
                                 "Dispatch the selected events (Ctrl/Shift+click) to one target", lang))
        self._bulk.setAutoDefault(False)
        self._bulk.setEnabled(False)
        self._bulk.clicked.connect(self.request_bulk_dispatch)
        self._bulk_allowed = True
        self._bulk_shortcut = QShortcut(QKeySequence("Ctrl+D"), self,
                                        context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._bulk_shortcut.activated.connect(self.request_bulk_dispatch)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self._status, 1)
        bottom.addWidget(self._selection_label)
        bottom.addWidget(self._bulk)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self._tabs)
        top.addStretch(1)
        top.addWidget(self._history)
        lay.addLayout(top)
        lay.addWidget(filters)
        lay.addWidget(self._table, 1)
        lay.addLayout(bottom)

    def _combo(self, name: str, tip: str) -> QComboBox:
        c = QComboBox(self)
        c.setObjectName(name)
        c.setToolTip(tip)
        c.setAccessibleName(tip)
        c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        c.setMaxVisibleItems(20)
        return c

    def reload_options(self) -> None:
        """(Re)fill the street and category combos from the replica (small tables)."""
        conn = self._connect_fn()
        try:
            streets = conn.execute("SELECT code, name FROM streets ORDER BY code").fetchall()
            name_col = "name_en" if self._lang == "en" else "name_zh"
            cats = conn.execute(f"SELECT code, parent, {name_col} FROM categories ORDER BY code").fetchall()
        finally:
            conn.close()
        scope = self._filter.scope_street
        self._street.blockSignals(True)
        self._street.clear()
        if scope:
            name = next((n for c, n in streets if c == scope), scope)
            self._street.addItem(name, scope)
            self._street.setEnabled(False)
            self._street.setToolTip(tr("本岗位仅可查看本街道事件", "This post sees only its own street's events", self._lang))
        else:
            self._street.addItem(tr("全部街道", "All streets", self._lang), None)
            for code, name in streets:
                self._street.addItem(name, code)
        self._set_combo(self._street, self._filter.street or scope)
        self._street.blockSignals(False)

        self._category.blockSignals(True)
        self._category.clear()
        self._category.addItem(tr("全部类别", "All categories", self._lang), None)
        for depth, code, name in category_tree([(c, p, n) for c, p, n in cats]):
            self._category.addItem("\u3000" * depth + name, code)
        self._set_combo(self._category, self._filter.category)
        self._category.blockSignals(False)

    @staticmethod
    def _set_combo(combo: QComboBox, value) -> None:
        i = combo.findData(value)
        combo.setCurrentIndex(i if i >= 0 else 0)

    # -- state -------------------------------------------------------------------------------
    def filter(self) -> QueueFilter:
        return self._filter

    def set_filter(self, f: QueueFilter) -> None:
        """Show ``f`` (widgets follow the filter, never the other way round). The role
        scope stays what the panel was built with."""
        f = f.with_(scope_street=self._filter.scope_street, assignee=self._filter.assignee)
        self._filter = f
        for w in (self._tabs, self._street, self._category, self._source, self._klass, self._window, self._search):
            w.blockSignals(True)
        try:
            self._tabs.setCurrentIndex(TABS.index(f.tab))
            self._set_combo(self._street, f.street or f.scope_street)
            self._set_combo(self._category, f.category)
            self._set_combo(self._source, f.source)
            self._set_combo(self._klass, f.klass)
            self._set_combo(self._window, f.window)
            self._search.setText(f.text)
        finally:
            for w in (self._tabs, self._street, self._category, self._source, self._klass, self._window,
                      self._search):
                w.blockSignals(False)
        self._update_tab_titles()
        self._request(self.THROTTLE_MS)

    def model(self) -> EventQueueModel:
        return self._model

    def table(self) -> QTableView:
        return self._table

    def tab_bar(self) -> QTabBar:
        return self._tabs

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def selected_event_id(self) -> int | None:
        return self._selected_id

    def watcher(self) -> ReplicaWatcher | None:
        return self._watcher

    @Slot(int)
    def select_event(self, event_id: int, emit: bool = False) -> bool:
        """Select ``event_id`` (e.g. clicked on the map). Returns False if it is not listed;
        it stays the remembered selection and is selected when it shows up."""
        self._selected_id = event_id
        found = self._restore_selection()
        if emit:
            self.eventSelected.emit(event_id)
        return found

    def set_dark_theme(self, dark: bool | None) -> None:
        """Force the due-state colours for a dark (True) or light (False) theme; None = follow the palette."""
        self._dark_override = dark
        self._update_scheme()

    def _update_scheme(self) -> None:
        dark = self._dark_override
        if dark is None:
            dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        self._model.set_dark(dark)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._update_scheme()
        super().changeEvent(event)

    # -- widget → filter ---------------------------------------------------------------------
    @Slot(int)
    def _on_tab(self, index: int) -> None:
        tab = self._tabs.tabData(index) or TABS[index]
        self._update_filter(tab=tab)

    def _on_combo(self, key: str, combo: QComboBox) -> None:
        value = combo.currentData()
        if key == "street" and self._filter.scope_street:
            value = None  # the scope already restricts the rows
        self._update_filter(**{key: value})

    @Slot()
    def _apply_search(self) -> None:
        self._search_timer.stop()
        text = self._search.text().strip()
        if text != self._filter.text:
            self._update_filter(text=text)

    def _update_filter(self, **changes) -> None:
        f = self._filter.with_(**changes)
        if f != self._filter:
            self._filter = f
            # the user's own change: leading edge at once, then at most one per THROTTLE_MS
            self._request(self.THROTTLE_MS)

    # -- loading -----------------------------------------------------------------------------
    @Slot()
    def reload(self) -> None:
        """Re-run the query soon (replica changed, clock crossed a deadline): a burst of calls
        makes one query; at most one per ``THROTTLE_MS`` (or per twice the last load time
        when loads are slow), and never two in flight."""
        self._request(self._min_interval_ms())

    def _request(self, interval_ms: float) -> None:
        if self._closed:
            return
        self._dirty = True
        if self._inflight:  # _on_loaded re-requests with the shortest interval asked for
            self._want_interval = min(self._want_interval, interval_ms)
            return
        wait = interval_ms - (time.monotonic() - self._last_start) * 1000
        if wait <= 0:
            self._throttle.stop()
            self._start_query()
        elif not self._throttle.isActive() or self._throttle.remainingTime() > wait:
            self._throttle.start(int(wait) + 1)

    def _min_interval_ms(self) -> float:
        # a slow replica (counts over 100k+ open events) keeps the loader at most half busy
        return max(self.THROTTLE_MS, 2 * self._last_duration_ms)

    @Slot()
    def reload_now(self) -> None:
        """Query now, skipping the throttle (still one query in flight)."""
        if self._closed:
            return
        self._dirty = True
        self._throttle.stop()
        if not self._inflight:
            self._start_query()

    @Slot()
    def _throttle_fired(self) -> None:
        if self._dirty and not self._inflight:
            self._start_query()

    def _start_query(self) -> None:
        self._dirty = False
        self._last_start = time.monotonic()
        self._gen += 1
        self.query_runs += 1
        now = timeutil.to_iso(self._now_fn())
        if self._threaded:
            self._inflight = True
            self._loader.submit(self._gen, self._filter, now)
        else:
            try:
                result: object = self._loader.run_sync(self._filter, now)
            except Exception as exc:
                result = exc
            self._on_loaded(self._gen, result)

    @Slot(int, object)
    def _on_loaded(self, gen: int, result: object) -> None:
        self._inflight = False  # one query in flight at a time, so this is the latest one
        self._last_duration_ms = (time.monotonic() - self._last_start) * 1000
        if isinstance(result, Exception):
            self._status.setText(tr("查询失败：", "Query failed: ", self._lang) + f"{result}")
            if isinstance(result, sqlite3.OperationalError):
                QTimer.singleShot(self.RETRY_MS, self, self.reload)
        elif isinstance(result, QueueSnapshot) and result.filter == self._filter:
            self._apply(result)
        if self._dirty:
            interval, self._want_interval = self._want_interval, float("inf")
            self._request(min(interval, self._min_interval_ms()))

    def _apply(self, snap: QueueSnapshot) -> None:
        self.last_snapshot = snap
        bar = self._table.verticalScrollBar()
        scroll = bar.value()
        self._model.refresh(snap.rows)
        self._restore_selection()
        bar.setValue(min(scroll, bar.maximum()))
        if snap.counts != self._counts:
            self._counts = dict(snap.counts)
            self._update_tab_titles()
            self.countsChanged.emit(dict(self._counts))
        total = snap.counts.get(snap.filter.tab, len(snap.rows))
        if self._lang == "en":
            text = f"{total} total"
            if snap.truncated:
                text += f", showing the first {len(snap.rows)} (narrow the filters)"
            text += f" · updated {snap.now[11:19]}"
            counted = "counts reused" if snap.counts_cached else f"counts {snap.count_ms:.1f} ms"
            tip = f"query {snap.query_ms:.1f} ms, {counted}"
        else:
            text = f"共 {total} 条"
            if snap.truncated:
                text += f"，显示前 {len(snap.rows)} 条（请缩小筛选范围）"
            text += f" · 更新于 {snap.now[11:19]}"
            counted = "计数沿用" if snap.counts_cached else f"计数 {snap.count_ms:.1f} ms"
            tip = f"查询 {snap.query_ms:.1f} ms，{counted}"
        self._status.setText(text)
        self._status.setToolTip(plain_tooltip(tip))
        self.loaded.emit()

    def _update_tab_titles(self) -> None:
        for i, tab in enumerate(TABS):
            n = self._counts.get(tab)
            self._tabs.setTabText(i, label("tab", tab, self._lang) + (f" ({n})" if n is not None else ""))

    # -- selection ---------------------------------------------------------------------------
    def _restore_selection(self) -> bool:
        sm = self._table.selectionModel()
        row = self._model.row_of(self._selected_id)
        self._restoring = True
        try:
            if row < 0:
                sm.clearSelection()
                return False
            if not sm.isRowSelected(row, QModelIndex()):
                sm.setCurrentIndex(self._model.index(row, 0),
                                   QItemSelectionModel.SelectionFlag.ClearAndSelect
                                   | QItemSelectionModel.SelectionFlag.Rows)
            return True
        finally:
            self._restoring = False

    def selected_rows(self) -> list[dict]:
        """The selected rows in queue order (for bulk dispatch)."""
        rows = sorted(i.row() for i in self._table.selectionModel().selectedRows())
        return [r for r in (self._model.row_data(i) for i in rows) if r is not None]

    def set_history_search_allowed(self, allowed: bool) -> None:
        """Show the 历史查询 (search history) button; hidden on the wall."""
        self._history.setVisible(allowed)

    def history_button(self) -> QToolButton:
        return self._history

    def set_bulk_dispatch_allowed(self, allowed: bool, reason: str = "") -> None:
        """Hide 批量派遣 for sessions that may not dispatch (wall, department)."""
        self._bulk_allowed = allowed
        self._bulk.setVisible(allowed)
        self._bulk_shortcut.setEnabled(allowed)
        if reason:
            self._bulk.setToolTip(reason)
        self._update_selection_label()

    @Slot()
    def request_bulk_dispatch(self) -> None:
        rows = self.selected_rows()
        if self._bulk_allowed and rows:
            self.bulkDispatchRequested.emit(rows)

    def _update_selection_label(self) -> None:
        n = len(self._table.selectionModel().selectedRows())
        sel = f"{n} selected" if self._lang == "en" else f"已选 {n} 件"
        self._selection_label.setText(sel if n > 1 else "")
        self._bulk.setEnabled(self._bulk_allowed and n >= 1)

    @Slot()
    def _on_selection(self, *_args) -> None:
        self._update_selection_label()
        if self._restoring:
            return
        sm = self._table.selectionModel()
        rows = sm.selectedRows()
        if not rows:
            return
        current = sm.currentIndex()
        row = current.row() if current.isValid() and sm.isRowSelected(current.row(), QModelIndex()) else rows[0].row()
        event_id = self._model.event_id(row)
        if event_id is not None and event_id != self._selected_id:
            self._selected_id = event_id
            self.eventSelected.emit(event_id)

    @Slot(QModelIndex)
    def _on_activated(self, index: QModelIndex) -> None:
        event_id = self._model.event_id(index.row())
        if event_id is not None:
            self.eventActivated.emit(event_id)

    # -- teardown ----------------------------------------------------------------------------
    @Slot()
    def shutdown(self) -> None:
        """Stop timers, the loader thread and (if the panel made it) the watcher. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._throttle.stop()
        self._search_timer.stop()
        self._model.stop_clock()
        self._loader.close()
        if self._watcher is not None:
            try:
                self._watcher.changed.disconnect(self.reload)
            except (RuntimeError, TypeError):
                pass
            if self._own_watcher:
                self._watcher.close()


def category_tree(rows: list[tuple[str, str | None, str]]) -> list[tuple[int, str, str]]:
    """``[(depth, code, name), ...]``: each parent followed by its children (codes sorted);
    a category whose parent is unknown is a root."""
    codes = {c for c, _, _ in rows}
    children: dict[str | None, list[tuple[str, str]]] = {}
    for code, parent, name in rows:
        key = parent if parent in codes and parent != code else None
        children.setdefault(key, []).append((code, name))
    out: list[tuple[int, str, str]] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for code, name in sorted(children.get(parent, [])):
            if code in seen:
                continue
            seen.add(code)
            out.append((depth, code, name))
            walk(code, depth + 1)

    walk(None, 0)
    for code, _, name in sorted(rows):  # cycles: still list every category once
        if code not in seen:
            seen.add(code)
            out.append((0, code, name))
    return out
