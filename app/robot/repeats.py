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
        "min_calls": Param(3, "同一来电人最少诉求数", "件", 2, 1000, label_en="Min. demands per caller", unit_en="events"),
        "min_address": Param(4, "同一地址最少诉求数", "件", 2, 1000, label_en="Min. demands per address", unit_en="events"),
        "days": Param(30, "时间窗", "天", 1, 365, label_en="Time window", unit_en="days"),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        days = ctx.p("days")
        min_calls, min_addr = int(ctx.p("min_calls")), int(ctx.p("min_address"))
        win = (ctx.ago(days=days), ctx.iso(ctx.now))
        keep = f"reported_at >= ? AND reported_at <= ? AND {REAL_EVENTS} AND status NOT IN ('rejected', 'merged')"
        by_phone = self._grouped(ctx, "reporter_phone", "ix_events_robot_callers", "reporter_phone IS NOT NULL",
                                 "reporter_phone GLOB '*[^0-9]*' OR length(reporter_phone) > 11", keep, win,
                                 min_calls, phone_key)  # fmt: skip
        by_addr = self._grouped(ctx, "address", "ix_events_robot_addresses", "source = 'hotline_12345'",
                                "instr(address, ' ') > 0 OR instr(address, char(9)) > 0 OR instr(address, char(10)) > 0 "
                                "OR instr(address, char(13)) > 0 OR instr(address, char(12288)) > 0", keep, win,
                                min_addr, address_key)  # fmt: skip
        groups = [("phone", k, ids) for k, ids in by_phone.items() if len(ids) >= min_calls]
        groups += [("address", k, ids) for k, ids in by_addr.items() if len(ids) >= min_addr]
        groups = [
            (f"phone:{_hash(k)}", ids, f"来电人 {mask_phone(k)} ", min_calls, [f"caller:{mask_phone(k)}"])
            if kind == "phone" else (f"address:{_hash(k)}", ids, f"地址“{k}”", min_addr, [])
            for kind, k, ids in ctx.keep_largest(groups, size=lambda g: len(g[2]))
        ]  # fmt: skip
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

    @staticmethod
    def _grouped(ctx, col, index, subset, odd, keep, win, threshold, normalise) -> dict[str, list[int]]:
        """Event ids by normalised ``col``: SQL groups raw values in index order and returns those
        reaching ``threshold`` plus every oddly written one (``odd``: spaces, dashes …); raw values
        that an odd one normalises to are fetched too, so variants of one value always add up."""
        raw: dict[str, list[int]] = {}
        for value, ids in ctx.conn.execute(
            f"SELECT {col}, group_concat(id) FROM events INDEXED BY {index} WHERE {subset} AND {col} IS NOT NULL "
            f"AND {keep} GROUP BY {col} HAVING count(*) >= ? OR {odd}", (*win, threshold)):  # fmt: skip
            raw[value] = [int(i) for i in ids.split(",")]
        extra = sorted({k for v in raw for k in [normalise(v)] if k and k not in raw})[:900]
        if extra:
            for value, ids in ctx.conn.execute(
                f"SELECT {col}, group_concat(id) FROM events INDEXED BY {index} WHERE {subset} "
                f"AND {col} IN ({','.join('?' * len(extra))}) AND {keep} GROUP BY {col}", (*extra, *win)):  # fmt: skip
                raw[value] = [int(i) for i in ids.split(",")]
        out: dict[str, list[int]] = defaultdict(list)
        for value, ids in raw.items():
            key = normalise(value)
            if key:
                out[key].extend(ids)
        return out

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
