"""Fixtures for the sync tests: one throwaway PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

import itertools

import pytest

from db.sync.pgtemp import PgUnavailable, TempPostgres

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server():
    """A loopback PostgreSQL cluster (run as the postgres user when we are root), fsync off."""
    try:
        server = TempPostgres().start()
    except PgUnavailable as exc:  # pragma: no cover - CI installs postgresql-15
        pytest.skip(str(exc))
    yield server
    server.destroy()


@pytest.fixture
def pg_dsn(pg_server) -> str:
    """The DSN (superuser) of a new, empty database for this test."""
    import psycopg

    name = f"onemap_t{next(_counter)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.dsn(dbname=name)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
