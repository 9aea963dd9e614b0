"""Read models for the console's action panels (Qt-free): the event detail bundle, the actions
the session may take on it, small lookups (departments, streets, people, open events) and the
new-emergency check. Widgets call these and draw the result; they run no SQL of their own.

Access: :func:`load_detail` reads through ``EventService.get`` (the role/scope check, a
refusal is logged); :func:`action_states` offers only what the lifecycle allows now, each
marked allowed or refused (with the access rule's reason) for this session.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field

from app import access, clocks, timeutil
from app.event_detail import get_event, get_log
from app.lifecycle import ACTION_LABELS_ZH, NEEDS_REASON, OVERLAYS, TRANSITIONS, check_overlay
from db import event_ops
from db.schema import TERMINAL_STATUSES

# Overlays in the order the action bar shows them (after the state's transitions).
OVERLAY_ORDER = ("whistle", "close_whistle", "check_in", "supervise", "extend", "evaluate", "note")
# A pseudo-action of the bar: end an open whistle with its outcome (a 'whistle' log row, op=close).
PSEUDO_ACTIONS = {"close_whistle": "whistle"}
ACTION_LABELS = dict(ACTION_LABELS_ZH, close_whistle="结束吹哨")
WHISTLE_LEVELS = event_ops.WHISTLE_LEVELS
WHISTLE_LEVEL_LABELS = {"grid": "网格级", "street": "街道级", "district": "区级"}
TARGET_KIND_LABELS = {"department": "部门", "grid": "网格长", "street": "街道"}
MEDIA_KEYS = ("media", "photos", "images", "videos", "attachments", "files")
ROLE_LABELS = {
    "district": "区指挥中心",
    "street": "街道指挥中心",
    "department": "部门",
    "drill": "演练协调",
    "wall": "大屏",
}
# people.role of the users a console role can pick from
ROLE_PEOPLE = {"district": "operator", "street": "operator", "department": "liaison", "drill": "drill_coordinator"}


@dataclass(frozen=True)
class ActionState:
    """One button of the action bar: the lifecycle allows ``action`` now; ``allowed`` says
    whether this session may do it (``reason`` says why not)."""

    action: str
    label: str
    allowed: bool
    reason: str | None = None
    needs_reason: bool = False


@dataclass
class DetailBundle:
    """Everything the detail panel shows for one event, read at ``read_at``."""

    event: dict
    log: list[dict]
    whistles: list[dict]
    dispatches: list[dict]
    media: list[dict]
    actions: list[ActionState]
    read_at: str
    names: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return int(self.event["version"])

    def open_whistles(self) -> list[dict]:
        return [w for w in self.whistles if not w.get("closed_at")]


# -- names -----------------------------------------------------------------------------------------
def person_names(conn: sqlite3.Connection, uids) -> dict[str, str]:
    uids = sorted({u for u in uids if u})
    if not uids:
        return {}
    rows = conn.execute(
        f"SELECT uid, name FROM people WHERE uid IN ({','.join('?' * len(uids))})", uids
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def actor_text(actor: str | None, names: dict[str, str]) -> str:
    """A log actor as people read it: the person's name, a source channel, or ``role:scope``."""
    if not actor:
        return ""
    if actor in names:
        return names[actor]
    if actor.startswith("source:"):
        from app.labels import label

        return label("source", actor[7:])
    role, _, scope = actor.partition(":")
    if role in ROLE_LABELS:
        return ROLE_LABELS[role] + (f"（{scope}）" if scope else "")
    return actor


def assignee_name(conn: sqlite3.Connection, kind: str | None, code: str | None) -> str:
    if not kind or not code:
        return ""
    if kind == "department":
        r = conn.execute("SELECT name FROM departments WHERE code = ?", (code,)).fetchone()
    elif kind == "street":
        r = conn.execute("SELECT name FROM streets WHERE code = ?", (code,)).fetchone()
    else:
        r = conn.execute("SELECT name || '（' || coalesce(grid_id, '') || ' 网格长）' FROM people WHERE uid = ?",
                         (code,)).fetchone()  # fmt: skip
    return r[0] if r and r[0] else code


# -- the detail bundle -----------------------------------------------------------------------------
def load_detail(service, event_id: int, *, now: str | dt.datetime | None = None) -> DetailBundle:
    """The event (access-checked through ``service.get``: raises ``AccessDenied`` or
    ``EventNotFound``), its names, log, whistles, dispatch history, media and actions."""
    row = service.get(event_id)
    conn = service.replica.reader()
    try:
        conn.execute("BEGIN")
        try:
            event = get_event(conn, event_id) or {}
            event.update(row)  # the access-checked row (with summoned_departments) wins
            log = get_log(conn, event_id)
            whistles = event_ops.get_whistles(conn, event_id)
            uids = [e["actor"] for e in log] + [w["blown_by"] for w in whistles] + [
                w.get("closed_by") for w in whistles
            ]
            uids += [d.get("checked_in_by") for w in whistles for d in w["departments"]]
            names = person_names(conn, uids)
            names.update(departments(conn))  # department codes in payloads (whistles, check-ins)
            event["assignee_name"] = assignee_name(conn, event.get("assignee_kind"), event.get("assignee_code"))
            for e in log:  # older rows (imports, the demo) carry the target code only
                p = e.get("payload")
                if e["action"] in ("dispatch", "rework") and isinstance(p, dict) and p.get("target") \
                        and not p.get("target_name"):  # fmt: skip
                    p["target_name"] = assignee_name(conn, p.get("target_kind"), p["target"])
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()
    read_at = timeutil.to_iso(_now(now))
    for w in whistles:
        for d in w["departments"]:
            d["late_flag"] = late_flag(d, w, read_at)
    bundle = DetailBundle(
        event=event,
        log=log,
        whistles=whistles,
        dispatches=dispatch_history(log, names),
        media=media_refs(log, event),
        actions=[],
        read_at=read_at,
        names=names,
    )
    bundle.actions = action_states(service.session, event, whistles)
    return bundle


def _now(now) -> dt.datetime:
    if now is None:
        return timeutil.now()
    if isinstance(now, dt.datetime):
        return now
    return timeutil.parse(now)


def whistle_outcome(outcome: str | None) -> str:
    """A whistle's outcome for people: 'escalated to district' reads 已升级为区级哨."""
    if outcome and outcome.startswith("escalated to "):
        level = outcome[len("escalated to "):]
        return f"已升级为{WHISTLE_LEVEL_LABELS.get(level, level)}哨"
    return outcome or ""


def late_flag(dept: dict, whistle: dict, now_iso: str) -> str | None:
    """'late' (checked in after the deadline, or flagged late), 'missing' (deadline passed, not
    checked in), or None."""
    if dept.get("checked_in_at"):
        return "late" if dept.get("late") or dept["checked_in_at"] > dept["deadline_at"] else None
    if dept.get("late") or (dept.get("deadline_at") and dept["deadline_at"] < (whistle.get("closed_at") or now_iso)):
        return "missing"
    return None


def dispatch_history(log: list[dict], names: dict[str, str]) -> list[dict]:
    """Dispatch, re-dispatch (rework) and return rows of the log, oldest first."""
    out = []
    for e in log:
        if e["action"] not in ("dispatch", "rework", "return"):
            continue
        p = e.get("payload") or {}
        target = p.get("target_name") or p.get("target") or ""
        kind = TARGET_KIND_LABELS.get(p.get("target_kind") or "", "")
        out.append(
            {
                "at": e["at"],
                "action": e["action"],
                "label": ACTION_LABELS.get(e["action"], e["action"]),
                "target": f"{kind} {target}".strip() if e["action"] != "return" else "",
                "actor": e.get("actor_name") or actor_text(e["actor"], names),
                "note": e.get("note") or "",
            }
        )
    return out


def media_refs(log: list[dict], event: dict) -> list[dict]:
    """Media references (photos, videos, files) carried by the event or its log payloads:
    ``[{'name', 'ref', 'kind', 'at'}]``. The replica has no media table yet, so this reads
    the keys sources put in their payloads (``media``, ``photos``, ``attachments`` …)."""
    out: list[dict] = []
    seen: set[str] = set()

    def add(item, at, key) -> None:
        if isinstance(item, str):
            ref, name, kind = item, item.rsplit("/", 1)[-1], key
        elif isinstance(item, dict):
            ref = str(item.get("url") or item.get("path") or item.get("ref") or item.get("id") or "")
            name = str(item.get("name") or item.get("title") or ref.rsplit("/", 1)[-1])
            kind = str(item.get("kind") or item.get("type") or key)
        else:
            return
        if ref and ref not in seen:
            seen.add(ref)
            out.append({"name": name, "ref": ref, "kind": kind, "at": at})

    for key in MEDIA_KEYS:
        value = event.get(key)
        for item in value if isinstance(value, list) else ([value] if value else []):
            add(item, event.get("reported_at"), key)
    for e in log:
        p = e.get("payload")
        if not isinstance(p, dict):
            continue
        for key in MEDIA_KEYS:
            value = p.get(key)
            for item in value if isinstance(value, list) else ([value] if value else []):
                add(item, e["at"], key)
    return out


# -- actions ---------------------------------------------------------------------------------------
def _lifecycle_ok(action: str, event: dict, whistles: list[dict], session) -> str | None:
    """None if the lifecycle (and the event's whistles) allow ``action`` now, else why not."""
    status = event.get("status")
    if action in TRANSITIONS.get(status, {}):
        return None
    if action == "close_whistle":
        if status in TERMINAL_STATUSES:
            return "closed"
        return None if any(not w.get("closed_at") for w in whistles) else "no open whistle"
    if action not in OVERLAYS:
        return "not a step"
    try:
        check_overlay(status, action)
    except event_ops.IllegalTransition as exc:
        return str(exc)
    if action == "extend" and status in ("handled", "verified"):
        return "handling clock stopped"
    if action == "whistle":
        top = max((WHISTLE_LEVELS.index(w["level"]) for w in whistles if not w.get("closed_at")), default=-1)
        if top >= len(WHISTLE_LEVELS) - 1:
            return "a district whistle is open"
    if action == "check_in":
        pending = [
            d["department_code"]
            for w in whistles
            if not w.get("closed_at")
            for d in w["departments"]
            if not d.get("checked_in_at")
        ]
        if session.role == "department":
            pending = [c for c in pending if c == session.scope]
        if not pending:
            return "nobody to check in"
    return None


def action_states(session, event: dict, whistles: list[dict]) -> list[ActionState]:
    """The action bar for ``session`` on ``event``: every step the lifecycle allows now (state
    transitions in table order, then overlays), each allowed or refused by :mod:`app.access`.
    The read-only wall gets nothing."""
    if session.role == "wall":
        return []
    status = event.get("status")
    candidates = list(TRANSITIONS.get(status, {})) + list(OVERLAY_ORDER)
    out: list[ActionState] = []
    view = dict(event)
    view.setdefault("summoned_departments", sorted({d["department_code"] for w in whistles for d in w["departments"]}))
    for action in candidates:
        if _lifecycle_ok(action, event, whistles, session) is not None:
            continue
        rule = PSEUDO_ACTIONS.get(action, action)
        try:
            access.check(session, rule, view)
            allowed, reason = True, None
        except access.AccessDenied as exc:
            allowed, reason = False, exc.reason
        out.append(ActionState(action, ACTION_LABELS.get(action, action), allowed, reason,
                               action in NEEDS_REASON or action in ("merge", "note", "whistle", "close_whistle")))  # fmt: skip
    return out


def sla(event: dict, now: str | dt.datetime | None = None) -> dict:
    return clocks.sla_state(event, now)


# -- lookups ---------------------------------------------------------------------------------------
def departments(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute("SELECT code, name FROM departments ORDER BY rowid")]


def streets(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute("SELECT code, name FROM streets ORDER BY code")]


def scope_name(conn: sqlite3.Connection, role: str, scope: str | None, lang: str = "zh") -> str | None:
    """The name of a street role's street or a department role's department (the English name,
    where there is one, for an English session); None for other roles or an unknown code."""
    table = {"street": "streets", "department": "departments"}.get(role)
    if not table or not scope:
        return None
    en = lang == "en" and "name_en" in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    row = conn.execute(f"SELECT {'coalesce(name_en, name)' if en else 'name'} FROM {table} WHERE code = ?",
                       (scope,)).fetchone()  # fmt: skip
    return row[0] if row else None


def people_for_role(conn: sqlite3.Connection, role: str, scope: str | None = None) -> list[dict]:
    """The people a console of ``role`` (and ``scope``) can sign in as: district operators have no
    street, street operators that street's, liaisons their department's; the wall has nobody."""
    prole = ROLE_PEOPLE.get(role)
    if prole is None:
        return []
    sql = "SELECT id, uid, name, position FROM people WHERE role = ?"
    params: list = [prole]
    if role == "district":
        sql += " AND street_code IS NULL"
    elif role == "street":
        sql += " AND street_code = ?"
        params.append(scope)
    elif role == "department":
        sql += " AND department_code = ?"
        params.append(scope)
    sql += " ORDER BY id"
    return [dict(uid=r[1], id=r[0], name=r[2], position=r[3] or "") for r in conn.execute(sql, params)]


def open_events_brief(conn: sqlite3.Connection, session, *, limit: int = 300) -> list[dict]:
    """Open events the session may read, most urgent first (for picking handover open items)."""
    term, params = access.visible_filter(session, "e")
    rows = conn.execute(
        "SELECT e.id, e.title, e.status, e.priority, e.class, e.drill_id FROM events e "
        f"WHERE e.status NOT IN ('closed', 'rejected', 'merged') AND {term} "
        "ORDER BY e.priority, e.reported_at LIMIT :limit",
        {**params, "limit": int(limit)},
    ).fetchall()
    return [dict(id=r[0], title=r[1], status=r[2], priority=r[3], klass=r[4], drill_id=r[5]) for r in rows]


def handover_notes(conn: sqlite3.Connection, *, limit: int = 30) -> list[dict]:
    """Recent handover notes (newest first) with the author's name."""
    notes = event_ops.list_handover_notes(conn, limit=limit)
    names = person_names(conn, [n["author"] for n in notes])
    for n in notes:
        n["author_name"] = actor_text(n["author"], names)
    return notes


def max_emergency_id(conn: sqlite3.Connection, session) -> int:
    """The highest id of an emergency-class event the session may read (0 if none)."""
    term, params = access.visible_filter(session, "e")
    r = conn.execute(
        f"SELECT max(e.id) FROM events e WHERE e.class = 'emergency' AND {term}", params
    ).fetchone()
    return int(r[0] or 0)


def new_emergencies(conn: sqlite3.Connection, session, after_id: int, *, limit: int = 20) -> list[dict]:
    """Emergency-class events with ``id > after_id`` the session may read, oldest first (a
    rowid range scan: cheap whatever the history)."""
    term, params = access.visible_filter(session, "e")
    rows = conn.execute(
        "SELECT e.id, e.title, e.address, e.drill_id, e.status FROM events e "
        f"WHERE e.id > :after AND e.class = 'emergency' AND {term} ORDER BY e.id LIMIT :limit",
        {**params, "after": int(after_id), "limit": int(limit)},
    ).fetchall()
    return [dict(id=r[0], title=r[1], address=r[2], drill_id=r[3], status=r[4]) for r in rows]


def shift_of(now: dt.datetime | None = None) -> str:
    """The shift a handover note belongs to: 白班 08:00–20:00, else 夜班 (with its date)."""
    t = now or timeutil.now()
    if 8 <= t.hour < 20:
        return f"{t:%Y-%m-%d} 白班"
    day = t if t.hour >= 20 else t - dt.timedelta(days=1)
    return f"{day:%Y-%m-%d} 夜班"
