"""The event write path (db/event_ops.py) on real replicas: transitions + log rows in one
transaction, refusals that change nothing, optimistic versioning across connections, a
process killed mid-transition, whistles, deferral/extension, new reports. No Qt."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import lifecycle as lc
from app.timeutil import TZ, to_iso
from db import event_ops as ops
from db.replica import open_replica

ROOT = Path(__file__).resolve().parents[2]
NOTE = "测试理由 test reason"


# -- fixtures and helpers -------------------------------------------------------------------------
@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


@pytest.fixture(scope="module")
def shared_rep(demo_db, tmp_path_factory):
    """One writable demo copy for the whole module (tests create their own events in it)."""
    path = tmp_path_factory.mktemp("ops") / "demo.db"
    shutil.copy(demo_db, path)
    r = open_replica(path)
    yield r
    r.close()


def point(r, n: int = 0) -> tuple[float, float, str]:
    c = r.reader()
    row = c.execute("SELECT lon, lat, street_code FROM grids ORDER BY id LIMIT 1 OFFSET ?", (n,)).fetchone()
    c.close()
    return row[0], row[1], row[2]


def new_event(r, category: str = "ORDER.EBIKE", *, reported_at=None, n: int = 0, **extra) -> int:
    lon, lat, _ = point(r, n)
    record = {"source": "grid_app", "category": category, "lon": lon, "lat": lat, **extra}
    if reported_at:
        record["reported_at"] = reported_at
    return ops.create_event(r, record, actor="tester")


def event(r, eid: int) -> dict:
    c = r.reader()
    row = dict(c.execute("SELECT * FROM events WHERE id = ?", (eid,)).fetchone())
    c.close()
    return row


def log_rows(r, eid: int) -> list[dict]:
    c = r.reader()
    rows = [dict(x) for x in c.execute("SELECT * FROM event_log WHERE event_id = ? ORDER BY id", (eid,))]
    c.close()
    return rows


def rev(r) -> int:
    c = r.reader()
    v = c.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()[0]
    c.close()
    return v


def payload_for(r, action: str, eid: int) -> dict | None:
    if action in ("dispatch", "rework"):
        return {"target_kind": "department", "target": "CITYMGMT"}
    if action == "merge":
        return {"into": new_event(r)}
    if action == "evaluate":
        return {"satisfaction": 4}
    if action == "extend":
        due = event(r, eid)["handle_due_at"]
        base = max(due or "", to_iso(dt.datetime.now(TZ)))
        new_due = dt.datetime.fromisoformat(base) + dt.timedelta(days=3)
        return {"new_due": to_iso(new_due), "approver": "值班领导"}
    if action == "whistle":
        return {"level": "grid", "departments": ["PSB"], "deadline_minutes": 30}
    return None


def act(r, eid: int, action: str, note: str | None = NOTE, payload=None, **kw) -> dict:
    version = event(r, eid)["version"]
    if payload is None:
        payload = payload_for(r, action, eid)
    return ops.apply_action(
        r, eid, action, actor="tester", expected_version=version, note=note, payload=payload, **kw
    )


def drive_to(r, status: str) -> int:
    eid = new_event(r)
    if status == "merged":
        act(r, eid, "merge")
        return eid
    for step in lc.path_to(status):
        act(r, eid, step.action)
    assert event(r, eid)["status"] == status
    return eid


# -- transitions -----------------------------------------------------------------------------------
LEGAL = [(s, a) for s, nxt in lc.TRANSITIONS.items() for a in nxt]
ILLEGAL = [(s, a) for s in lc.STATES for a in sorted(ops.TRANSITION_ACTIONS) if a not in lc.TRANSITIONS[s]]


@pytest.mark.parametrize(("status", "action"), LEGAL)
def test_every_legal_transition_writes_one_log_row_in_the_same_transaction(shared_rep, status, action):
    r = shared_rep
    eid = drive_to(r, status)
    before, logs_before, rev_before = event(r, eid), log_rows(r, eid), rev(r)
    row = act(r, eid, action)
    after, logs = event(r, eid), log_rows(r, eid)
    assert after["status"] == lc.TRANSITIONS[status][action] == row["status"]
    assert after["version"] == before["version"] + 1
    assert after["rev"] == rev(r) > rev_before
    assert len(logs) == len(logs_before) + 1
    last = logs[-1]
    assert (last["action"], last["from_status"], last["to_status"], last["actor"]) == (
        action, status, after["status"], "tester")  # fmt: skip
    assert last["note"] == NOTE and last["id"] == row["_log_id"]
    assert ops.status_replay(r.reader(), eid) == after["status"]
    col = lc.STAGE_COLUMN.get(after["status"])
    if action == "rework":
        assert after["handled_at"] is None
    elif col:
        assert after[col] is not None


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
def test_illegal_transition_is_refused_with_the_rule_and_changes_nothing(shared_rep, status, action):
    r = shared_rep
    eid = drive_to(r, status)
    payload = payload_for(r, action, eid)  # (merge creates its target first)
    before, logs_before, rev_before = event(r, eid), log_rows(r, eid), rev(r)
    with pytest.raises(lc.IllegalTransition) as err:
        act(r, eid, action, payload=payload)
    msg = str(err.value)
    assert "lifecycle table" in msg and f"'{action}' from '{status}'" in msg
    if status in lc.TERMINAL:
        assert "terminal" in msg
    assert event(r, eid) == before
    assert log_rows(r, eid) == logs_before
    assert rev(r) == rev_before


def test_reason_is_required_where_the_rule_says(shared_rep):
    r = shared_rep
    where = {"reject": "reported", "return": "dispatched", "defer": "acknowledged", "rework": "handled"}
    assert set(where) | {"extend"} == lc.NEEDS_REASON
    for action, status in where.items():
        eid = drive_to(r, status)
        before = event(r, eid)
        for note in (None, "   "):
            with pytest.raises(ops.InvalidAction, match="reason"):
                act(r, eid, action, note=note)
        assert event(r, eid) == before


def test_transitions_need_an_expected_version(shared_rep):
    eid = new_event(shared_rep)
    with pytest.raises(ops.InvalidAction, match="expected_version"):
        ops.apply_action(shared_rep, eid, "accept", actor="tester", expected_version=None)


def test_unknown_action_and_unknown_event(shared_rep):
    eid = new_event(shared_rep)
    with pytest.raises(lc.IllegalTransition, match="unknown action"):
        ops.apply_action(shared_rep, eid, "teleport", actor="t", expected_version=1)
    with pytest.raises(ops.EventNotFound):
        ops.apply_action(shared_rep, 10**9, "accept", actor="t", expected_version=1)


RANDOM_ACTIONS = sorted(ops.TRANSITION_ACTIONS) + ["note", "supervise", "evaluate", "extend", "whistle"]


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(RANDOM_ACTIONS), st.booleans()), min_size=1, max_size=14))
def test_random_action_sequences_keep_status_equal_to_the_log_replay(shared_rep, steps):
    r = shared_rep
    eid = new_event(r)
    ok = 0
    for action, with_note in steps:
        before, n_logs = event(r, eid), len(log_rows(r, eid))
        try:
            row = act(r, eid, action, note=NOTE if with_note else None)
        except (lc.IllegalTransition, ops.InvalidAction):
            assert event(r, eid) == before
            assert len(log_rows(r, eid)) == n_logs
            continue
        ok += 1
        assert len(log_rows(r, eid)) == n_logs + 1
        assert row["version"] == before["version"] + 1
        if action in ops.TRANSITION_ACTIONS:
            assert row["status"] == lc.next_status(before["status"], action)
        else:
            assert row["status"] == before["status"]
    final = event(r, eid)
    c = r.reader()
    assert ops.status_replay(c, eid) == final["status"]
    c.close()
    assert final["version"] == 1 + ok
    logs = log_rows(r, eid)
    assert len(logs) == 1 + ok
    # every stage column is set iff the log reached that stage (handled_at: latest, cleared by rework)
    reached = {x["to_status"] for x in logs if x["action"] in ops.TRANSITION_ACTIONS}
    for status, col in lc.STAGE_COLUMN.items():
        if col != "handled_at":
            assert (final[col] is not None) == (status in reached), col


# -- append-only logs ------------------------------------------------------------------------------
@pytest.mark.parametrize("table", ["event_log", "access_log", "handover_notes"])
def test_logs_reject_update_and_delete_in_the_database(rep, table):
    eid = new_event(rep)
    ops.log_refusal(
        rep, actor="x", role="wall", scope=None, action="accept", event_id=eid, reason="read-only"
    )
    ops.add_handover_note(rep, author="x", shift="白班", text="交接", open_items=[eid])
    conn = sqlite3.connect(rep.path)
    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    assert n > 0
    for sql in (
        f"UPDATE {table} SET at = 'x'",
        f"DELETE FROM {table}",
        f"UPDATE {table} SET id = id + 1000000",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n
    conn.close()


# -- concurrency -------------------------------------------------------------------------------------
def race(eid: int, version: int, contenders: list[tuple]) -> dict[str, object]:
    """Start ``(name, replica, actor, action, note)`` contenders at once; each result or exception."""
    barrier = threading.Barrier(len(contenders))
    results: dict[str, object] = {}

    def run(name, replica, actor, action, note):
        barrier.wait()
        try:
            results[name] = ops.apply_action(
                replica, eid, action, actor=actor, expected_version=version, note=note
            )
        except Exception as exc:  # noqa: BLE001
            results[name] = exc

    threads = [threading.Thread(target=run, args=c) for c in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_connections_same_version_exactly_one_succeeds(demo_copy):
    a, b = open_replica(demo_copy), open_replica(demo_copy)
    try:
        c = a.reader()
        person_uid, person_name = c.execute(
            "SELECT uid, name FROM people WHERE role = 'operator' LIMIT 1"
        ).fetchone()
        c.close()
        for round_ in range(6):
            eid = new_event(a)
            v = event(a, eid)["version"]
            results = race(eid, v, [
                ("a", a, person_uid, "accept", None),
                ("b", b, "other-console", "reject" if round_ % 2 else "accept", NOTE),
            ])  # fmt: skip
            wins = [k for k, r in results.items() if isinstance(r, dict)]
            losses = [r for r in results.values() if isinstance(r, ops.ConflictError)]
            assert len(wins) == 1 and len(losses) == 1, results
            err = losses[0]
            winner_name = person_name if wins == ["a"] else "other-console"
            assert winner_name in str(err) and "changed by" in str(err) and "已被" in str(err)
            assert err.at and err.at in str(err)
            assert len(log_rows(a, eid)) == 2  # report + the winner's action
            assert event(a, eid)["version"] == v + 1
    finally:
        a.close()
        b.close()


def test_stale_version_is_refused_with_who_and_when(rep):
    eid = new_event(rep)
    ops.apply_action(rep, eid, "accept", actor="值班员甲", expected_version=1, at="2026-11-20T10:15:00+08:00")
    before = event(rep, eid)
    with pytest.raises(ops.ConflictError) as err:
        ops.apply_action(rep, eid, "reject", actor="值班员乙", expected_version=1, note=NOTE)
    assert "值班员甲" in str(err.value) and "11-20 10:15" in str(err.value)
    assert err.value.current == 2 and err.value.expected == 1
    assert event(rep, eid) == before


KILL_SCRIPT = r"""
import pathlib, sys, time
from db import event_ops
from db.replica import open_replica
path, eid, version, marker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
original = event_ops._append_log
def hooked(*a, **k):
    out = original(*a, **k)          # the UPDATE and the log row are written, not committed
    pathlib.Path(marker).write_text("inside the transaction")
    time.sleep(120)
    return out
event_ops._append_log = hooked
rep = open_replica(path)
event_ops.apply_action(rep, eid, "accept", actor="doomed-process", expected_version=version)
"""


def test_process_killed_mid_transition_loses_nothing(rep, tmp_path):
    eid = new_event(rep)
    before, logs_before, rev_before = event(rep, eid), log_rows(rep, eid), rev(rep)
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(rep.path), str(eid), str(before["version"]), str(marker)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "subprocess never reached the transaction"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # a fresh connection: the half-done transition is gone, status and log agree, the lock is free
    check = sqlite3.connect(rep.path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    assert event(rep, eid) == before
    assert log_rows(rep, eid) == logs_before
    assert rev(rep) == rev_before
    row = ops.apply_action(rep, eid, "accept", actor="survivor", expected_version=before["version"])
    assert row["status"] == "accepted"
    assert [x["actor"] for x in log_rows(rep, eid)][-1] == "survivor"


# -- stage columns, dispatch, merge, evaluate ----------------------------------------------------------
def test_stage_columns_first_reached_handled_latest_rework_clears(rep):
    eid = new_event(rep, reported_at="2026-11-23T09:00:00+08:00")
    times = iter(f"2026-11-23T{h:02d}:00:00+08:00" for h in range(10, 24))
    for a in ["accept", "dispatch", "acknowledge", "arrive", "handle"]:
        act(rep, eid, a, at=next(times))
    first = event(rep, eid)
    act(rep, eid, "rework", at=next(times))
    mid = event(rep, eid)
    assert mid["handled_at"] is None and mid["dispatched_at"] == first["dispatched_at"]
    for a in ["acknowledge", "arrive", "handle"]:
        act(rep, eid, a, at=next(times))
    last = event(rep, eid)
    assert last["acknowledged_at"] == first["acknowledged_at"]
    assert last["on_site_at"] == first["on_site_at"]
    assert last["handled_at"] > first["handled_at"]
    # rework without a new target keeps the assignee and logs it
    assert last["assignee_code"] == "CITYMGMT"


def test_dispatch_targets_are_validated_and_recorded(rep):
    eid = drive_to(rep, "accepted")
    for bad in (
        {},
        {"target_kind": "department", "target": "NOPE"},
        {"target_kind": "planet", "target": "x"},
    ):
        with pytest.raises(ops.InvalidAction):
            act(rep, eid, "dispatch", payload=bad)
    c = rep.reader()
    grid_id, leader = c.execute(
        "SELECT grid_id, uid FROM people WHERE role = 'grid_leader' LIMIT 1"
    ).fetchone()
    street = c.execute("SELECT code FROM streets LIMIT 1").fetchone()[0]
    c.close()
    row = act(rep, eid, "dispatch", payload={"target_kind": "grid", "target": grid_id})
    assert (row["assignee_kind"], row["assignee_code"]) == ("grid", leader)
    payload = orjson.loads(log_rows(rep, eid)[-1]["payload"])
    assert payload["target"] == leader and payload["grid_id"] == grid_id
    act(rep, eid, "return")
    row = act(rep, eid, "dispatch", payload={"target_kind": "street", "target": street})
    assert (row["assignee_kind"], row["assignee_code"]) == ("street", street)
    assert orjson.loads(log_rows(rep, eid)[-1]["payload"])["previous"]["target"] == leader


def test_merge_needs_a_live_target(rep):
    a, b = new_event(rep), new_event(rep)
    with pytest.raises(ops.InvalidAction):
        act(rep, a, "merge", payload={"into": a})
    with pytest.raises(ops.InvalidAction):
        act(rep, a, "merge", payload={"into": 10**9})
    row = act(rep, a, "merge", payload={"into": b})
    assert row["status"] == "merged" and row["merged_into"] == b
    c = new_event(rep)
    with pytest.raises(ops.InvalidAction, match="merged"):
        act(rep, c, "merge", payload={"into": a})


def test_evaluate_once_handled_also_after_closing(rep):
    eid = drive_to(rep, "on_site")
    with pytest.raises(lc.IllegalTransition, match="evaluate"):
        act(rep, eid, "evaluate")
    act(rep, eid, "handle")
    assert act(rep, eid, "evaluate", payload={"satisfaction": 3})["satisfaction"] == 3
    act(rep, eid, "verify")
    act(rep, eid, "close")
    for bad in (0, 6, "5", True, None):
        with pytest.raises(ops.InvalidAction, match="1–5"):
            act(rep, eid, "evaluate", payload={"satisfaction": bad})
    row = act(rep, eid, "evaluate", payload={"satisfaction": 5, "comment": "满意"})
    assert row["satisfaction"] == 5 and row["status"] == "closed"
    assert orjson.loads(log_rows(rep, eid)[-1]["payload"]) == {"satisfaction": 5, "comment": "满意"}


def test_note_needs_text_and_overlays_keep_status(rep):
    eid = drive_to(rep, "dispatched")
    with pytest.raises(ops.InvalidAction):
        ops.apply_action(rep, eid, "note", actor="t", expected_version=None, note=" ")
    row = ops.apply_action(rep, eid, "note", actor="t", expected_version=None, note="电话联系报告人")
    assert row["status"] == "dispatched"
    assert log_rows(rep, eid)[-1]["from_status"] == log_rows(rep, eid)[-1]["to_status"] == "dispatched"


# -- deferral and extension ------------------------------------------------------------------------------
def test_deferral_suspends_the_handling_deadline_not_the_arrival_clock(rep):
    # ORDER.EBIKE: 4 working hours, arrival clock. Reported Wed 2026-11-25 09:00 → due 14:30.
    eid = new_event(rep, "ORDER.EBIKE", reported_at="2026-11-25T09:00:00+08:00")
    e = event(rep, eid)
    assert e["handle_due_at"] == "2026-11-25T14:30:00+08:00"
    assert e["arrival_due_at"] == "2026-11-25T09:10:00+08:00"
    for a, t in [("accept", "09:01"), ("dispatch", "09:02"), ("acknowledge", "09:03")]:
        act(rep, eid, a, at=f"2026-11-25T{t}:00+08:00")
    row = act(rep, eid, "defer", at="2026-11-25T10:00:00+08:00", payload={"approver": "街道分管领导"})
    assert row["deferred_at"] == "2026-11-25T10:00:00+08:00"
    # resumed at 15:00: 2 h (10–12) + 1.5 h (13:30–15) of working time suspended → due moves 3.5 working hours
    row = act(rep, eid, "resume", at="2026-11-25T15:00:00+08:00")
    assert row["deferred_at"] is None
    assert row["handle_due_at"] == "2026-11-26T09:00:00+08:00"  # 14:30 + 3.5 h: 17:30 (3 h), next day 09:00
    assert row["arrival_due_at"] == "2026-11-25T09:10:00+08:00"  # the arrival clock is not suspended
    assert row["suspended_s"] == 5 * 3600
    payload = orjson.loads(log_rows(rep, eid)[-1]["payload"])
    assert payload["handle_due_from"] == "2026-11-25T14:30:00+08:00"
    assert payload["handle_due_to"] == row["handle_due_at"]


def test_deferral_over_a_weekend_costs_only_working_time(rep):
    eid = new_event(rep, "ORDER.EBIKE", reported_at="2026-11-27T13:30:00+08:00")  # Friday; due 17:30
    assert event(rep, eid)["handle_due_at"] == "2026-11-27T17:30:00+08:00"
    for a in ["accept", "dispatch", "acknowledge"]:
        act(rep, eid, a, at="2026-11-27T13:40:00+08:00")
    act(rep, eid, "defer", at="2026-11-27T17:00:00+08:00")
    row = act(rep, eid, "arrive", at="2026-11-30T08:30:00+08:00")  # Monday morning, straight to on site
    assert row["status"] == "on_site"
    assert row["handle_due_at"] == "2026-11-30T09:00:00+08:00"  # 30 working minutes were suspended


def test_calendar_hours_categories_shift_by_wall_clock(rep):
    eid = new_event(rep, "EMG.FIRE", reported_at="2026-11-28T22:00:00+08:00")  # 2 calendar hours
    assert event(rep, eid)["handle_due_at"] == "2026-11-29T00:00:00+08:00"
    for a in ["accept", "dispatch", "acknowledge"]:
        act(rep, eid, a, at="2026-11-28T22:01:00+08:00")
    act(rep, eid, "defer", at="2026-11-28T22:30:00+08:00")
    row = act(rep, eid, "resume", at="2026-11-28T23:15:00+08:00")
    assert row["handle_due_at"] == "2026-11-29T00:45:00+08:00"


def test_extension_moves_the_deadline_with_approval(rep):
    eid = drive_to(rep, "acknowledged")
    old = event(rep, eid)["handle_due_at"]
    new_due = "2031-01-10T17:00:00+08:00"
    with pytest.raises(ops.InvalidAction, match="approver"):
        act(rep, eid, "extend", payload={"new_due": new_due})
    with pytest.raises(ops.InvalidAction, match="reason"):
        act(rep, eid, "extend", note=None, payload={"new_due": new_due, "approver": "分管领导"})
    with pytest.raises(ops.InvalidAction, match="later"):
        act(rep, eid, "extend", payload={"new_due": "2020-01-01T00:00:00+08:00", "approver": "分管领导"})
    with pytest.raises(ops.InvalidAction, match="expected_version"):
        ops.apply_action(rep, eid, "extend", actor="t", expected_version=None, note=NOTE,
                         payload={"new_due": new_due, "approver": "分管领导"})  # fmt: skip
    row = act(rep, eid, "extend", payload={"new_due": new_due, "approver": "分管领导"})
    assert row["handle_due_at"] == new_due and row["extended_count"] == 1 and row["status"] == "acknowledged"
    p = orjson.loads(log_rows(rep, eid)[-1]["payload"])
    assert p == {"clock": "handle", "old_due": old, "new_due": new_due, "approver": "分管领导"}


# -- whistles -------------------------------------------------------------------------------------------
def test_whistle_lifecycle_escalation_and_late_check_in(rep):
    eid = drive_to(rep, "dispatched")
    t0 = dt.datetime(2026, 11, 26, 10, 0, tzinfo=TZ)
    w1 = ops.blow_whistle(rep, eid, level="grid", departments=["PSB", "CITYMGMT"], deadline_minutes=30,
                          actor="网格长", reason="多部门联动", at=t0)  # fmt: skip
    with pytest.raises(ops.InvalidAction, match="still open"):
        ops.blow_whistle(rep, eid, level="grid", departments=["PSB"], actor="x", reason="again", at=t0)
    with pytest.raises(ops.InvalidAction, match="unknown department"):
        ops.blow_whistle(rep, eid, level="street", departments=["NOPE"], actor="x", reason="r", at=t0)
    with pytest.raises(ops.InvalidAction, match="level"):
        ops.blow_whistle(rep, eid, level="planet", departments=["PSB"], actor="x", reason="r", at=t0)
    ok = ops.check_in(rep, w1, "PSB", actor="公安联络员", at=t0 + dt.timedelta(minutes=12))
    assert ok["late"] == 0
    # escalate to the street: the grid whistle closes as escalated, the new one links back
    w2 = ops.blow_whistle(rep, eid, level="street", departments=["CITYMGMT", "HOUSING"], deadline_minutes=20,
                          actor="街道值班员", reason="网格层面无法协调", at=t0 + dt.timedelta(minutes=40))  # fmt: skip
    whistles = {w["id"]: w for w in ops.get_whistles(rep.reader(), eid)}
    assert whistles[w1]["closed_at"] and whistles[w1]["outcome"].startswith("escalated")
    # CITYMGMT missed the grid whistle's deadline: flagged late when it was escalated
    assert {d["department_code"]: d["late"] for d in whistles[w1]["departments"]} == {"PSB": 0, "CITYMGMT": 1}
    assert whistles[w2]["escalated_from"] == w1 and whistles[w2]["level"] == "street"
    with pytest.raises(ops.InvalidAction, match="closed"):
        ops.check_in(rep, w1, "CITYMGMT", actor="x", at=t0 + dt.timedelta(minutes=41))
    late = ops.check_in(rep, w2, "CITYMGMT", actor="城管联络员", at=t0 + dt.timedelta(minutes=75))
    assert late["late"] == 1
    with pytest.raises(ops.InvalidAction, match="already checked in"):
        ops.check_in(rep, w2, "CITYMGMT", actor="x", at=t0 + dt.timedelta(minutes=76))
    with pytest.raises(ops.InvalidAction, match="not summoned"):
        ops.check_in(rep, w2, "PSB", actor="x", at=t0 + dt.timedelta(minutes=76))
    closed = ops.close_whistle(
        rep, w2, actor="街道值班员", outcome="联合整治完成", at=t0 + dt.timedelta(hours=3)
    )
    assert closed["not_checked_in"] == ["HOUSING"]
    w = {x["id"]: x for x in ops.get_whistles(rep.reader(), eid)}[w2]
    assert w["outcome"] == "联合整治完成"
    assert {d["department_code"]: d["late"] for d in w["departments"]} == {"CITYMGMT": 1, "HOUSING": 1}
    # every step is one log row; the status never moved
    logs = [x for x in log_rows(rep, eid) if x["action"] in ("whistle", "check_in")]
    ops_seen = [(x["action"], orjson.loads(x["payload"]).get("op")) for x in logs]
    assert ops_seen == [("whistle", "blow"), ("check_in", None), ("whistle", "escalate"), ("check_in", None),
                        ("whistle", "close")]  # fmt: skip
    assert orjson.loads(logs[3]["payload"])["late_s"] == 15 * 60  # due at t0 + 60 min, came at t0 + 75
    assert all(x["from_status"] == x["to_status"] == "dispatched" for x in logs)
    assert event(rep, eid)["version"] == 1 + 2 + 5  # report, accept, dispatch … then five overlays


def test_whistle_refused_on_terminal_events(rep):
    eid = drive_to(rep, "rejected")
    with pytest.raises(lc.IllegalTransition, match="whistle"):
        ops.blow_whistle(rep, eid, level="grid", departments=["PSB"], actor="x", reason="r")


# -- supervise, handover --------------------------------------------------------------------------------
def test_supervision_leaves_a_queryable_reminder(rep):
    eid = new_event(rep, "ORDER.EBIKE", reported_at="2026-11-20T09:00:00+08:00")
    act(rep, eid, "accept", at="2026-11-20T09:01:00+08:00")
    act(rep, eid, "dispatch", at="2026-11-20T09:02:00+08:00")
    log_id = ops.supervise(
        rep, eid, actor="区指挥中心", note="超时督办，请今日办结", at="2026-11-21T09:00:00+08:00"
    )
    c = rep.reader()
    row = dict(c.execute("SELECT * FROM supervisions WHERE log_id = ?", (log_id,)).fetchone())
    c.close()
    assert row["event_id"] == eid and row["target_kind"] == "department" and row["target"] == "CITYMGMT"
    assert set(orjson.loads(row["overdue"])) == {"arrival", "handle"}
    assert row["note"] == "超时督办，请今日办结"
    assert event(rep, eid)["status"] == "dispatched"


def test_handover_notes(rep):
    a = new_event(rep)
    nid = ops.add_handover_note(rep, author="王值班", shift="2026-11-20 夜班", text="关注城东积水",
                                open_items=[a, {"event_id": a, "note": "等待回访"}])  # fmt: skip
    with pytest.raises(ops.InvalidAction):
        ops.add_handover_note(rep, author="王值班", shift="夜班", text="x", open_items=[10**9])
    with pytest.raises(ops.InvalidAction):
        ops.add_handover_note(rep, author="", shift="夜班", text="x")
    notes = ops.list_handover_notes(rep.reader())
    assert notes[0]["id"] == nid and notes[0]["open_items"][1]["note"] == "等待回访"
    assert notes[0]["open_items"][0]["status"] == "reported"


# -- bulk dispatch ----------------------------------------------------------------------------------------
def test_bulk_dispatch_reports_each_event(rep):
    good = [drive_to(rep, "accepted") for _ in range(3)]
    stale = drive_to(rep, "accepted")
    wrong_state = new_event(rep)
    ids = [*good, stale, wrong_state]
    versions = {i: event(rep, i)["version"] for i in ids}
    versions[stale] -= 1
    results = ops.bulk_dispatch(rep, ids, ("department", "SANITATION"), actor="op", versions=versions)
    assert [r.event_id for r in results] == ids
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert results[3].conflict and "changed by" in results[3].error
    assert "lifecycle table" in results[4].error
    for i in good:
        assert event(rep, i)["assignee_code"] == "SANITATION"
    assert event(rep, stale)["status"] == "accepted" and len(log_rows(rep, wrong_state)) == 1


# -- new reports --------------------------------------------------------------------------------------------
def test_create_event_defaults_due_times_and_location(rep):
    lon, lat, street = point(rep, 5)
    eid = ops.create_event(rep, {"source": "hotline_12345", "external_id": "GD-1", "category": "EMG.FIRE",
                                 "lon": lon, "lat": lat, "reported_at": "2026-11-25T10:00:00+08:00"},
                           actor="source:hotline_12345")  # fmt: skip
    e = event(rep, eid)
    assert (e["status"], e["class"], e["priority"], e["street_code"]) == ("reported", "emergency", 1, street)
    assert e["grid_id"] and e["community_code"] and e["title"] == "火灾"
    assert e["response_due_at"] == "2026-11-25T10:05:00+08:00"
    assert e["arrival_due_at"] == "2026-11-25T10:10:00+08:00"
    assert e["handle_due_at"] == "2026-11-25T12:00:00+08:00"
    assert e["rev"] == rev(rep) and e["version"] == 1
    (log,) = log_rows(rep, eid)
    assert (log["action"], log["to_status"], log["actor"]) == ("report", "reported", "source:hotline_12345")
    with pytest.raises(ops.DuplicateEvent) as err:
        ops.create_event(
            rep, {"source": "hotline_12345", "external_id": "GD-1", "lon": lon, "lat": lat}, actor="x"
        )
    assert err.value.existing_id == eid
    # no arrival clock for categories without it
    other = new_event(rep, "FAC.STREETLIGHT")
    assert event(rep, other)["arrival_due_at"] is None


def test_unmapped_category_becomes_unclassified_keeping_the_source_code(rep):
    for code in ("XX-99.UNKNOWN", "", None):
        eid = new_event(rep, code)
        e = event(rep, eid)
        assert e["category"] == "UNCLASSIFIED" and e["handle_due_at"]
        assert orjson.loads(log_rows(rep, eid)[0]["payload"])["category_original"] == code
    assert event(rep, new_event(rep, "order.ebike"))["category"] == "ORDER.EBIKE"


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        ("abc", 32.0, "number"),
        (None, 32.0, "number"),
        (True, 32.0, "number"),
        (float("nan"), 32.0, "finite"),
        (200.0, 32.0, "out of range"),
        (120.0, 95.0, "out of range"),
        (116.4, 39.9, "outside Chongchuan"),
    ],
)
def test_bad_coordinates_are_refused_clearly(rep, lon, lat, message):
    n = rev(rep)
    with pytest.raises(ops.InvalidRecord, match=message):
        ops.create_event(rep, {"source": "manual", "lon": lon, "lat": lat}, actor="x")
    assert rev(rep) == n


def test_swapped_coordinates_get_a_hint_and_records_are_checked(rep):
    lon, lat, _ = point(rep)
    with pytest.raises(ops.InvalidRecord, match="swapped"):
        ops.create_event(rep, {"source": "manual", "lon": lat, "lat": lon}, actor="x")
    with pytest.raises(ops.InvalidRecord, match="unknown field"):
        ops.create_event(rep, {"source": "manual", "lon": lon, "lat": lat, "colour": "red"}, actor="x")
    with pytest.raises(ops.InvalidRecord, match="source"):
        ops.create_event(rep, {"lon": lon, "lat": lat}, actor="x")
    with pytest.raises(ops.InvalidRecord, match="priority"):
        ops.create_event(rep, {"source": "m", "lon": lon, "lat": lat, "priority": 9}, actor="x")


def test_gcj02_and_bd09_points_are_converted_to_wgs84(rep):
    lon, lat, _ = point(rep, 3)
    dlon, dlat = ops._gcj_delta(lon, lat)
    gcj = (lon + dlon, lat + dlat)
    eid = ops.create_event(
        rep, {"source": "grid_app", "lon": gcj[0], "lat": gcj[1], "datum": "GCJ-02"}, actor="x"
    )
    e = event(rep, eid)
    assert abs(e["lon"] - lon) < 2e-6 and abs(e["lat"] - lat) < 2e-6
    assert (e["src_datum"], e["src_lon"], e["src_lat"]) == ("GCJ-02", gcj[0], gcj[1])
    assert abs(gcj[0] - lon) > 1e-3  # the offset is real (hundreds of metres)


def test_points_on_the_river_go_to_the_nearest_grid(rep):
    import shapely

    from db.spatial import load_boundary, load_land

    water = load_boundary().difference(load_land())
    p = water.representative_point()
    eid = ops.create_event(rep, {"source": "ecology_eye", "category": "ECO.FISHING", "lon": p.x, "lat": p.y},
                           actor="x")  # fmt: skip
    e = event(rep, eid)
    assert e["grid_id"] is not None
    assert orjson.loads(log_rows(rep, eid)[0]["payload"])["grid_assignment"] == "nearest"
    assert not shapely.Point(p.x, p.y).within(load_land())


def test_routing_rules_are_editable(rep):
    rid = ops.add_routing_rule(rep, "ENV", "SANITATION", street_code=None, note="全区")
    rid2 = ops.add_routing_rule(rep, "ENV.GARBAGE", "STREET_OFFICE", street_code="320613001")
    c = rep.reader()
    rules = [r["id"] for r in ops.routing_rules_for(c, "ENV.GARBAGE", "320613001")]
    assert rules[0] == rid2 and rid in rules  # the specific category and street first
    assert rid in [r["id"] for r in ops.routing_rules_for(c, "ENV.LITTER", "320613002")]
    assert rid2 not in [r["id"] for r in ops.routing_rules_for(c, "ENV.GARBAGE", "320613002")]
    c.close()
    with pytest.raises(ops.InvalidAction):
        ops.add_routing_rule(rep, "ENV", "NOPE")
    ops.delete_routing_rule(rep, rid)
    c = rep.reader()
    assert rid not in [r["id"] for r in ops.routing_rules_for(c, "ENV.LITTER", "320613002")]
    c.close()


def test_commit_listeners_hear_topics_after_commit(rep):
    heard: list[set] = []
    seen_committed: list[bool] = []

    def listener(topics):
        heard.append(topics)
        c = rep.reader()
        seen_committed.append(
            c.execute("SELECT count(*) FROM events WHERE external_id = 'L-1'").fetchone()[0] == 1
        )
        c.close()

    rep.on_commit(listener)
    lon, lat, _ = point(rep)
    ops.create_event(rep, {"source": "manual", "external_id": "L-1", "lon": lon, "lat": lat}, actor="x")
    assert heard == [{"events", "event_log"}] and seen_committed == [True]
