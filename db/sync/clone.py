"""A fresh replica from the upstream (``onemap --db PATH clone --upstream DSN``), and the in-place
re-copy a replica does when its cursor fell below the compacted feed (``snapshot_required``).

Clone, in order:

1. one PostgreSQL transaction, ``REPEATABLE READ READ ONLY``: the reference blob (a SQLite file
   with the district-managed reference data) and the event snapshot, paged by uid with
   ``snapshot_events`` — all pages see the same snapshot, whose head ``server_seq`` becomes the
   replica's cursor;
2. the blob is written to ``PATH.cloning`` and opened (migrations run), the snapshot is
   bulk-inserted (``executemany``) with the full-text and KPI triggers and the secondary indexes
   dropped, then indexes, full text (one ``rebuild``) and rollups (one pass) are rebuilt;
3. ``enable_sync`` with cursor = snapshot head; the file is moved to ``PATH``.

An existing replica is never overwritten without ``force``.
"""

from __future__ import annotations

import gzip
import logging
import os
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from db.sync.client_apply import Applier, set_applying
from db.sync.protocol import PROTOCOL_VERSION, SERVER_SCHEMA, SYNC_SCHEMA_VERSION

log = logging.getLogger("onemap.sync")

PAGE_ROWS = 2000
Progress = Callable[[str], None]


class CloneError(Exception):
    """The clone cannot be made (target exists, upstream refused, no reference data …)."""


def _noop(text: str) -> None:
    pass


def _loads(value: Any) -> Any:
    if isinstance(value, str | bytes | bytearray):
        return orjson.loads(value)
    return value


# -- the upstream's snapshot -------------------------------------------------------------------
def _pg_snapshot(dsn: str):
    """A read-only REPEATABLE READ connection: every query sees one snapshot."""
    import psycopg

    conn = psycopg.connect(dsn, connect_timeout=5)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


def fetch_reference(pg, client_id: str) -> bytes:
    """The reference blob (SQLite file bytes, gzip accepted) through the desk's functions."""
    row = pg.execute(f"SELECT {SERVER_SCHEMA}.snapshot_reference(%s, %s, %s)",
                     (client_id, PROTOCOL_VERSION, SYNC_SCHEMA_VERSION)).fetchone()  # fmt: skip
    if row is None or row[0] is None:
        raise CloneError("the upstream has no reference data (run: onemap upstream seed --dsn DSN --from-db PATH)")
    data = bytes(row[0])
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:16] != b"SQLite format 3\x00":
        data = zlib.decompress(data)
    return data


def snapshot_head(pg, client_id: str) -> dict:
    """The snapshot's head ``server_seq`` and counts (first query of the transaction: it fixes the snapshot)."""
    row = pg.execute(f"SELECT {SERVER_SCHEMA}.snapshot_head(%s, %s, %s)",
                     (client_id, PROTOCOL_VERSION, SYNC_SCHEMA_VERSION)).fetchone()  # fmt: skip
    ans = _loads(row[0]) if row else None
    if not ans or not ans.get("ok", True):
        raise CloneError(f"upstream refused the snapshot: {(ans or {}).get('message') or (ans or {}).get('reason')}")
    return ans


def iter_snapshot(pg, client_id: str, progress: Progress = _noop, total: int | None = None) -> Iterator[list[dict]]:
    """Pages of items ``{"event": image, "log": [rows], "whistles": [images]}`` in uid order.

    ``snapshot_events`` returns rows ``(kind, uid, event_uid, data)``: a page's events, then their
    log rows, then their whistles; a page without events ends the snapshot."""
    after = None
    done = 0
    while True:
        rows = pg.execute(
            f"SELECT kind, uid, event_uid, data::text FROM {SERVER_SCHEMA}.snapshot_events(%s, %s, %s, %s, %s)",
            (client_id, PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, after, PAGE_ROWS),
        ).fetchall()
        items: dict[str, dict] = {}
        for kind, _uid, event_uid, data in rows:
            if kind == "event":
                items[event_uid] = {"event": orjson.loads(data), "log": [], "whistles": []}
            elif kind == "log":
                items[event_uid]["log"].append(orjson.loads(data))
            elif kind == "whistle":
                items[event_uid]["whistles"].append(orjson.loads(data))
        if not items:
            return
        page = list(items.values())
        done += len(page)
        progress(f"快照 snapshot: {done:,}{f'/{total:,}' if total else ''} events")
        yield page
        after = page[-1]["event"]["uid"]


# -- writing the snapshot into SQLite ----------------------------------------------------------
def _secondary(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Indexes and the FTS/KPI triggers on the synced tables (dropped during the bulk load)."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ('events', 'event_log', 'whistles') "
        "AND sql IS NOT NULL AND (type = 'index' OR (type = 'trigger' AND (name LIKE 'events_fts_%' "
        "OR name LIKE 'kpi_%')))"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


class BulkLoader:
    """Inserts snapshot pages into a replica inside the caller's transaction (triggers dropped)."""

    def __init__(self, conn: sqlite3.Connection, rev: int) -> None:
        self.conn = conn
        self.ap = Applier(conn, rev)
        self.ids = {r[0]: r[1] for r in conn.execute("SELECT uid, id FROM events")}
        self.ev_cols = sorted(self.ap.event_cols)
        self.merges: list[tuple[str, str]] = []
        self.counts = {"events": 0, "log": 0, "whistles": 0}

    def add(self, items: list[dict]) -> None:
        new = [i for i in items if i["event"]["uid"] not in self.ids]
        old = [i for i in items if i["event"]["uid"] in self.ids]
        old_uids = {i["event"]["uid"] for i in old}
        if new:
            cols = [c for c in self.ev_cols if c in new[0]["event"]] + ["rev"]
            self.conn.executemany(
                f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [[i["event"].get(c) for c in cols[:-1]] + [self.ap.rev] for i in new],
            )
            uids = [i["event"]["uid"] for i in new]
            for k in range(0, len(uids), 500):
                chunk = uids[k:k + 500]
                self.ids.update(self.conn.execute(
                    f"SELECT uid, id FROM events WHERE uid IN ({', '.join('?' * len(chunk))})", chunk).fetchall())  # fmt: skip
        for i in old:
            self.ap.upsert_event(i["event"])
        for i in items:
            m = i["event"].get("merged_into_uid")
            if m:
                self.merges.append((i["event"]["uid"], m))
        logs = []
        for i in items:
            eid = self.ids[i["event"]["uid"]]
            for lg in i["log"]:
                payload = lg.get("payload")
                if payload is not None and not isinstance(payload, str):
                    payload = orjson.dumps(payload).decode()
                logs.append((lg["uid"], eid, lg.get("at"), lg.get("actor"), lg.get("action"), lg.get("from_status"),
                             lg.get("to_status"), lg.get("note"), payload))  # fmt: skip
        cur = self.conn.executemany(
            "INSERT OR IGNORE INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            logs,
        )
        self.counts["log"] += max(cur.rowcount, 0)
        for i in items:
            if i["whistles"] or i["event"]["uid"] in old_uids:
                self.ap.replace_whistles(self.ids[i["event"]["uid"]], i["whistles"])
                self.counts["whistles"] += len(i["whistles"])
        self.counts["events"] += len(items)

    def finish(self) -> None:
        if self.merges:
            self.conn.executemany(
                "UPDATE events SET merged_into = ? WHERE uid = ?",
                [(self.ids.get(into), uid) for uid, into in self.merges],
            )


def clone_replica(path: str | os.PathLike, dsn: str, *, force: bool = False,
                  progress: Progress | None = None) -> dict:  # fmt: skip
    """Make ``path`` a fresh sync client of ``dsn``; returns counts, head, client id and seconds."""
    from db.ids import new_ulid
    from db.kpi_rollups import rebuild
    from db.replica import open_replica
    from db.sync.client import enable_sync

    progress = progress or _noop
    t0 = time.perf_counter()
    path = Path(path)
    if path.exists() and path.stat().st_size > 0 and not force:
        raise CloneError(f"{path}: already exists; pass --force to replace it with a clone of the upstream")
    tmp = path.with_name(path.name + ".cloning")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    client_id = new_ulid()
    pg = _pg_snapshot(dsn)
    try:
        info = snapshot_head(pg, client_id)
        head = int(info.get("head") or 0)
        progress(f"参考数据 reference data ({(info.get('reference_bytes') or 0) / 1e6:.1f} MB) …")
        tmp.write_bytes(fetch_reference(pg, client_id))
        replica = open_replica(tmp)
        try:
            _scrub(replica)
            progress("事件快照 event snapshot …")
            counts = _load_snapshot(replica, prefetch(iter_snapshot(pg, client_id, progress, info.get("events"))), progress,
                                    rebuild)  # fmt: skip
            pg.rollback()
            enable_sync(replica, upstream=dsn, client_id=client_id, cursor=head,
                        scope_street=info.get("scope_street"), scope_dept=info.get("scope_dept"))
        except BaseException:
            replica.close()
            tmp.unlink(missing_ok=True)
            raise
        replica.close()
    finally:
        pg.close()
    for p in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    os.replace(tmp, path)
    secs = time.perf_counter() - t0
    progress(f"完成 done: {counts['events']:,} events, {counts['log']:,} log rows, cursor {head}, {secs:.1f} s")
    return {**counts, "head": head, "client_id": client_id, "seconds": secs}


def _scrub(replica) -> None:
    """A reference blob made from a replica may carry its sync tables: a clone starts clean."""
    with replica.write() as conn:
        conn.execute("DELETE FROM sync_refusals")
        conn.execute("DELETE FROM outbox")
        conn.execute("DELETE FROM sync_state")
        conn.execute("DELETE FROM meta WHERE key LIKE 'sync_excluded:%'")


def prefetch(pages: Iterator[list[dict]], depth: int = 2) -> Iterator[list[dict]]:
    """Read the next pages from the upstream (a thread) while this one is written to SQLite.

    Only the thread touches the PostgreSQL connection until the iterator is exhausted."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                q.put(page)
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    t = threading.Thread(target=run, name="clone-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # the consumer stopped early: drain so the thread can finish
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        t.join()


def _load_snapshot(replica, pages, progress: Progress, rebuild) -> dict:
    with replica.write("events", "event_log", "whistles") as conn:
        secondary = _secondary(conn)
        for kind, name, _sql in secondary:
            conn.execute(f"DROP {kind.upper()} IF EXISTS {name}")
        loader = BulkLoader(conn, replica.next_rev(conn))
        for items in pages:
            loader.add(items)
        loader.finish()
        progress("索引与全文检索 indexes and full text …")
        for _kind, _name, sql in secondary:
            conn.execute(sql)
        conn.execute("INSERT INTO events_fts(events_fts) VALUES ('rebuild')")
        conn.execute("DELETE FROM fts_pending")
        progress("统计汇总 KPI rollups …")
        rebuild(conn)
    return loader.counts


def refresh_snapshot(replica, dsn: str, *, client_id: str, progress: Progress | None = None) -> int:
    """Re-copy the event snapshot into an existing sync client (its cursor fell below the feed
    floor). Events with pending outbox rows keep their local state; their pending rows are
    pushed afterwards. One SQLite transaction; the cursor becomes the snapshot head."""
    progress = progress or _noop
    pg = _pg_snapshot(dsn)
    try:
        head = int(snapshot_head(pg, client_id).get("head") or 0)
        pages = list(iter_snapshot(pg, client_id, progress))
        pg.rollback()
    finally:
        pg.close()
    n = 0
    merges = []
    with replica.write("events", "event_log", "whistles", "sync") as conn:
        set_applying(conn, True)
        ap = Applier(conn, replica.next_rev(conn))
        for items in pages:
            for it in items:
                uid = it["event"]["uid"]
                if it["event"].get("merged_into_uid"):
                    merges.append((uid, it["event"]["merged_into_uid"]))
                if uid in ap.pending:
                    eid = ap.event_id(uid)
                    for lg in it["log"]:
                        ap.insert_log(eid, lg)
                    continue
                eid = ap.upsert_event(it["event"])
                for lg in it["log"]:
                    ap.insert_log(eid, lg)
                ap.replace_whistles(eid, it["whistles"])
                ap.fix_helpers(eid)
                n += 1
        for uid, into in merges:  # targets later in uid order than the merged event
            if uid not in ap.pending:
                conn.execute("UPDATE events SET merged_into = ? WHERE uid = ? AND merged_into IS NOT ?",
                             (ap.event_id(into), uid, ap.event_id(into)))  # fmt: skip
        conn.execute("UPDATE sync_state SET cursor = ? WHERE id = 1", (head,))
        set_applying(conn, False)
    log.info("sync: snapshot re-copied in place: %d events, cursor %d", n, head)
    return n
