"""The sync status read model (app/sync_status.py) and acknowledging refusals (db/sync/acknowledge.py)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest

from app import sync_status
from app.sync_status import OFFLINE, ONLINE, UNKNOWN, mask_dsn, read_status, sync_config
from db import event_ops
from db.replica import open_replica
from db.sync.acknowledge import acknowledge_refusals


@dataclass
class Report:
    """The shape of ``db.sync.client.SyncReport`` (docs/sync.md)."""

    online: bool = True
    pushed: int = 0
    applied: int = 0
    rejected: int = 0
    pulled: int = 0
    pending: int = 0
    cursor: int = 0
    error: str | None = None
    rotated_client_id: bool = False


def make_client(r, upstream: str | None = "postgresql://desk:secret@127.0.0.1:1/onemap") -> None:
    r.writer.execute("INSERT INTO sync_state (id, client_id, upstream) VALUES (1, 'CLIENT-A', ?)", (upstream,))


def new_event(r, title: str = "井盖<b>缺失</b>") -> int:
    lon, lat = r.writer.execute("SELECT lon, lat FROM events WHERE lon IS NOT NULL LIMIT 1").fetchone()
    return event_ops.create_event(r, {"source": "grid_app", "category": "NOPE", "title": title,
                                      "lon": lon, "lat": lat}, actor="op1")  # fmt: skip


def refuse(r, event_id: int, op: str, *, server_status: str | None = "reported", version: int = 1,
           reason: str = "状态已变更 stale state", refused_at: str = "2026-11-26T01:02:03+00:00") -> int:
    """What the sync client does with a final rejection: mark the outbox row, record the refusal."""
    uid = r.writer.execute("SELECT uid FROM events WHERE id = ?", (event_id,)).fetchone()[0]
    mid = r.writer.execute(
        "SELECT mutation_id FROM outbox WHERE event_uid = ? AND op = ? ORDER BY mutation_id DESC", (uid, op)
    ).fetchone()[0]
    image = None if server_status is None else json.dumps({"event": {"uid": uid, "status": server_status,
                                                                      "version": version}, "whistles": []})  # fmt: skip
    with r.write("sync") as c:
        c.execute("UPDATE outbox SET state = 'rejected' WHERE mutation_id = ?", (mid,))
        c.execute("INSERT INTO sync_refusals (mutation_id, event_uid, op, reason, server_state, refused_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)", (mid, uid, op, reason, image, refused_at))  # fmt: skip
    return mid


def test_a_plain_replica_is_not_a_sync_client(demo_copy):
    with open_replica(demo_copy) as r:
        assert sync_config(r.writer) == (False, None)
        s = read_status(r.writer)
        assert not s.is_client and s.pending == 0 and s.refusals == ()


def test_pending_changes_oldest_age_and_unsynced_uids(demo_copy):
    with open_replica(demo_copy) as r:
        make_client(r)
        assert sync_config(r.writer) == (True, "postgresql://desk:secret@127.0.0.1:1/onemap")
        eid = new_event(r)
        event_ops.apply_action(r, eid, "accept", actor="op1", expected_version=1)
        uid = r.writer.execute("SELECT uid FROM events WHERE id = ?", (eid,)).fetchone()[0]
        oldest = r.writer.execute("SELECT min(created_at) FROM outbox").fetchone()[0]
        later = dt.datetime.fromisoformat(oldest) + dt.timedelta(seconds=95)
        s = read_status(r.writer, now=later)
        assert s.is_client and s.pending == 2 and s.unsynced_uids == {uid}
        assert s.oldest_pending_age_s == pytest.approx(95, abs=1)
        assert sync_status.age_text(s.oldest_pending_age_s) == "1 分"
        assert s.connection == UNKNOWN and s.last_sync_at is None and s.last_sync_hms == ""
        assert s.upstream == "postgresql://desk:***@127.0.0.1:1/onemap"  # never shows the password
        assert sync_status.pending_event_uids(r.writer, among=[uid, "OTHER"]) == {uid}
        # the worker's round decides online/offline; confirmed rows are no longer pending
        assert read_status(r.writer, report=Report(online=True)).connection == ONLINE
        r.writer.execute("UPDATE outbox SET state = 'applied'")
        r.writer.execute("UPDATE sync_state SET last_sync_at = '2026-11-26T01:00:05+00:00', cursor = 42")
        s = read_status(r.writer, report=Report(online=True))
        assert s.pending == 0 and s.unsynced_uids == frozenset() and s.oldest_pending_age_s is None
        assert s.last_sync_hms == "09:00:05" and s.cursor == 42  # Asia/Shanghai
        # no round this session: a recorded error means offline
        r.writer.execute("UPDATE sync_state SET last_error = 'connection refused'")
        s = read_status(r.writer)
        assert s.connection == OFFLINE and s.last_error == "connection refused"
        s = read_status(r.writer, report=Report(online=False, error="timeout"))
        assert s.connection == OFFLINE and s.last_error == "timeout"


def test_refusals_with_labels_and_acknowledgement(demo_copy):
    with open_replica(demo_copy) as r:
        make_client(r)
        eid = new_event(r)
        event_ops.apply_action(r, eid, "accept", actor="op1", expected_version=1)
        mid = refuse(r, eid, "accept", server_status="rejected", version=2, reason="服务器上已不予受理")
        (ref,) = read_status(r.writer).refusals
        assert (ref.mutation_id, ref.event_id, ref.op, ref.op_label) == (mid, eid, "accept", "受理")
        assert ref.title == "井盖<b>缺失</b>" and ref.reason == "服务器上已不予受理"
        assert (ref.server_status, ref.server_status_label, ref.server_version) == ("rejected", "不予受理", 2)
        (en,) = read_status(r.writer, lang="en").refusals
        assert (en.op_label, en.server_status_label) == ("Accept", "Rejected")
        # the refused change is final: no longer pending
        assert read_status(r.writer).pending == 1
        with pytest.raises(ValueError):
            acknowledge_refusals(r, None, actor=" ")
        assert acknowledge_refusals(r, [mid], actor="op1", at="2026-11-26T09:10:00+08:00") == 1
        assert acknowledge_refusals(r, [mid], actor="op2") == 0  # the first acknowledgement stays
        row = r.writer.execute("SELECT acknowledged_by, acknowledged_at FROM sync_refusals").fetchone()
        assert tuple(row) == ("op1", "2026-11-26T09:10:00+08:00")
        assert read_status(r.writer).refusals == ()


def test_a_refused_report_not_in_the_replica_keeps_its_title(demo_copy):
    with open_replica(demo_copy) as r:
        make_client(r)
        args = json.dumps({"op": "report", "event_uid": "01JUNKNOWN", "event": {"title": "重复上报"}})
        with r.write("sync") as c:  # an outbox row whose event the replica no longer holds
            mid = c.execute("INSERT INTO outbox (client_id, op, event_uid, log_uid, args, created_at, state) "
                            "VALUES ('CLIENT-A', 'report', '01JUNKNOWN', '01JLOG', ?, '2026-11-26T01:00:00+00:00', "
                            "'rejected')", (args,)).lastrowid  # fmt: skip
            c.execute("INSERT INTO sync_refusals (mutation_id, event_uid, op, reason, refused_at) "
                      "VALUES (?, '01JUNKNOWN', 'report', 'duplicate', '2026-11-26T01:00:01+00:00')", (mid,))
        (ref,) = read_status(r.writer).refusals
        assert ref.mutation_id == mid and ref.event_id is None and ref.title == "重复上报"
        assert ref.op_label == "上报" and ref.server_status is None and ref.server_status_label == "（服务器上无此事件）"
        assert acknowledge_refusals(r, None, actor="op1") == 1 and read_status(r.writer).refusals == ()


def test_mask_dsn():
    assert mask_dsn("host=a user=b password=s3cr3t dbname=c") == "host=a user=b password=*** dbname=c"
    assert mask_dsn("postgresql://u:p@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert mask_dsn("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask_dsn(None) is None


@pytest.mark.parametrize("argv", [
    ["--db", "x.db", "--upstream", "host=h dbname=d"],
    ["--upstream", "host=h dbname=d", "--db", "x.db", "--lang", "en"],
])  # fmt: skip
def test_upstream_is_a_global_option(argv):
    from app import cli

    args = cli.parse_args(argv)
    assert args.upstream == "host=h dbname=d" and args.command is None
    assert cli.parse_args(["--db", "x.db"]).upstream is None


def test_upstream_after_a_subcommand():
    from app import cli

    args = cli.parse_args(["--db", "x.db", "demo", "--upstream", "host=h"])
    assert args.command == "demo" and args.upstream == "host=h"
