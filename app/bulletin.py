"""The periodic bulletin (通报): a weekly or monthly HTML report per scope (Qt-free).

KPIs with the trend against the previous period of equal length, the street and department
rankings, charts (inline SVG), top categories and hot-spot grids. Rendered through the Jinja2
template ``resources/templates/bulletin.html.j2`` (autoescaped; no script, no external URL);
``widgets/pdf.py`` prints it to PDF. The bulletin carries no personal data; every text taken
from the replica also goes through :func:`app.dossier.mask_text`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import jinja2

from app import svgcharts, timeutil
from app.dossier import mask_text
from app.kpi import (
    KPI_LABELS,
    Scope,
    Window,
    arrival_minutes,
    compute_kpis,
    counts_by,
    department_ranking,
    hourly_counts,
    street_ranking,
    top_grids,
    trend_direction,
)

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "resources" / "templates"
TEMPLATE_NAME = "bulletin.html.j2"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)

HEADLINE_KPIS = (
    "reported", "response_rate", "resolution_rate", "satisfaction_rate", "due", "deferred",
    "ontime_closure_rate", "closure_rate", "linkage_rate", "arrival_mean", "arrival_median",
    "arrival_p90", "arrival_within_10", "backlog", "overdue",
)  # fmt: skip
# KPIs where a fall is the good direction
LOWER_IS_BETTER = frozenset(
    {"arrival_mean", "arrival_median", "arrival_p90", "backlog", "overdue", "deferred"}
)
NEUTRAL = frozenset({"reported", "due"})  # volumes: neither direction is good or bad


class PeriodError(ValueError):
    """A period that is not ``YYYY-MM`` or ``YYYY-Www``."""


@dataclass(frozen=True)
class Period:
    kind: str  # "month" | "week"
    label: str  # "2026年11月" / "2026年第47周"
    code: str
    window: Window


def parse_period(text: str) -> Period:
    """``2026-11`` (a calendar month) or ``2026-W47`` (an ISO week, Monday to Monday), Asia/Shanghai."""
    t = (text or "").strip()
    m = _MONTH.match(t)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        if not 1 <= mo <= 12:
            raise PeriodError(f"月份无效 bad month in period {text!r} (01–12)")
        start = dt.datetime(y, mo, 1, tzinfo=timeutil.TZ)
        end = dt.datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=timeutil.TZ)
        return Period("month", f"{y}年{mo}月", t, Window(start, end))
    m = _WEEK.match(t)
    if m:
        y, w = int(m.group(1)), int(m.group(2))
        try:
            monday = dt.date.fromisocalendar(y, w, 1)
        except ValueError:
            raise PeriodError(f"周次无效 ISO week {w} does not exist in {y}") from None
        start = dt.datetime.combine(monday, dt.time(), timeutil.TZ)
        return Period("week", f"{y}年第{w}周", t.upper(), Window(start, start + dt.timedelta(days=7)))
    raise PeriodError(
        f"周期格式错误 period {text!r}: use YYYY-MM (month, e.g. 2026-11) or YYYY-Www (ISO week, e.g. 2026-W47)"
    )


def resolve_scope(conn: sqlite3.Connection, text: str) -> tuple[Scope, str]:
    """``district`` or a street code → (Scope, display name); ``LookupError`` for an unknown street."""
    t = (text or "").strip()
    if t.lower() == "district":
        row = conn.execute("SELECT value FROM meta WHERE key = 'district_name'").fetchone()
        return Scope("district"), (row[0] if row else "崇川区")
    row = conn.execute("SELECT code, name FROM streets WHERE code = ?", (t,)).fetchone()
    if row is None:
        raise LookupError(
            f"没有该街道 unknown street code {t!r} (use 'district' or a street code such as 320613001)"
        )
    return Scope("street", row[0]), row[1]


@dataclass
class Bulletin:
    html: str
    has_data: bool
    title: str
    period: Period
    scope: Scope


def _arrow(key: str, cur, prev) -> tuple[str, str]:
    d = trend_direction(cur, prev)
    if d is None:
        return "", "flat"
    arrow = {"up": "↑", "down": "↓", "flat": "→"}[d]
    if d == "flat" or key in NEUTRAL:
        return arrow, "flat"
    good = (d == "down") if key in LOWER_IS_BETTER else (d == "up")
    return arrow, "good" if good else "bad"


def _fmt(v, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "%":
        return f"{v:.1f}%"
    if unit == "min":
        return f"{v:.1f} 分钟"
    return f"{int(round(v)):,}"


def _daily(conn, scope: Scope, window: Window) -> list[tuple[str, int]]:
    per_day: dict[str, int] = defaultdict(int)
    for hour, n in hourly_counts(conn, scope, window.since, window.until):
        per_day[hour[:10]] += n
    return sorted(per_day.items())


def build_bulletin(
    conn: sqlite3.Connection, scope_text: str, period_text: str, *, now: dt.datetime | None = None
) -> Bulletin:
    """Read everything the bulletin shows and render it. Raises ``PeriodError`` / ``LookupError``."""
    period = parse_period(period_text)
    scope, scope_name = resolve_scope(conn, scope_text)
    now = now or timeutil.now()
    w = period.window
    cur = compute_kpis(conn, scope, w, now=now)
    prev = compute_kpis(conn, scope, w.previous(), now=now)
    has_data = bool(cur["reported_all"].value or cur["due"].value or cur["evaluated"].value)
    kind_zh = "月报" if period.kind == "month" else "周报"
    title = f"{scope_name}网格化社会治理工作通报（{period.label}{kind_zh}）"
    kpis = []
    for key in HEADLINE_KPIS:
        c, p = cur[key], prev[key]
        arrow, tone = _arrow(key, c, p)
        detail = ""
        if c.unit == "%" and c.denominator:
            detail = f"{int(c.numerator or 0):,} / {int(c.denominator):,}"
        kpis.append({
            "key": key, "label": KPI_LABELS[key][0], "value": _fmt(c.value, c.unit), "prev": _fmt(p.value, p.unit),
            "arrow": arrow, "tone": tone, "detail": detail, "reason": (c.reason or "").split(" / ")[0],
        })  # fmt: skip
    ctx: dict = {
        "title": title, "scope_name": scope_name, "period": period, "has_data": has_data, "kpis": kpis,
        "generated_at": timeutil.to_iso(now)[:16].replace("T", " "), "kind_zh": kind_zh,
        "since": w.since_iso[:10], "until": (w.until - dt.timedelta(seconds=1)).strftime("%Y-%m-%d"),
        "prev_since": w.previous().since_iso[:10], "demo": _meta(conn, "demo_label"),
        "streets": [], "departments": [], "categories": [], "sources": [], "hotspots": [], "charts": {},
        "scope_code": scope.code,
    }  # fmt: skip
    if has_data:
        streets = street_ranking(conn, w, now=now)
        ctx["streets"] = [_row(r, ("reported", "response_rate", "closure_rate", "ontime_closure_rate",
                                   "arrival_within_10", "satisfaction_rate", "backlog", "overdue")) for r in streets]  # fmt: skip
        depts = [r for r in department_ranking(conn, w, now=now) if r["reported"] or r["due"] or r["backlog"]]
        ctx["departments"] = [_row(r, ("reported", "due", "deferred", "ontime_closure_rate", "closure_rate",
                                       "backlog", "overdue")) for r in depts]  # fmt: skip
        cats = counts_by(conn, scope, w, "category")
        total = sum(n for _, _, n in cats) or 1
        ctx["categories"] = [{"code": c, "name": mask_text(lab), "n": n, "share": f"{100.0 * n / total:.1f}%"}
                             for c, lab, n in cats[:10]]  # fmt: skip
        sources = counts_by(conn, scope, w, "source")
        ctx["sources"] = [{"name": lab, "n": n} for _, lab, n in sources]
        ctx["hotspots"] = [
            {"name": mask_text(h["name"]), "street": h["street_name"] or "", "n": h["n"],
             "top_category": mask_text(h["top_category"] or "")}
            for h in top_grids(conn, scope, w, limit=10)
        ]  # fmt: skip
        days = _daily(conn, scope, w)
        prev_days = _daily(conn, scope, w.previous())
        ctx["charts"] = {
            "daily": svgcharts.bar_chart(
                [d[5:] for d, _ in days], [n for _, n in days], compare=[n for _, n in prev_days][: len(days)],
                label_every=1 if len(days) <= 10 else 3, title="每日上报事件数", legend=("本期", "上期同日序"),
            ),
            "categories": svgcharts.hbar_chart([(r["name"], r["n"]) for r in ctx["categories"]], title="事件类别前十"),
            "sources": svgcharts.hbar_chart([(r["name"], r["n"]) for r in ctx["sources"]], title="事件来源"),
            "arrival": svgcharts.histogram(arrival_minutes(conn, scope, w), title="到场时间分布（分钟，10分钟到场类别）"),
            "streets": svgcharts.hbar_chart(
                [(r["name"], r["score"] or 0) for r in streets], title="街道综合得分", fmt="{:.1f}"),
        }  # fmt: skip
    html = _environment().get_template(TEMPLATE_NAME).render(**ctx)
    return Bulletin(html=html, has_data=has_data, title=title, period=period, scope=scope)


def _row(r: dict, keys: tuple[str, ...]) -> dict:
    out = {"code": r["code"], "name": r["name"], "rank": r["rank"] if r["rank"] is not None else "—"}
    if "score" in r:
        out["score"] = f"{r['score']:.1f}" if r["score"] is not None else "—"
    for k in keys:
        out[k] = _fmt(r[k], KPI_LABELS[k][2])
    return out


def _meta(conn, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write_html(html: str, path: str | os.PathLike) -> Path:
    """Write the HTML (UTF-8) atomically; returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(html)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
