"""Small pieces the intake screens share (import, export, quarantine, merge suggestions, history):
a long task in a worker with progress and cancel, a message line, a count tile.

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

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

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
