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

import numpy as np

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
    at most ``radius_m`` long. ``points``: (id, lon, lat). Cell hashing, no O(n²) scan: a point
    alone in its 3×3 cell neighbourhood has no link at all and is dropped first (vectorised), so
    sparse data costs little."""
    if len(points) < min_size:
        return []
    arr = np.array([(p[1], p[2]) for p in points], dtype=float)
    kx = M_PER_DEG_LAT * math.cos(math.radians(float(arr[:, 1].mean())))
    x, y = arr[:, 0] * kx, arr[:, 1] * M_PER_DEG_LAT
    cx = np.floor(x / radius_m).astype(np.int64)
    cy = np.floor(y / radius_m).astype(np.int64)
    cx -= cx.min() - 1
    cy -= cy.min() - 1
    span = int(cy.max()) + 2
    keys = cx * span + cy
    uniq, counts = np.unique(keys, return_counts=True)
    near = np.zeros(len(keys), dtype=np.int64)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            k2 = keys + dx * span + dy
            idx = np.clip(np.searchsorted(uniq, k2), 0, len(uniq) - 1)
            near += np.where(uniq[idx] == k2, counts[idx], 0)
    keep = np.nonzero(near >= 2)[0]
    if len(keep) < min_size:
        return []
    xy = [(points[i][0], float(x[i]), float(y[i])) for i in keep.tolist()]
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (_id, xi, yi) in enumerate(xy):
        cells[(int(xi // radius_m), int(yi // radius_m))].append(i)
    parent = list(range(len(xy)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    r2 = radius_m * radius_m
    for (ci, cj), members in cells.items():
        nb = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in cells.get((ci + dx, cj + dy), ())]
        if len(nb) < 2:
            continue
        for i in members:
            _, xi, yi = xy[i]
            for j in nb:
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
            "SELECT id, category, source, source_code, lon, lat FROM events "
            f"WHERE reported_at >= ? AND reported_at <= ? AND {REAL_EVENTS} "
            "AND status NOT IN ('rejected', 'merged') AND lon IS NOT NULL AND lat IS NOT NULL",
            (ctx.ago(days=days), ctx.iso(ctx.now)),
        ).fetchall()
        by_group: dict[str, list] = defaultdict(list)
        for r in rows:
            if r[1] == "UNCLASSIFIED":
                group = f"UNCLASSIFIED|{r[2]}|{(r[3] or '').strip().upper() or '-'}"
            else:
                group = r[1]
            by_group[group].append((r[0], r[4], r[5]))
        found = [(group, ids) for group, pts in by_group.items() for ids in clusters(pts, radius, min_n)]
        found = ctx.keep_largest(found, size=lambda g: len(g[1]))
        if not found:
            return []
        wanted = sorted({i for _g, ids in found for i in ids})
        info = {}
        for k in range(0, len(wanted), 900):
            part = wanted[k : k + 900]
            for r in ctx.conn.execute(
                "SELECT id, category, source, source_code, lon, lat, external_id, grid_id, street_code, reported_at "
                f"FROM events WHERE id IN ({','.join('?' * len(part))})", part):  # fmt: skip
                info[r[0]] = r
        cat_names = dict(ctx.conn.execute("SELECT code, name_zh FROM categories").fetchall())
        names = None
        out: list[Finding] = []
        for group, ids in found:
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
