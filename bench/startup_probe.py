"""Launch the console once and report seconds from launch to 'map loaded' (used by bench_console)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_to_map(db: Path, size: str = "1920x1080", extra: tuple[str, ...] = ()) -> float:
    """Start ``main.py --screenshot`` and return the launch → map-ready time it reports."""
    out = Path(tempfile.mkdtemp()) / "probe.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ONEMAP_T0=repr(time.time()))
    r = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--db", str(db), "--screenshot", str(out), "--size", size, *extra],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    m = re.search(r"bench: map-ready ([0-9.]+)", r.stderr)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"console failed (rc={r.returncode}): {r.stderr[-1500:]}")
    return float(m.group(1))


if __name__ == "__main__":
    print(f"{time_to_map(Path(sys.argv[1])):.2f} s")
