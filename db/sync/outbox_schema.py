"""The replica's side of sync in SQLite (migration ``m010_sync``, contract in ``docs/sync.md``).

The outbox is filled by a trigger on ``event_log``: every local change to an event writes one
log row in the same transaction, so every writer (console, simulate, imports, drills, robot) is
covered without touching the write paths. The trigger only fires on a sync client (a row in
``sync_state``) and not while pulled changes are being applied (``sync_state.applying = 1``).
"""

from __future__ import annotations

import sqlite3

TABLES_SQL = """
CREATE TABLE sync_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    client_id TEXT NOT NULL,
    upstream TEXT,
    scope_street TEXT,
    cursor INTEGER NOT NULL DEFAULT 0,
    applying INTEGER NOT NULL DEFAULT 0 CHECK (applying IN (0, 1)),
    last_sync_at TEXT,
    last_error TEXT
);
CREATE TABLE outbox (
    mutation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    op TEXT NOT NULL,
    event_uid TEXT NOT NULL,
    log_uid TEXT NOT NULL UNIQUE,
    base_version INTEGER,
    args TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'rejected')),
    server_seq INTEGER,
    outcome TEXT
);
CREATE INDEX ix_outbox_pending ON outbox(mutation_id) WHERE state = 'pending';
CREATE INDEX ix_outbox_pending_event ON outbox(event_uid) WHERE state = 'pending';
CREATE TABLE sync_refusals (
    mutation_id INTEGER PRIMARY KEY REFERENCES outbox(mutation_id),
    event_uid TEXT NOT NULL,
    op TEXT NOT NULL,
    reason TEXT NOT NULL,
    server_state TEXT,
    refused_at TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TEXT
);
"""


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _object(alias: str, cols: list[str]) -> str:
    return "json_object(" + ", ".join(f"'{c}', {alias}.{c}" for c in cols) + ")"


def outbox_trigger_sql(conn: sqlite3.Connection) -> str:
    """``CREATE TRIGGER sync_outbox_log`` built from the current ``events``/``whistles`` columns.

    A later migration that adds a column to a synced table re-runs this (DROP + CREATE).
    """
    ev_cols = [c for c in _columns(conn, "events") if c not in ("id", "rev", "merged_into")]
    wh_cols = [c for c in _columns(conn, "whistles") if c not in ("id", "event_id", "rev", "escalated_from")]
    wd_cols = [c for c in _columns(conn, "whistle_departments") if c != "whistle_id"]
    event_obj = _object("e", ev_cols)[:-1] + ", 'merged_into_uid', (SELECT m.uid FROM events m WHERE m.id = e.merged_into))"
    dept_obj = _object("d", wd_cols)
    whistle_obj = (
        _object("w", wh_cols)[:-1]
        + ", 'event_uid', e.uid"
        + ", 'escalated_from_uid', (SELECT x.uid FROM whistles x WHERE x.id = w.escalated_from)"
        + f", 'departments', json((SELECT json_group_array({dept_obj}) FROM whistle_departments d"
        + " WHERE d.whistle_id = w.id)))"
    )
    log_obj = (
        "json_object('uid', new.uid, 'at', new.at, 'actor', new.actor, 'action', new.action, "
        "'from_status', new.from_status, 'to_status', new.to_status, 'note', new.note, "
        "'payload', json(new.payload))"
    )
    base = "CASE WHEN new.action = 'report' THEN NULL ELSE e.version - 1 END"
    args = (
        f"json_object('op', new.action, 'event_uid', e.uid, 'base_version', {base}, 'log', {log_obj}, "
        f"'event', {event_obj}, 'whistles', CASE WHEN new.action IN ('whistle', 'check_in') THEN "
        f"json((SELECT json_group_array({whistle_obj}) FROM whistles w WHERE w.event_id = e.id)) END)"
    )
    return f"""
CREATE TRIGGER sync_outbox_log AFTER INSERT ON event_log
WHEN EXISTS (SELECT 1 FROM sync_state WHERE applying = 0)
BEGIN
    INSERT INTO outbox (client_id, op, event_uid, log_uid, base_version, args, created_at)
    SELECT s.client_id, new.action, e.uid, new.uid, {base}, {args},
           strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
    FROM events e, sync_state s WHERE e.id = new.event_id;
END;
"""
