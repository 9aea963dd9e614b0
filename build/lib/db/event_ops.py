"""The event write path: every change to an event and its log row(s) in ONE transaction.

All functions take the process's :class:`~db.replica.Replica` and write through
``Replica.write`` (``BEGIN IMMEDIATE`` on the single writer connection), so listeners hear the
topics (``events``, ``event_log``, ``whistles`` …) only after COMMIT. Each write takes a change
revision (``replica.next_rev``), stamps ``events.rev``, bumps ``events.version`` by one and sets
``updated_at``, so views fetch deltas with ``WHERE rev > :last``.

Concurrency: transitions are optimistic. The caller passes the ``version`` it saw; the check
and the ``UPDATE … WHERE id = ? AND version = ?`` run in the same ``BEGIN IMMEDIATE``
transaction, so of two consoles acting on the same event exactly one succeeds and the other
gets :class:`ConflictError` ("已被 X 于 T 修改 / changed by X at T").

``guard`` (optional, on every function that touches an event) is called inside the
transaction with the event row as it is at that moment (plus ``summoned_departments``); it
raises to refuse (``app.access`` uses it, so a scope check can never race a re-dispatch).
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from app import clocks, timeutil, workcal
from app.lifecycle import (
    ACTION_LABELS_ZH,
    NEEDS_REASON,
    OVERLAYS,
    STAGE_COLUMN,
    TRANSITIONS,
    IllegalTransition,
    check_overlay,
    next_status,
)
from db import calendar
from db.datum import gcj_delta as _gcj_delta  # noqa: F401 - kept for callers of the old private name
from db.datum import to_wgs84
from db.ids import new_ulid

__all__ = [
    "IllegalTransition",
    "EventOpsError",
    "EventNotFound",
    "ConflictError",
    "InvalidAction",
    "InvalidRecord",
    "DuplicateEvent",
    "BulkResult",
    "TRANSITION_ACTIONS",
    "ALL_ACTIONS",
    "WHISTLE_LEVELS",
    "apply_action",
    "create_event",
    "locate",
    "bulk_dispatch",
    "blow_whistle",
    "check_in",
    "close_whistle",
    "get_whistles",
    "supervise",
    "add_handover_note",
    "list_handover_notes",
    "log_refusal",
    "add_routing_rule",
    "delete_routing_rule",
    "routing_rules_for",
]

TRANSITION_ACTIONS: frozenset[str] = frozenset(a for nxt in TRANSITIONS.values() for a in nxt)
ALL_ACTIONS: frozenset[str] = TRANSITION_ACTIONS | OVERLAYS
WHISTLE_LEVELS: tuple[str, ...] = ("grid", "street", "district")
TARGET_KINDS: tuple[str, ...] = ("department", "grid", "street")
SOURCES_DATUMS = ("WGS-84", "GCJ-02", "BD-09")
ARRIVAL_MINUTES = 10
BULK_CHUNK = 100  # events per bulk transaction (keeps the write lock well under 0.5 s)
# Actions that change columns other callers may be deciding on: the version check is mandatory.
VERSIONED_OVERLAYS = frozenset({"extend", "evaluate"})
RECORD_FIELDS = frozenset(
    {
        "source", "external_id", "category", "class", "priority", "title", "description",
        "reporter_name", "reporter_phone", "reporter_id_no", "lon", "lat", "datum", "src_datum",
        "address", "reported_at", "drill_id",
    }
)  # fmt: skip
DEFAULT_PRIORITY = {"emergency": 1, "assigned": 2, "ordinary": 3}

Guard = Callable[[dict], None] | None


# -- errors -------------------------------------------------------------------------------------
class EventOpsError(Exception):
    """Base class of the write path's refusals (the message is for the operator)."""


class EventNotFound(EventOpsError, LookupError):
    pass


class InvalidAction(EventOpsError, ValueError):
    """A legal action with a missing reason or a bad payload."""


class InvalidRecord(EventOpsError, ValueError):
    """A new report that cannot be stored (bad coordinates, missing source …)."""


class DuplicateEvent(InvalidRecord):
    def __init__(self, message: str, existing_id: int) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class ConflictError(EventOpsError):
    """The event changed since the caller read it (optimistic versioning)."""

    def __init__(self, event_id: int, expected: int, current: int, actor: str | None, actor_name: str | None,
                 at: str | None, action: str | None) -> None:  # fmt: skip
        self.event_id = event_id
        self.expected = expected
        self.current = current
        self.actor = actor
        self.actor_name = actor_name or actor or "?"
        self.at = at
        self.action = action
        when = timeutil.display(at) if at else "?"
        label = ACTION_LABELS_ZH.get(action or "", action or "")
        super().__init__(
            f"事件 #{event_id} 已被 {self.actor_name} 于 {when} 修改（{label}），请刷新后重试 / "
            f"event #{event_id} was changed by {self.actor_name} at {at} ({action}); reload and retry "
            f"(version {expected} → {current})"
        )


# -- small helpers ------------------------------------------------------------------------------
def _at(at: str | dt.datetime | None) -> str:
    if at is None:
        return timeutil.now_iso()
    if isinstance(at, dt.datetime):
        return timeutil.to_iso(at)
    try:
        return timeutil.to_iso(timeutil.parse(str(at)))
    except ValueError:
        raise InvalidAction(f"时间格式错误 bad timestamp {at!r} (ISO 8601 expected)") from None


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _dumps(obj) -> str | None:
    if obj is None:
        return None
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()


def _row(conn: sqlite3.Connection, event_id: int) -> dict:
    row = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
    if row is None:
        raise EventNotFound(f"没有该事件 no event #{event_id}")
    return dict(row)


def _summoned(conn: sqlite3.Connection, event_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT wd.department_code FROM whistles w JOIN whistle_departments wd ON wd.whistle_id = w.id "
        "WHERE w.event_id = ? ORDER BY 1",
        (event_id,),
    ).fetchall()
    return [r[0] for r in rows]


def _guarded(conn: sqlite3.Connection, row: dict, guard: Guard) -> None:
    if guard is not None:
        view = dict(row)
        view["summoned_departments"] = _summoned(conn, row["id"])
        guard(view)


def _last_change(
    conn: sqlite3.Connection, event_id: int
) -> tuple[str | None, str | None, str | None, str | None]:
    r = conn.execute(
        "SELECT l.actor, p.name, l.at, l.action FROM event_log l LEFT JOIN people p ON p.uid = l.actor "
        "WHERE l.event_id = ? ORDER BY l.id DESC LIMIT 1",
        (event_id,),
    ).fetchone()
    return (r[0], r[1], r[2], r[3]) if r else (None, None, None, None)


def _check_version(conn: sqlite3.Connection, row: dict, expected: int | None) -> None:
    if expected is None or int(row["version"]) == int(expected):
        return
    actor, name, at, action = _last_change(conn, row["id"])
    raise ConflictError(row["id"], int(expected), int(row["version"]), actor, name, at, action)


def _append_log(conn: sqlite3.Connection, event_id: int, at: str, actor: str, action: str,
                from_status: str | None, to_status: str | None, note: str | None, payload) -> int:  # fmt: skip
    cur = conn.execute(
        "INSERT INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_ulid(), event_id, at, actor, action, from_status, to_status, note, _dumps(payload or None)),
    )
    return int(cur.lastrowid)


def _update_event(conn: sqlite3.Connection, row: dict, changes: dict, at: str, rev: int) -> None:
    params = dict(changes)
    sets = "".join(f"{col} = :{col}, " for col in changes)
    params.update(_id=row["id"], _version=row["version"], _rev=rev, _at=at)
    cur = conn.execute(
        f"UPDATE events SET {sets}version = version + 1, rev = :_rev, updated_at = :_at "
        "WHERE id = :_id AND version = :_version",
        params,
    )
    if cur.rowcount != 1:  # cannot happen inside BEGIN IMMEDIATE, but never write a log without its change
        actor, name, when, action = _last_change(conn, row["id"])
        current = conn.execute("SELECT version FROM events WHERE id = ?", (row["id"],)).fetchone()
        raise ConflictError(
            row["id"], row["version"], current[0] if current else -1, actor, name, when, action
        )


def _is_workday(conn: sqlite3.Connection):
    return calendar.is_workday_fn(conn)


def _category(conn: sqlite3.Connection, code: str | None) -> dict | None:
    if not code:
        return None
    r = conn.execute("SELECT * FROM categories WHERE code = ?", (code,)).fetchone()
    return dict(r) if r else None


def _finish(conn: sqlite3.Connection, event_id: int, log_id: int, **extra) -> dict:
    out = _row(conn, event_id)
    out["_log_id"] = log_id
    out.update(extra)
    return out


# -- targets ------------------------------------------------------------------------------------
def _resolve_target(conn: sqlite3.Connection, kind, target) -> tuple[str, str, dict]:
    """Validate a dispatch target; returns (assignee_kind, assignee_code, extra log payload)."""
    kind = _text(kind)
    target = _text(target)
    if kind not in TARGET_KINDS or not target:
        raise InvalidAction(
            f"派遣对象无效 dispatch needs payload target_kind in {', '.join(TARGET_KINDS)} and a target "
            f"(got {kind!r}, {target!r})"
        )
    if kind == "department":
        r = conn.execute("SELECT name FROM departments WHERE code = ?", (target,)).fetchone()
        if r is None:
            raise InvalidAction(f"没有该部门 unknown department {target!r}")
        return kind, target, {"target_name": r[0]}
    if kind == "street":
        r = conn.execute("SELECT name FROM streets WHERE code = ?", (target,)).fetchone()
        if r is None:
            raise InvalidAction(f"没有该街道 unknown street {target!r}")
        return kind, target, {"target_name": r[0]}
    # grid: a grid leader's person uid, or a grid id (resolved to its leader)
    r = conn.execute(
        "SELECT uid, name, grid_id FROM people WHERE uid = ? AND role = 'grid_leader'", (target,)
    ).fetchone()
    if r is None:
        r = conn.execute(
            "SELECT uid, name, grid_id FROM people WHERE grid_id = ? AND role = 'grid_leader' ORDER BY id LIMIT 1",
            (target,),
        ).fetchone()
    if r is None:
        raise InvalidAction(f"没有该网格长 no grid leader {target!r} (give a grid leader's uid or a grid id)")
    return "grid", r["uid"], {"target_name": r["name"], "grid_id": r["grid_id"]}


# -- apply_action -------------------------------------------------------------------------------
def apply_action(
    replica,
    event_id: int,
    action: str,
    *,
    actor: str,
    expected_version: int | None,
    note: str | None = None,
    payload: Mapping | None = None,
    at: str | dt.datetime | None = None,
    guard: Guard = None,
) -> dict:
    """Apply one lifecycle transition or overlay to an event; returns the updated event row.

    ``expected_version`` is the ``events.version`` the caller saw. It is required for
    transitions and for ``extend``/``evaluate``; other overlays (note, supervise, whistle,
    check_in, imported) may pass ``None`` to skip the check (they only add to the record).

    Payloads: dispatch/rework ``{target_kind: department|grid|street, target}`` (rework
    without a target keeps the assignee); merge ``{into: event_id}``; evaluate
    ``{satisfaction: 1..5[, comment]}``; extend ``{new_due, approver}``; defer
    ``{approver?}``; whistle ``{level, departments, deadline_minutes}`` (note = reason);
    check_in ``{whistle_id, department_code}``; whistle close ``{op: 'close', whistle_id,
    outcome}``. The returned row carries ``_log_id`` (and ``_whistle_id`` for whistles).
    """
    topics = ["events", "event_log"]
    if action in ("whistle", "check_in"):
        topics.append("whistles")
    with replica.write(*topics) as conn:
        return _apply(replica, conn, event_id, action, actor=actor, expected_version=expected_version,
                      note=note, payload=payload, at=at, guard=guard)  # fmt: skip


def _apply(replica, conn, event_id, action, *, actor, expected_version, note, payload, at, guard) -> dict:  # noqa: C901
    actor = _text(actor)
    if not actor:
        raise InvalidAction("缺少操作人 actor is required")
    if action not in ALL_ACTIONS:
        raise IllegalTransition(
            f"未知操作 unknown action {action!r}; known: {', '.join(sorted(ALL_ACTIONS))}"
        )
    row = _row(conn, event_id)
    _guarded(conn, row, guard)
    if expected_version is None and (action in TRANSITION_ACTIONS or action in VERSIONED_OVERLAYS):
        raise InvalidAction(f"'{action}' needs expected_version (the events.version the operator saw)")
    _check_version(conn, row, expected_version)
    status = row["status"]
    if action in TRANSITION_ACTIONS:
        to = next_status(status, action)
    else:
        check_overlay(status, action)
        to = status
    note = _text(note)
    if action in NEEDS_REASON and not note:
        raise InvalidAction(
            f"'{action}'（{ACTION_LABELS_ZH.get(action, action)}）须填写理由 needs a reason in the note"
        )
    payload = dict(payload or {})
    at_iso = _at(at)
    rev = replica.next_rev(conn)  # rolled back with everything else if the action is refused below
    changes: dict = {}
    log: dict = {}
    extra: dict = {}

    if action in TRANSITION_ACTIONS:
        changes["status"] = to
        col = STAGE_COLUMN.get(to)
        if action == "rework":
            changes["handled_at"] = None  # the handling clock runs again
        elif col and (row[col] is None or col == "handled_at"):
            changes[col] = at_iso  # first time a stage was reached; handled_at holds the latest

    if action == "dispatch" or (action == "rework" and (payload.get("target") or payload.get("target_kind"))):
        kind, code, more = _resolve_target(conn, payload.get("target_kind"), payload.get("target"))
        changes["assignee_kind"], changes["assignee_code"] = kind, code
        log.update(target_kind=kind, target=code, **more)
        if row["assignee_code"] and (row["assignee_kind"], row["assignee_code"]) != (kind, code):
            log["previous"] = {"target_kind": row["assignee_kind"], "target": row["assignee_code"]}
    elif action == "merge":
        into = payload.get("into", payload.get("merged_into"))
        try:
            into = int(into)
        except (TypeError, ValueError):
            raise InvalidAction("合并须指定目标事件 merge needs payload {'into': event_id}") from None
        if into == row["id"]:
            raise InvalidAction("不能与自身合并 an event cannot be merged into itself")
        target = conn.execute("SELECT status FROM events WHERE id = ?", (into,)).fetchone()
        if target is None:
            raise InvalidAction(f"合并目标不存在 no event #{into} to merge into")
        if target[0] in ("merged", "rejected"):
            raise InvalidAction(
                f"不能合并到已{target[0]}的事件 event #{into} is {target[0]}; merge into a live event"
            )
        changes["merged_into"] = into
        log["into"] = into
    elif action == "defer":
        changes["deferred_at"] = at_iso
        log["handle_due_at"] = row["handle_due_at"]
        if _text(payload.get("approver")):
            log["approver"] = _text(payload.get("approver"))
    elif status == "deferred" and action in ("resume", "arrive"):
        _resume(conn, row, at_iso, changes, log)
    elif action == "evaluate":
        sat = payload.get("satisfaction")
        if isinstance(sat, bool) or not isinstance(sat, int) or not 1 <= sat <= 5:
            raise InvalidAction(f"满意度须为 1–5 的整数 satisfaction must be an integer 1–5, not {sat!r}")
        changes["satisfaction"] = sat
        log["satisfaction"] = sat
        if _text(payload.get("comment")):
            log["comment"] = _text(payload.get("comment"))
    elif action == "extend":
        _extend(row, payload, at_iso, changes, log)
    elif action == "note":
        if not note:
            raise InvalidAction("备注不能为空 a note needs text")
    elif action == "supervise":
        _supervise_payload(row, at_iso, payload, log)
    elif action == "whistle":
        if payload.get("op") == "close":
            extra["_whistle"] = _close_whistle_rows(conn, row, payload, actor, at_iso, log, rev)
        else:
            wid = _blow(conn, row, payload, actor, note, at_iso, log, rev)
            extra["_whistle_id"] = wid
    elif action == "check_in":
        extra["_check_in"] = _check_in_rows(conn, row, payload, actor, at_iso, log, rev)
    elif action == "imported":
        log.update(payload)
    elif payload:
        log.update({k: v for k, v in payload.items() if k not in ("target_kind", "target")})

    if action == "rework" and "target_kind" not in log and row["assignee_code"]:
        log.update(target_kind=row["assignee_kind"], target=row["assignee_code"])

    _update_event(conn, row, changes, at_iso, rev)
    log_id = _append_log(conn, row["id"], at_iso, actor, action, status, to, note, log)
    return _finish(conn, row["id"], log_id, **extra)


def _resume(conn, row: dict, at_iso: str, changes: dict, log: dict) -> None:
    """Leaving ``deferred``: move the handling deadline by the suspended (working) time."""
    changes["deferred_at"] = None
    start = row.get("deferred_at")
    if not start:
        return
    t0, t1 = timeutil.parse(start), timeutil.parse(at_iso)
    wall = max(0, int((t1 - t0).total_seconds()))
    changes["suspended_s"] = int(row.get("suspended_s") or 0) + wall
    log["suspended_s"] = wall
    if row["handle_due_at"]:
        cat = _category(conn, row["category"]) or {}
        due = timeutil.parse(row["handle_due_at"])
        new_due = clocks.shift_deadline(due, t0, t1, cat.get("handle_unit"), _is_workday(conn))
        changes["handle_due_at"] = timeutil.to_iso(new_due)
        log["handle_due_from"] = row["handle_due_at"]
        log["handle_due_to"] = changes["handle_due_at"]


def _extend(row: dict, payload: dict, at_iso: str, changes: dict, log: dict) -> None:
    if row["status"] in ("handled", "verified"):
        raise IllegalTransition(
            f"延期只适用于处置时限仍在计时的事件 extend applies while the handling clock runs, not in '{row['status']}'"
        )
    approver = _text(payload.get("approver"))
    if not approver:
        raise InvalidAction("延期须经审批 extend needs payload 'approver' (who approved the extension)")
    raw = payload.get("new_due")
    if raw is None:
        raise InvalidAction("延期须指定新时限 extend needs payload 'new_due' (ISO 8601)")
    new_due = _at(raw)
    old = row["handle_due_at"]
    if old and new_due <= old:
        raise InvalidAction(
            f"新时限须晚于原时限 new_due {new_due} must be later than the current deadline {old}"
        )
    if new_due <= at_iso:
        raise InvalidAction(f"新时限须晚于当前时间 new_due {new_due} must be in the future")
    changes["handle_due_at"] = new_due
    changes["extended_count"] = int(row.get("extended_count") or 0) + 1
    log.update(clock="handle", old_due=old, new_due=new_due, approver=approver)


def _supervise_payload(row: dict, at_iso: str, payload: dict, log: dict) -> None:
    sla = clocks.sla_state(row, at_iso)
    log["overdue"] = sla["overdue"]
    log["handle_due_at"] = row["handle_due_at"]
    handle = sla.get("handle")
    if handle is not None:
        log["handle_remaining_s"] = handle["remaining_s"]
    log["reminder"] = {"to_kind": row["assignee_kind"], "to": row["assignee_code"]}
    if payload.get("remind_by"):
        log["reminder"]["by"] = _at(payload["remind_by"])


# -- whistles -------------------------------------------------------------------------------------
def _blow(
    conn, row: dict, payload: dict, actor: str, reason: str | None, at_iso: str, log: dict, rev: int
) -> int:
    level = payload.get("level")
    if level not in WHISTLE_LEVELS:
        raise InvalidAction(
            f"吹哨层级无效 whistle level must be one of {', '.join(WHISTLE_LEVELS)}, not {level!r}"
        )
    if not reason:
        raise InvalidAction("吹哨须填写事由 a whistle needs a reason")
    depts = payload.get("departments") or []
    if isinstance(depts, str):
        depts = [depts]
    codes: list[str] = []
    for d in depts:
        d = _text(d)
        if d and d not in codes:
            codes.append(d)
    if not codes:
        raise InvalidAction("吹哨须召集至少一个部门 a whistle summons at least one department")
    known = {r[0] for r in conn.execute(
        f"SELECT code FROM departments WHERE code IN ({','.join('?' * len(codes))})", codes)}  # fmt: skip
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InvalidAction(f"没有该部门 unknown department(s): {', '.join(unknown)}")
    minutes = payload.get("deadline_minutes", 30)
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not 0 < minutes <= 7 * 24 * 60:
        raise InvalidAction(
            f"报到时限无效 deadline_minutes must be a positive number of minutes, not {minutes!r}"
        )
    rank = WHISTLE_LEVELS.index(level)
    open_rows = conn.execute(
        "SELECT id, level FROM whistles WHERE event_id = ? AND closed_at IS NULL ORDER BY id", (row["id"],)
    ).fetchall()
    escalated_from = None
    for w in open_rows:
        if WHISTLE_LEVELS.index(w["level"]) >= rank:
            raise InvalidAction(
                f"已有{w['level']}级哨未结束 whistle #{w['id']} at level {w['level']} is still open; "
                f"close it or escalate to a higher level"
            )
        escalated_from = w["id"]
        conn.execute(
            "UPDATE whistles SET outcome = ?, closed_at = ?, closed_by = ?, rev = ? WHERE id = ?",
            (f"escalated to {level}", at_iso, actor, rev, w["id"]),
        )
        conn.execute(
            "UPDATE whistle_departments SET late = 1 WHERE whistle_id = ? AND checked_in_at IS NULL AND deadline_at < ?",
            (w["id"], at_iso),
        )
    uid = new_ulid()
    cur = conn.execute(
        "INSERT INTO whistles (uid, event_id, level, blown_by, blown_at, reason, escalated_from, rev) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (uid, row["id"], level, actor, at_iso, reason, escalated_from, rev),
    )
    wid = int(cur.lastrowid)
    deadline = timeutil.to_iso(timeutil.parse(at_iso) + dt.timedelta(minutes=float(minutes)))
    conn.executemany(
        "INSERT INTO whistle_departments (whistle_id, department_code, deadline_at) VALUES (?, ?, ?)",
        [(wid, c, deadline) for c in codes],
    )
    log.update(
        op="escalate" if escalated_from else "blow",
        whistle_id=wid,
        whistle_uid=uid,
        level=level,
        departments=[{"code": c, "deadline_at": deadline} for c in codes],
        deadline_minutes=minutes,
    )
    if escalated_from:
        log["escalated_from"] = escalated_from
    return wid


def _whistle(conn, whistle_id) -> dict:
    try:
        whistle_id = int(whistle_id)
    except (TypeError, ValueError):
        raise InvalidAction(f"whistle id {whistle_id!r} is not a number") from None
    w = conn.execute("SELECT * FROM whistles WHERE id = ?", (whistle_id,)).fetchone()
    if w is None:
        raise InvalidAction(f"没有该哨 no whistle #{whistle_id}")
    return dict(w)


def _check_in_rows(conn, row: dict, payload: dict, actor: str, at_iso: str, log: dict, rev: int) -> dict:
    w = _whistle(conn, payload.get("whistle_id"))
    if w["event_id"] != row["id"]:
        raise InvalidAction(f"whistle #{w['id']} belongs to event #{w['event_id']}, not #{row['id']}")
    if w["closed_at"]:
        raise InvalidAction(
            f"该哨已结束 whistle #{w['id']} was closed at {w['closed_at']}; no more check-ins"
        )
    dept = _text(payload.get("department_code"))
    d = conn.execute(
        "SELECT * FROM whistle_departments WHERE whistle_id = ? AND department_code = ?", (w["id"], dept)
    ).fetchone()
    if d is None:
        raise InvalidAction(f"部门未被召集 department {dept!r} was not summoned by whistle #{w['id']}")
    if d["checked_in_at"]:
        raise InvalidAction(f"已报到 department {dept} already checked in at {d['checked_in_at']}")
    late = at_iso > d["deadline_at"]
    late_s = int((timeutil.parse(at_iso) - timeutil.parse(d["deadline_at"])).total_seconds())
    conn.execute(
        "UPDATE whistle_departments SET checked_in_at = ?, checked_in_by = ?, late = ? "
        "WHERE whistle_id = ? AND department_code = ?",
        (at_iso, actor, int(late), w["id"], dept),
    )
    conn.execute("UPDATE whistles SET rev = ? WHERE id = ?", (rev, w["id"]))
    log.update(whistle_id=w["id"], department_code=dept, deadline_at=d["deadline_at"], late=late)
    if late:
        log["late_s"] = late_s
    return {"whistle_id": w["id"], "department_code": dept, "deadline_at": d["deadline_at"],
            "checked_in_at": at_iso, "checked_in_by": actor, "late": int(late)}  # fmt: skip


def _close_whistle_rows(conn, row: dict, payload: dict, actor: str, at_iso: str, log: dict, rev: int) -> dict:
    w = _whistle(conn, payload.get("whistle_id"))
    if w["event_id"] != row["id"]:
        raise InvalidAction(f"whistle #{w['id']} belongs to event #{w['event_id']}, not #{row['id']}")
    if w["closed_at"]:
        raise InvalidAction(f"该哨已结束 whistle #{w['id']} was already closed at {w['closed_at']}")
    outcome = _text(payload.get("outcome"))
    if not outcome:
        raise InvalidAction("结束吹哨须填写结果 closing a whistle needs an outcome")
    conn.execute(
        "UPDATE whistle_departments SET late = 1 WHERE whistle_id = ? AND checked_in_at IS NULL AND deadline_at < ?",
        (w["id"], at_iso),
    )
    missing = [r[0] for r in conn.execute(
        "SELECT department_code FROM whistle_departments WHERE whistle_id = ? AND checked_in_at IS NULL ORDER BY 1",
        (w["id"],))]  # fmt: skip
    conn.execute(
        "UPDATE whistles SET outcome = ?, closed_at = ?, closed_by = ?, rev = ? WHERE id = ?",
        (outcome, at_iso, actor, rev, w["id"]),
    )
    log.update(op="close", whistle_id=w["id"], outcome=outcome, not_checked_in=missing)
    return {"whistle_id": w["id"], "outcome": outcome, "not_checked_in": missing}


def blow_whistle(
    replica,
    event_id: int,
    *,
    level: str,
    departments: Sequence[str],
    deadline_minutes: float = 30,
    actor: str,
    reason: str,
    at: str | dt.datetime | None = None,
    guard: Guard = None,
) -> int:
    """吹哨: summon ``departments`` to check in within ``deadline_minutes``; returns the whistle id.

    Blowing at a higher level than an open whistle of the same event escalates it (the lower
    one is closed with outcome 'escalated to …' and linked by ``escalated_from``); an open
    whistle at the same or a higher level is refused.
    """
    row = apply_action(
        replica, event_id, "whistle", actor=actor, expected_version=None, note=reason,
        payload={"level": level, "departments": list(departments), "deadline_minutes": deadline_minutes},
        at=at, guard=guard,
    )  # fmt: skip
    return row["_whistle_id"]


def _on_whistle(replica, whistle_id, action: str, *, actor, note, payload, at, guard) -> dict:
    with replica.write("events", "event_log", "whistles") as conn:
        event_id = _whistle(conn, whistle_id)["event_id"]
        return _apply(replica, conn, event_id, action, actor=actor, expected_version=None, note=note,
                      payload=payload, at=at, guard=guard)  # fmt: skip


def check_in(
    replica,
    whistle_id: int,
    department_code: str,
    *,
    actor: str,
    at: str | dt.datetime | None = None,
    guard: Guard = None,
) -> dict:
    """报到: a summoned department checks in; ``late`` = 1 after its deadline. Returns the
    ``whistle_departments`` row (whistle_id, department_code, deadline_at, checked_in_at,
    checked_in_by, late)."""
    row = _on_whistle(replica, whistle_id, "check_in", actor=actor, note=None, at=at, guard=guard,
                      payload={"whistle_id": whistle_id, "department_code": department_code})  # fmt: skip
    return row["_check_in"]


def close_whistle(
    replica,
    whistle_id: int,
    *,
    actor: str,
    outcome: str,
    at: str | dt.datetime | None = None,
    guard: Guard = None,
) -> dict:
    """End a whistle with its outcome; departments that never checked in and whose deadline has
    passed are flagged late. Logged as a ``whistle`` row with ``payload.op = 'close'``."""
    row = _on_whistle(replica, whistle_id, "whistle", actor=actor, note=outcome, at=at, guard=guard,
                      payload={"op": "close", "whistle_id": whistle_id, "outcome": outcome})  # fmt: skip
    return row["_whistle"]


def get_whistles(conn: sqlite3.Connection, event_id: int) -> list[dict]:
    """The event's whistles, oldest first, each with its ``departments`` (check-in rows)."""
    out = []
    for w in conn.execute("SELECT * FROM whistles WHERE event_id = ? ORDER BY id", (event_id,)).fetchall():
        d = dict(w)
        d["departments"] = [
            dict(r)
            for r in conn.execute(
                "SELECT wd.*, dp.name AS department_name FROM whistle_departments wd "
                "LEFT JOIN departments dp ON dp.code = wd.department_code WHERE wd.whistle_id = ? "
                "ORDER BY wd.department_code",
                (w["id"],),
            )
        ]
        out.append(d)
    return out


# -- supervise / handover -----------------------------------------------------------------------
def supervise(
    replica,
    event_id: int,
    *,
    actor: str,
    note: str | None = None,
    remind_by: str | dt.datetime | None = None,
    at: str | dt.datetime | None = None,
    guard: Guard = None,
) -> int:
    """督办: a reminder record to the current assignee, with the clocks that are overdue.
    Returns the ``event_log`` id; the ``supervisions`` view lists every reminder."""
    payload = {"remind_by": remind_by} if remind_by else None
    row = apply_action(
        replica, event_id, "supervise", actor=actor, expected_version=None,
        note=note or "督办：请加快办理", payload=payload, at=at, guard=guard,
    )  # fmt: skip
    return row["_log_id"]


def add_handover_note(
    replica,
    *,
    author: str,
    shift: str,
    text: str,
    open_items: Iterable = (),
    at: str | dt.datetime | None = None,
) -> int:
    """交接班: an append-only note for the next shift; ``open_items`` are event ids or
    ``{'event_id': id, 'note': text}`` dicts (ids must exist). Returns the note id."""
    author, shift, text = _text(author), _text(shift), _text(text)
    if not author or not shift or not text:
        raise InvalidAction("交接班记录须有值班人、班次和内容 a handover note needs author, shift and text")
    items: list[dict] = []
    for item in open_items:
        d = dict(item) if isinstance(item, Mapping) else {"event_id": item}
        try:
            d["event_id"] = int(d["event_id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidAction(f"open item {item!r} needs an event_id") from None
        items.append(d)
    at_iso = _at(at)
    with replica.write("handover") as conn:
        for d in items:
            if conn.execute("SELECT 1 FROM events WHERE id = ?", (d["event_id"],)).fetchone() is None:
                raise InvalidAction(f"open item: no event #{d['event_id']}")
        cur = conn.execute(
            "INSERT INTO handover_notes (uid, at, author, shift, text, open_items) VALUES (?, ?, ?, ?, ?, ?)",
            (new_ulid(), at_iso, author, shift, text, _dumps(items)),
        )
        return int(cur.lastrowid)


def list_handover_notes(conn: sqlite3.Connection, *, limit: int = 20, since: str | None = None) -> list[dict]:
    """Newest notes first, ``open_items`` decoded, each item with the event's current status."""
    sql = "SELECT * FROM handover_notes"
    params: list = []
    if since:
        sql += " WHERE at >= ?"
        params.append(since)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(int(limit))
    out = []
    for r in conn.execute(sql, params).fetchall():
        d = dict(r)
        d["open_items"] = orjson.loads(d["open_items"] or "[]")
        for item in d["open_items"]:
            s = conn.execute("SELECT status, title FROM events WHERE id = ?", (item["event_id"],)).fetchone()
            item["status"], item["title"] = (s[0], s[1]) if s else (None, None)
        out.append(d)
    return out


# -- access log -----------------------------------------------------------------------------------
def log_refusal(
    replica,
    *,
    actor: str,
    role: str,
    scope: str | None,
    action: str,
    event_id: int | None,
    reason: str,
    at: str | dt.datetime | None = None,
) -> int:
    """Append a refused action to ``access_log`` (its own small transaction)."""
    with replica.write("access_log") as conn:
        cur = conn.execute(
            "INSERT INTO access_log (uid, at, actor, role, scope, action, event_id, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (new_ulid(), _at(at), actor or "?", role, scope, action, event_id, reason),
        )
        return int(cur.lastrowid)


# -- routing rules --------------------------------------------------------------------------------
def add_routing_rule(replica, category: str, department_code: str, street_code: str | None = None,
                     note: str | None = None) -> int:  # fmt: skip
    """An editable category × area rule: events of ``category`` (or of its children, when it is a
    group code) in ``street_code`` (``None`` = any street) go to ``department_code``."""
    with replica.write("routing_rules") as conn:
        if conn.execute("SELECT 1 FROM departments WHERE code = ?", (department_code,)).fetchone() is None:
            raise InvalidAction(f"没有该部门 unknown department {department_code!r}")
        if conn.execute("SELECT 1 FROM categories WHERE code = ?", (category,)).fetchone() is None:
            raise InvalidAction(f"没有该类别 unknown category {category!r}")
        if (
            street_code
            and conn.execute("SELECT 1 FROM streets WHERE code = ?", (street_code,)).fetchone() is None
        ):
            raise InvalidAction(f"没有该街道 unknown street {street_code!r}")
        cur = conn.execute(
            "INSERT INTO routing_rules (category, street_code, department_code, note) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET note = excluded.note RETURNING id",
            (category, street_code, department_code, note),
        )
        return int(cur.fetchone()[0])


def delete_routing_rule(replica, rule_id: int) -> None:
    with replica.write("routing_rules") as conn:
        conn.execute("DELETE FROM routing_rules WHERE id = ?", (rule_id,))


def routing_rules_for(conn: sqlite3.Connection, category: str, street_code: str | None) -> list[dict]:
    """Rules matching an event: its category or the category's parent, its street or any street;
    most specific first (category before parent, street before any)."""
    parent = conn.execute("SELECT parent FROM categories WHERE code = ?", (category,)).fetchone()
    parent = parent[0] if parent else None
    rows = conn.execute(
        """
        SELECT r.*, d.name AS department_name FROM routing_rules r
        LEFT JOIN departments d ON d.code = r.department_code
        WHERE r.category IN (?, ?) AND (r.street_code IS NULL OR r.street_code = ?)
        ORDER BY (r.category = ?) DESC, (r.street_code IS NOT NULL) DESC, r.id
        """,
        (category, parent or category, street_code, category),
    ).fetchall()
    return [dict(r) for r in rows]


# -- bulk dispatch --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BulkResult:
    event_id: int
    ok: bool
    error: str | None = None
    event: dict | None = None
    conflict: bool = False
    refused: bool = False  # refused by the guard (access scope)


def bulk_dispatch(
    replica,
    event_ids: Sequence[int],
    target: Mapping | tuple[str, str],
    *,
    actor: str,
    versions: Mapping[int, int],
    note: str | None = None,
    at: str | dt.datetime | None = None,
    guard: Guard = None,
) -> list[BulkResult]:
    """Dispatch many events to one target. Each event succeeds or fails on its own (a savepoint
    each) inside transactions of at most ``BULK_CHUNK`` events; results come in input order."""
    if isinstance(target, Mapping):
        payload = {"target_kind": target.get("target_kind"), "target": target.get("target")}
    else:
        payload = {"target_kind": target[0], "target": target[1]}
    results: list[BulkResult] = []
    ids = list(event_ids)
    for lo in range(0, len(ids), BULK_CHUNK):
        with replica.write("events", "event_log") as conn:
            for eid in ids[lo : lo + BULK_CHUNK]:
                conn.execute("SAVEPOINT bulk_one")
                try:
                    if eid not in versions:
                        raise InvalidAction(f"no expected version given for event #{eid}")
                    row = _apply(replica, conn, eid, "dispatch", actor=actor, expected_version=versions[eid],
                                 note=note, payload=payload, at=at, guard=guard)  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - each failure is reported per event
                    conn.execute("ROLLBACK TO bulk_one")
                    conn.execute("RELEASE bulk_one")
                    results.append(BulkResult(eid, False, str(exc), None, isinstance(exc, ConflictError),
                                              isinstance(exc, PermissionError)))  # fmt: skip
                    if not isinstance(exc, EventOpsError | IllegalTransition | PermissionError):
                        raise
                else:
                    conn.execute("RELEASE bulk_one")
                    results.append(BulkResult(eid, True, None, row))
    return results


# -- create_event -------------------------------------------------------------------------------
@dataclass
class _GridLookup:
    index: object
    grid_ids: list
    polygons: list
    community: dict
    street: dict


_index_lock = threading.Lock()
_by_signature: dict[tuple, str] = {}
_by_digest: dict[str, _GridLookup] = {}


def _grid_lookup(replica) -> _GridLookup:
    """The replica's grids as a :class:`db.spatial.GridIndex`, built once per process per grid set
    (replicas holding the same grids, e.g. copies of one demo, share it)."""
    import hashlib

    import shapely

    from db.spatial import GridIndex

    conn = replica.reader()
    try:
        sig = tuple(conn.execute("SELECT count(*), sum(length(geometry)), max(rowid) FROM grids").fetchone())
        digest = _by_signature.get(sig)
        if digest is not None and digest in _by_digest:
            return _by_digest[digest]
        rows = conn.execute(
            "SELECT id, community_code, street_code, geometry FROM grids ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    h = hashlib.sha1()
    for r in rows:
        h.update("\x1f".join(str(x) for x in r).encode())
    digest = h.hexdigest()
    with _index_lock:
        if digest not in _by_digest:
            ids = [r[0] for r in rows]
            polys = [shapely.from_geojson(r[3]) for r in rows]
            _by_digest[digest] = _GridLookup(
                GridIndex(ids, polys), ids, polys, {r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows}
            )
        _by_signature[sig] = digest
        return _by_digest[digest]


def _number(value, name: str) -> float:
    if isinstance(value, bool) or value is None:
        raise InvalidRecord(f"坐标缺失或无效 {name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidRecord(f"坐标无效 {name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise InvalidRecord(f"坐标无效 {name} must be finite, got {value!r}")
    return x


def locate(replica, lon, lat) -> dict:
    """Grid, community and street of a WGS-84 point inside the district.

    Raises :class:`InvalidRecord` for non-numeric, out-of-range or out-of-district points. A
    point inside the district boundary but in no grid (e.g. on the Yangtze) goes to the nearest
    grid (``nearest`` = True)."""
    import shapely

    from db.spatial import load_boundary

    x, y = _number(lon, "lon"), _number(lat, "lat")
    boundary = load_boundary()
    swapped = "; lon and lat look swapped" if boundary.covers(shapely.Point(y, x)) else ""
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise InvalidRecord(
            f"坐标超出范围 lon {x} / lat {y} out of range (lon −180…180, lat −90…90){swapped}"
        )
    lookup = _grid_lookup(replica)
    idx = int(lookup.index.assign([x], [y])[0]) if lookup.grid_ids else -1  # type: ignore[attr-defined]
    nearest = False
    if idx < 0:
        if not boundary.covers(shapely.Point(x, y)):
            raise InvalidRecord(
                f"位置不在崇川区内 point ({x:.6f}, {y:.6f}) is outside Chongchuan District{swapped}"
            )
        if lookup.grid_ids:
            d = shapely.distance(shapely.Point(x, y), lookup.polygons)  # type: ignore[arg-type]
            idx = int(d.argmin())
            nearest = True
    if idx < 0:
        return {
            "lon": x,
            "lat": y,
            "grid_id": None,
            "community_code": None,
            "street_code": None,
            "nearest": False,
        }
    gid = lookup.grid_ids[idx]
    return {"lon": x, "lat": y, "grid_id": gid, "community_code": lookup.community[gid],
            "street_code": lookup.street[gid], "nearest": nearest}  # fmt: skip


def create_event(
    replica,
    record: Mapping,
    *,
    actor: str,
    at: str | dt.datetime | None = None,
    guard: Guard = None,
) -> int:
    """A new event from a report; returns its id. Status ``reported``, one ``report`` log row.

    ``record`` keys: ``source`` (required), ``external_id``, ``category`` (unknown codes become
    ``UNCLASSIFIED``; the original is kept in the log payload), ``class``, ``priority``,
    ``title``, ``description``, ``reporter_name``/``_phone``/``_id_no``, ``lon``/``lat``
    (required) with ``datum`` (WGS-84 default, GCJ-02 or BD-09: converted to WGS-84),
    ``address``, ``reported_at`` (default ``at`` or now), ``drill_id``. Due times come from the
    catalogue and the replica's working calendar.
    """
    unknown = set(record) - RECORD_FIELDS
    if unknown:
        raise InvalidRecord(
            f"未知字段 unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(RECORD_FIELDS))}"
        )
    actor = _text(actor)
    if not actor:
        raise InvalidRecord("缺少操作人 actor is required")
    source = _text(record.get("source"))
    if not source:
        raise InvalidRecord("缺少来源 source is required (grid_app, hotline_12345, citymgmt, …)")
    datum = _text(record.get("datum") or record.get("src_datum")) or "WGS-84"
    datum = {"WGS84": "WGS-84", "GCJ02": "GCJ-02", "BD09": "BD-09"}.get(
        datum.upper().replace("-", ""), datum.upper()
    )
    if datum not in SOURCES_DATUMS:
        raise InvalidRecord(
            f"坐标系无效 datum must be one of {', '.join(SOURCES_DATUMS)}, not {record.get('datum')!r}"
        )
    src_lon, src_lat = _number(record.get("lon"), "lon"), _number(record.get("lat"), "lat")
    lon, lat = to_wgs84(src_lon, src_lat, datum)
    place = locate(replica, round(lon, 6), round(lat, 6))
    try:
        reported_at = _at(record.get("reported_at") or at)
    except InvalidAction as exc:
        raise InvalidRecord(str(exc)) from None
    external_id = _text(record.get("external_id"))

    with replica.write("events", "event_log") as conn:
        log: dict = {"source": source, "external_id": external_id, "datum": datum}
        code = _text(record.get("category"))
        cat = _category(conn, code)
        if cat is None and code:
            cat = _category(conn, code.upper())
        if cat is None:
            log["category_original"] = record.get("category")
            cat = _category(conn, "UNCLASSIFIED") or {
                "code": "UNCLASSIFIED", "class": "ordinary", "name_zh": "待分类", "response_limit_min": 30,
                "handle_limit": 1, "handle_unit": "working_days", "arrival_clock": 0,
            }  # fmt: skip
        klass = _text(record.get("class")) or cat["class"]
        if klass not in DEFAULT_PRIORITY:
            raise InvalidRecord(f"类别无效 class must be ordinary, emergency or assigned, not {klass!r}")
        priority = record.get("priority", DEFAULT_PRIORITY[klass])
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 4:
            raise InvalidRecord(f"优先级无效 priority must be an integer 1–4, not {priority!r}")
        drill_id = record.get("drill_id")
        if (
            drill_id is not None
            and conn.execute("SELECT 1 FROM drills WHERE id = ?", (drill_id,)).fetchone() is None
        ):
            raise InvalidRecord(f"没有该演练 no drill #{drill_id}")
        if external_id:
            dup = conn.execute(
                "SELECT id FROM events WHERE source = ? AND external_id = ?", (source, external_id)
            ).fetchone()
            if dup:
                raise DuplicateEvent(f"重复上报 {source}:{external_id} is already event #{dup[0]}", dup[0])
        t0 = timeutil.parse(reported_at)
        resp = cat.get("response_limit_min")
        response_due = timeutil.to_iso(t0 + dt.timedelta(minutes=resp)) if resp else None
        arrival_due = (
            timeutil.to_iso(t0 + dt.timedelta(minutes=ARRIVAL_MINUTES)) if cat.get("arrival_clock") else None
        )
        handle = workcal.due_at(t0, cat.get("handle_limit"), cat.get("handle_unit"), _is_workday(conn))
        handle_due = timeutil.to_iso(handle) if handle else None
        street_name = None
        if place["street_code"]:
            r = conn.execute("SELECT name FROM streets WHERE code = ?", (place["street_code"],)).fetchone()
            street_name = r[0] if r else None
        address = _text(record.get("address")) or (f"崇川区{street_name or ''}（{place['grid_id']} 网格附近）"
                                                      if place["grid_id"] else "崇川区")  # fmt: skip
        if place["nearest"]:
            log["grid_assignment"] = "nearest"
        new = {
            "uid": new_ulid(), "source": source, "external_id": external_id, "category": cat["code"],
            "class": klass, "priority": priority,
            "title": _text(record.get("title")) or cat.get("name_zh") or cat["code"],
            "description": _text(record.get("description")),
            "reporter_name": _text(record.get("reporter_name")), "reporter_phone": _text(record.get("reporter_phone")),
            "reporter_id_no": _text(record.get("reporter_id_no")),
            "lon": round(lon, 6), "lat": round(lat, 6), "src_datum": datum,
            "src_lon": src_lon if datum != "WGS-84" else None, "src_lat": src_lat if datum != "WGS-84" else None,
            "address": address, "grid_id": place["grid_id"], "community_code": place["community_code"],
            "street_code": place["street_code"], "status": "reported", "reported_at": reported_at,
            "response_due_at": response_due, "arrival_due_at": arrival_due, "handle_due_at": handle_due,
            "drill_id": drill_id, "version": 1, "updated_at": reported_at,
        }  # fmt: skip
        if guard is not None:
            guard(dict(new, id=None, assignee_kind=None, assignee_code=None, summoned_departments=[]))
        new["rev"] = replica.next_rev(conn)
        cols = list(new)
        cur = conn.execute(
            f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})", new
        )
        event_id = int(cur.lastrowid)
        _append_log(conn, event_id, reported_at, actor, "report", None, "reported", None, log)
        return event_id


def status_replay(conn: sqlite3.Connection, event_id: int) -> str:
    """The status the event's log implies (report → transitions; overlays leave it alone)."""
    status = None
    for action, to in conn.execute(
        "SELECT action, to_status FROM event_log WHERE event_id = ? ORDER BY id", (event_id,)
    ):
        if action == "report":
            status = "reported"
        elif action in TRANSITION_ACTIONS:
            status = next_status(status, action)
            if status != to:
                raise IllegalTransition(f"log row says {to}, the state machine says {status}")
    if status is None:
        raise IllegalTransition(f"event #{event_id} has no report row")
    return status
