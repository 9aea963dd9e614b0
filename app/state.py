"""Application state (Qt-free): what the operator is looking at and who they are.

Widgets bind to these psygnal signals; setting a widget from the state never writes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from psygnal import Signal


@dataclass(frozen=True)
class Session:
    """Who is at the console: role, scope and actor (no authentication yet)."""

    role: str = "district"
    scope: str | None = None
    user: str | None = None
    lang: str = "zh"

    @property
    def street_scope(self) -> str | None:
        return self.scope if self.role == "street" else None

    @property
    def read_only(self) -> bool:
        return self.role == "wall"


class AppState:
    """Current theme, selected event and selected grid, with change signals."""

    theme_changed = Signal(str)
    """The one-map theme changed (``command`` / ``economy`` / ``ecology`` or a user theme's name)."""
    time_window_changed = Signal(object)  # app.timewindow.TimeWindow
    event_selected = Signal(object)  # int | None
    grid_selected = Signal(object)  # str | None

    def __init__(self, session: Session | None = None, theme: str = "command") -> None:
        self.session = session or Session()
        self._theme = theme
        self._event_id: int | None = None
        self._grid_id: str | None = None
        self._time_window = None

    @property
    def theme(self) -> str:
        return self._theme

    def set_theme(self, theme: str) -> None:
        """Switch the one-map theme by name (the map, legend and side panel follow the signal);
        a wall mode can rotate ``command`` → ``economy`` → ``ecology`` with this."""
        if not theme:
            raise ValueError("a theme name is required")
        if theme != self._theme:
            self._theme = theme
            self.theme_changed.emit(theme)

    @property
    def time_window(self):
        """The one time window of every theme (``app.timewindow.TimeWindow``)."""
        if self._time_window is None:
            from app.timewindow import TimeWindow

            self._time_window = TimeWindow()
        return self._time_window

    def set_time_window(self, window) -> None:
        if window != self._time_window:
            self._time_window = window
            self.time_window_changed.emit(window)

    @property
    def event_id(self) -> int | None:
        return self._event_id

    def select_event(self, event_id: int | None) -> None:
        if event_id != self._event_id:
            self._event_id = event_id
            self.event_selected.emit(event_id)

    @property
    def grid_id(self) -> str | None:
        return self._grid_id

    def select_grid(self, grid_id: str | None) -> None:
        if grid_id != self._grid_id:
            self._grid_id = grid_id
            self.grid_selected.emit(grid_id)
