"""Tests for db.spatial (Qt-free)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from db.spatial import (
    GridIndex,
    area_km2,
    load_boundary,
    load_land,
    load_water,
    sample_points,
    to_geojson,
)


def _voronoi_tiles(n: int, seed: int = 3) -> np.ndarray:
    """``n`` Voronoi tiles of the district land (a realistic polygon set for the index)."""
    land = load_land()
    main = max(land.geoms, key=lambda g: g.area) if isinstance(land, MultiPolygon) else land
    x, y = sample_points(main, n, np.random.default_rng(seed))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(np.c_[x, y]), extend_to=main.envelope, ordered=True)
    )
    return shapely.intersection(cells, main)


def _naive(polys, x, y) -> np.ndarray:
    """Brute force: test every polygon for every point, first hit wins."""
    polys = np.asarray(polys, dtype=object)
    out = np.full(len(x), -1)
    for i, (a, b) in enumerate(zip(x, y, strict=True)):
        hits = np.flatnonzero(shapely.intersects_xy(polys, a, b))
        if hits.size:
            out[i] = hits[0]
    return out


@pytest.fixture(scope="module")
def tiles():
    return _voronoi_tiles(824)


@pytest.fixture(scope="module")
def tile_index(tiles):
    return GridIndex([f"g{i}" for i in range(len(tiles))], tiles)


def test_boundary_water_land():
    b = load_boundary()
    w = load_water()
    land = load_land()
    assert isinstance(b, Polygon) and b.is_valid
    assert isinstance(w, MultiPolygon)
    assert isinstance(land, Polygon | MultiPolygon) and land.is_valid
    assert 560 < area_km2(b) < 600  # ~576 km² incl. water (PROVENANCE.md)
    assert 380 < area_km2(land) < 440
    assert b.buffer(1e-9).contains(land)
    parts = shapely.get_parts(land)
    assert min(area_km2(parts)) >= 0.01  # slivers dropped
    assert max(area_km2(parts)) > 400  # the main land is kept
    assert load_land() is land  # cached


def test_grid_index_matches_naive_loop(tiles, tile_index):
    rng = np.random.default_rng(11)
    x0, y0, x1, y1 = shapely.total_bounds(tiles)
    # half inside the land, half anywhere in (and a little beyond) the bbox
    xi, yi = sample_points(load_land(), 1000, rng)
    xo = rng.uniform(x0 - 0.01, x1 + 0.01, 1000)
    yo = rng.uniform(y0 - 0.01, y1 + 0.01, 1000)
    x = np.concatenate([xi, xo])
    y = np.concatenate([yi, yo])
    got = tile_index.assign(x, y)
    assert got.dtype.kind == "i"
    np.testing.assert_array_equal(got, _naive(tiles, x, y))
    assert (got[:1000] >= 0).mean() > 0.99
    ids = tile_index.ids_for(x, y)
    assert ids.dtype == object
    for g, i in zip(got, ids, strict=True):
        assert (i is None) if g < 0 else (i == f"g{g}")


def test_grid_index_shared_border_first_match_wins():
    a = box(0, 0, 1, 1)
    b = box(1, 0, 2, 1)
    c = box(0.5, 0.5, 1.5, 1.5)  # overlaps both
    idx = GridIndex(["a", "b", "c"], [a, b, c], cells_per_polygon=16)
    x = np.array([1.0, 1.0, 0.5, 1.5, 1.2, 3.0, np.nan])
    y = np.array([0.5, 0.0, 0.5, 0.5, 1.2, 3.0, 0.5])
    np.testing.assert_array_equal(idx.assign(x, y), [0, 0, 0, 1, 2, -1, -1])
    assert list(idx.ids_for(x, y)) == ["a", "a", "a", "b", "c", None, None]
    idx2 = GridIndex(["b", "a"], [b, a])
    assert list(idx2.ids_for([1.0], [0.5])) == ["b"]


def test_grid_index_empty_inputs():
    idx = GridIndex([], [])
    assert idx.assign(np.array([1.0]), np.array([2.0])).tolist() == [-1]
    idx = GridIndex(["a"], [box(0, 0, 1, 1)])
    assert idx.assign(np.array([]), np.array([])).size == 0
    with pytest.raises(ValueError):
        GridIndex(["a", "b"], [box(0, 0, 1, 1)])


def test_grid_index_assigns_a_large_batch_at_once(tiles, tile_index):
    """300k points in one vectorised call (its speed is a bench figure: bench/bench_console.py)."""
    rng = np.random.default_rng(5)
    x, y = sample_points(load_land(), 300_000, rng)
    codes = tile_index.assign(x, y)
    assert len(codes) == x.size
    assert sum(1 for c in codes[:2000] if c is None) < 20  # land points fall in a grid


def test_sample_points_inside_and_deterministic():
    land = load_land()
    x, y = sample_points(land, 5000, np.random.default_rng(1))
    assert x.shape == y.shape == (5000,)
    assert shapely.contains_xy(land, x, y).all()
    x2, y2 = sample_points(land, 5000, np.random.default_rng(1))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    tri = Polygon([(0, 0), (1, 0), (0, 1)])
    tx, ty = sample_points(tri, 2000, np.random.default_rng(2))
    assert shapely.contains_xy(tri, tx, ty).all()
    assert 0.25 < tx.mean() < 0.42 and 0.25 < ty.mean() < 0.42  # centroid at 1/3
    ex, ey = sample_points(tri, 0, np.random.default_rng(2))
    assert ex.size == ey.size == 0


def test_sample_points_survive_storage_precision(tiles):
    """Points come back at 6 decimals and stay inside the polygon as stored by to_geojson."""
    rng = np.random.default_rng(4)
    for poly in tiles[:40]:
        x, y = sample_points(poly, 200, rng)
        np.testing.assert_array_equal(x, np.round(x, 6))
        stored = shapely.from_geojson(to_geojson(poly))
        assert shapely.contains_xy(poly, x, y).all()
        assert shapely.contains_xy(stored, x, y).all()
    x, y = sample_points(tiles[0], 50, rng, precision=None)
    assert (x != np.round(x, 6)).any()


def test_to_geojson_compact_and_rounded():
    poly = Polygon([(120.1234567891, 32.0), (120.2, 32.0000004), (120.2, 32.1), (120.1234567891, 32.0)])
    text = to_geojson(poly)
    assert " " not in text
    data = json.loads(text)
    assert data["type"] == "Polygon"
    assert data["coordinates"][0][0] == [120.123457, 32.0]
    assert data["coordinates"][0][1] == [120.2, 32.0]
    back = shapely.from_geojson(text)
    assert back.equals_exact(poly, 1e-6)
    assert json.loads(to_geojson(poly, precision=3))["coordinates"][0][0] == [120.123, 32.0]
    line = json.loads(to_geojson(shapely.LineString([(1.00000049, 2), (3, 4)])))
    assert line == {"type": "LineString", "coordinates": [[1.0, 2.0], [3.0, 4.0]]}
