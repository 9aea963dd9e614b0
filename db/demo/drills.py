"""Demo drills (issue 7): one weekly series per theme, alternating weeks, over the 12 weeks before
``until`` (run, with measured results) and the 4 weeks after it (scheduled).

Each run drill's injects became drill events (``events.drill_id`` set, source ``drill``) that went
through the closed loop (accept → dispatch → acknowledge → arrive → handle → verify → close) with
``event_log`` rows, so the after-action reports and the series view are filled; response times get
a little faster over the weeks. One drill was stopped early. Deterministic for a seed; written
inside the demo's transaction (plain inserts, about 25 ms for the whole set).
"""

from __future__ import annotations

import datetime as dt
import json
import random

from app.drills.recurrence import expand
from app.timeutil import TZ, parse, to_iso
from db.demo.events import EVENT_COLUMNS, LOG_COLUMNS
from db.drills import _expected_participants
from db.ids import ulid_at

EVENT_SQL = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
WEEKDAYS = {"TYPHOON": 1, "INCIDENT": 3, "EPIDEMIC": 2, "ILLEGALBUILD": 4}  # Tue, Thu, Wed, Fri
TIMES = {"TYPHOON": "09:30", "INCIDENT": "14:30", "EPIDEMIC": "10:00", "ILLEGALBUILD": "15:00"}
WEEKS_BACK, WEEKS_AHEAD = 12, 4
STRENGTHS = ("街道指挥中心受理及时，派遣准确", "网格长到场迅速，现场处置规范", "部门联动顺畅，报到及时",
             "信息上报完整，图片视频回传清晰")  # fmt: skip
IMPROVEMENTS = ("部分部门签收偏慢，需压实值班责任", "跟进注入处置不及时，需加强持续跟踪", "网格长出勤率有待提高",
                "夜间值守人员对预案不熟悉")  # fmt: skip
ACTIONS = (("修订防汛应急预案中的派遣流程", "区应急管理"), ("组织网格长预案培训一次", "街道网格中心"),
           ("部门签收超时纳入月度考核", "区指挥中心"), ("完善地下空间排涝物资清单", "水务"),
           ("优化燃气泄漏处置联动清单", "燃气"))  # fmt: skip


def generate_drills(conn, until: dt.datetime, seed: int) -> dict:
    """Insert the demo drills; returns counts."""
    rng = random.Random(seed + 707)
    until = until.astimezone(TZ)
    templates = {r["code"]: dict(r) for r in conn.execute("SELECT * FROM drill_templates")}
    if not templates:
        return {"drills": 0}
    streets = [r[0] for r in conn.execute("SELECT code FROM streets ORDER BY code")]
    grids_by_street: dict[str, list[tuple]] = {}
    for gid, street, lon, lat, comm in conn.execute(
        "SELECT id, street_code, lon, lat, community_code FROM grids WHERE kind = 'comprehensive' ORDER BY id"
    ):
        grids_by_street.setdefault(street, []).append((gid, lon, lat, comm))
    coordinators = [r[0] for r in conn.execute("SELECT uid FROM people WHERE role = 'drill_coordinator' ORDER BY id")]
    operators = [r[0] for r in conn.execute("SELECT uid FROM people WHERE role = 'operator' ORDER BY id")] or ["operator"]
    cats = {r[0]: r for r in conn.execute(
        "SELECT code, response_limit_min, arrival_clock FROM categories")}  # fmt: skip
    next_event = (conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0] or 0) + 1
    first = (until - dt.timedelta(weeks=WEEKS_BACK)).date()
    last = (until + dt.timedelta(weeks=WEEKS_AHEAD)).date()
    counts = {"drills": 0, "run": 0, "scheduled": 0, "events": 0}
    events, logs, drill_logs = [], [], []
    stopped_done = False
    for ti, (code, tpl) in enumerate(sorted(templates.items())):
        rule = {"rule": "weekly", "weekday": WEEKDAYS.get(code, 2), "interval": 2,
                "time_of_day": TIMES.get(code, "09:30"),
                "first_date": (first + dt.timedelta(weeks=ti % 2)).isoformat(), "until_date": last.isoformat()}  # fmt: skip
        starts = expand(rule)
        created = to_iso(parse(starts[0]) - dt.timedelta(days=7))
        cur = conn.execute(
            "INSERT INTO drill_series (uid, title, theme, rule, weekday, interval, time_of_day, first_date, until_date, "
            "dates, template_id, created_at) VALUES (?, ?, ?, 'weekly', ?, 2, ?, ?, ?, '[]', ?, ?)",
            (_uid(created, rng), tpl["title"], tpl["theme"], rule["weekday"], rule["time_of_day"], rule["first_date"],
             rule["until_date"], tpl["id"], created),
        )  # fmt: skip
        series_id = cur.lastrowid
        scenario = json.loads(tpl["scenario"])
        for k, start in enumerate(starts):
            t0 = parse(start)
            street = streets[(ti * 5 + k * 3) % len(streets)]
            pool = grids_by_street.get(street) or next(iter(grids_by_street.values()))
            picks = rng.sample(pool, min(3, len(pool)))
            grids = [g[0] for g in picks] if tpl["level"] == "grid" else []
            plan = {"title": f"{tpl['title']}（{street_name(conn, street)}）", "theme": tpl["theme"],
                    "level": tpl["level"], "starts_at": start, "duration_min": tpl["duration_min"],
                    "streets": [street] if tpl["level"] != "district" else [street],
                    "grids": grids, "coordinator": coordinators[k % len(coordinators)] if coordinators else None,
                    "objectives": tpl["objectives"]}  # fmt: skip
            run = t0 + dt.timedelta(minutes=tpl["duration_min"] + 60) < until
            cur = conn.execute(
                "INSERT INTO drills (uid, title, theme, level, starts_at, status, series_id, template_id, streets, grids, "
                "coordinator, duration_min, objectives, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_uid(created, rng), plan["title"], plan["theme"], plan["level"], start, series_id, tpl["id"],
                 json.dumps(plan["streets"]), json.dumps(grids), plan["coordinator"], plan["duration_min"],
                 plan["objectives"], created, created),
            )  # fmt: skip
            drill_id = cur.lastrowid
            drill_uid = conn.execute("SELECT uid FROM drills WHERE id = ?", (drill_id,)).fetchone()[0]
            _expected_participants(conn, drill_id, plan)
            drill_logs.append((drill_id, created, "demo", "plan", None, None, plan["title"]))
            counts["drills"] += 1
            inject_ids = {}
            for seq, inj in enumerate(scenario, 1):
                g = picks[(seq - 1) % len(picks)]
                parent = inject_ids.get(inj.get("parent_seq"))
                cur = conn.execute(
                    "INSERT INTO drill_injects (uid, drill_id, seq, offset_s, title, content, category, class, source, "
                    "lon, lat, grid_id, street_code, target_level, target_department, expected_action, expected_stage, "
                    "allowed_min, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'drill', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (_uid(created, rng), drill_id, seq, inj["offset_s"], inj["title"], inj["content"], inj["category"],
                     inj["class"], g[1], g[2], g[0], street, inj["target_level"], inj["target_department"],
                     inj["expected_action"], inj["expected_stage"], inj["allowed_min"], parent),
                )  # fmt: skip
                inject_ids[seq] = cur.lastrowid
            if not run:
                counts["scheduled"] += 1
                continue
            # -- the drill was run --------------------------------------------------------------------
            counts["run"] += 1
            progress = k / max(1, len(starts) - 1)  # later drills respond faster
            stop_early = not stopped_done and code == "INCIDENT" and k == 2
            stopped_done = stopped_done or stop_early
            end_el = tpl["duration_min"] * 60 * (0.45 if stop_early else 1.0)
            started = to_iso(t0 + dt.timedelta(seconds=rng.randint(0, 90)))
            ts = parse(started)
            drill_logs.append((drill_id, started, plan["coordinator"] or "demo", "start", 0.0, 1.0, None))
            reached: dict[int, bool] = {}
            for seq, inj in enumerate(scenario, 1):
                iid = inject_ids[seq]
                if inj["offset_s"] > end_el:
                    conn.execute("UPDATE drill_injects SET status='skipped' WHERE id = ?", (iid,))
                    continue
                parent_seq = inj.get("parent_seq")
                if parent_seq and reached.get(parent_seq, True):
                    conn.execute("UPDATE drill_injects SET status='skipped' WHERE id = ?", (iid,))
                    drill_logs.append((drill_id, to_iso(ts + dt.timedelta(seconds=inj["offset_s"])), "drill-clock",
                                       "skip", float(inj["offset_s"]), None, f"#{seq} 前序注入已按要求处置"))  # fmt: skip
                    continue
                fired = ts + dt.timedelta(seconds=inj["offset_s"])
                eid = next_event
                next_event += 1
                ok = _event(events, logs, rng, eid, drill_id, drill_uid, seq, inj, g_of(picks, seq), street, fired,
                            cats, operators, progress, stop_early and seq == 3)  # fmt: skip
                reached[seq] = ok
                conn.execute(EVENT_SQL, events.pop())
                conn.execute("UPDATE drill_injects SET status='fired', fired_at=?, fired_elapsed_s=?, event_id=? "
                             "WHERE id = ?", (to_iso(fired), float(inj["offset_s"]), eid, iid))  # fmt: skip
                drill_logs.append((drill_id, to_iso(fired), "drill-clock", "inject", float(inj["offset_s"]), None,
                                   f"#{seq} {inj['title']} → 事件 #{eid}"))  # fmt: skip
                counts["events"] += 1
            ended = to_iso(ts + dt.timedelta(seconds=end_el))
            status = "stopped" if stop_early else "completed"
            reason = "真实突发警情需要指挥力量，演练提前结束" if stop_early else None
            n_str = rng.sample(STRENGTHS, 2)
            n_imp = rng.sample(IMPROVEMENTS, 1 if progress > 0.5 else 2)
            conn.execute(
                "UPDATE drills SET status=?, started_at=?, ended_at=?, elapsed_s=?, speed=1, stop_reason=?, strengths=?, "
                "improvements=?, updated_at=? WHERE id=?",
                (status, started, ended, end_el, reason, "\n".join(n_str), "\n".join(n_imp), ended, drill_id),
            )  # fmt: skip
            drill_logs.append((drill_id, ended, plan["coordinator"] or "demo", "stop" if stop_early else "complete",
                               end_el, 1.0, reason))  # fmt: skip
            rate = 0.78 + 0.17 * progress
            for kind, ref in conn.execute("SELECT kind, ref FROM drill_participants WHERE drill_id = ?", (drill_id,)).fetchall():
                if kind != "person" or rng.random() < rate:
                    conn.execute("UPDATE drill_participants SET attended = 1, checked_in_at = ? WHERE drill_id = ? "
                                 "AND kind = ? AND ref = ?", (started, drill_id, kind, ref))  # fmt: skip
            for action, owner in rng.sample(ACTIONS, 2):
                due = (parse(ended) + dt.timedelta(days=rng.choice((7, 14, 30)))).date().isoformat()
                state = "done" if parse(ended) + dt.timedelta(days=21) < until else rng.choice(("open", "in_progress"))
                conn.execute("INSERT INTO drill_findings (uid, drill_id, action, owner, due_date, status, created_at, "
                             "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (_uid(ended, rng), drill_id, action, owner, due, state, ended, ended))  # fmt: skip
    if logs:
        conn.executemany(f"INSERT INTO event_log ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join('?' * len(LOG_COLUMNS))})",
                         logs)  # fmt: skip
    conn.executemany("INSERT INTO drill_log (drill_id, at, actor, action, elapsed_s, speed, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     drill_logs)  # fmt: skip
    _media(conn, rng)
    return counts


def g_of(picks, seq):
    return picks[(seq - 1) % len(picks)]


def street_name(conn, code: str) -> str:
    r = conn.execute("SELECT name FROM streets WHERE code = ?", (code,)).fetchone()
    return r[0] if r else code


def _uid(at_iso: str, rng: random.Random) -> str:
    return ulid_at(int(parse(at_iso).timestamp() * 1000), rng)


STEPS = (("accept", "reported", "accepted", 40, 200), ("dispatch", "accepted", "dispatched", 30, 200),
         ("acknowledge", "dispatched", "acknowledged", 40, 260), ("arrive", "acknowledged", "on_site", 150, 700),
         ("handle", "on_site", "handled", 300, 1500), ("verify", "handled", "verified", 300, 1200),
         ("close", "verified", "closed", 60, 600))  # fmt: skip


def _event(events, logs, rng, eid, drill_id, drill_uid, seq, inj, grid, street, fired, cats, operators,
           progress, stall) -> bool:  # fmt: skip
    """One drill event through the loop; returns whether it reached its expected stage in time."""
    gid, lon, lat, comm = grid
    speedup = 1.25 - 0.5 * progress
    at = fired
    stamps = {}
    actor = operators[(eid * 7) % len(operators)]
    dept = inj["target_department"] or "GRID_CENTER"
    rep = to_iso(at)
    logs.append((_uid(rep, rng), eid, rep, "drill-clock", "report", None, "reported", None,
                 json.dumps({"source": "drill", "external_id": f"DRILL-{drill_uid}-{seq}", "datum": "WGS-84"})))  # fmt: skip
    status = "reported"
    for action, _frm, to, lo, hi in STEPS:
        if stall and to == "on_site":
            break
        at = at + dt.timedelta(seconds=int(rng.uniform(lo, hi) * speedup))
        ts = to_iso(at)
        stamps[to] = ts
        payload = json.dumps({"target_kind": "department", "target": dept}) if action == "dispatch" else None
        logs.append((_uid(ts, rng), eid, ts, actor if action in ("accept", "dispatch", "verify", "close") else
                     f"department:{dept}", action, status, to, None, payload))  # fmt: skip
        status = to
    cat = cats.get(inj["category"])
    resp = cat[1] if cat else 15
    arrival = to_iso(fired + dt.timedelta(minutes=10)) if cat and cat[2] else None
    events.append((
        eid, _uid(rep, rng), "drill", f"DRILL-{drill_uid}-{seq}", inj["category"], inj["class"],
        1 if inj["class"] == "emergency" else 2, inj["title"], inj["content"], None, None, None,
        lon, lat, "WGS-84", None, None, f"演练点位（{gid} 网格）", gid, comm, street, status, rep,
        stamps.get("accepted"), stamps.get("dispatched"), stamps.get("acknowledged"), stamps.get("on_site"),
        stamps.get("handled"), stamps.get("verified"), stamps.get("closed"), None, None,
        to_iso(fired + dt.timedelta(minutes=resp or 15)), arrival, to_iso(fired + dt.timedelta(hours=2)),
        "department", dept, None, drill_id, 1 + len(stamps), 0, to_iso(at),
    ))  # fmt: skip
    reached = stamps.get(inj["expected_stage"])
    return bool(reached) and (parse(reached) - fired).total_seconds() <= inj["allowed_min"] * 60


def _media(conn, rng: random.Random) -> None:
    """Field media references on a few drill events: a recorded video file, an audio note and a
    camera stream URL (the demo ships no media files, so the console shows them 不可用)."""
    rows = conn.execute(
        "SELECT i.id, i.drill_id, i.event_id, i.fired_at, i.grid_id FROM drill_injects i WHERE i.status = 'fired' "
        "ORDER BY i.id DESC LIMIT 12").fetchall()  # fmt: skip
    for i, (iid, did, eid, at, gid) in enumerate(rows):
        t = parse(at) + dt.timedelta(minutes=6)
        for kind, uri, title in (
            ("video", f"media/drills/{did}/inject-{iid}-bodycam.mp4", "执法记录仪视频"),
            ("audio", f"media/drills/{did}/inject-{iid}-report.m4a", "现场语音报告"),
            ("stream", f"rtsp://192.0.2.{10 + i}/live/{gid}", "现场布控球实时流"),
        ):
            conn.execute(
                "INSERT INTO drill_media (uid, drill_id, inject_id, event_id, kind, uri, title, recorded_at, device, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_uid(to_iso(t), rng), did, iid, eid, kind, uri, title, to_iso(t), f"DEV-{gid}-{kind[:1].upper()}",
                 to_iso(t)),
            )  # fmt: skip
