"""The event queue query (app/queue.py) on a small replica in tmp_path. No Qt."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import labels, timeutil
from app.queue import (
    OPEN_TERM,
    QueueFilter,
    QueueReader,
    count_tabs,
    countdown_text,
    counts_sql,
    deadline_text,
    due_state,
    fts_phrase,
    like_pattern,
    load_queue,
    query_queue,
    queue_sql,
)
from db.replica import open_replica
from db.schema import TERMINAL_STATUSES

NOW = "2026-03-10T12:00:00+08:00"
T0 = timeutil.parse(NOW)
S1, S2 = "320613001", "320613002"
STATUSES = list(labels.STATUSES)
SOURCES = list(labels.SOURCES)
CATEGORIES = ["A.01", "A.02", "B.01", "B.02", "A", "AB"]
TITLES = ["路口交通信号灯故障", "消防通道被占用", "暴露垃圾堆放", "店外占道经营", "窨井盖缺失", "噪声扰民"]
ADDRESSES = ["工农路88号", "濠河风景区南门", "青年中路消防站旁", "人民东路12号"]


def at(hours: float) -> str:
    return timeutil.to_iso(T0 + dt.timedelta(hours=hours))


def insert_event(conn, **kw) -> int:
    n = conn.execute("SELECT count(*) FROM events").fetchone()[0] + 1
    row = {
        "uid": f"EV{n:06d}",
        "source": "grid_app",
        "external_id": None,
        "category": "A.01",
        "class": "ordinary",
        "priority": 3,
        "title": f"事件{n}",
        "status": "reported",
        "reported_at": at(-1),
        "street_code": S1,
        "updated_at": NOW,
    }
    row.update(kw)
    cols = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    return conn.execute(f"INSERT INTO events ({cols}) VALUES ({marks})", row).lastrowid


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    path = tmp_path_factory.mktemp("queue") / "replica.db"
    rep = open_replica(path)
    with rep.write("events") as conn:
        conn.execute("INSERT INTO streets (code, name, geometry) VALUES (?, '城东街道', '{}')", (S1,))
        conn.execute("INSERT INTO streets (code, name, geometry) VALUES (?, '和平桥街道', '{}')", (S2,))
        for code, parent, zh in [
            ("A", None, "市容环境"),
            ("A.01", "A", "暴露垃圾"),
            ("A.02", "A", "占道经营"),
            ("AB", None, "其他"),
            ("B", None, "公共安全"),
            ("B.01", "B", "消防通道堵塞"),
            ("B.02", "B", "交通信号灯故障"),
        ]:
            conn.execute(
                "INSERT INTO categories (code, parent, name_zh, name_en, class) VALUES (?, ?, ?, ?, 'ordinary')",
                (code, parent, zh, code),
            )
        conn.execute(
            "INSERT INTO drills (id, uid, title, theme, level, starts_at) "
            "VALUES (1, 'DR1', '防汛演练', 'flood', 'street', ?)",
            (NOW,),
        )
        # 60 varied events; every field cycles with a different period
        for i in range(60):
            reported = -((i * 37) % 900) / 1.0 - 0.25  # 15 min .. 37 days ago
            handle_due = None if i % 9 == 0 else reported + (i % 6) * 24 + 1
            insert_event(
                conn,
                status=STATUSES[i % len(STATUSES)],
                priority=1 + (i * 7) % 4,
                street_code=S1 if i % 3 else S2,
                category=CATEGORIES[i % len(CATEGORIES)],
                source=SOURCES[i % len(SOURCES)],
                **{"class": ("ordinary", "emergency", "assigned")[i % 3 if i % 4 else 0]},
                title=TITLES[i % len(TITLES)] + f"#{i}",
                address=ADDRESSES[i % len(ADDRESSES)],
                reported_at=at(reported),
                handle_due_at=at(handle_due) if handle_due is not None else None,
                arrival_due_at=at(reported + 1 / 6) if i % 5 == 0 else None,
                response_due_at=at(reported + 0.5) if i % 4 == 0 else None,
                drill_id=1 if i % 7 == 0 else None,
                external_id=f"SZCG-2026-{i:04d}" if i % 8 == 0 else None,
            )
        # hand-made rows with known clocks and texts
        ids = {
            "xss": insert_event(conn, title="<img src=x onerror=alert(1)>", status="reported", priority=4),
            "percent": insert_event(conn, title="湿度100%报警", status="accepted", reported_at=at(-2)),
            "quote": insert_event(conn, title='标题含"引号"的事件', status="accepted", reported_at=at(-3)),
            "deferred_before_due": insert_event(
                conn, status="deferred", deferred_at=at(-10), handle_due_at=at(-5), reported_at=at(-30)
            ),
            "deferred_after_due": insert_event(
                conn, status="deferred", deferred_at=at(-3), handle_due_at=at(-5), reported_at=at(-30)
            ),
            "handled_on_time": insert_event(
                conn, status="handled", handled_at=at(-3), handle_due_at=at(-2), reported_at=at(-10)
            ),
            "handled_late": insert_event(
                conn, status="verified", handled_at=at(-1), handle_due_at=at(-2), reported_at=at(-10)
            ),
            "arrival_broken": insert_event(
                conn, status="dispatched", arrival_due_at=at(-0.1), reported_at=at(-0.5), handle_due_at=at(20)
            ),
            "arrival_met": insert_event(
                conn, status="on_site", on_site_at=at(-0.2), arrival_due_at=at(-0.1),
                reported_at=at(-0.5), handle_due_at=at(20),
            ),
            "arrival_late": insert_event(
                conn, status="on_site", on_site_at=at(-0.05), arrival_due_at=at(-0.3),
                reported_at=at(-0.5), handle_due_at=at(20),
            ),
            "response_broken": insert_event(conn, status="reported", response_due_at=at(-0.05), reported_at=at(-0.3)),
            "response_late": insert_event(
                conn, status="accepted", accepted_at=at(-1), response_due_at=at(-2), reported_at=at(-3)
            ),
            "soon": insert_event(conn, status="acknowledged", handle_due_at=at(1.5), reported_at=at(-4)),
            "closed_late": insert_event(conn, status="closed", handle_due_at=at(-50), reported_at=at(-60)),
        }
    conn = rep.reader()
    yield rep, conn, ids
    conn.close()
    rep.close()


def all_rows(conn) -> list[dict]:
    cur = conn.execute(
        "SELECT e.*, c.name_zh AS category_name, s.name AS street_name FROM events e "
        "LEFT JOIN categories c ON c.code = e.category LEFT JOIN streets s ON s.code = e.street_code"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def oracle(conn, f: QueueFilter) -> list[int]:
    """The queue computed in Python from every row: an independent reference."""
    since = None
    if f.window:
        since = timeutil.to_iso(T0 - {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1),
                                      "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}[f.window])
    out = []
    for r in all_rows(conn):
        if r["status"] in TERMINAL_STATUSES:
            continue
        if f.tab == "pending" and r["status"] not in ("reported", "accepted", "returned"):
            continue
        if f.tab == "overdue" and due_state(r, NOW) != "overdue":
            continue
        if f.scope_street and r["street_code"] != f.scope_street:
            continue
        if f.street and r["street_code"] != f.street:
            continue
        if f.category and not (r["category"] == f.category or r["category"].startswith(f.category + ".")):
            continue
        if f.source and r["source"] != f.source:
            continue
        if f.klass and r["class"] != f.klass:
            continue
        if since and r["reported_at"] < since:
            continue
        if not f.include_drills and r["drill_id"] is not None:
            continue
        if f.text and f.text not in (r["title"] or "") + "\n" + (r["address"] or "") + "\n" + (
            r["description"] or ""
        ):
            continue
        out.append(r)
    out.sort(key=lambda r: (r["priority"], r["reported_at"], r["id"]))
    return [r["id"] for r in out][: f.limit]


def ids_of(rows) -> list[int]:
    return [r["id"] for r in rows]


# -- tabs and order ------------------------------------------------------------------------------
@pytest.mark.parametrize("tab", ["pending", "open", "overdue"])
def test_tab_membership_and_order(replica, tab):
    _, conn, _ = replica
    f = QueueFilter(tab=tab)
    rows = query_queue(conn, f, NOW)
    assert ids_of(rows) == oracle(conn, f)
    assert rows, f"fixture has no {tab} rows"
    keys = [(r["priority"], r["reported_at"]) for r in rows]
    assert keys == sorted(keys)
    assert all(r["status"] not in TERMINAL_STATUSES for r in rows)


def test_tabs_are_nested(replica):
    _, conn, _ = replica
    tab_ids = {t: set(ids_of(query_queue(conn, QueueFilter(tab=t), NOW))) for t in ("pending", "open", "overdue")}
    assert tab_ids["pending"] <= tab_ids["open"]
    assert tab_ids["overdue"] <= tab_ids["open"]
    assert {r["status"] for r in query_queue(conn, QueueFilter(tab="pending"), NOW)} == {
        "reported", "accepted", "returned"
    }


def test_row_columns(replica):
    _, conn, ids = replica
    rows = query_queue(conn, QueueFilter(tab="open", limit=1000), NOW)
    need = {
        "id", "uid", "title", "category", "category_name", "class", "priority", "status", "source",
        "street_code", "street_name", "grid_id", "address", "reported_at", "handle_due_at",
        "arrival_due_at", "drill_id", "is_drill",
    }
    assert need <= set(rows[0])
    by_id = {r["id"]: r for r in rows}
    xss = by_id[ids["xss"]]
    assert xss["title"] == "<img src=x onerror=alert(1)>"
    assert xss["category_name"] == "暴露垃圾" and xss["street_name"] == "城东街道"
    assert any(r["is_drill"] and r["drill_id"] == 1 for r in rows)
    assert all(r["is_drill"] == (r["drill_id"] is not None) for r in rows)


def test_clock_rules_in_overdue_tab(replica):
    _, conn, ids = replica
    overdue = set(ids_of(query_queue(conn, QueueFilter(tab="overdue"), NOW)))
    for name in ("handled_late", "arrival_broken", "arrival_late", "response_broken", "response_late",
                 "deferred_after_due"):
        assert ids[name] in overdue, name
    for name in ("deferred_before_due", "handled_on_time", "arrival_met", "soon",
                 "closed_late"):  # closed: terminal
        assert ids[name] not in overdue, name


def test_limit(replica):
    _, conn, _ = replica
    assert len(query_queue(conn, QueueFilter(tab="open", limit=5), NOW)) == 5
    assert query_queue(conn, QueueFilter(tab="open", limit=0), NOW) == []


# -- filters -------------------------------------------------------------------------------------
FILTERS = [
    QueueFilter(tab="open", street=S1),
    QueueFilter(tab="open", street=S2),
    QueueFilter(tab="open", category="A"),
    QueueFilter(tab="open", category="A.02"),
    QueueFilter(tab="open", category="B"),
    QueueFilter(tab="open", category="AB"),
    QueueFilter(tab="open", source="hotline_12345"),
    QueueFilter(tab="open", source="video_ai"),
    QueueFilter(tab="open", klass="emergency"),
    QueueFilter(tab="open", klass="assigned"),
    QueueFilter(tab="open", window="1h"),
    QueueFilter(tab="open", window="24h"),
    QueueFilter(tab="open", window="7d"),
    QueueFilter(tab="open", window="30d"),
    QueueFilter(tab="open", include_drills=False),
    QueueFilter(tab="open", scope_street=S2),
    QueueFilter(tab="overdue", scope_street=S1, category="A"),
    QueueFilter(tab="pending", street=S1, window="7d", include_drills=False),
    QueueFilter(tab="pending", source="grid_app", klass="ordinary"),
]


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: ",".join(
    f"{k}={v}" for k, v in vars(f).items() if v not in (None, "", True, 500)
))
def test_filters_match_oracle(replica, f):
    _, conn, _ = replica
    got = ids_of(query_queue(conn, f, NOW))
    assert got == oracle(conn, f)


def test_filters_narrow(replica):
    _, conn, _ = replica
    all_open = query_queue(conn, QueueFilter(tab="open", limit=1000), NOW)
    for f, check in [
        (QueueFilter(tab="open", street=S2), lambda r: r["street_code"] == S2),
        (QueueFilter(tab="open", category="A"), lambda r: r["category"] in ("A", "A.01", "A.02")),
        (QueueFilter(tab="open", source="citymgmt"), lambda r: r["source"] == "citymgmt"),
        (QueueFilter(tab="open", klass="emergency"), lambda r: r["class"] == "emergency"),
        (QueueFilter(tab="open", include_drills=False), lambda r: r["drill_id"] is None),
    ]:
        rows = query_queue(conn, f.with_(limit=1000), NOW)
        assert rows and len(rows) < len(all_open)
        assert all(check(r) for r in rows)
        assert ids_of(rows) == [r["id"] for r in all_open if check(r)]


def test_parent_category_does_not_match_prefix_siblings(replica):
    _, conn, _ = replica
    cats = {r["category"] for r in query_queue(conn, QueueFilter(tab="open", category="A"), NOW)}
    assert cats == {"A", "A.01", "A.02"}  # not 'AB'


def test_windows_are_nested(replica):
    _, conn, _ = replica
    sizes = [len(query_queue(conn, QueueFilter(tab="open", window=w), NOW)) for w in ("1h", "24h", "7d", "30d", None)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_scope_street_is_enforced(replica):
    _, conn, _ = replica
    rows = query_queue(conn, QueueFilter(tab="open", scope_street=S1), NOW)
    assert rows and {r["street_code"] for r in rows} == {S1}
    # a street station cannot widen its scope by choosing another street
    assert query_queue(conn, QueueFilter(tab="open", scope_street=S1, street=S2), NOW) == []
    assert count_tabs(conn, QueueFilter(scope_street=S1, street=S2), NOW) == {"pending": 0, "open": 0, "overdue": 0}


def test_unknown_tab_or_window_is_an_error(replica):
    _, conn, _ = replica
    with pytest.raises(ValueError):
        query_queue(conn, QueueFilter(tab="nope"), NOW)
    with pytest.raises(ValueError):
        query_queue(conn, QueueFilter(window="2h"), NOW)


# -- text search ---------------------------------------------------------------------------------
def test_fts_search_chinese(replica):
    _, conn, _ = replica
    f = QueueFilter(tab="open", text="信号灯", limit=1000)
    sql, _ = queue_sql(f, NOW)
    assert "events_fts MATCH" in sql
    rows = query_queue(conn, f, NOW)
    assert rows and all("信号灯" in r["title"] for r in rows)
    assert ids_of(rows) == oracle(conn, f)


def test_fts_search_address(replica):
    _, conn, _ = replica
    f = QueueFilter(tab="open", text="濠河风景", limit=1000)
    rows = query_queue(conn, f, NOW)
    assert rows and all("濠河风景" in r["address"] for r in rows)


def test_two_char_search_falls_back_to_like(replica):
    _, conn, _ = replica
    f = QueueFilter(tab="open", text="消防", limit=1000)
    sql, params = queue_sql(f, NOW)
    assert "MATCH" not in sql and params["like"] == "%消防%"
    rows = query_queue(conn, f, NOW)
    # '消防' is in titles (消防通道被占用) and in an address (青年中路消防站旁)
    assert rows and all("消防" in r["title"] or "消防" in (r["address"] or "") for r in rows)
    assert any("消防" not in r["title"] for r in rows)
    assert ids_of(rows) == oracle(conn, f)


def test_like_wildcards_are_literal(replica):
    _, conn, ids = replica
    assert ids_of(query_queue(conn, QueueFilter(tab="open", text="%"), NOW)) == [ids["percent"]]
    assert query_queue(conn, QueueFilter(tab="open", text="_"), NOW) == []
    assert like_pattern("a%b_c\\") == "%a\\%b\\_c\\\\%"


def test_quotes_are_matched_literally(replica):
    _, conn, ids = replica
    assert fts_phrase('a"b') == '"a""b"'
    assert ids_of(query_queue(conn, QueueFilter(tab="open", text='含"引号"'), NOW)) == [ids["quote"]]
    # an attempt to inject FTS syntax is just a phrase that matches nothing
    assert query_queue(conn, QueueFilter(tab="open", text='信号灯" OR "暴露'), NOW) == []


HOSTILE = [
    '"', '""', '"""', 'a"b', "NOT", "AND", "OR", "a OR b", "NEAR(a b)", "*", "abc*", "title:abc",
    "{title}:abc", "^abc", "(", ")", "-abc", "+abc", "'", "';DROP TABLE events;--", "\\", "%_%",
    "信号灯\" OR \"消防", "\x00abc", "\ud800abc", "   ", "\t信号\n", "<img src=x onerror=alert(1)>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_text_does_not_raise(replica, text):
    _, conn, _ = replica
    for tab in ("pending", "open", "overdue"):
        query_queue(conn, QueueFilter(tab=tab, text=text), NOW)
    count_tabs(conn, QueueFilter(text=text), NOW)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=12))
def test_any_search_text_does_not_raise(replica, text):
    _, conn, _ = replica
    rows = query_queue(conn, QueueFilter(tab="open", text=text), NOW)
    counts = count_tabs(conn, QueueFilter(text=text), NOW)
    assert len(rows) == counts["open"]


def test_search_by_id_and_external_id(replica):
    _, conn, ids = replica
    rows = query_queue(conn, QueueFilter(tab="open", text=str(ids["soon"])), NOW)
    assert ids["soon"] in ids_of(rows)
    ext = conn.execute(
        f"SELECT id, external_id FROM events e WHERE external_id IS NOT NULL AND {OPEN_TERM} LIMIT 1"
    ).fetchone()
    rows = query_queue(conn, QueueFilter(tab="open", text=ext["external_id"]), NOW)
    assert ids_of(rows) == [ext["id"]]
    uid = conn.execute("SELECT uid FROM events WHERE id = ?", (ids["soon"],)).fetchone()[0]
    assert ids["soon"] in ids_of(query_queue(conn, QueueFilter(tab="open", text=uid), NOW))


# -- counts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("f", FILTERS[:8] + [QueueFilter(text="信号灯"), QueueFilter(text="消防")])
def test_counts_match_queries(replica, f):
    _, conn, _ = replica
    counts = count_tabs(conn, f, NOW)
    for tab in ("pending", "open", "overdue"):
        assert counts[tab] == len(query_queue(conn, f.with_(tab=tab, limit=10_000), NOW)), tab


# -- query plans ---------------------------------------------------------------------------------
def plan(conn, sql, params) -> str:
    return "\n".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_open_tab_uses_partial_index(replica):
    _, conn, _ = replica
    p = plan(conn, *queue_sql(QueueFilter(tab="open"), NOW))
    assert "ix_events_open" in p and "TEMP B-TREE" not in p
    p = plan(conn, *queue_sql(QueueFilter(tab="open", street=S1), NOW))
    assert "ix_events_open_street (street_code=?)" in p and "TEMP B-TREE" not in p
    p = plan(conn, *queue_sql(QueueFilter(tab="open", scope_street=S1), NOW))
    assert "ix_events_open_street (street_code=?)" in p


_PLAN_FILTERS = [
    dict(),
    dict(street=S1),
    dict(category="A"),
    dict(source="iot"),
    dict(klass="emergency"),
    dict(window="1h"),
    dict(include_drills=False),
    dict(text="信号灯"),
    dict(text="消防"),
    dict(text="12345"),
    dict(street=S2, category="B", source="iot", klass="assigned", window="24h", include_drills=False, text="信号灯"),
]


@pytest.mark.parametrize(("tab", "kw"), list(itertools.product(["pending", "open", "overdue"], _PLAN_FILTERS)))
def test_every_queue_query_walks_an_open_partial_index(replica, tab, kw):
    _, conn, _ = replica
    p = plan(conn, *queue_sql(QueueFilter(tab=tab, **kw), NOW))
    first = p.splitlines()[0]
    # never a scan of the whole table / the closed history: an open-only or pending-only partial index
    assert "ix_events_open" in first or (tab == "pending" and "ix_events_pending" in first), p
    assert "TEMP B-TREE" not in p, p  # the index gives the order
    p = plan(conn, *counts_sql(QueueFilter(**kw), NOW))
    assert "ix_events_open" in p and "SCAN e\n" not in p + "\n", p


# -- clocks and countdowns -----------------------------------------------------------------------
def test_due_state():
    base = {"status": "acknowledged", "reported_at": at(-3)}
    assert due_state({**base, "handle_due_at": at(-0.01)}, NOW) == "overdue"
    assert due_state({**base, "handle_due_at": at(1.99)}, NOW) == "soon"
    assert due_state({**base, "handle_due_at": at(2)}, NOW) == "soon"
    assert due_state({**base, "handle_due_at": at(2.01)}, NOW) == "ok"
    assert due_state({**base, "handle_due_at": None}, NOW) == "ok"
    assert due_state({**base, "arrival_due_at": at(-0.1), "handle_due_at": at(20)}, NOW) == "overdue"
    deferred = {"status": "deferred", "handle_due_at": at(-5)}
    assert due_state({**deferred, "deferred_at": at(-6)}, NOW) == "ok"  # suspended before the deadline
    assert due_state({**deferred, "handle_due_at": at(1), "deferred_at": at(-6)}, NOW) == "ok"  # not 'soon'
    assert due_state({**deferred, "deferred_at": at(-4)}, NOW) == "overdue"  # deferred when already late
    assert due_state(deferred, NOW) == "overdue"  # no deferred_at: suspended now
    assert due_state({**deferred, "arrival_due_at": at(-1)}, NOW) == "overdue"  # arrival never suspended
    handled = {"status": "handled", "handle_due_at": at(-2)}
    assert due_state({**handled, "handled_at": at(-3)}, NOW) == "ok"
    assert due_state({**handled, "handled_at": at(-1)}, NOW) == "overdue"
    assert due_state({"status": "handled", "handled_at": at(-1), "handle_due_at": at(1)}, NOW) == "ok"
    assert due_state({"status": "on_site", "on_site_at": at(-1), "arrival_due_at": at(-2)}, NOW) == "overdue"
    assert due_state({"status": "accepted", "accepted_at": at(-1), "response_due_at": at(-0.5)}, NOW) == "ok"
    assert due_state({"status": "closed", "handle_due_at": at(-5)}, NOW) == "ok"
    assert due_state({**base, "handle_due_at": at(-1)}, T0) == "overdue"  # datetime accepted


def test_countdown_text():
    assert countdown_text(at(1 + 23 / 60 + 5 / 3600), NOW) == "剩余 1:23:05"
    assert countdown_text(at(-(2 + 10 / 60)), NOW) == "超时 2:10:00"
    assert countdown_text(NOW, NOW) == "剩余 0:00:00"
    assert countdown_text(at(50), NOW) == "剩余 2天02:00:00"
    assert countdown_text(None, NOW) == ""


def test_deadline_text():
    assert deadline_text({"status": "acknowledged", "handle_due_at": at(1)}, NOW) == "剩余 1:00:00"
    assert deadline_text({"status": "dispatched", "arrival_due_at": at(1 / 6), "handle_due_at": at(5)}, NOW) == (
        "到场剩余 0:10:00"
    )
    assert deadline_text({"status": "reported", "response_due_at": at(-0.5), "handle_due_at": at(5)}, NOW) == (
        "响应超时 0:30:00"
    )
    # a red row reads 超时 even when the broken clock has stopped
    assert deadline_text({"status": "on_site", "on_site_at": at(-0.05), "arrival_due_at": at(-0.3),
                          "handle_due_at": at(5)}, NOW) == "到场超时 0:15:00"
    assert deadline_text({"status": "on_site", "on_site_at": at(-0.5), "arrival_due_at": at(-0.3),
                          "handle_due_at": at(5)}, NOW) == "剩余 5:00:00"
    assert deadline_text({"status": "deferred", "deferred_at": at(-10), "handle_due_at": at(-5)}, NOW) == (
        "缓办 剩余 5:00:00"
    )
    assert deadline_text({"status": "deferred", "deferred_at": at(-3), "handle_due_at": at(-5)}, NOW) == (
        "缓办 超时 2:00:00"
    )
    assert deadline_text({"status": "handled", "handled_at": at(-3), "handle_due_at": at(-2)}, NOW) == "按时处置"
    assert deadline_text({"status": "verified", "handled_at": at(-1), "handle_due_at": at(-2)}, NOW) == (
        "超时 1:00:00"
    )
    assert deadline_text({"status": "accepted"}, NOW) == "—"


def test_overdue_tab_agrees_with_due_state(replica):
    _, conn, _ = replica
    for r in query_queue(conn, QueueFilter(tab="open", limit=1000), NOW):
        in_tab = r["id"] in set(ids_of(query_queue(conn, QueueFilter(tab="overdue", limit=1000), NOW)))
        assert in_tab == (due_state(r, NOW) == "overdue"), r


# -- labels --------------------------------------------------------------------------------------
def test_labels():
    assert labels.label("source", "hotline_12345") == "12345热线"
    assert labels.label("source", "video_ai") == "雪亮视频AI"
    assert labels.label("source", "ecology_eye", "en") == "Yangtze ecology eye"
    assert labels.label("class", "assigned") == "交办"
    assert labels.label("status", "on_site") == "到场"
    assert labels.label("status", "rejected", "en") == "Rejected"
    assert labels.label("priority", 1) == "Ⅰ级"
    assert labels.label("priority", "4") == "Ⅳ级"
    assert labels.label("window", None) == "全部"
    assert labels.label("source", "new_feed") == "new_feed"  # unknown codes stay visible
    assert labels.label("status", None) == ""
    assert set(labels.STATUSES) == set(STATUSES) and len(STATUSES) == 12
    assert [c for c, _ in labels.choices("class")] == ["ordinary", "emergency", "assigned"]
    with pytest.raises(KeyError):
        labels.label("colour", "red")


def test_queue_modules_are_qt_free():
    code = "import sys, app.queue, app.labels; sys.exit(any(m.startswith('PySide6') for m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_queue_reader_reuses_counts_only_when_nothing_changed(tmp_path):
    rep = open_replica(tmp_path / "r.db")
    with rep.write("events") as c:
        insert_event(c, status="reported")
        insert_event(c, status="dispatched", handle_due_at=at(-1))
    t = {"now": 0.0}
    reader = QueueReader(rep.reader(), counts_max_age_s=30, clock=lambda: t["now"])
    first = reader.load(QueueFilter(tab="pending"), NOW)
    assert not first.counts_cached and first.counts == {"pending": 1, "open": 2, "overdue": 1}
    # only the tab changed: counts reused, rows fresh
    snap = reader.load(QueueFilter(tab="overdue"), NOW)
    assert snap.counts_cached and snap.counts == first.counts and len(snap.rows) == 1
    # another filter: recounted
    assert not reader.load(QueueFilter(tab="overdue", source="iot"), NOW).counts_cached
    reader.load(QueueFilter(tab="pending"), NOW)
    # a commit elsewhere: recounted
    with rep.write("events") as c:
        insert_event(c, status="accepted")
    snap = reader.load(QueueFilter(tab="open"), NOW)
    assert not snap.counts_cached and snap.counts["pending"] == 2 and len(snap.rows) == 3
    # time passes: recounted (overdue moves with the clock)
    assert reader.load(QueueFilter(tab="pending"), NOW).counts_cached
    t["now"] = 31.0
    assert not reader.load(QueueFilter(tab="pending"), NOW).counts_cached
    reader.conn.close()
    rep.close()


def test_load_queue_snapshot(replica):
    _, conn, _ = replica
    snap = load_queue(conn, QueueFilter(tab="open", limit=5), NOW)
    assert len(snap.rows) == 5 and snap.truncated and snap.counts["open"] > 5
    assert snap.now == NOW and snap.query_ms >= 0 and not conn.in_transaction


# -- the same clocks as app.clocks ---------------------------------------------------------------
_OPEN = [st_ for st_ in STATUSES if st_ not in TERMINAL_STATUSES]
_offset = st.one_of(st.none(), st.integers(min_value=-72 * 60, max_value=72 * 60))


@settings(max_examples=400, deadline=None)
@given(
    status=st.sampled_from(_OPEN),
    response_due=_offset, arrival_due=_offset, handle_due=_offset,
    accepted=_offset, on_site=_offset, handled=_offset, deferred=_offset,
)
def test_due_state_agrees_with_app_clocks(status, response_due, arrival_due, handle_due, accepted, on_site,
                                          handled, deferred):
    from app.clocks import sla_state

    def ts(minutes):
        return None if minutes is None else at(minutes / 60)

    row = {
        "status": status, "reported_at": at(-80), "response_due_at": ts(response_due),
        "arrival_due_at": ts(arrival_due), "handle_due_at": ts(handle_due), "accepted_at": ts(accepted),
        "on_site_at": ts(on_site), "handled_at": ts(handled), "deferred_at": ts(deferred), "rejected_at": None,
    }
    assert due_state(row, NOW) == sla_state(row, NOW)["state"]


def test_overdue_sql_agrees_with_app_clocks(replica):
    from app.clocks import sla_state

    _, conn, _ = replica
    overdue = set(ids_of(query_queue(conn, QueueFilter(tab="overdue", limit=10_000), NOW)))
    rows = [r for r in all_rows(conn) if r["status"] not in TERMINAL_STATUSES]
    assert overdue == {r["id"] for r in rows if sla_state(r, NOW)["state"] == "overdue"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from(STATUSES),
    response_due=_offset, arrival_due=_offset, handle_due=_offset,
    accepted=_offset, on_site=_offset, handled=_offset, deferred=_offset,
)
def test_overdue_sql_agrees_with_python_on_any_row(replica, status, response_due, arrival_due, handle_due,
                                                   accepted, on_site, handled, deferred):
    rep, conn, _ = replica

    def ts(minutes):
        return None if minutes is None else at(minutes / 60)

    with rep.write("events") as w:
        event_id = insert_event(
            w, uid="PROP", status=status, response_due_at=ts(response_due), arrival_due_at=ts(arrival_due),
            handle_due_at=ts(handle_due), accepted_at=ts(accepted), on_site_at=ts(on_site),
            handled_at=ts(handled), deferred_at=ts(deferred),
        )
    try:
        row = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        in_tab = event_id in ids_of(query_queue(conn, QueueFilter(tab="overdue", text=str(event_id)), NOW))
        expected_in_tab = status not in TERMINAL_STATUSES and due_state(dict(row), NOW) == "overdue"
        assert in_tab == expected_in_tab
    finally:
        with rep.write("events") as w:
            w.execute("DELETE FROM events WHERE id = ?", (event_id,))
