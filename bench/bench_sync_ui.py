"""Sync in the console (issue 9): the status read model on a big backlog, and how fast a commit wakes the worker.

    python bench/bench_sync_ui.py [--events 100000]

- ``read_status`` (pending count, oldest age, refusals, the uids of events with pending changes) on the
  100k-event demo with 0 … 50,000 pending outbox rows; it runs on the status model's reader thread,
  never on the UI thread, but its time bounds how fresh the indicator and the queue marks are.
- commit → round: the time from a local commit to the worker's next ``sync_once`` (fake engine,
  debounce 0.3 s, interval 1 h so only the commit can wake it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import demo_replica, median, pct, timed, write_table

PENDING = (0, 1_000, 10_000, 50_000)
REFUSALS = 50


def _queue_pending(rep, n: int) -> None:
    """``n`` pending outbox rows on ``n`` distinct events (synthetic args: the read model never parses them)."""
    with rep.write("sync") as c:
        c.execute("DELETE FROM sync_refusals")
        c.execute("DELETE FROM outbox")
        c.execute(
            "INSERT INTO outbox (client_id, op, event_uid, log_uid, base_version, args, created_at) "
            "SELECT 'BENCH', 'note', uid, 'L' || uid, version, '{}', '2026-11-25T10:00:00+00:00' "
            "FROM events ORDER BY id LIMIT ?",
            (n,),
        )
        c.execute(
            "INSERT INTO outbox (client_id, op, event_uid, log_uid, base_version, args, created_at, state) "
            "SELECT 'BENCH', 'accept', uid, 'R' || uid, version, '{}', '2026-11-25T10:00:00+00:00', 'rejected' "
            "FROM events ORDER BY id DESC LIMIT ?",
            (REFUSALS,),
        )
        c.execute(
            "INSERT INTO sync_refusals (mutation_id, event_uid, op, reason, server_state, refused_at) "
            "SELECT mutation_id, event_uid, op, 'stale state', "
            "json_object('event', json_object('status', 'accepted', 'version', 2)), '2026-11-25T10:01:00+08:00' "
            "FROM outbox WHERE state = 'rejected'"
        )


def bench_read(path: Path) -> list[tuple[str, str, str]]:
    from app.sync_status import read_status
    from db.replica import open_replica

    rows = []
    with open_replica(path) as rep:
        rep.writer.execute("INSERT INTO sync_state (id, client_id, upstream) VALUES (1, 'BENCH', 'host=x')")
        for n in PENDING:
            _queue_pending(rep, n)
            conn = rep.reader()
            try:
                s = read_status(conn)
                assert s.pending == n and len(s.unsynced_uids) == n and len(s.refusals) == REFUSALS
                times = timed(lambda c=conn: read_status(c), repeat=7)
                shown = [r[0] for r in conn.execute("SELECT uid FROM events ORDER BY id DESC LIMIT 500")]
                light = timed(lambda c=conn, u=shown: read_status(c, uids_among=u), repeat=7)
            finally:
                conn.close()
            rows.append((f"read_status, {n:,} pending + {REFUSALS} refusals (median / p95 of 7)",
                         f"{median(times) * 1000:.1f} / {pct(times, 95) * 1000:.1f} ms "
                         f"(marks for 500 queue rows only: {median(light) * 1000:.1f} ms)", "off the UI thread; the console uses the 500-row form"))  # fmt: skip
    return rows


def bench_wake(path: Path, commits: int = 20) -> list[tuple[str, str, str]]:
    from PySide6.QtCore import QCoreApplication

    from db import event_ops
    from db.replica import open_replica
    from widgets.sync_worker import SyncWorker

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])  # noqa: F841
    calls: list[float] = []
    called = threading.Event()

    class Engine:
        def sync_once(self, **_kw):
            calls.append(time.perf_counter())
            called.set()

        def close(self) -> None:
            pass

    with open_replica(path) as rep:
        ids = [r[0] for r in rep.writer.execute(
            "SELECT id FROM events WHERE status NOT IN ('closed', 'rejected', 'merged') LIMIT ?", (commits,))]  # fmt: skip
        worker = SyncWorker(rep, engine_factory=Engine, interval_s=3600, debounce_s=0.3)
        worker.start()
        called.wait(5)
        lat = []
        for eid in ids:
            called.clear()
            t0 = time.perf_counter()
            event_ops.apply_action(rep, eid, "note", actor="bench", expected_version=None, note="bench")
            t1 = time.perf_counter()
            if not called.wait(5):
                raise RuntimeError("the worker did not wake up")
            lat.append(calls[-1] - t1)
            time.sleep(0.05)
            del t0
        t0 = time.perf_counter()
        worker.stop()
        stop_s = time.perf_counter() - t0
    return [
        (f"commit → next sync round (debounce 0.3 s; median / p95 of {commits})",
         f"{median(lat) * 1000:.0f} / {pct(lat, 95) * 1000:.0f} ms", "≈ debounce, ≤ 1 s"),
        ("worker stop (idle loop, thread joined)", f"{stop_s * 1000:.1f} ms", "< 100 ms"),
    ]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    src = demo_replica(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sync-ui.db"
        shutil.copy(src, path)
        rows = bench_read(path)
        rows += bench_wake(path)
    write_table("sync_ui", f"Sync in the console: status read model and worker wake-up ({args.events:,}-event demo)",
                rows, notes="Pending rows are synthetic (one per event, args '{}'); the read model does not parse "
                "args. The uid set feeds the queue's 【未同步】 marks.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
