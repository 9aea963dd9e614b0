"""Read one event with its names and its log, for the detail panel (Qt-free)."""

from __future__ import annotations

import sqlite3

import orjson

from app.lifecycle import ACTION_LABELS_ZH


def get_event(conn: sqlite3.Connection, event_id: int, *, street_scope: str | None = None) -> dict | None:
    """The event as a dict with category/street/grid names, or None (also when out of scope)."""
    row = conn.execute(
        """
        SELECT e.*, c.name_zh AS category_name, c.name_en AS category_name_en,
               s.name AS street_name, g.name AS grid_name, cm.name AS community_name
        FROM events e
        LEFT JOIN categories c ON c.code = e.category
        LEFT JOIN streets s ON s.code = e.street_code
        LEFT JOIN grids g ON g.id = e.grid_id
        LEFT JOIN communities cm ON cm.code = e.community_code
        WHERE e.id = ?
        """,
        (event_id,),
    ).fetchone()
    if row is None:
        return None
    event = dict(row)
    if street_scope and event["street_code"] != street_scope:
        return None
    return event


def get_log(conn: sqlite3.Connection, event_id: int) -> list[dict]:
    """The event's log in order, with actor names resolved where the actor is a person."""
    rows = conn.execute(
        """
        SELECT l.*, p.name AS actor_name, p.position AS actor_position
        FROM event_log l LEFT JOIN people p ON p.uid = l.actor
        WHERE l.event_id = ? ORDER BY l.id
        """,
        (event_id,),
    ).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["action_label"] = ACTION_LABELS_ZH.get(d["action"], d["action"])
        d["payload"] = orjson.loads(d["payload"]) if d["payload"] else None
        out.append(d)
    return out
