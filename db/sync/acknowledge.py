"""The operator acknowledges refused changes (``sync_refusals``, issue 9): one write transaction."""

from __future__ import annotations

from collections.abc import Iterable

from app import timeutil

TOPIC = "sync"


def acknowledge_refusals(replica, mutation_ids: Iterable[int] | None, *, actor: str, at: str | None = None) -> int:
    """Mark refusals acknowledged by ``actor`` (all unacknowledged ones when ``mutation_ids`` is None).

    A refusal already acknowledged keeps its first acknowledgement. Returns how many were marked."""
    if not actor or not str(actor).strip():
        raise ValueError("acknowledging a refusal needs the operator's name (actor)")
    at = at or timeutil.now_iso()
    ids = None if mutation_ids is None else sorted({int(m) for m in mutation_ids})
    if ids == []:
        return 0
    with replica.write(TOPIC) as conn:
        if ids is None:
            cur = conn.execute(
                "UPDATE sync_refusals SET acknowledged_by = ?, acknowledged_at = ? WHERE acknowledged_at IS NULL",
                (actor, at),
            )
            return cur.rowcount
        n = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            cur = conn.execute(
                "UPDATE sync_refusals SET acknowledged_by = ?, acknowledged_at = ? "
                f"WHERE acknowledged_at IS NULL AND mutation_id IN ({marks})",
                (actor, at, *chunk),
            )
            n += cur.rowcount
        return n
