"""The quarantine (Qt-free): records an import could not take, one row each with the file, line, raw
content and exact reason; an operator fixes and re-submits them, or discards them with a reason.

History is kept in the row itself: ``status`` goes ``open`` → ``fixed`` (``event_id``, ``fixed_raw``,
``resolved_at``/``resolved_by``/``resolution_note``) or ``open`` → ``discarded`` (the reason in
``resolution_note``). A resolved row can no longer change and no row is ever deleted (triggers in
migration ``m004_intake``); a failed re-submission leaves the row open with ``last_error``.

Re-submission re-runs the same validation as the import, for that one record: either a corrected
raw text in the file's own format (a CSV line read with the file's header, a JSON object, an XML
``<request>``, a JSON line), or corrected canonical fields (``ext_id``, ``time``, ``content``,
``lon``, ``lat``, ``datum``, ``address``, ``code``, ``status`` …) laid over the fields stored with the
row. On success the event is created (or updated) with its log rows, in the same transaction
that marks the row fixed.
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from app import timeutil
from db.intake.records import FIELDS, batch_from_dicts

__all__ = ["QuarantineError", "Resubmitted", "list_quarantine", "counts", "get", "resubmit", "discard"]


class QuarantineError(ValueError):
    """A refused quarantine operation (the message is for the operator)."""


@dataclass(frozen=True)
class Resubmitted:
    quarantine_id: int
    event_id: int
    created: bool  # False: the record updated an existing event


def list_quarantine(conn: sqlite3.Connection, *, status: str | None = "open", run_id: int | None = None,
                    source: str | None = None, limit: int = 200, offset: int = 0) -> list[dict]:  # fmt: skip
    """Quarantine rows, newest first (``status=None``: all)."""
    where, params = [], []
    for col, value in (("status", status), ("run_id", run_id), ("source", source)):
        if value is not None:
            where.append(f"q.{col} = ?")
            params.append(value)
    sql = ("SELECT q.*, r.uid AS run_uid FROM quarantine q LEFT JOIN import_runs r ON r.id = q.run_id"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY q.id DESC LIMIT ? OFFSET ?")  # fmt: skip
    return [dict(r) for r in conn.execute(sql, (*params, limit, offset))]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute("SELECT status, count(*) FROM quarantine GROUP BY status")}


def get(conn: sqlite3.Connection, qid: int) -> dict:
    r = conn.execute("SELECT * FROM quarantine WHERE id = ?", (qid,)).fetchone()
    if r is None:
        raise QuarantineError(f"没有该隔离记录 no quarantine record #{qid}")
    return dict(r)


def _open_row(conn, qid: int) -> dict:
    row = get(conn, qid)
    if row["status"] != "open":
        raise QuarantineError(
            f"隔离记录 #{qid} 已处理 quarantine record #{qid} is already {row['status']} "
            f"(by {row['resolved_by']} at {row['resolved_at']})"
        )
    return row


def _batch_from_raw(row: dict, raw: str, options: dict, conn):
    """The record's batch by re-reading ``raw`` with the format's own reader."""
    from db.intake import pipeline
    from db.intake.textio import FeedFile

    fmt = row["format"]
    if fmt == "12345-csv":
        header = options.get("header")
        if not header:
            raise QuarantineError("the import run kept no CSV header; re-submit corrected fields instead")
        import csv

        buf = io.StringIO()
        csv.writer(buf, delimiter=options.get("delimiter") or ",").writerow(header)
        text = buf.getvalue() + raw.rstrip("\r\n") + "\n"
    elif fmt == "open311" and raw.lstrip().startswith("<"):
        text = f"<service_requests>{raw}</service_requests>\n"
    else:
        text = raw.rstrip("\r\n") + "\n"
    tmp = _scratch(text)
    try:
        feed = FeedFile(tmp, "utf-8")
        try:
            reader = pipeline._reader(fmt, feed, conn, options.get("mapping"), options.get("window_s") or 600)
            batches = list(reader.batches())
        finally:
            feed.close()
    finally:
        Path(tmp).unlink(missing_ok=True)
    batches = [b for b in batches if len(b)]
    if not batches or sum(len(b) for b in batches) != 1:
        raise QuarantineError("the corrected text must hold exactly one record")
    return batches[0], getattr(reader, "labels", {})


def _scratch(text: str) -> str:
    import tempfile

    fd, name = tempfile.mkstemp(prefix="onemap-quarantine-", suffix=".txt")
    with open(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return name


def _labels(fmt: str) -> dict:
    if fmt == "12345-csv":
        from db.intake.csv12345 import STANDARD_HEADERS

        return dict(STANDARD_HEADERS)
    if fmt == "open311":
        from db.intake.open311 import LABELS
    elif fmt == "citymgmt":
        from db.intake.citymgmt import LABELS
    else:
        from db.intake.iot_jsonl import LABELS
    return dict(LABELS)


def resubmit(replica, qid: int, *, actor: str, fixed_raw: str | None = None, fixed_fields: dict | None = None,
             note: str | None = None) -> Resubmitted:  # fmt: skip
    """Validate the record again (corrected ``fixed_raw`` or ``fixed_fields``; neither: as it is, e.g.
    after a gazetteer or mapping change) and import it. Raises :class:`QuarantineError` with the
    new reason when it still fails (the row stays open, with ``last_error``)."""
    from db.intake import pipeline
    from db.intake.prepare import STAGE_INDEX, prepare

    if not actor or not str(actor).strip():
        raise QuarantineError("缺少操作人 actor is required")
    conn = replica.reader()
    try:
        row = _open_row(conn, qid)
        run = conn.execute("SELECT * FROM import_runs WHERE id = ?", (row["run_id"],)).fetchone()
        run = dict(run) if run else None
        options = orjson.loads(run["options"]) if run and run["options"] else {}
        fmt = row["format"]
        if fixed_raw is not None:
            batch, labels = _batch_from_raw(row, fixed_raw, options, conn)
            batch.items, batch.lines = [row["item"] or 0], [row["line"] or 0]
        else:
            fields = orjson.loads(row["fields"]) if row["fields"] else {}
            fields.pop("_extra", None)
            unknown = set(fixed_fields or {}) - set(FIELDS)
            if unknown:
                raise QuarantineError(f"unknown field(s): {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
            fields.update(fixed_fields or {})
            raw = orjson.dumps(fields).decode()
            batch = batch_from_dicts([row["item"] or 0], [row["line"] or 0], [raw], [None], [fields])
            labels = _labels(fmt)
        ctx = pipeline._context(replica, conn, row["source"], fmt, labels, options.get("datum") or "WGS-84")
    finally:
        conn.close()
    prep = prepare(batch, ctx)
    if prep.quarantine or not prep.rows:
        reason = prep.quarantine[0]["reason"] if prep.quarantine else "the record produced no event"
        with replica.write("quarantine") as wconn:
            wconn.execute("UPDATE quarantine SET last_error = ? WHERE id = ? AND status = 'open'", (reason, qid))
        raise QuarantineError(reason)

    result = pipeline.ImportResult()
    prun = pipeline._Run(
        run["id"] if run else None, run["uid"] if run else f"quarantine-{qid}", row["file"] or "", row["file_sha256"] or "",
        0, fmt, row["source"], run["options"] if run else "{}", str(actor),
    )  # fmt: skip
    if prun.id is None:
        raise QuarantineError(f"quarantine record #{qid} has no import run")
    writer = pipeline._Writer(replica, prun, result)
    writer.exclude_quarantine_id = qid
    ext_id = prep.rows[0][STAGE_INDEX["external_id"]]
    done: dict = {}

    def mark(wconn) -> None:
        ev = wconn.execute("SELECT id FROM events WHERE source = ? AND external_id = ?",
                           (row["source"], ext_id)).fetchone()  # fmt: skip
        if ev is None:
            raise QuarantineError("the record was validated but no event was written")
        done["event_id"] = ev[0]
        text = (note or "").strip()
        resolution = "re-submitted" + (" with corrected text" if fixed_raw is not None else
                                       " with corrected fields " + ", ".join(sorted(fixed_fields or {})) if fixed_fields
                                       else " unchanged") + (f": {text}" if text else "")  # fmt: skip
        cur = wconn.execute(
            "UPDATE quarantine SET status = 'fixed', resolved_at = ?, resolved_by = ?, resolution_note = ?, "
            "fixed_raw = ?, event_id = ? WHERE id = ? AND status = 'open'",
            (timeutil.now_iso(), str(actor), resolution,
             fixed_raw if fixed_raw is not None else (orjson.dumps(fixed_fields).decode() if fixed_fields else None),
             ev[0], qid),
        )  # fmt: skip
        if cur.rowcount != 1:
            raise QuarantineError(f"quarantine record #{qid} was resolved meanwhile")

    with pipeline.gc_paused():
        writer.write([prep], final=False, next_item=0, update_run=False, also=mark)
    return Resubmitted(qid, done["event_id"], created=result.created == 1)


def discard(replica, qid: int, reason: str, *, actor: str) -> dict:
    """Discard a record for good, with the reason (kept in ``resolution_note``)."""
    reason = (reason or "").strip()
    if not reason:
        raise QuarantineError("丢弃须填写理由 discarding needs a reason")
    if not actor or not str(actor).strip():
        raise QuarantineError("缺少操作人 actor is required")
    with replica.write("quarantine") as conn:
        _open_row(conn, qid)
        conn.execute(
            "UPDATE quarantine SET status = 'discarded', resolved_at = ?, resolved_by = ?, resolution_note = ? "
            "WHERE id = ? AND status = 'open'",
            (timeutil.now_iso(), str(actor), reason, qid),
        )
        return get(conn, qid)
