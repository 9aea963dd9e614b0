"""What the 智能预警 panel and ``onemap robot`` read, and the two decisions (Qt-free).

Warnings are listed most severe first (Ⅰ → Ⅳ), newest first within a level. A street session
sees its own street's warnings only; everything shown is masked already (the rules write masked
texts; care-list names below are masked for every role but the district).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import orjson

from app import access
from app.intake_views import mask_name, may_see_personal
from app.robot.base import SEVERITY_EN, SEVERITY_ZH
from app.robot.engine import RULES, RULES_BY_NAME, rule
from db import robot_store

STATUS_ZH = {"open": "待研判", "accepted": "已采纳", "dismissed": "已驳回", "cleared": "已自动解除"}


def warning_dict(row: sqlite3.Row | dict, *, new: bool | None = None) -> dict:
    """A warning as the CLI's JSON shows it."""
    d = dict(row)
    ev = orjson.loads(d["evidence"]) if isinstance(d["evidence"], str) else d["evidence"]
    out = {
        "id": d["id"],
        "rule": d["rule"],
        "rule_zh": RULES_BY_NAME[d["rule"]].title_zh if d["rule"] in RULES_BY_NAME else d["rule"],
        "rule_en": (RULES_BY_NAME[d["rule"]].title_en or d["rule"]) if d["rule"] in RULES_BY_NAME else d["rule"],
        "severity": d["severity"],
        "severity_zh": SEVERITY_ZH.get(d["severity"], str(d["severity"])),
        "severity_en": SEVERITY_EN.get(d["severity"], str(d["severity"])),
        "scope": {"grid": d["grid_id"], "street": d["street_code"]},
        "location": None if d["lon"] is None else {"lon": d["lon"], "lat": d["lat"]},
        "evidence": {k: list(ev.get(k) or []) for k in robot_store.EVIDENCE_KEYS},
        "explanation_zh": d["explanation_zh"],
        "suggested_action": d["suggested_action"],
        "status": d["status"],
        "created_at": d["created_at"],
        "updated_at": d["updated_at"],
        "event_id": d["event_id"],
    }
    if d.get("dismiss_reason"):
        out["dismiss_reason"] = d["dismiss_reason"]
    if new is not None:
        out["new"] = new
    return out


def _scope_sql(session) -> tuple[str, list]:
    if session is not None and session.role == "street" and session.scope:
        return " AND street_code = ?", [session.scope]
    if session is not None and session.role == "department":
        return " AND 0", []
    return "", []


def list_warnings(conn: sqlite3.Connection, *, status: str | None = "open", session=None,
                  limit: int = 5000) -> list[dict]:  # fmt: skip
    """Warnings (``status`` None: all), most severe first."""
    sql = "SELECT * FROM robot_warnings WHERE 1"
    params: list = []
    if status:
        sql += " AND status = ?"
        params.append(status)
    extra, p2 = _scope_sql(session)
    sql += extra + " ORDER BY severity, updated_at DESC, id DESC LIMIT ?"
    return [warning_dict(r) for r in conn.execute(sql, [*params, *p2, limit])]


@dataclass
class RulePrecision:
    rule: str
    title_zh: str
    accepted: int
    dismissed: int
    open: int
    title_en: str = ""

    @property
    def decided(self) -> int:
        return self.accepted + self.dismissed

    @property
    def precision(self) -> float | None:
        """accepted ÷ decided (None before any decision)."""
        return self.accepted / self.decided if self.decided else None


def precision_by_rule(conn: sqlite3.Connection) -> list[RulePrecision]:
    counts = {(r[0], r[1]): r[2] for r in conn.execute(
        "SELECT rule, status, count(*) FROM robot_warnings GROUP BY rule, status")}  # fmt: skip
    return [
        RulePrecision(r.name, r.title_zh, counts.get((r.name, "accepted"), 0), counts.get((r.name, "dismissed"), 0),
                      counts.get((r.name, "open"), 0), r.title_en or r.name)  # fmt: skip
        for r in RULES
    ]


def evidence_details(conn: sqlite3.Connection, warning: dict, session=None) -> dict:
    """Evidence resolved for display and the map: events, people (masked), devices, with points."""
    ev = warning["evidence"]
    out: dict = {"events": [], "people": [], "devices": []}
    ids = [int(e) for e in ev["events"]][:2000]
    if ids:
        marks = ",".join("?" * len(ids))
        for r in conn.execute(
            f"SELECT id, external_id, category, title, status, reported_at, lon, lat, address FROM events "
            f"WHERE id IN ({marks}) ORDER BY reported_at", ids):  # fmt: skip
            out["events"].append(dict(r))
    # the same rule as the care list and the intake screens: district and street roles (a street
    # centre visits these residents) see names; every other role sees them masked
    full = session is not None and may_see_personal(session)
    for p in ev["people"]:
        kind, _, ident = str(p).partition(":")
        if kind == "care" and ident.isdigit():
            r = conn.execute("SELECT id, name, kind, lon, lat, grid_id FROM care_list WHERE id = ?", (int(ident),)).fetchone()
            if r:
                out["people"].append({"ref": p, "label": (r["name"] if full else mask_name(r["name"])) + "（关爱对象）",
                                      "lon": r["lon"], "lat": r["lat"]})  # fmt: skip
                continue
        if kind == "person" and ident.isdigit():
            r = conn.execute("SELECT id, name, position, lon, lat FROM people WHERE id = ?", (int(ident),)).fetchone()
            if r:
                out["people"].append({"ref": p, "label": f"{r['position'] or ''} {mask_name(r['name'])}",
                                      "lon": r["lon"], "lat": r["lat"]})  # fmt: skip
                continue
        out["people"].append({"ref": p, "label": ident if kind == "caller" else p, "lon": None, "lat": None})
    devs = [str(d) for d in ev["devices"]][:2000]
    if devs:
        marks = ",".join("?" * len(devs))
        for r in conn.execute(f"SELECT uid, kind, name, lon, lat, status FROM devices WHERE uid IN ({marks})", devs):
            out["devices"].append(dict(r))
    return out


def accept(replica, session, warning_id: int) -> int:
    """Accept: the warning becomes an event of its rule's category (role and scope enforced)."""
    conn = replica.reader()
    try:
        w = robot_store.get_warning(conn, warning_id)
    finally:
        conn.close()
    r = rule(w["rule"])
    actor = access.actor_of(session)

    def guard(record: dict) -> None:
        access.check(session, access.CREATE, record)

    access.enforce(replica, session, access.CREATE, {"id": None, "street_code": w["street_code"], "drill_id": None})
    title = f"【智能预警】{r.title_zh}：{w['explanation_zh'][:60]}"
    return robot_store.accept_warning(replica, warning_id, category=r.accept_category, title=title, actor=actor,
                                      guard=guard)  # fmt: skip


def dismiss(replica, session, warning_id: int, reason: str) -> None:
    """Dismiss with a reason (kept as feedback for the rule's precision)."""
    conn = replica.reader()
    try:
        w = robot_store.get_warning(conn, warning_id)
    finally:
        conn.close()
    access.enforce(replica, session, "dismiss_warning", {"id": None, "street_code": w["street_code"], "drill_id": None})
    robot_store.dismiss_warning(replica, warning_id, reason, actor=access.actor_of(session))
