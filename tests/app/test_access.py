"""Roles and scopes (app/access.py): the pure rule table and the SQL visibility filter."""

from __future__ import annotations

import sqlite3

import pytest

from app import access
from app.access import AccessDenied
from app.lifecycle import OVERLAYS, TRANSITIONS
from app.state import Session

ACTIONS = sorted({a for nxt in TRANSITIONS.values() for a in nxt} | OVERLAYS)
STREET, OTHER_STREET = "320613001", "320613002"


def ev(**kw) -> dict:
    e = {"id": 1, "street_code": STREET, "assignee_kind": None, "assignee_code": None, "drill_id": None,
         "summoned_departments": []}  # fmt: skip
    e.update(kw)
    return e


@pytest.mark.parametrize("action", [*ACTIONS, "read", "create"])
def test_district_may_do_everything(action):
    access.check(Session("district"), action, ev(street_code=OTHER_STREET))


@pytest.mark.parametrize("action", [*ACTIONS, "create", "handover"])
def test_wall_is_read_only(action):
    wall = Session("wall")
    access.check(wall, "read", ev())
    with pytest.raises(AccessDenied, match="read-only"):
        access.check(wall, action, ev())


@pytest.mark.parametrize("action", [*ACTIONS, "read", "create"])
def test_street_only_its_own_street(action):
    s = Session("street", STREET)
    access.check(s, action, ev())
    with pytest.raises(AccessDenied, match=f"street {OTHER_STREET}, outside your scope {STREET}"):
        access.check(s, action, ev(street_code=OTHER_STREET))


def test_street_without_scope_is_refused():
    with pytest.raises(AccessDenied, match="scope"):
        access.check(Session("street"), "accept", ev())


@pytest.mark.parametrize("action", [*ACTIONS, "read"])
def test_department_only_what_was_dispatched_to_it(action):
    d = Session("department", "CITYMGMT")
    own = ev(assignee_kind="department", assignee_code="CITYMGMT")
    other = ev(assignee_kind="department", assignee_code="PSB")
    grid = ev(assignee_kind="grid", assignee_code="CITYMGMT")  # same code, but not a department assignment
    summoned = ev(assignee_kind="department", assignee_code="PSB", summoned_departments=["CITYMGMT"])
    for e in (other, grid):
        with pytest.raises(AccessDenied, match="not dispatched to department CITYMGMT"):
            access.check(d, action, e)
    assert access.allowed(d, action, own) == (action in access.DEPARTMENT_ACTIONS)
    assert access.allowed(d, action, summoned) == (action in access.SUMMONED_ACTIONS)
    with pytest.raises(AccessDenied):
        access.check(d, "create", own)


@pytest.mark.parametrize("action", ACTIONS)
def test_drill_reads_everything_acts_on_drill_events_only(action):
    d = Session("drill")
    access.check(d, "read", ev())
    access.check(d, action, ev(drill_id=3))
    with pytest.raises(AccessDenied, match="drill events only"):
        access.check(d, action, ev())
    access.check(d, "create", {"drill_id": 3, "street_code": STREET})
    with pytest.raises(AccessDenied):
        access.check(d, "create", {"drill_id": None, "street_code": STREET})


def test_unknown_role_is_refused():
    with pytest.raises(AccessDenied, match="unknown role"):
        access.check(Session("admin"), "read", ev())
    assert access.visible_filter(Session("admin"))[0] == "0"


def test_actor_of():
    assert access.actor_of(Session("street", STREET, "01ABC")) == "01ABC"
    assert access.actor_of(Session("street", STREET)) == f"street:{STREET}"
    assert access.actor_of(Session("wall")) == "wall"


def _visible(conn, session) -> set[int]:
    term, params = access.visible_filter(session)
    return {r[0] for r in conn.execute(f"SELECT e.id FROM events e WHERE {term}", params)}


def test_visible_filter_in_sql(demo_db):
    conn = sqlite3.connect(demo_db)
    try:
        everything = {r[0] for r in conn.execute("SELECT id FROM events")}
        for role in ("district", "drill", "wall"):
            assert _visible(conn, Session(role)) == everything
        street = _visible(conn, Session("street", STREET))
        assert street and street == {
            r[0] for r in conn.execute("SELECT id FROM events WHERE street_code = ?", (STREET,))
        }
        dept = _visible(conn, Session("department", "SANITATION"))
        expected = {r[0] for r in conn.execute(
            "SELECT id FROM events WHERE assignee_kind = 'department' AND assignee_code = 'SANITATION'")}  # fmt: skip
        assert dept and dept == expected
        assert _visible(conn, Session("department")) == set()
    finally:
        conn.close()


def test_a_sync_desk_limited_to_a_street_or_department_opens_in_that_scope():
    from app.access import desk_session

    assert desk_session("district", None, None, None) == ("district", None, None)  # a district desk
    assert desk_session("department", "TRAFFIC", None, "TRAFFIC") == ("department", "TRAFFIC", None)
    role, scope, note = desk_session("district", None, None, "TRAFFIC")
    assert (role, scope) == ("department", "TRAFFIC") and "TRAFFIC" in note
    assert desk_session("department", "PSB", None, "TRAFFIC")[:2] == ("department", "TRAFFIC")
    assert desk_session("wall", None, None, "TRAFFIC") == ("wall", None, None)  # read-only: unchanged
    assert desk_session("street", "320613001", "320613001", None) == ("street", "320613001", None)
    assert desk_session("street", "320613002", "320613001", None)[:2] == ("street", "320613001")
    assert desk_session("drill", None, "320613001", None)[:2] == ("street", "320613001")
    assert desk_session("department", "PSB", "320613001", None) == ("department", "PSB", None)


def test_scope_names_for_the_header(demo_db):
    import sqlite3

    from app.panel_data import scope_name

    conn = sqlite3.connect(demo_db)
    try:
        street, sname = conn.execute("SELECT code, name FROM streets ORDER BY code LIMIT 1").fetchone()
        dept, dname, den = conn.execute("SELECT code, name, name_en FROM departments WHERE name_en IS NOT NULL LIMIT 1").fetchone()
        assert scope_name(conn, "street", street) == sname
        assert scope_name(conn, "department", dept) == dname and scope_name(conn, "department", dept, "en") == den
        assert scope_name(conn, "district", None) is None and scope_name(conn, "street", "nope") is None
    finally:
        conn.close()
