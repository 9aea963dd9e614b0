"""The closed loop through the event detail panel, bulk dispatch, the department queue, the
alert sound, the handover log and the role picker (offscreen, on a copy of the demo replica)."""

from __future__ import annotations

import builtins
import datetime as dt
import sqlite3

import pytest
from PySide6.QtCore import Qt

from app import timeutil
from app.services import EventService
from app.state import Session
from db.replica import open_replica
from widgets.event_detail import EventDetailPanel

OPERATOR = "33"  # people.id of a district operator in the demo replica
OTHER = "34"  # another district operator
EBIKE = {"source": "hotline_12345", "category": "ORDER.EBIKE", "title": "电瓶车乱停占道（测试）",
         "lon": 120.87, "lat": 32.01}  # fmt: skip
STEPS = [
    # (action, key, status after)
    ("accept", "A", "accepted"),
    ("dispatch", "D", "dispatched"),
    ("acknowledge", "K", "acknowledged"),
    ("arrive", "S", "on_site"),
    ("handle", "H", "handled"),
    ("verify", "V", "verified"),
    ("close", "C", "closed"),
]


@pytest.fixture
def replica(demo_copy):
    rep = open_replica(demo_copy)
    yield rep
    rep.close()


def uid_of(replica, person_id: str) -> str:
    conn = replica.reader()
    try:
        return conn.execute("SELECT uid FROM people WHERE id = ?", (int(person_id),)).fetchone()[0]
    finally:
        conn.close()


def db_state(replica, event_id: int) -> tuple[str, list[tuple]]:
    conn = replica.reader()
    try:
        status = conn.execute("SELECT status FROM events WHERE id = ?", (event_id,)).fetchone()[0]
        log = conn.execute(
            "SELECT action, from_status, to_status, actor, note, payload FROM event_log WHERE event_id = ? ORDER BY id",
            (event_id,),
        ).fetchall()
    finally:
        conn.close()
    return status, [tuple(r) for r in log]


def make_panel(qtbot, replica, session: Session) -> EventDetailPanel:
    panel = EventDetailPanel(replica, session)
    qtbot.addWidget(panel)
    panel.resize(520, 1000)
    with qtbot.waitActive(panel, timeout=5000):  # window-wide shortcuts need an active window
        panel.show()
        panel.activateWindow()
    return panel


def ctrl_enter(qtbot, panel: EventDetailPanel) -> None:
    target = panel.focusWidget() or panel.form
    qtbot.keyClick(target, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_closed_loop_through_the_panel(qtbot, replica):
    session = Session(role="district", user=OPERATOR)
    eid = EventService(replica, session).create(EBIKE)
    actor = uid_of(replica, OPERATOR)
    panel = make_panel(qtbot, replica, session)
    panel.show_event(eid)
    committed = []
    panel.actionCommitted.connect(lambda e, a: committed.append((e, a)))
    for n, (action, key, status) in enumerate(STEPS):
        assert action in panel.action_bar.buttons, (action, panel.action_bar.actions_shown())
        button = panel.action_bar.buttons[action]
        assert button.text().startswith(key + " ")  # the shortcut is on the button
        if n % 2 == 0:  # alternate: the single-key shortcut, then a click
            qtbot.keyClick(panel.action_bar, key)
        else:
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert panel.form is not None and panel.form.action == action
        if action == "dispatch":
            picked = panel.form.fields["target"].selected()
            assert picked == ("department", "CITYMGMT")  # the category's default department, preselected
            assert "类别默认部门" in panel.form.fields["target"].list.currentItem().text()
        ctrl_enter(qtbot, panel)
        assert panel.form is None, panel.last_message
        got, log = db_state(replica, eid)
        assert got == status
        assert panel.current["status"] == status
        last = log[-1]
        assert last[:4] == (action, STEPS[n - 1][2] if n else "reported", status, actor)
        assert len(log) == n + 2  # the report row + one row per step
        assert panel.last_message[0] == "ok"
    assert [a for _, a in committed] == [s[0] for s in STEPS]
    _, log = db_state(replica, eid)
    assert '"target": "CITYMGMT"' in log[2][5] or '"target":"CITYMGMT"' in log[2][5]
    # after closing only the overlays that still apply are offered; evaluate goes through with 1–5
    assert "evaluate" in panel.action_bar.buttons and "dispatch" not in panel.action_bar.buttons
    qtbot.keyClick(panel.action_bar, "E")
    panel.form.fields["satisfaction"].setValue(4)
    ctrl_enter(qtbot, panel)
    _, log = db_state(replica, eid)
    assert log[-1][0] == "evaluate" and '"satisfaction":4' in log[-1][5].replace(" ", "")


def test_reason_is_required_and_esc_cancels(qtbot, replica):
    session = Session(role="district", user=OPERATOR)
    eid = EventService(replica, session).create(EBIKE)
    panel = make_panel(qtbot, replica, session)
    panel.show_event(eid)
    qtbot.keyClick(panel.action_bar, "X")  # 不予受理 needs a reason
    assert panel.form.action == "reject"
    ctrl_enter(qtbot, panel)
    assert panel.form is not None and panel.last_message[0] == "warn"
    assert db_state(replica, eid)[0] == "reported"
    qtbot.keyClick(panel.focusWidget(), Qt.Key.Key_Escape)
    assert panel.form is None
    qtbot.keyClick(panel.action_bar, "X")
    panel.form.fields["reason"].setText("重复上报，已有同址工单")
    ctrl_enter(qtbot, panel)
    status, log = db_state(replica, eid)
    assert status == "rejected" and log[-1][4] == "重复上报，已有同址工单"


def test_illegal_actions_are_not_offered(qtbot, replica):
    session = Session(role="district", user=OPERATOR)
    eid = EventService(replica, session).create(EBIKE)
    panel = make_panel(qtbot, replica, session)
    panel.show_event(eid)
    shown = set(panel.action_bar.buttons)
    assert {"accept", "reject", "merge", "note"} <= shown
    assert not shown & {"dispatch", "acknowledge", "arrive", "handle", "verify", "close", "evaluate", "check_in"}
    qtbot.keyClick(panel.action_bar, "D")  # the key of an action the lifecycle does not allow here
    qtbot.keyClick(panel.action_bar, "C")
    assert panel.form is None
    assert db_state(replica, eid)[0] == "reported"


def test_conflict_shows_changed_by_and_reloads(qtbot, replica, demo_copy):
    session = Session(role="district", user=OPERATOR)
    svc = EventService(replica, session)
    eid = svc.create(EBIKE)
    svc.act(eid, "accept", 1)
    panel = make_panel(qtbot, replica, session)
    panel.show_event(eid)
    assert panel.current["version"] == 2
    qtbot.keyClick(panel.action_bar, "D")
    # meanwhile another console (another Replica on the same file) dispatches the same event
    other = open_replica(demo_copy)
    try:
        EventService(other, Session(role="district", user=OTHER)).dispatch(eid, "department", "HOUSING", 2)
    finally:
        other.close()
    ctrl_enter(qtbot, panel)
    kind, text = panel.last_message
    assert kind == "error"
    conn = replica.reader()
    other_name = conn.execute("SELECT name FROM people WHERE id = ?", (int(OTHER),)).fetchone()[0]
    conn.close()
    assert other_name in text and "已被" in text and "修改" in text  # changed by X at T
    assert panel.message.isVisible()
    assert panel.current["status"] == "dispatched" and panel.current["version"] == 3  # reloaded
    assert "dispatch" not in panel.action_bar.buttons and "acknowledge" in panel.action_bar.buttons
    status, log = db_state(replica, eid)
    assert [r[0] for r in log].count("dispatch") == 1
    assert '"HOUSING"' in log[-1][5]


def test_change_under_an_open_form_is_a_conflict_even_after_a_refresh(qtbot, replica, demo_copy):
    session = Session(role="district", user=OPERATOR)
    svc = EventService(replica, session)
    eid = svc.create(EBIKE)
    svc.act(eid, "accept", 1)
    panel = make_panel(qtbot, replica, session)
    panel.show_event(eid)
    qtbot.keyClick(panel.action_bar, "D")
    other = open_replica(demo_copy)
    try:
        EventService(other, Session(role="district", user=OTHER)).act(eid, "note", None, "现场有新情况，暂缓派遣")
    finally:
        other.close()
    panel.refresh()  # what the window's replica watcher does: the form stays, with a warning
    assert panel.form is not None and panel.last_message[0] == "warn"
    ctrl_enter(qtbot, panel)  # the operator decided on version 2; the event is at 3 now
    kind, text = panel.last_message
    assert kind == "error" and "已被" in text and "备注" in text
    status, log = db_state(replica, eid)
    assert status == "accepted" and log[-1][0] == "note"
    assert "dispatch" in panel.action_bar.buttons  # still legal: the operator may retry knowingly


def test_wall_shows_no_action_buttons(qtbot, replica):
    eid = EventService(replica, Session(role="district", user=OPERATOR)).create(EBIKE)
    panel = make_panel(qtbot, replica, Session(role="wall"))
    panel.show_event(eid)
    assert panel.current["id"] == eid  # it reads
    assert panel.action_bar.buttons == {}
    assert not panel.action_bar.isVisible()
    assert not panel.export_button.isVisible()
    qtbot.keyClick(panel, "A")
    assert panel.form is None and db_state(replica, eid)[0] == "reported"


def test_refused_actions_are_disabled_with_the_reason(qtbot, replica):
    svc = EventService(replica, Session(role="district", user=OPERATOR))
    eid = svc.create(EBIKE)
    svc.act(eid, "accept", 1)
    svc.dispatch(eid, "department", "CITYMGMT", 2)
    panel = make_panel(qtbot, replica, Session(role="department", scope="CITYMGMT"))
    panel.show_event(eid)
    bar = panel.action_bar.buttons
    assert bar["acknowledge"].isEnabled() and bar["return"].isEnabled()
    assert not bar["supervise"].isEnabled() and "无权执行" in bar["supervise"].toolTip()
    # and another department may not even read it; the refusal is logged
    other = make_panel(qtbot, replica, Session(role="department", scope="HOUSING"))
    other.show_event(eid)
    assert other.current is None and other.last_message[0] == "error"
    conn = replica.reader()
    try:
        assert conn.execute("SELECT count(*) FROM access_log WHERE event_id = ? AND scope = 'HOUSING'",
                            (eid,)).fetchone()[0] == 1  # fmt: skip
    finally:
        conn.close()


def test_whistle_and_late_check_in_through_the_panel(qtbot, replica):
    session = Session(role="district", user=OPERATOR)
    svc = EventService(replica, session)
    eid = svc.create(EBIKE)
    svc.act(eid, "accept", 1)
    panel = make_panel(qtbot, replica, session)
    panel.show_event(eid)
    qtbot.keyClick(panel.action_bar, "W")
    form = panel.form
    assert form.fields["level"].currentData() == "district"
    view = form.fields["departments"]
    checked = [view.item(i).data(Qt.ItemDataRole.UserRole) for i in range(view.count())
               if view.item(i).checkState() == Qt.CheckState.Checked]  # fmt: skip
    assert checked == ["CITYMGMT"]  # the category's default department is summoned by default
    form.fields["reason"].setText("占道严重，需城管联动")
    ctrl_enter(qtbot, panel)
    assert panel.form is None, panel.last_message
    whistles = svc.whistles(eid)
    assert len(whistles) == 1 and whistles[0]["level"] == "district"
    assert "whistle" not in panel.action_bar.buttons  # a district whistle is open: nothing above it
    qtbot.keyClick(panel.action_bar, "I")
    combo = panel.form.fields["check_in"]
    assert combo.count() == 1 and combo.currentData()[1] == "CITYMGMT"
    ctrl_enter(qtbot, panel)
    wd = svc.whistles(eid)[0]["departments"][0]
    assert wd["checked_in_at"] and wd["late"] == 0
    top = panel.whistle_tree.topLevelItem(0)
    assert top.child(0).text(3) == "按时报到"


def test_late_check_in_is_flagged(qtbot, replica):
    session = Session(role="district", user=OPERATOR)
    svc = EventService(replica, session)
    eid = svc.create(EBIKE, at=timeutil.now() - dt.timedelta(hours=1))
    svc.act(eid, "accept", 1)
    svc.whistle(eid, "street", ["HOUSING", "PSB"], 10, "需住建、公安到场", at=timeutil.now() - dt.timedelta(minutes=40))
    panel = make_panel(qtbot, replica, Session(role="department", scope="HOUSING"))
    panel.show_event(eid)  # summoned: it may read, note and check in
    assert set(panel.action_bar.buttons) >= {"check_in", "note"}
    qtbot.keyClick(panel.action_bar, "I")
    ctrl_enter(qtbot, panel)
    deps = {d["department_code"]: d for d in svc.whistles(eid)[0]["departments"]}
    assert deps["HOUSING"]["late"] == 1
    states = {panel.whistle_tree.topLevelItem(0).child(i).text(0): panel.whistle_tree.topLevelItem(0).child(i).text(3)
              for i in range(2)}  # fmt: skip
    assert any("LATE" in v for v in states.values())
    assert list(states.values()).count("迟到 LATE") == 1 and list(states.values()).count("超时未报到 LATE") == 1


def test_export_dossier_html(qtbot, replica, tmp_path):
    session = Session(role="district", user=OPERATOR)
    svc = EventService(replica, session)
    eid = svc.create(EBIKE)
    svc.act(eid, "accept", 1)
    panel = make_panel(qtbot, replica, session)
    panel.show_event(eid)
    out = tmp_path / "dossier.html"
    with qtbot.waitSignal(panel.exportFinished, timeout=20000):
        assert panel.export_dossier(str(out))
    text = out.read_text(encoding="utf-8")
    assert "<svg" in text and EBIKE["title"] in text
    assert panel.last_message[0] == "ok"


def test_department_queue_shows_only_its_events(qtbot, replica):
    from widgets.event_queue import EventQueuePanel

    svc = EventService(replica, Session(role="district", user=OPERATOR))
    mine = svc.create(EBIKE)
    svc.act(mine, "accept", 1)
    svc.dispatch(mine, "department", "CITYMGMT", 2)
    theirs = svc.create(EBIKE)
    svc.act(theirs, "accept", 1)
    svc.dispatch(theirs, "department", "HOUSING", 2)
    summoned = svc.create(EBIKE)
    svc.act(summoned, "accept", 1)
    svc.whistle(summoned, "district", ["CITYMGMT"], 30, "联动")
    queue = EventQueuePanel(replica.reader, threaded=False, watch=False, assignee="CITYMGMT")
    qtbot.addWidget(queue)
    queue.set_filter(queue.filter().with_(tab="open"))
    queue.reload_now()
    ids = {r["id"] for r in queue.model().rows()}
    assert mine in ids and summoned in ids and theirs not in ids
    # exactly the service's rule for a department liaison's queue (app/services.py)
    term, params = EventService(replica, Session(role="department", scope="CITYMGMT")).department_queue_filter("e")
    conn = replica.reader()
    try:
        expected = {r[0] for r in conn.execute(
            f"SELECT e.id FROM events e WHERE e.status NOT IN ('closed','rejected','merged') AND {term}", params)}
    finally:
        conn.close()
    assert ids == expected
    # the role scope survives a filter change
    queue.set_filter(queue.filter().with_(assignee=None, tab="open"))
    assert queue.filter().assignee == "CITYMGMT"
    queue.shutdown()


def test_bulk_dispatch_from_queue_selection(qtbot, replica):
    from PySide6.QtCore import QItemSelectionModel

    from widgets.dispatch_dialog import BulkDispatchDialog
    from widgets.event_queue import EventQueuePanel

    session = Session(role="district", user=OPERATOR)
    svc = EventService(replica, session)
    ids = [svc.create(dict(EBIKE, title=f"批量测试 {i}")) for i in range(3)]
    svc.act(ids[0], "accept", 1)
    svc.act(ids[1], "accept", 1)  # ids[2] stays reported: it cannot be dispatched
    queue = EventQueuePanel(replica.reader, threaded=False, watch=False)
    qtbot.addWidget(queue)
    queue.set_filter(queue.filter().with_(tab="pending", text="批量测试"))
    queue.reload_now()
    assert {r["id"] for r in queue.model().rows()} == set(ids)
    sm = queue.table().selectionModel()
    for row in range(queue.model().rowCount()):
        sm.select(queue.model().index(row, 0),
                  QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)  # fmt: skip
    with qtbot.waitSignal(queue.bulkDispatchRequested) as req:
        queue.request_bulk_dispatch()
    rows = req.args[0]
    assert len(rows) == 3 and all("version" in r for r in rows)
    dialog = BulkDispatchDialog(replica, svc, rows)
    qtbot.addWidget(dialog)
    with qtbot.waitActive(dialog, timeout=5000):
        dialog.show()
        dialog.activateWindow()
    assert dialog.picker.select("department", "SANITATION")
    with qtbot.waitSignal(dialog.dispatched, timeout=10000) as done:
        qtbot.keyClick(dialog.picker.filter, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    results = {r.event_id: r for r in done.args[0]}
    assert results[ids[0]].ok and results[ids[1]].ok and not results[ids[2]].ok
    assert dialog.failures.count() == 1 and f"#{ids[2]}" in dialog.failures.item(0).text()
    for eid in ids[:2]:
        status, log = db_state(replica, eid)
        assert status == "dispatched" and '"SANITATION"' in log[-1][5]
    assert db_state(replica, ids[2])[0] == "reported"
    queue.shutdown()


def test_sound_is_silent_without_qtmultimedia(qtbot, replica, monkeypatch, tmp_path):
    from app import settings
    from widgets import alert_sound

    real_import = builtins.__import__

    def no_multimedia(name, *args, **kwargs):
        if name.startswith("PySide6.QtMultimedia"):
            raise ImportError("libpulse.so.0: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_multimedia)
    monkeypatch.setattr(settings, "config_path", lambda: tmp_path / "settings.json")
    sound = alert_sound.AlertSound(muted=False)
    assert sound.play() is False  # no exception, no sound
    assert sound.available is False
    alerter = alert_sound.EmergencyAlerter(replica, Session(role="district"), sound)
    svc = EventService(replica, Session(role="district", user=OPERATOR))
    assert alerter.check() == []
    eid = svc.create({"source": "video_ai", "category": "EMG.FIRE", "lon": 120.87, "lat": 32.01})
    svc.create(EBIKE)  # ordinary: no alert
    new = alerter.check()
    assert [e["id"] for e in new] == [eid] and sound.plays == 2
    assert alerter.check() == []
    # muting is persisted in the user settings
    sound.set_muted(True)
    assert settings.load_settings()["alert_muted"] is True
    assert alert_sound.AlertSound().muted is True


def test_beep_wav_is_valid(tmp_path):
    import wave

    from widgets.alert_sound import write_beep_wav

    path = write_beep_wav(tmp_path / "beep.wav")
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and 0.2 < w.getnframes() / w.getframerate() < 1.0


def test_handover_note_with_open_items(qtbot, replica):
    from db import event_ops
    from widgets.handover import HandoverDialog

    session = Session(role="district", user=OPERATOR)
    svc = EventService(replica, session)
    eid = svc.create(EBIKE)
    dialog = HandoverDialog(replica, session, svc)
    qtbot.addWidget(dialog)
    with qtbot.waitActive(dialog, timeout=5000):
        dialog.show()
        dialog.activateWindow()
    dialog.text.setPlainText("夜班注意：和平桥电瓶车占道，城管未回复")
    dialog.set_checked([eid])
    assert dialog.checked_ids() == [eid]
    with qtbot.waitSignal(dialog.saved):
        qtbot.keyClick(dialog.text, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    conn = replica.reader()
    try:
        notes = event_ops.list_handover_notes(conn, limit=1)
    finally:
        conn.close()
    assert notes[0]["text"].startswith("夜班注意") and notes[0]["open_items"][0]["event_id"] == eid
    assert notes[0]["author"] == uid_of(replica, OPERATOR)
    assert dialog.notes.topLevelItem(0).text(3).startswith("夜班注意")


def test_role_picker_and_role_flags(qtbot, replica):
    from app.cli import parse_args
    from widgets.role_picker import ROLE_ORDER, RolePickerDialog

    assert parse_args(["--db", "x.db"]).role_explicit is False
    assert parse_args(["--db", "x.db", "--wall"]).role_explicit is True
    assert parse_args(["--db", "x.db", "--station", "320613001"]).role_explicit is True
    assert parse_args(["--db", "x.db", "--user", "33"]).role_explicit is True
    dialog = RolePickerDialog(replica)
    qtbot.addWidget(dialog)
    assert dialog.choice()[0] == "district"
    assert dialog.user.currentData()  # a district operator
    dialog.roles.setCurrentRow(ROLE_ORDER.index("department"))
    i = dialog.scope.findData("CITYMGMT")
    dialog.scope.setCurrentIndex(i)
    role, scope, user = dialog.choice()
    assert (role, scope) == ("department", "CITYMGMT") and user
    conn = replica.reader()
    try:
        dept = conn.execute("SELECT department_code FROM people WHERE uid = ?", (user,)).fetchone()[0]
    finally:
        conn.close()
    assert dept == "CITYMGMT"
    dialog.roles.setCurrentRow(ROLE_ORDER.index("wall"))
    assert dialog.choice() == ("wall", None, None)
    # a desk limited to a department starts there; English labels
    import re

    en = RolePickerDialog(replica, default_role="department", default_scope="CITYMGMT", lang="en")
    qtbot.addWidget(en)
    assert en.choice()[:2] == ("department", "CITYMGMT")
    texts = [en.windowTitle(), en.scope_label.text()] + [en.roles.item(i).text() for i in range(en.roles.count())]
    assert not any(re.search(r"[\u3400-\u9fff]", t) for t in texts), texts


def test_window_dispatch_updates_queue(qtbot, demo_copy):
    from widgets.main_window import MainWindow

    rep = open_replica(demo_copy)
    session = Session(role="district", user=OPERATOR)
    svc = EventService(rep, session)
    eid = svc.create(dict(EBIKE, title="窗口派遣测试"))
    svc.act(eid, "accept", 1)
    from app.state import AppState

    win = MainWindow(rep, AppState(session))
    qtbot.addWidget(win)
    win.resize(1600, 900)
    with qtbot.waitSignal(win.mapReady, timeout=30000):
        win.show()
    try:
        win.state.select_event(eid)
        assert win.detail.current["id"] == eid
        win.detail.trigger("dispatch")
        with qtbot.waitSignal(win.queue.loaded, timeout=5000):
            assert win.detail.confirm()

        def queue_shows_dispatched():
            r = win.queue.model().row_of(eid)
            return r < 0 or win.queue.model().row_data(r)["status"] == "dispatched"

        qtbot.waitUntil(queue_shows_dispatched, timeout=3000)
        assert sqlite3.connect(demo_copy).execute("SELECT status FROM events WHERE id = ?", (eid,)).fetchone()[0] \
            == "dispatched"  # fmt: skip
    finally:
        win.shutdown()
        rep.close()
