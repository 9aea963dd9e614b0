"""The event queue: filters, the queue query, tab counts and SLA clock display. Qt-free.

All three tabs are subsets of the open (non-terminal) events, so every query carries the
exact term ``status NOT IN ('closed', 'rejected', 'merged')`` of the partial indexes
``ix_events_open`` / ``ix_events_open_street``: SQLite only uses a partial index when the
query repeats its WHERE term, and then the index also gives the queue order
(priority, reported_at) without a sort.

Clocks: the same rules as ``app.clocks.sla_state`` (tested against it), in SQL for the
overdue tab and in Python for the row colours and the countdown column. A clock is overdue
when its reference time is past its due time; the reference is ``now`` while it runs, the
stop time once it stopped, the suspension time while suspended:
- response (响应): ``response_due_at``; stops at ``accepted_at`` (or ``rejected_at``); runs
  only while ``reported``;
- arrival (到场): ``arrival_due_at``; stops at ``on_site_at``; never suspended;
- handling (处置): ``handle_due_at``; stops at ``handled_at`` in ``handled`` / ``verified``;
  suspended at ``deferred_at`` while ``deferred`` (缓办).
So an open event that broke a clock (arrived late, handled late) stays in the overdue tab
until it is closed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
import time
from dataclasses import dataclass, replace

from app import timeutil
from db.schema import TERMINAL_STATUSES

PENDING_STATUSES = ("reported", "accepted", "returned")
# open statuses in which the handling clock has stopped at handled_at
HANDLED_STATUSES = ("handled", "verified")
# the handling clock is suspended (缓办) from deferred_at
SUSPENDED_STATUSES = ("deferred",)

TABS = ("pending", "open", "overdue")
WINDOWS: dict[str, dt.timedelta] = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
KLASSES = ("ordinary", "emergency", "assigned")
SOON = dt.timedelta(hours=2)
DEFAULT_LIMIT = 500
FTS_MIN_CHARS = 3  # the trigram tokenizer cannot match fewer characters


def _in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# Must stay textually equivalent to the WHERE term of the partial indexes in db/schema.py.
OPEN_TERM = f"e.status NOT IN {_in_list(TERMINAL_STATUSES)}"
PENDING_TERM = f"e.status IN {_in_list(PENDING_STATUSES)}"
OVERDUE_TERM = (
    "("
    "e.handle_due_at < CASE"
    f" WHEN e.status IN {_in_list(HANDLED_STATUSES)} THEN coalesce(e.handled_at, :now)"
    f" WHEN e.status IN {_in_list(SUSPENDED_STATUSES)} THEN coalesce(e.deferred_at, :now)"
    " ELSE :now END"
    " OR e.arrival_due_at < coalesce(e.on_site_at, :now)"
    " OR e.response_due_at < coalesce(e.accepted_at, e.rejected_at,"
    " CASE WHEN e.status = 'reported' THEN :now END)"
    ")"
)

QUEUE_COLUMNS = """
    e.id, e.uid, e.external_id, e.title, e.category,
    c.name_zh AS category_name, c.name_en AS category_name_en,
    e.class, e.priority, e.status, e.source,
    e.street_code, s.name AS street_name, e.grid_id, e.address,
    e.reported_at, e.accepted_at, e.rejected_at, e.on_site_at, e.handled_at, e.deferred_at,
    e.response_due_at, e.arrival_due_at, e.handle_due_at, e.drill_id,
    e.assignee_kind, e.assignee_code, e.version
"""


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows. ``scope_street`` is the operator's role scope (a street
    station sees only its street); it is enforced by the query, whatever ``street`` says.
    ``assignee`` (a department code) is the department liaison's queue: what was dispatched to
    that department (not yet returned) and what its open whistles summon it to; the same rule
    as ``EventService.department_queue_filter``."""

    tab: str = "pending"
    street: str | None = None
    category: str | None = None
    source: str | None = None
    klass: str | None = None
    window: str | None = None
    text: str = ""
    scope_street: str | None = None
    assignee: str | None = None  # a department liaison's queue: its department code
    include_drills: bool = True
    limit: int = DEFAULT_LIMIT

    def with_(self, **changes) -> QueueFilter:
        return replace(self, **changes)


# -- time ----------------------------------------------------------------------------------------
def _now_iso(now: str | dt.datetime | None) -> str:
    if now is None:
        return timeutil.now_iso()
    if isinstance(now, dt.datetime):
        return timeutil.to_iso(now)
    return timeutil.to_iso(timeutil.parse(now))


def _now_dt(now: str | dt.datetime | None) -> dt.datetime:
    if isinstance(now, dt.datetime):
        return now if now.tzinfo else now.replace(tzinfo=timeutil.TZ)
    return timeutil.parse(_now_iso(now))


def _dt(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=timeutil.TZ)
    return timeutil.parse(value)


# -- text search ---------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ID_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-:./#]*$")
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")


def clean_text(text: str | None) -> str:
    """User search text made safe to bind: no control characters, no lone surrogates."""
    if not text:
        return ""
    text = text.encode("utf-8", "ignore").decode("utf-8")
    return _CONTROL.sub(" ", text).strip()


def fts_phrase(text: str) -> str:
    """One FTS5 phrase for ``text``: inner ``"`` doubled, wrapped in ``"``. Whatever the user
    types (quotes, ``AND``/``OR``/``NOT``, ``*``, ``:``, ``^``, parentheses) is matched literally."""
    return '"' + text.replace('"', '""') + '"'


def like_pattern(text: str) -> str:
    """``%text%`` for ``LIKE ... ESCAPE '\\'`` with ``\\``, ``%`` and ``_`` escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _text_term(text: str, params: dict) -> str | None:
    text = clean_text(text)
    if not text:
        return None
    ors: list[str] = []
    if len(text) >= FTS_MIN_CHARS:
        params["fts"] = fts_phrase(text)
        # +e.id: probe the match list while walking the open index (bounded by the open rows)
        # rather than seek every match, closed history included, and sort
        ors.append("+e.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH :fts)")
    else:
        params["like"] = like_pattern(text)
        ors.append(
            "e.title LIKE :like ESCAPE '\\' OR e.address LIKE :like ESCAPE '\\'"
            " OR e.description LIKE :like ESCAPE '\\'"
        )
    if text.isascii() and text.isdigit() and len(text) <= 18:
        params["id"] = int(text)
        ors.append("e.id = :id")
    if _ID_LIKE.match(text) and any(ch.isdigit() for ch in text):
        params["ext"] = text
        params["uid"] = text.upper() if _ULID.match(text) else text  # ULIDs are upper-case
        ors.append("e.external_id = :ext OR e.uid = :uid")
    return "(" + " OR ".join(ors) + ")"


# -- SQL -----------------------------------------------------------------------------------------
def _filter_terms(f: QueueFilter, now_iso: str) -> tuple[list[str], dict]:
    """WHERE terms and parameters shared by the queue and the counts (everything but the tab)."""
    params: dict = {"now": now_iso}
    terms = [OPEN_TERM]
    if f.scope_street:
        params["scope"] = f.scope_street
        terms.append("e.street_code = :scope")
    if f.assignee:
        params["assignee"] = f.assignee
        # a small id list: the department's open dispatched events through the partial index
        # ix_events_open_assignee (the unary + keeps SQLite off ix_events_assignee, which spans
        # the closed history) united with the events its open whistles summon it to
        terms.append(
            "e.id IN (SELECT a.id FROM events a WHERE a.assignee_code = :assignee"
            f" AND a.status NOT IN {_in_list(TERMINAL_STATUSES)}"
            " AND +a.assignee_kind = 'department' AND a.status <> 'returned'"
            " UNION SELECT w.event_id FROM whistle_departments wd JOIN whistles w ON w.id = wd.whistle_id"
            " WHERE wd.department_code = :assignee AND w.closed_at IS NULL)"
        )
    if f.street:
        params["street"] = f.street
        terms.append("e.street_code = :street")
    if f.category:
        params["cat"] = f.category
        params["cat_like"] = f.category.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"
        terms.append("(e.category = :cat OR e.category LIKE :cat_like ESCAPE '\\')")
    if f.source:
        params["source"] = f.source
        terms.append("+e.source = :source")  # not ux_events_source_ext: it spans closed events
    if f.klass:
        params["klass"] = f.klass
        terms.append("e.class = :klass")
    if f.window:
        if f.window not in WINDOWS:
            raise ValueError(f"unknown window {f.window!r}; known: {', '.join(WINDOWS)} or None")
        params["since"] = timeutil.to_iso(timeutil.parse(now_iso) - WINDOWS[f.window])
        # unary + keeps the planner on the open partial index (ordered, no sort) instead of
        # ix_events_reported, which would scan closed events too and need a sort
        terms.append("+e.reported_at >= :since")
    if not f.include_drills:
        terms.append("e.drill_id IS NULL")
    text = _text_term(f.text, params)
    if text:
        terms.append(text)
    return terms, params


def tab_term(tab: str) -> str | None:
    if tab == "pending":
        return PENDING_TERM
    if tab == "overdue":
        return OVERDUE_TERM
    if tab == "open":
        return None
    raise ValueError(f"unknown tab {tab!r}; known: {', '.join(TABS)}")


def queue_sql(f: QueueFilter, now: str | dt.datetime | None = None) -> tuple[str, dict]:
    """The queue query and its parameters (for ``query_queue`` and EXPLAIN QUERY PLAN)."""
    terms, params = _filter_terms(f, _now_iso(now))
    extra = tab_term(f.tab)
    if extra:
        terms.append(extra)
    params["limit"] = max(0, int(f.limit))
    # 待处理 is a few hundred rows even at 1M events: walk its own partial index. Forced, because a
    # replica migrated without fresh statistics would otherwise walk every open event
    hint = " INDEXED BY ix_events_pending" if f.tab == "pending" else ""
    sql = (
        f"SELECT {QUEUE_COLUMNS} FROM events e{hint}"
        " LEFT JOIN categories c ON c.code = e.category"
        " LEFT JOIN streets s ON s.code = e.street_code"
        " WHERE " + "\n AND ".join(terms) + "\n ORDER BY e.priority, e.reported_at, e.id LIMIT :limit"
    )
    return sql, params


def counts_sql(f: QueueFilter, now: str | dt.datetime | None = None) -> tuple[str, dict]:
    terms, params = _filter_terms(f, _now_iso(now))
    sql = (
        "SELECT count(*) AS open,"
        f" coalesce(sum({PENDING_TERM}), 0) AS pending,"
        f" coalesce(sum({OVERDUE_TERM}), 0) AS overdue"
        " FROM events e WHERE " + "\n AND ".join(terms)
    )
    return sql, params


def _dicts(cur: sqlite3.Cursor) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def query_queue(conn: sqlite3.Connection, f: QueueFilter, now: str | dt.datetime | None = None) -> list[dict]:
    """Queue rows: priority (1 first), then oldest reported first; at most ``f.limit``.

    Each row is a dict with the event columns the queue panel needs, the joined
    ``category_name`` / ``street_name``, and ``is_drill``.
    """
    sql, params = queue_sql(f, now)
    rows = _dicts(conn.execute(sql, params))
    for row in rows:
        row["is_drill"] = row["drill_id"] is not None
    return rows


def count_tabs(conn: sqlite3.Connection, f: QueueFilter, now: str | dt.datetime | None = None) -> dict[str, int]:
    """``{'pending': n, 'open': n, 'overdue': n}`` under the same filters (tab and limit ignored)."""
    sql, params = counts_sql(f, now)
    row = conn.execute(sql, params).fetchone()
    return {"pending": int(row[1]), "open": int(row[0]), "overdue": int(row[2])}


@dataclass(frozen=True)
class QueueSnapshot:
    """Rows and tab counts read in one transaction (so the counts agree with the rows)."""

    filter: QueueFilter
    now: str
    rows: list[dict]
    counts: dict[str, int]
    query_ms: float
    count_ms: float
    counts_cached: bool = False

    @property
    def truncated(self) -> bool:
        return len(self.rows) < self.counts.get(self.filter.tab, len(self.rows))


def load_queue(conn: sqlite3.Connection, f: QueueFilter, now: str | dt.datetime | None = None) -> QueueSnapshot:
    """``query_queue`` and ``count_tabs`` in one read transaction, timed."""
    now_iso = _now_iso(now)
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        t0 = time.perf_counter()
        rows = query_queue(conn, f, now_iso)
        t1 = time.perf_counter()
        counts = count_tabs(conn, f, now_iso)
        t2 = time.perf_counter()
    finally:
        if own and conn.in_transaction:
            conn.execute("COMMIT")
    return QueueSnapshot(f, now_iso, rows, counts, (t1 - t0) * 1000, (t2 - t1) * 1000)


class QueueReader:
    """Queue loads on one read connection, reusing the tab counts when only the tab changed.

    The counts scan every open event matching the filters (about 70 ms for 30k open events,
    0.7 s for 120k on the bench machine) while switching tabs does not change them: they are
    reused when the filters other than the tab are the same, no commit happened since
    (``PRAGMA data_version``) and they are younger than ``counts_max_age_s`` (overdue
    counts move with the clock).
    """

    def __init__(self, conn: sqlite3.Connection, *, counts_max_age_s: float = 30.0,
                 clock=time.monotonic) -> None:
        self.conn = conn
        self.counts_max_age_s = counts_max_age_s
        self._clock = clock
        self._cache: tuple[QueueFilter, int, float, dict[str, int]] | None = None

    def load(self, f: QueueFilter, now: str | dt.datetime | None = None) -> QueueSnapshot:
        conn = self.conn
        now_iso = _now_iso(now)
        key = f.with_(tab="open", limit=0)
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            t0 = time.perf_counter()
            rows = query_queue(conn, f, now_iso)
            t1 = time.perf_counter()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            cache = self._cache
            if (cache is not None and cache[0] == key and cache[1] == version
                    and self._clock() - cache[2] < self.counts_max_age_s):
                return QueueSnapshot(f, now_iso, rows, dict(cache[3]), (t1 - t0) * 1000, 0.0, True)
            counts = count_tabs(conn, f, now_iso)
            t2 = time.perf_counter()
        finally:
            if own and conn.in_transaction:
                conn.execute("COMMIT")
        self._cache = (key, version, self._clock(), dict(counts))
        return QueueSnapshot(f, now_iso, rows, counts, (t1 - t0) * 1000, (t2 - t1) * 1000)

    def invalidate(self) -> None:
        self._cache = None


# -- clocks --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clock:
    kind: str  # 'response' | 'arrival' | 'handle'
    due: dt.datetime
    stopped_at: dt.datetime | None = None  # the clock stopped (accepted, on site, handled)
    suspended_at: dt.datetime | None = None  # the clock is suspended (deferred)

    @property
    def running(self) -> bool:
        return self.stopped_at is None and self.suspended_at is None

    def overdue(self, now: dt.datetime) -> bool:
        ref = self.stopped_at or self.suspended_at or now
        return self.due < ref


def clocks(row: dict, now: str | dt.datetime | None = None) -> list[Clock]:
    """The SLA clocks of an open event (see the module doc); ``now`` stands in for a
    missing ``deferred_at``."""
    status = row.get("status")
    if status in TERMINAL_STATUSES:
        return []
    out: list[Clock] = []
    due = _dt(row.get("response_due_at"))
    if due is not None:
        stop = _dt(row.get("accepted_at")) or _dt(row.get("rejected_at"))
        if stop is not None or status == "reported":
            out.append(Clock("response", due, stopped_at=stop))
    due = _dt(row.get("arrival_due_at"))
    if due is not None:
        out.append(Clock("arrival", due, stopped_at=_dt(row.get("on_site_at"))))
    due = _dt(row.get("handle_due_at"))
    if due is not None:
        if status in HANDLED_STATUSES:
            out.append(Clock("handle", due, stopped_at=_dt(row.get("handled_at"))))
        elif status in SUSPENDED_STATUSES:
            out.append(Clock("handle", due, suspended_at=_dt(row.get("deferred_at")) or _now_dt(now)))
        else:
            out.append(Clock("handle", due))
    return out


def pick_clock(cs: list[Clock], now: str | dt.datetime | None = None) -> Clock | None:
    """The clock the countdown column shows, so that a red row always reads 超时: a running
    overdue clock, else a stopped/suspended overdue one, else the running one due first,
    else the handling clock (suspended or stopped in time)."""
    t = _now_dt(now)
    for group in (
        [c for c in cs if c.running and c.overdue(t)],
        [c for c in cs if c.overdue(t)],
        [c for c in cs if c.running],
    ):
        if group:
            return min(group, key=lambda c: c.due)
    handle = [c for c in cs if c.kind == "handle"]
    return handle[0] if handle else (cs[0] if cs else None)


def clocks_state(cs: list[Clock], now: str | dt.datetime | None = None) -> str:
    """``due_state`` for clocks already computed with ``clocks(row)`` (views cache them)."""
    t = _now_dt(now)
    if any(c.overdue(t) for c in cs):
        return "overdue"
    if any(c.running and c.due - t <= SOON for c in cs):
        return "soon"
    return "ok"


_CLOCK_PREFIX = {"response": "响应", "arrival": "到场", "handle": ""}
_CLOCK_PREFIX_EN = {"response": "Response ", "arrival": "Arrival ", "handle": ""}


def clocks_text(cs: list[Clock], now: str | dt.datetime | None = None, lang: str = "zh") -> str:
    """``deadline_text`` for clocks already computed with ``clocks(row)``."""
    en = lang == "en"
    clock = pick_clock(cs, now)
    if clock is None:
        return "—"
    prefix = (_CLOCK_PREFIX_EN if en else _CLOCK_PREFIX).get(clock.kind, "")
    if clock.running:
        return prefix + countdown_text(clock.due, now, lang)
    ref = clock.stopped_at or clock.suspended_at
    if clock.suspended_at is not None and clock.stopped_at is None:
        # frozen while suspended
        return ("Deferred " if en else "缓办 ") + prefix + countdown_text(clock.due, ref, lang)
    if clock.due < ref:
        return prefix + countdown_text(clock.due, ref, lang)  # frozen: how late it stopped
    if en:
        return {"response": "Responded in time", "arrival": "Arrived in time"}.get(clock.kind, "Handled in time")
    return {"response": "已按时响应", "arrival": "已按时到场"}.get(clock.kind, "按时处置")


def key_clock(row: dict, now: str | dt.datetime | None = None) -> Clock | None:
    """The clock the queue shows for ``row`` (see ``pick_clock``)."""
    return pick_clock(clocks(row, now), now)


def due_state(row: dict, now: str | dt.datetime | None = None) -> str:
    """'overdue' (a clock broken: exactly the rows of the overdue tab), 'soon' (a running
    clock is due within 2 hours) or 'ok'."""
    return clocks_state(clocks(row, now), now)


def deadline_text(row: dict, now: str | dt.datetime | None = None, lang: str = "zh") -> str:
    """The queue's 时限/倒计时 cell: the countdown of ``pick_clock``, prefixed 响应/到场 for
    those clocks: '剩余 1:23:05', '到场超时 0:03:01', '缓办 剩余 5:00:00' (frozen while
    deferred), '超时 1:00:00' (frozen: handled late), '按时处置', or '—' without deadlines."""
    return clocks_text(clocks(row, now), now, lang)


def _hms(seconds: int, lang: str = "zh") -> str:
    days, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if days:
        return f"{days}{'d ' if lang == 'en' else '天'}{h:02d}:{m:02d}:{s:02d}"
    return f"{h}:{m:02d}:{s:02d}"


def countdown_text(due: str | dt.datetime | None, now: str | dt.datetime | None = None, lang: str = "zh") -> str:
    """'剩余 1:23:05' before ``due``, '超时 2:10:00' after it; beyond a day '剩余 2天03:00:00'.
    In English: 'left 1:23:05' / 'overdue 2:10:00' / 'left 2d 03:00:00'."""
    d = _dt(due)
    if d is None:
        return ""
    secs = math.floor((d - _now_dt(now)).total_seconds())
    if lang == "en":
        return f"left {_hms(secs, lang)}" if secs >= 0 else f"overdue {_hms(-secs, lang)}"
    if secs >= 0:
        return f"剩余 {_hms(secs)}"
    return f"超时 {_hms(-secs)}"
