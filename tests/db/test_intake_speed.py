"""Intake speed work (issue 4): deferred full-text rows (fts_pending), progress in chunked runs,
the phone-number index, the role check on accepting a merge suggestion. No Qt."""

from __future__ import annotations

import datetime as dt

import pytest

from app import access, intake_views
from app.services import EventService
from app.state import Session
from db import merge_suggestions as ms
from db.intake import fts_backlog, pipeline
from db.replica import open_replica
from tests.db.test_intake_pipeline import _grid_points, event, query, run, write_csv


@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


def _rows(rep, n, prefix="F", text="油烟扰民测试{i}号"):
    t0 = dt.datetime(2026, 11, 2, 8, 0)
    return [[f"{prefix}{i:04d}", (t0 + dt.timedelta(minutes=3 * i)).strftime("%Y-%m-%d %H:%M:%S"), "油烟扰民",
             text.format(i=i), f"崇川区测试路{i}号", "", f"1390000{i:04d}", x, y, "", ""]
            for i, (x, y) in enumerate(_grid_points(rep, n))]  # fmt: skip


def fts_ok(rep, content: bool = True) -> None:
    """The index is sound; with ``content`` it also matches the events (not while rows are pending)."""
    c = rep.reader()
    try:
        c.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('integrity-check', ?)", (int(content),))
    finally:
        c.close()


def fts_hits(rep, phrase: str) -> int:
    return query(rep, "SELECT count(*) AS n FROM events_fts WHERE events_fts MATCH ?", (f'"{phrase}"',))[0]["n"]


def test_imported_events_get_their_text_rows_after_the_write_and_search_finds_them(rep, tmp_path):
    res = run(rep, write_csv(tmp_path / "f.csv", _rows(rep, 30)), "12345-csv")
    assert res.created == 30 and res.fts_indexed == 30
    assert query(rep, "SELECT count(*) AS n FROM fts_pending")[0]["n"] == 0
    assert fts_hits(rep, "油烟扰民测试17号") == 1
    fts_ok(rep)


def test_a_pending_range_left_by_a_killed_import_is_skipped_by_the_triggers_and_caught_up(rep, tmp_path):
    """An import killed between its write and the catch-up: the events are there, their text rows
    are not; editing one meanwhile must not corrupt the index; the next catch-up indexes the
    current values."""
    path = write_csv(tmp_path / "k.csv", _rows(rep, 20, "K"))
    orig = pipeline._catch_up_fts
    pipeline._catch_up_fts = lambda *a, **k: None  # as if killed right after the commit
    try:
        res = run(rep, path, "12345-csv")
    finally:
        pipeline._catch_up_fts = orig
    assert res.created == 20 and res.fts_indexed == 0
    assert fts_hits(rep, "油烟扰民测试7号") == 0
    c = rep.reader()
    assert fts_backlog.pending(c) == 20
    c.close()
    ev = event(rep, "hotline_12345", "K0007")
    with rep.write("events") as conn:  # an operator edits a still-pending event: no FTS 'delete' of absent rows
        conn.execute("UPDATE events SET title = '改过的标题甲乙丙' WHERE id = ?", (ev["id"],))
    fts_ok(rep, content=False)
    n, txns, longest = fts_backlog.catch_up(rep)
    assert n == 20 and txns >= 1 and longest >= 0
    assert fts_hits(rep, "油烟扰民测试7号") == 1 and fts_hits(rep, "改过的标题甲乙丙") == 1
    fts_ok(rep)
    with rep.write("events") as conn:  # now indexed: the normal triggers keep it in step
        conn.execute("UPDATE events SET title = '第二次改标题丁戊' WHERE id = ?", (ev["id"],))
    assert fts_hits(rep, "改过的标题甲乙丙") == 0 and fts_hits(rep, "第二次改标题丁戊") == 1
    fts_ok(rep)


def test_events_written_outside_imports_are_indexed_at_once(rep):
    from db import event_ops

    row = query(rep, "SELECT id FROM events WHERE status = 'reported' LIMIT 1")[0]
    with rep.write("events") as conn:
        conn.execute("UPDATE events SET address = '测试地址壬癸巷' WHERE id = ?", (row["id"],))
    assert fts_hits(rep, "测试地址壬癸巷") == 1
    assert event_ops is not None
    fts_ok(rep)


def test_chunked_progress_counts_each_record_once_and_reports_while_flushing(rep, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "SINGLE_TRANSACTION_MAX", 100)
    monkeypatch.setattr(pipeline, "FIRST_BATCH", 40)
    monkeypatch.setattr(pipeline, "MIN_BATCH", 40)
    monkeypatch.setattr(pipeline, "MAX_BATCH", 40)
    monkeypatch.setattr(pipeline, "BULK_MAX_BATCH", 40)
    path = write_csv(tmp_path / "p.csv", _rows(rep, 300, "P"))
    seen: list[tuple[float, str]] = []
    writes_at_report: list[int] = []
    real_write = pipeline._Writer.write

    def write(self, *a, **k):
        out = real_write(self, *a, **k)
        writes_at_report.append(len(seen))
        return out

    monkeypatch.setattr(pipeline._Writer, "write", write)
    res = run(rep, path, "12345-csv", progress=lambda f, t: seen.append((f, t)))
    assert res.created == 300 and res.records == 300 and res.transactions > 3
    written = [int(t.split(" ", 1)[0].replace(",", "")) for _, t in seen if "records written" in t]
    assert written == sorted(written) and max(written) == 300  # never more than the file holds
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    # the held records flushed when the file turned out too big: a report after each chunk
    assert len(set(writes_at_report[:3])) == 3


def test_phone_search_uses_an_index_on_reporter_phone(rep):
    c = rep.reader()
    try:
        plan = " ".join(r[3] for r in c.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE reporter_phone IN ('13800001234', '138-0000-1234')"))
        # m005's ix_events_reporter_phone, or m008's covering callers index that leads with the same column
        assert "INDEX" in plan and "reporter_phone=?" in plan, plan
        phone = c.execute("SELECT reporter_phone FROM events WHERE reporter_phone IS NOT NULL LIMIT 1").fetchone()[0]
        res = intake_views.search_history(c, Session("district"), phone)
        assert res.mode == "phone" and any(r["reporter_phone"] == phone for r in res.rows)
    finally:
        c.close()


def _suggestion(rep, tmp_path):
    lon, lat = _grid_points(rep, 1)[0]
    rows = [["M1", "2026-11-20 08:00:00", "占道经营", "摊贩占道", "", "", "", lon, lat, "", ""],
            ["M2", "2026-11-20 08:20:00", "占道经营", "又见摊贩", "", "", "", lon + 0.0001, lat, "", ""]]  # fmt: skip
    run(rep, write_csv(tmp_path / "m.csv", rows), "12345-csv")
    a, b = event(rep, "hotline_12345", "M2"), event(rep, "hotline_12345", "M1")
    s = query(rep, "SELECT * FROM merge_suggestions WHERE event_id = ? AND other_id = ?", (a["id"], b["id"]))[0]
    return s, a, b


@pytest.mark.parametrize("session", [Session("wall"), Session("department", "CITYMGMT"),
                                     Session("street", "999999999")])  # fmt: skip
def test_only_a_role_that_may_merge_accepts_a_suggestion(rep, tmp_path, session):
    s, a, _ = _suggestion(rep, tmp_path)
    guard = EventService(rep, session)._guard("merge")
    with pytest.raises(access.AccessDenied):
        ms.accept(rep, s["id"], actor="x", guard=guard)
    assert query(rep, "SELECT status FROM merge_suggestions WHERE id = ?", (s["id"],))[0]["status"] == "open"
    assert event(rep, "hotline_12345", "M2")["status"] == "reported"
    row = intake_views.load_suggestions(rep.reader(), limit=1000)
    row = next(r for r in row if r["id"] == s["id"])
    with pytest.raises(access.AccessDenied):
        intake_views.accept_suggestion(EventService(rep, session), row)
    assert query(rep, "SELECT status FROM merge_suggestions WHERE id = ?", (s["id"],))[0]["status"] == "open"


def test_the_district_role_accepts_a_suggestion(rep, tmp_path):
    s, a, b = _suggestion(rep, tmp_path)
    guard = EventService(rep, Session("district"))._guard("merge")
    merged = ms.accept(rep, s["id"], actor="op", guard=guard)
    assert (merged["status"], merged["merged_into"]) == ("merged", b["id"])


# -- the bulk write path (session 3): KPI rollups set-based in chunked runs -------------------------
def _rollups_match_a_rebuild(rep) -> None:
    from db import kpi_rollups

    conn = rep.writer
    before = kpi_rollups.snapshot(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        kpi_rollups.rebuild(conn, helpers=False)
        fresh = kpi_rollups.snapshot(conn)
    finally:
        conn.execute("ROLLBACK")
    assert before == fresh


def _triggers(rep) -> set[str]:
    return {r["name"] for r in query(rep, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}


def test_a_chunked_import_keeps_the_kpi_rollups_equal_to_a_rebuild_and_leaves_other_triggers(rep, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "SINGLE_TRANSACTION_MAX", 100)
    monkeypatch.setattr(pipeline, "FIRST_BATCH", 40)
    monkeypatch.setattr(pipeline, "MIN_BATCH", 40)
    monkeypatch.setattr(pipeline, "BULK_MAX_BATCH", 70)
    # a trigger the import does not own (e.g. a sync outbox on event_log): it must keep firing
    with rep.write("event_log") as conn:
        conn.execute("CREATE TABLE outbox_probe (log_id INTEGER)")
        conn.execute("CREATE TRIGGER outbox_probe_ai AFTER INSERT ON event_log BEGIN "
                     "INSERT INTO outbox_probe VALUES (new.id); END")  # fmt: skip
    triggers = _triggers(rep)
    log_before = query(rep, "SELECT max(id) AS m FROM event_log")[0]["m"]
    rows = _rows(rep, 300, "B")
    for k, r in enumerate(rows):
        r[10] = ("", "已受理", "已办结", "已结案")[k % 4]  # arrive in several states
    path = write_csv(tmp_path / "b.csv", rows)
    res = run(rep, path, "12345-csv")
    assert res.created == 300 and res.transactions > 3
    assert _triggers(rep) == triggers  # the KPI triggers are back, the probe untouched
    new_logs = query(rep, "SELECT count(*) AS n FROM event_log WHERE id > ?", (log_before,))[0]["n"]
    assert query(rep, "SELECT count(*) AS n FROM outbox_probe")[0]["n"] == new_logs > 300
    _rollups_match_a_rebuild(rep)
    # a second file updating some records and adding new ones: the updates go through the triggers
    for k, r in enumerate(rows):
        r[10] = "已结案" if k % 3 == 0 else r[10]
    more = rows + _rows(rep, 120, "C")
    res2 = run(rep, write_csv(tmp_path / "b2.csv", more), "12345-csv")
    assert res2.created == 120 and res2.updated > 0
    assert _triggers(rep) == triggers
    _rollups_match_a_rebuild(rep)


def test_a_one_transaction_import_adds_kpi_contributions_set_based(rep, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "KPI_SET_BASED_MIN", 10)
    triggers = _triggers(rep)
    rows = _rows(rep, 60, "S")
    for k, r in enumerate(rows):
        r[10] = ("", "已受理", "已结案")[k % 3]
    res = run(rep, write_csv(tmp_path / "s.csv", rows), "12345-csv")
    assert res.created == 60 and res.transactions == 1
    assert _triggers(rep) == triggers
    _rollups_match_a_rebuild(rep)
