"""Care-list writes (db.robot_store) and their role/scope rules (app.care_list) on the demo copy."""

from __future__ import annotations

import datetime as dt

import pytest

from app import access
from app import care_list as cl
from app.robot import engine
from app.state import Session
from db import robot_store
from db.replica import open_replica
from db.robot_store import RobotError
from tests.conftest import DEMO_UNTIL

ID_OK = "32060219800101003X"  # valid GB 11643 check character


@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


def q(rep, sql, *args):
    c = rep.reader()
    try:
        return [tuple(r) for r in c.execute(sql, args)]
    finally:
        c.close()


def a_grid(rep, street: str | None = None) -> tuple[str, str]:
    sql = "SELECT id, street_code FROM grids" + (" WHERE street_code = ?" if street else " WHERE street_code <> ?")
    return tuple(q(rep, sql + " ORDER BY id LIMIT 1", street or "")[0])


def test_add_update_deactivate_and_visit(rep):
    grid, street = a_grid(rep)
    cid = robot_store.add_care_resident(rep, {"name": " 周秀兰 ", "kind": "elderly_alone", "grid_id": grid,
                                              "phone": "138 1234 5678", "id_no": ID_OK.lower(),
                                              "visit_every_days": "10"})  # fmt: skip
    row = q(rep, "SELECT name, phone, id_no, street_code, visit_every_days, active FROM care_list WHERE id = ?", cid)[0]
    assert tuple(row) == ("周秀兰", "13812345678", ID_OK, street, 10, 1)

    other, other_street = a_grid(rep, q(rep, "SELECT code FROM streets WHERE code <> ? LIMIT 1", street)[0][0])
    diff = robot_store.update_care_resident(rep, cid, {"grid_id": other, "phone": "0513-85123456", "note": "女儿在外地"})
    assert diff["grid_id"] == (grid, other) and diff["street_code"] == (street, other_street)
    assert robot_store.update_care_resident(rep, cid, {"phone": "0513-85123456"}) == {}  # nothing changed
    assert q(rep, "SELECT street_code, phone FROM care_list WHERE id = ?", cid)[0] == (other_street, "0513-85123456")

    at = DEMO_UNTIL - dt.timedelta(hours=2)
    vid = robot_store.add_care_visit(rep, cid, at=at.isoformat(), visitor="社区志愿者 王红", note="身体尚好")
    assert tuple(q(rep, "SELECT kind, care_id, grid_id, at, note FROM visits WHERE id = ?", vid)[0]) == (
        "care_visit", cid, other, "2026-11-20T13:30:00+08:00", "走访人：社区志愿者 王红；身体尚好")

    robot_store.deactivate_care_resident(rep, cid, "已入住养老机构", actor="op1", at="2026-11-21T09:00:00+08:00")
    active, note = q(rep, "SELECT active, note FROM care_list WHERE id = ?", cid)[0]
    assert active == 0 and note.startswith("女儿在外地\n【停用 11-21 09:00 op1】已入住养老机构")
    assert q(rep, "SELECT count(*) FROM visits WHERE care_id = ?", cid)[0][0] == 1  # the history stays


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"name": "", "grid_id": "x"}, "姓名"),
        ({"name": "甲", "grid_id": "nope"}, "没有该网格"),
        ({"name": "甲", "grid_id": None}, "网格"),
        ({"name": "甲", "kind": "rich", "grid_id": "x"}, "关爱类型"),
        ({"name": "甲", "phone": "1381234", "grid_id": "x"}, "电话号码格式不对"),
        ({"name": "甲", "phone": "23812345678", "grid_id": "x"}, "电话号码格式不对"),
        ({"name": "甲", "id_no": "3206021980010100", "grid_id": "x"}, "18 位"),
        ({"name": "甲", "id_no": "320602198001010022", "grid_id": "x"}, "校验位"),
        ({"name": "甲", "visit_every_days": 0, "grid_id": "x"}, "1–365"),
        ({"name": "甲", "visit_every_days": "每周", "grid_id": "x"}, "天数"),
        ({"name": "甲", "grid_id": "x", "age": 80}, "未知字段"),
    ],
)
def test_add_refuses_bad_input(rep, record, match):
    if record.get("grid_id") == "x":
        record = {**record, "grid_id": a_grid(rep)[0]}
    with pytest.raises(RobotError, match=match):
        robot_store.add_care_resident(rep, record)


def test_visit_and_deactivation_errors(rep):
    cid = robot_store.add_care_resident(rep, {"name": "钱进", "grid_id": a_grid(rep)[0]})
    with pytest.raises(RobotError, match="未来"):
        robot_store.add_care_visit(rep, cid, at="2026-11-20T16:00:00+08:00", visitor="甲", now="2026-11-20T15:30:00+08:00")
    with pytest.raises(RobotError, match="格式"):
        robot_store.add_care_visit(rep, cid, at="昨天下午", visitor="甲")
    with pytest.raises(RobotError, match="走访人"):
        robot_store.add_care_visit(rep, cid, at="2026-11-20T10:00:00+08:00")
    with pytest.raises(RobotError, match="没有该走访人员"):
        robot_store.add_care_visit(rep, cid, at="2026-11-20T10:00:00+08:00", person_id=999_999)
    with pytest.raises(RobotError, match="#999999"):
        robot_store.add_care_visit(rep, 999_999, at="2026-11-20T10:00:00+08:00", visitor="甲")
    with pytest.raises(RobotError, match="原因"):
        robot_store.deactivate_care_resident(rep, cid, "  ", actor="op1")
    robot_store.deactivate_care_resident(rep, cid, "重复登记", actor="op1")
    with pytest.raises(RobotError, match="已停用"):
        robot_store.deactivate_care_resident(rep, cid, "再来", actor="op1")
    with pytest.raises(RobotError, match="已停用"):
        robot_store.update_care_resident(rep, cid, {"name": "钱晋"})
    with pytest.raises(RobotError, match="已停用"):
        robot_store.add_care_visit(rep, cid, at="2026-11-20T10:00:00+08:00", visitor="甲")


def test_roles_and_scope_are_enforced_and_logged(rep):
    grid, street = a_grid(rep)
    other_grid, _ = a_grid(rep, q(rep, "SELECT code FROM streets WHERE code <> ? LIMIT 1", street)[0][0])
    rec = {"name": "孙丽", "kind": "hardship", "grid_id": grid}
    own = Session(role="street", scope=street, user="st1")
    cid = cl.add_resident(rep, own, rec)
    with pytest.raises(access.AccessDenied, match="超出街道范围"):
        cl.add_resident(rep, own, {**rec, "grid_id": other_grid})
    with pytest.raises(access.AccessDenied, match="超出街道范围"):
        cl.update_resident(rep, own, cid, {"grid_id": other_grid})  # cannot move a resident out of the street
    before = q(rep, "SELECT count(*) FROM visits")[0][0]
    for role in ("drill", "wall", "department"):
        s = Session(role=role, scope="X" if role == "department" else None)
        with pytest.raises(access.AccessDenied):
            cl.record_visit(rep, s, cid, at="2026-11-20T10:00:00+08:00", visitor="甲")
        with pytest.raises(access.AccessDenied):
            cl.add_resident(rep, s, rec)
    assert q(rep, "SELECT count(*) FROM visits")[0][0] == before  # no real care data from a drill
    logged = q(rep, "SELECT role, action FROM access_log WHERE action LIKE 'care_%' ORDER BY id")
    assert ("drill", "care_visit") in logged and ("street", "care_update") in logged and len(logged) == 8
    assert "演练" in cl.write_refusal(Session(role="drill"), street)


def test_recorded_visit_clears_the_care_warning(rep):
    engine.run_pass(rep, now=DEMO_UNTIL)
    (wid, evidence), = q(rep, "SELECT id, evidence FROM robot_warnings WHERE rule = 'care_gap' AND status = 'open'")
    cid = int(evidence.split('"care:')[1].split('"')[0])
    c = rep.reader()
    row = next(r for r in cl.list_residents(c, Session(), now=DEMO_UNTIL) if r["id"] == cid)
    c.close()
    assert row["overdue"] and row["days_overdue"] > 0
    cl.record_visit(rep, Session(role="district", user="op1"), cid, at=DEMO_UNTIL - dt.timedelta(hours=1),
                    visitor="网格长", note="已上门", now=DEMO_UNTIL)  # fmt: skip
    res = engine.run_pass(rep, now=DEMO_UNTIL)
    assert wid in res.cleared
    assert q(rep, "SELECT status FROM robot_warnings WHERE id = ?", wid)[0][0] == "cleared"
    c = rep.reader()
    row = next(r for r in cl.list_residents(c, Session(), now=DEMO_UNTIL) if r["id"] == cid)
    c.close()
    assert not row["overdue"] and row["last_visit"] == "2026-11-20T14:30:00+08:00"


def test_list_scope_filters_and_masking(rep):
    c = rep.reader()
    try:
        every = cl.list_residents(c, Session(), now=DEMO_UNTIL)
        street = every[0]["street_code"]
        mine = cl.list_residents(c, Session(role="street", scope=street), now=DEMO_UNTIL)
        assert mine and {r["street_code"] for r in mine} == {street} and len(mine) < len(every)
        assert cl.list_residents(c, Session(role="wall"), now=DEMO_UNTIL) == []
        first = every[0]
        hit = cl.list_residents(c, Session(), search=first["name"], now=DEMO_UNTIL)
        assert first["id"] in [r["id"] for r in hit]
        masked = cl.list_residents(c, Session(role="drill"), now=DEMO_UNTIL)
        m = next(r for r in masked if r["id"] == first["id"])
        assert m["name"] == first["name"][0] + "*" * (len(first["name"]) - 1)
        assert "****" in m["phone"] and first["phone"] not in m["phone"]
        assert cl.list_residents(c, Session(role="drill"), search=first["name"], now=DEMO_UNTIL) == []  # no probing
        kinds = {r["kind"] for r in cl.list_residents(c, Session(), kind="minor", now=DEMO_UNTIL)}
        assert kinds == {"minor"}
        over = cl.list_residents(c, Session(), overdue_only=True, now=DEMO_UNTIL)
        assert over and all(r["overdue"] for r in over)
    finally:
        c.close()


def test_every_care_list_write_is_audited_without_personal_values(rep):
    """care_log (m011): who added, edited, deactivated or visited, append-only; the changed fields
    by name only (the values are personal data and stay in care_list)."""
    import sqlite3

    grid, street = a_grid(rep)
    op = Session(role="street", scope=street, user="op-7")
    cid = cl.add_resident(rep, op, {"name": "周秀兰", "kind": "elderly_alone", "grid_id": grid})
    cl.update_resident(rep, op, cid, {"phone": "13812345678", "note": "女儿在外地"})
    cl.record_visit(rep, op, cid, at=DEMO_UNTIL - dt.timedelta(hours=1), visitor="王红", now=DEMO_UNTIL)
    cl.deactivate_resident(rep, op, cid, "已搬离")
    rows = q(rep, "SELECT actor, action, detail FROM care_log WHERE care_id = ? ORDER BY id", cid)
    assert [(a, b) for a, b, _ in rows] == [("op-7", "add"), ("op-7", "update"), ("op-7", "visit"),
                                            ("op-7", "deactivate")]  # fmt: skip
    assert '"fields": ["note", "phone"]' in rows[1][2] and "138" not in rows[1][2] and "女儿" not in rows[1][2]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        with rep.write("care_list") as c:
            c.execute("DELETE FROM care_log WHERE care_id = ?", (cid,))
