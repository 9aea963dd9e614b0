"""Issue 8 (grid robot): one full pass of every rule over the 1M-event replica (target ≤ 5 s), and
memory over 100 passes on the 100k replica (target: flat).

Usage: .venv/bin/python bench/bench_robot.py [--passes N] [--skip-1m]
Writes bench/results/robot.md. The 1M replica (bench/.data/demo-1000000.db) is this branch's
private copy: opening it migrates it (m008), and passes write their warnings into it. It has no
care list, visits or positions (it predates them), so those rules run over empty tables there.
The memory run works on a temporary copy of bench/.data/demo-100000.db.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, UNTIL, demo_replica, median, write_table  # noqa: E402


def rss_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-1m", action="store_true")
    ap.add_argument("--skip-100k", action="store_true", help="only the 1M pass (no table is written)")
    args = ap.parse_args()
    from app.robot import engine
    from app.timeutil import parse
    from db.replica import open_replica

    now = parse(UNTIL + "+08:00")
    rows: list[tuple[str, str, str]] = []
    notes = []
    if not args.skip_1m:
        path = DATA / "demo-1000000.db"
        if not path.exists():
            print(f"{path} missing: run bench/bench_console.py --with-1m first (or --skip-1m)", file=sys.stderr)
            return 1
        t0 = time.perf_counter()
        r = open_replica(path)
        opened = time.perf_counter() - t0
        try:
            n = r.reader().execute("SELECT count(*) FROM events").fetchone()[0]
            times, last = [], None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                last = engine.run_pass(r, now=now)
                times.append(time.perf_counter() - t0)
                print(f"1M pass: {times[-1]:.2f} s {dict((k, round(v, 2)) for k, v in last.timings.items())}",
                      file=sys.stderr)  # fmt: skip
            open_n = r.reader().execute("SELECT count(*) FROM robot_warnings WHERE status = 'open'").fetchone()[0]
        finally:
            r.close()
        rows.append((f"one full pass, {n:,} events (first of {args.repeat})", f"{times[0]:.2f} s", "≤ 5 s"))
        rows.append((f"one full pass, {n:,} events (median of {args.repeat})", f"{median(times):.2f} s", "≤ 5 s"))
        per_rule = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in last.timings.items())
        notes.append(f"1M replica: open (+ migration on first open) {opened:.1f} s; per rule in the last pass: "
                     f"{per_rule}; open warnings after the passes: {open_n:,}; findings per rule: {last.counts}.")  # fmt: skip

    if args.skip_100k:
        print("\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows) + "\n" + "\n".join(notes))
        return 0
    src = demo_replica(100_000)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "robot-mem.db"
        shutil.copy(src, db)
        r = open_replica(db)
        try:
            samples = {}
            times = []
            for k in range(1, args.passes + 1):
                t0 = time.perf_counter()
                res = engine.run_pass(r, now=now)
                times.append(time.perf_counter() - t0)
                if k in (1, 10, 50, args.passes):
                    gc.collect()
                    samples[k] = rss_kib()
        finally:
            r.close()
    first, last_k = samples[1], samples[args.passes]
    rows.append(("one full pass, 100,000 events (median)", f"{median(times):.2f} s", "—"))
    rows.append((f"RSS after pass 1 → 10 → 50 → {args.passes} (100k)",
                 " → ".join(f"{samples[k] / 1024:.0f}" for k in sorted(samples)) + " MiB", "flat"))  # fmt: skip
    rows.append((f"RSS growth pass 10 → {args.passes}", f"{(last_k - samples.get(10, first)) / 1024:+.1f} MiB", "≈ 0"))
    notes.append(f"100k replica: findings per rule in the last pass {res.counts}; "
                 f"pass 1 RSS {first / 1024:.0f} MiB (includes the grid names and categories read once).")  # fmt: skip
    notes.append(f"Load average at the end (2 cores shared with other work): {os.getloadavg()[0]:.1f}.")
    write_table("robot", "Grid robot (issue 8): rule-engine pass and memory", rows, "\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
