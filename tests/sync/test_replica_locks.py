"""A second Replica on a file this process already has open must not drop the first one's locks.

Closing any descriptor of a file drops every POSIX lock the process holds on it. When
``open_replica`` read the header with open()/close(), the first Replica's SQLite locks were gone;
another process closing its connection then took itself for the last one and deleted the WAL under
the live writer (found by the fault campaign: "database disk image is malformed" in readers)."""

from __future__ import annotations

import os
import subprocess
import sys

from db.replica import open_replica

_OTHER_PROCESS = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1])\n"
    "c.execute('SELECT count(*) FROM meta').fetchall()\n"
    "c.close()\n"
)


def test_second_replica_keeps_the_wal_of_the_first(tmp_path):
    path = tmp_path / "r.db"
    first = open_replica(path)
    try:
        with first.write("meta") as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', '1')")
        wal = f"{path}-wal"
        inode = os.stat(wal).st_ino
        second = open_replica(path)  # the sync worker's replica beside the console's
        try:
            subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(path)], check=True, timeout=60)
            assert os.path.exists(wal) and os.stat(wal).st_ino == inode  # nobody deleted the live WAL
            with first.write("meta") as conn:
                conn.execute("UPDATE meta SET value = '2' WHERE key = 'probe'")
            out = subprocess.run([sys.executable, "-c", _OTHER_PROCESS.replace(
                "c.execute('SELECT count(*) FROM meta').fetchall()",
                "print(c.execute(\"SELECT value FROM meta WHERE key = 'probe'\").fetchone()[0])"), str(path)],
                check=True, timeout=60, capture_output=True, text=True)  # fmt: skip
            assert out.stdout.strip() == "2"
        finally:
            second.close()
    finally:
        first.close()
