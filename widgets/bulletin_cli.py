"""``onemap bulletin … --out FILE.pdf``: the Qt side of the bulletin command.

``app.commands.bulletin.run`` does everything (arguments, replica, build, exit codes); this
module only lends it the Qt WebEngine PDF writer (``widgets/pdf.py``).
"""

from __future__ import annotations

import argparse

from app.commands import bulletin
from widgets.pdf import html_to_pdf


def run_bulletin_pdf(args: argparse.Namespace) -> int:
    return bulletin.run(args, write_pdf=html_to_pdf)
