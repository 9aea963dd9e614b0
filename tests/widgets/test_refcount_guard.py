"""PySide6 6.12 on Python 3.11 drops a reference to None per void call; the guard keeps None alive."""

import sys

import pytest
from PySide6.QtGui import QColor, QImage, QPainter

from widgets import refcount_guard


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_many_void_qt_calls_do_not_kill_none(qtbot):
    assert sys.getrefcount(None) > refcount_guard.RESERVE  # installed by prepare_qt (conftest)
    img = QImage(8, 8, QImage.Format.Format_ARGB32)
    p = QPainter(img)
    for _ in range(200_000):  # more than None's natural reference count
        p.fillRect(0, 0, 2, 2, QColor(1, 2, 3))
    p.end()
    assert sys.getrefcount(None) > refcount_guard.RESERVE // 2
