"""The quarantine (db/quarantine.py): fix and re-submit, discard with a reason, the history that
cannot change; merge suggestions dismissed (db/merge_suggestions.py). No Qt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from db import merge_suggestions as ms
from db import quarantine as qz
from db.intake.pipeline import import_file
from db.replica import open_replica

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "intake"


@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    import_file(r, FIX / "hotline_12345.csv", "12345-csv", actor="tester")
    yield r
    r.close()


def row_for(rep, reason_prefix: str) -> dict:
    c = rep.reader()
    try:
        rows = qz.list_quarantine(c)
    finally:
        c.close()
    return next(r for r in rows if r["reason"].startswith(reason_prefix))


def one(rep, sql, params=()):
    c = rep.reader()
    try:
        r = c.execute(sql, params).fetchone()
        return dict(r) if r else None
    finally:
        c.close()


def test_list_and_counts(rep):
    c = rep.reader()
    try:
        assert qz.counts(c) == {"open": 8}
        rows = qz.list_quarantine(c)
        assert len(rows) == 8 and all(r["run_uid"] for r in rows)
        assert qz.list_quarantine(c, status="fixed") == []
    finally:
        c.close()


def test_resubmit_with_fixed_fields_creates_the_event_and_marks_the_row_fixed(rep):
    q = row_for(rep, "bad date")
    done = qz.resubmit(rep, q["id"], actor="op-1", fixed_fields={"time": "2026-11-20 08:45:00"}, note="时间已核实")
    assert done.created
    e = one(rep, "SELECT * FROM events WHERE id = ?", (done.event_id,))
    assert (e["external_id"], e["reported_at"], e["source"]) == ("GD20261120005", "2026-11-20T08:45:00+08:00", "hotline_12345")
    assert one(rep, "SELECT action FROM event_log WHERE event_id = ?", (e["id"],))["action"] == "report"
    fixed = one(rep, "SELECT * FROM quarantine WHERE id = ?", (q["id"],))
    assert (fixed["status"], fixed["event_id"], fixed["resolved_by"]) == ("fixed", e["id"], "op-1")
    assert "time" in fixed["resolution_note"] and "时间已核实" in fixed["resolution_note"]
    assert fixed["reason"] == "bad date: '2026-13-45 25:00'"  # the original reason stays
    with pytest.raises(qz.QuarantineError, match="already fixed"):
        qz.resubmit(rep, q["id"], actor="op-1", fixed_fields={"time": "2026-11-20 08:45:00"})


def test_resubmit_with_a_corrected_raw_line(rep):
    q = row_for(rep, "non-numeric coordinate")
    raw = q["raw"].replace(",abc,", ",120.8873,")
    done = qz.resubmit(rep, q["id"], actor="op-1", fixed_raw=raw)
    e = one(rep, "SELECT * FROM events WHERE id = ?", (done.event_id,))
    assert (e["external_id"], e["lon"]) == ("GD20261120006", 120.8873)
    assert one(rep, "SELECT fixed_raw FROM quarantine WHERE id = ?", (q["id"],))["fixed_raw"] == raw


def test_a_resubmission_that_still_fails_keeps_the_row_open_with_the_new_reason(rep):
    q = row_for(rep, "point outside the district")
    with pytest.raises(qz.QuarantineError, match="point outside the district: 121.6, 31.2"):
        qz.resubmit(rep, q["id"], actor="op-1", fixed_fields={"lon": "121.6"})
    still = one(rep, "SELECT * FROM quarantine WHERE id = ?", (q["id"],))
    assert still["status"] == "open" and still["last_error"] == "point outside the district: 121.6, 31.2"
    with pytest.raises(qz.QuarantineError, match="unknown field"):
        qz.resubmit(rep, q["id"], actor="op-1", fixed_fields={"colour": "red"})


def test_discard_needs_a_reason_and_is_final(rep):
    q = row_for(rep, "truncated line")
    with pytest.raises(qz.QuarantineError, match="reason"):
        qz.discard(rep, q["id"], "  ", actor="op-1")
    row = qz.discard(rep, q["id"], "重复来电，已有工单", actor="op-1")
    assert (row["status"], row["resolution_note"], row["resolved_by"]) == ("discarded", "重复来电，已有工单", "op-1")
    with pytest.raises(qz.QuarantineError, match="already discarded"):
        qz.discard(rep, q["id"], "again", actor="op-1")
    with pytest.raises(qz.QuarantineError, match="already discarded"):
        qz.resubmit(rep, q["id"], actor="op-1", fixed_fields={})


def test_history_cannot_be_rewritten_or_deleted(rep):
    q = row_for(rep, "unknown datum")
    qz.resubmit(rep, q["id"], actor="op-1", fixed_fields={"datum": "GCJ-02"})
    with pytest.raises(sqlite3.IntegrityError, match="history"), rep.write() as conn:
        conn.execute("UPDATE quarantine SET status = 'open' WHERE id = ?", (q["id"],))
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"), rep.write() as conn:
        conn.execute("DELETE FROM quarantine WHERE id = ?", (q["id"],))


def test_a_later_good_import_of_the_record_supersedes_its_quarantine_row(rep, tmp_path):
    q = row_for(rep, "unknown datum")
    text = (FIX / "hotline_12345.csv").read_text(encoding="utf-8-sig").replace(",XYZ,", ",WGS-84,")
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text, encoding="utf-8")
    res = import_file(rep, fixed, "12345-csv", actor="tester")
    assert res.created == 1
    row = one(rep, "SELECT * FROM quarantine WHERE id = ?", (q["id"],))
    assert row["status"] == "fixed" and row["event_id"] and row["resolution_note"].startswith("superseded")


def test_an_iot_record_without_its_device_can_be_fixed(demo_copy):
    r = open_replica(demo_copy)
    try:
        import_file(r, FIX / "iot.jsonl", "iot-jsonl", actor="tester")
        q = row_for(r, "missing field: device_id")
        done = qz.resubmit(r, q["id"], actor="op-1", fixed_raw=q["raw"].replace('"type"', '"device_id": "DOOR-TEST-7", "lon": 120.8873, "lat": 32.0487, "type"', 1))  # fmt: skip
        e = one(r, "SELECT * FROM events WHERE id = ?", (done.event_id,))
        assert e["source"] == "iot" and e["external_id"] == "DOOR-TEST-7:door_open:A4"
    finally:
        r.close()


def test_a_merge_suggestion_can_be_dismissed(rep, tmp_path):
    import csv

    path = tmp_path / "dup.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["工单编号", "来电时间", "诉求类型", "诉求内容", "经度", "纬度"])
        w.writerow(["M1", "2026-11-20 12:00:00", "小广告", "电线杆上贴满小广告", "120.8998", "32.0227"])
        w.writerow(["M2", "2026-11-20 12:40:00", "小广告", "同一处小广告", "120.8999", "32.0228"])
    assert import_file(rep, path, "12345-csv", actor="tester").suggestions >= 1
    c = rep.reader()
    try:
        s = next(s for s in ms.list_suggestions(c) if s["category"] == "AD.FLYER")
    finally:
        c.close()
    ms.dismiss(rep, s["id"], actor="op-1", note="不同商家")
    assert one(rep, "SELECT status, note FROM merge_suggestions WHERE id = ?", (s["id"],)) == {
        "status": "dismissed", "note": "不同商家"}
    with pytest.raises(ms.SuggestionError, match="already dismissed"):
        ms.accept(rep, s["id"], actor="op-1")
