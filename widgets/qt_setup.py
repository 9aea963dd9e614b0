"""Process-level Qt preparation that must happen before the QApplication exists."""

from __future__ import annotations

import os
import sys

APP_SCHEME = b"app"
JS_INITIAL_OLD_SPACE_MB = 32
_done = False


def prepare_environment() -> None:
    """Headless and root-safe defaults for Qt and Chromium (no Qt import)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        if "--no-sandbox" not in flags:
            os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()
    os.environ.setdefault("QT_LOGGING_RULES", "qt.webenginecontext.debug=false;qt.qpa.*=false")
    # the map page is replaced in place (theme rotation on the wall, scope changes): without this,
    # Chromium keeps earlier documents alive in its back/forward cache for a console that runs for days
    add_chromium_flag("--disable-back-forward-cache")
    # V8 in the map page ran no full GC before its heap reached its (large) initial old-space
    # limit: on the wall the garbage of every delta and theme switch piled up as renderer RSS for
    # tens of minutes (bench/soak_wall.py). A small initial limit starts the collections early;
    # after the first one V8 sizes the heap by its live data as usual. The page's own churn was
    # cut first (onemap.js restyleDue, deltas as JSON text); this flag is the supplement.
    # A --js-flags given by the user wins (Chromium keeps one value per switch).
    if "--js-flags" not in os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", ""):
        add_chromium_flag(f"--js-flags=--initial-old-space-size={JS_INITIAL_OLD_SPACE_MB}")
    # QtWebEngineProcess allocates with glibc malloc: its raster and compositor threads each got
    # an arena of their own (up to 8 per core) and kept the freed canvas-sized buffers in them, so
    # the renderer's private memory swung up by 100–150 MiB and stayed there (wall soak). Two arenas
    # keep that bounded. Inherited by the Chromium processes started after this (not by this one).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")


def add_chromium_flag(flag: str) -> None:
    """Append ``flag`` to ``QTWEBENGINE_CHROMIUM_FLAGS`` unless it is there already."""
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    if flag not in flags.split():
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " " + flag).strip()


def prepare_qt() -> None:
    """Import QtWebEngine and register the ``app:`` URL scheme; call before QApplication."""
    global _done
    if _done:
        return
    prepare_environment()
    from widgets import refcount_guard

    refcount_guard.install()  # PySide6 6.12 on Python 3.11 drops references to None (see the module)
    from PySide6 import QtWebEngineWidgets  # noqa: F401  (must load before the app)
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtWebEngineCore import QWebEngineUrlScheme

    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    scheme = QWebEngineUrlScheme(APP_SCHEME)
    scheme.setSyntax(QWebEngineUrlScheme.Syntax.Host)
    scheme.setFlags(
        QWebEngineUrlScheme.Flag.SecureScheme
        | QWebEngineUrlScheme.Flag.LocalAccessAllowed
        | QWebEngineUrlScheme.Flag.CorsEnabled
        | QWebEngineUrlScheme.Flag.ContentSecurityPolicyIgnored
    )
    QWebEngineUrlScheme.registerScheme(scheme)
    _done = True
