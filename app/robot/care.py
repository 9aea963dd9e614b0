"""Vulnerable residents (重点人群关爱): people on the care list not visited in time.

Fires for an active care-list resident whose last care visit (``visits.kind = 'care_visit'``) is
older than their own ``visit_every_days``, or the rule's ``days`` when they have none (never
visited counts from when they were listed). Names are masked in every text (张**).
"""

from __future__ import annotations

from app import timeutil
from app.intake_views import mask_name
from app.robot.base import Finding, Param, Rule, RuleContext, grid_names, place_text

KIND_ZH = {"elderly_alone": "独居老人", "disabled": "残疾人", "hardship": "困难群众", "minor": "留守未成年人", "other": "关爱对象"}


class CareRule(Rule):
    name = "care_gap"
    title_zh = "关爱走访超期"
    title_en = "Vulnerable residents"
    accept_category = "LIVE.ELDERLY"
    auto_clear = True
    params = {"days": Param(7, "默认走访周期", "天", 1, 365, label_en="Default visit interval", unit_en="days")}

    def find(self, ctx: RuleContext) -> list[Finding]:
        default = ctx.p("days")
        rows = ctx.conn.execute(
            "SELECT c.id, c.name, c.kind, c.grid_id, c.street_code, c.lon, c.lat, c.visit_every_days, c.created_at, "
            "(SELECT max(v.at) FROM visits v WHERE v.care_id = c.id AND v.kind = 'care_visit' AND v.at <= ?) "
            "FROM care_list c WHERE c.active = 1",
            (ctx.iso(ctx.now),),
        ).fetchall()
        names = grid_names(ctx.conn) if rows else {}
        out = []
        for cid, name, kind, grid, street, lon, lat, every, created, last in rows:
            limit = float(every) if every else default
            since = last or created
            if not since:
                continue
            gap_days = (ctx.now - timeutil.parse(since)).total_seconds() / 86400
            if gap_days < limit:
                continue
            who = f"{place_text(names, grid)}{KIND_ZH.get(kind, '关爱对象')}{mask_name(name)}"
            when = f"上次走访 {last[:10]}，已 {gap_days:.0f} 天" if last else f"列入关爱名单后 {gap_days:.0f} 天从未走访"
            sev = 2 if gap_days >= 2 * limit else 3
            if kind == "elderly_alone" and sev > 1:
                sev -= 1
            out.append(
                Finding(
                    key=f"care:{cid}",
                    severity=sev,
                    explanation_zh=f"{who}应每 {limit:g} 天走访一次，{when}，超过走访周期。",
                    suggested_action="安排网格长或志愿者今日上门探访（或电话问候），了解身体、生活状况并补录走访记录。",
                    grid_id=grid,
                    street_code=street,
                    lon=lon,
                    lat=lat,
                    people=[f"care:{cid}"],
                )
            )
        return out
