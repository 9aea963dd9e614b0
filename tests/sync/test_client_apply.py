"""The SQLite half of the client, without a server: pulled changes, refusal rollback, identity.

The "server feed" here is made from another replica's outbox: the row images a desk sends are
what the upstream stores and echoes (the server only bumps the version, which is equal here).
"""

from __future__ import annotations

import json
import shutil

import pytest

from db import event_ops, kpi_rollups
from db.replica import open_replica
from db.sync.client import SyncClient, SyncNotConfigured, apply_changes, enable_sync, rotate_client_id
from db.sync.client_apply import EXCLUDED_PREFIX
from db.sync.protocol import content_hash

FAKE_DSN = "host=127.0.0.1 port=1 dbname=none user=nobody connect_timeout=1"


@pytest.fixture
def two_replicas(demo_db, tmp_path):
    paths = []
    for name in ("a.db", "b.db"):
        shutil.copy(demo_db, tmp_path / name)
        paths.append(tmp_path / name)
    a, b = open_replica(paths[0]), open_replica(paths[1])
    enable_sync(a, upstream=FAKE_DSN)
    enable_sync(b, upstream=FAKE_DSN)
    yield a, b
    a.close()
    b.close()


def _feed(replica, start_seq: int = 1) -> list[dict]:
    """The outbox of ``replica`` as the upstream's change feed."""
    out = []
    rows = replica.writer.execute("SELECT args FROM outbox ORDER BY mutation_id").fetchall()
    for i, (args,) in enumerate(rows):
        a = json.loads(args)
        out.append({"server_seq": start_seq + i, "kind": "mutation", "uid": a["event_uid"],
                    "data": {"event": a["event"], "log": a["log"], "whistles": a.get("whistles")}})  # fmt: skip
    return out


def _new_event(r, **extra) -> int:
    lon, lat = r.writer.execute("SELECT lon, lat FROM events WHERE lon IS NOT NULL LIMIT 1").fetchone()
    rec = {"source": "grid_app", "category": "NOPE", "title": "井盖<缺失>同步", "lon": lon, "lat": lat, **extra}
    return event_ops.create_event(r, rec, actor="op1")


def _event(r, uid: str) -> dict:
    row = dict(r.writer.execute("SELECT * FROM events WHERE uid = ?", (uid,)).fetchone())
    for k in ("id", "rev", "merged_into"):
        row.pop(k)
    return row


def _whistles(r, uid: str) -> list[tuple]:
    return [tuple(x) for x in r.writer.execute(
        "SELECT w.uid, w.level, w.closed_at, d.department_code, d.checked_in_at, d.late FROM whistles w "
        "JOIN events e ON e.id = w.event_id LEFT JOIN whistle_departments d ON d.whistle_id = w.id "
        "WHERE e.uid = ? ORDER BY 1, 4", (uid,))]  # fmt: skip


def _kpi_consistent(r) -> bool:
    before = kpi_rollups.snapshot(r.writer)
    r.writer.execute("BEGIN")
    try:
        kpi_rollups.rebuild(r.writer)
        after = kpi_rollups.snapshot(r.writer)
    finally:
        r.writer.execute("ROLLBACK")
    return before == after


def _work(a) -> tuple[str, int]:
    """A new event taken through the loop with a whistle, a check-in, a defer and an evaluation."""
    eid = _new_event(a, external_id="EXT-SYNC-1")
    v = 1
    for action, payload, note in [("accept", None, None),
                                  ("dispatch", {"target_kind": "department", "target": _dept(a)}, None),
                                  ("acknowledge", None, None), ("defer", None, "等待配件"), ("arrive", None, None)]:
        v = event_ops.apply_action(a, eid, action, actor="op1", expected_version=v, payload=payload, note=note)["version"]
    wid = event_ops.blow_whistle(a, eid, level="street", departments=[_dept(a)], actor="op1", reason="吹哨")
    event_ops.check_in(a, wid, _dept(a), actor="d1")
    v = a.writer.execute("SELECT version FROM events WHERE id = ?", (eid,)).fetchone()[0]
    for action, payload in [("handle", None), ("verify", None), ("close", None), ("evaluate", {"satisfaction": 5})]:
        v = event_ops.apply_action(a, eid, action, actor="op1", expected_version=v, payload=payload)["version"]
    uid = a.writer.execute("SELECT uid FROM events WHERE id = ?", (eid,)).fetchone()[0]
    return uid, eid


def _dept(r) -> str:
    return r.writer.execute("SELECT code FROM departments ORDER BY code LIMIT 1").fetchone()[0]


def test_pulled_changes_equal_the_source_and_are_not_requeued(two_replicas):
    a, b = two_replicas
    uid, _ = _work(a)
    feed = _feed(a)
    assert len(feed) == 12
    seen = []
    b.on_commit(seen.append)
    assert apply_changes(b, feed, cursor=feed[-1]["server_seq"]) == len(feed)
    assert {"events", "event_log", "whistles"} <= seen[-1]
    # nothing re-queued, the cursor moved, the trigger is armed again
    assert b.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert tuple(b.writer.execute("SELECT cursor, applying FROM sync_state").fetchone()) == (12, 0)
    got, want = _event(b, uid), _event(a, uid)
    assert got == want and got["deferrals"] == 1 and got["evaluated_at"] is not None
    assert _whistles(b, uid) == _whistles(a, uid) and len(_whistles(b, uid)) == 1
    logs = [tuple(r) for r in b.writer.execute(
        "SELECT l.uid, l.action, l.payload FROM event_log l JOIN events e ON e.id = l.event_id WHERE e.uid = ? "
        "ORDER BY l.id", (uid,))]  # fmt: skip
    assert [x[1] for x in logs] == [f["data"]["log"]["action"] for f in feed]
    assert content_hash(a.writer) == content_hash(b.writer)
    assert _kpi_consistent(b)
    # full text finds the pulled event
    hit = b.writer.execute("SELECT rowid FROM events_fts WHERE events_fts MATCH ?", ('"缺失>同步"',)).fetchall()
    assert [r[0] for r in hit] == [b.writer.execute("SELECT id FROM events WHERE uid = ?", (uid,)).fetchone()[0]]
    # applying the same batch again changes nothing (at-least-once delivery is harmless)
    assert apply_changes(b, feed, cursor=12) == len(feed)
    assert content_hash(a.writer) == content_hash(b.writer) and _kpi_consistent(b)
    # a local change after the pull is queued again
    eid_b = b.writer.execute("SELECT id FROM events WHERE uid = ?", (uid,)).fetchone()[0]
    event_ops.apply_action(b, eid_b, "note", actor="op2", expected_version=None, note="复核")
    assert b.writer.execute("SELECT op FROM outbox").fetchall()[0][0] == "note"


def test_events_with_pending_rows_are_not_overwritten(two_replicas):
    a, b = two_replicas
    uid = a.writer.execute("SELECT uid FROM events WHERE status = 'reported' ORDER BY id LIMIT 1").fetchone()[0]
    eid_a = a.writer.execute("SELECT id FROM events WHERE uid = ?", (uid,)).fetchone()[0]
    eid_b = b.writer.execute("SELECT id FROM events WHERE uid = ?", (uid,)).fetchone()[0]
    event_ops.apply_action(a, eid_a, "accept", actor="op1", expected_version=1)
    event_ops.apply_action(b, eid_b, "reject", actor="op2", expected_version=1, note="重复")
    feed = _feed(a)
    apply_changes(b, feed, cursor=1)
    row = b.writer.execute("SELECT status FROM events WHERE id = ?", (eid_b,)).fetchone()
    assert row[0] == "rejected"  # our pending reject stays until the server answers it
    actions = [r[0] for r in b.writer.execute("SELECT action FROM event_log WHERE event_id = ? ORDER BY id", (eid_b,))]
    assert actions[-2:] == ["reject", "accept"]  # the other desk's row is kept in the log (INSERT OR IGNORE)
    assert b.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1


def _client(r) -> SyncClient:
    return SyncClient(r)


def test_a_refused_transition_rolls_back_and_refuses_what_depends_on_it(two_replicas):
    a, b = two_replicas
    uid = a.writer.execute("SELECT uid FROM events WHERE status = 'reported' ORDER BY id LIMIT 1").fetchone()[0]
    eid = a.writer.execute("SELECT id FROM events WHERE uid = ?", (uid,)).fetchone()[0]
    server_image = _event(a, uid)
    server_image.update(status="rejected", version=2, rejected_at="2024-05-01T10:00:00+08:00", merged_into_uid=None)
    event_ops.apply_action(a, eid, "accept", actor="op1", expected_version=1)
    event_ops.apply_action(a, eid, "dispatch", actor="op1", expected_version=2,
                           payload={"target_kind": "department", "target": _dept(a)})  # fmt: skip
    other = a.writer.execute("SELECT id FROM events WHERE status = 'reported' AND id <> ? LIMIT 1", (eid,)).fetchone()[0]
    event_ops.apply_action(a, other, "accept", actor="op1", expected_version=1)
    rows = a.writer.execute("SELECT mutation_id, op, event_uid FROM outbox ORDER BY mutation_id").fetchall()
    client = _client(a)
    try:
        n = client._rejected(rows[0], {"status": "rejected", "code": "stale_state", "reason": "事件已被驳回 already rejected",
                                       "server_state": {"event": server_image, "whistles": []}})  # fmt: skip
    finally:
        client.close()
    assert n == 2
    states = [r[0] for r in a.writer.execute("SELECT state FROM outbox ORDER BY mutation_id")]
    assert states == ["rejected", "rejected", "pending"]  # the other event's accept is still to be sent
    ref = [dict(r) for r in a.writer.execute("SELECT * FROM sync_refusals ORDER BY mutation_id")]
    assert ref[0]["reason"].startswith("事件已被驳回") and json.loads(ref[0]["server_state"])["event"]["uid"] == uid
    assert ref[1]["reason"].startswith(f"depends on refused mutation {rows[0][0]}")
    ev = a.writer.execute("SELECT status, version, assignee_code FROM events WHERE id = ?", (eid,)).fetchone()
    assert tuple(ev) == ("rejected", 2, None)
    # the log keeps the refused rows (append-only) but the content hash leaves them out
    assert a.writer.execute("SELECT count(*) FROM event_log WHERE event_id = ?", (eid,)).fetchone()[0] == 3
    assert _kpi_consistent(a)
    # ... and nothing was queued by the rollback itself
    assert a.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 3


def test_a_refused_report_is_kept_but_excluded(two_replicas):
    a, b = two_replicas
    h0 = content_hash(a.writer)
    eid = _new_event(a, external_id="DUP-1")
    event_ops.apply_action(a, eid, "accept", actor="op1", expected_version=1)
    uid = a.writer.execute("SELECT uid FROM events WHERE id = ?", (eid,)).fetchone()[0]
    rows = a.writer.execute("SELECT mutation_id, op, event_uid FROM outbox ORDER BY mutation_id").fetchall()
    client = _client(a)
    try:
        n = client._rejected(rows[0], {"status": "rejected", "code": "duplicate",
                                       "reason": "重复上报 duplicate report", "server_state": None})  # fmt: skip
    finally:
        client.close()
    assert n == 2
    row = a.writer.execute("SELECT status, external_id FROM events WHERE id = ?", (eid,)).fetchone()
    assert tuple(row) == ("rejected", None)
    assert a.writer.execute("SELECT value FROM meta WHERE key = ?", (EXCLUDED_PREFIX + uid,)).fetchone()[0]
    assert content_hash(a.writer) == h0  # as if the report had never been written
    assert _kpi_consistent(a)
    # the upstream's own copy of the same report (another desk's) can now come in
    b_eid = _new_event(b, external_id="DUP-1")
    apply_changes(a, _feed(b), cursor=1)
    assert a.writer.execute("SELECT count(*) FROM events WHERE external_id = 'DUP-1'").fetchone()[0] == 1
    assert b_eid


def test_a_pulled_copy_of_a_pending_local_report_waits(two_replicas):
    a, b = two_replicas
    _new_event(a, external_id="SAME-1")
    _new_event(b, external_id="SAME-1")
    feed = _feed(b)
    assert apply_changes(a, feed, cursor=1) == 0  # the batch stops before the colliding change
    assert a.writer.execute("SELECT cursor FROM sync_state").fetchone()[0] == 0


def test_rotation_relabels_pending_rows_only(two_replicas):
    a, _ = two_replicas
    old = a.writer.execute("SELECT client_id FROM sync_state").fetchone()[0]
    _new_event(a)
    _new_event(a)
    a.writer.execute("UPDATE outbox SET state = 'applied' WHERE mutation_id = 1")
    new = rotate_client_id(a, "test")
    assert new != old
    rows = [tuple(r) for r in a.writer.execute("SELECT mutation_id, client_id FROM outbox ORDER BY 1")]
    assert rows == [(1, old), (2, new)]
    _new_event(a)
    assert a.writer.execute("SELECT client_id FROM outbox WHERE mutation_id = 3").fetchone()[0] == new


def test_a_plain_replica_is_not_a_sync_client(demo_copy):
    with open_replica(demo_copy) as r:
        with pytest.raises(SyncNotConfigured):
            SyncClient(r)


def test_unreachable_upstream_is_an_offline_round(two_replicas):
    a, _ = two_replicas
    _new_event(a)
    client = SyncClient(a)
    try:
        rep = client.sync_once()
    finally:
        client.close()
    assert not rep.online and rep.pending == 1 and "unreachable" in rep.error
    assert a.writer.execute("SELECT last_error FROM sync_state").fetchone()[0] == rep.error
    assert rep.summary().startswith("offline")


def test_many_new_events_are_inserted_set_wise(two_replicas, monkeypatch):
    from db.sync import client_apply

    a, b = two_replicas
    triggers = lambda r: sorted(x[0] for x in r.writer.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"))  # noqa: E731
    before = triggers(b)
    uids = []
    for i in range(5):
        eid = _new_event(a, external_id=f"BULK-{i}")
        uids.append(a.writer.execute("SELECT uid FROM events WHERE id = ?", (eid,)).fetchone()[0])
    event_ops.apply_action(a, eid, "accept", actor="op1", expected_version=1)
    monkeypatch.setattr(client_apply, "BULK_NEW_EVENTS", 2)
    feed = _feed(a)
    assert apply_changes(b, feed, cursor=len(feed)) == len(feed)
    assert triggers(b) == before  # the insert triggers are back
    assert content_hash(a.writer) == content_hash(b.writer)
    assert all(_event(a, u) == _event(b, u) for u in uids)
    assert _kpi_consistent(b)
    hits = b.writer.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH ?", ('"缺失>同步"',)).fetchone()[0]
    assert hits == 5
    assert b.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_many_changed_events_are_updated_set_wise(two_replicas, monkeypatch):
    """Above BULK_UPDATED_EVENTS the update trigger is replaced by set-wise rollup arithmetic:
    same rows, same rollups, the trigger back afterwards."""
    from db.sync import client_apply

    a, b = two_replicas
    triggers = lambda r: sorted(x[0] for x in r.writer.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"))  # noqa: E731
    before = triggers(b)
    uid, _eid = _work(a)  # a whole loop: whistle, check-in, defer, evaluation
    others = []
    for i in range(4):
        eid = _new_event(a, external_id=f"UPD-{i}")
        event_ops.apply_action(a, eid, "accept", actor="op1", expected_version=1)
        others.append(a.writer.execute("SELECT uid FROM events WHERE id = ?", (eid,)).fetchone()[0])
    feed = _feed(a)
    first = [ch for ch in feed if ch["data"]["log"]["action"] == "report"]
    assert apply_changes(b, first, cursor=first[-1]["server_seq"]) == len(first)  # b knows the new events
    monkeypatch.setattr(client_apply, "BULK_UPDATED_EVENTS", 2)
    calls = []
    real = client_apply._update_events
    monkeypatch.setattr(client_apply, "_update_events", lambda ap, pairs: calls.append(len(pairs)) or real(ap, pairs))
    rest = [ch for ch in feed if ch["data"]["log"]["action"] != "report"]
    assert apply_changes(b, rest, cursor=feed[-1]["server_seq"]) == len(rest)
    assert calls and calls[0] == 5  # the set-wise path took the five changed events
    assert triggers(b) == before
    assert content_hash(a.writer) == content_hash(b.writer)
    assert all(_event(a, u) == _event(b, u) for u in [uid, *others])
    assert _whistles(a, uid) == _whistles(b, uid)
    assert _kpi_consistent(b)
