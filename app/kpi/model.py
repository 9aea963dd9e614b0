"""KPI value types: scope, window, one KPI value (Qt-free, no I/O)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app import timeutil

SCOPE_KINDS = ("district", "street", "grid", "department")
DRILL_MODES = ("exclude", "only")


@dataclass(frozen=True)
class Scope:
    """Where the numbers come from: the whole district, one street (``code`` = street code), one
    grid (grid id) or one department (department code; events whose current assignee is it)."""

    kind: str
    code: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCOPE_KINDS:
            raise ValueError(f"unknown scope kind {self.kind!r}; known: {', '.join(SCOPE_KINDS)}")
        if self.kind != "district" and not self.code:
            raise ValueError(f"scope {self.kind!r} needs a code")

    @classmethod
    def district(cls) -> Scope:
        return cls("district")


@dataclass(frozen=True)
class Window:
    """Half-open time window ``[since, until)``; naive datetimes are taken as Asia/Shanghai."""

    since: dt.datetime
    until: dt.datetime

    def __post_init__(self) -> None:
        since, until = _aware(self.since), _aware(self.until)
        object.__setattr__(self, "since", since)
        object.__setattr__(self, "until", until)
        if until < since:
            raise ValueError(f"window ends ({until}) before it starts ({since})")

    @property
    def since_iso(self) -> str:
        return timeutil.to_iso(self.since)

    @property
    def until_iso(self) -> str:
        return timeutil.to_iso(self.until)

    @property
    def length(self) -> dt.timedelta:
        return self.until - self.since

    def previous(self) -> Window:
        """The window of equal length just before this one (for trend arrows)."""
        return Window(self.since - self.length, self.since)

    @classmethod
    def last(cls, delta: dt.timedelta, until: dt.datetime | None = None) -> Window:
        """``[until - delta, until)``; ``until`` defaults to now."""
        end = _aware(until) if until is not None else timeutil.now()
        return cls(end - delta, end)


def _aware(t: dt.datetime) -> dt.datetime:
    if not isinstance(t, dt.datetime):
        raise TypeError(f"window bounds must be datetimes, not {type(t).__name__}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=timeutil.TZ)
    return t.astimezone(timeutil.TZ).replace(microsecond=0)


@dataclass(frozen=True)
class KpiValue:
    """One KPI. Rates carry ``value`` in percent (0–100) with ``numerator``/``denominator``
    (counts); counts carry ``value`` = the count; arrival times are minutes. ``value`` is
    ``None`` (shown as "—") only with a ``reason`` (e.g. the denominator is 0), never NaN."""

    key: str
    label_zh: str
    label_en: str
    value: float | None
    numerator: float | None
    denominator: float | None
    unit: str
    reason: str | None = None

    def label(self, lang: str = "zh") -> str:
        return self.label_en if lang == "en" else self.label_zh

    def display(self, digits: int = 1) -> str:
        """``'93.5%'``, ``'12 件'``, ``'7.3 min'`` or ``'—'``."""
        if self.value is None:
            return "—"
        if self.unit == "%":
            return f"{self.value:.{digits}f}%"
        if self.unit == "件":
            return f"{int(round(self.value)):,}"
        return f"{self.value:.{digits}f}"
