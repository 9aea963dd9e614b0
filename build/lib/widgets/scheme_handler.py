"""The ``app:`` URL scheme: offline Leaflet assets, our web files and generated pages.

=====================================  ==============================================
``app://assets/leaflet/...``           ``xstatic.pkg.leaflet.BASE_DIR`` (Leaflet 1.9.3)
``app://assets/markercluster/...``     ``xstatic.pkg.leaflet_markercluster.BASE_DIR``
``app://assets/folium/...``            folium's ``templates/`` (``leaflet_heat.min.js``)
``app://assets/qtwebchannel/...``      Qt's own ``:/qtwebchannel/qwebchannel.js`` resource
``app://web/...``                      ``resources/web/`` (onemap.js, onemap.css)
``app://pages/NAME.html``              pages put with :meth:`AppSchemeHandler.put_page`
=====================================  ==============================================

Anything else, or a path with ``..``, answers 404 (``UrlNotFound``).  The scheme itself is
registered before the QApplication in ``widgets/qt_setup.py``; :func:`install` puts one
shared handler on a profile (the default profile unless told otherwise).
"""

from __future__ import annotations

import logging
import mimetypes
import threading
from collections import OrderedDict
from pathlib import Path

import folium
import xstatic.pkg.leaflet as xs_leaflet
import xstatic.pkg.leaflet_markercluster as xs_markercluster
from PySide6.QtCore import QBuffer, QByteArray, QFile, QIODevice, QObject
from PySide6.QtWebEngineCore import (
    QWebEngineProfile,
    QWebEngineUrlRequestJob,
    QWebEngineUrlSchemeHandler,
)

from widgets.qt_setup import APP_SCHEME

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "resources" / "web"
ASSET_DIRS: dict[str, Path] = {
    "leaflet": Path(xs_leaflet.BASE_DIR),
    "markercluster": Path(xs_markercluster.BASE_DIR),
    "folium": Path(folium.__file__).resolve().parent / "templates",
}
QT_RESOURCES = {"qtwebchannel/qwebchannel.js": ":/qtwebchannel/qwebchannel.js"}

MIME_TYPES = {
    ".html": "text/html;charset=utf-8",
    ".htm": "text/html;charset=utf-8",
    ".js": "text/javascript;charset=utf-8",
    ".mjs": "text/javascript;charset=utf-8",
    ".css": "text/css;charset=utf-8",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".map": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".pbf": "application/x-protobuf",
}


def mime_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in MIME_TYPES:
        return MIME_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def safe_join(base: Path, rel: str) -> Path | None:
    """``base / rel`` when it stays inside ``base`` and names a file; ``None`` otherwise."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." or "\x00" in p for p in parts):
        return None
    base = base.resolve()
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


class AppSchemeHandler(QWebEngineUrlSchemeHandler):
    """Serves the ``app:`` scheme from files, Qt resources and an in-memory page store."""

    MAX_PAGES = 8

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.requests = 0
        self.not_found: list[str] = []

    # -- generated pages ------------------------------------------------------------------
    def put_page(self, name: str, html: bytes | str) -> str:
        """Store a page (served as ``app://pages/<name>``); returns its URL.  Only the newest
        ``MAX_PAGES`` pages are kept."""
        if "/" in name or ".." in name or not name:
            raise ValueError(f"bad page name {name!r}")
        data = html.encode("utf-8") if isinstance(html, str) else bytes(html)
        with self._lock:
            self._pages[name] = data
            self._pages.move_to_end(name)
            while len(self._pages) > self.MAX_PAGES:
                self._pages.popitem(last=False)
        return f"app://pages/{name}"

    def drop_page(self, name: str) -> None:
        with self._lock:
            self._pages.pop(name, None)

    def page(self, name: str) -> bytes | None:
        with self._lock:
            return self._pages.get(name)

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self, host: str, path: str) -> tuple[bytes, str] | None:
        """(body, mime type) for ``app://host/path``, or ``None`` (→ 404)."""
        rel = path.lstrip("/")
        if any(p == ".." for p in rel.replace("\\", "/").split("/")):
            return None
        if host == "pages":
            data = self.page(rel)
            return (data, mime_type(rel)) if data is not None else None
        if host == "web":
            target = safe_join(WEB_DIR, rel)
            return (target.read_bytes(), mime_type(target.name)) if target else None
        if host == "assets":
            if rel in QT_RESOURCES:
                f = QFile(QT_RESOURCES[rel])
                if not f.open(QIODevice.OpenModeFlag.ReadOnly):
                    return None
                try:
                    return bytes(f.readAll().data()), mime_type(rel)
                finally:
                    f.close()
            root, _, sub = rel.partition("/")
            base = ASSET_DIRS.get(root)
            if base is None:
                return None
            target = safe_join(base, sub)
            return (target.read_bytes(), mime_type(target.name)) if target else None
        return None

    def requestStarted(self, job: QWebEngineUrlRequestJob) -> None:  # noqa: N802 (Qt API)
        self.requests += 1
        url = job.requestUrl()
        try:
            found = self.resolve(url.host(), url.path())
        except OSError as exc:
            log.warning("app: scheme: %s: %s", url.toString(), exc)
            found = None
        if found is None:
            self.not_found.append(url.toString())
            log.warning("app: scheme: not found: %s", url.toString())
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        body, mime = found
        buf = QBuffer(job)  # owned by the job, freed with it
        buf.setData(QByteArray(body))
        buf.open(QIODevice.OpenModeFlag.ReadOnly)
        job.reply(mime.encode("ascii"), buf)


_keep_alive: list[AppSchemeHandler] = []


def install(profile: QWebEngineProfile | None = None) -> AppSchemeHandler:
    """The ``app:`` handler of ``profile`` (default profile), installing it once."""
    profile = profile or QWebEngineProfile.defaultProfile()
    existing = profile.urlSchemeHandler(QByteArray(APP_SCHEME))
    if isinstance(existing, AppSchemeHandler):
        return existing
    if existing is not None:
        raise RuntimeError("another handler already serves the app: scheme on this profile")
    handler = AppSchemeHandler(profile)  # parented to the profile: lives as long as it does
    profile.installUrlSchemeHandler(QByteArray(APP_SCHEME), handler)
    _keep_alive.append(handler)
    return handler


install_scheme_handler = install
"""Alias of :func:`install` (the name the app's start-up code uses)."""
