"""Demo geography of Chongchuan District: streets, communities, grids, neighbourhoods, places.

The district boundary and the Yangtze water are real (``resources/geodata``). Street
and community *names and codes* are official (NBS 2022). Their *polygons* are not public:
everything below the district outline is DERIVED and APPROXIMATE:

- streets: Voronoi cells around curated approximate anchors (several per street),
  dissolved per street and clipped to the land; the development-zone area in the
  south-east (administered separately, 320671) goes to the nearest of the 16 streets;
- communities: Voronoi of seed points inside each street (a few Lloyd steps), clipped;
- grids: Voronoi of seed points inside each community; dedicated grids (专属网格) are
  small rectangles carved out of the comprehensive grid they sit in;
- neighbourhoods, estates, roads and landmarks are synthetic.

Everything is deterministic for a given seed (``np.random.default_rng(seed)``).
Qt-free.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from db.spatial import (
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON,
    RESOURCES,
    GridIndex,
    load_land,
    round_geometry,
    sample_points,
)

GEODATA = RESOURCES
STREETS_CSV = GEODATA / "streets_nbs2022.csv"
COMMUNITIES_CSV = GEODATA / "communities_nbs2022.csv"

#: Total number of grids (综合网格 + 专属网格), per the district's "1+16+824".
TOTAL_GRIDS = 824

#: Origin of the local km plane used for Voronoi diagrams (only the scale matters).
LON0, LAT0 = 120.90, 31.96
#: Centre of the old city (濠河).
CORE_CENTRE = (120.868, 32.010)

#: The 16 official streets: approximate anchors (lon, lat; several per street shape
#: the split of the outer land) and an approximate resident population (demo figures).
STREET_SPECS: dict[str, dict[str, Any]] = {
    # old-city core (8 small streets around 濠河)
    "320613001": {"anchors": [(120.903, 32.018), (120.912, 32.004)], "population": 105_000},  # 城东
    "320613002": {"anchors": [(120.871, 32.011)], "population": 68_000},  # 和平桥
    "320613003": {"anchors": [(120.846, 32.019), (120.838, 32.006)], "population": 78_000},  # 任港
    "320613004": {"anchors": [(120.856, 31.996), (120.848, 31.988)], "population": 82_000},  # 新城桥
    "320613005": {"anchors": [(120.866, 32.037)], "population": 76_000},  # 虹桥
    "320613006": {"anchors": [(120.880, 32.025)], "population": 72_000},  # 学田
    "320613007": {"anchors": [(120.895, 32.040)], "population": 88_000},  # 钟秀
    "320613008": {"anchors": [(120.884, 31.994), (120.895, 31.985)], "population": 112_000},  # 文峰
    # outer streets
    "320613009": {  # 观音山 (east; takes the northern part of the development-zone area)
        "anchors": [
            (120.950, 32.020),
            (120.940, 31.990),
            (120.985, 31.945),
            (121.015, 31.895),
            (121.050, 31.850),
        ],
        "population": 130_000,
    },
    "320613010": {  # 狼山镇 (south, on the river; takes the southern development-zone area)
        "anchors": [(120.880, 31.962), (120.912, 31.925), (120.943, 31.875), (120.985, 31.822)],
        "population": 90_000,
    },
    "320613016": {"anchors": [(120.818, 32.048)], "population": 80_000},  # 永兴
    "320613017": {"anchors": [(120.835, 32.075)], "population": 82_000},  # 唐闸镇
    "320613018": {  # 天生港镇 (west, on the river)
        "anchors": [(120.793, 32.032), (120.770, 32.060), (120.765, 32.090)],
        "population": 52_000,
    },
    "320613019": {"anchors": [(120.868, 32.060)], "population": 58_000},  # 秦灶
    "320613020": {"anchors": [(120.830, 32.110), (120.800, 32.128)], "population": 50_000},  # 陈桥
    "320613021": {"anchors": [(120.878, 32.085), (120.860, 32.100)], "population": 56_000},  # 幸福
}
CORE_STREETS = tuple(f"3206130{n:02d}" for n in range(1, 9))

#: Dedicated grid kinds: (count, size range in metres, label used in the grid name).
DEDICATED_SPECS: dict[str, tuple[int, tuple[float, float], str]] = {
    "hospital": (9, (200.0, 380.0), "医院"),
    "school": (24, (160.0, 320.0), "学校"),
    "market": (14, (150.0, 220.0), "市场"),
    "construction": (12, (220.0, 400.0), "工地"),
}

#: Resident population range of a dedicated grid (staff dormitories, site workers...).
DEDICATED_POPULATION = {
    "hospital": (20, 160),
    "school": (8, 120),
    "market": (6, 60),
    "construction": (30, 300),
}

# Name material for synthetic places (combined deterministically).
NAME_STEMS = (
    "和平 幸福 新华 春晖 景瑞 安康 泰和 宁安 嘉禾 瑞祥 丰乐 盛世 兴隆 锦绣 翠竹 桂花 兰亭 梅林 "
    "松柏 云台 海晏 明月 星河 东方 西城 南苑 北辰 阳光 金桥 银杏 玉兰 美景 怡和 悦来 湖光 滨江 "
    "江畔 濠西 濠东 荣华 欣欣 文昌 崇文 育才 秀水 青年 长安 永和 吉祥 福星 康乐 和谐 民主 团结 "
    "友谊 胜利 工农 光华 红星 朝阳 振兴 建设 向阳 曙光 环城 观海 望江 临江 静安 清风 书香 枫林 "
    "桃园 柳岸 荷花 芙蓉 牡丹 丁香 紫薇 凤凰 龙腾 鹤鸣 鸿运 天成 人和 万福 千禧 百合 九华 五福 "
    "三元 双桥 南园 北园 东园 西园 中和 华府 御景 世纪 未来 春江 秋水 晴川 碧波 翠湖 绿洲 花园 "
    "芳草 晨曦 晓月 景福 景和 祥和 瑞和 安居 乐居 宜居 福润 润和 和润 永安 永兴 长青 常青 "
    "新城 新苑 新景 新港 港城 城中 城南 城北 学府 文峰 钟楼 虹霞 桥北 桥南 运河 通江 通达 "
    "通城 崇和 崇德 明德 厚德 尚德 怀德 德馨 馨园 雅居 雅园 锦华 锦江 锦程 华新 华安 华润"
).split()
ESTATE_SUFFIXES = ("花苑", "新村", "小区", "家园", "公寓", "佳苑", "雅苑", "华庭", "嘉园", "名邸")
ROAD_SUFFIXES = ("路", "路", "路", "街", "大道")
LANDMARK_SUFFIXES = {
    "hospital": ("医院", "社区医院", "中医门诊部"),
    "school": ("小学", "中学", "实验学校", "初级中学", "幼儿园"),
    "market": ("农贸市场", "菜市场"),
    "construction": ("项目工地", "安置房工地", "道路改造工地"),
}

N_ESTATES = 660
N_ROADS_CORE = 70
N_ROADS_OUTER = 60


# --------------------------------------------------------------------------- helpers


def short_name(official: str) -> str:
    """Display name of a community: '德民社区居委会' -> '德民社区', '五星村委会' -> '五星村'."""
    for suffix in ("社区居民委员会", "社区居民委委会", "社区居委会"):
        if official.endswith(suffix):
            return official[: -len(suffix)] + "社区"
    if official.endswith("村委会"):
        return official[: -len("村委会")] + "村"
    if official.endswith("居委会"):
        return official[: -len("居委会")]
    return official


def _is_village(official: str) -> bool:
    return official.endswith("村委会") or official.endswith("村社区")


def _to_km(lon, lat):
    return (np.asarray(lon) - LON0) * KM_PER_DEG_LON, (np.asarray(lat) - LAT0) * KM_PER_DEG_LAT


def _km_to_deg_coords(c: np.ndarray) -> np.ndarray:
    out = np.empty_like(c)
    out[:, 0] = c[:, 0] / KM_PER_DEG_LON + LON0
    out[:, 1] = c[:, 1] / KM_PER_DEG_LAT + LAT0
    return out


def _polygon_parts(geom) -> list[Polygon]:
    """Polygon parts of any geometry (lines/points from degenerate intersections dropped)."""
    if geom is None or geom.is_empty:
        return []
    return [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]


def _largest_part(geom) -> Polygon:
    parts = _polygon_parts(geom)
    return max(parts, key=lambda p: p.area)


def _voronoi_cells(lon: np.ndarray, lat: np.ndarray, region) -> np.ndarray:
    """Voronoi cells (lon/lat polygons, input order) of the seeds, computed in a local km plane."""
    n = len(lon)
    x0, y0, x1, y1 = region.bounds
    xs = np.concatenate([[x0, x1], lon])
    ys = np.concatenate([[y0, y1], lat])
    kx, ky = _to_km(xs, ys)
    pad = 2.0
    env_km = shapely.box(kx.min() - pad, ky.min() - pad, kx.max() + pad, ky.max() + pad)
    if n == 1:
        return np.array([shapely.transform(env_km, _km_to_deg_coords)], dtype=object)
    sx, sy = _to_km(lon, lat)
    diagram = shapely.voronoi_polygons(shapely.multipoints(np.c_[sx, sy]), extend_to=env_km, ordered=True)
    cells = shapely.get_parts(diagram)
    if len(cells) != n:
        raise RuntimeError(f"Voronoi returned {len(cells)} cells for {n} seeds (duplicate seeds?)")
    return shapely.transform(cells, _km_to_deg_coords)


def _fix_fragments(pieces: list) -> list:
    """Keep each label's largest part; merge other parts into the neighbour sharing most border."""
    kept: list = []
    orphans: list[Polygon] = []
    for g in pieces:
        parts = _polygon_parts(g)
        if not parts:
            raise RuntimeError("a tile has no polygonal part")
        parts.sort(key=lambda p: -p.area)
        kept.append(parts[0])
        orphans.extend(parts[1:])
    pending = orphans
    while pending:
        arr = np.asarray(kept, dtype=object)
        still: list[Polygon] = []
        merged_any = False
        for orphan in pending:
            shared = shapely.length(shapely.intersection(arr, orphan))
            j = int(np.argmax(shared))
            if shared[j] <= 0:
                still.append(orphan)
                continue
            kept[j] = shapely.union(kept[j], orphan)
            arr[j] = kept[j]
            merged_any = True
        if not merged_any:  # nothing touches: attach to the nearest tile
            for orphan in still:
                j = int(np.argmin(shapely.distance(arr, orphan)))
                kept[j] = shapely.union(kept[j], orphan)
                arr[j] = kept[j]
            break
        pending = still
    return [_clean(g) for g in kept]


def _clean(geom):
    """Drop zero-area debris from a union; a single part comes back as a Polygon."""
    parts = _polygon_parts(geom)
    if len(parts) == 1:
        return parts[0]
    big = max(p.area for p in parts)
    parts = [p for p in parts if p.area > big * 1e-9]
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _tile(region, lon: np.ndarray, lat: np.ndarray, labels: np.ndarray | None = None) -> list:
    """Tile ``region`` by Voronoi of the seeds (dissolved per label).

    Seeds must lie in the largest part of ``region``; that part is tiled, each tile is made
    one polygon, and the other parts (islands) go whole to the nearest tile.
    """
    parts = sorted(_polygon_parts(region), key=lambda p: -p.area)
    main, islands = parts[0], parts[1:]
    cells = _voronoi_cells(lon, lat, main)
    if labels is not None:
        nlab = int(labels.max()) + 1
        cells = np.array([shapely.union_all(cells[labels == k]) for k in range(nlab)], dtype=object)
    pieces = list(shapely.intersection(cells, main))
    if len(pieces) == 1:
        pieces = [main]
    else:
        pieces = _fix_fragments(pieces)
    if islands:
        arr = np.asarray(pieces, dtype=object)
        for island in islands:
            j = int(np.argmin(shapely.distance(arr, island)))
            pieces[j] = _clean(shapely.union(pieces[j], island))
            arr[j] = pieces[j]
    return pieces


def _relaxed_seeds(
    main: Polygon, n: int, rng: np.random.Generator, iters: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seed points inside ``main``, spread out by a few Lloyd iterations."""
    lon, lat = sample_points(main, n, rng)
    if n == 1:
        p = main.representative_point()
        return np.array([p.x]), np.array([p.y])
    shapely.prepare(main)
    for _ in range(iters):
        cells = shapely.intersection(_voronoi_cells(lon, lat, main), main)
        cen = shapely.centroid(cells)
        cx, cy = shapely.get_x(cen), shapely.get_y(cen)
        ok = ~shapely.is_empty(cells) & np.isfinite(cx) & np.isfinite(cy)
        ok[ok] = shapely.contains_xy(main, cx[ok], cy[ok])
        lon = np.where(ok, cx, lon)
        lat = np.where(ok, cy, lat)
    return lon, lat


def _sample_in_many(geoms: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> tuple:
    """Uniform points inside many geometries at once; returns (owner index, lon, lat).

    Like :func:`db.spatial.sample_points`: coordinates rounded to 6 decimals and inside
    both the geometry and its 6-decimal (stored) version.
    """
    geoms = np.asarray(geoms, dtype=object)
    counts = np.asarray(counts, dtype=np.int64)
    stored = round_geometry(geoms, 6)
    shapely.prepare(geoms)
    shapely.prepare(stored)
    b = shapely.bounds(geoms)
    fill = np.clip(
        shapely.area(geoms) / np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-18), 0.02, 1
    )
    need = counts.copy()
    owners, xs, ys = [], [], []
    while need.sum() > 0:
        m = np.where(need > 0, np.ceil(need / fill * 1.3).astype(np.int64) + 2, 0)
        own = np.repeat(np.arange(len(geoms)), m)
        x = np.round(rng.uniform(b[own, 0], b[own, 2]), 6)
        y = np.round(rng.uniform(b[own, 1], b[own, 3]), 6)
        ok = shapely.contains_xy(geoms[own], x, y) & shapely.contains_xy(stored[own], x, y)
        own, x, y = own[ok], x[ok], y[ok]
        # keep at most need[k] per owner (points are grouped by owner, in order)
        start = np.searchsorted(own, np.arange(len(geoms)))
        rank = np.arange(own.size) - start[own]
        keep = rank < need[own]
        owners.append(own[keep])
        xs.append(x[keep])
        ys.append(y[keep])
        need -= np.bincount(own[keep], minlength=len(geoms))
    own = np.concatenate(owners)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    order = np.argsort(own, kind="stable")
    return own[order], x[order], y[order]


def _largest_remainder(weights: np.ndarray, total: int, minimum: int = 0) -> np.ndarray:
    """Integer allocation of ``total`` proportional to ``weights`` with a per-item minimum."""
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    base = np.full(n, minimum, dtype=np.int64)
    rest = total - base.sum()
    if rest < 0:
        raise ValueError("total too small for the minimum")
    share = weights / weights.sum() * rest
    alloc = np.floor(share).astype(np.int64)
    left = rest - alloc.sum()
    order = np.argsort(-(share - alloc), kind="stable")
    alloc[order[:left]] += 1
    return base + alloc


def _rect_km(cx: float, cy: float, w: float, h: float, angle: float) -> Polygon:
    """Rotated rectangle in lon/lat around (cx, cy) lon/lat; w, h in km; angle in radians."""
    kx, ky = _to_km(cx, cy)
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = corners @ np.array([[c, s], [-s, c]]) + [float(kx), float(ky)]
    return Polygon(_km_to_deg_coords(rot))


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


class _Names:
    """Deterministic unique names: a stem from :data:`NAME_STEMS` plus a suffix."""

    def __init__(self, rng: np.random.Generator, suffixes: tuple[str, ...]):
        self._rng = rng
        self._suffixes = suffixes
        self._used: dict[str, None] = {}

    def _free(self, name: str) -> bool:
        if name in self._used:
            return False
        self._used[name] = None
        return True

    def take(self, suffixes: tuple[str, ...] | None = None, prefer: list[str] | None = None) -> str:
        sfx = suffixes or self._suffixes
        for stem in prefer or ():
            name = stem + sfx[int(self._rng.integers(len(sfx)))]
            if self._free(name):
                return name
        for _ in range(200):
            name = (
                NAME_STEMS[int(self._rng.integers(len(NAME_STEMS)))] + sfx[int(self._rng.integers(len(sfx)))]
            )
            if self._free(name):
                return name
        for stem in NAME_STEMS:  # exhaustive fallback
            for x in dict.fromkeys(sfx):
                if self._free(stem + x):
                    return stem + x
        raise RuntimeError("name pool exhausted")


# --------------------------------------------------------------------------- model


@dataclass
class Geography:
    """Derived (approximate) administrative geography of the district."""

    seed: int
    land: BaseGeometry
    streets: list[dict[str, Any]]
    communities: list[dict[str, Any]]
    grids: list[dict[str, Any]]
    neighbourhoods: list[dict[str, Any]]
    places: list[dict[str, Any]]
    _grid_index: GridIndex | None = field(default=None, init=False, repr=False, compare=False)
    _street_index: GridIndex | None = field(default=None, init=False, repr=False, compare=False)
    _community_index: GridIndex | None = field(default=None, init=False, repr=False, compare=False)

    def grid_index(self) -> GridIndex:
        """Point -> grid lookup (``ids`` are grid ids, in ``self.grids`` order)."""
        if self._grid_index is None:
            self._grid_index = GridIndex([g["id"] for g in self.grids], [g["geometry"] for g in self.grids])
        return self._grid_index

    def street_index(self) -> GridIndex:
        if self._street_index is None:
            self._street_index = GridIndex(
                [s["code"] for s in self.streets],
                [s["geometry"] for s in self.streets],
                cells_per_polygon=4096,
            )
        return self._street_index

    def community_index(self) -> GridIndex:
        if self._community_index is None:
            self._community_index = GridIndex(
                [c["code"] for c in self.communities], [c["geometry"] for c in self.communities], 1024
            )
        return self._community_index

    def street(self, code: str) -> dict[str, Any]:
        return next(s for s in self.streets if s["code"] == code)

    def community(self, code: str) -> dict[str, Any]:
        return next(c for c in self.communities if c["code"] == code)

    def grid(self, grid_id: str) -> dict[str, Any]:
        return next(g for g in self.grids if g["id"] == grid_id)


def official_streets() -> list[dict[str, str]]:
    """The 16 official streets (code, name) in code order."""
    rows = _read_csv(STREETS_CSV)
    return [{"code": r["code"], "name": r["name"]} for r in rows if r["code"] in STREET_SPECS]


def official_communities() -> list[dict[str, str]]:
    """The 179 official communities of the 16 streets (code, name, street_code) in code order."""
    rows = _read_csv(COMMUNITIES_CSV)
    return [
        {"code": r["code"], "name": r["name"], "street_code": r["streetCode"]}
        for r in rows
        if r["streetCode"] in STREET_SPECS
    ]


def build_geography(seed: int = 7) -> Geography:
    """Build the whole derived geography (deterministic for ``seed``)."""
    rng = np.random.default_rng(seed)
    land = load_land()
    streets = _build_streets(land)
    communities = _build_communities(streets, rng)
    grids = _build_grids(communities, rng)
    neighbourhoods = _build_neighbourhoods(grids, rng)
    geo = Geography(
        seed=seed,
        land=land,
        streets=streets,
        communities=communities,
        grids=grids,
        neighbourhoods=neighbourhoods,
        places=[],
    )
    geo.places = _build_places(geo, rng)
    return geo


# --------------------------------------------------------------------------- levels


def _build_streets(land) -> list[dict[str, Any]]:
    meta = official_streets()
    if len(meta) != len(STREET_SPECS):
        raise RuntimeError("streets_nbs2022.csv does not list the 16 expected streets")
    lon, lat, labels = [], [], []
    for k, s in enumerate(meta):
        for a_lon, a_lat in STREET_SPECS[s["code"]]["anchors"]:
            lon.append(a_lon)
            lat.append(a_lat)
            labels.append(k)
    lon_a, lat_a = np.array(lon), np.array(lat)
    main = _largest_part(land)
    if not shapely.contains_xy(main, lon_a, lat_a).all():
        bad = [
            (x, y)
            for x, y, ok in zip(lon, lat, shapely.contains_xy(main, lon_a, lat_a), strict=True)
            if not ok
        ]
        raise RuntimeError(f"street anchors outside the land: {bad}")
    geoms = _tile(land, lon_a, lat_a, np.array(labels))
    return [
        {
            "code": s["code"],
            "name": s["name"],
            "geometry": g,
            "population": int(STREET_SPECS[s["code"]]["population"]),
        }
        for s, g in zip(meta, geoms, strict=True)
    ]


def _build_communities(streets: list[dict[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
    meta = official_communities()
    by_street: dict[str, list[dict[str, str]]] = {}
    for c in meta:
        by_street.setdefault(c["street_code"], []).append(c)
    out: list[dict[str, Any]] = []
    for s in streets:
        comms = by_street[s["code"]]
        n = len(comms)
        main = _largest_part(s["geometry"])
        lon, lat = _relaxed_seeds(main, n, rng, iters=3)
        # villages take the seeds farthest from the old city, the rest in random order
        dx, dy = _to_km(lon, lat)
        cx, cy = _to_km(*CORE_CENTRE)
        dist = np.hypot(dx - cx, dy - cy)
        by_dist = np.argsort(dist, kind="stable")
        villages = [i for i, c in enumerate(comms) if _is_village(c["name"])]
        others = [i for i, c in enumerate(comms) if not _is_village(c["name"])]
        others = [others[i] for i in rng.permutation(len(others))]
        order = others + villages  # community index for the k-th nearest seed
        seed_of = np.empty(n, dtype=np.int64)
        for rank, ci in enumerate(order):
            seed_of[ci] = by_dist[rank]
        geoms = _tile(s["geometry"], lon[seed_of], lat[seed_of])
        w = rng.gamma(5.0, 1.0, n) * np.array([0.45 if _is_village(c["name"]) else 1.0 for c in comms])
        pops = _largest_remainder(w, s["population"])
        for c, g, p in zip(comms, geoms, pops, strict=True):
            out.append(
                {
                    "code": c["code"],
                    "name": c["name"],
                    "street_code": s["code"],
                    "geometry": g,
                    "population": int(p),
                }
            )
    return out


def _build_grids(communities: list[dict[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
    n_dedicated = sum(spec[0] for spec in DEDICATED_SPECS.values())
    n_comprehensive = TOTAL_GRIDS - n_dedicated
    pops = np.array([c["population"] for c in communities], dtype=float)
    counts = _largest_remainder(pops, n_comprehensive, minimum=1)

    per_comm: list[list[dict[str, Any]]] = []
    for c, n in zip(communities, counts, strict=True):
        n = int(n)
        main = _largest_part(c["geometry"])
        lon, lat = _relaxed_seeds(main, n, rng, iters=2)
        order = np.lexsort((lon, -np.round(lat, 3)))  # north to south, then west to east
        lon, lat = lon[order], lat[order]
        geoms = _tile(c["geometry"], lon, lat) if n > 1 else [c["geometry"]]
        w = np.clip(rng.gamma(8.0, 1.0 / 8.0, n), 0.55, 1.9)
        gp = _largest_remainder(w, c["population"])
        hh_ratio = rng.uniform(2.45, 2.75, n)
        sn = short_name(c["name"])
        grids = []
        for k in range(n):
            grids.append(
                {
                    "id": f"{c['code']}-{k + 1:02d}",
                    "name": f"{sn}第{k + 1}网格",
                    "kind": "comprehensive",
                    "community_code": c["code"],
                    "street_code": c["street_code"],
                    "population": int(gp[k]),
                    "households": int(round(gp[k] / hh_ratio[k])),
                    "geometry": geoms[k],
                }
            )
        per_comm.append(grids)

    _carve_dedicated(communities, per_comm, rng)
    return [g for grids in per_comm for g in grids]


def _carve_dedicated(communities, per_comm: list[list[dict[str, Any]]], rng: np.random.Generator) -> None:
    """Carve the dedicated grids out of comprehensive grids (in place)."""
    hosts = [(ci, k) for ci, grids in enumerate(per_comm) for k in range(len(grids))]
    host_geoms = np.array([per_comm[ci][k]["geometry"] for ci, k in hosts], dtype=object)
    host_street = np.array([per_comm[ci][k]["street_code"] for ci, k in hosts])
    host_pop = np.array([per_comm[ci][k]["population"] for ci, k in hosts], dtype=float)
    core = np.isin(host_street, CORE_STREETS)
    used_host = np.zeros(len(hosts), dtype=bool)
    host_comm = np.array([ci for ci, _ in hosts])
    comm_has = {kind: np.zeros(len(per_comm), dtype=bool) for kind in DEDICATED_SPECS}
    # inscribed-circle radius (degrees of longitude) of each host, to know what fits
    radius_km = shapely.length(shapely.maximum_inscribed_circle(host_geoms, 2e-5)) * KM_PER_DEG_LON
    kind_weight = {
        "hospital": np.where(core, 4.0, 1.0),
        "school": host_pop,
        "market": host_pop * np.where(core, 1.5, 1.0),
        "construction": np.where(core, 0.15, 1.0) * shapely.area(host_geoms),
    }
    new_grids: list[tuple[int, dict[str, Any]]] = []
    for kind, (count, (smin, smax), label) in DEDICATED_SPECS.items():
        for _ in range(count):
            w_m = rng.uniform(smin, smax)
            h_m = rng.uniform(smin, smax)
            angle = rng.uniform(-0.5, 0.5)
            half_diag_km = 0.5 * np.hypot(w_m, h_m) / 1000.0
            # at most one dedicated grid of a kind per community (keeps grid names unique)
            fits = (radius_km > half_diag_km + 0.02) & ~used_host & ~comm_has[kind][host_comm]
            weight = np.where(fits, kind_weight[kind], 0.0)
            if weight.sum() <= 0:
                raise RuntimeError(f"no host grid fits a {kind} grid")
            h = int(rng.choice(len(hosts), p=weight / weight.sum()))
            ci, k = hosts[h]
            host = per_comm[ci][k]
            inner = shapely.buffer(host["geometry"], -(half_diag_km + 0.01) / KM_PER_DEG_LON, quad_segs=2)
            inner = _largest_part(inner)
            cx, cy = sample_points(inner, 1, rng)
            rect = _rect_km(float(cx[0]), float(cy[0]), w_m / 1000.0, h_m / 1000.0, angle)
            host["geometry"] = _clean(shapely.difference(host["geometry"], rect))
            host_geoms[h] = host["geometry"]
            used_host[h] = True
            comm_has[kind][ci] = True
            pop = int(rng.integers(*DEDICATED_POPULATION[kind]))
            new_grids.append(
                (
                    ci,
                    {
                        "id": "",
                        "name": f"{short_name(communities[ci]['name'])}{label}专属网格",
                        "kind": kind,
                        "community_code": host["community_code"],
                        "street_code": host["street_code"],
                        "population": pop,
                        "households": max(1, int(round(pop / 2.6))),
                        "geometry": rect,
                    },
                )
            )
    for ci, g in new_grids:
        g["id"] = f"{communities[ci]['code']}-{len(per_comm[ci]) + 1:02d}"
        per_comm[ci].append(g)


def _build_neighbourhoods(grids: list[dict[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
    comp = [g for g in grids if g["kind"] == "comprehensive"]
    counts = rng.integers(2, 5, len(comp))
    owner, lon, lat = _sample_in_many(np.array([g["geometry"] for g in comp], dtype=object), counts, rng)
    out: list[dict[str, Any]] = []
    pos = 0
    for g, n in zip(comp, counts, strict=True):
        n = int(n)
        hh = _largest_remainder(rng.uniform(0.6, 1.4, n), g["households"])
        for k in range(n):
            out.append(
                {
                    "id": f"{g['id']}-{k + 1}",
                    "name": f"第{k + 1}邻里",
                    "grid_id": g["id"],
                    "households": int(hh[k]),
                    "lon": float(lon[pos + k]),
                    "lat": float(lat[pos + k]),
                }
            )
        assert (owner[pos : pos + n] == owner[pos]).all()
        pos += n
    return out


def _place(kind, name, category, grid, lon, lat, geometry=None) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "category": category,
        "community_code": grid["community_code"] if grid else None,
        "street_code": grid["street_code"] if grid else None,
        "grid_id": grid["id"] if grid else None,
        "lon": float(lon),
        "lat": float(lat),
        "geometry": geometry,
        "demo": True,
    }


def _build_places(geo: Geography, rng: np.random.Generator) -> list[dict[str, Any]]:
    places: list[dict[str, Any]] = []
    grids = geo.grids
    comm_name = {c["code"]: short_name(c["name"]) for c in geo.communities}

    # landmarks: one per dedicated grid, at a point inside it
    landmark_names = _Names(rng, LANDMARK_SUFFIXES["hospital"])
    for g in grids:
        if g["kind"] == "comprehensive":
            continue
        p = g["geometry"].centroid  # dedicated grids are rectangles: the centre is well inside
        name = landmark_names.take(LANDMARK_SUFFIXES[g["kind"]])
        places.append(_place("landmark", name, g["kind"], g, round(p.x, 6), round(p.y, 6)))

    # estates: allocated to comprehensive grids by population, denser in the old city
    comp = [g for g in grids if g["kind"] == "comprehensive"]
    w = np.array([g["population"] * (1.7 if g["street_code"] in CORE_STREETS else 0.6) for g in comp])
    counts = _largest_remainder(w, N_ESTATES)
    owner, lon, lat = _sample_in_many(np.array([g["geometry"] for g in comp], dtype=object), counts, rng)
    estate_names = _Names(rng, ESTATE_SUFFIXES)
    for i, x, y in zip(owner, lon, lat, strict=True):
        g = comp[int(i)]
        stem = comm_name[g["community_code"]].removesuffix("社区").removesuffix("村")
        prefer = [stem] if 1 < len(stem) <= 3 and rng.random() < 0.25 else None
        places.append(_place("estate", estate_names.take(prefer=prefer), None, g, x, y))

    # roads: straight segments clipped to the land; old-city roads short, outer ones long
    index = geo.grid_index()
    road_names = _Names(rng, ROAD_SUFFIXES)
    core_geom = shapely.union_all([s["geometry"] for s in geo.streets if s["code"] in CORE_STREETS])
    outer_geom = shapely.union_all([s["geometry"] for s in geo.streets if s["code"] not in CORE_STREETS])
    land = geo.land
    shapely.prepare(land)
    for region, n_roads, (lmin, lmax) in (
        (core_geom, N_ROADS_CORE, (0.8, 2.6)),
        (outer_geom, N_ROADS_OUTER, (2.0, 6.5)),
    ):
        made = 0
        while made < n_roads:
            cx, cy = sample_points(region, 1, rng)
            length = rng.uniform(lmin, lmax)
            angle = (np.pi / 2) * int(rng.integers(2)) + rng.normal(0.0, 0.1)
            kx, ky = _to_km(cx[0], cy[0])
            dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
            line = LineString(
                _km_to_deg_coords(np.array([[kx - dx, ky - dy], [kx + dx, ky + dy]], dtype=float))
            )
            clipped = shapely.intersection(line, land)
            segs = [s for s in shapely.get_parts(clipped) if isinstance(s, LineString) and not s.is_empty]
            if not segs:
                continue
            centre = shapely.points(cx[0], cy[0])
            seg = min(segs, key=lambda s: s.distance(centre))
            if seg.length * KM_PER_DEG_LON < lmin * 0.6:
                continue
            mid = seg.interpolate(0.5, normalized=True)
            mx, my = round(mid.x, 6), round(mid.y, 6)
            gi = int(index.assign(np.array([mx]), np.array([my]))[0])
            if gi < 0:
                continue
            name = road_names.take(("大道",) if length > 4.5 else ROAD_SUFFIXES[:-1])
            places.append(_place("road", name, None, grids[gi], mx, my, geometry=seg))
            made += 1
    return places
