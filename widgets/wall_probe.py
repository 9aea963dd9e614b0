"""Bench-only probe for the wall soak (``bench/soak_wall.py``); inert unless its variables are set.

- ``ONEMAP_WALL_PROBE=FILE``: every ``ONEMAP_WALL_PROBE_S`` seconds (default 10) the wall's map page
  reports its JS heap (``performance.memory``), DOM element count, layer feature counts and label
  markers; one JSON line each is appended to FILE (with the monotonic time).
- ``ONEMAP_WALL_NO_DELTAS=1``: the wall pushes no map deltas (to bisect growth in a soak).
- ``ONEMAP_WALL_NO_ROTATION=1``: the wall's rotation stays on the first theme.
"""

from __future__ import annotations

import json
import os
import time

from PySide6.QtCore import QObject, QTimer

PROBE_JS = r"""JSON.stringify((function () {
  var m = performance.memory || {}, om = window.onemap || {}, counts = {}, labels = 0;
  try { counts = JSON.parse(om.state()).counts; } catch (e) {}
  try { labels = document.querySelectorAll('.om-label-icon').length; } catch (e) {}
  return { heap_used: m.usedJSHeapSize || 0, heap_total: m.totalJSHeapSize || 0,
           dom: document.getElementsByTagName('*').length, labels: labels, counts: counts };
})())"""


def flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


class WallProbe(QObject):
    """Samples the map page of ``view`` (a MapView) into ``path`` as JSON lines."""

    def __init__(self, view, path: str, every_s: float = 10.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.path = path
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.sample)
        self._timer.start(int(every_s * 1000))

    def sample(self) -> None:
        if self.view.ready:
            self.view.run_json(PROBE_JS, self._write)

    def _write(self, value) -> None:
        if not isinstance(value, dict):
            return
        value["t"] = round(time.monotonic(), 1)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(value) + "\n")


def install(window) -> WallProbe | None:
    """Start the probe on ``window.map`` when ``ONEMAP_WALL_PROBE`` is set."""
    path = os.environ.get("ONEMAP_WALL_PROBE")
    if not path:
        return None
    return WallProbe(window.map, path, float(os.environ.get("ONEMAP_WALL_PROBE_S", "10")), window)
