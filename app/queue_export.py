"""The current queue as an Excel-friendly CSV (UTF-8 with BOM), and queue filters as saved specs.

:func:`export_queue_csv` runs the queue's own query (``app.queue``) with the session's scope
enforced by the filter's ``scope_street`` / ``assignee`` (never taken from a saved spec), without
the row limit, and writes one row per event. Reporter fields are not part of the queue and are
never written. Runs in a worker (``widgets/station_tools.py``).
"""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import asdict
from pathlib import Path

from app import queue, timeutil
from app.labels import label

SPEC_FIELDS = ("tab", "street", "category", "source", "klass", "window", "text", "include_drills")
EXPORT_LIMIT = 200_000
COLUMNS = (
    ("id", "编号"), ("external_id", "来源编号"), ("reported_at", "上报时间"), ("street_name", "街道"),
    ("grid_id", "网格"), ("category_name", "类别"), ("class", "类型"), ("priority", "等级"), ("status", "状态"),
    ("source", "来源"), ("title", "标题"), ("address", "地址"), ("handle_due_at", "处置期限"),
    ("deadline", "时限"), ("drill", "演练"),
)  # fmt: skip


def filter_spec(f: queue.QueueFilter) -> dict:
    """What a saved filter stores: the user's choices, never the role's scope."""
    d = asdict(f)
    return {k: d[k] for k in SPEC_FIELDS}


def apply_spec(base: queue.QueueFilter, spec: dict) -> queue.QueueFilter:
    """``base`` (which carries the session's scope) with a saved spec's choices; unknown keys are ignored."""
    changes = {k: spec[k] for k in SPEC_FIELDS if k in spec}
    return base.with_(**changes)


def export_queue_csv(conn: sqlite3.Connection, f: queue.QueueFilter, path: str | Path, *,
                     now: str | None = None, progress=None) -> int:  # fmt: skip
    """Write the queue for ``f`` (all rows, no limit) to ``path``; returns the number of rows."""
    now = now or timeutil.now_iso()
    rows = queue.query_queue(conn, f.with_(limit=EXPORT_LIMIT), now)
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([zh for _, zh in COLUMNS])
        for i, r in enumerate(rows):
            w.writerow([
                r["id"], r.get("external_id") or "", r["reported_at"], r.get("street_name") or "",
                r.get("grid_id") or "", r.get("category_name") or r.get("category") or "",
                label("class", r["class"]), label("priority", r["priority"]), label("status", r["status"]),
                label("source", r["source"]), r["title"], r.get("address") or "", r.get("handle_due_at") or "",
                queue.deadline_text(r, now), "是" if r.get("drill_id") is not None else "",
            ])  # fmt: skip
            if progress and i % 2000 == 0:
                progress(i / max(len(rows), 1), f"{i}/{len(rows)}")
    tmp.replace(path)
    return len(rows)
