"""Datums (db/datum.py): names, GCJ-02 and BD-09 round trips under 1 m inside China, the vectorised
and tabulated bulk paths against the exact scalar maths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db import datum

# mainland China, roughly (the GCJ-02 offset applies inside its bounding box)
LON = st.floats(min_value=73.7, max_value=134.7, allow_nan=False)
LAT = st.floats(min_value=18.2, max_value=53.5, allow_nan=False)


def metres(lon1, lat1, lon2, lat2) -> float:
    kx = 111_320.0 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lon1 - lon2) * kx, (lat1 - lat2) * 110_574.0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("WGS-84", "WGS-84"), ("wgs84", "WGS-84"), (" Wgs-84 ", "WGS-84"),
        ("GCJ-02", "GCJ-02"), ("gcj02", "GCJ-02"), ("火星", "GCJ-02"), ("火星坐标系", "GCJ-02"),
        ("BD-09", "BD-09"), ("bd09", "BD-09"), ("百度", "BD-09"),
        ("CGCS2000", "CGCS2000"), ("cgcs2000", "CGCS2000"),
    ],
)  # fmt: skip
def test_parse_datum_accepts_the_usual_spellings(text, expected):
    assert datum.parse_datum(text) == expected


@pytest.mark.parametrize("text", ["XYZ", "", "UTM", "WGS", None, 84])
def test_parse_datum_refuses_anything_else(text):
    with pytest.raises(datum.UnknownDatum, match="unknown datum"):
        datum.parse_datum(text)


@settings(deadline=None, max_examples=300)
@given(LON, LAT)
def test_gcj02_round_trip_under_a_metre(lon, lat):
    g = datum.wgs84_to_gcj02(lon, lat)
    assert metres(lon, lat, *g) > 1.0  # the offset is real
    back = datum.gcj02_to_wgs84(*g)
    assert metres(lon, lat, *back) < 1.0
    assert metres(lon, lat, *datum.to_wgs84(*g, "火星")) < 1.0


@settings(deadline=None, max_examples=300)
@given(LON, LAT)
def test_bd09_round_trip_under_a_metre(lon, lat):
    b = datum.wgs84_to_bd09(lon, lat)
    back = datum.bd09_to_wgs84(*b)
    assert metres(lon, lat, *back) < 1.0
    assert metres(lon, lat, *datum.to_wgs84(*b, "bd09")) < 1.0
    gb = datum.gcj02_to_bd09(lon, lat)
    assert metres(lon, lat, *datum.bd09_to_gcj02(*gb)) < 0.01


@settings(deadline=None, max_examples=50)
@given(st.lists(st.tuples(LON, LAT), min_size=1, max_size=50))
def test_vectorised_matches_scalar(points):
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    for name in ("GCJ-02", "BD-09"):
        x, y = datum.from_wgs84_np(lon, lat, name)
        wx, wy = datum.to_wgs84_np(x, y, name)
        for i in range(len(points)):
            sx, sy = datum.to_wgs84(float(x[i]), float(y[i]), name)
            assert metres(wx[i], wy[i], sx, sy) < 0.01
            assert metres(wx[i], wy[i], lon[i], lat[i]) < 1.0


def test_cgcs2000_and_wgs84_are_left_alone_and_outside_china_is_the_identity():
    assert datum.to_wgs84(120.9, 32.0, "CGCS2000") == (120.9, 32.0)
    assert datum.to_wgs84(2.35, 48.85, "GCJ-02") == (2.35, 48.85)
    x, y = datum.to_wgs84_np([120.9, 121.0], [32.0, 32.1], np.array(["WGS-84", "CGCS2000"], dtype=object))
    assert x.tolist() == [120.9, 121.0] and y.tolist() == [32.0, 32.1]


def test_bulk_tables_stay_within_centimetres_of_the_exact_inverse():
    """Many points in one area use the tabulated offset (db/datum.py tiles): check them all."""
    rng = np.random.default_rng(11)
    lon = rng.uniform(120.70, 121.10, 60_000)
    lat = rng.uniform(31.85, 32.15, 60_000)
    for name in ("GCJ-02", "BD-09"):
        x, y = datum.from_wgs84_np(lon, lat, name)
        datum.to_wgs84_np(x, y, name)  # the first call builds the tiles
        wx, wy = datum.to_wgs84_np(x, y, name)
        assert any(key[0] == name for key in datum._tiles)
        err = np.hypot((wx - lon) * 111_320 * np.cos(np.radians(lat)), (wy - lat) * 110_574)
        assert err.max() < 0.10, (name, err.max())


def test_event_ops_uses_the_shared_datum_module():
    from db import event_ops

    assert event_ops.to_wgs84 is datum.to_wgs84
    assert event_ops._gcj_delta is datum.gcj_delta
