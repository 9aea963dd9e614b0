"""``onemap --db PATH bulletin --scope district|STREETCODE --period 2026-11|2026-W47 --out FILE.pdf|FILE.html``.

The periodic bulletin (通报). HTML is written here (Qt-free); PDF output is printed by Qt
WebEngine through ``widgets/bulletin_cli.py`` (``needs_qt`` / ``QT_TARGET``). Exit codes: 0
written (a period without data gives a bulletin that says 无数据), 1 could not be done, 2 usage
(bad period, unknown street, unknown extension).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app import cli

NAME = "bulletin"
QT_TARGET = "widgets.bulletin_cli:run_bulletin_pdf"
FORMATS = (".html", ".pdf")


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME,
        help="periodic bulletin (通报) as HTML or PDF: KPIs, rankings, charts, hot spots",
        conflict_handler="resolve",
    )
    cli.add_global_options(p)
    # its own destination, so it never clashes with the global --scope (a role's scope)
    p.add_argument("--scope", dest="bulletin_scope", default="district", metavar="district|STREETCODE",
                   help="'district' (default) or a street code, e.g. 320613001")  # fmt: skip
    p.add_argument(
        "--period",
        required=True,
        metavar="YYYY-MM|YYYY-Www",
        help="a month (2026-11) or an ISO week (2026-W47)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE.html|FILE.pdf",
        help="output file; its extension picks the format",
    )


def _format(args: argparse.Namespace) -> str:
    suffix = Path(args.out).suffix.lower()
    if suffix not in FORMATS:
        raise cli.UsageError(f"--out {args.out}: unknown extension '{suffix or '(none)'}'; use .html or .pdf")
    return suffix


def needs_qt(args: argparse.Namespace) -> bool:
    return Path(args.out).suffix.lower() == ".pdf"


def run(args: argparse.Namespace, *, write_pdf=None) -> int:
    from app.bulletin import PeriodError, build_bulletin, parse_period, write_html
    from db.replica import open_replica

    fmt = _format(args)
    try:
        parse_period(args.period)
    except PeriodError as exc:
        raise cli.UsageError(f"bulletin --period: {exc}") from None
    if fmt == ".pdf" and write_pdf is None:
        raise cli.UsageError("PDF output needs Qt WebEngine: run it through the onemap command (main.py)")
    out = Path(args.out).expanduser()
    if not out.parent.is_dir():
        print(f"onemap: bulletin: cannot write {out}: directory {out.parent} does not exist", file=sys.stderr)
        return cli.EXIT_FAIL
    t0 = time.perf_counter()
    replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
    try:
        conn = replica.reader()
        try:
            bulletin = build_bulletin(conn, args.bulletin_scope, args.period)
        except LookupError as exc:
            raise cli.UsageError(f"bulletin --scope: {exc.args[0] if exc.args else exc}") from None
        finally:
            conn.close()
    finally:
        replica.close()
    try:
        if fmt == ".pdf":
            write_pdf(bulletin.html, out)
        else:
            write_html(bulletin.html, out)
    except (OSError, RuntimeError) as exc:
        print(f"onemap: bulletin: cannot write {out}: {exc}", file=sys.stderr)
        return cli.EXIT_FAIL
    note = "" if bulletin.has_data else "（无数据 no data in this period）"
    print(f"onemap: bulletin {bulletin.title}{note} written to {out} in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)  # fmt: skip
    return cli.EXIT_OK
