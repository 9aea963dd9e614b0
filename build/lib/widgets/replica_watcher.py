"""Notice commits made by other connections or processes to the replica.

``PRAGMA data_version`` on a connection changes whenever *another* connection (in this
process or any other) has committed since the last call. Polling it every 250 ms on a
dedicated read connection costs microseconds, so it runs on the UI thread; a change emits
``changed()`` and the views reload (each one coalesces its own reloads).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_INTERVAL_MS = 250


def connection_factory(source) -> Callable[[], sqlite3.Connection]:
    """A ``connect_fn`` from a callable returning connections or a ``db.replica.Replica``."""
    if callable(source):
        return source
    reader = getattr(source, "reader", None)
    if callable(reader):
        return reader
    raise TypeError(f"expected a connect function or a Replica, got {type(source).__name__}")


class ReplicaWatcher(QObject):
    """Polls ``PRAGMA data_version`` and emits ``changed()`` after foreign commits.

    ``source`` is a callable returning a new sqlite3 connection, or a ``Replica``.
    The watcher owns its connection; ``close()`` stops polling and closes it.
    """

    changed = Signal()

    def __init__(self, source, interval_ms: int = DEFAULT_INTERVAL_MS, parent: QObject | None = None,
                 *, start: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("replicaWatcher")
        self._conn: sqlite3.Connection | None = connection_factory(source)()
        # never wait for a lock on the UI thread: a busy poll is simply retried next tick
        self._conn.execute("PRAGMA busy_timeout = 50")
        self._version = self._read_version()
        self._timer = QTimer(self)
        self._timer.setObjectName("replicaWatcherTimer")
        self._timer.setInterval(int(interval_ms))
        self._timer.timeout.connect(self.check)
        if start:
            self._timer.start()

    def _read_version(self) -> int | None:
        try:
            return self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None

    @property
    def data_version(self) -> int | None:
        return self._version

    def interval(self) -> int:
        return self._timer.interval()

    def is_active(self) -> bool:
        return self._timer.isActive()

    @Slot()
    def start(self) -> None:
        if self._conn is not None:
            self._timer.start()

    @Slot()
    def stop(self) -> None:
        self._timer.stop()

    @Slot()
    def check(self) -> bool:
        """Poll now; emit ``changed()`` and return True if another connection committed."""
        if self._conn is None:
            return False
        version = self._read_version()
        if version is None or version == self._version:
            return False
        self._version = version
        self.changed.emit()
        return True

    def max_rev(self, table: str = "events") -> int:
        """The highest ``rev`` in ``table`` (0 if empty); one index seek on ``ix_<table>_rev``."""
        if self._conn is None:
            raise RuntimeError("ReplicaWatcher is closed")
        if not _IDENT.match(table):
            raise ValueError(f"not a table name: {table!r}")
        return int(self._conn.execute(f'SELECT coalesce(max(rev), 0) FROM "{table}"').fetchone()[0])

    def close(self) -> None:
        self._timer.stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
