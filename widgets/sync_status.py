"""Sync in the console (issue 9): the status-bar indicator, the refusals dialog and the start-up hook.

- ``SyncStatusModel`` reads ``app.sync_status.read_status`` on one background thread (its own read
  connection), coalescing requests; it is refreshed by each worker round and by every replica commit.
- ``SyncIndicator``: ● 在线/离线 · 待同步 N · 上次同步 HH:MM:SS · a red 被拒 N badge while refusals are
  unacknowledged; a click opens ``RefusalsDialog`` (event, action, reason, the state the replica
  rolled back to, time; 知道了 per row and for all).
- ``install_sync(window, upstream)`` puts it together for ``onemap --db PATH [--upstream DSN]``:
  a sync client (``sync_state`` row) with an upstream (given, or remembered by clone) gets the
  background worker (``widgets/sync_worker.py``); the queue marks events with unconfirmed changes.

Citizen text (event titles, server reasons) is shown as plain text; tooltips escape it.
"""

from __future__ import annotations

import html
import logging
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.labels import label
from app.sync_status import (
    NOT_A_CLIENT,
    OFFLINE,
    ONLINE,
    SyncStatus,
    acknowledge,
    age_text,
    read_status,
    sync_config,
)

log = logging.getLogger(__name__)

# WALL-UX colours: body #d3d6dd, secondary #B9B8CE, accent cyan #00E4FF, Ⅱ orange tint #ff8a45,
# Ⅲ yellow tint #fddd60; saturated red #d9001b only as a fill behind white text.
COLOURS = {ONLINE: "#00E4FF", OFFLINE: "#ff8a45", "unknown": "#B9B8CE", "idle": "#B9B8CE", "not_client": "#B9B8CE"}
BADGE_QSS = "QPushButton#SyncRefusedBadge { background: #d9001b; color: #ffffff; font-weight: bold; " \
            "border: none; border-radius: 3px; padding: 1px 8px; }"  # fmt: skip


def t(key: str, lang: str) -> str:
    return label("sync", key, lang)


def _plain_label(name: str) -> QLabel:
    lab = QLabel()
    lab.setObjectName(name)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    return lab


def _tooltip(*lines: str | None) -> str:
    body = "<br>".join(html.escape(x) for x in lines if x)
    return f"<p style='white-space:pre-wrap'>{body}</p>" if body else ""


def local_time(text: str | None, fmt: str = "%m-%d %H:%M:%S") -> str:
    """A stored time (any offset) shown in Asia/Shanghai."""
    if not text:
        return ""
    try:
        return f"{timeutil.parse(text):{fmt}}"
    except ValueError:
        return text


@dataclass(frozen=True)
class _Offline:
    """A round that raised: shown as offline with the error."""

    error: str
    online: bool = False


class SyncStatusModel(QObject):
    """The current ``SyncStatus``, re-read off the UI thread whenever something may have changed."""

    statusChanged = Signal(object)  # SyncStatus
    _loaded = Signal(object)

    def __init__(self, replica, *, lang: str = "zh", parent: QObject | None = None, threaded: bool = True,
                 uids_among=None) -> None:
        super().__init__(parent)
        self.uids_among = uids_among  # () -> list of event uids to mark (the queue's rows); None = all
        self.setObjectName("syncStatusModel")
        self.replica = replica
        self.lang = lang
        self.report: object | None = None
        self.running = False  # a worker is running (else no round will ever report)
        self._status: SyncStatus = NOT_A_CLIENT
        self._threaded = threaded
        self._inflight = False
        self._dirty = False
        self._closed = threading.Event()
        self._conn: sqlite3.Connection | None = None  # used only on the reader thread
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-status") if threaded else None
        self._loaded.connect(self._on_loaded)

    def status(self) -> SyncStatus:
        return self._status

    def set_report(self, report: object) -> None:
        self.report = report
        self.refresh()

    def set_error(self, text: str) -> None:
        self.report = _Offline(text)
        self.refresh()

    def refresh(self) -> None:
        """Re-read soon (one read in flight at a time; requests meanwhile make one more)."""
        if self._closed.is_set():
            return
        if not self._threaded:
            self.refresh_now()
            return
        if self._inflight:
            self._dirty = True
            return
        self._inflight = True
        self._executor.submit(self._read_in_thread, self.report, self._among())

    def refresh_now(self) -> SyncStatus:
        """Read on the calling thread (tests, first paint)."""
        conn = self.replica.reader()
        try:
            status = read_status(conn, report=self.report, lang=self.lang, uids_among=self._among())
        finally:
            conn.close()
        self._publish(status)
        return status

    def _among(self) -> list[str] | None:
        return None if self.uids_among is None else list(self.uids_among())

    def _read_in_thread(self, report: object | None, among: list[str] | None) -> None:
        try:
            if self._conn is None:
                self._conn = self.replica.reader()
            result: object = read_status(self._conn, report=report, lang=self.lang, uids_among=among)
        except Exception as exc:  # noqa: BLE001 - reported, never raised on this thread
            result = exc
        if self._closed.is_set():
            return
        try:
            self._loaded.emit(result)
        except RuntimeError:
            pass

    def _on_loaded(self, result: object) -> None:
        self._inflight = False
        if isinstance(result, Exception):
            log.warning("sync status read failed: %s", result)
        else:
            self._publish(result)  # type: ignore[arg-type]
        if self._dirty:
            self._dirty = False
            self.refresh()

    def _publish(self, status: SyncStatus) -> None:
        self._status = status
        self.statusChanged.emit(status)

    def acknowledge(self, mutation_ids: list[int] | None, actor: str) -> int:
        """Acknowledge refusals (None = all unacknowledged), then re-read."""
        n = acknowledge(self.replica, mutation_ids, actor)
        self.refresh_now()
        return n

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._executor is not None:
            self._executor.submit(self._close_conn)
            self._executor.shutdown(wait=True)

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SyncIndicator(QWidget):
    """● 在线 · 待同步 N · 上次同步 HH:MM:SS · [被拒 N], in the main window's status bar."""

    openRequested = Signal()

    def __init__(self, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SyncIndicator")
        self.lang = lang
        self.state_key = "unknown"
        self.conn_label = _plain_label("SyncConnection")
        self.pending_label = _plain_label("SyncPending")
        self.last_label = _plain_label("SyncLast")
        self.badge = QPushButton()
        self.badge.setObjectName("SyncRefusedBadge")
        self.badge.setStyleSheet(BADGE_QSS)
        self.badge.setCursor(Qt.CursorShape.PointingHandCursor)
        self.badge.clicked.connect(self.openRequested)
        self.badge.hide()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 0, 8, 0)
        lay.setSpacing(12)
        for w in (self.conn_label, self.pending_label, self.last_label, self.badge):
            lay.addWidget(w)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.button() == Qt.MouseButton.LeftButton:
            self.openRequested.emit()
        super().mousePressEvent(event)

    def show_status(self, s: SyncStatus, *, running: bool = True) -> None:
        lang = self.lang
        if not s.is_client:
            key = "not_client"
        elif not running and s.connection != OFFLINE:
            key = "idle"
        else:
            key = s.connection
        self.state_key = key
        self.conn_label.setText(f"● {t(key, lang)}")
        self.conn_label.setStyleSheet(f"color: {COLOURS.get(key, '#B9B8CE')};")
        self.pending_label.setVisible(s.is_client)
        self.last_label.setVisible(s.is_client)
        pending = f"{t('pending', lang)} {s.pending}"
        if s.pending and (s.oldest_pending_age_s or 0) >= 60:  # a backlog: say how old it is
            age = age_text(s.oldest_pending_age_s, lang)
            pending += f" (oldest {age})" if lang == "en" else f"（最早 {age}前）"
        self.pending_label.setText(pending)
        warn = s.pending and s.connection != ONLINE
        self.pending_label.setStyleSheet(f"color: {'#fddd60' if warn else '#d3d6dd'};")
        self.last_label.setText(f"{t('last_sync', lang)} {s.last_sync_hms or t('never', lang)}")
        self.last_label.setStyleSheet("color: #B9B8CE;")
        n = len(s.refusals)
        self.badge.setText(f"{t('refused', lang)} {n}")
        self.badge.setVisible(n > 0)
        lines = [
            f"{t('upstream', lang)}: {s.upstream or '—'}" if s.is_client else t("not_client", lang),
            f"{t('client_id', lang)}: {s.client_id}" if s.client_id else None,
            f"{t('cursor', lang)}: {s.cursor}" if s.is_client else None,
            f"{t('oldest', lang)}: {age_text(s.oldest_pending_age_s, lang)}" if s.pending else None,
            f"{t('error', lang)}: {s.last_error}" if s.last_error else None,
        ]
        self.setToolTip(_tooltip(*lines))


class RefusalsDialog(QDialog):
    """The refused changes nobody has acknowledged yet, with 知道了 per row and for all."""

    eventSelected = Signal(int)
    COLUMNS = ("col_time", "col_event", "col_action", "col_reason", "col_state", "")

    def __init__(self, model: SyncStatusModel, actor: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SyncRefusalsDialog")
        self.model = model
        self.actor = actor
        lang = self.lang = model.lang
        self.setWindowTitle(f"{t('refusals_title', lang)} — {'OneMap Console' if lang == 'en' else '一张图指挥台'}")
        self.resize(1100, 420)
        self.intro = _plain_label("SyncRefusalsIntro")
        self.intro.setWordWrap(True)
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setObjectName("SyncRefusalsTable")
        self.table.setHorizontalHeaderLabels([t(c, lang) if c else "" for c in self.COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.ack_all_button = QPushButton(t("ack_all", lang))
        self.ack_all_button.setObjectName("SyncAckAll")
        self.ack_all_button.clicked.connect(self.acknowledge_all)
        close = QPushButton(t("close", lang))
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.ack_all_button)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.intro)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        self.row_buttons: dict[int, QPushButton] = {}
        self._refusals: tuple = ()
        self._shown = False
        model.statusChanged.connect(self.show_refusals)
        self.show_refusals(model.status())

    def show_refusals(self, status: SyncStatus) -> None:
        if self.table.rowCount() == len(status.refusals) and status.refusals == self._refusals and self._shown:
            return  # unchanged: keep the operator's selection and scroll position (the status refreshes every ~2 s)
        self._shown = True
        lang = self.lang
        self._refusals = status.refusals
        n = len(status.refusals)
        if lang == "en":
            self.intro.setText(f"The upstream refused {n} change(s) made on this desk. Each was rolled back to the "
                               "server's state; read the reason, then acknowledge it." if n else
                               "No unacknowledged refused changes.")  # fmt: skip
        else:
            self.intro.setText(f"上级服务器拒绝了本机的 {n} 项改动，已回退到服务器上的状态。请阅读原因后点“知道了”。"
                               if n else "没有待确认的被拒改动。")  # fmt: skip
        self.table.setRowCount(n)
        self.row_buttons = {}
        for i, r in enumerate(status.refusals):
            event = f"#{r.event_id} {r.title}" if r.event_id is not None else r.title or r.event_uid
            state = r.server_status_label + (f" (v{r.server_version})" if r.server_version is not None else "")
            cells = (local_time(r.refused_at), event, r.op_label, r.reason, state)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)  # plain text: never rendered as HTML
                item.setData(Qt.ItemDataRole.UserRole, r.mutation_id)
                if c in (1, 3):
                    item.setToolTip(_tooltip(text, r.event_uid if c == 1 else None))
                self.table.setItem(i, c, item)
            button = QPushButton(t("ack", lang))
            button.setObjectName(f"SyncAck_{r.mutation_id}")
            button.clicked.connect(lambda _c=False, m=r.mutation_id: self.acknowledge([m]))
            self.table.setCellWidget(i, len(self.COLUMNS) - 1, button)
            self.row_buttons[r.mutation_id] = button
        self.table.resizeRowsToContents()
        self.ack_all_button.setEnabled(n > 0)

    def acknowledge(self, mutation_ids: list[int]) -> int:
        return self.model.acknowledge(mutation_ids, self.actor)

    def acknowledge_all(self) -> int:
        return self.model.acknowledge([r.mutation_id for r in self._refusals], self.actor)

    def _on_double_click(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._refusals) and self._refusals[row].event_id is not None:
            self.eventSelected.emit(self._refusals[row].event_id)


class SyncUi(QObject):
    """The console's sync parts: status model, indicator, worker (None when not syncing), dialog."""

    def __init__(self, window, model: SyncStatusModel, indicator: SyncIndicator, worker=None) -> None:
        super().__init__(window)
        self.window = window
        self.model = model
        self.indicator = indicator
        self.worker = worker
        self.dialog: RefusalsDialog | None = None
        self._shut = False
        model.running = worker is not None
        model.statusChanged.connect(self._on_status)
        indicator.openRequested.connect(self.open_refusals)
        window.watcher.changed.connect(model.refresh)
        window.queue.loaded.connect(model.refresh)  # new rows to mark
        if worker is not None:
            worker.reported.connect(model.set_report)
            worker.failed.connect(model.set_error)
            worker.stopped.connect(self._on_worker_stopped)

    def _on_status(self, status: SyncStatus) -> None:
        self.indicator.show_status(status, running=self.model.running)
        self.window.queue.model().set_unsynced(status.unsynced_uids)

    def _on_worker_stopped(self) -> None:
        self.model.running = False
        self.model.refresh()

    def open_refusals(self) -> RefusalsDialog:
        if self.dialog is None:
            self.dialog = RefusalsDialog(self.model, self.window.service.actor, self.window)
            self.dialog.eventSelected.connect(self.window.state.select_event)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def shutdown(self) -> None:
        """Stop the worker (joining its thread) and the status reader; idempotent."""
        if self._shut:
            return
        self._shut = True
        if self.worker is not None:
            self.worker.stop()
        self.model.close()


def install_sync(window, upstream: str | None = None, *, start_worker: bool = True,
                 engine_factory=None, interval_s: float = 2.0) -> SyncUi | None:
    """Sync status (and, for a sync client with an upstream, the background worker) in ``window``.

    Nothing is installed for a plain replica started without ``--upstream``."""
    from app.sync_status import mask_dsn

    replica = window.replica
    conn = replica.reader()
    try:
        is_client, remembered = sync_config(conn)
    finally:
        conn.close()
    if not is_client and not upstream:
        return None
    lang = window.state.session.lang
    queue_model = window.queue.model()
    model = SyncStatusModel(replica, lang=lang, parent=window,
                            uids_among=lambda: [r["uid"] for r in queue_model.rows()])  # fmt: skip
    indicator = SyncIndicator(lang)
    window.statusBar().addPermanentWidget(indicator)
    dsn = upstream or remembered
    worker = None
    if not is_client:
        print(f"onemap: {replica.path} is not a sync replica; --upstream {mask_dsn(upstream)} is ignored "
              "(make one with: onemap --db PATH clone --upstream DSN)", file=sys.stderr)  # fmt: skip
    elif not dsn:
        print("onemap: this sync replica remembers no upstream; give one with --upstream DSN", file=sys.stderr)
    elif start_worker:
        from widgets.sync_worker import SyncWorker

        worker = SyncWorker(replica, upstream, engine_factory=engine_factory, interval_s=interval_s, parent=window)
    ui = SyncUi(window, model, indicator, worker)
    model.refresh_now()
    if worker is not None:
        from PySide6.QtCore import QCoreApplication

        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(ui.shutdown)
        worker.start()
    window.sync_ui = ui
    return ui


class WallSync(QObject):
    """The wall's background sync: the same worker as a desk's (the wall writes nothing, so it only
    pulls), no status bar. The wall's freshness line says when the upstream is unreachable."""

    def __init__(self, window, worker) -> None:
        super().__init__(window)
        self.window = window
        self.worker = worker
        self._shut = False
        worker.reported.connect(self._on_report)
        worker.failed.connect(lambda _text: self._set_online(False))

    def _on_report(self, report) -> None:
        self._set_online(bool(getattr(report, "online", False)))

    def _set_online(self, online: bool) -> None:
        self.window.set_sync_online(online)

    def shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        self.worker.stop()


def install_wall_sync(window, upstream: str | None = None, *, start_worker: bool = True,
                      engine_factory=None, interval_s: float = 2.0) -> WallSync | None:
    """Start the sync worker behind the wall when its replica is a sync client (``--upstream`` or
    the remembered upstream); None otherwise."""
    from app.sync_status import mask_dsn

    replica = window.replica
    conn = replica.reader()
    try:
        is_client, remembered = sync_config(conn)
    finally:
        conn.close()
    if not is_client:
        if upstream:
            print(f"onemap: {replica.path} is not a sync replica; --upstream {mask_dsn(upstream)} is ignored "
                  "(make one with: onemap --db PATH clone --upstream DSN)", file=sys.stderr)  # fmt: skip
        return None
    if not (upstream or remembered):
        print("onemap: this sync replica remembers no upstream; give one with --upstream DSN", file=sys.stderr)
        return None
    if not start_worker:
        return None
    from PySide6.QtCore import QCoreApplication

    from widgets.sync_worker import SyncWorker

    worker = SyncWorker(replica, upstream, engine_factory=engine_factory, interval_s=interval_s, parent=window)
    ui = WallSync(window, worker)
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(ui.shutdown)
    worker.start()
    return ui
