"""Synthetic events and their lifecycles for the demo replica (演示数据).

Vectorised with numpy: report times follow daily and weekly rhythms, places follow
grid population plus a few hot spots, and each event walks the lifecycle of
``app.lifecycle`` as far as it got by the demo's end time. Every stage is one
``event_log`` row. Output comes in chunks so a 1M-event replica stays in bounded memory.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson

from app import workcal
from db.demo import texts
from db.demo.timeline import iso_array, lognormal, ulids
from db.ids import ulid_at
from db.spatial import sample_points

SOURCES = ("grid_app", "hotline_12345", "citymgmt", "video_ai", "iot", "ecology_eye", "manual", "robot")
EXTERNAL_PREFIX = {
    "grid_app": "WG",
    "hotline_12345": "GD",
    "citymgmt": "CG",
    "video_ai": "XL",
    "iot": "IOT",
    "ecology_eye": "STY",
    "manual": "RG",
    "robot": "JQR",
}
SOURCE_LABEL = {
    "grid_app": "网格通App",
    "hotline_12345": "12345热线",
    "citymgmt": "数字城管",
    "video_ai": "雪亮视频AI",
    "iot": "物联感知",
    "ecology_eye": "长江生态眼",
    "manual": "人工录入",
    "robot": "网格机器人",
}
HOUR_WEIGHTS = np.array(
    [0.25, 0.15, 0.1, 0.1, 0.12, 0.2, 0.5, 1.2, 2.0, 2.6, 2.6, 2.2, 1.5, 1.7, 2.3, 2.4, 2.2, 1.9, 1.5, 1.3, 1.1, 0.9, 0.6, 0.4]
)
WEEKDAY_WEIGHTS = np.array([1.05, 1.0, 1.0, 1.0, 1.02, 0.78, 0.7])
EVENT_COLUMNS = (
    "id", "uid", "source", "external_id", "category", "class", "priority", "title", "description",
    "reporter_name", "reporter_phone", "reporter_id_no", "lon", "lat", "src_datum", "src_lon", "src_lat",
    "address", "grid_id", "community_code", "street_code", "status", "reported_at", "accepted_at",
    "dispatched_at", "acknowledged_at", "on_site_at", "handled_at", "verified_at", "closed_at", "rejected_at",
    "merged_into", "response_due_at", "arrival_due_at", "handle_due_at", "assignee_kind", "assignee_code",
    "satisfaction", "drill_id", "version", "rev", "updated_at",
)  # fmt: skip
LOG_COLUMNS = ("uid", "event_id", "at", "actor", "action", "from_status", "to_status", "note", "payload")
WHISTLE_COLUMNS = ("id", "uid", "event_id", "level", "blown_by", "blown_at", "reason", "outcome", "closed_at", "closed_by")
WHISTLE_DEPT_COLUMNS = ("whistle_id", "department_code", "deadline_at", "checked_in_at", "checked_in_by", "late")
# categories whose events often need several departments on site (网格吹哨、部门报到)
WHISTLE_PREFIXES = ("SAFETY", "BUILD", "DISPUTE", "ECO", "EMG", "FLOOD", "SEC", "EPI")
PARTNER_DEPTS = ("PSB", "CITYMGMT", "HOUSING", "SAMR", "FIRE", "MUNICIPAL", "ECO", "STREET_OFFICE")
WHISTLE_DEADLINE_MIN = 30


@dataclass
class EventContext:
    """What the event generator needs from the rest of the demo."""

    until: dt.datetime
    days: int
    categories: list[dict]
    grids: list[dict]  # id, community_code, street_code, population, geometry
    street_names: dict[str, str]
    estates_by_grid: dict[str, list[str]]
    roads_by_street: dict[str, list[str]]
    leader_by_grid: dict[str, str]
    operators_by_street: dict[str | None, list[str]]
    liaisons_by_dept: dict[str, list[str]]
    hotspots: list[tuple[int, int]] = field(default_factory=list)  # (grid index, category index)
    next_whistle_id: int = 1


def _leaf_categories(categories: list[dict]) -> list[dict]:
    parents = {c["parent"] for c in categories if c.get("parent")}
    return [c for c in categories if c["code"] not in parents]


def _category_weights(leaves: list[dict]) -> np.ndarray:
    w = np.ones(len(leaves))
    for i, c in enumerate(leaves):
        code = c["code"]
        if c["class"] == "emergency":
            w[i] = 0.06
        elif c["class"] == "assigned":
            w[i] = 0.25
        if code == "UNCLASSIFIED":
            w[i] = 0.35
        if code.startswith("ECO"):
            w[i] = 0.2
        if any(k in code for k in ("GARBAGE", "PARKING", "EBIKE", "NOISE", "STALL", "LIGHT")):
            w[i] *= 3.0
    return w / w.sum()


def _source_for(code: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if code.startswith("IOT"):
        return np.full(n, "iot", dtype=object)
    if code.startswith("ECO"):
        return rng.choice(np.array(["ecology_eye", "video_ai", "grid_app"], dtype=object), n, p=[0.7, 0.2, 0.1])
    if code.startswith("ASSIGN"):
        return np.full(n, "manual", dtype=object)  # 交办 tasks come from leaders, entered by the centre
    if code.startswith(("LIVE", "DISPUTE", "HOTLINE", "EPI")):
        # people's needs and disputes reach the centre through residents and grid workers, not cameras
        return rng.choice(np.array(["grid_app", "hotline_12345", "manual"], dtype=object), n, p=[0.55, 0.4, 0.05])
    if code == "UNCLASSIFIED":
        return rng.choice(np.array(["hotline_12345", "citymgmt", "grid_app"], dtype=object), n, p=[0.6, 0.2, 0.2])
    return rng.choice(
        np.array(["grid_app", "hotline_12345", "citymgmt", "video_ai", "manual"], dtype=object),
        n,
        p=[0.42, 0.3, 0.18, 0.06, 0.04],
    )


def sample_report_times(rng: np.random.Generator, until: dt.datetime, days: int, n: int) -> np.ndarray:
    """``n`` sorted epoch seconds over ``days`` days ending at ``until`` with daily/weekly rhythm."""
    end = int(until.timestamp())
    start_day = (until - dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    slots = []
    weights = []
    for d in range(days + 1):
        day = start_day + dt.timedelta(days=d)
        trend = 0.9 + 0.2 * d / max(days, 1)
        for h in range(24):
            t0 = int((day + dt.timedelta(hours=h)).timestamp())
            if t0 >= end:
                break
            slots.append(t0)
            weights.append(HOUR_WEIGHTS[h] * WEEKDAY_WEIGHTS[day.weekday()] * trend)
    slots_a = np.array(slots, dtype=np.int64)
    w = np.array(weights)
    idx = rng.choice(len(slots_a), n, p=w / w.sum())
    secs = slots_a[idx] + rng.integers(0, 3600, n)
    return np.sort(np.minimum(secs, end - 1))


def _due_seconds(reported: np.ndarray, limit: float | None, unit: str | None) -> np.ndarray:
    """Deadlines for many reports of one category, memoised per reported minute-of-week."""
    out = np.full(len(reported), -1, dtype=np.int64)
    if limit is None or not unit:
        return out
    tz = workcal.dt.timezone(dt.timedelta(hours=8))
    cache: dict[int, int] = {}
    for i, s in enumerate(reported.tolist()):
        key = s // 60
        if key not in cache:
            start = dt.datetime.fromtimestamp(key * 60, tz)
            due = workcal.due_at(start, limit, unit)
            cache[key] = int(due.timestamp()) if due else -1
        out[i] = cache[key] + (s % 60) if cache[key] >= 0 else -1
    return out


def generate_events(ctx: EventContext, n: int, seed: int, *, chunk: int = 100_000) -> Iterator[tuple[list, list, dict]]:
    """Yield ``(event_rows, log_rows, extra)`` chunks; event ids run from 1 in report order.

    ``extra`` holds the chunk's ``whistles`` and ``whistle_departments`` rows."""
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    leaves = _leaf_categories(ctx.categories)
    cat_p = _category_weights(leaves)
    pops = np.array([max(g["population"], 1) for g in ctx.grids], dtype=float)
    grid_p = pops / pops.sum()
    until_s = int(ctx.until.timestamp())
    times = sample_report_times(rng, ctx.until, ctx.days, n)
    next_id = 1
    for lo in range(0, n, chunk):
        t = times[lo : lo + chunk]
        rows, logs, extra = _chunk(ctx, t, next_id, rng, prng, leaves, cat_p, grid_p, until_s)
        next_id += len(t)
        yield rows, logs, extra


def _chunk(ctx, rep, first_id, rng, prng, leaves, cat_p, grid_p, until_s):  # noqa: C901 - one pass, kept linear
    m = len(rep)
    ids = np.arange(first_id, first_id + m)
    cat_idx = rng.choice(len(leaves), m, p=cat_p)
    grid_idx = rng.choice(len(ctx.grids), m, p=grid_p)
    # hot spots: ~8% of events, weighted toward the recent weeks
    if ctx.hotspots:
        hot = rng.random(m) < 0.08 * (0.5 + (rep - rep.min()) / max(1, np.ptp(rep)))
        pick = rng.integers(0, len(ctx.hotspots), m)
        hs = np.array(ctx.hotspots)[pick]
        grid_idx = np.where(hot, hs[:, 0], grid_idx)
        cat_idx = np.where(hot, hs[:, 1], cat_idx)

    # places: sample points per grid (vectorised per grid)
    lon = np.empty(m)
    lat = np.empty(m)
    order = np.argsort(grid_idx, kind="stable")
    gsorted = grid_idx[order]
    bounds = np.flatnonzero(np.diff(gsorted)) + 1
    for part in np.split(order, bounds):
        if len(part) == 0:
            continue
        g = ctx.grids[int(grid_idx[part[0]])]
        x, y = sample_points(g["geometry"], len(part), rng)
        lon[part], lat[part] = x, y

    # categories → class, source, clocks
    klass = np.array([leaves[i]["class"] for i in cat_idx], dtype=object)
    codes = np.array([leaves[i]["code"] for i in cat_idx], dtype=object)
    source = np.empty(m, dtype=object)
    for ci in np.unique(cat_idx):
        sel = cat_idx == ci
        source[sel] = _source_for(leaves[ci]["code"], rng, int(sel.sum()))
    arrival_clock = np.array([bool(leaves[i]["arrival_clock"]) for i in cat_idx])
    resp_min = np.array([leaves[i]["response_limit_min"] or 60 for i in cat_idx], dtype=float)
    priority = np.where(klass == "emergency", 1, np.where(klass == "assigned", 2, 3))
    low = (priority == 3) & (rng.random(m) < 0.15)
    priority = np.where(low, 4, priority)
    urgent = (priority == 3) & (source == "hotline_12345") & (rng.random(m) < 0.08)
    priority = np.where(urgent, 2, priority)

    # deadlines
    handle_due = np.full(m, -1, dtype=np.int64)
    for ci in np.unique(cat_idx):
        sel = np.flatnonzero(cat_idx == ci)
        c = leaves[ci]
        handle_due[sel] = _due_seconds(rep[sel], c["handle_limit"], c["handle_unit"])
    response_due = rep + (resp_min * 60).astype(np.int64)
    arrival_due = np.where(arrival_clock, rep + 600, -1)

    # outcomes: rejected, merged, deferred, rework, stuck (overdue backlog)
    u = rng.random(m)
    rejected = u < 0.025
    merged = (u >= 0.025) & (u < 0.037)
    deferred = (rng.random(m) < 0.02) & ~rejected & ~merged
    rework = (rng.random(m) < 0.04) & ~rejected & ~merged
    emerg = klass == "emergency"

    # stage times (seconds after report); the arrival clock is the district's 10-minute promise
    # events under the 10-minute clock go to the grid worker at once (grab-and-go dispatch)
    fast = arrival_clock | emerg
    accept = rep + lognormal(rng, np.where(fast, 35, 150), 0.7, m).astype(np.int64) + 5
    dispatch = accept + lognormal(rng, np.where(fast, 40, 280), 0.6, m).astype(np.int64) + 5
    ack = dispatch + lognormal(rng, np.where(fast, 35, 200), 0.6, m).astype(np.int64) + 5
    arrive_clock = rep + lognormal(rng, 400, 0.38, m).astype(np.int64)
    arrive_other = ack + lognormal(rng, 5400, 0.9, m).astype(np.int64)
    arrive = np.where(arrival_clock, np.maximum(arrive_clock, ack + 30), arrive_other)
    defer_at = ack + 600
    resume_at = defer_at + lognormal(rng, 86400, 0.5, m).astype(np.int64)
    arrive = np.where(deferred, np.maximum(arrive, resume_at + 600), arrive)
    span = np.where(handle_due > 0, handle_due - rep, 3 * 86400)
    frac = rng.beta(2.2, 3.0, m) * 1.15  # ~6% beyond the deadline
    handle = np.maximum(arrive + 300, rep + (span * frac).astype(np.int64))
    handle = np.where(deferred, handle + (resume_at - defer_at), handle)
    # whistles: the grid worker on site summons departments, who must check in within 30 minutes
    whistle_cat = np.array([leaves[i]["code"].startswith(WHISTLE_PREFIXES) for i in cat_idx])
    whistled = ~rejected & ~merged & (rng.random(m) < np.where(whistle_cat | emerg, 0.08, 0.002))
    blown = arrive + 120 + rng.integers(0, 240, m)
    n_depts = rng.integers(1, 4, m)
    checkin = blown[:, None] + lognormal(rng, 14 * 60, 0.55, m * 3).reshape(m, 3).astype(np.int64)
    last_checkin = np.where(np.arange(3)[None, :] < n_depts[:, None], checkin, 0).max(axis=1)
    handle = np.where(whistled, np.maximum(handle, last_checkin + 1200), handle)
    rework_gap = lognormal(rng, 4 * 3600, 0.5, m).astype(np.int64)
    rework_handle = handle + rework_gap + 7200
    final_handle = np.where(rework, rework_handle, handle)
    verify = final_handle + lognormal(rng, 3 * 3600, 0.8, m).astype(np.int64)
    close = verify + lognormal(rng, 3600, 0.8, m).astype(np.int64)
    stuck = (rng.random(m) < 0.0015) & ~rejected & ~merged
    stuck_stage = rng.integers(0, 3, m)  # stays dispatched / acknowledged / on site

    satisfaction = np.where(rng.random(m) < 0.6, rng.choice([1, 2, 3, 4, 5], m, p=[0.02, 0.02, 0.05, 0.26, 0.65]), 0)

    cols_at = {
        "accepted_at": accept,
        "dispatched_at": dispatch,
        "acknowledged_at": ack,
        "on_site_at": arrive,
        "handled_at": final_handle,
        "verified_at": verify,
        "closed_at": close,
    }
    iso_rep = iso_array(rep)
    iso = {k: iso_array(v) for k, v in cols_at.items()}
    iso_handle_due = iso_array(handle_due)
    iso_resp_due = iso_array(response_due)
    iso_arr_due = iso_array(arrival_due)
    iso_first_handle = iso_array(handle)
    iso_rework = iso_array(handle + rework_gap)
    iso_rework_ack = iso_array(handle + rework_gap + 1800)
    iso_rework_arr = iso_array(handle + rework_gap + 3600)
    iso_defer = iso_array(defer_at)
    iso_resume = iso_array(resume_at)
    iso_blown = iso_array(np.where(whistled, blown, -1))
    iso_checkin = [iso_array(np.where(whistled, checkin[:, k], -1)) for k in range(3)]
    iso_deadline = iso_array(np.where(whistled, blown + WHISTLE_DEADLINE_MIN * 60, -1))
    uid_list = ulids(rep * 1000, prng)

    rows: list[tuple] = []
    logs: list[tuple] = []
    whistles: list[tuple] = []
    whistle_depts: list[tuple] = []
    last_of_cat: dict[str, int] = {}
    for i in range(m):
        eid = int(ids[i])
        g = ctx.grids[int(grid_idx[i])]
        street = g["street_code"]
        code = codes[i]
        src = source[i]
        estates = ctx.estates_by_grid.get(g["id"]) or ["某小区"]
        estate = estates[prng.randrange(len(estates))]
        roads = ctx.roads_by_street.get(street) or ["某路"]
        road = roads[prng.randrange(len(roads))]
        road2 = roads[prng.randrange(len(roads))]
        junction = f"{road}与{road2}交叉口" if road2 != road else f"{road}路口"
        building = f"{prng.randint(1, 42)}幢"
        title, desc = texts.render(code, prng, {"road": road, "estate": estate, "junction": junction, "building": building})
        address = f"崇川区{ctx.street_names[street]}{estate}{building}"
        rname = rphone = rid = None
        if src in ("hotline_12345", "grid_app", "manual") and prng.random() < (0.75 if src == "hotline_12345" else 0.3):
            rname, rphone = texts.fake_name(prng), texts.fake_phone(prng)
            if src == "hotline_12345" and prng.random() < 0.1:
                rid = texts.fake_id_no(prng)
        ext = f"{EXTERNAL_PREFIX[src]}{iso_rep[i][:10].replace('-', '')}{eid:07d}"
        dept = leaves[int(cat_idx[i])]["default_department"]
        if arrival_clock[i] or not dept:
            assignee_kind, assignee_code = "grid", ctx.leader_by_grid.get(g["id"])
        else:
            assignee_kind, assignee_code = "department", dept
        field_actor = assignee_code if assignee_kind == "grid" else _pick(ctx.liaisons_by_dept.get(dept), prng)
        operator = _pick(ctx.operators_by_street.get(street) or ctx.operators_by_street.get(None), prng)
        reporter_actor = f"source:{src}"

        # walk the lifecycle as far as the demo's end time allows
        plan: list[tuple[str, str, str, str | None, str | None]] = []  # action, from, to, at, note
        if rejected[i]:
            plan.append(("reject", "reported", "rejected", iso["accepted_at"][i], "不予受理：不属于受理范围"))
        elif merged[i] and code in last_of_cat:
            plan.append(("merge", "reported", "merged", iso["accepted_at"][i], f"与事件 #{last_of_cat[code]} 重复，合并办理"))
        else:
            plan += [
                ("accept", "reported", "accepted", iso["accepted_at"][i], None),
                ("dispatch", "accepted", "dispatched", iso["dispatched_at"][i], None),
                ("acknowledge", "dispatched", "acknowledged", iso["acknowledged_at"][i], None),
            ]
            if deferred[i]:
                plan += [
                    ("defer", "acknowledged", "deferred", iso_defer[i], "缓办：等待配件/协调产权单位"),
                    ("resume", "deferred", "acknowledged", iso_resume[i], None),
                ]
            plan.append(("arrive", "acknowledged", "on_site", iso["on_site_at"][i], None))
            if whistled[i]:
                wid = ctx.next_whistle_id
                ctx.next_whistle_id += 1
                depts = [dept] if dept else []
                for d in prng.sample(PARTNER_DEPTS, 3):
                    if d not in depts and len(depts) < int(n_depts[i]):
                        depts.append(d)
                level = prng.choices(("grid", "street", "district"), (0.7, 0.25, 0.05))[0]
                reason = "现场情况复杂，需多部门联动处置"
                whistle = {"id": wid, "level": level, "depts": depts, "at": iso_blown[i], "reason": reason}
                plan.append(("whistle", "on_site", "on_site", iso_blown[i], reason))
                for k, d in enumerate(depts):
                    plan.append(("check_in", "on_site", "on_site", iso_checkin[k][i], d))
                plan.sort(key=lambda p: p[3] or "")  # check-ins in time order (all before handling)
            if rework[i]:
                plan += [
                    ("handle", "on_site", "handled", iso_first_handle[i], None),
                    ("rework", "handled", "dispatched", iso_rework[i], "核查未通过，返工"),
                    ("acknowledge", "dispatched", "acknowledged", iso_rework_ack[i], None),
                    ("arrive", "acknowledged", "on_site", iso_rework_arr[i], None),
                ]
            plan += [
                ("handle", "on_site", "handled", iso["handled_at"][i], None),
                ("verify", "handled", "verified", iso["verified_at"][i], None),
                ("close", "verified", "closed", iso["closed_at"][i], None),
            ]
            if stuck[i]:
                keep = {0: "dispatch", 1: "acknowledge", 2: "arrive"}[int(stuck_stage[i])]
                cut = max(k for k, p in enumerate(plan) if p[0] == keep)
                plan = plan[: cut + 1]
        until_iso = _until_iso(until_s)
        done = [p for p in plan if p[3] is not None and p[3] <= until_iso]
        # keep the walk a prefix (times are increasing, but be strict)
        walked = []
        for p in plan:
            if p in done:
                walked.append(p)
            else:
                break
        status = walked[-1][2] if walked else "reported"
        stage: dict[str, str | None] = dict.fromkeys(
            ("accepted_at", "dispatched_at", "acknowledged_at", "on_site_at", "handled_at", "verified_at", "closed_at", "rejected_at"),
            None,
        )
        stage_col = {
            "accepted": "accepted_at",
            "dispatched": "dispatched_at",
            "acknowledged": "acknowledged_at",
            "on_site": "on_site_at",
            "handled": "handled_at",
            "verified": "verified_at",
            "closed": "closed_at",
            "rejected": "rejected_at",
        }
        logs.append(
            (None, eid, iso_rep[i], reporter_actor, "report", None, "reported", None,
             orjson.dumps({"source": src, "external_id": ext}).decode())
        )  # fmt: skip
        whistle_rows_i = None
        if whistled[i] and any(p[0] == "whistle" for p in walked):
            whistle_rows_i = whistle
        for action, frm, to, at, note in walked:
            if action in ("whistle", "check_in"):
                w = whistle
                if action == "whistle":
                    payload = orjson.dumps({
                        "op": "blow", "whistle_id": w["id"], "level": w["level"],
                        "departments": [{"code": d, "deadline_at": iso_deadline[i]} for d in w["depts"]],
                        "deadline_minutes": WHISTLE_DEADLINE_MIN}).decode()  # fmt: skip
                    logs.append((None, eid, at, field_actor or "system", "whistle", frm, to, note, payload))
                else:
                    late = at > iso_deadline[i]
                    who = _pick(ctx.liaisons_by_dept.get(note), prng) or f"department:{note}"
                    payload = orjson.dumps({"whistle_id": w["id"], "department_code": note,
                                            "deadline_at": iso_deadline[i], "late": late}).decode()  # fmt: skip
                    logs.append((None, eid, at, who, "check_in", frm, to, None, payload))
                    w.setdefault("checked", {})[note] = (at, who, int(late))
                continue
            # stage columns keep the first time a stage was reached (the arrival clock counts
            # the first arrival); rework clears handled_at, which then holds the final handling
            col = stage_col.get(to)
            if action == "rework":
                stage["handled_at"] = None
            elif col and (stage[col] is None or col == "handled_at"):
                stage[col] = at
            actor = operator if action in ("accept", "reject", "merge", "dispatch", "verify", "close", "rework") else field_actor
            payload = None
            if action == "dispatch":
                payload = orjson.dumps({"target_kind": assignee_kind, "target": assignee_code}).decode()
            logs.append((None, eid, at, actor or "system", action, frm, to, note, payload))
        sat = int(satisfaction[i]) if status == "closed" and satisfaction[i] else None
        if sat:
            logs.append(
                (None, eid, stage["closed_at"], reporter_actor, "evaluate", "closed", "closed", None,
                 orjson.dumps({"satisfaction": sat}).decode())
            )  # fmt: skip
        if whistle_rows_i is not None:
            w = whistle_rows_i
            handled_at = stage["handled_at"]
            whistles.append(
                (w["id"], ulid_at(int(rep[i]) * 1000 + 1, prng), eid, w["level"], field_actor or "system", w["at"],
                 w["reason"], "联动处置完毕" if handled_at else None, handled_at, field_actor if handled_at else None)
            )  # fmt: skip
            for d in w["depts"]:
                got = w.get("checked", {}).get(d)
                late = got[2] if got else (1 if iso_deadline[i] < until_iso else None)
                whistle_depts.append((w["id"], d, iso_deadline[i], got[0] if got else None, got[1] if got else None, late))
        merged_into = last_of_cat.get(code) if status == "merged" else None
        if status not in ("rejected", "merged"):
            last_of_cat[code] = eid
        updated = max([iso_rep[i]] + [w[3] for w in walked])
        rows.append(
            (
                eid, uid_list[i], src, ext, code, klass[i], int(priority[i]), title, desc,
                rname, rphone, rid, round(float(lon[i]), 6), round(float(lat[i]), 6), "WGS-84", None, None,
                address, g["id"], g["community_code"], street, status, iso_rep[i],
                stage["accepted_at"], stage["dispatched_at"], stage["acknowledged_at"], stage["on_site_at"],
                stage["handled_at"], stage["verified_at"], stage["closed_at"], stage["rejected_at"],
                merged_into, iso_resp_due[i], iso_arr_due[i], iso_handle_due[i],
                assignee_kind if status not in ("reported", "accepted", "rejected", "merged") else None,
                assignee_code if status not in ("reported", "accepted", "rejected", "merged") else None,
                sat, None, 1 + len(walked), 0, updated,
            )
        )  # fmt: skip
    return rows, logs, {"whistles": whistles, "whistle_departments": whistle_depts}


_UNTIL_CACHE: dict[int, str] = {}


def _until_iso(until_s: int) -> str:
    if until_s not in _UNTIL_CACHE:
        _UNTIL_CACHE[until_s] = iso_array(np.array([until_s]))[0]  # type: ignore[assignment]
    return _UNTIL_CACHE[until_s]


def _pick(items: list[str] | None, prng: random.Random) -> str | None:
    if not items:
        return None
    return items[prng.randrange(len(items))]
