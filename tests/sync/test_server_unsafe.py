"""The negative controls: the unsafe builds really break what the safe build guarantees."""

from __future__ import annotations

import threading

import psycopg

from db.sync import upstream
from tests.sync.server_util import action_args, one, pull, push, report_args


def test_no_ledger_applies_a_retried_mutation_twice(pg_dsn):
    upstream.init_upstream(pg_dsn, unsafe=frozenset({"no_ledger"}))
    with psycopg.connect(pg_dsn) as conn:
        a = report_args()
        push(conn, "C1", 1, a)
        note = action_args(a["event_uid"], "note", "reported", "reported", 1, note="x")
        push(conn, "C1", 2, note)
        push(conn, "C1", 2, note)  # the reply was lost: the desk sends it again
        assert one(conn, "SELECT count(*) FROM onemap.event_log WHERE client_id = 'C1' AND mutation_id = 2") == 2
        accept = action_args(a["event_uid"], "accept", "reported", "accepted", 3)
        assert push(conn, "C1", 3, accept)["status"] == "applied"
        again = push(conn, "C1", 3, accept)  # refused against its own first application
        assert again["status"] == "rejected" and again["code"] == "stale_state"
        assert one(conn, "SELECT value FROM onemap.meta WHERE key = 'unsafe'") == "no_ledger"


def test_bigserial_leaves_gaps_and_commits_out_of_order(pg_dsn):
    upstream.init_upstream(pg_dsn, unsafe=frozenset({"bigserial"}))
    with psycopg.connect(pg_dsn) as conn:
        a = report_args()
        push(conn, "SETUP", 1, a)
        push(conn, "SETUP", 2, action_args(a["event_uid"], "close", "reported", "closed", 1))  # refused: burns a value
        push(conn, "SETUP", 3, report_args())
        assert [r[0] for r in conn.execute("SELECT server_seq FROM onemap.changes ORDER BY 1")] == [1, 3]
    received: set[int] = set()
    stop = threading.Event()

    def desk(n: int) -> None:
        with psycopg.connect(pg_dsn) as c:
            for m in range(1, 31):
                push(c, f"T{n}", m, report_args())

    def puller() -> None:
        cursor = 3
        with psycopg.connect(pg_dsn) as c:
            while not stop.is_set():
                page = pull(c, "PULLER", cursor, 1000)
                received.update(ch["server_seq"] for ch in page["changes"])
                cursor = page["cursor"]

    threads = [threading.Thread(target=desk, args=(n,)) for n in range(6)]
    p = threading.Thread(target=puller)
    p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    p.join()
    with psycopg.connect(pg_dsn) as conn:
        committed = {r[0] for r in conn.execute("SELECT server_seq FROM onemap.changes WHERE server_seq > 3")}
    assert len(committed) == 180
    # the puller's `server_seq > cursor` skipped rows that committed after a larger seq
    assert committed - received, "no row was skipped; the control did not bite this time"
