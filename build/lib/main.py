"""OneMap Console 一张图指挥台 — composition root.

settings → open + migrate replica → AppState → QApplication → MainWindow.
Commands that need no Qt run from ``app.cli``; the GUI and Qt-backed commands from ``widgets``.
"""

from __future__ import annotations

import sys

from app import cli
from db.replica import ReplicaError

# Commands that need Qt for some arguments only: name -> (needs Qt?, "module:function" in widgets/).
QT_COMMANDS = {
    "dossier": (cli.dossier_needs_qt, "widgets.dossier_cli:run_dossier_pdf"),
}


def _run_qt_command(target: str, args) -> int:
    from importlib import import_module

    from widgets.qt_setup import prepare_environment

    prepare_environment()
    module, _, func = target.partition(":")
    return getattr(import_module(module), func)(args)


def main(argv: list[str] | None = None) -> int:
    args = cli.parse_args(argv)  # argparse exits 2 on a usage error
    cli.setup_logging(getattr(args, "verbose", False))
    try:
        qt_command = QT_COMMANDS.get(args.command)
        if qt_command is not None and qt_command[0](args):
            return _run_qt_command(qt_command[1], args)
        if args.command in cli.CLI_COMMANDS:
            return cli.CLI_COMMANDS[args.command](args)
        extension = cli.extension_commands().get(args.command)
        if extension is not None:
            if getattr(extension, "needs_qt", None) and extension.needs_qt(args):
                return _run_qt_command(extension.QT_TARGET, args)
            return extension.run(args)
        if args.command is None:
            from widgets.qt_setup import prepare_environment

            prepare_environment()
            from widgets.app_main import run_gui

            return run_gui(args)
        print(f"onemap: unknown command '{args.command}'", file=sys.stderr)
        return cli.EXIT_USAGE
    except cli.UsageError as exc:
        print(f"onemap: usage error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    except ReplicaError as exc:
        print(f"onemap: {exc}", file=sys.stderr)
        return cli.EXIT_FAIL
    except KeyboardInterrupt:
        print("onemap: interrupted", file=sys.stderr)
        return cli.EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
