"""What the dashboards and the wall show, assembled in one read (Qt-free, runs in a worker).

:func:`load_dashboard` reads one snapshot: KPI tiles with their trend, events per hour with the
same hours 7 days earlier, events by category and by source, the arrival-time distribution,
the street and department rankings, and the ticker's newest events. It uses the KPI engine
``app.kpi`` (issue 6) when it is present; until then, a small built-in fallback computes the
counts and the arrival figures and leaves the rates undefined with a reason.

``mask=True`` (the wall) passes every text through :mod:`app.masking` here, on the data.
Drill events never count (``drills="exclude"``); ``drills="only"`` shows a drill on its own.
An empty window gives zeros and ``empty=True`` (the views print 无数据), never NaN.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from app import masking, timeutil
from app.labels import SOURCES

try:  # the KPI engine (app/kpi, issue 6); the fallback below only serves a tree without it
    from app import kpi as _kpi
except ImportError:  # pragma: no cover - depends on the merge state
    _kpi = None

_RATE_KEYS = ("response_rate", "resolution_rate", "closure_rate", "ontime_closure_rate", "arrival_within_10",
              "satisfaction_rate", "linkage_rate", "score")  # fmt: skip


def _frac(v: float | None, unit: str = "%") -> float | None:
    """The engine gives rates in percent; the views take fractions."""
    return None if v is None else (v / 100.0 if unit == "%" else v)


def _rates_to_fractions(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k != "kpis"}
    for k in _RATE_KEYS:
        if k in out:
            out[k] = _frac(out[k])
    return out

TILE_KEYS = ("reported", "backlog", "overdue", "ontime_closure_rate", "arrival_within_10", "satisfaction_rate",
             "response_rate", "resolution_rate", "closure_rate", "linkage_rate", "arrival_median")  # most important first
ARRIVAL_BINS = tuple(range(0, 62, 2))  # minutes: 0–60 in 2-minute bins, the rest in the last bin
TICKER_LIMIT = 30
SLOW_MAX_AGE_S = 30.0  # trend, arrival distribution and rankings: at most this old (WALL-UX: KPIs every 30 s)


@dataclass(frozen=True)
class Scope:
    """district (code None), street (NBS code), grid (grid id) or department (code)."""

    kind: str = "district"
    code: str | None = None


@dataclass(frozen=True)
class Tile:
    key: str
    label_zh: str
    label_en: str
    value: float | None
    unit: str
    reason: str | None = None
    previous: float | None = None

    @property
    def trend(self) -> int:
        """+1 up, -1 down, 0 same or unknown."""
        if self.value is None or self.previous is None:
            return 0
        return (self.value > self.previous) - (self.value < self.previous)

    def text(self) -> str:
        """The number as shown: ``87.5``, ``123``, ``—`` when undefined."""
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return "—"
        if self.unit == "%":
            return f"{self.value * 100:.1f}"  # rates are held as fractions here
        if self.unit == "min":
            return f"{self.value:.1f}"
        return f"{int(round(self.value)):,}"


@dataclass
class DashboardData:
    scope: Scope
    since: str
    until: str
    generated_at: str
    tiles: list[Tile] = field(default_factory=list)
    hourly: list[tuple[str, int]] = field(default_factory=list)  # last 24 h, hour ISO → n
    hourly_prev: list[tuple[str, int]] = field(default_factory=list)  # the same hours 7 days earlier
    by_category: list[tuple[str, str, int]] = field(default_factory=list)
    by_source: list[tuple[str, str, int]] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    streets: list[dict] = field(default_factory=list)
    departments: list[dict] = field(default_factory=list)
    ticker: list[dict] = field(default_factory=list)
    engine: str = "fallback"
    mask: bool = False
    slow_at: float = field(default_factory=time.monotonic)  # when the slow parts were read

    @property
    def empty(self) -> bool:
        return not any(n for _, n in self.hourly) and not self.by_category and not self.arrival

    def arrival_histogram(self) -> tuple[list[int], list[int]]:
        """(bin starts in minutes, counts); values ≥ 60 go into the last bin."""
        counts = [0] * (len(ARRIVAL_BINS) - 1)
        for m in self.arrival:
            if m is None or math.isnan(m) or m < 0:
                continue
            i = min(int(m // 2), len(counts) - 1)
            counts[i] += 1
        return list(ARRIVAL_BINS[:-1]), counts


# -- the fallback (used only while app.kpi is missing) ----------------------------------------------
_LABELS = {
    "reported": ("上报数", "Reported", "件"), "backlog": ("积压", "Backlog", "件"),
    "overdue": ("超时", "Overdue", "件"), "response_rate": ("响应率", "Response rate", "%"),
    "resolution_rate": ("解决率", "Resolution rate", "%"), "satisfaction_rate": ("满意率", "Satisfaction", "%"),
    "ontime_closure_rate": ("按期结案率", "On-time closure", "%"), "closure_rate": ("结案率", "Closure rate", "%"),
    "linkage_rate": ("联动处置率", "Linked handling", "%"), "arrival_within_10": ("10分钟到场率", "Arrival ≤10 min", "%"),
    "arrival_median": ("到场中位数", "Arrival median", "min"),
}  # fmt: skip


def _scope_sql(scope: Scope, alias: str = "e") -> tuple[str, list]:
    if scope.kind == "street" and scope.code:
        return f" AND {alias}.street_code = ?", [scope.code]
    if scope.kind == "grid" and scope.code:
        return f" AND {alias}.grid_id = ?", [scope.code]
    if scope.kind == "department" and scope.code:
        return f" AND {alias}.assignee_code = ?", [scope.code]
    return "", []


def _drill_sql(drills: str, alias: str = "e") -> str:
    return f" AND {alias}.drill_id IS NOT NULL" if drills == "only" else f" AND {alias}.drill_id IS NULL"


def _fb_counts(conn, scope, since, until, drills) -> dict[str, Any]:
    ssql, args = _scope_sql(scope)
    base = f" FROM events e WHERE e.reported_at >= ? AND e.reported_at < ?{ssql}{_drill_sql(drills)}"
    reported = conn.execute("SELECT count(*)" + base, [since, until, *args]).fetchone()[0]
    closed = conn.execute("SELECT count(*)" + base + " AND e.status = 'closed'", [since, until, *args]).fetchone()[0]
    excluded = conn.execute("SELECT count(*)" + base + " AND e.status IN ('merged','rejected')",
                            [since, until, *args]).fetchone()[0]  # fmt: skip
    ssql2, args2 = _scope_sql(scope)
    open_sql = f" FROM events e WHERE e.status NOT IN ('closed','rejected','merged'){ssql2}{_drill_sql(drills)}"
    backlog = conn.execute("SELECT count(*)" + open_sql, args2).fetchone()[0]
    overdue = conn.execute("SELECT count(*)" + open_sql + " AND e.handle_due_at < ?", [*args2, until]).fetchone()[0]
    return {"reported": reported, "closed": closed, "excluded": excluded, "backlog": backlog, "overdue": overdue}


def _fb_arrival(conn, scope, since, until, drills) -> list[float]:
    ssql, args = _scope_sql(scope)
    rows = conn.execute(
        "SELECT (julianday(e.on_site_at) - julianday(e.reported_at)) * 1440 FROM events e "
        "JOIN categories c ON c.code = e.category AND c.arrival_clock = 1 "
        f"WHERE e.reported_at >= ? AND e.reported_at < ? AND e.on_site_at IS NOT NULL{ssql}{_drill_sql(drills)}",
        [since, until, *args],
    )
    return [round(float(r[0]), 2) for r in rows if r[0] is not None and r[0] >= 0]


def _tile_from(key: str, value: float | None, reason: str | None = None, previous: float | None = None) -> Tile:
    zh, en, unit = _LABELS[key]
    return Tile(key, zh, en, value, unit, reason, previous)


def _fb_tiles(conn, scope, since, until, prev_since, drills) -> list[Tile]:
    cur = _fb_counts(conn, scope, since, until, drills)
    prev = _fb_counts(conn, scope, prev_since, since, drills)
    arr = _fb_arrival(conn, scope, since, until, drills)
    arr_prev = _fb_arrival(conn, scope, prev_since, since, drills)

    def resolution(c):
        d = c["reported"] - c["excluded"]
        return (c["closed"] / d, None) if d > 0 else (None, "窗口内无有效上报事件")

    def within(a):
        return (sum(1 for m in a if m <= 10) / len(a), None) if a else (None, "窗口内无适用到场时钟的到场记录")

    res, res_reason = resolution(cur)
    win, win_reason = within(arr)
    pending = "KPI 引擎（app/kpi.py）未接入"
    tiles = [
        _tile_from("reported", cur["reported"], previous=prev["reported"]),
        _tile_from("backlog", cur["backlog"]),
        _tile_from("overdue", cur["overdue"]),
        _tile_from("resolution_rate", res, res_reason, resolution(prev)[0]),
        _tile_from("arrival_within_10", win, win_reason, within(arr_prev)[0]),
        _tile_from("arrival_median", statistics.median(arr) if arr else None,
                   None if arr else "窗口内无到场记录", statistics.median(arr_prev) if arr_prev else None),
        _tile_from("ontime_closure_rate", None, pending),
        _tile_from("satisfaction_rate", None, pending),
    ]  # fmt: skip
    return tiles


def _fb_hourly(conn, scope, since, until, drills) -> dict[str, int]:
    ssql, args = _scope_sql(scope)
    rows = conn.execute(
        "SELECT substr(e.reported_at, 1, 13), count(*) FROM events e "
        f"WHERE e.reported_at >= ? AND e.reported_at < ?{ssql}{_drill_sql(drills)} GROUP BY 1",
        [since, until, *args],
    )
    return {r[0]: r[1] for r in rows}


def _fb_counts_by(conn, scope, since, until, dim, drills) -> list[tuple[str, str, int]]:
    ssql, args = _scope_sql(scope)
    if dim == "category":
        sql = ("SELECT e.category, coalesce(c.name_zh, e.category), count(*) FROM events e "
               "LEFT JOIN categories c ON c.code = e.category ")  # fmt: skip
    else:
        sql = "SELECT e.source, e.source, count(*) FROM events e "
    sql += f"WHERE e.reported_at >= ? AND e.reported_at < ?{ssql}{_drill_sql(drills)} GROUP BY 1 ORDER BY 3 DESC"
    out = [(r[0], r[1], r[2]) for r in conn.execute(sql, [since, until, *args])]
    if dim == "source":
        out = [(code, SOURCES.get(code, (code, code))[0], n) for code, _, n in out]
    return out


def _fb_streets(conn, since, until, drills) -> list[dict]:
    rows = conn.execute(
        "SELECT s.code, s.name, count(e.id) AS reported, "
        "sum(e.status = 'closed') AS closed, "
        "sum(e.status IN ('merged','rejected')) AS excluded "
        "FROM streets s LEFT JOIN events e ON e.street_code = s.code AND e.reported_at >= ? AND e.reported_at < ?"
        f"{_drill_sql(drills)} GROUP BY s.code ORDER BY s.code",
        [since, until],
    ).fetchall()
    out = []
    for code, name, reported, closed, excluded in rows:
        d = (reported or 0) - (excluded or 0)
        rate = (closed or 0) / d if d > 0 else None
        out.append({"code": code, "name": name, "reported": reported or 0, "closure_rate": rate,
                    "score": rate if rate is not None else 0.0})  # fmt: skip
    out.sort(key=lambda r: (-r["score"], r["code"]))
    for i, r in enumerate(out, 1):
        r["rank"] = i
    return out


def _fb_departments(conn, scope, since, until, drills) -> list[dict]:
    ssql, args = _scope_sql(scope)
    rows = conn.execute(
        "SELECT d.code, d.name, count(e.id) AS due, "
        "sum(e.closed_at IS NOT NULL AND e.closed_at <= e.handle_due_at) AS ontime "
        "FROM events e JOIN departments d ON d.code = e.assignee_code "
        f"WHERE e.assignee_kind = 'department' AND e.handle_due_at >= ? AND e.handle_due_at < ?{ssql}"
        f"{_drill_sql(drills)} GROUP BY d.code ORDER BY due DESC",
        [since, until, *args],
    ).fetchall()
    return [{"code": c, "name": n, "due": due, "ontime_closure_rate": (ot or 0) / due if due else None}
            for c, n, due, ot in rows]  # fmt: skip


# -- the engine (app.kpi) ----------------------------------------------------------------------
def _kpi_scope(scope: Scope):
    return _kpi.Scope(scope.kind, scope.code)


def _engine_tiles(conn, scope, window, drills, now, previous: dict[str, float | None] | None = None) -> list[Tile]:
    """Tiles with their trend; ``previous`` (key → value of the previous window) reuses a trend
    read less than :data:`SLOW_MAX_AGE_S` ago instead of computing the previous window again."""
    cur = _kpi.compute_kpis(conn, _kpi_scope(scope), window, drills=drills, now=now)
    if previous is None:
        prev = _kpi.kpi_trend(conn, _kpi_scope(scope), window, drills=drills, now=now)
        previous = {k: _frac(v.value, v.unit) for k, v in prev.items()}
    tiles = []
    for key in TILE_KEYS:
        v = cur.get(key)
        if v is None:
            continue
        tiles.append(Tile(key, v.label_zh, v.label_en, _frac(v.value, v.unit), v.unit, v.reason, previous.get(key)))
    return tiles


# -- the snapshot ------------------------------------------------------------------------------
def _hours(end: dt.datetime, n: int = 24) -> list[dt.datetime]:
    top = end.replace(minute=0, second=0, microsecond=0)
    return [top - dt.timedelta(hours=i) for i in range(n - 1, -1, -1)]


def load_dashboard(
    conn: sqlite3.Connection,
    scope: Scope | None = None,
    *,
    now: dt.datetime | None = None,
    kpi_days: int = 30,
    drills: str = "exclude",
    mask: bool = False,
    ticker_limit: int = TICKER_LIMIT,
    previous: DashboardData | None = None,
) -> DashboardData:
    """Everything the dashboards show for ``scope``, read in one transaction.

    Incremental: with ``previous`` (the last snapshot of the same scope, less than
    :data:`SLOW_MAX_AGE_S` old) the slow, slowly-changing parts — the previous window's KPIs (trend),
    the arrival distribution and the street and department rankings — are taken from it; tiles,
    hourly series, categories, sources and the ticker are always read afresh."""
    scope = scope or Scope()
    now = (now or timeutil.now()).astimezone(timeutil.TZ)
    until_dt = now + dt.timedelta(seconds=1)
    since_dt = until_dt - dt.timedelta(days=kpi_days)
    since, until = timeutil.to_iso(since_dt), timeutil.to_iso(until_dt)
    data = DashboardData(scope, since, until, timeutil.to_iso(now))
    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")
    try:
        reuse = (previous is not None and previous.engine == "kpi" and previous.scope == scope
                 and previous.mask == mask and time.monotonic() - previous.slow_at < SLOW_MAX_AGE_S)  # fmt: skip
        if _kpi is not None:
            window = _kpi.Window(since_dt, until_dt)
            data.engine = "kpi"
            data.mask = mask
            data.tiles = _engine_tiles(conn, scope, window, drills, now,
                                       {t.key: t.previous for t in previous.tiles} if reuse else None)  # fmt: skip
            data.by_category = list(_kpi.counts_by(conn, _kpi_scope(scope), window, "category", drills=drills))
            data.by_source = list(_kpi.counts_by(conn, _kpi_scope(scope), window, "source", drills=drills))
            if reuse:
                data.arrival, data.streets, data.departments = previous.arrival, previous.streets, previous.departments
                data.slow_at = previous.slow_at
            else:
                data.arrival = [float(m) for m in _kpi.arrival_minutes(conn, _kpi_scope(scope), window, drills=drills)]
                data.streets = [_rates_to_fractions(r) for r in _kpi.street_ranking(conn, window, drills=drills, now=now)]
                if scope.kind in ("street", "grid"):  # the engine ranks departments district-wide only
                    data.departments = _fb_departments(conn, scope, since, until, drills)
                else:
                    data.departments = [_rates_to_fractions(r)
                                        for r in _kpi.department_ranking(conn, window, drills=drills, now=now)]
        else:
            prev_since = timeutil.to_iso(since_dt - dt.timedelta(days=kpi_days))
            data.tiles = _fb_tiles(conn, scope, since, until, prev_since, drills)
            data.by_category = _fb_counts_by(conn, scope, since, until, "category", drills)
            data.by_source = _fb_counts_by(conn, scope, since, until, "source", drills)
            data.arrival = _fb_arrival(conn, scope, since, until, drills)
            data.streets = _fb_streets(conn, since, until, drills)
            data.departments = _fb_departments(conn, scope, since, until, drills)
        hours = _hours(now)
        h_since = timeutil.to_iso(hours[0])
        p_since = timeutil.to_iso(hours[0] - dt.timedelta(days=7))
        p_until = timeutil.to_iso(until_dt - dt.timedelta(days=7))
        cur = _fb_hourly(conn, scope, h_since, until, drills)
        prev = _fb_hourly(conn, scope, p_since, p_until, drills)
        data.hourly = [(timeutil.to_iso(h)[:13], cur.get(timeutil.to_iso(h)[:13], 0)) for h in hours]
        data.hourly_prev = [
            (timeutil.to_iso(h)[:13], prev.get(timeutil.to_iso(h - dt.timedelta(days=7))[:13], 0)) for h in hours
        ]
        data.ticker = ticker_rows(conn, scope, limit=ticker_limit, drills=drills, mask=mask)
    finally:
        if own_tx:
            conn.execute("ROLLBACK")
    if scope.kind == "street" and scope.code:  # a station sees its own street's line only
        data.streets = [r for r in data.streets if r.get("code") == scope.code] or data.streets[:0]
    return data


_TICKER_SELECT = (
    "SELECT e.id, e.reported_at, e.class, e.priority, e.status, e.title, e.address, e.street_code, "
    "s.name AS street_name, coalesce(c.name_zh, e.category) AS category_name, c.name_en AS category_name_en, e.reporter_name, "
    "e.lon, e.lat, e.grid_id, e.drill_id FROM events e LEFT JOIN streets s ON s.code = e.street_code "
    "LEFT JOIN categories c ON c.code = e.category "
)


def _ticker_dicts(cur: sqlite3.Cursor, mask: bool) -> list[dict]:
    cols = [d[0] for d in cur.description]
    out = []
    for r in cur:
        row = dict(zip(cols, r, strict=True))
        if mask:
            row = masking.mask_record(row, name_fields=("reporter_name",))
        row.pop("reporter_name", None)
        out.append(row)
    return out


def ticker_rows(
    conn: sqlite3.Connection, scope: Scope | None = None, *, limit: int = TICKER_LIMIT,
    drills: str = "exclude", mask: bool = False, after_id: int = 0,
) -> list[dict]:
    """The newest events (newest first): id, time, class, priority, street, category, title — masked
    for the wall (names, phones, ID numbers, house numbers in the title and the address)."""
    scope = scope or Scope()
    ssql, args = _scope_sql(scope)
    drill_sql = "" if drills == "include" else _drill_sql(drills)
    cur = conn.execute(
        _TICKER_SELECT + f"WHERE e.id > ?{ssql}{drill_sql} ORDER BY e.id DESC LIMIT ?", [after_id, *args, int(limit)]
    )
    return _ticker_dicts(cur, mask)


def event_point(conn: sqlite3.Connection, event_id: int, *, mask: bool = False) -> dict | None:
    """One event as a ticker row with lon/lat (the wall's emergency takeover), or None."""
    rows = _ticker_dicts(conn.execute(_TICKER_SELECT + "WHERE e.id = ?", (int(event_id),)), mask)
    return rows[0] if rows else None


def streets_bounds(conn: sqlite3.Connection, code: str | None = None) -> tuple[float, float, float, float] | None:
    """(min_lon, min_lat, max_lon, max_lat) of the streets (or one street): where the grids are."""
    import json

    from shapely.geometry import shape

    sql, args = "SELECT geometry FROM streets", ()
    if code:
        sql, args = sql + " WHERE code = ?", (code,)
    boxes = []
    for (geom,) in conn.execute(sql, args):
        try:
            boxes.append(shape(json.loads(geom)).bounds)
        except (ValueError, TypeError, KeyError):
            continue
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
