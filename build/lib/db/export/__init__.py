"""Exports of the replica in standard formats (Qt-free): GeoJSON, CSV, GeoPackage and Open311.

``export(replica_or_conn, fmt, out, ...)`` is the one entry point (the CLI's ``onemap export``
and the UI's worker both call it). It reads one consistent snapshot (a read transaction),
writes to a temp file next to ``out`` and renames it over ``out`` only when complete, so
``out`` is either the previous file or the whole new export — never half of one.

Rules, whatever the format:

- **Drill events** (``drill_id`` set) are left out unless ``include_drills``.
- **Personal fields** (``reporter_name``, ``reporter_phone``, ``reporter_id_no`` — every
  ``reporter_*`` column) are left out unless ``include_personal`` asks *and* the session's role
  allows it (:func:`personal_allowed`: district yes, street yes for its own street's events,
  wall/department/drill no). Asking without the right raises :class:`ExportRefused` (CLI exit 1)
  and appends the refusal to ``access_log`` when a ``Replica`` was given: an export that
  silently lacked the asked-for columns would be worse than a clear no.
- **Role visibility**: a street role exports only its street's events (``app.access``), a
  department role only the events dispatched to (or summoning) it; ``scope`` naming another
  street than a street role's own is refused.
- **Filters**: ``since`` (inclusive) and ``until`` (exclusive) on ``reported_at`` — text or
  datetime, naive = Asia/Shanghai; ``scope`` = a street code, applied to every layer.
  Time filters apply to events only.

Layers: GeoJSON and CSV ``events`` (default), ``grids`` or ``streets``; GeoPackage all of
``streets, communities, grids, neighbourhoods, places, roads, devices, events`` (or a
comma-separated subset; ``places`` = estates and landmarks as points, ``roads`` = the road
lines from the same table; ``people`` — staff positions and phones — is not exported);
Open311 events only.

Per format (details in each module): GeoJSON (``geojson``) RFC 7946, streamed feature by
feature; CSV (``csvout``) UTF-8 with BOM, ``lon``/``lat`` for events, label point + ``wkt``
for polygons, and a formula guard for Excel (text starting with ``= + - @`` gets a leading
apostrophe; GeoJSON, GeoPackage and Open311 keep all text verbatim); GeoPackage (``gpkg``)
OGC 1.3 with R-tree indexes, DATETIME in UTC as the spec requires; Open311 (``open311``)
GeoReport v2 service requests, times ISO 8601 with +08:00.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from db.export.core import (
    FORMATS,
    GPKG_LAYERS,
    LAYERS,
    SCAN_CACHE_KIB,
    TABULAR_LAYERS,
    ExportCancelled,
    ExportError,
    ExportRefused,
    ExportResult,
    ExportUsageError,
    Options,
    Progress,
    atomic_output,
    check_out_path,
    check_scope_code,
    layer_query,
    parse_time,
    personal_allowed,
    resolve_layers,
)

__all__ = [
    "FORMATS", "GPKG_LAYERS", "LAYERS", "TABULAR_LAYERS", "ExportCancelled", "ExportError",
    "ExportRefused", "ExportResult", "ExportUsageError", "export", "personal_allowed",
]  # fmt: skip


@contextlib.contextmanager
def _source(obj) -> Iterator[tuple[sqlite3.Connection, object, str]]:
    """``(connection, Replica or None, label)`` for a Replica (a new reader connection), a
    connection (used as it is) or a path (opened read-only). No transaction is opened here."""
    from db.replica import connect

    replica = None
    if isinstance(obj, sqlite3.Connection):
        conn, owned, label = obj, False, "replica"
    elif hasattr(obj, "reader"):
        replica = obj
        conn, owned, label = obj.reader(), True, str(getattr(obj, "path", "replica"))
    else:
        path = Path(obj)
        if not path.is_file():
            raise ExportError(f"{path}: no such replica file")
        try:
            conn = connect(path, readonly=True)
        except sqlite3.Error as exc:
            raise ExportError(f"{path}: cannot open the replica ({exc})") from exc
        owned, label = True, str(path)
    if owned:
        conn.execute(f"PRAGMA cache_size = -{SCAN_CACHE_KIB}")
    try:
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise ExportError(f"{label}: cannot read the replica ({exc})") from exc
        if found is None:
            raise ExportError(f"{label}: not a OneMap replica (no events table)")
        yield conn, replica, label
    finally:
        if owned:
            conn.close()


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction (one WAL snapshot) unless the caller already holds one."""
    began = False
    if not conn.in_transaction:
        conn.execute("BEGIN")
        began = True
    try:
        yield
    finally:
        if began and conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")


def _attachable(conn: sqlite3.Connection, label: str) -> tuple[sqlite3.Connection, bool]:
    """The GeoPackage is ATTACHed to the replica connection, which needs no open transaction;
    a caller's connection inside one is replaced by a new read-only connection to its file."""
    if not conn.in_transaction:
        return conn, False
    from db.replica import connect

    path = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
    if not path:
        raise ExportError(
            f"{label}: an in-memory connection inside a transaction cannot be exported to GeoPackage"
        )
    return connect(path, readonly=True), True


def _refuse(replica, session, reason: str) -> None:
    if replica is not None and hasattr(replica, "write"):
        from app.access import record_refusal

        with contextlib.suppress(sqlite3.Error):  # the refusal stands even if it cannot be logged
            record_refusal(replica, session, "export", None, reason)
    raise ExportRefused(reason)


def _authorize(replica, session, scope: str | None, include_personal: bool) -> None:
    role = getattr(session, "role", None) or "district"
    own = getattr(session, "scope", None)
    if role == "street":
        if not own:
            _refuse(replica, session, "街道角色未指定范围 the street role needs --scope CODE")
        if scope and scope != own:
            _refuse(
                replica, session,
                f"超出街道范围 street {scope} is outside your scope {own}; export your own street",
            )  # fmt: skip
    if include_personal:
        ok, reason = personal_allowed(session)
        if not ok:
            _refuse(replica, session, f"导出个人信息被拒绝 personal data export refused: {reason}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export(
    replica_or_conn,
    fmt: str,
    out,
    *,
    layer=None,
    since=None,
    until=None,
    scope: str | None = None,
    include_drills: bool = False,
    include_personal: bool = False,
    session=None,
    progress=None,
    cancel=None,
    lang: str | None = None,
    csv_formula_guard: bool = True,
    rtree: bool = True,
) -> ExportResult:
    """Export the replica to ``out`` in ``fmt`` (``geojson``, ``csv``, ``gpkg``, ``open311``).

    ``replica_or_conn``: a ``Replica`` (a reader connection is opened and closed; refusals are
    logged), an open ``sqlite3.Connection`` (left open), or a replica path (opened read-only).
    ``layer``: see the module docstring; ``None`` = events (GeoJSON/CSV/Open311), all (gpkg).
    ``session``: anything with ``role``/``scope`` (``app.state.Session``); ``None`` = district.
    ``progress(fraction, text)`` is called now and then; ``cancel`` (callable or ``Event``)
    stops the export with :class:`ExportCancelled`, leaving ``out`` untouched.
    ``lang`` ('zh'/'en') picks the label language (default: the session's, else 'zh').

    Raises :class:`ExportUsageError` (bad request), :class:`ExportRefused` (role),
    :class:`ExportCancelled` or :class:`ExportError` (cannot read or write).
    """
    from app.state import Session

    t0 = time.perf_counter()
    fmt = str(fmt or "").strip().lower()
    layers = resolve_layers(fmt, layer)
    since_iso, until_iso = parse_time(since, "since"), parse_time(until, "until")
    if since_iso and until_iso and since_iso >= until_iso:
        raise ExportUsageError(f"--since {since} is not before --until {until}")
    scope = (scope or "").strip() or None
    session = session if session is not None else Session()
    lang = lang or getattr(session, "lang", None) or "zh"
    out = Path(out).expanduser()
    check_out_path(out)

    counts: dict[str, int] = {}
    warnings: list[str] = []
    with _source(replica_or_conn) as (conn, replica, label):
        try:
            check_scope_code(conn, scope)
            _authorize(replica, session, scope, include_personal)
            opts = Options(
                fmt=fmt, layers=layers, since=since_iso, until=until_iso, scope=scope,
                include_drills=include_drills, include_personal=include_personal, session=session,
                lang=lang, csv_formula_guard=csv_formula_guard,
            )  # fmt: skip
            queries = [layer_query(conn, name, opts) for name in layers]
            prog = Progress(sum(q.count(conn) for q in queries), progress, cancel)
            prog.check()
        except sqlite3.DatabaseError as exc:
            raise ExportError(f"{label}: cannot read the replica ({exc})") from exc
        try:
            with atomic_output(out) as tmp:
                missing = _write(conn, fmt, queries, tmp, prog, opts, counts, rtree=rtree, label=label)
                _fsync(tmp)
        except (ExportError, ExportUsageError):
            raise
        except sqlite3.DatabaseError as exc:
            raise ExportError(f"export to {out} failed: {exc}") from exc
        except OSError as exc:
            raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    for name, n in missing.items():
        if n:
            warnings.append(f"{name}: {n:,} without coordinates (geometry left empty)")
    if "events" in layers:
        if not include_drills:
            warnings.append("drill events left out (--include-drills to add them)")
        if not include_personal:
            warnings.append("personal fields left out (--include-personal to add them)")
    result = ExportResult(
        path=out, format=fmt, counts=counts, warnings=warnings, elapsed_s=time.perf_counter() - t0
    )
    prog.finish(f"done: {result.total:,} records")
    return result


def _write(conn, fmt, queries, tmp: Path, prog: Progress, opts: Options, counts: dict, *, rtree: bool,
           label: str = "replica") -> dict:  # fmt: skip
    from db.export import csvout, geojson, gpkg, open311

    missing: dict[str, int] = {}
    if fmt == "gpkg":
        src, owned = _attachable(conn, label)
        try:
            w = gpkg.Writer(src, tmp, rtree=rtree)
            try:
                for q in queries:
                    counts[q.name], missing[q.name] = w.write_layer(q, prog)
                w.close()
            except BaseException:
                w.abort()
                raise
        finally:
            if owned:
                src.close()
        return missing
    q = queries[0]
    with _snapshot(conn):
        if fmt == "csv":
            with open(tmp, "x", encoding="utf-8-sig", newline="", buffering=1 << 20) as fh:
                counts[q.name], missing[q.name] = csvout.write(
                    conn, q, fh, prog, formula_guard=opts.csv_formula_guard
                )
            return missing
        with open(tmp, "xb", buffering=1 << 20) as fh:
            if fmt == "geojson":
                counts[q.name], missing[q.name] = geojson.write(conn, q, fh, prog)
            else:
                counts[q.name] = open311.write(conn, q, fh, prog, lang=opts.lang)
    return missing
