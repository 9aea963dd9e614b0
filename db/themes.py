"""User map themes stored in the replica (table ``map_themes``, migration m006)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from app.timeutil import now_iso

BUILTIN_NAMES = ("command", "economy", "ecology")


class InvalidTheme(ValueError):
    """A theme that cannot be saved (message says why)."""


def save_theme(
    replica, name: str, title: str, base: str, layers: Sequence[str], *, known_layers: Sequence[str],
    actor: str | None = None,
) -> str:
    """Create or replace the user theme ``name``; returns the name."""
    name = (name or "").strip()
    title = (title or "").strip() or name
    if not name:
        raise InvalidTheme("主题名称不能为空 a theme needs a name")
    if len(name) > 40:
        raise InvalidTheme("主题名称最多40个字符 a theme name has at most 40 characters")
    if name in BUILTIN_NAMES:
        raise InvalidTheme(f"“{name}”是内置主题，不能覆盖 {name!r} is a built-in theme")
    if base not in BUILTIN_NAMES:
        raise InvalidTheme(f"unknown base theme {base!r}; known: {', '.join(BUILTIN_NAMES)}")
    layers = [k for k in dict.fromkeys(layers)]
    unknown = [k for k in layers if k not in known_layers]
    if unknown:
        raise InvalidTheme(f"unknown layer(s): {', '.join(unknown)}")
    if not layers:
        raise InvalidTheme("至少选择一个图层 choose at least one layer")
    with replica.write("map_themes") as conn:
        conn.execute(
            "INSERT OR REPLACE INTO map_themes (name, title, base, layers, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, title, base, json.dumps(layers), actor, now_iso()),
        )
    return name


def delete_theme(replica, name: str) -> bool:
    with replica.write("map_themes") as conn:
        return conn.execute("DELETE FROM map_themes WHERE name = ?", (name,)).rowcount > 0
