"""Each robot rule on hand-built data: it fires where it should and stays quiet where it should
not, including at its thresholds."""

from __future__ import annotations

import datetime as dt

import pytest

from app.robot import engine
from app.robot.anomalies import robust_z
from app.robot.base import RuleContext
from app.robot.hotspots import clusters
from app.robot.patrol import working_hours_between
from app.workcal import default_is_workday
from db import robot_store
from tests.app.robot_fixtures import G1, G2, NOW, TZ8, add_event, build, iso, patrol_everywhere

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


@pytest.fixture
def rep(tmp_path):
    r = build(tmp_path / "robot.db")
    yield r
    r.close()


def find(r, name: str, now=NOW, **params):
    rule = engine.rule(name)
    conn = r.reader()
    try:
        p = engine.thresholds(conn)[name]
        p.update(params)
        return rule.find(RuleContext(conn, now, p, default_is_workday))
    finally:
        conn.close()


# -- hot spots ---------------------------------------------------------------------------------
def test_hotspot_fires_at_three_within_100m_in_7_days(rep):
    ids = [add_event(rep, at=NOW - k * D, dx_m=k * 45) for k in range(3)]  # chain 0-45-90 m
    fs = find(rep, "hotspot")
    assert len(fs) == 1
    assert sorted(fs[0].events) == sorted(ids)
    assert fs[0].external_ids and fs[0].grid_id == G1
    assert "垃圾满溢" in fs[0].explanation_zh and "源头" in fs[0].suggested_action


def test_hotspot_quiet_below_threshold_too_far_too_old_or_drill(rep):
    add_event(rep, at=NOW - H)
    add_event(rep, at=NOW - 2 * H, dx_m=60)
    add_event(rep, at=NOW - 3 * H, dx_m=-110)  # 110 m from the first: not linked
    add_event(rep, at=NOW - 7 * D - H, dx_m=10)  # outside the 7-day window
    add_event(rep, at=NOW - H, dx_m=5, drill_id=1)  # drills never count
    add_event(rep, at=NOW - H, dx_m=5, category="ENV.LITTER")  # another category
    assert find(rep, "hotspot") == []
    assert len(find(rep, "hotspot", radius_m=120)) == 1  # operator threshold


def test_hotspot_groups_unclassified_by_source_code(rep):
    for k in range(3):
        add_event(rep, at=NOW - k * H, category="UNCLASSIFIED", source="citymgmt", source_code="CG-77", dx_m=k * 10)
    for k, code in enumerate(("A1", "A2", "A3")):
        add_event(rep, at=NOW - k * H, category="UNCLASSIFIED", source="citymgmt", source_code=code, grid=G2)
    fs = find(rep, "hotspot")
    assert len(fs) == 1 and "CG-77" in fs[0].explanation_zh and len(fs[0].events) == 3


def test_clusters_single_linkage():
    pts = [(1, 120.0, 32.0), (2, 120.0005, 32.0), (3, 120.001, 32.0), (4, 120.01, 32.0)]
    assert clusters(pts, 60, 3) == [[1, 2, 3]]
    assert clusters(pts, 30, 2) == []


# -- repeat demands ----------------------------------------------------------------------------
def test_repeat_caller_fires_at_three_calls_whatever_the_format(rep):
    for k, phone in enumerate(("13962809170", "139 6280 9170", "+86 139-6280-9170")):
        add_event(rep, at=NOW - k * 3 * D, phone=phone, source="hotline_12345", dx_m=k * 500)
    fs = find(rep, "repeat")
    assert len(fs) == 1
    assert fs[0].people == ["caller:139****9170"]
    assert "13962809170" not in fs[0].explanation_zh and "139****9170" in fs[0].explanation_zh
    assert "13962809170" not in fs[0].key


def test_repeat_quiet_for_two_calls_or_old_ones(rep):
    add_event(rep, at=NOW - D, phone="13962809170")
    add_event(rep, at=NOW - 2 * D, phone="13962809170")
    add_event(rep, at=NOW - 31 * D, phone="13962809170")
    assert find(rep, "repeat") == []


def test_repeat_address_threshold(rep):
    for k in range(3):
        add_event(rep, at=NOW - k * D, address="崇川区 和平桥街道 某小区3幢", source="hotline_12345")
    add_event(rep, at=NOW - 5 * D, address="崇川区和平桥街道某小区3幢", source="grid_app")  # patrol report: not a demand
    assert find(rep, "repeat") == []
    add_event(rep, at=NOW - 4 * D, address="崇川区和平桥街道某小区3幢", source="hotline_12345")
    fs = find(rep, "repeat")
    assert len(fs) == 1 and len(fs[0].events) == 4 and fs[0].key.startswith("address:")


# -- patrol gaps -------------------------------------------------------------------------------
def test_patrol_gap_grid_without_reports_or_visits(rep):
    add_event(rep, at=NOW - 6 * D, grid=G1, source="grid_app")
    fs = find(rep, "patrol_gap")
    assert [f.key for f in fs] == [f"grid:{G2}"]
    assert fs[0].people == ["person:2"]
    with rep.write() as c:
        c.execute("INSERT INTO visits (uid, kind, grid_id, person_id, at) VALUES ('v1', 'patrol', ?, 2, ?)",
                  (G2, iso(NOW - 6 * D)))  # fmt: skip
    assert find(rep, "patrol_gap") == []
    assert [f.key for f in find(rep, "patrol_gap", days=5)] == [f"grid:{G1}", f"grid:{G2}"]


def test_patrol_gap_hotline_event_is_not_a_leader_report(rep):
    patrol_everywhere(rep, NOW - 8 * D)
    add_event(rep, at=NOW - D, grid=G1, source="hotline_12345")
    assert {f.key for f in find(rep, "patrol_gap")} == {f"grid:{G1}", f"grid:{G2}"}


def _positions(rep, person, grid, times):
    for t in times:
        robot_store.add_leader_position(rep, person, iso(t), 120.87, 32.015, grid)


def test_leader_away_for_working_hours(rep):
    patrol_everywhere(rep, NOW - D)
    day = NOW.replace(hour=0, minute=0, second=0)
    _positions(rep, 1, G1, [day + dt.timedelta(hours=8)])
    _positions(rep, 1, G2, [day + dt.timedelta(hours=9, minutes=30 * k) for k in range(12)])  # 9:00 → 14:30
    fs = find(rep, "patrol_gap")
    assert [f.key for f in fs] == ["away:1"]
    assert fs[0].grid_id == G1 and "离格" in fs[0].explanation_zh
    assert find(rep, "patrol_gap", away_hours=5) == []  # 9:00–14:30 is 4.5 working hours


def test_leader_away_only_outside_working_time_is_quiet(rep):
    patrol_everywhere(rep, NOW - D)
    sat = dt.datetime(2026, 11, 21, 9, 0, tzinfo=TZ8)
    _positions(rep, 1, G2, [sat + k * H for k in range(8)])
    assert find(rep, "patrol_gap", now=sat + 8 * H) == []
    _positions(rep, 2, None, [NOW - k * H for k in range(6)])  # positions with no grid tell nothing
    assert find(rep, "patrol_gap") == []


def test_working_hours_between():
    a = dt.datetime(2026, 11, 20, 8, 0, tzinfo=TZ8)
    assert working_hours_between(a, a.replace(hour=18)) == pytest.approx(7.5)
    assert working_hours_between(a, a + 3 * D + H) == pytest.approx(7.5 + 0.5)  # Fri, weekend, Mon 8:30–9:00
    assert working_hours_between(a, a) == 0


def test_leader_positions_history_is_bounded(rep):
    from db.schema import LEADER_POSITIONS_KEEP

    for k in range(LEADER_POSITIONS_KEEP + 20):
        robot_store.add_leader_position(rep, 1, iso(NOW - (1000 - k) * H), 120.865, 32.015, G1)
    c = rep.reader()
    assert c.execute("SELECT count(*) FROM leader_positions WHERE person_id = 1").fetchone()[0] == LEADER_POSITIONS_KEEP
    c.close()


# -- vulnerable residents ----------------------------------------------------------------------
def test_care_gap_at_its_period(rep):
    old = robot_store.add_care_resident(rep, {"name": "张桂英", "kind": "elderly_alone", "grid_id": G1,
                                              "visit_every_days": 7}, at=iso(NOW - 100 * D))  # fmt: skip
    never = robot_store.add_care_resident(rep, {"name": "李明", "kind": "disabled", "grid_id": G2},
                                          at=iso(NOW - 10 * D))  # fmt: skip
    robot_store.add_visit(rep, kind="care_visit", care_id=old, at=iso(NOW - 6 * D - 23 * H), person_id=1)
    fs = find(rep, "care_gap")
    assert [f.key for f in fs] == [f"care:{never}"]
    assert "李*" in fs[0].explanation_zh and "李明" not in fs[0].explanation_zh and "从未走访" in fs[0].explanation_zh
    fs = find(rep, "care_gap", now=NOW + 2 * H)  # now 7 days and 1 hour since the visit
    assert {f.key for f in fs} == {f"care:{old}", f"care:{never}"}
    assert "张**" in next(f for f in fs if f.key == f"care:{old}").explanation_zh


def test_care_gap_quiet_for_inactive_and_visited(rep):
    cid = robot_store.add_care_resident(rep, {"name": "王芳", "kind": "hardship", "grid_id": G1}, at=iso(NOW - 30 * D))
    robot_store.add_visit(rep, kind="care_visit", care_id=cid, at=iso(NOW - D))
    assert find(rep, "care_gap") == []
    with rep.write() as c:
        c.execute("UPDATE care_list SET active = 0")
    assert find(rep, "care_gap", days=0.5) == []


def test_care_resident_needs_name_and_known_grid(rep):
    with pytest.raises(robot_store.RobotError, match="姓名"):
        robot_store.add_care_resident(rep, {"name": " ", "grid_id": G1})
    with pytest.raises(robot_store.RobotError, match="网格"):
        robot_store.add_care_resident(rep, {"name": "赵", "grid_id": "nope"})


# -- deadline risk -----------------------------------------------------------------------------
def _history(rep, n, hours, category="FAC.STREETLIGHT", dept="MUNICIPAL"):
    for k in range(n):
        start = NOW - (k + 2) * D
        add_event(rep, at=start - H, category=category, status="closed", dispatched_at=start,
                  handled_at=start + hours * H, assignee=dept)  # fmt: skip


def test_deadline_risk_fires_when_typical_time_exceeds_what_is_left(rep):
    _history(rep, 5, 20)
    risky = add_event(rep, at=NOW - 2 * H, category="FAC.STREETLIGHT", status="dispatched",
                      dispatched_at=NOW - H, due=NOW + 3 * H, assignee="MUNICIPAL")  # fmt: skip
    add_event(rep, at=NOW - 2 * H, category="FAC.STREETLIGHT", status="dispatched", dispatched_at=NOW - H,
              due=NOW + 30 * H, assignee="MUNICIPAL")  # beyond the 24 h horizon  # fmt: skip
    add_event(rep, at=NOW - 2 * H, category="FAC.STREETLIGHT", status="handled", dispatched_at=NOW - H,
              handled_at=NOW - 0.5 * H, due=NOW + 3 * H, assignee="MUNICIPAL")  # already handled  # fmt: skip
    fs = find(rep, "deadline_risk")
    assert len(fs) == 1 and fs[0].events == [risky]
    assert "20.0 小时" in fs[0].explanation_zh


def test_deadline_risk_quiet_with_fast_history_or_too_few_samples(rep):
    add_event(rep, at=NOW - 2 * H, category="FAC.STREETLIGHT", status="dispatched", dispatched_at=NOW - H,
              due=NOW + 3 * H, assignee="MUNICIPAL")  # fmt: skip
    _history(rep, 4, 20)
    assert find(rep, "deadline_risk") == []  # 4 samples < 5
    _history(rep, 1, 20)
    assert len(find(rep, "deadline_risk")) == 1  # 5 samples: enough
    assert find(rep, "deadline_risk", min_samples=6) == []
    _history(rep, 6, 1, category="ENV.GARBAGE", dept="SANITATION")
    add_event(rep, at=NOW - 2 * H, category="ENV.GARBAGE", status="dispatched", dispatched_at=NOW - H,
              due=NOW + 3 * H, assignee="SANITATION", grid=G2)  # fmt: skip
    assert len(find(rep, "deadline_risk")) == 1  # usually done in an hour: no risk


# -- anomalies ---------------------------------------------------------------------------------
def test_anomaly_fires_against_a_quiet_baseline(rep):
    today = [add_event(rep, at=NOW - k * H, category="SAFETY.GAS", dx_m=k * 300) for k in range(4)]
    fs = find(rep, "anomaly")
    assert len(fs) == 1 and sorted(fs[0].events) == sorted(today)
    assert "稳健Z值 4.0" in fs[0].explanation_zh


def test_anomaly_quiet_below_min_count_or_when_usual(rep):
    for k in range(3):
        add_event(rep, at=NOW - k * H, category="SAFETY.GAS")
    assert find(rep, "anomaly") == []
    add_event(rep, at=NOW - 4 * H, category="SAFETY.GAS")
    for w in range(1, 9):  # the same weekday and time of day had 4 every week
        for k in range(4):
            add_event(rep, at=NOW - w * 7 * D - k * H, category="SAFETY.GAS")
    assert find(rep, "anomaly") == []


def test_robust_z():
    z, med, scale = robust_z(10, [1, 2, 2, 3, 2, 2, 1, 2], 1.0)
    assert med == 2 and scale == pytest.approx(1.4826 * 0.0 or 1.0)
    assert z == pytest.approx(8.0)


# -- device health -----------------------------------------------------------------------------
def _device(rep, uid, seen):
    with rep.write() as c:
        c.execute("INSERT INTO devices (uid, kind, name, grid_id, street_code, lon, lat, last_seen_at) "
                  "VALUES (?, 'door_sensor', ?, ?, '320613002', 120.865, 32.015, ?)", (uid, f"门磁-{uid}", G1, iso(seen)))  # fmt: skip


def _readings(rep, uid, times, alarm=1):
    with rep.write() as c:
        for k, t in enumerate(times):
            c.execute("INSERT INTO device_readings (device_uid, record_id, type, at, valid, is_alarm) "
                      "VALUES (?, ?, 'door_open', ?, 1, ?)", (uid, f"{uid}-{k}-{t.timestamp()}", iso(t), alarm))  # fmt: skip


def test_device_silent_and_revived_by_a_reading(rep):
    _device(rep, "D1", NOW - 3 * D)
    _device(rep, "D2", NOW - D)
    fs = find(rep, "device_health")
    assert [f.key for f in fs] == ["silent:D1"] and fs[0].devices == ["D1"]
    _readings(rep, "D1", [NOW - 2 * H], alarm=0)
    assert find(rep, "device_health") == []


def test_device_chatter_at_threshold(rep):
    _device(rep, "D3", NOW)
    _readings(rep, "D3", [NOW - k * H for k in range(19)] + [NOW - 30 * H])
    assert find(rep, "device_health") == []  # 19 alarms in 24 h
    _readings(rep, "D3", [NOW - 20 * H])
    fs = find(rep, "device_health")
    assert [f.key for f in fs] == ["chatter:D3"] and "20 次" in fs[0].explanation_zh


def test_vectorised_clusters_match_brute_force():
    import random

    from app.robot.base import metres

    rnd = random.Random(5)
    pts = [(k, 120.86 + rnd.random() * 0.01, 32.01 + rnd.random() * 0.01) for k in range(400)]
    parent = list(range(len(pts)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(pts)):
        for j in range(i + 1, len(pts)):
            if metres(pts[i][1], pts[i][2], pts[j][1], pts[j][2]) <= 60:
                parent[root(i)] = root(j)
    groups = {}
    for i in range(len(pts)):
        groups.setdefault(root(i), []).append(i)
    expected = sorted(sorted(g) for g in groups.values() if len(g) >= 3)
    got = sorted(clusters(pts, 60, 3))
    assert got == expected and len(expected) > 3
