"""The robot pass: de-duplication, growth, clearing, a failing rule, accept/dismiss, precision,
and every case planted in the demo data."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from app import access
from app.robot import engine, views
from app.robot.base import Rule
from app.state import Session
from db import robot_store
from db.replica import open_replica
from tests.app.robot_fixtures import NOW, add_event, build, patrol_everywhere
from tests.conftest import DEMO_UNTIL

H = dt.timedelta(hours=1)
DISTRICT = Session(role="district", user="op1")


@pytest.fixture
def rep(tmp_path):
    r = build(tmp_path / "robot.db")
    patrol_everywhere(r, NOW - H)
    engine.set_threshold(r, "anomaly", "min_count", 50, actor="test")  # keep today's clusters to their own rule
    yield r
    r.close()


def rows(r, sql, *args):
    c = r.reader()
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def test_open_warning_is_not_raised_twice_and_grows(rep):
    ids = [add_event(rep, at=NOW - k * H, dx_m=k * 30) for k in range(3)]
    first = engine.run_pass(rep, now=NOW)
    assert len(first.new) == 1 and first.errors == []
    again = engine.run_pass(rep, now=NOW)
    assert again.new == [] and again.updated == [] and again.seen == first.new
    more = add_event(rep, at=NOW - 0.5 * H, dx_m=95)
    grown = engine.run_pass(rep, now=NOW)
    assert grown.new == [] and grown.updated == first.new
    (ev,) = rows(rep, "SELECT evidence FROM robot_warnings")[0]
    assert json.loads(ev)["events"] == sorted([*ids, more])
    assert rows(rep, "SELECT count(*) FROM robot_warnings WHERE status = 'open'")[0][0] == 1


def test_hotspot_warning_follows_its_cluster_when_the_first_event_leaves_the_window(rep):
    old = add_event(rep, at=NOW - 6 * 24 * H, dx_m=0)
    add_event(rep, at=NOW - 5 * 24 * H, dx_m=20)
    add_event(rep, at=NOW - 4 * 24 * H, dx_m=40)
    (wid,) = engine.run_pass(rep, now=NOW).new
    add_event(rep, at=NOW + 2 * 24 * H - H, dx_m=60)
    later = engine.run_pass(rep, now=NOW + 2 * 24 * H)  # the first event is now 8 days old
    assert later.new == [] and later.updated == [wid]
    ev = json.loads(rows(rep, "SELECT evidence FROM robot_warnings WHERE id = ?", wid)[0][0])
    assert old in ev["events"] and len(ev["events"]) == 4  # every event of the cluster, old and new


def test_self_clearing_rule_clears_when_the_condition_is_gone(rep):
    with rep.write() as c:
        c.execute("INSERT INTO devices (uid, kind, name, grid_id, last_seen_at) VALUES ('D1', 'camera', 'cam', 'G1', ?)",
                  ((NOW - 72 * H).isoformat(),))  # fmt: skip
    (wid,) = engine.run_pass(rep, now=NOW).new
    with rep.write() as c:
        c.execute("UPDATE devices SET last_seen_at = ?", (NOW.isoformat(),))
    res = engine.run_pass(rep, now=NOW)
    assert res.cleared == [wid]
    assert rows(rep, "SELECT status FROM robot_warnings WHERE id = ?", wid)[0][0] == "cleared"


class Broken(Rule):
    name = "broken"
    title_zh = "坏规则"

    def find(self, ctx):
        raise sqlite3.OperationalError("no such column: nonsense")


def test_a_failing_rule_is_logged_and_skipped(rep, caplog, monkeypatch):
    monkeypatch.setattr(engine, "RULES", (Broken(), *engine.RULES))
    for k in range(3):
        add_event(rep, at=NOW - k * H, dx_m=k * 10)
    res = engine.run_pass(rep, now=NOW, rules=engine.RULES)
    assert res.errors == [{"rule": "broken", "error": "OperationalError: no such column: nonsense"}]
    assert len(res.new) == 1  # the hot spot was still found
    assert "broken" in caplog.text
    assert json.loads(rows(rep, "SELECT errors FROM robot_runs")[0][0])[0]["rule"] == "broken"


def test_rules_survive_odd_data(rep):
    with rep.write() as c:
        c.execute("INSERT INTO people (id, uid, name, role, grid_id) VALUES (9, 'P9', '无网格', 'grid_leader', NULL)")
        c.execute("INSERT INTO devices (uid, kind, name, last_seen_at) VALUES ('D0', 'camera', 'cam', NULL)")
        c.execute("INSERT INTO care_list (uid, name, kind, created_at) VALUES ('c0', '无网格', 'other', ?)",
                  ((NOW - 30 * 24 * H).isoformat(),))  # fmt: skip
    robot_store.add_leader_position(rep, 1, (NOW - H).isoformat(), 120.9, 32.0, None)
    res = engine.run_pass(rep, now=NOW)
    assert res.errors == []
    assert [w["rule"] for w in views.list_warnings(rep.reader())] == ["care_gap"]


def test_accept_creates_the_linked_event(rep):
    for k in range(3):
        add_event(rep, at=NOW - k * H, dx_m=k * 10)
    (wid,) = engine.run_pass(rep, now=NOW).new
    event_id = views.accept(rep, DISTRICT, wid)
    c = rep.reader()
    ev = c.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
    w = c.execute("SELECT * FROM robot_warnings WHERE id = ?", (wid,)).fetchone()
    log = c.execute("SELECT actor, action FROM event_log WHERE event_id = ?", (event_id,)).fetchall()
    c.close()
    assert w["status"] == "accepted" and w["event_id"] == event_id and w["decided_by"] == "op1"
    assert ev["source"] == "robot" and ev["external_id"] == w["uid"] and ev["status"] == "reported"
    assert ev["category"] == "ASSIGN.CAMPAIGN" and ev["drill_id"] is None and ev["grid_id"] == "G1"
    assert f"智能预警 #{wid}" in ev["description"]
    assert [tuple(r) for r in log] == [("op1", "report")]
    with pytest.raises(robot_store.RobotError):
        views.accept(rep, DISTRICT, wid)
    # the decision stands: the same evidence is not raised again
    assert engine.run_pass(rep, now=NOW).new == []


def test_dismiss_needs_a_reason_and_feeds_precision(rep):
    for k in range(3):
        add_event(rep, at=NOW - k * H, dx_m=k * 10)
        add_event(rep, at=NOW - k * H, phone="13800001111", grid="G2", source="hotline_12345",
                  category=("HOTLINE.NOISE", "HOTLINE.FUME", "HOTLINE.DOG")[k])
    res = engine.run_pass(rep, now=NOW)
    by_rule = {w["rule"]: w["id"] for w in views.list_warnings(rep.reader())}
    with pytest.raises(robot_store.RobotError, match="理由"):
        views.dismiss(rep, DISTRICT, by_rule["repeat"], "  ")
    views.dismiss(rep, DISTRICT, by_rule["repeat"], "同一物业问题，已在处理")
    views.accept(rep, DISTRICT, by_rule["hotspot"])
    prec = {p.rule: p for p in views.precision_by_rule(rep.reader())}
    assert prec["repeat"].precision == 0 and prec["hotspot"].precision == 1 and prec["anomaly"].precision is None
    assert len(res.new) == 2
    assert engine.run_pass(rep, now=NOW).new == []  # a dismissal is not raised again for the same evidence
    add_event(rep, at=NOW - 0.2 * H, phone="13800001111", grid="G2")
    assert len(engine.run_pass(rep, now=NOW).new) == 1  # new evidence: raised again


def test_roles_on_decisions(rep):
    for k in range(3):
        add_event(rep, at=NOW - k * H, dx_m=k * 10)
    (wid,) = engine.run_pass(rep, now=NOW).new
    with pytest.raises(access.AccessDenied):
        views.accept(rep, Session(role="wall"), wid)
    with pytest.raises(access.AccessDenied):
        views.dismiss(rep, Session(role="street", scope="320613099"), wid, "不是本街道")
    assert views.list_warnings(rep.reader(), session=Session(role="street", scope="320613099")) == []
    assert len(views.list_warnings(rep.reader(), session=Session(role="street", scope="320613002"))) == 1
    views.accept(rep, Session(role="street", scope="320613002", user="s1"), wid)


def test_thresholds_are_settable_and_checked(rep):
    engine.set_threshold(rep, "hotspot", "radius_m", 150, actor="op1")
    assert engine.thresholds(rep.reader())["hotspot"]["radius_m"] == 150
    for bad in (("hotspot", "radius_m", -1), ("hotspot", "nope", 1), ("nope", "x", 1), ("hotspot", "min_events", 2.5)):
        with pytest.raises(ValueError):
            engine.set_threshold(rep, *bad, actor="op1")


def test_every_planted_demo_case_is_found(demo_copy):
    r = open_replica(demo_copy)
    try:
        res = engine.run_pass(r, now=DEMO_UNTIL)
        assert res.errors == []
        c = r.reader()
        cases = json.loads(c.execute("SELECT value FROM meta WHERE key = 'robot_demo_cases'").fetchone()[0])
        ws = views.list_warnings(c)
        c.close()
    finally:
        r.close()

    def having(rule, pred):
        return [w for w in ws if w["rule"] == rule and pred(w)]

    def covers(ids):
        return lambda w: set(ids) <= set(w["evidence"]["events"])

    assert having("hotspot", covers(cases["hotspot"]["events"]))
    assert having("hotspot", lambda w: covers(cases["hotspot_unclassified"]["events"])(w) and "QT-0917" in w["explanation_zh"])
    assert having("repeat", covers(cases["repeat"]["events"]))
    assert having("patrol_gap", lambda w: w["scope"]["grid"] == cases["patrol_gap"]["grid"])
    assert having("patrol_gap", lambda w: f"person:{cases['patrol_away']['person']}" in w["evidence"]["people"])
    assert having("care_gap", lambda w: w["evidence"]["people"] == [f"care:{cases['care_gap']['care']}"])
    assert len(cases["deadline_risk"]["events"]) == 2
    for eid in cases["deadline_risk"]["events"]:
        assert having("deadline_risk", covers([eid]))
    assert len(cases["anomaly"]["events"]) == 6 and having("anomaly", covers(cases["anomaly"]["events"]))
    assert having("device_health", lambda w: w["evidence"]["devices"] == [cases["device_silent"]["device"]])
    assert having("device_health", lambda w: w["evidence"]["devices"] == [cases["device_chatter"]["device"]])
    assert {w["rule"] for w in ws} == set(engine.RULES_BY_NAME)


class Flood(Rule):
    name = "flood"
    title_zh = "泛滥"
    auto_clear = True

    def find(self, ctx):
        from app.robot.base import Finding

        return [Finding(key=f"k{k}", severity=3, explanation_zh="x", suggested_action="y", events=list(range(k % 7)))
                for k in range(ctx.limit + 50)]  # fmt: skip


def test_a_flood_of_findings_is_cut_to_the_largest_and_clears_nothing(rep):
    from app.robot.base import MAX_FINDINGS

    res = engine.run_pass(rep, now=NOW, rules=[Flood()])
    assert res.truncated == {"flood": MAX_FINDINGS + 50} and len(res.new) == MAX_FINDINGS
    kept = rows(rep, "SELECT evidence FROM robot_warnings WHERE rule = 'flood'")
    assert min(len(json.loads(r[0])["events"]) for r in kept) >= 1  # the smallest (no events) were left out
    with rep.write() as c:
        c.execute("UPDATE robot_warnings SET dedup_key = 'gone-' || id WHERE rule = 'flood'")
    assert engine.run_pass(rep, now=NOW, rules=[Flood()]).cleared == []  # a partial pass clears nothing


def test_care_evidence_names_follow_the_personal_data_rule(demo_copy):
    """A care warning's resident: named for the district and street roles (who visit), masked for
    the others — the rule of the care list and the intake screens (``may_see_personal``)."""
    from app.robot.views import evidence_details
    from app.state import Session
    from db.replica import open_replica

    rep = open_replica(demo_copy)
    try:
        conn = rep.reader()
        cid, name, street = conn.execute("SELECT id, name, street_code FROM care_list LIMIT 1").fetchone()
        warning = {"evidence": {"events": [], "people": [f"care:{cid}"], "devices": []}}
        label = lambda s: evidence_details(conn, warning, s)["people"][0]["label"]  # noqa: E731
        assert label(Session(role="district")).startswith(name)
        assert label(Session(role="street", scope=street)).startswith(name)
        assert not label(Session(role="drill")).startswith(name) and "*" in label(Session(role="drill"))
        conn.close()
    finally:
        rep.close()
