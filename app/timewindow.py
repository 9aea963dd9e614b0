"""The one time window shared by all themes (last 1 h / 24 h / 7 d / 30 d / custom), Qt-free."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app import timeutil

PRESETS: dict[str, tuple[dt.timedelta | None, str, str]] = {
    "today": (None, "今日+未结", "Today + open"),
    "1h": (dt.timedelta(hours=1), "近1小时", "Last 1 h"),
    "24h": (dt.timedelta(hours=24), "近24小时", "Last 24 h"),
    "7d": (dt.timedelta(days=7), "近7天", "Last 7 d"),
    "30d": (dt.timedelta(days=30), "近30天", "Last 30 d"),
    "custom": (None, "自定义…", "Custom…"),
}


@dataclass(frozen=True)
class TimeWindow:
    """``key`` is a preset; ``custom`` carries ``start``/``end`` (ISO text).  ``today`` is the
    console's default: today's events plus every open one (the linked-command map)."""

    key: str = "today"
    start: str | None = None
    end: str | None = None

    def __post_init__(self) -> None:
        if self.key not in PRESETS:
            raise ValueError(f"unknown time window {self.key!r}; known: {', '.join(PRESETS)}")
        if self.key == "custom":
            if not self.start or not self.end:
                raise ValueError("a custom time window needs a start and an end")
            if timeutil.parse(self.start) >= timeutil.parse(self.end):
                raise ValueError(f"time window start {self.start} is not before its end {self.end}")

    def resolve(self, now: dt.datetime | None = None) -> tuple[str | None, str | None]:
        """(start, end) as stored-timestamp text; (None, None) for ``today``."""
        if self.key == "custom":
            return timeutil.to_iso(timeutil.parse(self.start)), timeutil.to_iso(timeutil.parse(self.end))  # type: ignore[arg-type]
        span = PRESETS[self.key][0]
        if span is None:
            return None, None
        now = now or timeutil.now()
        return timeutil.to_iso(now - span), timeutil.to_iso(now)

    def label(self, lang: str = "zh") -> str:
        if self.key == "custom":
            return f"{timeutil.display(self.start)} – {timeutil.display(self.end)}"
        _, zh, en = PRESETS[self.key]
        return en if lang == "en" else zh
