"""Wall soak (issue 6, not in CI): the wall under 10× ``simulate`` intake for 20 minutes.

Starts ``onemap --wall --size WxH`` (offscreen without a display) and ``onemap simulate --rate R``
on a scratch copy of a demo replica, samples every ``--every`` seconds the RSS of the wall process
plus all its descendants (the QtWebEngineProcess children), and reports the growth after the
warm-up (target: no growth beyond 10 %). Writes bench/results/soak_wall.md.

Usage: .venv/bin/python bench/soak_wall.py [--db PATH] [--minutes 20] [--warmup 3] [--rate 300/min]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import demo_replica, write_table  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _rss(p: int) -> int:
    try:
        return int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _kind(p: int) -> str:
    """Chromium process type from the command line (renderer, gpu-process, zygote, utility …)."""
    try:
        argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    for a in argv:
        if a.startswith(b"--type="):
            return a[7:].decode(errors="replace")
    return "other"


def tree_rss(pid: int) -> tuple[int, int, int, dict[str, int]]:
    """(RSS of ``pid``, RSS of its descendants, number of descendants, RSS by process type) in bytes."""
    kids = _children()
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    by_kind: dict[str, int] = {}
    for p in seen[1:]:
        k = _kind(p)
        if k == "zygote" and p not in kids.get(pid, []):
            k = "renderer"  # forked by a zygote, which keeps the zygote's command line
        by_kind[k] = by_kind.get(k, 0) + _rss(p)
    total = sum(by_kind.values())
    for p in seen[1:]:  # the part of the renderers' RSS that is shared memory (raster tiles, frames)
        if "renderer" in by_kind and p not in kids.get(pid, []):
            by_kind["renderer, of it shmem"] = by_kind.get("renderer, of it shmem", 0) + _status_kb(p, "RssShmem")
    return _rss(pid), total, len(seen) - 1, by_kind


def _status_kb(p: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _probe_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        return []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="minutes before the baseline sample")
    ap.add_argument("--rate", default="300/min", help="simulate rate (10× the default 30/min)")
    ap.add_argument("--size", default="3840x700")
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--no-deltas", action="store_true", help="bisection: the wall pushes no map deltas")
    ap.add_argument("--no-rotation", action="store_true", help="bisection: the wall stays on one theme")
    ap.add_argument("--out", default="soak_wall", help="results name (bench/results/NAME.md)")
    ap.add_argument("--label", default="", help="a note for the results (what this run changes)")
    args = ap.parse_args()
    src = args.db or demo_replica(100_000)
    tmp = Path(tempfile.mkdtemp(prefix="soak-wall-"))
    db = tmp / "replica.db"
    shutil.copy(src, db)
    from db.replica import open_replica

    open_replica(db).close()  # migrate first: the wall and simulate then start on a current schema
    import sqlite3

    conn = sqlite3.connect(db)
    events_before = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    py = sys.executable
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen" if not env.get("DISPLAY") else env.get("QT_QPA_PLATFORM", ""))
    probe = tmp / "probe.jsonl"
    env["ONEMAP_WALL_PROBE"] = str(probe)
    env["ONEMAP_WALL_PROBE_S"] = str(args.every)
    if args.no_deltas:
        env["ONEMAP_WALL_NO_DELTAS"] = "1"
    if args.no_rotation:
        env["ONEMAP_WALL_NO_ROTATION"] = "1"
    flags = env.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    if "--enable-precise-memory-info" not in flags:  # performance.memory unquantised, for the probe
        env["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --enable-precise-memory-info").strip()
    wall = subprocess.Popen([py, str(ROOT / "main.py"), "--db", str(db), "--wall", "--size", args.size],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(20)  # the wall opens and loads its map first
    sim_log = open(tmp / "simulate.log", "w")  # noqa: SIM115 - closed with the process below
    sim = subprocess.Popen([py, str(ROOT / "main.py"), "--db", str(db), "simulate", "--rate", args.rate],
                           env=env, stdout=subprocess.DEVNULL, stderr=sim_log)  # fmt: skip
    time.sleep(5)
    if sim.poll() is not None:
        print(f"simulate exited with {sim.returncode}: {(tmp / 'simulate.log').read_text()[-2000:]}", file=sys.stderr)
        wall.terminate()
        return 1
    samples: list[tuple[float, int, int, int, dict[str, int]]] = []
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < args.minutes * 60:
            if wall.poll() is not None:
                print(f"the wall exited with {wall.returncode}", file=sys.stderr)
                break
            own, kids, n, by_kind = tree_rss(wall.pid)
            samples.append((time.monotonic() - t0, own, kids, n, by_kind))
            pr = _probe_lines(probe)
            page = pr[-1] if pr else {}
            kinds = " ".join(f"{k[:8]} {v / 2**20:6.1f}" for k, v in sorted(by_kind.items()))
            print(f"{samples[-1][0]:7.0f} s  app {own / 2**20:7.1f} MiB  children({n}) {kids / 2**20:7.1f} MiB"
                  f"  [{kinds}]  js {page.get('heap_used', 0) / 2**20:6.1f}/{page.get('heap_total', 0) / 2**20:6.1f}"
                  f"  dom {page.get('dom', 0)}  events {page.get('counts', {}).get('events', '?')}",
                  flush=True)  # fmt: skip
            time.sleep(args.every)
    finally:
        for p in (sim, wall):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (sim, wall):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    sim_log.close()
    crashed = wall.returncode not in (0, -signal.SIGTERM, None) and len(samples) and \
        samples[-1][0] < args.minutes * 60 - 2 * args.every
    warm = [s for s in samples if s[0] >= args.warmup * 60] or samples[-1:]
    if not warm:
        print("no samples", file=sys.stderr)
        return 1
    base, last = warm[0], warm[-1]
    peak = max(warm, key=lambda s: s[1] + s[2])

    def growth(a: int, b: int) -> str:
        return f"{(b - a) / a * 100:+.1f} %" if a else "—"

    conn_events = None
    try:
        import sqlite3

        conn = sqlite3.connect(db)
        conn_events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()
    except Exception:  # noqa: BLE001 - informative only
        pass
    mib = 2**20
    rows = [
        ("duration / warm-up", f"{samples[-1][0] / 60:.1f} min / {args.warmup:.0f} min", "20 min / —"),
        ("app RSS at warm-up → last sample", f"{base[1] / mib:.0f} → {last[1] / mib:.0f} MiB ({growth(base[1], last[1])})",
         "≤ +10 %"),
        ("QtWebEngineProcess children RSS at warm-up → last sample",
         f"{base[2] / mib:.0f} → {last[2] / mib:.0f} MiB ({growth(base[2], last[2])})", "≤ +10 %"),
    ]  # fmt: skip
    # single samples catch transient spikes (a theme switch or a takeover's raster, freed again
    # within a minute): the medians of the first and the last minute after warm-up show the trend
    first_min = [s_ for s_ in warm if s_[0] < warm[0][0] + 60]
    last_min = [s_ for s_ in warm if s_[0] > warm[-1][0] - 60]
    for label, idx in (("app", 1), ("children", 2)):
        a = statistics.median(s_[idx] for s_ in first_min)
        b = statistics.median(s_[idx] for s_ in last_min)
        rows.append((f"{label} RSS, median of the first → the last minute after warm-up",
                     f"{a / mib:.0f} → {b / mib:.0f} MiB ({growth(a, b)})", "≤ +10 %"))  # fmt: skip
    for kind in sorted(set(base[4]) | set(last[4])):
        a, b = base[4].get(kind, 0), last[4].get(kind, 0)
        rows.append((f"… of which {kind}", f"{a / mib:.0f} → {b / mib:.0f} MiB ({growth(a, b)})", "—"))
    rows += [
        ("total after warm-up → end (peak)",
         f"{(base[1] + base[2]) / mib:.0f} → {(last[1] + last[2]) / mib:.0f} MiB "
         f"({growth(base[1] + base[2], last[1] + last[2])}; peak {(peak[1] + peak[2]) / mib:.0f})", "≤ +10 %"),
    ]  # fmt: skip
    page = _probe_lines(probe)
    if page:
        # the probe's times are CLOCK_MONOTONIC too (the wall's time.monotonic()), like t0 here
        warm_page = [p for p in page if p["t"] - t0 >= args.warmup * 60 - args.every / 2] or page[-1:]
        pa, pb = warm_page[0], warm_page[-1]
        rows += [
            ("map page JS heap used after warm-up → end",
             f"{pa['heap_used'] / mib:.0f} → {pb['heap_used'] / mib:.0f} MiB ({growth(pa['heap_used'], pb['heap_used'])})",
             "—"),
            ("map page DOM elements / event markers after warm-up → end",
             f"{pa['dom']:,} → {pb['dom']:,} / {pa['counts'].get('events', 0):,} → {pb['counts'].get('events', 0):,}",
             "—"),
        ]  # fmt: skip
    rows.append(("wall process", "exited early" if crashed else "ran to the end", "runs"))
    switches = ", ".join(x for x, on in (("no map deltas", args.no_deltas), ("no rotation", args.no_rotation)) if on)
    notes = (f"simulate --rate {args.rate} (10× the default) on a copy of {src.name}; wall --size {args.size}, "
             f"offscreen; {len(samples)} samples every {args.every:.0f} s; events {events_before:,} → {conn_events:,}"
             f"{'; bisection: ' + switches if switches else ''}. Not run in CI."
             f"{chr(10) * 2 + args.label if args.label else ''}")  # fmt: skip
    trace = ["", "Trace (one line a minute; MiB; JS heap = used/total; events = markers on the map):", "",
             "| min | app | children | by type | JS heap | DOM | events |", "|---|---|---|---|---|---|---|"]
    step = max(1, round(60 / args.every))
    for s_ in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        near = min(page, key=lambda p: abs(p["t"] - t0 - s_[0]), default={})
        kinds = ", ".join(f"{k} {v / mib:.0f}" for k, v in sorted(s_[4].items()))
        trace.append(f"| {s_[0] / 60:.1f} | {s_[1] / mib:.0f} | {s_[2] / mib:.0f} | {kinds} | "
                     f"{near.get('heap_used', 0) / mib:.0f}/{near.get('heap_total', 0) / mib:.0f} | "
                     f"{near.get('dom', 0):,} | {near.get('counts', {}).get('events', '—')} |")  # fmt: skip
    out = ROOT / "bench" / "results" / f"{args.out}.md"
    history = ""
    if out.exists():
        old = out.read_text(encoding="utf-8")
        if "\n## History" in old:
            history = old[old.index("\n## History"):]
    write_table(args.out, "Wall soak (issue 6)", rows, notes + "\n" + "\n".join(trace))
    if history:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(history)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if not crashed else 1


if __name__ == "__main__":
    raise SystemExit(main())
