"""``onemap --db PATH robot run [--json]`` as a subprocess: one JSON object on stdout, exit 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEMO_UNTIL

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)  # fmt: skip


def test_robot_run_json_shape_and_exit_code(demo_copy):
    now = DEMO_UNTIL.isoformat()
    r = run("--db", str(demo_copy), "robot", "run", "--json", "--now", now)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one JSON object
    assert set(doc) == {"warnings", "errors"} and doc["errors"] == []
    ws = doc["warnings"]
    assert {w["rule"] for w in ws} >= {"hotspot", "repeat", "patrol_gap", "care_gap", "deadline_risk", "anomaly",
                                        "device_health"}  # fmt: skip
    for w in ws:
        assert {"id", "rule", "severity", "scope", "evidence", "explanation_zh", "suggested_action", "status",
                "new"} <= set(w)  # fmt: skip
        assert set(w["evidence"]) == {"events", "external_ids", "people", "devices"}
        assert all(isinstance(e, int) for e in w["evidence"]["events"])
        assert set(w["scope"]) == {"grid", "street"} and w["status"] == "open" and w["new"] is True
        assert 1 <= w["severity"] <= 4
    assert [w["severity"] for w in ws] == sorted(w["severity"] for w in ws)
    assert "13962809170" not in r.stdout  # the planted caller's number is masked
    # a second pass: the same warnings, none new, none doubled
    r2 = run("--db", str(demo_copy), "robot", "run", "--json", "--now", now)
    assert r2.returncode == 0, r2.stderr
    ws2 = json.loads(r2.stdout)["warnings"]
    assert sorted(w["id"] for w in ws2) == sorted(w["id"] for w in ws)
    assert not any(w["new"] for w in ws2)


def test_robot_cli_text_rules_set_and_errors(demo_copy, tmp_path):
    r = run("--db", str(demo_copy), "robot", "run", "--now", DEMO_UNTIL.isoformat())
    assert r.returncode == 0 and "建议：" in r.stdout
    assert run("--db", str(demo_copy), "robot", "set", "hotspot", "radius_m", "150").returncode == 0
    rules = run("--db", str(demo_copy), "robot", "rules")
    assert rules.returncode == 0 and "radius_m = 150" in rules.stdout
    assert run("--db", str(demo_copy), "robot", "set", "hotspot", "radius_m", "-5").returncode == 2
    assert run("--db", str(demo_copy), "robot").returncode == 2
    assert run("--db", str(tmp_path / "missing.db"), "robot", "run", "--json").returncode == 1
