"""Surface-water quality classes after GB 3838-2002 (pure functions, no I/O).

Table 1 of the standard (basic items, mg/L):

| item | I | II | III | IV | V |
|---|---|---|---|---|---|
| DO ≥ | 7.5 | 6 | 5 | 3 | 2 |
| NH3-N ≤ | 0.15 | 0.5 | 1.0 | 1.5 | 2.0 |
| COD ≤ | 15 | 15 | 20 | 30 | 40 |
| pH | 6–9 (all classes) |

A value worse than the class V limit is 劣V (class 6 here).  Limits are inclusive: DO 6.0 is
class II, NH3-N 0.5 is class II, COD 15 is class I (I and II share the limit, the better class
wins).  A station takes the class of its worst classified parameter.  pH is a pass/fail check
(6 ≤ pH ≤ 9), turbidity has no class.  A missing or physically impossible value is *invalid*:
it is flagged, never classified and never raises an alert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

PARAMETERS = ("do", "nh3n", "cod", "ph", "turbidity")
CLASSIFIED = ("do", "nh3n", "cod")
NAMES = {
    "do": ("溶解氧", "DO", "mg/L"),
    "nh3n": ("氨氮", "NH3-N", "mg/L"),
    "cod": ("化学需氧量", "COD", "mg/L"),
    "ph": ("pH", "pH", ""),
    "turbidity": ("浊度", "Turbidity", "NTU"),
}

#: Class limits I..V. DO: a value ≥ limit reaches the class; the others: a value ≤ limit.
LIMITS: dict[str, tuple[float, ...]] = {
    "do": (7.5, 6.0, 5.0, 3.0, 2.0),
    "nh3n": (0.15, 0.5, 1.0, 1.5, 2.0),
    "cod": (15.0, 15.0, 20.0, 30.0, 40.0),
}
HIGHER_IS_BETTER = frozenset({"do"})
PH_RANGE = (6.0, 9.0)

#: Values outside these are impossible for river water (sensor fault, unit error): invalid.
VALID_RANGE: dict[str, tuple[float, float]] = {
    "do": (0.0, 20.0),
    "nh3n": (0.0, 100.0),
    "cod": (0.0, 1000.0),
    "ph": (0.0, 14.0),
    "turbidity": (0.0, 4000.0),
}

WORSE_THAN_V = 6
CLASS_LABELS_ZH = {1: "I类", 2: "II类", 3: "III类", 4: "IV类", 5: "V类", 6: "劣V类"}
"""Latin numerals: the console font (WenQuanYi) has no glyph for Ⅴ (U+2164)."""
CLASS_LABELS_EN = {1: "Class I", 2: "Class II", 3: "Class III", 4: "Class IV", 5: "Class V", 6: "Worse than V"}
#: Conventional water-quality colours (I–II blue, III green, IV yellow, V orange, 劣V red).
CLASS_COLOURS = {1: "#4992ff", 2: "#36c5f0", 3: "#7dd87d", 4: "#fddd60", 5: "#ff8a45", 6: "#ff6e76"}
INVALID_COLOUR = "#8a8fa3"


def class_label(cls: int | None, lang: str = "zh") -> str:
    if cls is None:
        return "无效" if lang != "en" else "invalid"
    return (CLASS_LABELS_EN if lang == "en" else CLASS_LABELS_ZH)[cls]


def invalid_reason(param: str, value: float | None) -> str | None:
    """Why ``value`` cannot be used (``missing``, ``negative``, ``out of range …``), else None."""
    if param not in VALID_RANGE:
        raise ValueError(f"unknown parameter {param!r}; known: {', '.join(PARAMETERS)}")
    if value is None:
        return "missing"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "not a number"
    if math.isnan(v) or math.isinf(v):
        return "missing"
    lo, hi = VALID_RANGE[param]
    if v < lo:
        return "negative" if v < 0 else f"below {lo:g}"
    if v > hi:
        return f"above {hi:g}"
    return None


def is_valid(param: str, value: float | None) -> bool:
    return invalid_reason(param, value) is None


def classify(param: str, value: float | None) -> int | None:
    """Class 1–5 (I–V) or 6 (劣V) of one DO / NH3-N / COD value; None when invalid."""
    if param not in LIMITS:
        raise ValueError(f"{param!r} has no GB 3838 class (classified: {', '.join(CLASSIFIED)})")
    if invalid_reason(param, value) is not None:
        return None
    v = float(value)  # type: ignore[arg-type]
    for i, limit in enumerate(LIMITS[param], start=1):
        if (v >= limit) if param in HIGHER_IS_BETTER else (v <= limit):
            return i
    return WORSE_THAN_V


def ph_ok(value: float | None) -> bool | None:
    """True when 6 ≤ pH ≤ 9, False outside, None when the reading is invalid."""
    if invalid_reason("ph", value) is not None:
        return None
    return PH_RANGE[0] <= float(value) <= PH_RANGE[1]  # type: ignore[arg-type]


@dataclass(frozen=True)
class Assessment:
    """One reading (a station at one hour) assessed."""

    station_class: int | None
    """Worst class over the valid classified parameters; None when none is valid."""
    classes: dict[str, int | None]
    ph_pass: bool | None
    invalid: dict[str, str]
    """parameter → reason for each invalid value."""
    worst: tuple[str, ...]
    """The parameters that set the station class."""

    @property
    def valid(self) -> bool:
        return not self.invalid


def assess(reading: Mapping[str, float | None]) -> Assessment:
    """Classify one reading ``{"do", "nh3n", "cod", "ph", "turbidity"}`` (missing keys = missing)."""
    invalid = {}
    for p in PARAMETERS:
        reason = invalid_reason(p, reading.get(p))
        if reason:
            invalid[p] = reason
    classes = {p: (None if p in invalid else classify(p, reading.get(p))) for p in CLASSIFIED}
    known = [c for c in classes.values() if c is not None]
    station = max(known) if known else None
    worst = tuple(p for p, c in classes.items() if c is not None and c == station)
    return Assessment(station, classes, None if "ph" in invalid else ph_ok(reading.get("ph")), invalid, worst)


def station_class(classes: Mapping[str, int | None]) -> int | None:
    """The worst of the parameter classes (None entries, i.e. invalid values, are skipped)."""
    known = [c for c in classes.values() if c is not None]
    return max(known) if known else None


def classify_array(param: str, values):
    """Vectorised :func:`classify` for a numpy array: int8 classes, 0 where invalid."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    lo, hi = VALID_RANGE[param]
    valid = np.isfinite(v) & (v >= lo) & (v <= hi)
    out = np.full(v.shape, WORSE_THAN_V, dtype=np.int8)
    limits = LIMITS[param]
    for i in range(len(limits), 0, -1):  # from V up to I: better classes overwrite
        ok = (v >= limits[i - 1]) if param in HIGHER_IS_BETTER else (v <= limits[i - 1])
        out[ok] = i
    out[~valid] = 0
    return out


def band_edges(param: str) -> list[tuple[int, float, float]]:
    """(class, low, high) value bands for drawing class bands behind a chart of ``param``."""
    lo, hi = VALID_RANGE[param]
    limits = LIMITS[param]
    out = []
    if param in HIGHER_IS_BETTER:
        top = 14.0
        edges = [top, *limits, lo]
        for i in range(6):
            a, b = edges[i + 1], edges[i]
            if b > a:
                out.append((i + 1, a, b))
    else:
        prev = lo
        for i, limit in enumerate(limits, start=1):
            if limit > prev:
                out.append((i, prev, limit))
                prev = limit
        out.append((WORSE_THAN_V, prev, limits[-1] * 2))
    return out
