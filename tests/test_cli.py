"""CLI: one subprocess test per command, asserting exit codes (0 done, 1 failed, 2 usage)."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_demo_command_and_refusal_to_overwrite(tmp_path):
    db = tmp_path / "d.db"
    r = run("--db", str(db), "demo", "--events", "300", "--until", "2026-11-20T12:00:00")
    assert r.returncode == 0, r.stderr
    assert "824 grids" in r.stderr
    again = run("--db", str(db), "demo", "--events", "300")
    assert again.returncode == 1
    assert "--force" in again.stderr


def test_usage_errors_exit_2(tmp_path):
    assert run("--db", str(tmp_path / "x.db"), "--size", "huge").returncode == 2
    assert run("--db", str(tmp_path / "x.db"), "demo", "--until", "not-a-date").returncode == 2
    assert run("nonsense-command").returncode == 2


def test_non_sqlite_replica_exits_1_naming_the_file(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("hello")
    r = run("--db", str(bad), "--screenshot", str(tmp_path / "s.png"))
    assert r.returncode == 1
    assert str(bad) in r.stderr
    assert bad.read_text() == "hello"


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_screenshot_has_exact_size(demo_copy, tmp_path, size):
    out = tmp_path / "shot.png"
    r = run("--db", str(demo_copy), "--screenshot", str(out), "--size", f"{size[0]}x{size[1]}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert png_size(out) == size
    assert out.stat().st_size > 50_000  # a real picture, not a blank frame
