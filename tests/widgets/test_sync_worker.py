"""The background sync loop (widgets/sync_worker.py) with a fake engine over a real replica."""

from __future__ import annotations

import threading

import pytest

from db.replica import open_replica
from tests.test_sync_status import Report, make_client, new_event
from widgets.sync_worker import SyncWorker


class FakeEngine:
    """Stands in for ``SyncClient``: confirms every pending row, writing on the worker thread."""

    def __init__(self, replica, *, fail: Exception | None = None) -> None:
        self.replica = replica
        self.fail = fail
        self.calls = 0
        self.threads: set[int] = set()
        self.closed_on: int | None = None

    def sync_once(self, *, max_batches: int = 100) -> Report:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.fail is not None:
            raise self.fail
        with self.replica.write("events") as c:  # like a real round: applies and records, one transaction
            n = c.execute("UPDATE outbox SET state = 'applied' WHERE state = 'pending'").rowcount
            c.execute("UPDATE sync_state SET last_sync_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'), "
                      "cursor = cursor + ?", (n,))  # fmt: skip
        return Report(online=True, pushed=n, applied=n, pending=0)

    def close(self) -> None:
        self.closed_on = threading.get_ident()


@pytest.fixture
def client(demo_copy):
    rep = open_replica(demo_copy)
    make_client(rep)
    yield rep
    rep.close()


def test_rounds_run_off_the_ui_thread_and_a_local_commit_wakes_the_loop(qtbot, client):
    engine = FakeEngine(client)
    worker = SyncWorker(client, engine_factory=lambda: engine, interval_s=3600, debounce_s=0.05)
    reports = []
    worker.reported.connect(reports.append)
    with qtbot.waitSignal(worker.reported, timeout=15000):
        worker.start()
    assert worker.is_running() and engine.calls == 1
    assert threading.get_ident() not in engine.threads  # never on the UI thread
    assert worker.kicks == 0  # the round's own commit did not wake the loop
    # an operator's write (on this thread) wakes it long before the 1-hour interval
    with qtbot.waitSignal(worker.reported, timeout=15000):
        new_event(client)
    assert engine.calls == 2 and worker.kicks >= 1 and reports[-1].pushed == 1
    assert client.writer.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0] == 0
    # bookkeeping writes (an acknowledged refusal) do not wake it
    with client.write("sync"):
        pass
    assert worker.kicks == 1
    with qtbot.waitSignal(worker.stopped, timeout=15000):
        assert worker.stop(timeout=5)
    assert not worker.is_running() and engine.closed_on in engine.threads  # closed where it was made
    new_event(client)  # after stop, commits are ignored
    assert worker.kicks == 1 and engine.calls == 2


def test_a_failing_round_is_reported_and_retried_with_a_fresh_engine(qtbot, client):
    made = []

    def factory():
        made.append(FakeEngine(client, fail=OSError("connection refused")))
        return made[-1]

    worker = SyncWorker(client, engine_factory=factory, interval_s=0.01, max_backoff_s=0.05)
    errors = []
    worker.failed.connect(errors.append)
    worker.start()
    qtbot.waitUntil(lambda: len(errors) >= 3, timeout=15000)
    assert worker.stop(timeout=5)
    assert errors[0] == "OSError: connection refused"
    assert len(made) >= 3 and all(e.closed_on is not None for e in made)  # each broken engine was closed


def test_a_replica_that_is_not_a_sync_client_stops_the_loop(qtbot, client):
    class SyncNotConfigured(Exception):
        pass

    worker = SyncWorker(client, engine_factory=lambda: FakeEngine(client, fail=SyncNotConfigured("not a client")),
                        interval_s=0.01)  # fmt: skip
    with qtbot.waitSignals([worker.failed, worker.stopped], timeout=15000):
        worker.start()
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=15000)
    assert worker.fatal == "SyncNotConfigured: not a client" and worker.rounds == 1
    assert worker.stop(timeout=1)
