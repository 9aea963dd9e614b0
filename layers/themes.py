"""Map themes, like QGIS map themes: named sets of visible layers + styles + legend + side panel.

A :class:`Theme` names the layers it lists in the layer control (``layers``), the ones that are
on when it is chosen (``visible``), per-layer feature filters and style patches, its legend
(``"command"`` = the page's built-in event/grid legend, or a list of sections) and the id of the
side panel the console shows beside the map.  The page carries every layer of every theme, so
switching theme only toggles layer groups in the page (no reload, the view stays).

The three built-in themes are ``command`` (联动指挥), ``economy`` (楼宇经济) and ``ecology``
(长江生态眼).  User themes are stored in the replica (table ``map_themes``, see
``db/themes.py``): a name, a title, the built-in theme they derive from (its legend and panel)
and the layers they show.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from layers import command, ecology, economy
from layers.base import Layer

BASE_KEYS = ("water", "land", "district")
BUILTIN = ("command", "economy", "ecology")


@dataclass(frozen=True)
class Theme:
    name: str
    title_zh: str
    title_en: str
    layers: tuple[str, ...]
    """Layers listed in the layer control while the theme is on (base layers always draw)."""
    visible: tuple[str, ...]
    """Layers switched on when the theme is chosen."""
    panel: str
    """Side panel id: ``command`` | ``economy`` | ``ecology``."""
    legend: str = "command"
    """``command`` (built-in legend) or ``economy`` / ``ecology`` (sections from layers/)."""
    filters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """layer key → ``{"prop": p, "prefix": s}`` or ``{"prop": p, "in": [...]}``: features that fail
    are hidden while the theme is on."""
    user: bool = False

    def title(self, lang: str = "zh") -> str:
        return self.title_en if lang == "en" else self.title_zh

    def legend_sections(self, lang: str = "zh") -> list[dict] | str:
        if self.legend == "economy":
            return economy.legend(economy.DEFAULT_METRIC, lang)
        if self.legend == "ecology":
            return ecology.legend(lang)
        return "command"

    def client_config(self, lang: str = "zh") -> dict:
        return {
            "name": self.name,
            "title": self.title(lang),
            "short": self.title(lang).replace("一张图", ""),
            "layers": list(self.layers),
            "visible": list(self.visible),
            "panel": self.panel,
            "legend": self.legend_sections(lang),
            "filters": {k: dict(v) for k, v in self.filters.items()},
            "user": self.user,
        }


ECO_EVENTS = {"events": {"prop": "category", "prefix": "ECO"}}

THEMES: dict[str, Theme] = {
    "command": Theme(
        "command", "联动指挥一张图", "Linked command",
        layers=("grids", "streets", "devices", "staff", "events"),
        visible=("grids", "streets", "staff", "events"),
        panel="command", legend="command",
    ),
    "economy": Theme(
        "economy", "楼宇经济一张图", "Building economy",
        layers=("streets", "building_heights", "buildings", "building_dots", "events"),
        visible=("streets", "buildings", "building_dots"),
        panel="economy", legend="economy",
    ),
    "ecology": Theme(
        "ecology", "长江生态眼一张图", "Yangtze ecology eye",
        layers=("grids", "streets", "eco_zones", "shoreline", "eco_cameras", "eco_stations", "events"),
        visible=("streets", "eco_zones", "shoreline", "eco_cameras", "eco_stations", "events"),
        panel="ecology", legend="ecology", filters=ECO_EVENTS,
    ),
}  # fmt: skip


def all_layers() -> list[Layer]:
    """Every layer of every theme in draw order (base, polygons, lines, points; events on top)."""
    by_key = {la.key: la for la in (*command.LAYERS, *economy.LAYERS, *ecology.LAYERS)}
    order = ["water", "land", "grids", "eco_zones", "building_heights", "buildings", "streets", "district",
             "shoreline", "devices", "eco_cameras", "staff", "events", "building_dots", "eco_stations"]  # fmt: skip
    return [by_key[k] for k in order if k in by_key] + [la for k, la in by_key.items() if k not in order]


def layer_titles(lang: str = "zh") -> dict[str, str]:
    """Layer key → title, for the layers a user may put in a theme (base layers excluded)."""
    return {la.key: la.title(lang) for la in all_layers() if la.key not in BASE_KEYS}


def user_themes(conn: sqlite3.Connection) -> dict[str, Theme]:
    """Themes saved in the replica (empty for a replica without ``map_themes``)."""
    try:
        rows = conn.execute("SELECT name, title, base, layers FROM map_themes ORDER BY created_at, name").fetchall()
    except sqlite3.OperationalError:
        return {}
    known = set(layer_titles())
    out = {}
    for r in rows:
        base = THEMES.get(r["base"], THEMES["command"])
        keys = tuple(k for k in json.loads(r["layers"]) if k in known)
        out[r["name"]] = replace(base, name=r["name"], title_zh=r["title"], title_en=r["title"],
                                 layers=keys, visible=keys, user=True)  # fmt: skip
    return out


def available(conn: sqlite3.Connection | None = None) -> dict[str, Theme]:
    """Built-in themes followed by the replica's user themes."""
    out = dict(THEMES)
    if conn is not None:
        for name, t in user_themes(conn).items():
            out.setdefault(name, t)
    return out


def get(name: str, conn: sqlite3.Connection | None = None) -> Theme:
    themes = available(conn)
    try:
        return themes[name]
    except KeyError:
        raise ValueError(f"unknown map theme {name!r}; known: {', '.join(themes)}") from None


def themes_config(conn: sqlite3.Connection | None, lang: str = "zh", names: Sequence[str] | None = None) -> dict:
    """``{name: client config}`` for the page."""
    return {n: t.client_config(lang) for n, t in available(conn).items() if names is None or n in names}
