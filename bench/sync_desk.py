"""One desktop of the sync fault campaign: writes through the real use cases and runs the sync loop.

    python bench/sync_desk.py --db REPLICA --rate 2 --write-seconds 15 --seed 3 [--dsn DSN]
        [--clock-offset-s 3600] [--schema-version 0] [--name desk07]

Two threads, each with its own connection to the replica (as a console and its sync worker):
- the writer creates events (``db.event_ops.create_event``) and moves events along legal paths
  (``apply_action`` with an action from ``app.lifecycle.legal_actions``), often on events other
  desks created (the most recently changed open events), so conflicts and refusals happen;
  it stops after ``--write-seconds``;
- the syncer runs ``SyncClient.sync_once()`` in a loop until SIGTERM, then the desk exits 0.

The clock offset only shifts the reported times the desk writes (``at``); nothing else reads it.
``--schema-version`` makes the client announce an older sync schema (the previous version).
Status: one JSON line on stdout per second (and on exit); the campaign reads them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import faulthandler
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import timeutil  # noqa: E402
from app.lifecycle import NEEDS_REASON, legal_actions  # noqa: E402
from db import event_ops  # noqa: E402
from db.replica import open_replica  # noqa: E402

# The transitions a desk picks from, by weight (merge needs a second live event: handled too).
ACTION_WEIGHT = {"accept": 6, "dispatch": 6, "acknowledge": 6, "arrive": 5, "handle": 5, "verify": 4,
                 "close": 4, "return": 1, "reject": 1, "defer": 1, "resume": 3, "rework": 1, "merge": 1}  # fmt: skip
REPORT_SHARE = 0.3  # share of writes that are new reports
NOTE_SHARE = 0.05  # share of writes that are overlay notes
DUP_SHARE = 0.03  # share of reports that reuse a shared external id (duplicates across desks)
WORKING_SET = 40  # actions pick among the N most recently changed open events


class Desk:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name = args.name or Path(args.db).stem
        self.rng = random.Random(args.seed)
        self.offset = dt.timedelta(seconds=args.clock_offset_s)
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.writes = 0
        self.max_write_s = 0.0
        self.write_started: float | None = None
        self.dumped = False
        self.write_errors: dict[str, int] = {}
        self.writing = True
        self.rounds = 0
        self.sync_errors = 0
        self.totals = {"pushed": 0, "applied": 0, "rejected": 0, "pulled": 0}
        self.last: dict = {}
        self.lock = threading.Lock()

    # -- writing --------------------------------------------------------------------------------
    def now(self) -> str:
        return timeutil.to_iso(timeutil.now() + self.offset)

    def warm_up(self) -> None:
        """Build the grid index (``locate``) before the clock starts: the first report pays for it."""
        replica = open_replica(self.args.db, create=False)
        try:
            row = replica.writer.execute("SELECT lon, lat FROM events WHERE lon IS NOT NULL LIMIT 1").fetchone()
            if row:
                event_ops.locate(replica, row[0], row[1])
        finally:
            replica.close()

    def write_loop(self) -> None:
        replica = open_replica(self.args.db, create=False)
        try:
            conn = replica.writer
            self.departments = [r[0] for r in conn.execute("SELECT code FROM departments ORDER BY code")]
            self.categories = [r[0] for r in conn.execute("SELECT code FROM categories WHERE code LIKE '%.%' ORDER BY code")]
            self.places = [tuple(r) for r in conn.execute(
                "SELECT lon, lat FROM events WHERE lon IS NOT NULL AND drill_id IS NULL ORDER BY id LIMIT 200")]
            period = 1.0 / self.args.rate if self.args.rate > 0 else None
            next_at = time.monotonic()
            end = self.t0 + self.args.write_seconds
            while period and not self.stop.is_set() and time.monotonic() < end:
                t = self.write_started = time.monotonic()
                try:
                    self.write_one(replica)
                    self.writes += 1
                except Exception as exc:  # noqa: BLE001 - a refused local write is part of the game
                    kind = type(exc).__name__
                    self.write_errors[kind] = self.write_errors.get(kind, 0) + 1
                self.max_write_s = max(self.max_write_s, time.monotonic() - t)
                self.write_started = None
                next_at += period
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)
                else:
                    next_at = time.monotonic()  # behind: do not burst to catch up
        finally:
            self.writing = False
            try:
                replica.close()
            except Exception:  # noqa: BLE001 - PRAGMA optimize may find the file busy at exit
                pass

    def write_one(self, replica) -> None:
        r = self.rng.random()
        if r < REPORT_SHARE:
            self.report(replica)
            return
        conn = replica.writer
        rows = conn.execute(
            "SELECT id, status, version FROM events WHERE drill_id IS NULL AND status NOT IN "
            "('closed', 'rejected', 'merged') ORDER BY rev DESC LIMIT ?", (WORKING_SET,)
        ).fetchall()  # fmt: skip
        if not rows:
            self.report(replica)
            return
        ev = self.rng.choice(rows)
        if r < REPORT_SHARE + NOTE_SHARE:
            event_ops.apply_action(replica, ev["id"], "note", actor=self.name, expected_version=None,
                                   note=f"{self.name} note", at=self.now())  # fmt: skip
            return
        actions = legal_actions(ev["status"])
        action = self.rng.choices(actions, weights=[ACTION_WEIGHT.get(a, 1) for a in actions])[0]
        payload: dict = {}
        if action == "dispatch" or (action == "rework" and self.rng.random() < 0.5):
            payload = {"target_kind": "department", "target": self.rng.choice(self.departments)}
        elif action == "merge":
            into = [x["id"] for x in rows if x["id"] != ev["id"]]
            if not into:
                return
            payload = {"into": self.rng.choice(into)}
        note = f"{self.name}: {action}" if action in NEEDS_REASON else None
        event_ops.apply_action(replica, ev["id"], action, actor=self.name, expected_version=ev["version"],
                               note=note, payload=payload, at=self.now())  # fmt: skip

    def report(self, replica) -> None:
        lon, lat = self.rng.choice(self.places)
        record = {"source": "grid_app", "category": self.rng.choice(self.categories),
                  "title": f"{self.name} 上报 #{self.writes}", "lon": lon + self.rng.uniform(-1e-4, 1e-4),
                  "lat": lat + self.rng.uniform(-1e-4, 1e-4)}  # fmt: skip
        if self.rng.random() < DUP_SHARE:
            record["source"] = "hotline_12345"
            record["external_id"] = f"CAMPAIGN-{self.rng.randrange(20)}"
        event_ops.create_event(replica, record, actor=self.name, at=self.now())

    # -- syncing --------------------------------------------------------------------------------
    def sync_loop(self) -> None:
        if self.args.schema_version is not None:
            _announce_schema_version(self.args.schema_version)
        from db.sync.client import SyncClient

        replica = open_replica(self.args.db, create=False)
        client = None
        try:
            while not self.stop.is_set():
                try:
                    if client is None:
                        client = SyncClient(replica, self.args.dsn)
                    rep = client.sync_once(max_batches=self.args.max_batches)
                    self.rounds += 1
                    with self.lock:
                        for k in self.totals:
                            self.totals[k] += int(getattr(rep, k, 0) or 0)
                        self.last = {"online": rep.online, "pending": rep.pending, "cursor": rep.cursor,
                                     "error": rep.error, "rotated": rep.rotated_client_id}  # fmt: skip
                    busy = rep.online and (rep.pushed or rep.pulled)
                    self.stop.wait(0.0 if busy else (self.args.poll_s if rep.online else self.args.retry_s))
                except Exception as exc:  # noqa: BLE001 - keep the loop alive, report the error
                    self.sync_errors += 1
                    with self.lock:
                        self.last = {"online": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                    if client is not None:
                        try:
                            client.close()
                        except Exception:  # noqa: BLE001
                            pass
                        client = None
                    self.stop.wait(self.args.retry_s)
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001
                    pass
            try:
                replica.close()
            except Exception:  # noqa: BLE001 - PRAGMA optimize may find the file busy at exit
                pass

    # -- status ---------------------------------------------------------------------------------
    def status(self, kind: str = "status") -> dict:
        with self.lock:
            return {"kind": kind, "desk": self.name, "pid": os.getpid(), "t": round(time.monotonic() - self.t0, 2),
                    "writing": self.writing, "writes": self.writes,
                    "max_write_ms": round(self.max_write_s * 1000), "write_errors": dict(self.write_errors),
                    "rounds": self.rounds, "sync_errors": self.sync_errors, **self.totals, **self.last}  # fmt: skip

    def emit(self, kind: str = "status") -> None:
        print(json.dumps(self.status(kind), ensure_ascii=False), flush=True)


def _announce_schema_version(version: int) -> None:
    """Make this process's client speak an older sync schema (the campaign's previous-version desk)."""
    from db.sync import protocol

    protocol.SYNC_SCHEMA_VERSION = version
    try:
        from db.sync import client as client_mod
    except ImportError:
        return
    if hasattr(client_mod, "SYNC_SCHEMA_VERSION"):
        client_mod.SYNC_SCHEMA_VERSION = version
    if hasattr(client_mod, "PUSH_BATCH"):  # the previous client sends one push_mutation per row
        client_mod.PUSH_BATCH = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="the replica file (a sync client)")
    p.add_argument("--dsn", help="upstream DSN (default: the one the replica remembers)")
    p.add_argument("--name", help="actor name written in the log (default: the file's stem)")
    p.add_argument("--rate", type=float, default=2.0, help="writes per second")
    p.add_argument("--write-seconds", type=float, default=15.0, help="stop writing after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock-offset-s", type=float, default=0.0, help="shift of the reported times written")
    p.add_argument("--schema-version", type=int, default=None, help="announce this sync schema version")
    p.add_argument("--poll-s", type=float, default=0.2, help="pause between idle sync rounds")
    p.add_argument("--retry-s", type=float, default=0.3, help="pause after an offline round")
    p.add_argument("--max-batches", type=int, default=100)
    p.add_argument("--go-file", help="after warming up, wait until this file exists before starting")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    desk = Desk(parse_args(argv))
    signal.signal(signal.SIGTERM, lambda *_: desk.stop.set())
    signal.signal(signal.SIGINT, lambda *_: desk.stop.set())
    desk.warm_up()
    if desk.args.go_file:  # many desks start together: the campaign says go once all are warm
        desk.emit("ready")
        while not os.path.exists(desk.args.go_file) and not desk.stop.wait(0.05):
            pass
    desk.t0 = time.monotonic()  # write-seconds count from here
    threads = [threading.Thread(target=desk.write_loop, name="writer"),
               threading.Thread(target=desk.sync_loop, name="syncer")]  # fmt: skip
    for t in threads:
        t.start()
    desk.emit("start")
    while not desk.stop.wait(1.0):
        desk.emit()
        started = desk.write_started
        if started is not None and time.monotonic() - started > 2.0 and not desk.dumped:
            desk.dumped = True  # a local write stuck for 2 s: show where every thread is (stderr)
            print(f"write stuck for {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
            faulthandler.dump_traceback(all_threads=True)
    for t in threads:
        t.join(timeout=30)
    desk.emit("exit")
    return 0


def zygote(warm_db: str) -> int:
    """Fork desks on demand (``--zygote``): imports and the grid index are paid for once.

    Reads one JSON command per stdin line, ``{"argv": [...], "out": path, "err": path}``, forks a
    child that runs :func:`main` with its stdout/stderr in those files, and answers ``{"pid": N}``.
    Children are reaped automatically (SIGCHLD ignored): a gone pid means the desk exited.
    """
    import psycopg  # noqa: F401 - imported once, before forking

    import db.sync.client  # noqa: F401

    Desk(parse_args(["--db", warm_db])).warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print(json.dumps({"zygote": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the desk
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            import ulid

            ulid.default_generator = ulid.ULIDGenerator()  # no monotonic state shared with siblings
            for fd, path in ((1, cmd["out"]), (2, cmd["err"])):
                f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(f, fd)
                os.close(f)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            rc = 1
            try:
                rc = main(cmd["argv"])
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        print(json.dumps({"pid": pid}), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
        sys.exit(zygote(sys.argv[2]))
    sys.exit(main())
