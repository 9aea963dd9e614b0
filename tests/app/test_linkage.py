"""Linkage handling rate over whistled events, on the demo and on hand-built cases."""

import sqlite3

from app.linkage import linkage_stats
from db import event_ops
from db.replica import open_replica


def test_demo_has_whistled_events_some_linked(demo_db):
    conn = sqlite3.connect(demo_db)
    s = linkage_stats(conn)
    conn.close()
    assert s.whistled > 10
    assert 0 < s.linked < s.whistled
    assert 0 < s.rate < 1
    assert s.late_check_ins > 0


def test_on_time_check_ins_and_handling_make_a_linked_event(demo_copy):
    rep = open_replica(demo_copy)
    conn = rep.reader()
    before = linkage_stats(conn, since="2030-01-01T00:00:00+08:00")
    assert before.whistled == 0 and before.rate is None  # nothing whistled: "—", not 0 %
    eid, version = conn.execute(
        "SELECT id, version FROM events WHERE status = 'on_site' AND drill_id IS NULL LIMIT 1").fetchone()
    at = "2030-01-02T09:00:00+08:00"
    wid = event_ops.blow_whistle(rep, eid, level="grid", departments=["FIRE", "PSB"], deadline_minutes=30,
                                 actor="test", reason="联动", at=at)
    event_ops.check_in(rep, wid, "FIRE", actor="fire", at="2030-01-02T09:10:00+08:00")
    s = linkage_stats(conn, since="2030-01-01T00:00:00+08:00")
    assert (s.whistled, s.linked) == (1, 0)  # PSB has not checked in, not handled
    event_ops.check_in(rep, wid, "PSB", actor="psb", at="2030-01-02T09:20:00+08:00")
    version = conn.execute("SELECT version FROM events WHERE id = ?", (eid,)).fetchone()[0]
    event_ops.apply_action(rep, eid, "handle", actor="t", expected_version=version, at="2030-01-02T10:00:00+08:00")
    s = linkage_stats(conn, since="2030-01-01T00:00:00+08:00")
    assert (s.whistled, s.linked, s.late_check_ins) == (1, 1, 0)
    conn.close()
    rep.close()
