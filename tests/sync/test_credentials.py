"""Desk passwords are kept in libpq's password file, not in the replica (db/sync/credentials.py)."""

from __future__ import annotations

import os
import stat

import psycopg
import pytest

from db.replica import open_replica
from db.sync import credentials
from db.sync.client import enable_sync, sync_state


@pytest.fixture
def passfile(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "pgpass"
    monkeypatch.setenv("PGPASSFILE", str(path))
    return path


def test_the_replica_remembers_the_upstream_without_its_password(demo_copy, passfile):
    rep = open_replica(demo_copy)
    try:
        enable_sync(rep, upstream="host=10.1.2.3 port=5433 dbname=onemap user=desk_a password='s3:cr\\\\et'")  # the password is s3:cr\\et
        stored = sync_state(rep.writer)["upstream"]
    finally:
        rep.close()
    assert "password" not in stored and "s3" not in stored
    assert "host=10.1.2.3" in stored and "user=desk_a" in stored
    assert passfile.read_text().splitlines() == ["10.1.2.3:5433:onemap:desk_a:s3\\:cr\\\\et"]
    assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
    # a second desk on the same machine, then a new password for the first: one line each
    credentials.store_upstream("postgresql://desk_b:pw-b@10.1.2.3:5433/onemap")
    credentials.store_upstream("host=10.1.2.3 port=5433 dbname=onemap user=desk_a password=new")
    assert sorted(passfile.read_text().splitlines()) == ["10.1.2.3:5433:onemap:desk_a:new",
                                                         "10.1.2.3:5433:onemap:desk_b:pw-b"]  # fmt: skip


def test_a_dsn_without_password_or_an_unwritable_file_is_kept_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "pgpass"))
    assert credentials.store_upstream("host=h dbname=d user=u") == "host=h dbname=d user=u"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("PGPASSFILE", str(blocker / "pgpass"))  # its parent is a file
    dsn = "host=h dbname=d user=u password=p"
    assert credentials.store_upstream(dsn) == dsn


def test_a_cloned_desk_connects_with_the_password_from_the_file(pg_dsn, demo_db, tmp_path, passfile):
    """End to end: clone with a password in the DSN, then sync with the remembered (stripped) DSN."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from db.sync import upstream
    from db.sync.client import SyncClient
    from db.sync.clone import clone_replica

    upstream.init_upstream(pg_dsn)
    upstream.seed_upstream(pg_dsn, demo_db)
    upstream.add_desk(pg_dsn, "desk_cred", "pw-cred")
    params = conninfo_to_dict(pg_dsn)
    params.update(user="desk_cred", password="pw-cred")
    clone_replica(tmp_path / "desk.db", make_conninfo(**params))
    rep = open_replica(tmp_path / "desk.db")
    try:
        assert "pw-cred" not in (sync_state(rep.writer)["upstream"] or "")
        report = SyncClient(rep).sync_once()
        assert report.online and report.error is None
    finally:
        rep.close()


def test_a_clone_remembers_the_desk_scope_and_hello_keeps_it(pg_dsn, demo_db, tmp_path, passfile):
    """The upstream says which street/department the desk role is limited to; the replica keeps it
    (sync_state.scope_street / scope_dept) so the console opens in that scope."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from db.sync import upstream
    from db.sync.client import SyncClient
    from db.sync.clone import clone_replica

    upstream.init_upstream(pg_dsn)
    upstream.seed_upstream(pg_dsn, demo_db)
    upstream.add_desk(pg_dsn, "desk_traffic", "pw-t", department="TRAFFIC")
    for scope in ({"department": "TRAFIC"}, {"street": "320613999"}):  # typos: refused, nothing created
        with pytest.raises(upstream.UpstreamError, match="reference data"):
            upstream.add_desk(pg_dsn, "desk_typo", "pw", **scope)
    with psycopg.connect(pg_dsn) as admin:
        assert admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'desk_typo'").fetchone() is None
    params = conninfo_to_dict(pg_dsn)
    params.update(user="desk_traffic", password="pw-t")
    clone_replica(tmp_path / "dept.db", make_conninfo(**params))
    rep = open_replica(tmp_path / "dept.db")
    try:
        st = sync_state(rep.writer)
        assert (st["scope_street"], st["scope_dept"]) == (None, "TRAFFIC")
        upstream.add_desk(pg_dsn, "desk_traffic", "pw-t", street="320613001")  # the admin re-scopes the role
        assert SyncClient(rep).sync_once().online
        st = sync_state(rep.writer)
        assert (st["scope_street"], st["scope_dept"]) == ("320613001", None)
    finally:
        rep.close()
