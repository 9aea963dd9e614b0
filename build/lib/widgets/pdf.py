"""HTML → PDF through a hidden ``QWebEnginePage`` (Qt glue, not a view).

Generic on purpose: the 一哨一档 dossier uses it today; drill after-action reports and
bulletins reuse it later. The HTML is written to a temporary file and loaded from there,
never with ``setHtml`` (above 2 MiB that silently prints a blank page). The page is printed
with ``printToPdf(path, layout)`` and we wait for ``pdfPrintingFinished`` in a local event
loop with a timeout. Works offscreen and when no QApplication exists yet (one is created,
after :func:`widgets.qt_setup.prepare_qt`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MARGINS_MM = (12.0, 12.0, 12.0, 13.0)  # left, top, right, bottom
_app = None  # a QApplication created here is kept alive for the process


def ensure_app():
    """The running QApplication, or a new one (after ``prepare_qt``) when there is none."""
    global _app
    from PySide6.QtWidgets import QApplication

    from widgets.qt_setup import prepare_qt

    app = QApplication.instance()
    if app is None:
        prepare_qt()
        app = QApplication(sys.argv[:1] or ["onemap"])
        _app = app
    return app


def a4_layout(margins_mm: tuple[float, float, float, float] = DEFAULT_MARGINS_MM, *, landscape: bool = False):
    """A4 page layout with margins in millimetres (left, top, right, bottom)."""
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize

    orientation = QPageLayout.Orientation.Landscape if landscape else QPageLayout.Orientation.Portrait
    return QPageLayout(
        QPageSize(QPageSize.PageSizeId.A4), orientation, QMarginsF(*margins_mm), QPageLayout.Unit.Millimeter
    )


def _wait(loop, signal_timer_ms: int) -> bool:
    """Run ``loop`` until it quits (True) or ``signal_timer_ms`` pass (False)."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.setSingleShot(True)
    timed_out = []
    timer.timeout.connect(lambda: (timed_out.append(True), loop.quit()))
    timer.start(max(1, signal_timer_ms))
    loop.exec()
    timer.stop()
    return not timed_out


def html_to_pdf(
    html: str,
    out_path: str | os.PathLike,
    *,
    timeout_ms: int = 60_000,
    layout=None,
    profile=None,
) -> None:
    """Render ``html`` (a complete, self-contained document) to the PDF ``out_path``.

    ``layout`` is a ``QPageLayout`` (default: A4 portrait, margins about 12 mm); ``profile`` a
    ``QWebEngineProfile`` (default: the default profile). Raises ``RuntimeError`` naming the
    step that failed (load, print, timeout); the output file is only replaced on success.
    """
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise RuntimeError(f"cannot write {out_path}: directory {out_path.parent} does not exist")
    ensure_app()
    from PySide6.QtCore import QEventLoop, QUrl
    from PySide6.QtWebEngineCore import QWebEnginePage

    layout = layout or a4_layout()
    deadline = time.monotonic() + timeout_ms / 1000
    workdir = Path(tempfile.mkdtemp(prefix="onemap-pdf-"))
    page = None
    try:
        src = workdir / "document.html"
        src.write_text(html, encoding="utf-8")
        tmp_pdf = workdir / "document.pdf"

        page = QWebEnginePage(profile) if profile is not None else QWebEnginePage()
        loop = QEventLoop()
        loaded: list[bool] = []
        printed: list[tuple[str, bool]] = []

        def on_loaded(ok: bool) -> None:
            loaded.append(bool(ok))
            loop.quit()

        def on_printed(path: str, ok: bool) -> None:
            printed.append((path, bool(ok)))
            loop.quit()

        page.loadFinished.connect(on_loaded)
        page.pdfPrintingFinished.connect(on_printed)

        t0 = time.perf_counter()
        page.load(QUrl.fromLocalFile(str(src)))
        remaining = int((deadline - time.monotonic()) * 1000)
        if not loaded and not _wait(loop, remaining):
            raise RuntimeError(f"PDF: the page did not finish loading within {timeout_ms} ms")
        if not loaded[-1]:
            raise RuntimeError(f"PDF: the page failed to load ({src.stat().st_size} bytes of HTML)")
        t1 = time.perf_counter()

        page.printToPdf(str(tmp_pdf), layout)
        remaining = int((deadline - time.monotonic()) * 1000)
        if not printed and not _wait(loop, remaining):
            raise RuntimeError(f"PDF: printing did not finish within {timeout_ms} ms")
        path, ok = printed[-1]
        if not ok or not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0:
            raise RuntimeError(f"PDF: Qt WebEngine could not print to {path or tmp_pdf}")
        with tmp_pdf.open("rb") as fh:
            if fh.read(5) != b"%PDF-":
                raise RuntimeError(f"PDF: the printed file {tmp_pdf} is not a PDF")
        t2 = time.perf_counter()
        _move_into_place(tmp_pdf, out_path)
        log.debug(
            "html_to_pdf: load %.0f ms, print %.0f ms → %s", (t1 - t0) * 1000, (t2 - t1) * 1000, out_path
        )
    finally:
        if page is not None:
            page.setParent(None)
            del page  # Python owns the page: the C++ object goes now, not at an event loop that may never run
        shutil.rmtree(workdir, ignore_errors=True)


def _move_into_place(src: Path, target: Path) -> None:
    """Copy ``src`` next to ``target`` then rename, so ``target`` is never half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
