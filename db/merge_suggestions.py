"""Merge suggestions (Qt-free): possible duplicates found by imports, for an operator to decide.

An import never merges events. When a new event has the same category as another event within
50 m and 2 h, the pair gets a row in ``merge_suggestions`` (``event_id`` the newer event,
``other_id`` the older one). Accepting it merges one event into the other through the lifecycle
(the ``merge`` transition, logged in ``event_log`` like any other) and marks the suggestion
accepted, in one transaction; dismissing it only records the decision.
"""

from __future__ import annotations

import sqlite3

from app import timeutil

__all__ = ["SuggestionError", "list_suggestions", "accept", "dismiss"]


class SuggestionError(ValueError):
    pass


def list_suggestions(conn: sqlite3.Connection, *, status: str | None = "open", limit: int = 200) -> list[dict]:
    """Suggestions with both events' title, category, status and report time, newest first."""
    where = "WHERE m.status = ?" if status else ""
    params = (status, limit) if status else (limit,)
    rows = conn.execute(
        "SELECT m.*, a.title AS event_title, a.status AS event_status, a.reported_at AS event_reported_at, "
        "a.version AS event_version, b.title AS other_title, b.status AS other_status, "
        "b.reported_at AS other_reported_at, a.category "
        f"FROM merge_suggestions m JOIN events a ON a.id = m.event_id JOIN events b ON b.id = m.other_id {where} "
        "ORDER BY m.id DESC LIMIT ?",
        params,
    )
    return [dict(r) for r in rows]


def _open(conn, sid: int) -> dict:
    r = conn.execute("SELECT * FROM merge_suggestions WHERE id = ?", (sid,)).fetchone()
    if r is None:
        raise SuggestionError(f"no merge suggestion #{sid}")
    if r["status"] != "open":
        raise SuggestionError(f"merge suggestion #{sid} is already {r['status']}")
    return dict(r)


def accept(replica, sid: int, *, actor: str, expected_version: int | None = None, into: int | None = None,
           note: str | None = None, guard=None) -> dict:  # fmt: skip
    """Merge the suggestion's newer event into the older one (or the other way round with
    ``into=event_id``): a logged ``merge`` transition plus the suggestion marked accepted, in one
    transaction. Returns the merged event's row. Lifecycle refusals (e.g. an event already
    dispatched cannot be merged) raise :class:`app.lifecycle.IllegalTransition`.

    ``guard(row)`` (as in :mod:`db.event_ops`) is called inside the transaction with BOTH events
    (the one merged and the one it goes into) and raises to refuse: only a session that may
    ``merge`` both may accept (``app.intake_views.accept_suggestion`` passes the role check)."""
    from db import event_ops

    with replica.write("events", "event_log", "merge_suggestions") as conn:
        s = _open(conn, sid)
        target = s["other_id"] if into is None else int(into)
        if target not in (s["event_id"], s["other_id"]):
            raise SuggestionError(f"into must be #{s['event_id']} or #{s['other_id']}")
        merged = s["event_id"] if target == s["other_id"] else s["other_id"]
        if expected_version is None:
            expected_version = conn.execute("SELECT version FROM events WHERE id = ?", (merged,)).fetchone()[0]
        if guard is not None:
            row_t = conn.execute("SELECT * FROM events WHERE id = ?", (target,)).fetchone()
            if row_t is not None:
                event_ops._guarded(conn, dict(row_t), guard)
        text = note or f"合并重复事件（建议 #{sid}：相距 {s['distance_m']:.0f} 米、{s['minutes']:.0f} 分钟）"
        row = event_ops._apply(replica, conn, merged, "merge", actor=actor, expected_version=expected_version,
                               note=text, payload={"into": target, "suggestion": sid}, at=None, guard=guard)  # fmt: skip
        now = timeutil.now_iso()
        conn.execute(
            "UPDATE merge_suggestions SET status = 'accepted', resolved_at = ?, resolved_by = ?, note = ? WHERE id = ?",
            (now, actor, f"#{merged} merged into #{target}", sid),
        )
        conn.execute(
            "UPDATE merge_suggestions SET status = 'dismissed', resolved_at = ?, resolved_by = ?, "
            "note = 'event merged by suggestion #' || ? WHERE status = 'open' AND (event_id = ? OR other_id = ?)",
            (now, actor, sid, merged, merged),
        )
        return row


def dismiss(replica, sid: int, *, actor: str, note: str | None = None) -> None:
    """Not a duplicate: record the decision."""
    with replica.write("merge_suggestions") as conn:
        _open(conn, sid)
        conn.execute(
            "UPDATE merge_suggestions SET status = 'dismissed', resolved_at = ?, resolved_by = ?, note = ? WHERE id = ?",
            (timeutil.now_iso(), actor, note, sid),
        )
