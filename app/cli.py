"""Command-line interface (Qt-free): the parser and the commands that need no Qt.

Exit codes: 0 the job was done, 1 it could not be done, 2 usage error. Messages go to stderr.
``main.py`` is the composition root: it sends GUI runs and Qt-backed commands to ``widgets``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from app import settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
THEMES = ("command",)  # economy and ecology arrive with the three-one-maps issue
ROLES = ("district", "street", "department", "drill", "wall")
_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_RATE_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*([a-z]+))?$")
_RATE_UNITS = {
    "s": 60.0, "sec": 60.0, "second": 60.0,
    "m": 1.0, "min": 1.0, "minute": 1.0,
    "h": 1 / 60, "hr": 1 / 60, "hour": 1 / 60,
}  # fmt: skip
MAX_RATE_PER_MIN = 60_000.0

log = logging.getLogger("onemap")


class UsageError(Exception):
    """A command line that cannot be acted on (exit code 2)."""


def parse_size(text: str) -> tuple[int, int]:
    m = _SIZE_RE.match(text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080, not '{text}'")
    w, h = int(m.group(1)), int(m.group(2))
    if not (320 <= w <= 16384 and 240 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"size {w}x{h} is out of range (320x240 … 16384x8192)")
    return w, h


def parse_rate(text: str) -> float:
    """Actions per minute from ``30/min``, ``30`` (per minute), ``2/s`` or ``120/h``."""
    m = _RATE_RE.match(str(text).strip().lower())
    unit = m.group(2) if m else None
    if unit and unit.endswith("s") and unit[:-1] in _RATE_UNITS:
        unit = unit[:-1]  # 2/secs, 30/mins
    if not m or (unit is not None and unit not in _RATE_UNITS):
        raise argparse.ArgumentTypeError(f"rate must look like 30/min, 30, 2/s or 120/h, not '{text}'")
    per_min = float(m.group(1)) * _RATE_UNITS[unit or "min"]
    if not 0 < per_min <= MAX_RATE_PER_MIN:
        raise argparse.ArgumentTypeError(
            f"rate {text} is out of range (more than 0, at most {MAX_RATE_PER_MIN:.0f}/min)"
        )
    return per_min


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"duration must be a number of seconds, not '{text}'") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"duration must be more than 0 seconds, not '{text}'")
    return value


def _add_global_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Global options, accepted before or after the subcommand."""
    d = argparse.SUPPRESS if suppress else None

    def opt(*names: str, **kw: object) -> None:
        kw.setdefault("default", d if suppress else kw.get("default"))
        p.add_argument(*names, **kw)  # type: ignore[arg-type]

    opt("--db", metavar="PATH", help="replica file (default: the user's data directory)")
    opt("--lang", choices=("zh", "en"), help="UI language (default zh)")
    opt("--role", choices=ROLES, help="role: district|street|department|drill|wall")
    opt("--scope", metavar="CODE", help="scope for the role: street code or department code")
    opt("--user", metavar="PERSON_ID", help="actor written to the log")
    opt("--station", metavar="CODE", help="street station mode: --role street --scope CODE")
    opt("--wall", action="store_true", default=argparse.SUPPRESS if suppress else False, help="wall mode (--role wall)")
    opt("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False, help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="onemap",
        description="OneMap Console 一张图指挥台 — grid governance command console (Chongchuan District demo).",
    )
    _add_global_options(p, suppress=False)
    p.add_argument("--screenshot", metavar="FILE.png", help="start offscreen, save a PNG once the map has loaded, exit")
    p.add_argument("--size", type=parse_size, metavar="WxH", help="window and screenshot size, e.g. 1920x1080")
    p.add_argument("--theme", choices=THEMES, default="command", help="one-map theme to show")
    p.add_argument("--tile-url", metavar="URL", help="optional XYZ tile URL of a local tile server (off by default)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="generate the synthetic demo replica (演示数据)")
    _add_global_options(demo, suppress=True)
    demo.add_argument("--seed", type=int, default=20241, help="random seed (default 20241)")
    demo.add_argument("--until", metavar="DATETIME", help="end of the demo period (default: now, Asia/Shanghai)")
    demo.add_argument("--events", type=int, default=100_000, help="number of events (default 100000)")
    demo.add_argument("--force", action="store_true", help="replace a replica that already holds data")

    dossier = sub.add_parser("dossier", help="export an event's dossier (一哨一档) as HTML or PDF")
    _add_global_options(dossier, suppress=True)
    dossier.add_argument("event", metavar="EVENT_ID", help="events.id, the event uid, or source:external_id")
    dossier.add_argument(
        "--out", required=True, metavar="FILE.html|FILE.pdf", help="output file; its extension picks the format"
    )
    dossier.add_argument("--mask-personal", action="store_true", help="mask reporter names, phone and ID numbers")

    sim = sub.add_parser(
        "simulate",
        help="live intake simulator: new events, lifecycle steps and grid-leader moves (模拟接入)",
        description="Write realistic new events, acknowledgements/progress of open events and grid-leader "
        "moves into the replica, one short transaction per record, until interrupted (Ctrl+C, SIGTERM) "
        "or --duration. Mix: about 60%% new events, 25%% lifecycle steps, 15%% leader moves.",
    )
    _add_global_options(sim, suppress=True)
    sim.add_argument(
        "--rate", type=parse_rate, default=30.0, metavar="N/min",
        help="average actions per minute (Poisson arrivals): 30/min, 30, 2/s or 120/h (default 30/min)",
    )  # fmt: skip
    sim.add_argument("--duration", type=_positive_seconds, metavar="S", help="stop after S seconds")
    sim.add_argument("--seed", type=int, help="random seed (default: a fresh one)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    # who is at the console was given on the command line (else the GUI asks: widgets/role_picker.py)
    args.role_explicit = any(getattr(args, k, None) for k in ("role", "scope", "user", "station", "wall"))
    if args.station:
        args.role, args.scope = "street", args.station
    if args.wall:
        args.role = "wall"
    args.role = args.role or "district"
    args.lang = args.lang or "zh"
    args.db = Path(args.db).expanduser() if args.db else settings.default_db_path()
    return args


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from app.timeutil import parse
    from db.demo.generate import DemoOptions, generate_demo_file

    if args.events < 0:
        raise UsageError("--events must be ≥ 0")
    until = None
    if args.until:
        try:
            until = parse(args.until)
        except ValueError as exc:
            raise UsageError(f"--until: not a date/time: '{args.until}' ({exc})") from exc
    opts = DemoOptions(seed=args.seed, until=until, events=args.events)

    def progress(frac: float, text: str) -> None:
        print(f"[{frac * 100:5.1f}%] {text}", file=sys.stderr, flush=True)

    summary = generate_demo_file(args.db, opts, force=args.force, progress=progress)
    print(summary, file=sys.stderr)
    return EXIT_OK


DOSSIER_FORMATS = (".html", ".pdf")


def dossier_format(args: argparse.Namespace) -> str:
    """The output format from ``--out``'s extension (``.html`` or ``.pdf``); else a usage error."""
    suffix = Path(args.out).suffix.lower()
    if suffix not in DOSSIER_FORMATS:
        raise UsageError(f"--out {args.out}: unknown extension '{suffix or '(none)'}'; use .html or .pdf")
    return suffix


def dossier_needs_qt(args: argparse.Namespace) -> bool:
    """PDF output is printed by Qt WebEngine (``widgets/``); HTML needs no Qt."""
    return Path(args.out).suffix.lower() == ".pdf"


def cmd_dossier(args: argparse.Namespace, *, write_pdf=None) -> int:
    """``dossier EVENT_ID --out FILE.html|FILE.pdf``. ``write_pdf(html, path)`` is given by
    ``widgets/dossier_cli.py`` for PDF output; without it only HTML can be written here."""
    import time

    from app.dossier import build_dossier, write_html
    from db.replica import open_replica

    fmt = dossier_format(args)
    if fmt == ".pdf" and write_pdf is None:
        raise UsageError("PDF output needs Qt WebEngine: run it through the onemap command (main.py)")
    out = Path(args.out).expanduser()
    if not out.parent.is_dir():
        print(f"onemap: dossier: cannot write {out}: directory {out.parent} does not exist", file=sys.stderr)
        return EXIT_FAIL
    t0 = time.perf_counter()
    replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
    try:
        conn = replica.reader()
        try:
            dossier = build_dossier(conn, args.event, lang=args.lang, mask_personal=args.mask_personal)
        except LookupError as exc:
            print(f"onemap: dossier: {args.db}: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return EXIT_FAIL
        finally:
            conn.close()
    finally:
        replica.close()
    t1 = time.perf_counter()
    try:
        if fmt == ".pdf":
            write_pdf(dossier.html, out)
        else:
            write_html(dossier, out)
    except (OSError, RuntimeError) as exc:
        print(f"onemap: dossier: cannot write {out}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    t2 = time.perf_counter()
    log.debug("dossier %s: build %.0f ms, write %.0f ms", dossier.event_id, (t1 - t0) * 1000, (t2 - t1) * 1000)
    print(f"onemap: dossier of event {dossier.event_id} written to {out}", file=sys.stderr)
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """``simulate --rate N/min [--duration S] [--seed N]``: exit 0 when stopped (SIGINT, SIGTERM or
    --duration), 1 when the replica fails. Signals set a stop event, so the record being written
    commits and the replica is closed with its WAL checkpoint."""
    import signal
    import sqlite3
    import threading

    from app import simulate
    from db.replica import open_replica

    stop = threading.Event()
    previous: dict[int, object] = {}

    def on_signal(signum, _frame) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread (called from a test harness): no handlers
            break
    try:
        if not Path(args.db).exists():
            msg = f"onemap: simulate: {args.db}: no such replica file (create one with: onemap demo)"
            print(msg, file=sys.stderr)
            return EXIT_FAIL
        simulate.prewarm(args.db)  # overlaps the grid index build with opening the replica
        replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
        sim = None
        try:
            sim = simulate.Simulator(replica, rate_per_min=args.rate, seed=args.seed)
            log.info(
                "simulate: %s at %.4g/min (run %s)%s; stop with Ctrl+C",
                args.db, args.rate, sim.run_id, f" for {args.duration:g} s" if args.duration else "",
            )  # fmt: skip
            stats = sim.run(args.duration, stop)
        except (sqlite3.Error, simulate.SimulatorError) as exc:
            if sim is not None:
                print(f"onemap: simulate: {sim.stats.summary()}", file=sys.stderr)
            print(f"onemap: simulate: {args.db}: {exc}", file=sys.stderr)
            return EXIT_FAIL
        finally:
            if sim is not None:
                sim.close()
            replica.close()
        print(f"onemap: simulate: {stats.summary()}", file=sys.stderr)
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


CLI_COMMANDS = {"demo": cmd_demo, "dossier": cmd_dossier, "simulate": cmd_simulate}
