"""After-action report contents in every state, on the demo replica's drills."""

import pytest

from app.drills import measure, queries, report
from db.replica import open_replica
from tests.conftest import DEMO_UNTIL


@pytest.fixture(scope="module")
def conn(demo_db):
    rep = open_replica(demo_db, create=False)
    c = rep.reader()
    yield c
    c.close()
    rep.close()


def _first(conn, status):
    return next(d for d in queries.list_drills(conn) if d["status"] == status)


def test_demo_has_run_and_scheduled_drills_with_measured_results(conn):
    drills = queries.list_drills(conn)
    until = DEMO_UNTIL.isoformat()
    run = [d for d in drills if d["status"] in ("completed", "stopped") and d["starts_at"] < until]
    assert sum(d["status"] == "completed" for d in run) >= 12
    assert sum(d["status"] == "scheduled" and d["starts_at"] > until for d in drills) >= 4
    n_events, n_drill_ids = conn.execute(
        "SELECT count(*), count(DISTINCT drill_id) FROM events WHERE source = 'drill'").fetchone()
    assert n_events > 50 and n_drill_ids == len(run)
    # every drill event went through the loop and points back at its inject
    assert conn.execute("SELECT count(*) FROM events e WHERE e.drill_id IS NOT NULL AND NOT EXISTS "
                        "(SELECT 1 FROM drill_injects i WHERE i.event_id = e.id)").fetchone()[0] == 0
    s = measure.drill_summary(conn, run[-1]["id"])
    assert s["measured"] > 0 and s["attendance"]["leader_rate"] is not None
    assert conn.execute("SELECT count(*) FROM event_log l JOIN events e ON e.id = l.event_id "
                        "WHERE e.drill_id IS NOT NULL AND l.action = 'arrive'").fetchone()[0] > 0


def test_completed_report_has_every_section(conn):
    d = _first(conn, "completed")
    rep = report.build_report(conn, d["id"])
    html = rep.html
    for words in ("演练评估报告", "已完成", "逐条注入结果", "注入分布图", "时间线", "参演与出勤",
                  "做得好的方面", "改进计划", "同主题历次演练", "<svg"):
        assert words in html
    assert d["title"] in html
    assert len(rep.data["rows"]) == conn.execute("SELECT count(*) FROM drill_injects WHERE drill_id = ?",
                                                 (d["id"],)).fetchone()[0]
    assert rep.data["findings"] and rep.data["timeline"]
    assert "尚未进行" not in html and "提前结束：" not in html


def test_scheduled_report_is_the_plan_marked_not_yet_run(conn):
    d = _first(conn, "scheduled")
    rep = report.build_report(conn, d["id"])
    assert "尚未进行" in rep.html and "not yet run" in rep.html
    assert all(r["result"] == "not_fired" for r in rep.data["rows"]) and rep.data["rows"]
    assert rep.data["kpis"]["sent"] == 0


def test_stopped_report_says_it_was_stopped_early(conn):
    d = _first(conn, "stopped")
    rep = report.build_report(conn, d["id"])
    assert "提前结束" in rep.html and "stopped early" in rep.html
    assert d["stop_reason"] in rep.html
    assert any(r["result"] in ("not_fired", "skipped") for r in rep.data["rows"])


def test_series_view_compares_drills_of_the_same_theme(conn):
    d = [x for x in queries.list_drills(conn) if x["status"] == "completed"][-1]
    rep = report.build_report(conn, d["id"])
    series = rep.data["series"]
    assert len(series) >= 2 and all(s["id"] for s in series)
    assert series[-1]["this"] and rep.data["series_svg"].startswith("<svg")
    themes = {conn.execute("SELECT theme FROM drills WHERE id = ?", (s["id"],)).fetchone()[0] for s in series}
    assert themes == {d["theme"]}


def test_unknown_drill_is_a_lookup_error(conn):
    with pytest.raises(LookupError):
        report.build_report(conn, 99999)


def test_citizen_text_is_escaped(demo_copy):
    from db import drills as D

    rep = open_replica(demo_copy)
    try:
        c = rep.reader()
        g = c.execute("SELECT id, street_code FROM grids LIMIT 1").fetchone()
        c.close()
        did = D.create_drill(rep, {"title": "<script>x</script>", "theme": "突发事件", "level": "grid",
                                   "starts_at": "2026-12-24T09:00:00+08:00", "streets": [g[1]], "grids": [g[0]]},
                             actor="drill", injects=[{"title": "<b>注入</b>", "category": "EMG", "grid_id": g[0]}])
        c = rep.reader()
        html = report.build_report(c, did).html
        c.close()
    finally:
        rep.close()
    assert "<script>x" not in html and "&lt;script&gt;" in html and "<b>注入" not in html


def test_training_records_feed_grid_leader_readiness(conn):
    per_street = measure.readiness(conn, since="2026-08-01T00:00:00+08:00", until=DEMO_UNTIL.isoformat())
    assert per_street
    for v in per_street.values():
        assert 0 < v["expected"] and 0 <= v["attended"] <= v["expected"] and 0 <= v["rate"] <= 1
    total = conn.execute(
        "SELECT count(*) FROM drill_participants p JOIN drills d ON d.id = p.drill_id WHERE p.role = 'grid_leader' "
        "AND d.status IN ('completed', 'stopped')").fetchone()[0]
    assert sum(v["expected"] for v in per_street.values()) == total
