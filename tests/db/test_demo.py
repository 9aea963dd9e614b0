"""Generator invariants on a small demo replica (5,000 events)."""

import sqlite3

import numpy as np
import pytest
import shapely

from app.lifecycle import OVERLAYS, TRANSITIONS
from db.demo.generate import DemoOptions, generate_demo_file
from db.replica import ReplicaError
from tests.conftest import DEMO_EVENTS, DEMO_SEED, DEMO_UNTIL

STAGES = ["reported_at", "accepted_at", "dispatched_at", "acknowledged_at", "on_site_at", "handled_at",
          "verified_at", "closed_at"]  # fmt: skip


@pytest.fixture(scope="module")
def conn(demo_db):
    c = sqlite3.connect(demo_db)
    c.row_factory = sqlite3.Row
    yield c
    c.close()


def count(conn, sql, *args):
    return conn.execute(sql, args).fetchone()[0]


def test_organisation_counts(conn):
    assert count(conn, "SELECT count(*) FROM streets") == 16
    codes = {r[0] for r in conn.execute("SELECT code FROM streets")}
    assert codes == {f"3206130{n:02d}" for n in [*range(1, 11), *range(16, 22)]}
    assert count(conn, "SELECT count(*) FROM communities") == 179
    assert count(conn, "SELECT count(*) FROM grids") == 824
    assert count(conn, "SELECT count(DISTINCT kind) FROM grids") == 5
    assert count(conn, "SELECT count(*) FROM grids WHERE population <= 0 OR households <= 0") == 0
    assert count(conn, "SELECT count(*) FROM departments") >= 28
    assert count(conn, "SELECT count(*) FROM people WHERE role = 'grid_leader'") == 824
    assert count(conn, "SELECT count(DISTINCT kind) FROM devices") == 4
    assert count(conn, "SELECT count(*) FROM places WHERE kind = 'estate'") > 300
    assert count(conn, "SELECT count(*) FROM neighbourhoods") > 824
    assert conn.execute("SELECT value FROM meta WHERE key='demo'").fetchone()[0] == "1"


def test_events_count_sources_classes(conn):
    assert count(conn, "SELECT count(*) FROM events WHERE drill_id IS NULL") == DEMO_EVENTS  # + demo drill events
    assert count(conn, "SELECT count(DISTINCT class) FROM events") == 3
    assert count(conn, "SELECT count(DISTINCT source) FROM events") >= 6
    assert count(conn, "SELECT count(*) FROM events WHERE status = 'closed'") > DEMO_EVENTS * 0.7
    open_n = count(conn, "SELECT count(*) FROM events WHERE status NOT IN ('closed','rejected','merged')")
    assert 0 < open_n < DEMO_EVENTS * 0.2
    overdue = count(
        conn, "SELECT count(*) FROM events WHERE status NOT IN ('closed','rejected','merged','handled','verified') "
        "AND handle_due_at < ?", "2026-11-20T15:30:00+08:00")
    assert overdue > 0
    assert count(conn, "SELECT count(*) FROM events WHERE reported_at > '2026-11-20T15:30:00+08:00'") == 0
    assert count(conn, "SELECT count(*) FROM events WHERE reported_at < '2026-08-21'") == 0
    # some descriptions carry names or phone numbers, as real ones do
    assert count(conn, "SELECT count(*) FROM events WHERE description GLOB '*1[3-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]*'") > 0


def test_every_event_inside_its_grid(conn):
    grids = {r["id"]: shapely.from_geojson(r["geometry"]) for r in conn.execute("SELECT id, geometry FROM grids")}
    rows = conn.execute("SELECT grid_id, lon, lat, street_code FROM events").fetchall()
    bad = [r for r in rows if not grids[r["grid_id"]].covers(shapely.Point(r["lon"], r["lat"]))]
    assert bad == []
    street_of = dict(conn.execute("SELECT id, street_code FROM grids").fetchall())
    assert all(street_of[r["grid_id"]] == r["street_code"] for r in rows)


def test_stage_timestamps_in_order_and_consistent_with_status(conn):
    for r in conn.execute("SELECT * FROM events"):
        times = [r[c] for c in STAGES if r[c] is not None]
        assert times == sorted(times), r["id"]
        if r["status"] == "closed":
            assert all(r[c] for c in STAGES), r["id"]
        if r["status"] == "reported":
            assert r["accepted_at"] is None


def test_event_log_is_a_valid_chain(conn):
    logs: dict[int, list] = {}
    for row in conn.execute("SELECT event_id, action, from_status, to_status, at FROM event_log ORDER BY id"):
        logs.setdefault(row[0], []).append(row)
    status_of = dict(conn.execute("SELECT id, status FROM events").fetchall())
    assert set(logs) == set(status_of)
    for eid, chain in logs.items():
        assert chain[0]["action"] == "report"
        status = "reported"
        prev_at = chain[0]["at"]
        for step in chain[1:]:
            assert step["at"] >= prev_at
            prev_at = step["at"]
            if step["action"] in OVERLAYS:
                assert step["from_status"] == step["to_status"] == status
                continue
            assert step["from_status"] == status
            assert TRANSITIONS[status][step["action"]] == step["to_status"]
            status = step["to_status"]
        assert status == status_of[eid]


def test_fts_finds_chinese_text(conn):
    n = count(conn, "SELECT count(*) FROM events_fts WHERE events_fts MATCH '\"信号灯\"'")
    assert n == count(conn, "SELECT count(*) FROM events WHERE title LIKE '%信号灯%' OR description LIKE '%信号灯%' "
                            "OR address LIKE '%信号灯%'")  # fmt: skip
    assert n > 0


def test_same_seed_and_until_give_identical_data(demo_db, tmp_path):
    other = tmp_path / "again.db"
    generate_demo_file(other, DemoOptions(seed=DEMO_SEED, until=DEMO_UNTIL, events=DEMO_EVENTS))
    a, b = sqlite3.connect(demo_db), sqlite3.connect(other)
    for table in ("streets", "communities", "grids", "people", "devices", "places", "events", "event_log"):
        qa = a.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        qb = b.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        assert qa == qb, table
    a.close()
    b.close()


def test_existing_replica_is_not_replaced_without_force(demo_copy):
    before = demo_copy.stat().st_size
    with pytest.raises(ReplicaError, match="--force"):
        generate_demo_file(demo_copy, DemoOptions(seed=1, until=DEMO_UNTIL, events=10))
    assert demo_copy.stat().st_size == before


def test_points_spread_like_population(conn):
    lon = np.array([r[0] for r in conn.execute("SELECT lon FROM events")])
    # the old city core (east of 120.83, west of 120.92) holds a large share of events
    assert ((lon > 120.83) & (lon < 120.92)).mean() > 0.3


def test_whistles_with_department_check_ins(conn):
    n = count(conn, "SELECT count(*) FROM whistles")
    assert n > 10
    assert count(conn, "SELECT count(*) FROM whistle_departments") >= n
    late = count(conn, "SELECT count(*) FROM whistle_departments WHERE late = 1")
    assert 0 < late < count(conn, "SELECT count(*) FROM whistle_departments")
    # every check-in row has its log row, and the log's whistle ids exist
    logged = count(conn, "SELECT count(*) FROM event_log WHERE action = 'check_in'")
    assert logged == count(conn, "SELECT count(*) FROM whistle_departments WHERE checked_in_at IS NOT NULL")
    assert count(conn, "SELECT count(*) FROM whistles w JOIN events e ON e.id = w.event_id") == n
