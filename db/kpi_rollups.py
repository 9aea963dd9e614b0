"""KPI rollups (issue 6): daily and hourly sums of every KPI count, maintained by triggers.

Each event *contributes* a few numbers to three buckets, one per anchor time:

- **R** (``reported_at``): reported counts, response, resolution and arrival sums;
- **D** (``handle_due_at``): 应结案数, 缓办数 and the closures among them;
- **E** (``evaluated_at``): evaluations and satisfied evaluations (满意率).

A contribution is a pure function of the event row (its current state), so the rollups equal
``GROUP BY`` over ``events`` at any time. Triggers on ``events`` subtract the old row's
contribution and add the new one, inside the write transaction that changed the row, so
every write path (``db.event_ops``, the intake pipeline, ``simulate``, drills …) keeps them
current without knowing about them. :func:`rebuild` recomputes them from scratch (demo
generator, migration of an existing replica, tests).

Tables (key: bucket, street, department, drill):

- ``kpi_daily(day 'YYYY-MM-DD', street_code, dept_code, drill, <measures>)``
- ``kpi_hourly(hour 'YYYY-MM-DDTHH', street_code, dept_code, drill, <measures>)``
- ``kpi_counts_daily(day, street_code, drill, dim, code, n)`` — reported events (merged and
  rejected excluded) by ``source`` / ``category`` / ``class`` / ``grid`` (grid id);
- ``kpi_arrival_daily(day, drill, arrival_s, n)`` — the exact distribution of report → on
  site seconds, district-wide (median and p90 need every value; seconds repeat a lot).

``street_code`` is ``''`` for an event outside every grid; ``dept_code`` is the assignee when
``assignee_kind = 'department'``, else ``''``; ``drill`` is 1 for drill events.

Two helper columns on ``events`` keep contributions row-local: ``deferrals`` (number of 缓办
actions, counted from ``event_log``) and ``evaluated_at`` (time of the latest 综合评价); both are
set by triggers on ``event_log``.
"""

from __future__ import annotations

import sqlite3

# Merged and rejected events are excluded from every KPI except where a formula names them.
LIVE = "{e}.status NOT IN ('merged', 'rejected')"
WAS_DEFERRED = "({e}.deferrals > 0 OR {e}.status = 'deferred' OR {e}.deferred_at IS NOT NULL)"
ARRIVAL_S = "(unixepoch({e}.on_site_at) - unixepoch({e}.reported_at))"
HAS_ARRIVAL = f"({LIVE} AND {{e}}.arrival_due_at IS NOT NULL AND {{e}}.on_site_at IS NOT NULL AND {ARRIVAL_S} IS NOT NULL)"

# anchor -> column holding the anchor time
ANCHORS: dict[str, str] = {"R": "reported_at", "D": "handle_due_at", "E": "evaluated_at"}

# (measure, anchor, SQL expression over an events row aliased {e}); integer valued.
MEASURES: tuple[tuple[str, str, str], ...] = (
    # -- R: events by report time ------------------------------------------------------------
    ("reported_all", "R", "1"),
    ("merged", "R", "{e}.status = 'merged'"),
    ("rejected", "R", "{e}.status = 'rejected'"),
    ("reported", "R", LIVE),
    # accepted no later than the catalogue's response limit (no limit: accepted at all)
    ("responded", "R",
     f"{LIVE} AND {{e}}.accepted_at IS NOT NULL AND ({{e}}.response_due_at IS NULL "
     "OR {e}.accepted_at <= {e}.response_due_at)"),
    ("resolved", "R", f"{LIVE} AND {{e}}.status = 'closed'"),
    ("arrivals", "R", HAS_ARRIVAL),
    ("arrival_le10", "R", f"{HAS_ARRIVAL} AND {ARRIVAL_S} <= 600"),
    ("arrival_sum_s", "R", f"CASE WHEN {HAS_ARRIVAL} THEN {ARRIVAL_S} ELSE 0 END"),
    # -- D: events by handling deadline (应结案) ----------------------------------------------
    ("due", "D", LIVE),
    ("deferred", "D", f"{LIVE} AND {WAS_DEFERRED}"),
    ("due_closed", "D", f"{LIVE} AND NOT {WAS_DEFERRED} AND {{e}}.status = 'closed'"),
    ("due_ontime", "D",
     f"{LIVE} AND NOT {WAS_DEFERRED} AND {{e}}.status = 'closed' AND {{e}}.closed_at <= {{e}}.handle_due_at"),
    # -- E: evaluations by evaluation time -----------------------------------------------------
    ("evaluated", "E", f"{LIVE} AND {{e}}.satisfaction IS NOT NULL"),
    ("satisfied", "E", f"{LIVE} AND {{e}}.satisfaction >= 4"),
)  # fmt: skip
MEASURE_NAMES: tuple[str, ...] = tuple(m[0] for m in MEASURES)
# counted dimension -> events column (kpi_counts_daily.dim / .code)
COUNT_DIMS: dict[str, str] = {"source": "source", "category": "category", "class": "class", "grid": "grid_id"}

# columns whose change can move a contribution
RELEVANT = (
    "reported_at", "status", "accepted_at", "response_due_at", "arrival_due_at", "on_site_at",
    "handle_due_at", "closed_at", "deferrals", "deferred_at", "satisfaction", "evaluated_at",
    "street_code", "assignee_kind", "assignee_code", "drill_id", "source", "category", "class", "grid_id",
)  # fmt: skip

TABLES = ("kpi_daily", "kpi_hourly", "kpi_counts_daily", "kpi_arrival_daily")
TRIGGER_PREFIX = "kpi_"


def street_key(e: str) -> str:
    return f"coalesce({e}.street_code, '')"


def dept_key(e: str) -> str:
    return f"CASE WHEN {e}.assignee_kind = 'department' THEN coalesce({e}.assignee_code, '') ELSE '' END"


def drill_key(e: str) -> str:
    return f"({e}.drill_id IS NOT NULL)"


def measure_sql(name: str, e: str = "e") -> str:
    """The contribution of one event row (aliased ``e``) to measure ``name``."""
    for m, _anchor, expr in MEASURES:
        if m == name:  # NULL (e.g. a closed event without closed_at) counts as 0, never NULL
            return f"coalesce(({expr.format(e=e)}), 0)"
    raise KeyError(name)


def anchor_measures(anchor: str) -> list[str]:
    return [m for m, a, _ in MEASURES if a == anchor]


# -- DDL ---------------------------------------------------------------------------------------
def _wide_table(name: str, bucket: str) -> str:
    cols = ", ".join(f"{m} INTEGER NOT NULL DEFAULT 0" for m in MEASURE_NAMES)
    return (
        f"CREATE TABLE IF NOT EXISTS {name} ({bucket} TEXT NOT NULL, street_code TEXT NOT NULL, "
        f"dept_code TEXT NOT NULL, drill INTEGER NOT NULL, {cols}, "
        f"PRIMARY KEY ({bucket}, street_code, dept_code, drill)) WITHOUT ROWID"
    )


def ddl() -> list[str]:
    """Tables and indexes of the rollups (idempotent)."""
    return [
        _wide_table("kpi_daily", "day"),
        _wide_table("kpi_hourly", "hour"),
        "CREATE INDEX IF NOT EXISTS ix_kpi_daily_street ON kpi_daily(street_code, day)",
        "CREATE INDEX IF NOT EXISTS ix_kpi_daily_dept ON kpi_daily(dept_code, day)",
        "CREATE INDEX IF NOT EXISTS ix_kpi_hourly_street ON kpi_hourly(street_code, hour)",
        "CREATE INDEX IF NOT EXISTS ix_kpi_hourly_dept ON kpi_hourly(dept_code, hour)",
        "CREATE TABLE IF NOT EXISTS kpi_counts_daily (day TEXT NOT NULL, street_code TEXT NOT NULL, "
        "drill INTEGER NOT NULL, dim TEXT NOT NULL, code TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (dim, day, street_code, drill, code)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS kpi_arrival_daily (day TEXT NOT NULL, drill INTEGER NOT NULL, "
        "arrival_s INTEGER NOT NULL, n INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (day, drill, arrival_s)) WITHOUT ROWID",
    ]


def _bucket(col: str, e: str, length: int) -> str:
    return f"substr({e}.{col}, 1, {length})"


def _wide_upsert(table: str, bucket: str, length: int, e: str, sign: str) -> list[str]:
    """Statements adding (sign '+') or subtracting ('-') row ``e``'s contributions to ``table``."""
    out = []
    for anchor, col in ANCHORS.items():
        names = anchor_measures(anchor)
        vals = ", ".join(f"{sign}{measure_sql(m, e)}" for m in names)
        sets = ", ".join(f"{m} = {m} + excluded.{m}" for m in names)
        out.append(
            f"INSERT INTO {table} ({bucket}, street_code, dept_code, drill, {', '.join(names)}) "
            f"SELECT {_bucket(col, e, length)}, {street_key(e)}, {dept_key(e)}, {drill_key(e)}, {vals} "
            f"WHERE {e}.{col} IS NOT NULL "
            f"ON CONFLICT DO UPDATE SET {sets}"
        )
    return out


def _counts_upsert(e: str, sign: str) -> list[str]:
    out = []
    for dim, col in COUNT_DIMS.items():
        out.append(
            "INSERT INTO kpi_counts_daily (day, street_code, drill, dim, code, n) "
            f"SELECT substr({e}.reported_at, 1, 10), {street_key(e)}, {drill_key(e)}, '{dim}', "
            f"coalesce({e}.{col}, ''), {sign}1 WHERE {LIVE.format(e=e)} "
            "ON CONFLICT DO UPDATE SET n = n + excluded.n"
        )
    return out


def _arrival_upsert(e: str, sign: str) -> list[str]:
    return [
        "INSERT INTO kpi_arrival_daily (day, drill, arrival_s, n) "
        f"SELECT substr({e}.reported_at, 1, 10), {drill_key(e)}, {ARRIVAL_S.format(e=e)}, {sign}1 "
        f"WHERE {HAS_ARRIVAL.format(e=e)} ON CONFLICT DO UPDATE SET n = n + excluded.n"
    ]


def _row_statements(e: str, sign: str) -> list[str]:
    return (
        _wide_upsert("kpi_daily", "day", 10, e, sign)
        + _wide_upsert("kpi_hourly", "hour", 13, e, sign)
        + _counts_upsert(e, sign)
        + _arrival_upsert(e, sign)
    )


def trigger_sql() -> list[str]:
    """The triggers that keep the rollups equal to a rescan, in every write transaction."""
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in RELEVANT)
    body_new = ";\n".join(_row_statements("new", "+"))
    body_old = ";\n".join(_row_statements("old", "-"))
    return [
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}events_ai AFTER INSERT ON events BEGIN\n{body_new};\nEND",
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}events_ad AFTER DELETE ON events BEGIN\n{body_old};\nEND",
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}events_au AFTER UPDATE OF {', '.join(RELEVANT)} ON events "
        f"WHEN {changed} BEGIN\n{body_old};\n{body_new};\nEND",
        # the two helper columns, from the append-only log
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}log_defer AFTER INSERT ON event_log "
        "WHEN new.action = 'defer' BEGIN "
        "UPDATE events SET deferrals = deferrals + 1 WHERE id = new.event_id; END",
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}log_evaluate AFTER INSERT ON event_log "
        "WHEN new.action = 'evaluate' BEGIN "
        "UPDATE events SET evaluated_at = new.at WHERE id = new.event_id "
        "AND (evaluated_at IS NULL OR evaluated_at <= new.at); END",
        # a satisfaction written without an 'evaluate' log row (imports): evaluated when written
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}events_sat AFTER UPDATE OF satisfaction ON events "
        "WHEN new.satisfaction IS NOT NULL AND new.evaluated_at IS NULL BEGIN "
        "UPDATE events SET evaluated_at = new.updated_at WHERE id = new.id; END",
        f"CREATE TRIGGER IF NOT EXISTS {TRIGGER_PREFIX}events_sat_ai AFTER INSERT ON events "
        "WHEN new.satisfaction IS NOT NULL AND new.evaluated_at IS NULL BEGIN "
        "UPDATE events SET evaluated_at = coalesce(new.closed_at, new.handled_at, new.updated_at) "
        "WHERE id = new.id; END",
    ]


def drop_triggers(conn: sqlite3.Connection) -> None:
    """Drop the rollup triggers (bulk loaders; :func:`rebuild` re-creates them)."""
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?", (TRIGGER_PREFIX + "%",))]  # fmt: skip
    for name in names:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def installed(conn: sqlite3.Connection) -> bool:
    """True when the rollup tables exist (migration m007 applied)."""
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kpi_daily'").fetchone()
        is not None
    )


def backfill_helpers(conn: sqlite3.Connection) -> None:
    """Set ``events.deferrals`` and ``events.evaluated_at`` from ``event_log`` (one pass over the log)."""
    conn.execute(
        "UPDATE events SET deferrals = d.n FROM (SELECT event_id, count(*) AS n FROM event_log "
        "WHERE action = 'defer' GROUP BY event_id) AS d WHERE events.id = d.event_id AND events.deferrals <> d.n"
    )
    conn.execute(
        "UPDATE events SET evaluated_at = v.at FROM (SELECT event_id, max(at) AS at FROM event_log "
        "WHERE action = 'evaluate' GROUP BY event_id) AS v WHERE events.id = v.event_id "
        "AND events.evaluated_at IS NOT v.at"
    )
    conn.execute(
        "UPDATE events SET evaluated_at = coalesce(closed_at, handled_at, updated_at) "
        "WHERE satisfaction IS NOT NULL AND evaluated_at IS NULL"
    )


def rebuild(conn: sqlite3.Connection, *, helpers: bool = True) -> None:
    """Recompute every rollup from ``events`` (and, with ``helpers``, the helper columns from
    ``event_log``); (re)create the triggers. Run inside the caller's write transaction."""
    for stmt in ddl():
        conn.execute(stmt)
    drop_triggers(conn)
    if helpers:
        backfill_helpers(conn)
    for t in TABLES:
        conn.execute(f"DELETE FROM {t}")
    add_contributions(conn, "1")
    create_triggers(conn)


def create_triggers(conn: sqlite3.Connection) -> None:
    for stmt in trigger_sql():
        conn.execute(stmt)


def add_contributions(conn: sqlite3.Connection, where: str = "1", params: tuple = (), *, sign: int = 1) -> None:
    """Add the contributions of the events matching ``where`` (SQL over ``events e``) to the
    rollups, set-based. :func:`rebuild` uses it on empty tables; a bulk loader that dropped the
    triggers (:func:`drop_triggers`) and only INSERTed new events calls it with e.g.
    ``"e.id > ?"`` and then :func:`create_triggers`.

    ``sign=-1`` subtracts them instead: a bulk updater drops the update trigger, subtracts the
    contributions of the rows it is about to change, changes them, and adds them back.

    One pass over ``events`` computes every event's terms into a narrow temporary table; the
    rollups are grouped from that."""
    if sign not in (1, -1) or (sign < 0 and where == "1"):
        raise ValueError("sign is 1, or -1 for a subset of the events")
    neg = "-" if sign < 0 else ""
    measures = ", ".join(f"{measure_sql(m)} AS {m}" for m in MEASURE_NAMES)
    buckets = ", ".join(f"substr(e.{col}, 1, 13) AS h_{a}" for a, col in ANCHORS.items())
    conn.execute("DROP TABLE IF EXISTS temp.kpi_contrib")
    conn.execute(
        f"CREATE TEMP TABLE kpi_contrib AS SELECT {buckets}, {street_key('e')} AS s, {dept_key('e')} AS d, "
        f"{drill_key('e')} AS k, ({LIVE.format(e='e')}) AS live, "
        + ", ".join(f"coalesce(e.{col}, '') AS c_{dim}" for dim, col in COUNT_DIMS.items())
        + f", CASE WHEN {HAS_ARRIVAL.format(e='e')} THEN {ARRIVAL_S.format(e='e')} END AS arrival_s, {measures} "
        f"FROM events e WHERE ({where})",
        params,
    )
    try:
        tables = [("kpi_hourly", "hour", 13)] + ([] if where == "1" else [("kpi_daily", "day", 10)])
        for table, bucket, length in tables:
            for anchor in ANCHORS:
                names = anchor_measures(anchor)
                sets = ", ".join(f"{m} = {m} + excluded.{m}" for m in names)
                conn.execute(
                    f"INSERT INTO {table} ({bucket}, street_code, dept_code, drill, {', '.join(names)}) "
                    f"SELECT substr(h_{anchor}, 1, {length}) AS b, s, d, k, {', '.join(f'{neg}sum({m})' for m in names)} "
                    f"FROM temp.kpi_contrib WHERE h_{anchor} IS NOT NULL GROUP BY b, s, d, k "
                    f"ON CONFLICT DO UPDATE SET {sets}"
                )
        if where == "1":  # from scratch: days are sums of their hours
            sums = ", ".join(f"sum({m})" for m in MEASURE_NAMES)
            conn.execute(
                f"INSERT INTO kpi_daily (day, street_code, dept_code, drill, {', '.join(MEASURE_NAMES)}) "
                f"SELECT substr(hour, 1, 10), street_code, dept_code, drill, {sums} FROM kpi_hourly GROUP BY 1, 2, 3, 4"
            )
        for dim in COUNT_DIMS:
            conn.execute(
                "INSERT INTO kpi_counts_daily (day, street_code, drill, dim, code, n) "
                f"SELECT substr(h_R, 1, 10), s, k, '{dim}', c_{dim}, {neg}count(*) FROM temp.kpi_contrib WHERE live "
                "GROUP BY 1, 2, 3, 5 ON CONFLICT DO UPDATE SET n = n + excluded.n"
            )
        conn.execute(
            "INSERT INTO kpi_arrival_daily (day, drill, arrival_s, n) "
            f"SELECT substr(h_R, 1, 10), k, arrival_s, {neg}count(*) FROM temp.kpi_contrib WHERE arrival_s IS NOT NULL "
            "GROUP BY 1, 2, 3 ON CONFLICT DO UPDATE SET n = n + excluded.n"
        )
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.kpi_contrib")


MIGRATION_SQL = """
ALTER TABLE events ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN evaluated_at TEXT;
CREATE INDEX ix_events_handle_due ON events(handle_due_at);
CREATE INDEX ix_events_evaluated ON events(evaluated_at) WHERE evaluated_at IS NOT NULL;
CREATE INDEX ix_events_dept_time ON events(assignee_code, reported_at) WHERE assignee_kind = 'department';
CREATE INDEX ix_events_arrival ON events(reported_at, on_site_at, status, drill_id, street_code, grid_id,
    assignee_kind, assignee_code) WHERE arrival_due_at IS NOT NULL;
CREATE INDEX ix_events_drill ON events(drill_id, reported_at) WHERE drill_id IS NOT NULL;
CREATE INDEX ix_events_open_kpi ON events(reported_at, drill_id, street_code, grid_id, assignee_kind, assignee_code,
    status, handle_due_at, handled_at, deferred_at, arrival_due_at, on_site_at, response_due_at, accepted_at,
    rejected_at) WHERE status NOT IN ('closed', 'rejected', 'merged');
CREATE INDEX ix_whistles_blown ON whistles(blown_at);
"""


def snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every rollup table's non-zero rows, sorted (tests compare this with a rebuild)."""
    out = {}
    for t in TABLES:
        rows = conn.execute(f"SELECT * FROM {t}").fetchall()
        keep = []
        for r in rows:
            r = tuple(r)
            nums = r[4:] if t in ("kpi_daily", "kpi_hourly") else r[-1:]
            if any(nums):
                keep.append(r)
        out[t] = sorted(keep)
    return out
