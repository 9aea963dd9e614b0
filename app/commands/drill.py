"""``onemap --db PATH drill list|show ID|report ID --out FILE.html|FILE.pdf``.

``drill list`` prints every drill (past, running, scheduled), one line each: id, start time,
theme, level, status (code and words) and title. ``show ID`` prints the plan, the clock and the
MSEL with results. ``report ID --out`` writes the after-action report; a ``.pdf`` needs Qt
WebEngine, so ``main.py`` routes it to ``widgets/drill_cli.py`` (``needs_qt`` / ``QT_TARGET``).
Exit codes: 0 done, 1 could not be done (unknown drill, unwritable file), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "drill"
QT_TARGET = "widgets.drill_cli:run_drill_pdf"
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def add_parser(sub) -> None:
    from app import cli

    p = sub.add_parser("drill", help="drills: list, show, after-action report (演练)",
                       description="Drills (演练): list every drill, show one, write its after-action report.")  # fmt: skip
    cli.add_global_options(p)
    dsub = p.add_subparsers(dest="drill_command", metavar="list|show|report")
    lp = dsub.add_parser("list", help="every drill, one line each: id, time, theme, level, status")
    cli.add_global_options(lp)
    sp = dsub.add_parser("show", help="one drill: plan, clock, injects and results")
    sp.add_argument("drill_id", metavar="ID", help="drills.id as `drill list` prints it")
    cli.add_global_options(sp)
    rp = dsub.add_parser("report", help="after-action report as HTML or PDF")
    rp.add_argument("drill_id", metavar="ID", help="drills.id as `drill list` prints it")
    rp.add_argument("--out", required=True, help="FILE.html or FILE.pdf")
    cli.add_global_options(rp)


def _usage(msg: str) -> int:
    print(f"onemap: drill: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _drill_id(args) -> int | None:
    try:
        return int(str(args.drill_id).lstrip("#"))
    except ValueError:
        return None


def needs_qt(args: argparse.Namespace) -> bool:
    return getattr(args, "drill_command", None) == "report" and Path(args.out).suffix.lower() == ".pdf"


def run(args: argparse.Namespace, *, write_pdf=None) -> int:
    from db.replica import open_replica

    cmd = getattr(args, "drill_command", None)
    if cmd not in ("list", "show", "report"):
        return _usage("give list, show ID or report ID --out FILE.html|FILE.pdf")
    if cmd != "list" and _drill_id(args) is None:
        return _usage(f"ID must be a number (drills.id), not {args.drill_id!r}")
    if cmd == "report":
        suffix = Path(args.out).suffix.lower()
        if suffix not in (".html", ".htm", ".pdf"):
            return _usage(f"--out must end in .html or .pdf, not {args.out!r}")
        if suffix == ".pdf" and write_pdf is None:
            return _usage("PDF output needs Qt WebEngine: run it through the onemap command (main.py)")
        out = Path(args.out).expanduser()
        if not out.parent.is_dir():
            print(f"onemap: drill: cannot write {out}: directory {out.parent} does not exist", file=sys.stderr)
            return EXIT_FAIL
    replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
    try:
        conn = replica.reader()
        try:
            if cmd == "list":
                return _list(conn, args)
            if cmd == "show":
                return _show(conn, _drill_id(args), args)
            return _report(conn, _drill_id(args), args, write_pdf)
        finally:
            conn.close()
    finally:
        replica.close()


def _list(conn, args) -> int:
    from app.drills import queries

    rows = queries.list_drills(conn)
    for d in rows:
        print(queries.line(d, lang=args.lang))
    print(f"onemap: drill: {len(rows)} drills", file=sys.stderr)
    return EXIT_OK


def _show(conn, drill_id: int, args) -> int:
    from app.drills import clock, measure, queries

    try:
        d = queries.get_drill(conn, drill_id)
    except LookupError as exc:
        print(f"onemap: drill: {args.db}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    status = queries.STATUS_ZH.get(d["status"], d["status"])
    print(f"演练 #{d['id']}  {d['title']}")
    print(f"  主题 {d['theme']} · 层级 {queries.LEVEL_ZH[d['level']]} · 状态 {d['status']} {status}")
    print(f"  计划 {d['starts_at']} · {d['duration_min']} 分钟 · 协调员 {d['coordinator_name'] or '—'}")
    print(f"  街道 {'、'.join(d['street_names']) or '全区'} · 网格 {'、'.join(d['grids']) or '—'}")
    if d["objectives"]:
        print(f"  目标 {d['objectives']}")
    if d["started_at"]:
        print(f"  开始 {d['started_at']} · 场景时间 {clock.fmt(clock.elapsed(d))} · 倍速 ×{d['speed']:g}"
              + (f" · 结束 {d['ended_at']}" if d["ended_at"] else ""))  # fmt: skip
    if d["stop_reason"]:
        print(f"  提前结束：{d['stop_reason']}")
    summary = measure.drill_summary(conn, drill_id)
    print(f"  注入 {summary['injects']} 条，已下发 {summary['sent']}，按时 {summary['on_time']}/{summary['measured']}")
    for r in summary["results"]:
        i = r.inject
        ev = f"事件 #{r.event['id']}" if r.event else "—"
        print(f"  {i['seq']:>3} +{clock.fmt(i['offset_s'])}  {i['title']}  [{i['target_level']}/{i['target_department'] or '—'}] "
              f"{i['expected_stage']} ≤ {i['allowed_min']:g} min  {ev}  {measure.RESULT_ZH[r.result]}")  # fmt: skip
    att = summary["attendance"]
    print(f"  出勤 {att['attended']}/{att['expected']} · 网格长 {att['leaders_attended']}/{att['leaders_expected']}")
    return EXIT_OK


def _report(conn, drill_id: int, args, write_pdf) -> int:
    from app.drills import report

    try:
        rep = report.build_report(conn, drill_id, lang=args.lang)
    except LookupError as exc:
        print(f"onemap: drill: {args.db}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    out = Path(args.out).expanduser()
    try:
        if out.suffix.lower() == ".pdf":
            write_pdf(rep.html, out)
        else:
            report.write_html(rep, out)
    except (OSError, RuntimeError) as exc:
        print(f"onemap: drill: cannot write {out}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"onemap: drill: report of drill {drill_id} ({rep.data['state']['en']}) written to {out}", file=sys.stderr)
    return EXIT_OK
