"""push_mutations: a batch in one call, the same rules as push_mutation, stopped at the first refusal."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg.types.json import Jsonb

from db.sync import upstream
from db.sync.protocol import PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, fingerprint
from tests.sync.server_util import action_args, as_role, hello, one, pull, push, report_args, unique_role


def push_batch(conn, client: str, items: list[tuple[int, dict]], *, schema: int = SYNC_SCHEMA_VERSION,
               fps: dict[int, str] | None = None):  # fmt: skip
    batch = [{"mutation_id": m, "fingerprint": (fps or {}).get(m) or fingerprint(a), "args": a} for m, a in items]
    row = conn.execute("SELECT onemap.push_mutations(%s, %s, %s, %s)",
                       (client, PROTOCOL_VERSION, schema, Jsonb(batch))).fetchone()  # fmt: skip
    conn.commit()
    return row[0]


@pytest.fixture
def up(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        yield conn


def _chain(uid: str | None = None) -> list[dict]:
    """report → accept → dispatch → note of one event."""
    r = report_args(uid)
    uid = r["event_uid"]
    return [r, action_args(uid, "accept", "reported", "accepted", 1),
            action_args(uid, "dispatch", "accepted", "dispatched", 2, assignee_kind="department", assignee_code="D1"),
            action_args(uid, "note", "dispatched", "dispatched", 3, note="跟进")]  # fmt: skip


def test_a_batch_applies_in_order_with_gap_free_seqs_and_a_ledger_row_each(up):
    items = list(enumerate(_chain() + _chain(), start=1))
    outs = push_batch(up, "C1", items)
    assert [o["status"] for o in outs] == ["applied"] * 8
    assert [o["server_seq"] for o in outs] == list(range(1, 9))
    assert [o["version"] for o in outs] == [1, 2, 3, 4] * 2
    assert one(up, "SELECT count(*) FROM onemap.ledger WHERE client_id = 'C1'") == 8
    assert one(up, "SELECT last_mutation_id FROM onemap.clients WHERE client_id = 'C1'") == 8
    assert one(up, "SELECT array_agg(server_seq ORDER BY server_seq) FROM onemap.changes") == list(range(1, 9))
    assert [c["data"]["log"]["action"] for c in pull(up, "P", 0)["changes"]] == ["report", "accept", "dispatch", "note"] * 2
    # the same batch again (a lost reply): the ledger answers, nothing is added
    assert push_batch(up, "C1", items) == outs
    assert one(up, "SELECT count(*) FROM onemap.event_log") == 8
    # single pushes and batches share one ledger
    assert push(up, "C1", 3, items[2][1]) == outs[2]


def test_the_batch_stops_at_the_first_refusal(up):
    good = _chain()
    uid = good[0]["event_uid"]
    bad = action_args(uid, "close", "dispatched", "closed", 3)  # not in the lifecycle
    later = action_args(uid, "note", "dispatched", "dispatched", 3, note="after the refusal")
    other = report_args()
    items = [(1, good[0]), (2, good[1]), (3, good[2]), (4, bad), (5, later), (6, other)]
    outs = push_batch(up, "C1", items)
    assert [o["status"] for o in outs] == ["applied", "applied", "applied", "rejected"]
    assert outs[3]["code"] == "illegal_transition" and outs[3]["server_state"]["event"]["status"] == "dispatched"
    assert one(up, "SELECT max(mutation_id) FROM onemap.ledger WHERE client_id = 'C1'") == 4
    assert one(up, "SELECT count(*) FROM onemap.events") == 1
    # the desk handled the refusal (5 depends on 4, refused locally) and sends what follows
    outs2 = push_batch(up, "C1", [(6, other)])
    assert outs2 == [{"status": "applied", "server_seq": 4, "version": 1}]


def test_a_client_conflict_stops_the_batch_and_is_not_stored(up):
    a, b = report_args(), report_args()
    push(up, "C1", 1, a)
    outs = push_batch(up, "C1", [(1, b), (2, report_args())])
    assert [o["status"] for o in outs] == ["client_conflict"]
    assert one(up, "SELECT count(*) FROM onemap.ledger") == 1
    assert one(up, "SELECT count(*) FROM onemap.events") == 1


def test_an_error_undoes_only_that_mutation(up):
    first = report_args()
    outs = push_batch(up, "C1", [(1, first), (2, report_args())])
    assert [o["status"] for o in outs] == ["applied", "applied"]
    items = [{"mutation_id": 3, "fingerprint": "x", "args": report_args()},
             {"mutation_id": "not-a-number", "fingerprint": "y", "args": report_args()},
             {"mutation_id": 5, "fingerprint": "z", "args": report_args()}]  # fmt: skip
    outs = up.execute("SELECT onemap.push_mutations('C1', %s, %s, %s)",
                      (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, Jsonb(items))).fetchone()[0]  # fmt: skip
    up.commit()
    assert [o["status"] for o in outs] == ["applied", "error"]
    assert outs[1]["sqlstate"] == "22P02" and outs[1]["mutation_id"] == "not-a-number"
    assert one(up, "SELECT array_agg(mutation_id ORDER BY mutation_id) FROM onemap.ledger") == [1, 2, 3]
    assert one(up, "SELECT value FROM onemap.seq_counter") == 3  # no gap: the failed one took no seq
    # a failure after the mutation took its seq (a bad drill_id in the INSERT): the seq is given back
    bad = report_args(drill_id="not-an-integer")
    outs = push_batch(up, "C1", [(4, report_args()), (5, bad), (6, report_args())])
    assert [o["status"] for o in outs] == ["applied", "error"] and outs[0]["server_seq"] == 4
    assert one(up, "SELECT value FROM onemap.seq_counter") == 4
    assert push_batch(up, "C1", [(6, report_args())])[0]["server_seq"] == 5
    assert one(up, "SELECT array_agg(server_seq ORDER BY server_seq) FROM onemap.changes") == [1, 2, 3, 4, 5]
    assert one(up, "SELECT last_mutation_id FROM onemap.clients WHERE client_id = 'C1'") == 6


def test_versions_and_bad_input_answer_an_object(up):
    out = push_batch(up, "C1", [(1, report_args())], schema=SYNC_SCHEMA_VERSION - 1)
    assert [o["status"] for o in out] == ["applied"]  # the previous schema version is accepted
    out = push_batch(up, "C1", [(2, report_args())], schema=SYNC_SCHEMA_VERSION + 1)
    assert out["ok"] is False and out["reason"] == "version"
    out = up.execute("SELECT onemap.push_mutations('C1', %s, %s, %s)",
                     (PROTOCOL_VERSION, SYNC_SCHEMA_VERSION, Jsonb({"not": "a list"}))).fetchone()[0]  # fmt: skip
    up.rollback()
    assert out["ok"] is False and out["reason"] == "bad_request"
    assert push_batch(up, "C1", []) == []


def test_a_desk_role_may_call_it_and_its_scope_is_checked(pg_dsn):
    upstream.init_upstream(pg_dsn)
    role = unique_role()
    upstream.add_desk(pg_dsn, role, "pw", street="320613001")
    with psycopg.connect(as_role(pg_dsn, role, "pw")) as desk:
        assert hello(desk, "D1")["push_batch"] is True
        outs = push_batch(desk, "D1", [(1, report_args(street="320613001")), (2, report_args(street="320613002")),
                                       (3, report_args(street="320613001"))])  # fmt: skip
        assert [o["status"] for o in outs] == ["applied", "rejected"] and outs[1]["code"] == "scope"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            desk.execute("SELECT onemap.apply_mutation('D1', 9, 1, 'x', '{}'::jsonb, NULL, NULL, true)")


def test_concurrent_batches_and_single_pushes_keep_seq_gap_free_in_commit_order(pg_dsn):
    """Batches and single pushes on the same events at once: no deadlock, no gap, seq = commit order."""
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        uids = []
        for i in range(1, 7):
            a = report_args()
            push(conn, "SETUP", i, a)
            uids.append(a["event_uid"])
    errors: list[BaseException] = []
    received: list[int] = []
    stop = threading.Event()

    def batcher(n: int) -> None:
        try:
            with psycopg.connect(pg_dsn) as c:
                m = 0
                for _ in range(8):
                    items = []
                    for uid in uids:
                        m += 1
                        items.append((m, action_args(uid, "note", "reported", "reported", 1, note=f"b{n}-{m}")))
                    outs = push_batch(c, f"B{n}", items)
                    assert [o["status"] for o in outs] == ["applied"] * len(items), outs
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def single(n: int) -> None:
        try:
            with psycopg.connect(pg_dsn) as c:
                for m in range(1, 25):
                    uid = uids[(m * 5) % len(uids)]
                    out = push(c, f"S{n}", m, action_args(uid, "note", "reported", "reported", 1, note="s"))
                    assert out["status"] == "applied", out
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def puller() -> None:
        cursor = 6
        with psycopg.connect(pg_dsn) as c:
            while not stop.is_set():
                page = pull(c, "PULLER", cursor, 1000)
                received.extend(ch["server_seq"] for ch in page["changes"])
                cursor = page["cursor"]

    threads = [threading.Thread(target=batcher, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=single, args=(n,)) for n in range(2)]
    p = threading.Thread(target=puller)
    p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    p.join()
    assert not errors, errors
    total = 6 + 3 * 8 * 6 + 2 * 24
    with psycopg.connect(pg_dsn) as conn:
        assert one(conn, "SELECT array_agg(server_seq ORDER BY server_seq) FROM onemap.changes") == list(range(1, total + 1))
        final = pull(conn, "PULLER", received[-1] if received else 6, 1000)
    received.extend(ch["server_seq"] for ch in final["changes"])
    assert received == list(range(7, total + 1))  # a puller missed nothing
