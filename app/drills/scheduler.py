"""The inject scheduler: due injects of a running drill become drill events.

Run by the coordinator's console once a second (``widgets/drill_console.py``) and by tests with
explicit times. A contingency inject (``parent_id`` set) is sent only when its parent was sent
and its event has not reached the parent's expected stage by then; otherwise it is skipped with
the reason logged. Firing is idempotent (``db.drills.fire_inject``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app import timeutil
from app.drills import clock
from db import drills as db_drills

STAGE_COLUMN = {"accepted": "accepted_at", "dispatched": "dispatched_at", "acknowledged": "acknowledged_at",
                "on_site": "on_site_at", "handled": "handled_at"}  # fmt: skip


@dataclass(frozen=True)
class Fired:
    inject_id: int
    seq: int
    event_id: int | None  # None: skipped


def due(conn, drill: dict, at: dt.datetime) -> list[dict]:
    """Pending injects whose offset the scenario clock has reached, in order."""
    el = clock.elapsed(drill, at)
    rows = conn.execute(
        "SELECT i.*, p.status AS parent_status, p.expected_stage AS parent_stage, p.event_id AS parent_event "
        "FROM drill_injects i LEFT JOIN drill_injects p ON p.id = i.parent_id "
        "WHERE i.drill_id = ? AND i.status = 'pending' AND i.offset_s <= ? ORDER BY i.offset_s, i.seq",
        (drill["id"], el),
    ).fetchall()
    return [dict(r) for r in rows]


def tick(replica, drill_id: int, *, actor: str, at: dt.datetime | None = None) -> list[Fired]:
    """Send what is due now; returns what was sent or skipped."""
    at = at or timeutil.now()
    at_iso = timeutil.to_iso(at)
    conn = replica.reader()
    try:
        d = conn.execute("SELECT * FROM drills WHERE id = ?", (drill_id,)).fetchone()
        if d is None or d["status"] != "running":
            return []
        d = dict(d)
        todo = due(conn, d, at)
        parent_reached = {}
        for r in todo:
            if r["parent_id"] and r["parent_event"]:
                col = STAGE_COLUMN[r["parent_stage"]]
                ev = conn.execute(f"SELECT {col} FROM events WHERE id = ?", (r["parent_event"],)).fetchone()
                parent_reached[r["id"]] = bool(ev and ev[0])
    finally:
        conn.close()
    el = clock.elapsed(d, at)
    out = []
    for r in todo:
        if r["parent_id"]:
            if r["parent_status"] == "pending":
                continue  # the parent has not been sent yet
            if r["parent_status"] == "skipped" or parent_reached.get(r["id"]):
                db_drills.skip_inject(replica, r["id"], actor=actor, at=at_iso,
                                      reason="前序注入已按要求处置，跟进注入不下发 parent handled in time")
                out.append(Fired(r["id"], r["seq"], None))
                continue
        event_id = db_drills.fire_inject(replica, r["id"], actor=actor, at=at_iso, elapsed_s=round(el, 1))
        out.append(Fired(r["id"], r["seq"], event_id))
    return out


def next_due_in(conn, drill: dict, at: dt.datetime | None = None) -> float | None:
    """Wall seconds until the next pending inject is due (None: none pending or not running)."""
    if drill.get("status") != "running":
        return None
    r = conn.execute("SELECT min(offset_s) FROM drill_injects WHERE drill_id = ? AND status = 'pending'",
                     (drill["id"],)).fetchone()  # fmt: skip
    if r[0] is None:
        return None
    return max(0.0, (r[0] - clock.elapsed(drill, at)) / float(drill.get("speed") or 1))
