"""``onemap simulate`` as a subprocess: --duration, SIGTERM/SIGINT mid-run, usage errors."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import parse_rate
from tests.app.test_simulate import check_sim_events

ROOT = Path(__file__).resolve().parents[1]
FIRST_EVENT_S = 15.0  # behaviour, not speed: the 2 s figure is measured in bench/, not asserted here


def command(db: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "--db", str(db), "simulate", *args]


def env() -> dict:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen")


def sim_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM events WHERE external_id LIKE 'SIM-%'").fetchone()[0]
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(str(db), timeout=5)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_duration_run_writes_valid_events_and_exits_0(demo_copy):
    r = subprocess.run(
        command(demo_copy, "--rate", "120/min", "--duration", "5", "--seed", "4"),
        capture_output=True, text=True, timeout=60, env=env(),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    n = sim_count(demo_copy)
    assert n >= 1
    assert check_sim_events(demo_copy) == n
    assert "events created" in r.stderr and "conflicts" in r.stderr
    assert "新事件" in r.stderr  # one INFO line per record at this rate
    assert integrity(demo_copy) == "ok"
    assert (
        not Path(f"{demo_copy}-wal").exists() or Path(f"{demo_copy}-wal").stat().st_size == 0
    )  # checkpointed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_after_the_first_event(demo_copy, sig):
    t0 = time.monotonic()
    p = subprocess.Popen(
        command(demo_copy, "--rate", "60/min"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env(),
    )
    try:
        first = None
        while time.monotonic() - t0 < 20 and p.poll() is None:
            if sim_count(demo_copy):
                first = time.monotonic() - t0
                break
            time.sleep(0.05)
        assert first is not None, "no SIM event appeared"
        assert first <= FIRST_EVENT_S, f"first event after {first:.2f} s"
        time.sleep(0.5)
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err[-2000:]
    summary = [line for line in err.splitlines() if "events created" in line]
    assert len(summary) == 1 and "steps" in summary[0] and "moves" in summary[0] and "conflicts" in summary[0]
    assert integrity(demo_copy) == "ok"
    assert check_sim_events(demo_copy) >= 1


@pytest.mark.parametrize("rate", ["abc", "0", "-5/min", "30/fortnight", "10/min/s", ""])
def test_bad_rate_is_a_usage_error(tmp_path, rate):
    r = subprocess.run(
        command(tmp_path / "none.db", "--rate", rate, "--duration", "1"),
        capture_output=True, text=True, timeout=60, env=env(),
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "rate" in r.stderr


def test_missing_replica_exits_1(tmp_path):
    r = subprocess.run(command(tmp_path / "none.db", "--duration", "1"), capture_output=True, text=True,
                       timeout=60, env=env())  # fmt: skip
    assert r.returncode == 1
    assert "none.db" in r.stderr
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("text", "per_min"),
    [
        ("30/min", 30),
        ("30", 30),
        ("2/s", 120),
        ("120/h", 2),
        ("0.5/sec", 30),
        ("90 / minute", 90),
        ("1/hour", 1 / 60),
    ],
)
def test_parse_rate(text, per_min):
    assert parse_rate(text) == pytest.approx(per_min)


@pytest.mark.parametrize("text", ["abc", "0", "0/s", "1e3", "-1", "5/d", "nan", "2000/s"])
def test_parse_rate_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_rate(text)
