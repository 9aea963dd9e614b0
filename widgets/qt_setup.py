"""Process-level Qt preparation that must happen before the QApplication exists."""

from __future__ import annotations

import os
import sys

APP_SCHEME = b"app"
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
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    if "--disable-back-forward-cache" not in flags:
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --disable-back-forward-cache").strip()


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
