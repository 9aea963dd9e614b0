"""Sums of the KPI measures over a scope and window: from the rollups where whole days/hours
fit, from an exact scan of ``events`` for the sub-hour edges (and always for grid scope).

Both paths add up the same per-event contributions (``db.kpi_rollups.MEASURES``), so they
agree exactly; ``use_rollups=False`` forces the scan everywhere (tests compare the two).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict

from app import timeutil
from app.kpi.model import DRILL_MODES, Scope
from db import kpi_rollups as R

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def check_drills(drills: str) -> None:
    if drills not in DRILL_MODES:
        raise ValueError(f"drills must be one of {', '.join(DRILL_MODES)}, not {drills!r}")


# -- time pieces -------------------------------------------------------------------------------
def _floor_day(t: dt.datetime) -> dt.datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_day(t: dt.datetime) -> dt.datetime:
    f = _floor_day(t)
    return f if f == t else f + DAY


def _floor_hour(t: dt.datetime) -> dt.datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(t: dt.datetime) -> dt.datetime:
    f = _floor_hour(t)
    return f if f == t else f + HOUR


def pieces(since: dt.datetime, until: dt.datetime) -> tuple[list, list, list]:
    """Split ``[since, until)`` into whole days, whole hours and sub-hour edges (each a list of
    half-open ``(a, b)`` pairs, all Asia/Shanghai)."""
    days, hours, scans = [], [], []
    if until <= since:
        return days, hours, scans
    d0, d1 = _ceil_day(since), _floor_day(until)
    partial = [(since, d0), (d1, until)] if d0 < d1 else [(since, until)]
    if d0 < d1:
        days.append((d0, d1))
    for a, b in partial:
        if b <= a:
            continue
        h0, h1 = _ceil_hour(a), _floor_hour(b)
        if h0 < h1:
            hours.append((h0, h1))
            scans += [(x, y) for x, y in ((a, h0), (h1, b)) if y > x]
        else:
            scans.append((a, b))
    return days, hours, scans


# -- scope terms -------------------------------------------------------------------------------
def scope_term(scope: Scope, e: str = "e") -> tuple[str, list]:
    """SQL term (over events aliased ``e``) and parameters for ``scope``."""
    if scope.kind == "district":
        return "1", []
    if scope.kind == "street":
        return f"{e}.street_code = ?", [scope.code]
    if scope.kind == "grid":
        return f"{e}.grid_id = ?", [scope.code]
    return f"{e}.assignee_kind = 'department' AND {e}.assignee_code = ?", [scope.code]


def drill_term(drills: str, e: str = "e") -> str:
    check_drills(drills)
    return f"{e}.drill_id IS NULL" if drills == "exclude" else f"{e}.drill_id IS NOT NULL"


def _rollup_scope(scope: Scope) -> tuple[str, list]:
    if scope.kind == "district":
        return "1", []
    if scope.kind == "street":
        return "street_code = ?", [scope.code or ""]
    if scope.kind == "department":
        return "dept_code = ?", [scope.code or ""]
    raise ValueError("grid scope has no rollup")


GROUPS = {
    None: (None, None),
    "street": ("street_code", R.street_key("e")),
    "dept": ("dept_code", R.dept_key("e")),
}


def rollups_ready(conn: sqlite3.Connection) -> bool:
    return R.installed(conn)


# -- measure sums ------------------------------------------------------------------------------
def measure_sums(
    conn: sqlite3.Connection,
    scope: Scope,
    since: dt.datetime,
    until: dt.datetime,
    drills: str = "exclude",
    *,
    group: str | None = None,
    use_rollups: bool = True,
) -> dict:
    """``{group_key: {measure: int}}`` (``group_key`` is ``None`` without ``group``; else the
    street code / department code, ``''`` for none)."""
    check_drills(drills)
    out: dict = defaultdict(lambda: dict.fromkeys(R.MEASURE_NAMES, 0))
    if group is None:
        out[None]  # noqa: B018 - always present
    roll_col, scan_key = GROUPS[group]
    rollup = use_rollups and scope.kind != "grid" and rollups_ready(conn)
    if rollup:
        days, hours, scans = pieces(since, until)
    else:
        days, hours, scans = [], [], ([(since, until)] if until > since else [])
    drill_val = 0 if drills == "exclude" else 1
    sums = ", ".join(f"sum({m})" for m in R.MEASURE_NAMES)
    for table, bucket, length, ranges in (("kpi_daily", "day", 10, days), ("kpi_hourly", "hour", 13, hours)):
        for a, b in ranges:
            term, params = _rollup_scope(scope)
            key = roll_col or "NULL"
            sql = (
                f"SELECT {key}, {sums} FROM {table} WHERE {bucket} >= ? AND {bucket} < ? AND drill = ? "
                f"AND {term} GROUP BY 1"
            )
            lo, hi = timeutil.to_iso(a)[:length], timeutil.to_iso(b)[:length]
            for row in conn.execute(sql, [lo, hi, drill_val, *params]):
                acc = out[row[0] if group else None]
                for m, v in zip(R.MEASURE_NAMES, row[1:], strict=True):
                    acc[m] += v or 0
    for a, b in scans:
        _scan(conn, scope, a, b, drills, scan_key, group, out)
    return dict(out)


def _scan(conn, scope, a, b, drills, scan_key, group, out) -> None:
    term, params = scope_term(scope)
    dterm = drill_term(drills)
    lo, hi = timeutil.to_iso(a), timeutil.to_iso(b)
    for anchor, col in R.ANCHORS.items():
        names = R.anchor_measures(anchor)
        cols = ", ".join(f"coalesce(sum({R.measure_sql(m)}), 0)" for m in names)
        key = scan_key or "NULL"
        # a street/department scan of a short piece walks the anchor's time index (the planner
        # would otherwise walk every event of the department); a grid walks its own index
        hint = ""
        if scope.kind != "grid" and (b - a) <= DAY and _has_index(conn, ANCHOR_INDEX[anchor]):
            hint = f" INDEXED BY {ANCHOR_INDEX[anchor]}"
        sql = (
            f"SELECT {key} AS g, {cols} FROM events e{hint} WHERE e.{col} >= ? AND e.{col} < ? "
            f"AND {dterm} AND {term} GROUP BY g"
        )
        for row in conn.execute(sql, [lo, hi, *params]):
            acc = out[row[0] if group else None]
            for m, v in zip(names, row[1:], strict=True):
                acc[m] += v or 0


ANCHOR_INDEX = {"R": "ix_events_reported", "D": "ix_events_handle_due", "E": "ix_events_evaluated"}


def _has_index(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
    return row is not None


# -- arrival distribution ----------------------------------------------------------------------
def arrival_distribution(
    conn: sqlite3.Connection,
    scope: Scope,
    since: dt.datetime,
    until: dt.datetime,
    drills: str = "exclude",
    *,
    use_rollups: bool = True,
) -> list[tuple[int, int]]:
    """Sorted ``[(seconds report → on site, count)]`` for clock-applicable events reported in the
    window (merged/rejected excluded). District scope reads whole days from
    ``kpi_arrival_daily`` and scans the partial days; other scopes scan."""
    check_drills(drills)
    hist: dict[int, int] = defaultdict(int)
    if until <= since:
        return []
    ranges = [(since, until)]
    if use_rollups and scope.kind == "district" and rollups_ready(conn):
        d0, d1 = _ceil_day(since), _floor_day(until)
        if d0 < d1:
            for s, n in conn.execute(
                "SELECT arrival_s, sum(n) FROM kpi_arrival_daily WHERE day >= ? AND day < ? AND drill = ? "
                "GROUP BY arrival_s",
                (timeutil.to_iso(d0)[:10], timeutil.to_iso(d1)[:10], 0 if drills == "exclude" else 1),
            ):
                hist[int(s)] += int(n)
            ranges = [(x, y) for x, y in ((since, d0), (d1, until)) if y > x]
    term, params = scope_term(scope)
    dterm = drill_term(drills)
    has = R.HAS_ARRIVAL.format(e="e")
    secs = R.ARRIVAL_S.format(e="e")
    for a, b in ranges:
        sql = (
            f"SELECT {secs}, count(*) FROM events e WHERE e.reported_at >= ? AND e.reported_at < ? "
            f"AND e.arrival_due_at IS NOT NULL AND {has} AND {dterm} AND {term} GROUP BY 1"
        )
        for s, n in conn.execute(sql, [timeutil.to_iso(a), timeutil.to_iso(b), *params]):
            hist[int(s)] += int(n)
    return sorted((s, n) for s, n in hist.items() if n)


def percentile(dist: list[tuple[int, int]], p: float) -> float | None:
    """Percentile ``p`` (0–1) of a sorted weighted distribution, linear interpolation between
    closest ranks (numpy's default, Excel PERCENTILE.INC): position ``p·(n−1)`` in the sorted
    values. ``None`` for an empty distribution."""
    n = sum(c for _, c in dist)
    if n == 0:
        return None
    pos = p * (n - 1)
    lo_i = int(pos)
    frac = pos - lo_i
    lo = _value_at(dist, lo_i)
    if frac == 0:
        return float(lo)
    hi = _value_at(dist, lo_i + 1)
    return lo + (hi - lo) * frac


def _value_at(dist: list[tuple[int, int]], k: int) -> int:
    seen = 0
    for v, c in dist:
        seen += c
        if k < seen:
            return v
    return dist[-1][0]


# -- snapshot counts (open events now) ----------------------------------------------------------
def open_counts(
    conn: sqlite3.Connection,
    scope: Scope,
    until: dt.datetime,
    now: dt.datetime,
    drills: str = "exclude",
    *,
    group: str | None = None,
) -> dict:
    """``{group_key: (backlog, overdue)}``: events open now and reported before ``until``;
    overdue = those with a broken clock at ``min(now, until)`` (the queue's overdue tab rule)."""
    from app.queue import OPEN_TERM, OVERDUE_TERM

    term, params = scope_term(scope)
    key = GROUPS[group][1] or "NULL"
    ref = min(now, until)
    hint = " INDEXED BY ix_events_open_kpi" if _has_index(conn, "ix_events_open_kpi") else ""
    sql = (
        f"SELECT {key} AS g, count(*), coalesce(sum({OVERDUE_TERM.replace(':now', '?')}), 0) FROM events e{hint} "
        f"WHERE {OPEN_TERM} AND e.reported_at < ? AND {drill_term(drills)} AND {term} GROUP BY g"
    )
    n_now = OVERDUE_TERM.count(":now")
    ref_iso = timeutil.to_iso(ref)
    out = {}
    for row in conn.execute(sql, [*([ref_iso] * n_now), timeutil.to_iso(until), *params]):
        out[row[0] if group else None] = (int(row[1]), int(row[2]))
    if group is None:
        out.setdefault(None, (0, 0))
    return out
