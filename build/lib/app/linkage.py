"""Linkage handling (联动处置) over whistled events (Qt-free).

A whistled event counts as *linked* when every department summoned by its whistles checked in
no later than its deadline and the event was handled (handled, verified or closed). Drill
events never count; merged and rejected events are left out.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkageStats:
    whistled: int
    linked: int
    late_check_ins: int

    @property
    def rate(self) -> float | None:
        """linked ÷ whistled, or None when nothing was whistled (shown as "—")."""
        return self.linked / self.whistled if self.whistled else None


def linkage_stats(
    conn: sqlite3.Connection, *, since: str | None = None, until: str | None = None, street: str | None = None
) -> LinkageStats:
    """Counts over events first whistled in ``[since, until)`` (ISO text, Asia/Shanghai)."""
    where = ["e.drill_id IS NULL", "e.status NOT IN ('merged', 'rejected')"]
    args: list = []
    if since:
        where.append("w.blown_at >= ?")
        args.append(since)
    if until:
        where.append("w.blown_at < ?")
        args.append(until)
    if street:
        where.append("e.street_code = ?")
        args.append(street)
    row = conn.execute(
        f"""
        WITH per_event AS (
            SELECT e.id,
                   max(CASE WHEN d.checked_in_at IS NULL OR d.checked_in_at > d.deadline_at THEN 1 ELSE 0 END) AS any_late,
                   sum(CASE WHEN d.checked_in_at > d.deadline_at OR (d.checked_in_at IS NULL AND d.late = 1)
                            THEN 1 ELSE 0 END) AS late_n,
                   e.handled_at IS NOT NULL OR e.status IN ('handled', 'verified', 'closed') AS handled
            FROM whistles w
            JOIN events e ON e.id = w.event_id
            JOIN whistle_departments d ON d.whistle_id = w.id
            WHERE {' AND '.join(where)}
            GROUP BY e.id
        )
        SELECT count(*), coalesce(sum(any_late = 0 AND handled), 0), coalesce(sum(late_n), 0) FROM per_event
        """,
        args,
    ).fetchone()
    return LinkageStats(whistled=row[0], linked=row[1], late_check_ins=row[2])
