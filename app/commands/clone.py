"""``onemap --db PATH clone --upstream DSN [--force]``: a fresh replica copied from the upstream.

The reference data and one consistent snapshot of the events, their log and whistles are
copied; the new replica remembers its upstream and a new client id, and every local change is
queued for ``onemap sync`` (or the console's sync worker) from then on. An existing file is
only replaced with ``--force``. Progress on stderr. Exit 0 done, 1 could not be done, 2 usage.
"""

from __future__ import annotations

import argparse
import sys

NAME = "clone"


def add_parser(sub) -> None:
    from app import cli
    from app.commands.sync import add_upstream_option

    p = sub.add_parser("clone", help="make a fresh replica from a PostgreSQL upstream (克隆副本)")
    cli.add_global_options(p)
    add_upstream_option(p)
    p.add_argument("--force", action="store_true", help="replace an existing replica file")


def run(args: argparse.Namespace) -> int:
    from app import cli
    from db.sync.clone import CloneError, clone_replica

    dsn = getattr(args, "upstream", None)
    if not dsn:
        raise cli.UsageError("clone needs --upstream DSN (e.g. 'host=… dbname=… user=… password=…')")

    def progress(text: str) -> None:
        print(f"clone: {text}", file=sys.stderr, flush=True)

    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        print("onemap: clone: psycopg is not installed", file=sys.stderr)
        return cli.EXIT_FAIL
    try:
        out = clone_replica(args.db, dsn, force=args.force, progress=progress)
    except CloneError as exc:
        print(f"onemap: clone: {exc}", file=sys.stderr)
        return cli.EXIT_FAIL
    except psycopg.Error as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        print(f"onemap: clone: upstream unreachable or refused: {first}", file=sys.stderr)
        return cli.EXIT_FAIL
    print(f"clone: {args.db}: {out['events']:,} events, {out['log']:,} log rows, client {out['client_id']}, "
          f"cursor {out['head']}, {out['seconds']:.1f} s", file=sys.stderr)  # fmt: skip
    return cli.EXIT_OK
