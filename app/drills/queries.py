"""Read functions for drills (widgets and the CLI call these; no SQL in widgets)."""

from __future__ import annotations

import json
import sqlite3

from app import timeutil

STATUS_ZH = {"scheduled": "已计划", "running": "进行中", "paused": "已暂停", "stopped": "提前结束",
             "completed": "已完成", "cancelled": "已取消"}  # fmt: skip
STATUS_EN = {"scheduled": "scheduled", "running": "running", "paused": "paused", "stopped": "stopped early",
             "completed": "completed", "cancelled": "cancelled"}  # fmt: skip
LEVEL_ZH = {"district": "区级", "street": "街道级", "grid": "网格级"}
LEVEL_EN = {"district": "district", "street": "street", "grid": "grid"}
THEME_EN = {"防台防汛": "typhoon & flood", "突发事件": "emergency", "疫情防控": "epidemic control",
            "违章搭建": "illegal construction"}  # fmt: skip


def theme_label(theme: str, lang: str = "zh") -> str:
    """The theme as shown: stored themes are Chinese; English mode maps the known ones."""
    return THEME_EN.get(theme, theme) if lang == "en" else theme
PLAYER_HIDDEN = ("expected_action", "expected_stage", "allowed_min")


def can_see_scenario(session) -> bool:
    """Only the drill coordinator role sees future injects and expected actions."""
    return getattr(session, "role", None) == "drill"


def _decode(row) -> dict:
    d = dict(row)
    d["streets"] = json.loads(d.get("streets") or "[]")
    d["grids"] = json.loads(d.get("grids") or "[]")
    return d


def list_drills(conn: sqlite3.Connection, *, since: str | None = None, until: str | None = None) -> list[dict]:
    """Every drill (past, running, scheduled) in start order, optionally in a window."""
    sql = "SELECT * FROM drills"
    terms, args = [], []
    if since:
        terms.append("starts_at >= ?")
        args.append(since)
    if until:
        terms.append("starts_at < ?")
        args.append(until)
    if terms:
        sql += " WHERE " + " AND ".join(terms)
    return [_decode(r) for r in conn.execute(sql + " ORDER BY starts_at, id", args)]


def get_drill(conn: sqlite3.Connection, drill_id: int) -> dict:
    r = conn.execute("SELECT * FROM drills WHERE id = ?", (drill_id,)).fetchone()
    if r is None:
        raise LookupError(f"没有该演练 no drill #{drill_id}")
    d = _decode(r)
    names = dict(conn.execute("SELECT code, name FROM streets").fetchall())
    d["street_names"] = [names.get(s, s) for s in d["streets"]]
    if d.get("coordinator"):
        p = conn.execute("SELECT name FROM people WHERE uid = ?", (d["coordinator"],)).fetchone()
        d["coordinator_name"] = p[0] if p else d["coordinator"]
    else:
        d["coordinator_name"] = None
    return d


def active_drills(conn: sqlite3.Connection) -> list[dict]:
    """Running or paused drills (the watermark and the run bar follow these)."""
    return [_decode(r) for r in conn.execute(
        "SELECT * FROM drills WHERE status IN ('running', 'paused') ORDER BY started_at")]  # fmt: skip


def injects(conn: sqlite3.Connection, drill_id: int, *, coordinator: bool) -> list[dict]:
    """The drill's MSEL. A player sees only injects already sent, without the expected action,
    stage and time allowed; the coordinator sees everything."""
    rows = [dict(r) for r in conn.execute(
        "SELECT i.*, g.name AS grid_name FROM drill_injects i LEFT JOIN grids g ON g.id = i.grid_id "
        "WHERE i.drill_id = ? ORDER BY i.offset_s, i.seq", (drill_id,))]  # fmt: skip
    if coordinator:
        return rows
    out = []
    for r in rows:
        if r["status"] != "fired":
            continue
        for k in PLAYER_HIDDEN:
            r.pop(k, None)
        out.append(r)
    return out


def templates(conn: sqlite3.Connection) -> list[dict]:
    out = []
    for r in conn.execute("SELECT * FROM drill_templates ORDER BY id"):
        d = dict(r)
        d["scenario"] = json.loads(d["scenario"] or "[]")
        out.append(d)
    return out


def media_for_event(conn: sqlite3.Connection, event_id: int) -> list[dict]:
    """Field media of an event (and of the inject it came from)."""
    return [dict(r) for r in conn.execute(
        "SELECT m.* FROM drill_media m WHERE m.event_id = ? OR m.inject_id IN "
        "(SELECT id FROM drill_injects WHERE event_id = ?) ORDER BY m.recorded_at, m.id", (event_id, event_id))]  # fmt: skip


def findings(conn: sqlite3.Connection, drill_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT * FROM drill_findings WHERE drill_id = ? ORDER BY id", (drill_id,))]  # fmt: skip


def run_log(conn: sqlite3.Connection, drill_id: int) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT * FROM drill_log WHERE drill_id = ? ORDER BY id", (drill_id,))]


def series_of(conn: sqlite3.Connection, drill: dict, *, limit: int = 16) -> list[dict]:
    """Drills of the same theme that were run (completed or stopped), oldest first, up to this one."""
    rows = conn.execute(
        "SELECT * FROM drills WHERE theme = ? AND status IN ('completed', 'stopped') AND starts_at <= ? "
        "ORDER BY starts_at DESC LIMIT ?", (drill["theme"], drill["starts_at"], limit)).fetchall()  # fmt: skip
    return [_decode(r) for r in reversed(rows)]


def line(d: dict, *, lang: str = "zh") -> str:
    """One ``drill list`` line: id, start time, theme, level, status (code and words), title."""
    words = (STATUS_EN if lang == "en" else STATUS_ZH).get(d["status"], d["status"])
    when = d["starts_at"][:16].replace("T", " ")
    return f"{d['id']:>5}  {when}  {d['theme']}  {d['level']:<8}  {d['status']:<9} {words}  {d['title']}"


def now_iso() -> str:
    return timeutil.now_iso()
