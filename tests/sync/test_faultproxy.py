"""The fault proxy in front of a real PostgreSQL: queries pass, a cut breaks them, heal restores them,
and a dropped reply loses the answer of a statement that did commit."""

from __future__ import annotations

import psycopg
import pytest

from db.sync.faultproxy import FaultProxy


def _port(dsn: str) -> int:
    return int(dict(kv.split("=", 1) for kv in dsn.split())["port"])


@pytest.fixture
def proxy(pg_dsn):
    with FaultProxy(_port(pg_dsn), seed=1) as p:
        yield p


def test_queries_pass_through(proxy, pg_dsn):
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
        assert conn.execute("SELECT 40 + 2").fetchone()[0] == 42
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 20000)")
        assert conn.execute("SELECT sum(x) FROM t").fetchone()[0] == 20000 * 20001 // 2
        big = conn.execute("SELECT string_agg(x::text, ',') FROM t").fetchone()[0]
        assert len(big) > 100_000  # a multi-chunk answer arrives whole
    assert proxy.stats.accepted == 1


def test_cut_breaks_open_and_new_connections_and_heal_restores(proxy, pg_dsn):
    dsn = proxy.dsn(pg_dsn)
    conn = psycopg.connect(dsn, autocommit=True)
    assert conn.execute("SELECT 1").fetchone()[0] == 1
    proxy.cut()
    assert proxy.is_cut
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    assert proxy.stats.refused >= 1
    proxy.heal()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT 2").fetchone()[0] == 2


def test_dropped_reply_after_commit(proxy, pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as direct:
        direct.execute("CREATE TABLE t (x int)")
    conn = psycopg.connect(proxy.dsn(pg_dsn), autocommit=True)  # handshake is never dropped
    proxy.drop_replies(1.0)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("INSERT INTO t VALUES (7)")
    conn.close()
    assert proxy.stats.dropped_replies == 1
    with psycopg.connect(pg_dsn, autocommit=True) as direct:  # the commit happened; only the answer was lost
        assert direct.execute("SELECT count(*) FROM t WHERE x = 7").fetchone()[0] == 1
    proxy.drop_replies(0.0)
    with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    with pytest.raises(ValueError):
        proxy.drop_replies(1.5)


def test_partial_drop_rate_loses_some_answers_only(proxy, pg_dsn):
    proxy.drop_replies(0.3)
    ok = lost = 0
    for _ in range(40):
        try:
            with psycopg.connect(proxy.dsn(pg_dsn), autocommit=True) as conn:
                conn.execute("SELECT 1").fetchone()
                ok += 1
        except psycopg.OperationalError:
            lost += 1
    assert ok > 0 and lost > 0
    assert proxy.stats.dropped_replies == lost
