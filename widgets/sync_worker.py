"""The console's background sync loop (issue 9): ``SyncClient.sync_once()`` every ~2 s and soon after a local commit.

The loop runs on one plain Python thread that creates no Qt objects: the engine (``SyncClient``,
with its PostgreSQL connection) is built, used and closed on that thread, and results reach the UI
through the signals of ``SyncWorker``, a QObject that lives on the GUI thread (queued delivery).
So nothing Qt is finalised on the wrong thread, and the UI thread never waits for the network.

Wake-ups: every ``interval_s`` (2 s), and ``debounce_s`` after a commit made through this process's
``Replica`` on another thread (the operator's own write; a burst is coalesced, at most ``max_debounce_s``).
Commits made by the sync round itself (pulled changes) don't wake it. ``stop()`` ends the loop and joins
the thread; the replica may be closed once it returns True.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)
FATAL_ERRORS = ("SyncNotConfigured",)  # by class name: the engine module may live on another branch


def default_engine_factory(replica, dsn: str | None) -> Callable[[], object]:
    """``SyncClient(replica, dsn)`` (``db/sync/client.py``), built on the worker thread."""

    def make() -> object:
        from db.sync.client import SyncClient

        return SyncClient(replica, dsn)

    return make


class SyncWorker(QObject):
    """Runs the sync loop off the UI thread and reports each round.

    ``engine_factory()`` returns an object with ``sync_once() -> SyncReport`` and ``close()``
    (default: ``SyncClient(replica, dsn)``); tests pass a fake.
    """

    reported = Signal(object)  # SyncReport of one round
    failed = Signal(str)  # a round raised: the text (the loop goes on, backing off), or a fatal error
    stopped = Signal()  # the loop has ended (stop() or a fatal error)

    def __init__(self, replica, dsn: str | None = None, *, engine_factory: Callable[[], object] | None = None,
                 interval_s: float = 2.0, debounce_s: float = 0.3, max_debounce_s: float = 1.0,
                 max_backoff_s: float = 30.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("syncWorker")
        self.replica = replica
        self.dsn = dsn
        self.interval_s = interval_s
        self.debounce_s = debounce_s
        self.max_debounce_s = max_debounce_s
        self.max_backoff_s = max_backoff_s
        self._factory = engine_factory or default_engine_factory(replica, dsn)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self.rounds = 0
        self.kicks = 0
        self.fatal: str | None = None
        self.last_report: object | None = None
        me = weakref.ref(self)

        def on_commit(topics: set[str]) -> None:  # held by the replica: must not keep the worker alive
            worker = me()
            if worker is not None:
                worker._on_commit(topics)

        replica.on_commit(on_commit)

    # -- control (GUI thread) ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sync-worker", daemon=True)
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def kick(self) -> None:
        """Run a round soon (after the debounce)."""
        self.kicks += 1
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """End the loop and wait for the thread (a round in progress finishes first; the client gives up on
        a reply that never comes after 25 s). True once it has ended."""
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        if t.is_alive():
            log.warning("sync worker: the round in progress did not finish within %.0f s", timeout)
            return False
        return True

    def _on_commit(self, topics: set[str]) -> None:
        if self._stop.is_set() or threading.get_ident() == self._thread_id:
            return  # the sync round's own writes (pulled changes, rollbacks)
        if topics and topics <= {"sync"}:
            return  # bookkeeping (an acknowledged refusal): nothing to push
        self.kick()

    # -- the loop (worker thread) -----------------------------------------------------------------
    def _emit(self, name: str, *args) -> None:
        if self._stop.is_set() and name != "stopped":
            return  # the UI is shutting down: only the end of the loop is reported
        try:
            getattr(self, name).emit(*args)
        except RuntimeError:  # the QObject is gone (window closed)
            pass

    def _run(self) -> None:
        self._thread_id = threading.get_ident()
        engine = None
        failures = 0
        try:
            while not self._stop.is_set():
                wait = self.interval_s
                try:
                    if engine is None:
                        engine = self._factory()
                    t0 = time.perf_counter()
                    report = engine.sync_once()
                    log.debug("sync round %d: %.0f ms, %s", self.rounds + 1, (time.perf_counter() - t0) * 1000, report)
                    self.rounds += 1
                    self.last_report = report
                    failures = 0
                    self._emit("reported", report)
                except Exception as exc:  # noqa: BLE001 - reported to the UI, never raised on this thread
                    self.rounds += 1
                    name = type(exc).__name__
                    text = f"{name}: {exc}"
                    if name in FATAL_ERRORS:
                        self.fatal = text
                        self._emit("failed", text)
                        return
                    log.warning("sync round failed: %s", text)
                    failures += 1
                    wait = min(self.max_backoff_s, self.interval_s * 2 ** min(failures, 8))
                    self._emit("failed", text)
                    engine = _close(engine)  # a fresh engine (and connection) next time
                self._sleep(wait)
        finally:
            _close(engine)
            self._emit("stopped")

    def _sleep(self, seconds: float) -> None:
        woke = self._wake.wait(seconds)
        self._wake.clear()
        if not woke or self._stop.is_set():
            return
        deadline = time.monotonic() + self.max_debounce_s  # coalesce a burst of commits
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or not self._wake.wait(min(self.debounce_s, left)):
                return
            self._wake.clear()


def _close(engine) -> None:
    if engine is not None:
        try:
            engine.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("sync engine close: %s", exc)
    return None
