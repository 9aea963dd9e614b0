"""``onemap --db PATH clone --upstream DSN`` and ``onemap --db PATH sync [--upstream DSN] [--once]``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import main
from app import cli
from db import event_ops
from db.replica import open_replica
from db.sync.protocol import content_hash

upstream = pytest.importorskip("db.sync.upstream")

ROOT = Path(__file__).resolve().parents[2]
DEAD = "host=127.0.0.1 port=1 dbname=x user=x password=x connect_timeout=1"


@pytest.fixture(scope="module")
def desk_dsn(pg_server, demo_db):
    """A seeded upstream (module-wide) and a district desk's DSN."""
    import psycopg

    name = f"onemap_cli{os.getpid()}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    admin = pg_server.dsn(dbname=name)
    upstream.init_upstream(admin)
    upstream.seed_upstream(admin, demo_db)
    role = f"desk_cli{os.getpid()}"
    upstream.add_desk(admin, role, "pw-cli")
    dsn = re.sub(r"\buser=\S+", f"user={role}", admin)
    yield re.sub(r"\bpassword=\S+", "password=pw-cli", dsn), admin
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_clone_then_sync_once(desk_dsn, tmp_path, capsys):
    dsn, admin = desk_dsn
    db = tmp_path / "desk.db"
    assert main.main(["--db", str(db), "clone", "--upstream", dsn]) == 0
    err = capsys.readouterr().err
    assert "clone:" in err and "events" in err
    with open_replica(db) as r:
        st = r.writer.execute("SELECT upstream, client_id FROM sync_state").fetchone()
        # remembered without the password (it went to libpq's password file, PGPASSFILE in tests)
        assert "pw-cli" not in st["upstream"] and "user=" + dsn.split("user=")[1].split()[0] in st["upstream"]
        assert st["client_id"]
        assert content_hash(r.writer) == upstream.server_content_hash(admin)
        eid = r.writer.execute("SELECT id FROM events WHERE status = 'reported' ORDER BY uid LIMIT 1").fetchone()[0]
        event_ops.apply_action(r, eid, "accept", actor="op1", expected_version=1)
    # the DSN remembered by clone is used; one round and exit 0
    assert main.main(["--db", str(db), "sync", "--once"]) == 0
    err = capsys.readouterr().err
    assert "online" in err and "applied 1" in err and "pending 0" in err
    with open_replica(db) as r:
        assert content_hash(r.writer) == upstream.server_content_hash(admin)
    # --upstream after the subcommand
    assert main.main(["--db", str(db), "sync", "--once", "--upstream", dsn]) == 0
    # ... and before it, once the global option exists (app/cli.py, sync-ui branch)
    if "--upstream" in cli.build_parser()._option_string_actions:
        assert main.main(["--db", str(db), "--upstream", dsn, "sync", "--once"]) == 0
    # an existing replica is not overwritten without --force
    assert main.main(["--db", str(db), "clone", "--upstream", dsn]) == 1
    assert "--force" in capsys.readouterr().err
    assert main.main(["--db", str(db), "clone", "--upstream", dsn, "--force"]) == 0


def test_sync_exit_codes(desk_dsn, tmp_path, demo_copy, capsys):
    dsn, _ = desk_dsn
    db = tmp_path / "desk.db"
    assert main.main(["--db", str(db), "clone", "--upstream", dsn]) == 0
    capsys.readouterr()
    # unreachable upstream: 1, and the round is reported
    assert main.main(["--db", str(db), "sync", "--once", "--upstream", DEAD]) == 1
    assert "offline" in capsys.readouterr().err
    # not a sync client: 1
    assert main.main(["--db", str(demo_copy), "sync", "--once", "--upstream", dsn]) == 1
    assert "not a sync client" in capsys.readouterr().err
    # no such file: 1
    assert main.main(["--db", str(tmp_path / "none.db"), "sync", "--once"]) == 1
    # clone without an upstream: usage (2)
    assert main.main(["--db", str(tmp_path / "x.db"), "clone"]) == 2
    # clone from an unreachable upstream: 1, nothing left behind
    assert main.main(["--db", str(tmp_path / "y.db"), "clone", "--upstream", DEAD]) == 1
    assert not (tmp_path / "y.db").exists()


def test_sync_loop_runs_until_ctrl_c(desk_dsn, tmp_path):
    dsn, _ = desk_dsn
    db = tmp_path / "desk.db"
    assert main.main(["--db", str(db), "clone", "--upstream", dsn]) == 0
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    p = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--db", str(db), "sync"], cwd=ROOT, env=env,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(lines) < 2:
            line = p.stderr.readline()
            if not line:
                break
            if line.startswith("sync "):
                lines.append(line)
        assert len(lines) == 2 and "online" in lines[0]
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
