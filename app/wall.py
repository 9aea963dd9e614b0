"""The wall's behaviour, Qt-free: theme rotation with emergency takeover, and named layouts.

:class:`WallRotation` is a small state machine driven by a clock in seconds (the widget calls
:meth:`WallRotation.tick` every second and applies the theme it returns through ``set_theme``):

- ``auto``: the next theme every ``period_s`` (at least :data:`MIN_PERIOD_S`);
- ``paused``: stays on the current theme; ``pinned``: shows one named theme;
- a takeover (a new emergency-class event) suspends the rotation until :meth:`end_takeover` or
  ``takeover_s`` seconds later; then the previous mode resumes with a fresh period.

Layouts are plain dicts: ``mode`` (routine | map_only | half | third), ``columns`` per side (1–2),
``themes`` and ``period_s``. :data:`PRESETS` are built in; saved ones live in ``wall_layouts``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MIN_PERIOD_S = 30.0
DEFAULT_PERIOD_S = 60.0
DEFAULT_TAKEOVER_S = 90.0
DEFAULT_THEMES: tuple[str, ...] = ("command", "economy", "ecology")  # the three one-maps (issue 5)
MODES = ("routine", "map_only", "half", "third")
THEME_NAMES_ZH = {"command": "联动指挥一张图", "economy": "楼宇经济一张图", "ecology": "长江生态眼一张图"}
THEME_NAMES_EN = {"command": "Command map", "economy": "Building economy map", "ecology": "Yangtze ecology map"}
LAYOUT_NAMES_EN = {"常态": "routine", "仅地图": "map only", "二分之一屏": "half screen", "三分之一屏": "third screen"}


@dataclass
class Takeover:
    event_id: int
    started: float
    until: float


@dataclass
class WallRotation:
    themes: Sequence[str] = DEFAULT_THEMES
    period_s: float = DEFAULT_PERIOD_S
    set_theme: Callable[[str], None] | None = None
    takeover_s: float = DEFAULT_TAKEOVER_S
    mode: str = "auto"  # auto | paused | pinned
    pinned: str | None = None
    index: int = 0
    takeover: Takeover | None = None
    _next_at: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.themes = tuple(self.themes) or DEFAULT_THEMES
        self.period_s = max(float(self.period_s), MIN_PERIOD_S)

    @property
    def current(self) -> str:
        if self.mode == "pinned" and self.pinned:
            return self.pinned
        return self.themes[self.index % len(self.themes)]

    def _apply(self) -> str:
        if self.set_theme is not None:
            self.set_theme(self.current)
        return self.current

    def tick(self, now: float) -> str | None:
        """Advance the clock; returns the theme to show when it changes (else None)."""
        if self.takeover is not None:
            if now >= self.takeover.until:
                self.takeover = None
                self._next_at = now + self.period_s
            return None
        if self._next_at is None:
            self._next_at = now + self.period_s
            return None
        if self.mode != "auto" or len(self.themes) < 2 or now < self._next_at:
            return None
        self.index = (self.index + 1) % len(self.themes)
        self._next_at = now + self.period_s
        return self._apply()

    def pause(self) -> None:
        self.mode = "paused"

    def resume(self, now: float | None = None) -> None:
        self.mode, self.pinned = "auto", None
        if now is not None:
            self._next_at = now + self.period_s

    def pin(self, theme: str) -> str:
        if theme not in self.themes:
            raise ValueError(f"unknown theme {theme!r}; the wall rotates {list(self.themes)}")
        self.mode, self.pinned = "pinned", theme
        return self._apply()

    def set_period(self, seconds: float) -> None:
        self.period_s = max(float(seconds), MIN_PERIOD_S)

    def set_themes(self, themes: Sequence[str]) -> None:
        self.themes = tuple(themes) or DEFAULT_THEMES
        self.index %= len(self.themes)

    def start_takeover(self, event_id: int, now: float) -> None:
        """A new emergency: rotation stops until it ends (a newer one extends it)."""
        self.takeover = Takeover(int(event_id), now, now + self.takeover_s)

    def end_takeover(self, now: float) -> None:
        self.takeover = None
        self._next_at = now + self.period_s

    @property
    def status_zh(self) -> str:
        if self.takeover is not None:
            return f"应急接管 · 事件 #{self.takeover.event_id}"
        if self.mode == "paused":
            return "轮播暂停"
        if self.mode == "pinned":
            return f"固定 · {THEME_NAMES_ZH.get(self.current, self.current)}"
        return f"轮播 · 每 {int(self.period_s)} 秒" if len(self.themes) > 1 else "常态"

    @property
    def status_en(self) -> str:
        if self.takeover is not None:
            return f"emergency takeover · event #{self.takeover.event_id}"
        if self.mode == "paused":
            return "rotation paused"
        if self.mode == "pinned":
            return f"pinned · {THEME_NAMES_EN.get(self.current, self.current)}"
        return f"rotating · every {int(self.period_s)} s" if len(self.themes) > 1 else "routine"


PRESETS: dict[str, dict] = {
    "常态": {"mode": "routine", "columns": 2},
    "仅地图": {"mode": "map_only", "columns": 0},
    "二分之一屏": {"mode": "half", "columns": 1},
    "三分之一屏": {"mode": "third", "columns": 1},
}


def normalize_layout(spec: dict | None) -> dict:
    """A valid layout from ``spec`` (unknown keys dropped, bad values replaced by defaults)."""
    spec = dict(spec or {})
    mode = spec.get("mode") if spec.get("mode") in MODES else "routine"
    try:
        columns = int(spec.get("columns", 2))
    except (TypeError, ValueError):
        columns = 2
    columns = 0 if mode == "map_only" else min(max(columns, 0), 2)
    out = {"mode": mode, "columns": columns}
    themes = spec.get("themes")
    if isinstance(themes, list | tuple) and all(isinstance(t, str) for t in themes) and themes:
        out["themes"] = list(themes)
    if isinstance(spec.get("period_s"), int | float):
        out["period_s"] = max(float(spec["period_s"]), MIN_PERIOD_S)
    return out


def share_width(mode: str, full_width: int) -> int:
    """The part of the wall's width the console draws on (the LED processor gives the rest to CCTV)."""
    return {"half": full_width // 2, "third": full_width // 3}.get(mode, full_width)
