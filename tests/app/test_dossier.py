"""一哨一档: the event dossier as one self-contained HTML file (app/dossier.py, no Qt)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app import dossier as dossier_mod
from app.dossier import build_clocks, build_dossier, format_duration, mask_text, resolve_event_id, write_html
from app.timeutil import TZ
from db.replica import connect

XSS = "<img src=x onerror=alert(1)>"
NOW = dt.datetime(2026, 11, 20, 16, 0, tzinfo=TZ)


@pytest.fixture
def conn(demo_db):
    c = connect(demo_db)
    yield c
    c.close()


@pytest.fixture
def copy_conn(demo_copy):
    c = connect(demo_copy)
    yield c
    c.close()


def busiest_event(conn) -> int:
    """The event with the most log rows (rework, deferral, evaluation…)."""
    return conn.execute(
        "SELECT event_id FROM event_log GROUP BY event_id ORDER BY count(*) DESC, event_id LIMIT 1"
    ).fetchone()[0]


def has_tables(conn, *names: str) -> bool:
    found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return set(names) <= found


# -- the timeline --------------------------------------------------------------------------------------


def test_dossier_contains_every_log_entry(conn):
    eid = busiest_event(conn)
    rows = conn.execute("SELECT id, action FROM event_log WHERE event_id = ? ORDER BY id", (eid,)).fetchall()
    assert len(rows) >= 8
    d = build_dossier(conn, str(eid), now=NOW)
    assert d.event_id == eid
    assert len(re.findall(r'<tr class="log-entry[ "]', d.html)) == len(rows)
    for r in rows:
        assert f'data-log-id="{r["id"]}" data-action="{r["action"]}"' in d.html


@pytest.mark.parametrize("eid", [1, 2, 3, 50, 400])
def test_log_entry_count_matches_for_several_events(conn, eid):
    n = conn.execute("SELECT count(*) FROM event_log WHERE event_id = ?", (eid,)).fetchone()[0]
    html = build_dossier(conn, eid, now=NOW).html
    assert html.count('<tr class="log-entry') == n


def test_actors_are_resolved_to_names_and_positions(conn):
    eid, actor = conn.execute(
        "SELECT l.event_id, p.name || '（' || p.position || '）' FROM event_log l "
        "JOIN people p ON p.uid = l.actor WHERE p.position IS NOT NULL LIMIT 1"
    ).fetchone()
    assert actor in build_dossier(conn, eid, now=NOW).html


# -- references ----------------------------------------------------------------------------------------


def test_resolves_by_id_uid_and_source_external_id(conn):
    eid, uid, source, ext = conn.execute(
        "SELECT id, uid, source, external_id FROM events WHERE external_id IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()
    assert resolve_event_id(conn, str(eid)) == eid
    assert resolve_event_id(conn, eid) == eid
    assert resolve_event_id(conn, uid) == eid
    assert resolve_event_id(conn, uid.lower()) == eid
    assert resolve_event_id(conn, f"{source}:{ext}") == eid
    by_ref = build_dossier(conn, f"{source}:{ext}", now=NOW)
    assert by_ref.event_id == eid
    assert uid in by_ref.html and f"{source}:{ext}" in by_ref.html
    assert build_dossier(conn, uid, now=NOW).html == by_ref.html


@pytest.mark.parametrize(
    "ref", ["999999999", "hotline_12345:NOPE-0001", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "nonsense", ""]
)
def test_unknown_ref_raises_lookup_error(conn, ref):
    with pytest.raises(LookupError) as info:
        build_dossier(conn, ref)
    if ref:
        assert ref in str(info.value)


# -- safety and self-containment -------------------------------------------------------------------------


def test_citizen_text_is_escaped(copy_conn):
    copy_conn.execute(
        "UPDATE events SET description = ?, title = ?, reporter_name = ?, address = ? WHERE id = 1",
        (f"门口乱停车 {XSS}", f"标题{XSS}", "<b>张三</b>", "地址<script>alert(2)</script>"),
    )
    html = build_dossier(copy_conn, "1", now=NOW).html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html
    assert "<script" not in html
    assert "&lt;b&gt;张三&lt;/b&gt;" in html


def test_notes_and_payloads_are_escaped(copy_conn):
    copy_conn.execute(
        "INSERT INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
        "VALUES ('LOGXSS1', 1, '2026-11-20T10:00:00+08:00', ?, 'note', 'rejected', 'rejected', ?, ?)",
        (f"x{XSS}", f"备注{XSS}", '{"reason": "<svg onload=alert(3)>"}'),
    )
    html = build_dossier(copy_conn, "1", now=NOW).html
    assert "<img" not in html and "<svg onload" not in html
    assert "&lt;svg onload=alert(3)&gt;" in html


def test_html_is_self_contained(conn):
    html = build_dossier(conn, busiest_event(conn), now=NOW).html
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#)""", html), "no external resources"
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<style>" in html and "@page" in html


def test_header_footer_and_demo_note(conn):
    eid = busiest_event(conn)
    html = build_dossier(conn, eid, now=NOW).html
    assert "一哨一档 · 事件档案" in html
    assert "演示数据" in html  # the demo replica has meta demo=1
    assert "本档案由一张图指挥台自动生成" in html
    assert "2026-11-20 16:00:00" in html  # generation time, Asia/Shanghai


def test_no_demo_note_without_demo_meta(copy_conn):
    copy_conn.execute("DELETE FROM meta WHERE key LIKE 'demo%'")
    html = build_dossier(copy_conn, 1, now=NOW).html
    assert "演示数据" not in html


def test_facts_and_evaluation(conn):
    eid, score, street = conn.execute(
        "SELECT e.id, e.satisfaction, s.name FROM events e JOIN streets s ON s.code = e.street_code "
        "WHERE e.satisfaction IS NOT NULL ORDER BY e.id LIMIT 1"
    ).fetchone()
    html = build_dossier(conn, eid, now=NOW).html
    assert f"{score} / 5" in html
    assert street in html
    assert 'class="eval"' in html


def test_mask_personal(copy_conn):
    copy_conn.execute(
        "UPDATE events SET reporter_name = '王小明', reporter_phone = '13912345678', "
        "description = '居民王小明反映，电话13912345678，身份证320613199001011234。' WHERE id = 1"
    )
    plain = build_dossier(copy_conn, 1, now=NOW).html
    assert "13912345678" in plain and "王小明" in plain
    masked = build_dossier(copy_conn, 1, now=NOW, mask_personal=True).html
    assert "13912345678" not in masked and "320613199001011234" not in masked
    assert "139****5678" in masked and "王**" in masked


def test_english(conn):
    html = build_dossier(conn, busiest_event(conn), lang="en", now=NOW).html
    assert "Full timeline" in html and 'lang="en"' in html


def test_write_html(conn, tmp_path):
    d = build_dossier(conn, 1, now=NOW)
    path = write_html(d, tmp_path / "d.html")
    assert path.read_text(encoding="utf-8") == d.html
    assert [p.name for p in tmp_path.iterdir()] == ["d.html"]


# -- the map ----------------------------------------------------------------------------------------------


def test_map_snapshot_is_inline_svg(conn):
    eid, grid_name, street_name = conn.execute(
        "SELECT e.id, g.name, s.name FROM events e JOIN grids g ON g.id = e.grid_id "
        "JOIN streets s ON s.code = e.street_code WHERE e.lon IS NOT NULL ORDER BY e.id LIMIT 1"
    ).fetchone()
    event = dict(conn.execute("SELECT * FROM events WHERE id = ?", (eid,)).fetchone())
    m = dossier_mod.build_map(conn, event, lang="zh")
    assert m["event_grid"]["name"] == grid_name and m["event_grid"]["d"].startswith("M")
    assert len(m["grids"]) >= 5  # neighbours within ~1.5 km
    assert m["street"]["name"] == street_name
    assert m["point"] == (m["size"] / 2, m["size"] / 2)  # centred on the event
    html = build_dossier(conn, eid, now=NOW).html
    assert '<svg class="map"' in html and grid_name in html and "1 公里" in html


def test_event_without_coordinates_has_no_map(copy_conn):
    copy_conn.execute("UPDATE events SET lon = NULL, lat = NULL WHERE id = 1")
    html = build_dossier(copy_conn, 1, now=NOW).html
    assert '<svg class="map"' not in html
    assert "本事件无坐标" in html


def test_projection_scales_longitude_by_cos_lat():
    proj = dossier_mod._Projection(120.86, 32.0, 1500, 600)
    x, _ = proj.xy(120.86 + 1500 / proj.mx, 32.0)
    _, y = proj.xy(120.86, 32.0 + 1500 / proj.my)
    assert x == pytest.approx(600) and y == pytest.approx(0, abs=1e-6)
    assert proj.mx == pytest.approx(111_320 * 0.848, rel=1e-3)


# -- clocks ------------------------------------------------------------------------------------------------

CAT = {"response_limit_min": 30, "arrival_clock": 1, "handle_limit": 4.0, "handle_unit": "working_hours"}


def log_rows(*pairs):
    return [{"action": a, "at": at} for a, at in pairs]


def test_clocks_on_time_and_overdue():
    event = {
        "status": "closed",
        "reported_at": "2026-03-10T10:00:00+08:00",
        "accepted_at": "2026-03-10T10:05:00+08:00",
        "response_due_at": "2026-03-10T10:30:00+08:00",
        "arrival_due_at": "2026-03-10T10:10:00+08:00",
        "on_site_at": "2026-03-10T10:07:30+08:00",
        "handle_due_at": "2026-03-10T14:00:00+08:00",
        "handled_at": "2026-03-10T15:30:00+08:00",
    }
    log = log_rows(("accept", "2026-03-10T10:05:00+08:00"), ("arrive", "2026-03-10T10:07:30+08:00"))
    response, arrival, handling = build_clocks(event, log, CAT, lang="zh", now=NOW)
    assert response["cls"] == "ok" and response["verdict"] == "按时"
    assert arrival["minutes"] == 7.5 and arrival["within"] is True and arrival["cls"] == "ok"
    assert handling["cls"] == "late" and handling["verdict"] == "超时 1小时30分"


def test_arrival_late_and_not_applicable():
    event = {
        "status": "on_site",
        "reported_at": "2026-03-10T10:00:00+08:00",
        "accepted_at": None,
        "response_due_at": None,
        "arrival_due_at": "2026-03-10T10:10:00+08:00",
        "handle_due_at": None,
        "handled_at": None,
    }
    log = log_rows(("arrive", "2026-03-10T10:25:00+08:00"), ("arrive", "2026-03-10T11:00:00+08:00"))
    _, arrival, _ = build_clocks(event, log, CAT, lang="zh", now=NOW)
    assert arrival["minutes"] == 25.0 and arrival["within"] is False  # the FIRST arrival counts
    assert "超出10分钟 15.0 分钟" in arrival["verdict"]
    event["arrival_due_at"] = None
    _, arrival, _ = build_clocks(event, log, {**CAT, "arrival_clock": 0}, lang="zh", now=NOW)
    assert arrival["cls"] == "na" and "不适用" in arrival["verdict"]


def test_running_clock_uses_now():
    event = {
        "status": "reported",
        "reported_at": "2026-11-20T15:00:00+08:00",
        "response_due_at": "2026-11-20T15:30:00+08:00",
        "arrival_due_at": None,
        "handle_due_at": None,
    }
    response, *_ = build_clocks(event, [], {**CAT, "arrival_clock": 0}, lang="zh", now=NOW)
    assert response["cls"] == "late" and "已超时 30分" in response["verdict"]


def test_format_duration_and_mask_text():
    assert format_duration(59) == "59秒"
    assert format_duration(90061) == "1天1小时1分"
    assert format_duration(3600, "en") == "1h"
    assert mask_text("电话13800138000") == "电话138****8000"


# -- whistles ----------------------------------------------------------------------------------------------


def test_whistle_and_check_in_table(copy_conn):
    if not has_tables(copy_conn, "whistles", "whistle_departments"):
        pytest.skip("this build's schema has no whistle tables")
    blower = copy_conn.execute("SELECT uid, name FROM people WHERE role = 'grid_leader' LIMIT 1").fetchone()
    already = copy_conn.execute(
        "SELECT count(*) FROM whistle_departments d JOIN whistles w ON w.id = d.whistle_id WHERE w.event_id = 2"
    ).fetchone()[0]
    copy_conn.execute(
        "INSERT INTO whistles (id, uid, event_id, level, blown_by, blown_at, reason) "
        "VALUES (900, 'W900', 2, 'street', ?, '2026-11-20T09:00:00+08:00', ?)",
        (blower["uid"], f"联合处置{XSS}"),
    )
    copy_conn.executemany(
        "INSERT INTO whistle_departments (whistle_id, department_code, deadline_at, checked_in_at, late) "
        "VALUES (900, ?, ?, ?, ?)",
        [
            ("FIRE", "2026-11-20T09:30:00+08:00", "2026-11-20T09:20:00+08:00", 0),
            ("CITYMGMT", "2026-11-20T09:30:00+08:00", "2026-11-20T10:15:00+08:00", 1),
            ("HOUSING", "2026-11-20T09:30:00+08:00", None, None),
        ],
    )
    html = build_dossier(copy_conn, 2, now=NOW).html
    assert 'class="whistle-section"' in html
    assert html.count('<tr class="whistle-row"') == already + 3
    assert blower["name"] in html and "街道级" in html
    assert "按时报到" in html and "迟到 45分" in html and "逾期未报到" in html
    assert "&lt;img src=x" in html and "<img" not in html


def test_no_whistle_section_without_tables(copy_conn):
    for table in ("whistle_departments", "whistles"):
        copy_conn.execute(f"DROP TABLE IF EXISTS {table}")
    html = build_dossier(copy_conn, 2, now=NOW).html
    assert 'class="whistle-section"' not in html
    assert (
        html.count('<tr class="log-entry')
        == copy_conn.execute("SELECT count(*) FROM event_log WHERE event_id = 2").fetchone()[0]
    )
