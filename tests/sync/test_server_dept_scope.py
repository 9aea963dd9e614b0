"""A department desk (``add-desk --department``): the server checks its scope like ``app.access``."""

from __future__ import annotations

import psycopg
import pytest

from app import access, cli
from app.commands import upstream as command
from db.ids import new_ulid
from db.sync import server_sql, upstream
from tests.sync.server_util import action_args, as_role, hello, one, push, report_args, unique_role

DEPT = "D_CGJ"  # 城管局
OTHER = "D_SWJ"  # 水务局


def _dispatch(admin, uid: str, dept: str, mid: int) -> int:
    """report → accept → dispatch to ``dept`` as the district (superuser); returns the next mutation id."""
    assert push(admin, "ADMIN", mid, report_args(uid))["status"] == "applied"
    assert push(admin, "ADMIN", mid + 1, action_args(uid, "accept", "reported", "accepted", 1))["status"] == "applied"
    out = push(admin, "ADMIN", mid + 2, action_args(uid, "dispatch", "accepted", "dispatched", 2,
                                                    assignee_kind="department", assignee_code=dept))  # fmt: skip
    assert out["status"] == "applied", out
    return mid + 3


def _whistle_args(uid: str, status: str, version: int, depts: list[str]) -> dict:
    args = action_args(uid, "whistle", status, status, version, note="联合处置")
    args["whistles"] = [{"uid": new_ulid(), "event_uid": uid, "level": "street", "blown_by": "op1",
                         "blown_at": "2026-11-25T09:10:00+08:00", "reason": "联合处置", "outcome": None,
                         "closed_at": None, "closed_by": None, "escalated_from_uid": None,
                         "departments": [{"department_code": d, "deadline_at": "2026-11-25T10:10:00+08:00",
                                          "checked_in_at": None, "checked_in_by": None, "late": None}
                                         for d in depts]}]  # fmt: skip
    return args


@pytest.fixture
def world(pg_dsn):
    """An upstream with a department desk for DEPT; yields (admin conn, desk conn)."""
    upstream.init_upstream(pg_dsn)
    role = unique_role("dept")
    upstream.add_desk(pg_dsn, role, "pw-d", department=DEPT)
    with psycopg.connect(pg_dsn) as admin, psycopg.connect(as_role(pg_dsn, role, "pw-d")) as desk:
        yield admin, desk


def _refused(out: dict, *, server_status: str | None) -> str:
    assert out["status"] == "rejected" and out["code"] == "scope", out
    assert "超出本部门范围" in out["reason"] and "out of scope" in out["reason"]
    if server_status is None:
        assert out["server_state"] is None
    else:
        assert out["server_state"]["event"]["status"] == server_status
    return out["reason"]


def test_hello_tells_the_department_scope(world):
    _, desk = world
    h = hello(desk, "DEPT-1")
    assert h["ok"] and h["scope_dept"] == DEPT and h["scope_street"] is None


def test_dispatched_event_acknowledge_and_handle_but_not_accept_or_dispatch(world):
    admin, desk = world
    uid = new_ulid()
    _dispatch(admin, uid, DEPT, 1)
    # the district's own pipeline stays open; the department may not take the district's steps
    acc = action_args(uid, "accept", "dispatched", "accepted", 3)
    reason = _refused(push(desk, "DEPT-1", 1, acc), server_status="dispatched")
    assert f"department {DEPT} may not accept" in reason
    _refused(push(desk, "DEPT-1", 2, action_args(uid, "dispatch", "dispatched", "dispatched", 3,
                                                 assignee_kind="department", assignee_code=OTHER)),
             server_status="dispatched")  # fmt: skip
    steps = [("acknowledge", "dispatched", "acknowledged"), ("arrive", "acknowledged", "on_site"),
             ("handle", "on_site", "handled")]  # fmt: skip
    for i, (action, src, dst) in enumerate(steps):
        out = push(desk, "DEPT-1", 3 + i, action_args(uid, action, src, dst, 3 + i,
                                                      assignee_kind="department", assignee_code=DEPT))  # fmt: skip
        assert out["status"] == "applied", (action, out)
    note = action_args(uid, "note", "handled", "handled", 6, assignee_kind="department", assignee_code=DEPT,
                       note="已处置")  # fmt: skip
    assert push(desk, "DEPT-1", 6, note)["status"] == "applied"
    # verify belongs to the district even on the department's own event
    _refused(push(desk, "DEPT-1", 7, action_args(uid, "verify", "handled", "verified", 7)), server_status="handled")
    assert one(admin, "SELECT status FROM onemap.events WHERE uid = %s", (uid,)) == "handled"
    # refusals are stored in the ledger and answered the same on a retry
    assert one(admin, "SELECT count(*) FROM onemap.ledger WHERE client_id = 'DEPT-1' AND outcome->>'code' = 'scope'") == 3
    assert push(desk, "DEPT-1", 1, acc)["reason"] == reason


def test_event_of_another_department_is_refused_whatever_the_action(world):
    admin, desk = world
    uid = new_ulid()
    _dispatch(admin, uid, OTHER, 1)
    for i, action in enumerate(("acknowledge", "return", "note", "check_in")):
        to = {"acknowledge": "acknowledged", "return": "returned"}.get(action, "dispatched")
        reason = _refused(push(desk, "DEPT-1", 1 + i, action_args(uid, action, "dispatched", to, 3)),
                          server_status="dispatched")  # fmt: skip
        assert f"not dispatched to department {DEPT}" in reason
    assert one(admin, "SELECT version FROM onemap.events WHERE uid = %s", (uid,)) == 3


def test_summoned_department_may_check_in_and_note_but_not_handle(world):
    admin, desk = world
    uid = new_ulid()
    _dispatch(admin, uid, OTHER, 1)
    steps = [("acknowledge", "dispatched", "acknowledged"), ("arrive", "acknowledged", "on_site")]
    for i, (action, src, dst) in enumerate(steps):
        assert push(admin, "ADMIN", 4 + i, action_args(uid, action, src, dst, 3 + i))["status"] == "applied"
    assert push(admin, "ADMIN", 6, _whistle_args(uid, "on_site", 5, [OTHER, DEPT]))["status"] == "applied"
    whistles = one(admin, "SELECT jsonb_agg(data) FROM onemap.whistles WHERE event_uid = %s", (uid,))
    check_in = action_args(uid, "check_in", "on_site", "on_site", 6)
    w = dict(whistles[0])
    w["departments"] = [dict(d, checked_in_at="2026-11-25T09:20:00+08:00", checked_in_by="dept-op")
                        if d["department_code"] == DEPT else d for d in w["departments"]]  # fmt: skip
    check_in["whistles"] = [w]
    assert push(desk, "DEPT-1", 1, check_in)["status"] == "applied"
    assert push(desk, "DEPT-1", 2, action_args(uid, "note", "on_site", "on_site", 7, note="已到场"))["status"] == "applied"
    reason = _refused(push(desk, "DEPT-1", 3, action_args(uid, "handle", "on_site", "handled", 8)),
                      server_status="on_site")  # fmt: skip
    assert "only summoned" in reason
    _refused(push(desk, "DEPT-1", 4, action_args(uid, "defer", "on_site", "deferred", 8)), server_status="on_site")
    assert one(admin, "SELECT status FROM onemap.events WHERE uid = %s", (uid,)) == "on_site"
    data = one(admin, "SELECT data FROM onemap.whistles WHERE event_uid = %s", (uid,))
    assert {d["department_code"]: d["checked_in_by"] for d in data["departments"]} == {OTHER: None, DEPT: "dept-op"}


def test_a_department_desk_may_not_report(world):
    admin, desk = world
    a = report_args()
    reason = _refused(push(desk, "DEPT-1", 1, a), server_status=None)
    assert "does not report" in reason
    assert one(admin, "SELECT count(*) FROM onemap.events") == 0
    assert one(admin, "SELECT count(*) FROM onemap.changes") == 0


def test_the_rules_come_from_app_access(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT relation, action FROM onemap.department_actions").fetchall()
    assert {a for r, a in rows if r == "assigned"} == set(access.DEPARTMENT_ACTIONS) - {access.READ}
    assert {a for r, a in rows if r == "summoned"} == set(access.SUMMONED_ACTIONS) - {access.READ}
    assert sorted(rows) == server_sql.department_action_rows()


def test_init_on_an_older_server_adds_the_department_column(pg_dsn):
    upstream.init_upstream(pg_dsn)
    role = unique_role("old")
    upstream.add_desk(pg_dsn, role, "pw", street="320613001")
    with psycopg.connect(pg_dsn) as conn:  # the desk_roles table of a server built before department desks
        conn.execute("ALTER TABLE onemap.desk_roles DROP COLUMN scope_dept")
        conn.execute("DROP TABLE onemap.department_actions")
        conn.commit()
    upstream.init_upstream(pg_dsn)
    upstream.add_desk(pg_dsn, role, "pw", department=DEPT)
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT scope_street, scope_dept FROM onemap.desk_roles WHERE role_name = %s",
                           (role,)).fetchone()  # fmt: skip
        assert row == (None, DEPT)
    with pytest.raises(upstream.UpstreamError, match="not both"):
        upstream.add_desk(pg_dsn, role, "pw", street="320613001", department=DEPT)


def test_cli_add_desk_department_and_the_usage_error(pg_dsn, capsys):
    run = lambda *a: command.run(cli.parse_args(["upstream", *a]))  # noqa: E731
    assert run("init", "--dsn", pg_dsn) == 0
    role = unique_role("cli")
    assert run("add-desk", "--dsn", pg_dsn, "--role", role, "--password", "s3cret", "--department", DEPT) == 0
    assert f"ready for department {DEPT}" in capsys.readouterr().err
    with psycopg.connect(as_role(pg_dsn, role, "s3cret")) as desk:
        assert hello(desk, "C-1")["scope_dept"] == DEPT
        assert push(desk, "C-1", 1, report_args())["code"] == "scope"
    with pytest.raises(SystemExit) as exc:
        run("add-desk", "--dsn", pg_dsn, "--role", role, "--password", "x", "--street", "320613001",
            "--department", DEPT)  # fmt: skip
    assert exc.value.code == cli.EXIT_USAGE
    assert "not allowed with argument" in capsys.readouterr().err
