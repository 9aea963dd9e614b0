"""``onemap upstream …``: administer the PostgreSQL upstream that the replicas sync through.

- ``upstream init --dsn DSN``: create/refresh schema ``onemap`` (tables, rules generated from the
  lifecycle table, functions, the ``onemap_desktop`` group role); idempotent.
- ``upstream seed --dsn DSN --from-db PATH``: load a replica's events/log/whistles as the initial
  state, and its reference data for clones (a freshly initialised upstream only).
- ``upstream add-desk --dsn DSN --role NAME --password PW [--street CODE | --department CODE]``:
  a desktop's login role; it may only call the sync functions; ``--street`` limits its writes to
  one street, ``--department`` to the events dispatched to (or summoning) one department.
- ``upstream compact --dsn DSN [--days N]``: drop feed rows every replica seen in N days has.
- ``upstream status --dsn DSN [--json]``: head seq, feed floor, clients, ledger size, content hash.

The DSN is libpq's (``"host=… dbname=… user=…"`` or ``postgresql://…``); a password may come
from ``PGPASSWORD`` or ``~/.pgpass`` instead. Exit codes: 0 done, 1 could not be done, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "upstream"
ACTIONS = ("init", "seed", "add-desk", "compact", "status")


def add_parser(sub) -> None:
    from app import cli

    p = sub.add_parser("upstream", help="administer the PostgreSQL sync upstream (上游服务器)")
    cli.add_global_options(p)
    acts = p.add_subparsers(dest="upstream_command", metavar="ACTION")

    def action(name: str, help_text: str, *, global_options: bool = True) -> argparse.ArgumentParser:
        a = acts.add_parser(name, help=help_text)
        if global_options:  # add-desk's --role is the desk's role name, not the console's --role
            cli.add_global_options(a)
        a.add_argument("--dsn", metavar="DSN", help="libpq connection string of the upstream database")
        return a

    action("init", "create or refresh the server schema: functions, ledger, feed (idempotent)")
    seed = action("seed", "load a replica's data as the initial state")
    seed.add_argument("--from-db", metavar="PATH", required=True, help="the replica to load")
    desk = action("add-desk", "create a desktop's database role (may only call the sync functions)",
                  global_options=False)  # fmt: skip
    desk.add_argument("--role", dest="desk_role", metavar="NAME", required=True, help="login role name (lower case)")
    desk.add_argument("--password", metavar="PW", required=True)
    scope = desk.add_mutually_exclusive_group()
    scope.add_argument("--street", metavar="CODE", help="street scope (omit both for the district centre)")
    scope.add_argument("--department", metavar="CODE",
                       help="department scope: its dispatched events, and check-in/note where summoned")  # fmt: skip
    comp = action("compact", "drop feed rows every replica seen recently has pulled")
    comp.add_argument("--days", type=int, default=30, help="replicas not seen for this many days are ignored (30)")
    st = action("status", "head seq, clients, ledger size and content hash")
    st.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _dsn(args: argparse.Namespace) -> str:
    from app import cli

    dsn = getattr(args, "dsn", None) or getattr(args, "upstream", None)
    if not dsn:
        raise cli.UsageError(f"upstream {args.upstream_command}: --dsn DSN is required")
    return dsn


def run(args: argparse.Namespace) -> int:
    from app import cli
    from db.sync import upstream

    action = getattr(args, "upstream_command", None)
    if action not in ACTIONS:
        raise cli.UsageError("upstream needs an action: " + ", ".join(ACTIONS))
    dsn = _dsn(args)
    try:
        if action == "init":
            upstream.init_upstream(dsn)
            print("onemap: upstream: schema onemap ready (functions, ledger, feed)", file=sys.stderr)
        elif action == "seed":
            path = Path(args.from_db).expanduser()
            counts = upstream.seed_upstream(dsn, path)
            print(f"onemap: upstream: seeded {counts['events']} events, {counts['event_log']} log rows, "
                  f"{counts['whistles']} whistles from {path}; reference data {counts['reference_bytes']:,} bytes; "
                  f"feed starts after seq {counts['head']}", file=sys.stderr)  # fmt: skip
        elif action == "add-desk":
            upstream.add_desk(dsn, args.desk_role, args.password, args.street, args.department)
            scope = (f"street {args.street}" if args.street
                     else f"department {args.department}" if args.department else "the district")  # fmt: skip
            print(f"onemap: upstream: desk role {args.desk_role} ready for {scope}", file=sys.stderr)
        elif action == "compact":
            out = upstream.compact(dsn, days=args.days)
            print(f"onemap: upstream: feed floor {out['feed_floor']} (was {out['previous_floor']}), "
                  f"{out['deleted']} feed rows dropped, head {out['head']}", file=sys.stderr)  # fmt: skip
        else:
            _print_status(upstream.upstream_status(dsn), as_json=args.json)
    except upstream.UpstreamError as exc:
        print(f"onemap: upstream {action}: {exc}", file=sys.stderr)
        return cli.EXIT_FAIL
    return cli.EXIT_OK


def _print_status(st: dict, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(st, ensure_ascii=False, default=str))
        return
    print(f"head seq      {st['head']}")
    print(f"feed floor    {st['feed_floor']}  ({st['changes']} feed rows)")
    print(f"events        {st['events']}  (log rows {st['event_log']})")
    print(f"ledger        {st['ledger']}  (rejected {st['rejected']})")
    print(f"desk roles    {st['desks']}")
    print(f"content hash  events {st['hash']['events']}  log {st['hash']['log']}")
    if st["unsafe"]:
        print(f"UNSAFE        {st['unsafe']}  (negative-control build, tests only)")
    print(f"clients       {len(st['clients'])}")
    for c in st["clients"]:
        scope = c["scope_street"] or "district"
        print(f"  {c['client_id']}  role {c['role_name']} ({scope})  mutation {c['last_mutation_id']}  "
              f"cursor {c['cursor']}  seen {c['seen_at']}")  # fmt: skip
