"""The PostgreSQL upstream on the demo data: seed, snapshot, push (one client) and pull figures.

    python bench/bench_sync_server.py [--events 100000] [--pushes 2000]

A throwaway loopback PostgreSQL (``db/sync/pgtemp.py``, fsync off) is started and removed.
Writes ``bench/results/sync_server.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

from common import demo_replica, pct, write_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--pushes", type=int, default=2000)
    args = ap.parse_args(argv)

    import orjson
    import psycopg
    from psycopg.types.json import Jsonb

    from db.ids import new_ulid
    from db.sync import upstream
    from db.sync.pgtemp import TempPostgres
    from db.sync.protocol import PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, fingerprint

    path = demo_replica(args.events)
    rows: list[tuple[str, str, str]] = []
    with TempPostgres() as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as c:
            c.execute("CREATE DATABASE bench")
        dsn = pg.dsn(dbname="bench")
        t0 = time.perf_counter()
        upstream.init_upstream(dsn)
        rows.append(("upstream init", f"{time.perf_counter() - t0:.2f} s", "report it"))

        t0 = time.perf_counter()
        blob = upstream.reference_blob(path)
        t_blob = time.perf_counter() - t0
        t0 = time.perf_counter()
        counts = upstream.seed_upstream(dsn, path)
        t_seed = time.perf_counter() - t0
        rows.append((f"seed {counts['events']:,} events + {counts['event_log']:,} log rows (COPY, incl. reference blob)",
                     f"{t_seed:.1f} s", "report it"))  # fmt: skip
        rows.append(("  of which the reference blob (copy, empty, VACUUM, zlib)",
                     f"{t_blob:.1f} s, {len(blob) / 1e6:.1f} MB", "report it"))  # fmt: skip
        assert upstream.server_content_hash(dsn) is not None

        with psycopg.connect(dsn) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            t0 = time.perf_counter()
            conn.execute("SELECT onemap.snapshot_head('B', %s, %s)", (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION))
            after, n_ev, n_log = None, 0, 0
            while True:
                page_rows = conn.execute("SELECT kind, uid, event_uid, data::text FROM onemap.snapshot_events('B', %s, %s, %s, 2000)",
                                    (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, after)).fetchall()  # fmt: skip
                data = [orjson.loads(r[3]) for r in page_rows]
                events = [r[1] for r in page_rows if r[0] == "event"]
                if not events:
                    break
                n_ev += len(events)
                n_log += sum(1 for r in page_rows if r[0] == "log")
                after = events[-1]
                del data
            conn.execute("SELECT onemap.snapshot_reference('B', %s, %s)", (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION))
            conn.rollback()
            t_snap = time.perf_counter() - t0
            rows.append((f"snapshot fetch ({n_ev:,} events, {n_log:,} log rows, pages of 2,000, one REPEATABLE READ txn)",
                         f"{t_snap:.1f} s ({n_ev / t_snap:,.0f} events/s)", "report it"))  # fmt: skip

            # push throughput, one client: a report then accept/dispatch on it, one transaction per push
            conn.isolation_level = None
            conn.autocommit = True
            image = orjson.loads(conn.execute("SELECT data::text FROM onemap.events LIMIT 1").fetchone()[0])
            lat: list[float] = []
            mid = 0
            uid = None
            steps = [("report", None, "reported"), ("accept", "reported", "accepted"),
                     ("dispatch", "accepted", "dispatched"), ("note", "dispatched", "dispatched")]  # fmt: skip
            t0 = time.perf_counter()
            while mid < args.pushes:
                op, frm, to = steps[mid % len(steps)]
                if op == "report":
                    uid, version = new_ulid(), 0
                ev = dict(image, uid=uid, status=to, version=version + 1, external_id=None)
                a = {"op": op, "event_uid": uid, "base_version": version or None, "event": ev, "whistles": None,
                     "log": {"uid": new_ulid(), "at": "2026-11-25T09:00:00+08:00", "actor": "bench", "action": op,
                             "from_status": frm, "to_status": to, "note": "b" if op == "note" else None,
                             "payload": None}}  # fmt: skip
                mid += 1
                t1 = time.perf_counter()
                out = conn.execute("SELECT onemap.push_mutation('BENCH', %s, %s, %s, %s, %s)",
                                   (mid, PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, fingerprint(a), Jsonb(a))).fetchone()[0]  # fmt: skip
                lat.append(time.perf_counter() - t1)
                assert out["status"] == "applied", out
                version = out["version"]
            t_push = time.perf_counter() - t0
            rows.append((f"push throughput, one client ({args.pushes:,} mutations, one round trip + commit each)",
                         f"{args.pushes / t_push:,.0f} /s (p50 {pct(lat, 50) * 1e3:.1f} ms, p95 {pct(lat, 95) * 1e3:.1f} ms)",
                         "report it"))  # fmt: skip

            t0 = time.perf_counter()
            cursor, n = 0, 0
            while True:
                ans = orjson.loads(conn.execute("SELECT onemap.pull_changes('PULL', %s, %s, %s, 1000)::text",
                                                (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, cursor)).fetchone()[0])  # fmt: skip
                if not ans["changes"]:
                    break
                n += len(ans["changes"])
                cursor = ans["cursor"]
            t_pull = time.perf_counter() - t0
            rows.append((f"pull fetch (server side + transfer + parse, {n:,} changes, pages of 1,000)",
                         f"{n / t_pull:,.0f} changes/s", "≥ 20,000/s end to end (client applies too)"))  # fmt: skip

    import os

    load = os.getloadavg()[0]
    write_table("sync_server", "Sync upstream (PostgreSQL 15, loopback, fsync off)", rows,
                notes=f"Demo replica {path.name}. Load average at the end: {load:.1f} on {os.cpu_count()} CPUs "
                      "(the machine is shared; figures are upper bounds on time).")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
