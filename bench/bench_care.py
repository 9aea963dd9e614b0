"""Care list (关爱名单) forms: reading the list for the window and the four writes.

Usage: .venv/bin/python bench/bench_care.py [--residents N]
Works on a temporary copy of the 5k-event demo replica (its ~1,300 residents), then pads the
care list to ``--residents`` (default 20,000, about a district's real list) with two visits each
and measures again. Writes bench/results/care_list.md. No target was set; the window reads the list
in a worker (the table keeps its rows and the summary says 读取中… meanwhile).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import UNTIL, demo_replica, median, pct, timed, write_table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    from app import care_list as cl
    from app import timeutil
    from app.state import Session
    from db.ids import new_ulid
    from db.replica import open_replica

    now = timeutil.parse(UNTIL)
    tmp = Path(tempfile.mkdtemp(prefix="bench-care-"))
    path = tmp / "demo.db"
    shutil.copy(demo_replica(5000), path)
    rep = open_replica(path)
    rows: list[tuple[str, str, str]] = []
    try:
        district = Session(role="district", user="bench")

        def read(session, **kw) -> list[float]:
            def once():
                c = rep.reader()
                try:
                    return cl.list_residents(c, session, now=now, **kw)
                finally:
                    c.close()

            once()
            return timed(once, args.repeat)

        def measure(label: str) -> None:
            c = rep.reader()
            n = c.execute("SELECT count(*) FROM care_list WHERE active = 1").fetchone()[0]
            street = c.execute("SELECT street_code FROM care_list GROUP BY street_code ORDER BY count(*) DESC").fetchone()[0]
            c.close()
            for who, s, kw in (("district, all", district, {}), ("district, masked (drill)", Session(role="drill"), {}),
                               ("street", Session(role="street", scope=street), {}),
                               ("district, search by name", district, {"search": "王"})):  # fmt: skip
                t = read(s, **kw)
                rows.append((f"{label}: list read, {who} ({n:,} active residents)",
                             f"{median(t) * 1000:.0f} ms median, {pct(t, 95) * 1000:.0f} ms p95", "— (in a worker; the UI shows 读取中…)"))

        measure("demo")
        c = rep.reader()
        grids = [r[0] for r in c.execute("SELECT id FROM grids ORDER BY id")]
        streets = dict(c.execute("SELECT id, street_code FROM grids"))
        have = c.execute("SELECT count(*) FROM care_list").fetchone()[0]
        c.close()
        extra = max(args.residents - have, 0)
        with rep.write("care_list", "visits") as w:
            start = w.execute("SELECT coalesce(max(id), 0) FROM care_list").fetchone()[0] + 1
            w.executemany(
                "INSERT INTO care_list (id, uid, name, phone, kind, address, grid_id, street_code, visit_every_days, "
                "created_at) VALUES (?, ?, ?, ?, 'elderly_alone', ?, ?, ?, 7, ?)",
                [(start + i, new_ulid(), f"王{i % 97}明", f"139{i:08d}", f"某小区{i % 40}幢", grids[i % len(grids)],
                  streets[grids[i % len(grids)]], "2026-05-01T08:00:00+08:00") for i in range(extra)],
            )  # fmt: skip
            w.executemany(
                "INSERT INTO visits (uid, kind, care_id, grid_id, at) VALUES (?, 'care_visit', ?, ?, ?)",
                [(new_ulid(), start + i, grids[i % len(grids)], f"2026-11-{10 + k * 5:02d}T10:00:00+08:00")
                 for i in range(extra) for k in range(2)],
            )  # fmt: skip
        measure("padded")

        grid = grids[0]
        ids: list[int] = []
        t_add = timed(lambda: ids.append(cl.add_resident(rep, district, {"name": "测试", "grid_id": grid,
                                                                       "phone": "13912345678"})), args.repeat)  # fmt: skip
        it = iter(ids)
        t_upd = timed(lambda: cl.update_resident(rep, district, next(it), {"note": "改"}), args.repeat)
        it = iter(ids)
        t_vis = timed(lambda: cl.record_visit(rep, district, next(it), at=now, visitor="网格长", now=now), args.repeat)
        it = iter(ids)
        t_off = timed(lambda: cl.deactivate_resident(rep, district, next(it), "已搬离"), args.repeat)
        for label, t in (("add a resident", t_add), ("edit a resident", t_upd), ("record a visit", t_vis),
                         ("deactivate a resident", t_off)):  # fmt: skip
            rows.append((f"write: {label} (one transaction, in a worker)",
                         f"{median(t) * 1000:.1f} ms median, {pct(t, 95) * 1000:.1f} ms p95", "—"))
    finally:
        rep.close()
        shutil.rmtree(tmp, ignore_errors=True)
    write_table("care_list", "Care list (关爱名单) window: list read and writes", rows,
                notes=f"Median and p95 of {args.repeat} runs each after one warm-up; 5k-event demo replica "
                      f"(seed 20241), then the care list padded to {args.residents:,} residents with 2 visits each. "
                      f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
