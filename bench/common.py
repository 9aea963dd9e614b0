"""Shared helpers for the bench scripts: timing, percentiles, table output, cached replicas."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"
RESULTS = ROOT / "bench" / "results"
UNTIL = "2026-11-25T18:00:00"
sys.path.insert(0, str(ROOT))


def timed(fn: Callable, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values)


def demo_replica(events: int, *, seed: int = 20241) -> Path:
    """A demo replica with ``events`` events, generated once and cached under bench/.data/."""
    from app.timeutil import parse
    from db.demo.generate import DemoOptions, generate_demo_file

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"demo-{events}.db"
    if not path.exists():
        print(f"generating {path.name} ({events:,} events)…", file=sys.stderr)
        generate_demo_file(path, DemoOptions(seed=seed, until=parse(UNTIL), events=events))
    return path


def write_table(name: str, title: str, rows: list[tuple[str, str, str]], notes: str = "") -> Path:
    """Print and save a markdown table of (figure, result, target)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {title}",
        "",
        f"Measured {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "| figure | result | target |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if notes:
        lines += ["", notes]
    text = "\n".join(lines) + "\n"
    print(text)
    path = RESULTS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path
