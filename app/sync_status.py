"""What the console shows about sync (issue 9): a read model over the replica's sync tables. Qt-free.

``read_status(conn, report=…)`` reads ``sync_state``, ``outbox`` and ``sync_refusals`` (migration
``m010_sync``, contract ``docs/sync.md``) in one read transaction: whether the replica is a sync
client, online/offline (from the sync worker's last round, else from ``sync_state.last_error``),
the pending count and the age of the oldest pending change, the last sync time (Asia/Shanghai),
the cursor, the refusals nobody has acknowledged yet, and the uids of events with unconfirmed
local changes (the queue marks them). Acknowledging a refusal is a write: ``db.sync.acknowledge``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from dataclasses import dataclass, field

from app import timeutil
from app.labels import label
from app.lifecycle import action_label

ONLINE, OFFLINE, UNKNOWN = "online", "offline", "unknown"
_DSN_PASSWORD = (
    re.compile(r"(://[^:/@\s]+:)([^@\s]*)(@)"),  # postgresql://user:secret@host
    re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE),  # key=value DSN
)


@dataclass(frozen=True)
class Refusal:
    """One change the upstream refused (final) and the replica rolled back."""

    mutation_id: int
    event_uid: str
    event_id: int | None  # local id, None when the event is not in the replica (a refused report)
    title: str  # citizen text: escape wherever it is rendered as rich text
    op: str
    op_label: str
    reason: str
    refused_at: str
    server_status: str | None  # the status the replica rolled back to (None: not on the server)
    server_status_label: str
    server_version: int | None


@dataclass(frozen=True)
class SyncStatus:
    is_client: bool
    client_id: str | None = None
    upstream: str | None = None  # shown with the password masked
    connection: str = UNKNOWN  # ONLINE | OFFLINE | UNKNOWN (no round yet, no recorded error)
    pending: int = 0
    oldest_pending_at: str | None = None
    oldest_pending_age_s: float | None = None
    last_sync_at: str | None = None  # ISO, Asia/Shanghai
    cursor: int = 0
    last_error: str | None = None
    refusals: tuple[Refusal, ...] = ()
    unsynced_uids: frozenset[str] = field(default_factory=frozenset)

    @property
    def online(self) -> bool:
        return self.connection == ONLINE

    @property
    def last_sync_hms(self) -> str:
        """``HH:MM:SS`` of the last sync in Asia/Shanghai ('' if never)."""
        t = _parse(self.last_sync_at)
        return f"{t:%H:%M:%S}" if t else ""


NOT_A_CLIENT = SyncStatus(is_client=False)


_parse = timeutil.parse_or_none


def mask_dsn(dsn: str | None) -> str | None:
    """A DSN for display: any password replaced by ``***``."""
    if not dsn:
        return dsn
    for pattern in _DSN_PASSWORD:
        dsn = pattern.sub(lambda m: m.group(1) + "***" + (m.group(3) if m.re.groups >= 3 else ""), dsn)
    return dsn


def _has_tables(conn: sqlite3.Connection) -> bool:
    n = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('sync_state', 'outbox', 'sync_refusals')"
    ).fetchone()[0]
    return n == 3


def sync_config(conn: sqlite3.Connection) -> tuple[bool, str | None]:
    """(is a sync client, remembered upstream DSN or None)."""
    if not _has_tables(conn):
        return False, None
    row = conn.execute("SELECT upstream FROM sync_state WHERE id = 1").fetchone()
    return (row is not None, row[0] if row else None)


def pending_event_uids(conn: sqlite3.Connection, among: list[str] | None = None) -> frozenset[str]:
    """Uids of events with pending (unconfirmed) outbox rows; only those in ``among`` if given."""
    if not _has_tables(conn):
        return frozenset()
    if among is None:
        rows = conn.execute("SELECT DISTINCT event_uid FROM outbox WHERE state = 'pending'")
        return frozenset(r[0] for r in rows)
    found: set[str] = set()
    for i in range(0, len(among), 500):
        chunk = among[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT DISTINCT event_uid FROM outbox WHERE state = 'pending' AND event_uid IN ({marks})", chunk
        )
        found.update(r[0] for r in rows)
    return frozenset(found)


def _server_image(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("event"), dict):
        return obj["event"]
    return obj if isinstance(obj, dict) else None


def unacknowledged_refusals(conn: sqlite3.Connection, lang: str = "zh") -> tuple[Refusal, ...]:
    """Refusals nobody has acknowledged yet, newest first."""
    if not _has_tables(conn):
        return ()
    rows = conn.execute(
        """SELECT r.mutation_id, r.event_uid, r.op, r.reason, r.server_state, r.refused_at,
                  e.id AS event_id, coalesce(e.title, json_extract(o.args, '$.event.title')) AS title
           FROM sync_refusals r
           LEFT JOIN events e ON e.uid = r.event_uid
           LEFT JOIN outbox o ON o.mutation_id = r.mutation_id
           WHERE r.acknowledged_at IS NULL
           ORDER BY r.refused_at DESC, r.mutation_id DESC"""
    ).fetchall()
    out = []
    for r in rows:
        image = _server_image(r["server_state"])
        status = image.get("status") if image else None
        version = image.get("version") if image else None
        if status:
            status_label = label("status", status, lang)
        else:
            status_label = "（服务器上无此事件）" if lang != "en" else "(not on the server)"
        out.append(Refusal(
            mutation_id=r["mutation_id"], event_uid=r["event_uid"], event_id=r["event_id"],
            title=r["title"] or "", op=r["op"], op_label=action_label(r["op"], lang), reason=r["reason"],
            refused_at=r["refused_at"], server_status=status, server_status_label=status_label,
            server_version=version if isinstance(version, int) else None,
        ))  # fmt: skip
    return tuple(out)


def read_status(conn: sqlite3.Connection, *, report: object | None = None, lang: str = "zh",
                now: dt.datetime | None = None, with_uids: bool = True,
                uids_among: list[str] | None = None) -> SyncStatus:
    """The sync status of the replica behind ``conn``, in one read transaction.

    ``report``: the worker's last ``SyncReport`` (its ``online`` decides online/offline); without
    it the replica's own record decides (``last_error`` set → offline, else unknown).
    ``uids_among``: look for unconfirmed changes only among these event uids (e.g. the queue's rows:
    bounded cost whatever the backlog; all of them take ~0.2 s at 50,000 pending rows)."""
    if not _has_tables(conn):
        return NOT_A_CLIENT
    own_tx = not conn.in_transaction
    if own_tx:
        conn.execute("BEGIN")
    try:
        st = conn.execute(
            "SELECT client_id, upstream, cursor, last_sync_at, last_error FROM sync_state WHERE id = 1"
        ).fetchone()
        if st is None:
            return NOT_A_CLIENT
        pending = conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
        oldest = conn.execute(
            "SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY mutation_id LIMIT 1"
        ).fetchone()
        refusals = unacknowledged_refusals(conn, lang)
        uids = pending_event_uids(conn, uids_among) if with_uids and pending else frozenset()
    finally:
        if own_tx:
            conn.execute("COMMIT")
    if report is not None:
        connection = ONLINE if getattr(report, "online", False) else OFFLINE
        error = getattr(report, "error", None) or (None if connection == ONLINE else st["last_error"])
    else:
        connection = OFFLINE if st["last_error"] else UNKNOWN
        error = st["last_error"]
    oldest_at = oldest[0] if oldest else None
    age = None
    t = _parse(oldest_at)
    if t is not None:
        age = max(0.0, ((now or dt.datetime.now(timeutil.TZ)) - t).total_seconds())
    last = _parse(st["last_sync_at"])
    return SyncStatus(
        is_client=True, client_id=st["client_id"], upstream=mask_dsn(st["upstream"]), connection=connection,
        pending=pending, oldest_pending_at=oldest_at, oldest_pending_age_s=age,
        last_sync_at=timeutil.to_iso(last) if last else None, cursor=st["cursor"], last_error=error,
        refusals=refusals, unsynced_uids=uids,
    )  # fmt: skip


def age_text(seconds: float | None, lang: str = "zh") -> str:
    """``45 秒`` / ``12 分`` / ``3 小时`` (``45 s``, ``12 min``, ``3 h``)."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s} s" if lang == "en" else f"{s} 秒"
    if s < 3600:
        return f"{s // 60} min" if lang == "en" else f"{s // 60} 分"
    if s < 86400:
        return f"{s // 3600} h" if lang == "en" else f"{s // 3600} 小时"
    return f"{s // 86400} d" if lang == "en" else f"{s // 86400} 天"


def acknowledge(replica, mutation_ids: list[int] | None, actor: str) -> int:
    """The operator has read these refusals (None = all unacknowledged): ``db.sync.acknowledge`` writes it."""
    from db.sync.acknowledge import acknowledge_refusals

    return acknowledge_refusals(replica, mutation_ids, actor=actor)
