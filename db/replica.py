"""Opening, checking, migrating and closing the local SQLite replica.

One ``Replica`` per process: one writer connection serves every write (``BEGIN
IMMEDIATE``, ``busy_timeout`` 5 s), reads open their own connections (WAL).
Listeners registered with ``on_commit`` are called after a write commits, never before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlite_utils import Database

from db.schema import MIGRATION_NAMES, SCHEMA_VERSION, migrations

BUSY_TIMEOUT_MS = 5000
SQLITE_HEADER = b"SQLite format 3\x00"


class ReplicaError(Exception):
    """A replica that cannot be opened as it is: the message names the file and the reason."""


def connect(path: str | os.PathLike, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the replica's pragmas; autocommit mode, explicit transactions."""
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -65536")
    if not readonly:
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _check_file(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    if path.is_dir():
        raise ReplicaError(f"{path}: is a directory, not a replica file")
    # The header is read through SQLite, never with open()/close(): closing ANY descriptor of a file
    # drops every POSIX lock this process holds on it — the locks of this process's other open
    # connections too (a second Replica, a sync worker). Another process closing its connection then
    # takes itself for the last one and deletes the WAL under them ("database disk image is
    # malformed" for readers, writes going to an unlinked WAL). SQLite shares descriptors per file.
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA schema_version").fetchall()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise ReplicaError(f"{path}: not a SQLite database (unknown file header); the file was left untouched") from exc
    finally:
        conn.close()


def _applied(db: Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


def schema_version(path: str | os.PathLike) -> int:
    """Number of migrations applied to an existing replica (0 for a new file)."""
    conn = connect(path)
    try:
        return len(_applied(Database(conn)))
    finally:
        conn.close()


class Replica:
    """An open replica file: migrated, checked, with one writer connection."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise ReplicaError(f"{self.path}: no such replica file")
        _check_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = connect(self.path)
            self._writer.execute("PRAGMA journal_mode = WAL")
            self._probe()
        except sqlite3.DatabaseError as exc:
            raise ReplicaError(f"{self.path}: damaged or not a replica ({exc}); the file was left untouched") from exc
        self._lock = threading.RLock()
        self._listeners: list[Callable[[set[str]], None]] = []
        self._migrate()

    def _probe(self) -> None:
        """Cheap structural check on open: the schema and the first page of every table read.

        A full ``PRAGMA quick_check`` reads the whole file (seconds on a 1 GB replica), so it
        is left to ``integrity_check()``; damage deeper in a table surfaces as a DatabaseError
        when a query reaches it, which callers report with the file name."""
        names = [r[0] for r in self._writer.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            if not name.startswith("sqlite_") and "_fts_" not in name:
                self._writer.execute(f'SELECT * FROM "{name}" LIMIT 1').fetchall()

    def integrity_check(self) -> str:
        """``PRAGMA quick_check`` over the whole file: 'ok' or the first problems found."""
        rows = self._writer.execute("PRAGMA quick_check(5)").fetchall()
        return "; ".join(r[0] for r in rows)

    # -- schema -------------------------------------------------------------------------------
    def _migrate(self) -> None:
        db = Database(self._writer)
        try:
            applied = _applied(db)
        except sqlite3.DatabaseError as exc:
            raise ReplicaError(f"{self.path}: cannot read the schema ({exc})") from exc
        unknown = [name for name in applied if name not in MIGRATION_NAMES]
        if unknown:
            self._writer.close()
            raise ReplicaError(
                f"{self.path}: schema is newer than this console (has {', '.join(unknown)}); "
                "update OneMap Console. The file was left untouched."
            )
        if not applied and db.table_names() and "events" in db.table_names():
            self._writer.close()
            raise ReplicaError(f"{self.path}: has tables but no OneMap schema record; not a OneMap replica")
        pending = migrations.pending(db)
        if pending and applied:
            backup = self.path.with_name(f"{self.path.name}.bak-v{len(applied)}")
            self.backup_to(backup)
        if pending:
            migrations.apply(db)
            self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def version(self) -> int:
        return len(_applied(Database(self._writer)))

    def backup_to(self, target: str | os.PathLike) -> Path:
        """A consistent copy of the replica through SQLite's backup API."""
        target = Path(target)
        tmp = target.with_name(target.name + ".tmp")
        if tmp.exists():
            tmp.unlink()
        dst = sqlite3.connect(str(tmp))
        try:
            with self._lock:
                self._writer.backup(dst)
        finally:
            dst.close()
        shutil.move(str(tmp), str(target))
        return target

    # -- connections and transactions ----------------------------------------------------------
    def reader(self) -> sqlite3.Connection:
        """A new read connection (the caller closes it)."""
        return connect(self.path)

    @contextlib.contextmanager
    def write(self, *topics: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``) on the writer connection.

        ``topics`` name what changed (e.g. ``"events"``); listeners hear them after COMMIT.
        """
        with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._notify(set(topics))

    def next_rev(self, conn: sqlite3.Connection) -> int:
        """Take the next change revision inside the current write transaction."""
        conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'rev'")
        return conn.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()[0]

    @property
    def writer(self) -> sqlite3.Connection:
        """The writer connection, for bulk loaders that manage their own transaction."""
        return self._writer

    def on_commit(self, listener: Callable[[set[str]], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, topics: set[str]) -> None:
        for listener in list(self._listeners):
            listener(topics)

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self._writer.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def is_empty(self) -> bool:
        return self._writer.execute("SELECT count(*) FROM grids").fetchone()[0] == 0

    def close(self) -> None:
        """Checkpoint the WAL into the main file (so a copied .db is complete) and close."""
        with self._lock:
            try:
                self._writer.execute("PRAGMA optimize")  # refresh planner statistics where stale
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._writer.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_replica(path: str | os.PathLike, *, create: bool = True) -> Replica:
    return Replica(path, create=create)
