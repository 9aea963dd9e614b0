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

import json
import re
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


CARE_FIELDS = ("name", "kind", "grid_id", "address", "phone", "id_no", "visit_every_days", "note")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
ID_NO_RE = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
VISIT_CLOCK_SKEW_S = 120
"""A visit may be stamped this many seconds after the writer's clock (clocks of two consoles)."""


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def clean_care_fields(record: Mapping, *, partial: bool = False) -> dict:
    """Check and normalise care-list fields (``partial``: only the keys given, for an edit).

    Name required; kind one of :data:`CARE_KINDS`; phone an 11-digit mobile (``1[3-9]…``) or a
    landline (``0513-85123456``); ID number 18 characters with a valid GB 11643 check character;
    visit interval a whole number of days 1–365 (empty: the rule's default). The grid is checked
    against the replica by the writer. Raises :class:`RobotError` naming the field."""
    unknown = set(record) - set(CARE_FIELDS) - {"lon", "lat"}
    if unknown:
        raise RobotError(f"未知字段 unknown care-list field(s): {', '.join(sorted(unknown))}")
    out: dict = {}
    keys = [k for k in CARE_FIELDS if k in record] if partial else list(CARE_FIELDS)
    for key in keys:
        v = record.get(key)
        if isinstance(v, str):
            v = v.strip()
        if key == "name":
            if _blank(v):
                raise RobotError("关爱对象缺少姓名 name is required")
            if len(v) > 40:
                raise RobotError(f"姓名过长（{len(v)} 字，最多 40） name is too long")
        elif key == "kind":
            v = v or ("other" if not partial else v)
            if v not in CARE_KINDS:
                raise RobotError(f"关爱类型无效 kind must be one of {', '.join(CARE_KINDS)}, not {v!r}")
        elif key == "grid_id":
            if _blank(v):
                raise RobotError("须选择所属网格 a grid is required")
        elif key == "phone" and not _blank(v):
            digits = re.sub(r"[\s()（）]", "", v).replace("－", "-")
            if not (MOBILE_RE.match(digits) or LANDLINE_RE.match(digits)):
                raise RobotError(f"电话号码格式不对，应为以 1 开头的 11 位手机号或带区号的座机号 "
                                 f"phone {v!r} must be an 11-digit mobile or a landline like 0513-85123456")
            v = digits
        elif key == "id_no" and not _blank(v):
            v = v.upper().replace(" ", "")
            if not ID_NO_RE.match(v):
                raise RobotError(f"身份证号须为 18 位、末位可为 X，现为 {len(v)} 位 "
                                 f"an ID number has 18 characters (the last may be X), not {len(v)}")
            check = "10X98765432"[sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True)) % 11]
            if v[17] != check:
                raise RobotError("身份证号校验位不对，请核对 the ID number's check character is wrong")
        elif key == "visit_every_days" and not _blank(v):
            try:
                n = float(v)
            except (TypeError, ValueError):
                raise RobotError(f"走访周期须为天数 visit interval must be a number of days, not {v!r}") from None
            if n != int(n) or not 1 <= n <= 365:
                raise RobotError(f"走访周期须为一至三百六十五之间的整数天 visit interval must be 1–365 whole days, not {v!r}")
            v = int(n)
        elif key == "note" and not _blank(v) and len(v) > 2000:
            raise RobotError("备注过长（最多 2000 字） note is too long")
        out[key] = None if _blank(v) else v
    for key in ("lon", "lat"):
        if key in record:
            out[key] = record[key]
    return out


def _grid_row(conn: sqlite3.Connection, grid_id) -> tuple:
    grid = conn.execute("SELECT street_code, lon, lat FROM grids WHERE id = ?", (grid_id,)).fetchone()
    if grid is None:
        raise RobotError(f"没有该网格 no grid {grid_id!r}")
    return grid


def _log_care(conn: sqlite3.Connection, care_id: int, action: str, actor: str | None, detail: dict | None = None,
              at: str | None = None) -> None:  # fmt: skip
    """One ``care_log`` row (append-only) in the caller's transaction."""
    from app import timeutil

    conn.execute("INSERT INTO care_log (at, actor, care_id, action, detail) VALUES (?, ?, ?, ?, ?)",
                 (at or timeutil.now_iso(), actor or "system", care_id, action,
                  json.dumps(detail, ensure_ascii=False) if detail else None))  # fmt: skip


def add_care_resident(replica, record: Mapping, *, at: str | None = None, actor: str | None = None) -> int:
    """Put a resident on the care list (``name``, ``kind``, ``grid_id`` required; see
    :func:`clean_care_fields`). Logged in ``care_log`` with ``actor``."""
    from app import timeutil

    rec = clean_care_fields(record)
    with replica.write("care_list") as conn:
        grid = _grid_row(conn, rec["grid_id"])
        cur = conn.execute(
            "INSERT INTO care_list (uid, name, phone, id_no, kind, address, grid_id, street_code, lon, lat, "
            "visit_every_days, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_ulid(), rec["name"], rec["phone"], rec["id_no"], rec["kind"], rec["address"],
             rec["grid_id"], grid[0], rec.get("lon", grid[1]), rec.get("lat", grid[2]),
             rec["visit_every_days"], rec["note"], at or timeutil.now_iso()),
        )  # fmt: skip
        _log_care(conn, int(cur.lastrowid), "add", actor, {"grid_id": rec["grid_id"], "kind": rec["kind"]}, at)
        return int(cur.lastrowid)


def _active_resident(conn: sqlite3.Connection, care_id: int, doing: str) -> sqlite3.Row | tuple:
    row = conn.execute("SELECT id, name, active, grid_id, street_code, note FROM care_list WHERE id = ?",
                       (care_id,)).fetchone()  # fmt: skip
    if row is None:
        raise RobotError(f"关爱名单中没有 #{care_id} no care-list resident #{care_id}")
    if not row[2]:
        raise RobotError(f"关爱对象 #{care_id} 已停用，不能{doing} resident #{care_id} is deactivated")
    return row


def update_care_resident(replica, care_id: int, changes: Mapping, *, actor: str | None = None) -> dict:
    """Change an active resident's fields (only the keys given; see :func:`clean_care_fields`).
    A new grid moves the resident's street and point to that grid's. Returns the fields changed
    (``{field: (old, new)}``; empty when nothing changed)."""
    rec = clean_care_fields(changes, partial=True)
    if not rec:
        return {}
    with replica.write("care_list") as conn:
        _active_resident(conn, care_id, "修改")
        old = conn.execute(f"SELECT {', '.join(CARE_FIELDS)}, lon, lat, street_code FROM care_list WHERE id = ?",
                           (care_id,)).fetchone()  # fmt: skip
        before = dict(zip((*CARE_FIELDS, "lon", "lat", "street_code"), old, strict=True))
        if "grid_id" in rec and rec["grid_id"] != before["grid_id"]:
            grid = _grid_row(conn, rec["grid_id"])
            rec["street_code"] = grid[0]
            rec.setdefault("lon", grid[1])
            rec.setdefault("lat", grid[2])
        diff = {k: (before.get(k), v) for k, v in rec.items() if before.get(k) != v}
        if diff:
            sets = ", ".join(f"{k} = ?" for k in diff)
            conn.execute(f"UPDATE care_list SET {sets} WHERE id = ?", [*(v[1] for v in diff.values()), care_id])
            _log_care(conn, care_id, "update", actor, {"fields": sorted(diff)})  # names only: values are personal
        return diff


def deactivate_care_resident(replica, care_id: int, reason: str, *, actor: str, at: str | None = None) -> None:
    """Take a resident off the active care list (never deleted: the visits stay). The reason is
    required; it is appended to the resident's note with the time and the actor."""
    from app import timeutil

    reason = (reason or "").strip()
    if not reason:
        raise RobotError("停用须填写原因（如：已搬离、已入住养老机构、已去世） a deactivation needs a reason")
    when = at or timeutil.now_iso()
    with replica.write("care_list") as conn:
        row = _active_resident(conn, care_id, "再次停用")
        stamp = f"【停用 {timeutil.display(when)} {actor}】{reason}"
        note = f"{row[5]}\n{stamp}" if row[5] else stamp
        conn.execute("UPDATE care_list SET active = 0, note = ? WHERE id = ?", (note, care_id))
        _log_care(conn, care_id, "deactivate", actor, {"reason": reason}, when)


def add_care_visit(replica, care_id: int, *, at: str, person_id: int | None = None, visitor: str | None = None,
                   note: str | None = None, now: str | None = None, actor: str | None = None) -> int:  # fmt: skip
    """Record a care visit (``visits.kind = 'care_visit'``, the one the care rule counts) for an
    active resident. ``at`` may not lie in the future (``now``, default the clock, with
    :data:`VISIT_CLOCK_SKEW_S` of grace); ``person_id`` must be a known person; a free-text
    ``visitor`` goes into the note (``走访人：…``)."""
    from app import timeutil

    try:
        when = timeutil.parse(at) if isinstance(at, str) else at
    except ValueError:
        raise RobotError(f"走访时间格式不对 visit time is not a date and time: {at!r}") from None
    if when is None:
        raise RobotError("须填写走访时间 a visit time is required")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timeutil.TZ)
    ref = timeutil.parse(now) if now else timeutil.now()
    if (when - ref).total_seconds() > VISIT_CLOCK_SKEW_S:
        raise RobotError(f"走访时间晚于现在（{timeutil.display(timeutil.to_iso(when))}），不能登记未来的走访 "
                         f"a visit cannot lie in the future ({timeutil.display(timeutil.to_iso(when))})")  # fmt: skip
    visitor = (visitor or "").strip()
    note = (note or "").strip()
    if len(note) > 2000:
        raise RobotError("走访记录过长（最多 2000 字） visit note is too long")
    text = "；".join(p for p in ((f"走访人：{visitor}" if visitor and person_id is None else ""), note) if p)
    with replica.write("visits") as conn:
        row = _active_resident(conn, care_id, "登记走访")
        if person_id is not None and conn.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone() is None:
            raise RobotError(f"没有该走访人员 no person #{person_id}")
        if person_id is None and not visitor:
            raise RobotError("须填写走访人（网格人员或其他走访人姓名） a visit needs a visitor")
        cur = conn.execute(
            "INSERT INTO visits (uid, kind, care_id, grid_id, person_id, at, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (new_ulid(), "care_visit", care_id, row[3], person_id, timeutil.to_iso(when), text or None),
        )
        _log_care(conn, care_id, "visit", actor, {"visit_id": int(cur.lastrowid), "at": timeutil.to_iso(when)})
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
