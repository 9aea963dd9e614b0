"""数据导入 (import a feed file): choose the file, its format, encoding and datum; the import runs
in a worker with a progress bar and a 取消 button; the result shows what was created, updated,
unchanged and quarantined, and opens the quarantine panel when records were held back.

A thin view over :func:`db.intake.import_file` (the same call as ``onemap import``): the worker
reports through a queued signal (:class:`widgets.intake_common.CancellableTask`), never touching
a widget; the UI thread only moves the bar. Cancelling a small file (≤ 50,000 records, one
transaction) writes nothing; cancelling a larger one keeps the chunks already committed under an
incomplete run, which importing the same file again resumes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.intake_views import (
    DATUMS,
    DATUMS_EN,
    ENCODINGS,
    ENCODINGS_EN,
    IMPORT_FORMATS,
    IMPORT_FORMATS_EN,
    bilingual,
    guess_format,
    import_details,
    import_reason_line,
    import_summary,
)
from widgets.intake_common import CountTile, TaskDialog, human_error, labelled_form, plain

FILE_FILTER = "数据文件 (*.csv *.txt *.json *.jsonl *.ndjson *.xml);;所有文件 (*)"
FILE_FILTER_EN = "Data files (*.csv *.txt *.json *.jsonl *.ndjson *.xml);;All files (*)"
BAR_MAX = TaskDialog.BAR_MAX


def _import(replica, path, fmt, *, encoding, datum, actor, progress, cancel):
    from db.intake import import_file

    return import_file(replica, path, fmt, encoding=encoding, datum=datum, actor=actor, progress=progress,
                       cancel=cancel)  # fmt: skip


class ImportDialog(TaskDialog):
    """``imported(result)`` after a run (complete or cancelled); ``openQuarantine()`` when the
    operator asks to see the held-back records."""

    imported = Signal(object)
    openQuarantine = Signal()
    HOLD_TEXT_WHILE_CANCELLING = True

    def __init__(self, replica, actor: str, parent: QWidget | None = None, *, start_dir: str | None = None,
                 lang: str = "zh") -> None:  # fmt: skip
        super().__init__(parent, lang=lang)
        t, en = self._tr, lang == "en"
        self.setObjectName("ImportDialog")
        self.setWindowTitle(t("数据导入 — 一张图指挥台", "Data import — OneMap Console"))
        self.resize(780, 680)
        self.replica = replica
        self.actor = actor
        self.result = None
        self.error: BaseException | None = None
        self._start_dir = start_dir or str(Path.home())

        # -- the form --
        self.path = QLineEdit(self)
        self.path.setObjectName("importPath")
        self.path.setPlaceholderText(t("选择要导入的文件（12345 工单 CSV、Open311、数字城管、物联告警）",
                                            "Choose a file (12345 ticket CSV, Open311, city management, IoT alarms)"))
        self.path.setClearButtonEnabled(True)
        self.path.textChanged.connect(self._on_path)
        self.browse = QPushButton(t("浏览…", "Browse…"), self)
        self.browse.setAutoDefault(False)
        self.browse.clicked.connect(self.choose_file)
        self.fmt = QComboBox(self)
        self.fmt.setObjectName("importFormat")
        for code, text in IMPORT_FORMATS.items():
            self.fmt.addItem(f"{IMPORT_FORMATS_EN.get(code, text) if en else text}  · {code}", code)
        self.encoding = QComboBox(self)
        self.encoding.setObjectName("importEncoding")
        for code, text in ENCODINGS.items():
            self.encoding.addItem(ENCODINGS_EN.get(code, text) if en else text, code)
        self.encoding.setToolTip(t("文件编码：默认自动识别 UTF-8（含 BOM）或 GB18030/GBK",
                                   "File encoding: UTF-8 (with BOM) or GB18030/GBK detected by default"))
        self.datum = QComboBox(self)
        self.datum.setObjectName("importDatum")
        for code, text in DATUMS.items():
            self.datum.addItem(DATUMS_EN.get(code, text) if en else text, code)
        self.datum.setToolTip(t("文件未逐行给出「坐标系」时采用的坐标系；入库时统一转换为 WGS-84，并保留原始坐标",
                                "Datum used when rows name none; stored as WGS-84, original coordinates kept"))

        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        form = labelled_form()
        form.addRow(plain(t("文件", "File"), wrap=False), row)
        form.addRow(plain(t("格式", "Format"), wrap=False), self.fmt)
        form.addRow(plain(t("编码", "Encoding"), wrap=False), self.encoding)
        form.addRow(plain(t("坐标系", "Datum"), wrap=False), self.datum)

        # -- progress --
        self._progress_widgets("importProgress")
        self.bar.setValue(0)
        self.bar.setFormat("%p%")

        # -- the result --
        self.tiles = {
            "created": CountTile(t("新建", "Created"), "created"),
            "updated": CountTile(t("更新", "Updated"), "updated"),
            "unchanged": CountTile(t("未变", "Unchanged"), "unchanged"),
            "quarantined": CountTile(t("隔离", "Quarantined"), "quarantined"),
        }
        tiles = QHBoxLayout()
        tiles.setSpacing(8)
        for tile in self.tiles.values():
            tiles.addWidget(tile, 1)
        self.detail = plain("", "dialogHint")
        self.reasons = QListWidget(self)
        self.reasons.setObjectName("importReasons")
        self.reasons.setMinimumHeight(96)
        self.reasons.hide()
        self.result_box = QWidget(self)
        rb = QVBoxLayout(self.result_box)
        rb.setContentsMargins(0, 0, 0, 0)
        rb.addWidget(plain(t("导入结果", "Import result"), "subTitle"))
        rb.addLayout(tiles)
        rb.addWidget(self.detail)
        rb.addWidget(self.reasons)
        self.result_box.hide()

        # -- buttons --
        self.quarantine_button = QPushButton(t("查看隔离区", "Open quarantine"), self)
        self.quarantine_button.setObjectName("openQuarantineButton")
        self.quarantine_button.setProperty("kind", "overlay")
        self.quarantine_button.setAutoDefault(False)
        self.quarantine_button.clicked.connect(self._open_quarantine)
        self.quarantine_button.hide()
        buttons = self._task_buttons(t("开始导入", "Start import") + "  Ctrl+Enter", "importCancelButton")
        buttons.insertWidget(0, self.quarantine_button)

        lay = QVBoxLayout(self)
        lay.setSpacing(8)
        lay.addWidget(plain(t("数据导入", "Data import"), "DialogTitle"))
        lay.addWidget(plain(t(
            "按（来源，来源编号）识别记录：重复导入同一文件不会产生新事件。无法入库的记录进入隔离区，"
            "注明文件、行号和原因，可修正后重新提交。",
            "Records are matched by (source, source id): importing a file again creates no new events. Records that "
            "cannot be stored go to quarantine with file, line and reason, to be fixed and resubmitted."),
            "dialogHint"))  # fmt: skip
        lay.addLayout(form)
        lay.addSpacing(4)
        lay.addWidget(self.bar)
        lay.addWidget(self.progress_text)
        lay.addWidget(self.message)
        lay.addWidget(self.result_box, 1)
        self.spacer = QWidget(self)  # keeps the buttons at the bottom before there is a result
        lay.addWidget(self.spacer, 1)
        lay.addLayout(buttons)
        self.path.setFocus()

    # -- the form --------------------------------------------------------------------------------
    def choose_file(self) -> None:
        t = self._tr
        path, _ = QFileDialog.getOpenFileName(self, t("选择导入文件", "Choose the file to import"), self._start_dir,
                                              t(FILE_FILTER, FILE_FILTER_EN))  # fmt: skip
        if path:
            self.set_file(path)

    def set_file(self, path: str, fmt: str | None = None) -> None:
        self.path.setText(str(path))
        if fmt:
            self.set_format(fmt)

    def set_format(self, fmt: str) -> None:
        i = self.fmt.findData(fmt)
        if i < 0:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt.setCurrentIndex(i)

    def set_encoding(self, encoding: str | None) -> None:
        i = self.encoding.findData(encoding)
        if i < 0:
            self.encoding.addItem(str(encoding), encoding)
            i = self.encoding.count() - 1
        self.encoding.setCurrentIndex(i)

    def set_datum(self, datum: str) -> None:
        i = self.datum.findData(datum)
        if i >= 0:
            self.datum.setCurrentIndex(i)

    def _on_path(self, text: str) -> None:
        fmt = guess_format(text.strip())
        if fmt and not self.task.running:
            self.fmt.setCurrentIndex(self.fmt.findData(fmt))

    # -- running -----------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the import in a worker. Returns False when the form is not ready or one runs."""
        if self.task.running:
            return False
        t = self._tr
        text = self.path.text().strip()
        if not text:
            self.message.say("warn", t("请先选择要导入的文件", "Choose the file to import first"))
            self.path.setFocus()
            return False
        path = Path(text).expanduser()
        if not path.is_file():
            self.message.say("error", t(f"找不到文件：{path}", f"No such file: {path}"))
            self.path.setFocus()
            return False
        fmt = self.fmt.currentData()
        self.result, self.error = None, None
        self.bar.setValue(0)
        self.progress_text.setText(t(f"正在准备：{path.name}（载入网格、地名库与映射表）…",
                                     f"Preparing: {path.name} (loading grids, gazetteer and mappings)…"))
        self.message.say("", "")
        self.result_box.hide()
        self.quarantine_button.hide()
        self._set_running(True)
        self.task.start(_import, self.replica, str(path), fmt, encoding=self.encoding.currentData(),
                        datum=self.datum.currentData(), actor=self.actor)  # fmt: skip
        return True

    def cancel(self) -> None:
        """取消: stop the running import at its next batch."""
        if not self.task.running:
            return
        super().cancel()
        self.progress_text.setText(self._tr("正在取消：当前批次处理完即停止…",
                                            "Cancelling: stops once the current batch is done…"))

    def _on_progress(self, fraction: float, text: str) -> None:
        super()._on_progress(fraction, bilingual(text, self.lang))

    def _set_running(self, on: bool) -> None:
        for w in (self.path, self.browse, self.fmt, self.encoding, self.datum, self.start_button):
            w.setEnabled(not on)
        super()._set_running(on)
        self.close_button.setText(self._tr("关闭", "Close") + "  Esc")

    def _on_result(self, result) -> None:
        self.result = result
        self._show_result(result)
        self.imported.emit(result)

    def _on_error(self, exc: BaseException) -> None:
        from db.intake import ImportBusy, ImportFileError, ImportOptionError

        t = self._tr
        self.error = exc
        self.bar.setValue(0)
        self.progress_text.setText("")
        why = bilingual(human_error(exc), self.lang)
        if isinstance(exc, ImportOptionError):
            self.message.say("error", t(f"导入选项有误：{why}", f"Invalid import options: {why}"))
        elif isinstance(exc, ImportFileError):
            self.message.say("error", t(f"文件无法按所选格式读取，未导入任何记录：{why}",
                                        f"The file cannot be read in the chosen format; nothing was imported: {why}"))
        elif isinstance(exc, ImportBusy):
            self.message.say("warn", t(f"该文件正在导入中：{why}", f"This file is being imported right now: {why}"))
        else:
            self.message.say("error", t(f"导入失败：{type(exc).__name__}: {exc}",
                                        f"Import failed: {type(exc).__name__}: {bilingual(str(exc), self.lang)}"))

    def _show_result(self, r) -> None:
        cancelled = r.status == "cancelled"
        self.bar.setValue(self.bar.value() if cancelled else BAR_MAX)
        for key, tile in self.tiles.items():
            n = getattr(r, key)
            tile.set_value(n, alert=key == "quarantined" and n > 0)
        t, lang = self._tr, self.lang
        self.detail.setText(import_details(r, lang))
        self.reasons.clear()
        for kind, n in r.reasons.most_common():
            self.reasons.addItem(import_reason_line(kind, n, r.examples.get(kind, []), lang))
        self.reasons.setVisible(bool(r.reasons))
        self.result_box.show()
        self.spacer.hide()
        self.quarantine_button.setVisible(r.quarantined > 0)
        if cancelled:
            self.progress_text.setText(t("已取消", "Cancelled"))
            if r.run_id is not None and r.records:
                self.message.say("warn", t(
                    f"导入已取消：已提交 {r.records:,} 条（整批提交），导入批次 {r.run_uid} 标记为未完成；"
                    "再次导入同一文件将从中断处继续，不会重复。",
                    f"Import cancelled: {r.records:,} records committed (whole chunks); import run {r.run_uid} is "
                    "marked incomplete. Importing the same file again resumes where it stopped, without duplicates."))
            else:
                self.message.say("warn", t("导入已取消：未写入任何记录。", "Import cancelled: nothing was written."))
        else:
            self.progress_text.setText(t("完成：", "Done: ") + import_summary(r, lang))
            if r.quarantined:
                self.message.say("warn", t(f"导入完成，{r.quarantined:,} 条记录进入隔离区，请核对原因后修正或丢弃。",
                                           f"Import done; {r.quarantined:,} record(s) went to quarantine: check the "
                                           "reasons, then fix or discard them."))
            else:
                self.message.say("ok", t("导入完成，全部记录已入库。", "Import done; every record was stored."))

    def _open_quarantine(self) -> None:
        self.openQuarantine.emit()

    # -- closing -------------------------------------------------------------------------------------
    def _closing(self) -> None:
        self.close_button.setText(self._tr("正在取消…", "Cancelling…"))
