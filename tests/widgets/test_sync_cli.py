"""``onemap --db PATH --upstream DSN``: the console starts with the sync indicator (screenshot run, subprocess)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage

from db import event_ops
from db.replica import open_replica
from tests.test_cli import run
from tests.test_sync_status import make_client, new_event, refuse


def _red_badge_pixels(png) -> int:
    """Pixels of the 被拒 badge fill (#d9001b) in the status bar's right end."""
    img = QImage(str(png))
    n = 0
    for x in range(img.width() - 400, img.width()):
        for y in range(img.height() - 30, img.height()):
            c = QColor(img.pixel(x, y))
            n += abs(c.red() - 0xD9) < 12 and c.green() < 20 and abs(c.blue() - 0x1B) < 14
    return n


def test_console_with_upstream_shows_pending_and_refusals(demo_copy, tmp_path):
    with open_replica(demo_copy) as r:
        make_client(r)
        new_event(r)
        eid = new_event(r, "占道经营")
        event_ops.apply_action(r, eid, "accept", actor="op1", expected_version=1)
        refuse(r, eid, "accept")
    out = tmp_path / "console.png"
    dead = "host=127.0.0.1 port=1 dbname=onemap user=desk password=topsecret connect_timeout=1"
    res = run("--db", str(demo_copy), "--role", "district", "--screenshot", str(out), "--size", "1600x900",
              "--upstream", dead, timeout=240)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "topsecret" not in res.stderr
    assert _red_badge_pixels(out) > 100  # the red 被拒 badge is drawn


def test_upstream_on_a_plain_replica_is_reported(demo_copy, tmp_path):
    out = tmp_path / "plain.png"
    res = run("--db", str(demo_copy), "--role", "district", "--upstream", "host=h password=topsecret",
              "--screenshot", str(out), "--size", "1280x720", timeout=240)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "is not a sync replica" in res.stderr and "topsecret" not in res.stderr
    assert _red_badge_pixels(out) == 0
