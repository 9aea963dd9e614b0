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
    def upsert_event(self, image: dict) -> int:
        """Insert or update the event from its image; only changed columns are written."""
        uid = image["uid"]
        values = {c: image[c] for c in image if c in self.event_cols}
        if "merged_into_uid" in image:
            values["merged_into"] = self.event_id(image.get("merged_into_uid"))
        cur = self.conn.execute("SELECT * FROM events WHERE uid = ?", (uid,)).fetchone()
        if cur is None:
            ext = values.get("external_id")
            if ext is not None:
                other = self.conn.execute(
                    "SELECT uid FROM events WHERE source = ? AND external_id = ?", (values.get("source"), ext)
                ).fetchone()
                if other is not None and other[0] != uid:
                    raise KeyConflict(f"{values.get('source')}:{ext} is local event {other[0]}, upstream {uid}")
            values["rev"] = self.rev
            cols = list(values)
            c = self.conn.execute(
                f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [values[k] for k in cols],
            )
            self.events_written += 1
            return int(c.lastrowid)
        changed = {k: v for k, v in values.items() if cur[k] != v}
        if changed:
            changed["rev"] = self.rev
            sets = ", ".join(f"{k} = ?" for k in changed)
            self.conn.execute(f"UPDATE events SET {sets} WHERE id = ?", [*changed.values(), cur["id"]])
            self.events_written += 1
        return int(cur["id"])

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
    def apply_mutation(self, data: dict, server_seq: int | None = None) -> None:
        """One ``kind='mutation'`` change: ``{"event": image, "log": row, "whistles": [...] | None}``."""
        image = data.get("event") or {}
        uid = image.get("uid") or (data.get("log") or {}).get("event_uid")
        if uid in self.pending:
            # our own unconfirmed changes win locally; the server row comes with their echo later
            eid = self.event_id(uid)
            if eid is not None and data.get("log"):
                self._log_and_reconcile(eid, data["log"], server_seq)
            return
        eid = self.upsert_event(image)
        log = data.get("log")
        if log:
            self._log_and_reconcile(eid, log, server_seq)
        if data.get("whistles") is not None:
            self.replace_whistles(eid, data["whistles"])
        if log and log.get("action") in ("defer", "evaluate"):
            self.fix_helpers(eid)
        self._unexclude(uid)

    def _log_and_reconcile(self, eid: int, log: dict, server_seq: int | None) -> None:
        if self.insert_log(eid, log):
            return
        # the row is ours: if we had it as refused, the upstream accepted it after all (e.g. a
        # restored replica re-sent it under a new client id and the answer came from elsewhere)
        r = self.conn.execute(
            "SELECT mutation_id FROM outbox WHERE log_uid = ? AND state = 'rejected'", (log["uid"],)
        ).fetchone()
        if r is not None:
            self.conn.execute(
                "UPDATE outbox SET state = 'applied', server_seq = ?, outcome = ? WHERE mutation_id = ?",
                (server_seq, orjson.dumps({"status": "applied", "server_seq": server_seq, "via": "pull"}).decode(),
                 r[0]),
            )  # fmt: skip
            self.conn.execute("DELETE FROM sync_refusals WHERE mutation_id = ?", (r[0],))

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

    def _unexclude(self, uid: str | None) -> None:
        if uid:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (EXCLUDED_PREFIX + uid,))

    def apply_tombstone(self, uid: str, server_seq: int | None) -> None:
        """The upstream deleted the event: drop its whistles and exclude the row (see ``exclude_event``)."""
        eid = self.event_id(uid)
        if eid is None or uid in self.pending:
            return
        self.replace_whistles(eid, [])
        self.exclude_event(uid, f"deleted upstream (server_seq {server_seq})")

    def apply_change(self, change: dict) -> None:
        kind = change.get("kind")
        data = change.get("data") or {}
        if isinstance(data, str):
            data = orjson.loads(data)
        if kind == "mutation":
            self.apply_mutation(data, change.get("server_seq"))
        elif kind == "tombstone":
            self.apply_tombstone(data.get("uid") or change.get("uid"), change.get("server_seq"))
        # other kinds (future) are skipped: the cursor still moves past them


def set_applying(conn: sqlite3.Connection, on: bool) -> None:
    conn.execute("UPDATE sync_state SET applying = ?", (1 if on else 0,))
