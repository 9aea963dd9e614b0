"""Use cases (app/services.py) with roles and scopes enforced at the app level, refusals in
access_log, dispatch suggestions and the full closed loop. No Qt."""

from __future__ import annotations

import pytest

from app.access import AccessDenied
from app.lifecycle import IllegalTransition
from app.services import EventService
from app.state import Session
from db import event_ops as ops
from db.replica import open_replica

STREET, OTHER_STREET = "320613002", "320613001"
NOTE = "理由"


@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


def svc(rep, role="district", scope=None, user=None) -> EventService:
    return EventService(rep, Session(role, scope, user))


def q(rep, sql, *args):
    c = rep.reader()
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def point_in(rep, street: str) -> tuple[float, float]:
    return tuple(q(rep, "SELECT lon, lat FROM grids WHERE street_code = ? ORDER BY id LIMIT 1", street)[0])


def new_event(rep, street=STREET, category="ORDER.VENDOR", **extra) -> int:
    lon, lat = point_in(rep, street)
    return svc(rep).create({"source": "grid_app", "category": category, "lon": lon, "lat": lat, **extra})


def version(rep, eid) -> int:
    return q(rep, "SELECT version FROM events WHERE id = ?", eid)[0][0]


def dispatched_to(rep, dept: str, street=STREET) -> int:
    d = svc(rep)
    eid = new_event(rep, street)
    d.act(eid, "accept", version(rep, eid))
    d.dispatch(eid, "department", dept, version(rep, eid))
    return eid


def refusals(rep) -> list[tuple]:
    return [
        tuple(r) for r in q(rep, "SELECT role, scope, action, event_id, reason FROM access_log ORDER BY id")
    ]


def test_department_liaison_cannot_read_or_act_on_other_departments_events(rep):
    own = dispatched_to(rep, "CITYMGMT")
    other = dispatched_to(rep, "PSB")
    liaison = svc(rep, "department", "CITYMGMT")
    before = q(rep, "SELECT * FROM events WHERE id = ?", other)
    with pytest.raises(AccessDenied, match="not dispatched to department CITYMGMT"):
        liaison.get(other)
    with pytest.raises(AccessDenied):
        liaison.act(other, "acknowledge", version(rep, other))
    with pytest.raises(AccessDenied):
        liaison.suggest_targets(other)
    assert q(rep, "SELECT * FROM events WHERE id = ?", other) == before
    log = refusals(rep)
    assert [(r[0], r[1], r[2], r[3]) for r in log] == [
        ("department", "CITYMGMT", "read", other),
        ("department", "CITYMGMT", "acknowledge", other),
        ("department", "CITYMGMT", "read", other),
    ]
    # its own work: it may acknowledge, but not dispatch or close
    assert liaison.get(own)["id"] == own
    row = liaison.act(own, "acknowledge", version(rep, own))
    assert row["status"] == "acknowledged"
    with pytest.raises(AccessDenied, match="may not 'dispatch'"):
        liaison.act(own, "dispatch", row["version"], payload={"target_kind": "department", "target": "PSB"})
    assert set(liaison.legal_actions(row)) == {"arrive", "return", "defer", "note"}
    # the queue filter shows only its own events
    term, params = liaison.department_queue_filter()
    ids = {r[0] for r in _query(rep, term, params)}
    assert own in ids and other not in ids
    marks = ",".join("?" * len(ids))
    # every listed event is dispatched to the department, or summoned it by a whistle
    summoned = {
        r[0] for r in q(rep, "SELECT w.event_id FROM whistles w JOIN whistle_departments d ON d.whistle_id = w.id "
                             "WHERE d.department_code = 'CITYMGMT'")
    }  # fmt: skip
    assignees = q(rep, f"SELECT id, assignee_code FROM events WHERE id IN ({marks})", *ids)
    assert all(code == "CITYMGMT" or eid in summoned for eid, code in assignees)


def _query(rep, term, params):
    c = rep.reader()
    try:
        return c.execute(
            f"SELECT e.id FROM events e WHERE {term} AND e.status NOT IN ('closed','rejected','merged')",
            params,
        ).fetchall()
    finally:
        c.close()


def test_scope_is_checked_against_the_event_as_it_is_in_the_transaction(rep):
    eid = dispatched_to(rep, "CITYMGMT")
    liaison = svc(rep, "department", "CITYMGMT")
    seen = liaison.get(eid)["version"]
    d = svc(rep)
    d.act(eid, "return", version(rep, eid), note="改派")  # the district re-routes it meanwhile
    d.dispatch(eid, "department", "PSB", version(rep, eid))
    with pytest.raises(AccessDenied):
        liaison.act(eid, "acknowledge", seen)
    assert q(rep, "SELECT status, assignee_code FROM events WHERE id = ?", eid)[0][:] == ("dispatched", "PSB")


def test_summoned_department_sees_the_event_and_checks_in_for_itself_only(rep):
    eid = dispatched_to(rep, "PSB")
    wid = svc(rep).whistle(eid, "street", ["CITYMGMT", "HOUSING"], 30, reason="联动处置")
    liaison = svc(rep, "department", "CITYMGMT")
    assert liaison.get(eid)["summoned_departments"] == ["CITYMGMT", "HOUSING"]
    assert "check_in" in liaison.legal_actions(liaison.get(eid))
    with pytest.raises(AccessDenied, match="only for itself"):
        liaison.check_in(wid, "HOUSING")
    row = liaison.check_in(wid)
    assert row["department_code"] == "CITYMGMT" and row["late"] == 0
    with pytest.raises(AccessDenied):
        liaison.act(eid, "acknowledge", version(rep, eid))
    term, params = liaison.department_queue_filter()
    assert eid in {r[0] for r in _query(rep, term, params)}
    assert [w["id"] for w in liaison.whistles(eid)] == [wid]


def test_street_acts_only_in_its_street_and_can_escalate_to_the_district(rep):
    mine, theirs = new_event(rep, STREET), new_event(rep, OTHER_STREET)
    station = svc(rep, "street", STREET)
    with pytest.raises(AccessDenied, match="outside your scope"):
        station.act(theirs, "accept", version(rep, theirs))
    with pytest.raises(AccessDenied):
        station.whistle(theirs, "district", ["PSB"], 30, reason="越权")
    lon, lat = point_in(rep, OTHER_STREET)
    with pytest.raises(AccessDenied):
        station.create({"source": "manual", "external_id": "REFUSED-1", "lon": lon, "lat": lat})
    assert q(rep, "SELECT count(*) FROM events WHERE external_id = 'REFUSED-1'")[0][0] == 0
    row = station.act(mine, "accept", version(rep, mine))
    assert row["status"] == "accepted"
    w1 = station.whistle(mine, "street", ["CITYMGMT"], 30, reason="街道吹哨")
    w2 = station.whistle(mine, "district", ["CITYMGMT", "PSB"], 30, reason="上报区级")
    assert {w["id"]: w["escalated_from"] for w in station.whistles(mine)} == {w1: None, w2: w1}
    assert [r[2] for r in refusals(rep)] == ["accept", "whistle", "create"]
    assert all(r[0] == "street" and r[1] == STREET for r in refusals(rep))


def test_wall_cannot_act_at_all(rep):
    eid = new_event(rep)
    wall = svc(rep, "wall")
    assert wall.get(eid)["id"] == eid
    before = q(rep, "SELECT * FROM events WHERE id = ?", eid)
    lon, lat = point_in(rep, STREET)
    attempts = [
        lambda: wall.act(eid, "accept", version(rep, eid)),
        lambda: wall.act(eid, "note", None, note="x"),
        lambda: wall.supervise(eid, "x"),
        lambda: wall.whistle(eid, "grid", ["PSB"], 30, reason="x"),
        lambda: wall.create({"source": "manual", "lon": lon, "lat": lat}),
        lambda: wall.handover("夜班", "x"),
    ]
    for attempt in attempts:
        with pytest.raises(AccessDenied, match="read-only"):
            attempt()
    assert q(rep, "SELECT * FROM events WHERE id = ?", eid) == before
    assert [r[2] for r in refusals(rep)] == ["accept", "note", "supervise", "whistle", "create", "handover"]
    assert wall.legal_actions(wall.get(eid)) == []


def test_drill_role_acts_on_drill_events_only(rep):
    with rep.write() as conn:
        conn.execute("INSERT INTO drills (id, uid, title, theme, level, starts_at) VALUES "
                     "(9001, 'D9001', '防汛演练', 'flood', 'street', '2026-11-20T09:00:00+08:00')")  # fmt: skip (the demo has drills 1…)
    drill = svc(rep, "drill", user="演练协调员")
    lon, lat = point_in(rep, STREET)
    real = new_event(rep)
    with pytest.raises(AccessDenied):
        drill.create({"source": "manual", "lon": lon, "lat": lat})
    d_eid = drill.create(
        {"source": "grid_app", "category": "FLOOD.WATERLOG", "lon": lon, "lat": lat, "drill_id": 9001}
    )
    assert drill.act(d_eid, "accept", version(rep, d_eid))["status"] == "accepted"
    assert drill.get(real)["id"] == real
    with pytest.raises(AccessDenied, match="drill events only"):
        drill.act(real, "accept", version(rep, real))


def test_refusals_are_logged_with_the_actor_and_notify_after_commit(rep):
    heard = []
    rep.on_commit(heard.append)
    eid = new_event(rep, OTHER_STREET)
    station = svc(rep, "street", STREET, user="1")
    with pytest.raises(AccessDenied):
        station.act(eid, "accept", 1)
    uid = q(rep, "SELECT uid FROM people WHERE id = 1")[0][0]
    assert q(rep, "SELECT actor FROM access_log")[0][0] == uid  # --user 1 → that person's uid
    assert {"access_log"} in heard


def test_suggestions_rules_default_department_and_nearest_available_leader(rep):
    eid = new_event(rep, STREET, "ORDER.VENDOR")  # demo rule: ORDER.VENDOR in 和平桥街道 → STREET_OFFICE
    s = svc(rep).suggest_targets(eid)
    kinds = [(x.kind, x.code) for x in s]
    assert kinds[0] == ("department", "STREET_OFFICE") and "routing rule" in s[0].reason
    assert kinds[1] == ("department", "CITYMGMT") and "default" in s[1].reason
    leaders = [x for x in s if x.kind == "grid"]
    assert len(leaders) == 3 and [x.distance_m for x in leaders] == sorted(x.distance_m for x in leaders)
    assert kinds[-1] == ("street", STREET)
    # the nearest leader goes off duty: the next one is suggested
    with rep.write("people") as conn:
        conn.execute("UPDATE people SET status = 'busy' WHERE uid = ?", (leaders[0].code,))
    again = [x.code for x in svc(rep).suggest_targets(eid) if x.kind == "grid"]
    assert leaders[0].code not in again and again[0] == leaders[1].code
    # a suggestion is a dispatch payload as it is
    d = svc(rep)
    d.act(eid, "accept", version(rep, eid))
    row = d.act(eid, "dispatch", version(rep, eid), payload=s[0].payload)
    assert (row["assignee_kind"], row["assignee_code"]) == ("department", "STREET_OFFICE")


def test_full_closed_loop_through_the_service(rep):
    d = svc(rep, user="值班员")
    eid = new_event(rep, STREET, "FAC.MANHOLE")
    v = version(rep, eid)
    for action, payload in [
        ("accept", None),
        ("dispatch", {"target_kind": "department", "target": "MUNICIPAL"}),
        ("acknowledge", None),
        ("arrive", None),
        ("handle", None),
        ("verify", None),
        ("close", None),
        ("evaluate", {"satisfaction": 5}),
    ]:
        row = d.act(eid, action, v, payload=payload)
        v = row["version"]
    assert row["status"] == "closed" and row["satisfaction"] == 5
    c = rep.reader()
    assert ops.status_replay(c, eid) == "closed"
    assert [r[0] for r in c.execute("SELECT action FROM event_log WHERE event_id = ? ORDER BY id", (eid,))] == [
        "report", "accept", "dispatch", "acknowledge", "arrive", "handle", "verify", "close", "evaluate"]  # fmt: skip
    c.close()
    sla = d.sla(row)
    assert sla["arrival"] is not None and sla["handle"]["running"] is False
    with pytest.raises(IllegalTransition):
        d.act(eid, "accept", v)


def test_bulk_dispatch_and_supervise_and_handover(rep):
    d = svc(rep)
    ids = [new_event(rep) for _ in range(3)]
    for i in ids:
        d.act(i, "accept", version(rep, i))
    results = d.bulk_dispatch({i: version(rep, i) for i in ids}, "department", "CITYMGMT")
    assert all(r.ok for r in results)
    log_id = d.supervise(ids[0], "请加快")
    assert q(rep, "SELECT event_id, target FROM supervisions WHERE log_id = ?", log_id)[0][:] == (
        ids[0],
        "CITYMGMT",
    )
    nid = d.handover("2026-11-20 夜班", "三件待回访", ids)
    assert q(rep, "SELECT open_items FROM handover_notes WHERE id = ?", nid)[0][0].count("event_id") == 3
    # a street station bulk-dispatching another street's events: refused and logged per event
    other = new_event(rep, OTHER_STREET)
    d.act(other, "accept", version(rep, other))
    res = svc(rep, "street", STREET).bulk_dispatch({other: version(rep, other)}, "department", "PSB")
    assert not res[0].ok and res[0].refused
    assert refusals(rep)[-1][2:4] == ("dispatch", other)
