"""Garbage collection on the GUI thread only.

Python's automatic collector runs in whichever thread happens to allocate when a threshold is
crossed. If that is a worker thread, it may finalise Qt wrappers created on the GUI thread there,
which crashes Qt (seen once in CI: a map-build worker segfaulted inside a collection). So the
automatic collector is switched off and the GUI thread collects on a timer, generation by
generation, with the usual thresholds (the recipe pyqtgraph and others use).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class GuiThreadCollector(QObject):
    """Owns the collection schedule while it lives; ``stop()`` gives it back to Python."""

    def __init__(self, interval_ms: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.was_enabled = gc.isenabled()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> int:
        """Collect the generations whose counts crossed their thresholds; returns objects found."""
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if c2 > t2 and t2:
            return gc.collect(2)
        if c1 > t1 and t1:
            return gc.collect(1)
        if c0 > t0:
            return gc.collect(0)
        return 0

    def stop(self) -> None:
        self.timer.stop()
        gc.collect()
        if self.was_enabled:
            gc.enable()


def install(app: QObject) -> GuiThreadCollector:
    """Start collecting on the GUI thread for the life of ``app``."""
    collector = GuiThreadCollector(parent=app)
    app._gui_collector = collector  # keep a Python reference
    return collector
