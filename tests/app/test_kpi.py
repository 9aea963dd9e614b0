"""KPI formulas on hand-built events (an empty replica with the demo's organisation).

Every case is checked twice: through the rollups and through a plain scan of ``events``.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from app.kpi import (
    KPI_KEYS,
    Scope,
    Window,
    compute_kpis,
    counts_by,
    department_ranking,
    hourly_counts,
    kpi_trend,
    street_ranking,
    top_grids,
)
from db import event_ops
from db.replica import open_replica

TZ = dt.timezone(dt.timedelta(hours=8))
W = Window(dt.datetime(2026, 12, 7, tzinfo=TZ), dt.datetime(2026, 12, 14, tzinfo=TZ))
NOW = dt.datetime(2026, 12, 20, 12, 0, tzinfo=TZ)
ORG_TABLES = ("departments", "categories", "streets", "communities", "grids", "people")


def T(day: int, hh: int, mm: int = 0) -> str:
    return f"2026-12-{day:02d}T{hh:02d}:{mm:02d}:00+08:00"


@pytest.fixture
def org(demo_db, tmp_path):
    """A migrated replica holding only the demo's organisation and catalogue (no events)."""
    rep = open_replica(tmp_path / "org.db")
    with rep.write("org") as conn:
        conn.execute("ATTACH DATABASE ? AS d", (str(demo_db),))
    try:
        with rep.write("org") as conn:
            for t in ORG_TABLES:
                conn.execute(f"INSERT INTO {t} SELECT * FROM d.{t}")
            conn.execute("INSERT INTO drills (uid, title, theme, level, starts_at) VALUES "
                         "('D1', '演练', 'flood', 'district', '2026-12-01T09:00:00+08:00')")  # fmt: skip
    finally:
        rep.writer.execute("DETACH DATABASE d")
    yield rep
    rep.close()


class Builder:
    def __init__(self, rep):
        self.rep = rep
        conn = rep.reader()
        # two grids in two streets
        rows = conn.execute("SELECT id, street_code, lon, lat FROM grids ORDER BY street_code, id").fetchall()
        self.g1 = rows[0]
        self.g2 = next(r for r in rows if r["street_code"] != self.g1["street_code"])
        conn.close()

    def event(
        self, at: str, *, category: str = "ORDER.VENDOR", grid=None, drill: bool = False, source="grid_app"
    ) -> int:
        g = grid or self.g1
        rec = {"source": source, "category": category, "lon": g["lon"], "lat": g["lat"], "reported_at": at,
               "title": "测试事件"}  # fmt: skip
        if drill:
            rec["drill_id"] = 1
        return event_ops.create_event(self.rep, rec, actor="test")

    def do(self, eid: int, action: str, at: str, **kw) -> dict:
        conn = self.rep.reader()
        v = conn.execute("SELECT version FROM events WHERE id = ?", (eid,)).fetchone()[0]
        conn.close()
        note = kw.pop("note", "理由" if action in ("reject", "return", "defer", "rework", "extend") else None)
        return event_ops.apply_action(
            self.rep, eid, action, actor="t", expected_version=v, note=note, at=at, **kw
        )

    def walk(self, eid: int, actions: list[tuple[str, str]]) -> None:
        for action, at in actions:
            payload = None
            if action == "dispatch":
                payload = {"target_kind": "department", "target": "CITYMGMT"}
            elif action.startswith("evaluate"):
                action, sat = action.split(":")
                payload = {"satisfaction": int(sat)}
            self.do(eid, action, at, payload=payload)

    def set_due(self, eid: int, due: str) -> None:
        with self.rep.write("events") as conn:
            conn.execute("UPDATE events SET handle_due_at = ? WHERE id = ?", (due, eid))


DISTRICT = Scope("district")


def kpis(rep, scope=DISTRICT, window=W, **kw):
    conn = rep.reader()
    try:
        a = compute_kpis(conn, scope, window, now=NOW, **kw)
        b = compute_kpis(conn, scope, window, now=NOW, use_rollups=False, **kw)
    finally:
        conn.close()
    assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    for v in a.values():
        assert v.value is None or math.isfinite(v.value)
        assert (v.value is None) == (v.reason is not None) or v.unit == "件"
    return a


def test_empty_window_is_zero_and_no_data(org):
    k = kpis(org)
    assert set(KPI_KEYS) <= set(k)
    for key in ("reported", "due", "deferred", "backlog", "overdue"):
        assert k[key].value == 0
    for key in ("response_rate", "resolution_rate", "satisfaction_rate", "ontime_closure_rate", "closure_rate",
                "linkage_rate", "arrival_mean", "arrival_median", "arrival_p90", "arrival_within_10"):  # fmt: skip
        assert k[key].value is None and k[key].reason, key
    assert "分母为0" in k["response_rate"].reason
    assert k["response_rate"].display() == "—"
    # a zero-length window too
    k0 = kpis(org, window=Window(W.since, W.since))
    assert k0["reported"].value == 0


@pytest.fixture
def cases(org):
    """Hand-built events in W (ORDER.VENDOR: response 30 min, 10-minute arrival clock)."""
    b = Builder(org)
    ids = {}
    # A: textbook — accepted in 5 min, on site in 6 min, closed before the deadline, satisfied (5)
    ids["A"] = a = b.event(T(8, 9))
    b.walk(a, [("accept", T(8, 9, 5)), ("dispatch", T(8, 9, 6)), ("acknowledge", T(8, 9, 7)),
               ("arrive", T(8, 9, 6 + 0)), ])  # fmt: skip
    b.set_due(a, T(9, 12))
    b.walk(a, [("handle", T(8, 11)), ("verify", T(8, 12)), ("close", T(8, 13)), ("evaluate:5", T(8, 14))])
    # B: accepted late (40 min > 30), on site after 20 min, closed after its deadline, rated 3
    ids["B"] = e = b.event(T(9, 9))
    b.walk(e, [("accept", T(9, 9, 40)), ("dispatch", T(9, 9, 41)), ("acknowledge", T(9, 9, 42)),
               ("arrive", T(9, 9, 20 + 30))])  # fmt: skip
    b.set_due(e, T(10, 9))
    b.walk(e, [("handle", T(10, 10)), ("verify", T(10, 11)), ("close", T(10, 12)), ("evaluate:3", T(10, 13))])
    # C: deferred (缓办) then closed: in 缓办数, out of the on-time denominator
    ids["C"] = e = b.event(T(9, 10))
    b.walk(e, [("accept", T(9, 10, 1)), ("dispatch", T(9, 10, 2)), ("acknowledge", T(9, 10, 3)),
               ("defer", T(9, 10, 4)), ("resume", T(9, 15)), ("arrive", T(9, 15, 30))])  # fmt: skip
    b.set_due(e, T(11, 9))
    b.walk(e, [("handle", T(10, 9)), ("verify", T(10, 10)), ("close", T(10, 11))])
    # D: rework (返工): handled, verification failed, handled again, closed on time, rated 4
    ids["D"] = e = b.event(T(10, 8))
    b.walk(e, [("accept", T(10, 8, 2)), ("dispatch", T(10, 8, 3)), ("acknowledge", T(10, 8, 4)),
               ("arrive", T(10, 8, 10)), ("handle", T(10, 9))])  # fmt: skip
    b.do(e, "rework", T(10, 10))
    b.walk(e, [("acknowledge", T(10, 10, 5)), ("arrive", T(10, 10, 20)), ("handle", T(10, 11)),
               ("verify", T(10, 12)), ("close", T(10, 13)), ("evaluate:4", T(10, 14))])  # fmt: skip
    b.set_due(e, T(11, 9))
    # E: returned (退回) and still open, deadline passed: backlog and overdue, not closed
    ids["E"] = e = b.event(T(11, 8), grid=b.g2)
    b.walk(e, [("accept", T(11, 8, 10)), ("dispatch", T(11, 8, 11))])
    b.do(e, "return", T(11, 9))
    b.set_due(e, T(12, 9))
    # F: merged, G: rejected — excluded everywhere except reported_all / merged / rejected
    ids["F"] = e = b.event(T(11, 9))
    b.do(e, "merge", T(11, 9, 5), payload={"into": ids["A"]})
    ids["G"] = e = b.event(T(11, 10))
    b.do(e, "reject", T(11, 10, 5))
    # H: a drill event, closed on time: never in real numbers
    ids["H"] = e = b.event(T(12, 9), drill=True)
    b.walk(e, [("accept", T(12, 9, 1)), ("dispatch", T(12, 9, 2)), ("acknowledge", T(12, 9, 3)),
               ("arrive", T(12, 9, 4))])  # fmt: skip
    b.set_due(e, T(13, 9))
    b.walk(e, [("handle", T(12, 10)), ("verify", T(12, 11)), ("close", T(12, 12))])
    return org, ids, b


def test_formulas_on_hand_built_events(cases):
    rep, ids, _b = cases
    k = kpis(rep)
    # reported: A B C D E (F merged, G rejected, H drill excluded)
    assert k["reported"].value == 5
    assert (k["reported_all"].value, k["merged"].value, k["rejected"].value) == (7, 1, 1)
    # response: accepted within 30 min: A C D E (B took 40 min)
    assert (k["response_rate"].numerator, k["response_rate"].denominator) == (4, 5)
    assert k["response_rate"].value == pytest.approx(80.0)
    # resolution: closed A B C D of 7 − 1 − 1
    assert (k["resolution_rate"].numerator, k["resolution_rate"].denominator) == (4, 5)
    # satisfaction: A=5, D=4 satisfied; B=3 not
    assert (k["satisfaction_rate"].numerator, k["satisfaction_rate"].denominator) == (2, 3)
    # due in W: A B C D E; deferred: C
    assert (k["due"].value, k["deferred"].value) == (5, 1)
    # on time: A (closed 8th 13:00 ≤ 9th 12:00), D (10th 13:00 ≤ 11th 09:00); B late; E open
    assert (k["ontime_closure_rate"].numerator, k["ontime_closure_rate"].denominator) == (2, 4)
    assert (k["closure_rate"].numerator, k["closure_rate"].denominator) == (3, 4)
    # arrival (first on site): A 6 min, B 50 min, C 5 h 30 min, D 10 min (first arrival, not the rework one)
    minutes = sorted([6, 50, 330, 10])
    assert k["arrival_within_10"].numerator == 2 and k["arrival_within_10"].denominator == 4
    assert k["arrival_mean"].value == pytest.approx(sum(minutes) / 4)
    assert k["arrival_median"].value == pytest.approx((10 + 50) / 2)
    assert k["arrival_p90"].value == pytest.approx(50 + 0.7 * (330 - 50))
    # backlog: E is open; overdue at NOW (its deadline passed)
    assert (k["backlog"].value, k["overdue"].value) == (1, 1)
    assert k["linkage_rate"].value is None


def test_drills_are_isolated(cases):
    rep, _ids, _b = cases
    k = kpis(rep, drills="only")
    assert k["reported"].value == 1
    assert (k["ontime_closure_rate"].numerator, k["ontime_closure_rate"].denominator) == (1, 1)
    assert k["backlog"].value == 0
    conn = rep.reader()
    assert sum(n for _, _, n in counts_by(conn, Scope("district"), W, "source", drills="only")) == 1
    assert sum(n for _, _, n in counts_by(conn, Scope("district"), W, "source")) == 5
    conn.close()


def test_scopes_and_windows(cases):
    rep, _ids, b = cases
    s2 = kpis(rep, Scope("street", b.g2["street_code"]))
    assert s2["reported"].value == 1 and s2["backlog"].value == 1
    g1 = kpis(rep, Scope("grid", b.g1["id"]))
    assert g1["reported"].value == 4
    dept = kpis(rep, Scope("department", "CITYMGMT"))
    assert dept["reported"].value == 5  # every live event was dispatched to city management
    # a window that starts mid-hour, cutting B (09:00 on the 9th) off
    w = Window(dt.datetime(2026, 12, 9, 9, 30, tzinfo=TZ), dt.datetime(2026, 12, 11, 8, 30, tzinfo=TZ))
    k = kpis(rep, window=w)
    assert k["reported"].value == 3  # C (9th 10:00), D (10th 08:00), E (11th 08:00 < 08:30)
    assert k["reported_all"].value == 3  # F and G (11th 09:00, 10:00) are after the window
    assert k["due"].value == 2  # A (9th 12:00), B (10th 09:00); C and D are due at 09:00 on the 11th
    # trend: the previous week is empty
    conn = rep.reader()
    prev = kpi_trend(conn, Scope("district"), W, now=NOW)
    conn.close()
    assert prev["reported"].value == 0 and prev["response_rate"].value is None


def test_breakdowns_and_rankings(cases):
    rep, _ids, b = cases
    conn = rep.reader()
    try:
        hours = hourly_counts(conn, Scope("district"), dt.datetime(2026, 12, 8, 8, 30, tzinfo=TZ),
                              dt.datetime(2026, 12, 9, 10, 30, tzinfo=TZ))  # fmt: skip
        assert hours[0][0] == "2026-12-08T08:00:00+08:00" and len(hours) == 27
        got = {h: n for h, n in hours if n}
        assert got == {
            "2026-12-08T09:00:00+08:00": 1,
            "2026-12-09T09:00:00+08:00": 1,
            "2026-12-09T10:00:00+08:00": 1,
        }
        cls = counts_by(conn, Scope("district"), W, "class")
        assert cls == [("ordinary", "一般", 5)]
        hot = top_grids(conn, Scope("district"), W)
        assert [(h["grid_id"], h["n"]) for h in hot] == [(b.g1["id"], 4), (b.g2["id"], 1)]
        assert hot[0]["top_category"] and hot[0]["street_code"] == b.g1["street_code"]
        with pytest.raises(ValueError):
            counts_by(conn, Scope("district"), W, "colour")
        streets = street_ranking(conn, W, now=NOW)
        assert len(streets) == 16
        top = {r["code"]: r for r in streets}
        assert top[b.g1["street_code"]]["reported"] == 4 and top[b.g1["street_code"]]["rank"] == 1
        assert top[b.g2["street_code"]]["backlog"] == 1
        assert [r["rank"] for r in streets[:2]] == [1, 2]
        depts = {r["code"]: r for r in department_ranking(conn, W, now=NOW)}
        assert depts["CITYMGMT"]["due"] == 5 and depts["CITYMGMT"]["ontime_closure_rate"] == pytest.approx(
            50.0
        )
        assert depts["PSB"]["ontime_closure_rate"] is None and depts["PSB"]["rank"] is None
    finally:
        conn.close()


def test_linkage_rate(cases):
    rep, ids, b = cases
    # whistle on A's neighbour: a new event on site, two departments, one late
    e = b.event(T(12, 14))
    b.walk(e, [("accept", T(12, 14, 1)), ("dispatch", T(12, 14, 2)), ("acknowledge", T(12, 14, 3)),
               ("arrive", T(12, 14, 5))])  # fmt: skip
    wid = event_ops.blow_whistle(rep, e, level="grid", departments=["FIRE", "PSB"], deadline_minutes=30,
                                 actor="t", reason="联动", at=T(12, 14, 10))  # fmt: skip
    event_ops.check_in(rep, wid, "FIRE", actor="f", at=T(12, 14, 20))
    event_ops.check_in(rep, wid, "PSB", actor="p", at=T(12, 14, 30))
    k = kpis(rep)
    assert (k["linkage_rate"].numerator, k["linkage_rate"].denominator) == (0, 1)  # not handled yet
    b.do(e, "handle", T(12, 16))
    k = kpis(rep)
    assert (k["linkage_rate"].numerator, k["linkage_rate"].denominator) == (1, 1)
    assert k["linkage_rate"].value == pytest.approx(100.0)


def test_dashboard_data_matches_the_single_functions(cases):
    from app.kpi import compute_kpis as ck
    from app.kpi import dashboard_data

    rep, _ids, b = cases
    conn = rep.reader()
    try:
        for scope in (DISTRICT, Scope("street", b.g1["street_code"])):
            d = dashboard_data(conn, scope, W, now=NOW)
            assert d.kpis == ck(conn, scope, W, now=NOW)
            assert d.previous["reported"].value == 0
            assert len(d.hourly) == 7 * 24 and len(d.hourly_week_before) == 7 * 24
            assert d.streets == street_ranking(conn, W, now=NOW)
            assert sorted(d.arrival_minutes) == d.arrival_minutes
    finally:
        conn.close()
