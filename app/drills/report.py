"""The after-action report (AAR) of a drill: data + Jinja2 template → one self-contained HTML file
(inline CSS and SVG: response-time chart, series chart, inject map). PDF is printed from the same
HTML by ``widgets/pdf.py`` (``widgets/drill_cli.py``).

Works in every state: a scheduled drill gives its plan marked 尚未进行 (not yet run); a running or
paused one is an interim report; a stopped one says it was stopped early and why.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app import timeutil
from app.drills import clock, measure, queries

STATE_NOTE = {
    "scheduled": ("尚未进行", "not yet run", "本演练尚未进行：以下为演练计划与脚本。"),
    "running": ("进行中（中期报告）", "running (interim report)", "演练正在进行，结果为截至生成时的中期数据。"),
    "paused": ("已暂停（中期报告）", "paused (interim report)", "演练已暂停，结果为截至暂停时的中期数据。"),
    "stopped": ("提前结束", "stopped early", "本演练被提前结束，未完成全部脚本；全部记录均已保留。"),
    "completed": ("已完成", "completed", ""),
    "cancelled": ("已取消", "cancelled", "本演练已取消，未进行。"),
}
RESULT_COLOR = {"on_time": "#2e8b57", "late": "#d9822b", "missed": "#c0392b", "open": "#4992ff",
                "not_fired": "#9aa3ad", "skipped": "#9aa3ad"}  # fmt: skip


@dataclass
class Report:
    drill_id: int
    html: str
    data: dict


def _mmss(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


# -- charts (inline SVG) --------------------------------------------------------------------------
def response_chart(results: list[measure.InjectResult], *, width: int = 660) -> str:
    """Horizontal bars: time to the expected stage per sent inject, with the time allowed as a tick."""
    rows = [r for r in results if r.event is not None]
    if not rows:
        return ""
    bar_h, gap, left, right = 14, 6, 190, 60
    h = 28 + len(rows) * (bar_h + gap)
    vmax = max([r.allowed_s for r in rows] + [r.measured_s or 0 for r in rows] + [60]) * 1.05
    k = (width - left - right) / vmax
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {h}" width="{width}" '
           f'height="{h}" font-size="10">']  # fmt: skip
    step = _nice(vmax / 6)
    t = 0.0
    while t <= vmax:
        x = left + t * k
        out.append(f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{h - 4}" stroke="#e3e7ec"/>'
                   f'<text x="{x:.1f}" y="10" text-anchor="middle" fill="#5b6675">{_mmss(t)}</text>')  # fmt: skip
        t += step
    for i, r in enumerate(rows):
        y = 20 + i * (bar_h + gap)
        label = html.escape(f"#{r.inject['seq']} {r.inject['title']}"[:18])
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 3}" text-anchor="end" fill="#1c2533">{label}</text>')
        val = r.measured_s
        if val is None:
            waited = r.allowed_s * 1.02
            out.append(f'<rect x="{left}" y="{y}" width="{waited * k:.1f}" height="{bar_h}" fill="none" '
                       f'stroke="{RESULT_COLOR[r.result]}" stroke-dasharray="3 2"/>')  # fmt: skip
            out.append(f'<text x="{left + waited * k + 4:.1f}" y="{y + bar_h - 3}" fill="#c0392b">'
                       f'{measure.RESULT_ZH[r.result]}</text>')  # fmt: skip
        else:
            out.append(f'<rect x="{left}" y="{y}" width="{max(1.0, val * k):.1f}" height="{bar_h}" '
                       f'fill="{RESULT_COLOR[r.result]}"/>')  # fmt: skip
            out.append(f'<text x="{left + val * k + 4:.1f}" y="{y + bar_h - 3}" fill="#1c2533">{_mmss(val)}</text>')
        ax = left + r.allowed_s * k
        out.append(f'<line x1="{ax:.1f}" y1="{y - 2}" x2="{ax:.1f}" y2="{y + bar_h + 2}" stroke="#1c2533" '
                   f'stroke-width="2"/>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def _nice(x: float) -> float:
    for s in (30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if s >= x:
            return float(s)
    return 7200.0


def series_chart(points: list[dict], *, width: int = 660, height: int = 200) -> str:
    """Median time to the expected stage (line, left axis) and on-time rate (bars, right axis)
    per drill of the series, oldest first."""
    if len(points) < 2:
        return ""
    left, right, top, bottom = 46, 46, 14, 34
    w, h = width - left - right, height - top - bottom
    vals = [p["median_s"] for p in points if p["median_s"] is not None]
    vmax = max(vals + [60]) * 1.15
    n = len(points)
    dx = w / n
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" font-size="10">',
           f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#d5dbe2"/>']  # fmt: skip
    for i, p in enumerate(points):
        x = left + dx * i + dx * 0.2
        if p["rate"] is not None:
            bh = h * p["rate"]
            out.append(f'<rect x="{x:.1f}" y="{top + h - bh:.1f}" width="{dx * 0.6:.1f}" height="{bh:.1f}" '
                       f'fill="#cfe3ff"/>')  # fmt: skip
        out.append(f'<text x="{left + dx * (i + 0.5):.1f}" y="{height - 18}" text-anchor="middle" '
                   f'fill="#5b6675">{html.escape(p["label"])}</text>')  # fmt: skip
    pts = [(left + dx * (i + 0.5), top + h - h * p["median_s"] / vmax) for i, p in enumerate(points)
           if p["median_s"] is not None]  # fmt: skip
    if pts:
        out.append('<polyline fill="none" stroke="#0b5cad" stroke-width="2" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        for (x, y), p in zip(pts, [p for p in points if p["median_s"] is not None], strict=False):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0b5cad"/>'
                       f'<text x="{x:.1f}" y="{y - 6:.1f}" text-anchor="middle" fill="#0b5cad">'
                       f'{_mmss(p["median_s"])}</text>')  # fmt: skip
    out.append(f'<text x="{left}" y="{height - 4}" fill="#0b5cad">— 中位响应时间 median time</text>'
               f'<text x="{width - right}" y="{height - 4}" text-anchor="end" fill="#5b87c5">▮ 按时率 on-time rate</text>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)


@lru_cache(maxsize=1)
def _district_paths() -> tuple:
    from db.spatial import load_boundary

    b = load_boundary()
    return b, b.bounds


def inject_map(conn: sqlite3.Connection, results: list[measure.InjectResult], streets: list[str], *,
               size: int = 520) -> str:  # fmt: skip
    """Static SVG: district outline, participating streets shaded, injects numbered and coloured."""
    import orjson
    from shapely.geometry import shape

    from app.dossier import _Projection

    boundary, bounds = _district_paths()
    shapes = []
    if streets:
        for (geom,) in conn.execute(
            f"SELECT geometry FROM streets WHERE code IN ({','.join('?' * len(streets))})", streets
        ):
            shapes.append(shape(orjson.loads(geom)).simplify(0.0003))
    pts = [(r.inject["lon"], r.inject["lat"]) for r in results if r.inject.get("lon") is not None]
    if shapes or pts:  # zoom on the participating streets and the injects
        xs = [p[0] for p in pts] + [b for g in shapes for b in (g.bounds[0], g.bounds[2])]
        ys = [p[1] for p in pts] + [b for g in shapes for b in (g.bounds[1], g.bounds[3])]
        bounds = (min(xs), min(ys), max(xs), max(ys))
    x0, y0, x1, y1 = bounds
    lon0, lat0 = (x0 + x1) / 2, (y0 + y1) / 2
    radius = max((x1 - x0) * 111320 * math.cos(math.radians(lat0)), (y1 - y0) * 110540, 1500) / 2 * 1.12
    proj = _Projection(lon0, lat0, radius, size)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="map" viewBox="0 0 {size} {size}" width="{size}" '
           f'height="{size}" font-size="11">',
           f'<path d="{proj.path(boundary.simplify(0.0003))}" fill="#f3f6f9" stroke="#6b7a8c" stroke-width="1.2"/>']  # fmt: skip
    for g in shapes:
        out.append(f'<path d="{proj.path(g)}" fill="#dbe9f7" stroke="#8aa5c2" stroke-width="0.8"/>')
    km = _nice_km(radius)
    out.append(f'<line x1="12" y1="{size - 14}" x2="{12 + km * 1000 * proj.k:.1f}" y2="{size - 14}" stroke="#1c2533" '
               f'stroke-width="2"/><text x="12" y="{size - 20}" fill="#1c2533">{km:g} km</text>')  # fmt: skip
    for r in results:
        i = r.inject
        if i.get("lon") is None:
            continue
        x, y = proj.xy(i["lon"], i["lat"])
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{RESULT_COLOR[r.result]}" stroke="#fff"/>'
                   f'<text x="{x:.1f}" y="{y + 3.5:.1f}" text-anchor="middle" fill="#fff" font-size="9">'
                   f'{i["seq"]}</text>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def _nice_km(radius_m: float) -> float:
    for km in (0.5, 1, 2, 5, 10):
        if km * 1000 >= radius_m / 3:
            return km
    return 10


# -- the report -----------------------------------------------------------------------------------
def _timeline(conn, drill_id: int, results: list[measure.InjectResult]) -> list[dict]:
    action_zh = {"plan": "计划", "edit": "修改计划", "start": "开始", "pause": "暂停", "resume": "继续",
                 "speed": "调整倍速", "stop": "提前结束", "complete": "完成", "inject": "下发注入",
                 "skip": "跟进注入未触发", "evaluate": "评估", "cancel": "取消"}  # fmt: skip
    items = []
    for r in queries.run_log(conn, drill_id):
        if r["action"] in ("plan", "edit", "evaluate"):
            continue
        note = r["note"] or ""
        if r["action"] == "speed":
            note = f"×{r['speed']:g}"
        items.append({"at": r["at"], "scenario": clock.fmt(r["elapsed_s"] or 0) if r["elapsed_s"] is not None else "",
                      "what": action_zh.get(r["action"], r["action"]), "note": note})  # fmt: skip
    for res in results:
        if res.event is None:
            continue
        for st in measure.STAGES:
            at = res.event.get(f"{st}_at")
            if at:
                items.append({"at": at, "scenario": "", "what": measure.STAGE_ZH[st],
                              "note": f"#{res.inject['seq']} {res.inject['title']}（事件 #{res.event['id']}）"})  # fmt: skip
    items.sort(key=lambda x: x["at"])
    return items


def build_report(conn: sqlite3.Connection, drill_id: int, *, lang: str = "zh", at: dt.datetime | None = None) -> Report:
    """The AAR of ``drill_id`` (raises ``LookupError`` for an unknown id)."""
    from app.dossier import _environment

    d = queries.get_drill(conn, drill_id)
    at = at or timeutil.now()
    summary = measure.drill_summary(conn, drill_id, at=at)
    results = summary["results"]
    dept_names = dict(conn.execute("SELECT code, name FROM departments").fetchall())
    grid_names = dict(conn.execute("SELECT id, name FROM grids WHERE id IN (SELECT grid_id FROM drill_injects "
                                   "WHERE drill_id = ?)", (drill_id,)).fetchall())  # fmt: skip
    rows = []
    for r in results:
        i = r.inject
        rows.append({
            "seq": i["seq"], "offset": clock.fmt(i["offset_s"]), "title": i["title"], "content": i["content"] or "",
            "level": measure.LEVEL_ZH.get(i["target_level"], i["target_level"]),
            "department": dept_names.get(i["target_department"], i["target_department"] or "—"),
            "place": grid_names.get(i["grid_id"], i["grid_id"] or ""),
            "action": i["expected_action"] or "", "stage": measure.STAGE_ZH[i["expected_stage"]],
            "allowed": _mmss(r.allowed_s), "times": [_mmss(r.stage_s.get(s)) for s in measure.STAGES],
            "measured": _mmss(r.measured_s), "result": r.result, "result_text": measure.RESULT_ZH[r.result],
            "event_id": r.event["id"] if r.event else None, "contingency": bool(i["parent_id"]),
        })  # fmt: skip
    series = []
    for s in queries.series_of(conn, d):
        sm = measure.drill_summary(conn, s["id"], at=at)
        series.append({"id": s["id"], "label": s["starts_at"][5:10], "date": s["starts_at"][:16].replace("T", " "),
                       "title": s["title"], "status": s["status"], "sent": sm["sent"], "on_time": sm["on_time"],
                       "measured": sm["measured"], "rate": sm["on_time_rate"], "median_s": sm["median_measured_s"],
                       "median": _mmss(sm["median_measured_s"]), "rate_text": _pct(sm["on_time_rate"]),
                       "leader_rate": _pct(sm["attendance"]["leader_rate"]), "this": s["id"] == drill_id})  # fmt: skip
    trend = None
    if len(series) >= 2 and series[0]["median_s"] and series[-1]["median_s"]:
        delta = series[-1]["median_s"] - series[0]["median_s"]
        trend = ("响应更快" if delta < 0 else "响应变慢" if delta > 0 else "持平") + f"（{_mmss(abs(delta))}）"
    state = STATE_NOTE.get(d["status"], (d["status"], d["status"], ""))
    att = summary["attendance"]
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    data = {
        "lang": lang, "drill": d, "state": {"code": d["status"], "zh": state[0], "en": state[1], "note": state[2]},
        "stop_reason": d.get("stop_reason"),
        "planned_end": timeutil.to_iso(timeutil.parse(d["starts_at"]) + dt.timedelta(minutes=d["duration_min"])),
        "scenario_elapsed": clock.fmt(clock.elapsed(d, at)),
        "kpis": {"injects": summary["injects"], "sent": summary["sent"], "on_time": summary["on_time"],
                 "measured": summary["measured"], "rate": _pct(summary["on_time_rate"]),
                 "median": _mmss(summary["median_measured_s"]),
                 "attendance": f"{att['attended']}/{att['expected']}", "leader_rate": _pct(att["leader_rate"])},
        "stage_means": [(measure.STAGE_ZH[s], _mmss(v)) for s, v in summary["stage_means"].items()],
        "by_level": [(measure.LEVEL_ZH.get(k, k), v[0], v[1], _pct(v[0] / v[1] if v[1] else None))
                     for k, v in sorted(summary["by_level"].items())],
        "by_street": [(k, v[0], v[1], _pct(v[0] / v[1] if v[1] else None)) for k, v in sorted(summary["by_street"].items())],
        "rows": rows, "stage_names": [measure.STAGE_ZH[s] for s in measure.STAGES],
        "timeline": _timeline(conn, drill_id, results),
        "attendance": att, "findings": queries.findings(conn, drill_id),
        "strengths": [x for x in (d.get("strengths") or "").splitlines() if x.strip()],
        "improvements": [x for x in (d.get("improvements") or "").splitlines() if x.strip()],
        "response_svg": response_chart(results), "map_svg": inject_map(conn, results, d["streets"]),
        "series": series, "series_svg": series_chart(series), "trend": trend,
        "generated_at": timeutil.to_iso(at), "demo": meta.get("demo") == "1",
        "result_color": RESULT_COLOR,
    }  # fmt: skip
    text = _environment().get_template("drill_report.html.j2").render(**data)
    return Report(drill_id, text, data)


def write_html(report: Report, path: str | os.PathLike) -> Path:
    """Write atomically (temporary file, then rename)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(report.html, encoding="utf-8")
    os.replace(tmp, target)
    return target
