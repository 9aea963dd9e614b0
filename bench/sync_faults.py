"""The sync fault campaign (issue 9): 17 desktop processes, each behind a fault proxy, one upstream.

    python bench/sync_faults.py --seed 1 [--replicas 17] [--seconds 20] [--rate 2]
                                [--unsafe no_ledger|bigserial] [--keep DIR]

Setup: a throwaway PostgreSQL (``db/sync/pgtemp.py``), ``init_upstream`` + ``seed_upstream`` from a
small demo replica, one clone copied to every desk (a fresh ``client_id`` each), one
:class:`~db.sync.faultproxy.FaultProxy` per desk, and ``bench/sync_desk.py`` processes writing
through the real use cases while their sync loops run.

Faults (seeded): random link cuts; 4 desks cut off for half the run; ``pg_ctl stop -m immediate``
and a restart; 2 % of replies dropped after commit; ``kill -9`` of one desk in the middle of a
push (then restarted on the same file); clocks at −1 h / 0 / +1 h; one desk on the previous sync
schema version. Then everything heals and the campaign waits for convergence.

Checks: 0 lost (every outbox row ends applied or rejected, and agrees with the server), 0
duplicated (server log rows == distinct (client, mutation) pairs), every event's server log is a
valid chain of transitions, no gaps in ``server_seq``, every replica's content hash == the
server's. Exit 0 when all pass. Results go to ``bench/results/sync_faults.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.lifecycle import OVERLAYS, IllegalTransition, check_overlay, next_status  # noqa: E402
from db.sync import protocol  # noqa: E402
from db.sync.faultproxy import FaultProxy  # noqa: E402
from db.sync.pgtemp import TempPostgres  # noqa: E402

DESK = ROOT / "bench" / "sync_desk.py"
DESK_ROLE, DESK_PASSWORD = "campaign_desk", "campaign-desk-pw"
CHECKS = ("lost", "duplicated", "chains", "seq_gaps", "content_hash")
CLOCK_OFFSETS = (-3600.0, 0.0, 3600.0)


@dataclass
class CampaignConfig:
    seed: int = 1
    replicas: int = 17
    seconds: float = 20.0  # writing time; faults happen inside it
    rate: float = 2.0  # writes per desk per second
    unsafe: frozenset[str] = frozenset()
    events: int = 400  # size of the demo replica the upstream is seeded from
    demo: Path | None = None  # an existing demo replica to seed from (else one is generated)
    workdir: Path | None = None
    keep: bool = False
    converge_timeout: float = 60.0
    long_cut: int = 4  # desks cut off for half the run
    drop_p: float = 0.02
    crash: bool = True
    kill: bool = True
    verbose: bool = True
    zygote: bool = True  # fork the desks from one warm process (False: a plain subprocess each)


@dataclass
class CampaignResult:
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    convergence_s: float | None = None
    stats: dict = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks.values())

    def failed(self) -> list[str]:
        return [name for name, (ok, _) in self.checks.items() if not ok]


# -- setup ------------------------------------------------------------------------------------------
def make_demo(path: Path, events: int, seed: int = 7) -> Path:
    """A small demo replica (seed 7 geography, ``events`` events over 10 days)."""
    from app.timeutil import parse
    from db.demo.generate import DemoOptions, generate_demo_file

    generate_demo_file(path, DemoOptions(seed=seed, events=events, days=10, until=parse("2026-11-25T18:00:00")),
                       force=True)  # fmt: skip
    return path


def _sync_state_set(path: Path, *, client_id: str, upstream: str, cursor: int) -> None:
    """Give a copied replica its own client id (``enable_sync`` when the clone left none)."""
    from db.replica import open_replica

    with sqlite3.connect(path) as conn:  # the usual case: a copy of an already migrated sync client
        has = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sync_state'").fetchone()[0] and \
            conn.execute("SELECT count(*) FROM sync_state").fetchone()[0]
        if has:
            conn.execute("UPDATE sync_state SET client_id = ?, upstream = ?", (client_id, upstream))
            return
    with open_replica(path, create=False) as replica:
        has = replica.writer.execute("SELECT count(*) FROM sync_state").fetchone()[0]
        if has:
            replica.writer.execute("UPDATE sync_state SET client_id = ?, upstream = ?", (client_id, upstream))
        else:
            from db.sync.client import enable_sync

            enable_sync(replica, upstream=upstream, client_id=client_id, cursor=cursor)


def _server_head(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return int(conn.execute("SELECT coalesce(max(server_seq), 0) FROM onemap.changes").fetchone()[0])


def clone_base(dsn_admin: str, desk_dsn: str, demo: Path, target: Path) -> str:
    """One replica cloned from the upstream (``db.sync.clone``); falls back to a copy of the
    seed file (same content) when the clone module is not there yet. Returns how."""
    try:
        from db.sync import clone as clone_mod
    except ImportError:
        clone_mod = None
    fn = None
    if clone_mod is not None:
        fn = getattr(clone_mod, "clone_replica", None) or getattr(clone_mod, "clone", None)
    why = "no db.sync.clone yet"
    if fn is not None:
        try:
            fn(target, desk_dsn)
            return "clone"
        except Exception as exc:  # noqa: BLE001 - reported; the campaign is about the sync loop
            why = f"clone failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            for p in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                p.unlink(missing_ok=True)
    shutil.copyfile(demo, target)
    return f"copy of the seed file ({why})"


def durable_commits(pg: TempPostgres) -> None:
    """``synchronous_commit = on`` (TempPostgres runs with it off): an acknowledged commit must
    survive ``pg_ctl stop -m immediate``. ``fsync`` may stay off — the OS keeps the WAL it was given;
    with asynchronous commit a crash loses the last commits the clients were already told about."""
    import psycopg

    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_commit = on")
        conn.execute("SELECT pg_reload_conf()")


class Zygote:
    """``sync_desk.py --zygote``: one warm process that forks the desks (imports paid once)."""

    def __init__(self, warm_db: Path, logdir: Path) -> None:
        self.err = (logdir / "zygote.err").open("w")
        self.proc = subprocess.Popen([sys.executable, str(DESK), "--zygote", str(warm_db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, text=True, cwd=str(ROOT))  # fmt: skip
        self.lock = threading.Lock()
        hello = json.loads(self.proc.stdout.readline() or "{}")
        if "zygote" not in hello:
            raise RuntimeError(f"desk zygote did not start (see {logdir / 'zygote.err'})")

    def spawn(self, argv: list[str], out: Path, err: Path) -> int:
        with self.lock:
            self.proc.stdin.write(json.dumps({"argv": argv, "out": str(out), "err": str(err)}) + "\n")
            self.proc.stdin.flush()
            return int(json.loads(self.proc.stdout.readline())["pid"])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.err.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours (plain subprocess mode) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


class DeskProc:
    """One desk process (forked by the zygote, or a plain subprocess) and its last status line."""

    def __init__(self, index: int, db: Path, dsn: str, cfg: CampaignConfig, *, offset: float,
                 schema_version: int | None, logdir: Path, zygote: Zygote | None = None) -> None:  # fmt: skip
        self.index, self.db, self.dsn, self.cfg = index, db, dsn, cfg
        self.offset, self.schema_version = offset, schema_version
        self.name = f"desk{index:02d}"
        self.logdir = logdir
        self.zygote = zygote
        self.status: dict = {}
        self.pid: int | None = None
        self._popen: subprocess.Popen | None = None
        self.starts = 0
        self.ready = False
        self.go_file: Path | None = logdir / "go"

    def argv(self, write_seconds: float) -> list[str]:
        argv = ["--db", str(self.db), "--dsn", self.dsn, "--name", self.name,
                "--rate", str(self.cfg.rate), "--write-seconds", f"{max(0.0, write_seconds):.2f}",
                "--seed", str(self.cfg.seed * 1000 + self.index * 10 + self.starts),
                "--clock-offset-s", str(self.offset), "--poll-s", "0.25", "--retry-s", "0.3"]  # fmt: skip
        if self.schema_version is not None:
            argv += ["--schema-version", str(self.schema_version)]
        if self.go_file is not None:
            argv += ["--go-file", str(self.go_file)]
        return argv

    def start(self, write_seconds: float) -> None:
        out = self.logdir / f"{self.name}.{self.starts}.out"
        err = self.logdir / f"{self.name}.{self.starts}.err"
        argv = self.argv(write_seconds)
        self.status = {}
        self.ready = False
        if self.zygote is not None:
            self.pid = self.zygote.spawn(argv, out, err)
        else:
            with out.open("w") as fo, err.open("w") as fe:
                self._popen = subprocess.Popen([sys.executable, str(DESK), *argv], stdout=fo, stderr=fe,
                                               cwd=str(ROOT))  # fmt: skip
            self.pid = self._popen.pid
        self.starts += 1
        threading.Thread(target=self._tail, args=(self.pid, out), daemon=True).start()

    def _tail(self, pid: int, out: Path) -> None:
        """Follow the desk's stdout file; keep the last status line."""
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with out.open() as fh:
            buf = ""
            while True:
                chunk = fh.readline()
                if not chunk:
                    if pid != self.pid or not _alive(pid):
                        rest = fh.read()
                        if not rest:
                            return
                        chunk = rest
                    else:
                        time.sleep(0.05)
                        continue
                buf += chunk
                if not buf.endswith("\n"):
                    continue
                line, buf = buf, ""
                try:
                    st = json.loads(line)
                except ValueError:
                    continue
                if pid != self.pid:
                    continue
                if st.get("kind") == "ready":
                    self.ready = True
                else:
                    self.status = st

    @property
    def running(self) -> bool:
        if self._popen is not None and self._popen.pid == self.pid:
            return self._popen.poll() is None
        return self.pid is not None and _alive(self.pid)

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.running:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def kill9(self) -> None:
        if self.pid is not None and self.running:
            os.kill(self.pid, signal.SIGKILL)
            self._wait(10)

    def terminate(self) -> None:
        if self.pid is not None and self.running:
            os.kill(self.pid, signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM and wait; True when the desk exited by itself (printed its exit line)."""
        if self.pid is None:
            return True
        self.terminate()
        if not self._wait(timeout):
            os.kill(self.pid, signal.SIGKILL)
            self._wait(5)
            return False
        return True


def start_desks(desks: list[DeskProc], write_seconds: float, timeout: float = 120.0) -> None:
    """Start every desk, wait until all are warm ("ready"), then let them go together."""
    go = desks[0].go_file
    if go is not None and go.exists():
        go.unlink()
    ready: set[int] = set()
    for d in desks:
        d.start(write_seconds)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = {d.index for d in desks if d.ready}
        if len(ready) == len(desks):
            break
        time.sleep(0.1)
    if go is not None:
        go.touch()
    while time.monotonic() < deadline and any(not d.status for d in desks):
        time.sleep(0.02)


_LIVE: dict[str, sqlite3.Connection] = {}
_LIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def live_reader(path: Path) -> Iterator[sqlite3.Connection]:
    """One long-lived read connection per live desk replica, reused by every poll.

    Opening and closing a connection many times a second on a file a desk process is writing
    made the closing side now and then take itself for the last connection: the WAL was
    deleted and recreated under the desk, and readers got "database disk image is malformed"
    (seen with this bench's 50 Hz polling; never with one connection kept open)."""
    key = str(Path(path).resolve())
    with _LIVE_LOCK:
        conn = _LIVE.get(key)
        if conn is None:
            conn = sqlite3.connect(key, timeout=10, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA query_only = 1")
            _LIVE[key] = conn
        yield conn


def close_live_readers() -> None:
    with _LIVE_LOCK:
        for conn in _LIVE.values():
            conn.close()
        _LIVE.clear()


@contextlib.contextmanager
def _ro(path: Path) -> Iterator[sqlite3.Connection]:
    """A short read connection to a quiet replica (the desks have exited)."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        conn.execute("PRAGMA query_only = 1")
        yield conn
    finally:
        conn.close()


def _client_id(path: Path) -> str | None:
    with live_reader(path) as conn:
        row = conn.execute("SELECT client_id FROM sync_state").fetchone()
        return row[0] if row else None


def _pending(path: Path) -> int:
    with live_reader(path) as conn:
        return conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchall()[0][0]


# -- the campaign ----------------------------------------------------------------------------------
class Campaign:
    def __init__(self, cfg: CampaignConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.result = CampaignResult()
        self.t0 = 0.0
        self.t_setup = time.monotonic()

    def log(self, text: str) -> None:
        stamp = f"{time.monotonic() - self.t0:6.1f}s" if self.t0 else f"setup {time.monotonic() - self.t_setup:4.1f}s"
        line = f"[{stamp}] {text}"
        self.result.faults.append(line)
        if self.cfg.verbose:
            print(line, file=sys.stderr, flush=True)

    def run(self) -> CampaignResult:
        cfg = self.cfg
        work = Path(cfg.workdir or tempfile.mkdtemp(prefix="onemap-sync-faults-"))
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        pg = TempPostgres()
        self.pg = pg
        proxies: list[FaultProxy] = []
        desks: list[DeskProc] = []
        try:
            pg.start()
            self.log("PostgreSQL started")
            self._setup_upstream(work)
            proxies = [FaultProxy(pg.port, seed=cfg.seed * 100 + i) for i in range(cfg.replicas)]
            desks = self._make_desks(work, proxies)
            self.proxies, self.desks = proxies, desks
            self._run_faults()
            self._heal_and_converge()
            for d in desks:
                d.terminate()
            clean = [d.stop() for d in desks]
            self.result.stats["clean_exits"] = sum(clean)
            close_live_readers()
            self.log("desks stopped")
            self._collect_stats()
            self._check()
            self.log("checks done")
        finally:
            for d in desks:
                try:
                    d.stop(timeout=5)
                except Exception:  # noqa: BLE001
                    pass
            close_live_readers()
            if getattr(self, "zygote", None) is not None:
                self.zygote.close()
            for p in proxies:
                p.close()
            pg.destroy()
            if not cfg.keep and cfg.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        return self.result

    # -- setup --------------------------------------------------------------------------------
    def _setup_upstream(self, work: Path) -> None:
        import psycopg

        from db.sync.upstream import add_desk, init_upstream, seed_upstream

        cfg = self.cfg
        durable_commits(self.pg)
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE onemap")
        self.admin_dsn = self.pg.dsn(dbname="onemap")
        demo = cfg.demo or make_demo(work / "seed.db", cfg.events)
        self.demo = demo
        self.log(f"seed replica {demo.name}")
        init_upstream(self.admin_dsn, unsafe=frozenset(cfg.unsafe))
        seed_upstream(self.admin_dsn, demo)
        add_desk(self.admin_dsn, DESK_ROLE, DESK_PASSWORD, None)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            self.seed_log = {r[0] for r in conn.execute("SELECT uid FROM onemap.event_log")}
            self.seed_status = dict(conn.execute("SELECT uid, status FROM onemap.events").fetchall())
        self.seed_head = _server_head(self.admin_dsn)
        self.log(f"upstream seeded: {len(self.seed_status)} events, {len(self.seed_log)} log rows, head {self.seed_head}")

    def desk_dsn(self, port: int) -> str:
        return self.pg.dsn(dbname="onemap", user=DESK_ROLE, password=DESK_PASSWORD, port=port)

    def _make_desks(self, work: Path, proxies: list[FaultProxy]) -> list[DeskProc]:
        from db.ids import new_ulid

        cfg = self.cfg
        base = work / "base.db"
        how = clone_base(self.admin_dsn, self.desk_dsn(self.pg.port), self.demo, base)
        _sync_state_set(base, client_id=new_ulid(), upstream=self.desk_dsn(self.pg.port), cursor=self.seed_head)
        self.log(f"base replica: {how}")
        t = time.monotonic()
        logdir = work / "logs"
        logdir.mkdir(exist_ok=True)
        self.zygote = Zygote(base, logdir) if cfg.zygote else None
        desks = []
        old_schema = protocol.SYNC_SCHEMA_VERSION - 1
        for i, proxy in enumerate(proxies):
            path = work / f"desk{i:02d}.db"
            shutil.copyfile(base, path)
            dsn = self.desk_dsn(proxy.port)
            _sync_state_set(path, client_id=new_ulid(), upstream=dsn, cursor=self.seed_head)
            desks.append(DeskProc(i, path, dsn, cfg, offset=CLOCK_OFFSETS[i % 3], logdir=logdir, zygote=self.zygote,
                                  schema_version=old_schema if i == cfg.replicas - 1 else None))  # fmt: skip
        self.log(f"{len(desks)} replica copies with their own client id ({time.monotonic() - t:.1f} s)")
        return desks

    # -- faults -------------------------------------------------------------------------------
    def _run_faults(self) -> None:
        cfg, rng = self.cfg, self.rng
        n = cfg.replicas
        T = cfg.seconds
        t = time.monotonic()
        start_desks(self.desks, T)
        self.log(f"desks warm and started ({time.monotonic() - t:.1f} s)")
        self.t0 = time.monotonic()
        self.log(f"{n} desks running, writing {T:.0f} s at {cfg.rate}/s each; schema v{protocol.SYNC_SCHEMA_VERSION - 1} on desk{n - 1:02d}")
        indices = list(range(n))
        victim = rng.choice(indices[:-1]) if cfg.kill else None
        others = [i for i in indices if i != victim]
        long_cut = rng.sample(others, min(cfg.long_cut, len(others)))
        schedule: list[tuple[float, str, object]] = []
        for i in indices:
            if i in long_cut:
                schedule += [(0.3 * T, "cut", i), (0.8 * T, "heal", i)]
            elif i != victim:
                for _ in range(2):
                    at = rng.uniform(0.05, 0.9) * T
                    schedule += [(at, "cut", i), (at + rng.uniform(0.5, 3.0), "heal", i)]
        if cfg.crash:
            schedule.append((0.5 * T, "crash", None))
        if victim is not None:
            schedule.append((0.62 * T, "kill", victim))
        schedule.sort(key=lambda x: x[0])
        for p in self.proxies:
            p.drop_replies(cfg.drop_p)
        self.log(f"drop_replies({cfg.drop_p}) on every link; long cuts {sorted(long_cut)}; kill victim {victim}")
        for at, what, arg in schedule:
            wait = self.t0 + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if what == "cut":
                self.proxies[arg].cut()
                self.log(f"cut desk{arg:02d}")
            elif what == "heal":
                self.proxies[arg].heal()
                self.log(f"heal desk{arg:02d}")
            elif what == "crash":
                self._crash()
            elif what == "kill":  # in the background: the schedule goes on meanwhile
                killer = threading.Thread(target=self._kill_mid_push, args=(arg,), daemon=True)
                killer.start()
                self._killer = killer
        if getattr(self, "_killer", None) is not None:
            self._killer.join(timeout=30)
        # writing ends: wait for every desk to stop writing
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(d.status.get("writing", True) for d in self.desks):
            time.sleep(0.2)

    def _crash(self) -> None:
        t = time.monotonic()
        self.pg.stop("immediate")
        self.log("pg_ctl stop -m immediate")
        time.sleep(self.rng.uniform(0.5, 1.5))
        self.pg.start()
        self.log(f"PostgreSQL restarted ({time.monotonic() - t:.1f} s down)")

    def _kill_mid_push(self, i: int) -> None:
        """Let the desk's outbox grow behind a cut, heal, and kill -9 once its push is under way:
        the server has applied part of the backlog and the replica has not yet recorded it, so the
        restarted desk must re-send them and get the ledger's stored answers.

        A batched push answers the whole backlog in one reply, and the gap between its commit and
        its record in the replica is too short to hit by polling, so the killer makes the gap:
        it holds the server's seq counter row (every push takes it first) from before the heal;
        once the desk's hello is seen it takes the replica's write lock (the desk's push is then
        waiting on the server, not on SQLite), releases the counter, and kills the desk when the
        server has applied its backlog — which the desk cannot record meanwhile. Other desks'
        pushes wait for the counter for that moment (well under a second; a server stall)."""
        desk, proxy = self.desks[i], self.proxies[i]
        proxy.cut()
        self.log(f"cut desk{i:02d} (building a backlog before the kill)")
        time.sleep(max(1.0, min(3.0, 6.0 / max(self.cfg.rate, 0.1))))
        before = _pending(desk.db)
        client = _client_id(desk.db)
        import psycopg

        hold = sqlite3.connect(str(desk.db), timeout=10, isolation_level=None, check_same_thread=False)
        hold.execute("PRAGMA busy_timeout = 10000")
        now, applied_ahead = before, 0
        try:
            with psycopg.connect(self.admin_dsn, autocommit=True) as admin, \
                    psycopg.connect(self.admin_dsn) as gate:  # fmt: skip
                def server(col: str):
                    row = admin.execute(f"SELECT {col} FROM onemap.clients WHERE client_id = %s", (client,)).fetchone()
                    return row[0] if row else None

                gate.execute("SELECT 1 FROM onemap.seq_counter WHERE id = 1 FOR UPDATE")  # pushes wait here
                base, seen = int(server("last_mutation_id") or 0), server("seen_at")
                proxy.heal()
                deadline = time.monotonic() + 4
                while time.monotonic() < deadline and server("seen_at") == seen:
                    time.sleep(0.002)  # until the desk's hello: its offline round has ended
                hold.execute("BEGIN IMMEDIATE")  # from now on the desk cannot record answers
                gate.rollback()  # its push (waiting for the counter, or about to send) goes through
                deadline = time.monotonic() + 4
                while before and time.monotonic() < deadline:
                    applied_ahead = int(server("last_mutation_id") or 0) - base
                    if applied_ahead > 0:
                        now = _pending(desk.db)
                        break
                    time.sleep(0.002)
            desk.kill9()
        finally:
            if hold.in_transaction:
                hold.execute("ROLLBACK")
        mid = applied_ahead > 0 and now > 0
        self.result.stats["kill"] = {"desk": desk.name, "pending_before": before, "pending_at_kill": now,
                                     "server_applied_of_backlog": applied_ahead, "mid_push": mid}  # fmt: skip
        self.log(f"kill -9 desk{i:02d}: pending {before} → {now} in the replica, {applied_ahead} already "
                 f"applied on the server when killed")
        remaining = self.cfg.seconds - (time.monotonic() - self.t0)
        desk.start(max(0.0, remaining))
        hold.close()  # after the restart: never the file's last connection (see live_reader)
        self.log(f"desk{i:02d} restarted on the same replica file")

    # -- healing and convergence --------------------------------------------------------------
    def _heal_and_converge(self) -> None:
        for p in self.proxies:
            p.drop_replies(0.0)
            p.heal()
        t_heal = time.monotonic()
        self.log("healed every link; waiting for convergence")
        deadline = t_heal + self.cfg.converge_timeout
        last = None
        settled_since = None
        while time.monotonic() < deadline:
            state = self.converged()
            if state is True:
                self.result.convergence_s = time.monotonic() - t_heal
                self.log(f"converged {self.result.convergence_s:.2f} s after the heal")
                return
            last = state
            # every replica idle at the head, yet different: nothing more will come; stop waiting
            if "content hash differs" in state:
                settled_since = settled_since or time.monotonic()
                if time.monotonic() - settled_since > 3.0:
                    break
            else:
                settled_since = None
            time.sleep(0.1)
        self.log(f"NOT converged {time.monotonic() - t_heal:.0f} s after the heal: {last}")

    def server_hash(self) -> dict[str, str]:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            h = conn.execute("SELECT onemap.content_hash()").fetchone()[0]
        return {"events": h["events"], "log": h["log"]}

    def converged(self) -> bool | str:
        try:
            head = _server_head(self.admin_dsn)
            server = self.server_hash()
        except Exception as exc:  # noqa: BLE001
            return f"server: {exc}"
        for d in self.desks:
            try:
                with live_reader(d.db) as conn:
                    pending = conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchall()[0][0]
                    cursor = conn.execute("SELECT cursor FROM sync_state").fetchall()[0][0]
                    if pending or cursor != head:
                        return f"{d.name}: pending {pending}, cursor {cursor}/{head}"
                    if protocol.content_hash(conn) != server:
                        return f"{d.name}: content hash differs"
            except sqlite3.Error as exc:
                return f"{d.name}: {exc}"
        return True

    # -- checks -------------------------------------------------------------------------------
    def _collect_stats(self) -> None:
        st = self.result.stats
        writes = Counter()
        errors: Counter = Counter()
        for d in self.desks:
            with _ro(d.db) as conn:
                for state, n in conn.execute("SELECT state, count(*) FROM outbox GROUP BY state"):
                    writes[state] += n
                errors["refusals"] += conn.execute("SELECT count(*) FROM sync_refusals").fetchone()[0]
            for k, v in (d.status.get("write_errors") or {}).items():
                errors[f"local {k}"] += v
        st["outbox"] = dict(writes)
        st["errors"] = dict(errors)
        st["proxies"] = {
            "cut_connections": sum(p.stats.cut_connections for p in self.proxies),
            "refused": sum(p.stats.refused for p in self.proxies),
            "dropped_replies": sum(p.stats.dropped_replies for p in self.proxies),
            "forwarded_replies": sum(p.stats.forwarded_replies for p in self.proxies),
        }

    def _check(self) -> None:
        import psycopg

        checks = self.result.checks
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            log_rows = conn.execute(
                "SELECT uid, event_uid, server_seq, client_id, mutation_id, action, from_status, to_status "
                "FROM onemap.event_log"
            ).fetchall()
            events = dict(conn.execute("SELECT uid, status FROM onemap.events").fetchall())
            seqs = [r[0] for r in conn.execute("SELECT server_seq FROM onemap.changes ORDER BY server_seq")]
            self.result.stats["client_schema_versions"] = dict(conn.execute(
                "SELECT schema_version, count(*) FROM onemap.clients GROUP BY schema_version").fetchall())  # fmt: skip
        server_log = {r[0]: r for r in log_rows}
        campaign = [r for r in log_rows if r[0] not in self.seed_log]

        # 0 lost: every outbox row ends applied or rejected, and the server agrees
        pending, applied_missing, rejected_but_applied, examples = 0, 0, 0, []
        outbox_pairs = set()
        for d in self.desks:
            with _ro(d.db) as c:
                for cid, mid, log_uid, state, op in c.execute(
                    "SELECT client_id, mutation_id, log_uid, state, op FROM outbox"
                ):
                    outbox_pairs.add((cid, mid))
                    if state == "pending":
                        pending += 1
                        examples.append(f"{d.name} #{mid} {op} pending")
                    elif state == "applied" and log_uid not in server_log:
                        applied_missing += 1
                        examples.append(f"{d.name} #{mid} {op} applied but not on the server")
                    elif state == "rejected" and log_uid in server_log:
                        rejected_but_applied += 1
                        examples.append(f"{d.name} #{mid} {op} refused but applied on the server")
        bad = pending + applied_missing + rejected_but_applied
        checks["lost"] = (bad == 0, f"{pending} pending, {applied_missing} applied-but-missing, "
                          f"{rejected_but_applied} refused-but-applied" + _ex(examples))  # fmt: skip

        # 0 duplicated: server log rows == distinct (client, mutation) pairs
        pairs = Counter((r[3], r[4]) for r in campaign)
        dups = [f"{c}#{m}×{n}" for (c, m), n in pairs.items() if n > 1]
        unknown = [f"{r[0]} ({r[5]})" for r in campaign if r[3] is None or r[4] is None]
        checks["duplicated"] = (not dups and not unknown and len(campaign) == len(pairs),
                                f"{len(campaign)} log rows, {len(pairs)} distinct (client, mutation)"
                                + (f", {len(unknown)} without a client/mutation" if unknown else "")
                                + _ex(dups + unknown))  # fmt: skip

        # every event's log is a valid chain of transitions
        by_event: dict[str, list] = {}
        for r in sorted(campaign, key=lambda r: (r[2] is None, r[2] or 0)):
            by_event.setdefault(r[1], []).append(r)
        broken: list[str] = []
        stale: list[str] = []
        for uid, rows in by_event.items():
            status = self.seed_status.get(uid)
            for r in rows:
                try:
                    status = _step(status, r, stale)
                except IllegalTransition as exc:
                    broken.append(f"{uid} seq {r[2]} {r[5]}: {exc}")
                    break
            else:
                if events.get(uid) != status:
                    broken.append(f"{uid}: log ends at {status}, event is {events.get(uid)}")
        checks["chains"] = (not broken, f"{len(by_event)} events touched, {len(broken)} broken" + _ex(broken)
                            + (f" (overlay rows stamped with a desk's older status: {len(stale)})" if stale else ""))

        # no gaps in server_seq: the feed runs seed head + 1, +2, … and every new log row has its change
        gaps = []
        expect = self.seed_head + 1
        for s in seqs:
            if s != expect:
                gaps.append(f"{expect}..{s - 1}")
            expect = s + 1
        seqset = set(seqs)
        missing_seq = [r[0] for r in campaign if r[2] is None or r[2] not in seqset]
        checks["seq_gaps"] = (not gaps and not missing_seq,
                              f"{len(seqs)} changes {seqs[0] if seqs else '-'}..{seqs[-1] if seqs else '-'}, "
                              f"gaps {len(gaps)}, log rows without a change {len(missing_seq)}"
                              + _ex(gaps + missing_seq))  # fmt: skip

        # content hash of every replica == the server's
        server = self.server_hash()
        differ = []
        for d in self.desks:
            with _ro(d.db) as c:
                h = protocol.content_hash(c)
            if h != server:
                which = ",".join(k for k in ("events", "log") if h[k] != server[k])
                differ.append(f"{d.name} ({which})")
        checks["content_hash"] = (not differ, f"{len(self.desks) - len(differ)}/{len(self.desks)} replicas equal"
                                  + _ex(differ))  # fmt: skip


def _step(status: str | None, row, stale: list | None = None) -> str:
    """The status after one server log row; raises IllegalTransition when the chain breaks.

    Transitions must start where the chain is and follow the lifecycle table. Overlays must be
    allowed in the chain's status (``check_overlay``); the server does not check an overlay's
    ``from_status`` (docs/sync.md step 3), so an overlay stamped with the desk's older status is
    noted in ``stale`` rather than failed."""
    _uid, _ev, _seq, _c, _m, action, frm, to = row
    if action == "report":
        if status is not None:
            raise IllegalTransition(f"second report of an existing event ({status})")
        if to != "reported":
            raise IllegalTransition(f"report to {to}")
        return "reported"
    if status is None:
        raise IllegalTransition(f"'{action}' before the event was reported")
    if action in OVERLAYS:
        check_overlay(status, action)
        if (frm, to) != (status, status) and stale is not None:
            stale.append(f"{_uid} {action} stamped {frm}→{to} at {status}")
        return status
    if frm != status:
        raise IllegalTransition(f"from_status {frm} but the chain is at {status}")
    nxt = next_status(status, action)
    if nxt != to:
        raise IllegalTransition(f"{status} --{action}--> {nxt}, log says {to}")
    return nxt


def _ex(items: list[str], n: int = 5) -> str:
    return f"; e.g. {'; '.join(items[:n])}" if items else ""


def run_campaign(cfg: CampaignConfig) -> CampaignResult:
    return Campaign(cfg).run()


def result_rows(cfg: CampaignConfig, res: CampaignResult) -> list[tuple[str, str, str]]:
    rows = []
    for name in CHECKS:
        ok, detail = res.checks.get(name, (False, "not run"))
        rows.append((f"{name}", f"{'PASS' if ok else 'FAIL'}: {detail}", {"lost": "0 lost", "duplicated": "0 duplicated",
                     "chains": "all valid", "seq_gaps": "no gaps", "content_hash": "all equal"}[name]))  # fmt: skip
    conv = f"{res.convergence_s:.2f} s" if res.convergence_s is not None else "not converged"
    rows.append(("convergence after heal", conv, "converges"))
    st = res.stats
    rows.append(("outbox rows (all desks)", ", ".join(f"{k} {v}" for k, v in sorted(st.get("outbox", {}).items())), "-"))
    rows.append(("clients by sync schema version", ", ".join(f"v{k}: {v}" for k, v in
                 sorted(st.get("client_schema_versions", {}).items())), "one on the previous version"))  # fmt: skip
    rows.append(("faults", ", ".join(f"{k} {v}" for k, v in st.get("proxies", {}).items())
                 + (f"; kill -9 {st['kill']}" if "kill" in st else ""), "-"))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="sync fault campaign (issue 9)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--replicas", type=int, default=17)
    p.add_argument("--seconds", type=float, default=20.0, help="writing time (faults happen inside it)")
    p.add_argument("--rate", type=float, default=2.0, help="writes per desk per second")
    p.add_argument("--events", type=int, default=400, help="events in the seed demo replica")
    p.add_argument("--unsafe", choices=["no_ledger", "bigserial"], action="append", default=[],
                   help="negative control: the server without the ledger check / with a bigserial feed")
    p.add_argument("--drop-p", type=float, default=0.02, help="share of replies dropped after commit")
    p.add_argument("--keep", type=Path, help="keep the replicas and logs in this directory")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    cfg = CampaignConfig(seed=a.seed, replicas=a.replicas, seconds=a.seconds, rate=a.rate, events=a.events,
                         unsafe=frozenset(a.unsafe), drop_p=a.drop_p, workdir=a.keep, keep=a.keep is not None, verbose=not a.quiet)  # fmt: skip
    res = run_campaign(cfg)
    from bench.common import write_table

    unsafe = f", unsafe {'+'.join(sorted(cfg.unsafe))}" if cfg.unsafe else ""
    write_table("sync_faults", f"Sync fault campaign (seed {cfg.seed}, {cfg.replicas} replicas, {cfg.seconds:.0f} s "
                f"at {cfg.rate}/s per desk{unsafe})", result_rows(cfg, res),
                notes="Fault log:\n\n```\n" + "\n".join(res.faults) + "\n```")  # fmt: skip
    print("ALL CHECKS PASS" if res.ok else f"FAILED: {', '.join(res.failed())}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
