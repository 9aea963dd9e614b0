"""Counts per hour and per source/category/class, and the street and department rankings."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict

from app import timeutil
from app.kpi import sums as S
from app.kpi.engine import kpis_from, linkage_counts
from app.kpi.model import Scope, Window
from app.labels import SOURCES
from db import kpi_rollups as R

DIMS = ("source", "category", "class", "grid")
CLASS_LABELS = {"ordinary": "一般", "emergency": "紧急", "assigned": "交办"}

# street score: weights of the rates it combines (missing rates are left out, weights renormalised)
SCORE_WEIGHTS = {
    "ontime_closure_rate": 0.4,
    "response_rate": 0.2,
    "arrival_within_10": 0.2,
    "satisfaction_rate": 0.2,
}


def hourly_counts(
    conn: sqlite3.Connection, scope: Scope, since: dt.datetime, until: dt.datetime, *, drills: str = "exclude"
) -> list[tuple[str, int]]:
    """Events reported per hour (merged and rejected excluded): ``[(hour ISO +08:00, n)]`` for every
    hour from ``since``'s hour up to ``until`` (exclusive), zeros included. An edge hour counts
    only the part inside ``[since, until)``."""
    w = Window(since, until)
    since, until = w.since, w.until
    S.check_drills(drills)
    if until <= since:
        return []
    start = S._floor_hour(since)
    counts: dict[str, int] = defaultdict(int)
    rollup = scope.kind != "grid" and S.rollups_ready(conn)
    scan_ranges = [(since, until)]
    if rollup:
        h0, h1 = S._ceil_hour(since), S._floor_hour(until)
        if h0 < h1:
            term, params = S._rollup_scope(scope)
            for hour, n in conn.execute(
                f"SELECT hour, sum(reported) FROM kpi_hourly WHERE hour >= ? AND hour < ? AND drill = ? AND {term} "
                "GROUP BY hour",
                [
                    timeutil.to_iso(h0)[:13],
                    timeutil.to_iso(h1)[:13],
                    0 if drills == "exclude" else 1,
                    *params,
                ],
            ):
                counts[hour] += int(n or 0)
            scan_ranges = [(a, b) for a, b in ((since, h0), (h1, until)) if b > a]
    term, params = S.scope_term(scope)
    for a, b in scan_ranges:
        for hour, n in conn.execute(
            f"SELECT substr(e.reported_at, 1, 13), count(*) FROM events e WHERE e.reported_at >= ? AND e.reported_at < ? "
            f"AND {R.LIVE.format(e='e')} AND {S.drill_term(drills)} AND {term} GROUP BY 1",
            [timeutil.to_iso(a), timeutil.to_iso(b), *params],
        ):
            counts[hour] += int(n)
    out = []
    t = start
    while t < until:
        iso = timeutil.to_iso(t)
        out.append((iso, counts.get(iso[:13], 0)))
        t += S.HOUR
    return out


def _labels(conn: sqlite3.Connection, dim: str) -> dict[str, str]:
    if dim == "source":
        return {k: v[0] for k, v in SOURCES.items()}
    if dim == "class":
        return dict(CLASS_LABELS)
    if dim == "grid":
        return {r[0]: r[1] for r in conn.execute("SELECT id, name FROM grids")}
    return {r[0]: r[1] for r in conn.execute("SELECT code, name_zh FROM categories")}


def counts_by(
    conn: sqlite3.Connection, scope: Scope, window: Window, dim: str, *, drills: str = "exclude"
) -> list[tuple[str, str, int]]:
    """Events reported in the window (merged and rejected excluded) by ``dim`` ('source',
    'category', 'class' or 'grid'): ``[(code, label_zh, n)]``, largest first (ties by code)."""
    if dim not in DIMS:
        raise ValueError(f"dim must be one of {', '.join(DIMS)}, not {dim!r}")
    S.check_drills(drills)
    counts: dict[str, int] = defaultdict(int)
    since, until = window.since, window.until
    scan_ranges = [(since, until)] if until > since else []
    if scope.kind in ("district", "street") and S.rollups_ready(conn):
        d0, d1 = S._ceil_day(since), S._floor_day(until)
        if d0 < d1:
            term, params = ("1", []) if scope.kind == "district" else ("street_code = ?", [scope.code])
            for code, n in conn.execute(
                f"SELECT code, sum(n) FROM kpi_counts_daily WHERE dim = ? AND day >= ? AND day < ? AND drill = ? "
                f"AND {term} GROUP BY code",
                [
                    dim,
                    timeutil.to_iso(d0)[:10],
                    timeutil.to_iso(d1)[:10],
                    0 if drills == "exclude" else 1,
                    *params,
                ],
            ):
                counts[code] += int(n or 0)
            scan_ranges = [(a, b) for a, b in ((since, d0), (d1, until)) if b > a]
    term, params = S.scope_term(scope)
    for a, b in scan_ranges:
        for code, n in conn.execute(
            f"SELECT coalesce(e.{R.COUNT_DIMS[dim]}, ''), count(*) FROM events e WHERE e.reported_at >= ? AND e.reported_at < ? "
            f"AND {R.LIVE.format(e='e')} AND {S.drill_term(drills)} AND {term} GROUP BY 1",
            [timeutil.to_iso(a), timeutil.to_iso(b), *params],
        ):
            counts[code] += int(n)
    labels = _labels(conn, dim)
    rows = [(code, labels.get(code, code), n) for code, n in counts.items() if n]
    rows.sort(key=lambda r: (-r[2], r[0]))
    return rows


def top_grids(
    conn: sqlite3.Connection, scope: Scope, window: Window, *, drills: str = "exclude", limit: int = 10
) -> list[dict]:
    """Hot spots: the grids with most events reported in the window (merged/rejected excluded),
    each ``{grid_id, name, street_code, street_name, n, top_category}``."""
    rows = [(code, n) for code, _label, n in counts_by(conn, scope, window, "grid", drills=drills) if code][
        :limit
    ]
    out = []
    for gid, n in rows:
        g = conn.execute(
            "SELECT g.name, g.street_code, s.name FROM grids g LEFT JOIN streets s ON s.code = g.street_code "
            "WHERE g.id = ?",
            (gid,),
        ).fetchone()
        cat = conn.execute(
            f"SELECT c.name_zh, count(*) AS k FROM events e LEFT JOIN categories c ON c.code = e.category "
            f"WHERE e.grid_id = ? AND e.reported_at >= ? AND e.reported_at < ? AND {R.LIVE.format(e='e')} "
            f"AND {S.drill_term(drills)} GROUP BY e.category ORDER BY k DESC LIMIT 1",
            (gid, window.since_iso, window.until_iso),
        ).fetchone()
        out.append({
            "grid_id": gid, "name": g[0] if g else gid, "street_code": g[1] if g else None,
            "street_name": g[2] if g else None, "n": int(n), "top_category": cat[0] if cat else None,
        })  # fmt: skip
    return out


def _score(k: dict) -> float | None:
    num = den = 0.0
    for key, w in SCORE_WEIGHTS.items():
        v = k[key].value
        if v is not None:
            num += w * v
            den += w
    return round(num / den, 2) if den else None


def _rank(rows: list[dict], key: str) -> None:
    ordered = sorted(rows, key=lambda r: (r[key] is None, -(r[key] or 0), r["code"]))
    rank = 0
    for r in ordered:
        if r[key] is None:
            r["rank"] = None
        else:
            rank += 1
            r["rank"] = rank
    rows[:] = ordered


def street_ranking(
    conn: sqlite3.Connection, window: Window, *, drills: str = "exclude", now: dt.datetime | None = None
) -> list[dict]:
    """Every street with ``code, name, reported, response_rate, closure_rate, ontime_closure_rate,
    arrival_within_10, satisfaction_rate, backlog, overdue, score, rank`` (rates in %, None when
    undefined). ``score`` = 40% 按期结案率 + 20% 响应率 + 20% 10分钟到场率 + 20% 满意率, missing rates
    left out and the weights renormalised; ranked by score (None last, unranked)."""
    now = now or timeutil.now()
    parts = street_parts(conn, window, drills, now)
    return street_rows(conn, *parts)


def street_parts(
    conn: sqlite3.Connection, window: Window, drills: str, now: dt.datetime
) -> tuple[dict, dict, dict]:
    """Per-street measure sums, (backlog, overdue) and (whistled, linked): the district's numbers
    are their sums, so a dashboard computes them once for the tiles and the ranking."""
    district = Scope("district")
    sums = S.measure_sums(conn, district, window.since, window.until, drills, group="street")
    opens = S.open_counts(conn, district, window.until, now, drills, group="street")
    link = linkage_counts(conn, district, window, drills, group="street")
    return sums, opens, link


def street_rows(conn: sqlite3.Connection, sums: dict, opens: dict, link: dict) -> list[dict]:
    rows = []
    for code, name in conn.execute("SELECT code, name FROM streets ORDER BY code"):
        m = sums.get(code, dict.fromkeys(R.MEASURE_NAMES, 0))
        backlog, overdue = opens.get(code, (0, 0))
        k = kpis_from(m, _within_dist(m), backlog, overdue, link.get(code, (0, 0)))
        row = {"code": code, "name": name}
        for key in ("reported", "response_rate", "resolution_rate", "closure_rate", "ontime_closure_rate",
                    "arrival_within_10", "satisfaction_rate", "linkage_rate", "due", "deferred", "backlog", "overdue"):  # fmt: skip
            row[key] = k[key].value
        row["arrival_mean"] = (m["arrival_sum_s"] / m["arrivals"] / 60.0) if m["arrivals"] else None
        row["kpis"] = k
        row["score"] = _score(k)
        rows.append(row)
    _rank(rows, "score")
    return rows


def _within_dist(m: dict) -> list[tuple[int, int]]:
    """A two-point stand-in distribution that reproduces arrival count, ≤10-min share and the sum
    (rankings use the share and the mean; median/p90 are not ranked)."""
    n, le = m["arrivals"], m["arrival_le10"]
    if not n:
        return []
    return [(0, le), (600 + 1, n - le)] if le < n else [(0, n)]


def department_ranking(
    conn: sqlite3.Connection, window: Window, *, drills: str = "exclude", now: dt.datetime | None = None
) -> list[dict]:
    """Every department with ``code, name, reported, due, deferred, ontime_closure_rate,
    closure_rate, response_rate, satisfaction_rate, backlog, overdue, rank`` (events whose
    current assignee is the department); ranked by 按期结案率 (None last, unranked)."""
    now = now or timeutil.now()
    district = Scope("district")
    sums = S.measure_sums(conn, district, window.since, window.until, drills, group="dept")
    opens = S.open_counts(conn, district, window.until, now, drills, group="dept")
    rows = []
    for code, name in conn.execute("SELECT code, name FROM departments ORDER BY code"):
        m = sums.get(code, dict.fromkeys(R.MEASURE_NAMES, 0))
        backlog, overdue = opens.get(code, (0, 0))
        k = kpis_from(m, _within_dist(m), backlog, overdue, (0, 0))
        row = {"code": code, "name": name}
        for key in ("reported", "due", "deferred", "ontime_closure_rate", "closure_rate", "response_rate",
                    "satisfaction_rate", "backlog", "overdue"):  # fmt: skip
            row[key] = k[key].value
        row["kpis"] = k
        rows.append(row)
    _rank(rows, "ontime_closure_rate")
    return rows
