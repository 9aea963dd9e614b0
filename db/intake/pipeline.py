"""Importing one feed file into the replica: streaming, set-based, chunked, resumable.

``import_file(replica, path, fmt, actor=…)`` reads the file in batches (the readers are
generators), validates and enriches each batch vectorised (:mod:`db.intake.prepare`) and writes:

1. the batch's rows go into a TEMP staging table on the writer connection, before the write
   transaction (a temp table takes no lock on the replica);
2. then, in one ``BEGIN IMMEDIATE`` transaction: the existing events are matched by
   (source, external id); unchanged records leave the stage; updated ones get their final values
   (the console's own progress is kept: statuses only move forward, an operator's
   classification stays); one ``INSERT … SELECT … ON CONFLICT(source, external_id) DO UPDATE …
   WHERE changed`` writes them all; the log rows, merge suggestions, quarantine rows, IoT readings
   and the run's progress are written set-based in the same transaction, under one change
   revision (``events.rev``) so the map and the queues pick the changes up.

Files of at most :data:`SINGLE_TRANSACTION_MAX` records are written in ONE transaction: an
import is then all or nothing. Larger files commit chunk by chunk (the bulk path: about
:data:`BULK_TARGET_TXN_S` each, :data:`BULK_MIN_BATCH` to :data:`BULK_MAX_BATCH` records; the size
adapts to the measured speed) under one run in ``import_runs`` that stays ``running`` until
the end; a killed or cancelled run leaves whole batches, and importing the same file again (same
SHA-256, format and options) resumes it after its last committed record. Re-importing a finished
file creates nothing: its records are ``unchanged``.

A wave that creates events and updates none adds their KPI rollup contributions set-based: the
``kpi_%`` triggers are dropped and re-created around the insert inside the same transaction
(:mod:`db.kpi_rollups`); no other trigger is touched. The batches are read ahead in a thread
(:mod:`db.intake.prefetch`).

The new events' full-text rows (``events_fts``) are written after the import's transactions, in
short ones of their own (:mod:`db.intake.fts_backlog`), and the WAL is checkpointed between
transactions, not inside a COMMIT: both kept a chunk's write lock long.

Identity is (source, external id): an import never creates a second event for a record, and never
merges events; a new event of the same category within 50 m and 2 h of another gets a row in
``merge_suggestions`` for an operator to accept or dismiss.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from app import timeutil
from app.lifecycle import STAGE_COLUMN, TERMINAL
from db import datum as datum_mod
from db import kpi_rollups
from db.intake import fts_backlog, mappings
from db.intake.deadlines import WorkClock
from db.intake.prefetch import prefetched
from db.intake.prepare import STAGE_COLUMNS, STAGE_INDEX, Context, Prepared, prepare
from db.intake.records import FormatError
from db.intake.textio import EncodingError, FeedFile, check_encoding, sha256_file
from db.intake.ulids import ulids

log = logging.getLogger("onemap.intake")

FORMATS: tuple[str, ...] = ("12345-csv", "open311", "citymgmt", "iot-jsonl")
SOURCES = {"12345-csv": "hotline_12345", "open311": "open311", "citymgmt": "citymgmt", "iot-jsonl": "iot"}
SINGLE_TRANSACTION_MAX = 50_000
FIRST_BATCH = 2_000
MIN_BATCH, MAX_BATCH = 500, 20_000
TARGET_TXN_S = 0.3
#: the bulk path (files over SINGLE_TRANSACTION_MAX records): bigger transactions (each one
#: rewrites the index pages it touches; more rows per transaction share them): at most
#: BULK_MAX_BATCH records, about BULK_TARGET_TXN_S each but at least BULK_MIN_BATCH (small chunks
#: cost more CPU per record, so a loaded machine would otherwise shrink them further and further).
#: The chunks aim at ≈ 0.5 s, as issue 4 asks ("chunks of at most about 0.5 s each"): an operator's
#: click during a big import waits at most that long for the lock. Measured on 200k rows (session 4):
#: 0.5 s chunks 2,919 rows/s, transactions median 0.45 s, longest 0.86 s; 1 s chunks 3,523 rows/s,
#: median 0.95 s, longest 1.44 s (17 % less CPU). The floor keeps a loaded machine from shrinking
#: them further and further (small chunks cost more CPU per record).
BULK_MIN_BATCH, BULK_MAX_BATCH = 1_000, 50_000
BULK_TARGET_TXN_S = 0.5
DUP_DISTANCE_M = 50.0
M_PER_DEG_LON = 111_320.0 * 0.848_43
M_PER_DEG_LAT = 110_574.0
TOPICS = ("events", "event_log", "quarantine", "import_runs", "merge_suggestions")

Progress = Callable[[float, str], None]

_active_lock = threading.Lock()
_active_runs: set[int] = set()


class IntakeError(Exception):
    """Base class of import refusals."""


class ImportOptionError(IntakeError, ValueError):
    """A bad option: unknown format, datum or encoding, unreadable mapping (a usage error)."""


class ImportFileError(IntakeError):
    """The file cannot be read as the given format: nothing was imported."""


class ImportBusy(IntakeError):
    """The same file is being imported right now by another process or thread."""


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    run_id: int | None = None
    run_uid: str | None = None
    status: str = "complete"  # complete | cancelled
    records: int = 0
    skipped: int = 0  # records already committed by the run this one resumed
    resumed_from: int | None = None  # first record number of a resumed run
    quarantine_new: int = 0
    suggestions: int = 0
    needs_classification: int = 0
    readings: int = 0
    invalid_readings: int = 0
    transactions: int = 0
    max_transaction_s: float = 0.0
    transaction_s: list[float] = field(default_factory=list)  # each write transaction's duration
    elapsed_s: float = 0.0
    fts_indexed: int = 0  # events given their full-text rows after the import's transactions
    fts_s: float = 0.0
    fts_max_transaction_s: float = 0.0
    encoding: str = ""
    reasons: Counter = field(default_factory=Counter)
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
                f"quarantined {self.quarantined}")  # fmt: skip

    def counts(self) -> dict:
        return {k: getattr(self, k) for k in ("created", "updated", "unchanged", "quarantined", "records",
                                              "suggestions", "needs_classification", "readings",
                                              "invalid_readings")}  # fmt: skip


# -- options --------------------------------------------------------------------------------------
def load_mapping_file(path: str | os.PathLike) -> dict[str, str]:
    """A header mapping from JSON: ``{"file header": "canonical header or field"}`` (optionally
    under a ``"columns"`` key)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ImportOptionError(f"--mapping {path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ImportOptionError(f"--mapping {path}: not JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("columns"), dict):
        data = data["columns"]
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ImportOptionError(f"--mapping {path}: expected a JSON object of header → field names")
    from db.intake.csv12345 import resolve_field

    bad = [v for v in data.values() if resolve_field(v) is None]
    if bad:
        raise ImportOptionError(f"--mapping {path}: unknown field(s) {', '.join(map(repr, bad))}")
    return data


def _check_options(fmt: str, encoding: str | None, datum: str | None) -> tuple[str | None, str]:
    if fmt not in FORMATS:
        raise ImportOptionError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    enc = None
    if encoding:
        try:
            enc = check_encoding(encoding)
        except EncodingError as exc:
            raise ImportOptionError(str(exc)) from None
    try:
        d = datum_mod.parse_datum(datum) if datum else datum_mod.WGS84
    except datum_mod.UnknownDatum as exc:
        raise ImportOptionError(str(exc)) from None
    return enc, d


# -- context --------------------------------------------------------------------------------------
def _context(replica, conn, source: str, fmt: str, labels: dict, default_datum: str) -> Context:
    import shapely

    from db import calendar
    from db.event_ops import _grid_lookup
    from db.geocode import gazetteer_for
    from db.spatial import load_boundary

    lookup = _grid_lookup(replica)
    if not lookup.grid_ids:
        raise ImportFileError(f"{replica.path}: the replica has no grids (create one with: onemap demo)")
    boundary = load_boundary()
    shapely.prepare(boundary)
    tree = _tree_for(lookup)
    categories = {r["code"]: dict(r) for r in conn.execute("SELECT * FROM categories")}

    def gazetteer():
        c = replica.reader()
        try:
            return gazetteer_for(c)
        finally:
            c.close()

    return Context(
        source=source, format=fmt, labels=labels, default_datum=default_datum, lookup=lookup,
        boundary=boundary, tree=tree, categories=categories, cat_map=mappings.category_map(conn, source),
        status_map=mappings.status_map(conn, source),
        street_names={r[0]: r[1] for r in conn.execute("SELECT code, name FROM streets")},
        clock=WorkClock(calendar.is_workday_fn(conn)), gazetteer_factory=gazetteer,
    )  # fmt: skip


_trees: dict[int, object] = {}


def _tree_for(lookup) -> object:
    import shapely

    tree = _trees.get(id(lookup))
    if tree is None:
        tree = shapely.STRtree(lookup.polygons)
        _trees.clear()
        _trees[id(lookup)] = tree
    return tree


def _reader(fmt: str, feed: FeedFile, conn, mapping: dict | None, window_s: int):
    if fmt == "12345-csv":
        from db.intake.csv12345 import Csv12345Reader

        return Csv12345Reader(feed, mapping=mapping, saved_mapping=mappings.column_map(conn, fmt))
    if fmt == "open311":
        from db.intake.open311 import Open311Reader

        return Open311Reader(feed)
    if fmt == "citymgmt":
        from db.intake.citymgmt import CityMgmtReader

        return CityMgmtReader(feed)
    from db.intake.iot_jsonl import IotReader

    devices: dict[str, dict] = {}
    for r in conn.execute("SELECT uid, name, kind, lon, lat FROM devices"):
        d = dict(r)
        devices[r["uid"]] = d
        devices.setdefault(r["name"], d)
        devices.setdefault(r["name"].casefold(), d)
    cmap = mappings.category_map(conn, "iot")
    names = {k: v for k, v in conn.execute("SELECT m.source_code, c.name_zh FROM category_mappings m "
                                           "JOIN categories c ON c.code = m.category WHERE m.source = 'iot'")}  # fmt: skip
    return IotReader(feed, devices=devices, alarm_types=cmap.keys(), type_names=names, window_s=window_s)


# -- staging ------------------------------------------------------------------------------------
_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS intake_stage ("
    + ", ".join(f"{c} INTEGER PRIMARY KEY" if c == "seq" else c for c in STAGE_COLUMNS)
    + ", event_id INTEGER, old_status TEXT, new_id INTEGER)"
)
_STAGE_INSERT = (
    f"INSERT INTO temp.intake_stage ({', '.join(STAGE_COLUMNS)}) VALUES ({', '.join('?' * len(STAGE_COLUMNS))})"
)
_UID, _LOG, _LOG2, _SEQ = STAGE_INDEX["uid"], STAGE_INDEX["log_uid"], STAGE_INDEX["log2_uid"], STAGE_INDEX["seq"]


_analyzed: set[int] = set()


def _stage(conn, rows: list[tuple]) -> None:
    """Load rows (fresh seq numbers and ULIDs) into the temp stage, in a temp-only transaction."""
    n = len(rows)
    uids, logs, logs2 = ulids(n), ulids(n), ulids(n)
    out = []
    for k, r in enumerate(rows):
        r = list(r)
        r[_SEQ], r[_UID], r[_LOG], r[_LOG2] = k, uids[k], logs[k], logs2[k]
        out.append(r)
    conn.execute(_STAGE_DDL)
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        conn.execute("DELETE FROM temp.intake_stage")
        conn.executemany(_STAGE_INSERT, out)
        if id(conn) not in _analyzed and n:
            # statistics for the stage: without them the planner takes it for a million rows and
            # adds a Bloom filter to the duplicate search, built by scanning a whole events index
            conn.execute("ANALYZE temp.intake_stage")
            _analyzed.add(id(conn))
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _waves(rows: list[tuple]) -> list[list[tuple]]:
    """Split rows so that no external id occurs twice in a wave (later occurrences update the
    earlier ones, as if they came in a later file)."""
    ext = STAGE_INDEX["external_id"]
    waves: list[list[tuple]] = []
    seen: list[set] = []
    for r in rows:
        k = r[ext]
        for w, s in zip(waves, seen, strict=True):
            if k not in s:
                s.add(k)
                w.append(r)
                break
        else:
            waves.append([r])
            seen.append({k})
    return waves


# -- the set-based write ------------------------------------------------------------------------
_STAGE_TIMES = tuple(dict.fromkeys([*STAGE_COLUMN.values(), "deferred_at"]))


def _stage_case(col: str) -> str:
    states = [st for st, c in STAGE_COLUMN.items() if c == col] or (["deferred"] if col == "deferred_at" else [])
    cond = " OR ".join(f"s.status = '{st}'" for st in states)
    return f"CASE WHEN {cond} THEN s.stage_at END"


_DUE = "strftime('%Y-%m-%dT%H:%M:%S', substr(s.reported_at, 1, 19), '+{}') || '+08:00'"
_INSERT_SELECT: dict[str, str] = {
    "uid": "s.uid", "source": ":source", "external_id": "s.external_id", "category": "s.category",
    "class": "coalesce(c.class, 'ordinary')",
    "priority": "CASE c.class WHEN 'emergency' THEN 1 WHEN 'assigned' THEN 2 ELSE 3 END",
    "title": "s.title", "description": "s.description", "reporter_name": "s.reporter_name",
    "reporter_phone": "s.reporter_phone", "lon": "s.lon", "lat": "s.lat", "src_datum": "s.src_datum",
    "src_lon": "s.src_lon", "src_lat": "s.src_lat", "address": "s.address", "address_note": "s.address_note",
    "grid_id": "s.grid_id", "community_code": "s.community_code", "street_code": "s.street_code",
    "status": "s.status", "reported_at": "s.reported_at",
    **{c: _stage_case(c) for c in _STAGE_TIMES},
    "response_due_at": "CASE WHEN c.response_limit_min > 0 THEN "
    + _DUE.format("' || c.response_limit_min || ' minutes") + " END",
    "arrival_due_at": "CASE WHEN c.arrival_clock THEN " + _DUE.format("10 minutes") + " END",
    "handle_due_at": "s.handle_due_at", "source_code": "s.source_code", "source_status": "s.source_status",
    "needs_classification": "s.needs_classification", "version": "1",
    "rev": ":rev", "updated_at": "s.stage_at",
}  # fmt: skip
_UPDATE_SET: dict[str, str] = {
    "category": "excluded.category", "needs_classification": "excluded.needs_classification",
    "class": "CASE WHEN events.category = excluded.category THEN events.class ELSE excluded.class END",
    "priority": "CASE WHEN events.category = excluded.category THEN events.priority ELSE excluded.priority END",
    **{c: f"excluded.{c}" for c in ("title", "description", "reporter_name", "reporter_phone", "lon", "lat",
                                    "src_datum", "src_lon", "src_lat", "address", "address_note", "grid_id",
                                    "community_code", "street_code", "status", "source_code", "source_status")},
    **{c: f"coalesce(events.{c}, excluded.{c})" for c in _STAGE_TIMES},
    "version": "events.version + 1", "rev": "excluded.rev", "updated_at": ":now",
}  # fmt: skip
#: a source record differs from its event (source-owned columns only: the console's own progress,
#: classification and assignment are not compared); ``s`` is the staged record, ``e`` the event
_CHANGED = (
    "(e.title IS NOT s.title OR e.description IS NOT s.description OR e.reporter_name IS NOT s.reporter_name "
    "OR e.reporter_phone IS NOT s.reporter_phone OR e.address IS NOT s.address OR e.src_datum IS NOT s.src_datum "
    "OR e.src_lon IS NOT s.src_lon OR e.src_lat IS NOT s.src_lat "
    "OR (s.src_lon IS NULL AND (e.lon IS NOT s.lon OR e.lat IS NOT s.lat)) "
    "OR e.source_code IS NOT s.source_code OR e.source_status IS NOT s.source_status)"
)
_UPSERT = (
    f"INSERT INTO events ({', '.join(_INSERT_SELECT)}) "
    f"SELECT {', '.join(_INSERT_SELECT.values())} "
    "FROM temp.intake_stage s LEFT JOIN categories c ON c.code = s.category WHERE true ORDER BY s.seq "
    "ON CONFLICT(source, external_id) DO UPDATE SET "
    + ", ".join(f"{c} = {v}" for c, v in _UPDATE_SET.items())
    + " WHERE " + _CHANGED.replace("s.", "excluded.").replace("e.", "events.")
)
_COMPARED = ("category", "title", "description", "reporter_name", "reporter_phone", "lon", "lat", "address",
             "grid_id", "status", "source_code", "source_status")  # fmt: skip
# Events are looked up with correlated scalar subqueries, never with a join: for a join on
# ux_events_source_ext SQLite (≥ 3.38) builds a Bloom filter by scanning all of ``events`` once per
# statement — 55 µs per staged row on a 1M-event replica, against 1.5 µs for the subquery.
_MATCH_EXISTING = (
    "UPDATE temp.intake_stage SET event_id = (SELECT e.id FROM events e WHERE e.source = :source "
    "AND e.external_id = intake_stage.external_id)"
)
_EXISTING = (
    f"SELECT s.seq, s.event_id AS id, (SELECT {_CHANGED} FROM events e WHERE e.id = s.event_id) AS changed "
    "FROM temp.intake_stage s WHERE s.event_id IS NOT NULL"
)
_MATCH_NEW = (
    "UPDATE temp.intake_stage SET new_id = (SELECT e.id FROM events e WHERE e.source = :source "
    "AND e.external_id = intake_stage.external_id) WHERE event_id IS NULL"
)
_RANK = {"reported": 0, "accepted": 1, "returned": 2, "dispatched": 2, "acknowledged": 3, "deferred": 4,
         "on_site": 4, "handled": 5, "verified": 6, "closed": 7, "rejected": 7, "merged": 7}  # fmt: skip
_SUGGEST = (
    "INSERT OR IGNORE INTO merge_suggestions (event_id, other_id, distance_m, minutes, status, created_at, run_id) "
    "SELECT n.new_id, o.id, round(sqrt(((o.lon - n.lon) * :kx) * ((o.lon - n.lon) * :kx) "
    "+ ((o.lat - n.lat) * :ky) * ((o.lat - n.lat) * :ky)), 1), "
    "round(abs(julianday(o.reported_at) - julianday(n.reported_at)) * 1440, 1), 'open', :now, :run_id "
    "FROM temp.intake_stage n "
    "JOIN events o INDEXED BY ix_events_category_time ON o.category = n.category "
    "AND o.reported_at BETWEEN strftime('%Y-%m-%dT%H:%M:%S', substr(n.reported_at, 1, 19), '-2 hours') || '+08:00' "
    "AND strftime('%Y-%m-%dT%H:%M:%S', substr(n.reported_at, 1, 19), '+2 hours') || '+08:00' "
    "AND o.lat BETWEEN n.lat - :dlat AND n.lat + :dlat "
    "WHERE n.new_id IS NOT NULL AND o.id < n.new_id AND o.lon BETWEEN n.lon - :dlon AND n.lon + :dlon "
    "AND ((o.lon - n.lon) * :kx) * ((o.lon - n.lon) * :kx) + ((o.lat - n.lat) * :ky) * ((o.lat - n.lat) * :ky) <= :d2 "
    "AND o.status <> 'merged' AND o.drill_id IS NULL"
)


@dataclass
class _Run:
    id: int | None
    uid: str
    file: str
    sha: str
    size: int
    fmt: str
    source: str
    options: str
    actor: str
    next_item: int = 1
    counts: dict = field(default_factory=dict)


def _insert_run(conn, run: _Run, status: str) -> int:
    cur = conn.execute(
        "INSERT INTO import_runs (uid, file, file_sha256, file_size, format, source, options, actor, pid, started_at, "
        "status, next_item, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run.uid, run.file, run.sha, run.size, run.fmt, run.source, run.options, run.actor, os.getpid(),
         timeutil.now_iso(), status, run.next_item, orjson.dumps(run.counts).decode()),
    )  # fmt: skip
    return int(cur.lastrowid)


def _final_values(old: dict, new: dict) -> tuple[dict, dict]:
    """Final status/category of an updated event, and what changed (for the log payload). The
    console's progress wins: a status only moves forward, never out of a terminal state; an
    operator's classification (``needs_classification`` cleared) is kept."""
    old_status, new_status = old["status"], new["status"]
    status = old_status
    if old_status not in TERMINAL and new_status != old_status and _RANK.get(new_status, 0) > _RANK.get(old_status, 0):
        status = new_status
    vals: dict = {"status": status}
    if old["needs_classification"]:
        vals["category"], vals["needs_classification"] = new["category"], new["needs_classification"]
    else:
        vals["category"], vals["needs_classification"] = old["category"], 0
    changed = [c for c in _COMPARED if vals.get(c, new[c]) != old[c]]
    extra: dict = {"changed": changed}
    if new["source_status"] and new_status != status:
        extra["source_status_not_applied"] = new["source_status"]
    return vals, extra


class _Writer:
    """Writes prepared batches for one run; keeps the counts."""

    def __init__(self, replica, run: _Run, result: ImportResult) -> None:
        self.replica = replica
        self.run = run
        self.result = result
        self.lock = getattr(replica, "_lock", None) or contextlib.nullcontext()
        self._last: dict = {}
        self.exclude_quarantine_id: int | None = None  # the row a resubmission resolves itself
        self._since_checkpoint = 0
        self.defer_fts = False  # new events' full-text rows come later (db.intake.fts_backlog)
        self.bulk = False  # a chunked run: bigger transactions, fewer checkpoints (see import_file)
        self._kpi: bool | None = None

    def write(self, preps: list[Prepared], *, final: bool, next_item: int, update_run: bool = True,
              also: Callable | None = None) -> float:  # fmt: skip
        """One write transaction for ``preps``; returns its duration in seconds. ``also(conn)`` runs
        last inside the same transaction (quarantine resubmission marks its row there)."""
        rows = [r for p in preps for r in p.rows]
        waves = _waves(rows) if rows else []
        conn = self.replica.writer
        with self.lock:
            if waves:
                _stage(conn, waves[0])
            t0 = time.perf_counter()
            with self.replica.write(*TOPICS) as conn:
                if self.run.id is None:
                    self.run.id = _insert_run(conn, self.run, "running")
                    self.result.run_id = self.run.id
                    with _active_lock:
                        _active_runs.add(self.run.id)
                rev = self.replica.next_rev(conn)
                now = timeutil.now_iso()
                for k, wave in enumerate(waves):
                    if k:
                        _stage(conn, wave)
                    self._write_wave(conn, rev, now)
                for p in preps:
                    self._quarantine(conn, p, now)
                    if p.readings:
                        self._readings(conn, p.readings)
                self.result.records += sum(p.records for p in preps)
                if also is not None:
                    also(conn)
                if update_run:
                    self._update_run(conn, final, next_item, now)
            dt_s = time.perf_counter() - t0
        self.result.transactions += 1
        self.result.max_transaction_s = max(self.result.max_transaction_s, dt_s)
        self.result.transaction_s.append(dt_s)
        self._since_checkpoint += sum(len(p.rows) for p in preps)
        # ~3 KiB of WAL per event: about every 60 MiB; a bulk run less often (a page rewritten by
        # several chunks is copied into the database once)
        if self._since_checkpoint >= (BULK_CHECKPOINT_ROWS if self.bulk else CHECKPOINT_ROWS):
            self._since_checkpoint = 0
            _checkpoint(self.replica)
        return dt_s

    def _update_run(self, conn, final: bool, next_item: int, now: str) -> None:
        self.run.next_item = next_item
        self.run.counts = {k: self.run.counts.get(k, 0) + v for k, v in self._delta().items()}
        conn.execute(
            "UPDATE import_runs SET next_item = ?, counts = ?, status = ?, finished_at = ?, pid = ? WHERE id = ?",
            (next_item, orjson.dumps(self.run.counts).decode(), "complete" if final else "running",
             now if final else None, os.getpid(), self.run.id),
        )  # fmt: skip

    def _delta(self) -> dict:
        now = self.result.counts()
        prev = self._last or dict.fromkeys(now, 0)
        self._last = now
        return {k: now[k] - prev.get(k, 0) for k in now}

    def _write_wave(self, conn, rev: int, now: str) -> None:
        res = self.result
        conn.execute(_MATCH_EXISTING, {"source": self.run.source})
        existing = conn.execute(_EXISTING).fetchall()
        n_stage = conn.execute("SELECT count(*) FROM temp.intake_stage").fetchone()[0]
        updated: list[dict] = []
        changed = [r for r in existing if r["changed"]]
        unchanged = [r["seq"] for r in existing if not r["changed"]]
        if changed:
            seqs = orjson.dumps([r["seq"] for r in changed]).decode()
            stage_rows = {r["seq"]: dict(r) for r in conn.execute(
                "SELECT * FROM temp.intake_stage WHERE seq IN (SELECT value FROM json_each(?))", (seqs,))}
            by_id = {r["id"]: dict(r) for r in conn.execute(
                f"SELECT id, {', '.join(_COMPARED)}, needs_classification FROM events "
                "WHERE id IN (SELECT value FROM json_each(?))", (orjson.dumps([r["id"] for r in changed]).decode(),))}
            olds = {r["seq"]: by_id[r["id"]] for r in changed}  # fmt: skip
            for r in changed:
                s = stage_rows[r["seq"]]
                vals, extra = _final_values(olds[r["seq"]], s)
                extra.update(run=self.run.uid, line=s["line"])
                vals.update(old_status=olds[r["seq"]]["status"],
                            log_extra=orjson.dumps(extra).decode(), seq=r["seq"])  # fmt: skip
                updated.append(vals)
        if unchanged:
            conn.execute("DELETE FROM temp.intake_stage WHERE seq IN (SELECT value FROM json_each(?))",
                         (orjson.dumps(unchanged).decode(),))  # fmt: skip
        if updated:
            cols = [c for c in updated[0] if c != "seq"]
            conn.executemany(
                f"UPDATE temp.intake_stage SET {', '.join(f'{c} = :{c}' for c in cols)} WHERE seq = :seq", updated
            )
        created = n_stage - len(unchanged) - len(updated)
        res.unchanged += len(unchanged)
        res.updated += len(updated)
        res.created += created
        if created + len(updated) == 0:
            return
        if created:
            res.needs_classification += conn.execute(
                "SELECT count(*) FROM temp.intake_stage WHERE event_id IS NULL AND needs_classification = 1"
            ).fetchone()[0]
        fts_range = fts_backlog.open_range(conn, self.run.id) if created and self.defer_fts else None
        set_based = (created >= KPI_SET_BASED_MIN or (self.bulk and created)) and not updated and self._kpi_installed(conn)
        if set_based:
            # the KPI rollup triggers cost about half an event's insert: a bulk chunk that only
            # creates events drops them, adds the new events' contributions in one grouped pass and
            # re-creates them, all inside this transaction (a crash rolls the three back together)
            first_new = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            kpi_rollups.drop_triggers(conn)
        conn.execute(_UPSERT, {"rev": rev, "source": self.run.source, "now": now})
        if set_based:
            kpi_rollups.add_contributions(conn, "e.id > ?", (first_new,))
            kpi_rollups.create_triggers(conn)
        if fts_range is not None:
            fts_backlog.close_range(conn, fts_range)
        if created:
            conn.execute(_MATCH_NEW, {"source": self.run.source})
        actor, run_uid, file = self.run.actor, self.run.uid, self.run.file
        if created:
            conn.execute(
                "INSERT INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
                "SELECT s.log_uid, s.new_id, s.reported_at, :actor, 'report', NULL, 'reported', NULL, "
                "json_patch(json_object('source', :source, 'external_id', s.external_id, 'run', :run, "
                "'file', :file, 'line', s.line, 'datum', s.src_datum), coalesce(s.log_extra, '{}')) "
                "FROM temp.intake_stage s WHERE s.new_id IS NOT NULL ORDER BY s.seq",
                {"actor": actor, "run": run_uid, "file": file, "source": self.run.source},
            )
            conn.execute(
                "INSERT INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
                "SELECT s.log2_uid, s.new_id, s.stage_at, :actor, 'imported', 'reported', s.status, "
                "'来源状态 ' || coalesce(s.source_status, s.status), "
                "json_object('run', :run, 'source_status', s.source_status, 'arrived_in', s.status) "
                "FROM temp.intake_stage s WHERE s.new_id IS NOT NULL AND s.status <> 'reported' ORDER BY s.seq",
                {"actor": actor, "run": run_uid},
            )
            res.suggestions += conn.execute(
                _SUGGEST,
                {"kx": M_PER_DEG_LON, "ky": M_PER_DEG_LAT, "now": now, "run_id": self.run.id,
                 "dlat": DUP_DISTANCE_M / M_PER_DEG_LAT, "dlon": DUP_DISTANCE_M / M_PER_DEG_LON,
                 "d2": DUP_DISTANCE_M * DUP_DISTANCE_M, "source": self.run.source},
            ).rowcount  # fmt: skip
        if updated:
            conn.execute(
                "INSERT INTO event_log (uid, event_id, at, actor, action, from_status, to_status, note, payload) "
                "SELECT s.log_uid, s.event_id, :now, :actor, 'imported', s.old_status, s.status, "
                "'来源记录已更新 source record updated', s.log_extra "
                "FROM temp.intake_stage s WHERE s.event_id IS NOT NULL ORDER BY s.seq",
                {"now": now, "actor": actor},
            )
        self._resolve_quarantine(conn, now)

    def _kpi_installed(self, conn) -> bool:
        if self._kpi is None:
            self._kpi = kpi_rollups.installed(conn) and conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                (kpi_rollups.TRIGGER_PREFIX + "events_ai",)).fetchone() is not None  # fmt: skip
        return self._kpi

    def _resolve_quarantine(self, conn, now: str) -> None:
        """Open quarantine rows of records that have now come in fine are marked fixed."""
        if conn.execute("SELECT 1 FROM quarantine WHERE status = 'open' AND source = ? LIMIT 1",
                        (self.run.source,)).fetchone() is None:  # fmt: skip
            return
        conn.execute(
            "UPDATE quarantine SET status = 'fixed', resolved_at = :now, resolved_by = :actor, "
            "resolution_note = 'superseded: the record was imported by run ' || :run, "
            "event_id = (SELECT e.id FROM events e WHERE e.source = quarantine.source "
            "AND e.external_id = quarantine.external_id) "
            "WHERE status = 'open' AND source = :source AND external_id IN (SELECT external_id FROM temp.intake_stage) "
            "AND id IS NOT :exclude",
            {"now": now, "actor": self.run.actor, "run": self.run.uid, "source": self.run.source,
             "exclude": self.exclude_quarantine_id},
        )

    def _quarantine(self, conn, p: Prepared, now: str) -> None:
        if not p.quarantine:
            return
        res = self.result
        run = self.run
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO quarantine (run_id, file, file_sha256, item, line, format, source, external_id, raw, "
            "fields, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run.id, run.file, run.sha, q["item"], q["line"], run.fmt, run.source, q["external_id"], q["raw"],
              q["fields"], q["reason"], now) for q in p.quarantine],
        )  # fmt: skip
        res.quarantine_new += conn.total_changes - before
        res.quarantined += len(p.quarantine)
        for q in p.quarantine:
            kind = q["reason"].split(":", 1)[0]
            res.reasons[kind] += 1
            ex = res.examples.setdefault(kind, [])
            if len(ex) < 3:
                ex.append((q["line"], q["reason"]))

    def _readings(self, conn, readings: list[dict]) -> None:
        import numpy as np

        from db.intake.deadlines import iso_local

        at = iso_local(np.array([r["t"] for r in readings], dtype=np.int64))
        conn.executemany(
            "INSERT OR IGNORE INTO device_readings (device_uid, record_id, type, at, value, raw_value, valid, "
            "invalid_reason, is_alarm, event_ext_id, payload, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r["device_uid"], r["record_id"], r["type"], a, r["value"], r["raw_value"], r["valid"],
              r["invalid_reason"], r["is_alarm"], r["ext_id"], r["payload"], self.run.id)
             for r, a in zip(readings, at, strict=True)],
        )  # fmt: skip
        self.result.readings += len(readings)
        self.result.invalid_readings += sum(1 for r in readings if not r["valid"])
        conn.execute(
            "UPDATE device_readings SET event_id = (SELECT e.id FROM events e WHERE e.source = 'iot' "
            "AND e.external_id = device_readings.event_ext_id) "
            "WHERE event_id IS NULL AND event_ext_id IS NOT NULL"
        )


# -- the import ---------------------------------------------------------------------------------
IMPORT_CACHE_KIB = 262_144  # page cache of the writer connection during an import (256 MiB)
CHECKPOINT_ROWS = 20_000
BULK_CHECKPOINT_ROWS = 100_000
KPI_SET_BASED_MIN = 1_000  # a wave creating this many events (and updating none) adds its KPI contributions set-based
CANCELLED_FTS_BUDGET_S = 3.0  # a PASSIVE WAL checkpoint after this many imported records


@contextlib.contextmanager
def _big_cache(replica):
    """A bigger page cache on the writer connection while importing (the events table's ten
    indexes are updated at random places, and with the default 64 MiB they keep evicting each
    other), and no automatic WAL checkpoint inside COMMIT: the import
    checkpoints between its transactions (:func:`_checkpoint`, PASSIVE: it holds no write
    lock, other writers go on), so a chunk's write lock is not stretched by copying the WAL."""
    conn = replica.writer
    lock = getattr(replica, "_lock", None) or contextlib.nullcontext()
    with lock:
        before = conn.execute("PRAGMA cache_size").fetchone()[0]
        ckpt = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        with lock:
            conn.execute(f"PRAGMA cache_size = {int(before)}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(ckpt)}")
            _checkpoint(replica)


def _checkpoint(replica) -> None:
    """A PASSIVE WAL checkpoint between import transactions."""
    conn = replica.writer
    lock = getattr(replica, "_lock", None) or contextlib.nullcontext()
    with lock:
        if not conn.in_transaction:
            with contextlib.suppress(Exception):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: a bulk import allocates millions of short-lived
    containers, and generational collections triggered by them cost more than the parsing (the
    objects are freed by reference counting anyway)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()



def _catch_up_fts(replica, result: ImportResult, report: Progress, cancel, *, target_s: float | None = None) -> None:
    """Index the new events' text (ours and any a killed import left pending), in short
    transactions. A cancelled import spends at most :data:`CANCELLED_FTS_BUDGET_S` on it;
    cancelling during the catch-up stops it. The rest is done by the next import."""
    c = replica.reader()
    try:
        todo = fts_backlog.pending(c)
    finally:
        c.close()
    if not todo:
        return
    t0 = time.perf_counter()

    def step(done: int) -> None:
        report(0.95 + 0.05 * min(done / todo, 1.0), f"全文索引 text index {done:,}/{todo:,}; {result.summary()}")

    stopped = cancel is not None and cancel.is_set()  # cancelled: index what it can in a few seconds
    n, txns, longest = fts_backlog.catch_up(replica, progress=step, cancel=None if stopped else cancel,
                                           checkpoint=lambda: _checkpoint(replica), target_s=target_s,
                                           budget_s=CANCELLED_FTS_BUDGET_S if stopped else None)
    result.fts_indexed += n
    result.fts_s += time.perf_counter() - t0
    result.fts_max_transaction_s = max(result.fts_max_transaction_s, longest)


def _next_batch(records: int, secs: float, *, bulk: bool) -> int:
    """The next chunk's size from the last one's speed: about :data:`TARGET_TXN_S` per
    transaction (:data:`BULK_TARGET_TXN_S`, up to :data:`BULK_MAX_BATCH` records, for a bulk run)."""
    rate = max(records, 1) / max(secs, 1e-3)
    if bulk:
        return int(min(BULK_MAX_BATCH, max(BULK_MIN_BATCH, rate * BULK_TARGET_TXN_S)))
    return int(min(MAX_BATCH, max(MIN_BATCH, rate * TARGET_TXN_S)))


def _resumable(conn, sha: str, fmt: str, options: str) -> dict | None:
    r = conn.execute(
        "SELECT * FROM import_runs WHERE file_sha256 = ? AND format = ? AND status IN ('running', 'failed') "
        "ORDER BY id DESC LIMIT 1",
        (sha, fmt),
    ).fetchone()
    if r is None or r["options"] != options:
        return None
    return dict(r)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def import_file(
    replica,
    path: str | os.PathLike,
    fmt: str,
    *,
    encoding: str | None = None,
    datum: str | None = None,
    actor: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    mapping: dict[str, str] | None = None,
    save_mapping: bool = True,
    window_s: int | None = None,
) -> ImportResult:
    """Import one feed file; see the module docstring. Raises :class:`ImportOptionError` for bad
    options, :class:`ImportFileError` when the file cannot be read as ``fmt`` (nothing imported),
    :class:`ImportBusy` when the same file is being imported elsewhere."""
    t_start = time.perf_counter()
    enc, default_datum = _check_options(fmt, encoding, datum)
    if not actor or not str(actor).strip():
        raise ImportOptionError("an actor is required (who runs the import)")
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    try:
        sha = sha256_file(path)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    source = SOURCES[fmt]
    opts = {"encoding": enc, "datum": default_datum, "mapping": mapping or None, "window_s": window_s}
    shown = [0.0]

    def report(frac: float, text: str) -> None:  # never backwards (reading runs ahead of writing)
        shown[0] = max(shown[0], min(frac, 1.0))
        if progress is not None:
            progress(shown[0], text)

    result = ImportResult()
    conn = replica.reader()
    try:
        try:
            feed = FeedFile(path, enc)
        except OSError as exc:
            raise ImportFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
        result.encoding = feed.encoding
        try:
            reader = _reader(fmt, feed, conn, mapping, window_s or 600)
        except FormatError as exc:
            feed.close()
            raise ImportFileError(f"{path}: {exc}") from None
        labels = getattr(reader, "labels", {})
        ctx = _context(replica, conn, source, fmt, labels, default_datum)
        if getattr(reader, "header", None) is not None:
            opts["header"] = reader.header  # lets a quarantined line be re-read on resubmission
            opts["delimiter"] = reader._delimiter
        options = orjson.dumps(opts, option=orjson.OPT_SORT_KEYS).decode()
        prev = _resumable(conn, sha, fmt, options)
    finally:
        conn.close()
    run = _Run(None, ulids(1)[0], str(path.name), sha, path.stat().st_size, fmt, source, options, str(actor))
    skip_before = 1
    if prev is not None:
        with _active_lock:
            busy = prev["id"] in _active_runs
        if busy or (prev["pid"] != os.getpid() and _pid_alive(prev["pid"]) and prev["status"] == "running"):
            feed.close()
            raise ImportBusy(f"{path}: run {prev['uid']} is importing this file right now (pid {prev['pid']})")
        run.id, run.uid, run.next_item = prev["id"], prev["uid"], prev["next_item"]
        run.counts = orjson.loads(prev["counts"] or "{}")
        result.run_id, result.run_uid = run.id, run.uid
        result.resumed_from = run.next_item
        if fmt != "iot-jsonl":
            skip_before = run.next_item
            result.skipped = run.next_item - 1
        with _active_lock:
            _active_runs.add(run.id)
        log.info("resuming import run %s of %s at record %d", run.uid, path.name, run.next_item)
    result.run_uid = run.uid
    writer = _Writer(replica, run, result)
    if mapping and save_mapping and fmt == "12345-csv":
        with replica.write("column_mappings") as wconn:
            mappings.save_column_map(wconn, fmt, mapping, actor=str(actor))

    held: list[Prepared] = []
    held_records = 0  # records read but not yet written (the single-transaction file, until it grows too big)
    chunked = writer.bulk = prev is not None
    reader.batch_size = BULK_MAX_BATCH if chunked else FIRST_BATCH
    writer.defer_fts = True
    read_frac = 0.0

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    def written(note: str = "") -> None:
        # the position in the file, scaled back by what is read but not yet written
        done = result.records / max(result.records + held_records, 1)
        report(0.95 * read_frac * done, f"{result.records:,} 条记录已写入 records written{note}; {result.summary()}")

    batches = prefetched(reader.batches(skip_before=skip_before))  # read ahead in a thread
    try:
        with gc_paused(), _big_cache(replica):
            for raw in batches:
                prep = prepare(raw, ctx)
                read_frac = feed.fraction
                if chunked:
                    if cancelled():
                        result.status = "cancelled"
                        break
                    secs = writer.write([prep], final=False, next_item=max(prep.last_item + 1, run.next_item))
                    reader.batch_size = _next_batch(prep.records, secs, bulk=writer.bulk)
                    written()
                    continue
                held.append(prep)
                held_records += prep.records
                if held_records > SINGLE_TRANSACTION_MAX:
                    # too big for one transaction: from now on the run commits in chunks
                    chunked = writer.bulk = True
                    limit = FIRST_BATCH  # the held batches, in transactions sized as the chunks are
                    while held:
                        if cancelled():
                            result.status = "cancelled"
                            break
                        group = [held.pop(0)]
                        while held and sum(p.records for p in group) + held[0].records <= limit:
                            group.append(held.pop(0))
                        n = sum(p.records for p in group)
                        held_records -= n
                        secs = writer.write(group, final=False, next_item=group[-1].last_item + 1)
                        limit = _next_batch(n, secs, bulk=True)
                        written()
                    reader.batch_size = limit
                    held, held_records = [], 0
                    if result.status == "cancelled":
                        break
                    continue
                if cancelled():
                    result.status = "cancelled"
                    break
                report(0.5 * read_frac, f"{held_records:,} 条记录已读取 records read; 待一次写入 to write in one transaction")
            if result.status != "cancelled":
                if cancelled() and not chunked:
                    result.status = "cancelled"
                else:
                    if held_records:
                        report(0.85, f"写入 {held_records:,} 条记录 writing {held_records:,} records in one transaction…")
                    writer.write(held, final=True, next_item=getattr(reader, "total_items", 0) + 1)
                    held, held_records = [], 0
                    written()
            _catch_up_fts(replica, result, report, cancel, target_s=BULK_TARGET_TXN_S if writer.bulk else None)
    except BaseException as exc:
        if run.id is not None and chunked and not isinstance(exc, KeyboardInterrupt | SystemExit):
            with contextlib.suppress(Exception), replica.write("import_runs") as wconn:
                wconn.execute("UPDATE import_runs SET status = 'failed', error = ? WHERE id = ? AND status = 'running'",
                              (f"{type(exc).__name__}: {exc}", run.id))  # fmt: skip
        if isinstance(exc, FormatError):  # found while reading (an empty or non-JSON document): the file's fault
            done = (f" after {result.records:,} records committed (run {run.uid} stays incomplete)"
                    if chunked and result.records else "; nothing imported")  # fmt: skip
            raise ImportFileError(f"{path}: {exc}{done}") from None
        raise
    finally:
        batches.close()  # stops the reading thread before the file is closed
        feed.close()
        if run.id is not None:
            with _active_lock:
                _active_runs.discard(run.id)
    result.elapsed_s = time.perf_counter() - t_start
    report(1.0, ("已取消 cancelled: " if result.status == "cancelled" else "完成 done: ") + result.summary())
    return result
