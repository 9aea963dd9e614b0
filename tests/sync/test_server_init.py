"""upstream init: idempotent, rules generated from app.lifecycle, desks may only call the functions."""

from __future__ import annotations

import psycopg
import pytest

from app.lifecycle import OVERLAYS, STATES, TRANSITIONS, IllegalTransition, check_overlay
from db.sync import server_sql, upstream
from db.sync.protocol import PROTOCOL_VERSION, SYNC_SCHEMA_VERSION
from tests.sync.server_util import as_role, hello, one, push, report_args, unique_role


def test_init_twice_is_idempotent(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        push(conn, "C1", 1, report_args())
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        assert one(conn, "SELECT count(*) FROM onemap.events") == 1
        assert one(conn, "SELECT value FROM onemap.seq_counter") == 1
        assert one(conn, "SELECT count(*) FROM onemap.lifecycle") == len(server_sql.lifecycle_rows())


def test_generated_rules_equal_app_lifecycle(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        rows = set(conn.execute("SELECT from_status, action, to_status FROM onemap.lifecycle").fetchall())
        overlays = set(conn.execute("SELECT action, status FROM onemap.overlay_rules").fetchall())
    assert rows == {(s, a, t) for s, nxt in TRANSITIONS.items() for a, t in nxt.items()}
    expected = set()
    for action in OVERLAYS:
        for status in STATES:
            try:
                check_overlay(status, action)
                expected.add((action, status))
            except IllegalTransition:
                pass
    assert overlays == expected
    assert ("evaluate", "closed") in overlays and ("evaluate", "accepted") not in overlays
    assert ("whistle", "closed") not in overlays and ("note", "closed") in overlays


def test_a_desk_role_calls_the_functions_but_cannot_read_the_tables(pg_dsn):
    upstream.init_upstream(pg_dsn)
    role = unique_role()
    upstream.add_desk(pg_dsn, role, "pw-1", street="320613001")
    with psycopg.connect(as_role(pg_dsn, role, "pw-1")) as desk:
        for table in ("events", "ledger", "changes", "event_log", "desk_roles", "seq_counter"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                desk.execute(f"SELECT count(*) FROM onemap.{table}")
            desk.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            desk.execute("SELECT onemap.compact(30)")
        desk.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            desk.execute("SELECT onemap.delete_event('x')")
        desk.rollback()
        h = hello(desk, "DESK-1")
        assert h["ok"] and h["scope_street"] == "320613001" and h["server_last_mutation_id"] == 0
        assert push(desk, "DESK-1", 1, report_args(street="320613001"))["status"] == "applied"
        out = push(desk, "DESK-1", 2, report_args(street="320613002"))
        assert out["status"] == "rejected" and out["code"] == "scope"
        assert hello(desk, "DESK-1", 2)["server_last_mutation_id"] == 2
        assert set(desk.execute("SELECT onemap.content_hash()").fetchone()[0]) == {"events", "log"}
    with psycopg.connect(pg_dsn) as conn:
        assert one(conn, "SELECT role_name FROM onemap.clients WHERE client_id = 'DESK-1'") == role


def test_a_district_desk_and_an_unregistered_role(pg_dsn):
    upstream.init_upstream(pg_dsn)
    district = unique_role("district")
    upstream.add_desk(pg_dsn, district, "pw-2")
    with psycopg.connect(as_role(pg_dsn, district, "pw-2")) as desk:
        assert push(desk, "D1", 1, report_args(street="320613009"))["status"] == "applied"
    # a member of the desk group that this database does not know (roles are cluster-wide)
    stranger = unique_role("stranger")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {stranger} LOGIN PASSWORD 'pw-3' IN ROLE onemap_desktop")
    with psycopg.connect(as_role(pg_dsn, stranger, "pw-3")) as desk:
        out = hello(desk, "S1")
        assert out["ok"] is False and out["reason"] == "unknown_desk"
        assert push(desk, "S1", 1, report_args())["status"] == "unknown_desk"


def test_hello_reports_versions_and_refuses_old_clients(pg_dsn):
    upstream.init_upstream(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        h = hello(conn, "C1")
        assert h["ok"] and h["head"] == 0 and h["feed_floor"] == 0
        assert h["protocol"] == PROTOCOL_VERSION and h["schema"] == SYNC_SCHEMA_VERSION
        assert hello(conn, "C1", schema=SYNC_SCHEMA_VERSION - 1)["ok"] is True
        assert hello(conn, "C1", schema=SYNC_SCHEMA_VERSION - 2)["reason"] == "version"


def test_clear_errors(pg_dsn, pg_server):
    with pytest.raises(upstream.UpstreamError, match="not initialised"):
        upstream.server_content_hash(pg_dsn)
    with pytest.raises(upstream.UpstreamError, match="invalid upstream DSN"):
        upstream.init_upstream("nonsense-without-equals")
    with pytest.raises(upstream.UpstreamError, match="cannot reach"):
        upstream.init_upstream(pg_server.dsn(port=1))
    with pytest.raises(upstream.UpstreamError, match="role name"):
        upstream.add_desk(pg_dsn, "Robert'); DROP", "pw")
    with pytest.raises(ValueError, match="unsafe"):
        upstream.init_upstream(pg_dsn, unsafe=frozenset({"typo"}))
