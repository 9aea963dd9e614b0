"""The event queue panel (widgets/event_queue.py) and the replica watcher, offscreen."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QPoint, Qt

from app import timeutil
from app.queue import QueueFilter, query_queue
from db.replica import connect, open_replica
from widgets.event_queue import COL, COL_DEADLINE, DRILL_TAG, EventQueuePanel, IdRole, category_tree
from widgets.replica_watcher import ReplicaWatcher

NOW = "2026-03-10T12:00:00+08:00"
T0 = timeutil.parse(NOW)
S1, S2 = "320613001", "320613002"
XSS = "<img src=x onerror=alert(1)>"


def at(hours: float) -> str:
    return timeutil.to_iso(T0 + dt.timedelta(hours=hours))


def add_event(conn, **kw) -> int:
    n = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0] + 1
    row = {
        "uid": f"EVW{n:05d}", "source": "grid_app", "category": "A.01", "class": "ordinary", "priority": 3,
        "title": f"事件{n}", "status": "reported", "reported_at": at(-1), "street_code": S1, "updated_at": NOW,
    }
    row.update(kw)
    cols = ", ".join(row)
    return conn.execute(f"INSERT INTO events ({cols}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values())).lastrowid


@pytest.fixture
def replica(tmp_path):
    rep = open_replica(tmp_path / "replica.db")
    ids = {}
    with rep.write("events") as c:
        c.execute("INSERT INTO streets (code, name, geometry) VALUES (?, '城东街道', '{}')", (S1,))
        c.execute("INSERT INTO streets (code, name, geometry) VALUES (?, '和平桥街道', '{}')", (S2,))
        for code, parent, zh in [("A", None, "市容环境"), ("A.01", "A", "暴露垃圾"), ("A.02", "A", "占道经营"),
                                 ("B", None, "公共安全"), ("B.01", "B", "消防通道堵塞")]:
            c.execute("INSERT INTO categories (code, parent, name_zh, name_en, class) VALUES (?, ?, ?, ?, 'ordinary')",
                      (code, parent, zh, code))
        c.execute("INSERT INTO drills (id, uid, title, theme, level, starts_at) "
                  "VALUES (1, 'DR1', '防汛演练', 'flood', 'street', ?)", (NOW,))
        ids["urgent"] = add_event(c, priority=1, title="路口交通信号灯故障", category="B.01", status="accepted",
                                  handle_due_at=at(1), reported_at=at(-2), address="工农路88号")
        ids["xss"] = add_event(c, priority=2, title=XSS, reported_at=at(-3))
        ids["drill"] = add_event(c, priority=2, title="模拟防汛积水", drill_id=1, reported_at=at(-1),
                                 street_code=S2, source="iot")
        ids["late"] = add_event(c, priority=3, title="消防通道被占用", status="dispatched", category="B.01",
                                handle_due_at=at(-2), reported_at=at(-30), street_code=S2)
        ids["acked"] = add_event(c, priority=4, title="暴露垃圾", status="acknowledged",
                                 handle_due_at=at(30), reported_at=at(-5))
        for i in range(10):
            add_event(c, priority=3, title=f"店外占道经营{i}", category="A.02", status="returned",
                      reported_at=at(-10 - i), street_code=S1 if i % 2 else S2, handle_due_at=at(5 + i))
        add_event(c, status="closed", title="已结案事件")
    yield rep, ids
    rep.close()


@pytest.fixture
def panel_factory(qtbot, replica):
    rep, _ = replica
    made = []

    def make(**kw):
        kw.setdefault("now_fn", lambda: T0)
        panel = EventQueuePanel(rep, **kw)
        qtbot.addWidget(panel)
        made.append(panel)
        return panel

    yield make
    for p in made:
        p.shutdown()


def shown_ids(panel) -> list[int]:
    m = panel.model()
    return [m.data(m.index(r, 0), IdRole) for r in range(m.rowCount())]


def expected(rep, **kw) -> list[int]:
    conn = rep.reader()
    try:
        return [r["id"] for r in query_queue(conn, QueueFilter(**kw), NOW)]
    finally:
        conn.close()


def wait_for_ids(qtbot, panel, ids, timeout=3000):
    qtbot.waitUntil(lambda: shown_ids(panel) == ids, timeout=timeout)


def test_panel_shows_rows_and_counts(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    pending = expected(rep, tab="pending")
    wait_for_ids(qtbot, panel, pending)
    assert shown_ids(panel)[0] == ids["urgent"]  # priority 1 first
    counts = panel.counts()
    assert counts == {"pending": len(pending), "open": len(expected(rep, tab="open")),
                      "overdue": len(expected(rep, tab="overdue"))}
    bar = panel.tab_bar()
    assert bar.tabText(0) == f"待处理 ({counts['pending']})"
    assert bar.tabText(1) == f"办理中 ({counts['open']})"
    assert bar.tabText(2) == f"超时 ({counts['overdue']})"
    m = panel.model()
    assert [m.headerData(i, Qt.Orientation.Horizontal) for i in range(m.columnCount())] == [
        "优先级", "状态", "标题", "类别", "来源", "街道", "上报时间", "时限/倒计时"]
    row = m.row_of(ids["urgent"])
    cell = lambda key: m.data(m.index(row, COL[key]))  # noqa: E731
    assert cell("priority") == "Ⅰ级" and cell("status") == "受理" and cell("category") == "消防通道堵塞"
    assert cell("source") == "网格通App" and cell("street") == "城东街道" and cell("reported_at") == "03-10 10:00"
    assert cell("deadline") == "剩余 1:00:00"
    assert m.data(m.index(row, 0), Qt.ItemDataRole.ForegroundRole).color().name() in ("#fddd60", "#7a5200")
    assert "共 " in panel.findChild(type(panel._status), "queueStatusLabel").text()


def test_switching_tabs_changes_rows(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    panel.tab_bar().setCurrentIndex(2)
    overdue = expected(rep, tab="overdue")
    assert ids["late"] in overdue and ids["acked"] not in overdue
    wait_for_ids(qtbot, panel, overdue)
    assert panel.filter().tab == "overdue"
    assert panel.last_snapshot.counts_cached  # only the tab changed: no recount
    m = panel.model()
    late = m.row_of(ids["late"])
    assert m.data(m.index(late, COL_DEADLINE)) == "超时 2:00:00"
    assert m.data(m.index(late, 2), Qt.ItemDataRole.ForegroundRole).color().name() in ("#ff6e76", "#b42318")
    panel.tab_bar().setCurrentIndex(1)
    wait_for_ids(qtbot, panel, expected(rep, tab="open"))
    assert ids["acked"] in shown_ids(panel)


def test_selecting_a_row_emits_event_id(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    table = panel.table()
    row = panel.model().row_of(ids["xss"])
    rect = table.visualRect(panel.model().index(row, COL["title"]))
    with qtbot.waitSignal(panel.eventSelected, timeout=2000) as blocker:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [ids["xss"]]
    assert panel.selected_event_id() == ids["xss"]
    # keyboard: the next row
    nxt = panel.model().event_id(row + 1)
    with qtbot.waitSignal(panel.eventSelected, timeout=2000) as blocker:
        qtbot.keyClick(table, Qt.Key.Key_Down)
    assert blocker.args == [nxt]


def test_citizen_markup_is_shown_literally(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    m = panel.model()
    idx = m.index(m.row_of(ids["xss"]), COL["title"])
    assert m.data(idx, Qt.ItemDataRole.DisplayRole) == XSS
    tip = m.data(idx, Qt.ItemDataRole.ToolTipRole)
    assert "&lt;img src=x onerror=alert(1)&gt;" in tip and "<img" not in tip


def test_drill_rows_are_tagged(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    m = panel.model()
    assert m.data(m.index(m.row_of(ids["drill"]), COL["title"])) == DRILL_TAG + "模拟防汛积水"
    assert m.data(m.index(m.row_of(ids["xss"]), COL["title"])) == XSS


def test_row_from_another_process_appears(qtbot, replica, panel_factory):
    rep, _ = replica
    panel = panel_factory()
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    before = panel.query_runs
    other = connect(rep.path)  # a separate connection, as another process would have
    try:
        other.execute("BEGIN IMMEDIATE")
        new_id = add_event(other, priority=1, title="另一进程上报：井盖缺失", reported_at=at(-0.1))
        other.execute("COMMIT")
    finally:
        other.close()
    qtbot.waitUntil(lambda: new_id in shown_ids(panel), timeout=3000)
    assert panel.query_runs > before
    assert panel.counts()["pending"] == len(expected(rep, tab="pending"))


def test_selection_survives_reload(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    assert panel.select_event(ids["xss"]) is True
    emitted = []
    panel.eventSelected.connect(emitted.append)
    with rep.write("events") as c:  # a higher-priority event shifts every row down
        new_id = add_event(c, priority=1, title="新的一级事件", reported_at=at(-5))
    qtbot.waitUntil(lambda: new_id in shown_ids(panel), timeout=3000)
    rows = panel.table().selectionModel().selectedRows()
    assert [panel.model().event_id(i.row()) for i in rows] == [ids["xss"]]
    assert emitted == []  # restoring the selection is not a new user selection


def test_reloads_are_coalesced(qtbot, replica, panel_factory):
    rep, _ = replica
    panel = panel_factory(watch=False)
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    qtbot.wait(350)
    start = panel.query_runs
    for _ in range(25):
        panel.reload()
    qtbot.wait(200)
    assert panel.query_runs - start <= 1
    for _ in range(25):
        panel.reload()
        qtbot.wait(5)
    qtbot.wait(400)
    # ~0.5 s of constant reload requests: at most one query per 300 ms
    assert panel.query_runs - start <= 3


def test_filters_and_search(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    street = panel.findChild(type(panel._street), "queueStreetCombo")
    street.setCurrentIndex(street.findData(S2))
    wait_for_ids(qtbot, panel, expected(rep, tab="pending", street=S2))
    street.setCurrentIndex(0)
    cat = panel.findChild(type(panel._category), "queueCategoryCombo")
    items = [cat.itemText(i) for i in range(cat.count())]
    assert items == ["全部类别", "市容环境", "\u3000暴露垃圾", "\u3000占道经营", "公共安全", "\u3000消防通道堵塞"]
    cat.setCurrentIndex(cat.findData("B"))
    wait_for_ids(qtbot, panel, expected(rep, tab="pending", category="B"))
    assert shown_ids(panel) == [ids["urgent"]]
    cat.setCurrentIndex(0)
    src = panel.findChild(type(panel._source), "queueSourceCombo")
    src.setCurrentIndex(src.findData("iot"))
    wait_for_ids(qtbot, panel, [ids["drill"]])
    src.setCurrentIndex(0)
    win = panel.findChild(type(panel._window), "queueWindowCombo")
    assert [win.itemText(i) for i in range(win.count())] == ["近1小时", "近24小时", "近7天", "近30天", "全部"]
    win.setCurrentIndex(win.findData("1h"))
    wait_for_ids(qtbot, panel, expected(rep, tab="pending", window="1h"))
    win.setCurrentIndex(win.count() - 1)
    search = panel.findChild(type(panel._search), "queueSearchEdit")
    search.setFocus()
    search.insert("信号灯")  # as typed: textChanged, then the 250 ms debounce (keyClicks is ASCII-only)
    wait_for_ids(qtbot, panel, [ids["urgent"]])
    search.setText('") OR NOT (')
    wait_for_ids(qtbot, panel, [])
    assert "查询失败" not in panel._status.text()
    search.setText("消防")
    wait_for_ids(qtbot, panel, expected(rep, tab="pending", text="消防"))


def test_scope_street_locks_the_street_filter(qtbot, replica, panel_factory):
    rep, _ = replica
    panel = panel_factory(scope_street=S2)
    wait_for_ids(qtbot, panel, expected(rep, tab="pending", scope_street=S2))
    street = panel._street
    assert not street.isEnabled() and street.currentText() == "和平桥街道" and street.count() == 1
    panel.set_filter(QueueFilter(tab="open", street=S1))  # cannot escape the scope
    assert panel.filter().scope_street == S2
    wait_for_ids(qtbot, panel, [])
    panel.set_filter(QueueFilter(tab="open"))
    wait_for_ids(qtbot, panel, expected(rep, tab="open", scope_street=S2))
    assert panel.tab_bar().currentIndex() == 1


def test_countdown_ticks(qtbot, replica, panel_factory):
    rep, ids = replica
    clock = {"t": T0}
    panel = panel_factory(now_fn=lambda: clock["t"], watch=False)
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    m = panel.model()
    idx = m.index(m.row_of(ids["urgent"]), COL_DEADLINE)
    assert m.data(idx) == "剩余 1:00:00" and m.due_state(idx.row()) == "soon"
    clock["t"] = T0 + dt.timedelta(hours=1, seconds=5)
    with qtbot.waitSignal(m.dataChanged, timeout=2500):
        pass
    qtbot.waitUntil(lambda: m.data(idx) == "超时 0:00:05", timeout=2500)
    assert m.due_state(idx.row()) == "overdue"


def test_synchronous_mode(qtbot, replica, panel_factory):
    rep, _ = replica
    panel = panel_factory(threaded=False, watch=False)
    assert shown_ids(panel) == expected(rep, tab="pending")  # loaded in the constructor


def test_watcher_emits_on_foreign_commit(qtbot, replica):
    rep, _ = replica
    watcher = ReplicaWatcher(rep, interval_ms=250)
    try:
        assert 250 <= watcher.interval() <= 300 and watcher.is_active()
        assert watcher.max_rev("events") == 0
        with qtbot.assertNotEmitted(watcher.changed, wait=400):
            pass
        with qtbot.waitSignal(watcher.changed, timeout=1000):
            with rep.write("events") as c:
                add_event(c, rev=7)
        assert watcher.max_rev("events") == 7
        with pytest.raises(ValueError):
            watcher.max_rev("events; DROP TABLE events")
    finally:
        watcher.close()


def test_category_tree():
    rows = [("B.01", "B", "b1"), ("A", None, "a"), ("A.01", "A", "a1"), ("B", None, "b"), ("X.1", "X", "orphan")]
    assert category_tree(rows) == [(0, "A", "a"), (1, "A.01", "a1"), (0, "B", "b"), (1, "B.01", "b1"),
                                   (0, "X.1", "orphan")]


def test_click_outside_rows_keeps_selection(qtbot, replica, panel_factory):
    rep, ids = replica
    panel = panel_factory()
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    wait_for_ids(qtbot, panel, expected(rep, tab="pending"))
    panel.select_event(ids["urgent"])
    vp = panel.table().viewport()
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=QPoint(10, vp.height() - 5))
    assert panel.selected_event_id() == ids["urgent"]
