"""Patrol gaps (预警网格工作漏洞).

Two findings:

- **Silent grid** (``grid:<id>``): a grid with no grid-leader report (a real event from the grid
  app, ``source = 'grid_app'``) and no visit or patrol record (``visits``) in ``days`` days.
- **Leader away** (``away:<person>``): a grid leader whose latest positions (``leader_positions``)
  have all been outside his or her own grid for at least ``away_hours`` *working* hours
  (``app.workcal`` periods on the replica's working days). Positions with no grid are skipped.

Both clear themselves once the gap closes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from app import timeutil, workcal
from app.robot.base import REAL_EVENTS, Finding, Param, Rule, RuleContext, grid_names, place_text


def working_hours_between(a: dt.datetime, b: dt.datetime, is_workday=workcal.default_is_workday) -> float:
    """Working hours (``app.workcal.PERIODS`` on working days) between ``a`` and ``b``."""
    if b <= a:
        return 0.0
    total = 0.0
    day = a.date()
    for _ in range(400):
        if day > b.date():
            break
        if is_workday(day):
            for p0, p1 in workcal.PERIODS:
                s = dt.datetime.combine(day, p0, a.tzinfo)
                e = dt.datetime.combine(day, p1, a.tzinfo)
                lo, hi = max(s, a), min(e, b)
                if hi > lo:
                    total += (hi - lo).total_seconds() / 3600
        day += dt.timedelta(days=1)
    return total


class PatrolGapRule(Rule):
    name = "patrol_gap"
    title_zh = "巡查漏洞"
    title_en = "Patrol gaps"
    accept_category = "ASSIGN.SUPERIOR"
    auto_clear = True
    params = {
        "days": Param(7, "网格无上报/走访天数", "天", 1, 90, label_en="Days without reports/visits", unit_en="days"),
        "away_hours": Param(4, "网格长离格工作时长", "工作小时", 1, 200, label_en="Grid leader away from grid", unit_en="working hours"),
        "lookback_days": Param(3, "位置回看天数", "天", 1, 30, label_en="Location look-back", unit_en="days"),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        names = grid_names(ctx.conn)
        return self._silent_grids(ctx, names) + self._away_leaders(ctx, names)

    def _silent_grids(self, ctx: RuleContext, names: dict) -> list[Finding]:
        days = ctx.p("days")
        since, until = ctx.ago(days=days), ctx.iso(ctx.now)
        active = {r[0] for r in ctx.conn.execute(
            f"SELECT DISTINCT grid_id FROM events WHERE reported_at >= ? AND reported_at <= ? AND source = 'grid_app' "
            f"AND {REAL_EVENTS}", (since, until))}  # fmt: skip
        active |= {r[0] for r in ctx.conn.execute(
            "SELECT DISTINCT grid_id FROM visits WHERE at >= ? AND at <= ?", (since, until))}  # fmt: skip
        leaders = {r[0]: (r[1], r[2]) for r in ctx.conn.execute(
            "SELECT grid_id, id, name FROM people WHERE role = 'grid_leader' AND grid_id IS NOT NULL")}  # fmt: skip
        out = []
        for gid, lon, lat in ctx.conn.execute("SELECT id, lon, lat FROM grids ORDER BY id"):
            if gid in active:
                continue
            leader = leaders.get(gid)
            out.append(
                Finding(
                    key=f"grid:{gid}",
                    severity=3,
                    explanation_zh=f"{place_text(names, gid)}近 {days:g} 天没有网格长上报事件，也没有走访、巡查记录，存在巡查盲区。",
                    suggested_action="督促网格长当日完成网格巡查并补录走访记录；核实网格长是否在岗，必要时由社区临时补位。",
                    grid_id=gid,
                    street_code=names[gid][1],
                    lon=lon,
                    lat=lat,
                    people=[f"person:{leader[0]}"] if leader else [],
                )
            )
        return out

    def _away_leaders(self, ctx: RuleContext, names: dict) -> list[Finding]:
        need = ctx.p("away_hours")
        rows = ctx.conn.execute(
            "SELECT p.person_id, p.at, p.grid_id, p.lon, p.lat, pe.grid_id, pe.name, pe.street_code "
            "FROM leader_positions p JOIN people pe ON pe.id = p.person_id "
            "WHERE pe.role = 'grid_leader' AND pe.grid_id IS NOT NULL AND p.at >= ? AND p.at <= ? "
            "ORDER BY p.person_id, p.at",
            (ctx.ago(days=ctx.p("lookback_days")), ctx.iso(ctx.now)),
        ).fetchall()
        by_person: dict[int, list] = defaultdict(list)
        for r in rows:
            if r[2] is not None:  # a position with no grid tells nothing
                by_person[r[0]].append(r)
        out = []
        for pid, track in by_person.items():
            own = track[0][5]
            run = []
            for r in reversed(track):
                if r[2] == own:
                    break
                run.append(r)
            if not run:
                continue
            start, last = timeutil.parse(run[-1][1]), timeutil.parse(run[0][1])
            hours = working_hours_between(start, last, ctx.is_workday)
            if hours < need:
                continue
            where = place_text(names, run[0][2])
            out.append(
                Finding(
                    key=f"away:{pid}",
                    severity=2 if hours >= need * 2 else 3,
                    explanation_zh=(
                        f"{place_text(names, own)}网格长自 {run[-1][1][5:16].replace('T', ' ')} 起定位一直不在本网格"
                        f"（最近位于{where}），工作时间内已离格 {hours:.1f} 小时。"
                    ),
                    suggested_action="电话联系网格长核实去向；确属脱岗的督促返岗，因公外出的由社区安排临时补位。",
                    grid_id=own,
                    street_code=track[0][7],
                    lon=run[0][3],
                    lat=run[0][4],
                    people=[f"person:{pid}"],
                )
            )
        return out
