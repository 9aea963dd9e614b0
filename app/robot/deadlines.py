"""Deadline risk (超期风险): open events likely to miss their handling deadline.

For every open, not yet handled real event due within the next ``horizon_hours`` hours, the
typical handling time of its category and department is the median of (``handled_at`` −
``dispatched_at``) over the most recent (up to 200 per category) events of that pair handled in the
last ``history_days`` days (at least
``min_samples`` of them, else the category's median over all departments; with fewer samples no
prediction is made). Its expected finish is now plus what remains of that typical time (at least
a quarter of it); when that lies after ``handle_due_at`` the event is at risk. At-risk events are
grouped per department and street, so a department sees one warning listing all its events.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from app import timeutil
from app.robot.base import REAL_EVENTS, Finding, Param, Rule, RuleContext, centroid, severity_by_count

NOT_HANDLED = ("reported", "accepted", "dispatched", "returned", "acknowledged", "on_site")


def typical_hours(conn, category: str, since: str, until: str, limit: int = 200) -> dict[str | None, list[float]]:
    """Handling hours of the ``limit`` most recent handled events of ``category`` reported since
    ``since``, by department (key ``None``: all departments)."""
    out: dict[str | None, list[float]] = defaultdict(list)
    for dept, hours in conn.execute(
        "SELECT assignee_code, (julianday(substr(handled_at, 1, 19)) - julianday(substr(dispatched_at, 1, 19))) * 24 "
        "FROM events WHERE category = ? AND reported_at >= ? AND reported_at <= ? AND handled_at IS NOT NULL "
        f"AND dispatched_at IS NOT NULL AND {REAL_EVENTS} ORDER BY reported_at DESC LIMIT ?",
        (category, since, until, limit),
    ):
        if hours is not None and hours >= 0:
            out[dept].append(hours)
            out[None].append(hours)
    return out


class DeadlineRiskRule(Rule):
    name = "deadline_risk"
    title_zh = "超期风险"
    title_en = "Deadline risk"
    accept_category = "ASSIGN.SUPERIOR"
    auto_clear = True
    params = {
        "horizon_hours": Param(24, "预测时限", "小时", 1, 24 * 30, label_en="Forecast horizon", unit_en="hours"),
        "history_days": Param(30, "历史样本天数", "天", 7, 365, label_en="History window", unit_en="days"),
        "min_samples": Param(5, "最少历史样本", "件", 1, 1000, label_en="Min. history samples", unit_en="events"),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        now_iso = ctx.iso(ctx.now)
        marks = ",".join("?" * len(NOT_HANDLED))
        rows = ctx.conn.execute(
            "SELECT id, external_id, category, assignee_code, street_code, grid_id, lon, lat, dispatched_at, "
            "reported_at, handle_due_at FROM events "
            "WHERE status NOT IN ('closed', 'rejected', 'merged') AND handle_due_at > ? AND handle_due_at <= ? "
            f"AND status IN ({marks}) AND {REAL_EVENTS}",
            (now_iso, ctx.ago(hours=-ctx.p("horizon_hours")), *NOT_HANDLED),
        ).fetchall()
        since = ctx.ago(days=ctx.p("history_days"))
        need = int(ctx.p("min_samples"))
        stats: dict[str, dict] = {}
        at_risk: dict[tuple, list] = defaultdict(list)
        for r in rows:
            cat, dept = r[2], r[3]
            if cat not in stats:
                stats[cat] = typical_hours(ctx.conn, cat, since, now_iso)
            samples = stats[cat].get(dept) if len(stats[cat].get(dept, [])) >= need else stats[cat].get(None)
            if not samples or len(samples) < need:
                continue
            typical = statistics.median(samples)
            started = timeutil.parse(r[8] or r[9])
            elapsed = (ctx.now - started).total_seconds() / 3600
            remaining = max(typical - elapsed, typical / 4)
            left = (timeutil.parse(r[10]) - ctx.now).total_seconds() / 3600
            if remaining > left:
                at_risk[(dept or "", r[4])].append((r, typical, left))
        if not at_risk:
            return []
        depts = dict(ctx.conn.execute("SELECT code, name FROM departments").fetchall())
        streets = dict(ctx.conn.execute("SELECT code, name FROM streets").fetchall())
        out = []
        for (dept, street), items in at_risk.items():
            items.sort(key=lambda t: t[2])
            r0, typ0, left0 = items[0]
            who = depts.get(dept, dept) or "未派遣（待受理）"
            out.append(
                Finding(
                    key=f"{dept}|{street}",
                    severity=severity_by_count(len(items), (2, 5, 10)),
                    explanation_zh=(
                        f"{streets.get(street, street or '')}{who}有 {len(items)} 件事件可能超期：按同类事件近期"
                        f"典型处置时长推算（如事件 #{r0[0]} 通常需 {typ0:.1f} 小时，距时限仅剩 {left0:.1f} 小时），"
                        "在处置时限前难以办结。"
                    ),
                    suggested_action="对所列事件督办提醒；人手不足的协调增派力量，确需延期的及时按程序申请延期。",
                    grid_id=r0[5],
                    street_code=street,
                    lon=centroid((t[0][6], t[0][7]) for t in items)[0],
                    lat=centroid((t[0][6], t[0][7]) for t in items)[1],
                    events=[t[0][0] for t in items],
                    external_ids=[t[0][1] for t in items if t[0][1]],
                )
            )
        return out
