"""``--lang en`` on the intake screens (issue 4): after a real import with quarantined rows the
import dialog, the quarantine panel (records and merge suggestions), the export dialog and the
history search show no Chinese in what the UI itself writes — titles, labels, buttons, tabs,
column headers, tooltips, placeholders, progress and messages. Data values (raw records, titles,
addresses, street names) stay as they are and are left out of the check."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QTabBar,
    QTableView,
    QWidget,
)

from app.services import EventService
from app.state import Session
from db.replica import open_replica

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff60]")
OPERATOR = "33"
HEADER = "工单编号,来电时间,诉求类型,诉求内容,地址,联系人,联系电话,经度,纬度,坐标系\n"


@pytest.fixture
def replica(demo_copy):
    rep = open_replica(demo_copy)
    yield rep
    rep.close()


@pytest.fixture
def service(replica):
    return EventService(replica, Session(role="district", user=OPERATOR, lang="en"))


def query(replica, sql, *params):
    conn = replica.reader()
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def bad_rows_csv(tmp_path: Path) -> Path:
    """Two good work orders and four bad ones (unknown datum, non-numeric coordinate, bad date,
    missing content)."""
    path = tmp_path / "hotline_en.csv"
    path.write_text(
        HEADER
        + "EN-0001,2026-11-19 08:15:00,噪音扰民,夜间施工噪音扰民,崇川区钟秀街道,张先生,13900000001,120.8873,32.0487,WGS-84\n"
        + "EN-0002,2026-11-19 09:02:10,路灯不亮,小区门口路灯不亮,崇川区钟秀街道,李女士,13900000002,120.8936,32.0506,GCJ-02\n"
        + "EN-0003,2026-11-19 10:30:00,噪音扰民,坐标系写错了,,,,120.88,32.04,XYZ\n"
        + "EN-0004,2026-11-19 10:40:00,噪音扰民,经度不是数字,,,,abc,32.04,WGS-84\n"
        + "EN-0005,not a date,噪音扰民,时间不对,,,,120.88,32.04,WGS-84\n"
        + "EN-0006,2026-11-19 10:50:00,噪音扰民,,,,,120.88,32.04,WGS-84\n",
        encoding="utf-8",
    )
    return path


def ui_texts(root: QWidget) -> list[str]:
    """Every text the UI writes on ``root`` and its children: window title, labels, buttons,
    placeholders, tooltips, combo items, tab titles, list items and table headers. Not the
    contents of editors and table cells (data)."""
    out = [root.windowTitle(), root.toolTip()]
    for w in [root, *root.findChildren(QWidget)]:
        out.append(w.toolTip())
        if isinstance(w, QLabel):
            out.append(w.text())
        elif isinstance(w, QAbstractButton):
            out.append(w.text())
        elif isinstance(w, QLineEdit | QPlainTextEdit):
            out.append(w.placeholderText())
        elif isinstance(w, QComboBox):
            out.extend(w.itemText(i) for i in range(w.count()))
        elif isinstance(w, QTabBar):
            out.extend(w.tabText(i) for i in range(w.count()))
        elif isinstance(w, QListWidget):
            out.extend(w.item(i).text() for i in range(w.count()))
        elif isinstance(w, QTableView) and w.model() is not None:
            m = w.model()
            out.extend(str(m.headerData(c, Qt.Orientation.Horizontal) or "") for c in range(m.columnCount()))
    return [t for t in out if t]


def assert_english(texts, allow: tuple[str, ...] = ()) -> None:
    """No CJK in ``texts`` once the data values in ``allow`` are taken out."""
    bad = []
    for text in texts:
        rest = text
        for value in allow:
            if value:
                rest = rest.replace(value, "")
        if CJK.search(rest):
            bad.append(text)
    assert not bad, bad


def stored_details(rows) -> tuple[str, ...]:
    """The detail of the stored reasons (after the kind): data, e.g. the file's own column name
    (``missing field: 诉求内容``)."""
    return tuple(r["reason"].partition(":")[2].strip() for r in rows if ":" in (r["reason"] or ""))


def cells(model, column: int) -> list[str]:
    return [str(model.index(r, column).data() or "") for r in range(model.rowCount())]


def tooltips(model, column: int) -> list[str]:
    return [html.unescape(str(model.index(r, column).data(Qt.ItemDataRole.ToolTipRole) or ""))
            for r in range(model.rowCount())]  # fmt: skip


# -- import dialog ------------------------------------------------------------------------------------
def test_import_dialog_in_english_after_an_import_with_quarantined_rows(qtbot, replica, service, tmp_path):
    from widgets.import_dialog import ImportDialog

    dialog = ImportDialog(replica, service.actor, lang="en")
    qtbot.addWidget(dialog)
    dialog.show()
    progress: list[str] = []
    dialog.task.progress.connect(lambda _f, _t: progress.append(dialog.progress_text.text()))
    dialog.set_file(str(bad_rows_csv(tmp_path)), "12345-csv")
    with qtbot.waitSignal(dialog.imported, timeout=60000):
        assert dialog.start()
    r = dialog.result
    assert dialog.error is None and r.status == "complete"
    assert (r.created, r.quarantined) == (2, 4)
    assert dialog.progress_text.text() == "Done: Created 2 · Updated 0 · Unchanged 0 · Quarantined 4"
    assert dialog.message.kind == "warn" and dialog.message.text().startswith("Import done; 4 record(s) went to quarantine")
    assert dialog.detail.text().startswith("6 records") and "encoding utf-8" in dialog.detail.text()
    reasons = [dialog.reasons.item(i).text() for i in range(dialog.reasons.count())]
    assert len(reasons) == 4
    datum = next(x for x in reasons if x.startswith("Unknown datum"))
    assert datum == "Unknown datum × 1 (line 4) — unknown datum: 'XYZ'"
    assert any(x.startswith("Coordinate is not a number") for x in reasons), reasons
    assert progress and all(not CJK.search(t) for t in progress), progress
    assert dialog.quarantine_button.isVisible() and dialog.quarantine_button.text() == "Open quarantine"
    data = tuple(reason.partition(":")[2].strip() for ex in r.examples.values() for _line, reason in ex)
    assert_english(ui_texts(dialog), allow=data)  # the stored reasons name the file's own columns (经度)

    # a file that cannot be read: the refusal is English too
    broken = tmp_path / "broken.json"
    broken.write_text("this is not json at all", encoding="utf-8")
    dialog.set_file(str(broken), "citymgmt")
    with qtbot.waitSignal(dialog.task.finished, timeout=30000):
        dialog.start()
    assert dialog.error is not None and dialog.message.kind == "error"
    text = dialog.message.text()  # found while reading: "cannot be read", not "Import failed: FormatError"
    assert text.startswith("The file cannot be read in the chosen format; nothing was imported") and "not a JSON" in text
    assert_english([dialog.message.text()])
    dialog.path.setText(str(tmp_path / "missing.csv"))
    assert not dialog.start()
    assert dialog.message.text().startswith("No such file: ")


def test_import_dialog_in_chinese_is_unchanged(qtbot, replica, tmp_path):
    from widgets.import_dialog import ImportDialog

    dialog = ImportDialog(replica, "tester")
    qtbot.addWidget(dialog)
    dialog.set_file(str(bad_rows_csv(tmp_path)), "12345-csv")
    with qtbot.waitSignal(dialog.imported, timeout=60000):
        assert dialog.start()
    assert dialog.progress_text.text() == "完成：新建 2 · 更新 0 · 未变 0 · 隔离 4"
    assert dialog.detail.text().startswith("共 6 条记录 · ") and "用时" in dialog.detail.text()
    reasons = [dialog.reasons.item(i).text() for i in range(dialog.reasons.count())]
    assert "坐标系无法识别 × 1（第 4 行） — unknown datum: 'XYZ'" in reasons
    assert dialog.message.text() == "导入完成，4 条记录进入隔离区，请核对原因后修正或丢弃。"


# -- quarantine panel ----------------------------------------------------------------------------------
def test_quarantine_panel_in_english_resubmit_and_discard(qtbot, replica, service, tmp_path):
    from db.intake import import_file
    from widgets.quarantine_panel import COL, QuarantinePanel

    path = bad_rows_csv(tmp_path)
    import_file(replica, path, "12345-csv", actor="test")
    panel = QuarantinePanel(replica, service)
    qtbot.addWidget(panel)
    panel.resize(1280, 680)
    panel.show()
    qtbot.waitUntil(lambda: panel.counts != {} and panel.model.rowCount() == 4, timeout=10000)
    assert panel.lang == "en" and panel.merge.lang == "en"
    assert [panel.status_tabs.tabText(i) for i in range(4)] == ["Open (4)", "Fixed (0)", "Discarded (0)", "All (4)"]
    assert panel.tabs.tabText(0) == "Quarantine (4)"
    assert panel.tabs.tabText(1).startswith("Merge suggestions (")
    reasons = cells(panel.model, COL["reason"])
    assert "Unknown datum: 'XYZ'" in reasons
    data = stored_details(panel.model.rows())
    assert "Missing required field: 诉求内容" in reasons  # the kind in English, the file's header as it is
    assert_english(reasons + cells(panel.model, COL["status"]) + cells(panel.model, COL["line"]), allow=data)
    assert_english(tooltips(panel.model, COL["reason"]), allow=data)
    assert panel.editor.row is not None
    texts = ui_texts(panel)
    assert "Re-submit" in texts and "Discard" in texts and "Raw record" in texts
    # field names are English; the values (col 1) are the record's data
    fields = [panel.editor.fields.item(i, 0).text() for i in range(panel.editor.fields.rowCount())]
    assert fields[0] == "Source id  ext_id"
    assert_english(texts + fields + [panel.status_label.text()], allow=data)

    # the unknown datum row: re-submitted as it is, it still fails — the message says so in English
    qid = next(r["id"] for r in panel.model.rows() if r["external_id"] == "EN-0003")
    assert panel.select(qid)
    qtbot.waitUntil(lambda: panel.editor.row["id"] == qid, timeout=2000)
    assert panel.editor.reason.text() == "Reason: Unknown datum · unknown datum: 'XYZ'"
    assert panel.editor.origin.text().startswith("hotline_en.csv line 4 · format 12345-csv · source id EN-0003")
    with qtbot.waitSignal(panel.failed, timeout=10000) as failed:
        assert panel.resubmit()
    assert failed.args[0].startswith("Still not accepted: Unknown datum")
    assert_english([panel.editor.message.text()])

    # discard needs a reason; with one, the outcome is English
    panel.editor._discard()
    assert panel.editor.message.text().startswith("Discarding needs a reason")
    with qtbot.waitSignal(panel.discarded, timeout=10000):
        assert panel.discard("test row, not a real report")
    assert panel.editor.message.text() == f"Quarantined record #{qid} discarded: test row, not a real report"
    qtbot.waitUntil(lambda: panel.counts.get("discarded") == 1, timeout=10000)
    panel.set_status_filter("discarded")
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=10000)
    panel.select(qid)
    qtbot.waitUntil(lambda: panel.editor.row["status"] == "discarded", timeout=5000)
    assert panel.editor.title.text() == f"Quarantined record #{qid} · Discarded"
    assert panel.editor.resolution.text().startswith("Discarded by ")
    assert_english([panel.editor.title.text(), *cells(panel.model, COL["status"])])
    assert_english(ui_texts(panel), allow=(panel.editor.resolution.text(), *data))  # the resolver's name is data


def test_merge_suggestions_in_english(qtbot, replica, service, tmp_path):
    from tests.widgets.test_intake_ui import import_duplicate_pairs
    from widgets.merge_panel import COLUMNS, MergeSuggestionsPanel

    ids = import_duplicate_pairs(replica, service, tmp_path)

    panel = MergeSuggestionsPanel(replica, service)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(lambda: panel.model.rowCount() >= 2, timeout=10000)
    col = {k: i for i, (k, _) in enumerate(COLUMNS)}
    for key in ("category", "distance", "minutes", "status", "check"):
        assert_english(cells(panel.model, col[key]))
    assert_english(tooltips(panel.model, col["check"]) + tooltips(panel.model, col["event"]))
    assert_english(ui_texts(panel))
    sugg = {(r["event_id"], r["other_id"]): r for r in panel.model.rows()}
    b = sugg[(ids["DUP-B2"], ids["DUP-B1"])]
    assert panel.select(b["id"])
    assert panel.hint.text().startswith("Cannot merge: event #") and "Dispatched" in panel.hint.text()
    with qtbot.waitSignal(panel.actionDone, timeout=1000) as said:
        qtbot.mouseClick(panel.merge_button, Qt.MouseButton.LeftButton)
    assert said.args[0] == "error" and said.args[1].startswith("Not merged: ")
    assert_english([said.args[1]])


# -- export dialog -------------------------------------------------------------------------------------
def test_export_dialog_in_english_runs_an_export(qtbot, replica, tmp_path):
    from widgets.export_dialog import ExportDialog

    dialog = ExportDialog(replica, Session(role="district", lang="en"), out_dir=str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    streets = [dialog.scope.itemText(i) for i in range(1, dialog.scope.count())]  # street names: data
    for fmt in ("gpkg", "csv", "open311", "geojson"):
        dialog.set_format(fmt)
        assert_english(ui_texts(dialog), allow=tuple(streets))
    assert not CJK.search(dialog.out.text()), dialog.out.text()  # the suggested file name
    out = tmp_path / "events.geojson"
    dialog.set_output(str(out))
    progress: list[str] = []
    dialog.task.progress.connect(lambda _f, t: progress.append(t))
    with qtbot.waitSignal(dialog.exported, timeout=60000):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert out.exists()
    assert dialog.progress_text.text().startswith("Done: Events ")
    assert dialog.message.kind == "ok" and dialog.message.text().startswith(f"Exported to {out}")
    assert "drill events left out" in dialog.message.text()
    assert_english(progress + ui_texts(dialog), allow=tuple(streets))

    dialog.set_period(dialog.until.dateTime().toPython(), dialog.since.dateTime().toPython())
    assert not dialog.start()
    assert dialog.message.text() == "The start must be before the end"

    dept = ExportDialog(replica, Session(role="department", scope="D01", lang="en"))
    qtbot.addWidget(dept)
    assert not dept.personal.isEnabled()
    assert dept.personal.toolTip().startswith("Personal data may not be exported: a department role")
    assert_english(ui_texts(dept), allow=tuple(streets))


# -- history search -------------------------------------------------------------------------------------
def test_history_search_in_english(qtbot, replica):
    from widgets.history_search import COL, HistorySearchDialog

    (past,) = query(replica, "SELECT id, reporter_phone FROM events WHERE status = 'closed' "
                             "AND reporter_phone LIKE '1%' AND drill_id IS NULL ORDER BY id LIMIT 1")  # fmt: skip
    dialog = HistorySearchDialog(replica, Session(role="drill", lang="en"))
    qtbot.addWidget(dialog)
    dialog.show()
    assert_english(ui_texts(dialog))
    assert dialog.privacy.text() == "Personal data masked (not for this post)"
    dialog.set_query(past["reporter_phone"])
    assert dialog.mode_hint.text().startswith("Searching by phone number")
    with qtbot.waitSignal(dialog.searched, timeout=10000):
        dialog.search()
    assert dialog.result.rows
    row = next(i for i, r in enumerate(dialog.model.rows()) if r["id"] == past["id"])
    assert dialog.model.index(row, COL["status"]).data() == "Closed"
    for key in ("reported_at", "status", "reporter_phone", "source", "matched"):
        assert_english(cells(dialog.model, COL[key]))
    assert dialog.status.text().startswith(f"{len(dialog.result.rows)} found by phone number")
    assert_english(ui_texts(dialog), allow=(dialog.result.query,))

    dialog.set_query("zz-no-such-address-zz", "address")
    with qtbot.waitSignal(dialog.searched, timeout=10000):
        dialog.search()
    assert dialog.status.text().startswith("No past events found")


# -- the Qt-free helpers ---------------------------------------------------------------------------------
def test_reason_labels_and_bilingual_messages():
    from app.intake_views import (
        REASON_EN,
        REASON_ZH,
        english_part,
        reason_label,
        reason_short,
        reason_zh,
    )

    assert set(REASON_EN) == set(REASON_ZH)
    assert reason_label("unknown datum") == "坐标系无法识别"
    assert reason_label("unknown datum", "en") == "Unknown datum"
    assert reason_label("something new", "en") == "something new"
    assert reason_short("unknown datum: 'XYZ'") == "坐标系无法识别：'XYZ'"
    assert reason_short("unknown datum: 'XYZ'", "en") == "Unknown datum: 'XYZ'"
    assert reason_zh("unknown datum: 'XYZ'") == "坐标系无法识别 · unknown datum: 'XYZ'"
    # the back end's "中文 english" messages
    assert english_part("已取消 cancelled: created 1") == "cancelled: created 1"
    assert english_part("1,234 条记录已写入 records written; created 3") == "1,234 records written; created 3"
    assert english_part("写入 12 条记录 writing 12 records in one transaction…") == "writing 12 records in one transaction…"
    # data stays: an English reason naming a Chinese address, a path, a Chinese-only value
    assert english_part("address not found: 钟秀路 3号") == "address not found: 钟秀路 3号"
    assert english_part("/tmp/数据.csv: no such file") == "/tmp/数据.csv: no such file"
    assert english_part("钟秀街道") == "钟秀街道"


# -- the command line --------------------------------------------------------------------------------------
def run_cli(*args: str):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, str(root / "main.py"), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=180)  # fmt: skip


def test_cli_import_english_details_and_unchanged_default(demo_copy, tmp_path):
    def feed(prefix: str) -> Path:
        path = tmp_path / f"{prefix}.csv"
        path.write_text(HEADER + f"{prefix}-1,2026-11-19 08:15:00,外星人投诉,奇怪的诉求,,,,120.8873,32.0487,WGS-84\n"
                        f"{prefix}-2,2026-11-19 08:16:00,噪音扰民,坐标系错,,,,120.8873,32.0487,XYZ\n",
                        encoding="utf-8")  # fmt: skip
        return path

    en = run_cli("--db", str(demo_copy), "--lang", "en", "-v", "import", str(feed("CLIEN")), "--format", "12345-csv")
    assert en.returncode == 0, en.stderr
    assert en.stdout.strip() == "created 1, updated 0, unchanged 0, quarantined 1"  # scripts parse this line
    lines = [ln for ln in en.stderr.splitlines() if "DEBUG" not in ln]
    assert "  1 new event(s) to classify (UNCLASSIFIED)" in lines
    progress = [ln for ln in lines if ln.startswith("[")]
    assert progress and not any(CJK.search(ln) for ln in progress), progress

    zh = run_cli("--db", str(demo_copy), "import", str(feed("CLIZH")), "--format", "12345-csv")
    assert zh.returncode == 0, zh.stderr
    assert zh.stdout.strip() == "created 1, updated 0, unchanged 0, quarantined 1"
    assert "  1 new event(s) to classify (待分类)" in zh.stderr.splitlines()


def test_cli_export_refusal_in_english(demo_copy, tmp_path):
    out = tmp_path / "p.csv"
    args = ("--db", str(demo_copy), "--role", "drill")
    tail = ("export", "--format", "csv", "--out", str(out), "--include-personal")
    en = run_cli(*args, "--lang", "en", *tail)
    assert en.returncode == 1 and not out.exists()
    assert "onemap: export: personal data export refused: the drill role may not export personal data" in en.stderr
    zh = run_cli(*args, *tail)
    assert zh.returncode == 1
    assert "onemap: export: 导出个人信息被拒绝 personal data export refused: 演练角色不能导出个人信息" in zh.stderr
