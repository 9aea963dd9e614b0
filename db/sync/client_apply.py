"""Writing the upstream's row images into the replica (the SQLite half of pull, refusal and clone).

Everything here runs inside ONE write transaction that the caller opened (``Replica.write``)
with ``sync_state.applying = 1`` set, so the outbox trigger does not queue the rows written
here. Row images follow ``docs/sync.md``: references travel as uids (``merged_into_uid``,
``event_uid``, ``escalated_from_uid``) and are mapped to local integer ids here.

The existing triggers keep derived data consistent: ``events_fts_*`` (full text) and the m007
KPI rollup triggers fire on every INSERT/UPDATE of ``events``. Updates only SET the columns
that differ, so an unchanged title does not re-index the event's full text. The two KPI helper
columns (``deferrals``, ``evaluated_at``) are recomputed from the replica's own log after the
log rows are in, because the outbox trigger captures the image before the KPI log triggers
bump them (SQLite fires the newest trigger first).
"""

from __future__ import annotations

import sqlite3

import orjson

from app import timeutil

# events columns that never come from an image (local ids, local revision) or are mapped
EVENT_LOCAL = frozenset({"id", "rev", "merged_into", "merged_into_uid"})
WHISTLE_LOCAL = frozenset({"id", "event_id", "rev", "escalated_from", "escalated_from_uid", "event_uid",
                           "departments"})  # fmt: skip
LOG_COLUMNS = ("uid", "at", "actor", "action", "from_status", "to_status", "note", "payload")
EXCLUDED_PREFIX = "sync_excluded:"


class KeyConflict(Exception):
    """A pulled event would take the ``(source, external_id)`` of another local event (a local
    report not yet refused). The batch stops before it; the next round pushes first."""


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _json_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def excluded_event_uids(conn: sqlite3.Connection) -> set[str]:
    """Events kept locally but not part of the shared picture (refused reports, upstream deletes)."""
    rows = conn.execute("SELECT key FROM meta WHERE key >= ? AND key < ?", (EXCLUDED_PREFIX, EXCLUDED_PREFIX + "\uffff"))
    return {r[0][len(EXCLUDED_PREFIX):] for r in rows}


class Applier:
    """Applies row images inside the caller's write transaction (``conn``), stamping ``rev``."""

    def __init__(self, conn: sqlite3.Connection, rev: int) -> None:
        self.conn = conn
        self.rev = rev
        self.event_cols = set(_columns(conn, "events")) - EVENT_LOCAL
        self.whistle_cols = set(_columns(conn, "whistles")) - WHISTLE_LOCAL
        self.dept_cols = [c for c in _columns(conn, "whistle_departments") if c != "whistle_id"]
        self.pending = {r[0] for r in conn.execute("SELECT DISTINCT event_uid FROM outbox WHERE state = 'pending'")}
        self.helpers = "deferrals" in self.event_cols and "evaluated_at" in self.event_cols
        self.events_written = 0
        self.logs_written = 0
        self._cols_cache: dict[tuple, tuple[str, ...]] = {}
        self._sql_cache: dict[tuple[str, ...], str] = {}
        self._tcur: sqlite3.Cursor | None = None
        self.excluded = excluded_event_uids(conn)

    # -- lookups -----------------------------------------------------------------------------
    def event_id(self, uid: str | None) -> int | None:
        if not uid:
            return None
        r = self.conn.execute("SELECT id FROM events WHERE uid = ?", (uid,)).fetchone()
        return r[0] if r else None

    def whistle_id(self, uid: str | None) -> int | None:
        if not uid:
            return None
        r = self.conn.execute("SELECT id FROM whistles WHERE uid = ?", (uid,)).fetchone()
        return r[0] if r else None

    # -- events ------------------------------------------------------------------------------
    def upsert_event(self, image: dict, *, map_merge: bool = True, current: tuple | None | bool = False) -> int:
        """Insert or update the event from its image; only changed columns are written.

        ``map_merge=False`` leaves ``merged_into`` to the caller (a batch maps it once all its
        events exist); ``current`` is the row as :meth:`current_rows` read it (None: no such event)."""
        uid = image["uid"]
        cols = self._image_cols(image)
        if current is False:
            cur = self._tuple_cursor().execute(self._select_sql(cols), (uid,)).fetchone()
        else:
            cur = current
        merged = self.event_id(image.get("merged_into_uid")) if map_merge and "merged_into_uid" in image else None
        if cur is None:
            ext = image.get("external_id")
            if ext is not None:
                other = self.conn.execute(
                    "SELECT uid FROM events WHERE source = ? AND external_id = ?", (image.get("source"), ext)
                ).fetchone()
                if other is not None and other[0] != uid:
                    raise KeyConflict(f"{image.get('source')}:{ext} is local event {other[0]}, upstream {uid}")
            names = [*cols, "rev"] + (["merged_into"] if merged is not None else [])
            vals = [image[c] for c in cols] + [self.rev] + ([merged] if merged is not None else [])
            c = self.conn.execute(
                f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", vals
            )
            self.events_written += 1
            return int(c.lastrowid)
        eid = cur[0]
        changed = self.changed_columns(image, cur)
        if map_merge and "merged_into_uid" in image and cur[1] != merged:
            changed.append(("merged_into", merged))
        if changed:
            changed.append(("rev", self.rev))
            sets = ", ".join(f"{k} = ?" for k, _ in changed)
            self.conn.execute(f"UPDATE events SET {sets} WHERE id = ?", [v for _, v in changed] + [eid])
            self.events_written += 1
        return int(eid)

    def changed_columns(self, image: dict, cur: tuple) -> list[tuple[str, object]]:
        """``[(column, new value)]`` where ``image`` differs from ``cur`` (a :meth:`current_rows` row)."""
        return [(c, image[c]) for i, c in enumerate(self._image_cols(image), 2) if cur[i] != image[c]]

    def current_rows(self, images: list[dict]) -> dict[str, tuple]:
        """``uid → (id, merged_into, image columns…)`` for the images' events, in chunks (one query
        per 500 events instead of one per event)."""
        out: dict[str, tuple] = {}
        by_cols: dict[tuple[str, ...], list[str]] = {}
        for im in images:
            by_cols.setdefault(self._image_cols(im), []).append(im["uid"])
        cur = self._tuple_cursor()
        for cols, uids in by_cols.items():
            for k in range(0, len(uids), 500):
                chunk = uids[k:k + 500]
                sql = (f"SELECT uid, id, merged_into, {', '.join(cols)} FROM events "
                       f"WHERE uid IN ({', '.join('?' * len(chunk))})")  # fmt: skip
                for row in cur.execute(sql, chunk):
                    out[row[0]] = row[1:]
        return out

    def _image_cols(self, image: dict) -> tuple[str, ...]:
        key = tuple(image)
        cols = self._cols_cache.get(key)
        if cols is None:
            cols = self._cols_cache[key] = tuple(c for c in image if c in self.event_cols)
        return cols

    def _select_sql(self, cols: tuple[str, ...]) -> str:
        sql = self._sql_cache.get(cols)
        if sql is None:
            sql = self._sql_cache[cols] = f"SELECT id, merged_into, {', '.join(cols)} FROM events WHERE uid = ?"
        return sql

    def _tuple_cursor(self) -> sqlite3.Cursor:
        if self._tcur is None:
            self._tcur = self.conn.cursor()
            self._tcur.row_factory = None
        return self._tcur

    def fix_helpers(self, event_id: int) -> None:
        """``deferrals``/``evaluated_at`` from this replica's log, without refused rows."""
        if not self.helpers:
            return
        self.conn.execute(
            "UPDATE events SET deferrals = (SELECT count(*) FROM event_log l WHERE l.event_id = events.id "
            "AND l.action = 'defer' AND l.uid NOT IN (SELECT log_uid FROM outbox WHERE state = 'rejected')), "
            "evaluated_at = coalesce((SELECT max(l.at) FROM event_log l WHERE l.event_id = events.id "
            "AND l.action = 'evaluate' AND l.uid NOT IN (SELECT log_uid FROM outbox WHERE state = 'rejected')), "
            "evaluated_at) WHERE id = ?",
            (event_id,),
        )

    # -- log ---------------------------------------------------------------------------------
    def insert_log(self, event_id: int, log: dict) -> bool:
        """``INSERT OR IGNORE`` by uid (the log is append-only); True when the row is new here."""
        row = [log.get(c) for c in LOG_COLUMNS]
        row[-1] = _json_text(row[-1])
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], event_id, *row[1:]),
        )
        if cur.rowcount:
            self.logs_written += 1
            return True
        return False

    # -- whistles ----------------------------------------------------------------------------
    def replace_whistles(self, event_id: int, images: list[dict]) -> None:
        """Make the event's whistles equal to ``images`` (upsert by uid, drop the others)."""
        keep: list[str] = []
        for w in images:
            keep.append(w["uid"])
            values = {c: w[c] for c in w if c in self.whistle_cols}
            values["event_id"] = event_id
            values["rev"] = self.rev
            wid = self.whistle_id(w["uid"])
            if wid is None:
                cols = list(values)
                wid = self.conn.execute(
                    f"INSERT INTO whistles ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [values[k] for k in cols],
                ).lastrowid
            else:
                sets = ", ".join(f"{k} = ?" for k in values)
                self.conn.execute(f"UPDATE whistles SET {sets} WHERE id = ?", [*values.values(), wid])
            self.conn.execute("DELETE FROM whistle_departments WHERE whistle_id = ?", (wid,))
            depts = w.get("departments") or []
            if isinstance(depts, str):
                depts = orjson.loads(depts)
            for d in depts:
                cols = ["whistle_id", *[c for c in self.dept_cols if c in d]]
                self.conn.execute(
                    f"INSERT INTO whistle_departments ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [wid, *[d[c] for c in cols[1:]]],
                )
        for w in images:  # second pass: references between the event's whistles
            if "escalated_from_uid" in w:
                self.conn.execute(
                    "UPDATE whistles SET escalated_from = ? WHERE uid = ?",
                    (self.whistle_id(w.get("escalated_from_uid")), w["uid"]),
                )
        gone = [r[0] for r in self.conn.execute(
            f"SELECT id FROM whistles WHERE event_id = ? AND uid NOT IN ({', '.join('?' * len(keep))})",
            (event_id, *keep))]  # fmt: skip
        for wid in gone:
            self.conn.execute("UPDATE whistles SET escalated_from = NULL WHERE escalated_from = ?", (wid,))
            self.conn.execute("DELETE FROM whistle_departments WHERE whistle_id = ?", (wid,))
            self.conn.execute("DELETE FROM whistles WHERE id = ?", (wid,))

    # -- whole changes -----------------------------------------------------------------------
    def apply_state(self, state: dict) -> None:
        """Roll one event back to the server's state ``{"event": image, "whistles": [...]}``."""
        image = state["event"]
        eid = self.upsert_event(image)
        self.replace_whistles(eid, state.get("whistles") or [])
        self.fix_helpers(eid)
        self._unexclude(image["uid"])

    def exclude_event(self, uid: str, reason: str) -> None:
        """Take an event the upstream does not have out of the shared picture, keeping the row
        (its log is append-only and references it): status ``rejected``, ``external_id`` freed so
        the upstream's own copy of the same report can come in, and a ``meta`` marker that the
        content hash and the sync views read."""
        eid = self.event_id(uid)
        if eid is None:
            return
        now = timeutil.now_iso()
        self.conn.execute(
            "UPDATE events SET status = 'rejected', rejected_at = coalesce(rejected_at, ?), external_id = NULL, "
            "rev = ? WHERE id = ?",
            (now, self.rev, eid),
        )
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (EXCLUDED_PREFIX + uid, reason),
        )
        self.excluded.add(uid)

    def _unexclude(self, uid: str | None) -> None:
        if uid and uid in self.excluded:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (EXCLUDED_PREFIX + uid,))
            self.excluded.discard(uid)

    def apply_tombstone(self, uid: str, server_seq: int | None) -> None:
        """The upstream deleted the event: drop its whistles and exclude the row (see ``exclude_event``)."""
        eid = self.event_id(uid)
        if eid is None or uid in self.pending:
            return
        self.replace_whistles(eid, [])
        self.exclude_event(uid, f"deleted upstream (server_seq {server_seq})")


def _data(change: dict) -> dict:
    data = change.get("data") or {}
    return orjson.loads(data) if isinstance(data, str | bytes) else data


def apply_batch(ap: Applier, changes: list[dict]) -> int:
    """Apply a pulled batch in order, set-wise: each event takes the image of its LAST change in
    the batch (the images are whole rows, so the result equals applying them one by one), all log
    rows go in with one ``executemany``. Returns how many changes were applied: a change whose
    new event would take the ``(source, external_id)`` of a local event still waiting for its own
    report to be refused ends the batch (see :class:`KeyConflict`)."""
    conn = ap.conn
    last: dict[str, dict] = {}
    logs: list[tuple[str, dict]] = []
    tombstones: list[tuple[str, int | None]] = []
    whistles: dict[str, list] = {}
    datas = [_data(ch) for ch in changes]
    uids = {(d.get("event") or {}).get("uid") for d in datas} - {None}
    local = _existing(conn, "SELECT uid, id FROM events WHERE uid IN ({})", list(uids))
    n = 0
    for ch, data in zip(changes, datas, strict=True):
        kind = ch.get("kind")
        if kind == "mutation":
            image = data.get("event") or {}
            uid = image.get("uid") or (data.get("log") or {}).get("event_uid")
            if uid not in local and image.get("external_id"):
                other = conn.execute("SELECT uid FROM events WHERE source = ? AND external_id = ?",
                                     (image.get("source"), image["external_id"])).fetchone()  # fmt: skip
                if other is not None and other[0] != uid:
                    break
                local[uid] = None  # new here, checked once
            if uid not in ap.pending and image:
                last.pop(uid, None)  # keep first-to-last order of the final images
                last[uid] = data
                if data.get("whistles") is not None:  # None = not carried by this change
                    whistles[uid] = data["whistles"]
            if data.get("log"):
                logs.append((uid, data["log"]))
            tombstones = [t for t in tombstones if t[0] != uid]
        elif kind == "tombstone":
            uid = data.get("uid") or ch.get("uid")
            last.pop(uid, None)
            whistles.pop(uid, None)
            tombstones.append((uid, ch.get("server_seq")))
        n += 1
    ids: dict[str, int] = {}
    merges = []
    current = ap.current_rows([d["event"] for d in last.values()])
    new = [d["event"] for uid, d in last.items() if uid not in current]
    if len(new) >= BULK_NEW_EVENTS:
        ids.update(_insert_new_events(ap, new))
    known = [(d["event"], current[uid]) for uid, d in last.items() if uid in current]
    if len(known) >= BULK_UPDATED_EVENTS:
        ids.update(_update_events(ap, known))
    for uid, data in last.items():
        if uid not in ids:
            ids[uid] = ap.upsert_event(data["event"], map_merge=False, current=current.get(uid))
        if data["event"].get("merged_into_uid"):  # merged is terminal: never un-merged
            merges.append((uid, data["event"]["merged_into_uid"]))
    for uid, into in merges:
        target = ids.get(into) if into in ids else ap.event_id(into)
        conn.execute("UPDATE events SET merged_into = ?, rev = ? WHERE id = ? AND merged_into IS NOT ?",
                     (target, ap.rev, ids[uid], target))  # fmt: skip
    rows = []
    for uid, lg in logs:
        eid = ids.get(uid) or ap.event_id(uid)
        if eid is None:
            continue
        ids[uid] = eid
        rows.append((lg.get("uid"), eid, lg.get("at"), lg.get("actor"), lg.get("action"), lg.get("from_status"),
                     lg.get("to_status"), lg.get("note"), _json_text(lg.get("payload"))))  # fmt: skip
    conn.executemany(
        "INSERT OR IGNORE INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    ap.logs_written += len(rows)
    if rows and conn.execute("SELECT 1 FROM outbox WHERE state = 'rejected' LIMIT 1").fetchone():
        _reconcile_refused(ap, [r[0] for r in rows], changes)
    with_whistles = _existing(conn, "SELECT DISTINCT event_id, 1 FROM whistles WHERE event_id IN ({})",
                              [ids[u] for u in whistles if u in last])  # fmt: skip
    for uid, images in whistles.items():
        if uid in last and (images or ids[uid] in with_whistles):
            ap.replace_whistles(ids[uid], images)
    helpers = {uid for uid, lg in logs if uid in last and lg.get("action") in ("defer", "evaluate")}
    for uid in helpers:
        ap.fix_helpers(ids[uid])
    for uid in list(last):
        ap._unexclude(uid)
    for uid, seq in tombstones:
        ap.apply_tombstone(uid, seq)
    return n


# Insert triggers on events that a batch of many new events replaces by set-wise statements.
BULK_TRIGGERS = ("events_fts_ai", "kpi_events_ai", "kpi_events_sat_ai")
BULK_NEW_EVENTS = 100  # new events in one pulled batch from which the set-wise insert is used


def _insert_new_events(ap: Applier, images: list[dict]) -> dict[str, int]:
    """Insert many new events at once: the per-row insert triggers (full text, KPI rollups) are
    dropped inside this transaction, the rows go in with ``executemany``, their full-text rows,
    ``evaluated_at`` and rollup contributions are added set-wise (the same results the triggers
    give, see ``db/kpi_rollups.py``), and the triggers are created again before anything else is
    written. Readers never see the triggers missing (the DDL is part of the write transaction)."""
    from db import kpi_rollups

    conn = ap.conn
    saved = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({', '.join('?' * len(BULK_TRIGGERS))})",
        BULK_TRIGGERS,
    ).fetchall()
    for name, _sql in saved:
        conn.execute(f"DROP TRIGGER {name}")
    by_cols: dict[tuple[str, ...], list[dict]] = {}
    for im in images:
        by_cols.setdefault(ap._image_cols(im), []).append(im)
    lo = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    for cols, ims in by_cols.items():
        names = [*cols, "rev"]
        conn.executemany(
            f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [[im[c] for c in cols] + [ap.rev] for im in ims],
        )
    ap.events_written += len(images)
    where = "id > ?"
    conn.execute(
        "INSERT INTO events_fts(rowid, title, description, address) SELECT id, title, description, address "
        f"FROM events e WHERE e.{where} AND NOT EXISTS (SELECT 1 FROM fts_pending p WHERE e.id BETWEEN p.lo AND p.hi)",
        (lo,),
    )
    if ap.helpers:
        conn.execute(
            "UPDATE events SET evaluated_at = coalesce(closed_at, handled_at, updated_at) "
            f"WHERE {where} AND satisfaction IS NOT NULL AND evaluated_at IS NULL",
            (lo,),
        )
    if kpi_rollups.installed(conn):
        kpi_rollups.add_contributions(conn, "e.id > ?", (lo,))
    for _name, sql in saved:
        conn.execute(sql)
    return dict(conn.execute("SELECT uid, id FROM events WHERE id > ?", (lo,)).fetchall())


BULK_UPDATED_EVENTS = 100  # events changed by one pulled batch from which the set-wise update is used


def _update_events(ap: Applier, pairs: list[tuple[dict, tuple]]) -> dict[str, int]:
    """Update many events at once (``pairs``: image, :meth:`Applier.current_rows` row): only the
    changed columns, one ``executemany`` per set of changed columns. The rollups' per-row update
    trigger is dropped inside this transaction; the changed rows' contributions are subtracted
    before and added after, set-wise (the trigger's result), and the trigger is created again
    before anything else is written. Returns ``{uid: id}`` for every pair."""
    from db import kpi_rollups

    conn = ap.conn
    ids: dict[str, int] = {}
    groups: dict[tuple[str, ...], list[list]] = {}
    for image, cur in pairs:
        ids[image["uid"]] = eid = int(cur[0])
        changed = ap.changed_columns(image, cur)
        if changed:
            groups.setdefault(tuple(c for c, _ in changed), []).append([v for _, v in changed] + [ap.rev, eid])
    if not groups:
        return ids
    trigger = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
        (kpi_rollups.TRIGGER_PREFIX + "events_au",),
    ).fetchone()
    where = "e.id IN (SELECT id FROM temp.pull_updated)"
    if trigger is not None:
        conn.execute("DROP TABLE IF EXISTS temp.pull_updated")
        conn.execute("CREATE TEMP TABLE pull_updated (id INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO temp.pull_updated (id) VALUES (?)", [(r[-1],) for rs in groups.values() for r in rs])
        conn.execute(f"DROP TRIGGER {trigger[0]}")
        kpi_rollups.add_contributions(conn, where, sign=-1)
    for cols, rows in groups.items():
        sets = ", ".join(f"{c} = ?" for c in (*cols, "rev"))
        conn.executemany(f"UPDATE events SET {sets} WHERE id = ?", rows)
        ap.events_written += len(rows)
    if trigger is not None:
        kpi_rollups.add_contributions(conn, where)
        conn.execute(trigger[1])
        conn.execute("DROP TABLE temp.pull_updated")
    return ids


def _existing(conn: sqlite3.Connection, sql: str, keys: list) -> dict:
    """``{key: value}`` for the keys that ``sql`` (with ``IN ({})``) finds, in chunks of 500."""
    out: dict = {}
    for k in range(0, len(keys), 500):
        chunk = keys[k:k + 500]
        out.update(conn.execute(sql.format(", ".join("?" * len(chunk))), chunk).fetchall())
    return out


def _reconcile_refused(ap: Applier, log_uids: list[str], changes: list[dict]) -> None:
    """Log rows we already had: if we had them as refused, the upstream accepted them after all."""
    seqs = {}
    for ch in changes:
        lg = _data(ch).get("log") if ch.get("kind") == "mutation" else None
        if lg:
            seqs[lg.get("uid")] = ch.get("server_seq")
    for k in range(0, len(log_uids), 500):
        chunk = log_uids[k:k + 500]
        found = ap.conn.execute(
            f"SELECT mutation_id, log_uid FROM outbox WHERE state = 'rejected' AND log_uid IN ({', '.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for mid, log_uid in found:
            seq = seqs.get(log_uid)
            ap.conn.execute(
                "UPDATE outbox SET state = 'applied', server_seq = ?, outcome = ? WHERE mutation_id = ?",
                (seq, orjson.dumps({"status": "applied", "server_seq": seq, "via": "pull"}).decode(), mid),
            )
            ap.conn.execute("DELETE FROM sync_refusals WHERE mutation_id = ?", (mid,))


def set_applying(conn: sqlite3.Connection, on: bool) -> None:
    conn.execute("UPDATE sync_state SET applying = ?", (1 if on else 0,))
