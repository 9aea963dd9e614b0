"""Hot spots (热点聚集): events of one category clustered in space and time.

Fires when at least ``min_events`` real events of the same category lie within ``radius_m`` of
each other (single-linkage chains) within the last ``days`` days. 待分类 (UNCLASSIFIED) events
have no category to speak of, so they are grouped by their source and source code
(``events.source_code``) instead. Rejected and merged events do not count. Evidence lists every
event of the cluster. Suggests a root-cause task (源头治理).
"""

from __future__ import annotations

import math
from collections import defaultdict

from app.robot.base import (
    M_PER_DEG_LAT,
    REAL_EVENTS,
    Finding,
    Param,
    Rule,
    RuleContext,
    centroid,
    grid_names,
    place_text,
    severity_by_count,
)


def clusters(points: list[tuple[int, float, float]], radius_m: float, min_size: int) -> list[list[int]]:
    """Single-linkage clusters (point ids) of at least ``min_size`` points whose chain links are
    at most ``radius_m`` long. ``points``: (id, lon, lat). Cell hashing, no O(n²) scan."""
    if len(points) < min_size:
        return []
    lat0 = sum(p[2] for p in points) / len(points)
    kx = M_PER_DEG_LAT * math.cos(math.radians(lat0))
    xy = [(p[0], p[1] * kx, p[2] * M_PER_DEG_LAT) for p in points]
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (_id, x, y) in enumerate(xy):
        cells[(int(x // radius_m), int(y // radius_m))].append(i)
    parent = list(range(len(xy)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    r2 = radius_m * radius_m
    for (cx, cy), members in cells.items():
        near = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in cells.get((cx + dx, cy + dy), ())]
        if len(near) < 2:
            continue
        for i in members:
            _, xi, yi = xy[i]
            for j in near:
                if j <= i:
                    continue
                _, xj, yj = xy[j]
                if (xi - xj) ** 2 + (yi - yj) ** 2 <= r2:
                    a, b = root(i), root(j)
                    if a != b:
                        parent[a] = b
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(xy)):
        groups[root(i)].append(xy[i][0])
    return [sorted(g) for g in groups.values() if len(g) >= min_size]


class HotspotRule(Rule):
    name = "hotspot"
    title_zh = "热点聚集"
    title_en = "Hot spots"
    accept_category = "ASSIGN.CAMPAIGN"
    params = {
        "min_events": Param(3, "最少事件数", "件", 2, 1000),
        "radius_m": Param(100, "聚集半径", "米", 10, 5000),
        "days": Param(7, "时间窗", "天", 1, 90),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        min_n, radius, days = int(ctx.p("min_events")), ctx.p("radius_m"), ctx.p("days")
        rows = ctx.conn.execute(
            f"SELECT id, category, source, source_code, lon, lat, external_id, grid_id, street_code, reported_at "
            f"FROM events WHERE reported_at >= ? AND reported_at <= ? AND {REAL_EVENTS} "
            "AND status NOT IN ('rejected', 'merged') AND lon IS NOT NULL AND lat IS NOT NULL",
            (ctx.ago(days=days), ctx.iso(ctx.now)),
        ).fetchall()
        by_group: dict[str, list] = defaultdict(list)
        for r in rows:
            if r[1] == "UNCLASSIFIED":
                group = f"UNCLASSIFIED|{r[2]}|{(r[3] or '').strip().upper() or '-'}"
            else:
                group = r[1]
            by_group[group].append(r)
        cat_names = dict(ctx.conn.execute("SELECT code, name_zh FROM categories").fetchall())
        names = None
        out: list[Finding] = []
        for group, members in by_group.items():
            if len(members) < min_n:
                continue
            info = {r[0]: r for r in members}
            for ids in clusters([(r[0], r[4], r[5]) for r in members], radius, min_n):
                names = names or grid_names(ctx.conn)
                evs = [info[i] for i in ids]
                grids = defaultdict(int)
                for e in evs:
                    grids[e[7]] += 1
                grid = max(grids, key=lambda g: grids[g])
                street = names.get(grid, (None, None, None))[1] if grid else None
                lon, lat = centroid((e[4], e[5]) for e in evs)
                first, last = min(e[9] for e in evs), max(e[9] for e in evs)
                if group.startswith("UNCLASSIFIED|"):
                    _, src, code = group.split("|", 2)
                    what = f"待分类事件（来源 {src}，原始类别码 {code}）"
                    action = (f"为来源 {src} 的类别码 {code} 补充类别映射并归类；"
                              f"派网格员到现场核查同一问题的源头")  # fmt: skip
                else:
                    what = f"“{cat_names.get(group, group)}”事件"
                    action = f"立源头治理任务：排查{place_text(names, grid)}附近“{cat_names.get(group, group)}”反复发生的原因，专项整治"
                out.append(
                    Finding(
                        key=f"{group}|{ids[0]}",
                        overlap_group=group,
                        severity=severity_by_count(len(evs), (min_n + 2, min_n * 2 + 2, min_n * 4)),
                        explanation_zh=(
                            f"{place_text(names, grid)}周边 {radius:g} 米范围内，近 {days:g} 天出现 {len(evs)} 件"
                            f"{what}（{first[5:16].replace('T', ' ')} 至 {last[5:16].replace('T', ' ')}），呈聚集态势。"
                        ),
                        suggested_action=action,
                        grid_id=grid,
                        street_code=street,
                        lon=lon,
                        lat=lat,
                        events=[e[0] for e in evs],
                        external_ids=[e[6] for e in evs if e[6]],
                    )
                )
        return out
