"""End to end: the console's worker against a real PostgreSQL upstream (db/sync/upstream.py, db/sync/client.py)."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from PySide6.QtCore import Qt

from app.state import AppState, Session
from db import event_ops
from db.replica import open_replica
from tests.sync.conftest import pg_dsn, pg_server  # noqa: F401 (fixtures)
from widgets.main_window import MainWindow
from widgets.sync_status import install_sync

psycopg = pytest.importorskip("psycopg")


def _reported(rep, n: int) -> list[tuple[int, int]]:
    rows = rep.writer.execute(
        "SELECT id, version FROM events WHERE status = 'reported' AND drill_id IS NULL ORDER BY id LIMIT ?", (n,)
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _server_status(dsn: str, uid: str) -> tuple[str, int]:
    with psycopg.connect(dsn) as conn:
        return tuple(conn.execute("SELECT status, version FROM onemap.events WHERE uid = %s", (uid,)).fetchone())


def _desk(dsn: str, role: str) -> str:
    from db.sync.upstream import add_desk

    role = f"{role}_{os.getpid()}"
    add_desk(dsn, role, "pw-" + role)
    dsn = re.sub(r"\buser=\S+", f"user={role}", dsn)
    return re.sub(r"\bpassword=\S+", f"password=pw-{role}", dsn)


def test_a_cloned_desk_pushes_pulls_and_shows_a_refusal(qtbot, demo_copy, pg_dsn, tmp_path):  # noqa: F811
    """Two desks on one upstream; the console on desk A (no --upstream: the replica remembers it).
    (The desks are made like a clone leaves them: the seeded data, ``enable_sync`` at the feed head.)"""
    from db.sync.client import SyncClient, enable_sync
    from db.sync.upstream import init_upstream, seed_upstream

    init_upstream(pg_dsn)
    head = seed_upstream(pg_dsn, demo_copy)["head"]
    other_path = tmp_path / "b.db"
    shutil.copy(demo_copy, other_path)
    rep = open_replica(demo_copy)
    enable_sync(rep, upstream=_desk(pg_dsn, "desk_ui_a"), cursor=head)
    with open_replica(other_path) as other:
        enable_sync(other, upstream=_desk(pg_dsn, "desk_ui_b"), cursor=head)
    (mine, mine_v), (contested, contested_v) = _reported(rep, 2)
    uid = {i: rep.writer.execute("SELECT uid FROM events WHERE id = ?", (i,)).fetchone()[0] for i in (mine, contested)}
    win = MainWindow(rep, AppState(Session(user="op-e2e")))
    qtbot.addWidget(win)
    win.resize(1600, 900)
    ui = None
    try:
        with qtbot.waitSignal(win.mapReady, timeout=30000):
            win.show()
        ui = install_sync(win, None, interval_s=3600)  # rounds only at start and after local commits
        ind = ui.indicator
        qtbot.waitUntil(lambda: ind.state_key == "online", timeout=20000)
        assert ind.pending_label.text() == "待同步 0" and ind.last_label.text() != "上次同步 从未"
        # a local action: queued, then pushed by the worker woken by the commit
        event_ops.apply_action(rep, mine, "accept", actor="op-e2e", expected_version=mine_v)
        qtbot.waitUntil(lambda: _server_status(pg_dsn, uid[mine])[0] == "accepted", timeout=20000)
        qtbot.waitUntil(lambda: ind.pending_label.text() == "待同步 0", timeout=10000)
        # the other desk rejects the contested event first; our accept of it is refused
        with open_replica(other_path) as other:
            event_ops.apply_action(other, contested, "reject", actor="op-other", expected_version=contested_v,
                                   note="重复")  # fmt: skip
            client = SyncClient(other)
            try:
                assert client.sync_once().applied >= 1
            finally:
                client.close()
        event_ops.apply_action(rep, contested, "accept", actor="op-e2e", expected_version=contested_v)
        qtbot.waitUntil(lambda: not ind.badge.isHidden(), timeout=20000)
        assert ind.badge.text() == "被拒 1" and ind.state_key == "online"
        status, version = _server_status(pg_dsn, uid[contested])
        local = rep.writer.execute("SELECT status, version FROM events WHERE id = ?", (contested,)).fetchone()
        assert (status, tuple(local)) == ("rejected", ("rejected", version))  # rolled back to the server's state
        dialog = ui.open_refusals()
        assert dialog.table.rowCount() == 1
        cells = [dialog.table.item(0, c).text() for c in (1, 2, 4)]
        assert cells[0].startswith(f"#{contested} ") and cells[1:] == ["受理", f"不予受理 (v{version})"]
        qtbot.mouseClick(dialog.row_buttons[next(iter(dialog.row_buttons))], Qt.MouseButton.LeftButton)
        assert ind.badge.isHidden()
    finally:
        if ui is not None:
            ui.shutdown()
            assert not ui.worker.is_running()
        win.shutdown()
        rep.close()
