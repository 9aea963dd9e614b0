"""Wall rotation, takeover and layouts (app/wall.py), wall control storage (db/wall_store.py)."""

import pytest

from app import wall
from db import wall_store
from db.replica import open_replica


def test_rotation_advances_every_period_and_takeover_suspends_it():
    shown = []
    r = wall.WallRotation(("command", "economy", "ecology"), 30, set_theme=shown.append)
    assert r.tick(0) is None  # the first tick starts the clock
    assert r.tick(29) is None
    assert r.tick(30) == "economy"
    r.start_takeover(42, 31)
    assert r.tick(100) is None and r.takeover is not None  # suspended during the incident
    assert r.tick(31 + r.takeover_s) is None and r.takeover is None  # ends by itself
    assert r.tick(31 + r.takeover_s + 30) == "ecology"
    assert shown == ["economy", "ecology"]


def test_pause_pin_resume_and_minimum_period():
    r = wall.WallRotation(("command", "economy"), 5)
    assert r.period_s == wall.MIN_PERIOD_S
    r.tick(0)
    r.pause()
    assert r.tick(1000) is None and r.current == "command"
    assert r.pin("economy") == "economy"
    assert r.tick(5000) is None and r.current == "economy"
    with pytest.raises(ValueError, match="unknown theme"):
        r.pin("nope")
    r.resume(6000)
    assert r.mode == "auto"
    r.end_takeover(0)  # harmless without a takeover


def test_single_theme_never_rotates():
    r = wall.WallRotation(("command",))
    r.tick(0)
    assert r.tick(10_000) is None and r.current == "command"


def test_default_rotation_runs_through_the_three_one_maps():
    seen = []
    r = wall.WallRotation(period_s=60, set_theme=seen.append)
    assert r.themes == ("command", "economy", "ecology")
    r.tick(0)
    for t in (61, 122, 183):
        r.tick(t)
    assert seen[-3:] == ["economy", "ecology", "command"]


def test_layouts_are_normalized():
    assert wall.normalize_layout({"mode": "bogus", "columns": "x"}) == {"mode": "routine", "columns": 2}
    assert wall.normalize_layout({"mode": "map_only", "columns": 2})["columns"] == 0
    assert wall.normalize_layout({"period_s": 1})["period_s"] == wall.MIN_PERIOD_S
    assert wall.share_width("half", 7680) == 3840 and wall.share_width("third", 7680) == 2560


def test_wall_store_round_trip(demo_copy):
    rep = open_replica(demo_copy)
    try:
        wall_store.save_layout(rep, "夜间", {"mode": "map_only"}, actor="t")
        wall_store.set_control(rep, "layout", "夜间", actor="t")
        wall_store.save_filter(rep, "320613006", "超时", {"tab": "overdue"})
        with pytest.raises(wall_store.WallStoreError):
            wall_store.set_control(rep, "bogus", "1")
        with pytest.raises(wall_store.WallStoreError):
            wall_store.save_layout(rep, "  ", {})
        conn = rep.reader()
        assert wall_store.load_layouts(conn) == {"夜间": {"mode": "map_only"}}
        assert wall_store.read_control(conn)["layout"][0] == "夜间"
        assert wall_store.load_filters(conn, "320613006") == {"超时": {"tab": "overdue"}}
        assert wall_store.load_filters(conn, "320613001") == {}
        conn.close()
        assert wall_store.delete_layout(rep, "夜间")
    finally:
        rep.close()


def test_rotation_status_and_ticker_lines_in_english():
    import re

    from widgets.ticker import item_text

    cjk = re.compile(r"[\u3400-\u9fff]")
    r = wall.WallRotation(("command", "economy", "ecology"), 60)
    assert r.status_en == "rotating · every 60 s" and r.status_zh == "轮播 · 每 60 秒"
    r.start_takeover(42, 0.0)
    assert r.status_en == "emergency takeover · event #42"
    assert set(wall.THEME_NAMES_EN) == set(wall.THEME_NAMES_ZH)
    assert set(wall.LAYOUT_NAMES_EN) == set(wall.PRESETS)
    row = {"reported_at": "2026-11-26T19:29:00+08:00", "priority": 2, "class": "emergency",
           "street_name": "学田街道", "category_name": "道路积水", "category_name_en": "Waterlogged road",
           "title": "x"}  # fmt: skip
    assert item_text(row, "en") == "[19:29] EMERGENCY P2 · 学田街道 · Waterlogged road · x"
    assert item_text(row) == "[19:29] 紧急 Ⅱ级 · 学田街道 · 道路积水 · x"
    assert not cjk.search(item_text(dict(row, street_name="", category_name_en="Road"), "en").replace("道路积水", ""))
