"""Constants and pure helpers shared by both sides of the sync protocol (``docs/sync.md``)."""

from __future__ import annotations

import hashlib
import sqlite3

import orjson

PROTOCOL_VERSION = 1
SYNC_SCHEMA_VERSION = 1
ACCEPTED_SCHEMA_VERSIONS = frozenset({SYNC_SCHEMA_VERSION, SYNC_SCHEMA_VERSION - 1})

CHANNEL = "onemap_changes"
DESK_ROLE = "onemap_desktop"
SERVER_SCHEMA = "onemap"

# The tables of the event domain that sync row by row; everything else comes with the clone.
SYNCED_TABLES = ("events", "event_log", "whistles", "whistle_departments")
# events columns that never travel (local to one replica).
LOCAL_EVENT_COLUMNS = frozenset({"id", "rev", "merged_into"})


def canonical_json(obj: object) -> bytes:
    """Sorted keys, no spaces: the bytes both sides hash."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def fingerprint(args: object) -> str:
    """md5 of the canonical JSON of a mutation's ``args`` (the ledger's copy check)."""
    return hashlib.md5(canonical_json(args)).hexdigest()


def content_hash(conn: sqlite3.Connection) -> dict[str, str]:
    """The replica's content hash, comparable with the server's ``content_hash()``.

    events: md5 of ``uid|status|version`` lines ordered by uid; log: md5 of log uids ordered by
    uid, without the rows of mutations the server refused. Lines are joined with ``\\n``.
    Events the replica keeps but the upstream does not have (a refused report, an upstream
    delete: ``meta`` key ``sync_excluded:<uid>``) and their log rows are left out.
    """
    excluded = _excluded(conn)
    ev = hashlib.md5()
    first = True
    for uid, status, version in conn.execute("SELECT uid, status, version FROM events ORDER BY uid"):
        if uid in excluded:
            continue
        ev.update((b"" if first else b"\n") + f"{uid}|{status}|{version}".encode())
        first = False
    refused = "NOT IN (SELECT log_uid FROM outbox WHERE state = 'rejected')" if _has_outbox(conn) else "IS NOT NULL"
    lg = hashlib.md5()
    first = True
    rows = conn.execute(
        f"SELECT l.uid, e.uid FROM event_log l JOIN events e ON e.id = l.event_id WHERE l.uid {refused} ORDER BY l.uid"
    )
    for uid, event_uid in rows:
        if event_uid in excluded:
            continue
        lg.update((b"" if first else b"\n") + uid.encode())
        first = False
    return {"events": ev.hexdigest(), "log": lg.hexdigest()}


def _has_outbox(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone() is not None


def _excluded(conn: sqlite3.Connection) -> set[str]:
    prefix = "sync_excluded:"
    rows = conn.execute("SELECT key FROM meta WHERE key >= ? AND key < ?", (prefix, prefix + "\uffff"))
    return {r[0][len(prefix):] for r in rows}
