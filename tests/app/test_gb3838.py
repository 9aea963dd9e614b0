"""GB 3838-2002 classification: every class boundary, 劣V, the worst parameter, pH, invalid values."""

import math

import numpy as np
import pytest

from app import gb3838
from app.gb3838 import assess, classify, ph_ok


@pytest.mark.parametrize(
    ("value", "cls"),
    [(9.0, 1), (7.5, 1), (7.49, 2), (6.0, 2), (5.99, 3), (5.0, 3), (4.99, 4), (3.0, 4), (2.99, 5), (2.0, 5),
     (1.99, 6), (0.0, 6)],
)
def test_dissolved_oxygen_boundaries(value, cls):
    assert classify("do", value) == cls


@pytest.mark.parametrize(
    ("value", "cls"),
    [(0.0, 1), (0.15, 1), (0.151, 2), (0.5, 2), (0.51, 3), (1.0, 3), (1.01, 4), (1.5, 4), (1.51, 5), (2.0, 5),
     (2.01, 6), (50.0, 6)],
)
def test_ammonia_boundaries(value, cls):
    assert classify("nh3n", value) == cls


@pytest.mark.parametrize(
    ("value", "cls"),
    # I and II share the 15 mg/L limit: 15 is class I, just above is class III
    [(3.0, 1), (15.0, 1), (15.01, 3), (20.0, 3), (20.01, 4), (30.0, 4), (30.01, 5), (40.0, 5), (40.01, 6)],
)
def test_cod_boundaries(value, cls):
    assert classify("cod", value) == cls


def test_station_takes_the_worst_parameter():
    a = assess({"do": 8.0, "nh3n": 1.2, "cod": 16.0, "ph": 7.5, "turbidity": 30})
    assert a.classes == {"do": 1, "nh3n": 4, "cod": 3}
    assert a.station_class == 4
    assert a.worst == ("nh3n",)
    both = assess({"do": 1.5, "nh3n": 2.5, "cod": 10, "ph": 7, "turbidity": 3})
    assert both.station_class == 6 and set(both.worst) == {"do", "nh3n"}
    assert gb3838.class_label(6) == "劣V类"


@pytest.mark.parametrize(("ph", "ok"), [(6.0, True), (9.0, True), (7.2, True), (5.99, False), (9.01, False)])
def test_ph_is_pass_fail_only(ph, ok):
    assert ph_ok(ph) is ok
    # pH never changes the class
    assert assess({"do": 8, "nh3n": 0.1, "cod": 10, "ph": ph, "turbidity": 5}).station_class == 1


def test_turbidity_has_no_class():
    with pytest.raises(ValueError):
        classify("turbidity", 10)
    assert assess({"do": 8, "nh3n": 0.1, "cod": 10, "ph": 7, "turbidity": 3000}).station_class == 1


@pytest.mark.parametrize(
    ("param", "value", "reason"),
    [("do", -1.0, "negative"), ("ph", 20.0, "above 14"), ("do", None, "missing"), ("cod", math.nan, "missing"),
     ("nh3n", "abc", "not a number"), ("turbidity", -3, "negative")],
)
def test_impossible_values_are_invalid_never_classified(param, value, reason):
    assert gb3838.invalid_reason(param, value) == reason
    if param in gb3838.LIMITS:
        assert classify(param, value) is None
    r = {"do": 8.0, "nh3n": 0.1, "cod": 10.0, "ph": 7.0, "turbidity": 5.0, param: value}
    a = assess(r)
    assert param in a.invalid and not a.valid
    if param == "ph":
        assert a.ph_pass is None


def test_all_invalid_reading_has_no_class():
    a = assess({"do": -2, "nh3n": None, "cod": -1, "ph": 20, "turbidity": None})
    assert a.station_class is None and a.ph_pass is None


def test_vectorised_classes_match_scalar():
    for param in gb3838.CLASSIFIED:
        values = np.array([0, 0.15, 0.5, 1, 1.5, 2, 2.01, 3, 5, 6, 7.5, 15, 15.01, 20, 30, 40, 41, -1, np.nan, 2000])
        got = gb3838.classify_array(param, values)
        want = [classify(param, None if np.isnan(v) else float(v)) or 0 for v in values]
        assert got.tolist() == want
