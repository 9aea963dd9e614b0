"""Start the GUI: QApplication, first-start demo generation with progress, main window, screenshot."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from widgets.qt_setup import prepare_qt

log = logging.getLogger(__name__)
SCREENSHOT_TIMEOUT_MS = 90_000


def _load_style(app) -> None:
    from app.settings import RESOURCES

    qss = RESOURCES / "style" / "desktop.qss"
    if qss.exists():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))


def _needs_demo(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return True
    from db.replica import open_replica

    rep = open_replica(path)
    try:
        return rep.is_empty()
    finally:
        rep.close()


def _generate_with_progress(app, path: Path) -> bool:
    """First start: build the demo replica in a worker, with a progress dialog."""
    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtWidgets import QProgressDialog

    from db.demo.generate import DemoOptions, generate_demo_file
    from widgets.workers import ProgressRelay, run_in_thread

    dialog = QProgressDialog("首次启动：正在生成演示数据副本…", None, 0, 1000)
    dialog.setWindowTitle("一张图指挥台 — 首次启动")
    dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
    dialog.setMinimumDuration(0)
    dialog.setMinimumWidth(460)
    dialog.show()
    relay = ProgressRelay()
    relay.progress.connect(lambda frac, text: (dialog.setValue(int(frac * 1000)), dialog.setLabelText(text)))
    loop = QEventLoop()
    outcome: dict = {}

    def done(summary: str) -> None:
        outcome["ok"] = summary
        loop.quit()

    def failed(exc: BaseException) -> None:
        outcome["error"] = exc
        loop.quit()

    run_in_thread(
        lambda: generate_demo_file(path, DemoOptions(), progress=relay.emit_progress),
        on_result=done,
        on_error=failed,
    )
    loop.exec()
    dialog.close()
    if "error" in outcome:
        print(f"onemap: demo generation failed: {outcome['error']}", file=sys.stderr)
        return False
    log.info("%s", outcome["ok"])
    return True


def run_gui(args: argparse.Namespace) -> int:
    if args.screenshot:
        import os

        os.environ["QT_ENABLE_HIGHDPI_SCALING"] = "0"
        os.environ["QT_SCALE_FACTOR"] = "1"
    prepare_qt()
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import QApplication

    from app.state import AppState, Session
    from db.replica import ReplicaError, open_replica
    from widgets.main_window import MainWindow
    from widgets.scheme_handler import install_scheme_handler

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("OneMap Console")
    app.setFont(QFont("WenQuanYi Micro Hei", 10))
    _load_style(app)
    install_scheme_handler()
    path = Path(args.db)
    if _needs_demo(path) and not _generate_with_progress(app, path):
        return 1
    try:
        replica = open_replica(path)
    except ReplicaError as exc:
        print(f"onemap: {exc}", file=sys.stderr)
        return 1
    role, scope, user = args.role, args.scope, args.user
    desk = _desk_scope(replica)  # a sync desk whose upstream role is limited to a street or department
    if not args.screenshot and not getattr(args, "role_explicit", True):
        picked = _pick_role(replica, desk, args.lang)
        if picked is None:
            replica.close()
            return 0
        role, scope, user = picked
    if desk != (None, None):
        from app.access import desk_session

        role, scope, note = desk_session(role, scope, *desk)
        if note:
            print(f"onemap: {note}", file=sys.stderr)
    state = AppState(Session(role=role, scope=scope, user=user, lang=args.lang), theme=args.theme)
    sync_ui = None
    if role == "wall":  # issue 6: the command wall (widgets/wall_window.py)
        from widgets.wall_window import create_wall

        window = create_wall(replica, state, args, app)
        from widgets.sync_status import install_wall_sync  # issue 9: the wall shows the converged picture

        sync_ui = install_wall_sync(window, getattr(args, "upstream", None), start_worker=not args.screenshot)
    else:
        window = MainWindow(replica, state, tile_url=args.tile_url)
        window.screenshot_mode = bool(args.screenshot)  # no background writes (ecology alert scan) when shooting
        if role in ("district", "street"):  # issue 6: dashboards, saved filters, export, wall control
            from widgets.dashboard import install_console_panels

            install_console_panels(window)
        from widgets.sync_status import install_sync  # issue 9: sync indicator and background sync worker

        sync_ui = install_sync(window, getattr(args, "upstream", None), start_worker=not args.screenshot)
    # start-up objects live for the whole session: keep them out of the collector's full passes,
    # which otherwise pause the UI thread for 100 ms or more during big imports
    import gc

    gc.freeze()
    from widgets import gui_gc

    gui_gc.install(app)  # worker threads never run a collection (they could finalise Qt objects)
    size = args.size or ((1920, 1080) if args.screenshot else None)
    if size:
        window.resize(*size)
    result = {"code": 0}
    if args.screenshot:
        out = Path(args.screenshot)

        def shoot() -> None:
            _save_exact(window, out, size)
            app.quit()

        def on_ready() -> None:
            _report_ready()
            # a round trip through the page after its pushed layers (the call queue runs in order),
            # then time for the compositor: a 7680-px wall paints noticeably slower than a desktop
            settle = 1200 if (size[0] * size[1]) <= 4_000_000 else 2500
            map_view = getattr(window, "map", None)
            if map_view is not None and hasattr(map_view, "run_js"):
                map_view.run_js("1", lambda _r: QTimer.singleShot(settle, shoot))
            else:
                QTimer.singleShot(settle, shoot)

        def on_timeout() -> None:
            print(f"onemap: the map did not load within {SCREENSHOT_TIMEOUT_MS // 1000} s; no screenshot", file=sys.stderr)
            result["code"] = 1
            app.quit()

        window.mapReady.connect(on_ready)
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, on_timeout)
        window.show()
    else:
        window.mapReady.connect(_report_ready)
        if size or role == "wall":
            window.show()
        else:
            window.showMaximized()
    code = app.exec()
    if sync_ui is not None:
        sync_ui.shutdown()  # joins the sync thread before the replica closes
    window.shutdown()
    replica.close()
    return result["code"] or code


def _desk_scope(replica) -> tuple[str | None, str | None]:
    """(street, department) the replica's upstream desk role is limited to; (None, None) otherwise."""
    from db.sync.client import sync_state

    conn = replica.reader()
    try:
        st = sync_state(conn) or {}
    finally:
        conn.close()
    return st.get("scope_street"), st.get("scope_dept")


def _pick_role(replica, desk: tuple[str | None, str | None] = (None, None),
               lang: str = "zh") -> tuple[str, str | None, str | None] | None:  # fmt: skip
    """No --role/--station/--wall/--scope/--user: ask who is at the console (None = quit). A desk
    limited to a street or department starts on that role."""
    from PySide6.QtWidgets import QDialog

    from widgets.role_picker import RolePickerDialog

    street, dept = desk
    default = ("street", street) if street else (("department", dept) if dept else ("district", None))
    dialog = RolePickerDialog(replica, default_role=default[0], default_scope=default[1], lang=lang)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.choice()


def _report_ready() -> None:
    """For bench/: the time from the launcher's clock (ONEMAP_T0) to the map being loaded."""
    import os
    import time

    t0 = os.environ.get("ONEMAP_T0")
    if t0:
        print(f"bench: map-ready {time.time() - float(t0):.3f}", file=sys.stderr, flush=True)


def _save_exact(window, out: Path, size: tuple[int, int]) -> None:
    """Grab the window and save a PNG of exactly ``size`` at device pixel ratio 1."""
    from PySide6.QtCore import Qt

    window.resize(*size)
    img = window.grab().toImage()
    img.setDevicePixelRatio(1.0)
    if (img.width(), img.height()) != tuple(size):
        img = img.scaled(size[0], size[1], Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not img.save(str(out), "PNG"):
        raise OSError(f"cannot write {out}")
    print(f"screenshot: {out} ({img.width()}x{img.height()})", file=sys.stderr)
