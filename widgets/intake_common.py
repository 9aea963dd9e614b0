"""Small pieces the intake screens share (import, export, quarantine, merge suggestions, history):
a long task in a worker with progress and cancel (:class:`TaskDialog`), a message line, a count
tile, a read-only table of dict rows (:class:`RowsModel`, :func:`row_table`).

:class:`CancellableTask` runs ``fn(*args, progress=…, cancel=…, **kwargs)`` on the thread pool
(:func:`widgets.workers.run_in_thread`). The worker reports through a :class:`ProgressRelay`
(a queued signal): it never touches a widget. ``cancel()`` sets the ``threading.Event`` the
function polls; everything else arrives on the UI thread as signals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFontMetrics, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from widgets.workers import ProgressRelay, Worker, run_in_thread


def plain(text: str = "", name: str | None = None, *, wrap: bool = True) -> QLabel:
    """A label that shows ``text`` literally (file names and raw records are never rich text)."""
    lab = QLabel(text)
    lab.setTextFormat(Qt.TextFormat.PlainText)
    lab.setWordWrap(wrap)
    if name:
        lab.setObjectName(name)
    return lab


class MessageLine(QLabel):
    """One status message with a kind (ok / info / warn / error) the style sheet colours."""

    def __init__(self, parent: QWidget | None = None, name: str = "intakeMessage") -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.kind = ""
        self.hide()

    def say(self, kind: str, text: str) -> None:
        self.kind = kind if text else ""
        self.setText(text)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.setVisible(bool(text))


class CountTile(QFrame):
    """Label over a big tabular number (like a KPI tile)."""

    def __init__(self, caption: str, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("countTile")
        self.value = plain("–", "countValue", wrap=False)
        self.value.setAccessibleName(caption)
        self.value.setProperty("tile", name)
        self.caption = plain(caption, "countCaption", wrap=False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(0)
        lay.addWidget(self.caption)
        lay.addWidget(self.value)

    def set_value(self, n: int | None, *, alert: bool = False) -> None:
        self.value.setText("–" if n is None else f"{n:,}")
        self.value.setProperty("alert", bool(alert))
        self.value.style().unpolish(self.value)
        self.value.style().polish(self.value)


class CancellableTask(QObject):
    """One long job at a time with progress and cancel. Signals arrive on the UI thread:
    ``progress(fraction, text)``, then — once the worker has ended, and ``running`` is False
    again — ``succeeded(result)`` or ``failed(exception)``, then ``finished()``. Signals of an
    earlier run never reach a later one. ``elapsed_s`` is the wall time of the last run."""

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay = ProgressRelay(self)
        self._relay.progress.connect(self._on_progress)
        self.cancel_event = threading.Event()
        self.worker: Worker | None = None
        self.running = False
        self.last_fraction = 0.0
        self.last_text = ""
        self.elapsed_s = 0.0
        self._t0 = 0.0
        self._gen = 0
        self._outcome: tuple | None = None

    def start(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Run ``fn(*args, progress=…, cancel=…, **kwargs)`` in a worker; False if one runs."""
        if self.running:
            return False
        self.running = True
        self._gen += 1
        gen = self._gen
        self.cancel_event = threading.Event()
        self.last_fraction, self.last_text = 0.0, ""
        self._outcome = None
        self._t0 = time.perf_counter()
        self.worker = run_in_thread(
            fn, *args, progress=self._relay.emit_progress, cancel=self.cancel_event,
            on_result=lambda v: self._store(gen, (True, v)), on_error=lambda e: self._store(gen, (False, e)),
            on_finished=lambda: self._done(gen), **kwargs,
        )  # fmt: skip
        return True

    def cancel(self) -> None:
        """Ask the job to stop (it stops at its next check and reports how far it got)."""
        self.cancel_event.set()

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_event.is_set()

    def _on_progress(self, fraction: float, text: str) -> None:
        if self.running:
            self.last_fraction, self.last_text = fraction, text
            self.progress.emit(fraction, text)

    def _store(self, gen: int, outcome: tuple) -> None:
        if gen == self._gen:
            self._outcome = outcome

    def _done(self, gen: int) -> None:
        """The worker has ended: the task is idle again, then its outcome is announced (one slot,
        so a listener may start the next run at once)."""
        if gen != self._gen or not self.running:
            return
        self.running = False
        self.elapsed_s = time.perf_counter() - self._t0
        ok, value = self._outcome or (False, RuntimeError("the worker ended without a result"))
        self._outcome = None
        (self.succeeded if ok else self.failed).emit(value)
        self.finished.emit()


def one_shot(fn: Callable[..., Any], *args: Any, on_result: Callable[[Any], None],
             on_error: Callable[[BaseException], None], **kwargs: Any) -> Worker:  # fmt: skip
    """A short job (a query, one write) off the UI thread; results on the UI thread."""
    return run_in_thread(fn, *args, on_result=on_result, on_error=on_error, **kwargs)


def human_error(exc: BaseException) -> str:
    """The operator's text of a refusal (the Chinese part first when the message is bilingual)."""
    reason = getattr(exc, "reason", None)
    text = str(reason or exc) or type(exc).__name__
    return text


def labelled_form() -> QFormLayout:
    """A form with its labels right-aligned."""
    form = QFormLayout()
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    form.setHorizontalSpacing(10)
    return form


class RowsModel(QAbstractTableModel):
    """Read-only table of dict rows; ``COLUMNS`` is ``[(key, header), …]``, ``COLUMNS_EN``
    ``{key: English header}`` for ``lang='en'``."""

    COLUMNS: list[tuple[str, str]] = []
    COLUMNS_EN: dict[str, str] = {}

    def __init__(self, parent=None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.lang = lang
        self._rows: list[dict] = []

    def set_rows(self, rows: list[dict]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list[dict]:
        return list(self._rows)

    def row_data(self, i: int) -> dict | None:
        return self._rows[i] if 0 <= i < len(self._rows) else None

    def row_of(self, rid: int | None) -> int:
        return next((i for i, r in enumerate(self._rows) if r["id"] == rid), -1)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            key, header = self.COLUMNS[section]
            return self.COLUMNS_EN.get(key, header) if self.lang == "en" else header
        return None


def row_table(parent: QWidget, name: str, model: QAbstractTableModel) -> QTableView:
    """A table view that selects one whole row and edits nothing."""
    table = QTableView(parent)
    table.setObjectName(name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setHighlightSections(False)
    return table


def select_row(table: QTableView, model: RowsModel, rid: int) -> bool:
    """Select the row with id ``rid``; False when it is not shown."""
    row = model.row_of(rid)
    if row < 0:
        return False
    table.selectRow(row)
    return True


def debounce(parent: QObject, ms: int, slot: Callable[[], None]) -> QTimer:
    """A single-shot timer that calls ``slot`` ``ms`` after it is started (restart it only when idle
    and a burst of requests makes one call)."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer


def fit_columns(table: QTableView, metrics: QFontMetrics, widths: dict[int, float], stretch: int) -> None:
    """Row height from ``metrics``; columns ``widths`` (in em of 中) wide and adjustable; ``stretch`` takes the rest."""
    table.verticalHeader().setDefaultSectionSize(metrics.height() + 10)
    hh = table.horizontalHeader()
    em = metrics.horizontalAdvance("中")
    for col, w in widths.items():
        hh.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        hh.resizeSection(col, int(w * em + 16))
    hh.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)


class TaskDialog(QDialog):
    """A dialog that runs one :class:`CancellableTask` with a progress bar and 开始 / 取消 / 关闭.
    Esc or closing while the task runs cancels it first and closes once it has stopped.
    Subclasses provide ``start()``, ``_set_running(on)``, ``_on_result(result)`` and ``_on_error(exc)``."""

    BAR_MAX = 1000
    #: while cancelling, the progress line keeps the text :meth:`cancel` put there
    HOLD_TEXT_WHILE_CANCELLING = False

    def __init__(self, parent: QWidget | None = None, *, lang: str = "zh") -> None:
        super().__init__(parent)
        self.lang = lang
        self._close_when_done = False
        self.task = CancellableTask(self)
        self.task.progress.connect(self._on_progress)
        self.task.succeeded.connect(self._on_result)
        self.task.failed.connect(self._on_error)
        self.task.finished.connect(self._on_finished)

    def _progress_widgets(self, bar_name: str) -> None:
        """``self.bar``, ``self.progress_text`` and ``self.message``."""
        self.bar = QProgressBar(self)
        self.bar.setObjectName(bar_name)
        self.bar.setRange(0, self.BAR_MAX)
        self.progress_text = plain("", "progressText")
        self.message = MessageLine(self)

    def _task_buttons(self, start_text: str, cancel_name: str) -> QHBoxLayout:
        """``self.start_button`` / ``cancel_button`` / ``close_button`` in a row, and Ctrl+Enter to start."""
        self.start_button = QPushButton(start_text, self)
        self.start_button.setObjectName("ActionConfirm")
        self.start_button.setAutoDefault(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton(self._tr("取消", "Cancel"), self)
        self.cancel_button.setObjectName(cancel_name)
        self.cancel_button.setProperty("kind", "danger")
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton(self._tr("关闭", "Close") + "  Esc", self)
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.start_button)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self).activated.connect(self.start)
        return buttons

    def _tr(self, zh: str, en: str) -> str:
        """``en`` in English mode (``self.lang``), else ``zh``."""
        return en if getattr(self, "lang", "zh") == "en" else zh

    @property
    def running(self) -> bool:
        return self.task.running

    def start(self) -> bool:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def cancel(self) -> None:
        """取消: ask the running task to stop."""
        if self.task.running:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText(self._tr("正在取消…", "Cancelling…"))

    def _set_running(self, on: bool) -> None:
        self.cancel_button.setEnabled(on)
        self.cancel_button.setText(self._tr("取消", "Cancel"))

    def _on_progress(self, fraction: float, text: str) -> None:
        self.bar.setValue(int(max(0.0, min(1.0, fraction)) * self.BAR_MAX))
        if not (self.HOLD_TEXT_WHILE_CANCELLING and self.task.cancel_requested):
            self.progress_text.setText(text)

    def _on_result(self, result) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def _on_error(self, exc: BaseException) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def _on_finished(self) -> None:
        self._set_running(False)
        if self._close_when_done:
            self._close_when_done = False
            super().reject()

    def _closing(self) -> None:
        """Hook: the operator asked to close while the task runs (it is being cancelled)."""

    def reject(self) -> None:
        """Esc / 关闭: while the task runs, cancel it first and close once it has stopped."""
        if self.task.running:
            self._close_when_done = True
            self.cancel()
            self._closing()
            return
        super().reject()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self.task.running:
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)
