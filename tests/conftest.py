"""Test-wide setup: headless Qt + Chromium flags before any Qt import."""

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")

from widgets.qt_setup import prepare_qt  # noqa: E402

prepare_qt()
