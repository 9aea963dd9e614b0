"""The KPI rollups stay equal to a rebuild from ``events`` through every write path."""

from __future__ import annotations

import datetime as dt
import os
import random

from app.lifecycle import TRANSITIONS
from db import event_ops, kpi_rollups
from db.replica import open_replica


def _rebuilt(rep) -> dict:
    """Rollups recomputed from scratch, in a transaction that is rolled back."""
    conn = rep.writer
    conn.execute("BEGIN IMMEDIATE")
    try:
        kpi_rollups.rebuild(conn, helpers=True)
        return kpi_rollups.snapshot(conn)
    finally:
        conn.execute("ROLLBACK")


def test_demo_rollups_equal_a_rebuild(demo_db):
    rep = open_replica(demo_db)
    try:
        live = kpi_rollups.snapshot(rep.writer)
        assert (
            live["kpi_daily"]
            and live["kpi_hourly"]
            and live["kpi_counts_daily"]
            and live["kpi_arrival_daily"]
        )
        assert live == _rebuilt(rep)
        # the helper columns were backfilled from the log
        conn = rep.writer
        assert conn.execute("SELECT count(*) FROM events WHERE deferrals > 0").fetchone()[0] > 0
        assert (
            conn.execute(
                "SELECT count(*) FROM events WHERE satisfaction IS NOT NULL AND evaluated_at IS NULL"
            ).fetchone()[0]
            == 0
        )
    finally:
        rep.close()


def _payload(action: str, rng: random.Random, conn, eid: int) -> dict | None:
    if action in ("dispatch", "rework"):
        dept = rng.choice(["CITYMGMT", "PSB", "MUNICIPAL", "FIRE"])
        return {"target_kind": "department", "target": dept}
    if action == "merge":
        others = [r[0] for r in conn.execute(
            "SELECT id FROM events WHERE id <> ? AND status NOT IN ('merged', 'rejected') LIMIT 50", (eid,))]  # fmt: skip
        return {"into": rng.choice(others)}
    return None


SEED = int(os.environ.get("KPI_TEST_SEED", "6"))


def test_random_operations_keep_rollups_equal_to_a_rescan(demo_copy):
    rep = open_replica(demo_copy)
    rng = random.Random(SEED)
    conn = rep.reader()
    grids = rng.sample(conn.execute("SELECT lon, lat FROM grids ORDER BY id").fetchall(), 20)
    base = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    t = base
    new_ids = []
    for i in range(30):  # new reports, a few of them drills
        t += dt.timedelta(minutes=rng.randint(1, 50))
        g = rng.choice(grids)
        cat = rng.choice(["ORDER.VENDOR", "ENV.GARBAGE", "FAC", "DISPUTE"])
        new_ids.append(event_ops.create_event(
            rep, {"source": rng.choice(["grid_app", "hotline_12345"]), "category": cat, "lon": g[0], "lat": g[1],
                  "reported_at": t.isoformat()}, actor="t"))  # fmt: skip
        assert i >= 0
    open_ids = rng.sample([r[0] for r in conn.execute(
        "SELECT id FROM events WHERE status NOT IN ('closed', 'rejected', 'merged') ORDER BY id")], 60)  # fmt: skip
    pool = new_ids + open_ids
    done = 0
    for _ in range(400):
        eid = rng.choice(pool)
        status, version = conn.execute("SELECT status, version FROM events WHERE id = ?", (eid,)).fetchone()
        legal = list(TRANSITIONS[status])
        overlay = rng.random() < 0.2 and status in ("handled", "verified", "closed")
        if not legal and not overlay:
            continue
        t += dt.timedelta(minutes=rng.randint(1, 90))
        if overlay:
            action, payload = "evaluate", {"satisfaction": rng.randint(1, 5)}
        else:
            action = rng.choice(legal)
            payload = _payload(action, rng, conn, eid)
        note = "理由" if action in ("reject", "return", "defer", "rework") else None
        event_ops.apply_action(rep, eid, action, actor="t", expected_version=version, note=note, payload=payload,
                               at=t.isoformat())  # fmt: skip
        done += 1
    # an extension and a direct UPDATE (as an importer would write)
    with rep.write("events") as w:
        w.execute("UPDATE events SET street_code = (SELECT code FROM streets ORDER BY code DESC LIMIT 1), "
                  "satisfaction = 2 WHERE id = ?", (new_ids[0],))  # fmt: skip
    conn.close()
    assert done > 200
    assert kpi_rollups.snapshot(rep.writer) == _rebuilt(rep)
    rep.close()


def test_odd_rows_written_directly_count_as_zero_not_null(demo_copy):
    """Rows an importer or a test writes by hand (closed without closed_at, no deadline …) never
    break the write: an undefined term counts 0."""
    rep = open_replica(demo_copy)
    try:
        with rep.write("events") as w:
            eid = w.execute("SELECT id FROM events WHERE status = 'closed' LIMIT 1").fetchone()[0]
            w.execute("UPDATE events SET closed_at = NULL, handle_due_at = '2026-01-01T09:00:00+08:00', "
                      "on_site_at = 'not a time' WHERE id = ?", (eid,))  # fmt: skip
            w.execute("UPDATE events SET satisfaction = NULL, evaluated_at = '2026-01-02T09:00:00+08:00' "
                      "WHERE id = ?", (eid + 1,))  # fmt: skip
        assert kpi_rollups.snapshot(rep.writer) == _rebuilt(rep)
    finally:
        rep.close()


def test_subtracting_then_adding_contributions_equals_the_update_trigger(demo_copy):
    """The bulk updater's arithmetic: without the update trigger, subtract a set's contributions,
    change the rows, add them back: the rollups equal a rescan (and what the trigger gives)."""
    rep = open_replica(demo_copy)
    try:
        conn = rep.writer
        conn.execute("BEGIN IMMEDIATE")
        ids = [r[0] for r in conn.execute("SELECT id FROM events WHERE status = 'on_site' LIMIT 40")]
        assert len(ids) == 40
        trig = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'kpi_events_au'").fetchone()[0]
        conn.execute("DROP TRIGGER kpi_events_au")
        where = f"e.id IN ({', '.join(map(str, ids))})"
        kpi_rollups.add_contributions(conn, where, sign=-1)
        conn.execute(f"UPDATE events SET status = 'handled', handled_at = '2026-11-20T10:00:00+08:00' WHERE id IN "
                     f"({', '.join(map(str, ids))})")  # fmt: skip
        kpi_rollups.add_contributions(conn, where)
        conn.execute(trig)
        conn.execute("COMMIT")
        live = kpi_rollups.snapshot(conn)
        assert live == _rebuilt(rep)
        try:
            kpi_rollups.add_contributions(conn, "1", sign=-1)
        except ValueError:
            pass
        else:
            raise AssertionError("subtracting every event is refused")
    finally:
        rep.close()
