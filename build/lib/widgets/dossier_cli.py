"""``onemap dossier EVENT_ID --out FILE.pdf``: the Qt side of the dossier command.

``app.cli.cmd_dossier`` does everything (arguments, replica, build, exit codes); this module
only lends it the Qt WebEngine PDF writer. ``main.py`` routes PDF output here.
"""

from __future__ import annotations

import argparse

from app import cli
from widgets.pdf import html_to_pdf


def run_dossier_pdf(args: argparse.Namespace) -> int:
    return cli.cmd_dossier(args, write_pdf=html_to_pdf)
