"""Tests for db.demo.geography (Qt-free)."""

from __future__ import annotations

import collections
import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely

from db.demo.geography import CORE_STREETS, Geography, build_geography, short_name
from db.spatial import RESOURCES, GridIndex, area_km2, sample_points, to_geojson

ROOT = Path(__file__).resolve().parents[2]


def _official():
    with open(RESOURCES / "streets_nbs2022.csv", encoding="utf-8") as fh:
        streets = [r for r in csv.DictReader(fh)]
    codes = [f"3206130{n:02d}" for n in (*range(1, 11), *range(16, 22))]
    streets = {r["code"]: r["name"] for r in streets if r["code"] in codes}
    with open(RESOURCES / "communities_nbs2022.csv", encoding="utf-8") as fh:
        comms = {
            r["code"]: (r["name"], r["streetCode"]) for r in csv.DictReader(fh) if r["streetCode"] in codes
        }
    return codes, streets, comms


@pytest.fixture(scope="module")
def geo() -> Geography:
    return build_geography()


def _geoms(rows):
    return np.array([r["geometry"] for r in rows], dtype=object)


def test_streets_official(geo):
    codes, names, _ = _official()
    assert [s["code"] for s in geo.streets] == codes
    assert {s["code"]: s["name"] for s in geo.streets} == names
    assert len(geo.streets) == 16
    for s in geo.streets:
        assert set(s) >= {"code", "name", "geometry", "population"}
        assert s["geometry"].is_valid and not s["geometry"].is_empty
        assert s["population"] > 0


def test_streets_tile_land(geo):
    g = _geoms(geo.streets)
    union = shapely.union_all(g)
    assert abs(shapely.area(g).sum() - union.area) / union.area < 1e-6  # no overlaps
    assert shapely.symmetric_difference(union, geo.land).area / geo.land.area < 0.005
    # one polygon per street unless the land forces it (islands): the main part dominates
    for s in geo.streets:
        parts = shapely.get_parts(s["geometry"])
        assert max(area_km2(parts)) / area_km2(s["geometry"]) > 0.95, s["name"]
    assert sum(s["geometry"].geom_type == "Polygon" for s in geo.streets) >= 13


def test_old_city_small_and_central(geo):
    area = {s["code"]: area_km2(s["geometry"]) for s in geo.streets}
    core = [area[c] for c in CORE_STREETS]
    outer = [a for c, a in area.items() if c not in CORE_STREETS]
    assert max(core) < 20 and np.median(core) < np.median(outer)
    hub = shapely.Point(120.868, 32.012)
    assert geo.street("320613002")["geometry"].distance(hub) < 0.01  # 和平桥 at the centre
    pop = {s["code"]: s["population"] for s in geo.streets}
    density_core = sum(pop[c] for c in CORE_STREETS) / sum(core)
    density_outer = sum(p for c, p in pop.items() if c not in CORE_STREETS) / sum(outer)
    assert density_core > 3 * density_outer


def test_communities_official_and_tile_streets(geo):
    _, _, comms = _official()
    assert len(geo.communities) == 179
    assert {c["code"]: (c["name"], c["street_code"]) for c in geo.communities} == comms
    by_street = collections.defaultdict(list)
    for c in geo.communities:
        assert c["geometry"].is_valid and c["population"] > 0
        by_street[c["street_code"]].append(c["geometry"])
    for s in geo.streets:
        g = np.array(by_street[s["code"]], dtype=object)
        union = shapely.union_all(g)
        assert abs(shapely.area(g).sum() - union.area) / union.area < 1e-6
        assert shapely.symmetric_difference(union, s["geometry"]).area / s["geometry"].area < 1e-6


def test_exactly_824_grids_tiling_land(geo):
    assert len(geo.grids) == 824
    g = _geoms(geo.grids)
    assert shapely.is_valid(g).all()
    union = shapely.union_all(g)
    assert abs(shapely.area(g).sum() - union.area) / union.area < 1e-6  # no overlaps
    assert abs(union.area - geo.land.area) / geo.land.area < 0.005
    assert shapely.symmetric_difference(union, geo.land).area / geo.land.area < 0.005


def test_grid_fields_and_nesting(geo):
    comm = {c["code"]: c for c in geo.communities}
    street = {s["code"]: s for s in geo.streets}
    ids = [g["id"] for g in geo.grids]
    assert len(set(ids)) == 824
    assert len({g["name"] for g in geo.grids}) == 824
    reps = shapely.point_on_surface(_geoms(geo.grids))
    for g, p in zip(geo.grids, reps, strict=True):
        assert set(g) >= {
            "id",
            "name",
            "kind",
            "community_code",
            "street_code",
            "population",
            "households",
            "geometry",
        }
        assert re.fullmatch(r"\d{12}-\d{2}", g["id"]) and g["id"].startswith(g["community_code"] + "-")
        c = comm[g["community_code"]]
        assert c["street_code"] == g["street_code"]
        assert c["geometry"].contains(p)
        assert street[g["street_code"]]["geometry"].contains(p)
        assert g["name"].startswith(short_name(c["name"]))
        if g["kind"] == "comprehensive":
            assert re.search(r"第\d+网格$", g["name"])
        else:
            assert g["name"].endswith("专属网格")
            assert c["geometry"].contains(g["geometry"])


def test_grid_kinds_and_population(geo):
    kinds = collections.Counter(g["kind"] for g in geo.grids)
    assert set(kinds) == {"comprehensive", "hospital", "school", "market", "construction"}
    dedicated = 824 - kinds["comprehensive"]
    assert 50 <= dedicated <= 70
    per_comm = collections.Counter(g["community_code"] for g in geo.grids if g["kind"] == "comprehensive")
    assert len(per_comm) == 179 and min(per_comm.values()) >= 1
    total = sum(g["population"] for g in geo.grids)
    assert 1_100_000 < total < 1_500_000
    core = [
        g["population"]
        for g in geo.grids
        if g["kind"] == "comprehensive" and g["street_code"] in CORE_STREETS
    ]
    assert 500 <= min(core) and max(core) <= 4000 and 800 <= np.median(core) <= 4000
    for g in geo.grids:
        if g["population"] > 200:
            assert 2.2 < g["population"] / g["households"] < 3.0
    # dedicated grids are small (~150-400 m across)
    for g in geo.grids:
        if g["kind"] != "comprehensive":
            assert 0.01 < area_km2(g["geometry"]) < 0.17


def test_density_higher_in_old_city(geo):
    def density(core: bool) -> float:
        rows = [g for g in geo.grids if (g["street_code"] in CORE_STREETS) == core]
        return sum(g["population"] for g in rows) / sum(area_km2(g["geometry"]) for g in rows)

    assert density(True) > 3 * density(False)


def test_neighbourhoods(geo):
    idx = geo.grid_index()
    by_grid = collections.Counter(n["grid_id"] for n in geo.neighbourhoods)
    comp = [g["id"] for g in geo.grids if g["kind"] == "comprehensive"]
    assert set(by_grid) == set(comp)
    assert all(2 <= by_grid[i] <= 4 for i in comp)
    assert len({n["id"] for n in geo.neighbourhoods}) == len(geo.neighbourhoods)
    lon = np.array([n["lon"] for n in geo.neighbourhoods])
    lat = np.array([n["lat"] for n in geo.neighbourhoods])
    assert list(idx.ids_for(lon, lat)) == [n["grid_id"] for n in geo.neighbourhoods]
    for n in geo.neighbourhoods[:50]:
        assert re.fullmatch(r"第\d邻里", n["name"]) and n["households"] >= 0


def test_points_inside_stored_grids(geo):
    """Neighbourhood and estate points stay inside their grid as stored (6-decimal GeoJSON)."""
    stored = {g["id"]: shapely.from_geojson(to_geojson(g["geometry"])) for g in geo.grids}
    rows = geo.neighbourhoods + [p for p in geo.places if p["kind"] in ("estate", "landmark")]
    assert all(stored[r["grid_id"]].contains(shapely.Point(r["lon"], r["lat"])) for r in rows)


def test_places(geo):
    by_kind = collections.defaultdict(list)
    for p in geo.places:
        by_kind[p["kind"]].append(p)
    assert len(by_kind["estate"]) >= 600
    assert len(by_kind["road"]) >= 120
    assert len(by_kind["landmark"]) >= 40
    for kind, rows in by_kind.items():
        names = [p["name"] for p in rows]
        assert len(set(names)) == len(names), kind
    idx = geo.grid_index()
    for kind in ("estate", "landmark"):
        rows = by_kind[kind]
        got = idx.ids_for(np.array([p["lon"] for p in rows]), np.array([p["lat"] for p in rows]))
        assert list(got) == [p["grid_id"] for p in rows]
    assert all(
        re.search(r"(花苑|新村|小区|家园|公寓|佳苑|雅苑|华庭|嘉园|名邸)$", p["name"])
        for p in by_kind["estate"]
    )
    assert all(re.search(r"(路|街|大道)$", p["name"]) for p in by_kind["road"])
    dedicated = {g["id"]: g["kind"] for g in geo.grids if g["kind"] != "comprehensive"}
    assert {p["grid_id"] for p in by_kind["landmark"]} == set(dedicated)
    assert all(p["category"] == dedicated[p["grid_id"]] for p in by_kind["landmark"])
    land = geo.land.buffer(1e-7)
    sidx = geo.street_index()
    for p in by_kind["road"]:
        line = p["geometry"]
        assert line.geom_type == "LineString" and line.length > 0
        assert land.contains(line)
        assert sidx.ids_for([p["lon"]], [p["lat"]])[0] == p["street_code"]


def test_grid_index_matches_naive_loop(geo):
    idx = geo.grid_index()
    assert isinstance(idx, GridIndex) and len(idx) == 824
    rng = np.random.default_rng(99)
    x, y = sample_points(geo.land, 1600, rng)
    x0, y0, x1, y1 = geo.land.bounds
    x = np.concatenate([x, rng.uniform(x0, x1, 400)])
    y = np.concatenate([y, rng.uniform(y0, y1, 400)])
    polys = _geoms(geo.grids)
    naive = []  # brute force over all grids, first hit wins
    for a, b in zip(x, y, strict=True):
        hits = np.flatnonzero(shapely.intersects_xy(polys, a, b))
        naive.append(int(hits[0]) if hits.size else -1)
    np.testing.assert_array_equal(idx.assign(x, y), naive)
    assert (np.asarray(naive[:1600]) >= 0).all()


def test_deterministic(geo):
    again = build_geography()
    for level in ("streets", "communities", "grids"):
        a = [to_geojson(r["geometry"]) for r in getattr(geo, level)]
        b = [to_geojson(r["geometry"]) for r in getattr(again, level)]
        assert a == b, level
        strip = [{k: v for k, v in r.items() if k != "geometry"} for r in getattr(geo, level)]
        assert strip == [{k: v for k, v in r.items() if k != "geometry"} for r in getattr(again, level)]
    assert geo.neighbourhoods == again.neighbourhoods
    key = [(p["kind"], p["name"], p["lon"], p["lat"], p["grid_id"]) for p in geo.places]
    assert key == [(p["kind"], p["name"], p["lon"], p["lat"], p["grid_id"]) for p in again.places]
    other = build_geography(seed=8)
    assert [to_geojson(g["geometry"]) for g in other.grids] != [to_geojson(g["geometry"]) for g in geo.grids]


def test_qt_free():
    code = (
        "import sys, db.demo.geography, db.spatial; print(any(m.startswith('PySide6') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_short_name():
    assert short_name("德民社区居委会") == "德民社区"
    assert short_name("五星村委会") == "五星村"
    assert short_name("碧林湾社区居民委员会") == "碧林湾社区"
    assert short_name("光明村社区") == "光明村社区"
