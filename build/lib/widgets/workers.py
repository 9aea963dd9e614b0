"""Run plain functions off the UI thread and hear about them on it.

    handle = run_in_thread(build_page, conn, theme="command",
                           on_result=view.show_page, on_error=show_error)

``fn`` runs on a ``QThreadPool`` thread (for progress, hand it a :class:`ProgressRelay`'s
``emit_progress``); ``on_result(value)``, ``on_error(exc)`` and
``on_finished()`` are called on the thread that called :func:`run_in_thread` (the UI
thread), through queued signals of a relay object that lives there.  Workers never touch
widgets; without ``on_error`` an exception is logged.  The returned :class:`Worker` keeps
itself alive until it has reported, so callers need not hold on to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

_active: set[Worker] = set()
_active_lock = threading.Lock()


class _Relay(QObject):
    """Lives on the caller's thread; its signals are emitted from the pool thread."""

    result = Signal(object)
    error = Signal(object)
    finished = Signal()


class Worker(QRunnable):
    """A QRunnable around ``fn(*args, **kwargs)`` with result/error/finished signals."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it (see _active)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = _Relay()
        self.done = False
        self.cancelled = False

    @property
    def result(self) -> Signal:
        return self.signals.result

    @property
    def error(self) -> Signal:
        return self.signals.error

    @property
    def finished(self) -> Signal:
        return self.signals.finished

    def cancel(self) -> None:
        """Ask for the result to be dropped (the function itself still runs to its end)."""
        self.cancelled = True

    def run(self) -> None:
        try:
            value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread
            if not self.cancelled:
                self.signals.error.emit(exc)
        else:
            if not self.cancelled:
                self.signals.result.emit(value)
        finally:
            self.done = True
            self.signals.finished.emit()


def run_in_thread(
    fn: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    pool: QThreadPool | None = None,
    **kwargs: Any,
) -> Worker:
    """Start ``fn(*args, **kwargs)`` on ``pool`` (the global pool by default)."""
    worker = Worker(fn, *args, **kwargs)
    if on_result is not None:
        worker.signals.result.connect(on_result)
    if on_error is not None:
        worker.signals.error.connect(on_error)
    else:
        worker.signals.error.connect(
            lambda exc: log.error("worker %s failed", getattr(fn, "__qualname__", fn), exc_info=exc)
        )
    if on_finished is not None:
        worker.signals.finished.connect(on_finished)
    with _active_lock:
        _active.add(worker)

    @Slot()
    def _release() -> None:
        with _active_lock:
            _active.discard(worker)

    worker.signals.finished.connect(_release)
    (pool or QThreadPool.globalInstance()).start(worker)
    return worker


class ProgressRelay(QObject):
    """Progress from a worker to the UI thread: pass :meth:`emit_progress` as the worker's
    ``progress(fraction, text)`` callback and connect :attr:`progress` on the UI side.
    Create it on the UI thread."""

    progress = Signal(float, str)

    def emit_progress(self, fraction: float, text: str = "") -> None:
        self.progress.emit(float(fraction), str(text))


def active_workers() -> int:
    with _active_lock:
        return len(_active)
