"""The replica's schema as named migrations (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add a new one. ``SCHEMA_VERSION`` is the
number of migrations this build knows; a replica that has applied a migration this
build does not know is "newer" and is refused, never touched.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database, Migrations

migrations = Migrations("onemap")

OPEN_STATUSES = (
    "reported",
    "accepted",
    "dispatched",
    "returned",
    "acknowledged",
    "on_site",
    "deferred",
    "handled",
    "verified",
)
TERMINAL_STATUSES = ("closed", "rejected", "merged")
_OPEN_SQL = "status NOT IN ('closed', 'rejected', 'merged')"


@migrations(name="m001_initial")
def m001_initial(db: Database) -> None:
    """Organisation, people, devices, catalogue, events and the append-only event log."""
    run_script(
        db,
        f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO counters VALUES ('rev', 0);

        CREATE TABLE streets (
            code TEXT PRIMARY KEY, name TEXT NOT NULL, approximate INTEGER NOT NULL DEFAULT 1,
            population INTEGER, area_km2 REAL, lon REAL, lat REAL, geometry TEXT NOT NULL
        );
        CREATE TABLE communities (
            code TEXT PRIMARY KEY, name TEXT NOT NULL, street_code TEXT NOT NULL REFERENCES streets(code),
            approximate INTEGER NOT NULL DEFAULT 1, population INTEGER, lon REAL, lat REAL,
            geometry TEXT NOT NULL
        );
        CREATE TABLE grids (
            id TEXT PRIMARY KEY, name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('comprehensive','hospital','school','market','construction')),
            community_code TEXT NOT NULL REFERENCES communities(code),
            street_code TEXT NOT NULL REFERENCES streets(code),
            population INTEGER NOT NULL, households INTEGER NOT NULL,
            lon REAL, lat REAL, min_lon REAL, min_lat REAL, max_lon REAL, max_lat REAL,
            geometry TEXT NOT NULL
        );
        CREATE INDEX ix_grids_street ON grids(street_code);
        CREATE TABLE neighbourhoods (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, grid_id TEXT NOT NULL REFERENCES grids(id),
            households INTEGER, lon REAL, lat REAL
        );
        CREATE INDEX ix_neighbourhoods_grid ON neighbourhoods(grid_id);
        CREATE TABLE places (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('estate','road','landmark')),
            name TEXT NOT NULL, community_code TEXT, street_code TEXT, grid_id TEXT,
            lon REAL, lat REAL, geometry TEXT
        );
        CREATE INDEX ix_places_name ON places(name);

        CREATE TABLE departments (
            code TEXT PRIMARY KEY, name TEXT NOT NULL, name_en TEXT, kind TEXT
        );
        CREATE TABLE categories (
            code TEXT PRIMARY KEY, parent TEXT, name_zh TEXT NOT NULL, name_en TEXT NOT NULL,
            class TEXT NOT NULL, default_department TEXT, response_limit_min INTEGER,
            handle_limit REAL, handle_unit TEXT, arrival_clock INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE people (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, name TEXT NOT NULL, phone TEXT,
            role TEXT NOT NULL CHECK (role IN
                ('grid_leader','grid_volunteer','liaison','operator','drill_coordinator')),
            position TEXT, grid_id TEXT, street_code TEXT, department_code TEXT,
            lon REAL, lat REAL, position_at TEXT, status TEXT NOT NULL DEFAULT 'available',
            rev INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX ix_people_role ON people(role, street_code);
        CREATE INDEX ix_people_rev ON people(rev);
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('camera','door_sensor','manhole','throwing_detector')),
            name TEXT NOT NULL, grid_id TEXT, street_code TEXT, lon REAL, lat REAL,
            status TEXT NOT NULL DEFAULT 'online', last_seen_at TEXT
        );
        CREATE INDEX ix_devices_street ON devices(street_code);

        CREATE TABLE drills (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, title TEXT NOT NULL, theme TEXT NOT NULL,
            level TEXT NOT NULL CHECK (level IN ('district','street','grid')),
            starts_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'scheduled'
        );

        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            external_id TEXT,
            category TEXT NOT NULL,
            class TEXT NOT NULL CHECK (class IN ('ordinary','emergency','assigned')),
            priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 4),
            title TEXT NOT NULL,
            description TEXT,
            reporter_name TEXT, reporter_phone TEXT, reporter_id_no TEXT,
            lon REAL, lat REAL, src_datum TEXT, src_lon REAL, src_lat REAL,
            address TEXT, grid_id TEXT, community_code TEXT, street_code TEXT,
            status TEXT NOT NULL CHECK (status IN
                ('reported','accepted','dispatched','returned','acknowledged','on_site',
                 'deferred','handled','verified','closed','rejected','merged')),
            reported_at TEXT NOT NULL,
            accepted_at TEXT, dispatched_at TEXT, acknowledged_at TEXT, on_site_at TEXT,
            handled_at TEXT, verified_at TEXT, closed_at TEXT, rejected_at TEXT,
            merged_into INTEGER,
            response_due_at TEXT, arrival_due_at TEXT, handle_due_at TEXT,
            assignee_kind TEXT, assignee_code TEXT,
            satisfaction INTEGER,
            drill_id INTEGER REFERENCES drills(id),
            version INTEGER NOT NULL DEFAULT 1,
            rev INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX ux_events_source_ext ON events(source, external_id);
        CREATE INDEX ix_events_open_street ON events(street_code, priority, reported_at) WHERE {_OPEN_SQL};
        CREATE INDEX ix_events_open ON events(priority, reported_at) WHERE {_OPEN_SQL};
        CREATE INDEX ix_events_open_due ON events(handle_due_at) WHERE {_OPEN_SQL};
        CREATE INDEX ix_events_reported ON events(reported_at, category, status);
        CREATE INDEX ix_events_grid ON events(grid_id, reported_at);
        CREATE INDEX ix_events_rev ON events(rev);

        CREATE VIRTUAL TABLE events_fts USING fts5(
            title, description, address, content='events', content_rowid='id', tokenize='trigram'
        );
        CREATE TRIGGER events_fts_ai AFTER INSERT ON events BEGIN
            INSERT INTO events_fts(rowid, title, description, address)
            VALUES (new.id, new.title, new.description, new.address);
        END;
        CREATE TRIGGER events_fts_ad AFTER DELETE ON events BEGIN
            INSERT INTO events_fts(events_fts, rowid, title, description, address)
            VALUES ('delete', old.id, old.title, old.description, old.address);
        END;
        CREATE TRIGGER events_fts_au AFTER UPDATE OF title, description, address ON events BEGIN
            INSERT INTO events_fts(events_fts, rowid, title, description, address)
            VALUES ('delete', old.id, old.title, old.description, old.address);
            INSERT INTO events_fts(rowid, title, description, address)
            VALUES (new.id, new.title, new.description, new.address);
        END;

        CREATE TABLE event_log (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            event_id INTEGER NOT NULL REFERENCES events(id),
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            from_status TEXT,
            to_status TEXT,
            note TEXT,
            payload TEXT
        );
        CREATE INDEX ix_event_log_event ON event_log(event_id, id);
        CREATE TRIGGER event_log_no_update BEFORE UPDATE ON event_log BEGIN
            SELECT RAISE(ABORT, 'event_log is append-only: UPDATE is not allowed');
        END;
        CREATE TRIGGER event_log_no_delete BEFORE DELETE ON event_log BEGIN
            SELECT RAISE(ABORT, 'event_log is append-only: DELETE is not allowed');
        END;
        """
    )



@migrations(name="m002_closed_loop")
def m002_closed_loop(db: Database) -> None:
    """The closed loop (issue 3): whistles and check-ins, the working calendar, routing rules,
    the access log, the shift handover log, deferral/extension columns and the supervision view.

    The working calendar is seeded here for 2024–2026 from the ``chinese-calendar`` package
    (fixed years, so the result is deterministic); rows are editable afterwards.
    """
    run_script(
        db,
        f"""
        ALTER TABLE events ADD COLUMN deferred_at TEXT;
        ALTER TABLE events ADD COLUMN suspended_s INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE events ADD COLUMN extended_count INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX ix_events_open_assignee ON events(assignee_code, priority, reported_at) WHERE {_OPEN_SQL};
        CREATE INDEX ix_events_assignee ON events(assignee_kind, assignee_code);

        CREATE TABLE whistles (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            event_id INTEGER NOT NULL REFERENCES events(id),
            level TEXT NOT NULL CHECK (level IN ('grid','street','district')),
            blown_by TEXT NOT NULL,
            blown_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            escalated_from INTEGER REFERENCES whistles(id),
            outcome TEXT,
            closed_at TEXT,
            closed_by TEXT,
            rev INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX ix_whistles_event ON whistles(event_id);
        CREATE INDEX ix_whistles_open ON whistles(blown_at) WHERE closed_at IS NULL;
        CREATE INDEX ix_whistles_rev ON whistles(rev);
        CREATE TABLE whistle_departments (
            whistle_id INTEGER NOT NULL REFERENCES whistles(id),
            department_code TEXT NOT NULL,
            deadline_at TEXT NOT NULL,
            checked_in_at TEXT,
            checked_in_by TEXT,
            late INTEGER CHECK (late IN (0, 1)),
            PRIMARY KEY (whistle_id, department_code)
        ) WITHOUT ROWID;
        CREATE INDEX ix_whistle_departments_dept ON whistle_departments(department_code, whistle_id);

        CREATE TABLE work_calendar (
            day TEXT PRIMARY KEY CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
            is_workday INTEGER NOT NULL CHECK (is_workday IN (0, 1)),
            note TEXT,
            edited_by TEXT,
            edited_at TEXT
        ) WITHOUT ROWID;

        CREATE TABLE routing_rules (
            id INTEGER PRIMARY KEY,
            category TEXT NOT NULL,
            street_code TEXT,
            department_code TEXT NOT NULL,
            note TEXT
        );
        CREATE UNIQUE INDEX ux_routing_rules ON routing_rules(category, coalesce(street_code, ''), department_code);

        CREATE TABLE access_log (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            role TEXT NOT NULL,
            scope TEXT,
            action TEXT NOT NULL,
            event_id INTEGER,
            reason TEXT NOT NULL
        );
        CREATE INDEX ix_access_log_at ON access_log(at);
        CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log BEGIN
            SELECT RAISE(ABORT, 'access_log is append-only: UPDATE is not allowed');
        END;
        CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log BEGIN
            SELECT RAISE(ABORT, 'access_log is append-only: DELETE is not allowed');
        END;

        CREATE TABLE handover_notes (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            at TEXT NOT NULL,
            author TEXT NOT NULL,
            shift TEXT NOT NULL,
            text TEXT NOT NULL,
            open_items TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX ix_handover_notes_at ON handover_notes(at);
        CREATE TRIGGER handover_notes_no_update BEFORE UPDATE ON handover_notes BEGIN
            SELECT RAISE(ABORT, 'handover_notes is append-only: UPDATE is not allowed');
        END;
        CREATE TRIGGER handover_notes_no_delete BEFORE DELETE ON handover_notes BEGIN
            SELECT RAISE(ABORT, 'handover_notes is append-only: DELETE is not allowed');
        END;

        CREATE INDEX ix_event_log_supervise ON event_log(at) WHERE action = 'supervise';
        CREATE VIEW supervisions AS
            SELECT l.id AS log_id, l.uid, l.event_id, l.at, l.actor, l.note,
                   json_extract(l.payload, '$.reminder.to_kind') AS target_kind,
                   json_extract(l.payload, '$.reminder.to') AS target,
                   json_extract(l.payload, '$.overdue') AS overdue,
                   json_extract(l.payload, '$.handle_due_at') AS handle_due_at
            FROM event_log l WHERE l.action = 'supervise';
        """
    )
    from db.calendar import SEED_YEARS, seed_work_calendar

    seed_work_calendar(db.conn, SEED_YEARS)


@migrations(name="m003_pending_index")
def m003_pending_index(db: Database) -> None:
    """A partial index for the 待处理 tab: the few events waiting for the centre, in queue order."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS ix_events_pending ON events(priority, reported_at) "
        "WHERE status IN ('reported', 'accepted', 'returned')"
    )


@migrations(name="m004_intake")
def m004_intake(db: Database) -> None:
    """Intake (issue 4): import runs, the quarantine, editable category/status/column mappings,
    merge suggestions, IoT readings, and the events columns imports need.

    ``source_code``/``source_status`` keep the source's own category code and status verbatim (a
    re-import compares them and the other source-owned columns to tell unchanged from updated); ``needs_classification`` flags events whose code had no
    mapping (category 待分类); ``address_note`` holds e.g. an address naming another street.
    The quarantine keeps its fix/discard history in its status and ``resolved_*`` columns: a
    resolved row can no longer change and no row can be deleted (triggers).
    """
    run_script(
        db,
        """
        ALTER TABLE events ADD COLUMN source_code TEXT;
        ALTER TABLE events ADD COLUMN source_status TEXT;
        ALTER TABLE events ADD COLUMN needs_classification INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE events ADD COLUMN address_note TEXT;
        CREATE INDEX ix_events_unclassified ON events(reported_at) WHERE needs_classification = 1;
        CREATE INDEX ix_events_category_time ON events(category, reported_at, lat, lon);

        CREATE TABLE import_runs (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            file TEXT NOT NULL,
            file_sha256 TEXT NOT NULL,
            file_size INTEGER,
            format TEXT NOT NULL,
            source TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            actor TEXT NOT NULL,
            pid INTEGER,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'failed')),
            next_item INTEGER NOT NULL DEFAULT 1,
            counts TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE INDEX ix_import_runs_file ON import_runs(file_sha256, format, status);
        CREATE INDEX ix_import_runs_started ON import_runs(started_at);

        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES import_runs(id),
            file TEXT,
            file_sha256 TEXT,
            item INTEGER,
            line INTEGER,
            format TEXT NOT NULL,
            source TEXT NOT NULL,
            external_id TEXT,
            raw TEXT NOT NULL,
            fields TEXT,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'fixed', 'discarded')),
            resolved_at TEXT,
            resolved_by TEXT,
            resolution_note TEXT,
            fixed_raw TEXT,
            last_error TEXT,
            event_id INTEGER REFERENCES events(id)
        );
        CREATE UNIQUE INDEX ux_quarantine_item ON quarantine(file_sha256, item) WHERE file_sha256 IS NOT NULL;
        CREATE INDEX ix_quarantine_open ON quarantine(created_at) WHERE status = 'open';
        CREATE INDEX ix_quarantine_run ON quarantine(run_id);
        CREATE INDEX ix_quarantine_ext ON quarantine(source, external_id) WHERE status = 'open';
        CREATE TRIGGER quarantine_resolved_is_final BEFORE UPDATE ON quarantine WHEN old.status <> 'open' BEGIN
            SELECT RAISE(ABORT, 'quarantine: a fixed or discarded record is history and cannot change');
        END;
        CREATE TRIGGER quarantine_no_delete BEFORE DELETE ON quarantine BEGIN
            SELECT RAISE(ABORT, 'quarantine: records are never deleted (discard them with a reason)');
        END;

        CREATE TABLE category_mappings (
            source TEXT NOT NULL,
            source_code TEXT NOT NULL COLLATE NOCASE,
            category TEXT NOT NULL,
            note TEXT,
            edited_by TEXT,
            edited_at TEXT,
            PRIMARY KEY (source, source_code)
        );
        CREATE TABLE status_mappings (
            source TEXT NOT NULL,
            source_status TEXT NOT NULL COLLATE NOCASE,
            status TEXT NOT NULL CHECK (status IN
                ('reported','accepted','dispatched','returned','acknowledged','on_site',
                 'deferred','handled','verified','closed','rejected')),
            note TEXT,
            PRIMARY KEY (source, source_status)
        );
        CREATE TABLE column_mappings (
            format TEXT NOT NULL,
            header TEXT NOT NULL,
            field TEXT NOT NULL,
            edited_by TEXT,
            edited_at TEXT,
            PRIMARY KEY (format, header)
        );

        CREATE TABLE merge_suggestions (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events(id),
            other_id INTEGER NOT NULL REFERENCES events(id),
            distance_m REAL NOT NULL,
            minutes REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'dismissed')),
            created_at TEXT NOT NULL,
            run_id INTEGER REFERENCES import_runs(id),
            resolved_at TEXT,
            resolved_by TEXT,
            note TEXT,
            UNIQUE (event_id, other_id)
        );
        CREATE INDEX ix_merge_suggestions_open ON merge_suggestions(created_at) WHERE status = 'open';
        CREATE INDEX ix_merge_suggestions_other ON merge_suggestions(other_id);

        CREATE TABLE device_readings (
            id INTEGER PRIMARY KEY,
            device_uid TEXT NOT NULL,
            record_id TEXT NOT NULL,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            value REAL,
            raw_value TEXT,
            valid INTEGER NOT NULL CHECK (valid IN (0, 1)),
            invalid_reason TEXT,
            is_alarm INTEGER NOT NULL DEFAULT 0,
            event_ext_id TEXT,
            event_id INTEGER REFERENCES events(id),
            payload TEXT,
            run_id INTEGER REFERENCES import_runs(id),
            UNIQUE (device_uid, record_id)
        );
        CREATE INDEX ix_device_readings_at ON device_readings(device_uid, at);
        CREATE INDEX ix_device_readings_invalid ON device_readings(at) WHERE valid = 0;
        CREATE INDEX ix_device_readings_pending ON device_readings(event_ext_id)
            WHERE event_id IS NULL AND event_ext_id IS NOT NULL;
        """
    )
    from db.intake.mappings import seed_mappings

    seed_mappings(db.conn)


# ---------------------------------------------------------------------------
# Later migrations, in this order. Each issue adds its own below its marker;
# keep the markers so parallel branches merge cleanly.
# ---------------------------------------------------------------------------

# [m005] issue 4 — intake speed


@migrations(name="m005_intake_speed")
def m005_intake_speed(db: Database) -> None:
    """Phone-number history search without a scan of the events (``ix_events_reporter_phone``;
    a partial number scans this narrow index instead of the table), and ``fts_pending``: id ranges
    of imported events whose full-text rows are written after the import's transactions, in short
    slices (:mod:`db.intake.fts_backlog`); the FTS triggers skip rows still pending."""
    run_script(
        db,
        """
        CREATE INDEX IF NOT EXISTS ix_events_reporter_phone ON events(reporter_phone);

        CREATE TABLE fts_pending (
            id INTEGER PRIMARY KEY,
            lo INTEGER NOT NULL, hi INTEGER NOT NULL,  -- events.id range still to index
            run_id INTEGER, created_at TEXT NOT NULL
        );
        DROP TRIGGER events_fts_ai;
        DROP TRIGGER events_fts_ad;
        DROP TRIGGER events_fts_au;
        CREATE TRIGGER events_fts_ai AFTER INSERT ON events
        WHEN NOT EXISTS (SELECT 1 FROM fts_pending p WHERE new.id BETWEEN p.lo AND p.hi) BEGIN
            INSERT INTO events_fts(rowid, title, description, address)
            VALUES (new.id, new.title, new.description, new.address);
        END;
        CREATE TRIGGER events_fts_ad AFTER DELETE ON events
        WHEN NOT EXISTS (SELECT 1 FROM fts_pending p WHERE old.id BETWEEN p.lo AND p.hi) BEGIN
            INSERT INTO events_fts(events_fts, rowid, title, description, address)
            VALUES ('delete', old.id, old.title, old.description, old.address);
        END;
        CREATE TRIGGER events_fts_au AFTER UPDATE OF title, description, address ON events
        WHEN NOT EXISTS (SELECT 1 FROM fts_pending p WHERE old.id BETWEEN p.lo AND p.hi) BEGIN
            INSERT INTO events_fts(events_fts, rowid, title, description, address)
            VALUES ('delete', old.id, old.title, old.description, old.address);
            INSERT INTO events_fts(rowid, title, description, address)
            VALUES (new.id, new.title, new.description, new.address);
        END;
        """,
    )


# [m006] issue 5 — three one-maps (themes, buildings, ecology)
@migrations(name="m006_onemaps")
def m006_onemaps(db: Database) -> None:
    """User map themes; building economy (buildings, enterprises, monthly history); Yangtze
    ecology (shoreline segments, stations, hourly readings, cameras, detections, protected
    zones, alert episodes).

    ``eco_readings`` is one row per station and hour (``hour`` = hours since the Unix epoch,
    UTC), WITHOUT ROWID, so one station's year is one contiguous range of the primary key.
    ``invalid`` is a bit mask over (do, nh3n, cod, ph, turbidity) of values that were missing
    or impossible; those are stored as received (NULL when missing) and never classified.
    """
    run_script(
        db,
        """
        CREATE TABLE map_themes (
            name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 40),
            title TEXT NOT NULL,
            base TEXT NOT NULL,
            layers TEXT NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL
        );

        CREATE TABLE buildings (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            street_code TEXT REFERENCES streets(code), grid_id TEXT,
            lon REAL NOT NULL, lat REAL NOT NULL,
            floors INTEGER NOT NULL CHECK (floors > 0), gfa_m2 REAL NOT NULL CHECK (gfa_m2 > 0),
            occupancy REAL NOT NULL CHECK (occupancy BETWEEN 0 AND 1),
            enterprises INTEGER NOT NULL DEFAULT 0, tax_yuan REAL NOT NULL DEFAULT 0,
            industry TEXT NOT NULL, yiyuan INTEGER NOT NULL DEFAULT 0 CHECK (yiyuan IN (0, 1)),
            geometry TEXT NOT NULL, repaired INTEGER NOT NULL DEFAULT 0, demo INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX ix_buildings_street ON buildings(street_code, industry);
        CREATE TABLE enterprises (
            id INTEGER PRIMARY KEY, building_id INTEGER NOT NULL REFERENCES buildings(id),
            name TEXT NOT NULL, industry TEXT NOT NULL, floor INTEGER, area_m2 REAL,
            employees INTEGER, tax_yuan REAL NOT NULL DEFAULT 0, since TEXT
        );
        CREATE INDEX ix_enterprises_building ON enterprises(building_id);
        CREATE TABLE building_history (
            building_id INTEGER NOT NULL REFERENCES buildings(id), month TEXT NOT NULL,
            occupancy REAL NOT NULL, tax_yuan REAL NOT NULL,
            PRIMARY KEY (building_id, month)
        ) WITHOUT ROWID;

        CREATE TABLE shoreline_segments (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, grid_id TEXT, street_code TEXT,
            leader TEXT, length_m REAL NOT NULL, geometry TEXT NOT NULL
        );
        CREATE TABLE eco_stations (
            id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            segment_id TEXT REFERENCES shoreline_segments(id), grid_id TEXT, street_code TEXT,
            lon REAL NOT NULL, lat REAL NOT NULL, target_class INTEGER NOT NULL DEFAULT 3
        );
        CREATE TABLE eco_readings (
            station_id INTEGER NOT NULL REFERENCES eco_stations(id),
            hour INTEGER NOT NULL,
            do REAL, nh3n REAL, cod REAL, ph REAL, turbidity REAL,
            invalid INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (station_id, hour)
        ) WITHOUT ROWID;
        CREATE TABLE eco_cameras (
            id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            segment_id TEXT REFERENCES shoreline_segments(id), grid_id TEXT, street_code TEXT,
            lon REAL NOT NULL, lat REAL NOT NULL, status TEXT NOT NULL DEFAULT 'online'
        );
        CREATE TABLE eco_detections (
            id INTEGER PRIMARY KEY, camera_id INTEGER NOT NULL REFERENCES eco_cameras(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('fishing', 'sand_mining', 'dumping')),
            confidence REAL NOT NULL
        );
        CREATE INDEX ix_eco_detections_at ON eco_detections(at);
        CREATE TABLE eco_zones (
            id TEXT PRIMARY KEY, name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('no_fishing', 'no_construction')),
            buffer_m REAL NOT NULL, geometry TEXT NOT NULL
        );
        CREATE TABLE eco_alerts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('breach', 'detection')),
            station_id INTEGER REFERENCES eco_stations(id),
            camera_id INTEGER REFERENCES eco_cameras(id),
            parameter TEXT NOT NULL,
            started_at TEXT NOT NULL, last_at TEXT NOT NULL,
            peak REAL, peak_class INTEGER,
            external_id TEXT NOT NULL UNIQUE,
            event_id INTEGER REFERENCES events(id)
        );
        CREATE INDEX ix_eco_alerts_open ON eco_alerts(station_id, camera_id, parameter, last_at);
        """,
    )



# [m007] issue 6 — KPI rollups, wall layouts, saved filters


@migrations(name="m007_kpi_rollups")
def m007_kpi_rollups(db: Database) -> None:
    """KPI rollups (issue 6): daily/hourly rollup tables kept by triggers (``db/kpi_rollups.py``),
    the helper columns ``events.deferrals`` / ``events.evaluated_at`` and the indexes the KPI
    engine's exact edge scans use. Existing events are rolled up here (one pass)."""
    from db import kpi_rollups

    run_script(db, kpi_rollups.MIGRATION_SQL)
    kpi_rollups.rebuild(db.conn)


@migrations(name="m007b_wall_layouts")
def m007b_wall_layouts(db: Database) -> None:
    """Wall control (issue 6, view half): named wall layouts, the wall's control state written by
    the district console's 大屏控制 and read by the wall process, and a station's saved queue filters."""
    run_script(
        db,
        """
        CREATE TABLE wall_layouts (
            name TEXT PRIMARY KEY, spec TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT
        );
        CREATE TABLE wall_control (
            key TEXT PRIMARY KEY, value TEXT, updated_at TEXT NOT NULL, updated_by TEXT
        );
        CREATE TABLE saved_filters (
            id INTEGER PRIMARY KEY, scope TEXT NOT NULL DEFAULT '', name TEXT NOT NULL,
            spec TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT,
            UNIQUE (scope, name)
        );
        """,
    )


# [m008] issue 8 — grid robot (warnings, care list, visits, positions)
@migrations(name="m008_grid_robot")
def m008_grid_robot(db: Database) -> None:
    """Grid robot (issue 8): warnings raised by the rule engine, operator thresholds, pass log,
    the care list (personal data), visit records and a bounded history of grid-leader positions.

    A warning's identity is ``(rule, dedup_key)``: at most one *open* warning per identity (partial
    unique index), so a pass updates an open warning instead of raising it again. Evidence is JSON
    ``{"events": [...], "external_ids": [...], "people": [...], "devices": [...]}``.
    ``leader_positions`` keeps the newest ``LEADER_POSITIONS_KEEP`` rows per person (trigger).
    Covering indexes on ``events`` let the hot-spot and anomaly rules read a window of events from
    the index alone, and the repeat-demand rule group callers and 12345 addresses in index order
    (a pass over 1M events stays within seconds).
    """
    run_script(
        db,
        f"""
        CREATE TABLE robot_settings (
            rule TEXT NOT NULL,
            key TEXT NOT NULL,
            value REAL NOT NULL,
            edited_by TEXT,
            edited_at TEXT,
            PRIMARY KEY (rule, key)
        ) WITHOUT ROWID;

        CREATE TABLE robot_warnings (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            rule TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            severity INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),
            grid_id TEXT,
            street_code TEXT,
            lon REAL,
            lat REAL,
            evidence TEXT NOT NULL DEFAULT '{{}}',
            explanation_zh TEXT NOT NULL,
            suggested_action TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'dismissed', 'cleared')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            decided_at TEXT,
            decided_by TEXT,
            dismiss_reason TEXT,
            event_id INTEGER REFERENCES events(id),
            rev INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX ux_robot_warnings_open ON robot_warnings(rule, dedup_key) WHERE status = 'open';
        CREATE INDEX ix_robot_warnings_rule ON robot_warnings(rule, dedup_key, status);
        CREATE INDEX ix_robot_warnings_event ON robot_warnings(event_id) WHERE event_id IS NOT NULL;

        CREATE INDEX ix_events_robot_recent ON events(reported_at, category, grid_id, lon, lat, status, drill_id,
            source, source_code);
        CREATE INDEX ix_events_robot_callers ON events(reporter_phone, reported_at, status, drill_id)
            WHERE reporter_phone IS NOT NULL;
        -- the callers index leads with reporter_phone: it serves the phone history search too (m005's index)
        DROP INDEX IF EXISTS ix_events_reporter_phone;
        CREATE INDEX ix_events_robot_addresses ON events(address, reported_at, status, drill_id)
            WHERE source = 'hotline_12345';

        CREATE TABLE robot_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            created INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            cleared INTEGER NOT NULL DEFAULT 0,
            errors TEXT NOT NULL DEFAULT '[]'
        );

        CREATE TABLE care_list (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            phone TEXT,
            id_no TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('elderly_alone', 'disabled', 'hardship', 'minor', 'other')),
            address TEXT,
            grid_id TEXT REFERENCES grids(id),
            street_code TEXT,
            lon REAL,
            lat REAL,
            visit_every_days INTEGER,
            note TEXT,
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            created_at TEXT NOT NULL
        );
        CREATE INDEX ix_care_list_grid ON care_list(grid_id);

        CREATE TABLE visits (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('care_visit', 'patrol')),
            care_id INTEGER REFERENCES care_list(id),
            grid_id TEXT,
            person_id INTEGER REFERENCES people(id),
            at TEXT NOT NULL,
            note TEXT
        );
        CREATE INDEX ix_visits_care ON visits(care_id, at) WHERE care_id IS NOT NULL;
        CREATE INDEX ix_visits_grid ON visits(grid_id, at);
        CREATE INDEX ix_visits_at ON visits(at);

        CREATE TABLE leader_positions (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id),
            at TEXT NOT NULL,
            lon REAL NOT NULL,
            lat REAL NOT NULL,
            grid_id TEXT
        );
        CREATE INDEX ix_leader_positions_person ON leader_positions(person_id, at);
        CREATE TRIGGER leader_positions_bounded AFTER INSERT ON leader_positions BEGIN
            DELETE FROM leader_positions WHERE person_id = new.person_id AND id < (
                SELECT id FROM leader_positions WHERE person_id = new.person_id
                ORDER BY id DESC LIMIT 1 OFFSET {LEADER_POSITIONS_KEEP - 1});
        END;
        """,
    )


LEADER_POSITIONS_KEEP = 500
"""Newest grid-leader positions kept per person (older rows are pruned on insert)."""



# [m009] issue 7 — drills (series, templates, injects, clock, media)

@migrations(name="m009_drills")
def m009_drills(db: Database) -> None:
    """Drills (issue 7): one ``drills`` row per occurrence with its plan and scenario clock, series
    (recurrence rules), templates per theme, the MSEL (``drill_injects``), participants and
    attendance, field media (drills and real events), findings / improvement plan and the
    append-only run log. Templates are seeded (``db.drills.seed_templates``)."""
    run_script(
        db,
        """
        ALTER TABLE drills ADD COLUMN series_id INTEGER;
        ALTER TABLE drills ADD COLUMN template_id INTEGER;
        ALTER TABLE drills ADD COLUMN streets TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE drills ADD COLUMN grids TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE drills ADD COLUMN coordinator TEXT;
        ALTER TABLE drills ADD COLUMN duration_min INTEGER NOT NULL DEFAULT 60;
        ALTER TABLE drills ADD COLUMN objectives TEXT;
        ALTER TABLE drills ADD COLUMN started_at TEXT;
        ALTER TABLE drills ADD COLUMN paused_at TEXT;
        ALTER TABLE drills ADD COLUMN anchor_at TEXT;
        ALTER TABLE drills ADD COLUMN elapsed_s REAL NOT NULL DEFAULT 0;
        ALTER TABLE drills ADD COLUMN speed REAL NOT NULL DEFAULT 1;
        ALTER TABLE drills ADD COLUMN heartbeat_at TEXT;
        ALTER TABLE drills ADD COLUMN ended_at TEXT;
        ALTER TABLE drills ADD COLUMN stop_reason TEXT;
        ALTER TABLE drills ADD COLUMN strengths TEXT;
        ALTER TABLE drills ADD COLUMN improvements TEXT;
        ALTER TABLE drills ADD COLUMN created_at TEXT;
        ALTER TABLE drills ADD COLUMN updated_at TEXT;
        ALTER TABLE drills ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        CREATE INDEX ix_drills_starts ON drills(starts_at);
        CREATE INDEX ix_drills_status ON drills(status);
        CREATE INDEX IF NOT EXISTS ix_events_drill ON events(drill_id, reported_at) WHERE drill_id IS NOT NULL;

        CREATE TABLE drill_series (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, title TEXT NOT NULL, theme TEXT NOT NULL,
            rule TEXT NOT NULL CHECK (rule IN ('weekly', 'monthly', 'dates')),
            weekday INTEGER CHECK (weekday BETWEEN 0 AND 6), month_day INTEGER CHECK (month_day BETWEEN 1 AND 31),
            interval INTEGER NOT NULL DEFAULT 1, time_of_day TEXT NOT NULL, first_date TEXT NOT NULL,
            until_date TEXT, count INTEGER, dates TEXT NOT NULL DEFAULT '[]', template_id INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE TABLE drill_templates (
            id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, theme TEXT NOT NULL, title TEXT NOT NULL,
            level TEXT NOT NULL CHECK (level IN ('district','street','grid')),
            duration_min INTEGER NOT NULL, objectives TEXT, scenario TEXT NOT NULL DEFAULT '[]'
        );
        CREATE TABLE drill_injects (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,
            drill_id INTEGER NOT NULL REFERENCES drills(id),
            seq INTEGER NOT NULL, offset_s INTEGER NOT NULL CHECK (offset_s >= 0),
            title TEXT NOT NULL, content TEXT, category TEXT NOT NULL,
            class TEXT NOT NULL DEFAULT 'emergency' CHECK (class IN ('ordinary','emergency','assigned')),
            source TEXT NOT NULL DEFAULT 'drill',
            lon REAL, lat REAL, grid_id TEXT, street_code TEXT,
            target_level TEXT NOT NULL DEFAULT 'street' CHECK (target_level IN ('district','street','grid')),
            target_department TEXT, expected_action TEXT,
            expected_stage TEXT NOT NULL DEFAULT 'on_site'
                CHECK (expected_stage IN ('accepted','dispatched','acknowledged','on_site','handled')),
            allowed_min REAL NOT NULL DEFAULT 10 CHECK (allowed_min > 0),
            parent_id INTEGER REFERENCES drill_injects(id),
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','fired','skipped')),
            fired_at TEXT, fired_elapsed_s REAL, event_id INTEGER REFERENCES events(id),
            UNIQUE (drill_id, seq)
        );
        CREATE INDEX ix_drill_injects_pending ON drill_injects(drill_id, offset_s) WHERE status = 'pending';
        CREATE INDEX ix_drill_injects_event ON drill_injects(event_id);
        CREATE TABLE drill_participants (
            drill_id INTEGER NOT NULL REFERENCES drills(id),
            kind TEXT NOT NULL CHECK (kind IN ('person','street','department')),
            ref TEXT NOT NULL, name TEXT, role TEXT, street_code TEXT,
            expected INTEGER NOT NULL DEFAULT 1 CHECK (expected IN (0, 1)),
            attended INTEGER NOT NULL DEFAULT 0 CHECK (attended IN (0, 1)),
            checked_in_at TEXT,
            PRIMARY KEY (drill_id, kind, ref)
        ) WITHOUT ROWID;
        CREATE INDEX ix_drill_participants_ref ON drill_participants(kind, ref);
        CREATE TABLE drill_media (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,
            drill_id INTEGER REFERENCES drills(id), inject_id INTEGER REFERENCES drill_injects(id),
            event_id INTEGER REFERENCES events(id),
            kind TEXT NOT NULL CHECK (kind IN ('audio','video','image','stream')),
            uri TEXT NOT NULL, title TEXT, recorded_at TEXT NOT NULL, device TEXT, created_at TEXT NOT NULL
        );
        CREATE INDEX ix_drill_media_event ON drill_media(event_id);
        CREATE INDEX ix_drill_media_inject ON drill_media(inject_id);
        CREATE TABLE drill_findings (
            id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,
            drill_id INTEGER NOT NULL REFERENCES drills(id),
            action TEXT NOT NULL, owner TEXT, due_date TEXT,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','in_progress','done')),
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE INDEX ix_drill_findings_drill ON drill_findings(drill_id);
        CREATE TABLE drill_log (
            id INTEGER PRIMARY KEY, drill_id INTEGER NOT NULL REFERENCES drills(id),
            at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            elapsed_s REAL, speed REAL, note TEXT
        );
        CREATE INDEX ix_drill_log_drill ON drill_log(drill_id, id);
        CREATE TRIGGER drill_log_no_update BEFORE UPDATE ON drill_log BEGIN
            SELECT RAISE(ABORT, 'drill_log is append-only: UPDATE is not allowed');
        END;
        CREATE TRIGGER drill_log_no_delete BEFORE DELETE ON drill_log BEGIN
            SELECT RAISE(ABORT, 'drill_log is append-only: DELETE is not allowed');
        END;
        """
    )
    from db.drills import seed_templates

    seed_templates(db.conn)



# [m010] issue 9 — sync: outbox, client identity, cursor, refusals
@migrations(name="m010_sync")
def m010_sync(db: Database) -> None:
    """Sync with a PostgreSQL upstream (issue 9): sync_state, outbox, sync_refusals and the
    trigger that queues every local event_log row (only on a sync client). ``docs/sync.md``."""
    from db.sync.outbox_schema import TABLES_SQL, install_outbox_trigger

    run_script(db, TABLES_SQL)
    install_outbox_trigger(db.conn)


# [m011] issue 8 — care_log: who changed the care list (session 4)
@migrations(name="m011_care_log")
def m011_care_log(db: Database) -> None:
    """Append-only audit of the care list (重点人群关爱名单): who added, edited, deactivated a
    resident or recorded a visit, and which fields changed (names only: the values are personal data
    and stay in ``care_list``)."""
    run_script(
        db,
        """
        CREATE TABLE care_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            care_id INTEGER NOT NULL REFERENCES care_list(id),
            action TEXT NOT NULL CHECK (action IN ('add', 'update', 'deactivate', 'visit')),
            detail TEXT
        );
        CREATE INDEX ix_care_log_care ON care_log(care_id, id);
        CREATE TRIGGER care_log_no_update BEFORE UPDATE ON care_log BEGIN
            SELECT RAISE(ABORT, 'care_log is append-only: UPDATE is not allowed');
        END;
        CREATE TRIGGER care_log_no_delete BEFORE DELETE ON care_log BEGIN
            SELECT RAISE(ABORT, 'care_log is append-only: DELETE is not allowed');
        END;
        """,
    )


# [m012] issue 9 — the desk's department scope (session 4)
@migrations(name="m012_sync_scope_dept")
def m012_sync_scope_dept(db: Database) -> None:
    """``sync_state.scope_dept``: the department a desk role is limited to (from the upstream's
    ``hello``/``snapshot_head``), next to ``scope_street``; the console follows the desk's scope."""
    if "sync_state" in db.table_names() and "scope_dept" not in db["sync_state"].columns_dict:
        db.execute("ALTER TABLE sync_state ADD COLUMN scope_dept TEXT")


# [m013] (unused)


# [end of migrations]


def run_script(db: Database, sql: str) -> None:
    """Run a multi-statement script inside the current transaction.

    ``sqlite3.executescript`` would COMMIT first, breaking the migration's atomicity,
    so statements are split with ``sqlite3.complete_statement`` and run one by one.
    """
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                db.execute(buf)
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement at end of script: {buf.strip()[:80]}")


SCHEMA_VERSION = len(migrations._migrations)
MIGRATION_NAMES = [m.name for m in migrations._migrations]
