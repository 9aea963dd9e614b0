"""Sub-commands added by later features, discovered by name.

Each module here defines::

    NAME = "robot"                          # the sub-command
    def add_parser(sub) -> None: ...       # adds its argparse sub-parser (call cli.add_global_options(p))
    def run(args) -> int: ...              # Qt-free; returns an exit code (0/1/2)
    # optional, for commands that need Qt for some arguments (e.g. PDF output):
    def needs_qt(args) -> bool: ...
    QT_TARGET = "widgets.module:function"

so that new commands never have to edit ``app/cli.py`` or ``main.py``.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from types import ModuleType


def command_modules() -> list[ModuleType]:
    """Every command module in this package, sorted by module name."""
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            mods.append(import_module(f"{__name__}.{info.name}"))
    return mods
