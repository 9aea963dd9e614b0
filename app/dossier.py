"""One archive per whistle (一哨一档): an event's complete dossier as one self-contained HTML file.

Qt-free. :func:`build_dossier` reads the event, its whole ``event_log``, the clocks against their
deadlines, the whistle / department check-in records (when the replica has those tables), the
evaluation, and draws a map snapshot from the replica's VECTOR data (grid polygons, the street
outline, the Yangtze water) as inline SVG, so it works headless and offline with no tiles.

The HTML has inline CSS and SVG only: no script, no external URL. Every text from the replica
goes through Jinja2 autoescaping (citizen text is never trusted). ``widgets/pdf.py`` prints it
to PDF; the same template pipeline is meant for later reports.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
import orjson
import shapely
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPolygon,
    Polygon,
    box,
    shape,
)

from app import timeutil
from app.event_detail import get_event, get_log
from app.labels import label
from app.lifecycle import TERMINAL

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "resources" / "templates"
TEMPLATE_NAME = "dossier.html.j2"

#: Half-size of the map snapshot around the event point (metres): neighbour grids within ~1.5 km.
MAP_RADIUS_M = 1500.0
#: Map drawing size in SVG user units (square).
MAP_SIZE = 600.0
ARRIVAL_LIMIT_MIN = 10
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0

_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$", re.IGNORECASE)
_PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_ID_NO_RE = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")

RESPONSE_ACTIONS = ("accept", "reject", "merge")
LEVELS = {"grid": ("网格级", "Grid"), "street": ("街道级", "Street"), "district": ("区级", "District")}
TARGET_KINDS = {
    "grid": ("网格长", "grid leader"),
    "person": ("人员", "person"),
    "department": ("部门", "department"),
    "street": ("街道", "street"),
}

# UI text of the document, per language.
TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "doc_title": "一哨一档 · 事件档案",
        "doc_title_en": "One archive per whistle · Event dossier",
        "subtitle": "网格化社会治理 · 一张图指挥台",
        "event_id": "事件编号",
        "uid": "唯一标识",
        "source_ref": "来源编号",
        "demo": "演示数据",
        "status": "当前状态",
        "priority": "等级",
        "reported_at": "上报时间",
        "finished_at": "办结时间",
        "total": "全程用时",
        "log_count": "流转记录",
        "entries": "条",
        "s_facts": "基本信息",
        "s_clocks": "时限考核",
        "s_map": "位置示意图",
        "s_timeline": "处置全过程",
        "s_whistle": "吹哨报到",
        "s_eval": "综合评价",
        "category": "事件类别",
        "class": "事件性质",
        "source": "来源渠道",
        "street": "所属街道",
        "community": "所属社区",
        "grid": "所属网格",
        "address": "事发地址",
        "coords": "坐标（WGS-84）",
        "reporter": "反映人",
        "phone": "联系电话",
        "assignee": "承办对象",
        "title": "事件标题",
        "description": "事件描述",
        "clock": "考核项",
        "start": "起算时间",
        "due": "时限",
        "actual": "实际时间",
        "elapsed": "用时",
        "verdict": "结论",
        "n": "序号",
        "time": "时间",
        "step": "环节",
        "actor": "操作人",
        "transition": "状态变化",
        "note": "说明",
        "payload": "附加信息",
        "w_at": "吹哨时间",
        "w_by": "吹哨人",
        "w_level": "层级",
        "w_reason": "事由",
        "w_outcome": "结果",
        "w_dept": "报到部门",
        "w_due": "报到时限",
        "w_checked": "实际报到",
        "w_result": "报到情况",
        "no_whistle": "本事件未吹哨。",
        "no_eval": "本事件暂无综合评价。",
        "satisfaction": "满意度",
        "evaluated_at": "评价时间",
        "evaluated_by": "评价人",
        "no_map": "本事件无坐标，无法绘制位置示意图。",
        "legend_event": "事发位置",
        "legend_grid": "所属网格",
        "legend_neigh": "周边网格（约1.5公里）",
        "legend_street": "所属街道边界",
        "legend_water": "水域",
        "legend_ring": "1.5公里范围",
        "map_note": "示意图由矢量网格数据绘制，非影像底图；等距圆柱投影（按纬度余弦缩放），上方为正北。",
        "generated": "生成时间",
        "footer": "本档案由一张图指挥台自动生成",
        "footer_demo": "本档案基于演示数据（合成，非真实业务数据）生成，仅供演示。",
        "masked": "个人信息已脱敏",
        "end": "（本档案完）",
    },
    "en": {
        "doc_title": "One archive per whistle · Event dossier",
        "doc_title_en": "一哨一档 · 事件档案",
        "subtitle": "Grid governance · OneMap Console",
        "event_id": "Event",
        "uid": "UID",
        "source_ref": "Source ref",
        "demo": "DEMO DATA",
        "status": "Status",
        "priority": "Level",
        "reported_at": "Reported",
        "finished_at": "Finished",
        "total": "Total time",
        "log_count": "Log entries",
        "entries": "",
        "s_facts": "Facts",
        "s_clocks": "Times against deadlines",
        "s_map": "Location",
        "s_timeline": "Full timeline",
        "s_whistle": "Whistle and department check-in",
        "s_eval": "Evaluation",
        "category": "Category",
        "class": "Class",
        "source": "Source",
        "street": "Street",
        "community": "Community",
        "grid": "Grid",
        "address": "Address",
        "coords": "Coordinates (WGS-84)",
        "reporter": "Reporter",
        "phone": "Phone",
        "assignee": "Assignee",
        "title": "Title",
        "description": "Description",
        "clock": "Clock",
        "start": "Starts",
        "due": "Deadline",
        "actual": "Actual",
        "elapsed": "Elapsed",
        "verdict": "Result",
        "n": "#",
        "time": "Time",
        "step": "Step",
        "actor": "Actor",
        "transition": "Status",
        "note": "Note",
        "payload": "Details",
        "w_at": "Blown at",
        "w_by": "Blown by",
        "w_level": "Level",
        "w_reason": "Reason",
        "w_outcome": "Outcome",
        "w_dept": "Department",
        "w_due": "Check-in due",
        "w_checked": "Checked in",
        "w_result": "Check-in",
        "no_whistle": "No whistle was blown for this event.",
        "no_eval": "No evaluation yet.",
        "satisfaction": "Satisfaction",
        "evaluated_at": "Evaluated at",
        "evaluated_by": "By",
        "no_map": "The event has no coordinates; no map can be drawn.",
        "legend_event": "Event location",
        "legend_grid": "Event's grid",
        "legend_neigh": "Neighbour grids (~1.5 km)",
        "legend_street": "Street boundary",
        "legend_water": "Water",
        "legend_ring": "1.5 km radius",
        "map_note": "Drawn from vector grid data, not imagery; equirectangular projection scaled by cos(latitude); north up.",
        "generated": "Generated",
        "footer": "Generated automatically by OneMap Console (一张图指挥台)",
        "footer_demo": "Built from synthetic demo data, not real cases.",
        "masked": "personal data masked",
        "end": "(end of dossier)",
    },
}


@dataclass(frozen=True)
class Dossier:
    event_id: int
    title: str
    html: str


# -- small helpers ---------------------------------------------------------------------------------


def _zh(lang: str) -> bool:
    return lang != "en"


def _ts(text: str | None) -> str:
    """Full display form of a stored timestamp, ``YYYY-MM-DD HH:MM:SS``."""
    return text[:19].replace("T", " ") if text else ""


_parse = timeutil.parse_or_none


def format_duration(seconds: float, lang: str = "zh") -> str:
    """``1天2小时3分`` / ``1d 2h 3m``; below a minute in seconds."""
    seconds = int(round(abs(seconds)))
    if seconds < 60:
        return f"{seconds}秒" if _zh(lang) else f"{seconds}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    units = ("天", "小时", "分") if _zh(lang) else ("d ", "h ", "m")
    parts = [f"{v}{u}" for v, u in zip((days, hours, minutes), units, strict=True) if v]
    return "".join(parts).strip()


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def mask_text(text: str | None) -> str | None:
    """Mask mobile numbers (138****1234) and resident ID numbers inside free text."""
    if not text:
        return text
    text = _ID_NO_RE.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    return _PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


# -- lookup ------------------------------------------------------------------------------------------


def resolve_event_id(conn: sqlite3.Connection, ref: str | int) -> int:
    """``events.id`` for a reference: the id, the uid (ULID) or ``source:external_id``.

    Raises ``LookupError`` naming the reference when no event matches."""
    text = str(ref).strip()
    if not text:
        raise LookupError("empty event reference: give events.id, the uid or source:external_id")
    row = None
    how = ""
    if text.isdigit():
        how = "events.id"
        row = conn.execute("SELECT id FROM events WHERE id = ?", (int(text),)).fetchone()
    elif ":" in text:
        how = "source:external_id"
        source, _, external_id = text.partition(":")
        row = conn.execute(
            "SELECT id FROM events WHERE source = ? AND external_id = ?",
            (source.strip(), external_id.strip()),
        ).fetchone()
    if row is None and not text.isdigit() and _ULID_RE.match(text):
        how = "uid"
        row = conn.execute("SELECT id FROM events WHERE uid = ?", (text.upper(),)).fetchone()
    if row is None:
        how = how or "uid"
        raise LookupError(
            f"no event '{text}' in the replica (looked up by {how}; "
            "give events.id, the uid or source:external_id)"
        )
    return int(row[0])


class _Names:
    """Cached name lookups for people, departments, streets and grids."""

    def __init__(self, conn: sqlite3.Connection, lang: str) -> None:
        self.conn = conn
        self.lang = lang
        self._cache: dict[tuple[str, str], str | None] = {}

    def _one(self, kind: str, key: str, sql: str) -> str | None:
        k = (kind, key)
        if k not in self._cache:
            row = self.conn.execute(sql, (key,)).fetchone()
            self._cache[k] = row[0] if row else None
        return self._cache[k]

    def person(self, uid: str) -> str | None:
        return self._one(
            "person", uid, "SELECT name || coalesce('（' || position || '）', '') FROM people WHERE uid = ?"
        )

    def department(self, code: str) -> str | None:
        col = "coalesce(name_en, name)" if self.lang == "en" else "name"
        return self._one("dept", code, f"SELECT {col} FROM departments WHERE code = ?")

    def street(self, code: str) -> str | None:
        return self._one("street", code, "SELECT name FROM streets WHERE code = ?")

    def grid(self, gid: str) -> str | None:
        return self._one("grid", gid, "SELECT name FROM grids WHERE id = ?")

    def actor(self, actor: str | None) -> str:
        """A person uid → name (position); ``source:x`` → the source's label; else as is."""
        if not actor:
            return ""
        if actor.startswith("source:"):
            src = label("source", actor.split(":", 1)[1], self.lang)
            return f"系统接入：{src}" if _zh(self.lang) else f"System: {src}"
        found = self.person(actor) or self.department(actor)
        return found or actor

    def target(self, kind: str | None, code: str | None) -> str:
        if not code:
            return ""
        if kind == "department":
            return self.department(code) or code
        if kind == "street":
            return self.street(code) or code
        if kind == "grid_id":
            return self.grid(code) or code
        return self.person(code) or self.department(code) or self.street(code) or self.grid(code) or code


# -- payload summary -----------------------------------------------------------------------------------

_PAYLOAD_KEYS_ZH = {
    "source": "来源",
    "external_id": "来源编号",
    "target_kind": "派遣对象",
    "satisfaction": "满意度",
    "level": "层级",
    "departments": "召集部门",
    "department": "部门",
    "due_at": "时限",
    "deadline": "时限",
    "new_due_at": "新时限",
    "handle_due_at": "办理时限",
    "old_due_at": "原时限",
    "reason": "事由",
    "merged_into": "并入事件",
    "whistle_id": "吹哨记录",
    "late": "迟到",
}


def _value_text(key: str, value, names: _Names) -> str:
    lang = names.lang
    if key == "source" and isinstance(value, str):
        return label("source", value, lang)
    if key == "level" and isinstance(value, str) and value in LEVELS:
        return LEVELS[value][0 if _zh(lang) else 1]
    if key in {"department", "department_code"} and isinstance(value, str):
        return names.department(value) or value
    if key == "departments" and isinstance(value, list):
        return "、".join(
            names.department(v) or v if isinstance(v, str) else _short(orjson.dumps(v).decode())
            for v in value
        )
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value):
        return _ts(value)
    if isinstance(value, bool):
        return ("是" if value else "否") if _zh(lang) else str(value).lower()
    if isinstance(value, (dict, list)):
        return _short(orjson.dumps(value).decode())
    return _short(str(value))


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload_summary(payload, names: _Names) -> list[tuple[str, str]]:
    """A log payload as ``[(label, value), ...]`` for display (dispatch targets resolved)."""
    if payload is None or payload == {}:
        return []
    if not isinstance(payload, dict):
        return [("", _value_text("", payload, names))]
    zh = _zh(names.lang)
    out: list[tuple[str, str]] = []
    target_kind = payload.get("target_kind")
    for key, value in payload.items():
        if value is None or key == "target_kind":
            continue
        if key == "target":
            kind_label = TARGET_KINDS.get(target_kind, (target_kind or "", target_kind or ""))
            out.append(
                (
                    kind_label[0 if zh else 1] or ("派遣对象" if zh else "target"),
                    names.target(target_kind, value),
                )
            )
            continue
        if key == "satisfaction":
            out.append(("满意度" if zh else "satisfaction", f"{value}/5"))
            continue
        out.append((_PAYLOAD_KEYS_ZH.get(key, key) if zh else key, _value_text(key, value, names)))
    return out


# -- clocks ----------------------------------------------------------------------------------------


def _first_at(log: list[dict], actions: tuple[str, ...]) -> str | None:
    for entry in log:
        if entry["action"] in actions:
            return entry["at"]
    return None


def _clock_row(
    name: str,
    start: str | None,
    due: str | None,
    actual: str | None,
    *,
    lang: str,
    now: dt.datetime,
    still_running: bool,
    limit_text: str = "",
    extra: str = "",
) -> dict:
    zh = _zh(lang)
    t_start, t_due, t_actual = _parse(start), _parse(due), _parse(actual)
    elapsed = format_duration((t_actual - t_start).total_seconds(), lang) if t_start and t_actual else ""
    verdict, cls = "", "na"
    if t_due is None:
        verdict, cls = ("未设时限" if zh else "no deadline"), "na"
    elif t_actual is not None:
        late = (t_actual - t_due).total_seconds()
        if late <= 0:
            verdict, cls = ("按时" if zh else "on time"), "ok"
        else:
            d = format_duration(late, lang)
            verdict, cls = (f"超时 {d}" if zh else f"overdue by {d}"), "late"
    elif still_running:
        late = (now - t_due).total_seconds()
        if late > 0:
            d = format_duration(late, lang)
            verdict, cls = (f"未完成，已超时 {d}" if zh else f"not done, overdue by {d}"), "late"
        else:
            d = format_duration(-late, lang)
            verdict, cls = (f"计时中，剩余 {d}" if zh else f"running, {d} left"), "run"
    else:
        verdict, cls = ("未发生" if zh else "did not happen"), "na"
    return {
        "name": name,
        "start": _ts(start),
        "due": _ts(due),
        "limit": limit_text,
        "actual": _ts(actual),
        "elapsed": elapsed,
        "verdict": verdict,
        "cls": cls,
        "extra": extra,
    }


def build_clocks(
    event: dict, log: list[dict], category: dict | None, *, lang: str, now: dt.datetime
) -> list[dict]:
    zh = _zh(lang)
    status = event["status"]
    terminal = status in TERMINAL
    reported = event["reported_at"]
    rows = []

    # response: report → accepted (or rejected / merged)
    responded = _first_at(log, RESPONSE_ACTIONS) or event.get("accepted_at") or event.get("rejected_at")
    limit = category.get("response_limit_min") if category else None
    limit_text = (f"{limit} 分钟" if zh else f"{limit} min") if limit else ""
    rows.append(
        _clock_row(
            label("clock", "response", lang),
            reported,
            event.get("response_due_at"),
            responded,
            lang=lang,
            now=now,
            still_running=status == "reported",
            limit_text=limit_text,
        )
    )

    # arrival: the 10-minute clock, report → first on site
    applies = bool(event.get("arrival_due_at")) or bool(category and category.get("arrival_clock"))
    arrive_name = "到场（10分钟）" if zh else "Arrival (10 min)"
    if applies:
        arrived = _first_at(log, ("arrive",)) or event.get("on_site_at")
        due = event.get("arrival_due_at")
        if not due:
            t0 = _parse(reported)
            due = timeutil.to_iso(t0 + dt.timedelta(minutes=ARRIVAL_LIMIT_MIN)) if t0 else None
        row = _clock_row(
            arrive_name,
            reported,
            due,
            arrived,
            lang=lang,
            now=now,
            still_running=not terminal and not arrived,
            limit_text=f"{ARRIVAL_LIMIT_MIN} 分钟" if zh else f"{ARRIVAL_LIMIT_MIN} min",
        )
        t_rep, t_arr = _parse(reported), _parse(arrived)
        if t_rep and t_arr:
            minutes = (t_arr - t_rep).total_seconds() / 60
            row["minutes"] = round(minutes, 1)
            row["within"] = minutes <= ARRIVAL_LIMIT_MIN
            row["elapsed"] = f"{minutes:.1f} 分钟" if zh else f"{minutes:.1f} min"
            if minutes >= 60:
                row["elapsed"] += (
                    f"（{format_duration(minutes * 60, lang)}）"
                    if zh
                    else f" ({format_duration(minutes * 60, lang)})"
                )
            if row["within"]:
                row["verdict"], row["cls"] = ("10分钟内到场" if zh else "within 10 min"), "ok"
            else:
                over = minutes - ARRIVAL_LIMIT_MIN
                row["verdict"] = f"超出10分钟 {over:.1f} 分钟" if zh else f"{over:.1f} min over 10 min"
                row["cls"] = "late"
        rows.append(row)
    else:
        rows.append(
            {
                "name": arrive_name,
                "start": "",
                "due": "",
                "limit": "",
                "actual": _ts(_first_at(log, ("arrive",))),
                "elapsed": "",
                "verdict": "不适用（该类别不计到场时限）" if zh else "n/a for this category",
                "cls": "na",
                "extra": "",
            }
        )

    # handling: accepted → handled, against handle_due_at (deferral suspends, extension moves it)
    notes = []
    n_defer = sum(1 for e in log if e["action"] == "defer")
    n_extend = sum(1 for e in log if e["action"] == "extend")
    n_rework = sum(1 for e in log if e["action"] == "rework")
    suspended_s = int(event.get("suspended_s") or 0)
    if n_defer:
        paused = f"，暂停计时 {format_duration(suspended_s, lang)}" if suspended_s else "，缓办期间暂停计时"
        paused_en = (
            f", clock suspended {format_duration(suspended_s, lang)}" if suspended_s else ", clock suspended"
        )
        notes.append(f"缓办 {n_defer} 次{paused}" if zh else f"deferred {n_defer}×{paused_en}")
    if n_extend:
        notes.append(f"延期 {n_extend} 次" if zh else f"extended {n_extend}×")
    if n_rework:
        notes.append(f"返工 {n_rework} 次" if zh else f"reworked {n_rework}×")
    limit_text = ""
    if category and category.get("handle_limit"):
        amount = category["handle_limit"]
        amount_text = f"{amount:g}"
        unit = category.get("handle_unit") or ""
        units_zh = {"hours": "小时", "working_hours": "个工作小时", "working_days": "个工作日"}
        units_en = {"hours": "h", "working_hours": "working hours", "working_days": "working days"}
        limit_text = f"{amount_text} {(units_zh if zh else units_en).get(unit, unit)}"
    rows.append(
        _clock_row(
            label("clock", "handle", lang),
            reported,
            event.get("handle_due_at"),
            event.get("handled_at"),
            lang=lang,
            now=now,
            still_running=not terminal and status not in ("deferred",) and not event.get("handled_at"),
            limit_text=limit_text,
            extra="；".join(notes) if zh else "; ".join(notes),
        )
    )
    if status == "deferred" and not event.get("handled_at"):
        since = _ts(event.get("deferred_at"))
        if zh:
            rows[-1]["verdict"] = f"缓办中，自 {since} 起暂停计时" if since else "缓办中，暂停计时"
        else:
            rows[-1]["verdict"] = f"deferred since {since}, suspended" if since else "deferred, suspended"
        rows[-1]["cls"] = "run"
    return rows


# -- whistles ------------------------------------------------------------------------------------


def read_whistles(
    conn: sqlite3.Connection, event_id: int, names: _Names, *, now: dt.datetime
) -> list[dict] | None:
    """Whistles (m002 ``whistles``) with their summoned departments (``whistle_departments``),
    oldest first; ``None`` when the replica predates those tables (the section is then left out).

    Rows are read with ``SELECT *`` so a column added later does not break an old dossier."""
    if not (_table_exists(conn, "whistles") and _table_exists(conn, "whistle_departments")):
        return None
    zh = _zh(names.lang)
    lang = names.lang
    whistles = []
    rows = conn.execute(
        "SELECT * FROM whistles WHERE event_id = ? ORDER BY blown_at, id", (event_id,)
    ).fetchall()
    levels_by_id = {r["id"]: r["level"] for r in rows}
    for w in map(dict, rows):
        level = w.get("level")
        escalated = ""
        if w.get("escalated_from"):
            prev = levels_by_id.get(w["escalated_from"])
            prev_label = LEVELS.get(prev, (prev or "", prev or ""))[0 if zh else 1]
            escalated = f"由{prev_label}升级" if zh else f"escalated from {prev_label.lower()}"
        closed = ""
        if w.get("closed_at"):
            by = names.actor(w.get("closed_by")) if w.get("closed_by") else ""
            closed = f"{_ts(w['closed_at'])}{' ' + by if by else ''}"
        item = {
            "id": w.get("id"),
            "at": _ts(w.get("blown_at")),
            "by": names.actor(w.get("blown_by")),
            "level": LEVELS.get(level, (level or "", level or ""))[0 if zh else 1],
            "escalated": escalated,
            "reason": w.get("reason") or "",
            "outcome": w.get("outcome") or "",
            "closed": closed,
            "departments": [],
        }
        deps = conn.execute(
            "SELECT * FROM whistle_departments WHERE whistle_id = ? ORDER BY deadline_at, department_code",
            (w["id"],),
        ).fetchall()
        for d in map(dict, deps):
            code = d.get("department_code")
            due, checked = d.get("deadline_at"), d.get("checked_in_at")
            t_due, t_chk = _parse(due), _parse(checked)
            if t_chk is not None:
                late_s = (t_chk - t_due).total_seconds() if t_due else 0
                if late_s > 0 or d.get("late") == 1:
                    late_text = format_duration(max(late_s, 0), lang) if late_s > 0 else ""
                    res = (
                        (f"迟到 {late_text}" if zh else f"late by {late_text}")
                        if late_text
                        else ("迟到" if zh else "late")
                    )
                    cls = "late"
                else:
                    res, cls = ("按时报到" if zh else "on time"), "ok"
            elif t_due is not None and (w.get("closed_at") or now > t_due):
                if w.get("closed_at"):  # the whistle was closed without this department's check-in
                    res = "未报到" if zh else "did not check in"
                else:
                    late_text = format_duration((now - t_due).total_seconds(), lang)
                    res = f"逾期未报到（已超 {late_text}）" if zh else f"not checked in, {late_text} overdue"
                cls = "late"
            else:
                res, cls = ("待报到" if zh else "pending"), "run"
            item["departments"].append(
                {
                    "code": code or "",
                    "name": (names.department(code) or code) if code else "",
                    "due": _ts(due),
                    "checked": _ts(checked),
                    "by": names.actor(d.get("checked_in_by")) if d.get("checked_in_by") else "",
                    "result": res,
                    "cls": cls,
                }
            )
        whistles.append(item)
    return whistles


# -- map snapshot --------------------------------------------------------------------------------


class _Projection:
    """Equirectangular lon/lat → SVG x/y (y down) centred on the event, scaled by cos(lat)."""

    def __init__(self, lon0: float, lat0: float, radius_m: float, size: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.mx = M_PER_DEG_LON_EQ * math.cos(math.radians(lat0))  # metres per degree of longitude
        self.my = M_PER_DEG_LAT
        self.radius_m = radius_m
        self.size = size
        self.k = size / (2 * radius_m)  # SVG units per metre
        dlon, dlat = radius_m / self.mx, radius_m / self.my
        self.bbox = (lon0 - dlon, lat0 - dlat, lon0 + dlon, lat0 + dlat)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        x = self.size / 2 + (lon - self.lon0) * self.mx * self.k
        y = self.size / 2 - (lat - self.lat0) * self.my * self.k
        return x, y

    def ring(self, coords, close: bool = True) -> str:
        pts = [self.xy(x, y) for x, y in coords]
        if not pts:
            return ""
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        return d + ("Z" if close else "")

    def path(self, geom) -> str:
        """SVG path data for a (multi)polygon or (multi)line geometry."""
        if geom is None or geom.is_empty:
            return ""
        if isinstance(geom, Polygon):
            return " ".join([self.ring(geom.exterior.coords)] + [self.ring(r.coords) for r in geom.interiors])
        if isinstance(geom, LineString):
            return self.ring(geom.coords, close=False)
        if isinstance(geom, (MultiPolygon, MultiLineString, GeometryCollection)):
            return " ".join(p for p in (self.path(g) for g in geom.geoms) if p)
        return ""


def _nice_scale(radius_m: float) -> int:
    target = radius_m * 2 / 4
    for step in (100, 200, 250, 500, 1000, 2000, 5000):
        if step >= target:
            return step
    return 5000


@lru_cache(maxsize=1)
def _water():
    try:
        from db.spatial import load_water

        return load_water()
    except (OSError, ValueError):  # the geodata is optional for a dossier
        return None


def build_map(
    conn: sqlite3.Connection, event: dict, *, lang: str, radius_m: float = MAP_RADIUS_M
) -> dict | None:
    """Vector map snapshot around the event (SVG path data), or ``None`` without coordinates."""
    lon, lat = event.get("lon"), event.get("lat")
    if lon is None or lat is None:
        return None
    proj = _Projection(float(lon), float(lat), radius_m, MAP_SIZE)
    x0, y0, x1, y1 = proj.bbox
    view = box(x0, y0, x1, y1)
    # a margin so clipped outlines do not draw along the frame
    clip = view.buffer((x1 - x0) * 0.02, join_style="mitre")

    def clipped(geometry_text: str | None):
        if not geometry_text:
            return None
        try:
            geom = shape(orjson.loads(geometry_text))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        return geom.intersection(clip)

    grids = []
    event_grid = None
    rows = conn.execute(
        "SELECT id, name, street_code, lon, lat, geometry FROM grids "
        "WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?",
        (x0, x1, y0, y1),
    ).fetchall()
    for r in rows:
        geom = clipped(r["geometry"])
        if geom is None or geom.is_empty:
            continue
        item = {"id": r["id"], "name": r["name"], "d": proj.path(geom)}
        if r["id"] == event.get("grid_id"):
            full = shape(orjson.loads(r["geometry"]))
            c = full.representative_point()
            lx, ly = proj.xy(c.x, c.y)
            px, py = proj.xy(float(lon), float(lat))
            if math.hypot(lx - px, ly - py) < 60:  # too close to the marker: put the name under it
                lx, ly = px, py + 26
            item["label_xy"] = (round(lx, 1), round(ly, 1))
            event_grid = item
        else:
            grids.append(item)
    if event_grid is None and event.get("grid_id"):
        r = conn.execute("SELECT id, name, geometry FROM grids WHERE id = ?", (event["grid_id"],)).fetchone()
        if r is not None:
            geom = clipped(r["geometry"])
            if geom is not None and not geom.is_empty:
                event_grid = {"id": r["id"], "name": r["name"], "d": proj.path(geom)}

    street = None
    if event.get("street_code"):
        r = conn.execute(
            "SELECT name, geometry FROM streets WHERE code = ?", (event["street_code"],)
        ).fetchone()
        if r is not None:
            geom = clipped(r["geometry"])
            if geom is not None and not geom.is_empty:
                street = {"name": r["name"], "d": proj.path(geom)}

    water_d = ""
    water = _water()
    if water is not None:
        try:
            w = water.intersection(clip)
            water_d = proj.path(w) if not w.is_empty else ""
        except shapely.errors.GEOSException:
            water_d = ""

    cx, cy = proj.xy(float(lon), float(lat))
    scale_m = _nice_scale(radius_m)
    scale_len = scale_m * proj.k
    zh = _zh(lang)
    scale_text = (
        (f"{scale_m // 1000} 公里" if scale_m >= 1000 else f"{scale_m} 米")
        if zh
        else (f"{scale_m // 1000} km" if scale_m >= 1000 else f"{scale_m} m")
    )
    return {
        "size": MAP_SIZE,
        "grids": grids,
        "event_grid": event_grid,
        "street": street,
        "water": water_d,
        "point": (round(cx, 1), round(cy, 1)),
        "ring_r": round(MAP_RADIUS_M * proj.k, 1) if radius_m >= MAP_RADIUS_M else None,  # the ~1.5 km ring
        "scale": {"len": round(scale_len, 1), "half": round(scale_len / 2, 1), "text": scale_text},
        "lonlat": f"{float(lon):.6f}, {float(lat):.6f}",
        "extent": (f"{x0:.4f}–{x1:.4f}°E, {y0:.4f}–{y1:.4f}°N"),
        "n_grids": len(grids) + (1 if event_grid else 0),
    }


# -- the dossier ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    if not _table_exists(conn, "meta"):
        return {}
    return {r[0]: r[1] for r in conn.execute("SELECT key, value FROM meta")}


def build_dossier(
    conn: sqlite3.Connection,
    event_id_or_ref: str | int,
    *,
    lang: str = "zh",
    mask_personal: bool = False,
    now: dt.datetime | None = None,
) -> Dossier:
    """The dossier of one event (by ``events.id``, uid or ``source:external_id``).

    Raises ``LookupError`` when the event does not exist. ``now`` (default: the current
    Asia/Shanghai time) is the generation time and the reference for still-running clocks."""
    lang = "en" if lang == "en" else "zh"
    zh = lang == "zh"
    now = (now or timeutil.now()).astimezone(timeutil.TZ)
    event_id = resolve_event_id(conn, event_id_or_ref)
    event = get_event(conn, event_id)
    if event is None:  # pragma: no cover - resolve_event_id found it
        raise LookupError(f"no event '{event_id_or_ref}' in the replica")
    log = get_log(conn, event_id)
    names = _Names(conn, lang)
    meta = _meta(conn)
    cat_row = conn.execute("SELECT * FROM categories WHERE code = ?", (event["category"],)).fetchone()
    category = dict(cat_row) if cat_row else None

    def personal(text: str | None) -> str | None:
        return mask_text(text) if mask_personal else text

    # facts
    cat_name = event.get("category_name_en" if not zh else "category_name") or event["category"]
    assignee = ""
    if event.get("assignee_code"):
        kind = event.get("assignee_kind")
        kind_label = TARGET_KINDS.get(kind, (kind or "", kind or ""))[0 if zh else 1]
        assignee = (
            f"{names.target(kind, event['assignee_code'])}（{kind_label}）"
            if zh
            else (f"{names.target(kind, event['assignee_code'])} ({kind_label})")
        )
    reporter = event.get("reporter_name")
    phone = event.get("reporter_phone")
    if mask_personal:
        reporter, phone = mask_name(reporter), mask_text(phone)
    facts = {
        "title": personal(event["title"]),
        "description": personal(event.get("description")) or "",
        "category": f"{cat_name}（{event['category']}）" if zh else f"{cat_name} ({event['category']})",
        "class": label("class", event["class"], lang),
        "priority": label("priority", event["priority"], lang),
        "priority_n": int(event["priority"]),
        "source": label("source", event["source"], lang),
        "street": event.get("street_name") or event.get("street_code") or "",
        "community": event.get("community_name") or event.get("community_code") or "",
        "grid": (
            f"{event['grid_name']}（{event['grid_id']}）"
            if event.get("grid_name")
            else (event.get("grid_id") or "")
        ),
        "address": personal(event.get("address")) or "",
        "coords": f"{event['lon']:.6f}, {event['lat']:.6f}" if event.get("lon") is not None else "",
        "reporter": reporter or "",
        "phone": phone or "",
        "assignee": assignee,
        "status": label("status", event["status"], lang),
        "status_code": event["status"],
    }

    # timeline
    timeline = []
    for n, entry in enumerate(log, start=1):
        from_s, to_s = entry.get("from_status"), entry.get("to_status")
        if from_s and to_s and from_s != to_s:
            transition = f"{label('status', from_s, lang)} → {label('status', to_s, lang)}"
        elif to_s and not from_s:
            transition = f"→ {label('status', to_s, lang)}"
        else:
            transition = ("（状态不变）" if zh else "(unchanged)") if from_s else ""
        timeline.append(
            {
                "n": n,
                "id": entry["id"],
                "uid": entry["uid"],
                "at": _ts(entry["at"]),
                "action": entry["action"],
                "step": entry["action_label"] if zh else entry["action"].replace("_", " "),
                "actor": names.actor(entry["actor"]),
                "transition": transition,
                "overlay": bool(from_s) and from_s == to_s,
                "note": personal(entry.get("note")) or "",
                "payload": [(k, personal(v) or "") for k, v in payload_summary(entry.get("payload"), names)],
            }
        )

    clocks = build_clocks(event, log, category, lang=lang, now=now)

    # evaluation
    evaluation = None
    evals = [e for e in log if e["action"] == "evaluate"]
    score = event.get("satisfaction")
    if evals or score is not None:
        last = evals[-1] if evals else None
        if score is None and last and isinstance(last.get("payload"), dict):
            score = last["payload"].get("satisfaction")
        score_i = int(score) if score is not None else None
        words_zh = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
        words_en = {
            5: "very satisfied",
            4: "satisfied",
            3: "neutral",
            2: "dissatisfied",
            1: "very dissatisfied",
        }
        evaluation = {
            "score": score_i,
            "stars": [i < (score_i or 0) for i in range(5)],
            "word": (words_zh if zh else words_en).get(score_i, "") if score_i else "",
            "at": _ts(last["at"]) if last else "",
            "by": names.actor(last["actor"]) if last else "",
            "note": personal(last.get("note")) if last else "",
            "count": len(evals),
        }

    finished = event.get("closed_at") or event.get("rejected_at")
    if not finished and event["status"] == "merged":
        finished = _first_at(log, ("merge",))
    t_rep, t_fin = _parse(event["reported_at"]), _parse(finished)
    total = format_duration((t_fin - t_rep).total_seconds(), lang) if t_rep and t_fin else ""
    if not total and t_rep and event["status"] not in TERMINAL:
        running = format_duration((now - t_rep).total_seconds(), lang)
        total = f"进行中，已 {running}" if zh else f"open for {running}"

    demo = meta.get("demo") == "1"
    district = meta.get("district_name") or ("崇川区" if zh else "Chongchuan District")
    ext = f"{event['source']}:{event['external_id']}" if event.get("external_id") else ""
    context = {
        "t": TEXT[lang],
        "lang": lang,
        "district": district,
        "demo": demo,
        "demo_label": meta.get("demo_label") or "",
        "masked": mask_personal,
        "event": {
            "id": event_id,
            "uid": event["uid"],
            "ext": ext,
            "reported_at": _ts(event["reported_at"]),
            "finished_at": _ts(finished),
            "total": total,
        },
        "facts": facts,
        "clocks": clocks,
        "timeline": timeline,
        "whistles": read_whistles(conn, event_id, names, now=now),
        "evaluation": evaluation,
        "map": build_map(conn, event, lang=lang),
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"
        if zh
        else now.strftime("%Y-%m-%d %H:%M:%S +08:00"),
        "archive_no": f"YSYD-{event['reported_at'][:4]}-{event_id:07d}",
    }
    html = _environment().get_template(TEMPLATE_NAME).render(**context)
    return Dossier(event_id=event_id, title=event["title"], html=html)


def write_html(dossier: Dossier, path: str | os.PathLike) -> Path:
    """Write the dossier's HTML (UTF-8) atomically; returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(dossier.html)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
