"""``onemap upstream init|seed|add-desk|compact|status``: exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from app import cli
from app.commands import upstream as command
from tests.sync.server_util import as_role, hello, one, unique_role

ROOT = Path(__file__).resolve().parents[2]


def onemap(*argv: str) -> int:
    return command.run(cli.parse_args(["upstream", *argv]))


def test_init_add_desk_compact_status(pg_dsn, capsys):
    assert onemap("init", "--dsn", pg_dsn) == 0
    assert onemap("init", "--dsn", pg_dsn) == 0
    assert "schema onemap ready" in capsys.readouterr().err
    role = unique_role()
    assert onemap("add-desk", "--dsn", pg_dsn, "--role", role, "--password", "s3cret", "--street", "320613001") == 0
    with psycopg.connect(as_role(pg_dsn, role, "s3cret")) as desk:
        assert hello(desk, "C-1")["scope_street"] == "320613001"
    assert onemap("compact", "--dsn", pg_dsn) == 0
    assert "feed floor 0" in capsys.readouterr().err
    assert onemap("status", "--dsn", pg_dsn, "--json") == 0
    st = json.loads(capsys.readouterr().out)
    assert st["head"] == 0 and st["desks"] == 1 and [c["client_id"] for c in st["clients"]] == ["C-1"]
    assert len(st["hash"]["events"]) == 32
    assert onemap("status", "--dsn", pg_dsn) == 0
    assert "head seq" in capsys.readouterr().out


def test_failures_exit_1_with_a_message(pg_dsn, pg_server, capsys, tmp_path):
    assert onemap("status", "--dsn", pg_dsn) == 1
    assert "not initialised" in capsys.readouterr().err
    assert onemap("init", "--dsn", pg_server.dsn(port=1)) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert onemap("init", "--dsn", pg_dsn) == 0
    assert onemap("seed", "--dsn", pg_dsn, "--from-db", str(tmp_path / "missing.db")) == 1
    assert "no replica" in capsys.readouterr().err
    assert onemap("add-desk", "--dsn", pg_dsn, "--role", "Bad Name", "--password", "x") == 1
    with pytest.raises(cli.UsageError):
        onemap("status")


def test_seed_through_main_py(pg_dsn, demo_copy):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "main.py"), "upstream", *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)  # fmt: skip
    r = run("init", "--dsn", pg_dsn)
    assert r.returncode == 0, r.stderr
    r = run("seed", "--dsn", pg_dsn, "--from-db", str(demo_copy))
    assert r.returncode == 0, r.stderr
    assert "seeded" in r.stderr and "events" in r.stderr
    r = run("seed", "--dsn", pg_dsn, "--from-db", str(demo_copy))
    assert r.returncode == 1 and "already holds" in r.stderr
    r = run("bogus", "--dsn", pg_dsn)
    assert r.returncode == 2
    with psycopg.connect(pg_dsn) as conn:
        assert one(conn, "SELECT count(*) FROM onemap.events") > 0
