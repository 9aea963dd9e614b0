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
    at most ``radius_m`` long. ``points``: (id, lon, lat)."""
    if len(points) < min_size:
        return []
    ids = np.array([p[0] for p in points], dtype=np.int64)
    lon = np.array([p[1] for p in points], dtype=float)
    lat = np.array([p[2] for p in points], dtype=float)
    return [[int(i) for i in ids[m]] for _g, m in grouped_clusters(lon, lat, np.zeros(len(ids), np.int64),
                                                                     radius_m, min_size)]  # fmt: skip


def grouped_clusters(lon: np.ndarray, lat: np.ndarray, group: np.ndarray, radius_m: float,
                     min_size: int) -> list[tuple[int, np.ndarray]]:  # fmt: skip
    """Clusters within each group at once, vectorised: ``[(group, member indexes), …]``.

    Points are hashed into ``radius_m`` cells (the group folded into the cell key, so groups never
    link); candidate pairs come from each cell and its forward neighbours (sorted keys +
    ``searchsorted``), links are pairs at most ``radius_m`` apart, and components are found by
    min-label propagation with pointer jumping. No Python loop over points."""
    n = len(lon)
    if n < min_size:
        return []
    kx = M_PER_DEG_LAT * math.cos(math.radians(float(lat.mean())))
    x, y = lon * kx, lat * M_PER_DEG_LAT
    cx = np.floor(x / radius_m).astype(np.int64)
    cy = np.floor(y / radius_m).astype(np.int64)
    cx -= cx.min() - 1
    cy -= cy.min() - 1
    span = int(cy.max()) + 2
    width = int(cx.max()) + 2
    keys = (group.astype(np.int64) * width + cx) * span + cy
    order = np.argsort(keys, kind="stable")
    ks, xs, ys = keys[order], x[order], y[order]
    idx = np.arange(n)
    links_a, links_b = [], []
    r2 = radius_m * radius_m
    for off in (0, 1, span - 1, span, span + 1):  # same cell, (0,+1), (+1,-1), (+1,0), (+1,+1)
        lo = np.searchsorted(ks, ks + off, "left")
        hi = np.searchsorted(ks, ks + off, "right")
        if off == 0:
            lo = np.maximum(lo, idx + 1)
        cnt = np.maximum(hi - lo, 0)
        total = int(cnt.sum())
        if total == 0:
            continue
        a = np.repeat(idx, cnt)
        before = np.cumsum(cnt) - cnt
        b = np.arange(total) - np.repeat(before, cnt) + np.repeat(lo, cnt)
        near = (xs[a] - xs[b]) ** 2 + (ys[a] - ys[b]) ** 2 <= r2
        links_a.append(a[near])
        links_b.append(b[near])
    if not links_a:
        return []
    a = np.concatenate(links_a)
    b = np.concatenate(links_b)
    if len(a) == 0:
        return []
    label = np.arange(n)
    for _ in range(200):
        m = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    linked = np.unique(np.concatenate([a, b]))
    labs, inverse, counts = np.unique(label[linked], return_inverse=True, return_counts=True)
    out = []
    for k in np.nonzero(counts >= min_size)[0].tolist():
        members = np.sort(order[linked[inverse == k]])
        out.append((int(group[members[0]]), members))
    return out


class HotspotRule(Rule):
    name = "hotspot"
    title_zh = "热点聚集"
    title_en = "Hot spots"
    accept_category = "ASSIGN.CAMPAIGN"
    params = {
        "min_events": Param(3, "最少事件数", "件", 2, 1000, label_en="Min. events", unit_en="events"),
        "radius_m": Param(100, "聚集半径", "米", 10, 5000, label_en="Cluster radius", unit_en="m"),
        "days": Param(7, "时间窗", "天", 1, 90, label_en="Time window", unit_en="days"),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        min_n, radius, days = int(ctx.p("min_events")), ctx.p("radius_m"), ctx.p("days")
        rows = ctx.conn.execute(
            "SELECT id, category, source, source_code, lon, lat FROM events "
            f"WHERE reported_at >= ? AND reported_at <= ? AND {REAL_EVENTS} "
            "AND status NOT IN ('rejected', 'merged') AND lon IS NOT NULL AND lat IS NOT NULL",
            (ctx.ago(days=days), ctx.iso(ctx.now)),
        ).fetchall()
        names_of: dict[str, int] = {}
        gidx = np.empty(len(rows), dtype=np.int64)
        for k, r in enumerate(rows):
            if r[1] == "UNCLASSIFIED":
                group = f"UNCLASSIFIED|{r[2]}|{(r[3] or '').strip().upper() or '-'}"
            else:
                group = r[1]
            gidx[k] = names_of.setdefault(group, len(names_of))
        groups = list(names_of)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        lon = np.fromiter((r[4] for r in rows), dtype=float, count=len(rows))
        lat = np.fromiter((r[5] for r in rows), dtype=float, count=len(rows))
        found = [(groups[g], [int(i) for i in ids[m]]) for g, m in grouped_clusters(lon, lat, gidx, radius, min_n)]
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
