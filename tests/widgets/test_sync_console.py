"""Sync as the operator meets it: the status-bar indicator, the refusals dialog and the queue marks."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.state import AppState, Session
from db import event_ops
from db.replica import open_replica
from tests.test_sync_status import Report, make_client, new_event, refuse
from tests.widgets.test_sync_worker import FakeEngine
from widgets.event_queue import COL
from widgets.main_window import MainWindow
from widgets.sync_status import SyncStatusModel, install_sync

XSS = '<img src=x onerror="alert(1)">井盖缺失'


@pytest.fixture
def console(qtbot, demo_copy):
    made = []

    def make(*, client: bool = True, lang: str = "zh", prepare=None):
        rep = open_replica(demo_copy)
        if client:
            make_client(rep)
        ctx = prepare(rep) if prepare else None
        win = MainWindow(rep, AppState(Session(lang=lang, user="op-test")))
        qtbot.addWidget(win)
        win.resize(1600, 900)
        made.append((win, rep))
        with qtbot.waitSignal(win.mapReady, timeout=30000):  # no map build left running after the test
            win.show()
        return win, rep, ctx

    yield make
    for win, rep in made:
        ui = getattr(win, "sync_ui", None)
        if ui is not None:
            ui.shutdown()
        win.shutdown()
        rep.close()


def _pending_and_refused(rep):
    """One event with an unconfirmed change, one refused accept (rolled back to 上报)."""
    pending = new_event(rep, XSS)
    refused = new_event(rep, "占道经营")
    event_ops.apply_action(rep, refused, "accept", actor="op1", expected_version=1)
    with rep.write("sync") as c:  # the report of the refused event was confirmed earlier
        c.execute("UPDATE outbox SET state = 'applied' WHERE op = 'report' AND event_uid = "
                  "(SELECT uid FROM events WHERE id = ?)", (refused,))  # fmt: skip
    mid = refuse(rep, refused, "accept", server_status="reported", version=1, reason="该事件已被其他席位受理 <stale>")
    return {"pending": pending, "refused": refused, "mid": mid}


def _show_in_queue(qtbot, win, event_id: int, title: str) -> int:
    win.queue.set_filter(win.queue.filter().with_(tab="pending", text=title))
    qtbot.waitUntil(lambda: win.queue.model().row_of(event_id) >= 0, timeout=15000)
    return win.queue.model().row_of(event_id)


def _title_text(win, row: int) -> str:
    m = win.queue.model()
    return m.data(m.index(row, COL["title"]))


def test_a_plain_replica_without_upstream_shows_nothing(console):
    win, _rep, _ = console(client=False)
    assert install_sync(win, None) is None and getattr(win, "sync_ui", None) is None


def test_upstream_on_a_plain_replica_says_so_and_starts_no_worker(console, capsys):
    win, _rep, _ = console(client=False)
    ui = install_sync(win, "postgresql://u:pw@127.0.0.1:1/x")
    assert ui.worker is None and ui.indicator.state_key == "not_client"
    assert "非同步副本" in ui.indicator.conn_label.text()
    err = capsys.readouterr().err
    assert "not a sync replica" in err and "pw" not in err  # the password is never printed


def test_indicator_marks_and_refusals_then_a_round_confirms(qtbot, console):
    win, rep, ids = console(prepare=_pending_and_refused)
    gate = {"open": False}

    class LinkDown(FakeEngine):
        """Offline until the gate opens, then confirms like a real round."""

        def sync_once(self, **kw):
            if gate["open"]:
                return super().sync_once(**kw)
            return Report(online=False, pending=1, error="connection refused")

    factory = lambda: LinkDown(rep)  # noqa: E731
    ui = install_sync(win, None, engine_factory=factory)  # the remembered upstream starts the worker
    assert ui.worker is not None and ui.worker.is_running()
    ind = ui.indicator
    qtbot.waitUntil(lambda: ind.state_key == "offline", timeout=15000)
    assert ind.conn_label.text() == "● 离线"
    assert ind.pending_label.text() == "待同步 1" and ind.last_label.text() == "上次同步 从未"
    assert ind.badge.isVisible()
    assert ind.badge.text() == "被拒 1" and not ind.badge.isHidden()
    assert "connection refused" in ind.toolTip() and "***" in ind.toolTip() and "secret" not in ind.toolTip()
    row = _show_in_queue(qtbot, win, ids["pending"], "井盖缺失")
    qtbot.waitUntil(lambda: _title_text(win, row) == f"【未同步】{XSS}", timeout=15000)
    m = win.queue.model()
    assert "未同步：本机的改动尚未被上级服务器确认" in m.data(m.index(row, COL["title"]), Qt.ItemDataRole.ToolTipRole)
    # the link comes back: the round confirms the change, the mark and the count go
    gate["open"] = True
    ui.worker.kick()
    qtbot.waitUntil(lambda: ind.state_key == "online", timeout=15000)
    qtbot.waitUntil(lambda: ind.pending_label.text() == "待同步 0", timeout=15000)
    qtbot.waitUntil(lambda: _title_text(win, win.queue.model().row_of(ids["pending"])) == XSS, timeout=15000)
    assert ind.conn_label.text() == "● 在线" and ind.last_label.text().startswith("上次同步 ")
    assert ind.last_label.text() != "上次同步 从未" and ind.badge.text() == "被拒 1"  # still unacknowledged
    ui.shutdown()
    assert not ui.worker.is_running()


def test_refusals_dialog_lists_and_acknowledges(qtbot, console):
    win, rep, ids = console(prepare=_pending_and_refused)
    refused2 = new_event(rep, XSS)
    event_ops.apply_action(rep, refused2, "accept", actor="op1", expected_version=1)
    mid2 = refuse(rep, refused2, "accept", server_status="rejected", version=3, reason="不予受理")
    ui = install_sync(win, None, start_worker=False)  # screenshot mode: no worker, status from the replica
    assert ui.worker is None and ui.indicator.state_key == "idle"
    assert ui.indicator.badge.text() == "被拒 2"
    win.show()
    qtbot.mouseClick(ui.indicator.badge, Qt.MouseButton.LeftButton)
    dialog = ui.dialog
    assert dialog is not None and dialog.isVisible()
    table = dialog.table
    assert table.rowCount() == 2
    rows = {table.item(r, 0).data(Qt.ItemDataRole.UserRole): r for r in range(2)}
    r2 = rows[mid2]
    assert table.item(r2, 1).text() == f"#{refused2} {XSS}"  # citizen text verbatim, as plain text
    assert "&lt;img" in table.item(r2, 1).toolTip() and "<img" not in table.item(r2, 1).toolTip()
    assert [table.item(r2, c).text() for c in (2, 3, 4)] == ["受理", "不予受理", "不予受理 (v3)"]
    r1 = rows[ids["mid"]]
    assert table.item(r1, 3).text() == "该事件已被其他席位受理 <stale>" and table.item(r1, 4).text() == "上报 (v1)"
    assert table.item(r1, 0).text() == "11-26 09:02:03"  # refused_at shown in Asia/Shanghai
    # 知道了 on one row: written with the operator's name, the row and one badge count go
    qtbot.mouseClick(dialog.row_buttons[ids["mid"]], Qt.MouseButton.LeftButton)
    by = rep.writer.execute("SELECT acknowledged_by FROM sync_refusals WHERE mutation_id = ?", (ids["mid"],)).fetchone()
    assert by[0] == win.service.actor
    assert table.rowCount() == 1 and ui.indicator.badge.text() == "被拒 1"
    # double-click selects the event in the console
    table.cellDoubleClicked.emit(0, 1)
    assert win.state.event_id == refused2
    qtbot.mouseClick(dialog.ack_all_button, Qt.MouseButton.LeftButton)
    assert table.rowCount() == 0 and ui.indicator.badge.isHidden() and not dialog.ack_all_button.isEnabled()
    left = rep.writer.execute("SELECT count(*) FROM sync_refusals WHERE acknowledged_at IS NULL").fetchone()[0]
    assert left == 0


def test_english_labels(qtbot, console):
    win, rep, ids = console(lang="en", prepare=_pending_and_refused)
    ui = install_sync(win, None, start_worker=False)
    ind = ui.indicator
    assert ind.conn_label.text() == "● Sync not running"
    assert ind.pending_label.text() == "Pending 1" and ind.last_label.text() == "Last sync never"
    assert ind.badge.text() == "Refused 1"
    dialog = ui.open_refusals()
    heads = [dialog.table.horizontalHeaderItem(c).text() for c in range(5)]
    assert heads == ["Refused at", "Event", "Action", "Reason", "Rolled back to"]
    assert dialog.table.item(0, 2).text() == "Accept" and dialog.table.item(0, 4).text() == "Reported (v1)"
    assert dialog.row_buttons[ids["mid"]].text() == "Acknowledge"
    row = _show_in_queue(qtbot, win, ids["pending"], "井盖缺失")
    qtbot.waitUntil(lambda: _title_text(win, row) == f"[Unsynced] {XSS}", timeout=15000)


def test_status_model_reads_off_the_ui_thread_and_coalesces(qtbot, demo_copy):
    with open_replica(demo_copy) as rep:
        make_client(rep)
        new_event(rep)
        model = SyncStatusModel(rep)
        seen = []
        model.statusChanged.connect(seen.append)
        for _ in range(5):
            model.refresh()
        qtbot.waitUntil(lambda: len(seen) >= 1 and not model._inflight, timeout=15000)
        assert len(seen) <= 2 and seen[-1].pending == 1  # a burst makes at most one more read
        model.close()
        model.refresh()  # closed: ignored
        assert model.status().pending == 1


def test_the_real_client_against_an_unreachable_upstream_shows_offline(qtbot, console):
    """The default engine (db.sync.client.SyncClient) on the worker thread: the link is down."""
    dead = "host=127.0.0.1 port=1 dbname=onemap user=desk password=pw connect_timeout=2"

    def prepare(rep):
        rep.writer.execute("UPDATE sync_state SET upstream = ?", (dead,))
        new_event(rep)

    win, rep, _ = console(prepare=prepare)
    ui = install_sync(win, None)
    assert ui.worker is not None and ui.worker.dsn is None  # the client takes the remembered upstream
    ind = ui.indicator
    qtbot.waitUntil(lambda: ind.state_key == "offline", timeout=15000)
    assert ind.pending_label.text() == "待同步 1"
    assert "upstream unreachable" in ind.toolTip() and "password=***" in ind.toolTip()
    ui.shutdown()
    assert not ui.worker.is_running()
    err = rep.writer.execute("SELECT last_error FROM sync_state").fetchone()[0]
    assert err.startswith("upstream unreachable")


def test_an_old_backlog_shows_its_age(qtbot):
    from app.sync_status import SyncStatus
    from widgets.sync_status import SyncIndicator

    ind = SyncIndicator("zh")
    qtbot.addWidget(ind)
    ind.show_status(SyncStatus(is_client=True, connection="offline", pending=7, oldest_pending_age_s=754))
    assert ind.pending_label.text() == "待同步 7（最早 12 分前）" and ind.conn_label.text() == "● 离线"
    ind.lang = "en"
    ind.show_status(SyncStatus(is_client=True, connection="online", pending=2, oldest_pending_age_s=7300))
    assert ind.pending_label.text() == "Pending 2 (oldest 2 h)" and ind.conn_label.text() == "● Online"
