"""Importing feeds (db/intake): each format on small fixtures, the quarantine reasons, identity and
re-import, status arrival, categories, datums, geocoding, duplicates, chunked runs and resumption.
No Qt."""

from __future__ import annotations

import csv
import datetime as dt
import threading
from pathlib import Path

import numpy as np
import orjson
import pytest

from db.intake import pipeline
from db.intake.pipeline import ImportFileError, ImportOptionError, import_file
from db.replica import open_replica

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "intake"
HEADER = ["工单编号", "来电时间", "诉求类型", "诉求内容", "地址", "联系人", "联系电话", "经度", "纬度", "坐标系", "状态"]


@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


def run(rep, name_or_path, fmt, **kw):
    path = name_or_path if isinstance(name_or_path, Path) else FIX / name_or_path
    return import_file(rep, path, fmt, actor="tester", **kw)


def query(rep, sql, params=()):
    c = rep.reader()
    try:
        return [dict(r) for r in c.execute(sql, params)]
    finally:
        c.close()


def event(rep, source, ext):
    rows = query(rep, "SELECT * FROM events WHERE source = ? AND external_id = ?", (source, ext))
    assert len(rows) == 1, (source, ext, rows)
    return rows[0]


def logs(rep, event_id):
    return query(rep, "SELECT * FROM event_log WHERE event_id = ? ORDER BY id", (event_id,))


def reasons(rep, source=None):
    sql = "SELECT line, reason FROM quarantine" + (" WHERE source = ?" if source else "") + " ORDER BY id"
    return {r["line"]: r["reason"] for r in query(rep, sql, (source,) if source else ())}


def write_csv(path: Path, rows, header=HEADER, encoding="utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def check_log_chains(rep) -> None:
    """Every event has a report row first, and its last log row's state is the event's state."""
    bad = query(
        rep,
        "SELECT e.id, e.status, (SELECT action FROM event_log l WHERE l.event_id = e.id ORDER BY l.id LIMIT 1) AS first, "
        "(SELECT to_status FROM event_log l WHERE l.event_id = e.id ORDER BY l.id DESC LIMIT 1) AS last "
        "FROM events e WHERE e.source IN ('hotline_12345', 'open311', 'citymgmt', 'iot') "
        "AND (first IS NOT 'report' OR last IS NOT e.status)",
    )
    assert bad == []


# -- 12345 CSV --------------------------------------------------------------------------------------
def test_12345_csv_imports_good_rows_and_quarantines_each_bad_kind_with_its_reason(rep):
    res = run(rep, "hotline_12345.csv", "12345-csv")
    assert (res.created, res.updated, res.unchanged, res.quarantined) == (4, 0, 0, 8)
    assert res.encoding == "utf-8-sig"
    assert reasons(rep) == {
        6: "bad date: '2026-13-45 25:00'",
        7: "non-numeric coordinate: 经度='abc'",
        8: "point outside the district: 121.5, 31.2",
        9: "unknown datum: 'XYZ'",
        10: "missing field: 工单编号",
        11: "missing field: 诉求内容",
        12: "address not found: '崇川区不存在路999号'",
        13: "truncated line",
    }
    q = query(rep, "SELECT * FROM quarantine WHERE line = 7")[0]
    assert q["raw"].startswith("GD20261120006,") and q["file"] == "hotline_12345.csv" and q["status"] == "open"
    assert q["format"] == "12345-csv" and q["source"] == "hotline_12345" and q["external_id"] == "GD20261120006"
    assert orjson.loads(q["fields"])["lon"] == "abc"
    assert query(rep, "SELECT status, counts FROM import_runs")[0]["status"] == "complete"
    check_log_chains(rep)


def test_datums_are_converted_and_the_original_is_kept(rep):
    from db.datum import to_wgs84

    run(rep, "hotline_12345.csv", "12345-csv")
    wgs = event(rep, "hotline_12345", "GD20261120001")
    assert (wgs["lon"], wgs["lat"], wgs["src_datum"], wgs["src_lon"]) == (120.8873, 32.0487, "WGS-84", None)
    gcj = event(rep, "hotline_12345", "GD20261120002")
    assert (gcj["src_datum"], gcj["src_lon"], gcj["src_lat"]) == ("GCJ-02", 120.8936, 32.0506)
    x, y = to_wgs84(120.8936, 32.0506, "GCJ-02")
    assert abs(gcj["lon"] - x) < 2e-6 and abs(gcj["lat"] - y) < 2e-6 and abs(gcj["lon"] - 120.8936) > 1e-3
    bd = event(rep, "hotline_12345", "GD20261120003")
    assert bd["src_datum"] == "BD-09" and bd["grid_id"] and bd["street_code"]
    assert event(rep, "hotline_12345", "GD20261120004")["src_datum"] == "GCJ-02"  # 火星


def test_unmapped_code_lands_in_to_be_classified_with_its_code_kept(rep):
    run(rep, "hotline_12345.csv", "12345-csv")
    e = event(rep, "hotline_12345", "GD20261120003")
    assert (e["category"], e["needs_classification"], e["source_code"]) == ("UNCLASSIFIED", 1, "宠物寄养咨询")
    payload = orjson.loads(logs(rep, e["id"])[0]["payload"])
    assert payload["category_original"] == "宠物寄养咨询" and payload["needs_classification"] is True
    mapped = event(rep, "hotline_12345", "GD20261120001")
    assert (mapped["category"], mapped["needs_classification"]) == ("HOTLINE.NOISE", 0)


def test_a_closed_record_arrives_closed_with_one_imported_log_row(rep):
    run(rep, "hotline_12345.csv", "12345-csv")
    e = event(rep, "hotline_12345", "GD20261120002")
    assert (e["status"], e["source_status"], e["closed_at"]) == ("closed", "已结案", "2026-11-20T09:02:10+08:00")
    rows = logs(rep, e["id"])
    assert [r["action"] for r in rows] == ["report", "imported"]
    assert (rows[1]["from_status"], rows[1]["to_status"]) == ("reported", "closed")
    assert (e["category"], e["handle_due_at"]) == ("FAC.STREETLIGHT", "2026-11-25T09:02:10+08:00")
    accepted = event(rep, "hotline_12345", "GD20261120004")
    assert (accepted["status"], accepted["accepted_at"]) == ("accepted", "2026-11-20T10:00:00+08:00")
    fresh = event(rep, "hotline_12345", "GD20261120001")
    assert [r["action"] for r in logs(rep, fresh["id"])] == ["report"]


def test_reimporting_the_same_file_creates_nothing(rep):
    first = run(rep, "hotline_12345.csv", "12345-csv")
    n_events = query(rep, "SELECT count(*) AS n FROM events")[0]["n"]
    n_logs = query(rep, "SELECT count(*) AS n FROM event_log")[0]["n"]
    second = run(rep, "hotline_12345.csv", "12345-csv")
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.created)
    assert second.quarantined == 8 and second.quarantine_new == 0
    assert query(rep, "SELECT count(*) AS n FROM events")[0]["n"] == n_events
    assert query(rep, "SELECT count(*) AS n FROM event_log")[0]["n"] == n_logs
    assert query(rep, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 8
    assert query(rep, "SELECT count(*) AS n FROM import_runs WHERE status = 'complete'")[0]["n"] == 2


def test_an_updated_record_updates_its_event_and_writes_a_log_row(rep, tmp_path):
    run(rep, "hotline_12345.csv", "12345-csv")
    before = event(rep, "hotline_12345", "GD20261120001")
    text = (FIX / "hotline_12345.csv").read_text(encoding="utf-8-sig")
    text = text.replace("楼上住户每晚装修到十一点，噪音很大影响休息,崇川区钟秀街道某小区3幢,张先生,13800000001,120.8873,32.0487,WGS-84,",
                        "楼上住户每晚装修到十二点,崇川区钟秀街道某小区3幢,张先生,13800000001,120.8873,32.0487,WGS-84,已派单")  # fmt: skip
    changed = tmp_path / "changed.csv"
    changed.write_text(text, encoding="utf-8")
    res = run(rep, changed, "12345-csv")
    assert (res.created, res.updated, res.unchanged) == (0, 1, 3)
    after = event(rep, "hotline_12345", "GD20261120001")
    assert after["description"] == "楼上住户每晚装修到十二点" and after["status"] == "dispatched"
    assert after["version"] == before["version"] + 1 and after["rev"] > before["rev"]
    last = logs(rep, after["id"])[-1]
    assert (last["action"], last["from_status"], last["to_status"]) == ("imported", "reported", "dispatched")
    assert set(orjson.loads(last["payload"])["changed"]) >= {"description", "status", "source_status"}
    check_log_chains(rep)


def test_the_consoles_progress_and_classification_are_kept_on_update(rep, tmp_path):
    from db import event_ops

    run(rep, "hotline_12345.csv", "12345-csv")
    e = event(rep, "hotline_12345", "GD20261120004")  # accepted
    event_ops.apply_action(rep, e["id"], "dispatch", actor="op", expected_version=e["version"],
                           payload={"target_kind": "department", "target": "CITYMGMT"})  # fmt: skip
    text = (FIX / "hotline_12345.csv").read_text(encoding="utf-8-sig")
    changed = tmp_path / "c.csv"
    changed.write_text(text.replace("早市摊贩占用人行道经营", "早市摊贩占用人行道经营（补充）"), encoding="utf-8")
    run(rep, changed, "12345-csv")
    after = event(rep, "hotline_12345", "GD20261120004")
    assert after["status"] == "dispatched" and after["assignee_code"] == "CITYMGMT"
    assert after["description"].endswith("（补充）")


def test_a_gbk_file_reads_correctly(rep, tmp_path):
    text = (FIX / "hotline_12345.csv").read_text(encoding="utf-8-sig")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(text.encode("gbk"))
    res = run(rep, gbk, "12345-csv")
    assert res.encoding == "gb18030"
    assert (res.created, res.quarantined) == (4, 8)
    assert event(rep, "hotline_12345", "GD20261120001")["description"] == "楼上住户每晚装修到十一点，噪音很大影响休息"
    assert "missing field: 工单编号" in reasons(rep).values()


def test_a_wrong_encoding_quarantines_the_undecodable_records_and_goes_on(rep, tmp_path):
    """A UTF-8 export with one line pasted in from a GBK system."""
    header = ",".join(HEADER).encode("utf-8") + b"\n"
    bad = "E1,2026-11-20 08:00:00,噪音扰民,夜间噪音,,,,120.8873,32.0487,,\n".encode("gbk")
    good = "E2,2026-11-20 08:01:00,噪音扰民,夜间噪音,,,,120.8873,32.0487,,\n".encode()
    path = tmp_path / "mixed.csv"
    path.write_bytes(header + bad + good)
    res = run(rep, path, "12345-csv", encoding="utf-8")
    assert (res.created, res.quarantined) == (1, 1)
    assert list(reasons(rep).values()) == ["encoding error: bytes that are not utf-8 (try --encoding)"]


def test_a_saved_header_mapping_reads_other_headers(rep):
    with pytest.raises(ImportFileError, match="no column for 工单编号"):
        run(rep, "hotline_custom_headers.csv", "12345-csv")
    mapping = pipeline.load_mapping_file(FIX / "mapping.json")
    res = run(rep, "hotline_custom_headers.csv", "12345-csv", mapping=mapping)
    assert (res.created, res.quarantined) == (2, 0)
    assert event(rep, "hotline_12345", "ZD-2")["category"] == "LIVE.ELDERLY"
    saved = {r["header"]: r["field"] for r in query(rep, "SELECT * FROM column_mappings")}
    assert saved["单号"] == "工单编号"
    assert run(rep, "hotline_custom_headers.csv", "12345-csv").unchanged == 2  # the saved mapping is used


# -- Open311, city management, IoT -----------------------------------------------------------------
def test_open311_json(rep):
    res = run(rep, "open311.json", "open311")
    assert (res.created, res.quarantined) == (4, 2)
    assert sorted(reasons(rep).values()) == ["bad date: 'yesterday'",
                                             "malformed JSON: Expecting ',' delimiter (column 104)"]  # fmt: skip
    light = event(rep, "open311", "SR-1001")
    assert (light["category"], light["status"], light["source_code"]) == ("FAC.STREETLIGHT", "reported", "STREETLIGHT")
    assert light["reported_at"] == "2026-11-19T20:15:00+08:00"
    pothole = event(rep, "open311", "SR-1002")  # lower-case code, UTC times, closed
    assert (pothole["category"], pothole["status"]) == ("ROAD.PAVEMENT", "closed")
    assert (pothole["reported_at"], pothole["closed_at"]) == ("2026-11-18T16:00:00+08:00", "2026-11-19T17:30:00+08:00")
    assert [r["action"] for r in logs(rep, pothole["id"])] == ["report", "imported"]
    payload = orjson.loads(logs(rep, pothole["id"])[0]["payload"])
    assert payload["source_fields"]["status_notes"] == "Pothole filled"
    nest = event(rep, "open311", "SR-1003")
    assert (nest["category"], nest["needs_classification"], nest["source_code"]) == ("UNCLASSIFIED", 1, "NEST_REMOVAL")
    assert run(rep, "open311.json", "open311").unchanged == 4


def test_open311_xml_is_detected_by_content(rep, tmp_path):
    res = run(rep, "open311.xml", "open311")
    assert (res.created, res.quarantined) == (2, 1)
    assert list(reasons(rep).values()) == ["truncated record"]
    tree = event(rep, "open311", "SR-2002")
    assert (tree["category"], tree["status"], tree["description"]) == ("GREEN.TREE", "closed", "大树倒在人行道上")
    as_txt = tmp_path / "requests.txt"  # no extension to go by
    as_txt.write_bytes((FIX / "open311.json").read_bytes())
    assert run(rep, as_txt, "open311").unchanged == 0


def test_city_management_cases(rep):
    res = run(rep, "citymgmt.json", "citymgmt")
    assert (res.created, res.quarantined) == (4, 1)
    assert list(reasons(rep).values()) == ["unknown datum: 'UTM'"]
    shop = event(rep, "citymgmt", "CG2026112000101")
    assert (shop["category"], shop["source_code"], shop["status"], shop["src_datum"]) == (
        "ORDER.SHOPFRONT", "事件:0504", "dispatched", "GCJ-02")
    cover = event(rep, "citymgmt", "CG2026112000102")
    assert (cover["category"], cover["status"], cover["reported_at"]) == ("FAC.MANHOLE", "closed", "2026-11-20T09:40:00+08:00")
    other = event(rep, "citymgmt", "CG2026112000103")
    assert (other["category"], other["source_code"], other["src_datum"]) == ("UNCLASSIFIED", "事件:9999", "BD-09")
    assert event(rep, "citymgmt", "CG2026112000105")["src_datum"] == "CGCS2000"


def test_iot_alarms_are_debounced_readings_kept_and_bad_records_quarantined(rep):
    res = run(rep, "iot.jsonl", "iot-jsonl")
    assert (res.created, res.quarantined) == (3, 4)
    assert sorted(reasons(rep).values()) == [
        "missing field: device_id", "missing field: id", "truncated line",
        "unknown device without coordinates: 'GHOST-1'"]  # fmt: skip
    burst = event(rep, "iot", "DOOR-TEST-1:door_open:A1")
    assert burst["category"] == "IOT.DOOR" and "3 次报警" in burst["description"]
    payload = orjson.loads(logs(rep, burst["id"])[0]["payload"])["source_fields"]
    assert (payload["count"], payload["record_ids"]) == (3, ["A1", "A2", "A3"])
    event(rep, "iot", "DOOR-TEST-1:door_open:A5")  # 83 minutes later: a new burst
    smoke = event(rep, "iot", "SMOKE-TEST-2:smoke_alarm:S1")
    assert (smoke["category"], smoke["class"], smoke["priority"]) == ("IOT.SMOKE", "emergency", 1)
    readings = {r["record_id"]: r for r in query(rep, "SELECT * FROM device_readings")}
    assert (readings["R1"]["valid"], readings["R1"]["value"]) == (0, 720.0)
    assert "impossible value" in readings["R1"]["invalid_reason"]
    assert readings["R2"]["valid"] == 1 and readings["A2"]["event_id"] == burst["id"]
    again = run(rep, "iot.jsonl", "iot-jsonl")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    # the demo's own readings (a planted chattering door sensor, issue 8) are not this import's
    assert query(rep, "SELECT count(*) AS n FROM device_readings WHERE record_id NOT LIKE 'demo-%'")[0]["n"] == 8


def test_not_the_format_or_bad_options_are_refused_before_anything_is_written(rep, tmp_path):
    with pytest.raises(ImportFileError, match="not Open311"):
        run(rep, "hotline_12345.csv", "open311")
    with pytest.raises(ImportFileError, match="not a 12345 work-order CSV"):
        run(rep, "open311.json", "12345-csv")
    with pytest.raises(ImportFileError, match="no such file"):
        run(rep, tmp_path / "missing.csv", "12345-csv")
    with pytest.raises(ImportOptionError, match="unknown format"):
        run(rep, "open311.json", "geojson")
    with pytest.raises(ImportOptionError, match="unknown datum"):
        run(rep, "open311.json", "open311", datum="XYZ")
    with pytest.raises(ImportOptionError, match="unknown encoding"):
        run(rep, "open311.json", "open311", encoding="klingon")
    assert query(rep, "SELECT count(*) AS n FROM import_runs")[0]["n"] == 0


# -- places: geocoding, the river, street notes ---------------------------------------------------
def test_an_address_only_record_is_geocoded_to_an_estate(rep, tmp_path):
    estate = query(rep, "SELECT p.*, s.name AS street FROM places p JOIN streets s ON s.code = p.street_code "
                        "WHERE p.kind = 'estate' ORDER BY p.id LIMIT 1")[0]  # fmt: skip
    rows = [["G1", "2026-11-20 08:00:00", "噪音扰民", "夜间噪音", f"崇川区{estate['street']}{estate['name']}5幢", "", "", "", "", "", ""]]
    res = run(rep, write_csv(tmp_path / "g.csv", rows), "12345-csv")
    assert (res.created, res.quarantined) == (1, 0)
    e = event(rep, "hotline_12345", "G1")
    assert (e["lon"], e["lat"]) == (estate["lon"], estate["lat"])
    assert (e["grid_id"], e["community_code"]) == (estate["grid_id"], estate["community_code"])
    geo = orjson.loads(logs(rep, e["id"])[0]["payload"])["geocoded"]
    assert (geo["kind"], geo["name"]) == ("estate", estate["name"])


def test_geocode_resolves_estates_roads_and_communities_but_never_a_bare_street(rep):
    from db.geocode import geocode

    c = rep.reader()
    try:
        estate = c.execute("SELECT name, street_code FROM places WHERE kind = 'estate' LIMIT 1").fetchone()
        road = c.execute("SELECT name FROM places WHERE kind = 'road' LIMIT 1").fetchone()
        comm = c.execute("SELECT name, code FROM communities WHERE name LIKE '%社区居委会' LIMIT 1").fetchone()
        street = c.execute("SELECT name FROM streets LIMIT 1").fetchone()
        m = geocode(c, f"{estate[0]}门口")
        assert (m.kind, m.name, m.street_code) == ("estate", estate[0], estate[1])
        assert geocode(c, f"{road[0]}88号").kind == "road"
        short = comm[0].removesuffix("居委会")
        m = geocode(c, f"崇川区{short}附近")
        assert (m.kind, m.community_code) == ("community", comm[1])
        assert geocode(c, f"崇川区{street[0]}") is None
        assert geocode(c, "") is None
    finally:
        c.close()


def test_a_point_on_the_river_goes_to_the_nearest_grid(rep, tmp_path):
    from db.spatial import load_boundary, load_land

    water = load_boundary().difference(load_land())
    p = water.representative_point()
    rows = [["W1", "2026-11-20 08:00:00", "露天焚烧", "江面有船只焚烧垃圾", "", "", "", f"{p.x:.6f}", f"{p.y:.6f}", "", ""]]
    assert run(rep, write_csv(tmp_path / "w.csv", rows), "12345-csv").created == 1
    e = event(rep, "hotline_12345", "W1")
    assert e["grid_id"] and e["street_code"]
    assert orjson.loads(logs(rep, e["id"])[0]["payload"])["grid_assignment"] == "nearest"


def test_an_address_naming_another_street_is_only_a_note(rep, tmp_path):
    g = query(rep, "SELECT g.lon, g.lat, g.street_code FROM grids g WHERE g.kind = 'comprehensive' ORDER BY id LIMIT 1")[0]
    other = query(rep, "SELECT name FROM streets WHERE code <> ? LIMIT 1", (g["street_code"],))[0]["name"]
    rows = [["N1", "2026-11-20 08:00:00", "噪音扰民", "噪音", f"崇川区{other}某小区", "", "", g["lon"], g["lat"], "", ""]]
    assert run(rep, write_csv(tmp_path / "n.csv", rows), "12345-csv").created == 1
    e = event(rep, "hotline_12345", "N1")
    assert e["street_code"] == g["street_code"] and other in e["address_note"]


# -- duplicates ---------------------------------------------------------------------------------------
def test_a_near_duplicate_gets_a_merge_suggestion_never_a_merge(rep, tmp_path):
    from db import merge_suggestions as ms

    lon, lat = 120.8873, 32.0487
    rows = [
        ["D1", "2026-11-20 08:00:00", "占道经营", "摊贩占道", "", "", "", lon, lat, "", ""],
        ["D2", "2026-11-20 08:30:00", "占道经营", "又见摊贩占道", "", "", "", lon + 0.0002, lat, "", ""],  # ~19 m
        ["D3", "2026-11-20 09:00:00", "占道经营", "远处摊贩", "", "", "", lon + 0.01, lat, "", ""],  # ~940 m
        ["D4", "2026-11-20 11:00:00", "占道经营", "三小时后", "", "", "", lon, lat, "", ""],
        ["D5", "2026-11-20 08:10:00", "噪音扰民", "另一类", "", "", "", lon, lat, "", ""],
    ]  # fmt: skip
    res = run(rep, write_csv(tmp_path / "d.csv", rows), "12345-csv")
    assert res.created == 5
    d1, d2 = event(rep, "hotline_12345", "D1"), event(rep, "hotline_12345", "D2")
    sugg = query(rep, "SELECT * FROM merge_suggestions WHERE event_id IN (SELECT id FROM events WHERE external_id LIKE 'D%')")
    pairs = {(s["event_id"], s["other_id"]) for s in sugg}
    assert (d2["id"], d1["id"]) in pairs and len(pairs) == 1 + (res.suggestions - 1)
    s = next(s for s in sugg if (s["event_id"], s["other_id"]) == (d2["id"], d1["id"]))
    assert 15 < s["distance_m"] < 25 and s["minutes"] == 30.0 and s["status"] == "open"
    assert event(rep, "hotline_12345", "D2")["status"] == "reported"  # not merged by the import
    merged = ms.accept(rep, s["id"], actor="op")
    assert (merged["status"], merged["merged_into"]) == ("merged", d1["id"])
    assert logs(rep, d2["id"])[-1]["action"] == "merge"
    assert query(rep, "SELECT status FROM merge_suggestions WHERE id = ?", (s["id"],))[0]["status"] == "accepted"


# -- chunked runs -------------------------------------------------------------------------------------
def _grid_points(rep, n):
    pts = query(rep, "SELECT lon, lat FROM places WHERE kind = 'estate' ORDER BY id")
    return [(pts[i % len(pts)]["lon"], pts[i % len(pts)]["lat"]) for i in range(n)]


def test_a_large_file_commits_in_chunks_and_a_cancelled_run_resumes(rep, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "SINGLE_TRANSACTION_MAX", 100)
    monkeypatch.setattr(pipeline, "FIRST_BATCH", 40)
    monkeypatch.setattr(pipeline, "MIN_BATCH", 40)
    monkeypatch.setattr(pipeline, "MAX_BATCH", 40)
    monkeypatch.setattr(pipeline, "BULK_MAX_BATCH", 40)
    pts = _grid_points(rep, 400)
    t0 = dt.datetime(2026, 11, 1, 8, 0)
    rows = [[f"C{i:04d}", (t0 + dt.timedelta(minutes=7 * i)).strftime("%Y-%m-%d %H:%M:%S"), "垃圾清运", f"垃圾{i}",
             "", "", "", x, y, "", "已结案" if i % 5 == 0 else ""] for i, (x, y) in enumerate(pts)]  # fmt: skip
    path = write_csv(tmp_path / "big.csv", rows)
    stop = threading.Event()
    seen = []

    def progress(frac, text):
        seen.append(frac)
        if len(seen) == 5:
            stop.set()

    res = run(rep, path, "12345-csv", progress=progress, cancel=stop)
    assert res.status == "cancelled" and res.transactions >= 1
    run_row = query(rep, "SELECT * FROM import_runs")[0]
    assert run_row["status"] == "running" and run_row["next_item"] > 1
    n = query(rep, "SELECT count(*) AS n FROM events WHERE external_id GLOB 'C[0-9][0-9][0-9][0-9]'")[0]["n"]
    assert n == run_row["next_item"] - 1 and n % 40 == 0 and 0 < n < 400
    check_log_chains(rep)
    again = run(rep, path, "12345-csv")
    assert again.status == "complete" and again.run_id == run_row["id"] and again.resumed_from == n + 1
    assert again.created == 400 - n and again.skipped == n
    assert query(rep, "SELECT count(*) AS n FROM events WHERE external_id GLOB 'C[0-9][0-9][0-9][0-9]'")[0]["n"] == 400
    assert query(rep, "SELECT status FROM import_runs")[0]["status"] == "complete"
    assert orjson.loads(query(rep, "SELECT counts FROM import_runs")[0]["counts"])["created"] == 400
    check_log_chains(rep)
    assert run(rep, path, "12345-csv").unchanged == 400


def test_vectorised_deadlines_match_the_working_calendar():
    from app import workcal
    from app.timeutil import TZ, to_iso
    from db.intake.deadlines import WorkClock, iso_local

    rng = np.random.default_rng(2)
    epoch = rng.integers(1_704_067_200, 1_798_761_600, 500)
    clock = WorkClock(workcal.default_is_workday)
    for unit, amount in (("working_hours", 4), ("working_days", 3), ("hours", 2), ("working_days", 0.5)):
        got = iso_local(clock.due(epoch, np.full(epoch.size, amount), np.full(epoch.size, unit, dtype=object)))
        want = [to_iso(workcal.due_at(dt.datetime.fromtimestamp(e, TZ), amount, unit)) for e in epoch.tolist()]
        assert got == want


def test_the_shipped_mappings_are_seeded_and_point_at_catalogue_leaves(rep):
    from db import catalogue
    from db.intake import mappings

    leaves = set(catalogue.leaf_codes(catalogue.load_categories()))
    shipped = mappings.shipped_category_mappings()
    assert {m["category"] for m in shipped} <= leaves
    codes = {(m["source"], m["source_code"].casefold()) for m in shipped}
    for code in ("STREETLIGHT", "OBSTRUCTION", "ILLEGAL_BUILD", "DUMPING", "WELFARE", "MANHOLE", "NOISE", "GRAFFITI",
                 "POTHOLE", "TREE", "WATER_LEAK", "ABANDONED_VEHICLE", "SIDEWALK", "TRAFFIC_SIGNAL"):  # fmt: skip
        assert ("open311", code.casefold()) in codes
    for name in ("噪音扰民", "占道经营", "路灯不亮", "违章搭建", "垃圾清运", "独居老人"):
        assert ("hotline_12345", name) in codes
    assert query(rep, "SELECT count(*) AS n FROM category_mappings")[0]["n"] == len(shipped)
    c = rep.reader()
    try:
        assert mappings.category_map(c, "open311")["streetlight"] == "FAC.STREETLIGHT"
        assert mappings.status_map(c, "open311") == {"open": "reported", "acknowledged": "accepted",
                                                     "in_progress": "dispatched", "closed": "closed"}  # fmt: skip
    finally:
        c.close()
