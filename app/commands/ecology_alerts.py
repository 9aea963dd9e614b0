"""``onemap ecology-alerts``: raise the Yangtze ecology alerts (breach and camera-detection
episodes) as linked-command events, once (the console also does it every few minutes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "ecology-alerts"


def add_parser(sub) -> None:
    from app import cli

    p = sub.add_parser(NAME, help="raise ecology alerts (water-quality breaches, camera detections) as events")
    p.add_argument("--since", help="episodes touching this time or later (default: 7 days before the newest reading)")
    p.add_argument("--until", help="episodes up to this time (default: the newest reading)")
    cli.add_global_options(p)


def run(args: argparse.Namespace) -> int:
    from app import timeutil
    from app.ecology_alerts import raise_alerts
    from db.replica import open_replica

    if not Path(args.db).exists():
        print(f"onemap: {NAME}: {args.db}: no such replica file (create one with: onemap demo)", file=sys.stderr)
        return 1
    try:
        since = timeutil.parse(args.since) if args.since else None
        until = timeutil.parse(args.until) if args.until else None
    except ValueError as exc:
        print(f"onemap: {NAME}: bad time: {exc}", file=sys.stderr)
        return 2
    replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
    try:
        res = raise_alerts(replica, since=since, until=until)
    finally:
        replica.close()
    print(f"created {res.created}, extended {res.extended}, unchanged {res.unchanged}")
    return 0
