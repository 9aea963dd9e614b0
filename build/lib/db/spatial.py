"""Spatial helpers for the Chongchuan district (Qt-free).

Geodata is read only from ``resources/geodata/`` (see ``PROVENANCE.md`` there).
All geometries are WGS-84 lon/lat.

- :func:`load_boundary`, :func:`load_water`, :func:`load_land`: the district outline,
  the Yangtze water and the land in between (cached).
- :class:`GridIndex`: fast vectorised point -> polygon assignment.
- :func:`sample_points`: uniform random points inside a geometry.
- :func:`to_geojson`: compact GeoJSON geometry text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "geodata"

BOUNDARY_FILE = "district_boundary_wgs84.geojson"
WATER_FILE = "yangtze_water_gshhg_wgs84.geojson"

#: Reference latitude used for local metric approximations (district centre).
LAT0 = 31.96
#: Kilometres per degree of longitude / latitude near :data:`LAT0`.
KM_PER_DEG_LON = 111.320 * math.cos(math.radians(LAT0))
KM_PER_DEG_LAT = 110.574

#: Land parts smaller than this (km²) are dropped from :func:`load_land`.
SLIVER_KM2 = 0.01


def resource_path(name: str) -> Path:
    return RESOURCES / name


def _read_geometries(name: str) -> list:
    with open(resource_path(name), encoding="utf-8") as fh:
        data = json.load(fh)
    if data.get("type") == "FeatureCollection":
        return [shape(f["geometry"]) for f in data["features"]]
    if data.get("type") == "Feature":
        return [shape(data["geometry"])]
    return [shape(data)]


def area_km2(geom) -> float | np.ndarray:
    """Approximate area in km² of a lon/lat geometry (or array of geometries)."""
    return shapely.area(geom) * KM_PER_DEG_LON * KM_PER_DEG_LAT


@lru_cache(maxsize=1)
def load_boundary() -> Polygon:
    """The district boundary (崇川区, 320613), one WGS-84 polygon."""
    geoms = _read_geometries(BOUNDARY_FILE)
    geom = shapely.union_all(geoms) if len(geoms) > 1 else geoms[0]
    geom = shapely.make_valid(geom) if not geom.is_valid else geom
    if isinstance(geom, MultiPolygon):
        geom = max(geom.geoms, key=lambda g: g.area)
    return geom


@lru_cache(maxsize=1)
def load_water() -> MultiPolygon:
    """Yangtze estuary water (GSHHG), as one WGS-84 MultiPolygon."""
    geom = shapely.union_all(_read_geometries(WATER_FILE))
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    return geom


@lru_cache(maxsize=1)
def load_land() -> Polygon | MultiPolygon:
    """Boundary minus water, with slivers smaller than :data:`SLIVER_KM2` dropped."""
    land = shapely.difference(load_boundary(), load_water())
    parts = [p for p in shapely.get_parts(land) if isinstance(p, Polygon)]
    parts.sort(key=lambda p: -p.area)
    keep = [parts[0]] + [p for p in parts[1:] if area_km2(p) >= SLIVER_KM2]
    return keep[0] if len(keep) == 1 else MultiPolygon(keep)


class GridIndex:
    """Vectorised point-in-polygon lookup over a list of polygons.

    Points on a shared border (or in overlapping polygons) go to the polygon that comes
    first in the input order (boundary points count as inside). Points outside every
    polygon get ``-1``.

    Implementation: a regular raster over the polygons' extent. Cells lying completely
    inside one polygon (and touching no earlier one) answer directly; points in the
    other cells are tested with ``shapely.intersects_xy`` against the cell's candidates.
    """

    def __init__(self, ids: Sequence, polygons: Sequence, cells_per_polygon: int = 256):
        if len(ids) != len(polygons):
            raise ValueError("ids and polygons must have the same length")
        self.ids = list(ids)
        self._ids_obj = np.empty(len(self.ids) + 1, dtype=object)
        self._ids_obj[: len(self.ids)] = self.ids
        self._ids_obj[-1] = None
        self.polygons = np.asarray(list(polygons), dtype=object)
        n = len(self.polygons)
        if n == 0:
            self._empty = True
            return
        self._empty = False
        shapely.prepare(self.polygons)
        x0, y0, x1, y1 = shapely.total_bounds(self.polygons)
        # cell aspect roughly square in metres
        w_km = max((x1 - x0) * KM_PER_DEG_LON, 1e-9)
        h_km = max((y1 - y0) * KM_PER_DEG_LAT, 1e-9)
        ncells = max(64, min(4_000_000, cells_per_polygon * n))
        side = math.sqrt(w_km * h_km / ncells)
        self.nx = max(1, int(math.ceil(w_km / side)))
        self.ny = max(1, int(math.ceil(h_km / side)))
        self.x0, self.y0 = float(x0), float(y0)
        self.dx = (x1 - x0) / self.nx or 1e-12
        self.dy = (y1 - y0) / self.ny or 1e-12
        self.x1, self.y1 = float(x1), float(y1)

        # candidate polygons per cell: rasterise each polygon's bounding box
        b = shapely.bounds(self.polygons)
        ix0 = np.clip(np.floor((b[:, 0] - x0) / self.dx).astype(np.int64), 0, self.nx - 1)
        ix1 = np.clip(np.floor((b[:, 2] - x0) / self.dx).astype(np.int64), 0, self.nx - 1)
        iy0 = np.clip(np.floor((b[:, 1] - y0) / self.dy).astype(np.int64), 0, self.ny - 1)
        iy1 = np.clip(np.floor((b[:, 3] - y0) / self.dy).astype(np.int64), 0, self.ny - 1)
        cell_list, poly_list = [], []
        for p in range(n):
            gx, gy = np.meshgrid(np.arange(ix0[p], ix1[p] + 1), np.arange(iy0[p], iy1[p] + 1))
            cells = (gy * self.nx + gx).ravel()
            cell_list.append(cells)
            poly_list.append(np.full(cells.size, p, dtype=np.int64))
        cells = np.concatenate(cell_list)
        polys = np.concatenate(poly_list)
        # refine with a real intersects test against the cell boxes
        cx = cells % self.nx
        cy = cells // self.nx
        boxes = shapely.box(
            x0 + cx * self.dx, y0 + cy * self.dy, x0 + (cx + 1) * self.dx, y0 + (cy + 1) * self.dy
        )
        hit = shapely.intersects(self.polygons[polys], boxes)
        cells, polys, boxes = cells[hit], polys[hit], boxes[hit]
        inside = shapely.covers(self.polygons[polys], boxes)
        order = np.lexsort((polys, cells))
        cells, polys, inside = cells[order], polys[order], inside[order]
        ncell = self.nx * self.ny
        counts = np.bincount(cells, minlength=ncell)
        ptr = np.zeros(ncell + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        self._ptr = ptr
        self._cand = polys
        # direct answer: first candidate of the cell covers the whole cell
        direct = np.full(ncell, -2, dtype=np.int64)  # -2: needs testing
        direct[counts == 0] = -1
        nonempty = np.flatnonzero(counts)
        first = ptr[nonempty]
        ok = inside[first]
        direct[nonempty[ok]] = polys[first[ok]]
        self._direct = direct

    def __len__(self) -> int:
        return len(self.ids)

    def assign(self, lon, lat) -> np.ndarray:
        """Index of the polygon containing each point, or -1 (int64 array)."""
        x = np.asarray(lon, dtype=np.float64).ravel()
        y = np.asarray(lat, dtype=np.float64).ravel()
        out = np.full(x.size, -1, dtype=np.int64)
        if self._empty or x.size == 0:
            return out
        valid = (x >= self.x0) & (x <= self.x1) & (y >= self.y0) & (y <= self.y1)
        vi = np.flatnonzero(valid)
        xv, yv = x[vi], y[vi]
        ix = np.minimum(((xv - self.x0) / self.dx).astype(np.int64), self.nx - 1)
        iy = np.minimum(((yv - self.y0) / self.dy).astype(np.int64), self.ny - 1)
        cell = iy * self.nx + ix
        d = self._direct[cell]
        out[vi] = np.where(d == -2, -1, d)
        todo = np.flatnonzero(d == -2)
        if todo.size:
            tcell = cell[todo]
            start = self._ptr[tcell]
            cnt = self._ptr[tcell + 1] - start
            total = int(cnt.sum())
            rep = np.repeat(np.arange(todo.size), cnt)
            offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            cand = self._cand[np.repeat(start, cnt) + offs]
            hit = shapely.intersects_xy(self.polygons[cand], xv[todo][rep], yv[todo][rep])
            # pairs are ordered by point then by polygon index: keep the first hit per point
            hrep = rep[hit]
            hcand = cand[hit]
            firsts = np.ones(hrep.size, dtype=bool)
            firsts[1:] = hrep[1:] != hrep[:-1]
            out[vi[todo[hrep[firsts]]]] = hcand[firsts]
        return out

    def ids_for(self, lon, lat) -> np.ndarray:
        """Id of the polygon containing each point, or ``None`` (object array)."""
        return self._ids_obj[self.assign(lon, lat)]


def sample_points(
    geom, n: int, rng: np.random.Generator, precision: int | None = 6
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points drawn uniformly inside ``geom`` (vectorised rejection sampling in its bbox).

    With ``precision`` (default 6 decimals, ~0.1 m: the storage precision of
    :func:`to_geojson`), coordinates are rounded first and a point is kept only if it lies
    inside both ``geom`` and ``geom`` rounded to that precision, so a stored point stays
    inside its stored polygon. ``precision=None`` gives unrounded points.
    """
    if n <= 0:
        return np.empty(0), np.empty(0)
    if geom is None or geom.is_empty or geom.area <= 0:
        raise ValueError("cannot sample points in an empty geometry")
    x0, y0, x1, y1 = geom.bounds
    ratio = max(geom.area / ((x1 - x0) * (y1 - y0)), 1e-4)
    shapely.prepare(geom)
    stored = None
    if precision is not None:
        stored = round_geometry(geom, precision)
        shapely.prepare(stored)
    xs, ys = [], []
    got = 0
    while got < n:
        m = int((n - got) / ratio * 1.25) + 16
        x = rng.uniform(x0, x1, m)
        y = rng.uniform(y0, y1, m)
        if precision is not None:
            x = np.round(x, precision)
            y = np.round(y, precision)
        ok = shapely.contains_xy(geom, x, y)
        if stored is not None:
            ok &= shapely.contains_xy(stored, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def round_geometry(geom, precision: int = 6):
    """Coordinates rounded to ``precision`` decimals (no topology repair)."""
    return shapely.transform(geom, lambda c: np.round(c, precision))


def to_geojson(geom, precision: int = 6) -> str:
    """Compact GeoJSON geometry text with coordinates rounded to ``precision`` decimals."""
    return shapely.to_geojson(round_geometry(geom, precision))
