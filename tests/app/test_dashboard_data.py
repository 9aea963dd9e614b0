"""Dashboard data (app/dashboard_data.py): scopes, empty windows, drills, masking."""

import datetime as dt
import math
import sqlite3

from app import masking
from app.dashboard_data import Scope, event_point, load_dashboard, ticker_rows
from tests.conftest import DEMO_UNTIL

STREET = "320613006"


def _conn(path):
    conn = sqlite3.connect(path)
    return conn


def test_district_dashboard_has_numbers_and_no_nan(demo_db):
    conn = _conn(demo_db)
    d = load_dashboard(conn, Scope(), now=DEMO_UNTIL)
    assert len(d.hourly) == 24 and len(d.hourly_prev) == 24
    assert sum(n for _, _, n in d.by_source) > 0
    assert d.tiles and all(t.value is None or not math.isnan(t.value) for t in d.tiles)
    assert all(t.reason for t in d.tiles if t.value is None)
    assert len(d.streets) == 16 and not d.empty


def test_empty_window_gives_zeros_and_no_data(demo_db):
    conn = _conn(demo_db)
    d = load_dashboard(conn, Scope(), now=DEMO_UNTIL - dt.timedelta(days=3650))
    assert d.empty
    assert all(n == 0 for _, n in d.hourly)
    assert d.by_category == [] and d.arrival == []
    texts = [t.text() for t in d.tiles]
    assert "nan" not in " ".join(texts).lower()
    assert d.arrival_histogram()[1] == [0] * 30


def test_station_scope_never_shows_another_street(demo_db):
    conn = _conn(demo_db)
    d = load_dashboard(conn, Scope("street", STREET), now=DEMO_UNTIL)
    assert [r["code"] for r in d.streets] == [STREET]
    assert d.ticker and {r["street_code"] for r in d.ticker} == {STREET}
    rows = ticker_rows(conn, Scope("street", STREET), limit=200)
    assert {r["street_code"] for r in rows} == {STREET}


def test_drills_never_count(demo_db):
    conn = _conn(demo_db)
    rows = ticker_rows(conn, Scope(), limit=5000)
    assert all(r["drill_id"] is None for r in rows)


def test_wall_rows_are_masked(demo_db):
    conn = _conn(demo_db)
    names = [r[0] for r in conn.execute("SELECT reporter_name FROM events WHERE reporter_name IS NOT NULL")]
    rows = ticker_rows(conn, Scope(), limit=2000, mask=True)
    text = " ".join(f"{r['title']} {r['address']}" for r in rows)
    assert masking.find_personal(text, names) == []
    eid = rows[0]["id"]
    assert event_point(conn, eid, mask=True)["id"] == eid
    assert event_point(conn, 10**9) is None
