"""Recurrence expansion (Asia/Shanghai, no DST) and conflict detection — pure functions."""

import pytest

from app.drills import conflicts, recurrence


def test_weekly_across_weeks_and_a_month_end():
    starts = recurrence.expand({"rule": "weekly", "weekday": 2, "time_of_day": "09:30",
                                "first_date": "2026-01-26", "count": 4})
    assert starts == ["2026-01-28T09:30:00+08:00", "2026-02-04T09:30:00+08:00",
                      "2026-02-11T09:30:00+08:00", "2026-02-18T09:30:00+08:00"]


def test_weekly_every_second_week_until_inclusive_and_year_end():
    starts = recurrence.expand({"rule": "weekly", "weekday": 3, "interval": 2, "time_of_day": "14:00",
                                "first_date": "2026-12-01", "until_date": "2027-01-14"})
    assert starts == ["2026-12-03T14:00:00+08:00", "2026-12-17T14:00:00+08:00",
                      "2026-12-31T14:00:00+08:00", "2027-01-14T14:00:00+08:00"]


def test_every_occurrence_is_at_the_same_shanghai_wall_time():
    """China has no DST: every occurrence keeps +08:00 and the same wall-clock time all year."""
    starts = recurrence.expand({"rule": "weekly", "weekday": 6, "time_of_day": "23:30",
                                "first_date": "2026-03-01", "count": 40})
    assert all(s.endswith("T23:30:00+08:00") for s in starts)


def test_monthly_on_the_31st_falls_on_each_month_end():
    starts = recurrence.expand({"rule": "monthly", "month_day": 31, "time_of_day": "10:00",
                                "first_date": "2026-01-31", "count": 5})
    assert [s[:10] for s in starts] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]
    leap = recurrence.expand({"rule": "monthly", "month_day": 30, "first_date": "2028-01-30", "count": 2})
    assert [s[:10] for s in leap] == ["2028-01-30", "2028-02-29"]


def test_monthly_skips_a_day_before_the_first_date_and_crosses_the_year():
    starts = recurrence.expand({"rule": "monthly", "month_day": 5, "interval": 3, "first_date": "2026-11-20",
                                "count": 3})
    assert [s[:10] for s in starts] == ["2027-02-05", "2027-05-05", "2027-08-05"]


def test_dates_series_is_sorted_deduplicated_and_capped_by_until():
    starts = recurrence.expand({"rule": "dates", "time_of_day": "08:00",
                                "dates": ["2026-12-15", "2026-12-01", "2026-12-15", "2027-01-05"],
                                "until_date": "2026-12-31"})
    assert starts == ["2026-12-01T08:00:00+08:00", "2026-12-15T08:00:00+08:00"]


@pytest.mark.parametrize("rule, words", [
    ({"rule": "yearly", "first_date": "2026-01-01", "count": 1}, "rule"),
    ({"rule": "weekly", "first_date": "2026-01-01"}, "count or an until"),
    ({"rule": "weekly", "first_date": "2026-13-01", "count": 2}, "first_date"),
    ({"rule": "weekly", "first_date": "2026-01-01", "count": 2, "time_of_day": "9h"}, "HH:MM"),
    ({"rule": "dates", "dates": []}, "at least one date"),
])
def test_bad_rules_are_refused_with_a_message(rule, words):
    with pytest.raises(recurrence.RecurrenceError, match=words):
        recurrence.expand(rule)


def _d(i, start, minutes, streets=(), grids=()):
    return {"id": i, "title": f"d{i}", "starts_at": start, "duration_min": minutes,
            "streets": list(streets), "grids": list(grids)}


def test_conflicts_same_street_overlapping_time():
    plan = _d(None, "2026-12-01T09:00:00+08:00", 60, ["S1"])
    others = [_d(1, "2026-12-01T09:30:00+08:00", 60, ["S1", "S2"]),   # overlaps, shares S1
              _d(2, "2026-12-01T10:00:00+08:00", 60, ["S1"]),         # starts when plan ends: no clash
              _d(3, "2026-12-01T09:15:00+08:00", 30, ["S3"])]         # other street
    found = conflicts.clashes(plan, others)
    assert [c.drill_id for c in found] == [1]
    assert found[0].streets == ("S1",)
    assert "#1" in found[0].message({"S1": "城东街道"}) and "城东街道" in found[0].message({"S1": "城东街道"})


def test_conflicts_grids_and_district_wide_drills():
    plan = _d(None, "2026-12-01T09:00:00+08:00", 60, ["S1"], ["G1"])
    assert conflicts.clashes(plan, [_d(1, "2026-12-01T09:00:00+08:00", 60, ["S1"], ["G2"])]) == []
    shared = conflicts.clashes(plan, [_d(2, "2026-12-01T09:10:00+08:00", 20, ["S1"], ["G1", "G3"])])
    assert shared[0].grids == ("G1",)
    street_drill = conflicts.clashes(plan, [_d(3, "2026-12-01T09:10:00+08:00", 20, ["S1"])])
    assert street_drill[0].streets == ("S1",)
    district = conflicts.clashes(plan, [_d(4, "2026-12-01T08:30:00+08:00", 60)])
    assert [c.drill_id for c in district] == [4]
    assert conflicts.clashes(dict(plan, id=5), [_d(5, "2026-12-01T09:00:00+08:00", 60, ["S1"], ["G1"])]) == []
