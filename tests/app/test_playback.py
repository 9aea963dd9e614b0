"""Time window and playback (Qt-free): window resolution, status as of a time, deltas only."""

import datetime as dt

import pytest

from app.playback import Playback, events_in_window
from app.timewindow import TimeWindow
from db.replica import connect

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_time_windows():
    assert TimeWindow().resolve(NOW) == (None, None)
    assert TimeWindow("1h").resolve(NOW) == ("2026-11-20T14:30:00+08:00", "2026-11-20T15:30:00+08:00")
    assert TimeWindow("7d").resolve(NOW)[0] == "2026-11-13T15:30:00+08:00"
    c = TimeWindow("custom", "2026-11-01T08:00", "2026-11-02T08:00")
    assert c.resolve() == ("2026-11-01T08:00:00+08:00", "2026-11-02T08:00:00+08:00")
    with pytest.raises(ValueError):
        TimeWindow("custom", "2026-11-02T08:00", "2026-11-01T08:00")
    with pytest.raises(ValueError):
        TimeWindow("2h")


def test_events_in_window(demo_db):
    conn = connect(demo_db)
    fc = events_in_window(conn, "2026-11-19T15:30:00+08:00", "2026-11-20T15:30:00+08:00")
    n = conn.execute("SELECT count(*) FROM events WHERE reported_at >= '2026-11-19T15:30:00+08:00' "
                     "AND reported_at < '2026-11-20T15:30:00+08:00' AND lon IS NOT NULL").fetchone()[0]
    assert len(fc["features"]) == n > 0


def test_playback_frames_are_deltas_and_follow_the_lifecycle(demo_db):
    conn = connect(demo_db)
    pb = Playback(conn, dt.date(2026, 11, 19))
    assert pb.size > 0
    first = pb.frame(pb.start)
    shown_at_start = pb.visible_count()
    noon = pb.frame(pb.start + 12 * 3600)
    assert pb.visible_count() >= shown_at_start
    assert noon["events"]["upsert"]
    assert pb.frame(pb.start + 12 * 3600) == {}  # nothing changed: nothing sent
    # statuses are the ones reached by then
    by_id = {f["id"]: f for f in pb.features}
    t = pb.start + 12 * 3600
    for f in noon["events"]["upsert"][:200]:
        row = conn.execute("SELECT reported_at, closed_at FROM events WHERE id = ?", (f["id"],)).fetchone()
        assert dt.datetime.fromisoformat(row["reported_at"]).timestamp() <= t
        if f["properties"]["status"] == "closed":
            assert dt.datetime.fromisoformat(row["closed_at"]).timestamp() <= t
        assert f["id"] in by_id
    assert "eco_stations" in first and len(first["eco_stations"]["props"]) == 20
    # seeking back removes what was not reported yet
    back = pb.frame(pb.start + 3600)
    assert back["events"]["remove"]
