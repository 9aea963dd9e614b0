"""Drill write path (issue 7): plans, series, injects (MSEL), the scenario clock, participants,
field media, findings. Every function is one ``Replica.write`` transaction and appends to the
append-only ``drill_log`` where the run is concerned.

The scenario clock is stored as ``elapsed_s`` (scenario seconds up to ``anchor_at``), ``anchor_at``
(wall time of the last start/resume/speed change) and ``speed``; while ``status = 'running'`` the
scenario time at wall time *t* is ``elapsed_s + (t − anchor_at) × speed`` (``app.drills.clock``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping, Sequence

from app import timeutil
from db.ids import new_ulid

THEMES = ("防台防汛", "突发事件", "疫情防控", "违章搭建")
LEVELS = ("district", "street", "grid")
STATUSES = ("scheduled", "running", "paused", "stopped", "completed", "cancelled")
STAGES = ("accepted", "dispatched", "acknowledged", "on_site", "handled")
MEDIA_KINDS = ("audio", "video", "image", "stream")
FINDING_STATUSES = ("open", "in_progress", "done")
MAX_SPEED = 60.0
TOPICS = ("drills",)


class DrillError(ValueError):
    """A drill operation refused; the message is for the coordinator (zh / en)."""


# -- templates ----------------------------------------------------------------------------------
def _inj(offset_min, title, content, category, klass, level, dept, action, stage, allowed, *, parent=None):
    return {"offset_s": int(offset_min * 60), "title": title, "content": content, "category": category,
            "class": klass, "target_level": level, "target_department": dept, "expected_action": action,
            "expected_stage": stage, "allowed_min": allowed, "parent_seq": parent}  # fmt: skip


TEMPLATES = (
    {
        "code": "TYPHOON", "theme": "防台防汛", "title": "防台防汛综合演练", "level": "street", "duration_min": 60,
        "objectives": "检验台风登陆前后道路积水、地下空间进水、倒伏树木的发现、上报、派遣与到场处置能力；检验街道—网格两级联动。",
        "scenario": [
            _inj(0, "台风蓝色预警发布", "市气象台发布台风蓝色预警，要求各网格巡查低洼点位。", "FLOOD", "assigned",
                 "street", "WATER", "街道指挥中心受理并派遣网格长巡查", "dispatched", 10),
            _inj(5, "主干道严重积水", "网格员报告：路段积水深约40厘米，有车辆熄火。", "FLOOD.WATERLOG", "emergency",
                 "grid", "WATER", "网格长10分钟内到场，设置警示并报水务", "on_site", 10),
            _inj(12, "小区地下车库进水", "物业报告：地下车库入口进水，需转移车辆。", "FLOOD.INUNDATION", "emergency",
                 "street", "WATER", "派遣水务与物业，组织车辆转移", "on_site", 15),
            _inj(20, "行道树倒伏压住电线", "倒伏树木压住架空线，有断电风险。", "FLOOD.TREE", "emergency",
                 "street", "GARDEN", "派遣园林与供电，封控现场", "on_site", 15),
            _inj(25, "车库积水未排除（跟进）", "前序车库进水未处置完毕，水位继续上涨。", "FLOOD.INUNDATION", "emergency",
                 "district", "WATER", "区指挥中心吹哨调度排涝力量", "dispatched", 10, parent=3),
            _inj(35, "堤防渗水险情", "沿江堤防发现渗水点。", "FLOOD.DYKE", "emergency",
                 "district", "WATER", "区级调度抢险队伍到场", "on_site", 20),
        ],
    },
    {
        "code": "INCIDENT", "theme": "突发事件", "title": "突发事件应急处置演练", "level": "district", "duration_min": 45,
        "objectives": "检验火灾、燃气泄漏、电梯困人等突发事件的受理时效、跨部门派遣与10分钟到场。",
        "scenario": [
            _inj(0, "居民楼燃气泄漏", "居民报告楼道内有明显燃气味。", "EMG.GASLEAK", "emergency",
                 "district", "GAS", "5分钟内受理，派遣燃气与消防", "dispatched", 5),
            _inj(6, "商铺火情", "沿街商铺冒出浓烟。", "EMG.FIRE", "emergency",
                 "district", "FIRE", "消防与网格长到场，疏散群众", "on_site", 10),
            _inj(12, "电梯困人", "住宅电梯困住2人。", "EMG.ELEVATOR", "emergency",
                 "street", "FIRE", "派遣消防救援，网格长到场安抚", "on_site", 10),
            _inj(20, "路面塌陷", "道路出现约1平方米塌陷。", "EMG.COLLAPSE", "emergency",
                 "street", "MUNICIPAL", "市政到场设置围挡", "on_site", 15),
            _inj(28, "处置完毕核查", "要求各点位上报处置结果。", "EMG", "assigned",
                 "street", "EMERGENCY", "处置完毕并上报", "handled", 30),
        ],
    },
    {
        "code": "EPIDEMIC", "theme": "疫情防控", "title": "疫情防控应急演练", "level": "street", "duration_min": 60,
        "objectives": "检验疫情防控卡口、场所防控措施落实情况的发现与派遣，网格长入户排查响应。",
        "scenario": [
            _inj(0, "发现密接人员", "疾控通报：某小区有密接人员需落实管控。", "EPI", "assigned",
                 "street", "HEALTH", "街道受理并派遣网格长入户", "acknowledged", 15),
            _inj(10, "卡口人员聚集", "防疫卡口排队人员聚集。", "EPI.CHECKPOINT", "ordinary",
                 "grid", "HEALTH", "网格长到场疏导", "on_site", 15),
            _inj(20, "场所未落实防控措施", "农贸市场未落实扫码测温。", "EPI.VENUE", "ordinary",
                 "street", "SAMR", "派遣市场监管检查", "acknowledged", 20),
            _inj(35, "重点人员排查完毕", "要求各网格上报排查结果。", "EPI", "assigned",
                 "grid", "HEALTH", "处置完毕并上报", "handled", 25),
        ],
    },
    {
        "code": "ILLEGALBUILD", "theme": "违章搭建", "title": "违章搭建快速处置演练", "level": "grid", "duration_min": 40,
        "objectives": "检验网格巡查发现违章搭建后的上报、城管派遣与到场制止时效。",
        "scenario": [
            _inj(0, "屋顶违章搭建", "网格员巡查发现居民楼顶正在搭建彩钢棚。", "SAFETY.ILLEGALBUILD", "ordinary",
                 "grid", "CITYMGMT", "网格长到场劝阻并上报", "on_site", 15),
            _inj(8, "小区绿地违建", "业主占用公共绿地搭建围栏。", "SAFETY.ILLEGALBUILD", "ordinary",
                 "street", "CITYMGMT", "派遣城管执法", "dispatched", 15),
            _inj(18, "拒不停工（跟进）", "当事人拒不停工。", "SAFETY.ILLEGALBUILD", "ordinary",
                 "street", "CITYMGMT", "城管到场制止", "on_site", 20, parent=1),
        ],
    },
)  # fmt: skip


def seed_templates(conn: sqlite3.Connection) -> None:
    """The shipped templates, one per theme (kept when they already exist)."""
    for t in TEMPLATES:
        conn.execute(
            "INSERT OR IGNORE INTO drill_templates (code, theme, title, level, duration_min, objectives, scenario) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (t["code"], t["theme"], t["title"], t["level"], t["duration_min"], t["objectives"],
             json.dumps(t["scenario"], ensure_ascii=False)),
        )  # fmt: skip


# -- helpers -------------------------------------------------------------------------------------
def _iso(value, name: str) -> str:
    if isinstance(value, dt.datetime):
        return timeutil.to_iso(value)
    try:
        return timeutil.to_iso(timeutil.parse(str(value)))
    except (TypeError, ValueError):
        raise DrillError(f"时间格式错误 {name}: {value!r} (ISO 8601 expected)") from None


def _drill(conn: sqlite3.Connection, drill_id: int) -> dict:
    row = conn.execute("SELECT * FROM drills WHERE id = ?", (drill_id,)).fetchone()
    if row is None:
        raise DrillError(f"没有该演练 no drill #{drill_id}")
    return dict(row)


def _log(conn, drill_id: int, at: str, actor: str, action: str, elapsed=None, speed=None, note=None) -> None:
    conn.execute(
        "INSERT INTO drill_log (drill_id, at, actor, action, elapsed_s, speed, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (drill_id, at, actor, action, elapsed, speed, note),
    )


def _codes(values, table: str, column: str, conn, label: str) -> list[str]:
    out = []
    for v in values or ():
        v = str(v).strip()
        if not v:
            continue
        if conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (v,)).fetchone() is None:
            raise DrillError(f"没有该{label} unknown {table[:-1]} {v!r}")
        if v not in out:
            out.append(v)
    return out


def validate_plan(conn: sqlite3.Connection, plan: Mapping) -> dict:
    """A checked copy of a drill plan (title, theme, level, starts_at, duration_min, streets,
    grids, coordinator, objectives); raises :class:`DrillError` with the field at fault."""
    title = str(plan.get("title") or "").strip()
    if not title:
        raise DrillError("缺少标题 title is required")
    theme = str(plan.get("theme") or "").strip()
    if not theme:
        raise DrillError("缺少主题 theme is required")
    level = plan.get("level")
    if level not in LEVELS:
        raise DrillError(f"层级无效 level must be district, street or grid, not {level!r}")
    try:
        duration = int(plan.get("duration_min") or 60)
    except (TypeError, ValueError):
        raise DrillError(f"时长无效 duration_min must be minutes, not {plan.get('duration_min')!r}") from None
    if not 5 <= duration <= 24 * 60:
        raise DrillError(f"时长无效 duration must be 5 min … 24 h, not {duration} min")
    streets = _codes(plan.get("streets"), "streets", "code", conn, "街道")
    grids = _codes(plan.get("grids"), "grids", "id", conn, "网格")
    for g in grids:  # a grid's street takes part too
        s = conn.execute("SELECT street_code FROM grids WHERE id = ?", (g,)).fetchone()[0]
        if s not in streets:
            streets.append(s)
    if level != "district" and not streets:
        raise DrillError("街道级/网格级演练须选择参演街道 a street or grid drill needs participating streets")
    if level == "grid" and not grids:
        raise DrillError("网格级演练须选择参演网格 a grid drill needs participating grids")
    return {
        "title": title, "theme": theme, "level": level, "starts_at": _iso(plan.get("starts_at"), "starts_at"),
        "duration_min": duration, "streets": streets, "grids": grids,
        "coordinator": (str(plan.get("coordinator")).strip() or None) if plan.get("coordinator") else None,
        "objectives": (str(plan.get("objectives") or "").strip() or None),
        "template_id": plan.get("template_id"), "series_id": plan.get("series_id"),
    }  # fmt: skip


def _insert_drill(conn, plan: dict, at: str) -> int:
    cur = conn.execute(
        "INSERT INTO drills (uid, title, theme, level, starts_at, status, series_id, template_id, streets, grids, "
        "coordinator, duration_min, objectives, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_ulid(), plan["title"], plan["theme"], plan["level"], plan["starts_at"], plan.get("series_id"),
         plan.get("template_id"), json.dumps(plan["streets"]), json.dumps(plan["grids"]), plan["coordinator"],
         plan["duration_min"], plan["objectives"], at, at),
    )  # fmt: skip
    drill_id = int(cur.lastrowid)
    _expected_participants(conn, drill_id, plan)
    return drill_id


def _expected_participants(conn, drill_id: int, plan: dict) -> None:
    """Who is expected: the participating streets, the grid leaders of the participating grids
    (of every grid in the streets for a street drill), the coordinator."""
    conn.execute("DELETE FROM drill_participants WHERE drill_id = ? AND attended = 0", (drill_id,))
    rows = []
    for s in plan["streets"]:
        name = conn.execute("SELECT name FROM streets WHERE code = ?", (s,)).fetchone()[0]
        rows.append((drill_id, "street", s, name, "street_centre", s))
    if plan["grids"]:
        leaders = conn.execute(
            f"SELECT uid, name, street_code FROM people WHERE role = 'grid_leader' AND grid_id IN "
            f"({','.join('?' * len(plan['grids']))})", plan["grids"]).fetchall()  # fmt: skip
    elif plan["streets"] and plan["level"] == "street":
        leaders = conn.execute(
            f"SELECT uid, name, street_code FROM people WHERE role = 'grid_leader' AND street_code IN "
            f"({','.join('?' * len(plan['streets']))})", plan["streets"]).fetchall()  # fmt: skip
    else:
        leaders = []
    rows += [(drill_id, "person", r[0], r[1], "grid_leader", r[2]) for r in leaders]
    if plan["coordinator"]:
        r = conn.execute("SELECT name FROM people WHERE uid = ?", (plan["coordinator"],)).fetchone()
        rows.append((drill_id, "person", plan["coordinator"], r[0] if r else plan["coordinator"], "coordinator", None))
    conn.executemany(
        "INSERT OR IGNORE INTO drill_participants (drill_id, kind, ref, name, role, street_code) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


# -- plans and series ----------------------------------------------------------------------------
def _placed(conn, p: dict, injects: Sequence[Mapping]) -> list[dict]:
    """Injects without a location (e.g. from a template) go to the plan's grids in turn, else to
    its streets' centres."""
    out = []
    spots: list[tuple] = [("grid", g) for g in p["grids"]]
    if not spots:
        spots = [("street", s) for s in p["streets"]]
    for i, inj in enumerate(injects):
        inj = dict(inj)
        if inj.get("grid_id") is None and (inj.get("lon") is None or inj.get("lat") is None) and spots:
            kind, code = spots[i % len(spots)]
            if kind == "grid":
                inj["grid_id"] = code
            else:
                r = conn.execute("SELECT lon, lat FROM streets WHERE code = ?", (code,)).fetchone()
                inj["lon"], inj["lat"] = r[0], r[1]
        out.append(inj)
    return out


def create_drill(replica, plan: Mapping, *, actor: str, injects: Sequence[Mapping] = ()) -> int:
    """One scheduled drill (and its injects); returns ``drills.id``."""
    with replica.write(*TOPICS) as conn:
        p = validate_plan(conn, plan)
        now = timeutil.now_iso()
        drill_id = _insert_drill(conn, p, now)
        _log(conn, drill_id, now, actor, "plan", note=p["title"])
        for i, inj in enumerate(_placed(conn, p, injects), 1):
            try:
                _insert_inject(replica, conn, drill_id, inj, seq=i)
            except DrillError as exc:
                raise DrillError(f"第 {i} 条注入 inject {i}: {exc}") from None
        return drill_id


def create_series(replica, plan: Mapping, rule: Mapping, starts: Sequence[str], *, actor: str,
                  injects: Sequence[Mapping] = ()) -> list[int]:  # fmt: skip
    """A series (``rule``: weekly/monthly/dates …) and one drill per start in ``starts`` (expanded
    by ``app.drills.recurrence``), in one transaction."""
    if not starts:
        raise DrillError("重复规则没有产生任何场次 the recurrence yields no occurrence")
    with replica.write(*TOPICS) as conn:
        p = validate_plan(conn, dict(plan, starts_at=starts[0]))
        now = timeutil.now_iso()
        cur = conn.execute(
            "INSERT INTO drill_series (uid, title, theme, rule, weekday, month_day, interval, time_of_day, first_date, "
            "until_date, count, dates, template_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_ulid(), p["title"], p["theme"], rule["rule"], rule.get("weekday"), rule.get("month_day"),
             int(rule.get("interval") or 1), rule.get("time_of_day") or starts[0][11:16], starts[0][:10],
             rule.get("until_date"), rule.get("count"), json.dumps(list(rule.get("dates") or [])),
             p.get("template_id"), now),
        )  # fmt: skip
        series_id = int(cur.lastrowid)
        ids = []
        for s in starts:
            q = dict(p, starts_at=_iso(s, "starts_at"), series_id=series_id)
            drill_id = _insert_drill(conn, q, now)
            _log(conn, drill_id, now, actor, "plan", note=f"series #{series_id}")
            for i, inj in enumerate(_placed(conn, q, injects), 1):
                try:
                    _insert_inject(replica, conn, drill_id, inj, seq=i)
                except DrillError as exc:
                    raise DrillError(f"第 {i} 条注入 inject {i}: {exc}") from None
            ids.append(drill_id)
        return ids


def update_plan(replica, drill_id: int, plan: Mapping, *, actor: str) -> None:
    """Change a scheduled drill's plan (a running or finished drill's plan is history)."""
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] != "scheduled":
            raise DrillError(f"演练 #{drill_id} 状态为 {d['status']}，计划不能再修改 only a scheduled drill's plan can change")
        p = validate_plan(conn, {**_plan_of(d), **plan})
        now = timeutil.now_iso()
        conn.execute(
            "UPDATE drills SET title=?, theme=?, level=?, starts_at=?, streets=?, grids=?, coordinator=?, "
            "duration_min=?, objectives=?, updated_at=?, version=version+1 WHERE id=?",
            (p["title"], p["theme"], p["level"], p["starts_at"], json.dumps(p["streets"]), json.dumps(p["grids"]),
             p["coordinator"], p["duration_min"], p["objectives"], now, drill_id),
        )  # fmt: skip
        _expected_participants(conn, drill_id, p)
        _log(conn, drill_id, now, actor, "edit")


def cancel_drill(replica, drill_id: int, *, actor: str, reason: str | None = None) -> None:
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] != "scheduled":
            raise DrillError(f"只能取消未开始的演练 only a scheduled drill can be cancelled (#{drill_id} is {d['status']})")
        now = timeutil.now_iso()
        conn.execute("UPDATE drills SET status='cancelled', stop_reason=?, updated_at=? WHERE id=?", (reason, now, drill_id))
        _log(conn, drill_id, now, actor, "cancel", note=reason)


def _plan_of(d: dict) -> dict:
    return {k: d[k] for k in ("title", "theme", "level", "starts_at", "duration_min", "coordinator", "objectives",
                              "template_id", "series_id")} | {"streets": json.loads(d["streets"] or "[]"),
                                                              "grids": json.loads(d["grids"] or "[]")}  # fmt: skip


# -- injects -------------------------------------------------------------------------------------
def _insert_inject(replica, conn, drill_id: int, inj: Mapping, *, seq: int | None = None,
                   inject_id: int | None = None) -> int:  # fmt: skip
    from db.event_ops import InvalidRecord, locate

    title = str(inj.get("title") or "").strip()
    if not title:
        raise DrillError("注入缺少标题 an inject needs a title")
    try:
        offset = int(inj.get("offset_s", 0))
    except (TypeError, ValueError):
        raise DrillError(f"时间偏移无效 offset_s must be seconds, not {inj.get('offset_s')!r}") from None
    if offset < 0:
        raise DrillError("时间偏移不能为负 offset_s must be ≥ 0")
    category = str(inj.get("category") or "").strip()
    if conn.execute("SELECT 1 FROM categories WHERE code = ?", (category,)).fetchone() is None:
        raise DrillError(f"未知事件类型 unknown category {category!r}")
    lon, lat, grid = inj.get("lon"), inj.get("lat"), inj.get("grid_id")
    if grid and (lon is None or lat is None):
        r = conn.execute("SELECT lon, lat FROM grids WHERE id = ?", (grid,)).fetchone()
        if r is None:
            raise DrillError(f"没有该网格 unknown grid {grid!r}")
        lon, lat = r
    if lon is None or lat is None:
        raise DrillError("注入须有位置（点或网格） an inject needs a point or a grid")
    try:
        place = locate(replica, lon, lat)
    except InvalidRecord as exc:
        raise DrillError(f"注入位置被拒绝 inject refused: {exc}") from None
    if place["grid_id"] is None:
        raise DrillError(f"注入位置不在任何网格内 inject point ({lon}, {lat}) is in no grid")
    level = inj.get("target_level") or "street"
    if level not in LEVELS:
        raise DrillError(f"目标层级无效 target_level {level!r}")
    stage = inj.get("expected_stage") or "on_site"
    if stage not in STAGES:
        raise DrillError(f"考核环节无效 expected_stage must be one of {', '.join(STAGES)}")
    try:
        allowed = float(inj.get("allowed_min") or 10)
    except (TypeError, ValueError):
        raise DrillError(f"时限无效 allowed_min {inj.get('allowed_min')!r}") from None
    if allowed <= 0:
        raise DrillError("时限须大于0 allowed_min must be > 0")
    dept = inj.get("target_department") or None
    if dept and conn.execute("SELECT 1 FROM departments WHERE code = ?", (dept,)).fetchone() is None:
        raise DrillError(f"未知部门 unknown department {dept!r}")
    klass = inj.get("class") or "emergency"
    parent = inj.get("parent_id")
    if parent is None and inj.get("parent_seq"):
        r = conn.execute("SELECT id FROM drill_injects WHERE drill_id = ? AND seq = ?",
                         (drill_id, int(inj["parent_seq"]))).fetchone()  # fmt: skip
        parent = r[0] if r else None
    values = {
        "offset_s": offset, "title": title, "content": (str(inj.get("content") or "").strip() or None),
        "category": category, "class": klass, "source": inj.get("source") or "drill",
        "lon": place["lon"], "lat": place["lat"], "grid_id": place["grid_id"], "street_code": place["street_code"],
        "target_level": level, "target_department": dept, "expected_action": inj.get("expected_action"),
        "expected_stage": stage, "allowed_min": allowed, "parent_id": parent,
    }  # fmt: skip
    if inject_id is not None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        conn.execute(f"UPDATE drill_injects SET {sets} WHERE id = :id", dict(values, id=inject_id))
        return inject_id
    if seq is None:
        seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM drill_injects WHERE drill_id = ?", (drill_id,)).fetchone()[0]
    cols = ["uid", "drill_id", "seq", *values]
    cur = conn.execute(
        f"INSERT INTO drill_injects ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})",
        dict(values, uid=new_ulid(), drill_id=drill_id, seq=seq),
    )
    return int(cur.lastrowid)


def _editable(d: dict) -> None:
    if d["status"] in ("stopped", "completed", "cancelled"):
        raise DrillError(f"演练 #{d['id']} 已结束，脚本不能再修改 a finished drill's scenario is history")


def add_inject(replica, drill_id: int, inject: Mapping, *, actor: str) -> int:
    """Add an inject (MSEL row). A point outside the district is refused with a message."""
    with replica.write(*TOPICS) as conn:
        _editable(_drill(conn, drill_id))
        return _insert_inject(replica, conn, drill_id, inject)


def update_inject(replica, inject_id: int, inject: Mapping, *, actor: str) -> None:
    with replica.write(*TOPICS) as conn:
        r = conn.execute("SELECT * FROM drill_injects WHERE id = ?", (inject_id,)).fetchone()
        if r is None:
            raise DrillError(f"没有该注入 no inject #{inject_id}")
        if r["status"] != "pending":
            raise DrillError(f"注入 #{inject_id} 已下发，不能修改 an inject already sent cannot change")
        _editable(_drill(conn, r["drill_id"]))
        merged = dict(r) | dict(inject)
        if "grid_id" in inject and "lon" not in inject:
            merged["lon"] = merged["lat"] = None
        _insert_inject(replica, conn, r["drill_id"], merged, inject_id=inject_id)


def delete_inject(replica, inject_id: int, *, actor: str) -> None:
    with replica.write(*TOPICS) as conn:
        r = conn.execute("SELECT drill_id, status FROM drill_injects WHERE id = ?", (inject_id,)).fetchone()
        if r is None:
            raise DrillError(f"没有该注入 no inject #{inject_id}")
        if r["status"] != "pending":
            raise DrillError(f"注入 #{inject_id} 已下发，不能删除 an inject already sent stays on record")
        conn.execute("UPDATE drill_injects SET parent_id = NULL WHERE parent_id = ?", (inject_id,))
        conn.execute("DELETE FROM drill_media WHERE inject_id = ?", (inject_id,))
        conn.execute("DELETE FROM drill_injects WHERE id = ?", (inject_id,))


# -- the scenario clock --------------------------------------------------------------------------
def _elapsed(d: dict, at: str) -> float:
    if d["status"] != "running" or not d["anchor_at"]:
        return float(d["elapsed_s"] or 0)
    wall = (timeutil.parse(at) - timeutil.parse(d["anchor_at"])).total_seconds()
    return float(d["elapsed_s"] or 0) + max(0.0, wall) * float(d["speed"] or 1)


def start(replica, drill_id: int, *, actor: str, at: str | None = None) -> dict:
    """Start a scheduled drill (the clock runs from 0). A drill cannot be started twice."""
    at = at or timeutil.now_iso()
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] != "scheduled":
            raise DrillError(f"演练 #{drill_id} 不能重复开始（状态：{d['status']}） a drill cannot be started twice")
        conn.execute(
            "UPDATE drills SET status='running', started_at=?, anchor_at=?, heartbeat_at=?, elapsed_s=0, "
            "updated_at=?, version=version+1 WHERE id=?", (at, at, at, at, drill_id))  # fmt: skip
        _log(conn, drill_id, at, actor, "start", 0.0, d["speed"])
        return _drill(conn, drill_id)


def pause(replica, drill_id: int, *, actor: str, at: str | None = None, note: str | None = None) -> dict:
    at = at or timeutil.now_iso()
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] != "running":
            raise DrillError(f"演练 #{drill_id} 未在进行，不能暂停 (status {d['status']})")
        el = _elapsed(d, at)
        conn.execute("UPDATE drills SET status='paused', paused_at=?, elapsed_s=?, anchor_at=NULL, updated_at=?, "
                     "version=version+1 WHERE id=?", (at, el, at, drill_id))  # fmt: skip
        _log(conn, drill_id, at, actor, "pause", el, d["speed"], note)
        return _drill(conn, drill_id)


def resume(replica, drill_id: int, *, actor: str, at: str | None = None) -> dict:
    at = at or timeutil.now_iso()
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] != "paused":
            raise DrillError(f"演练 #{drill_id} 未暂停，不能继续 (status {d['status']})")
        conn.execute("UPDATE drills SET status='running', paused_at=NULL, anchor_at=?, heartbeat_at=?, updated_at=?, "
                     "version=version+1 WHERE id=?", (at, at, at, drill_id))  # fmt: skip
        _log(conn, drill_id, at, actor, "resume", d["elapsed_s"], d["speed"])
        return _drill(conn, drill_id)


def set_speed(replica, drill_id: int, speed: float, *, actor: str, at: str | None = None) -> dict:
    """Change the speed factor; the scenario time reached so far is kept."""
    at = at or timeutil.now_iso()
    try:
        speed = float(speed)
    except (TypeError, ValueError):
        raise DrillError(f"倍速无效 speed {speed!r}") from None
    if not 0.1 <= speed <= MAX_SPEED:
        raise DrillError(f"倍速须在 0.1–{MAX_SPEED:g} 之间 speed must be 0.1…{MAX_SPEED:g}")
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] in ("stopped", "completed", "cancelled"):
            raise DrillError(f"演练 #{drill_id} 已结束 the drill has ended")
        el = _elapsed(d, at)
        anchor = at if d["status"] == "running" else None
        conn.execute("UPDATE drills SET speed=?, elapsed_s=?, anchor_at=?, updated_at=?, version=version+1 WHERE id=?",
                     (speed, el, anchor, at, drill_id))  # fmt: skip
        _log(conn, drill_id, at, actor, "speed", el, speed)
        return _drill(conn, drill_id)


def stop(replica, drill_id: int, *, actor: str, at: str | None = None, reason: str | None = None) -> dict:
    """End a running or paused drill. Every record stays. When injects are still pending or the
    planned duration has not elapsed, the drill is ``stopped`` (stopped early), else ``completed``."""
    at = at or timeutil.now_iso()
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] not in ("running", "paused"):
            raise DrillError(f"演练 #{drill_id} 未在进行，不能结束 (status {d['status']})")
        el = _elapsed(d, at)
        pending = conn.execute("SELECT count(*) FROM drill_injects WHERE drill_id = ? AND status = 'pending' "
                               "AND parent_id IS NULL", (drill_id,)).fetchone()[0]  # fmt: skip
        early = pending > 0 or el + 1 < d["duration_min"] * 60
        status = "stopped" if early else "completed"
        if early and not reason:
            reason = f"{pending} 条注入未下发" if pending else "未到计划时长"
        conn.execute("UPDATE drill_injects SET status='skipped' WHERE drill_id = ? AND status = 'pending'", (drill_id,))
        conn.execute("UPDATE drills SET status=?, elapsed_s=?, anchor_at=NULL, ended_at=?, stop_reason=?, updated_at=?, "
                     "version=version+1 WHERE id=?", (status, el, at, reason if early else None, at, drill_id))  # fmt: skip
        _log(conn, drill_id, at, actor, "stop" if early else "complete", el, d["speed"], reason if early else None)
        return _drill(conn, drill_id)


def heartbeat(replica, drill_id: int, *, at: str | None = None) -> None:
    """The coordinator's console is alive (written every few seconds while the drill runs)."""
    at = at or timeutil.now_iso()
    with replica.write() as conn:
        conn.execute("UPDATE drills SET heartbeat_at = ? WHERE id = ? AND status = 'running'", (at, drill_id))


def pause_orphaned(replica, drill_id: int, *, actor: str) -> dict | None:
    """A running drill whose console vanished (stale heartbeat) is paused where its last
    heartbeat left it; returns the paused row or None when nothing was stale."""
    with replica.write(*TOPICS) as conn:
        d = _drill(conn, drill_id)
        if d["status"] != "running" or not d["heartbeat_at"]:
            return None
        at = d["heartbeat_at"]
        el = _elapsed(d, at)
        conn.execute("UPDATE drills SET status='paused', paused_at=?, elapsed_s=?, anchor_at=NULL, updated_at=?, "
                     "version=version+1 WHERE id=?", (at, el, timeutil.now_iso(), drill_id))  # fmt: skip
        _log(conn, drill_id, at, actor, "pause", el, d["speed"], "协调台关闭，演练自动暂停 coordinator console closed")
        return _drill(conn, drill_id)


# -- firing injects ------------------------------------------------------------------------------
def fire_inject(replica, inject_id: int, *, actor: str, at: str | None = None, elapsed_s: float | None = None) -> int:
    """The inject becomes a drill event (``events.drill_id`` set, source ``drill`` unless the
    scenario names the channel it simulates) through ``db.event_ops.create_event``; returns the
    event id. Idempotent: the external id ``DRILL-<drill uid>-<seq>`` makes a second firing (two
    consoles) find the first event."""
    from db.event_ops import DuplicateEvent, create_event

    at = at or timeutil.now_iso()
    conn = replica.reader()
    try:
        r = conn.execute("SELECT i.*, d.uid AS drill_uid, d.status AS drill_status FROM drill_injects i "
                         "JOIN drills d ON d.id = i.drill_id WHERE i.id = ?", (inject_id,)).fetchone()  # fmt: skip
    finally:
        conn.close()
    if r is None:
        raise DrillError(f"没有该注入 no inject #{inject_id}")
    if r["status"] == "fired":
        return int(r["event_id"])
    record = {
        "source": r["source"], "external_id": f"DRILL-{r['drill_uid']}-{r['seq']}", "category": r["category"],
        "class": r["class"], "title": r["title"], "description": r["content"], "lon": r["lon"], "lat": r["lat"],
        "reported_at": at, "drill_id": r["drill_id"],
    }  # fmt: skip
    try:
        event_id = create_event(replica, record, actor=actor, at=at)
    except DuplicateEvent as exc:
        event_id = exc.existing_id
    with replica.write(*TOPICS) as conn:
        conn.execute("UPDATE drill_injects SET status='fired', fired_at=?, fired_elapsed_s=?, event_id=? "
                     "WHERE id=? AND status <> 'fired'", (at, elapsed_s, event_id, inject_id))  # fmt: skip
        conn.execute("UPDATE drill_media SET event_id = ? WHERE inject_id = ? AND event_id IS NULL", (event_id, inject_id))
        _log(conn, r["drill_id"], at, actor, "inject", elapsed_s, None, f"#{r['seq']} {r['title']} → 事件 #{event_id}")
    return event_id


def skip_inject(replica, inject_id: int, *, actor: str, reason: str, at: str | None = None) -> None:
    at = at or timeutil.now_iso()
    with replica.write(*TOPICS) as conn:
        r = conn.execute("SELECT drill_id, seq, status FROM drill_injects WHERE id = ?", (inject_id,)).fetchone()
        if r is None or r["status"] != "pending":
            return
        conn.execute("UPDATE drill_injects SET status='skipped' WHERE id = ?", (inject_id,))
        _log(conn, r["drill_id"], at, actor, "skip", None, None, f"#{r['seq']} {reason}")


# -- participants, media, findings, evaluation ----------------------------------------------------
def set_attendance(replica, drill_id: int, kind: str, ref: str, attended: bool, *, actor: str,
                   at: str | None = None, name: str | None = None) -> None:  # fmt: skip
    """Mark who took part (a participant not expected is added with ``expected = 0``)."""
    at = at or timeutil.now_iso()
    with replica.write(*TOPICS) as conn:
        _drill(conn, drill_id)
        cur = conn.execute("UPDATE drill_participants SET attended=?, checked_in_at=? WHERE drill_id=? AND kind=? AND ref=?",
                           (int(attended), at if attended else None, drill_id, kind, ref))  # fmt: skip
        if cur.rowcount == 0:
            conn.execute("INSERT INTO drill_participants (drill_id, kind, ref, name, expected, attended, checked_in_at) "
                         "VALUES (?, ?, ?, ?, 0, ?, ?)", (drill_id, kind, ref, name or ref, int(attended),
                                                          at if attended else None))  # fmt: skip


def add_media(replica, media: Mapping, *, actor: str) -> int:
    """A field media reference (file path or stream URL) with its time and device, for an inject,
    a drill event or a real event."""
    kind = media.get("kind")
    if kind not in MEDIA_KINDS:
        raise DrillError(f"媒体类型无效 kind must be one of {', '.join(MEDIA_KINDS)}")
    uri = str(media.get("uri") or "").strip()
    if not uri:
        raise DrillError("缺少媒体地址 uri (file path or URL) is required")
    if not any(media.get(k) for k in ("drill_id", "inject_id", "event_id")):
        raise DrillError("媒体须关联演练、注入或事件 media need a drill, inject or event")
    with replica.write("drill_media") as conn:
        cur = conn.execute(
            "INSERT INTO drill_media (uid, drill_id, inject_id, event_id, kind, uri, title, recorded_at, device, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_ulid(), media.get("drill_id"), media.get("inject_id"), media.get("event_id"), kind, uri,
             media.get("title"), _iso(media.get("recorded_at") or timeutil.now_iso(), "recorded_at"),
             media.get("device"), timeutil.now_iso()),
        )  # fmt: skip
        return int(cur.lastrowid)


def set_evaluation(replica, drill_id: int, *, strengths: str | None, improvements: str | None, actor: str) -> None:
    with replica.write(*TOPICS) as conn:
        _drill(conn, drill_id)
        now = timeutil.now_iso()
        conn.execute("UPDATE drills SET strengths=?, improvements=?, updated_at=? WHERE id=?",
                     (strengths, improvements, now, drill_id))  # fmt: skip
        _log(conn, drill_id, now, actor, "evaluate")


def add_finding(replica, drill_id: int, action: str, *, owner: str | None, due_date: str | None, actor: str,
                status: str = "open") -> int:  # fmt: skip
    """An improvement-plan row (action, owner, due date), tracked later by its status."""
    action = (action or "").strip()
    if not action:
        raise DrillError("改进措施不能为空 the action is required")
    if status not in FINDING_STATUSES:
        raise DrillError(f"状态无效 status must be one of {', '.join(FINDING_STATUSES)}")
    if due_date:
        try:
            dt.date.fromisoformat(due_date[:10])
        except ValueError:
            raise DrillError(f"日期无效 due date {due_date!r} (YYYY-MM-DD)") from None
    with replica.write(*TOPICS) as conn:
        _drill(conn, drill_id)
        now = timeutil.now_iso()
        cur = conn.execute("INSERT INTO drill_findings (uid, drill_id, action, owner, due_date, status, created_at, "
                           "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (new_ulid(), drill_id, action, owner, due_date and due_date[:10], status, now, now))  # fmt: skip
        return int(cur.lastrowid)


def set_finding_status(replica, finding_id: int, status: str, *, actor: str) -> None:
    if status not in FINDING_STATUSES:
        raise DrillError(f"状态无效 status must be one of {', '.join(FINDING_STATUSES)}")
    with replica.write(*TOPICS) as conn:
        cur = conn.execute("UPDATE drill_findings SET status=?, updated_at=? WHERE id=?",
                           (status, timeutil.now_iso(), finding_id))  # fmt: skip
        if cur.rowcount == 0:
            raise DrillError(f"没有该改进项 no finding #{finding_id}")
