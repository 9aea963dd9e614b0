"""``onemap --db PATH dossier EVENT_ID --out FILE.html|FILE.pdf`` as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_html(demo_copy, tmp_path):
    out = tmp_path / "x.html"
    r = run("--db", str(demo_copy), "dossier", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stderr
    html = out.read_text(encoding="utf-8")
    assert "一哨一档" in html and 'class="log-entry' in html


def test_html_by_source_ref_and_options_after_command(demo_copy, tmp_path):
    import sqlite3

    with sqlite3.connect(demo_copy) as c:
        source, ext = c.execute("SELECT source, external_id FROM events WHERE id = 3").fetchone()
    out = tmp_path / "ref.html"
    r = run("dossier", f"{source}:{ext}", "--out", str(out), "--db", str(demo_copy), "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert "dossier of event 3" in r.stderr
    assert 'lang="en"' in out.read_text(encoding="utf-8")


def test_pdf(demo_copy, tmp_path):
    out = tmp_path / "x.pdf"
    r = run("--db", str(demo_copy), "dossier", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"%PDF")


def test_missing_event_exits_1(demo_copy, tmp_path):
    out = tmp_path / "x.html"
    r = run("--db", str(demo_copy), "dossier", "987654321", "--out", str(out))
    assert r.returncode == 1
    assert "987654321" in r.stderr
    assert not out.exists()


def test_missing_event_pdf_exits_1(demo_copy, tmp_path):
    r = run("--db", str(demo_copy), "dossier", "nosuch:ref", "--out", str(tmp_path / "x.pdf"))
    assert r.returncode == 1
    assert "nosuch:ref" in r.stderr


def test_missing_replica_exits_1(tmp_path):
    missing = tmp_path / "nope.db"
    r = run("--db", str(missing), "dossier", "1", "--out", str(tmp_path / "x.html"))
    assert r.returncode == 1
    assert str(missing) in r.stderr
    assert not missing.exists()  # never created


@pytest.mark.parametrize("name", ["x.doc", "x", "x.htm.txt"])
def test_unknown_extension_exits_2(demo_copy, tmp_path, name):
    r = run("--db", str(demo_copy), "dossier", "1", "--out", str(tmp_path / name))
    assert r.returncode == 2
    assert ".html or .pdf" in r.stderr


def test_missing_out_exits_2(demo_copy):
    r = run("--db", str(demo_copy), "dossier", "1")
    assert r.returncode == 2
