"""Issue 'The console opens on the real district': start-up, map page, queue, assignment, generation.

Usage: .venv/bin/python bench/bench_console.py [--skip-1m]
Writes bench/results/console.md. The 1M-event replica is generated once into bench/.data/ (a few minutes).
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import demo_replica, median, pct, timed, write_table  # noqa: E402
from bench.startup_probe import time_to_map  # noqa: E402


def bench_generation() -> float:
    from app.timeutil import parse
    from db.demo.generate import DemoOptions, generate_demo_file

    tmp = Path(tempfile.mkdtemp()) / "gen.db"
    t0 = time.perf_counter()
    generate_demo_file(tmp, DemoOptions(until=parse("2026-11-25T18:00:00")))
    dt = time.perf_counter() - t0
    shutil.rmtree(tmp.parent)
    return dt


def bench_assign(db: Path) -> float:
    import shapely

    from db.spatial import GridIndex, load_boundary

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, geometry FROM grids").fetchall()
    conn.close()
    index = GridIndex([r[0] for r in rows], [shapely.from_geojson(r[1]) for r in rows])
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = load_boundary().bounds
    lon = rng.uniform(minx, maxx, 1_000_000)
    lat = rng.uniform(miny, maxy, 1_000_000)
    index.assign(lon[:1000], lat[:1000])
    best = min(timed(lambda: index.assign(lon, lat), repeat=3))
    return 1_000_000 / best


def bench_page(db: Path) -> tuple[float, float, float]:
    from db.replica import connect
    from layers.render import build_page

    conn = connect(db)
    full = timed(lambda: build_page(conn), repeat=3)
    polys = timed(lambda: build_page(conn, include_points=False), repeat=3)
    size = len(build_page(conn).encode()) / 1e6
    conn.close()
    return median(full), median(polys), size


def bench_queue(db: Path) -> dict[str, tuple[float, float]]:
    from app.queue import QueueFilter, count_tabs, query_queue
    from db.replica import connect

    conn = connect(db)
    street = conn.execute("SELECT code FROM streets ORDER BY code LIMIT 1 OFFSET 5").fetchone()[0]
    cases = {
        "pending tab": QueueFilter(tab="pending"),
        "open tab": QueueFilter(tab="open"),
        "overdue tab": QueueFilter(tab="overdue"),
        "open, one street": QueueFilter(tab="open", street=street),
        "open, text '电瓶车'": QueueFilter(tab="open", text="电瓶车"),
        "open, emergency, 24 h": QueueFilter(tab="open", klass="emergency", window="24h"),
    }
    out = {}
    for name, f in cases.items():
        query_queue(conn, f)
        ts = [t * 1000 for t in timed(lambda f=f: query_queue(conn, f), repeat=40)]
        out[name] = (pct(ts, 50), pct(ts, 95))
    ts = [t * 1000 for t in timed(lambda: count_tabs(conn, QueueFilter()), repeat=10)]
    out["tab counts (background thread)"] = (pct(ts, 50), pct(ts, 95))
    conn.close()
    return out


def main() -> None:
    skip_1m = "--skip-1m" in sys.argv
    rows: list[tuple[str, str, str]] = []
    db = demo_replica(100_000)
    gen = bench_generation()
    rows.append(("demo generation, 100k events (`onemap demo`)", f"{gen:.1f} s", "≤ 90 s"))
    tmp = Path(tempfile.mkdtemp())
    first = time_to_map(tmp / "fresh.db")
    rows.append(("first start with generation → map loaded", f"{first:.1f} s", "report"))
    cold = [time_to_map(db) for _ in range(3)]
    rows.append(("cold start → map loaded, existing 100k replica (median of 3)", f"{median(cold):.2f} s", "≤ 3 s"))
    full, polys, size = bench_page(db)
    rows.append(("map page build, 100k replica (polygons + today's/open events)", f"{full * 1000:.0f} ms, {size:.1f} MB", "report"))
    rows.append(("map page build, polygons only (points pushed after load)", f"{polys * 1000:.0f} ms", "report"))
    rate = bench_assign(db)
    rows.append(("point → grid assignment, 1M points, 824 grids", f"{rate / 1e6:.1f} M points/s", "≥ 500,000 points/s"))
    for label, (p50, p95) in bench_queue(db).items():
        rows.append((f"queue query at 100k: {label}", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", "—"))
    if not skip_1m:
        big = demo_replica(1_000_000)
        for label, (p50, p95) in bench_queue(big).items():
            rows.append((f"queue query at 1M: {label}", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", "≤ 20 ms"))
    shutil.rmtree(tmp, ignore_errors=True)
    write_table("console", "Bench: the console opens on the real district", rows)


if __name__ == "__main__":
    main()
