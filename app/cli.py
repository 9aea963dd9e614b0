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
from app.commands import command_modules

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
THEMES = ("command", "economy", "ecology")  # layers/themes.py; user themes are switched in the console
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


_GEOMETRY_RE = re.compile(r"^(\d{2,5})x(\d{2,5})([+-]\d{1,5})([+-]\d{1,5})$")


def parse_geometry(text: str) -> tuple[int, int, int, int]:
    """``WxH+X+Y`` (X11 style) → (w, h, x, y)."""
    m = _GEOMETRY_RE.match(text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"geometry must look like 7680x1400+0+0, not '{text}'")
    w, h = parse_size(f"{m.group(1)}x{m.group(2)}")
    return w, h, int(m.group(3)), int(m.group(4))


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
    opt("--upstream", metavar="DSN", help="PostgreSQL upstream to sync with (issue 9; see docs/sync.md)")
    opt("--geometry", type=parse_geometry, metavar="WxH+X+Y", help="place the window exactly (wall mode)")
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
    _add_export_parser(sub)
    _add_import_parser(sub)
    for mod in command_modules():
        mod.add_parser(sub)
    return p


def add_global_options(p: argparse.ArgumentParser) -> None:
    """Give a sub-command parser the global options (--db, --role, --lang, …) without overriding them."""
    _add_global_options(p, suppress=True)


def extension_commands() -> dict[str, object]:
    """Sub-commands from ``app/commands``: name -> module."""
    return {mod.NAME: mod for mod in command_modules()}


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


# -- export (issue 4 §4) ----------------------------------------------------------------------------
EXPORT_FORMATS = ("geojson", "csv", "gpkg", "open311")


def _add_export_parser(sub) -> None:
    """``export --format F --out FILE [...]``. After the command ``--scope`` is the export's street
    filter (``dest="export_scope"``; ``conflict_handler="resolve"`` lets it replace the global
    option there); before the command it stays the role's scope."""
    exp = sub.add_parser(
        "export",
        help="export the replica as GeoJSON, CSV (Excel), GeoPackage or Open311 JSON (数据导出)",
        description="Write the replica's data in a standard format. GeoJSON and CSV: one layer (events, "
        "grids or streets). GeoPackage: every spatial layer (streets, communities, grids, neighbourhoods, "
        "places, roads, devices, events), readable by GDAL and QGIS. Open311: GeoReport v2 service requests. "
        "Drill events and personal fields are left out unless asked for; personal fields need a role "
        "that may see them (district, or street for its own street).",
        conflict_handler="resolve",
    )
    _add_global_options(exp, suppress=True)
    exp.add_argument("--format", required=True, type=str.lower, choices=EXPORT_FORMATS, help="output format")
    exp.add_argument("--out", required=True, metavar="FILE", help="output file (replaced only once complete)")
    exp.add_argument(
        "--layer", metavar="L",
        help="geojson/csv: events (default), grids or streets; gpkg: all layers (default) or a comma-separated "
        "subset; open311: events",
    )  # fmt: skip
    exp.add_argument("--since", metavar="T", help="events reported at or after T (ISO date/time; naive = Asia/Shanghai)")
    exp.add_argument("--until", metavar="T", help="events reported before T")
    exp.add_argument("--scope", dest="export_scope", metavar="CODE", help="only this street (street code)")
    exp.add_argument("--include-drills", action="store_true", help="include drill events (演练)")
    exp.add_argument(
        "--include-personal", action="store_true",
        help="include reporters' names, phones and ID numbers (district role, or street role for its street)",
    )  # fmt: skip


def cmd_export(args: argparse.Namespace) -> int:
    """Exit 0 written (one summary line on stderr), 1 refused or failed (nothing written), 2 usage."""
    from app.state import Session
    from db.export import ExportError, ExportUsageError, export
    from db.export.core import parse_time, resolve_layers
    from db.replica import open_replica

    try:  # usage errors before the replica is opened
        resolve_layers(args.format, args.layer)
        parse_time(args.since, "since")
        parse_time(args.until, "until")
    except ExportUsageError as exc:
        raise UsageError(str(exc)) from exc
    scope = args.export_scope
    if scope is None and args.scope and args.role in ("district", "drill", "wall"):
        scope = args.scope  # `onemap --scope CODE export …`: these roles have no scope of their own
    session = Session(
        role=args.role, scope=args.scope if args.role in ("street", "department") else None,
        user=getattr(args, "user", None), lang=args.lang,
    )  # fmt: skip
    if not Path(args.db).exists():
        print(f"onemap: export: {args.db}: no such replica file (create one with: onemap demo)", file=sys.stderr)
        return EXIT_FAIL

    def progress(frac: float, text: str) -> None:
        log.debug("export: %3.0f%% %s", frac * 100, text)

    replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
    try:
        result = export(
            replica, args.format, args.out, layer=args.layer, since=args.since, until=args.until, scope=scope,
            include_drills=args.include_drills, include_personal=args.include_personal, session=session,
            progress=progress,
        )  # fmt: skip
    except ExportUsageError as exc:
        raise UsageError(str(exc)) from exc
    except ExportError as exc:
        from app.intake_views import bilingual  # --lang en: the English half of a "中文 english" refusal

        print(f"onemap: export: {bilingual(str(exc), args.lang)}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        replica.close()
    print(f"onemap: export: {'; '.join([result.summary(), *result.warnings])}", file=sys.stderr)
    return EXIT_OK


CLI_COMMANDS["export"] = cmd_export


# -- import (issue 4 §1–3, 5) ----------------------------------------------------------------------
IMPORT_FORMATS = ("12345-csv", "open311", "citymgmt", "iot-jsonl")


def _datum_arg(text: str) -> str:
    from db.datum import UnknownDatum, parse_datum

    try:
        return parse_datum(text)
    except UnknownDatum as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _encoding_arg(text: str) -> str:
    import codecs

    try:
        return codecs.lookup(text).name
    except LookupError:
        raise argparse.ArgumentTypeError(f"unknown encoding: {text!r} (e.g. utf-8, gbk, gb18030)") from None


def _add_import_parser(sub) -> None:
    imp = sub.add_parser(
        "import",
        help="import a feed: 12345 work orders (CSV), Open311 requests (JSON/XML), city-management cases, "
        "IoT alarms (数据导入)",
        description="Import one file into the replica. Records are identified by (source, external id): "
        "importing the same file again creates nothing. Bad records go to the quarantine with the reason; "
        "the rest is imported (exit 0). Files over 50,000 records commit in chunks under one import run; "
        "an interrupted run is finished by running the same command again.",
    )
    _add_global_options(imp, suppress=True)
    imp.add_argument("file", metavar="FILE", help="the file to import")
    imp.add_argument("--format", required=True, type=str.lower, choices=IMPORT_FORMATS, help="the file's format")
    imp.add_argument("--encoding", type=_encoding_arg, metavar="ENC",
                     help="text encoding (default: detected: UTF-8 with or without BOM, else GB18030/GBK)")  # fmt: skip
    imp.add_argument("--datum", type=_datum_arg, metavar="D",
                     help="datum of coordinates without a per-row 坐标系: WGS-84 (default), GCJ-02, BD-09, CGCS2000")  # fmt: skip
    imp.add_argument("--mapping", metavar="FILE.json",
                     help='12345 CSV header mapping, {"file header": "工单编号", …}; saved in the replica for next time')  # fmt: skip


def cmd_import(args: argparse.Namespace) -> int:
    """Exit 0 the file was processed (even with quarantined records), 1 it could not be read or the run was
    interrupted, 2 usage. The counts go to stdout as one line; details to stderr."""
    import signal
    import sqlite3
    import threading
    import time

    from db.intake import ImportBusy, ImportFileError, ImportOptionError, import_file, load_mapping_file
    from db.replica import open_replica

    try:
        mapping = load_mapping_file(args.mapping) if args.mapping else None
    except ImportOptionError as exc:
        raise UsageError(str(exc)) from exc
    path = Path(args.file).expanduser()
    if not path.is_file():
        print(f"onemap: import: {path}: {'not a file' if path.exists() else 'no such file'}", file=sys.stderr)
        return EXIT_FAIL
    if not Path(args.db).exists():
        print(f"onemap: import: {args.db}: no such replica file (create one with: onemap demo)", file=sys.stderr)
        return EXIT_FAIL
    stop = threading.Event()
    previous: dict[int, object] = {}

    def on_signal(signum, _frame) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread
            break
    from app.intake_views import bilingual

    show = getattr(args, "verbose", False) or sys.stderr.isatty()
    lang = getattr(args, "lang", None) or "zh"
    last = [0.0]

    def progress(frac: float, text: str) -> None:
        now = time.monotonic()
        if show and (now - last[0] >= 1.0 or frac >= 1.0):
            last[0] = now
            print(f"[{frac * 100:5.1f}%] {bilingual(text, lang)}", file=sys.stderr, flush=True)

    try:
        replica = open_replica(args.db, create=False)  # ReplicaError → exit 1 in main.py
        try:
            res = import_file(replica, path, args.format, encoding=args.encoding, datum=args.datum,
                              actor=getattr(args, "user", None) or "import", progress=progress, cancel=stop,
                              mapping=mapping)  # fmt: skip
        except ImportOptionError as exc:
            raise UsageError(str(exc)) from exc
        except (ImportFileError, ImportBusy) as exc:
            print(f"onemap: import: {exc}", file=sys.stderr)
            return EXIT_FAIL
        except sqlite3.Error as exc:
            print(f"onemap: import: {args.db}: {exc}", file=sys.stderr)
            return EXIT_FAIL
        finally:
            replica.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
    print(res.summary(), flush=True)
    err = sys.stderr
    resumed = f"; resumed run at record {res.resumed_from:,}" if res.resumed_from else ""
    print(f"onemap: import: {path.name} ({args.format}, {res.encoding}): {res.records:,} records in "
          f"{res.elapsed_s:.1f} s, {res.transactions} transaction(s); run {res.run_uid}{resumed}", file=err)  # fmt: skip
    for kind, n in res.reasons.most_common():
        examples = "; ".join(f"line {line}: {reason}" for line, reason in res.examples.get(kind, []))
        print(f"  quarantined {n} × {kind} (e.g. {examples})", file=err)
    if res.quarantined and res.quarantine_new != res.quarantined:
        print(f"  {res.quarantined - res.quarantine_new} of the quarantined records were already in the quarantine",
              file=err)  # fmt: skip
    extras = [(res.needs_classification, "new event(s) to classify " + ("(UNCLASSIFIED)" if lang == "en" else "(待分类)")),
              (res.suggestions, "merge suggestion(s) (possible duplicates)"),
              (res.readings, "sensor reading(s) stored"), (res.invalid_readings, "of them flagged invalid")]  # fmt: skip
    for n, text in extras:
        if n:
            print(f"  {n:,} {text}", file=err)
    if res.status == "cancelled":
        print(f"onemap: import: interrupted; run {res.run_uid} is incomplete: run the same command again to finish it",
              file=err)  # fmt: skip
        return EXIT_FAIL
    return EXIT_OK


CLI_COMMANDS["import"] = cmd_import
