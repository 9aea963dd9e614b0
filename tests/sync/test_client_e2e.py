"""End to end: desks cloned from one PostgreSQL upstream push, pull, get refused and converge."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import sqlite3

import pytest

from db import event_ops, kpi_rollups
from db.replica import open_replica
from db.sync.client import SyncClient
from db.sync.clone import CloneError, clone_replica
from db.sync.protocol import PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, content_hash, fingerprint

upstream = pytest.importorskip("db.sync.upstream")

_roles = itertools.count(1)


def _desk(dsn: str, street: str | None = None) -> str:
    role = f"desk_c{os.getpid()}_{next(_roles)}"
    upstream.add_desk(dsn, role, "pw-" + role, street)
    dsn = re.sub(r"\buser=\S+", f"user={role}", dsn)
    return re.sub(r"\bpassword=\S+", f"password=pw-{role}", dsn)


def _db_dsn(dsn: str, dbname: str) -> str:
    return re.sub(r"\bdbname=\S+", f"dbname={dbname}", dsn)


@pytest.fixture(scope="module")
def seeded(pg_server, demo_db, tmp_path_factory):
    """A template upstream seeded from the small demo, two desk roles, and a clone for each desk
    (made once per module: each test starts from a copy of the database and of the two files)."""
    import psycopg

    tpl = f"onemap_ctpl_{os.getpid()}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {tpl}")
        conn.execute(f"CREATE DATABASE {tpl}")
    dsn = pg_server.dsn(dbname=tpl)
    upstream.init_upstream(dsn)
    upstream.seed_upstream(dsn, demo_db)
    root = tmp_path_factory.mktemp("clones")
    desks = {}
    for name in ("a", "b"):
        desks[name] = _desk(dsn)
        clone_replica(root / f"{name}.db", desks[name])
    yield tpl, root, desks
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {tpl} WITH (FORCE)")


@pytest.fixture
def world(pg_server, seeded, tmp_path):
    """The seeded upstream (a fresh copy) and the two desks' replicas A and B."""
    import psycopg

    tpl, root, desks = seeded
    name = f"onemap_c{os.getpid()}_{next(_roles)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {tpl}")
    admin = pg_server.dsn(dbname=name)
    reps = {}
    for n in ("a", "b"):
        shutil.copy(root / f"{n}.db", tmp_path / f"{n}.db")
        reps[n] = open_replica(tmp_path / f"{n}.db")
        with reps[n].write() as conn:
            conn.execute("UPDATE sync_state SET upstream = ?", (_db_dsn(desks[n], name),))
    yield admin, reps["a"], reps["b"]
    for r in reps.values():
        with contextlib.suppress(sqlite3.ProgrammingError):  # a test may have closed it already
            r.close()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _sync(replica, dsn: str | None = None):
    c = SyncClient(replica, dsn)
    try:
        return c.sync_once()
    finally:
        c.close()


def _server_hash(dsn):
    return upstream.server_content_hash(dsn)


def _eid(r, status: str = "reported", offset: int = 0) -> int:
    return r.writer.execute("SELECT id FROM events WHERE status = ? AND drill_id IS NULL ORDER BY uid LIMIT 1 OFFSET ?",
                            (status, offset)).fetchone()[0]  # fmt: skip


def _by_uid(r, uid: str) -> int:
    return r.writer.execute("SELECT id FROM events WHERE uid = ?", (uid,)).fetchone()[0]


def _uid(r, eid: int) -> str:
    return r.writer.execute("SELECT uid FROM events WHERE id = ?", (eid,)).fetchone()[0]


def _new_event(r, **extra) -> int:
    lon, lat = r.writer.execute("SELECT lon, lat FROM events WHERE lon IS NOT NULL LIMIT 1").fetchone()
    return event_ops.create_event(r, {"source": "grid_app", "category": "NOPE", "title": "同步测试事件",
                                      "lon": lon, "lat": lat, **extra}, actor="op1")  # fmt: skip


def _dept(r) -> str:
    return r.writer.execute("SELECT code FROM departments ORDER BY code LIMIT 1").fetchone()[0]


def _kpi_consistent(r) -> bool:
    before = kpi_rollups.snapshot(r.writer)
    r.writer.execute("BEGIN")
    try:
        kpi_rollups.rebuild(r.writer)
        return kpi_rollups.snapshot(r.writer) == before
    finally:
        r.writer.execute("ROLLBACK")


def test_clone_equals_the_upstream_and_refuses_to_overwrite(world, tmp_path):
    dsn, a, b = world
    assert content_hash(a.writer) == content_hash(b.writer) == _server_hash(dsn)
    st = a.writer.execute("SELECT client_id, cursor, upstream FROM sync_state").fetchone()
    assert st["client_id"] != b.writer.execute("SELECT client_id FROM sync_state").fetchone()[0]
    assert st["upstream"] and a.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert _kpi_consistent(a)
    n_fts = a.writer.execute("SELECT count(*) FROM events_fts").fetchone()[0]
    assert n_fts == a.writer.execute("SELECT count(*) FROM events").fetchone()[0]
    with pytest.raises(CloneError, match="--force"):
        clone_replica(tmp_path / "a.db", dsn)


def test_two_desks_converge_and_pulled_rows_are_not_requeued(world):
    dsn, a, b = world
    new = _new_event(a, external_id="E2E-1")
    event_ops.apply_action(a, new, "accept", actor="op1", expected_version=1)
    eb = _eid(b, offset=3)
    event_ops.apply_action(b, eb, "accept", actor="op2", expected_version=1)
    event_ops.apply_action(b, eb, "dispatch", actor="op2", expected_version=2,
                           payload={"target_kind": "department", "target": _dept(b)})  # fmt: skip
    wid = event_ops.blow_whistle(b, eb, level="street", departments=[_dept(b)], actor="op2", reason="联动")
    event_ops.check_in(b, wid, _dept(b), actor="d1")
    ra = _sync(a)
    rb = _sync(b)
    assert (ra.online, ra.applied, ra.rejected, ra.pending) == (True, 2, 0, 0)
    assert (ra.pulled, rb.applied, rb.rejected, rb.pulled) == (2, 4, 0, 6)
    ra2 = _sync(a)
    assert ra2.pulled == 4  # B's four
    assert content_hash(a.writer) == content_hash(b.writer) == _server_hash(dsn)
    # pulled rows were not queued again: each outbox holds only its own desk's mutations
    assert a.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 2
    assert b.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 4
    ua = _uid(b, eb)
    w = a.writer.execute("SELECT count(*) FROM whistles w JOIN events e ON e.id = w.event_id WHERE e.uid = ?",
                         (ua,)).fetchone()[0]  # fmt: skip
    assert w == 1
    assert _kpi_consistent(a) and _kpi_consistent(b)
    assert a.writer.execute("SELECT status FROM events WHERE uid = ?", (ua,)).fetchone()[0] == "dispatched"


def test_offline_writes_queue_and_are_sent_later(world):
    dsn, a, b = world
    dead = "host=127.0.0.1 port=1 dbname=x user=x password=x connect_timeout=1"
    e = _eid(a)
    event_ops.apply_action(a, e, "accept", actor="op1", expected_version=1)
    event_ops.apply_action(a, e, "note", actor="op1", expected_version=None, note="离线备注")
    rep = _sync(a, dead)
    assert not rep.online and rep.pending == 2 and rep.error
    rep = _sync(a)
    assert rep.online and rep.applied == 2 and rep.pending == 0
    _sync(b)
    assert content_hash(a.writer) == content_hash(b.writer) == _server_hash(dsn)


def test_a_refused_transition_rolls_back_and_is_shown(world):
    dsn, a, b = world
    ea, eb = _eid(a), None
    uid = _uid(a, ea)
    eb = _by_uid(b, uid)
    event_ops.apply_action(a, ea, "reject", actor="op1", expected_version=1, note="重复事件")
    event_ops.apply_action(b, eb, "accept", actor="op2", expected_version=1)
    event_ops.apply_action(b, eb, "dispatch", actor="op2", expected_version=2,
                           payload={"target_kind": "department", "target": _dept(b)})  # fmt: skip
    assert _sync(a).applied == 1
    rb = _sync(b)
    assert (rb.applied, rb.rejected) == (0, 2)
    row = b.writer.execute("SELECT status, assignee_code FROM events WHERE id = ?", (eb,)).fetchone()
    assert tuple(row) == ("rejected", None)
    ref = b.writer.execute("SELECT mutation_id, reason, server_state FROM sync_refusals ORDER BY 1").fetchall()
    assert len(ref) == 2 and "stale" in ref[0]["reason"] and ref[1]["reason"].startswith("depends on refused mutation")
    assert b.writer.execute("SELECT count(*) FROM outbox WHERE state = 'rejected'").fetchone()[0] == 2
    _sync(a)
    assert content_hash(a.writer) == content_hash(b.writer) == _server_hash(dsn)
    assert _kpi_consistent(b)


def test_a_duplicate_report_is_refused_and_the_upstream_copy_comes_in(world):
    dsn, a, b = world
    _new_event(a, external_id="HOT-42")
    _new_event(b, external_id="HOT-42")
    assert _sync(a).applied == 1
    rb = _sync(b)
    assert rb.rejected == 1 and rb.pulled >= 1
    assert b.writer.execute("SELECT count(*) FROM events WHERE external_id = 'HOT-42'").fetchone()[0] == 1
    assert content_hash(b.writer) == _server_hash(dsn)


def test_a_lost_reply_is_retried_without_a_duplicate(world):
    dsn, a, _ = world
    e = _eid(a)
    event_ops.apply_action(a, e, "accept", actor="op1", expected_version=1)
    row = a.writer.execute("SELECT mutation_id, client_id, args, log_uid FROM outbox").fetchone()
    import orjson

    args = orjson.loads(row["args"])
    c = SyncClient(a)
    try:  # the server applies it, the answer never reaches the desk
        first = c._call("push_mutation", row["client_id"], row["mutation_id"], PROTOCOL_VERSION,
                        SYNC_SCHEMA_VERSION, fingerprint(args), args)  # fmt: skip
    finally:
        c.close()
    assert first["status"] == "applied"
    assert a.writer.execute("SELECT state FROM outbox").fetchone()[0] == "pending"
    rep = _sync(a)
    assert rep.applied == 1 and rep.pending == 0
    out = orjson.loads(a.writer.execute("SELECT outcome FROM outbox").fetchone()[0])
    assert out["server_seq"] == first["server_seq"]
    import psycopg

    with psycopg.connect(dsn) as pg:
        n = pg.execute("SELECT count(*) FROM onemap.event_log WHERE uid = %s", (row["log_uid"],)).fetchone()[0]
    assert n == 1
    assert content_hash(a.writer) == _server_hash(dsn)


def test_a_restored_backup_takes_a_new_client_id(world, tmp_path):
    dsn, a, _ = world
    e = _eid(a)
    event_ops.apply_action(a, e, "accept", actor="op1", expected_version=1)
    backup = a.backup_to(tmp_path / "a-backup.db")  # holds mutation 1, pending
    assert _sync(a).applied == 1
    event_ops.apply_action(a, e, "note", actor="op1", expected_version=None, note="后来的备注")
    assert _sync(a).applied == 1  # the server has now seen mutation 2 from this client id
    old_id = a.writer.execute("SELECT client_id FROM sync_state").fetchone()[0]
    a.close()
    shutil.copy(backup, tmp_path / "a.db")
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"a.db{suffix}").unlink(missing_ok=True)
    r = open_replica(tmp_path / "a.db")
    try:
        rep = _sync(r)
        assert rep.rotated_client_id and rep.online and rep.error is None
        new_id = r.writer.execute("SELECT client_id FROM sync_state").fetchone()[0]
        assert new_id != old_id
        # its pending mutation 1 was the one already applied: the server answers applied, no duplicate
        assert r.writer.execute("SELECT state, client_id FROM outbox").fetchall()[0][0] == "applied"
        assert content_hash(r.writer) == _server_hash(dsn)
        # a new write from the restored file goes out under the new id and is accepted
        event_ops.apply_action(r, _by_uid(r, _uid(r, e)), "note", actor="op1", expected_version=None, note="恢复后")
        rep = _sync(r)
        assert rep.applied == 1 and not rep.rotated_client_id
        assert content_hash(r.writer) == _server_hash(dsn)
    finally:
        r.close()


def test_a_copy_running_beside_the_original_is_caught_by_the_ledger(world, tmp_path):
    dsn, a, _ = world
    copy_path = a.backup_to(tmp_path / "a-copy.db")
    c = open_replica(copy_path)
    try:
        event_ops.apply_action(a, _eid(a), "accept", actor="op1", expected_version=1)
        event_ops.apply_action(c, _eid(c, offset=1), "accept", actor="op9", expected_version=1)
        assert _sync(a).applied == 1
        rep = _sync(c)  # same client id, same mutation_id 1, another fingerprint → client_conflict
        assert rep.rotated_client_id and rep.applied == 1
        assert c.writer.execute("SELECT client_id FROM sync_state").fetchone()[0] != \
            a.writer.execute("SELECT client_id FROM sync_state").fetchone()[0]  # fmt: skip
        _sync(a)
        assert content_hash(a.writer) == content_hash(c.writer) == _server_hash(dsn)
    finally:
        c.close()


def test_snapshot_required_recopies_in_place_keeping_pending_rows(world):
    dsn, a, b = world
    event_ops.apply_action(a, _eid(a), "accept", actor="op1", expected_version=1)
    assert _sync(a).applied == 1
    eb = _eid(b, offset=1)
    event_ops.apply_action(b, eb, "accept", actor="op2", expected_version=1)
    import psycopg

    with psycopg.connect(dsn) as pg:  # as if compacted past B's cursor
        head = pg.execute("SELECT onemap.feed_head()").fetchone()[0]
        pg.execute("DELETE FROM onemap.changes")
        pg.execute("UPDATE onemap.meta SET value = %s WHERE key = 'feed_floor'", (str(head),))
    rb = _sync(b)
    assert rb.online and rb.error is None and rb.applied == 1
    _sync(a)
    assert content_hash(a.writer) == content_hash(b.writer) == _server_hash(dsn)


def test_an_upstream_delete_is_a_tombstone(world):
    dsn, a, b = world
    uid = _uid(a, _eid(a, offset=2))
    upstream.delete_event(dsn, uid)
    _sync(a)
    assert content_hash(a.writer) == _server_hash(dsn)
    assert a.writer.execute("SELECT status FROM events WHERE uid = ?", (uid,)).fetchone()[0] == "rejected"


def test_a_refused_whistle_is_removed_with_its_departments(world):
    dsn, a, b = world
    uid = _uid(a, _eid(a, offset=2))
    event_ops.apply_action(a, _by_uid(a, uid), "reject", actor="op1", expected_version=1, note="无效")
    eb = _by_uid(b, uid)
    wid = event_ops.blow_whistle(b, eb, level="grid", departments=[_dept(b)], actor="op2", reason="联动")
    event_ops.check_in(b, wid, _dept(b), actor="d1")
    assert _sync(a).applied == 1
    rb = _sync(b)
    assert rb.rejected == 2 and rb.error is None  # the whistle (illegal on a rejected event) and its check-in
    assert b.writer.execute("SELECT count(*) FROM whistles WHERE event_id = ?", (eb,)).fetchone()[0] == 0
    assert b.writer.execute("SELECT count(*) FROM whistle_departments WHERE whistle_id = ?", (wid,)).fetchone()[0] == 0
    reasons = [r[0] for r in b.writer.execute("SELECT reason FROM sync_refusals ORDER BY mutation_id")]
    assert "whistle" in reasons[0] and reasons[1].startswith("depends on refused mutation")
    assert b.writer.execute("SELECT status FROM events WHERE id = ?", (eb,)).fetchone()[0] == "rejected"
    assert content_hash(b.writer) == _server_hash(dsn)


def _spy_calls(monkeypatch, *, lose_first: str | None = None) -> list[str]:
    """Record the server functions SyncClient calls; ``lose_first``: that call's first reply is lost
    after the server committed it (the desk sees a broken connection)."""
    import psycopg

    from db.sync import client as client_mod

    calls: list[str] = []
    real = client_mod.SyncClient._call

    def spy(self, fn, *params):
        calls.append(fn)
        out = real(self, fn, *params)
        if fn == lose_first and calls.count(fn) == 1:
            self._drop()
            raise psycopg.OperationalError("server closed the connection unexpectedly (test)")
        return out

    monkeypatch.setattr(client_mod.SyncClient, "_call", spy)
    return calls


def test_batches_stop_at_a_refusal_and_go_on_after_it(world, monkeypatch):
    from db.sync import client as client_mod

    dsn, a, b = world
    monkeypatch.setattr(client_mod, "PUSH_BATCH", 3)
    e0 = _eid(a)
    event_ops.apply_action(b, _by_uid(b, _uid(a, e0)), "reject", actor="op2", expected_version=1, note="重复")
    assert _sync(b).applied == 1
    # A, offline meanwhile: 10 mutations; its accept of e0 (3) is refused, its note (4) depends on it
    n1, n2 = _new_event(a), _new_event(a)  # 1, 2
    event_ops.apply_action(a, e0, "accept", actor="op1", expected_version=1)  # 3
    event_ops.apply_action(a, e0, "note", actor="op1", expected_version=None, note="批量")  # 4
    event_ops.apply_action(a, n1, "accept", actor="op1", expected_version=1)  # 5
    event_ops.apply_action(a, n2, "accept", actor="op1", expected_version=1)  # 6
    n3 = _new_event(a)  # 7
    event_ops.apply_action(a, n3, "note", actor="op1", expected_version=None, note="批量")  # 8
    event_ops.apply_action(a, n3, "accept", actor="op1", expected_version=2)  # 9
    event_ops.apply_action(a, n1, "note", actor="op1", expected_version=None, note="批量")  # 10
    calls = _spy_calls(monkeypatch)
    rep = _sync(a)
    assert (rep.online, rep.error, rep.applied, rep.rejected, rep.pending) == (True, None, 8, 2, 0)
    # [1 2 3] stops at 3 (refused; 4 depends on it) → [5 6 7] → [8 9 10]
    assert calls.count("push_mutations") == 3 and "push_mutation" not in calls
    states = [r[0] for r in a.writer.execute("SELECT state FROM outbox ORDER BY mutation_id")]
    assert states == ["applied"] * 2 + ["rejected"] * 2 + ["applied"] * 6
    assert a.writer.execute("SELECT status FROM events WHERE id = ?", (e0,)).fetchone()[0] == "rejected"
    _sync(b)
    assert content_hash(a.writer) == content_hash(b.writer) == _server_hash(dsn)


def test_a_lost_batch_reply_sends_the_same_batch_again(world, monkeypatch):
    import psycopg

    dsn, a, _ = world
    for _ in range(4):
        event_ops.apply_action(a, _eid(a), "accept", actor="op1", expected_version=1)  # the next reported one
    calls = _spy_calls(monkeypatch, lose_first="push_mutations")
    rep = _sync(a)
    assert (rep.online, rep.error, rep.applied, rep.pending) == (True, None, 4, 0)
    assert calls.count("push_mutations") == 2  # the batch was applied, its reply lost, sent once more
    with psycopg.connect(dsn) as pg:
        n = pg.execute("SELECT count(*), count(DISTINCT uid) FROM onemap.event_log WHERE client_id IS NOT NULL").fetchone()
    assert tuple(n) == (4, 4)
    assert content_hash(a.writer) == _server_hash(dsn)


def test_one_push_mutation_per_row_without_batches(world, monkeypatch):
    from db.sync import client as client_mod

    dsn, a, _ = world
    monkeypatch.setattr(client_mod, "PUSH_BATCH", 1)  # as the previous client (and an upstream without batches)
    for _ in range(3):
        event_ops.apply_action(a, _eid(a), "accept", actor="op1", expected_version=1)  # the next reported one
    calls = _spy_calls(monkeypatch)
    rep = _sync(a)
    assert (rep.applied, rep.pending) == (3, 0)
    assert calls.count("push_mutation") == 3 and "push_mutations" not in calls
    assert content_hash(a.writer) == _server_hash(dsn)
