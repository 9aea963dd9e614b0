"""The district's Yangtze shoreline, derived from the real water polygon (Qt-free).

The shoreline is the edge of the GSHHG water polygon inside the district (the boundary buffered
by ``EDGE_TOLERANCE_DEG`` so that a bank that coincides with the district line is kept), merged
into continuous lines; pieces shorter than ``MIN_PIECE_M`` (islets, slivers) are dropped.
:func:`split_segments` cuts it into pieces of about ``length_m`` metres that together cover it
exactly (consecutive cuts share their end points).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString
from shapely.ops import substring

from db.spatial import KM_PER_DEG_LAT, KM_PER_DEG_LON, load_boundary, load_water

EDGE_TOLERANCE_DEG = 0.002
MIN_PIECE_M = 1000.0
SEGMENT_M = 3000.0


def metres(geom) -> float:
    """Approximate length in metres of a lon/lat line (local equirectangular scale)."""
    total = 0.0
    for part in shapely.get_parts(geom):
        c = np.asarray(part.coords)
        if len(c) < 2:
            continue
        dx = np.diff(c[:, 0]) * KM_PER_DEG_LON * 1000
        dy = np.diff(c[:, 1]) * KM_PER_DEG_LAT * 1000
        total += float(np.hypot(dx, dy).sum())
    return total


def to_local_m(geom):
    """lon/lat → local metres (for buffers in metres); :func:`from_local_m` reverses it."""
    return shapely.transform(geom, lambda c: c * [KM_PER_DEG_LON * 1000, KM_PER_DEG_LAT * 1000])


def from_local_m(geom):
    return shapely.transform(geom, lambda c: c / [KM_PER_DEG_LON * 1000, KM_PER_DEG_LAT * 1000])


def buffer_m(geom, distance_m: float):
    """``geom`` buffered by ``distance_m`` metres (computed in local metres)."""
    return from_local_m(to_local_m(geom).buffer(distance_m, quad_segs=8))


@lru_cache(maxsize=1)
def derive_shoreline() -> MultiLineString:
    """The Yangtze bank inside the district (WGS-84), as merged lines, longest first."""
    district = load_boundary()
    edge = load_water().boundary.intersection(district.buffer(EDGE_TOLERANCE_DEG))
    merged = shapely.line_merge(edge)
    parts = [p for p in shapely.get_parts(merged) if isinstance(p, LineString) and metres(p) >= MIN_PIECE_M]
    parts.sort(key=lambda p: -metres(p))
    return MultiLineString(parts)


def split_segments(line: LineString, length_m: float = SEGMENT_M) -> list[LineString]:
    """Cut ``line`` into ``ceil(len / length_m)`` pieces of equal length that cover it."""
    total = metres(line)
    n = max(1, math.ceil(total / length_m))
    return [substring(line, i / n, (i + 1) / n, normalized=True) for i in range(n)]


def shoreline_segments(length_m: float = SEGMENT_M) -> list[LineString]:
    """All pieces of :func:`derive_shoreline`, each cut by :func:`split_segments`, in order."""
    out: list[LineString] = []
    for part in derive_shoreline().geoms:
        out.extend(split_segments(part, length_m))
    return out
