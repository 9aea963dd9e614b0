"""Conflict detection: the same street or grid booked by two drills whose times overlap."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app import timeutil

ACTIVE = ("scheduled", "running", "paused")


@dataclass(frozen=True)
class Conflict:
    drill_id: int
    title: str
    starts_at: str
    ends_at: str
    streets: tuple[str, ...]
    grids: tuple[str, ...]

    def message(self, names: Mapping[str, str] | None = None) -> str:
        names = names or {}
        what = [names.get(s, s) for s in self.streets] + list(self.grids)
        return (f"与演练 #{self.drill_id}「{self.title}」（{timeutil.display(self.starts_at)}–"
                f"{self.ends_at[11:16]}）冲突：{'、'.join(what)} 同时被占用")


def window(starts_at: str, duration_min: int) -> tuple[dt.datetime, dt.datetime]:
    t0 = timeutil.parse(starts_at)
    return t0, t0 + dt.timedelta(minutes=int(duration_min))


def overlaps(a: tuple[dt.datetime, dt.datetime], b: tuple[dt.datetime, dt.datetime]) -> bool:
    """Half-open intervals: a drill ending at 10:00 and one starting at 10:00 do not clash."""
    return a[0] < b[1] and b[0] < a[1]


def clashes(plan: Mapping, others: Iterable[Mapping]) -> list[Conflict]:
    """Pure: the drills in ``others`` that overlap ``plan`` in time and share a street or grid.
    A district-level drill (no streets) books every street."""
    me = window(plan["starts_at"], plan["duration_min"])
    my_streets, my_grids = set(plan.get("streets") or ()), set(plan.get("grids") or ())
    out = []
    for o in others:
        if o.get("id") is not None and o.get("id") == plan.get("id"):
            continue
        w = window(o["starts_at"], o["duration_min"])
        if not overlaps(me, w):
            continue
        streets, grids = set(_list(o.get("streets"))), set(_list(o.get("grids")))
        if not my_streets or not streets:  # a district-wide drill books every street
            common_s, common_g = tuple(sorted(my_streets | streets)) or ("全区",), ()
        else:
            common_s, common_g = tuple(sorted(my_streets & streets)), ()
            if common_s and my_grids and grids:  # two grid drills in one street clash only on a shared grid
                common_g = tuple(sorted(my_grids & grids))
                if not common_g:
                    continue
                common_s = ()
        if common_s or common_g:
            out.append(Conflict(o["id"], o["title"], o["starts_at"], timeutil.to_iso(w[1]), common_s, common_g))
    return out


def _list(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return json.loads(v or "[]")
    return list(v)


def find_conflicts(conn: sqlite3.Connection, plan: Mapping) -> list[Conflict]:
    """Active drills in the replica that clash with ``plan`` (``plan['id']`` is excluded)."""
    t0, t1 = window(plan["starts_at"], plan["duration_min"])
    lo = timeutil.to_iso(t0 - dt.timedelta(days=1))
    rows = conn.execute(
        f"SELECT id, title, starts_at, duration_min, streets, grids FROM drills "
        f"WHERE status IN ({','.join('?' * len(ACTIVE))}) AND starts_at >= ? AND starts_at < ?",
        (*ACTIVE, lo, timeutil.to_iso(t1)),
    ).fetchall()
    return clashes(plan, [dict(r) for r in rows])
