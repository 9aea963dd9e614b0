"""Replica: migrations on temp files, backups, refusal of foreign/corrupt/newer files, audit log."""

import sqlite3

import pytest

from db import schema
from db.replica import ReplicaError, open_replica


def test_new_replica_is_migrated_in_wal(tmp_path):
    path = tmp_path / "r.db"
    rep = open_replica(path)
    assert rep.version == schema.SCHEMA_VERSION
    conn = rep.reader()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for t in ("streets", "communities", "grids", "neighbourhoods", "departments", "people", "devices",
              "events", "event_log", "drills", "categories"):
        assert t in names
    conn.close()
    rep.close()
    assert not (tmp_path / "r.db-wal").exists() or (tmp_path / "r.db-wal").stat().st_size == 0


def test_reopen_is_idempotent_and_keeps_data(tmp_path):
    path = tmp_path / "r.db"
    with open_replica(path) as rep, rep.write("meta") as c:
        c.execute("INSERT INTO meta VALUES ('k', 'v')")
    with open_replica(path) as rep:
        assert rep.meta("k") == "v"
        assert not list(tmp_path.glob("*.bak-v*"))


def test_older_schema_is_backed_up_before_migrating(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    with open_replica(path) as rep, rep.write() as c:
        c.execute("INSERT INTO meta VALUES ('k', 'v')")

    @schema.migrations(name="m999_test_extra")
    def extra(db):
        db.execute("CREATE TABLE extra_test (x INTEGER)")

    monkeypatch.setattr("db.replica.MIGRATION_NAMES", [*schema.MIGRATION_NAMES, "m999_test_extra"])
    try:
        with open_replica(path) as rep:
            assert rep.version == schema.SCHEMA_VERSION + 1
        backup = tmp_path / f"r.db.bak-v{schema.SCHEMA_VERSION}"
        assert backup.exists()
        b = sqlite3.connect(backup)
        assert b.execute("SELECT value FROM meta WHERE key='k'").fetchone()[0] == "v"
        assert "extra_test" not in {r[0] for r in b.execute("SELECT name FROM sqlite_master")}
        b.close()
    finally:
        schema.migrations._migrations.pop()


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "r.db"
    open_replica(path).close()
    c = sqlite3.connect(path)
    c.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('onemap', 'm500_future', 'x')")
    c.commit()
    c.close()
    before = path.read_bytes()
    with pytest.raises(ReplicaError, match="newer"):
        open_replica(path)
    assert path.read_bytes() == before


def test_non_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("this is not a database, 这不是数据库")
    before = path.read_bytes()
    with pytest.raises(ReplicaError) as err:
        open_replica(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == before


def test_corrupt_replica_is_refused_untouched(tmp_path):
    path = tmp_path / "r.db"
    with open_replica(path) as rep, rep.write() as c:
        c.executemany("INSERT INTO meta VALUES (?, ?)", [(f"k{i}", "x" * 500) for i in range(400)])
    data = bytearray(path.read_bytes())
    for i in range(4096, min(len(data), 40960)):
        data[i] = 0xA5
    path.write_bytes(bytes(data))
    with pytest.raises(ReplicaError) as err:
        open_replica(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == bytes(data)


def test_event_log_is_append_only(tmp_path):
    rep = open_replica(tmp_path / "r.db")
    with rep.write() as c:
        c.execute(
            "INSERT INTO events (id, uid, source, category, class, priority, title, status, reported_at, updated_at)"
            " VALUES (1, 'U1', 'manual', 'UNCLASSIFIED', 'ordinary', 3, 't', 'reported', 'x', 'x')"
        )
        c.execute(
            "INSERT INTO event_log (uid, event_id, at, actor, action, to_status) VALUES ('L1', 1, 'x', 'a', 'report', 'reported')"
        )
    conn = rep.reader()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE event_log SET note = 'changed'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM event_log")
    assert tuple(conn.execute("SELECT count(*), max(note) FROM event_log").fetchone()) == (1, None)
    conn.close()
    rep.close()


def test_write_rolls_back_on_error(tmp_path):
    rep = open_replica(tmp_path / "r.db")
    heard = []
    rep.on_commit(heard.append)
    with pytest.raises(RuntimeError):
        with rep.write("meta") as c:
            c.execute("INSERT INTO meta VALUES ('k', 'v')")
            raise RuntimeError("boom")
    assert rep.meta("k") is None
    assert heard == []
    with rep.write("meta") as c:
        c.execute("INSERT INTO meta VALUES ('k', 'v')")
    assert heard == [{"meta"}]
    rep.close()
