"""pull_changes, the seed, snapshots, compaction and tombstones."""

from __future__ import annotations

import hashlib
import sqlite3
import zlib

import psycopg
import pytest

from db.sync import upstream
from db.sync.protocol import PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, content_hash
from tests.sync.server_util import action_args, one, pull, push, report_args


@pytest.fixture
def up(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        yield conn


def test_pull_returns_changes_in_order_and_respects_max_rows(up):
    a = report_args()
    push(up, "C1", 1, a)
    for i in range(2, 8):
        push(up, "C1", i, report_args())
    push(up, "C1", 8, action_args(a["event_uid"], "accept", "reported", "accepted", 1))
    page = pull(up, "P", 0, 3)
    assert page["ok"] and [c["server_seq"] for c in page["changes"]] == [1, 2, 3]
    assert page["cursor"] == 3 and page["head"] == 8
    first = page["changes"][0]
    assert first["kind"] == "mutation" and first["uid"] == a["event_uid"]
    assert first["data"]["event"]["status"] == "reported" and first["data"]["log"]["action"] == "report"
    rest = pull(up, "P", 3, 100)
    assert [c["server_seq"] for c in rest["changes"]] == [4, 5, 6, 7, 8] and rest["cursor"] == 8
    assert rest["changes"][-1]["data"]["event"]["version"] == 2
    idle = pull(up, "P", 8, 100)
    assert idle["changes"] == [] and idle["cursor"] == 8
    assert one(up, "SELECT cursor FROM onemap.clients WHERE client_id = 'P'") == 8


def test_compaction_sends_an_old_cursor_to_a_snapshot(up, pg_dsn):
    for i in range(1, 6):
        push(up, "C1", i, report_args())
    assert upstream.compact(pg_dsn)["feed_floor"] == 0  # C1 has pushed but never pulled: cursor 0
    pull(up, "C1", 5)
    pull(up, "A", 4)  # replica A has applied up to 4
    pull(up, "B", 2)  # replica B up to 2
    out = upstream.compact(pg_dsn)
    assert out["feed_floor"] == 2 and out["deleted"] == 2
    assert pull(up, "B", 2)["ok"] is True
    pull(up, "B", 5)
    pull(up, "A", 5)
    out = upstream.compact(pg_dsn)
    assert out["feed_floor"] == 5
    late = pull(up, "LATE", 3)
    assert late == {"ok": False, "reason": "snapshot_required", "feed_floor": 5, "head": 5}
    assert pull(up, "LATE", 5)["ok"] is True


def test_a_tombstone_travels_in_the_feed(up, pg_dsn):
    a = report_args()
    push(up, "C1", 1, a)
    out = upstream.delete_event(pg_dsn, a["event_uid"])
    assert out["status"] == "deleted" and out["server_seq"] == 2
    feed = pull(up, "P", 1)["changes"]
    assert feed == [{"server_seq": 2, "kind": "tombstone", "uid": a["event_uid"], "data": {"uid": a["event_uid"]}}]
    assert one(up, "SELECT count(*) FROM onemap.events") == 0
    assert one(up, "SELECT count(*) FROM onemap.event_log") == 0


def test_seed_matches_the_replica_hash_and_snapshots_page_consistently(pg_dsn, demo_copy):
    with pytest.raises(upstream.UpstreamError, match="not initialised"):
        upstream.seed_upstream(pg_dsn, demo_copy)
    upstream.init_upstream(pg_dsn)
    counts = upstream.seed_upstream(pg_dsn, demo_copy)
    with sqlite3.connect(demo_copy) as src:
        expected = content_hash(src)
        n_events, n_log = src.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_log)").fetchone()
    assert counts["events"] == n_events and counts["event_log"] == n_log and counts["head"] == 0
    assert upstream.server_content_hash(pg_dsn) == expected
    with pytest.raises(upstream.UpstreamError, match="already holds"):
        upstream.seed_upstream(pg_dsn, demo_copy)
    with psycopg.connect(pg_dsn) as conn:
        # the row images have the outbox trigger's shape
        img = one(conn, "SELECT data FROM onemap.events WHERE data->>'merged_into_uid' IS NOT NULL LIMIT 1")
        assert "id" not in img and "rev" not in img and "merged_into" not in img and img["uid"]
        w = one(conn, "SELECT data FROM onemap.whistles LIMIT 1")
        assert w["event_uid"] and isinstance(w["departments"], list) and "escalated_from_uid" in w
        # a snapshot in ONE repeatable-read transaction, paged
        conn.commit()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        head = one(conn, "SELECT onemap.snapshot_head('X', %s, %s)", (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION))
        assert head["ok"] and head["events"] == n_events and head["isolation"] == "repeatable read"
        seen, logs, after, order = 0, 0, None, []
        while True:
            rows = conn.execute("SELECT kind, uid, event_uid, data FROM onemap.snapshot_events('X', %s, %s, %s, %s)",
                                (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, after, 2000)).fetchall()  # fmt: skip
            events = [r for r in rows if r[0] == "event"]
            if not events:
                break
            order.append([r[0] for r in rows])
            uids = {r[1] for r in events}
            assert all(r[2] in uids for r in rows)  # only the log rows and whistles of this page's events
            assert all(r[3]["uid"] == r[1] for r in rows)
            seen += len(events)
            logs += sum(1 for r in rows if r[0] == "log")
            after = events[-1][1]
        blob = one(conn, "SELECT onemap.snapshot_reference('X', %s, %s)", (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION))
        conn.rollback()
    assert seen == n_events and logs == n_log and len(order) == -(-n_events // 2000)
    for kinds in order:  # events first, then their log rows, then their whistles
        assert kinds == sorted(kinds, key=["event", "log", "whistle"].index)
    ref = demo_copy.parent / "ref.db"
    ref.write_bytes(zlib.decompress(blob))
    with sqlite3.connect(ref) as r:
        assert r.execute("SELECT count(*) FROM events").fetchone()[0] == 0
        assert r.execute("SELECT count(*) FROM event_log").fetchone()[0] == 0
        assert r.execute("SELECT count(*) FROM grids").fetchone()[0] > 0
        assert r.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sync_outbox_log'").fetchone()[0] == 1
        assert r.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH '井盖'").fetchone()[0] == 0


def test_notify_wakes_a_listener_after_commit(up, pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as listener:
        listener.execute("LISTEN onemap_changes")
        push(up, "C1", 1, report_args())
        got = list(listener.notifies(timeout=10, stop_after=1))
    assert [n.payload for n in got] == ["1"]


def test_tombstone_keeps_the_content_hash_comparable(up, pg_dsn):
    keep, gone = report_args(), report_args()
    push(up, "C1", 1, keep)
    push(up, "C1", 2, gone)
    upstream.delete_event(pg_dsn, gone["event_uid"])
    assert upstream.delete_event(pg_dsn, gone["event_uid"])["status"] == "not_found"
    expected = {"events": hashlib.md5(f"{keep['event_uid']}|reported|1".encode()).hexdigest(),
                "log": hashlib.md5(keep["log"]["uid"].encode()).hexdigest()}  # fmt: skip
    assert upstream.server_content_hash(pg_dsn) == expected
