"""A/B of the intake write path: the same imports with two versions of the code, one after the
other, on fresh copies of the 100k demo replica, so the machine's load (2 CPUs shared) hits both.

    git archive <old-commit> | tar -x -C /tmp/old
    (cd /tmp/old && python /work/wt4/bench/intake_ab.py old)
    python bench/intake_ab.py new

Imports ``hotline-12345-50000.csv`` (one transaction) then ``hotline-12345-200000.csv`` (chunked)
from ``bench/.data`` and prints rows/s, transactions, the longest write lock and the load average.
The code under test is the one in the current directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())
DATA = Path(__file__).resolve().parent / ".data"


def main() -> None:
    from db.intake import import_file
    from db.replica import open_replica

    tag = sys.argv[1] if len(sys.argv) > 1 else "run"
    db = Path(f"/tmp/ab-{tag}.db")
    for p in Path("/tmp").glob(f"ab-{tag}.db*"):
        p.unlink()
    shutil.copy(DATA / "demo-100000.db", db)
    r = open_replica(db)
    for f in ("hotline-12345-50000.csv", "hotline-12345-200000.csv"):
        t = time.perf_counter()
        res = import_file(r, DATA / f, "12345-csv", actor="ab")
        el = time.perf_counter() - t
        tl = sorted(getattr(res, "transaction_s", []) or [res.max_transaction_s])
        print(f"{tag} {f}: {res.records / el:,.0f} rows/s ({el:.1f} s), {res.transactions} txns, "
              f"max {res.max_transaction_s:.2f} s, median {tl[len(tl) // 2]:.2f} s, "
              f"fts {getattr(res, 'fts_s', 0):.1f} s; {res.summary()}; load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    r.close()
    for p in Path("/tmp").glob(f"ab-{tag}.db*"):
        p.unlink()


if __name__ == "__main__":
    main()
