"""Issue 4 §4 (exports): GeoPackage export of the demo replica (target ≤ 5 s) and the other formats.

Usage: .venv/bin/python bench/bench_export.py [--repeat N] [--with-1m]
Writes bench/results/export.md. Works on a private copy of the cached 100k demo replica
(bench/.data/demo-100000.db, generated once), so parallel benches do not disturb it.
``--with-1m`` also times the GeoPackage export of the 1M-event replica (read in place, read-only).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, demo_replica, median, write_table  # noqa: E402

PEAK_RSS = """
import sys
sys.path.insert(0, {root!r})


def hwm():  # peak resident set of this process (ru_maxrss would include the parent's, across fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])


from db.export import export
import shapely, orjson  # noqa: the gpkg writer's imports, so the baseline holds them
before = hwm()
export({db!r}, {fmt!r}, {out!r}, layer={layer!r})
print(before, hwm())
"""


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def time_export(db: Path, fmt: str, out: Path, repeat: int, **kw) -> tuple[float, float, object]:
    """(median, fastest) wall time of ``repeat`` runs, and the last run's result."""
    from db.export import export

    times, res = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = export(db, fmt, out, **kw)
        times.append(time.perf_counter() - t0)
    return median(times), min(times), res


def peak_rss(db: Path, fmt: str, out: Path, layer=None) -> tuple[int, int]:
    """(RSS after imports, peak RSS) in KiB of a fresh process doing only this export."""
    code = PEAK_RSS.format(root=str(ROOT), db=str(db), fmt=fmt, out=str(out), layer=layer)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, r.stdout.split())
    return before, after


def bench_rtree(n: int = 100_000) -> tuple[float, float]:
    import random

    from db.export.gpkg import bulk_load_rtree

    rnd = random.Random(1)
    boxes = []
    for i in range(1, n + 1):
        x, y = 120.74 + rnd.random() * 0.34, 31.8 + rnd.random() * 0.34
        boxes.append((i, x, x, y, y))
    out = []
    for bulk in (False, True):
        c = sqlite3.connect(":memory:", isolation_level=None)
        c.execute("ATTACH ':memory:' AS o")
        c.execute("BEGIN")
        c.execute("CREATE VIRTUAL TABLE o.r USING rtree(id, minx, maxx, miny, maxy)")
        t0 = time.perf_counter()
        if bulk:
            bulk_load_rtree(c, "o", "r", boxes)
        else:
            c.executemany("INSERT INTO o.r VALUES (?, ?, ?, ?, ?)", boxes)
        c.execute("COMMIT")
        out.append(time.perf_counter() - t0)
        assert c.execute("SELECT rtreecheck('o', 'r')").fetchone()[0] == "ok"
        c.close()
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--with-1m", action="store_true")
    args = ap.parse_args()

    src = demo_replica(100_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    db = tmp / "demo.db"
    with sqlite3.connect(src) as s, sqlite3.connect(db) as d:
        s.backup(d)  # a consistent private copy
    from db.replica import open_replica

    open_replica(db).close()  # bring the copy to this build's schema, so no run below pays a migration
    with sqlite3.connect(db) as c:
        n_events = c.execute("SELECT count(*) FROM events WHERE drill_id IS NULL").fetchone()[0]
    rows: list[tuple[str, str, str]] = []
    try:
        gp = tmp / "demo.gpkg"
        t, fastest, res = time_export(db, "gpkg", gp, args.repeat)
        rows.append(
            (
                f"GeoPackage export, 100k replica, all 8 layers ({res.total:,} features), median of {args.repeat}",
                f"{t:.2f} s (fastest {fastest:.2f} s), {mib(gp.stat().st_size)}",
                "≤ 5 s",
            )
        )
        t_nort, _, _ = time_export(db, "gpkg", tmp / "nort.gpkg", args.repeat, rtree=False)
        rows.append(("GeoPackage export without the R-tree index", f"{t_nort:.2f} s", "report"))
        one, bulk = bench_rtree()
        rows.append(
            (
                "R-tree of 100k points: INSERT one by one vs bulk load (STR)",
                f"{one:.2f} s vs {bulk:.2f} s",
                "report",
            )
        )
        t_ev, _, _ = time_export(db, "gpkg", tmp / "ev.gpkg", args.repeat, layer="events")
        rows.append(
            (
                f"GeoPackage, events layer only ({n_events:,})",
                f"{t_ev:.2f} s, {n_events / t_ev:,.0f} rows/s",
                "report",
            )
        )
        for fmt, layer, name in [
            ("geojson", "events", "e.geojson"),
            ("csv", "events", "e.csv"),
            ("open311", "events", "o.json"),
            ("geojson", "grids", "g.geojson"),
            ("csv", "grids", "g.csv"),
            ("geojson", "streets", "s.geojson"),
        ]:
            out = tmp / name
            t, _, res = time_export(db, fmt, out, args.repeat, layer=layer)
            n = res.counts[layer]
            rate = f", {n / t:,.0f} rows/s" if n > 10_000 else ""
            rows.append((f"{fmt} {layer} ({n:,})", f"{t:.2f} s{rate}, {mib(out.stat().st_size)}", "report"))
        for fmt, name in [("gpkg", "m.gpkg"), ("geojson", "m.geojson")]:
            base, peak = peak_rss(db, fmt, tmp / name)
            rows.append(
                (
                    f"peak RSS of a process exporting {fmt} (after imports → peak)",
                    f"{base / 1024:.0f} → {peak / 1024:.0f} MiB",
                    "streaming",
                )
            )
        # the command line, end to end (Python start, replica open, export, summary): median of 3
        cli_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, str(ROOT / "main.py"), "--db", str(db), "export", "--format", "gpkg", "--out",
                 str(tmp / "cli.gpkg")],
                capture_output=True,
                text=True,
            )  # fmt: skip
            cli_times.append(time.perf_counter() - t0)
            assert r.returncode == 0, r.stderr
        rows.append(
            (
                "`onemap --db demo.db export --format gpkg --out demo.gpkg`, wall clock, median of 3",
                f"{median(cli_times):.2f} s (fastest {min(cli_times):.2f} s)",
                "≤ 5 s",
            )
        )
        if args.with_1m:
            big = demo_replica(1_000_000)
            t, _, res = time_export(big, "gpkg", tmp / "1m.gpkg", 1)
            rows.append(
                (
                    f"GeoPackage export, 1M replica ({res.total:,} features)",
                    f"{t:.1f} s, {mib((tmp / '1m.gpkg').stat().st_size)}",
                    "report",
                )
            )
        notes = (
            "GeoPackage: streets, communities, grids (MULTIPOLYGON), neighbourhoods, places (points), roads "
            "(LINESTRING), devices, events (POINT); EPSG:4326; R-tree spatial index per layer, bulk-loaded. "
            "Attribute columns go from the replica into the GeoPackage by INSERT … SELECT on an ATTACHed "
            "file; only the point blob is built in Python (one call per row). Drill events and personal "
            "fields left out (the defaults)."
        )
        if shutil.which("ogrinfo"):
            info = subprocess.run(["ogrinfo", "-ro", "-so", str(gp)], capture_output=True, text=True)
            notes += "\n\n`ogrinfo -ro -so demo.gpkg`:\n\n```\n" + info.stdout.strip() + "\n```"
        write_table("export", "Bench: exports (issue 4 §4)", rows, notes)
        print(json.dumps({"tmp": str(tmp)}), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
