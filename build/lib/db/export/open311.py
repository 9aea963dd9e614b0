"""Open311 GeoReport v2 service requests, as the JSON array that ``GET requests.json`` returns.

Field by field (https://wiki.open311.org/GeoReport_v2/#get-service-requests):

| field | from |
|---|---|
| service_request_id | ``external_id``, else the event's ``uid`` |
| status | ``closed`` for closed, rejected and merged events, else ``open`` |
| status_notes | the lifecycle status in words (rejected / merged say so; merged names the event) |
| service_name | the category's name |
| service_code | the source's own code when the replica keeps it (``events.source_code``), else our category code |
| description | the description, else the title |
| agency_responsible | the department (or grid) the event is dispatched to |
| service_notice | null |
| requested_datetime / updated_datetime / expected_datetime | reported_at / updated_at / handle_due_at, ISO 8601 with offset (+08:00) |
| address, address_id, zipcode | the address; null; null |
| lat, long | WGS-84 |
| media_url | null |

With personal data allowed and asked for, ``reporter_name``, ``reporter_phone`` and
``reporter_id_no`` are added to each request (extension fields, outside the spec).
"""

from __future__ import annotations

import sqlite3
from typing import BinaryIO

import orjson

from app import timeutil
from db.export.core import PERSONAL_PREFIX, LayerQuery, Progress

CLOSED = frozenset({"closed", "rejected", "merged"})


def iso(text: str | None) -> str | None:
    """ISO 8601 with an explicit offset (stored values already are; anything else is normalised)."""
    if not text:
        return None
    if len(text) == 25 and text[10] == "T" and text[19] in "+-":
        return text
    try:
        return timeutil.parse(text).isoformat()
    except ValueError:
        return text


def request(rec: dict, lang: str = "zh") -> dict:
    status = rec.get("status")
    notes = rec.get("status_label") or status
    if status == "merged" and rec.get("merged_into"):
        notes = (
            f"Merged into event #{rec['merged_into']}"
            if lang == "en"
            else f"已合并到事件 #{rec['merged_into']}"
        )
    out = {
        "service_request_id": rec.get("external_id") or rec.get("uid"),
        "status": "closed" if status in CLOSED else "open",
        "status_notes": notes,
        "service_name": rec.get("category_name"),
        "service_code": rec.get("source_code") or rec.get("category"),
        "description": rec.get("description") or rec.get("title"),
        "agency_responsible": rec.get("assignee_name"),
        "service_notice": None,
        "requested_datetime": iso(rec.get("reported_at")),
        "updated_datetime": iso(rec.get("updated_at")),
        "expected_datetime": iso(rec.get("handle_due_at")),
        "address": rec.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": rec.get("lat"),
        "long": rec.get("lon"),
        "media_url": None,
    }
    for key, value in rec.items():
        if key.startswith(PERSONAL_PREFIX):
            out[key] = value
    return out


def write(conn: sqlite3.Connection, q: LayerQuery, fh: BinaryIO, progress: Progress, lang: str = "zh") -> int:
    names = [*q.names, "lon", "lat"]
    dumps = orjson.dumps
    count = 0
    fh.write(b"[\n")
    write = fh.write
    sep = b""
    for batch in q.rows(conn):
        for row in batch:
            write(sep)
            write(dumps(request(dict(zip(names, row, strict=True)), lang)))
            sep = b",\n"
        count += len(batch)
        progress.step(len(batch), f"open311: {count:,}")
    fh.write(b"\n]\n")
    return count
