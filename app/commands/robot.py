"""``onemap --db PATH robot run [--json]`` and friends: the grid robot from the command line.

- ``robot run [--json] [--now DATETIME]`` runs every rule once and prints every open warning
  after the pass, old and new. With ``--json`` stdout holds exactly one JSON object
  ``{"warnings": [...], "errors": [...]}``; logs go to stderr; exit 0 (a failing rule is listed
  in ``errors``, it does not fail the command).
- ``robot list [--json] [--status S]`` prints warnings without running the rules.
- ``robot rules`` prints every rule's thresholds; ``robot set RULE KEY VALUE`` changes one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "robot"


def add_parser(sub) -> None:
    from app import cli

    p = sub.add_parser("robot", help="grid robot: proactive warnings (智能预警)")
    cli.add_global_options(p)
    rs = p.add_subparsers(dest="robot_command", metavar="ACTION")
    run = rs.add_parser("run", help="run every rule once and print every open warning")
    cli.add_global_options(run)
    run.add_argument("--json", action="store_true", help="one JSON object on stdout")
    run.add_argument("--now", metavar="DATETIME", help="evaluate as of this time (default: now, Asia/Shanghai)")
    lst = rs.add_parser("list", help="print warnings without running the rules")
    cli.add_global_options(lst)
    lst.add_argument("--json", action="store_true", help="one JSON object on stdout")
    lst.add_argument("--status", choices=("open", "accepted", "dismissed", "cleared", "all"), default="open")
    rules = rs.add_parser("rules", help="print every rule's thresholds and precision")
    cli.add_global_options(rules)
    st = rs.add_parser("set", help="set a rule's threshold, e.g. robot set hotspot radius_m 150")
    cli.add_global_options(st)
    st.add_argument("rule")
    st.add_argument("key")
    st.add_argument("value", type=float)


def _session(args):
    from app.state import Session

    return Session(role=args.role, scope=args.scope, user=getattr(args, "user", None), lang=args.lang)


def _print_text(warnings: list[dict], errors: list[dict]) -> None:
    for w in warnings:
        flag = "新 " if w.get("new") else ""
        scope = w["scope"]["grid"] or w["scope"]["street"] or "全区"
        ev = w["evidence"]
        print(f"#{w['id']} {flag}[{w['severity_zh']}] {w['rule_zh']} {scope}: {w['explanation_zh']}")
        print(f"    建议：{w['suggested_action']}")
        print(f"    依据：事件 {len(ev['events'])} 件 · 人员 {len(ev['people'])} · 设备 {len(ev['devices'])}")
    for e in errors:
        print(f"规则 {e['rule']} 未运行：{e['error']}")
    print(f"共 {len(warnings)} 条待研判预警", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from app import cli, timeutil
    from app.robot import engine, views
    from db.replica import open_replica

    action = getattr(args, "robot_command", None)
    if action is None:
        raise cli.UsageError("robot needs an action: run, list, rules or set")
    if not Path(args.db).exists():
        print(f"onemap: robot: {args.db}: no such replica file (create one with: onemap demo)", file=sys.stderr)
        return cli.EXIT_FAIL
    now = None
    if getattr(args, "now", None):
        try:
            now = timeutil.parse(args.now)
        except ValueError as exc:
            raise cli.UsageError(f"--now: not a date/time: '{args.now}' ({exc})") from exc
    session = _session(args)
    replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
    try:
        if action == "set":
            try:
                value = engine.set_threshold(replica, args.rule, args.key, args.value,
                                             actor=getattr(args, "user", None) or "cli")  # fmt: skip
            except ValueError as exc:
                raise cli.UsageError(str(exc)) from exc
            print(f"{args.rule}.{args.key} = {value:g}", file=sys.stderr)
            return cli.EXIT_OK
        conn = replica.reader()
        try:
            if action == "rules":
                params = engine.thresholds(conn)
                prec = {p.rule: p for p in views.precision_by_rule(conn)}
                for r in engine.RULES:
                    p = prec[r.name]
                    rate = "—" if p.precision is None else f"{p.precision:.0%}"
                    print(f"{r.name}  {r.title_zh}  准确率 {rate}（采纳 {p.accepted} / 已研判 {p.decided}）")
                    for key, par in r.params.items():
                        print(f"    {key} = {params[r.name][key]:g} {par.unit}  {par.label_zh}（默认 {par.default:g}）")
                return cli.EXIT_OK
        finally:
            conn.close()
        errors: list[dict] = []
        new: set[int] = set()
        if action == "run":
            result = engine.run_pass(replica, now=now, actor=getattr(args, "user", None) or "robot")
            errors, new = result.errors, set(result.new)
        status = None if getattr(args, "status", "open") == "all" else getattr(args, "status", "open")
        conn = replica.reader()
        try:
            warnings = views.list_warnings(conn, status=status, session=session, limit=1_000_000)
        finally:
            conn.close()
        for w in warnings:
            w["new"] = w["id"] in new
        if args.json:
            sys.stdout.write(json.dumps({"warnings": warnings, "errors": errors}, ensure_ascii=False) + "\n")
        else:
            _print_text(warnings, errors)
        return cli.EXIT_OK
    finally:
        replica.close()
