"""Geodetic datums used by Chinese feeds, and conversion to the replica's WGS-84 (pure functions).

- **WGS-84** (GPS): what the replica stores.
- **CGCS2000** (China Geodetic Coordinate System 2000, Tianditu): within a few centimetres of
  WGS-84 at district scale, so it is taken as WGS-84 (the source datum is still recorded).
- **GCJ-02** ("火星坐标", Amap/Gaode, Tencent, most Chinese phone apps): WGS-84 with the official
  obfuscation offset (hundreds of metres). The forward formula is public; the inverse is solved by
  fixed-point iteration on the forward offset (error ≪ 1 mm after a few steps inside China).
- **BD-09** (Baidu): a further rotation/scaling of GCJ-02; its inverse is also refined by iteration.

Outside China's rough bounding box the GCJ-02 offset is not applied (as every implementation does),
so conversions there are the identity. Scalar functions take and return ``(lon, lat)`` floats; the
``*_np`` functions take numpy arrays (any shape) for bulk imports.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "WGS84",
    "GCJ02",
    "BD09",
    "CGCS2000",
    "DATUMS",
    "UnknownDatum",
    "parse_datum",
    "in_china",
    "gcj_delta",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "to_wgs84",
    "from_wgs84",
    "to_wgs84_np",
    "from_wgs84_np",
]

WGS84 = "WGS-84"
GCJ02 = "GCJ-02"
BD09 = "BD-09"
CGCS2000 = "CGCS2000"
DATUMS: tuple[str, ...] = (WGS84, GCJ02, BD09, CGCS2000)

# Krasovsky 1940 ellipsoid, as the GCJ-02 formula uses it
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_ITERATIONS = 8
_TOLERANCE = 1e-9  # degrees (about 0.1 mm): the fixed point is reached in 3–4 steps

_ALIASES = {
    "WGS-84": WGS84, "WGS84": WGS84, "WGS 84": WGS84, "WGS_84": WGS84, "EPSG:4326": WGS84, "GPS": WGS84,
    "GCJ-02": GCJ02, "GCJ02": GCJ02, "GCJ 02": GCJ02, "GCJ_02": GCJ02, "火星": GCJ02, "火星坐标": GCJ02,
    "火星坐标系": GCJ02, "国测局": GCJ02, "高德": GCJ02,
    "BD-09": BD09, "BD09": BD09, "BD 09": BD09, "BD_09": BD09, "BD09LL": BD09, "百度": BD09, "百度坐标": BD09,
    "百度坐标系": BD09,
    "CGCS2000": CGCS2000, "CGCS 2000": CGCS2000, "CGCS-2000": CGCS2000, "EPSG:4490": CGCS2000,
    "国家2000": CGCS2000, "2000国家大地坐标系": CGCS2000,
}  # fmt: skip


class UnknownDatum(ValueError):
    """A datum name that is not WGS-84, GCJ-02, BD-09 or CGCS2000 (in one of their spellings)."""

    def __init__(self, text) -> None:
        self.text = text
        super().__init__(
            f"unknown datum: {str(text)!r}; use WGS-84 (WGS84), GCJ-02 (GCJ02, 火星), BD-09 (BD09, 百度) or CGCS2000"
        )


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> str:
    key = text.strip().upper()
    if key.endswith("坐标系") and key not in _ALIASES:
        key = key[: -len("坐标系")].strip()
    if key in _ALIASES:
        return _ALIASES[key]
    raise UnknownDatum(text)


def parse_datum(text) -> str:
    """The canonical datum name (``WGS-84``, ``GCJ-02``, ``BD-09`` or ``CGCS2000``), case-insensitively.

    Accepts WGS-84/WGS84, GCJ-02/GCJ02/火星, BD-09/BD09/百度, CGCS2000 (and a few common variants);
    raises :class:`UnknownDatum` for anything else, including an empty value.
    """
    if not isinstance(text, str):
        raise UnknownDatum(text)
    return _parse(text)


# -- scalar ---------------------------------------------------------------------------------------
def in_china(lon: float, lat: float) -> bool:
    """The rough bounding box inside which the GCJ-02 offset applies."""
    return 72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271


def gcj_delta(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 offset (degrees) at WGS-84 ``(lon, lat)``: GCJ-02 = WGS-84 + delta."""
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
            + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)  # fmt: skip
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
            + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)  # fmt: skip
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sq) * math.pi)
    dlon = (dlon * 180.0) / (_A / sq * math.cos(rad) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if not in_china(lon, lat):
        return lon, lat
    dlon, dlat = gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Inverse of :func:`wgs84_to_gcj02` by fixed-point iteration (converges to ≪ 1 mm)."""
    if not in_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(_ITERATIONS):
        dlon, dlat = gcj_delta(wlon, wlat)
        nlon, nlat = lon - dlon, lat - dlat
        step = max(abs(nlon - wlon), abs(nlat - wlat))
        wlon, wlat = nlon, nlat
        if step < _TOLERANCE:
            break
    return wlon, wlat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _bd09_to_gcj02_approx(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Inverse of :func:`gcj02_to_bd09`: the usual closed form, refined by two correction steps."""
    glon, glat = _bd09_to_gcj02_approx(lon, lat)
    for _ in range(2):
        blon, blat = gcj02_to_bd09(glon, glat)
        glon, glat = glon + (lon - blon), glat + (lat - blat)
    return glon, glat


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]:
    """WGS-84 ``(lon, lat)`` from a point in ``datum`` (any spelling :func:`parse_datum` accepts)."""
    d = parse_datum(datum)
    if d == GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if d == BD09:
        return bd09_to_wgs84(lon, lat)
    return lon, lat


def from_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]:
    """The WGS-84 point expressed in ``datum`` (for tests and for feeding GCJ-02 tile maps)."""
    d = parse_datum(datum)
    if d == GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if d == BD09:
        return wgs84_to_bd09(lon, lat)
    return lon, lat


# -- vectorised -----------------------------------------------------------------------------------
def _in_china_np(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def gcj_delta_np(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gcj_delta` over arrays."""
    pi = np.pi
    x, y = lon - 105.0, lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
            + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * pi) + 320 * np.sin(y * pi / 30.0)) * 2.0 / 3.0)  # fmt: skip
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
            + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0)  # fmt: skip
    rad = lat / 180.0 * pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sq = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sq) * pi)
    dlon = (dlon * 180.0) / (_A / sq * np.cos(rad) * pi)
    return dlon, dlat


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def wgs84_to_gcj02_np(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _as_arrays(lon, lat)
    dlon, dlat = gcj_delta_np(lon, lat)
    inside = _in_china_np(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84_np(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _as_arrays(lon, lat)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(_ITERATIONS):
        dlon, dlat = gcj_delta_np(wlon, wlat)
        nlon, nlat = lon - dlon, lat - dlat
        step = max(float(np.abs(nlon - wlon).max(initial=0.0)), float(np.abs(nlat - wlat).max(initial=0.0)))
        wlon, wlat = nlon, nlat
        if step < _TOLERANCE:
            break
    inside = _in_china_np(lon, lat)
    return np.where(inside, wlon, lon), np.where(inside, wlat, lat)


def gcj02_to_bd09_np(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _as_arrays(lon, lat)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02_np(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _as_arrays(lon, lat)
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(2):
        blon, blat = gcj02_to_bd09_np(glon, glat)
        glon, glat = glon + (lon - blon), glat + (lat - blat)
    return glon, glat


def wgs84_to_bd09_np(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    return gcj02_to_bd09_np(*wgs84_to_gcj02_np(lon, lat))


def bd09_to_wgs84_np(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    return gcj02_to_wgs84_np(*bd09_to_gcj02_np(lon, lat))


# Bulk conversion of many points in one area: the inverse offset (WGS-84 minus GCJ-02/BD-09) is
# tabulated on a 0.002° lattice over 0.1° tiles and interpolated bilinearly. The offset is smooth
# (GCJ-02's shortest wavelength is 1/3°, BD-09's 0.12°), so the interpolation error stays at a few
# centimetres at most; tests check it against the exact iteration. A tile (2,601 exact inversions)
# is built once TILE_BUILD_AFTER points have been converted in it; until then, and for sparse
# points, the exact iteration is used.
TILE_DEG = 0.1
TILE_STEP = 0.002
TILE_BUILD_AFTER = 2_000
TILE_MIN_POINTS = 64  # per call, for a tile that exists
_TILE_N = int(round(TILE_DEG / TILE_STEP))
_tiles: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}
_demand: dict[tuple[str, int, int], int] = {}
_MAX_TILES = 256


def _exact_inverse_np(lon, lat, datum: str) -> tuple[np.ndarray, np.ndarray]:
    if datum == GCJ02:
        return gcj02_to_wgs84_np(lon, lat)
    return bd09_to_wgs84_np(lon, lat)


def _tile(datum: str, tx: int, ty: int) -> tuple[np.ndarray, np.ndarray]:
    key = (datum, tx, ty)
    t = _tiles.get(key)
    if t is None:
        nodes = np.arange(_TILE_N + 1) * TILE_STEP
        gx, gy = np.meshgrid(tx * TILE_DEG + nodes, ty * TILE_DEG + nodes)
        wx, wy = _exact_inverse_np(gx.ravel(), gy.ravel(), datum)
        t = ((wx - gx.ravel()).reshape(gx.shape), (wy - gy.ravel()).reshape(gy.shape))
        if len(_tiles) >= _MAX_TILES:
            _tiles.clear()
        _tiles[key] = t
    return t


def _inverse_np(lon: np.ndarray, lat: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 from GCJ-02 or BD-09 arrays: tabulated where points are dense, exact elsewhere."""
    out_lon, out_lat = np.empty_like(lon), np.empty_like(lat)
    tx = np.floor(lon / TILE_DEG).astype(np.int64)
    ty = np.floor(lat / TILE_DEG).astype(np.int64)
    exact = np.ones(lon.size, dtype=bool)
    if lon.size >= TILE_MIN_POINTS:
        key = tx * 100_000 + ty
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        for u, (kx, ky) in enumerate(zip((uniq // 100_000).tolist(), (uniq % 100_000).tolist(), strict=True)):
            if counts[u] < TILE_MIN_POINTS or not in_china(kx * TILE_DEG, ky * TILE_DEG):
                continue
            tkey = (datum, kx, ky)
            if tkey not in _tiles:
                _demand[tkey] = _demand.get(tkey, 0) + int(counts[u])
                if _demand[tkey] < TILE_BUILD_AFTER:
                    continue
            sel = np.flatnonzero(inverse == u)
            dx_t, dy_t = _tile(datum, kx, ky)
            fx = (lon[sel] - kx * TILE_DEG) / TILE_STEP
            fy = (lat[sel] - ky * TILE_DEG) / TILE_STEP
            ix = np.clip(np.floor(fx).astype(np.int64), 0, _TILE_N - 1)
            iy = np.clip(np.floor(fy).astype(np.int64), 0, _TILE_N - 1)
            ax, ay = fx - ix, fy - iy
            for table, src, dst in ((dx_t, lon, out_lon), (dy_t, lat, out_lat)):
                v = (table[iy, ix] * (1 - ax) * (1 - ay) + table[iy, ix + 1] * ax * (1 - ay)
                     + table[iy + 1, ix] * (1 - ax) * ay + table[iy + 1, ix + 1] * ax * ay)  # fmt: skip
                dst[sel] = src[sel] + v
            exact[sel] = False
    if exact.any():
        out_lon[exact], out_lat[exact] = _exact_inverse_np(lon[exact], lat[exact], datum)
    return out_lon, out_lat


def to_wgs84_np(lon, lat, datum) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 arrays from points in ``datum``: one datum name for all points, or an array of
    canonical names (one per point; ``WGS-84``/``CGCS2000`` rows are left as they are)."""
    lon, lat = _as_arrays(lon, lat)
    if isinstance(datum, str):
        d = parse_datum(datum)
        if d in (GCJ02, BD09):
            return _inverse_np(lon, lat, d)
        return lon.copy(), lat.copy()
    codes = np.asarray(datum, dtype=object)
    out_lon, out_lat = lon.copy(), lat.copy()
    for name in (GCJ02, BD09):
        sel = codes == name
        if sel.any():
            out_lon[sel], out_lat[sel] = _inverse_np(lon[sel], lat[sel], name)
    return out_lon, out_lat


def from_wgs84_np(lon, lat, datum: str) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _as_arrays(lon, lat)
    d = parse_datum(datum)
    if d == GCJ02:
        return wgs84_to_gcj02_np(lon, lat)
    if d == BD09:
        return wgs84_to_bd09_np(lon, lat)
    return lon.copy(), lat.copy()
