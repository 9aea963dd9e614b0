"""Everything a dashboard refresh shows, read once with shared queries (Qt-free).

:func:`dashboard_data` gives the KPI tiles with their previous-window values, events per hour
with the same hours 7 days earlier, counts by category and source, the arrival minutes and the
street and department rankings. For the district scope the tiles are the sums of the per-street
parts the ranking needs anyway, so the events behind them are read once.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from app import timeutil
from app.kpi import sums as S
from app.kpi.breakdowns import counts_by, department_ranking, hourly_counts, street_parts, street_rows
from app.kpi.engine import compute_kpis, kpis_from
from app.kpi.model import KpiValue, Scope, Window
from db import kpi_rollups as R

WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class DashboardData:
    scope: Scope
    window: Window
    kpis: dict[str, KpiValue]
    previous: dict[str, KpiValue]  # the same KPIs over the previous window of equal length
    hourly: list[tuple[str, int]]  # events per hour over the window
    hourly_week_before: list[tuple[str, int]]  # the same hours 7 days earlier
    categories: list[tuple[str, str, int]]
    sources: list[tuple[str, str, int]]
    arrival_minutes: list[float]
    streets: list[dict]
    departments: list[dict]


def dashboard_data(
    conn: sqlite3.Connection,
    scope: Scope,
    window: Window,
    *,
    drills: str = "exclude",
    now: dt.datetime | None = None,
) -> DashboardData:
    """All dashboard numbers for ``scope`` over ``window`` (rankings are district-wide)."""
    now = now or timeutil.now()
    sums, opens, link = street_parts(conn, window, drills, now)
    dist = S.arrival_distribution(conn, scope, window.since, window.until, drills)
    if scope.kind == "district":
        m = dict.fromkeys(R.MEASURE_NAMES, 0)
        for part in sums.values():
            for k, v in part.items():
                m[k] += v
        backlog = sum(b for b, _ in opens.values())
        overdue = sum(o for _, o in opens.values())
        whistled = sum(w for w, _ in link.values())
        linked = sum(x for _, x in link.values())
        kpis = kpis_from(m, dist, backlog, overdue, (whistled, linked))
    else:
        kpis = compute_kpis(conn, scope, window, drills=drills, now=now)
    minutes: list[float] = []
    for s, c in dist:
        minutes.extend([s / 60.0] * c)
    return DashboardData(
        scope=scope,
        window=window,
        kpis=kpis,
        previous=compute_kpis(conn, scope, window.previous(), drills=drills, now=now),
        hourly=hourly_counts(conn, scope, window.since, window.until, drills=drills),
        hourly_week_before=hourly_counts(
            conn, scope, window.since - WEEK, window.until - WEEK, drills=drills
        ),
        categories=counts_by(conn, scope, window, "category", drills=drills),
        sources=counts_by(conn, scope, window, "source", drills=drills),
        arrival_minutes=minutes,
        streets=street_rows(conn, sums, opens, link),
        departments=department_ranking(conn, window, drills=drills, now=now),
    )
