"""``onemap --db PATH bulletin --scope … --period … --out FILE.html|FILE.pdf`` as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.bulletin import PeriodError, parse_period

ROOT = Path(__file__).resolve().parents[1]
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_periods():
    assert parse_period("2026-11").window.since.isoformat() == "2026-11-01T00:00:00+08:00"
    assert parse_period("2026-12").window.until.isoformat() == "2027-01-01T00:00:00+08:00"
    w = parse_period("2026-W47").window
    assert (
        w.since.isoformat() == "2026-11-16T00:00:00+08:00"
        and w.until.isoformat() == "2026-11-23T00:00:00+08:00"
    )
    for bad in ("2026-13", "2026-W54", "2026/11", "Nov 2026", ""):
        with pytest.raises(PeriodError):
            parse_period(bad)


def test_html_district_month(demo_db, tmp_path):
    out = tmp_path / "b.html"
    r = run("--db", str(demo_db), "bulletin", "--scope", "district", "--period", "2026-11", "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    assert "工作通报" in html and "2026年11月" in html
    for word in (
        "按期结案率",
        "响应率",
        "满意率",
        "联动处置率",
        "街道排名",
        "部门按期结案排名",
        "热点网格",
        "<svg",
    ):
        assert word in html, word
    assert "无数据" not in html.split("</header>")[1].split('class="foot"')[0]
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert not PHONE.search(html)  # no personal data
    assert "NaN" not in html and "nan%" not in html


def test_street_week_with_global_scope_option(demo_db, tmp_path):
    out = tmp_path / "s.html"
    # the global --scope (a role's scope) and the bulletin's own --scope do not clash
    r = run("--db", str(demo_db), "--scope", "320613002", "bulletin", "--scope", "320613001",
            "--period", "2026-W46", "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    assert "2026年第46周" in html and 'class="mine"' in html


def test_empty_period_says_no_data_and_exits_0(demo_db, tmp_path):
    out = tmp_path / "e.html"
    r = run("--db", str(demo_db), "bulletin", "--period", "2030-01", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "无数据" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args",
    [
        ("--period", "2026-13", "--out", "x.html"),
        ("--period", "2026-W60", "--out", "x.html"),
        ("--period", "2026-11", "--out", "x.docx"),
        ("--period", "2026-11", "--scope", "999999", "--out", "x.html"),
        ("--out", "x.html"),
    ],
)
def test_bad_input_exits_2(demo_db, tmp_path, args):
    args = tuple(str(tmp_path / a) if a.startswith("x.") else a for a in args)
    r = run("--db", str(demo_db), "bulletin", *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip()
    assert not list(tmp_path.iterdir())


def test_pdf(demo_db, tmp_path):
    out = tmp_path / "b.pdf"
    r = run("--db", str(demo_db), "bulletin", "--scope", "district", "--period", "2026-11", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:5] == b"%PDF-" and out.stat().st_size > 20_000


def test_svg_charts_scale_and_escape():
    from app.svgcharts import _nice_max, bar_chart, hbar_chart, histogram

    assert [_nice_max(v) for v in (0, 3, 7, 11, 1100)] == [1.0, 5.0, 10.0, 20.0, 2000.0]
    svg = (
        hbar_chart([("<script>alert(1)</script>", 3.0)])
        + bar_chart(["a&b"], [1.0])
        + histogram([1.0, 12.0, 99.0])
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    assert "10 分钟" in svg
