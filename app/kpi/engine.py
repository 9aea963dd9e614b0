"""The KPI engine (Qt-free, pure over a read connection): the closed loop judged by formulas.

A formula's *window* ``[since, until)`` counts each event by the time the formula names
(reported, due, evaluated, first whistled). Merged and rejected events are excluded everywhere
except where a formula names them. Real events only by default; ``drills="only"`` gives the
same numbers over drill events alone (never mixed). Values reflect the replica's *current*
state of each event (an event reported in the window and closed later counts as closed).

Formulas (per-event terms are in ``db/kpi_rollups.py MEASURES``; a rate is ``None`` with a
reason when its denominator is 0, never NaN):

- **响应率 response_rate** = events accepted no later than ``response_due_at`` (report time +
  the catalogue's response limit) ÷ events reported in the window. Still-unaccepted events count
  in the denominator only; an event without a response limit counts as responded once accepted.
- **解决率 resolution_rate** = events now closed ÷ (events reported in the window − merged −
  rejected). Events in handling (including deferred, returned, reworked) are not resolved.
- **满意率 satisfaction_rate** = evaluations of 4–5 ÷ all evaluations whose time
  (``events.evaluated_at``, the latest 综合评价) falls in the window. One evaluation per event
  counts: the latest (a re-evaluation replaces the earlier one).
- **应结案数 due** = events whose handling deadline ``handle_due_at`` (as moved by 缓办 and
  延期) falls in the window.
- **缓办数 deferred** = the due events that were ever deferred (a 'defer' in the log, or now
  deferred).
- **按期结案率 ontime_closure_rate** = due, never-deferred events closed with ``closed_at ≤
  handle_due_at`` ÷ (应结案数 − 缓办数). A reworked event is judged by its final closure.
- **结案率 closure_rate** = due, never-deferred events now closed ÷ (应结案数 − 缓办数).
- **联动处置率 linkage_rate** = events first whistled in the window in which every department
  summoned by any of their whistles checked in no later than its deadline and the event was
  handled (handled/verified/closed) ÷ events first whistled in the window.
- **到场 arrival_*** (categories with the 10-minute clock, i.e. ``arrival_due_at`` set; events
  reported in the window that reached the site): mean, median and p90 of report → first on site in
  minutes (percentiles interpolate linearly between closest ranks), and the share ≤ 10 minutes.
  Events not yet on site are not in the distribution.
- **积压 backlog** = events open now and reported before ``until``; **超期 overdue** = those with
  a broken clock at ``min(now, until)`` (the console's overdue tab rule, ``app.queue``).
- **上报 reported** = events reported in the window, merged and rejected excluded
  (``reported_all``, ``merged``, ``rejected`` give the full count and the two exclusions).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from app import timeutil
from app.kpi import sums as S
from app.kpi.model import KpiValue, Scope, Window

ARRIVAL_LIMIT_S = 600

# key -> (label_zh, label_en, unit)
KPI_LABELS: dict[str, tuple[str, str, str]] = {
    "reported": ("上报数", "Reported", "件"),
    "response_rate": ("响应率", "Response rate", "%"),
    "resolution_rate": ("解决率", "Resolution rate", "%"),
    "satisfaction_rate": ("满意率", "Satisfaction rate", "%"),
    "due": ("应结案数", "Due", "件"),
    "deferred": ("缓办数", "Deferred", "件"),
    "ontime_closure_rate": ("按期结案率", "On-time closure rate", "%"),
    "closure_rate": ("结案率", "Closure rate", "%"),
    "linkage_rate": ("联动处置率", "Linkage handling rate", "%"),
    "arrival_mean": ("平均到场时间", "Mean arrival time", "min"),
    "arrival_median": ("到场时间中位数", "Median arrival time", "min"),
    "arrival_p90": ("到场时间P90", "Arrival time p90", "min"),
    "arrival_within_10": ("10分钟到场率", "Arrived within 10 min", "%"),
    "overdue": ("超期数", "Overdue", "件"),
    "backlog": ("积压数", "Backlog (open)", "件"),
    "reported_all": ("上报总数（含合并、不予受理）", "Reported incl. merged/rejected", "件"),
    "merged": ("合并数", "Merged", "件"),
    "rejected": ("不予受理数", "Rejected", "件"),
    "resolved": ("已结案数", "Closed", "件"),
    "evaluated": ("评价数", "Evaluations", "件"),
    "whistled": ("吹哨事件数", "Whistled events", "件"),
}
KPI_KEYS: tuple[str, ...] = tuple(KPI_LABELS)

REASONS = {
    "no_reports": "分母为0：窗口内无上报 / no events reported in the window",
    "no_evaluations": "分母为0：窗口内无评价 / no evaluations in the window",
    "no_due": "分母为0：窗口内无应结案事件（或均已缓办） / nothing due in the window (or all deferred)",
    "no_whistles": "分母为0：窗口内无吹哨事件 / no whistled events in the window",
    "no_arrivals": "窗口内无到场记录（10分钟到场类别） / no on-site arrivals for clock categories in the window",
}


def _rate(key: str, num: float, den: float, reason: str) -> KpiValue:
    zh, en, unit = KPI_LABELS[key]
    if not den:
        return KpiValue(key, zh, en, None, num, den, unit, REASONS[reason])
    return KpiValue(key, zh, en, 100.0 * num / den, num, den, unit, None)


def _count(key: str, n: float) -> KpiValue:
    zh, en, unit = KPI_LABELS[key]
    return KpiValue(key, zh, en, float(n), float(n), None, unit, None)


def _minutes(key: str, value: float | None, num: float | None, den: float) -> KpiValue:
    zh, en, unit = KPI_LABELS[key]
    if value is None or not den:
        return KpiValue(key, zh, en, None, None, den, unit, REASONS["no_arrivals"])
    return KpiValue(key, zh, en, value / 60.0, num, den, unit, None)


# -- linkage -----------------------------------------------------------------------------------
def linkage_counts(
    conn: sqlite3.Connection,
    scope: Scope,
    window: Window,
    drills: str = "exclude",
    *,
    group: str | None = None,
) -> dict:
    """``{group_key: (whistled, linked)}`` over events first whistled in the window."""
    term, params = S.scope_term(scope)
    key = S.GROUPS[group][1] or "NULL"
    if not _has_table(conn, "whistles"):
        return {None: (0, 0)} if group is None else {}
    sql = f"""
        WITH firsts AS (
            SELECT w.event_id FROM whistles w
            WHERE w.blown_at >= ? AND w.blown_at < ?
              AND NOT EXISTS (SELECT 1 FROM whistles w0 WHERE w0.event_id = w.event_id AND w0.blown_at < ?)
            GROUP BY w.event_id
        ), per_event AS (
            SELECT {key} AS g,
                   (SELECT count(*) FROM whistles w JOIN whistle_departments d ON d.whistle_id = w.id
                     WHERE w.event_id = e.id AND (d.checked_in_at IS NULL OR d.checked_in_at > d.deadline_at)) AS late,
                   (e.handled_at IS NOT NULL OR e.status IN ('handled', 'verified', 'closed')) AS handled
            FROM firsts f JOIN events e ON e.id = f.event_id
            WHERE e.status NOT IN ('merged', 'rejected') AND {S.drill_term(drills)} AND {term}
        )
        SELECT g, count(*), coalesce(sum(late = 0 AND handled), 0) FROM per_event GROUP BY g
    """
    lo, hi = window.since_iso, window.until_iso
    out = {}
    for row in conn.execute(sql, [lo, hi, lo, *params]):
        out[row[0] if group else None] = (int(row[1]), int(row[2]))
    if group is None:
        out.setdefault(None, (0, 0))
    return out


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        is not None
    )


# -- the KPI set -------------------------------------------------------------------------------
def kpis_from(
    m: dict, dist: list[tuple[int, int]], backlog: int, overdue: int, linkage: tuple[int, int]
) -> dict:
    """Build the KPI dict from measure sums, the arrival distribution and the snapshot counts."""
    out: dict[str, KpiValue] = {}
    rep = m["reported"]
    out["reported"] = _count("reported", rep)
    out["response_rate"] = _rate("response_rate", m["responded"], rep, "no_reports")
    out["resolution_rate"] = _rate("resolution_rate", m["resolved"], m["reported_all"] - m["merged"] - m["rejected"],
                                   "no_reports")  # fmt: skip
    out["satisfaction_rate"] = _rate("satisfaction_rate", m["satisfied"], m["evaluated"], "no_evaluations")
    out["due"] = _count("due", m["due"])
    out["deferred"] = _count("deferred", m["deferred"])
    base = m["due"] - m["deferred"]
    out["ontime_closure_rate"] = _rate("ontime_closure_rate", m["due_ontime"], base, "no_due")
    out["closure_rate"] = _rate("closure_rate", m["due_closed"], base, "no_due")
    whistled, linked = linkage
    out["linkage_rate"] = _rate("linkage_rate", linked, whistled, "no_whistles")
    n = sum(c for _, c in dist)
    total_s = float(sum(s * c for s, c in dist))
    out["arrival_mean"] = _minutes("arrival_mean", total_s / n if n else None, total_s / 60.0, n)
    out["arrival_median"] = _minutes("arrival_median", S.percentile(dist, 0.5), None, n)
    out["arrival_p90"] = _minutes("arrival_p90", S.percentile(dist, 0.9), None, n)
    within = sum(c for s, c in dist if s <= ARRIVAL_LIMIT_S)
    out["arrival_within_10"] = _rate("arrival_within_10", within, n, "no_arrivals")
    out["overdue"] = _count("overdue", overdue)
    out["backlog"] = _count("backlog", backlog)
    out["reported_all"] = _count("reported_all", m["reported_all"])
    out["merged"] = _count("merged", m["merged"])
    out["rejected"] = _count("rejected", m["rejected"])
    out["resolved"] = _count("resolved", m["resolved"])
    out["evaluated"] = _count("evaluated", m["evaluated"])
    out["whistled"] = _count("whistled", whistled)
    return out


def compute_kpis(
    conn: sqlite3.Connection,
    scope: Scope,
    window: Window,
    *,
    drills: str = "exclude",
    now: dt.datetime | None = None,
    use_rollups: bool = True,
) -> dict[str, KpiValue]:
    """Every KPI (``KPI_KEYS``) for ``scope`` over ``window``. ``now`` (default: the clock)
    is the reference for the overdue snapshot; ``use_rollups=False`` scans ``events`` only."""
    S.check_drills(drills)
    now = now or timeutil.now()
    m = S.measure_sums(conn, scope, window.since, window.until, drills, use_rollups=use_rollups)[None]
    dist = S.arrival_distribution(conn, scope, window.since, window.until, drills, use_rollups=use_rollups)
    backlog, overdue = S.open_counts(conn, scope, window.until, now, drills)[None]
    linkage = linkage_counts(conn, scope, window, drills)[None]
    return kpis_from(m, dist, backlog, overdue, linkage)


def kpi_trend(
    conn: sqlite3.Connection,
    scope: Scope,
    window: Window,
    *,
    drills: str = "exclude",
    now: dt.datetime | None = None,
) -> dict[str, KpiValue]:
    """The same KPIs over the previous window of equal length (for trend arrows)."""
    return compute_kpis(conn, scope, window.previous(), drills=drills, now=now)


def trend_direction(current: KpiValue, previous: KpiValue, *, eps: float = 1e-9) -> str | None:
    """'up', 'down', 'flat', or None when either value is missing."""
    if current.value is None or previous.value is None:
        return None
    d = current.value - previous.value
    return "up" if d > eps else "down" if d < -eps else "flat"


def arrival_minutes(
    conn: sqlite3.Connection, scope: Scope, window: Window, *, drills: str = "exclude"
) -> list[float]:
    """Report → on-site minutes, sorted, of clock-applicable events reported in the window."""
    out: list[float] = []
    for s, c in S.arrival_distribution(conn, scope, window.since, window.until, drills):
        out.extend([s / 60.0] * c)
    return out
