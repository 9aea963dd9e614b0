"""``onemap --db PATH drill list|show ID|report ID --out FILE`` as a subprocess: output and exit codes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _ids(db, status):
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute("SELECT id FROM drills WHERE status = ? ORDER BY starts_at", (status,))]


def test_list_prints_every_drill_one_line_each(demo_db):
    r = run("--db", str(demo_db), "drill", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    with sqlite3.connect(demo_db) as c:
        rows = c.execute("SELECT id, starts_at, theme, level, status FROM drills ORDER BY starts_at, id").fetchall()
    assert len(lines) == len(rows)
    for line, (i, starts, theme, level, status) in zip(lines, rows, strict=True):
        parts = line.split()
        assert int(parts[0]) == i and parts[1] == starts[:10] and parts[2] == starts[11:16]
        assert parts[3] == theme and parts[4] == level and parts[5] == status
    assert {"completed", "stopped", "scheduled"} <= {ln.split()[5] for ln in lines}


def test_show_prints_plan_and_injects(demo_db):
    did = _ids(demo_db, "completed")[0]
    r = run("--db", str(demo_db), "drill", "show", str(did))
    assert r.returncode == 0, r.stderr
    assert f"演练 #{did}" in r.stdout and "注入" in r.stdout and "出勤" in r.stdout


def test_report_html_in_every_state(demo_db, tmp_path):
    for status, words in (("completed", "已完成"), ("stopped", "提前结束"), ("scheduled", "尚未进行")):
        out = tmp_path / f"{status}.html"
        r = run("--db", str(demo_db), "drill", "report", str(_ids(demo_db, status)[0]), "--out", str(out))
        assert r.returncode == 0, r.stderr
        html = out.read_text(encoding="utf-8")
        assert "演练评估报告" in html and words in html


def test_report_pdf(demo_db, tmp_path):
    out = tmp_path / "r.pdf"
    r = run("--db", str(demo_db), "drill", "report", str(_ids(demo_db, "completed")[-1]), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:5] == b"%PDF-" and out.stat().st_size > 10_000


def test_exit_codes(demo_db, tmp_path):
    assert run("--db", str(demo_db), "drill", "show", "99999").returncode == 1
    assert run("--db", str(demo_db), "drill", "report", "99999", "--out", str(tmp_path / "x.html")).returncode == 1
    assert run("--db", str(demo_db), "drill", "report", "1", "--out", str(tmp_path / "no" / "x.html")).returncode == 1
    assert run("--db", str(tmp_path / "missing.db"), "drill", "list").returncode == 1
    assert run("--db", str(demo_db), "drill").returncode == 2
    assert run("--db", str(demo_db), "drill", "show", "abc").returncode == 2
    assert run("--db", str(demo_db), "drill", "report", "1", "--out", str(tmp_path / "x.txt")).returncode == 2
    assert run("--db", str(demo_db), "drill", "report", "1").returncode == 2
