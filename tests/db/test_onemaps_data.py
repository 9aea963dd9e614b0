"""Shoreline segments, footprints (repair / rejection), demo buildings and readings."""

import sqlite3

import pytest
import shapely
from shapely.geometry import Polygon

from db import economy, shoreline
from db.ecology import BITS, add_readings, hour_of
from db.replica import connect, open_replica


def test_segments_cover_the_shoreline_exactly():
    line = shoreline.derive_shoreline()
    assert line.geom_type == "MultiLineString" and shoreline.metres(line) > 20_000
    segs = shoreline.shoreline_segments()
    assert len(segs) >= 10
    total = sum(shoreline.metres(s) for s in segs)
    assert total == pytest.approx(shoreline.metres(line), rel=1e-6)
    union = shapely.union_all(segs)
    # every point of the shoreline lies on a segment, and no segment leaves the shoreline
    assert union.buffer(1e-7).covers(line)
    assert line.buffer(1e-7).covers(union)
    for s in segs:
        assert shoreline.metres(s) <= shoreline.SEGMENT_M * 1.05  # cut in degrees: about 3 km


def test_shoreline_lies_on_the_real_water_edge():
    from db.spatial import load_water

    edge = load_water().boundary
    line = shoreline.derive_shoreline()
    assert edge.buffer(1e-6).covers(line)


def test_demo_segments_have_named_responsible_grids(demo_db):
    conn = connect(demo_db)
    rows = conn.execute("SELECT s.name, s.grid_id, g.name AS grid FROM shoreline_segments s "
                        "JOIN grids g ON g.id = s.grid_id").fetchall()
    assert len(rows) == len(shoreline.shoreline_segments())
    assert all(r["grid"] in r["name"] for r in rows)


def square(x=120.87, y=32.01, d=0.0005):
    return Polygon([(x, y), (x + d, y), (x + d, y + d), (x, y + d)])


def test_self_intersecting_footprint_is_repaired():
    a, b, c, d = list(square().exterior.coords)[:4]
    bowtie = Polygon([a, c, b, d])
    assert not bowtie.is_valid
    poly, repaired = economy.prepare_footprint(bowtie, name="演示楼")
    assert repaired and poly.is_valid and poly.geom_type == "Polygon"


@pytest.mark.parametrize(
    ("geom", "message"),
    [("not json", "not readable"), ({"type": "Point", "coordinates": [120.8, 32.0]}, "must be a polygon"),
     (square(d=0.00001), "too small"), (square(d=0.05), "too large"), (Polygon(), "empty")],
)
def test_unusable_footprints_are_rejected_with_a_message(geom, message):
    with pytest.raises(economy.InvalidFootprint, match=message):
        economy.prepare_footprint(geom, name="演示楼")


def test_demo_buildings(demo_db):
    conn = connect(demo_db)
    n, yiyuan, wrong, repaired = conn.execute(
        "SELECT count(*), sum(yiyuan), sum((tax_yuan >= 1e8) <> yiyuan), sum(repaired) FROM buildings").fetchone()
    assert n >= 300 and yiyuan >= 3 and wrong == 0 and repaired >= 1
    assert conn.execute("SELECT count(*) FROM buildings WHERE name NOT LIKE '%演示%'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM enterprises WHERE name NOT LIKE '演示%'").fetchone()[0] == 0
    # enterprises belong to buildings; every building has history
    assert conn.execute("SELECT count(*) FROM enterprises e LEFT JOIN buildings b ON b.id = e.building_id "
                        "WHERE b.id IS NULL").fetchone()[0] == 0
    assert conn.execute("SELECT count(DISTINCT building_id) FROM building_history").fetchone()[0] == n


def test_demo_readings_are_a_year_per_station(demo_db):
    conn = connect(demo_db)
    stations = conn.execute("SELECT count(*) FROM eco_stations").fetchone()[0]
    assert stations == 20
    per = conn.execute("SELECT min(c), max(c) FROM (SELECT count(*) AS c FROM eco_readings GROUP BY station_id)").fetchone()
    assert per[0] == per[1] == 365 * 24
    assert conn.execute("SELECT count(*) FROM eco_readings WHERE invalid <> 0").fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM eco_cameras").fetchone()[0] > 20
    assert conn.execute("SELECT count(*) FROM eco_zones WHERE buffer_m = 1000").fetchone()[0] >= 2


def test_bad_readings_are_stored_flagged(demo_copy):
    rep = open_replica(demo_copy)
    try:
        h = hour_of("2030-01-01T00:00:00+08:00")
        add_readings(rep, [{"station_id": 1, "hour": h, "do": -1, "nh3n": 0.2, "cod": 10, "ph": 20, "turbidity": None}])
        conn = rep.reader()
        row = conn.execute("SELECT do, ph, invalid FROM eco_readings WHERE station_id = 1 AND hour = ?", (h,)).fetchone()
        assert row["do"] == -1 and row["ph"] == 20
        assert row["invalid"] == BITS["do"] | BITS["ph"] | BITS["turbidity"]
    finally:
        rep.close()


def test_building_write_path_refuses_bad_footprint(demo_copy):
    rep = open_replica(demo_copy)
    try:
        with pytest.raises(economy.InvalidFootprint):
            economy.add_building(rep, {"uid": "X1", "name": "演示楼X", "floors": 5, "gfa_m2": 1000, "occupancy": 0.5,
                                       "tax_yuan": 1, "industry": "finance", "footprint": "{}"})
        bid = economy.add_building(rep, {"uid": "X2", "name": "演示楼Y", "floors": 5, "gfa_m2": 1000, "occupancy": 0.5,
                                         "tax_yuan": 2e8, "industry": "finance", "footprint": square()})
        conn = rep.reader()
        assert conn.execute("SELECT yiyuan FROM buildings WHERE id = ?", (bid,)).fetchone()[0] == 1
    finally:
        rep.close()
    with pytest.raises(sqlite3.IntegrityError):
        c = sqlite3.connect(demo_copy)
        c.execute("INSERT INTO buildings (uid, name, lon, lat, floors, gfa_m2, occupancy, industry, geometry) "
                  "VALUES ('z', 'z', 0, 0, 0, 1, 0.5, 'x', '{}')")
