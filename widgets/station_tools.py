"""Queue tools for the consoles (street station and district): saved filters and CSV export.

- 筛选方案 ▾: save the queue's current filter under a name (stored in the replica's
  ``saved_filters``, per street scope), apply or delete a saved one. The role's scope is never
  part of a saved filter: applying one keeps the session's scope.
- 导出队列: the current queue (all rows of the current filter, the scope enforced) to an
  Excel-friendly CSV (UTF-8 with BOM), written by a worker.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox, QToolButton

from app import queue_export, timeutil
from db import wall_store
from widgets.workers import run_in_thread

log = logging.getLogger(__name__)


def tr(zh: str, en: str, lang: str) -> str:
    """``en`` for an English session, else ``zh``."""
    return en if lang == "en" else zh


class StationTools(QObject):
    exported = Signal(str, int)  # path, rows
    exportFailed = Signal(str)  # noqa: N815

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.replica = window.replica
        self.scope = window.state.session.street_scope or ""
        self.actor = window.service.actor
        lang = self.lang = getattr(window.state.session, "lang", "zh")
        self.menu = QMenu(tr("筛选方案", "Saved filters", lang), window)
        self.menu.setObjectName("SavedFiltersMenu")
        self.menu.aboutToShow.connect(self._fill_menu)
        self.filters_button = QToolButton()
        self.filters_button.setObjectName("SavedFiltersButton")
        self.filters_button.setText(tr("筛选方案 ▾", "Saved filters ▾", lang))
        self.filters_button.setToolTip(tr("保存当前队列筛选，或套用已保存的筛选方案", "Save the queue's filter, or apply a saved one", lang))
        self.filters_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.filters_button.setMenu(self.menu)
        self.export_button = QToolButton()
        self.export_button.setObjectName("ExportQueueButton")
        self.export_button.setText(tr("导出队列", "Export queue", lang))
        self.export_button.setToolTip(tr("把当前队列（当前筛选下的全部事件）导出为 Excel 可打开的 CSV（UTF-8 BOM）",
                                         "Export the current queue (all events of the filter) to an Excel-friendly CSV "
                                         "(UTF-8 BOM)", lang))
        self.export_button.clicked.connect(self.ask_export)
        window.header.tools.insertWidget(0, self.export_button)
        window.header.tools.insertWidget(0, self.filters_button)
        self.running = False

    # -- saved filters ------------------------------------------------------------------------------
    def saved(self) -> dict[str, dict]:
        conn = self.replica.reader()
        try:
            return wall_store.load_filters(conn, self.scope)
        finally:
            conn.close()

    def save_current(self, name: str) -> None:
        spec = queue_export.filter_spec(self.window.queue.filter())
        wall_store.save_filter(self.replica, self.scope, name, spec, actor=self.actor)

    def apply(self, name: str) -> bool:
        spec = self.saved().get(name)
        if spec is None:
            return False
        self.window.queue.set_filter(queue_export.apply_spec(self.window.queue.filter(), spec))
        return True

    def delete(self, name: str) -> bool:
        return wall_store.delete_filter(self.replica, self.scope, name)

    def _fill_menu(self) -> None:
        self.menu.clear()
        self.menu.addAction(tr("保存当前筛选…", "Save current filter…", self.lang)).triggered.connect(self._ask_save)
        saved = self.saved()
        if saved:
            self.menu.addSeparator()
            for name in saved:
                self.menu.addAction(name).triggered.connect(lambda _c=False, n=name: self.apply(n))
            self.menu.addSeparator()
            sub = self.menu.addMenu(tr("删除", "Delete", self.lang))
            for name in saved:
                sub.addAction(name).triggered.connect(lambda _c=False, n=name: self.delete(n))

    def _ask_save(self) -> None:
        title = tr("保存筛选方案", "Save filter", self.lang)
        name, ok = QInputDialog.getText(self.window, title, tr("名称：", "Name:", self.lang))
        if ok and name.strip():
            try:
                self.save_current(name)
            except ValueError as exc:
                QMessageBox.warning(self.window, title, str(exc))

    # -- export -------------------------------------------------------------------------------------
    def ask_export(self) -> None:
        default = str(Path.home() / tr("队列", "queue", self.lang) + f"-{timeutil.now():%Y%m%d-%H%M}.csv")
        path, _ = QFileDialog.getSaveFileName(self.window, tr("导出当前队列", "Export queue", self.lang), default, "CSV (*.csv)")
        if path:
            self.export(path)

    def export(self, path: str):
        """Export in a worker; ``exported(path, n)`` or ``exportFailed(message)`` afterwards."""
        if self.running:
            return None
        self.running = True
        f = self.window.queue.filter()

        def job() -> int:
            conn = self.replica.reader()
            try:
                return queue_export.export_queue_csv(conn, f, path)
            finally:
                conn.close()

        def done(n: int) -> None:
            self.running = False
            self.window.statusBar().showMessage(tr(f"已导出队列 {n} 件：{path}", f"Exported {n} queue rows: {path}", self.lang), 10000)
            self.exported.emit(path, n)

        def failed(exc: BaseException) -> None:
            self.running = False
            log.error("queue export failed", exc_info=exc)
            self.window.statusBar().showMessage(tr(f"导出失败：{exc}", f"Export failed: {exc}", self.lang), 10000)
            self.exportFailed.emit(f"{type(exc).__name__}: {exc}")

        return run_in_thread(job, on_result=done, on_error=failed)


def install_station_tools(window) -> StationTools:
    tools = StationTools(window)
    window.station_tools = tools
    return tools
