"""Sync figures (issue 9): convergence after heal, pull apply and push throughput, snapshot clone.

    python bench/bench_sync.py [--replicas 17] [--rate 20] [--seconds 30] [--pull-changes 20000]
                               [--push-mutations 1500] [--skip-clone]

- **convergence after heal**: ``--replicas`` desk processes (``bench/sync_desk.py``) write at
  ``--rate`` writes/s each behind fault proxies; one desk at a time is cut off for 1–3 s, then
  healed. A sample is the time from the heal until that desk has every mutation it wrote before
  the heal confirmed and has pulled the server's head as of the heal. p50/p95/max over all heals.
- **pull apply throughput**: ``--pull-changes`` mutations are pushed straight into the server
  (``push_mutation`` in one SQL statement, reports then accepts of new events), then a fresh
  replica's ``sync_once`` pulls and applies them: changes/s.
- **push throughput, one client**: ``--push-mutations`` local writes through ``db/event_ops``
  while the replica is offline, then one ``sync_once`` pushes them: mutations/s.
- **snapshot clone of the demo replica**: the upstream seeded from bench/.data/demo-100000.db
  (a copy), then a clone into a new file: seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sync_faults  # noqa: E402

from bench.common import DATA, pct, write_table  # noqa: E402
from db.sync.faultproxy import FaultProxy  # noqa: E402
from db.sync.pgtemp import TempPostgres  # noqa: E402


def _admin(dsn: str):
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def _fresh_upstream(pg: TempPostgres, name: str, seed_from: Path) -> str:
    from db.sync.upstream import add_desk, init_upstream, seed_upstream

    with _admin(pg.dsn()) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg.dsn(dbname=name)
    init_upstream(dsn)
    seed_upstream(dsn, seed_from)
    add_desk(dsn, sync_faults.DESK_ROLE, sync_faults.DESK_PASSWORD, None)
    return dsn


def _desk_dsn(pg: TempPostgres, name: str, port: int | None = None) -> str:
    return pg.dsn(dbname=name, user=sync_faults.DESK_ROLE, password=sync_faults.DESK_PASSWORD, port=port)


def _client_replica(base: Path, path: Path, dsn: str, cursor: int = 0) -> None:
    from db.ids import new_ulid

    shutil.copyfile(base, path)
    sync_faults._sync_state_set(path, client_id=new_ulid(), upstream=dsn, cursor=cursor)


# -- convergence ------------------------------------------------------------------------------------
def convergence(pg: TempPostgres, seed_db: Path, work: Path, *, replicas: int, rate: float,
                seconds: float, seed: int = 5, zygote: bool = True, name: str = "conv") -> dict:  # fmt: skip
    """Rolling cut/heal of one desk at a time while every desk writes at ``rate``."""
    dsn = _fresh_upstream(pg, name, seed_db)
    base = work / f"{name}-base.db"
    sync_faults.clone_base(dsn, _desk_dsn(pg, name), seed_db, base)
    proxies = [FaultProxy(pg.port, seed=i) for i in range(replicas)]
    cfg = sync_faults.CampaignConfig(seed=seed, replicas=replicas, rate=rate, seconds=seconds)
    logdir = work / f"{name}-logs"
    logdir.mkdir(exist_ok=True)
    zygote = sync_faults.Zygote(base, logdir) if zygote else None
    desks = []
    for i, proxy in enumerate(proxies):
        path = work / f"{name}-{i:02d}.db"
        dsn_i = _desk_dsn(pg, name, proxy.port)
        _client_replica(base, path, dsn_i, sync_faults._server_head(dsn))
        desks.append(sync_faults.DeskProc(i, path, dsn_i, cfg, offset=0.0, schema_version=None, logdir=logdir,
                                          zygote=zygote))  # fmt: skip
    rng = random.Random(seed)
    samples: list[float] = []
    timeouts = 0
    try:
        sync_faults.start_desks(desks, seconds + 1)
        t0 = time.monotonic()
        time.sleep(2.0)  # warm up
        while time.monotonic() - t0 < seconds - 1:
            i = rng.randrange(replicas)
            proxies[i].cut()
            time.sleep(rng.uniform(1.0, 3.0))
            with sync_faults.live_reader(desks[i].db) as c:
                last_mid = c.execute("SELECT coalesce(max(mutation_id), 0) FROM outbox").fetchall()[0][0]
            head = sync_faults._server_head(dsn)
            proxies[i].heal()
            t_heal = time.monotonic()
            while True:
                with sync_faults.live_reader(desks[i].db) as c:
                    left = c.execute("SELECT count(*) FROM outbox WHERE state = 'pending' AND mutation_id <= ?",
                                     (last_mid,)).fetchall()[0][0]  # fmt: skip
                    cursor = c.execute("SELECT cursor FROM sync_state").fetchall()[0][0]
                if left == 0 and cursor >= head:
                    samples.append(time.monotonic() - t_heal)
                    break
                if time.monotonic() - t_heal > 30:
                    timeouts += 1
                    print(f"convergence sample timed out: desk{i:02d} pending≤{last_mid}: {left}, cursor {cursor} < head {head}",
                          file=sys.stderr)  # fmt: skip
                    break
                time.sleep(0.02)
        elapsed = time.monotonic() - t0
        writes = sum(int(d.status.get("writes", 0)) for d in desks)
    finally:
        sync_faults.close_live_readers()
        for d in desks:
            d.terminate()
        for d in desks:
            d.stop(timeout=15)
        if zygote is not None:
            zygote.close()
        for p in proxies:
            p.close()
    return {"samples": samples, "timeouts": timeouts, "writes_per_desk_s": writes / max(elapsed, 1e-9) / replicas}


# -- pull apply throughput ----------------------------------------------------------------------------
def _templates(base: Path, work: Path, dsn: str) -> tuple[dict, dict]:
    """A real 'report' and 'accept' mutation (args JSON) made through event_ops on a sync client."""
    from db import event_ops
    from db.replica import open_replica

    path = work / "tpl.db"
    _client_replica(base, path, dsn)
    with open_replica(path, create=False) as r:
        lon, lat = r.writer.execute("SELECT lon, lat FROM events WHERE lon IS NOT NULL LIMIT 1").fetchone()
        eid = event_ops.create_event(r, {"source": "grid_app", "category": "ROAD", "lon": lon, "lat": lat,
                                         "title": "bench"}, actor="bench")  # fmt: skip
        event_ops.apply_action(r, eid, "accept", actor="bench", expected_version=1)
        rows = [json.loads(x[0]) for x in r.writer.execute("SELECT args FROM outbox ORDER BY mutation_id")]
    return rows[0], rows[1]


def pull_throughput(pg: TempPostgres, seed_db: Path, work: Path, n: int) -> dict:
    dsn = _fresh_upstream(pg, "pull", seed_db)
    base = work / "pull-base.db"
    sync_faults.clone_base(dsn, _desk_dsn(pg, "pull"), seed_db, base)
    report, accept = _templates(base, work, _desk_dsn(pg, "pull"))
    half = n // 2
    t = time.perf_counter()
    with _admin(dsn) as conn:
        from psycopg.types.json import Jsonb

        for tpl, first in ((report, 1), (accept, half + 1)):
            conn.execute(
                """
                SELECT onemap.push_mutation('BENCH-PUSHER', m, %(p)s, %(s)s, md5(m::text),
                    jsonb_set(jsonb_set(jsonb_set(jsonb_set(%(tpl)s::jsonb,
                        '{event_uid}', to_jsonb(u)), '{event,uid}', to_jsonb(u)),
                        '{log,uid}', to_jsonb(l)), '{log,at}', %(tpl)s::jsonb -> 'log' -> 'at'))
                FROM (SELECT i + %(first)s - 1 AS m, 'BENCHEV' || lpad(i::text, 19, '0') AS u,
                             'BENCHLG' || lpad((i + %(first)s)::text, 19, '0') AS l
                      FROM generate_series(1, %(k)s) AS i) AS g
                """,
                {"p": 1, "s": 1, "tpl": Jsonb(tpl), "first": first, "k": half},
            )  # fmt: skip
        pushed = sync_faults._server_head(dsn)
    server_s = time.perf_counter() - t
    from db.replica import open_replica
    from db.sync.client import SyncClient

    path = work / "pull-fresh.db"
    _client_replica(base, path, _desk_dsn(pg, "pull"))
    with open_replica(path, create=False) as r:
        client = SyncClient(r)
        t = time.perf_counter()
        rep = client.sync_once(max_batches=10**6)
        dt_s = time.perf_counter() - t
        client.close()
        n_events = r.writer.execute("SELECT count(*) FROM events WHERE uid LIKE 'BENCHEV%'").fetchone()[0]
    return {"changes": rep.pulled, "seconds": dt_s, "per_s": rep.pulled / dt_s if dt_s else 0.0, "server_head": pushed,
            "server_push_s": server_s, "events": n_events, "error": rep.error}  # fmt: skip


# -- push throughput -----------------------------------------------------------------------------------
def push_throughput(pg: TempPostgres, seed_db: Path, work: Path, n: int) -> dict:
    import bench.sync_desk as sync_desk
    from db.replica import open_replica
    from db.sync.client import SyncClient

    dsn = _fresh_upstream(pg, "push", seed_db)
    base = work / "push-base.db"
    sync_faults.clone_base(dsn, _desk_dsn(pg, "push"), seed_db, base)
    path = work / "push.db"
    _client_replica(base, path, _desk_dsn(pg, "push"))
    desk = sync_desk.Desk(sync_desk.parse_args(["--db", str(path), "--seed", "3"]))
    with open_replica(path, create=False) as r:
        c = r.writer
        desk.departments = [x[0] for x in c.execute("SELECT code FROM departments")]
        desk.categories = [x[0] for x in c.execute("SELECT code FROM categories WHERE code LIKE '%.%'")]
        desk.places = [tuple(x) for x in c.execute("SELECT lon, lat FROM events WHERE lon IS NOT NULL LIMIT 200")]
        t = time.perf_counter()
        while c.execute("SELECT count(*) FROM outbox").fetchone()[0] < n:
            try:
                desk.write_one(r)
                desk.writes += 1
            except Exception:  # noqa: BLE001 - a refused local write
                pass
        write_s = time.perf_counter() - t
        client = SyncClient(r)
        t = time.perf_counter()
        rep = client.sync_once(max_batches=1)
        dt_s = time.perf_counter() - t
        client.close()
    return {"pushed": rep.pushed, "applied": rep.applied, "rejected": rep.rejected, "seconds": dt_s,
            "per_s": rep.pushed / dt_s if dt_s else 0.0, "local_write_ms": write_s / max(n, 1) * 1000,
            "error": rep.error}  # fmt: skip


# -- snapshot clone ----------------------------------------------------------------------------------------
def clone_demo(pg: TempPostgres, work: Path) -> dict:
    src = DATA / "demo-100000.db"
    if not src.exists():  # a worktree shares the main checkout's cached demo
        src = Path("/work/main/bench/.data/demo-100000.db")
    if not src.exists():
        return {"skipped": f"{src} missing (python bench/bench_console.py makes it)"}
    copy = work / "demo-100000.db"
    from db.replica import open_replica

    with open_replica(src, create=False) as r:  # a consistent copy (the cached file may have a WAL)
        r.backup_to(copy)
    with open_replica(copy, create=False):
        pass  # migrate the copy to this build's schema before seeding
    from db.sync.upstream import add_desk, init_upstream, seed_upstream

    with _admin(pg.dsn()) as conn:
        conn.execute("CREATE DATABASE demo")
    dsn = pg.dsn(dbname="demo")
    init_upstream(dsn)
    t = time.perf_counter()
    counts = seed_upstream(dsn, copy)
    seed_s = time.perf_counter() - t
    add_desk(dsn, sync_faults.DESK_ROLE, sync_faults.DESK_PASSWORD, None)
    target = work / "clone-100000.db"
    t = time.perf_counter()
    how = sync_faults.clone_base(dsn, _desk_dsn(pg, "demo"), copy, target)
    clone_s = time.perf_counter() - t
    with sqlite3.connect(target) as c:
        n = c.execute("SELECT count(*) FROM events").fetchone()[0]
    return {"seed_s": seed_s, "clone_s": clone_s, "events": n, "how": how, "size_mb": target.stat().st_size / 2**20,
            "seeded": counts.get("events")}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="sync figures (issue 9)")
    p.add_argument("--replicas", type=int, default=17)
    p.add_argument("--rates", default="20", help="writes/client/s for the convergence runs, comma separated")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--pull-changes", type=int, default=20000)
    p.add_argument("--push-mutations", type=int, default=1500)
    p.add_argument("--skip-clone", action="store_true")
    p.add_argument("--skip-convergence", action="store_true")
    p.add_argument("--skip-pull", action="store_true")
    p.add_argument("--skip-push", action="store_true")
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="onemap-bench-sync-"))
    rows: list[tuple[str, str, str]] = []
    notes = []
    pg = TempPostgres().start()
    sync_faults.durable_commits(pg)
    try:
        seed_db = sync_faults.make_demo(work / "seed.db", 400)
        for k, rate in enumerate(float(x) for x in a.rates.split(",") if x.strip()):
            if a.skip_convergence:
                break
            conv = convergence(pg, seed_db, work, replicas=a.replicas, rate=rate, seconds=a.seconds, name=f"conv{k}")
            s = conv["samples"]
            rows.append((f"convergence after heal, {a.replicas} replicas at {rate:g} writes/client/s (p95)",
                         f"{pct(s, 95):.2f} s (p50 {pct(s, 50):.2f}, max {max(s):.2f}, n={len(s)}, timeouts {conv['timeouts']}; "
                         f"achieved {conv['writes_per_desk_s']:.1f} writes/client/s)" if s else "no sample",
                         "p95 ≤ 2 s"))  # fmt: skip
        pull = None if a.skip_pull else pull_throughput(pg, seed_db, work, a.pull_changes)
        if pull:
            rows.append(("pull apply throughput", f"{pull['per_s']:,.0f} changes/s ({pull['changes']:,} changes in "
                     f"{pull['seconds']:.2f} s)", "≥ 20,000 changes/s"))  # fmt: skip
        if pull:
            notes.append(f"Pull: {pull['server_head']:,} changes made on the server in {pull['server_push_s']:.1f} s "
                     f"(push_mutation in SQL, reports + accepts of {pull['events']:,} new events); error: {pull['error']}.")  # fmt: skip
        push = None if a.skip_push else push_throughput(pg, seed_db, work, a.push_mutations)
        if push:
            rows.append(("push throughput, one client", f"{push['per_s']:,.0f} mutations/s ({push['pushed']:,} in "
                     f"{push['seconds']:.2f} s; {push['applied']} applied, {push['rejected']} refused)", "report it"))  # fmt: skip
        if push:
            notes.append(f"Push: local writes through db/event_ops took {push['local_write_ms']:.1f} ms each; error: {push['error']}.")
        if not a.skip_clone:
            cl = clone_demo(pg, work)
            if "skipped" in cl:
                rows.append(("snapshot clone of the demo replica", cl["skipped"], "report it"))
            else:
                rows.append(("snapshot clone of the demo replica", f"{cl['clone_s']:.1f} s ({cl['events']:,} events, "
                             f"{cl['size_mb']:.0f} MiB; {cl['how']})", "report it"))  # fmt: skip
                rows.append(("seed upstream from the demo replica", f"{cl['seed_s']:.1f} s ({cl['seeded']:,} events)", "-"))
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    notes.append(f"Machine load at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) on "
                 f"{os.cpu_count()} CPUs shared with other work: figures are pessimistic.")  # fmt: skip
    write_table("sync", "Sync (issue 9)", rows, notes="\n\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
