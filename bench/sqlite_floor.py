"""What SQLite itself costs on this machine for the writes that intake (issue 4) and sync pull
(issue 9) are made of: pure SQL on a copy of the 100k-event demo replica, no Python per row, every
trigger dropped. These are floors: no importer or pull can be faster than the statements it must run.

    .venv/bin/python bench/sqlite_floor.py [--rows 100000]

Rows:
- insert ``events`` rows (copies of demo rows with a new uid and external id, same report times:
  they land among the existing rows of every time-ordered index, as an import of the same period
  does), in transactions of 5,000 rows (the ~0.5 s chunk the intake issue asks for), 50,000 rows
  and all rows in one; with every index, and with only the two identity indexes (uid,
  source + external_id);
- the same copy without any index but the rowid (the table write alone);
- update 5,000 open events' status (an ``accept``: status, version, accepted_at, rev), and 5,000
  rows' un-indexed ``updated_at``: what one pulled transition costs at least.

CPU time (user + system) is what the machine load changes least; wall time is given too.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import demo_replica, write_table  # noqa: E402

TRIGGERS_OFF = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('events', 'event_log')"
SECONDARY = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND name LIKE 'ix_%'"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _open(src: Path, work: Path, name: str) -> sqlite3.Connection:
    path = work / name
    shutil.copyfile(src, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -262144")
    for (trigger,) in conn.execute(TRIGGERS_OFF).fetchall():
        conn.execute(f"DROP TRIGGER {trigger}")
    return conn


def _copy_sql(conn: sqlite3.Connection) -> str:
    cols = [r[1] for r in conn.execute("PRAGMA table_info(events)") if r[1] != "id"]
    new = {"uid": "uid || '-' || :k", "external_id": "'F' || :k || '-' || id", "source": "'floor'"}
    return (f"INSERT INTO events ({', '.join(cols)}) SELECT {', '.join(new.get(c, c) for c in cols)} "
            "FROM events WHERE source != 'floor' AND id > :after ORDER BY id LIMIT :n")  # fmt: skip


def insert_floor(src: Path, work: Path, rows: int, chunk: int, indexes: str) -> tuple[float, float]:
    """(CPU µs per row, wall µs per row) inserting ``rows`` copies in transactions of ``chunk``."""
    conn = _open(src, work, f"ins-{indexes}-{chunk}.db")
    try:
        if indexes != "all":
            for (name,) in conn.execute(SECONDARY).fetchall():
                conn.execute(f"DROP INDEX {name}")
        if indexes == "none":
            conn.execute("CREATE TABLE events_bare AS SELECT * FROM events WHERE 0")
        sql = _copy_sql(conn)
        if indexes == "none":
            sql = sql.replace("INSERT INTO events ", "INSERT INTO events_bare ")
        base = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        done, k, after = 0, 0, 0
        cpu0, t0 = _cpu(), time.perf_counter()
        while done < rows:
            n = min(chunk, rows - done, base)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, {"k": k, "after": after, "n": n})
            conn.execute("COMMIT")
            after = conn.execute("SELECT id FROM events WHERE source != 'floor' AND id > ? ORDER BY id LIMIT 1 OFFSET ?",
                                 (after, n - 1)).fetchone()  # fmt: skip
            after = after[0] if after else 0
            done += n
            k += 1
        return (_cpu() - cpu0) / rows * 1e6, (time.perf_counter() - t0) / rows * 1e6
    finally:
        conn.close()


def update_floor(src: Path, work: Path, n: int = 5000) -> dict[str, tuple[float, float]]:
    """CPU/wall µs per row for an accept-like status update and an un-indexed column update."""
    conn = _open(src, work, "upd.db")
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(events)") if r[1] != "id"]
        reset = {"status": "'reported'", "accepted_at": "NULL", "uid": "uid || '-u'",
                 "external_id": "'U-' || id", "source": "'floor'"}  # fmt: skip
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"INSERT INTO events ({', '.join(cols)}) SELECT {', '.join(reset.get(c, c) for c in cols)} "
                     f"FROM events ORDER BY id DESC LIMIT {2 * n}")  # fmt: skip
        conn.execute("COMMIT")
        ids = [r[0] for r in conn.execute("SELECT id FROM events WHERE source = 'floor' ORDER BY random()")]
        out = {}
        for label, sql, part in (
            ("status", "UPDATE events SET status = 'accepted', version = version + 1, "
                       "accepted_at = '2026-11-26T10:00:00+08:00', rev = rev + 1 WHERE id = ?", ids[:n]),
            ("updated_at", "UPDATE events SET updated_at = '2026-11-26T10:00:00+08:00' WHERE id = ?", ids[n:]),
        ):  # fmt: skip
            cpu0, t0 = _cpu(), time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, [(i,) for i in part])
            conn.execute("COMMIT")
            out[label] = ((_cpu() - cpu0) / len(part) * 1e6, (time.perf_counter() - t0) / len(part) * 1e6)
        return out
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    a = ap.parse_args(argv)
    src = demo_replica(100_000)
    work = Path(tempfile.mkdtemp(prefix="onemap-floor-"))
    rows: list[tuple[str, str, str]] = []

    def fmt(cpu: float, wall: float) -> str:
        return f"{cpu:.1f} µs CPU ({1e6 / cpu:,.0f} rows per CPU-second); wall {wall:.1f} µs"

    try:
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as c:
            n_idx = len(c.execute(SECONDARY).fetchall())
        for indexes, label in (("all", f"every index ({n_idx} secondary + 2 identity)"),
                               ("identity", "identity indexes only (uid; source, external_id)"),
                               ("none", "no index (a bare copy of the table)")):  # fmt: skip
            for chunk in (5_000, 50_000, a.rows):
                if indexes == "none" and chunk != 5_000:
                    continue
                cpu, wall = insert_floor(src, work, a.rows, chunk, indexes)
                rows.append((f"insert {a.rows:,} events, {label}, {chunk:,} rows per transaction", fmt(cpu, wall),
                             "≤ 20 µs per row for 50,000 rows/s (issue 4)"))  # fmt: skip
                print(rows[-1], flush=True)
                for p in work.glob("ins-*"):
                    p.unlink()
        upd = update_floor(src, work)
        rows.append(("update 5,000 events' status (an accept), every index", fmt(*upd["status"]),
                     "≤ 50 µs per change for 20,000 changes/s (issue 9)"))  # fmt: skip
        rows.append(("update 5,000 events' un-indexed updated_at", fmt(*upd["updated_at"]), "-"))
        print(rows[-2:], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    write_table("sqlite_floor", "SQLite floor: pure SQL writes on the 100k demo replica (issues 4 and 9)", rows,
                notes=f"Every trigger dropped; page cache 256 MiB; WAL, synchronous=NORMAL. Load at the end "
                      f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
