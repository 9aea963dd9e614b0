"""The outbox trigger queues every local change on a sync client, and nothing elsewhere."""

from __future__ import annotations

import json

from db import event_ops
from db.replica import open_replica
from db.sync.protocol import content_hash


def _new_event(r) -> int:
    lon, lat = r.writer.execute("SELECT lon, lat FROM events WHERE lon IS NOT NULL LIMIT 1").fetchone()
    return event_ops.create_event(r, {"source": "grid_app", "category": "NOPE", "title": "井盖<缺失>",
                                      "lon": lon, "lat": lat}, actor="op1")  # fmt: skip


def test_plain_replica_queues_nothing(demo_copy):
    with open_replica(demo_copy) as r:
        _new_event(r)
        assert r.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_sync_client_queues_each_change_with_the_row_image(demo_copy):
    with open_replica(demo_copy) as r:
        r.writer.execute("INSERT INTO sync_state (id, client_id) VALUES (1, 'CLIENT-A')")
        eid = _new_event(r)
        row = event_ops.apply_action(r, eid, "accept", actor="op1", expected_version=1)
        rows = r.writer.execute("SELECT client_id, op, base_version, args, state FROM outbox ORDER BY mutation_id").fetchall()
        assert [x["op"] for x in rows] == ["report", "accept"]
        assert {x["client_id"] for x in rows} == {"CLIENT-A"} and {x["state"] for x in rows} == {"pending"}
        accept = json.loads(rows[1]["args"])
        assert accept["event"]["status"] == "accepted" and accept["event"]["version"] == row["version"]
        assert accept["log"]["from_status"] == "reported" and accept["base_version"] == 1
        assert "id" not in accept["event"] and accept["event"]["title"] == "井盖<缺失>"
        # while pulled changes are applied, nothing is queued
        r.writer.execute("UPDATE sync_state SET applying = 1")
        event_ops.apply_action(r, eid, "note", actor="op1", expected_version=None, note="x")
        assert r.writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 2
        h = content_hash(r.writer)
        assert len(h["events"]) == 32 and len(h["log"]) == 32
