"""The PostgreSQL upstream, administered from Python (``onemap upstream …``; contract ``docs/sync.md``).

- :func:`init_upstream` creates/refreshes schema ``onemap`` (idempotent), see ``server_sql.py``;
- :func:`seed_upstream` loads a replica's events, log and whistles as the initial state (COPY)
  and stores the reference data (an emptied, VACUUMed, zlib-compressed copy of the replica) for
  clones;
- :func:`add_desk` creates a login role in the ``onemap_desktop`` group with its street or department scope;
- :func:`server_content_hash`, :func:`compact`, :func:`delete_event`, :func:`upstream_status`.

Every failure a user can cause (bad DSN, server down, schema missing, already seeded) raises
:class:`UpstreamError` with a message that says what to do.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from db.sync import server_sql
from db.sync.protocol import DESK_ROLE, SERVER_SCHEMA, SYNCED_TABLES

REFERENCE_NAME = "sqlite"
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class UpstreamError(RuntimeError):
    """The upstream cannot do what was asked (the message is for the operator)."""


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg connection to ``dsn``; raises :class:`UpstreamError` for a bad DSN or an unreachable server."""
    if not dsn or not isinstance(dsn, str):
        raise UpstreamError("缺少上游地址 / no upstream DSN given (e.g. 'host=… dbname=… user=…' or postgresql://…)")
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=_timeout(dsn))
    except psycopg.ProgrammingError as exc:
        raise UpstreamError(f"上游地址无效 / invalid upstream DSN: {_first_line(exc)}") from exc
    except psycopg.OperationalError as exc:
        raise UpstreamError(f"无法连接上游 / cannot reach the upstream: {_first_line(exc)}") from exc


def _timeout(dsn: str) -> int:
    return 5 if "connect_timeout" not in dsn else int(re.search(r"connect_timeout=(\d+)", dsn).group(1))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _require_initialised(conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT to_regclass(%s)", (f"{SERVER_SCHEMA}.meta",)).fetchone()
    if row[0] is None:
        raise UpstreamError("上游尚未初始化 / the upstream is not initialised: run 'onemap upstream init --dsn …' first")


# -- init ---------------------------------------------------------------------------------------
def init_upstream(dsn: str, *, unsafe: frozenset[str] = frozenset()) -> None:
    """Create or refresh schema ``onemap``: tables, generated rules, functions, grants (idempotent).

    ``unsafe`` ⊆ {"no_ledger", "bigserial"} builds the broken variants used as negative
    controls by the fault campaign (tests only; see ``server_sql``)."""
    unsafe = frozenset(unsafe)
    script = server_sql.init_sql(unsafe)
    with connect(dsn) as conn:
        try:
            with conn.transaction():
                # one init at a time per database (two desks' admins, or a test and a bench)
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('onemap upstream init'))")
                conn.execute(script)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise UpstreamError(f"权限不足 / not allowed to create the schema: {_first_line(exc)}") from exc


# -- seed ---------------------------------------------------------------------------------------
def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _json_object(alias: str, cols: list[str]) -> str:
    return ", ".join(f"'{c}', {alias}.{c}" for c in cols)


def event_image_sql(conn: sqlite3.Connection) -> str:
    """SELECT uid, status, version, street_code, source, external_id, drill_id, image — the image in the
    outbox trigger's shape (every column except id/rev/merged_into, plus merged_into_uid)."""
    cols = [c for c in _columns(conn, "events") if c not in ("id", "rev", "merged_into")]
    return (
        "SELECT e.uid, e.status, e.version, e.street_code, e.source, e.external_id, e.drill_id, "
        f"json_object({_json_object('e', cols)}, "
        "'merged_into_uid', (SELECT m.uid FROM events m WHERE m.id = e.merged_into)) FROM events e"
    )


def log_image_sql() -> str:
    """SELECT uid, event_uid, action, from_status, to_status, at, actor, image (the trigger's log shape
    plus event_uid and server_seq 0)."""
    return (
        "SELECT l.uid, e.uid, l.action, l.from_status, l.to_status, l.at, l.actor, "
        "json_object('uid', l.uid, 'at', l.at, 'actor', l.actor, 'action', l.action, "
        "'from_status', l.from_status, 'to_status', l.to_status, 'note', l.note, "
        "'payload', json(l.payload), 'event_uid', e.uid, 'server_seq', 0) "
        "FROM event_log l JOIN events e ON e.id = l.event_id"
    )


def whistle_image_sql(conn: sqlite3.Connection) -> str:
    """SELECT uid, event_uid, image (the trigger's whistle shape with its departments)."""
    wh_cols = [c for c in _columns(conn, "whistles") if c not in ("id", "event_id", "rev", "escalated_from")]
    wd_cols = [c for c in _columns(conn, "whistle_departments") if c != "whistle_id"]
    return (
        f"SELECT w.uid, e.uid, json_object({_json_object('w', wh_cols)}, 'event_uid', e.uid, "
        "'escalated_from_uid', (SELECT x.uid FROM whistles x WHERE x.id = w.escalated_from), "
        f"'departments', json((SELECT json_group_array(json_object({_json_object('d', wd_cols)})) "
        "FROM whistle_departments d WHERE d.whistle_id = w.id))) "
        "FROM whistles w JOIN events e ON e.id = w.event_id"
    )


def _open_replica_ro(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise UpstreamError(f"找不到副本 / no replica at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        missing = [t for t in SYNCED_TABLES if not _columns(conn, t)]
    except sqlite3.DatabaseError as exc:
        raise UpstreamError(f"不是 OneMap 副本 / {path} is not a OneMap replica: {exc}") from exc
    if missing:
        conn.close()
        raise UpstreamError(f"不是 OneMap 副本 / {path} has no {', '.join(missing)} table")
    return conn


def seed_upstream(dsn: str, replica_path: str | os.PathLike) -> dict:
    """Load the replica's events, log and whistles as the upstream's initial state, and its reference
    data as the clone blob. The upstream must be initialised and hold no events yet.

    Seeded rows carry ``server_seq`` 0 and take no feed entry: the feed (and a clone's cursor)
    starts after the seed, at the current head. Returns counts."""
    path = Path(replica_path)
    src = _open_replica_ro(path)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onemap-reference")
    try:
        with connect(dsn) as conn:
            _require_initialised(conn)
            _require_empty(conn)
            conn.commit()
            future_blob = pool.submit(reference_blob, path)  # SQLite + zlib release the GIL: overlaps the COPY
            with conn.transaction():
                conn.execute(f"LOCK TABLE {SERVER_SCHEMA}.events IN EXCLUSIVE MODE")
                _require_empty(conn)
                counts = {
                    "events": _copy(conn, src, event_image_sql(src),
                                    "events (uid, status, version, street_code, source, external_id, drill_id, data)"),
                    "event_log": _copy(conn, src, log_image_sql(),
                                       "event_log (uid, event_uid, action, from_status, to_status, at, actor, data)"),
                    "whistles": _copy(conn, src, whistle_image_sql(src), "whistles (uid, event_uid, data)"),
                }
                blob = future_blob.result()
                conn.execute(
                    f"INSERT INTO {SERVER_SCHEMA}.reference (name, data, created_at) VALUES (%s, %s, now()) "
                    "ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, created_at = now()",
                    (REFERENCE_NAME, blob),
                )
                conn.execute(
                    f"INSERT INTO {SERVER_SCHEMA}.meta (key, value) VALUES ('seeded_from', %s), ('seeded_at', now()::text) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (str(path.name),),
                )
                head = conn.execute(f"SELECT value FROM {SERVER_SCHEMA}.seq_counter WHERE id = 1").fetchone()[0]
            conn.execute(f"ANALYZE {SERVER_SCHEMA}.events")
            conn.execute(f"ANALYZE {SERVER_SCHEMA}.event_log")
            conn.commit()
    finally:
        pool.shutdown(wait=True)
        src.close()
    counts["whistle_departments"] = _count(path, "whistle_departments")
    counts["reference_bytes"] = len(blob)
    counts["head"] = head
    return counts


def _require_empty(conn: psycopg.Connection) -> None:
    n = conn.execute(f"SELECT count(*) FROM {SERVER_SCHEMA}.events").fetchone()[0]
    if n:
        raise UpstreamError(f"上游已有 {n} 个事件 / the upstream already holds {n} events; "
                            "seed needs a freshly initialised upstream")


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as c:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _copy_field(expr: str) -> str:
    """SQLite expression: ``expr`` as one field of PostgreSQL's COPY text format (NULL → \\N)."""
    return (f"coalesce(replace(replace(replace(replace(CAST(({expr}) AS TEXT), '\\', '\\\\'), "
            "char(9), '\\t'), char(10), '\\n'), char(13), '\\r'), '\\N')")  # fmt: skip


def _copy(conn: psycopg.Connection, src: sqlite3.Connection, query: str, target: str, batch: int = 5000) -> int:
    """COPY the rows of SQLite ``query`` into ``target``; each line is composed in SQLite (fast)."""
    ncols = len(src.execute(f"SELECT * FROM ({query}) LIMIT 0").description)
    line = " || char(9) || ".join(_copy_field(f"q.c{i}") for i in range(ncols))
    cols = ", ".join(f"c{i}" for i in range(ncols))
    cur = src.execute(f"WITH q({cols}) AS ({query}) SELECT {line} FROM q")
    n = 0
    with conn.cursor() as pg, pg.copy(f"COPY {SERVER_SCHEMA}.{target} FROM STDIN", writer=QueuedLibpqWriter(pg)) as cp:
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            cp.write("".join(r[0] + "\n" for r in rows))
            n += len(rows)
    return n


def reference_blob(replica_path: str | os.PathLike) -> bytes:
    """The clone's reference data: a copy of the replica with the synced tables, the outbox/sync
    tables, the FTS index and the KPI rollups emptied (rows of local tables that point at events
    unlinked or dropped), VACUUMed, zlib-compressed."""
    from db import kpi_rollups

    with tempfile.TemporaryDirectory(prefix="onemap-ref-") as tmp:
        target = Path(tmp) / "reference.db"
        src = sqlite3.connect(f"file:{replica_path}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
        try:
            _empty_event_domain(dst, kpi_rollups.TABLES)
            dst.execute("VACUUM")
        finally:
            dst.close()
        return zlib.compress(target.read_bytes(), 1)


def _empty_event_domain(conn: sqlite3.Connection, kpi_tables: tuple[str, ...]) -> None:
    conn.execute("PRAGMA foreign_keys = OFF")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.execute("BEGIN")
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    emptied = [t for t in (*SYNCED_TABLES, "sync_refusals", "outbox", "sync_state", *kpi_tables) if t in tables]
    for table in sorted(tables - set(emptied)):
        if table.startswith(("sqlite_", "events_fts")):
            continue
        for fk in conn.execute(f"PRAGMA foreign_key_list({table})").fetchall():
            if fk[2] not in SYNCED_TABLES:
                continue
            col = fk[3]
            notnull = {r[1]: r[3] for r in conn.execute(f"PRAGMA table_info({table})")}[col]
            if notnull:
                conn.execute(f'DELETE FROM "{table}"')
            else:
                conn.execute(f'UPDATE "{table}" SET "{col}" = NULL WHERE "{col}" IS NOT NULL')
    for table in emptied:
        conn.execute(f'DELETE FROM "{table}"')
    if "events_fts" in tables:
        conn.execute("INSERT INTO events_fts(events_fts) VALUES ('delete-all')")
    if "fts_pending" in tables:
        conn.execute("DELETE FROM fts_pending")
    if "sqlite_sequence" in tables:
        conn.execute("DELETE FROM sqlite_sequence WHERE name IN ('outbox')")
    for _, ddl in triggers:
        conn.execute(ddl)
    conn.execute("COMMIT")


# -- desks ----------------------------------------------------------------------------------------
def _require_known_scope(conn, street: str | None, department: str | None) -> None:
    """A desk's street/department must exist in the seeded reference data (a typo would make a
    desk that may do nothing). Not checked before ``seed`` (no reference data yet)."""
    if not (street or department):
        return
    row = conn.execute(f"SELECT data FROM {SERVER_SCHEMA}.reference WHERE name = %s", (REFERENCE_NAME,)).fetchone()
    if row is None:
        return
    import gzip

    data = bytes(row[0])
    data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else (
        data if data[:16] == b"SQLite format 3\x00" else zlib.decompress(data))  # fmt: skip
    table, code = ("streets", street) if street else ("departments", department)
    with tempfile.TemporaryDirectory(prefix="onemap-ref-") as tmp:
        path = Path(tmp) / "reference.db"
        path.write_bytes(data)
        ref = sqlite3.connect(path)
        try:
            known = [r[0] for r in ref.execute(f"SELECT code FROM {table} ORDER BY code")]
        finally:
            ref.close()
    if code not in known:
        what = ("街道", "street") if street else ("部门", "department")
        raise UpstreamError(f"没有该{what[0]} / no {what[1]} {code!r} in the upstream's reference data; known: "
                            f"{', '.join(known[:20])}{' …' if len(known) > 20 else ''}")  # fmt: skip


def add_desk(dsn: str, role: str, password: str, street: str | None = None, department: str | None = None) -> None:
    """Create (or update) login role ``role`` in the ``onemap_desktop`` group with scope ``street``
    or ``department`` (neither = district; not both). The role may only call the desk functions;
    the server refuses its pushes outside the scope (``docs/sync.md``, access)."""
    if not role or not _ROLE_RE.match(role):
        raise UpstreamError(f"角色名无效 / invalid role name {role!r}: use lower-case letters, digits and _")
    if not password:
        raise UpstreamError("缺少密码 / a desk role needs a password")
    street = street or None
    department = department or None
    if street and department:
        raise UpstreamError("街道与部门范围只能选一个 / a desk serves a street or a department, not both")
    with connect(dsn) as conn:
        _require_initialised(conn)
        _require_known_scope(conn, street, department)
        with conn.transaction():
            exists = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists and exists[0]:
                raise UpstreamError(f"{role} 是超级用户 / {role} is a superuser; a desk needs its own role")
            ident = sql.Identifier(role)
            if exists is None:
                try:
                    with conn.transaction():
                        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
                except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                    pass
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(DESK_ROLE), ident))
            conn.execute(
                f"INSERT INTO {SERVER_SCHEMA}.desk_roles (role_name, scope_street, scope_dept) VALUES (%s, %s, %s) "
                "ON CONFLICT (role_name) DO UPDATE SET scope_street = EXCLUDED.scope_street, "
                "scope_dept = EXCLUDED.scope_dept",
                (role, street, department),
            )


# -- inspection and maintenance --------------------------------------------------------------------
def server_content_hash(dsn: str) -> dict[str, str]:
    """The server's ``content_hash()`` (comparable with ``protocol.content_hash`` of a replica)."""
    with connect(dsn) as conn:
        _require_initialised(conn)
        return dict(conn.execute(f"SELECT {SERVER_SCHEMA}.content_hash()").fetchone()[0])


def compact(dsn: str, *, days: int = 30) -> dict:
    """Delete feed rows every replica seen in the last ``days`` has pulled; returns the new floor."""
    with connect(dsn) as conn:
        _require_initialised(conn)
        out = dict(conn.execute(f"SELECT {SERVER_SCHEMA}.compact(%s)", (days,)).fetchone()[0])
        conn.commit()
        return out


def delete_event(dsn: str, uid: str) -> dict:
    """Admin: delete an event (with its log and whistles) and append a tombstone to the feed."""
    with connect(dsn) as conn:
        _require_initialised(conn)
        out = dict(conn.execute(f"SELECT {SERVER_SCHEMA}.delete_event(%s)", (uid,)).fetchone()[0])
        conn.commit()
        return out


def upstream_status(dsn: str) -> dict:
    """Head seq, feed floor, counts, clients, ledger size and content hash."""
    s = SERVER_SCHEMA
    with connect(dsn) as conn:
        _require_initialised(conn)
        one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
        meta = dict(conn.execute(f"SELECT key, value FROM {s}.meta").fetchall())
        clients = [
            dict(zip(("client_id", "role_name", "scope_street", "last_mutation_id", "cursor", "seen_at"), r, strict=True))
            for r in conn.execute(
                f"SELECT client_id, role_name, scope_street, last_mutation_id, cursor, seen_at::text "
                f"FROM {s}.clients ORDER BY seen_at DESC"
            )
        ]
        return {
            "head": one(f"SELECT {s}.feed_head()"),
            "feed_floor": int(meta.get("feed_floor", 0)),
            "changes": one(f"SELECT count(*) FROM {s}.changes"),
            "events": one(f"SELECT count(*) FROM {s}.events"),
            "event_log": one(f"SELECT count(*) FROM {s}.event_log"),
            "ledger": one(f"SELECT count(*) FROM {s}.ledger"),
            "rejected": one(f"SELECT count(*) FROM {s}.ledger WHERE outcome->>'status' = 'rejected'"),
            "desks": one(f"SELECT count(*) FROM {s}.desk_roles"),
            "clients": clients,
            "unsafe": meta.get("unsafe") or "",
            "reference_bytes": one(f"SELECT coalesce(sum(length(data)), 0) FROM {s}.reference"),
            "hash": dict(one(f"SELECT {s}.content_hash()")),
        }
