"""Ecology alerts → linked-command events (长江生态眼 → 联动指挥), one event per episode.

A *breach episode* is a run of hourly readings of one station whose DO, NH3-N or COD class is
:data:`ALERT_CLASS` (Ⅳ) or worse; readings that are invalid are skipped (they neither extend nor
end an episode), and breaching readings at most :data:`GAP_HOURS` apart belong to the same
episode.  An episode needs :data:`MIN_HOURS` breaching readings before it alerts (one odd hour
is not an alert).  A *detection episode* is a run of camera detections of one kind (illegal
fishing, sand mining, dumping) at most :data:`DETECTION_GAP_MIN` minutes apart.

:func:`raise_alerts` is idempotent: each episode gets one ``eco_alerts`` row and one event
(source ``ecology_eye``, external id ``WQ-<station>-<param>-<start>`` / ``CAM-<camera>-<kind>-<start>``,
category ``ECO.WATERQ`` / ``ECO.FISHING`` / ``ECO.SAND`` / ``ECO.DUMPING``) created through
``db.event_ops.create_event`` (the lifecycle's ``reported`` state, one ``report`` log row).  An
episode seen again later (longer, or from a window that starts in its middle) is matched to its
alert by overlap and only extends it; the events table's unique (source, external id) is the
last guard against a duplicate.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

import numpy as np

from app import gb3838, timeutil
from db import ecology as eco_db
from db.event_ops import DuplicateEvent, create_event

SOURCE = "ecology_eye"
ACTOR = "ecology_eye"
ALERT_CLASS = 4
GAP_HOURS = 3
MIN_HOURS = 2
LOOKBACK_HOURS = 72
DETECTION_GAP_MIN = 30
DETECTION_CATEGORIES = {"fishing": "ECO.FISHING", "sand_mining": "ECO.SAND", "dumping": "ECO.DUMPING"}
DETECTION_NAMES = {"fishing": "疑似非法捕捞", "sand_mining": "疑似非法采砂", "dumping": "疑似沿江倾倒垃圾"}
PRIORITY_BY_CLASS = {4: 4, 5: 3, 6: 2}


@dataclass(frozen=True)
class Episode:
    start: int
    """First breaching hour (or detection time, epoch seconds, for cameras)."""
    last: int
    peak: float
    peak_class: int
    count: int


def breach_episodes(hours: np.ndarray, values: np.ndarray, param: str, *, alert_class: int = ALERT_CLASS,
                    gap: int = GAP_HOURS, min_hours: int = MIN_HOURS) -> list[Episode]:  # fmt: skip
    """Breach episodes of one parameter's hourly series (pure; invalid values are skipped)."""
    classes = gb3838.classify_array(param, values)
    idx = np.nonzero(classes >= alert_class)[0]
    out: list[Episode] = []
    if idx.size == 0:
        return out
    worse_low = param in gb3838.HIGHER_IS_BETTER
    start = prev = idx[0]
    members = [idx[0]]

    def close(members: list[int]) -> None:
        if len(members) < min_hours:
            return
        vals = values[members]
        k = int(np.argmin(vals) if worse_low else np.argmax(vals))
        out.append(Episode(int(hours[members[0]]), int(hours[members[-1]]), float(vals[k]),
                           int(classes[members].max()), len(members)))  # fmt: skip

    for i in idx[1:]:
        if hours[i] - hours[prev] <= gap + 1:
            members.append(i)
        else:
            close(members)
            start, members = i, [i]
        prev = i
    del start
    close(members)
    return out


def detection_episodes(times_s: list[int], gap_min: int = DETECTION_GAP_MIN) -> list[tuple[int, int, int]]:
    """(first, last, count) runs of detection times (epoch seconds, sorted) ≤ ``gap_min`` apart."""
    out: list[tuple[int, int, int]] = []
    for t in times_s:
        if out and t - out[-1][1] <= gap_min * 60:
            first, _, n = out[-1]
            out[-1] = (first, t, n + 1)
        else:
            out.append((t, t, 1))
    return out


@dataclass
class ScanResult:
    created: int = 0
    extended: int = 0
    unchanged: int = 0
    event_ids: list[int] | None = None


def _compact(ts: str) -> str:
    return ts[:16].replace("-", "").replace(":", "").replace("T", "")


def _existing(conn: sqlite3.Connection, col: str, ref: int, param: str, start_iso: str, gap_s: int) -> sqlite3.Row | None:
    """The alert of the same station/camera and parameter that this episode overlaps."""
    earliest = timeutil.epoch_to_iso(timeutil.parse(start_iso).timestamp() - gap_s)
    return conn.execute(
        f"SELECT id, started_at, last_at, peak, peak_class, event_id, external_id FROM eco_alerts "
        f"WHERE {col} = ? AND parameter = ? AND last_at >= ? ORDER BY started_at LIMIT 1",
        (ref, param, earliest),
    ).fetchone()


def _record(replica, *, kind: str, col: str, ref: int, param: str, start_iso: str, last_iso: str,
            peak: float | None, peak_class: int | None, gap_s: int, event: dict, res: ScanResult) -> None:  # fmt: skip
    conn = replica.reader()
    try:
        found = _existing(conn, col, ref, param, start_iso, gap_s)
    finally:
        conn.close()
    if found is not None and found["started_at"] <= last_iso:
        if last_iso > found["last_at"]:
            with replica.write("eco_alerts") as w:
                w.execute("UPDATE eco_alerts SET last_at = ?, peak = ?, peak_class = max(coalesce(peak_class, 0), ?) "
                          "WHERE id = ?", (last_iso, peak, peak_class or 0, found["id"]))  # fmt: skip
            res.extended += 1
        else:
            res.unchanged += 1
        return
    ext = event["external_id"]
    try:
        event_id = create_event(replica, event, actor=ACTOR, at=start_iso)
        res.created += 1
        (res.event_ids if res.event_ids is not None else []).append(event_id)
    except DuplicateEvent as exc:  # the event exists (an earlier run stopped before the alert row)
        event_id = exc.existing_id
        res.unchanged += 1
    with replica.write("eco_alerts") as w:
        w.execute(
            f"INSERT OR IGNORE INTO eco_alerts (kind, {col}, parameter, started_at, last_at, peak, peak_class, "
            "external_id, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, ref, param, start_iso, last_iso, peak, peak_class, ext, event_id),
        )


def raise_alerts(replica, *, since: str | dt.datetime | None = None, until: str | dt.datetime | None = None) -> ScanResult:
    """Turn the breach and detection episodes that touch [since, until] into events (idempotent).

    ``since`` defaults to 7 days before ``until`` (default: the newest reading, else now)."""
    res = ScanResult(event_ids=[])
    conn = replica.reader()
    try:
        stations = conn.execute("SELECT id, code, name, lon, lat FROM eco_stations ORDER BY id").fetchall()
        cameras = {r["id"]: r for r in conn.execute("SELECT id, code, name, lon, lat FROM eco_cameras")}
        newest = conn.execute("SELECT max(hour) FROM eco_readings").fetchone()[0]
        end_h = eco_db.hour_of(until) + 1 if until else (newest + 1 if newest is not None else eco_db.hour_of(timeutil.now()) + 1)
        start_h = eco_db.hour_of(since) if since else end_h - 7 * 24
        series = {s["id"]: eco_db.station_series(conn, s["id"], start_h - LOOKBACK_HOURS, end_h) for s in stations}
        det_rows = conn.execute(
            "SELECT camera_id, at, kind FROM eco_detections WHERE at >= ? AND at < ? ORDER BY camera_id, kind, at",
            (timeutil.epoch_to_iso(start_h * 3600), timeutil.epoch_to_iso(end_h * 3600)),
        ).fetchall()
    finally:
        conn.close()
    for s in stations:
        ser = series[s["id"]]
        for param in gb3838.CLASSIFIED:
            for ep in breach_episodes(ser["hour"], ser[param], param):
                if ep.last < start_h:
                    continue
                start_iso, last_iso = eco_db.hour_iso(ep.start), eco_db.hour_iso(ep.last)
                zh, en, unit = gb3838.NAMES[param]
                label = gb3838.class_label(ep.peak_class)
                event = {
                    "source": SOURCE, "external_id": f"WQ-{s['code']}-{param}-{_compact(start_iso)}",
                    "category": "ECO.WATERQ", "priority": PRIORITY_BY_CLASS.get(ep.peak_class, 4),
                    "title": f"{s['name']} {zh}{label}（{ep.peak:.3g} {unit}）",
                    "description": f"长江生态眼：{s['code']} {zh} 自 {start_iso[:16]} 起达到{label}，"
                                   f"峰值 {ep.peak:.3g} {unit}（GB 3838-2002）。",
                    "lon": s["lon"], "lat": s["lat"], "reported_at": start_iso,
                }  # fmt: skip
                _record(replica, kind="breach", col="station_id", ref=s["id"], param=param, start_iso=start_iso,
                        last_iso=last_iso, peak=ep.peak, peak_class=ep.peak_class, gap_s=(GAP_HOURS + 1) * 3600,
                        event=event, res=res)  # fmt: skip
    groups: dict[tuple[int, str], list[int]] = {}
    for r in det_rows:
        groups.setdefault((r["camera_id"], r["kind"]), []).append(int(timeutil.parse(r["at"]).timestamp()))
    for (cam_id, kind), times in groups.items():
        cam = cameras.get(cam_id)
        if cam is None:
            continue
        for first, last, n in detection_episodes(times):
            start_iso, last_iso = timeutil.epoch_to_iso(first), timeutil.epoch_to_iso(last)
            event = {
                "source": SOURCE, "external_id": f"CAM-{cam['code']}-{kind}-{_compact(start_iso)}",
                "category": DETECTION_CATEGORIES[kind], "priority": 3,
                "title": f"{cam['name']} {DETECTION_NAMES[kind]}",
                "description": f"长江生态眼：{cam['code']} 于 {start_iso[:16]} 识别{DETECTION_NAMES[kind]}（{n} 次）。",
                "lon": cam["lon"], "lat": cam["lat"], "reported_at": start_iso,
            }  # fmt: skip
            _record(replica, kind="detection", col="camera_id", ref=cam_id, param=kind, start_iso=start_iso,
                    last_iso=last_iso, peak=None, peak_class=None, gap_s=DETECTION_GAP_MIN * 60, event=event, res=res)  # fmt: skip
    return res
