"""Issue 6 (KPI engine): the full KPI set over 30 days on the 1M-event replica (target ≤ 300 ms),
other scopes, the rollup-free scan for comparison, the data part of a dashboard refresh after
100 new events, and the write-path cost of the rollup triggers.

Usage: .venv/bin/python bench/bench_kpi.py [--repeat N] [--skip-writes]
Reads bench/.data/demo-1000000.db (a private copy; migrated to m007 on first open, which rolls
the existing events up once) and a scratch copy of bench/.data/demo-100000.db for the write
figures. Writes bench/results/kpi.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, demo_replica, median, pct, write_table  # noqa: E402


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1000:.0f} ms (p90 {pct(values, 90) * 1000:.0f})"


def _time(fn, repeat: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    fn()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    return cold, warm


def dashboard_data(conn, scope, now):
    """What a dashboard refresh reads (``app.kpi.dashboard_data``): tiles + previous window, events per
    hour and the same hours 7 days earlier, categories, sources, arrival minutes, both rankings."""
    from app import kpi

    kpi.dashboard_data(conn, scope, kpi.Window(now - dt.timedelta(days=1), now), now=now)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-writes", action="store_true")
    args = ap.parse_args()

    from app import timeutil
    from app.kpi import Scope, Window, compute_kpis
    from db import event_ops, kpi_rollups
    from db.replica import open_replica

    rows: list[tuple[str, str, str]] = []
    path = DATA / "demo-1000000.db"
    if not path.exists():
        print(f"{path} is missing: generate it with bench/common.demo_replica(1_000_000)", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    rep = open_replica(path)
    opened = time.perf_counter() - t0
    conn = rep.reader()
    n_events = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    last = conn.execute("SELECT max(reported_at) FROM events").fetchone()[0]
    until = timeutil.parse(last).replace(minute=0, second=0) + dt.timedelta(hours=1)
    odd_until = until - dt.timedelta(minutes=23, seconds=17)
    street = conn.execute("SELECT street_code, count(*) n FROM events WHERE reported_at >= ? GROUP BY 1 "
                          "ORDER BY n DESC LIMIT 1", (timeutil.to_iso(until - dt.timedelta(days=1)),)).fetchone()[0]  # fmt: skip
    grid = conn.execute("SELECT grid_id FROM events WHERE street_code = ? LIMIT 1", (street,)).fetchone()[0]
    print(
        f"replica {path.name}: {n_events:,} events, opened in {opened:.1f} s; window end {until}",
        file=sys.stderr,
    )

    cases = [
        ("district, 30 days (hour-aligned)", Scope("district"), Window(until - dt.timedelta(days=30), until), True),
        ("district, 30 days (ends 17:36:43: sub-hour edges scanned)", Scope("district"),
         Window(odd_until - dt.timedelta(days=30), odd_until), True),
        ("district, today so far", Scope("district"), Window(until.replace(hour=0), odd_until), True),
        (f"street {street}, 30 days", Scope("street", street), Window(until - dt.timedelta(days=30), until), True),
        ("department CITYMGMT, 30 days", Scope("department", "CITYMGMT"), Window(until - dt.timedelta(days=30), until), True),
        (f"grid {grid}, 30 days (always scanned)", Scope("grid", grid), Window(until - dt.timedelta(days=30), until), True),
        ("district, 30 days, no rollups (scan only)", Scope("district"), Window(until - dt.timedelta(days=30), until), False),
    ]  # fmt: skip
    for name, scope, w, roll in cases:
        rep_n = args.repeat if roll else 1
        cold, warm = _time(
            lambda s=scope, w=w, r=roll: compute_kpis(conn, s, w, now=until, use_rollups=r), rep_n
        )
        target = "≤ 300 ms" if name.startswith("district, 30 days (") else ""
        rows.append((f"full KPI set: {name}", f"{_ms(warm)}; cold {cold * 1000:.0f} ms", target))
        print(rows[-1], file=sys.stderr)
    k = compute_kpis(conn, Scope("district"), cases[0][2], now=until)
    check = compute_kpis(conn, Scope("district"), cases[1][2], now=until)
    scan = compute_kpis(conn, Scope("district"), cases[1][2], now=until, use_rollups=False)
    same = "equal" if check == scan else "DIFFERENT"
    rows.append(("rollups vs scan, district 30 days with sub-hour edges", same, "equal"))
    cold, warm = _time(lambda: dashboard_data(conn, Scope("district"), until), 3)
    rows.append(("dashboard data (app.kpi.dashboard_data: tiles+trend, hourly + week before, categories, sources, arrivals, rankings), 24 h",
                 f"{_ms(warm)}; cold {cold * 1000:.0f} ms", ""))  # fmt: skip
    conn.close()

    if not args.skip_writes:
        # 100 new events on the 1M replica, then the dashboard's data refresh
        grids = rep.reader().execute("SELECT lon, lat FROM grids ORDER BY random() LIMIT 100").fetchall()
        rng = random.Random(6)
        t0 = time.perf_counter()
        base = until - dt.timedelta(minutes=30)
        for i, g in enumerate(grids):
            event_ops.create_event(rep, {"source": "manual", "category": rng.choice(["ORDER.VENDOR", "ENV.GARBAGE"]),
                                         "lon": g[0], "lat": g[1],
                                         "reported_at": timeutil.to_iso(base + dt.timedelta(seconds=10 * i))},
                                   actor="bench")  # fmt: skip
        write_s = time.perf_counter() - t0
        conn = rep.reader()
        t0 = time.perf_counter()
        dashboard_data(conn, Scope("district"), until)
        refresh_s = time.perf_counter() - t0
        conn.close()
        rows.append(("100 new events written (create_event, one transaction each, 1M replica)",
                     f"{write_s * 1000:.0f} ms ({write_s * 10:.1f} ms/event)", ""))  # fmt: skip
        rows.append(("dashboard data refresh after those 100 events (district)", f"{refresh_s * 1000:.0f} ms",
                     "≤ 500 ms end to end"))  # fmt: skip
    rep.close()

    if not args.skip_writes:
        rows += _write_costs(event_ops, kpi_rollups, open_replica)

    load = os.getloadavg()
    notes = (
        f"Load average at the end of the run: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on 2 CPUs shared with other "
        "engineers' jobs (times scale with it; the scan-only line is a fair yardstick). "
        f"Replica: {path.name} ({n_events:,} events over 90 days, ≈ 11k a day). KPI set = every key of "
        "`app.kpi.KPI_KEYS` (rates, counts, arrival mean/median/p90/≤10 min, linkage, backlog/overdue). "
        "Warm = median of repeated runs on one read connection; cold = first call after opening. "
        f"Spot check, district 30 days: reported {k['reported'].display()}, on-time closure "
        f"{k['ontime_closure_rate'].display()}, arrival median {k['arrival_median'].display()} min."
    )
    write_table("kpi", "KPI engine (issue 6)", rows, notes)
    return 0


def _write_costs(event_ops, kpi_rollups, open_replica) -> list[tuple[str, str, str]]:
    """Write-path cost of the triggers and the rebuild time, on a scratch copy of the 100k demo."""
    src = demo_replica(100_000)
    out = []
    with tempfile.TemporaryDirectory(dir=str(DATA)) as tmp:
        db = Path(tmp) / "kpi-writes.db"
        shutil.copy(src, db)
        rep = open_replica(db)
        conn = rep.reader()
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM events WHERE status = 'reported' OR status = 'accepted' LIMIT 200"
            )
        ]
        conn.close()
        t0 = time.perf_counter()
        with rep.write("events") as w:
            kpi_rollups.rebuild(w)
        out.append(("rebuild all rollups from events (100k demo)", f"{time.perf_counter() - t0:.2f} s", ""))

        def steps(tag: str) -> float:
            conn = rep.reader()
            g = conn.execute("SELECT lon, lat FROM grids ORDER BY random() LIMIT 1").fetchone()
            t0 = time.perf_counter()
            for i in range(100):
                event_ops.create_event(rep, {"source": "manual", "category": "ORDER.VENDOR", "lon": g[0], "lat": g[1],
                                             "external_id": f"{tag}-{i}"}, actor="bench")  # fmt: skip
            conn.close()
            return (time.perf_counter() - t0) / 100

        steps("warm-up")  # the first create_event builds the process's grid index
        with_t = steps("with")
        with rep.write("events") as w:
            kpi_rollups.drop_triggers(w)
        without_t = steps("without")
        with rep.write("events") as w:
            kpi_rollups.rebuild(w)
        out.append(("create_event with / without the rollup triggers (100k demo)",
                    f"{with_t * 1000:.2f} / {without_t * 1000:.2f} ms per event", ""))  # fmt: skip

        def bulk(triggers: bool) -> float:
            """5,000 raw INSERTs of event rows (as a bulk importer writes them), rolled back."""
            w = rep.writer
            cols = [r[1] for r in w.execute("PRAGMA table_info(events)") if r[1] not in ("id",)]
            w.execute("BEGIN IMMEDIATE")
            try:
                if not triggers:
                    kpi_rollups.drop_triggers(w)
                rows = w.execute(
                    f"SELECT {', '.join(cols)} FROM events ORDER BY id DESC LIMIT 5000"
                ).fetchall()
                rows = [tuple(f"bulk{i}" if c in ("uid", "external_id") else v for c, v in zip(cols, r, strict=True))
                        for i, r in enumerate(rows)]  # fmt: skip
                t0 = time.perf_counter()
                w.executemany(
                    f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows
                )
                return (time.perf_counter() - t0) / len(rows)
            finally:
                w.execute("ROLLBACK")

        b_with, b_without = bulk(True), bulk(False)
        out.append(("raw bulk INSERT into events with / without the rollup triggers (5,000 rows, 100k demo)",
                    f"{b_with * 1e6:.0f} / {b_without * 1e6:.0f} µs per row", ""))  # fmt: skip
        rep.close()
        del ids
    return out


if __name__ == "__main__":
    sys.exit(main())
