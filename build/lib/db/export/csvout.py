"""CSV for Excel: UTF-8 with a BOM, a header row of column names, CRLF line ends.

- Events (points): the attribute columns, then ``lon`` and ``lat`` (WGS-84).
- Grids and streets (polygons): the attribute columns — whose ``lon``/``lat`` are the label
  point stored in the replica (inside the polygon) — then ``wkt``, the whole polygon as WKT in
  WGS-84 (EPSG:4326), which QGIS's delimited-text import reads as geometry.
- Formula guard: citizen text is data, but Excel runs a cell that starts with ``=``, ``+``,
  ``-``, ``@``, tab or CR as a formula ("CSV injection"). Such text cells get a leading
  apostrophe (OWASP's advice); numbers are never touched. ``csv_formula_guard=False`` turns it off.
"""

from __future__ import annotations

import csv
import sqlite3
from typing import TextIO

from db.export.core import FORMULA_CHARS, LayerQuery, Progress
from db.export.geojson import parse_geometry

FORMULA_START = FORMULA_CHARS


def _num(x) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def _pts(coords) -> str:
    return ", ".join(f"{_num(p[0])} {_num(p[1])}" for p in coords)


def _rings(rings) -> str:
    return ", ".join(f"({_pts(r)})" for r in rings)


def to_wkt(geom: dict | None) -> str:
    """WKT of a GeoJSON geometry (2D), with the coordinates' shortest exact decimal form."""
    if not geom:
        return ""
    kind, c = geom.get("type"), geom.get("coordinates")
    if kind == "Point":
        return f"POINT ({_num(c[0])} {_num(c[1])})"
    if kind == "LineString":
        return f"LINESTRING ({_pts(c)})"
    if kind == "Polygon":
        return f"POLYGON ({_rings(c)})"
    if kind == "MultiPoint":
        return "MULTIPOINT (" + ", ".join(f"({_num(p[0])} {_num(p[1])})" for p in c) + ")"
    if kind == "MultiLineString":
        return f"MULTILINESTRING ({_rings(c)})"
    if kind == "MultiPolygon":
        return "MULTIPOLYGON (" + ", ".join(f"({_rings(p)})" for p in c) + ")"
    if kind == "GeometryCollection":
        return "GEOMETRYCOLLECTION (" + ", ".join(to_wkt(g) for g in geom.get("geometries", [])) + ")"
    return ""


def guard(value):
    """The formula guard for one value (the export applies the same rule in SQL)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write(
    conn: sqlite3.Connection, q: LayerQuery, fh: TextIO, progress: Progress, *, formula_guard: bool = True
) -> tuple[int, int]:
    """Stream ``q`` into ``fh`` (opened with ``encoding='utf-8-sig', newline=''``);
    returns ``(rows, rows_without_geometry)``."""
    n_attr = len(q.columns)
    is_point = q.geom == "point"
    w = csv.writer(fh)
    w.writerow(q.names + (["lon", "lat"] if is_point else ["wkt"]))
    count = missing = 0
    for batch in q.rows(conn, q.sql(formula_guard=formula_guard)):
        if is_point:
            out = batch
            missing += sum(1 for r in batch if r[n_attr] is None or r[n_attr + 1] is None)
        else:
            out = []
            for r in batch:
                wkt = to_wkt(parse_geometry(r[n_attr]))
                missing += not wkt
                out.append((*r[:n_attr], wkt))
        w.writerows(out)
        count += len(batch)
        progress.step(len(batch), f"{q.name}: {count:,}")
    return count, missing
