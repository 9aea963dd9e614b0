"""``onemap drill report ID --out FILE.pdf``: lends the drill command the Qt WebEngine PDF writer."""

from __future__ import annotations

import argparse

from app.commands import drill
from widgets.pdf import html_to_pdf


def run_drill_pdf(args: argparse.Namespace) -> int:
    return drill.run(args, write_pdf=html_to_pdf)
