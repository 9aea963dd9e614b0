"""Anomalies (异常激增): today's count per grid and category far above the expected level.

For every (grid, category) with at least ``min_count`` real events today (midnight to now, Asia/
Shanghai), the counts on the same weekday of the previous ``weeks`` weeks over the same time of
day (midnight to the same clock time) are the baseline. The robust z-score is
``(today − median) / (1.4826 × MAD)``, the scale floored at ``min_scale`` so that a quiet
baseline (all zeros) does not make every small count infinite. Fires when z ≥ ``z_threshold``.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict

from app.robot.base import REAL_EVENTS, Finding, Param, Rule, RuleContext, centroid, grid_names, place_text


def robust_z(value: float, baseline: list[float], min_scale: float) -> tuple[float, float, float]:
    """(z, median, scale) of ``value`` against ``baseline``."""
    med = statistics.median(baseline) if baseline else 0.0
    mad = statistics.median([abs(b - med) for b in baseline]) if baseline else 0.0
    scale = max(1.4826 * mad, min_scale)
    return (value - med) / scale, med, scale


class AnomalyRule(Rule):
    name = "anomaly"
    title_zh = "异常激增"
    title_en = "Anomalies"
    accept_category = "ASSIGN.SUPERIOR"
    params = {
        "min_count": Param(4, "今日最少事件数", "件", 1, 10000, label_en="Min. events today", unit_en="events"),
        "z_threshold": Param(3.5, "稳健Z值阈值", "", 1, 100, integer=False, label_en="Robust z-score threshold", unit_en=""),
        "weeks": Param(8, "对比周数（同星期几）", "周", 2, 52, label_en="Weeks compared (same weekday)", unit_en="weeks"),
        "min_scale": Param(1.0, "离散度下限", "件", 0.1, 100, integer=False, label_en="Minimum spread", unit_en="events"),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        day0 = ctx.now.replace(hour=0, minute=0, second=0, microsecond=0)
        rows = ctx.conn.execute(
            f"SELECT id, grid_id, category, external_id, lon, lat, street_code FROM events "
            f"WHERE reported_at >= ? AND reported_at <= ? AND {REAL_EVENTS} AND grid_id IS NOT NULL "
            "AND status NOT IN ('rejected', 'merged')",
            (ctx.iso(day0), ctx.iso(ctx.now)),
        ).fetchall()
        today: dict[tuple, list] = defaultdict(list)
        for r in rows:
            today[(r[1], r[2])].append(r)
        cands = {k: v for k, v in today.items() if len(v) >= ctx.p("min_count")}
        if not cands:
            return []
        weeks = int(ctx.p("weeks"))
        base: dict[tuple, list[float]] = {k: [] for k in cands}
        cats = sorted({k[1] for k in cands})
        marks = ",".join("?" * len(cats))
        for w in range(1, weeks + 1):
            d0 = day0 - dt.timedelta(weeks=w)
            d1 = ctx.now - dt.timedelta(weeks=w)
            counts = defaultdict(int)
            for g, c, n in ctx.conn.execute(
                f"SELECT grid_id, category, count(*) FROM events WHERE reported_at >= ? AND reported_at <= ? "
                f"AND category IN ({marks}) AND {REAL_EVENTS} AND status NOT IN ('rejected', 'merged') "
                "GROUP BY grid_id, category",
                (ctx.iso(d0), ctx.iso(d1), *cats),
            ):
                counts[(g, c)] = n
            for k in cands:
                base[k].append(float(counts.get(k, 0)))
        names = grid_names(ctx.conn)
        cat_names = dict(ctx.conn.execute("SELECT code, name_zh FROM categories").fetchall())
        out = []
        for (grid, cat), evs in cands.items():
            z, med, _scale = robust_z(len(evs), base[(grid, cat)], ctx.p("min_scale"))
            if z < ctx.p("z_threshold"):
                continue
            lon, lat = centroid((e[4], e[5]) for e in evs)
            out.append(
                Finding(
                    key=f"{grid}|{cat}|{day0:%Y-%m-%d}",
                    severity=2 if z >= 2 * ctx.p("z_threshold") else 3,
                    explanation_zh=(
                        f"{place_text(names, grid)}今日“{cat_names.get(cat, cat)}”已有 {len(evs)} 件，"
                        f"过去 {weeks} 周同一星期同一时段中位数为 {med:g} 件（稳健Z值 {z:.1f}），明显异常。"
                    ),
                    suggested_action="研判激增原因（突发事件、集中投诉或设备误报），派网格长现场核实，必要时提级处置。",
                    grid_id=grid, street_code=evs[0][6], lon=lon, lat=lat,
                    events=[e[0] for e in evs], external_ids=[e[3] for e in evs if e[3]],
                )  # fmt: skip
            )
        return out
