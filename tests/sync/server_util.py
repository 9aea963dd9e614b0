"""Helpers for the server tests: mutations shaped like the outbox trigger's, and calls to the functions."""

from __future__ import annotations

import itertools
import os
import re

import psycopg
from psycopg.types.json import Jsonb

from db.ids import new_ulid
from db.sync.protocol import PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, fingerprint

_roles = itertools.count(1)


def unique_role(prefix: str = "desk") -> str:
    """Roles are cluster-wide and the test databases share one cluster: never reuse a name."""
    return f"{prefix}_{os.getpid()}_{next(_roles)}"


def as_role(dsn: str, role: str, password: str) -> str:
    dsn = re.sub(r"\buser=\S+", f"user={role}", dsn)
    return re.sub(r"\bpassword=\S+", f"password={password}", dsn)


def event_image(uid: str, *, status: str = "reported", version: int = 1, street: str | None = "320613001",
                source: str = "grid_app", external_id: str | None = None, **extra) -> dict:  # fmt: skip
    img = {"uid": uid, "status": status, "version": version, "street_code": street, "source": source,
           "external_id": external_id, "title": "井盖缺失", "category": "NOPE", "drill_id": None,
           "merged_into_uid": None, "updated_at": "2026-11-25T09:00:00+08:00"}  # fmt: skip
    img.update(extra)
    return img


def report_args(uid: str | None = None, **kw) -> dict:
    uid = uid or new_ulid()
    return {"op": "report", "event_uid": uid, "base_version": None,
            "log": {"uid": new_ulid(), "at": "2026-11-25T09:00:00+08:00", "actor": "op1", "action": "report",
                    "from_status": None, "to_status": "reported", "note": None, "payload": None},
            "event": event_image(uid, **kw), "whistles": None}  # fmt: skip


def action_args(uid: str, action: str, from_status: str, to_status: str, base_version: int, **kw) -> dict:
    return {"op": action, "event_uid": uid, "base_version": base_version,
            "log": {"uid": new_ulid(), "at": "2026-11-25T09:05:00+08:00", "actor": "op1", "action": action,
                    "from_status": from_status, "to_status": to_status, "note": kw.pop("note", None),
                    "payload": None},
            "event": event_image(uid, status=to_status, version=base_version + 1, **kw), "whistles": None}  # fmt: skip


def push(conn: psycopg.Connection, client: str, mutation_id: int, args: dict, *, schema: int = SYNC_SCHEMA_VERSION,
         protocol: int = PROTOCOL_VERSION, fp: str | None = None) -> dict:  # fmt: skip
    row = conn.execute(
        "SELECT onemap.push_mutation(%s, %s, %s, %s, %s, %s)",
        (client, mutation_id, protocol, schema, fp or fingerprint(args), Jsonb(args)),
    ).fetchone()
    conn.commit()
    return row[0]


def pull(conn: psycopg.Connection, client: str, cursor: int, max_rows: int = 1000, *,
         schema: int = SYNC_SCHEMA_VERSION) -> dict:  # fmt: skip
    row = conn.execute(
        "SELECT onemap.pull_changes(%s, %s, %s, %s, %s)", (client, PROTOCOL_VERSION, schema, cursor, max_rows)
    ).fetchone()
    conn.commit()
    return row[0]


def hello(conn: psycopg.Connection, client: str, last: int = 0, *, schema: int = SYNC_SCHEMA_VERSION) -> dict:
    row = conn.execute("SELECT onemap.hello(%s, %s, %s, %s)", (client, PROTOCOL_VERSION, schema, last)).fetchone()
    conn.commit()
    return row[0]


def one(conn: psycopg.Connection, query: str, params: tuple = ()):
    return conn.execute(query, params).fetchone()[0]
