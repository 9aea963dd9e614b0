"""Measurement (Qt-free): per inject, the time from the drill event's report to each stage
(accept, dispatch, acknowledge, on site, handle) against the time allowed for the expected stage;
on-time counts per target level and per street; attendance; grid-leader participation.

These are the same stage timestamps the KPI engine reads for real events; drill rows are found
through ``events.drill_id`` and never mixed with real statistics.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import statistics
from dataclasses import dataclass, field

from app import timeutil

STAGES = ("accepted", "dispatched", "acknowledged", "on_site", "handled")
STAGE_ZH = {"accepted": "受理", "dispatched": "派遣", "acknowledged": "签收", "on_site": "到场", "handled": "处置"}
LEVEL_ZH = {"district": "区级", "street": "街道级", "grid": "网格级"}
RESULT_ZH = {"on_time": "按时", "late": "超时", "missed": "未完成", "open": "进行中", "not_fired": "未下发",
             "skipped": "未下发（跟进未触发）"}  # fmt: skip


@dataclass
class InjectResult:
    inject: dict
    event: dict | None
    stage_s: dict = field(default_factory=dict)  # stage -> seconds from report (None: not reached)
    result: str = "not_fired"
    measured_s: float | None = None  # seconds to the expected stage

    @property
    def allowed_s(self) -> float:
        return float(self.inject["allowed_min"]) * 60


def _secs(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (timeutil.parse(b) - timeutil.parse(a)).total_seconds()


def inject_result(inject: dict, event: dict | None, *, finished: bool, at: dt.datetime | None = None) -> InjectResult:
    """Classify one inject: on_time / late / missed (drill over, stage never reached) / open
    (still within the drill) / not_fired / skipped."""
    res = InjectResult(inject, event)
    if event is None:
        res.result = "skipped" if inject.get("status") == "skipped" else "not_fired"
        return res
    t0 = event["reported_at"]
    for st in STAGES:
        res.stage_s[st] = _secs(t0, event.get(f"{st}_at"))
    m = res.stage_s.get(inject["expected_stage"])
    res.measured_s = m
    if m is not None:
        res.result = "on_time" if m <= res.allowed_s else "late"
    else:
        now = at or timeutil.now()
        waited = (now - timeutil.parse(t0)).total_seconds()
        res.result = "missed" if finished or waited > res.allowed_s else "open"
    return res


def results(conn: sqlite3.Connection, drill_id: int, *, at: dt.datetime | None = None) -> list[InjectResult]:
    d = conn.execute("SELECT status FROM drills WHERE id = ?", (drill_id,)).fetchone()
    finished = bool(d and d[0] in ("stopped", "completed"))
    injects = [dict(r) for r in conn.execute(
        "SELECT * FROM drill_injects WHERE drill_id = ? ORDER BY offset_s, seq", (drill_id,))]  # fmt: skip
    ids = [i["event_id"] for i in injects if i["event_id"]]
    events = {}
    if ids:
        cols = "id, status, reported_at, street_code, grid_id, " + ", ".join(f"{s}_at" for s in STAGES)
        for r in conn.execute(f"SELECT {cols} FROM events WHERE id IN ({','.join('?' * len(ids))})", ids):
            events[r["id"]] = dict(r)
    return [inject_result(i, events.get(i["event_id"]), finished=finished, at=at) for i in injects]


def on_time_counts(res: list[InjectResult], key) -> dict[str, tuple[int, int]]:
    """``{group: (on time, measured)}`` over sent injects grouped by ``key(result)``."""
    out: dict[str, list[int]] = {}
    for r in res:
        if r.event is None or r.result == "open":
            continue
        g = key(r)
        c = out.setdefault(g, [0, 0])
        c[1] += 1
        c[0] += r.result == "on_time"
    return {k: (v[0], v[1]) for k, v in out.items()}


def stage_means(res: list[InjectResult]) -> dict[str, float | None]:
    out = {}
    for st in STAGES:
        vals = [r.stage_s[st] for r in res if r.stage_s.get(st) is not None]
        out[st] = statistics.fmean(vals) if vals else None
    return out


def attendance(conn: sqlite3.Connection, drill_id: int) -> dict:
    """Who took part versus who was expected, and the grid-leader participation rate."""
    rows = [dict(r) for r in conn.execute(
        "SELECT kind, ref, name, role, street_code, expected, attended, checked_in_at FROM drill_participants "
        "WHERE drill_id = ? ORDER BY kind, role, street_code, name", (drill_id,))]  # fmt: skip
    expected = [r for r in rows if r["expected"]]
    leaders = [r for r in expected if r["role"] == "grid_leader"]
    return {
        "rows": rows,
        "expected": len(expected),
        "attended": sum(r["attended"] for r in expected),
        "extra": sum(1 for r in rows if r["attended"] and not r["expected"]),
        "leaders_expected": len(leaders),
        "leaders_attended": sum(r["attended"] for r in leaders),
        "leader_rate": (sum(r["attended"] for r in leaders) / len(leaders)) if leaders else None,
        "absent": [r for r in expected if not r["attended"]],
    }


def readiness(conn: sqlite3.Connection, *, since: str, until: str | None = None) -> dict[str, dict]:
    """Training records → readiness: per street, the grid-leader participation rate over the
    drills run (completed or stopped) in the window, and the drills' on-time share."""
    until = until or timeutil.now_iso()
    rows = conn.execute(
        "SELECT p.street_code, sum(p.attended), count(*) FROM drill_participants p JOIN drills d ON d.id = p.drill_id "
        "WHERE p.role = 'grid_leader' AND p.expected = 1 AND d.status IN ('completed', 'stopped') "
        "AND d.starts_at >= ? AND d.starts_at < ? GROUP BY p.street_code", (since, until)).fetchall()  # fmt: skip
    return {r[0]: {"attended": r[1], "expected": r[2], "rate": r[1] / r[2] if r[2] else None} for r in rows}


def drill_summary(conn: sqlite3.Connection, drill_id: int, *, at: dt.datetime | None = None) -> dict:
    """The figures one drill is judged by (report, series view, planner)."""
    res = results(conn, drill_id, at=at)
    sent = [r for r in res if r.event is not None]
    measured = [r for r in sent if r.result != "open"]
    on_time = sum(r.result == "on_time" for r in measured)
    street_names = dict(conn.execute("SELECT code, name FROM streets").fetchall())
    return {
        "results": res,
        "injects": len(res),
        "sent": len(sent),
        "on_time": on_time,
        "measured": len(measured),
        "on_time_rate": on_time / len(measured) if measured else None,
        "by_level": on_time_counts(res, lambda r: r.inject["target_level"]),
        "by_street": {street_names.get(k, k or "—"): v for k, v in
                      on_time_counts(res, lambda r: r.event.get("street_code") or "").items()},  # fmt: skip
        "stage_means": stage_means(sent),
        "median_measured_s": statistics.median([r.measured_s for r in measured if r.measured_s is not None])
        if any(r.measured_s is not None for r in measured) else None,
        "attendance": attendance(conn, drill_id),
    }


def parse_list(v) -> list[str]:
    return json.loads(v or "[]") if isinstance(v, str) else list(v or [])
