"""The map: a QWebEngineView showing a page from ``layers.render.build_page``.

- :meth:`MapView.show_page` stores the HTML in the ``app:`` scheme handler and loads
  ``app://pages/map-<n>.html`` (never ``setHtml``: it fails silently above 2 MiB).
- :meth:`MapView.rebuild` builds the page on a worker thread (``build_page`` takes
  0.1–0.5 s) with its own read connection, then shows it; a newer rebuild wins.
- After load, Python talks to ``window.onemap`` with ``runJavaScript`` (data as JSON),
  the page talks back through the QWebChannel object ``bridge``.  Calls made while a
  page is loading are queued and run once it is ready.
- JS console messages go to the ``onemap.map.js`` logger (and :attr:`console_messages`).
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWebChannel import QWebChannel
from PySide6.QtWebEngineCore import QWebEnginePage, QWebEngineProfile
from PySide6.QtWebEngineWidgets import QWebEngineView

from layers.base import json_for_html
from widgets import scheme_handler
from widgets.workers import Worker, run_in_thread

log = logging.getLogger(__name__)
js_log = logging.getLogger("onemap.map.js")

BACKGROUND = "#071330"
ALLOWED_SCHEMES = {"app", "qrc", "about"}
MAX_QUEUED_CALLS = 200
_page_numbers = itertools.count(1)

_JS_LEVELS = {
    QWebEnginePage.JavaScriptConsoleMessageLevel.InfoMessageLevel: logging.INFO,
    QWebEnginePage.JavaScriptConsoleMessageLevel.WarningMessageLevel: logging.WARNING,
    QWebEnginePage.JavaScriptConsoleMessageLevel.ErrorMessageLevel: logging.ERROR,
}


class MapBridge(QObject):
    """The object the page sees as ``bridge`` (QWebChannel); slots are called from JS."""

    event_clicked = Signal(int)
    grid_clicked = Signal(str)
    feature_clicked = Signal(str, str)

    @Slot(int)
    def eventClicked(self, event_id: int) -> None:  # noqa: N802 (name seen by JS)
        self.event_clicked.emit(int(event_id))

    @Slot(str)
    def gridClicked(self, grid_id: str) -> None:  # noqa: N802 (name seen by JS)
        self.grid_clicked.emit(str(grid_id))

    @Slot(str, str)
    def featureClicked(self, layer_key: str, feature_id: str) -> None:  # noqa: N802 (name seen by JS)
        self.feature_clicked.emit(str(layer_key), str(feature_id))


class MapPage(QWebEnginePage):
    """Logs the page's console and keeps it on app:/qrc: URLs."""

    def __init__(self, profile: QWebEngineProfile, parent: QObject | None = None) -> None:
        super().__init__(profile, parent)
        self.console_messages: deque[tuple[str, str, int, str]] = deque(maxlen=500)

    def javaScriptConsoleMessage(self, level, message: str, line: int, source: str) -> None:  # noqa: N802
        py_level = _JS_LEVELS.get(level, logging.INFO)
        self.console_messages.append((logging.getLevelName(py_level), message, line, source))
        js_log.log(py_level, "%s (%s:%s)", message, source, line)

    def acceptNavigationRequest(self, url: QUrl, nav_type, is_main_frame: bool) -> bool:  # noqa: N802
        if url.scheme() in ALLOWED_SCHEMES:
            return True
        log.warning("map page: blocked navigation to %s", url.toString())
        return False


class MapView(QWebEngineView):
    """The map widget.  Signals: ``loaded(ok)``, ``eventClicked(event_id)``, ``gridClicked(grid_id)``."""

    loaded = Signal(bool)
    eventClicked = Signal(int)  # noqa: N815 (Qt-style signal name)
    gridClicked = Signal(str)  # noqa: N815
    buildFailed = Signal(str)  # noqa: N815
    featureClicked = Signal(str, str)  # noqa: N815 (layer key, feature id: buildings, stations …)

    def __init__(self, parent=None, *, profile: QWebEngineProfile | None = None) -> None:
        super().__init__(parent)
        profile = profile or QWebEngineProfile.defaultProfile()
        self.handler = scheme_handler.install(profile)
        self._page = MapPage(profile, self)
        self._page.setBackgroundColor(QColor(BACKGROUND))
        self.setPage(self._page)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.bridge = MapBridge(self)
        self.bridge.event_clicked.connect(self.eventClicked)
        self.bridge.grid_clicked.connect(self.gridClicked)
        self.bridge.feature_clicked.connect(self.featureClicked)
        self._channel = QWebChannel(self._page)
        self._channel.registerObject("bridge", self.bridge)
        self._page.setWebChannel(self._channel)
        self._ready = False
        self._queue: deque[tuple[str, Callable[[Any], None] | None]] = deque()
        self._page_name: str | None = None
        self._old_page: str | None = None
        self._build_generation = 0
        self._build_worker: Worker | None = None
        self._initial: list[str] = []
        self.page_rev: int | None = None
        """The replica revision the page shown by :meth:`rebuild` was built at (for ``build_delta``)."""
        self.loadFinished.connect(self._on_load_finished)

    # -- pages ----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """A page is loaded and ``window.onemap`` initialised."""
        return self._ready

    @property
    def console_messages(self) -> deque[tuple[str, str, int, str]]:
        """(level, message, line, source) of the page's console, newest last."""
        return self._page.console_messages

    def js_errors(self) -> list[str]:
        return [m for level, m, _, _ in self.console_messages if level == "ERROR"]

    def show_page(self, html: str | bytes, *, _initial_scripts: list[str] | None = None) -> str:
        """Serve ``html`` as ``app://pages/map-<n>.html`` and load it; returns the URL.

        Calls made before the page is ready are queued and run, in order, before
        ``loaded(True)`` is emitted."""
        name = f"map-{next(_page_numbers)}.html"
        url = self.handler.put_page(name, html)
        self._old_page, self._page_name = self._page_name, name
        self._ready = False
        self.page_rev = None
        self._initial = list(_initial_scripts or [])
        self.load(QUrl(url))
        return url

    def rebuild(
        self,
        open_conn: Callable[[], sqlite3.Connection],
        *,
        push_points: bool = True,
        transform: Callable[[str, dict], dict] | None = None,
        **build_kwargs: Any,
    ) -> Worker:
        """Build the page off the UI thread, then show it.

        ``open_conn()`` gives a read connection (closed afterwards); everything is read in
        one transaction, so polygons, points and :attr:`page_rev` are one snapshot.
        ``build_kwargs`` go to ``layers.render.build_page`` (theme, scope, tile_url, lang, now).
        With ``push_points`` (default) the page carries the polygons only and the point layers
        are pushed with ``setLayerData`` right after load (about twice as fast for 10k events).
        A newer rebuild wins: results of an older one that finishes later are dropped.
        ``transform(key, fc)`` (with ``push_points``) rewrites each pushed layer, e.g. the wall's masking.
        """
        from layers.render import build_page, layer_data, point_layer_keys

        self._build_generation += 1
        generation = self._build_generation
        theme = build_kwargs.get("theme", "command")

        def job() -> tuple[str, list[str], int]:
            from layers.command import current_rev

            conn = open_conn()
            try:
                conn.execute("BEGIN")  # one read snapshot (WAL)
                try:
                    rev = current_rev(conn)
                    html = build_page(conn, include_points=not push_points, **build_kwargs)
                    scripts = []
                    if push_points:
                        data = layer_data(
                            conn,
                            point_layer_keys(theme),
                            theme=theme,
                            scope=build_kwargs.get("scope"),
                            now=build_kwargs.get("now"),
                        )
                        if transform is not None:
                            data = {key: transform(key, fc) for key, fc in data.items()}
                        scripts = [
                            f"window.onemap.setLayerData({self._js_args(key, fc)})" for key, fc in data.items()
                        ]
                finally:
                    conn.execute("ROLLBACK")
                return html, scripts, rev
            finally:
                conn.close()

        def done(result: tuple[str, list[str], int]) -> None:
            if generation != self._build_generation:
                return
            html, scripts, rev = result
            self.show_page(html, _initial_scripts=scripts)
            self.page_rev = rev

        def failed(exc: BaseException) -> None:
            log.error("map page build failed", exc_info=exc)
            if generation == self._build_generation:
                self.buildFailed.emit(f"{type(exc).__name__}: {exc}")

        self._build_worker = run_in_thread(job, on_result=done, on_error=failed)
        return self._build_worker

    def _on_load_finished(self, ok: bool) -> None:
        if not ok:
            log.error("map page failed to load: %s", self.url().toString())
            self._ready = False
            self.loaded.emit(False)
            return
        self._page.runJavaScript("!!(window.onemap && window.onemap.ready)", 0, self._on_ready_checked)

    def _on_ready_checked(self, ready: Any) -> None:
        self._ready = bool(ready)
        if not self._ready:
            log.error("map page loaded but onemap did not initialise; console: %s", self.js_errors()[-5:])
        else:
            if self._old_page:
                self.handler.drop_page(self._old_page)
                self._old_page = None
                self.history().clear()  # earlier map pages are never navigated back to
            initial, self._initial = self._initial, []
            for js in initial:
                self._run(js, None)
            while self._queue and self._ready:
                js, cb = self._queue.popleft()
                self._run(js, cb)
        self.loaded.emit(self._ready)

    # -- calling the page ---------------------------------------------------------------------
    def _run(self, js: str, callback: Callable[[Any], None] | None) -> None:
        if callback is None:
            self._page.runJavaScript(js, 0)
        else:
            self._page.runJavaScript(js, 0, callback)

    def run_js(self, js: str, callback: Callable[[Any], None] | None = None) -> None:
        """Run ``js`` in the page now, or once the page is ready."""
        if self._ready:
            self._run(js, callback)
            return
        if len(self._queue) >= MAX_QUEUED_CALLS:
            dropped, _ = self._queue.popleft()
            log.warning("map not ready: dropped queued call %.60s", dropped)
        self._queue.append((js, callback))

    def run_json(self, js: str, callback: Callable[[Any], None]) -> None:
        """Run ``js`` (which must return JSON text, e.g. ``JSON.stringify(...)``) and pass the
        parsed value to ``callback`` (``None`` for an empty or undefined result)."""

        def parse(result: Any) -> None:
            if isinstance(result, str) and result:
                try:
                    callback(json.loads(result))
                except ValueError:
                    log.error("map: not JSON from %.60s: %.80r", js, result)
                    callback(None)
            else:
                callback(None if result in ("", None) else result)

        self.run_js(js, parse)

    @staticmethod
    def _js_args(*args: Any) -> str:
        return ", ".join(json_for_html(a) for a in args)

    def call(self, method: str, *args: Any, callback: Callable[[Any], None] | None = None) -> None:
        """``window.onemap.<method>(*args)`` with arguments passed as JSON."""
        self.run_js(f"window.onemap.{method}({self._js_args(*args)})", callback)

    def apply_delta(self, delta: dict, callback: Callable[[Any], None] | None = None) -> None:
        """Apply ``{"events": {"upsert": [...], "remove": [...]}, "grids": {"counts": {...}}, ...}``;
        ``callback`` gets ``{"upserted", "removed", "recoloured"}``."""
        if not delta:
            return
        # as a JSON string for JSON.parse: a large object literal in a one-off script costs the
        # renderer compiled boilerplate (garbage that lives until a full GC) on every delta
        js = f"window.onemap.applyDelta({json.dumps(json_for_html(delta), ensure_ascii=False)})"
        if callback is None:
            self.run_js(js)
        else:
            self.run_json(js, callback)

    def set_layer_data(self, key: str, feature_collection: dict,
                       callback: Callable[[Any], None] | None = None) -> None:
        self.call("setLayerData", key, feature_collection, callback=callback)

    def fly_to(self, lon: float | None, lat: float | None, zoom: float | None = 17,
               event_id: int | None = None) -> None:
        """Fly to (lon, lat) — or to the event's marker when lon/lat are None — and ring it."""
        self.call("flyTo", lon, lat, zoom, event_id)

    def open_event_popup(self, event_id: int, callback: Callable[[Any], None] | None = None) -> None:
        self.call("openEventPopup", event_id, callback=callback)

    def select_grid(self, grid_id: str | None) -> None:
        self.call("selectGrid", grid_id)

    def set_layer_visible(self, key: str, visible: bool) -> None:
        self.call("setLayerVisible", key, bool(visible))

    def set_drill_watermark(self, on: bool) -> None:
        self.call("setDrillWatermark", bool(on))

    def set_ui_scale(self, u: float) -> None:
        """Scale labels, controls and point symbols (wall: height ÷ 1080)."""
        self.call("setUiScale", float(u))

    def set_canvas_padding(self, padding: float) -> None:
        """Canvas overdraw beyond the view, as a share of its size (the page builds them with 0.3)."""
        self.call("setCanvasPadding", float(padding))

    def home(self) -> None:
        self.call("home")

    # -- themes (layers/themes.py): toggled in the page, the view stays -----------------------
    def set_theme(self, name: str, callback: Callable[[Any], None] | None = None) -> None:
        """Switch the page to theme ``name``; ``callback({"ok", "theme", "ms"})``."""
        js = f"window.onemap.setTheme({self._js_args(name)})"
        if callback is None:
            self.run_js(js)
        else:
            self.run_json(js, callback)

    def add_theme(self, name: str, config: dict) -> None:
        self.call("addTheme", name, config)

    def set_layer_style(self, key: str, patch: dict) -> None:
        self.call("setLayerStyle", key, patch)

    def set_filter(self, key: str, filters: list[dict] | None, callback: Callable[[Any], None] | None = None) -> None:
        """Show only the features of ``key`` passing every ``{"prop", "in": [...]}`` (None: all)."""
        self.call("setFilter", key, filters or [], callback=callback)

    def set_legend(self, sections: list[dict] | str) -> None:
        self.call("setLegend", sections)

    def count_features(self, key: str, callback: Callable[[int], None]) -> None:
        """``callback(n)``: features in layer ``key`` (-1 for an unknown layer)."""
        self.call("countFeatures", key, callback=lambda n: callback(int(n) if n not in (None, "") else -1))

    def map_state(self, callback: Callable[[dict | None], None]) -> None:
        """``callback({"center": {"lat", "lng"}, "zoom", "counts": {key: n}, "bridge", "selectedGrid"})``."""
        self.run_json("window.onemap.state()", callback)
