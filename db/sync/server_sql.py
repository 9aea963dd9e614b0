"""The upstream's SQL (PostgreSQL, schema ``onemap``): tables, generated rules, functions, grants.

The contract is ``docs/sync.md``. Nothing here is run by itself: ``db/sync/upstream.py``
``init_upstream`` executes :func:`init_sql` in one transaction (idempotent: ``IF NOT EXISTS``,
``CREATE OR REPLACE``, and the generated rule tables are re-filled on every init).

The ``lifecycle`` and ``overlay_rules`` rows are **generated** from ``app/lifecycle.py``
(``TRANSITIONS``; ``check_overlay`` evaluated over every state × overlay), so the server checks
the same table the replicas use and nobody writes the rules a second time. Likewise
``department_actions`` (what a department desk may push on an event dispatched to it / one that
summoned it) is generated from ``app/access.py`` ``DEPARTMENT_ACTIONS``/``SUMMONED_ACTIONS``.

Unsafe variants (negative controls for the fault campaign, tests only):

- ``"no_ledger"``: ``push_mutation`` skips the ledger lookup (and the log-uid check), and
  ``event_log`` has no unique constraint on ``(client_id, mutation_id)`` nor on ``uid``, so a
  retried mutation whose reply was lost is applied a second time (or refused against its own
  first application).
- ``"bigserial"``: ``server_seq`` is a plain ``bigserial`` value taken at the START of the push
  transaction instead of the one-row counter taken under lock, and the function sleeps a tiny
  random time (0–4 ms, ``pg_sleep``) between taking it and committing, so commits do happen out
  of seq order and a puller reading ``server_seq > cursor`` skips rows committed late (a
  rejection also burns a value: gaps).
"""

from __future__ import annotations

import orjson

from app import access
from app.lifecycle import OVERLAYS, STAGE_COLUMN, STATES, TRANSITIONS, IllegalTransition, check_overlay
from db.sync.protocol import DESK_ROLE, PROTOCOL_VERSION, SERVER_SCHEMA, SYNC_SCHEMA_VERSION

UNSAFE_VARIANTS = frozenset({"no_ledger", "bigserial"})

# Columns added to the event image per sync schema version: a client on the previous version
# sends images without them and the server fills these defaults (empty while at version 1).
ADDED_COLUMNS: dict[int, dict[str, object]] = {SYNC_SCHEMA_VERSION: {}}

# When a push was made on an older server version of the event (another desk changed it
# meanwhile), only the columns its action sets are taken from the client's image; the rest
# stays as the server has it. (When base_version equals the server's version the whole image
# is taken.) Transitions also take their stage column from app.lifecycle.STAGE_COLUMN.
ACTION_COLUMNS: dict[str, tuple[str, ...]] = {
    "dispatch": ("assignee_kind", "assignee_code"),
    "rework": ("handled_at", "assignee_kind", "assignee_code"),
    "merge": ("merged_into_uid",),
    "defer": ("deferred_at", "deferrals"),
    "resume": ("deferred_at", "suspended_s", "handle_due_at"),
    "arrive": ("deferred_at", "suspended_s", "handle_due_at"),
    "evaluate": ("satisfaction", "evaluated_at"),
    "extend": ("handle_due_at", "extended_count"),
    "imported": ("source_status", "source_code"),
}

# Functions a desk role may call (name, argument types). Everything else is owner-only.
DESK_FUNCTIONS: tuple[tuple[str, str], ...] = (
    ("hello", "text, integer, integer, bigint"),
    ("push_mutation", "text, bigint, integer, integer, text, jsonb"),
    ("push_mutations", "text, integer, integer, jsonb"),
    ("pull_changes", "text, integer, integer, bigint, integer"),
    ("snapshot_head", "text, integer, integer"),
    ("snapshot_events", "text, integer, integer, text, integer"),
    ("snapshot_reference", "text, integer, integer"),
    ("content_hash", ""),
)
ADMIN_FUNCTIONS: tuple[tuple[str, str], ...] = (
    ("delete_event", "text"),
    ("compact", "integer"),
)


def lifecycle_rows() -> list[tuple[str, str, str]]:
    """``(from_status, action, to_status)`` for every transition in ``app.lifecycle.TRANSITIONS``."""
    return [(src, action, dst) for src, nxt in TRANSITIONS.items() for action, dst in nxt.items()]


def overlay_rows() -> list[tuple[str, str]]:
    """``(action, status)`` for every overlay ``check_overlay`` allows in that status."""
    rows = []
    for action in sorted(OVERLAYS):
        for status in STATES:
            try:
                check_overlay(status, action)
            except IllegalTransition:
                continue
            rows.append((action, status))
    return rows


def department_action_rows() -> list[tuple[str, str]]:
    """``(relation, op)``: what a department desk may push on an event ``assigned`` to it
    (``app.access.DEPARTMENT_ACTIONS``) and on one whose whistles ``summoned`` it
    (``SUMMONED_ACTIONS``). ``read`` is not a mutation and is left out; any other name that is
    not a server op means the two tables drifted apart, and init refuses to build."""
    ops = {"report", *OVERLAYS, *(a for nxt in TRANSITIONS.values() for a in nxt)}
    not_ops = {access.READ}
    rows = []
    for relation, actions in (("assigned", access.DEPARTMENT_ACTIONS), ("summoned", access.SUMMONED_ACTIONS)):
        unknown = set(actions) - ops - not_ops
        if unknown:
            raise ValueError(f"app.access {relation} actions {sorted(unknown)} are not sync ops ({sorted(ops)})")
        rows.extend((relation, a) for a in sorted(set(actions) - not_ops))
    return rows


def action_column_rows() -> list[tuple[str, str]]:
    rows = {(a, c) for a, cols in ACTION_COLUMNS.items() for c in cols}
    for nxt in TRANSITIONS.values():
        for action, dst in nxt.items():
            rows.add((action, "updated_at"))
            if dst in STAGE_COLUMN:
                rows.add((action, STAGE_COLUMN[dst]))
    for action in OVERLAYS:
        rows.add((action, "updated_at"))
    return sorted(rows)


def _lit(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _values(rows: list[tuple]) -> str:
    return ",\n    ".join("(" + ", ".join(_lit(v) for v in row) + ")" for row in rows)


def ddl_sql(unsafe: frozenset[str] = frozenset()) -> str:
    """Schema and tables (``IF NOT EXISTS``)."""
    log_uid = "text COLLATE \"C\" NOT NULL" if "no_ledger" in unsafe else "text COLLATE \"C\" PRIMARY KEY"
    log_unique = "" if "no_ledger" in unsafe else ",\n    UNIQUE (client_id, mutation_id)"
    log_uid_index = "CREATE INDEX IF NOT EXISTS ix_event_log_uid ON event_log (uid);" if "no_ledger" in unsafe else ""
    return f"""
CREATE SCHEMA IF NOT EXISTS {SERVER_SCHEMA};
SET LOCAL search_path = {SERVER_SCHEMA}, pg_temp;
CREATE TABLE IF NOT EXISTS events (
    uid text COLLATE "C" PRIMARY KEY,
    status text NOT NULL,
    version integer NOT NULL,
    street_code text,
    source text,
    external_id text,
    drill_id integer,
    data jsonb NOT NULL,
    server_seq bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_events_source_ext ON events (source, external_id);
CREATE TABLE IF NOT EXISTS event_log (
    uid {log_uid},
    event_uid text COLLATE "C" NOT NULL,
    server_seq bigint NOT NULL DEFAULT 0,
    client_id text,
    mutation_id bigint,
    action text NOT NULL,
    from_status text,
    to_status text,
    at text COLLATE "C",
    actor text,
    data json NOT NULL{log_unique}  -- json text: written once, only read back (snapshots)
);
CREATE INDEX IF NOT EXISTS ix_event_log_event ON event_log (event_uid, server_seq, at, uid);
{log_uid_index}
CREATE TABLE IF NOT EXISTS whistles (
    uid text COLLATE "C" PRIMARY KEY,
    event_uid text COLLATE "C" NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_whistles_event ON whistles (event_uid);
CREATE TABLE IF NOT EXISTS changes (
    server_seq bigint PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('mutation', 'tombstone')),
    uid text COLLATE "C" NOT NULL,
    data json NOT NULL  -- json (text), not jsonb: written once, read by every replica without re-serialising
);
CREATE TABLE IF NOT EXISTS ledger (
    client_id text NOT NULL,
    mutation_id bigint NOT NULL,
    fingerprint text NOT NULL,
    outcome jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, mutation_id)
);
CREATE TABLE IF NOT EXISTS clients (
    client_id text PRIMARY KEY,
    role_name text,
    scope_street text,
    last_mutation_id bigint NOT NULL DEFAULT 0,
    cursor bigint NOT NULL DEFAULT 0,
    schema_version integer,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS seq_counter (
    id integer PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO seq_counter (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE SEQUENCE IF NOT EXISTS unsafe_seq;
CREATE TABLE IF NOT EXISTS lifecycle (
    from_status text NOT NULL,
    action text NOT NULL,
    to_status text NOT NULL,
    PRIMARY KEY (from_status, action)
);
CREATE TABLE IF NOT EXISTS overlay_rules (
    action text NOT NULL,
    status text NOT NULL,
    PRIMARY KEY (action, status)
);
CREATE TABLE IF NOT EXISTS action_columns (
    action text NOT NULL,
    col text NOT NULL,
    PRIMARY KEY (action, col)
);
CREATE TABLE IF NOT EXISTS image_defaults (
    schema_version integer PRIMARY KEY,
    defaults jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS desk_roles (
    role_name text PRIMARY KEY,
    scope_street text
);
ALTER TABLE desk_roles ADD COLUMN IF NOT EXISTS scope_dept text;  -- department desks (added after v1 servers)
CREATE TABLE IF NOT EXISTS department_actions (
    relation text NOT NULL CHECK (relation IN ('assigned', 'summoned')),
    action text NOT NULL,
    PRIMARY KEY (relation, action)
);
CREATE TABLE IF NOT EXISTS reference (
    name text PRIMARY KEY,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS meta (
    key text PRIMARY KEY,
    value text
);
"""


def rules_sql(unsafe: frozenset[str] = frozenset()) -> str:
    """The generated rule rows (re-filled on every init) and ``meta``."""
    defaults = []
    for version in (SYNC_SCHEMA_VERSION - 1, SYNC_SCHEMA_VERSION):
        added: dict[str, object] = {}
        for v, cols in ADDED_COLUMNS.items():
            if v > version:
                added.update(cols)
        defaults.append((version, orjson.dumps(added).decode()))
    meta = [
        ("protocol_version", str(PROTOCOL_VERSION)),
        ("schema_version", str(SYNC_SCHEMA_VERSION)),
        ("unsafe", ",".join(sorted(unsafe))),
    ]
    return f"""
DELETE FROM lifecycle;
INSERT INTO lifecycle (from_status, action, to_status) VALUES
    {_values(lifecycle_rows())};
DELETE FROM overlay_rules;
INSERT INTO overlay_rules (action, status) VALUES
    {_values(overlay_rows())};
DELETE FROM action_columns;
INSERT INTO action_columns (action, col) VALUES
    {_values(action_column_rows())};
DELETE FROM department_actions;
INSERT INTO department_actions (relation, action) VALUES
    {_values(department_action_rows())};
DELETE FROM image_defaults;
INSERT INTO image_defaults (schema_version, defaults) VALUES
    {_values(defaults)};
INSERT INTO meta (key, value) VALUES
    {_values(meta)}
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO meta (key, value) VALUES ('feed_floor', '0') ON CONFLICT (key) DO NOTHING;
"""


_HEADER = f"LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SERVER_SCHEMA}, pg_temp"


def _version_check() -> str:
    return f"""
    IF p_protocol IS DISTINCT FROM {PROTOCOL_VERSION}
       OR p_schema IS NULL OR p_schema NOT IN ({SYNC_SCHEMA_VERSION}, {SYNC_SCHEMA_VERSION - 1}) THEN
        RETURN jsonb_build_object('ok', false, 'status', 'version', 'reason', 'version',
            'message', '请升级 OneMap Console / update OneMap Console: server speaks protocol {PROTOCOL_VERSION}, '
                       || 'schema {SYNC_SCHEMA_VERSION} (or {SYNC_SCHEMA_VERSION - 1})',
            'protocol', {PROTOCOL_VERSION}, 'schema', {SYNC_SCHEMA_VERSION});
    END IF;"""


def _version_check_json() -> str:
    return _version_check().replace("jsonb_build_object", "json_build_object")


_DESK_CHECK = """
    SELECT s.known, s.street INTO v_known, v_street FROM desk_scope() s;
    IF NOT v_known THEN
        RETURN jsonb_build_object('ok', false, 'status', 'unknown_desk', 'reason', 'unknown_desk',
            'message', '数据库角色 ' || session_user || ' 未登记为工作站 / role is not a registered desk (onemap upstream add-desk)');
    END IF;"""


def helpers_sql() -> str:
    """Owner-only helper functions (not SECURITY DEFINER: only called from the definer functions)."""
    return f"""
CREATE OR REPLACE FUNCTION desk_scope(OUT known boolean, OUT street text)
LANGUAGE plpgsql STABLE SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
BEGIN
    SELECT true, d.scope_street INTO known, street FROM desk_roles d WHERE d.role_name = session_user;
    IF FOUND THEN
        RETURN;
    END IF;
    street := NULL;
    known := EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = session_user AND r.rolsuper)
          OR session_user = (SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = '{SERVER_SCHEMA}');
END
$fn$;

CREATE OR REPLACE FUNCTION desk_dept() RETURNS text
LANGUAGE sql STABLE SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
    SELECT d.scope_dept FROM desk_roles d WHERE d.role_name = session_user
$fn$;

CREATE OR REPLACE FUNCTION dept_scope_refusal(p_dept text, p_op text, p_uid text, p_event jsonb) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
-- NULL when department p_dept may push p_op on the event (server image p_event, NULL for a report),
-- else the reason. Rules: app.access (department_actions is generated from it).
DECLARE
    v_assigned boolean;
    v_summoned boolean;
BEGIN
    IF p_op = 'report' OR p_event IS NULL THEN
        RETURN '超出本部门范围 / out of scope: department ' || p_dept
               || ' receives dispatched work; it does not report events';
    END IF;
    v_assigned := coalesce((p_event->>'assignee_kind') = 'department' AND (p_event->>'assignee_code') = p_dept, false);
    v_summoned := EXISTS (
        SELECT 1 FROM whistles w,
             jsonb_array_elements(CASE jsonb_typeof(w.data->'departments')
                                      WHEN 'array' THEN w.data->'departments'
                                      WHEN 'string' THEN (w.data->>'departments')::jsonb
                                      ELSE '[]'::jsonb END) d
        WHERE w.event_uid = p_uid AND d->>'department_code' = p_dept);
    IF (v_assigned AND EXISTS (SELECT 1 FROM department_actions a WHERE a.relation = 'assigned' AND a.action = p_op))
       OR (v_summoned AND EXISTS (SELECT 1 FROM department_actions a WHERE a.relation = 'summoned' AND a.action = p_op)) THEN
        RETURN NULL;
    END IF;
    IF v_assigned OR v_summoned THEN
        RETURN '超出本部门范围 / out of scope: department ' || p_dept || ' may not ' || p_op || ' event ' || p_uid
               || CASE WHEN v_assigned THEN ' (dispatched to it)' ELSE ' (it was only summoned by a whistle)' END;
    END IF;
    RETURN '超出本部门范围 / out of scope: event ' || p_uid || ' was not dispatched to department ' || p_dept
           || ' and did not summon it';
END
$fn$;

CREATE OR REPLACE FUNCTION check_caller(p_protocol integer, p_schema integer) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
BEGIN
    IF p_protocol IS DISTINCT FROM {PROTOCOL_VERSION}
       OR p_schema IS NULL OR p_schema NOT IN ({SYNC_SCHEMA_VERSION}, {SYNC_SCHEMA_VERSION - 1}) THEN
        RAISE EXCEPTION 'version: server speaks protocol {PROTOCOL_VERSION}, schema {SYNC_SCHEMA_VERSION} or {SYNC_SCHEMA_VERSION - 1}; update OneMap Console'
            USING ERRCODE = 'OM001';
    END IF;
    IF NOT (SELECT s.known FROM desk_scope() s) THEN
        RAISE EXCEPTION 'unknown_desk: role % is not a registered desk (onemap upstream add-desk)', session_user
            USING ERRCODE = 'OM002';
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION feed_head() RETURNS bigint
LANGUAGE sql STABLE SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
    SELECT CASE WHEN (SELECT value FROM meta WHERE key = 'unsafe') LIKE '%bigserial%'
                THEN coalesce((SELECT max(server_seq) FROM changes), 0)
                ELSE (SELECT value FROM seq_counter WHERE id = 1) END
$fn$;

CREATE OR REPLACE FUNCTION feed_floor() RETURNS bigint
LANGUAGE sql STABLE SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
    SELECT coalesce((SELECT value::bigint FROM meta WHERE key = 'feed_floor'), 0)
$fn$;

CREATE OR REPLACE FUNCTION server_state(p_uid text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
    SELECT CASE WHEN e.uid IS NULL THEN NULL ELSE jsonb_build_object(
        'event', e.data,
        'whistles', coalesce((SELECT jsonb_agg(w.data ORDER BY w.uid) FROM whistles w WHERE w.event_uid = p_uid), '[]'::jsonb))
    END
    FROM (SELECT 1) one LEFT JOIN events e ON e.uid = p_uid
$fn$;

CREATE OR REPLACE FUNCTION touch_client(p_client_id text, p_schema integer, p_last_mutation_id bigint,
                                        p_cursor bigint, p_street text) RETURNS void
LANGUAGE sql SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
    INSERT INTO clients AS c (client_id, role_name, scope_street, last_mutation_id, cursor, schema_version, seen_at)
    VALUES (p_client_id, session_user, p_street, coalesce(p_last_mutation_id, 0), coalesce(p_cursor, 0), p_schema, now())
    ON CONFLICT (client_id) DO UPDATE SET
        role_name = EXCLUDED.role_name,
        scope_street = EXCLUDED.scope_street,
        last_mutation_id = greatest(c.last_mutation_id, coalesce(p_last_mutation_id, c.last_mutation_id)),
        cursor = coalesce(p_cursor, c.cursor),
        schema_version = EXCLUDED.schema_version,
        seen_at = now()
$fn$;
"""


def hello_sql() -> str:
    return f"""
CREATE OR REPLACE FUNCTION hello(p_client_id text, p_protocol integer, p_schema integer, p_last_mutation_id bigint)
RETURNS jsonb {_HEADER} AS $fn$
DECLARE
    v_known boolean;
    v_street text;
    v_server_last bigint;
BEGIN
{_version_check()}
{_DESK_CHECK}
    IF p_client_id IS NULL OR p_client_id = '' THEN
        RETURN jsonb_build_object('ok', false, 'status', 'bad_request', 'reason', 'bad_request',
                                  'message', 'client_id is required');
    END IF;
    SELECT coalesce(max(mutation_id), 0) INTO v_server_last FROM ledger WHERE client_id = p_client_id;
    PERFORM touch_client(p_client_id, p_schema, NULL, NULL, v_street);
    RETURN jsonb_build_object('ok', true, 'server_last_mutation_id', v_server_last,
        'feed_floor', feed_floor(), 'head', feed_head(), 'scope_street', v_street, 'scope_dept', desk_dept(),
        'push_batch', true, 'protocol', {PROTOCOL_VERSION}, 'schema', {SYNC_SCHEMA_VERSION});
END
$fn$;
"""


def push_sql(unsafe: frozenset[str] = frozenset()) -> str:
    """``apply_mutation`` (lock, THEN ledger, checks, apply, seq, change row, ledger row) and the two
    desk functions that call it: ``push_mutation`` (one) and ``push_mutations`` (a batch)."""
    bigserial = "bigserial" in unsafe
    take_early = "v_seq := nextval('unsafe_seq');" if bigserial else ""
    # A batch holds the counter's row lock from its start: it counts in a transaction-local setting
    # (rolled back with a failed mutation's subtransaction, as the row would be) and writes the row
    # once at its end, instead of one new row version per mutation (a chain each update walks).
    take_seq = "" if bigserial else """IF p_in_batch THEN
        v_seq := current_setting('onemap.batch_seq')::bigint + 1;
        PERFORM set_config('onemap.batch_seq', v_seq::text, true);
    ELSE
        UPDATE seq_counter SET value = value + 1 WHERE id = 1 RETURNING value INTO v_seq;
    END IF;"""
    late_sleep = "PERFORM pg_sleep(random() * 0.004);" if bigserial else ""
    if "no_ledger" in unsafe:
        ledger_lookup = "    -- unsafe 'no_ledger': no ledger lookup, no log-uid check"
    else:
        ledger_lookup = """
    -- 2. THEN the ledger: a retry gets the stored outcome; another mutation under this id is a copy
    PERFORM pg_advisory_xact_lock(hashtextextended('mutation:' || p_client_id || ':' || p_mutation_id, 0));
    SELECT l.fingerprint, l.outcome INTO v_led_fp, v_outcome
    FROM ledger l WHERE l.client_id = p_client_id AND l.mutation_id = p_mutation_id;
    IF FOUND THEN
        IF v_led_fp = p_fingerprint THEN
            RETURN v_outcome;
        END IF;
        RETURN jsonb_build_object('status', 'client_conflict',
            'reason', '另一副本已使用此客户端标识 / another replica used this client_id for mutation '
                      || p_mutation_id || ': take a new client_id and push again');
    END IF;
    -- the same log row applied before under another client_id (a restored replica that rotated)
    SELECT g.server_seq, l.outcome INTO v_prev_seq, v_outcome
    FROM event_log g LEFT JOIN ledger l ON l.client_id = g.client_id AND l.mutation_id = g.mutation_id
    WHERE g.uid = v_log->>'uid';
    IF FOUND THEN
        v_outcome := coalesce(v_outcome, jsonb_build_object('status', 'applied', 'server_seq', v_prev_seq,
                                                            'version', v_ev.version));
        IF NOT p_in_batch THEN
            PERFORM touch_client(p_client_id, p_schema, p_mutation_id, NULL, v_street);
        END IF;
        INSERT INTO ledger (client_id, mutation_id, fingerprint, outcome)
        VALUES (p_client_id, p_mutation_id, p_fingerprint, v_outcome);
        RETURN v_outcome;
    END IF;"""
    ledger_insert = (
        "INSERT INTO ledger (client_id, mutation_id, fingerprint, outcome) "
        "VALUES (p_client_id, p_mutation_id, p_fingerprint, v_outcome)"
        + (" ON CONFLICT (client_id, mutation_id) DO UPDATE SET outcome = EXCLUDED.outcome, "
           "fingerprint = EXCLUDED.fingerprint" if "no_ledger" in unsafe else "")
    )
    states_sql = ", ".join(_lit(st) for st in STATES)
    # every pusher takes the counter's row lock before any event lock (one lock order: no deadlocks)
    lock_seq = "" if bigserial else "PERFORM 1 FROM seq_counter WHERE id = 1 FOR UPDATE;"
    batch_start = "" if bigserial else """SELECT value INTO v_seq FROM seq_counter WHERE id = 1 FOR UPDATE;
    PERFORM set_config('onemap.batch_seq', v_seq::text, true);"""
    batch_end = "" if bigserial else """UPDATE seq_counter SET value = current_setting('onemap.batch_seq')::bigint
    WHERE id = 1 AND value IS DISTINCT FROM current_setting('onemap.batch_seq')::bigint;"""
    return f"""
CREATE OR REPLACE FUNCTION apply_mutation(p_client_id text, p_mutation_id bigint, p_schema integer,
                                          p_fingerprint text, p_args jsonb, p_street text, p_dept text,
                                          p_in_batch boolean)
RETURNS jsonb LANGUAGE plpgsql SET search_path = {SERVER_SCHEMA}, pg_temp AS $fn$
-- The rules of one push, written once: push_mutation and push_mutations both call this (owner-only,
-- not granted: the caller has checked the versions and the desk; p_street/p_dept are its scope).
-- p_in_batch: called by push_mutations, which holds the counter row and touches the client itself.
DECLARE
    v_street text := p_street;
    v_dept text := p_dept;
    v_op text := p_args->>'op';
    v_uid text := p_args->>'event_uid';
    v_log jsonb := p_args->'log';
    v_img jsonb := p_args->'event';
    v_ev events%ROWTYPE;
    v_found boolean;
    v_led_fp text;
    v_outcome jsonb;
    v_code text;
    v_reason text;
    v_to text;
    v_version integer;
    v_seq bigint;
    v_prev_seq bigint;
    v_new jsonb;
    v_logrow jsonb;
    v_ev_street text;
    v_other text;
BEGIN
    IF p_client_id IS NULL OR p_client_id = '' OR p_mutation_id IS NULL OR p_fingerprint IS NULL
       OR v_op IS NULL OR v_uid IS NULL OR jsonb_typeof(v_log) IS DISTINCT FROM 'object'
       OR jsonb_typeof(v_img) IS DISTINCT FROM 'object' OR v_log->>'uid' IS NULL THEN
        RETURN jsonb_build_object('status', 'rejected', 'code', 'bad_request', 'server_state', NULL,
            'reason', '请求不完整 / malformed push: client_id, mutation_id, fingerprint, op, event_uid, log.uid and event are required');
    END IF;
    {take_early}
    -- 1. lock the event (for a report: the uid first, there is no row yet)
    IF v_op = 'report' THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('event:' || v_uid, 0));
    END IF;
    SELECT * INTO v_ev FROM events WHERE uid = v_uid FOR UPDATE;
    v_found := FOUND;
{ledger_lookup}
    -- 3. checks
    IF (v_log->>'action') IS DISTINCT FROM v_op OR (v_img->>'uid') IS DISTINCT FROM v_uid THEN
        v_code := 'bad_request';
        v_reason := '请求不一致 / inconsistent mutation: op ' || v_op || ', log.action '
                    || coalesce(v_log->>'action', 'NULL') || ', event_uid ' || v_uid || ', event.uid '
                    || coalesce(v_img->>'uid', 'NULL');
    ELSIF v_op = 'report' THEN
        v_ev_street := v_img->>'street_code';
        IF coalesce(v_img->>'status', 'reported') NOT IN ({states_sql}) THEN
            v_code := 'bad_request';
            v_reason := '未知状态 / unknown status ' || (v_img->>'status');
        ELSIF v_found THEN
            v_code := 'duplicate';
            v_reason := '事件已存在 / event ' || v_uid || ' already exists on the server';
        ELSIF v_img->>'external_id' IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('ext:' || coalesce(v_img->>'source', '') || ':'
                                                           || (v_img->>'external_id'), 0));
            SELECT e.uid INTO v_other FROM events e
            WHERE e.source = v_img->>'source' AND e.external_id = v_img->>'external_id';
            IF FOUND THEN
                v_code := 'duplicate';
                v_reason := '重复上报 / duplicate report: ' || (v_img->>'source') || ' ' || (v_img->>'external_id')
                            || ' is already event ' || v_other;
            END IF;
        END IF;
    ELSIF NOT v_found THEN
        v_code := 'bad_request';
        v_reason := '服务器上没有此事件 / event ' || v_uid || ' is not on the server';
    ELSE
        v_ev_street := v_ev.street_code;
    END IF;
    IF v_code IS NULL AND v_street IS NOT NULL
       AND (v_ev_street IS DISTINCT FROM v_street OR (v_img->>'street_code') IS DISTINCT FROM v_street) THEN
        v_code := 'scope';
        v_reason := '超出本工作站范围 / out of scope: desk ' || session_user || ' serves street ' || v_street
                    || ', the event is in ' || coalesce(v_ev_street, 'no street');
    END IF;
    IF v_code IS NULL AND v_dept IS NOT NULL THEN
        v_reason := dept_scope_refusal(v_dept, v_op, v_uid, CASE WHEN v_found THEN v_ev.data END);
        IF v_reason IS NOT NULL THEN
            v_code := 'scope';
        END IF;
    END IF;
    IF v_code IS NULL AND v_op = 'report' THEN
        v_to := coalesce(v_img->>'status', 'reported');
    ELSIF v_code IS NULL AND EXISTS (SELECT 1 FROM lifecycle WHERE action = v_op) THEN
        IF (v_log->>'from_status') IS DISTINCT FROM v_ev.status THEN
            v_code := 'stale_state';
            v_reason := '事件状态已变化 / stale: the event is ' || v_ev.status || ' on the server, not '
                        || coalesce(v_log->>'from_status', 'NULL') || ' (' || v_op || ' refused)';
        ELSE
            SELECT l.to_status INTO v_to FROM lifecycle l WHERE l.from_status = v_ev.status AND l.action = v_op;
            IF v_to IS NULL OR v_to IS DISTINCT FROM (v_log->>'to_status') THEN
                v_code := 'illegal_transition';
                v_reason := '不允许的操作 / illegal transition: ' || v_op || ' from ' || v_ev.status
                            || ' to ' || coalesce(v_log->>'to_status', 'NULL') || ' is not in the lifecycle table';
            END IF;
        END IF;
    ELSIF v_code IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM overlay_rules WHERE action = v_op AND status = v_ev.status) THEN
            v_code := 'illegal_transition';
            v_reason := '不允许的操作 / ' || v_op || ' is not allowed on a ' || v_ev.status || ' event';
        END IF;
        v_to := v_ev.status;
        -- an overlay leaves the status alone: its log row states the server's status, not the
        -- (possibly stale) one the desk saw, so every event's log stays a valid chain
        v_log := v_log || jsonb_build_object('from_status', v_ev.status, 'to_status', v_ev.status);
    END IF;
    IF v_code IS NOT NULL THEN
        -- a rejection is final: stored, no server_seq
        v_outcome := jsonb_build_object('status', 'rejected', 'code', v_code, 'reason', v_reason,
                                        'server_state', server_state(v_uid));
        IF NOT p_in_batch THEN
            PERFORM touch_client(p_client_id, p_schema, p_mutation_id, NULL, v_street);
        END IF;
        {ledger_insert};
        RETURN v_outcome;
    END IF;
    -- 4. apply
    v_img := coalesce((SELECT d.defaults FROM image_defaults d WHERE d.schema_version = p_schema), '{{}}'::jsonb) || v_img;
    IF v_op = 'report' THEN
        v_version := 1;
        v_new := v_img;
    ELSE
        v_version := v_ev.version + 1;
        IF (p_args->>'base_version') IS NOT NULL AND (p_args->>'base_version')::integer = v_ev.version THEN
            v_new := v_img;
        ELSE
            v_new := v_ev.data || coalesce((SELECT jsonb_object_agg(a.col, v_img->a.col) FROM action_columns a
                                            WHERE a.action = v_op AND v_img ? a.col), '{{}}'::jsonb);
        END IF;
    END IF;
    v_new := v_new || jsonb_build_object('uid', v_uid, 'status', v_to, 'version', v_version);
    IF NOT p_in_batch THEN  -- a batch touches its client once, at its end (one row version, not one each)
        PERFORM touch_client(p_client_id, p_schema, p_mutation_id, NULL, v_street);
    END IF;
    -- 5. server_seq: the one-row counter under lock (seq order = commit order, no gaps)
    {take_seq}
    IF v_op = 'report' THEN
        INSERT INTO events (uid, status, version, street_code, source, external_id, drill_id, data, server_seq)
        VALUES (v_uid, v_to, v_version, v_new->>'street_code', v_new->>'source', v_new->>'external_id',
                (v_new->>'drill_id')::integer, v_new, v_seq);
    ELSE
        UPDATE events SET status = v_to, version = v_version, street_code = v_new->>'street_code',
               source = v_new->>'source', external_id = v_new->>'external_id',
               drill_id = (v_new->>'drill_id')::integer, data = v_new, server_seq = v_seq
        WHERE uid = v_uid;
    END IF;
    v_logrow := v_log || jsonb_build_object('event_uid', v_uid, 'server_seq', v_seq);
    INSERT INTO event_log (uid, event_uid, server_seq, client_id, mutation_id, action, from_status, to_status,
                           at, actor, data)
    VALUES (v_log->>'uid', v_uid, v_seq, p_client_id, p_mutation_id, v_op, v_log->>'from_status',
            v_log->>'to_status', v_log->>'at', v_log->>'actor', v_logrow::json);
    IF jsonb_typeof(p_args->'whistles') = 'array' THEN
        INSERT INTO whistles AS w (uid, event_uid, data)
        SELECT x->>'uid', v_uid, x || jsonb_build_object('event_uid', v_uid)
        FROM jsonb_array_elements(p_args->'whistles') x WHERE x->>'uid' IS NOT NULL
        ON CONFLICT (uid) DO UPDATE SET data = EXCLUDED.data, event_uid = EXCLUDED.event_uid;
    END IF;
    INSERT INTO changes (server_seq, kind, uid, data)
    VALUES (v_seq, 'mutation', v_uid, jsonb_build_object('event', v_new, 'log', v_logrow,
        'whistles', coalesce((SELECT jsonb_agg(w.data ORDER BY w.uid) FROM whistles w WHERE w.event_uid = v_uid),
                             '[]'::jsonb))::json);
    -- 6. the ledger
    v_outcome := jsonb_build_object('status', 'applied', 'server_seq', v_seq, 'version', v_version);
    {ledger_insert};
    {late_sleep}
    RETURN v_outcome;
END
$fn$;

CREATE OR REPLACE FUNCTION push_mutation(p_client_id text, p_mutation_id bigint, p_protocol integer,
                                         p_schema integer, p_fingerprint text, p_args jsonb)
RETURNS jsonb {_HEADER} AS $fn$
-- one mutation, one transaction (the previous client's path; kept). The counter row is locked first.
DECLARE
    v_known boolean;
    v_street text;
    v_outcome jsonb;
BEGIN
{_version_check()}
{_DESK_CHECK}
    {lock_seq}
    v_outcome := apply_mutation(p_client_id, p_mutation_id, p_schema, p_fingerprint, p_args, v_street, desk_dept(),
                                false);
    IF v_outcome->>'status' = 'applied' THEN
        PERFORM pg_notify('onemap_changes', v_outcome->>'server_seq');
    END IF;
    RETURN v_outcome;
END
$fn$;

CREATE OR REPLACE FUNCTION push_mutations(p_client_id text, p_protocol integer, p_schema integer, p_batch jsonb)
RETURNS jsonb {_HEADER} AS $fn$
-- A batch [{{mutation_id, fingerprint, args}}, …] in ONE transaction, applied in order by the same
-- apply_mutation, each in its own subtransaction (an error undoes that mutation only). Returns the
-- outcomes up to and including the first one that is not 'applied' (rejected, client_conflict, or
-- {{status: 'error', sqlstate, reason}}): the desk handles it before sending anything after it.
-- Lock order (every push and delete_event): the seq counter's row first, then the events, so pushers
-- never deadlock; they are serialised, as the counter serialised them from seq to commit anyway.
DECLARE
    v_known boolean;
    v_street text;
    v_dept text := desk_dept();
    v_item jsonb;
    v_out jsonb;
    v_outs jsonb := '[]'::jsonb;
    v_last bigint;
    v_last_mid bigint;
    v_seq bigint;
BEGIN
{_version_check()}
{_DESK_CHECK}
    IF jsonb_typeof(p_batch) IS DISTINCT FROM 'array' THEN
        RETURN jsonb_build_object('ok', false, 'status', 'bad_request', 'reason', 'bad_request',
            'message', 'p_batch must be a JSON array of {{mutation_id, fingerprint, args}}');
    END IF;
    {batch_start}
    FOR v_item IN SELECT x.item FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS x(item, n) ORDER BY x.n LOOP
        BEGIN
            v_out := apply_mutation(p_client_id, (v_item->>'mutation_id')::bigint, p_schema, v_item->>'fingerprint',
                                    v_item->'args', v_street, v_dept, true);
        EXCEPTION WHEN OTHERS THEN
            v_out := jsonb_build_object('status', 'error', 'sqlstate', SQLSTATE, 'reason', SQLERRM,
                                        'mutation_id', v_item->'mutation_id');
        END;
        v_outs := v_outs || jsonb_build_array(v_out);
        IF v_out->>'status' IN ('applied', 'rejected') THEN  -- recorded in the ledger
            v_last_mid := greatest(v_last_mid, (v_item->>'mutation_id')::bigint);
        END IF;
        EXIT WHEN v_out->>'status' IS DISTINCT FROM 'applied';
        v_last := greatest(v_last, (v_out->>'server_seq')::bigint);
    END LOOP;
    {batch_end}
    PERFORM touch_client(p_client_id, p_schema, v_last_mid, NULL, v_street);
    IF v_last IS NOT NULL THEN
        PERFORM pg_notify('onemap_changes', v_last::text);
    END IF;
    RETURN v_outs;
END
$fn$;
"""


def pull_sql() -> str:
    return f"""
CREATE OR REPLACE FUNCTION pull_changes(p_client_id text, p_protocol integer, p_schema integer,
                                        p_cursor bigint, p_max_rows integer)
RETURNS json {_HEADER} AS $fn$
-- json, not jsonb: the page is built as text (json_agg), three times cheaper than jsonb_agg of images
DECLARE
    v_known boolean;
    v_street text;
    v_floor bigint := feed_floor();
    v_rows json;
    v_cursor bigint;
BEGIN
{_version_check_json()}
    SELECT s.known, s.street INTO v_known, v_street FROM desk_scope() s;
    IF NOT v_known THEN
        RETURN json_build_object('ok', false, 'status', 'unknown_desk', 'reason', 'unknown_desk',
            'message', '数据库角色 ' || session_user || ' 未登记为工作站 / role is not a registered desk (onemap upstream add-desk)');
    END IF;
    IF p_client_id IS NULL OR p_client_id = '' OR p_cursor IS NULL OR p_cursor < 0 THEN
        RETURN json_build_object('ok', false, 'status', 'bad_request', 'reason', 'bad_request',
                                 'message', 'client_id and a cursor >= 0 are required');
    END IF;
    IF p_cursor < v_floor THEN
        RETURN json_build_object('ok', false, 'reason', 'snapshot_required', 'feed_floor', v_floor,
                                 'head', feed_head());
    END IF;
    PERFORM touch_client(p_client_id, p_schema, NULL, p_cursor, v_street);
    -- json_agg of the rows of an ordered subquery (keys server_seq, kind, uid, data): no sort, no re-parse
    SELECT coalesce(json_agg(c), '[]'::json), coalesce(max(c.server_seq), p_cursor)
    INTO v_rows, v_cursor
    FROM (SELECT f.server_seq, f.kind, f.uid, f.data FROM changes f WHERE f.server_seq > p_cursor
          ORDER BY f.server_seq LIMIT greatest(1, least(coalesce(p_max_rows, 1000), 10000))) c;
    RETURN json_build_object('ok', true, 'changes', v_rows, 'cursor', v_cursor, 'head', feed_head(),
                             'feed_floor', v_floor);
END
$fn$;
"""


def snapshot_sql() -> str:
    return f"""
CREATE OR REPLACE FUNCTION snapshot_head(p_client_id text, p_protocol integer, p_schema integer)
RETURNS jsonb {_HEADER} AS $fn$
DECLARE
    v_known boolean;
    v_street text;
BEGIN
{_version_check()}
{_DESK_CHECK}
    RETURN jsonb_build_object('ok', true, 'head', feed_head(), 'feed_floor', feed_floor(),
        'events', (SELECT count(*) FROM events), 'log', (SELECT count(*) FROM event_log),
        'whistles', (SELECT count(*) FROM whistles),
        'reference_bytes', (SELECT length(data) FROM reference WHERE name = 'sqlite'),
        'isolation', current_setting('transaction_isolation'),
        'scope_street', v_street, 'scope_dept', desk_dept(),
        'protocol', {PROTOCOL_VERSION}, 'schema', {SYNC_SCHEMA_VERSION});
END
$fn$;

CREATE OR REPLACE FUNCTION snapshot_events(p_client_id text, p_protocol integer, p_schema integer,
                                           p_after_uid text, p_max_rows integer)
RETURNS TABLE (kind text, uid text, event_uid text, data json) {_HEADER} AS $fn$
-- One page: the next p_max_rows events after p_after_uid (uid order), then the log rows of exactly those
-- events (per event in server order), then their whistles; no 'event' row = done. Index range scans,
-- no aggregation. Call every page (and snapshot_head, snapshot_reference) in ONE REPEATABLE READ
-- transaction. Read it as ``SELECT kind, uid, event_uid, data::text FROM onemap.snapshot_events(…)``.
DECLARE
    v_after text := coalesce(p_after_uid, '');
    v_hi text;
BEGIN
    PERFORM check_caller(p_protocol, p_schema);
    SELECT max(p.uid) INTO v_hi
    FROM (SELECT e.uid FROM events e WHERE e.uid > v_after ORDER BY e.uid
          LIMIT greatest(1, least(coalesce(p_max_rows, 2000), 20000))) p;
    IF v_hi IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT 'event'::text, e.uid::text, e.uid::text, e.data::json FROM events e
                 WHERE e.uid > v_after AND e.uid <= v_hi ORDER BY e.uid;
    RETURN QUERY SELECT 'log'::text, g.uid::text, g.event_uid::text, g.data FROM event_log g
                 WHERE g.event_uid > v_after AND g.event_uid <= v_hi
                 ORDER BY g.event_uid, g.server_seq, g.at, g.uid;
    RETURN QUERY SELECT 'whistle'::text, w.uid::text, w.event_uid::text, w.data::json FROM whistles w
                 WHERE w.event_uid > v_after AND w.event_uid <= v_hi
                 ORDER BY w.event_uid, w.data->>'blown_at', w.uid;
END
$fn$;

CREATE OR REPLACE FUNCTION snapshot_reference(p_client_id text, p_protocol integer, p_schema integer)
RETURNS bytea {_HEADER} AS $fn$
BEGIN
    PERFORM check_caller(p_protocol, p_schema);
    RETURN (SELECT r.data FROM reference r WHERE r.name = 'sqlite');
END
$fn$;

CREATE OR REPLACE FUNCTION content_hash()
RETURNS jsonb {_HEADER} AS $fn$
BEGIN
    RETURN jsonb_build_object(
        'events', md5(coalesce((SELECT string_agg(uid || '|' || status || '|' || version, E'\\n' ORDER BY uid COLLATE "C")
                                FROM events), '')),
        'log', md5(coalesce((SELECT string_agg(uid, E'\\n' ORDER BY uid COLLATE "C") FROM event_log), '')));
END
$fn$;
"""


def admin_sql(unsafe: frozenset[str] = frozenset()) -> str:
    take = "v_seq := nextval('unsafe_seq');" if "bigserial" in unsafe else (
        "UPDATE seq_counter SET value = value + 1 WHERE id = 1 RETURNING value INTO v_seq;")
    lock_seq = "" if "bigserial" in unsafe else "PERFORM 1 FROM seq_counter WHERE id = 1 FOR UPDATE;  -- lock order: as pushes"
    return f"""
CREATE OR REPLACE FUNCTION delete_event(p_uid text)
RETURNS jsonb {_HEADER} AS $fn$
DECLARE
    v_seq bigint;
BEGIN
    {lock_seq}
    PERFORM 1 FROM events WHERE uid = p_uid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 'not_found', 'uid', p_uid);
    END IF;
    DELETE FROM whistles WHERE event_uid = p_uid;
    DELETE FROM event_log WHERE event_uid = p_uid;
    DELETE FROM events WHERE uid = p_uid;
    {take}
    INSERT INTO changes (server_seq, kind, uid, data)
    VALUES (v_seq, 'tombstone', p_uid, json_build_object('uid', p_uid));
    PERFORM pg_notify('onemap_changes', v_seq::text);
    RETURN jsonb_build_object('status', 'deleted', 'uid', p_uid, 'server_seq', v_seq);
END
$fn$;

CREATE OR REPLACE FUNCTION compact(p_days integer DEFAULT 30)
RETURNS jsonb {_HEADER} AS $fn$
DECLARE
    v_head bigint;
    v_old bigint;
    v_min bigint;
    v_floor bigint;
    v_deleted bigint;
BEGIN
    PERFORM 1 FROM meta WHERE key = 'feed_floor' FOR UPDATE;
    v_head := feed_head();
    v_old := feed_floor();
    SELECT min(cursor) INTO v_min FROM clients WHERE seen_at > now() - make_interval(days => p_days);
    v_floor := greatest(v_old, least(coalesce(v_min, v_head), v_head));
    DELETE FROM changes WHERE server_seq <= v_floor;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    UPDATE meta SET value = v_floor::text WHERE key = 'feed_floor';
    RETURN jsonb_build_object('feed_floor', v_floor, 'previous_floor', v_old, 'deleted', v_deleted,
                              'head', v_head, 'clients', (SELECT count(*) FROM clients));
END
$fn$;
"""


def grants_sql() -> str:
    """The desk group role (cluster-wide, created idempotently) may call the desk functions only."""
    grants = "\n".join(
        f"GRANT EXECUTE ON FUNCTION {SERVER_SCHEMA}.{name}({args}) TO {DESK_ROLE};" for name, args in DESK_FUNCTIONS
    )
    return f"""
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{DESK_ROLE}') THEN
        CREATE ROLE {DESK_ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of this cluster created it at the same moment
END
$do$;
REVOKE ALL ON SCHEMA {SERVER_SCHEMA} FROM PUBLIC;
GRANT USAGE ON SCHEMA {SERVER_SCHEMA} TO {DESK_ROLE};
REVOKE ALL ON ALL TABLES IN SCHEMA {SERVER_SCHEMA} FROM PUBLIC, {DESK_ROLE};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SERVER_SCHEMA} FROM PUBLIC, {DESK_ROLE};
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {SERVER_SCHEMA} FROM PUBLIC, {DESK_ROLE};
{grants}
"""


def init_sql(unsafe: frozenset[str] = frozenset()) -> str:
    """Everything ``onemap upstream init`` runs, in order, as one script."""
    bad = set(unsafe) - UNSAFE_VARIANTS
    if bad:
        raise ValueError(f"unknown unsafe variant(s) {sorted(bad)}; known: {sorted(UNSAFE_VARIANTS)}")
    unsafe = frozenset(unsafe)
    return "\n".join(
        [ddl_sql(unsafe), rules_sql(unsafe), helpers_sql(), hello_sql(), push_sql(unsafe), pull_sql(),
         snapshot_sql(), admin_sql(unsafe), grants_sql()]
    )
