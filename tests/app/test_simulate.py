"""The live intake simulator (app/simulate.py) in-process: valid records, the mix, the rate,
reproducibility, and a second writer on the same replica file. No Qt, no subprocess."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import orjson
import pytest
import shapely

from app import simulate, timeutil
from app.lifecycle import STATES
from db import event_ops as ops
from db.replica import Replica, connect, open_replica


@pytest.fixture
def rep(demo_copy):
    r = open_replica(demo_copy)
    yield r
    r.close()


def check_sim_events(path) -> int:
    """Every ``SIM-%`` event of the replica at ``path`` is valid; returns how many there are."""
    conn = connect(path, readonly=True)
    try:
        polys = {r[0]: shapely.from_geojson(r[1]) for r in conn.execute("SELECT id, geometry FROM grids")}
        arrival = {r[0]: r[1] for r in conn.execute("SELECT code, arrival_clock FROM categories")}
        events = conn.execute("SELECT * FROM events WHERE external_id LIKE 'SIM-%' ORDER BY id").fetchall()
        for e in events:
            label = f"event #{e['id']} {e['external_id']}"
            assert e["status"] in STATES, label
            assert e["grid_id"] and e["street_code"] and e["community_code"], label
            assert polys[e["grid_id"]].covers(shapely.Point(e["lon"], e["lat"])), (
                f"{label}: point outside its grid"
            )
            assert e["reported_at"] and e["response_due_at"] and e["handle_due_at"], label
            assert e["response_due_at"] > e["reported_at"] and e["handle_due_at"] > e["reported_at"], label
            assert (e["arrival_due_at"] is not None) == bool(arrival[e["category"]]), label
            assert e["title"] and e["description"], label
            if e["src_datum"] == "GCJ-02":
                assert e["src_lon"] is not None and abs(e["src_lon"] - e["lon"]) > 1e-3, label
            rows = conn.execute(
                "SELECT action, at, actor, to_status FROM event_log WHERE event_id = ? ORDER BY id",
                (e["id"],),
            ).fetchall()
            assert rows and rows[0]["action"] == "report", f"{label}: the report row comes first"
            assert [r["at"] for r in rows] == sorted(r["at"] for r in rows), f"{label}: log times go back"
            assert all(r["actor"] for r in rows), label
            assert ops.status_replay(conn, e["id"]) == e["status"], f"{label}: log chain and status differ"
            assert e["version"] == len(rows), f"{label}: one version per logged change"
        return len(events)
    finally:
        conn.close()


def test_steps_write_valid_events_moves_and_lifecycle(rep, demo_copy):
    sim = simulate.Simulator(rep, rate_per_min=600, seed=11)
    try:
        rev0 = rep.writer.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()[0]
        log0 = rep.writer.execute("SELECT max(id) FROM event_log").fetchone()[0]
        records = [sim.step() for _ in range(240)]
    finally:
        sim.close()
    kinds = {k: sum(1 for r in records if r.ok and r.kind == k) for k in ("create", "step", "move")}
    assert sum(kinds.values()) + sim.stats.conflicts + sim.stats.refused == 240
    assert sim.stats.refused == 0, [r.text for r in records if not r.ok]
    assert 0.45 * 240 <= kinds["create"] <= 0.8 * 240, kinds  # 60 % plus fallbacks
    assert kinds["step"] >= 0.12 * 240 and kinds["move"] >= 0.06 * 240, kinds
    assert (sim.stats.created, sim.stats.steps, sim.stats.moves) == (
        kinds["create"],
        kinds["step"],
        kinds["move"],
    )

    assert check_sim_events(demo_copy) == kinds["create"]
    conn = rep.reader()
    try:
        ext = [r[0] for r in conn.execute("SELECT external_id FROM events WHERE external_id LIKE 'SIM-%'")]
        assert len(set(ext)) == len(ext) and all(x.startswith(f"SIM-{sim.run_id}-") for x in ext)
        # sources the demo uses, with its proportions roughly kept
        sources = dict(
            conn.execute("SELECT source, count(*) FROM events WHERE external_id LIKE 'SIM-%' GROUP BY source")
        )
        assert set(sources) <= {
            "grid_app",
            "hotline_12345",
            "citymgmt",
            "video_ai",
            "iot",
            "ecology_eye",
            "manual",
        }
        assert sources.get("grid_app", 0) + sources.get("hotline_12345", 0) > 0.4 * kinds["create"]
        # lifecycle steps: logged with a person uid (or 'simulator'), never before the report
        steps = conn.execute(
            "SELECT actor, action FROM event_log WHERE id > ? AND action <> 'report'", (log0,)
        ).fetchall()
        assert len(steps) == kinds["step"]
        uids = {r[0] for r in conn.execute("SELECT uid FROM people")}
        assert all(a == "simulator" or a in uids for a, _ in steps)
        # moves: people.rev bumped past the start revision, positions stamped, mostly inside the grid
        moved = conn.execute(
            "SELECT p.lon, p.lat, p.position_at, g.geometry FROM people p JOIN grids g ON g.id = p.grid_id "
            "WHERE p.role = 'grid_leader' AND p.rev > ?",
            (rev0,),
        ).fetchall()
        assert 0 < len(moved) <= kinds["move"]
        inside = sum(
            shapely.from_geojson(m["geometry"]).covers(shapely.Point(m["lon"], m["lat"])) for m in moved
        )
        assert inside >= 0.8 * len(moved)
        assert all(m["position_at"] for m in moved)
    finally:
        conn.close()


def test_unmapped_code_goes_to_unclassified_and_keeps_the_original(rep, monkeypatch):
    monkeypatch.setattr(simulate, "UNMAPPED_SHARE", 1.0)
    sim = simulate.Simulator(rep, rate_per_min=60, seed=3)
    try:
        rec = sim.step("create")
    finally:
        sim.close()
    assert rec.ok
    conn = rep.reader()
    try:
        cat = conn.execute("SELECT category FROM events WHERE id = ?", (rec.event_id,)).fetchone()[0]
        payload = conn.execute(
            "SELECT payload FROM event_log WHERE event_id = ? AND action = 'report'", (rec.event_id,)
        ).fetchone()[0]
    finally:
        conn.close()
    assert cat == "UNCLASSIFIED"
    assert orjson.loads(payload)["category_original"] == simulate.UNMAPPED_CODE


def test_same_seed_gives_the_same_reports(rep):
    a = simulate.Simulator(rep, rate_per_min=60, seed=42)
    b = simulate.Simulator(rep, rate_per_min=60, seed=42)
    try:
        ra = [a.new_record() for _ in range(20)]
        rb = [b.new_record() for _ in range(20)]
    finally:
        a.close()
        b.close()
    keys = ("source", "category", "title", "description", "lon", "lat", "datum", "address")
    assert [tuple(r[k] for k in keys) for r in ra] == [tuple(r[k] for k in keys) for r in rb]
    assert a.run_id != b.run_id  # external ids never collide between runs


def test_run_writes_the_first_event_at_once_and_keeps_the_rate(rep):
    sim = simulate.Simulator(rep, rate_per_min=1200, seed=5)
    try:
        t0 = time.monotonic()
        stats = sim.run(duration_s=3.0)
        took = time.monotonic() - t0
    finally:
        sim.close()
    # behaviour only (speed figures live in bench/): the first event does not wait for an arrival gap,
    # the run lasts its duration, and the count follows the rate
    assert stats.first_event_s is not None and stats.first_event_s < took / 2
    assert 2.9 <= took < 30
    assert 25 <= stats.records + stats.conflicts <= 100  # Poisson, mean 60
    assert stats.latencies_ms
    assert "events created" in stats.summary()


def test_stop_event_ends_run_promptly(rep):
    sim = simulate.Simulator(rep, rate_per_min=6, seed=1)  # one action every 10 s on average
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    try:
        t0 = time.monotonic()
        stats = sim.run(None, stop)
        took = time.monotonic() - t0
    finally:
        sim.close()
    assert took < 9.0  # well before the next arrival (mean gap 10 s) would have ended it
    assert stats.created >= 1  # the first event goes out at once


def test_bad_rate_and_empty_replica_are_refused(tmp_path):
    with pytest.raises(ValueError):
        simulate.Simulator(None, rate_per_min=0)
    r = open_replica(tmp_path / "empty.db")
    try:
        with pytest.raises(simulate.SimulatorError, match="no grids"):
            simulate.Simulator(r, rate_per_min=60)
    finally:
        r.close()


def _next(status: str) -> tuple[str, dict | None, str | None] | None:
    return {
        "reported": ("accept", None, None),
        "accepted": ("dispatch", {"target_kind": "street", "target": None}, None),
        "returned": ("dispatch", {"target_kind": "street", "target": None}, None),
        "dispatched": ("acknowledge", None, None),
        "acknowledged": ("arrive", None, None),
        "deferred": ("resume", None, None),
        "on_site": ("handle", None, None),
        "handled": ("verify", None, None),
        "verified": ("close", None, None),
    }.get(status)


def test_concurrent_writer_on_the_same_file_gets_only_conflicts(demo_copy):
    """The simulator and a second Replica (another console) act on the same events at once:
    busy_timeout serialises the writers; the only error either side sees is ConflictError."""
    sim_rep = Replica(demo_copy)
    other = Replica(demo_copy)
    sim = simulate.Simulator(sim_rep, rate_per_min=6000, seed=9)
    stop = threading.Event()
    errors: list[BaseException] = []
    done = {"sim": 0, "other": 0, "other_conflicts": 0}

    def run_sim() -> None:
        try:
            for _ in range(300):
                if stop.is_set():
                    break
                sim.step()
                done["sim"] += 1
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            stop.set()

    def run_other() -> None:
        rng = random.Random(2)
        conn = other.reader()
        try:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT id, status, version, street_code, updated_at FROM events "
                    "WHERE status NOT IN ('closed', 'rejected', 'merged') ORDER BY id DESC LIMIT 20"
                ).fetchall()
                if not rows:
                    time.sleep(0.01)
                    continue
                e = rng.choice(rows)
                nxt = _next(e["status"])
                if nxt is None:
                    continue
                action, payload, note = nxt
                if payload is not None:
                    payload = dict(payload, target=e["street_code"])
                try:
                    ops.apply_action(
                        other, e["id"], action, actor="console-2", expected_version=e["version"],
                        payload=payload, note=note, at=max(e["updated_at"], timeutil.now_iso()),
                    )  # fmt: skip
                    done["other"] += 1
                except ops.ConflictError:
                    done["other_conflicts"] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            stop.set()
        finally:
            conn.close()

    threads = [threading.Thread(target=run_sim), threading.Thread(target=run_other)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
    finally:
        stop.set()
        sim.close()
        other.close()
        sim_rep.close()
    assert errors == [], [repr(e) for e in errors]
    assert not any(isinstance(e, sqlite3.OperationalError) for e in errors)
    assert done["sim"] == 300 and done["other"] > 20, done
    assert sim.stats.busy == 0 and sim.stats.refused == 0
    check_sim_events(demo_copy)
    conn = connect(demo_copy, readonly=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
