"""``onemap --db PATH sync [--upstream DSN] [--once]``: push the outbox and pull the upstream's changes.

- ``--once``: one round (hello, push every pending mutation, pull until idle) and exit:
  0 done (also when the upstream refused some changes: they are in ``sync_refusals``),
  1 the upstream could not be reached or the replica is not a sync client, 2 usage.
- Without ``--once``: keeps running; a round every second, woken earlier by the upstream's
  ``NOTIFY onemap_changes`` (only a hint: it polls anyway). Ctrl-C exits 0.
- ``--upstream`` (before or after the subcommand) overrides the DSN the replica remembers.
One line per round on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

NAME = "sync"
POLL_S = 1.0


def add_upstream_option(p: argparse.ArgumentParser) -> None:
    """``--upstream DSN`` on a sub-parser unless the global options already gave it one."""
    if "--upstream" not in p._option_string_actions:  # the global option (app/cli.py) may add it
        p.add_argument("--upstream", metavar="DSN", default=argparse.SUPPRESS,
                       help="PostgreSQL upstream, e.g. 'host=… dbname=… user=…' or postgresql://…")  # fmt: skip


def add_parser(sub) -> None:
    from app import cli

    p = sub.add_parser("sync", help="push local changes to the upstream and pull its changes (同步)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    cli.add_global_options(p)
    add_upstream_option(p)
    p.add_argument("--once", action="store_true", help="one round, then exit")


def run(args: argparse.Namespace) -> int:
    from app import cli
    from db.replica import open_replica
    from db.sync.client import SyncClient, SyncNotConfigured

    if not Path(args.db).exists():
        print(f"onemap: sync: {args.db}: no such replica file (make one with: onemap --db PATH clone "
              "--upstream DSN)", file=sys.stderr)  # fmt: skip
        return cli.EXIT_FAIL
    dsn = getattr(args, "upstream", None) or None
    replica = open_replica(args.db, create=False)
    try:
        try:
            client = SyncClient(replica, dsn)
        except SyncNotConfigured as exc:
            print(f"onemap: sync: {exc}", file=sys.stderr)
            return cli.EXIT_FAIL
        try:
            if args.once:
                rep = client.sync_once()
                print(f"sync: {rep.summary()}", file=sys.stderr)
                return cli.EXIT_OK if rep.online and rep.error is None else cli.EXIT_FAIL
            return _loop(client)
        finally:
            client.close()
    finally:
        replica.close()


def _loop(client) -> int:
    from app import cli

    waker = _Waker(client.dsn)
    try:
        while True:
            rep = client.sync_once()
            print(f"sync {time.strftime('%H:%M:%S')}: {rep.summary()}", file=sys.stderr, flush=True)
            waker.wait(POLL_S)
    except KeyboardInterrupt:
        print("sync: stopped", file=sys.stderr)
        return cli.EXIT_OK
    finally:
        waker.close()


class _Waker:
    """LISTEN on the upstream's change channel: a notification ends the wait early (a hint only)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = None

    def wait(self, seconds: float) -> None:
        import psycopg

        from db.sync.protocol import CHANNEL

        try:
            if self.conn is None or self.conn.closed or self.conn.broken:
                self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
                self.conn.execute(f"LISTEN {CHANNEL}")
            for _ in self.conn.notifies(timeout=seconds, stop_after=1):
                pass
        except psycopg.Error:
            self.close()
            time.sleep(seconds)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self.conn = None
