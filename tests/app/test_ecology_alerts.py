"""Ecology alerts → linked-command events: one event per episode, no duplicates, invalid never alerts."""

import numpy as np

from app import ecology_alerts as ea
from db.ecology import add_readings, hour_of
from db.replica import open_replica


def test_episode_detection_is_pure_and_merges_short_gaps():
    hours = np.arange(100, 130)
    v = np.full(30, 0.3)
    v[2:6] = 1.6        # 4 h of class V
    v[7] = 1.2          # back after one good hour: same episode (gap ≤ 3)
    v[8] = np.nan       # invalid: skipped, neither ends nor extends
    v[9] = 1.3
    v[20] = 1.8         # a single odd hour: not an alert (MIN_HOURS = 2)
    eps = ea.breach_episodes(hours, v, "nh3n")
    assert len(eps) == 1
    e = eps[0]
    assert (e.start, e.last, e.count, e.peak_class) == (102, 109, 6, 5)
    assert e.peak == 1.6


def test_low_do_is_a_breach_and_invalid_values_never_are():
    hours = np.arange(10)
    do = np.array([8, 4.0, 3.5, -1, -1, -1, 8, 8, 8, 8], dtype=float)  # -1: impossible (flagged), not "very low"
    eps = ea.breach_episodes(hours, do, "do")
    assert [(e.start, e.last, e.count) for e in eps] == [(1, 2, 2)]
    assert ea.breach_episodes(hours, np.array([-1.0] * 10), "do") == []


def test_detection_episodes():
    t = [0, 600, 1500, 10_000, 10_100]
    assert ea.detection_episodes(t, gap_min=30) == [(0, 1500, 3), (10_000, 10_100, 2)]


def _eco_events(conn):
    return conn.execute("SELECT id, source, external_id, category, status FROM events WHERE source = 'ecology_eye' "
                        "AND (external_id LIKE 'WQ-%' OR external_id LIKE 'CAM-%')").fetchall()


def test_alerts_become_one_event_per_episode(demo_copy):
    rep = open_replica(demo_copy)
    try:
        first = ea.raise_alerts(rep)
        assert first.created > 0
        conn = rep.reader()
        events = _eco_events(conn)
        assert len(events) == first.created
        assert {e["status"] for e in events} == {"reported"}
        cats = {e["category"] for e in events}
        assert "ECO.WATERQ" in cats and cats <= {"ECO.WATERQ", "ECO.FISHING", "ECO.SAND", "ECO.DUMPING"}
        # each event went through the write path: one 'report' log row
        for e in events:
            assert conn.execute("SELECT count(*) FROM event_log WHERE event_id = ? AND action = 'report'",
                                (e["id"],)).fetchone()[0] == 1
        alerts = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM eco_alerts").fetchone()
        assert alerts[0] == alerts[1] == first.created
        conn.close()

        again = ea.raise_alerts(rep)
        assert again.created == 0
        conn = rep.reader()
        assert len(_eco_events(conn)) == first.created

        # the episode continues: the alert is extended, no second event
        s = conn.execute("SELECT a.station_id, a.parameter, a.last_at, st.code FROM eco_alerts a "
                         "JOIN eco_stations st ON st.id = a.station_id WHERE a.kind = 'breach' "
                         "ORDER BY a.last_at DESC LIMIT 1").fetchone()
        conn.close()
        h = hour_of(s["last_at"])
        bad = {"do": 2.5, "nh3n": 1.9, "cod": 38.0}[s["parameter"]]
        add_readings(rep, [{"station_id": s["station_id"], "hour": h + k, "do": 7.5, "nh3n": 0.3, "cod": 12,
                            "ph": 7.5, "turbidity": 20, s["parameter"]: bad} for k in (1, 2, 3)])
        later = ea.raise_alerts(rep)
        assert later.created == 0 and later.extended >= 1
        conn = rep.reader()
        assert len(_eco_events(conn)) == first.created
        conn.close()

        # a scan window that starts inside an episode does not make a second event for it
        mid = ea.raise_alerts(rep, since=s["last_at"])
        assert mid.created == 0
    finally:
        rep.close()


def test_invalid_readings_never_raise_alerts(demo_copy):
    rep = open_replica(demo_copy)
    try:
        ea.raise_alerts(rep)
        conn = rep.reader()
        top = conn.execute("SELECT max(hour) FROM eco_readings").fetchone()[0]
        n0 = len(_eco_events(conn))
        conn.close()
        add_readings(rep, [{"station_id": 3, "hour": top + k, "do": -5, "nh3n": -1, "cod": 5000, "ph": 20,
                            "turbidity": None} for k in range(1, 13)])
        res = ea.raise_alerts(rep)
        assert res.created == 0
        conn = rep.reader()
        assert len(_eco_events(conn)) == n0
        assert conn.execute("SELECT count(*) FROM eco_readings WHERE station_id = 3 AND hour > ? AND invalid = 0",
                            (top,)).fetchone()[0] == 0
    finally:
        rep.close()


def test_cli_ecology_alerts(demo_copy):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = [sys.executable, str(root / "main.py"), "--db", str(demo_copy), "ecology-alerts"]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    first = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created ") and not first.stdout.startswith("created 0,")
    again = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env)
    assert again.stdout.startswith("created 0,")
    bad = subprocess.run([*run, "--since", "nonsense"], capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2
