"""push_mutation: applied → one change row with a gap-free seq; retries, conflicts and refusals."""

from __future__ import annotations

import threading

import psycopg
import pytest

from db.sync import upstream
from db.sync.protocol import SYNC_SCHEMA_VERSION
from tests.sync.server_util import action_args, one, pull, push, report_args


@pytest.fixture
def up(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        yield conn


def test_applied_pushes_take_gap_free_seqs_and_one_change_row_each(up):
    outs = []
    for i in range(1, 6):
        a = report_args()
        outs.append(push(up, "C1", i, a))
    assert [o["status"] for o in outs] == ["applied"] * 5
    assert [o["server_seq"] for o in outs] == [1, 2, 3, 4, 5]
    assert all(o["version"] == 1 for o in outs)
    assert one(up, "SELECT count(*) FROM onemap.changes") == 5
    assert one(up, "SELECT array_agg(server_seq ORDER BY server_seq) FROM onemap.changes") == [1, 2, 3, 4, 5]
    assert one(up, "SELECT last_mutation_id FROM onemap.clients WHERE client_id = 'C1'") == 5
    assert one(up, "SELECT count(*) FROM onemap.ledger") == 5


def test_transition_bumps_the_server_version_and_writes_the_full_image(up):
    a = report_args()
    uid = a["event_uid"]
    push(up, "C1", 1, a)
    acc = action_args(uid, "accept", "reported", "accepted", 1, accepted_at="2026-11-25T09:05:00+08:00")
    out = push(up, "C1", 2, acc)
    assert out == {"status": "applied", "server_seq": 2, "version": 2}
    status, version, data, seq = up.execute(
        "SELECT status, version, data, server_seq FROM onemap.events WHERE uid = %s", (uid,)).fetchone()  # fmt: skip
    assert (status, version, seq) == ("accepted", 2, 2)
    assert data["accepted_at"] == "2026-11-25T09:05:00+08:00" and data["version"] == 2
    change = one(up, "SELECT data FROM onemap.changes WHERE server_seq = 2")
    assert change["event"]["status"] == "accepted" and change["log"]["uid"] == acc["log"]["uid"]
    assert change["log"]["server_seq"] == 2 and change["whistles"] == []


def test_retry_returns_the_stored_outcome_and_adds_nothing(up):
    a = report_args()
    first = push(up, "C1", 1, a)
    again = push(up, "C1", 1, a)
    assert again == first
    assert one(up, "SELECT count(*) FROM onemap.changes") == 1
    assert one(up, "SELECT count(*) FROM onemap.event_log") == 1
    # a refusal is stored too, and comes back the same
    bad = action_args(a["event_uid"], "close", "reported", "closed", 1)
    r1 = push(up, "C1", 2, bad)
    r2 = push(up, "C1", 2, bad)
    assert r1 == r2 and r1["status"] == "rejected" and r1["code"] == "illegal_transition"
    assert one(up, "SELECT count(*) FROM onemap.changes") == 1


def test_another_mutation_under_a_used_id_is_a_client_conflict(up):
    push(up, "C1", 1, report_args())
    other = report_args()
    out = push(up, "C1", 1, other)
    assert out["status"] == "client_conflict"
    assert one(up, "SELECT count(*) FROM onemap.events") == 1
    assert one(up, "SELECT count(*) FROM onemap.ledger") == 1  # not stored
    # the rotated client pushes it again under its new id
    assert push(up, "C2", 1, other)["status"] == "applied"


def _assert_rejected(up, out, code, *, server_status):
    assert out["status"] == "rejected" and out["code"] == code, out
    assert out["reason"]
    if server_status is None:
        assert out["server_state"] is None
    else:
        assert out["server_state"]["event"]["status"] == server_status
    assert "server_seq" not in out


def test_refusals_carry_the_server_state_and_take_no_seq(up):
    a = report_args(external_id="12345-001")
    uid = a["event_uid"]
    push(up, "C1", 1, a)
    push(up, "C1", 2, action_args(uid, "accept", "reported", "accepted", 1, external_id="12345-001"))
    # illegal transition (close from accepted)
    _assert_rejected(up, push(up, "C2", 1, action_args(uid, "close", "accepted", "closed", 2)),
                     "illegal_transition", server_status="accepted")  # fmt: skip
    # stale from_status: a second desk accepted offline too
    _assert_rejected(up, push(up, "C2", 2, action_args(uid, "accept", "reported", "accepted", 1)),
                     "stale_state", server_status="accepted")  # fmt: skip
    # duplicate (source, external_id) under another uid, and the same uid again
    _assert_rejected(up, push(up, "C2", 3, report_args(external_id="12345-001")), "duplicate", server_status=None)
    _assert_rejected(up, push(up, "C2", 4, report_args(uid)), "duplicate", server_status="accepted")
    # an overlay the lifecycle forbids in this state
    _assert_rejected(up, push(up, "C2", 5, action_args(uid, "evaluate", "accepted", "accepted", 2)),
                     "illegal_transition", server_status="accepted")  # fmt: skip
    # an event the server never saw
    _assert_rejected(up, push(up, "C2", 6, action_args("NOPE", "accept", "reported", "accepted", 1)),
                     "bad_request", server_status=None)  # fmt: skip
    assert one(up, "SELECT value FROM onemap.seq_counter") == 2
    assert one(up, "SELECT count(*) FROM onemap.changes") == 2
    assert one(up, "SELECT count(*) FROM onemap.ledger WHERE client_id = 'C2'") == 6
    assert one(up, "SELECT last_mutation_id FROM onemap.clients WHERE client_id = 'C2'") == 6
    # an overlay that is allowed: note, on any state
    assert push(up, "C2", 7, action_args(uid, "note", "accepted", "accepted", 2, note="x"))["status"] == "applied"


def test_concurrent_change_keeps_the_other_desks_columns(up):
    a = report_args()
    uid = a["event_uid"]
    push(up, "C1", 1, a)
    push(up, "C1", 2, action_args(uid, "accept", "reported", "accepted", 1, accepted_at="T1"))
    # desk 2 wrote a note offline on version 1 (its image still says reported)
    out = push(up, "C2", 1, action_args(uid, "note", "reported", "reported", 1, note="x"))
    assert out["status"] == "applied" and out["version"] == 3
    status, data = up.execute("SELECT status, data FROM onemap.events WHERE uid = %s", (uid,)).fetchone()
    assert status == "accepted" and data["status"] == "accepted" and data["accepted_at"] == "T1"


def test_previous_schema_version_accepted_older_refused(up):
    out = push(up, "OLD", 1, report_args(), schema=SYNC_SCHEMA_VERSION - 1)
    assert out["status"] == "applied"
    out = push(up, "OLDER", 1, report_args(), schema=SYNC_SCHEMA_VERSION - 2)
    assert out["ok"] is False and out["reason"] == "version"
    out = push(up, "NEWER", 1, report_args(), protocol=99)
    assert out["reason"] == "version"
    assert one(up, "SELECT count(*) FROM onemap.ledger") == 1


def test_same_log_row_under_a_new_client_id_is_not_applied_twice(up):
    """A replica restored from a backup rotates its id and re-pushes what the server already has."""
    a = report_args()
    first = push(up, "OLD-ID", 7, a)
    again = push(up, "NEW-ID", 1, a)
    assert again == first
    assert one(up, "SELECT count(*) FROM onemap.event_log") == 1


def test_concurrent_pushers_keep_server_seq_gap_free_and_in_commit_order(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as setup:
        uids = []
        for i in range(4):
            a = report_args()
            push(setup, "SETUP", i + 1, a)
            uids.append(a["event_uid"])
    errors: list[BaseException] = []
    commit_order: list[int] = []
    lock = threading.Lock()

    def desk(n: int) -> None:
        try:
            with psycopg.connect(pg_dsn) as conn:
                for m in range(1, 26):
                    # half the pushes fight over the same events, the others are new reports
                    args = report_args() if m % 2 else action_args(uids[m % 4], "note", "reported", "reported", 1, note=f"{n}/{m}")
                    out = push(conn, f"T{n}", m, args)
                    assert out["status"] == "applied", out
                    with lock:
                        commit_order.append(out["server_seq"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    stop = threading.Event()
    holes: list[tuple[int, int]] = []
    snapshots = [0]

    def reader() -> None:
        # commit order: whatever a reader sees at any moment is a prefix 1..max (what a puller relies on)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            while not stop.is_set():
                n, top = conn.execute("SELECT count(*), coalesce(max(server_seq), 0) FROM onemap.changes").fetchone()
                snapshots[0] += 1
                if n != top:
                    holes.append((n, top))

    received: list[int] = []

    def puller() -> None:
        # a replica pulling `server_seq > cursor` while the desks push never skips a row
        cursor = 4
        with psycopg.connect(pg_dsn) as conn:
            while not stop.is_set() or cursor < 154:
                page = pull(conn, "PULLER", cursor, 50)
                received.extend(ch["server_seq"] for ch in page["changes"])
                cursor = page["cursor"]

    threads = [threading.Thread(target=desk, args=(n,)) for n in range(6)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    pulling = threading.Thread(target=puller)
    pulling.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    pulling.join(timeout=60)
    assert not errors, errors
    assert received == list(range(5, 155))
    assert snapshots[0] > 0 and holes == []
    with psycopg.connect(pg_dsn) as conn:
        seqs = [r[0] for r in conn.execute("SELECT server_seq FROM onemap.changes ORDER BY server_seq")]
        assert seqs == list(range(1, 4 + 6 * 25 + 1))
        assert one(conn, "SELECT count(DISTINCT (client_id, mutation_id)) FROM onemap.event_log "
                         "WHERE client_id IS NOT NULL") == 4 + 150  # fmt: skip
    assert sorted(commit_order) == list(range(5, 155))


def test_an_inconsistent_mutation_is_a_bad_request(up):
    a = report_args()
    a["log"]["action"] = "accept"
    out = push(up, "C1", 1, a)
    assert out["status"] == "rejected" and out["code"] == "bad_request"
    b = report_args()
    b["event"]["status"] = "bogus"
    assert push(up, "C1", 2, b)["code"] == "bad_request"
    assert one(up, "SELECT count(*) FROM onemap.changes") == 0
