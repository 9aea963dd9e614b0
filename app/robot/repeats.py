"""Repeat demands (重复诉求): the same caller, or the same address, coming back again and again.

Fires for a caller (``reporter_phone``, digits only, any channel) with at least ``min_calls`` real
events, or an address (whitespace removed) with at least ``min_address`` 12345-hotline demands
(citizens' own calls; addresses of patrol and sensor reports repeat by nature), within ``days`` days.
The caller's number is personal data: the warning's key holds a hash of it and its texts and
evidence show it masked (138****1234).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

from app.intake_views import mask_phone
from app.robot.base import REAL_EVENTS, Finding, Param, Rule, RuleContext, centroid, severity_by_count

_NOT_DIGIT = re.compile(r"\D+")


def phone_key(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = phone if phone.isdigit() else _NOT_DIGIT.sub("", phone)
    if len(digits) < 7:
        return None
    return digits[-11:]


def address_key(address: str | None) -> str | None:
    if not address:
        return None
    return "".join(address.split()) or None


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class RepeatRule(Rule):
    name = "repeat"
    title_zh = "重复诉求"
    title_en = "Repeat demands"
    accept_category = "ASSIGN.VISIT"
    params = {
        "min_calls": Param(3, "同一来电人最少诉求数", "件", 2, 1000),
        "min_address": Param(4, "同一地址最少诉求数", "件", 2, 1000),
        "days": Param(30, "时间窗", "天", 1, 365),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        days = ctx.p("days")
        min_calls, min_addr = int(ctx.p("min_calls")), int(ctx.p("min_address"))
        base = (f"FROM events WHERE reported_at >= ? AND reported_at <= ? AND {REAL_EVENTS} "
                "AND status NOT IN ('rejected', 'merged') AND (reporter_phone IS NOT NULL OR source = 'hotline_12345')")  # fmt: skip
        win = (ctx.ago(days=days), ctx.iso(ctx.now))
        raw_phone: dict[str, list[int]] = defaultdict(list)
        raw_addr: dict[str, list[int]] = defaultdict(list)
        for eid, phone, address in ctx.conn.execute(
            f"SELECT id, reporter_phone, CASE WHEN source = 'hotline_12345' THEN address END {base}", win):  # fmt: skip
            if phone:
                raw_phone[phone].append(eid)
            if address:
                raw_addr[address].append(eid)
        by_phone: dict[str, list[int]] = defaultdict(list)
        for phone, ids in raw_phone.items():  # normalise each distinct value once
            pk = phone_key(phone)
            if pk:
                by_phone[pk].extend(ids)
        by_addr: dict[str, list[int]] = defaultdict(list)
        for address, ids in raw_addr.items():
            ak = address_key(address)
            if ak:
                by_addr[ak].extend(ids)
        groups = [(f"phone:{_hash(k)}", ids, f"来电人 {mask_phone(k)} ", min_calls, [f"caller:{mask_phone(k)}"])
                  for k, ids in by_phone.items() if len(ids) >= min_calls]  # fmt: skip
        groups += [(f"address:{_hash(k)}", ids, f"地址“{k}”", min_addr, [])
                   for k, ids in by_addr.items() if len(ids) >= min_addr]  # fmt: skip
        groups = ctx.keep_largest(groups, size=lambda g: len(g[1]))
        if not groups:
            return []
        wanted = sorted({i for g in groups for i in g[1]})
        info = {}
        for chunk in range(0, len(wanted), 900):
            part = wanted[chunk : chunk + 900]
            for r in ctx.conn.execute(
                "SELECT id, reporter_phone, address, external_id, grid_id, street_code, lon, lat, category, reported_at "
                f"FROM events WHERE id IN ({','.join('?' * len(part))})", part):  # fmt: skip
                info[r[0]] = r
        cat_names = dict(ctx.conn.execute("SELECT code, name_zh FROM categories").fetchall())
        return [self._finding(key, [info[i] for i in ids], who, days, cat_names, threshold, people=people)
                for key, ids, who, threshold, people in groups]  # fmt: skip

    def _finding(self, key, evs, who, days, cat_names, threshold, people=()) -> Finding:
        grids: dict = defaultdict(int)
        for e in evs:
            grids[e[4]] += 1
        grid = max(grids, key=lambda g: grids[g])
        street = next((e[5] for e in evs if e[4] == grid), None)
        cats = defaultdict(int)
        for e in evs:
            cats[cat_names.get(e[8], e[8])] += 1
        top = "、".join(f"{c}{n}件" for c, n in sorted(cats.items(), key=lambda kv: -kv[1])[:3])
        lon, lat = centroid((e[6], e[7]) for e in evs)
        return Finding(
            key=key,
            severity=severity_by_count(len(evs), (threshold + 1, threshold * 2, threshold * 3)),
            explanation_zh=f"{who}近 {days:g} 天反复反映问题 {len(evs)} 次（{top}），诉求可能未真正解决。",
            suggested_action="安排网格长上门回访，核实诉求是否解决；必要时启动“吹哨报到”联合化解，防止矛盾升级。",
            grid_id=grid,
            street_code=street,
            lon=lon,
            lat=lat,
            events=[e[0] for e in evs],
            external_ids=[e[3] for e in evs if e[3]],
            people=list(people),
        )
