"""数据导出 (export): format (GeoJSON / CSV / GeoPackage / Open311), layer, reporting period, street,
drills and personal data, output file; the export runs in a worker with progress and 取消.

A thin view over :func:`db.export.export` (the same call as ``onemap export``): the role rules
live there (a street role exports its own street only; personal fields need a role that may take
them away, :func:`db.export.personal_allowed`), so the dialog only offers what the session may
ask for and shows a refusal as it is. The output file is replaced only once complete.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import QDateTime, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import timeutil
from app.intake_views import bilingual
from widgets.intake_common import TaskDialog, human_error, labelled_form, plain

FORMATS: dict[str, tuple[str, str]] = {  # code → (label, file suffix)
    "geojson": ("GeoJSON（地图软件）", ".geojson"),
    "csv": ("CSV（Excel，UTF-8 BOM）", ".csv"),
    "gpkg": ("GeoPackage（QGIS / GDAL，全部空间图层）", ".gpkg"),
    "open311": ("Open311 GeoReport v2（JSON）", ".json"),
}
LAYER_LABELS: dict[str, str] = {
    "events": "事件",
    "grids": "网格",
    "streets": "街道",
    "communities": "社区",
    "neighbourhoods": "邻里",
    "places": "地名（小区、地标、道路）",
    "roads": "道路",
    "devices": "感知设备",
}
FORMATS_EN: dict[str, str] = {
    "geojson": "GeoJSON (map software)",
    "csv": "CSV (Excel, UTF-8 BOM)",
    "gpkg": "GeoPackage (QGIS / GDAL, every spatial layer)",
    "open311": "Open311 GeoReport v2 (JSON)",
}
LAYER_LABELS_EN: dict[str, str] = {
    "events": "Events",
    "grids": "Grids",
    "streets": "Streets",
    "communities": "Communities",
    "neighbourhoods": "Neighbourhoods",
    "places": "Places (estates, landmarks, roads)",
    "roads": "Roads",
    "devices": "Sensor devices",
}
BAR_MAX = TaskDialog.BAR_MAX
DT_FORMAT = "yyyy-MM-dd HH:mm"


def _export(replica, fmt, out, *, progress, cancel, **kwargs):
    from db.export import export

    return export(replica, fmt, out, progress=progress, cancel=cancel, **kwargs)


class ExportDialog(TaskDialog):
    """``exported(result)`` after a finished export."""

    exported = Signal(object)

    def __init__(self, replica, session, parent: QWidget | None = None, *, out_dir: str | None = None) -> None:
        super().__init__(parent, lang=getattr(session, "lang", "zh"))
        from db.export import LAYERS, personal_allowed

        t = self._tr
        self.setObjectName("ExportDialog")
        self.setWindowTitle(t("数据导出 — 一张图指挥台", "Data export — OneMap Console"))
        self.resize(720, 560)
        self.replica = replica
        self.session = session
        self.result = None
        self.error: BaseException | None = None
        self._layers = LAYERS
        self._out_dir = Path(out_dir) if out_dir else Path.home()

        self.fmt = QComboBox(self)
        self.fmt.setObjectName("exportFormat")
        for code, (text, _suffix) in FORMATS.items():
            self.fmt.addItem(FORMATS_EN[code] if self.lang == "en" else text, code)
        self.layer = QComboBox(self)
        self.layer.setObjectName("exportLayer")
        self.since_on = QCheckBox(t("起", "From"), self)
        self.until_on = QCheckBox(t("止", "To"), self)
        now = timeutil.now().replace(tzinfo=None)
        self.since = self._dt_edit("exportSince", now - dt.timedelta(days=30))
        self.until = self._dt_edit("exportUntil", now)
        self.since_on.toggled.connect(self.since.setEnabled)
        self.until_on.toggled.connect(self.until.setEnabled)
        self.since.setEnabled(False)
        self.until.setEnabled(False)
        period = QHBoxLayout()
        period.setSpacing(6)
        for w in (self.since_on, self.since, self.until_on, self.until):
            period.addWidget(w)
        period.addStretch(1)

        self.scope = QComboBox(self)
        self.scope.setObjectName("exportScope")
        conn = replica.reader()
        try:
            streets = conn.execute("SELECT code, name FROM streets ORDER BY code").fetchall()
        finally:
            conn.close()
        own = session.scope if session.role == "street" else None
        if own:
            name = next((n for c, n in streets if c == own), own)
            self.scope.addItem(name, own)
            self.scope.setEnabled(False)
            self.scope.setToolTip(t("街道岗位只能导出本街道的数据", "A street post exports its own street only"))
        else:
            self.scope.addItem(t("全区（全部街道）", "Whole district (all streets)"), None)
            for code, name in streets:
                self.scope.addItem(name, code)
        self.drills = QCheckBox(t("包含演练事件", "Include drill events"), self)
        self.drills.setObjectName("exportDrills")
        self.personal = QCheckBox(t("包含个人信息（反映人姓名、电话、证件号）", "Include personal data (name, phone, ID number)"), self)
        self.personal.setObjectName("exportPersonal")
        ok, why = personal_allowed(session)
        self.personal_allowed = ok
        self.personal.setEnabled(ok)
        self.personal.setToolTip(
            t("仅在确有需要时勾选；导出文件须按个人信息保护要求保管",
              "Tick only when really needed; the file must be kept as personal-data protection requires") if ok
            else t(f"不可导出个人信息：{why}", f"Personal data may not be exported: {bilingual(why, 'en')}"))  # fmt: skip

        self.out = QLineEdit(self)
        self.out.setObjectName("exportOut")
        self.out.setClearButtonEnabled(True)
        self.browse = QPushButton(t("浏览…", "Browse…"), self)
        self.browse.setAutoDefault(False)
        self.browse.clicked.connect(self.choose_file)
        out_row = QHBoxLayout()
        out_row.setSpacing(6)
        out_row.addWidget(self.out, 1)
        out_row.addWidget(self.browse)

        form = labelled_form()
        form.addRow(plain(t("格式", "Format"), wrap=False), self.fmt)
        form.addRow(plain(t("图层", "Layer"), wrap=False), self.layer)
        form.addRow(plain(t("上报时间", "Reported"), wrap=False), period)
        form.addRow(plain(t("范围", "Scope"), wrap=False), self.scope)
        form.addRow(plain("", wrap=False), self.drills)
        form.addRow(plain("", wrap=False), self.personal)
        form.addRow(plain(t("输出文件", "Output file"), wrap=False), out_row)

        self._progress_widgets("exportProgress")
        buttons = self._task_buttons(t("开始导出", "Start export") + "  Ctrl+Enter", "exportCancelButton")

        lay = QVBoxLayout(self)
        lay.setSpacing(8)
        lay.addWidget(plain(t("数据导出", "Data export"), "DialogTitle"))
        lay.addWidget(plain(t("演练事件与个人信息默认不导出。时间条件只作用于事件；文件写完后才替换目标文件。",
                              "Drill events and personal data are left out by default. The period applies to events; "
                              "the target file is replaced only once written."), "dialogHint"))  # fmt: skip
        lay.addLayout(form)
        lay.addSpacing(4)
        lay.addWidget(self.bar)
        lay.addWidget(self.progress_text)
        lay.addWidget(self.message)
        lay.addStretch(1)
        lay.addLayout(buttons)

        self.fmt.currentIndexChanged.connect(self._on_format)
        self.layer.currentIndexChanged.connect(self._on_layer)
        self._on_format()

    def _dt_edit(self, name: str, value: dt.datetime) -> QDateTimeEdit:
        e = QDateTimeEdit(self)
        e.setObjectName(name)
        e.setDisplayFormat(DT_FORMAT)
        e.setCalendarPopup(True)
        e.setDateTime(QDateTime(value.date(), value.time()))
        return e

    # -- the form ------------------------------------------------------------------------------------
    def set_format(self, fmt: str) -> None:
        self.fmt.setCurrentIndex(self.fmt.findData(fmt))

    def set_layer(self, layer: str | None) -> None:
        self.layer.setCurrentIndex(max(self.layer.findData(layer), 0))

    def set_period(self, since: dt.datetime | None, until: dt.datetime | None) -> None:
        for on, edit, value in ((self.since_on, self.since, since), (self.until_on, self.until, until)):
            on.setChecked(value is not None)
            if value is not None:
                edit.setDateTime(QDateTime(value.date(), value.time()))

    def set_output(self, path: str) -> None:
        self.out.setText(str(path))

    def _on_format(self) -> None:
        fmt = self.fmt.currentData()
        current = self.layer.currentData()
        self.layer.blockSignals(True)
        self.layer.clear()
        if fmt == "gpkg":
            if self.lang == "en":
                self.layer.addItem("Every spatial layer (" + ", ".join(self._layer_label(x) for x in self._layers[fmt])
                                   + ")", None)  # fmt: skip
            else:
                self.layer.addItem("全部空间图层（" + "、".join(LAYER_LABELS.get(x, x) for x in self._layers[fmt]) + "）",
                                   None)  # fmt: skip
        for name in self._layers[fmt]:
            self.layer.addItem(f"{self._layer_label(name)}  · {name}", name)
        i = self.layer.findData(current)
        self.layer.setCurrentIndex(i if i >= 0 else 0)
        self.layer.blockSignals(False)
        self._suggest_out()
        self._on_layer()

    def _layer_label(self, name: str) -> str:
        table = LAYER_LABELS_EN if self.lang == "en" else LAYER_LABELS
        return table.get(name, name)

    def _on_layer(self) -> None:
        layer = self.layer.currentData()
        events = layer in (None, "events")
        self.drills.setEnabled(events)
        self.personal.setEnabled(events and self.personal_allowed)
        for on in (self.since_on, self.until_on):
            on.setEnabled(events)
        self._suggest_out()

    def _suggest_out(self) -> None:
        """Keep the file name's suffix in step with the format (a name the operator typed stays)."""
        fmt = self.fmt.currentData()
        suffix = FORMATS[fmt][1]
        text = self.out.text().strip()
        if not text:
            layer = self.layer.currentData() or "replica"
            stamp = timeutil.now().strftime("%Y%m%d-%H%M")
            if self.lang == "en":
                name = f"chongchuan-{layer if layer != 'replica' else 'all-layers'}-{stamp}{suffix}"
            else:
                name = f"崇川区-{LAYER_LABELS.get(layer, '全部图层')}-{stamp}{suffix}"
            self.out.setText(str(self._out_dir / name))
            return
        p = Path(text)
        if p.suffix.lower() in {s for _, s in FORMATS.values()} and p.suffix.lower() != suffix:
            self.out.setText(str(p.with_suffix(suffix)))

    def choose_file(self) -> None:
        fmt = self.fmt.currentData()
        suffix = FORMATS[fmt][1]
        t = self._tr
        path, _ = QFileDialog.getSaveFileName(self, t("导出到", "Export to"), self.out.text().strip() or str(self._out_dir),
                                              f"{self.fmt.currentText()} (*{suffix});;{t('所有文件', 'All files')} (*)")  # fmt: skip
        if path:
            if not Path(path).suffix:
                path += suffix
            self.out.setText(path)

    def options(self) -> dict:
        """What the form asks for, as :func:`db.export.export` keywords."""

        def when(on: QCheckBox, edit: QDateTimeEdit) -> str | None:
            if not (on.isChecked() and on.isEnabled()):
                return None
            return edit.dateTime().toString("yyyy-MM-ddTHH:mm:00")  # naive = Asia/Shanghai

        return {
            "layer": self.layer.currentData(),
            "since": when(self.since_on, self.since),
            "until": when(self.until_on, self.until),
            "scope": self.scope.currentData(),
            "include_drills": self.drills.isChecked() and self.drills.isEnabled(),
            "include_personal": self.personal.isChecked() and self.personal.isEnabled(),
        }

    # -- running -------------------------------------------------------------------------------------
    def start(self) -> bool:
        if self.task.running:
            return False
        t = self._tr
        out = self.out.text().strip()
        if not out:
            self.message.say("warn", t("请指定输出文件", "Name the output file"))
            self.out.setFocus()
            return False
        opts = self.options()
        if opts["since"] and opts["until"] and opts["since"] >= opts["until"]:
            self.message.say("warn", t("起始时间须早于截止时间", "The start must be before the end"))
            return False
        self.result, self.error = None, None
        self.bar.setValue(0)
        self.progress_text.setText(t("正在读取副本…", "Reading the replica…"))
        self.message.say("", "")
        self._set_running(True)
        self.task.start(_export, self.replica, self.fmt.currentData(), out, session=self.session, **opts)
        return True

    def _set_running(self, on: bool) -> None:
        for w in (self.fmt, self.layer, self.out, self.browse, self.start_button, self.since_on, self.until_on,
                  self.since, self.until, self.scope, self.drills, self.personal):  # fmt: skip
            w.setEnabled(not on)
        super()._set_running(on)
        if not on:  # back to what the form allows
            self.scope.setEnabled(not (self.session.role == "street" and self.session.scope))
            self.since.setEnabled(self.since_on.isChecked())
            self.until.setEnabled(self.until_on.isChecked())
            self._on_layer()

    def _on_result(self, result) -> None:
        t = self._tr
        self.result = result
        self.bar.setValue(BAR_MAX)
        if self.lang == "en":
            counts = ", ".join(f"{self._layer_label(k)} {n:,}" for k, n in result.counts.items())
            self.progress_text.setText(f"Done: {counts} ({result.elapsed_s:.1f} s)")
        else:
            counts = "，".join(f"{LAYER_LABELS.get(k, k)} {n:,} 条" for k, n in result.counts.items())
            self.progress_text.setText(f"完成：{counts}（{result.elapsed_s:.1f} 秒）")
        notes = []
        for w in result.warnings:
            if w.startswith("drill events left out"):
                notes.append(t("未含演练事件", "drill events left out"))
            elif w.startswith("personal fields left out"):
                notes.append(t("未含个人信息", "personal data left out"))
            else:
                notes.append(bilingual(w, self.lang))
        if self.lang == "en":
            self.message.say("ok", f"Exported to {result.path}" + (f" ({'; '.join(notes)})" if notes else ""))
        else:
            self.message.say("ok", f"已导出到 {result.path}" + (f"（{'；'.join(notes)}）" if notes else ""))
        self.exported.emit(result)

    def _on_error(self, exc: BaseException) -> None:
        from db.export import ExportCancelled, ExportRefused, ExportUsageError

        t = self._tr
        self.error = exc
        self.bar.setValue(0)
        self.progress_text.setText("")
        why = bilingual(human_error(exc), self.lang)
        if isinstance(exc, ExportCancelled):
            self.message.say("warn", t("导出已取消，未写入文件。", "Export cancelled; no file was written."))
        elif isinstance(exc, ExportRefused):
            self.message.say("error", t(f"导出被拒绝：{why}", f"Export refused: {why}"))
        elif isinstance(exc, ExportUsageError):
            self.message.say("error", t(f"导出条件有误：{why}", f"Invalid export options: {why}"))
        else:
            self.message.say("error", t(f"导出失败：{why}", f"Export failed: {why}"))
