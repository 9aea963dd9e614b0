"""Deferred full-text indexing of imported events (``fts_pending``, migration m005).

The trigram index ``events_fts`` costs about as much as everything else an import writes
(≈ 90 µs per event for title, description and address). An import transaction therefore
registers the id range of the events it creates in ``fts_pending`` *before* inserting them; the
FTS triggers skip ids inside a pending range. After the import's transactions,
:func:`catch_up` indexes the pending ranges in short transactions (about
:data:`TARGET_S` each) and removes them. The events are visible at once; a search by text finds
them once caught up (seconds later). A killed import leaves its range pending: the next import,
or ``catch_up`` called by anyone, finishes it. Rows in a pending range are never half-indexed:
the triggers leave them alone, and ``catch_up`` indexes their current values.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app import timeutil

MAX_ID = 9_223_372_036_854_775_807
TARGET_S = 0.3
FIRST_SLICE, MIN_SLICE, MAX_SLICE = 2_000, 200, 50_000
CHECKPOINT_ROWS = 20_000


def open_range(conn, run_id: int | None) -> int:
    """Inside the import's write transaction, before the events are inserted: every id from
    the next one up is pending. Returns the range's row id for :func:`close_range`."""
    lo = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0]
    cur = conn.execute("INSERT INTO fts_pending (lo, hi, run_id, created_at) VALUES (?, ?, ?, ?)",
                       (lo, MAX_ID, run_id, timeutil.now_iso()))  # fmt: skip
    return int(cur.lastrowid)


def close_range(conn, rid: int) -> None:
    """After the inserts, in the same transaction: the range ends at the last event."""
    conn.execute("UPDATE fts_pending SET hi = (SELECT coalesce(max(id), 0) FROM events) WHERE id = ?", (rid,))
    conn.execute("DELETE FROM fts_pending WHERE id = ? AND hi < lo", (rid,))


def pending(conn) -> int:
    """Events ids still waiting for their full-text rows (an upper bound: ranges may have gaps)."""
    r = conn.execute("SELECT coalesce(sum(hi - lo + 1), 0) FROM fts_pending WHERE hi < ?", (MAX_ID,)).fetchone()
    return int(r[0])


def catch_up(replica, *, progress: Callable[[int], None] | None = None, cancel=None,
             checkpoint: Callable[[], None] | None = None, budget_s: float | None = None,
             target_s: float | None = None) -> tuple[int, int, float]:  # fmt: skip
    """Index every pending range, in transactions of about :data:`TARGET_S`. Returns
    (events indexed, transactions, longest transaction in seconds). A range left open by a
    killed import (``hi`` still at the maximum) is closed first. ``checkpoint()`` is called
    every :data:`CHECKPOINT_ROWS` events, between transactions (the import turns the automatic
    WAL checkpoint off). ``budget_s`` stops it after about that many seconds; ``target_s``
    replaces :data:`TARGET_S` (a bulk import's longer transactions)."""
    target = target_s or TARGET_S
    size = FIRST_SLICE
    done = txns = 0
    longest = 0.0
    since = 0
    start = time.perf_counter()
    while (cancel is None or not cancel.is_set()) and (budget_s is None or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        with replica.write("events") as conn:
            r = conn.execute("SELECT id, lo, hi FROM fts_pending ORDER BY lo LIMIT 1").fetchone()
            if r is None:
                break
            rid, lo, hi = r[0], r[1], r[2]
            if hi == MAX_ID:  # left open by a killed import (its transaction rolled back, or committed)
                hi = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            top = min(hi, lo + size - 1)
            n = conn.execute(
                "INSERT INTO events_fts (rowid, title, description, address) "
                "SELECT id, title, description, address FROM events WHERE id BETWEEN ? AND ?",
                (lo, top),
            ).rowcount
            if top >= hi:
                conn.execute("DELETE FROM fts_pending WHERE id = ?", (rid,))
            else:
                conn.execute("UPDATE fts_pending SET lo = ?, hi = ? WHERE id = ?", (top + 1, hi, rid))
        dt_s = time.perf_counter() - t0
        txns += 1
        longest = max(longest, dt_s)
        done += max(n, 0)
        since += max(n, 0)
        if checkpoint is not None and since >= CHECKPOINT_ROWS:
            since = 0
            checkpoint()
        rate = max(top - lo + 1, 1) / max(dt_s, 1e-3)
        size = int(min(MAX_SLICE, max(MIN_SLICE, rate * target)))
        if progress is not None:
            progress(done)
    return done, txns, longest
