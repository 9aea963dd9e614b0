"""``onemap --db PATH export --format geojson|csv|gpkg|open311 --out FILE …`` as a subprocess:
exit 0 with a one-line summary, 1 refused or failed (nothing written), 2 usage errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.db.test_export import S1, S2, build_tiny, read_csv

ROOT = Path(__file__).resolve().parents[1]
OGRINFO = shutil.which("ogrinfo")


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


@pytest.fixture
def tiny(tmp_path) -> Path:
    return build_tiny(tmp_path / "tiny.db")


def summary(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("onemap: export:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_each_format(tiny, tmp_path):
    for fmt, name in [("geojson", "e.geojson"), ("csv", "e.csv"), ("open311", "o.json"), ("gpkg", "a.gpkg")]:
        out = tmp_path / name
        r = run("--db", str(tiny), "export", "--format", fmt, "--out", str(out))
        assert r.returncode == 0, r.stderr
        line = summary(r)
        assert str(out) in line and "drill events left out" in line
        assert out.exists() and not list(tmp_path.glob(".*.part*"))
    assert len(json.loads((tmp_path / "e.geojson").read_text(encoding="utf-8"))["features"]) == 5
    assert len(read_csv(tmp_path / "e.csv")) == 5
    assert len(json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))) == 5
    assert "events 5" in summary(
        run("--db", str(tiny), "export", "--format", "gpkg", "--out", str(tmp_path / "b.gpkg"))
    )


@pytest.mark.skipif(OGRINFO is None, reason="GDAL's ogrinfo is not installed (apt-get install gdal-bin)")
def test_gpkg_demo_opens_in_ogrinfo(demo_copy, tmp_path):
    out = tmp_path / "demo.gpkg"
    r = run("--db", str(demo_copy), "export", "--format", "gpkg", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "grids 824" in summary(r) and "streets 16" in summary(r)
    with sqlite3.connect(demo_copy) as c:
        events = c.execute("SELECT count(*) FROM events WHERE drill_id IS NULL").fetchone()[0]
    for layer, n in [("grids", 824), ("streets", 16), ("events", events)]:
        info = subprocess.run(
            [OGRINFO, "-ro", "-so", str(out), layer], capture_output=True, text=True, timeout=60
        )
        assert info.returncode == 0, info.stderr
        assert re.search(rf"Feature Count: {n}\b", info.stdout), info.stdout
    listing = subprocess.run(
        [OGRINFO, "-ro", "-al", "-so", str(out)], capture_output=True, text=True, timeout=60
    )
    assert listing.stdout.count('ID["EPSG",4326]') == 8


def test_layer_and_filters(tiny, tmp_path):
    out = tmp_path / "g.geojson"
    r = run("--db", str(tiny), "export", "--format", "geojson", "--layer", "grids", "--out", str(out))
    assert r.returncode == 0 and "grids 3" in summary(r)
    out = tmp_path / "e.csv"
    r = run(
        "--db", str(tiny), "export", "--format", "csv", "--out", str(out), "--since", "2026-03-02",
        "--until", "2026-03-05T00:00:00+08:00", "--include-drills",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [row["uid"] for row in read_csv(out)] == ["E2", "E3", "E5"]


def test_scope_after_and_before_the_command(tiny, tmp_path):
    out = tmp_path / "a.csv"
    r = run("--db", str(tiny), "export", "--format", "csv", "--out", str(out), "--scope", S1)
    assert r.returncode == 0, r.stderr
    assert {row["street_code"] for row in read_csv(out)} == {S1}
    # before the command, for the district role, --scope can only mean the street filter
    r = run("--scope", S2, "--db", str(tiny), "export", "--format", "csv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert {row["street_code"] for row in read_csv(out)} == {S2}
    # a street station exports its own street
    r = run(
        "--db", str(tiny), "--role", "street", "--scope", S2, "export", "--format", "csv", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert {row["street_code"] for row in read_csv(out)} == {S2}


def test_personal_fields(tiny, tmp_path):
    out = tmp_path / "p.csv"
    r = run("--db", str(tiny), "export", "--format", "csv", "--out", str(out))
    assert r.returncode == 0 and "personal fields left out" in summary(r)
    assert "reporter_name" not in read_csv(out)[0]
    r = run("--db", str(tiny), "export", "--format", "csv", "--out", str(out), "--include-personal")
    assert r.returncode == 0, r.stderr
    assert read_csv(out)[0]["reporter_name"] == "张三"


@pytest.mark.parametrize(
    "role_args", [("--wall",), ("--role", "department", "--scope", "CITYMGMT"), ("--role", "drill")]
)
def test_personal_refused_exit_1(tiny, tmp_path, role_args):
    out = tmp_path / "p.csv"
    r = run(
        "--db", str(tiny), *role_args, "export", "--format", "csv", "--out", str(out), "--include-personal"
    )
    assert r.returncode == 1
    assert "personal data export refused" in r.stderr
    assert not out.exists()
    with sqlite3.connect(tiny) as c:
        assert c.execute("SELECT action FROM access_log").fetchall() == [("export",)]


def test_street_role_other_street_refused(tiny, tmp_path):
    out = tmp_path / "x.csv"
    r = run("--db", str(tiny), "--station", S1, "export", "--format", "csv", "--out", str(out), "--scope", S2)
    assert r.returncode == 1 and "outside your scope" in r.stderr and not out.exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (("--format", "kml"), "invalid choice"),
        (("--format", "csv", "--layer", "devices"), "not available for csv"),
        (("--format", "open311", "--layer", "grids"), "not available for open311"),
        (("--format", "gpkg", "--layer", "bogus"), "not available for gpkg"),
        (("--format", "csv", "--since", "last tuesday"), "--since"),
        (("--format", "csv", "--since", "2026-03-05", "--until", "2026-03-01"), "not before"),
        (("--format", "csv", "--scope", "999"), "no such street code"),
        (("--format", "csv"), "--out"),
    ],
)
def test_usage_errors_exit_2(tiny, tmp_path, args, message):
    out_args = () if args == ("--format", "csv") else ("--out", str(tmp_path / "x.out"))
    r = run("--db", str(tiny), "export", *args, *out_args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert not (tmp_path / "x.out").exists()


def test_failures_exit_1(tiny, tmp_path):
    r = run("--db", str(tiny), "export", "--format", "csv", "--out", str(tmp_path / "missing" / "x.csv"))
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = run("--db", str(tmp_path / "nope.db"), "export", "--format", "csv", "--out", str(tmp_path / "x.csv"))
    assert r.returncode == 1 and "no such replica" in r.stderr
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 100)
    r = run("--db", str(bad), "export", "--format", "gpkg", "--out", str(tmp_path / "x.gpkg"))
    assert r.returncode == 1, r.stderr
    assert not (tmp_path / "x.gpkg").exists() and not (tmp_path / "x.csv").exists()
