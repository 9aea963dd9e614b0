"""The 关爱名单 (care list) as the console reads and maintains it (Qt-free).

- **Scope:** the district (and the drill coordinator) read every street; a street role reads and
  maintains its own street's residents only; departments and the wall never open the list.
- **Personal data:** names, phones, ID numbers and addresses are shown as they are only to the
  roles that may see personal data (:func:`app.intake_views.may_see_personal`: district and
  street); every other role gets them masked (``张**``, ``138****5678``, ``320602********123X``,
  ``…**幢``) before any widget sees them, and its search matches the masked text only.
- **Writes:** add, edit, deactivate (with a reason; never deleted, the visits stay) and record a
  care visit, each one transaction in :mod:`db.robot_store`. The drill role never writes real care
  data, the wall and departments never write, a street only inside its street; every refusal is
  appended to ``access_log``.
- **Due:** a resident is due ``visit_every_days`` (else the care rule's ``days`` threshold) after
  the last care visit (else after being listed) — the same sum the robot's care rule does, so
  an overdue row here is a care warning there, and a recorded visit clears it on the next pass.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping

from app import access, masking, timeutil
from app.intake_views import may_see_personal
from db import robot_store
from db.robot_store import CARE_FIELDS, CARE_KINDS, RobotError, clean_care_fields

KIND_ZH = {"elderly_alone": "独居老人", "disabled": "残疾人", "hardship": "困难群众", "minor": "留守未成年人",
           "other": "其他关爱对象"}  # fmt: skip
KIND_EN = {"elderly_alone": "Elderly alone", "disabled": "Disabled", "hardship": "Hardship",
           "minor": "Left-behind minor", "other": "Other"}  # fmt: skip
WRITE_ROLES = frozenset({"district", "street"})
__all__ = ["CARE_FIELDS", "CARE_KINDS", "KIND_EN", "KIND_ZH", "RobotError", "clean_care_fields", "may_open", "may_see_personal"]


def kind_label(kind: str, lang: str = "zh") -> str:
    return (KIND_EN if lang == "en" else KIND_ZH).get(kind, kind)


def may_open(session) -> bool:
    """The wall and departments never open the care list."""
    return getattr(session, "role", None) in ("district", "street", "drill")


def write_refusal(session, street_code: str | None) -> str | None:
    """Why ``session`` may not change a resident of ``street_code`` (None: it may)."""
    role = session.role
    if role == "drill":
        return "演练角色不能修改真实关爱名单 a drill session does not write real care data"
    if role not in WRITE_ROLES:
        return f"角色 {role} 不能维护关爱名单 role {role} does not maintain the care list"
    if role == "street":
        if not session.scope:
            return "街道角色未指定范围 the street role needs --scope CODE"
        if street_code != session.scope:
            return f"超出街道范围，该网格属于其他街道 street {street_code} is outside your street {session.scope}"
    return None


def may_write(session) -> bool:
    return write_refusal(session, getattr(session, "scope", None)) is None


def _enforce(replica, session, action: str, street_code: str | None) -> None:
    reason = write_refusal(session, street_code)
    if reason:
        access.record_refusal(replica, session, action, None, reason)
        raise access.AccessDenied(reason)


# -- reading -----------------------------------------------------------------------------------------
def default_interval(conn: sqlite3.Connection) -> float:
    """The care rule's ``days`` threshold (its default or the operator's setting)."""
    from app.robot.engine import thresholds

    return float(thresholds(conn)["care_gap"]["days"])


def _scope_term(session, alias: str, column: str = "street_code") -> tuple[str, list]:
    if session.role == "street":
        return f" AND {alias}.{column} = ?", [session.scope]
    if not may_open(session):
        return " AND 0", []
    return "", []


def streets(conn: sqlite3.Connection, session) -> list[tuple[str, str]]:
    """``(code, name)`` of the streets the session reads."""
    term, params = _scope_term(session, "s", "code")
    return [(r[0], r[1]) for r in conn.execute(f"SELECT code, name FROM streets s WHERE 1{term} ORDER BY code", params)]


def scope_grids(conn: sqlite3.Connection, session, street: str | None = None) -> list[dict]:
    """The grids a resident may be put in: ``{id, name, community, street_code, street}``."""
    term, params = _scope_term(session, "g")
    if street:
        term += " AND g.street_code = ?"
        params.append(street)
    rows = conn.execute(
        "SELECT g.id, g.name, c.name, g.street_code, s.name FROM grids g LEFT JOIN communities c ON c.code = "
        f"g.community_code LEFT JOIN streets s ON s.code = g.street_code WHERE 1{term} ORDER BY g.street_code, g.id",
        params,
    )
    return [{"id": r[0], "name": r[1], "community": r[2] or "", "street_code": r[3], "street": r[4] or ""} for r in rows]


def grid_label(g: Mapping) -> str:
    return f"{g['street']}{g['community']} {g['name']}（{g['id']}）"


def grid_people(conn: sqlite3.Connection, grid_id: str | None, session=None) -> list[dict]:
    """The grid's leader and volunteers first, then the street's liaisons: ``{id, name, position}``
    (names masked for a role without personal-data rights)."""
    if not grid_id:
        return []
    full = session is None or may_see_personal(session)
    rows = conn.execute(
        "SELECT p.id, p.name, coalesce(p.position, p.role) FROM people p WHERE p.grid_id = ? "
        "AND p.role IN ('grid_leader', 'grid_volunteer') ORDER BY p.role, p.id",
        (grid_id,),
    ).fetchall()
    return [{"id": r[0], "name": r[1] if full else masking.mask_name(r[1]), "position": r[2] or ""} for r in rows]


def _mask_address(text: str | None) -> str:
    """ID numbers, phones and exact house numbers masked (the street and estate stay readable)."""
    if not text:
        return ""
    t = masking.ID_NO_RE.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    t = masking.MOBILE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), t)
    return masking.HOUSE_NO_RE.sub(lambda m: "*" * len(m.group(1)), t)


_LIST_SQL = """
SELECT c.id, c.name, c.phone, c.id_no, c.kind, c.address, c.grid_id, c.street_code, c.visit_every_days,
       c.note, c.active, c.created_at, g.name, cm.name, s.name, v.last, coalesce(v.n, 0),
       julianday(:now) - julianday(coalesce(v.last, c.created_at))
FROM care_list c
LEFT JOIN (SELECT care_id, max(at) AS last, count(*) AS n FROM visits
           WHERE care_id IS NOT NULL AND kind = 'care_visit' AND at <= :now GROUP BY care_id) v ON v.care_id = c.id
LEFT JOIN grids g ON g.id = c.grid_id
LEFT JOIN communities cm ON cm.code = g.community_code
LEFT JOIN streets s ON s.code = c.street_code
WHERE 1{where} LIMIT :limit
"""


def list_residents(
    conn: sqlite3.Connection,
    session,
    *,
    street: str | None = None,
    kind: str | None = None,
    grid: str | None = None,
    search: str | None = None,
    include_inactive: bool = False,
    overdue_only: bool = False,
    now: dt.datetime | None = None,
    limit: int = 50_000,
) -> list[dict]:
    """The residents the session may read, most overdue first, each with ``last_visit`` (the last
    care visit up to ``now``), ``visits``, ``days_since`` (since the last visit, else since listed),
    ``interval``, ``overdue`` and ``days_overdue`` (:func:`due_at` gives the date); personal fields
    masked unless :func:`may_see_personal` — then the note is left out (:func:`resident_note`)."""
    now = (now or timeutil.now()).astimezone(timeutil.TZ)
    term, params = _scope_term(session, "c")
    args: dict = {"now": timeutil.to_iso(now), "limit": limit}
    where = term.replace("?", ":scope")
    if params:
        args["scope"] = params[0]
    if not may_open(session):
        where = " AND 0"
    if not include_inactive:
        where += " AND c.active = 1"
    for col, value in (("street_code", street), ("kind", kind), ("grid_id", grid)):
        if value:
            where += f" AND c.{col} = :{col}"
            args[col] = value
    full = may_see_personal(session)
    needle = (search or "").strip()
    if needle and full:
        where += " AND (instr(c.name, :needle) > 0 OR instr(coalesce(c.address, ''), :needle) > 0)"
        args["needle"] = needle
    default = default_interval(conn)
    out = []
    mask_name, mask_phone, mask_id = masking.mask_name, masking.mask_phone, masking.mask_id_no
    for r in conn.execute(_LIST_SQL.format(where=where), args):
        interval = float(r[8]) if r[8] else default
        days = None if r[17] is None else round(r[17], 6)  # julianday: float noise off the threshold
        active = bool(r[10])
        overdue = active and days is not None and days >= interval
        if overdue_only and not overdue:
            continue
        if full:
            name, phone, id_no, address, note = r[1], r[2] or "", r[3] or "", r[5] or "", r[9] or ""
        else:
            name, phone, id_no, address, note = mask_name(r[1]), mask_phone(r[2]), mask_id(r[3]), _mask_address(r[5]), ""
            if needle and needle not in name and needle not in address:
                continue
        out.append({
            "id": r[0], "name": name, "phone": phone, "id_no": id_no, "kind": r[4], "address": address,
            "grid_id": r[6], "street_code": r[7], "visit_every_days": r[8], "note": note, "active": active,
            "created_at": r[11], "grid_name": r[12] or "", "community": r[13] or "", "street": r[14] or "",
            "last_visit": r[15], "visits": r[16], "interval": interval, "days_since": days,
            "overdue": overdue, "days_overdue": (days - interval) if days is not None else None,
        })  # fmt: skip
    out.sort(key=lambda d: (not d["active"], -(d["days_overdue"] if d["days_overdue"] is not None else -1e9), d["id"]))
    return out


def due_at(row: dict) -> str | None:
    """When a listed resident is next due (ISO, +08:00): the last visit, else listing, plus the interval."""
    since = timeutil.parse_or_none(row.get("last_visit") or row.get("created_at"))
    return timeutil.to_iso(since + dt.timedelta(days=row["interval"])) if since else None


def resident_note(conn: sqlite3.Connection, session, care_id: int) -> str:
    """A resident's note (masked for a role without personal-data rights)."""
    row = conn.execute("SELECT name, note FROM care_list WHERE id = ?", (care_id,)).fetchone()
    if row is None or not row[1]:
        return ""
    return row[1] if may_see_personal(session) else masking.mask_text(row[1], {row[0]})


def visits_of(conn: sqlite3.Connection, session, care_id: int, limit: int = 50) -> list[dict]:
    """A resident's care visits, newest first: ``{at, visitor, note}`` (masked like the list)."""
    full = may_see_personal(session)
    out = []
    for at, pname, ppos, note in conn.execute(
        "SELECT v.at, p.name, p.position, v.note FROM visits v LEFT JOIN people p ON p.id = v.person_id "
        "WHERE v.care_id = ? AND v.kind = 'care_visit' ORDER BY v.at DESC, v.id DESC LIMIT ?",
        (care_id, limit),
    ):
        who = pname if full or not pname else masking.mask_name(pname)
        out.append({"at": at, "visitor": f"{ppos or ''} {who}".strip() if who else "",
                    "note": (note or "") if full else masking.mask_text(note or "")})  # fmt: skip
    return out


def _street_of(conn: sqlite3.Connection, table: str, key) -> str | None:
    sql = {"grid": "SELECT street_code FROM grids WHERE id = ?", "care": "SELECT street_code FROM care_list WHERE id = ?"}
    row = conn.execute(sql[table], (key,)).fetchone()
    if row is None:
        raise RobotError(f"没有该网格 no grid {key!r}" if table == "grid" else f"关爱名单中没有 #{key} no resident #{key}")
    return row[0]


# -- writing (role and scope enforced here, the writes in db.robot_store) -----------------------------
def add_resident(replica, session, record: Mapping) -> int:
    """Put a resident on the list (the grid must lie in the session's street)."""
    rec = clean_care_fields(record)
    conn = replica.reader()
    try:
        street = _street_of(conn, "grid", rec["grid_id"])
    finally:
        conn.close()
    _enforce(replica, session, "care_add", street)
    return robot_store.add_care_resident(replica, rec, actor=access.actor_of(session))


def update_resident(replica, session, care_id: int, changes: Mapping) -> dict:
    """Edit a resident (the old and any new grid must lie in the session's street)."""
    rec = clean_care_fields(changes, partial=True)
    conn = replica.reader()
    try:
        streets_hit = {_street_of(conn, "care", care_id)}
        if rec.get("grid_id"):
            streets_hit.add(_street_of(conn, "grid", rec["grid_id"]))
    finally:
        conn.close()
    for street in sorted(streets_hit, key=str):
        _enforce(replica, session, "care_update", street)
    return robot_store.update_care_resident(replica, care_id, rec, actor=access.actor_of(session))


def deactivate_resident(replica, session, care_id: int, reason: str) -> None:
    conn = replica.reader()
    try:
        street = _street_of(conn, "care", care_id)
    finally:
        conn.close()
    _enforce(replica, session, "care_deactivate", street)
    robot_store.deactivate_care_resident(replica, care_id, reason, actor=access.actor_of(session))


def record_visit(replica, session, care_id: int, *, at: str | dt.datetime, person_id: int | None = None,
                 visitor: str | None = None, note: str | None = None, now: dt.datetime | None = None) -> int:  # fmt: skip
    """Record a care visit; it counts for the care rule from its time on."""
    conn = replica.reader()
    try:
        street = _street_of(conn, "care", care_id)
    finally:
        conn.close()
    _enforce(replica, session, "care_visit", street)
    return robot_store.add_care_visit(replica, care_id, at=at if isinstance(at, str) else timeutil.to_iso(at),
                                      person_id=person_id, visitor=visitor, note=note,
                                      now=timeutil.to_iso(now) if now else None,
                                      actor=access.actor_of(session))  # fmt: skip
