"""Wall control state, named wall layouts and saved queue filters in the replica (issue 6).

The district console's 大屏控制 writes ``wall_control`` rows; the wall process reads them when
the replica changes (it polls ``PRAGMA data_version``), so the control works across processes.
Each write is one transaction through :meth:`db.replica.Replica.write`.
"""

from __future__ import annotations

import json
import sqlite3

from app import timeutil

CONTROL_KEYS = frozenset({"rotation", "pinned_theme", "period_s", "layout", "end_takeover", "stop_blink"})


class WallStoreError(ValueError):
    """Bad input for a wall layout, a control key or a saved filter."""


def set_control(replica, key: str, value: str | None, *, actor: str | None = None) -> None:
    if key not in CONTROL_KEYS:
        raise WallStoreError(f"unknown wall control key: {key!r} (expected one of {sorted(CONTROL_KEYS)})")
    with replica.write("wall") as conn:
        conn.execute(
            "INSERT INTO wall_control(key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by",
            (key, value, timeutil.now_iso(), actor),
        )


def read_control(conn: sqlite3.Connection) -> dict[str, tuple[str | None, str]]:
    """``{key: (value, updated_at)}``; empty on a replica without the table."""
    try:
        return {k: (v, t) for k, v, t in conn.execute("SELECT key, value, updated_at FROM wall_control")}
    except sqlite3.OperationalError:
        return {}


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 40:
        raise WallStoreError("a layout or filter name needs 1–40 characters")
    return name


def save_layout(replica, name: str, spec: dict, *, actor: str | None = None) -> None:
    name = _name(name)
    if not isinstance(spec, dict):
        raise WallStoreError("a wall layout is a JSON object")
    with replica.write("wall") as conn:
        conn.execute(
            "INSERT INTO wall_layouts(name, spec, updated_at, updated_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by",
            (name, json.dumps(spec, ensure_ascii=False, sort_keys=True), timeutil.now_iso(), actor),
        )


def delete_layout(replica, name: str) -> bool:
    with replica.write("wall") as conn:
        return conn.execute("DELETE FROM wall_layouts WHERE name = ?", (name,)).rowcount > 0


def load_layouts(conn: sqlite3.Connection) -> dict[str, dict]:
    try:
        rows = conn.execute("SELECT name, spec FROM wall_layouts ORDER BY name").fetchall()
    except sqlite3.OperationalError:
        return {}
    out = {}
    for name, spec in rows:
        try:
            out[name] = json.loads(spec)
        except ValueError:
            continue  # a hand-edited, broken row is skipped, never fatal
    return out


def save_filter(replica, scope: str | None, name: str, spec: dict, *, actor: str | None = None) -> None:
    name = _name(name)
    with replica.write("saved_filters") as conn:
        conn.execute(
            "INSERT INTO saved_filters(scope, name, spec, created_at, created_by) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(scope, name) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at",
            (scope or "", name, json.dumps(spec, ensure_ascii=False, sort_keys=True), timeutil.now_iso(), actor),
        )


def delete_filter(replica, scope: str | None, name: str) -> bool:
    with replica.write("saved_filters") as conn:
        return conn.execute("DELETE FROM saved_filters WHERE scope = ? AND name = ?", (scope or "", name)).rowcount > 0


def load_filters(conn: sqlite3.Connection, scope: str | None) -> dict[str, dict]:
    """A scope's saved filters (a station sees its own street's only)."""
    try:
        rows = conn.execute("SELECT name, spec FROM saved_filters WHERE scope = ? ORDER BY name", (scope or "",))
        return {n: json.loads(s) for n, s in rows}
    except (sqlite3.OperationalError, ValueError):
        return {}
