"""The scenario clock, pure: scenario time from a ``drills`` row and the wall time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from app import timeutil

STALE_HEARTBEAT_S = 20  # a running drill whose console has been silent this long is orphaned


def elapsed(drill: Mapping, at: dt.datetime | str | None = None) -> float:
    """Scenario seconds reached at wall time ``at``: ``elapsed_s + (at − anchor_at) × speed``
    while running, else ``elapsed_s``."""
    base = float(drill.get("elapsed_s") or 0)
    if drill.get("status") != "running" or not drill.get("anchor_at"):
        return base
    now = timeutil.parse(at) if isinstance(at, str) else (at or timeutil.now())
    wall = (now - timeutil.parse(drill["anchor_at"])).total_seconds()
    return base + max(0.0, wall) * float(drill.get("speed") or 1)


def is_orphaned(drill: Mapping, at: dt.datetime | None = None) -> bool:
    """Running, but its coordinator console stopped sending heartbeats."""
    if drill.get("status") != "running" or not drill.get("heartbeat_at"):
        return False
    now = at or timeutil.now()
    return (now - timeutil.parse(drill["heartbeat_at"])).total_seconds() > STALE_HEARTBEAT_S


def fmt(seconds: float) -> str:
    """``H:MM:SS`` of a scenario time."""
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
