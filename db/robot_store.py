"""The grid robot's writes (issue 8): warnings, decisions, thresholds, care list, visits, positions.

Every function writes through ``Replica.write`` (one ``BEGIN IMMEDIATE`` transaction). Findings
come in as plain dicts from ``app.robot`` (this module knows no rules):
``{"key", "severity", "explanation_zh", "suggested_action", "grid_id", "street_code", "lon",
"lat", "evidence": {"events", "external_ids", "people", "devices"}, "overlap_group"}``.

De-duplication (:func:`apply_findings`): a finding is the same warning as an open one with the
same ``(rule, dedup_key)`` — or, for findings with an ``overlap_group`` (hot spots), an open
warning of that rule and group that shares an event. The open warning is updated (its
evidence grows; ``updated_at`` moves only when something changed), never raised twice. A
finding whose evidence is no larger than that of a warning already accepted or dismissed with the
same key is not raised again (the decision stands until new evidence arrives).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

import orjson

from db import event_ops
from db.ids import new_ulid

EVIDENCE_KEYS = ("events", "external_ids", "people", "devices")
WARNING_STATUSES = ("open", "accepted", "dismissed", "cleared")
CARE_KINDS = ("elderly_alone", "disabled", "hardship", "minor", "other")


class RobotError(ValueError):
    """A refused robot write (the message is for the operator)."""


def _evidence(obj: Mapping | str | None) -> dict:
    if isinstance(obj, str):
        obj = orjson.loads(obj)
    obj = obj or {}
    return {k: list(obj.get(k) or []) for k in EVIDENCE_KEYS}


def _union(a: dict, b: dict) -> dict:
    return {k: sorted(set(a[k]) | set(b[k]), key=lambda v: (str(type(v)), v)) for k in EVIDENCE_KEYS}


def _subset(a: dict, b: dict) -> bool:
    return all(set(a[k]) <= set(b[k]) for k in EVIDENCE_KEYS)


def _dumps(obj) -> str:
    return orjson.dumps(obj).decode()


def apply_findings(
    replica,
    findings: Mapping[str, list[dict]],
    *,
    now: str,
    actor: str = "robot",
    clear_rules: set[str] | frozenset[str] = frozenset(),
    errors: list[dict] | None = None,
    started_at: str | None = None,
) -> dict:
    """Store one pass's findings (rule → findings) in one transaction.

    Open warnings of a rule in ``clear_rules`` (it ran without error and clears itself) that no
    finding matched become ``cleared``. Returns ``{"new": [ids], "updated": [ids], "seen": [ids],
    "cleared": [ids], "run_id": id}``.
    """
    res: dict = {"new": [], "updated": [], "seen": [], "cleared": []}
    listed: set[int] = set()
    with replica.write("robot_warnings") as conn:
        rules = sorted(set(findings) | set(clear_rules))
        marks = ",".join("?" * len(rules)) or "''"
        open_rows = conn.execute(
            f"SELECT id, rule, dedup_key, severity, evidence, explanation_zh, suggested_action, grid_id, street_code, "
            f"lon, lat FROM robot_warnings WHERE status = 'open' AND rule IN ({marks})",
            rules,
        ).fetchall()
        by_key = {(r[1], r[2]): r for r in open_rows}
        ev_cache = {r[0]: _evidence(r[4]) for r in open_rows}
        by_event: dict[tuple[str, int], int] = {}
        for r in open_rows:
            for e in ev_cache[r[0]]["events"]:
                by_event[(r[1], e)] = r[0]
        row_by_id = {r[0]: r for r in open_rows}
        matched: set[int] = set()
        res_seen: set[int] = set()
        rev = replica.next_rev(conn)
        for rule, items in findings.items():
            for f in items:
                ev = _evidence(f.get("evidence"))
                key = str(f["key"])
                row = by_key.get((rule, key))
                if row is None and f.get("overlap_group"):
                    group = f["overlap_group"]
                    for e in ev["events"]:
                        wid = by_event.get((rule, e))
                        if wid is not None and wid not in matched and row_by_id[wid][2].startswith(group + "|"):
                            row = row_by_id[wid]
                            break
                if row is not None:
                    wid = row[0]
                    if wid in matched:  # two findings of one pass met the same warning: fold in
                        ev = _union(ev_cache[wid], ev)
                    elif f.get("overlap_group"):
                        ev = _union(ev_cache[wid], ev)
                    matched.add(wid)
                    changed = (
                        ev != ev_cache[wid] or f["severity"] != row[3] or f["explanation_zh"] != row[5]
                        or f["suggested_action"] != row[6]
                    )  # fmt: skip
                    if changed:
                        conn.execute(
                            "UPDATE robot_warnings SET severity = ?, evidence = ?, explanation_zh = ?, suggested_action = ?, "
                            "grid_id = coalesce(?, grid_id), street_code = coalesce(?, street_code), "
                            "lon = coalesce(?, lon), lat = coalesce(?, lat), updated_at = ?, seen_at = ?, rev = ? "
                            "WHERE id = ?",
                            (min(f["severity"], row[3]) if ev != ev_cache[wid] else f["severity"], _dumps(ev),
                             f["explanation_zh"], f["suggested_action"], f.get("grid_id"), f.get("street_code"),
                             f.get("lon"), f.get("lat"), now, now, rev, wid),
                        )  # fmt: skip
                        ev_cache[wid] = ev
                        if wid in res_seen:
                            res_seen.discard(wid)
                        if wid not in listed:
                            res["updated"].append(wid)
                            listed.add(wid)
                    else:
                        conn.execute("UPDATE robot_warnings SET seen_at = ? WHERE id = ?", (now, wid))
                        if wid not in listed and wid not in res_seen:
                            res_seen.add(wid)
                    continue
                if _decided_covers(conn, rule, key, ev):
                    continue
                cur = conn.execute(
                    "INSERT INTO robot_warnings (uid, rule, dedup_key, severity, grid_id, street_code, lon, lat, evidence, "
                    "explanation_zh, suggested_action, status, created_at, updated_at, seen_at, rev) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                    (new_ulid(), rule, key, int(f["severity"]), f.get("grid_id"), f.get("street_code"), f.get("lon"),
                     f.get("lat"), _dumps(ev), f["explanation_zh"], f["suggested_action"], now, now, now, rev),
                )  # fmt: skip
                wid = int(cur.lastrowid)
                matched.add(wid)
                row_by_id[wid] = (wid, rule, key, int(f["severity"]), None, f["explanation_zh"], f["suggested_action"])
                by_key[(rule, key)] = row_by_id[wid]
                ev_cache[wid] = ev
                for e in ev["events"]:
                    by_event.setdefault((rule, e), wid)
                res["new"].append(wid)
                listed.add(wid)
        res["seen"] = sorted(res_seen)
        for r in open_rows:
            if r[1] in clear_rules and r[0] not in matched:
                conn.execute(
                    "UPDATE robot_warnings SET status = 'cleared', decided_at = ?, decided_by = ?, updated_at = ?, rev = ? "
                    "WHERE id = ?",
                    (now, actor, now, rev, r[0]),
                )
                res["cleared"].append(r[0])
        cur = conn.execute(
            "INSERT INTO robot_runs (started_at, finished_at, actor, created, updated, cleared, errors) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (started_at or now, now, actor, len(res["new"]), len(res["updated"]), len(res["cleared"]),
             _dumps(errors or [])),
        )  # fmt: skip
        res["run_id"] = int(cur.lastrowid)
    return res


def _decided_covers(conn: sqlite3.Connection, rule: str, key: str, ev: dict) -> bool:
    for (old,) in conn.execute(
        "SELECT evidence FROM robot_warnings WHERE rule = ? AND dedup_key = ? AND status IN ('accepted', 'dismissed')",
        (rule, key),
    ):
        if _subset(ev, _evidence(old)):
            return True
    return False


def get_warning(conn: sqlite3.Connection, warning_id: int) -> dict:
    row = conn.execute("SELECT * FROM robot_warnings WHERE id = ?", (warning_id,)).fetchone()
    if row is None:
        raise RobotError(f"没有该预警 no robot warning #{warning_id}")
    d = dict(row)
    d["evidence"] = _evidence(d["evidence"])
    return d


def _location(conn: sqlite3.Connection, w: dict) -> tuple[float, float]:
    if w.get("lon") is not None and w.get("lat") is not None:
        return w["lon"], w["lat"]
    for sql, arg in (("SELECT lon, lat FROM grids WHERE id = ?", w.get("grid_id")),
                     ("SELECT lon, lat FROM streets WHERE code = ?", w.get("street_code"))):  # fmt: skip
        if arg:
            r = conn.execute(sql, (arg,)).fetchone()
            if r and r[0] is not None:
                return r[0], r[1]
    r = conn.execute("SELECT lon, lat FROM grids WHERE lon IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    if r is None:
        raise RobotError("预警没有位置，副本中也没有网格 the warning has no place and the replica no grids")
    return r[0], r[1]


def accept_warning(
    replica,
    warning_id: int,
    *,
    category: str,
    title: str,
    actor: str,
    at: str | None = None,
    guard: Callable[[dict], None] | None = None,
) -> int:
    """Turn an open warning into an event of ``category`` in the closed loop; returns the event id.

    The event's source is ``robot`` and its external id the warning's uid (the link back); the
    warning becomes ``accepted`` with ``event_id`` set. Retrying after a crash between the two
    transactions links the event already created instead of creating a second one."""
    conn = replica.reader()
    try:
        w = get_warning(conn, warning_id)
        lon, lat = _location(conn, w)
    finally:
        conn.close()
    if w["status"] != "open":
        raise RobotError(f"预警 #{warning_id} 已{_STATUS_ZH.get(w['status'], w['status'])}，不能再采纳")
    ev = w["evidence"]
    lines = [w["explanation_zh"], f"建议：{w['suggested_action']}", f"来源：智能预警 #{warning_id}（{w['rule']}）"]
    if ev["events"]:
        lines.append("依据事件：" + "、".join(f"#{e}" for e in ev["events"][:200]))
    record = {
        "source": "robot", "external_id": w["uid"], "category": category, "title": title[:120],
        "description": "\n".join(lines), "lon": lon, "lat": lat,
    }  # fmt: skip
    try:
        event_id = event_ops.create_event(replica, record, actor=actor, at=at, guard=guard)
    except event_ops.DuplicateEvent as exc:
        event_id = exc.existing_id
    from app import timeutil

    when = at or timeutil.now_iso()
    with replica.write("robot_warnings") as wconn:
        cur = wconn.execute(
            "UPDATE robot_warnings SET status = 'accepted', event_id = ?, decided_at = ?, decided_by = ?, "
            "updated_at = ?, rev = ? WHERE id = ? AND status = 'open'",
            (event_id, when, actor, when, replica.next_rev(wconn), warning_id),
        )
        if cur.rowcount != 1:
            raise RobotError(f"预警 #{warning_id} 已被他人处理 was decided by someone else meanwhile")
    return event_id


_STATUS_ZH = {"open": "待研判", "accepted": "采纳", "dismissed": "驳回", "cleared": "自动解除"}


def dismiss_warning(replica, warning_id: int, reason: str, *, actor: str, at: str | None = None) -> None:
    """Dismiss an open warning; the reason is required and kept as feedback for the rule."""
    reason = (reason or "").strip()
    if not reason:
        raise RobotError("驳回须填写理由 a dismissal needs a reason")
    from app import timeutil

    when = at or timeutil.now_iso()
    with replica.write("robot_warnings") as conn:
        row = conn.execute("SELECT status FROM robot_warnings WHERE id = ?", (warning_id,)).fetchone()
        if row is None:
            raise RobotError(f"没有该预警 no robot warning #{warning_id}")
        if row[0] != "open":
            raise RobotError(f"预警 #{warning_id} 已{_STATUS_ZH.get(row[0], row[0])}，不能驳回")
        conn.execute(
            "UPDATE robot_warnings SET status = 'dismissed', dismiss_reason = ?, decided_at = ?, decided_by = ?, "
            "updated_at = ?, rev = ? WHERE id = ?",
            (reason, when, actor, when, replica.next_rev(conn), warning_id),
        )


def set_threshold(replica, rule: str, key: str, value: float, *, actor: str, at: str | None = None) -> None:
    """Store an operator's threshold (validated by the caller against the rule's ``Param``)."""
    from app import timeutil

    with replica.write("robot_settings") as conn:
        conn.execute(
            "INSERT INTO robot_settings (rule, key, value, edited_by, edited_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (rule, key) DO UPDATE SET value = excluded.value, edited_by = excluded.edited_by, "
            "edited_at = excluded.edited_at",
            (rule, key, float(value), actor, at or timeutil.now_iso()),
        )


def reset_threshold(replica, rule: str, key: str) -> None:
    with replica.write("robot_settings") as conn:
        conn.execute("DELETE FROM robot_settings WHERE rule = ? AND key = ?", (rule, key))


def add_care_resident(replica, record: Mapping, *, at: str | None = None) -> int:
    """Put a resident on the care list (``name``, ``kind``, ``grid_id`` required)."""
    from app import timeutil

    name = (record.get("name") or "").strip()
    if not name:
        raise RobotError("关爱对象缺少姓名 name is required")
    kind = record.get("kind") or "other"
    if kind not in CARE_KINDS:
        raise RobotError(f"关爱类型无效 kind must be one of {', '.join(CARE_KINDS)}, not {kind!r}")
    with replica.write("care_list") as conn:
        grid = conn.execute("SELECT street_code, lon, lat FROM grids WHERE id = ?", (record.get("grid_id"),)).fetchone()
        if grid is None:
            raise RobotError(f"没有该网格 no grid {record.get('grid_id')!r}")
        cur = conn.execute(
            "INSERT INTO care_list (uid, name, phone, id_no, kind, address, grid_id, street_code, lon, lat, "
            "visit_every_days, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_ulid(), name, record.get("phone"), record.get("id_no"), kind, record.get("address"),
             record["grid_id"], grid[0], record.get("lon", grid[1]), record.get("lat", grid[2]),
             record.get("visit_every_days"), record.get("note"), at or timeutil.now_iso()),
        )  # fmt: skip
        return int(cur.lastrowid)


def add_visit(replica, *, kind: str, at: str, person_id: int | None = None, care_id: int | None = None,
              grid_id: str | None = None, note: str | None = None) -> int:  # fmt: skip
    """A care visit (``care_id``) or a patrol record (``grid_id``)."""
    if kind not in ("care_visit", "patrol"):
        raise RobotError(f"走访类型无效 kind must be care_visit or patrol, not {kind!r}")
    with replica.write("visits") as conn:
        if care_id is not None:
            row = conn.execute("SELECT grid_id FROM care_list WHERE id = ?", (care_id,)).fetchone()
            if row is None:
                raise RobotError(f"关爱名单中没有 #{care_id}")
            grid_id = grid_id or row[0]
        elif kind == "care_visit":
            raise RobotError("关爱走访须指明关爱对象 a care visit needs care_id")
        cur = conn.execute(
            "INSERT INTO visits (uid, kind, care_id, grid_id, person_id, at, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (new_ulid(), kind, care_id, grid_id, person_id, at, note),
        )
        return int(cur.lastrowid)


def add_leader_position(replica, person_id: int, at: str, lon: float, lat: float, grid_id: str | None) -> int:
    """Append a grid-leader position (the table keeps the newest rows per person)."""
    with replica.write("leader_positions") as conn:
        cur = conn.execute(
            "INSERT INTO leader_positions (person_id, at, lon, lat, grid_id) VALUES (?, ?, ?, ?, ?)",
            (person_id, at, lon, lat, grid_id),
        )
        return int(cur.lastrowid)
