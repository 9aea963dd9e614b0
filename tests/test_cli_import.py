"""``onemap import`` as a subprocess: the counts line, exit codes, and a killed import (SIGKILL in the
middle of a chunked run) that leaves a consistent replica and is finished by running it again."""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "intake"
COUNTS = re.compile(r"^created (\d+), updated (\d+), unchanged (\d+), quarantined (\d+)$")


def command(db: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "--db", str(db), "import", *args]


def env() -> dict:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen")


def onemap(db: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command(db, *args), capture_output=True, text=True, timeout=timeout, env=env())


def counts(out: str) -> tuple[int, int, int, int]:
    m = COUNTS.match(out.strip())
    assert m, out
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def ro(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def test_import_prints_the_counts_and_exits_0_with_quarantined_records(demo_copy):
    p = onemap(demo_copy, str(FIX / "hotline_12345.csv"), "--format", "12345-csv")
    assert p.returncode == 0, p.stderr
    assert counts(p.stdout) == (4, 0, 0, 8)
    assert "missing field: 工单编号" in p.stderr and "truncated line" in p.stderr and "utf-8-sig" in p.stderr
    again = onemap(demo_copy, str(FIX / "hotline_12345.csv"), "--format", "12345-csv")
    assert again.returncode == 0 and counts(again.stdout) == (0, 0, 4, 8)


@pytest.mark.parametrize(
    "fixture, fmt, expected",
    [
        ("open311.json", "open311", (4, 0, 0, 2)),
        ("open311.xml", "open311", (2, 0, 0, 1)),
        ("citymgmt.json", "citymgmt", (4, 0, 0, 1)),
        ("iot.jsonl", "iot-jsonl", (3, 0, 0, 4)),
    ],
)
def test_each_format_from_the_command_line(demo_copy, fixture, fmt, expected):
    p = onemap(demo_copy, str(FIX / fixture), "--format", fmt)
    assert p.returncode == 0, p.stderr
    assert counts(p.stdout) == expected


def test_encoding_datum_and_mapping_options(demo_copy, tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((FIX / "hotline_12345.csv").read_text(encoding="utf-8-sig").encode("gbk"))
    p = onemap(demo_copy, str(gbk), "--format", "12345-csv", "--encoding", "GBK", "--datum", "gcj02")
    assert p.returncode == 0 and counts(p.stdout)[0] == 4 and "(12345-csv, gbk)" in p.stderr
    p = onemap(demo_copy, str(FIX / "hotline_custom_headers.csv"), "--format", "12345-csv",
               "--mapping", str(FIX / "mapping.json"))  # fmt: skip
    assert p.returncode == 0 and counts(p.stdout) == (2, 0, 0, 0)


def test_exit_1_when_the_file_cannot_be_read(demo_copy, tmp_path):
    p = onemap(demo_copy, str(tmp_path / "missing.csv"), "--format", "12345-csv")
    assert p.returncode == 1 and "no such file" in p.stderr and p.stdout == ""
    p = onemap(demo_copy, str(FIX / "hotline_12345.csv"), "--format", "open311")
    assert p.returncode == 1 and "not Open311" in p.stderr
    p = onemap(demo_copy, str(FIX / "open311.json"), "--format", "12345-csv")
    assert p.returncode == 1 and "not a 12345 work-order CSV" in p.stderr
    p = onemap(tmp_path / "no.db", str(FIX / "open311.json"), "--format", "open311")
    assert p.returncode == 1 and "no such replica" in p.stderr
    for fmt, text in (("citymgmt", ""), ("citymgmt", "hello, not JSON"), ("open311", "")):
        bad = tmp_path / "bad.json"
        bad.write_text(text, encoding="utf-8")
        p = onemap(demo_copy, str(bad), "--format", fmt)  # found while reading: a message, no traceback
        assert p.returncode == 1 and "Traceback" not in p.stderr and "bad.json" in p.stderr, (fmt, text, p.stderr)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    p = onemap(demo_copy, str(empty), "--format", "iot-jsonl")  # JSON lines with no line: a valid, empty feed
    assert p.returncode == 0 and "0 records" in p.stderr


def test_exit_2_for_usage_errors(demo_copy, tmp_path):
    for args in (("--format", "kml"), ("--format", "open311", "--datum", "XYZ"),
                 ("--format", "open311", "--encoding", "klingon"), ()):  # fmt: skip
        p = onemap(demo_copy, str(FIX / "open311.json"), *args)
        assert p.returncode == 2, (args, p.stderr)
    bad = tmp_path / "m.json"
    bad.write_text('{"单号": "颜色"}', encoding="utf-8")
    p = onemap(demo_copy, str(FIX / "hotline_custom_headers.csv"), "--format", "12345-csv", "--mapping", str(bad))
    assert p.returncode == 2 and "unknown field" in p.stderr


# -- a killed import ---------------------------------------------------------------------------------
ROWS = 70_000


def _big_csv(db: Path, path: Path) -> Path:
    conn = ro(db)
    pts = conn.execute("SELECT lon, lat FROM places WHERE kind = 'estate' ORDER BY id").fetchall()
    conn.close()
    t0 = dt.datetime(2026, 9, 1)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["工单编号", "来电时间", "诉求类型", "诉求内容", "地址", "联系人", "联系电话", "经度", "纬度", "坐标系", "状态"])
        for i in range(ROWS):
            x, y = pts[i % len(pts)]
            w.writerow([f"K{i:06d}", (t0 + dt.timedelta(seconds=97 * i)).strftime("%Y-%m-%d %H:%M:%S"),
                        ("垃圾清运", "噪音扰民", "路灯不亮")[i % 3], f"工单内容{i}", "", "", "", x, y, "WGS-84",
                        "已结案" if i % 7 == 0 else ""])  # fmt: skip
    return path


def check_consistent(db: Path) -> dict:
    conn = ro(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        run = dict(conn.execute("SELECT * FROM import_runs ORDER BY id DESC LIMIT 1").fetchone())
        n = conn.execute("SELECT count(*) FROM events WHERE source = 'hotline_12345' AND external_id GLOB 'K*'").fetchone()[0]
        distinct = conn.execute(
            "SELECT count(DISTINCT external_id) FROM events WHERE source = 'hotline_12345' AND external_id GLOB 'K*'"
        ).fetchone()[0]
        broken = conn.execute(
            "SELECT count(*) FROM events e WHERE e.external_id GLOB 'K*' AND ("
            "(SELECT action FROM event_log l WHERE l.event_id = e.id ORDER BY l.id LIMIT 1) IS NOT 'report' OR "
            "(SELECT to_status FROM event_log l WHERE l.event_id = e.id ORDER BY l.id DESC LIMIT 1) IS NOT e.status OR "
            "(SELECT count(*) FROM event_log l WHERE l.event_id = e.id AND l.action = 'imported') "
            "<> (e.status <> 'reported'))"
        ).fetchone()[0]
        return {"run": run, "events": n, "distinct": distinct, "broken": broken}
    finally:
        conn.close()


def check_rollups(db: Path) -> None:
    """The KPI triggers (dropped and re-created inside each bulk chunk's transaction) are all
    there, and the rollups equal a rebuild from the events."""
    from db import kpi_rollups

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {f"{kpi_rollups.TRIGGER_PREFIX}events_ai", f"{kpi_rollups.TRIGGER_PREFIX}events_au",
                f"{kpi_rollups.TRIGGER_PREFIX}log_defer"} <= names  # fmt: skip
        before = kpi_rollups.snapshot(conn)
        conn.execute("BEGIN IMMEDIATE")
        kpi_rollups.rebuild(conn, helpers=False)
        fresh = kpi_rollups.snapshot(conn)
        conn.execute("ROLLBACK")
        assert before == fresh
    finally:
        conn.close()


@pytest.mark.slow
def test_a_killed_import_leaves_whole_chunks_and_a_rerun_completes_it(demo_copy, tmp_path):
    path = _big_csv(demo_copy, tmp_path / "big.csv")
    proc = subprocess.Popen(command(demo_copy, str(path), "--format", "12345-csv"), env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 240
    committed = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn = ro(demo_copy)
                try:
                    r = conn.execute("SELECT next_item FROM import_runs WHERE status = 'running'").fetchone()
                finally:
                    conn.close()
            except sqlite3.OperationalError:
                r = None
            if r and r[0] > 1:
                committed = r[0] - 1
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the import finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert committed > 0
    state = check_consistent(demo_copy)
    assert state["run"]["status"] == "running" and state["broken"] == 0
    assert state["events"] == state["distinct"] == state["run"]["next_item"] - 1 < ROWS
    check_rollups(demo_copy)

    p = onemap(demo_copy, str(path), "--format", "12345-csv")
    assert p.returncode == 0, p.stderr
    assert counts(p.stdout) == (ROWS - state["events"], 0, 0, 0)
    assert "resumed run" in p.stderr
    final = check_consistent(demo_copy)
    assert final["run"]["id"] == state["run"]["id"] and final["run"]["status"] == "complete"
    assert final["events"] == final["distinct"] == ROWS and final["broken"] == 0
    check_rollups(demo_copy)
