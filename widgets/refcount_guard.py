"""Keep None, True and False alive on Python < 3.12 (a PySide6 6.12 workaround).

PySide6 6.12's wheels return ``None`` (and ``True``/``False``) from C++ calls without taking a
reference, which is correct only where these objects are immortal (Python ≥ 3.12, PEP 683).
On Python 3.11 every call of a void Qt method (``QPainter.drawLine``, ``QLabel.setText``,
``QWidget.update`` …) drops one reference to ``None``; a painting widget makes thousands of such
calls a minute, and the process aborts with "Fatal Python error: none_dealloc" after minutes
(measured here: -1 reference per call). Measured by ``tests/widgets/test_refcount_guard.py``.

:func:`install` gives these singletons a reference count so large that no run can use it up,
which is what Python 3.12 does for them. It is a no-op on 3.12 and later.
"""

from __future__ import annotations

import ctypes
import sys

RESERVE = 1 << 40  # references; a trillion void calls


def install() -> bool:
    """Raise the reference counts of None, True and False (Python < 3.12 only); True if done."""
    if sys.version_info >= (3, 12):
        return False
    for obj in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field of PyObject
        if count.value < RESERVE:
            count.value += RESERVE
    return True
