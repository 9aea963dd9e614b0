"""What a robot rule is: thresholds, the context it reads, and the findings it returns (Qt-free).

A rule is a small object with a ``name`` (stable code, e.g. ``hotspot``), Chinese and English
titles, the event category an accepted warning becomes (``accept_category``), documented default
thresholds (``params``: key → :class:`Param`) that an operator may override in the replica
(``robot_settings``), and ``find(ctx) -> list[Finding]``, a pure read over one snapshot.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

SEVERITY_ZH = {1: "Ⅰ级", 2: "Ⅱ级", 3: "Ⅲ级", 4: "Ⅳ级"}
"""National four-level warning scale: Ⅰ most severe (red) … Ⅳ least (blue)."""
SEVERITY_EN = {1: "Level I", 2: "Level II", 3: "Level III", 4: "Level IV"}
REAL_EVENTS = "drill_id IS NULL"
"""Drill events never count: every rule's event query carries this term."""
M_PER_DEG_LAT = 110_574.0
MAX_FINDINGS = 200
"""At most this many findings per rule and pass, the largest first: thousands of warnings help no
operator (and a flood usually means a threshold is too low); the pass notes the total."""


@dataclass(frozen=True)
class Param:
    """One operator-settable threshold."""

    default: float
    label_zh: str
    unit: str = ""
    minimum: float = 0.0
    maximum: float = 1e9
    integer: bool = True
    label_en: str = ""
    unit_en: str = ""

    def check(self, value: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"threshold must be a number, not {value!r}")
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"threshold {value} out of range {self.minimum:g}…{self.maximum:g} ({self.label_zh})")
        if self.integer and value != int(value):
            raise ValueError(f"threshold must be a whole number ({self.label_zh}), not {value}")
        return float(value)


@dataclass
class Finding:
    """One thing a rule noticed. ``key`` identifies it across passes (with the rule name): an
    open warning with the same key is updated, never raised twice. With ``overlap_group`` set,
    an open warning of the same rule and group that shares an event is the same finding too
    (a hot spot whose window moved on keeps its warning)."""

    key: str
    severity: int
    explanation_zh: str
    suggested_action: str
    grid_id: str | None = None
    street_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    events: list[int] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    overlap_group: str | None = None

    def evidence(self) -> dict:
        return {
            "events": sorted(set(self.events)),
            "external_ids": sorted(set(self.external_ids)),
            "people": sorted(set(self.people)),
            "devices": sorted(set(self.devices)),
        }


@dataclass
class RuleContext:
    """What a rule reads: one read connection (a snapshot), the pass time and its thresholds."""

    conn: sqlite3.Connection
    now: dt.datetime
    params: dict[str, float]
    is_workday: Callable[[dt.date], bool]
    limit: int = MAX_FINDINGS
    found_total: int | None = None
    """Set by a rule that found more than ``limit`` findings (it returns the ``limit`` largest)."""

    def keep_largest(self, groups: list, size=len) -> list:
        """The ``limit`` largest of ``groups`` (noting the total when some are left out)."""
        if len(groups) <= self.limit:
            return groups
        self.found_total = len(groups)
        return sorted(groups, key=size, reverse=True)[: self.limit]

    def iso(self, t: dt.datetime) -> str:
        from app.timeutil import to_iso

        return to_iso(t)

    def ago(self, **kw: float) -> str:
        return self.iso(self.now - dt.timedelta(**kw))

    def p(self, key: str) -> float:
        return self.params[key]


class Rule:
    """Base class: subclasses set the class attributes and implement :meth:`find`."""

    name: str = ""
    title_zh: str = ""
    title_en: str = ""
    accept_category: str = "ASSIGN.SUPERIOR"
    params: dict[str, Param] = {}
    auto_clear: bool = False
    """Open warnings of this rule whose condition is gone after a successful pass become ``cleared``."""

    def find(self, ctx: RuleContext) -> list[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def defaults(self) -> dict[str, float]:
        return {k: float(p.default) for k, p in self.params.items()}


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Equirectangular distance in metres (exact enough below a few km)."""
    kx = M_PER_DEG_LAT * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * M_PER_DEG_LAT)


def centroid(points: Iterable[tuple[float | None, float | None]]) -> tuple[float | None, float | None]:
    pts = [(x, y) for x, y in points if x is not None and y is not None]
    if not pts:
        return None, None
    return round(sum(p[0] for p in pts) / len(pts), 6), round(sum(p[1] for p in pts) / len(pts), 6)


def severity_by_count(n: int, steps: tuple[int, int, int]) -> int:
    """Ⅳ below ``steps[0]``, Ⅲ from it, Ⅱ from ``steps[1]``, Ⅰ from ``steps[2]``."""
    if n >= steps[2]:
        return 1
    if n >= steps[1]:
        return 2
    if n >= steps[0]:
        return 3
    return 4


def grid_names(conn: sqlite3.Connection) -> dict[str, tuple[str, str | None, str | None]]:
    """grid id → (grid name, street code, street name)."""
    rows = conn.execute(
        "SELECT g.id, g.name, g.street_code, s.name FROM grids g LEFT JOIN streets s ON s.code = g.street_code"
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def place_text(names: dict, grid_id: str | None) -> str:
    if not grid_id or grid_id not in names:
        return "（位置不明）"
    g, _code, street = names[grid_id]
    return f"{street or ''}{g}"
