"""GeoJSON (RFC 7946) FeatureCollection, written feature by feature with orjson.

WGS-84 longitude/latitude, no ``crs`` member; polygons follow the right-hand rule. Each
feature's ``id`` is the layer's key (events.id, grids.id, streets.code); ``properties`` hold
the attribute columns and their labels (status_label, category_name, street_name, …).
"""

from __future__ import annotations

import sqlite3
from typing import BinaryIO

import orjson

from db.export.core import LayerQuery, Progress, orient

HEAD = b'{"type":"FeatureCollection","features":[\n'
TAIL = b"\n]}\n"


def point(lon, lat) -> dict | None:
    if lon is None or lat is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


def parse_geometry(text) -> dict | None:
    if not text:
        return None
    try:
        geom = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(geom, dict) or "type" not in geom:
        return None
    return orient(geom)


def write(conn: sqlite3.Connection, q: LayerQuery, fh: BinaryIO, progress: Progress) -> tuple[int, int]:
    """Stream ``q`` into ``fh``; returns ``(features, features_without_geometry)``."""
    names = q.names
    n_attr = len(names)
    is_point = q.geom == "point"
    dumps = orjson.dumps
    count = missing = 0
    fh.write(HEAD)
    write = fh.write
    sep = b""
    for batch in q.rows(conn):
        for row in batch:
            geom = point(row[n_attr], row[n_attr + 1]) if is_point else parse_geometry(row[n_attr])
            if geom is None:
                missing += 1
            feature = {
                "type": "Feature",
                "id": row[0],
                "geometry": geom,
                "properties": dict(zip(names, row[:n_attr], strict=True)),
            }
            # one write per feature: orjson's output buffers are generous, so a batch of them held
            # in a list would cost tens of MiB; the file is buffered (1 MiB) anyway
            write(sep)
            write(dumps(feature))
            sep = b",\n"
        count += len(batch)
        progress.step(len(batch), f"{q.name}: {count:,}")
    fh.write(TAIL)
    return count, missing
