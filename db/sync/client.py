"""The replica's side of sync (issue 9, contract ``docs/sync.md``): hello, push, pull.

One round (:meth:`SyncClient.sync_once`):

1. **hello** — protocol/schema versions and identity. The server answers the highest
   ``mutation_id`` it has seen for our ``client_id``; if that is above our own highest, this file
   is a restored backup or a copy → a new ``client_id`` (pending rows are re-labelled).
2. **push** — every pending outbox row in ``mutation_id`` order, in batches of up to
   :data:`PUSH_BATCH` rows, one ``push_mutations`` call (one server transaction) each; the server
   answers the outcomes up to the first one that is not ``applied``. (A server that does not
   announce ``push_batch`` at hello gets one ``push_mutation`` call per row, as before.)
   ``applied`` → the row is marked applied;
   ``rejected`` → in ONE SQLite transaction the row is marked rejected, a ``sync_refusals`` row
   is written, the event is rolled back to the server's state, and every later pending mutation
   of the same event is refused too ("depends on refused mutation N"). ``client_conflict`` →
   new ``client_id`` and the same row is sent again. A connection lost after sending → the same
   batch (the same ``(client_id, mutation_id)`` pairs) is sent again: the server's ledger answers
   the ones it already applied with their stored outcomes.
3. **pull** — ``pull_changes`` until idle; each batch and its cursor in ONE SQLite transaction
   with ``sync_state.applying = 1`` (the outbox trigger does not re-queue pulled rows).
   ``snapshot_required`` → the snapshot is re-copied in place, pending rows kept.

All SQLite writes go through ``Replica.write`` (``BEGIN IMMEDIATE`` on the single writer);
no SQLite lock is held while waiting for the network.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from app import timeutil
from db.ids import new_ulid
from db.sync.client_apply import Applier, KeyConflict, apply_batch, set_applying
from db.sync.protocol import PROTOCOL_VERSION, SERVER_SCHEMA, SYNC_SCHEMA_VERSION, fingerprint

log = logging.getLogger("onemap.sync")

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 15_000
CLIENT_TIMEOUT_S = 25.0  # a reply that never comes (a dropped packet): the socket is shut after this
PULL_ROWS = 1000
APPLIED_FLUSH = 200  # applied answers marked per SQLite transaction
# outbox rows per push_mutations call (1 = one push_mutation call per row). Each mutation is a
# subtransaction: 60 stays under PostgreSQL's 64 cached subtransaction ids, so snapshots taken by
# other sessions while a batch runs need no pg_subtrans lookups.
PUSH_BATCH = 60
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock not available
TOPICS_PULL = ("events", "event_log", "whistles", "sync")


class SyncNotConfigured(Exception):
    """The replica is not a sync client (no ``sync_state`` row) or has no upstream to talk to."""


class SyncVersionError(Exception):
    """The upstream does not accept this console's protocol or schema version."""


class SyncServerError(Exception):
    """The upstream failed on one mutation of a batch (the ones before it are applied and marked)."""


@dataclass
class SyncReport:
    """One round of :meth:`SyncClient.sync_once`."""

    online: bool
    pushed: int
    applied: int
    rejected: int
    pulled: int
    pending: int
    cursor: int
    error: str | None
    rotated_client_id: bool

    def summary(self) -> str:
        state = "online" if self.online else "offline"
        text = (f"{state}: pushed {self.pushed} (applied {self.applied}, refused {self.rejected}), "
                f"pulled {self.pulled}, pending {self.pending}, cursor {self.cursor}")  # fmt: skip
        if self.rotated_client_id:
            text += ", new client id"
        if self.error:
            text += f" — {self.error}"
        return text


# -- the replica's sync_state ------------------------------------------------------------------
def sync_state(conn: sqlite3.Connection) -> dict | None:
    """The replica's ``sync_state`` row as a dict, or None when it is not a sync client."""
    try:
        row = conn.execute("SELECT * FROM sync_state WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # replica without m010 (opened read-only by an old build)
        return None
    if row is None:
        return None
    if hasattr(row, "keys"):
        return {k: row[k] for k in row.keys()}
    names = [r[1] for r in conn.execute("PRAGMA table_info(sync_state)")]
    return dict(zip(names, row, strict=True))


def enable_sync(replica, *, upstream: str, client_id: str | None = None, cursor: int = 0,
                scope_street: str | None = None, scope_dept: str | None = None) -> str:  # fmt: skip
    """Make the replica a sync client (or update its upstream/cursor/scope); returns the client id.

    From now on every local event_log row is queued in the outbox (trigger ``sync_outbox_log``).
    An existing client id is kept unless ``client_id`` is given. A password in ``upstream`` is
    moved to libpq's password file (:mod:`db.sync.credentials`).
    """
    from db.sync.credentials import store_upstream

    upstream = store_upstream(upstream)  # the password goes to libpq's password file, not the replica
    with replica.write("sync") as conn:
        cur = sync_state(conn)
        cid = client_id or (cur["client_id"] if cur else None) or new_ulid()
        conn.execute(
            "INSERT INTO sync_state (id, client_id, upstream, scope_street, scope_dept, cursor) VALUES (1, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET client_id = excluded.client_id, upstream = excluded.upstream, "
            "scope_street = excluded.scope_street, scope_dept = excluded.scope_dept, cursor = excluded.cursor, "
            "applying = 0",
            (cid, upstream, scope_street, scope_dept, int(cursor)),
        )
    log.info("sync enabled: client %s, upstream %s, cursor %s", cid, _redact(upstream), cursor)
    return cid


def record_scope(replica, street: str | None, department: str | None) -> None:
    """Remember the desk role's scope (street or department; both None: the district)."""
    with replica.write("sync") as conn:
        conn.execute("UPDATE sync_state SET scope_street = ?, scope_dept = ? WHERE id = 1", (street, department))
    log.info("sync: this desk's scope is %s", f"street {street}" if street else
             (f"department {department}" if department else "the district"))  # fmt: skip


def rotate_client_id(replica, reason: str) -> str:
    """A new ``client_id`` for this replica file; pending rows are re-labelled, order kept."""
    new = new_ulid()
    with replica.write("sync") as conn:
        old = conn.execute("SELECT client_id FROM sync_state WHERE id = 1").fetchone()[0]
        conn.execute("UPDATE sync_state SET client_id = ? WHERE id = 1", (new,))
        n = conn.execute("UPDATE outbox SET client_id = ? WHERE state = 'pending'", (new,)).rowcount
    log.warning("sync: client id %s → %s (%s); %d pending mutation(s) re-labelled", old, new, reason, n)
    return new


def _redact(dsn: str | None) -> str:
    """A DSN for logs: the password replaced by ***."""
    import re

    if not dsn:
        return ""
    dsn = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", dsn)
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


def _now_iso() -> str:
    return timeutil.now_iso()


def _loads(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value


# -- the client --------------------------------------------------------------------------------
class SyncClient:
    """Talks to the upstream for one replica. Not thread-safe: one round at a time."""

    def __init__(self, replica, dsn: str | None = None) -> None:
        self.replica = replica
        self._reader = replica.reader()
        state = sync_state(self._reader)
        if state is None or not (dsn or state.get("upstream")):
            self._reader.close()
            if state is None:
                raise SyncNotConfigured(
                    f"{replica.path}: not a sync client (make one with: onemap --db PATH clone --upstream DSN)"
                )
            raise SyncNotConfigured(f"{replica.path}: no upstream remembered; give --upstream DSN")
        self.dsn = dsn or state["upstream"]
        self._pg = None
        self._batch = False  # set at hello: the upstream has push_mutations

    # -- connection ------------------------------------------------------------------------
    def _connect(self):
        import psycopg

        if self._pg is not None and not self._pg.closed and not self._pg.broken:
            return self._pg
        self._drop()
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        self._pg = conn
        return conn

    def _drop(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.close()
        self._pg = None

    def _call(self, fn: str, *params: Any) -> dict:
        """``SELECT onemap.fn(params…)`` → its jsonb answer, with a client-side watchdog."""
        from psycopg.types.json import Jsonb

        conn = self._connect()
        args = [Jsonb(p) if isinstance(p, dict | list) else p for p in params]
        placeholders = ", ".join(["%s"] * len(args))
        fired = threading.Event()

        def abort() -> None:  # the reply is lost (dropped packets): wake the blocked read
            fired.set()
            with contextlib.suppress(Exception):
                s = socket.socket(fileno=os.dup(conn.fileno()))
                s.shutdown(socket.SHUT_RDWR)
                s.close()

        timer = threading.Timer(CLIENT_TIMEOUT_S, abort)
        timer.daemon = True
        timer.start()
        try:
            row = conn.execute(f"SELECT {SERVER_SCHEMA}.{fn}({placeholders})::text", args).fetchone()
        except Exception:
            self._drop()
            raise
        finally:
            timer.cancel()
        return _loads(row[0]) if row else {}

    def close(self) -> None:
        self._drop()
        with contextlib.suppress(Exception):
            self._reader.close()

    # -- one round -------------------------------------------------------------------------
    def sync_once(self, *, max_batches: int = 100) -> SyncReport:
        """hello, push every pending mutation, pull until idle (at most ``max_batches`` batches)."""
        import psycopg

        rep = SyncReport(online=False, pushed=0, applied=0, rejected=0, pulled=0, pending=0, cursor=0,
                         error=None, rotated_client_id=False)  # fmt: skip
        try:
            self._hello(rep)
            rep.online = True
            self._push(rep)
            self._pull(rep, max_batches)
        except SyncVersionError as exc:
            rep.error = str(exc)
        except SyncServerError as exc:
            rep.error = f"upstream error: {exc}"
        except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
            rep.online = False
            rep.error = f"upstream unreachable: {_first_line(exc)}"
            self._drop()
        except psycopg.Error as exc:  # a server-side error: reported, the round ends
            rep.error = f"upstream error: {_first_line(exc)}"
            self._drop()
        except sqlite3.Error as exc:  # e.g. the replica stayed locked longer than busy_timeout
            rep.error = f"replica error: {_first_line(exc)}"
        except Exception as exc:  # noqa: BLE001 - a long-running loop reports and goes on
            log.exception("sync round failed")
            rep.error = f"sync failed: {type(exc).__name__}: {_first_line(exc)}"
            self._drop()
        try:
            self._finish(rep)
        except sqlite3.Error as exc:
            rep.error = rep.error or f"replica error: {_first_line(exc)}"
        return rep

    def _finish(self, rep: SyncReport) -> None:
        with self.replica.write("sync") as conn:
            if rep.online and rep.error is None:
                conn.execute("UPDATE sync_state SET last_sync_at = ?, last_error = NULL WHERE id = 1", (_now_iso(),))
            else:
                conn.execute("UPDATE sync_state SET last_error = ? WHERE id = 1", (rep.error,))
            rep.pending = conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
            rep.cursor = conn.execute("SELECT cursor FROM sync_state WHERE id = 1").fetchone()[0]

    def _state(self) -> dict:
        return sync_state(self._reader) or {}

    # -- hello -----------------------------------------------------------------------------
    def _hello(self, rep: SyncReport) -> None:
        state = self._state()
        ours = self._reader.execute(
            "SELECT coalesce(max(mutation_id), 0) FROM outbox WHERE client_id = ?", (state["client_id"],)
        ).fetchone()[0]
        ans = self._call("hello", state["client_id"], PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, ours)
        if not ans.get("ok", True):
            self._refused_hello(ans)
        self._batch = bool(ans.get("push_batch")) and PUSH_BATCH > 1
        scope = (ans.get("scope_street"), ans.get("scope_dept"))
        if "scope_street" in ans and scope != (state.get("scope_street"), state.get("scope_dept")):
            record_scope(self.replica, *scope)  # the desk role's scope, as the upstream knows it
        server_last = int(ans.get("server_last_mutation_id") or 0)
        if server_last > ours:
            rotate_client_id(self.replica, f"restored or copied replica: the server has seen mutation "
                                           f"{server_last} from this id, this file only {ours}")  # fmt: skip
            rep.rotated_client_id = True

    def _refused_hello(self, ans: dict) -> None:
        if ans.get("reason") == "version":
            raise SyncVersionError(
                "upstream does not accept this console's protocol/schema version: update OneMap Console "
                f"(this console: protocol {PROTOCOL_VERSION}, schema {SYNC_SCHEMA_VERSION})"
            )
        raise SyncVersionError(f"upstream refused hello: {ans.get('message') or ans.get('reason') or ans}")

    # -- push ------------------------------------------------------------------------------
    def _push(self, rep: SyncReport) -> None:
        if self._batch:
            self._push_batches(rep)
        else:
            self._push_rows(rep)

    def _push_batches(self, rep: SyncReport) -> None:
        """Every row pending now, in order, :data:`PUSH_BATCH` per ``push_mutations`` call. The
        answer stops at the first outcome that is not ``applied``; that one is handled (refusal,
        client id rotation, a transient server error) and the next batch starts after what was
        answered. Applied answers are marked as they come (a crash before the mark only means the
        rows are sent again: the ledger answers the same)."""
        last = self._reader.execute("SELECT max(mutation_id) FROM outbox WHERE state = 'pending'").fetchone()[0]
        after, conflicts, transient = 0, 0, 0
        done: list[tuple[int, dict]] = []
        try:
            while last is not None:
                rows = self._reader.execute(
                    "SELECT mutation_id, op, event_uid, client_id, args FROM outbox WHERE state = 'pending' "
                    "AND mutation_id > ? AND mutation_id <= ? ORDER BY mutation_id LIMIT ?",
                    (after, last, PUSH_BATCH),
                ).fetchall()
                if not rows:
                    return
                client_id = rows[0]["client_id"]  # pending rows share it (rotation re-labels them all)
                rows = list(itertools.takewhile(lambda r, c=client_id: r["client_id"] == c, rows))
                batch = []
                for r in rows:
                    args = orjson.loads(r["args"])
                    batch.append({"mutation_id": r["mutation_id"], "fingerprint": fingerprint(args), "args": args})
                outcomes = self._push_batch(client_id, batch)
                for row, outcome in zip(rows, outcomes, strict=False):
                    mid, status = row["mutation_id"], outcome.get("status")
                    if status == "applied":
                        rep.pushed += 1
                        rep.applied += 1
                        done.append((mid, outcome))
                        after = mid
                        if len(done) >= APPLIED_FLUSH:
                            self._applied(done)
                        continue
                    self._applied(done)
                    if status == "rejected":
                        rep.pushed += 1
                        rep.rejected += self._rejected(row, outcome)
                        after = mid
                    elif status == "client_conflict":
                        conflicts += 1
                        if conflicts > 3:
                            raise SyncVersionError(f"mutation {mid}: client id conflict persists")
                        rotate_client_id(self.replica, f"client_conflict on mutation {mid}: "
                                                       "another replica uses this client id")  # fmt: skip
                        rep.rotated_client_id = True
                    elif status == "error" and outcome.get("sqlstate") in TRANSIENT_SQLSTATES and transient < 3:
                        transient += 1
                        log.info("sync: mutation %d hit %s on the server; sending it again", mid, outcome.get("reason"))
                    elif status == "error":
                        raise SyncServerError(f"mutation {mid}: {outcome.get('reason')} (SQLSTATE {outcome.get('sqlstate')})")
                    else:
                        raise SyncVersionError(f"unexpected answer to mutation {mid}: {outcome}")
                    break  # the rest of this batch was not applied: the next batch starts after `after`
        finally:
            self._applied(done)

    def _push_batch(self, client_id: str, batch: list[dict]) -> list[dict]:
        """One ``push_mutations`` call; a lost reply → the same batch once more on a new connection."""
        import psycopg

        for attempt in range(2):
            try:
                ans = self._call("push_mutations", client_id, PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, batch)
            except psycopg.OperationalError:
                if attempt >= 1:
                    raise
                log.info("sync: no answer for mutations %d…%d; sending them again (the ledger answers)",
                         batch[0]["mutation_id"], batch[-1]["mutation_id"])  # fmt: skip
                continue
            if isinstance(ans, dict):  # refused as a whole: version, unknown desk, bad request
                if ans.get("reason") == "version":
                    self._refused_hello(ans)
                raise SyncVersionError(f"upstream refused push: {ans.get('message') or ans.get('reason') or ans}")
            if not ans:
                raise SyncVersionError(f"no answer to mutations {batch[0]['mutation_id']}…")
            return ans
        raise SyncVersionError("push: no usable answer")  # pragma: no cover

    def _push_rows(self, rep: SyncReport) -> None:
        """Every pending row in order, one ``push_mutation`` each (an upstream without batches).
        Applied answers are marked in small batches (a crash before the mark only means the row
        is sent again: the ledger answers the same)."""
        rows = self._reader.execute(
            "SELECT mutation_id, op, event_uid, args FROM outbox WHERE state = 'pending' ORDER BY mutation_id"
        ).fetchall()
        done: list[tuple[int, dict]] = []
        try:
            for row in rows:
                still = self._reader.execute(
                    "SELECT state, client_id FROM outbox WHERE mutation_id = ?", (row["mutation_id"],)
                ).fetchone()
                if still is None or still["state"] != "pending":
                    continue  # refused meanwhile as depending on an earlier refused mutation
                args = orjson.loads(row["args"])
                outcome = self._push_one(rep, row["mutation_id"], still["client_id"], args)
                rep.pushed += 1
                status = outcome.get("status")
                if status == "applied":
                    done.append((row["mutation_id"], outcome))
                    rep.applied += 1
                    if len(done) >= APPLIED_FLUSH:
                        self._applied(done)
                elif status == "rejected":
                    self._applied(done)
                    rep.rejected += self._rejected(row, outcome)
                elif status == "version" or outcome.get("reason") == "version":
                    self._refused_hello({"reason": "version"})
                else:
                    raise SyncVersionError(f"unexpected answer to mutation {row['mutation_id']}: {outcome}")
        finally:
            self._applied(done)

    def _push_one(self, rep: SyncReport, mutation_id: int, client_id: str, args: dict) -> dict:
        import psycopg

        fp = fingerprint(args)
        for attempt in range(4):
            try:
                outcome = self._call("push_mutation", client_id, mutation_id, PROTOCOL_VERSION,
                                     SYNC_SCHEMA_VERSION, fp, args)  # fmt: skip
            except psycopg.OperationalError:
                if attempt >= 1:
                    raise
                log.info("sync: no answer for mutation %d; sending it again (the ledger answers)", mutation_id)
                continue  # a lost reply: the same (client_id, mutation_id) again
            if outcome.get("status") == "client_conflict":
                if attempt >= 3:
                    raise SyncVersionError(f"mutation {mutation_id}: client id conflict persists")
                client_id = rotate_client_id(self.replica, f"client_conflict on mutation {mutation_id}: "
                                                           "another replica uses this client id")  # fmt: skip
                rep.rotated_client_id = True
                continue
            return outcome
        raise SyncVersionError(f"mutation {mutation_id}: no usable answer")

    def _applied(self, done: list[tuple[int, dict]]) -> None:
        """Mark the answered rows applied (one transaction) and empty ``done``."""
        if not done:
            return
        with self.replica.write("sync") as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'applied', server_seq = ?, outcome = ? WHERE mutation_id = ?",
                [(o.get("server_seq"), orjson.dumps(o).decode(), m) for m, o in done],
            )
        done.clear()

    def _rejected(self, row: sqlite3.Row, outcome: dict) -> int:
        """Refuse the mutation (and the later ones of its event) and roll the event back; one transaction."""
        mid, uid = row["mutation_id"], row["event_uid"]
        reason = outcome.get("reason") or outcome.get("code") or "rejected"
        state = outcome.get("server_state")
        state_text = orjson.dumps(state).decode() if state else None
        now = _now_iso()
        with self.replica.write("events", "event_log", "whistles", "sync") as conn:
            set_applying(conn, True)
            later = conn.execute(
                "SELECT mutation_id, op FROM outbox WHERE state = 'pending' AND event_uid = ? AND mutation_id > ? "
                "ORDER BY mutation_id",
                (uid, mid),
            ).fetchall()
            refusals = [(mid, row["op"], reason, orjson.dumps(outcome).decode())]
            refusals += [(m, op, f"depends on refused mutation {mid}（依赖被拒绝的变更 {mid}）",
                          orjson.dumps({"status": "rejected", "code": "depends", "depends_on": mid}).decode())
                         for m, op in later]  # fmt: skip
            for m, op, why, out in refusals:
                conn.execute("UPDATE outbox SET state = 'rejected', outcome = ? WHERE mutation_id = ?", (out, m))
                conn.execute(
                    "INSERT OR REPLACE INTO sync_refusals (mutation_id, event_uid, op, reason, server_state, refused_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (m, uid, op, why, state_text, now),
                )
            ap = Applier(conn, self.replica.next_rev(conn))
            if state and state.get("event"):
                ap.apply_state(state)
            else:  # the upstream has no such event (a refused report): keep the row, out of the picture
                ap.exclude_event(uid, f"refused: mutation {mid} ({reason})")
            set_applying(conn, False)
        log.warning("sync: mutation %d (%s on %s) refused: %s%s", mid, row["op"], uid, reason,
                    f"; {len(refusals) - 1} later mutation(s) of the event refused with it" if len(refusals) > 1
                    else "")  # fmt: skip
        return len(refusals)

    # -- pull ------------------------------------------------------------------------------
    def _pull(self, rep: SyncReport, max_batches: int) -> None:
        for _ in range(max_batches):
            state = self._state()
            ans = self._call("pull_changes", state["client_id"], PROTOCOL_VERSION, SYNC_SCHEMA_VERSION,
                             int(state["cursor"]), PULL_ROWS)  # fmt: skip
            if not ans.get("ok", True):
                if ans.get("reason") == "snapshot_required":
                    from db.sync.clone import refresh_snapshot

                    log.warning("sync: cursor %s is below the feed floor %s: copying the snapshot again",
                                state["cursor"], ans.get("feed_floor"))  # fmt: skip
                    try:
                        rep.pulled += refresh_snapshot(self.replica, self.dsn, client_id=state["client_id"])
                    except KeyConflict as exc:  # a local report must be refused first: next round
                        log.info("sync: snapshot copy waits for a pending report: %s", exc)
                        return
                    continue
                if ans.get("reason") == "version":
                    self._refused_hello(ans)
                raise SyncVersionError(f"upstream refused pull: {ans.get('reason') or ans}")
            changes = ans.get("changes") or []
            new_cursor = int(ans.get("cursor", state["cursor"]))
            if changes:
                applied = apply_changes(self.replica, changes, new_cursor)
                rep.pulled += applied
                if applied < len(changes):
                    return  # a local report still holds the key: push first, next round
            elif new_cursor != int(state["cursor"]):
                apply_changes(self.replica, [], new_cursor)
            head = ans.get("head")
            if not changes or len(changes) < PULL_ROWS or (head is not None and new_cursor >= int(head)):
                return


def apply_changes(replica, changes: list[dict], cursor: int) -> int:
    """Apply one pulled batch and the new cursor in ONE transaction; returns the changes applied.

    A change that would collide with a local report still waiting to be refused stops the batch
    there (the cursor stays before it)."""
    with replica.write(*TOPICS_PULL) as conn:
        set_applying(conn, True)
        ap = Applier(conn, replica.next_rev(conn))
        done = apply_batch(ap, changes)
        if done < len(changes):
            log.info("sync: pull paused before server_seq %s: its (source, external_id) is held by a local "
                     "report not yet answered", changes[done].get("server_seq"))  # fmt: skip
            new_cursor = changes[done - 1].get("server_seq") if done else None
        else:
            new_cursor = cursor
        if new_cursor is not None:
            conn.execute("UPDATE sync_state SET cursor = ? WHERE id = 1", (int(new_cursor),))
        set_applying(conn, False)
    return done


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
