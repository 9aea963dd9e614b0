"""What every export format shares (Qt-free): options, the personal-data and drill policy, the
layer queries, progress/cancel and the write-to-a-temp-file-then-rename output.

A layer is a :class:`LayerQuery`: typed attribute columns plus a geometry source (``lon, lat``
columns for points, a GeoJSON text column for lines and polygons), selected by one SQL
statement with named parameters. The format writers (``geojson``, ``csvout``, ``gpkg``,
``open311``) only stream those rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app import labels, timeutil

FORMATS = ("geojson", "csv", "gpkg", "open311")
TABULAR_LAYERS = ("events", "grids", "streets")
GPKG_LAYERS = ("streets", "communities", "grids", "neighbourhoods", "places", "roads", "devices", "events")
LAYERS: dict[str, tuple[str, ...]] = {
    "geojson": TABULAR_LAYERS,
    "csv": TABULAR_LAYERS,
    "gpkg": GPKG_LAYERS,
    "open311": ("events",),
}
PERSONAL_PREFIX = "reporter_"  # reporter_name, reporter_phone, reporter_id_no (and any later reporter_*)
INTERNAL_COLUMNS = frozenset({"rev", "source_hash"})  # change-feed / re-import bookkeeping, not data
CHUNK = 2000  # rows fetched (and progress reported) at a time
SCAN_CACHE_KIB = 16384  # page cache of the export's own reader: one sequential pass needs little

GRID_KINDS = {
    "comprehensive": ("综合网格", "Comprehensive"),
    "hospital": ("医院专属网格", "Hospital"),
    "school": ("学校专属网格", "School"),
    "market": ("市场专属网格", "Market"),
    "construction": ("工地专属网格", "Construction site"),
}
DEVICE_KINDS = {
    "camera": ("视频监控", "Camera"),
    "door_sensor": ("智能门磁", "Door sensor"),
    "manhole": ("智能井盖", "Manhole cover"),
    "throwing_detector": ("高空抛物监测", "Throwing detector"),
}
DEVICE_STATUSES = {"online": ("在线", "Online"), "offline": ("离线", "Offline")}
PLACE_KINDS = {"estate": ("小区", "Estate"), "landmark": ("地标", "Landmark"), "road": ("道路", "Road")}


class ExportError(Exception):
    """The export could not be done (CLI exit 1): unwritable path, replica problem, refusal."""


class ExportUsageError(ExportError, ValueError):
    """The request itself is wrong (CLI exit 2): unknown format or layer, bad date, unknown street."""


class ExportRefused(ExportError, PermissionError):
    """The session's role may not export what was asked (e.g. personal data from the wall)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExportCancelled(ExportError):
    """``cancel`` was set: nothing was written (the temp file is removed)."""


@dataclass
class ExportResult:
    path: Path
    format: str
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        parts = ", ".join(f"{layer} {n:,}" for layer, n in self.counts.items())
        return f"{self.format} → {self.path}: {parts} ({self.elapsed_s:.1f} s)"


# -- policy ----------------------------------------------------------------------------------
def personal_allowed(session) -> tuple[bool, str]:
    """May ``session`` export reporters' personal data (name, phone, ID number)?

    district: yes. street (with a scope): yes — its export only ever holds its own street's
    events. wall: never. department and drill: no (a department sees personal data of its
    dispatched events in the console, but does not take it away in bulk; drill data is training).
    Returns ``(allowed, reason_if_not)``.
    """
    role = getattr(session, "role", None) or "district"
    scope = getattr(session, "scope", None)
    if role == "district":
        return True, ""
    if role == "street":
        if scope:
            return True, ""
        return False, "街道角色未指定范围 the street role needs --scope CODE"
    if role == "wall":
        return False, "大屏从不显示个人信息 the wall never shows personal data"
    if role == "department":
        return False, "部门角色不能批量导出个人信息 a department role may not export personal data in bulk"
    if role == "drill":
        return False, "演练角色不能导出个人信息 the drill role may not export personal data"
    return False, f"未知角色 unknown role {role!r}"


@dataclass
class Options:
    fmt: str
    layers: tuple[str, ...]
    since: str | None = None  # stored form, +08:00
    until: str | None = None
    scope: str | None = None  # street code filter
    include_drills: bool = False
    include_personal: bool = False
    session: object = None
    lang: str = "zh"
    csv_formula_guard: bool = True

    @property
    def role(self) -> str:
        return getattr(self.session, "role", None) or "district"


def parse_time(value, name: str) -> str | None:
    """``--since``/``--until`` in the replica's stored form (ISO, +08:00); naive = Asia/Shanghai."""
    if value is None or value == "":
        return None
    try:
        t = value if isinstance(value, dt.datetime) else timeutil.parse(str(value))
    except (TypeError, ValueError) as exc:
        raise ExportUsageError(f"--{name}: not a date/time: '{value}' ({exc})") from None
    return timeutil.to_iso(t)


def resolve_layers(fmt: str, layer) -> tuple[str, ...]:
    if fmt not in FORMATS:
        raise ExportUsageError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    available = LAYERS[fmt]
    if layer is None or layer == "":
        return available if fmt == "gpkg" else (available[0],)
    names = [p.strip() for p in (layer.split(",") if isinstance(layer, str) else layer) if p.strip()]
    if not names:
        raise ExportUsageError("--layer: empty layer name")
    if fmt != "gpkg" and len(names) > 1:
        raise ExportUsageError(f"--layer: {fmt} holds one layer; pick one of {', '.join(available)}")
    for name in names:
        if name not in available:
            raise ExportUsageError(
                f"--layer {name}: not available for {fmt}; available: {', '.join(available)}"
            )
    return tuple(n for n in available if n in names)  # canonical order, no duplicates


def check_scope_code(conn: sqlite3.Connection, scope: str | None) -> None:
    if scope is None:
        return
    if conn.execute("SELECT 1 FROM streets WHERE code = ?", (scope,)).fetchone() is None:
        known = [r[0] for r in conn.execute("SELECT code FROM streets ORDER BY code")]
        shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
        raise ExportUsageError(
            f"--scope {scope}: no such street code in the replica; known: {shown or '(none)'}"
        )


# -- layer queries ---------------------------------------------------------------------------
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class LayerQuery:
    """One layer: typed attribute ``items`` ``(column, GeoPackage type, SQL expression)`` and a
    geometry source — ``lon, lat`` (``geom == 'point'``) or one GeoJSON text column
    (``geom == 'geojson'``) — over ``from_sql``. :meth:`sql` renders the SELECT for a format:
    attribute columns aliased by name, then ``__lon, __lat`` or ``__geom``.
    ``fid_from_first``: the first column is an integer key, used as the GeoPackage fid."""

    name: str
    items: list[tuple[str, str, str]]
    geom_exprs: tuple[str, ...]
    from_sql: str
    terms: list[str]
    params: dict
    order: str
    ctes: str = ""
    geometry_type: str | None = None  # POINT for points; lines/polygons: the preferred type
    fid_from_first: bool = False
    description: str = ""
    count_from: str | None = None  # a cheaper FROM for counting (no label joins)

    @property
    def geom(self) -> str:
        return "point" if len(self.geom_exprs) == 2 else "geojson"

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(n, t) for n, t, _ in self.items]

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.items]

    def _with(self) -> str:
        return f"WITH {self.ctes} " if self.ctes else ""

    def sql(self, *, utc: bool = False, formula_guard: bool = False) -> str:
        """``utc``: DATETIME columns as GeoPackage wants them (UTC ``…SS.SSSZ``; SQLite's
        strftime applies the stored +08:00; text it cannot parse is kept as it is).
        ``formula_guard``: TEXT cells starting with = + - @ tab CR get a leading apostrophe."""
        exprs = []
        starts = ", ".join(_lit(c) for c in FORMULA_CHARS)
        for name, gtype, expr in self.items:
            if utc and gtype == "DATETIME":
                expr = f"coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', {expr}), {expr})"
            if formula_guard and gtype == "TEXT":
                expr = f"CASE WHEN substr({expr}, 1, 1) IN ({starts}) THEN char(39) || {expr} ELSE {expr} END"
            exprs.append(f"{expr} AS {_q(name)}")
        if self.geom == "point":
            exprs.append(f"{self.geom_exprs[0]} AS __lon, {self.geom_exprs[1]} AS __lat")
        else:
            exprs.append(f"{self.geom_exprs[0]} AS __geom")
        where = _where(self.terms)
        return f"{self._with()}SELECT {', '.join(exprs)} FROM {self.from_sql}{where} ORDER BY {self.order}"

    @property
    def count_sql(self) -> str:
        if self.count_from:
            return f"SELECT count(*) FROM {self.count_from}{_where(self.terms)}"
        return f"{self._with()}SELECT count(*) FROM {self.from_sql}{_where(self.terms)}"

    def count(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute(self.count_sql, self.params).fetchone()[0])

    def rows(
        self, conn: sqlite3.Connection, sql: str | None = None, size: int = CHUNK
    ) -> Iterator[list[tuple]]:
        """Tuples of ``sql`` (default :meth:`sql`), ``size`` at a time."""
        cur = conn.cursor()
        cur.row_factory = None
        try:
            cur.execute(sql or self.sql(), self.params)
            while True:
                batch = cur.fetchmany(size)
                if not batch:
                    break
                yield batch
        finally:
            cur.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value) -> str:
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _label_cte(name: str, table: dict, lang: str) -> str:
    rows = ", ".join(
        f"({_lit(code)}, {_lit(pair[1] if lang == 'en' else pair[0])})" for code, pair in table.items()
    )
    return f"{name}(code, label) AS (VALUES {rows})"


def table_columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return [(r[1], (r[2] or "").upper()) for r in conn.execute(f"PRAGMA table_info({_q(table)})").fetchall()]


def gpkg_type(name: str, decl: str) -> str:
    if "INT" in decl:
        return "INTEGER"
    if any(k in decl for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    if name.endswith("_at"):
        return "DATETIME"
    return "TEXT"


def _where(terms: list[str]) -> str:
    return " WHERE " + " AND ".join(terms) if terms else ""


def events_query(conn: sqlite3.Connection, opts: Options) -> LayerQuery:
    """Every column of ``events`` but ``rev`` (and ``lon``/``lat``, which are the geometry),
    personal ``reporter_*`` columns only when asked, then labels: source_label, class_label,
    priority_label, status_label, category_name, street_name, community_name, grid_name and
    assignee_name (the department or grid the event is dispatched to)."""
    from app.access import visible_filter

    lang = opts.lang
    items: list[tuple[str, str, str]] = []
    for name, decl in table_columns(conn, "events"):
        if name in INTERNAL_COLUMNS or name in ("lon", "lat"):
            continue
        if name.startswith(PERSONAL_PREFIX) and not opts.include_personal:
            continue
        items.append((name, gpkg_type(name, decl), f"e.{_q(name)}"))
    name_col = "name_en" if lang == "en" else "name_zh"
    dept_col = "coalesce(d.name_en, d.name)" if lang == "en" else "d.name"
    derived = [
        ("source_label", "coalesce(lsrc.label, e.source)"),
        ("class_label", 'coalesce(lcls.label, e."class")'),
        ("priority_label", "coalesce(lpri.label, CAST(e.priority AS TEXT))"),
        ("status_label", "coalesce(lst.label, e.status)"),
        ("category_name", f"coalesce(cat.{name_col}, e.category)"),
        ("street_name", "s.name"),
        ("community_name", "co.name"),
        ("grid_name", "g.name"),
        (
            "assignee_name",
            f"CASE e.assignee_kind WHEN 'department' THEN coalesce({dept_col}, e.assignee_code) "
            "WHEN 'grid' THEN coalesce(ag.name, e.assignee_code) ELSE e.assignee_code END",
        ),
    ]
    items += [(name, "TEXT", expr) for name, expr in derived]
    terms, params = [], {}
    if not opts.include_drills:
        terms.append("e.drill_id IS NULL")
    if opts.since:
        terms.append("e.reported_at >= :since")
        params["since"] = opts.since
    if opts.until:
        terms.append("e.reported_at < :until")
        params["until"] = opts.until
    if opts.scope:
        terms.append("e.street_code = :scope")
        params["scope"] = opts.scope
    access_term, access_params = visible_filter(opts.session, "e")
    if access_term != "1":
        terms.append(access_term)
        params.update(access_params)
    ctes = ", ".join(
        [
            _label_cte("lsrc", labels.SOURCES, lang),
            _label_cte("lcls", labels.CLASSES, lang),
            _label_cte("lpri", labels.PRIORITIES, lang),
            _label_cte("lst", labels.STATUSES, lang),
        ]
    )
    from_sql = (
        "events e"
        " LEFT JOIN lsrc ON lsrc.code = e.source"
        ' LEFT JOIN lcls ON lcls.code = e."class"'
        " LEFT JOIN lpri ON lpri.code = e.priority"
        " LEFT JOIN lst ON lst.code = e.status"
        " LEFT JOIN categories cat ON cat.code = e.category"
        " LEFT JOIN streets s ON s.code = e.street_code"
        " LEFT JOIN communities co ON co.code = e.community_code"
        " LEFT JOIN grids g ON g.id = e.grid_id"
        " LEFT JOIN departments d ON e.assignee_kind = 'department' AND d.code = e.assignee_code"
        " LEFT JOIN grids ag ON e.assignee_kind = 'grid' AND ag.id = e.assignee_code"
    )
    described = ["事件 events", "incl. drill events" if opts.include_drills else "drill events left out"]
    described.append("incl. personal fields" if opts.include_personal else "personal fields left out")
    if opts.since or opts.until:
        described.append(f"reported {opts.since or '…'} – {opts.until or '…'}")
    if opts.scope:
        described.append(f"street {opts.scope}")
    return LayerQuery(
        name="events", items=items, geom_exprs=("e.lon", "e.lat"), from_sql=from_sql, terms=terms,
        params=params, order="e.id", ctes=ctes, geometry_type="POINT", fid_from_first=True,
        description="; ".join(described), count_from="events e",
    )  # fmt: skip


def _layer(
    name: str, items, from_sql: str, scope_term: str | None, order: str, geom: tuple[str, ...],
    opts: Options, *, ctes: str = "", terms: list[str] | None = None, fid_from_first: bool = False,
    geometry_type: str | None = None, description: str = "",
) -> LayerQuery:  # fmt: skip
    terms = list(terms or [])
    params: dict = {}
    if opts.scope and scope_term:
        terms.append(scope_term)
        params["scope"] = opts.scope
    return LayerQuery(
        name=name, items=list(items), geom_exprs=geom, from_sql=from_sql, terms=terms, params=params,
        order=order, ctes=ctes, geometry_type=geometry_type, fid_from_first=fid_from_first,
        description=description,
    )  # fmt: skip


def layer_query(conn: sqlite3.Connection, layer: str, opts: Options) -> LayerQuery:
    lang = opts.lang
    if layer == "events":
        return events_query(conn, opts)
    if layer == "streets":
        return _layer(
            "streets",
            [
                ("code", "TEXT", "s.code"), ("name", "TEXT", "s.name"),
                ("approximate", "BOOLEAN", "s.approximate"), ("population", "INTEGER", "s.population"),
                ("area_km2", "REAL", "s.area_km2"), ("lon", "REAL", "s.lon"), ("lat", "REAL", "s.lat"),
            ],  # fmt: skip
            "streets s", "s.code = :scope", "s.code", ("s.geometry",), opts,
            geometry_type="MULTIPOLYGON", description="街道 streets (lon/lat = label point)",
        )  # fmt: skip
    if layer == "communities":
        return _layer(
            "communities",
            [
                ("code", "TEXT", "c.code"), ("name", "TEXT", "c.name"),
                ("street_code", "TEXT", "c.street_code"), ("street_name", "TEXT", "s.name"),
                ("approximate", "BOOLEAN", "c.approximate"), ("population", "INTEGER", "c.population"),
                ("lon", "REAL", "c.lon"), ("lat", "REAL", "c.lat"),
            ],  # fmt: skip
            "communities c LEFT JOIN streets s ON s.code = c.street_code",
            "c.street_code = :scope", "c.code", ("c.geometry",), opts,
            geometry_type="MULTIPOLYGON", description="社区 communities (lon/lat = label point)",
        )  # fmt: skip
    if layer == "grids":
        return _layer(
            "grids",
            [
                ("id", "TEXT", "g.id"), ("name", "TEXT", "g.name"), ("kind", "TEXT", "g.kind"),
                ("kind_label", "TEXT", "coalesce(k.label, g.kind)"),
                ("community_code", "TEXT", "g.community_code"), ("community_name", "TEXT", "c.name"),
                ("street_code", "TEXT", "g.street_code"), ("street_name", "TEXT", "s.name"),
                ("population", "INTEGER", "g.population"), ("households", "INTEGER", "g.households"),
                ("lon", "REAL", "g.lon"), ("lat", "REAL", "g.lat"),
            ],  # fmt: skip
            "grids g LEFT JOIN k ON k.code = g.kind LEFT JOIN communities c ON c.code = g.community_code"
            " LEFT JOIN streets s ON s.code = g.street_code",
            "g.street_code = :scope", "g.id", ("g.geometry",), opts,
            ctes=_label_cte("k", GRID_KINDS, lang), geometry_type="MULTIPOLYGON",
            description="网格 grids (lon/lat = label point)",
        )  # fmt: skip
    if layer == "neighbourhoods":
        return _layer(
            "neighbourhoods",
            [
                ("id", "TEXT", "n.id"), ("name", "TEXT", "n.name"), ("grid_id", "TEXT", "n.grid_id"),
                ("street_code", "TEXT", "g.street_code"), ("households", "INTEGER", "n.households"),
            ],  # fmt: skip
            "neighbourhoods n LEFT JOIN grids g ON g.id = n.grid_id",
            "g.street_code = :scope", "n.id", ("n.lon", "n.lat"), opts,
            geometry_type="POINT", description="邻里 neighbourhoods",
        )  # fmt: skip
    if layer in ("places", "roads"):
        items = [
            ("id", "INTEGER", "p.id"), ("kind", "TEXT", "p.kind"),
            ("kind_label", "TEXT", "coalesce(k.label, p.kind)"), ("name", "TEXT", "p.name"),
            ("community_code", "TEXT", "p.community_code"), ("street_code", "TEXT", "p.street_code"),
            ("grid_id", "TEXT", "p.grid_id"),
        ]  # fmt: skip
        if layer == "places":
            return _layer(
                "places", items, "places p LEFT JOIN k ON k.code = p.kind", "p.street_code = :scope",
                "p.id", ("p.lon", "p.lat"), opts, ctes=_label_cte("k", PLACE_KINDS, lang),
                terms=["p.kind <> 'road'"], fid_from_first=True, geometry_type="POINT",
                description="小区与地标 estates and landmarks (points)",
            )  # fmt: skip
        return _layer(
            "roads", items, "places p LEFT JOIN k ON k.code = p.kind", "p.street_code = :scope",
            "p.id", ("p.geometry",), opts, ctes=_label_cte("k", PLACE_KINDS, lang),
            terms=["p.kind = 'road'"], fid_from_first=True, geometry_type="LINESTRING",
            description="道路 roads (lines; from places)",
        )  # fmt: skip
    if layer == "devices":
        return _layer(
            "devices",
            [
                ("id", "INTEGER", "d.id"), ("uid", "TEXT", "d.uid"), ("kind", "TEXT", "d.kind"),
                ("kind_label", "TEXT", "coalesce(k.label, d.kind)"), ("name", "TEXT", "d.name"),
                ("grid_id", "TEXT", "d.grid_id"), ("street_code", "TEXT", "d.street_code"),
                ("status", "TEXT", "d.status"), ("status_label", "TEXT", "coalesce(ds.label, d.status)"),
                ("last_seen_at", "DATETIME", "d.last_seen_at"),
            ],  # fmt: skip
            "devices d LEFT JOIN k ON k.code = d.kind LEFT JOIN ds ON ds.code = d.status",
            "d.street_code = :scope", "d.id", ("d.lon", "d.lat"), opts,
            ctes=_label_cte("k", DEVICE_KINDS, lang) + ", " + _label_cte("ds", DEVICE_STATUSES, lang),
            fid_from_first=True, geometry_type="POINT", description="感知设备 devices",
        )  # fmt: skip
    raise ExportUsageError(f"unknown layer '{layer}'")


# -- geometry helpers shared by the writers --------------------------------------------------
def _ring_area2(ring) -> float:
    s = 0.0
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        s += x1 * y2 - x2 * y1
    return s


def _orient_polygon(rings: list) -> list:
    out = []
    for i, ring in enumerate(rings):
        ring = [p[:2] for p in ring]
        ccw = _ring_area2(ring) > 0
        # RFC 7946 §3.1.6 / OGC SF: exterior counter-clockwise, holes clockwise
        out.append(ring if ccw == (i == 0) else ring[::-1])
    return out


def orient(geom: dict | None) -> dict | None:
    """Polygons (and multipolygons) with the right-hand rule; other geometries unchanged."""
    if not geom:
        return geom
    kind = geom.get("type")
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": _orient_polygon(geom["coordinates"])}
    if kind == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": [_orient_polygon(p) for p in geom["coordinates"]]}
    return geom


# -- progress, cancel, output ------------------------------------------------------------------
class Progress:
    """Calls ``progress(fraction, text)`` now and then, and raises :class:`ExportCancelled`
    when ``cancel`` (a callable returning true, or an object with ``is_set()``) says so."""

    def __init__(self, total: int, progress: Callable[[float, str], None] | None, cancel) -> None:
        self.total = max(total, 1)
        self.done = 0
        self._cb = progress
        self._cancel = cancel
        self._last = 0.0

    def cancelled(self) -> bool:
        c = self._cancel
        if c is None:
            return False
        if hasattr(c, "is_set"):
            return bool(c.is_set())
        return bool(c())

    def check(self) -> None:
        if self.cancelled():
            raise ExportCancelled("导出已取消 export cancelled; nothing was written")

    def step(self, n: int, text: str, *, force: bool = False) -> None:
        self.done += n
        self.check()
        now = time.monotonic()
        if self._cb is not None and (force or now - self._last >= 0.1):
            self._last = now
            self._cb(min(self.done / self.total, 1.0), text)

    def finish(self, text: str) -> None:
        if self._cb is not None:
            self._cb(1.0, text)


def temp_path_for(out: Path) -> Path:
    return out.with_name(f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")


def check_out_path(out: Path) -> None:
    if out.is_dir():
        raise ExportError(f"cannot write {out}: it is a directory")
    if not out.parent.is_dir():
        raise ExportError(f"cannot write {out}: directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise ExportError(f"cannot write {out}: directory {out.parent} is not writable")


@contextlib.contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """A temp path next to ``out``; renamed over ``out`` only when the body finishes.

    On any error (or cancel) the temp file and its SQLite journal are removed and ``out`` is
    left as it was.
    """
    check_out_path(out)
    tmp = temp_path_for(out)
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        for p in (tmp, tmp.with_name(tmp.name + "-journal")):
            with contextlib.suppress(OSError):
                p.unlink()
        raise
