"""Editable mappings from a source's own codes onto the replica's catalogue and lifecycle.

- ``category_mappings`` (source, source_code COLLATE NOCASE → category): Open311 ``service_code``\\ s,
  12345 诉求类型 names, city-management part/event codes and names, IoT alarm types. Shipped in
  ``resources/catalogue/mappings.csv``; operators edit the table.
- ``status_mappings`` (source, source_status → lifecycle state), shipped in
  ``resources/catalogue/status_mappings.csv``.
- ``column_mappings`` (format, header → canonical field): a saved CSV header mapping, used when a
  file's headers differ from the expected ones.

Lookups are case-insensitive (``casefold``), so ``streetlight`` finds ``STREETLIGHT``.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from app import timeutil

CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "resources" / "catalogue"
MAPPINGS_CSV = CATALOGUE_DIR / "mappings.csv"
STATUS_MAPPINGS_CSV = CATALOGUE_DIR / "status_mappings.csv"


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [{k: (v.strip() if isinstance(v, str) else v) for k, v in r.items()} for r in csv.DictReader(fh)]


def shipped_category_mappings() -> list[dict]:
    return _rows(MAPPINGS_CSV)


def shipped_status_mappings() -> list[dict]:
    return _rows(STATUS_MAPPINGS_CSV)


def seed_mappings(conn: sqlite3.Connection, *, overwrite: bool = False) -> int:
    """Insert the shipped mappings; rows already present (possibly edited) are kept unless
    ``overwrite``. Returns the number of rows written. Runs inside the caller's transaction."""
    verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
    n = 0
    for r in shipped_category_mappings():
        cur = conn.execute(
            f"{verb} INTO category_mappings (source, source_code, category, note) VALUES (?, ?, ?, ?)",
            (r["source"], r["source_code"], r["category"], r.get("note") or None),
        )
        n += cur.rowcount
    for r in shipped_status_mappings():
        cur = conn.execute(
            f"{verb} INTO status_mappings (source, source_status, status, note) VALUES (?, ?, ?, ?)",
            (r["source"], r["source_status"], r["status"], r.get("note") or None),
        )
        n += cur.rowcount
    return n


def category_map(conn: sqlite3.Connection, source: str) -> dict[str, str]:
    """``casefold(source_code) → category`` for one source; categories missing from the
    replica's catalogue are left out (their records become 待分类)."""
    rows = conn.execute(
        "SELECT m.source_code, m.category FROM category_mappings m JOIN categories c ON c.code = m.category "
        "WHERE m.source = ?",
        (source,),
    ).fetchall()
    return {r[0].strip().casefold(): r[1] for r in rows}


def status_map(conn: sqlite3.Connection, source: str) -> dict[str, str]:
    rows = conn.execute("SELECT source_status, status FROM status_mappings WHERE source = ?", (source,))
    return {r[0].strip().casefold(): r[1] for r in rows}


def set_category_mapping(conn: sqlite3.Connection, source: str, source_code: str, category: str, *,
                         actor: str, note: str | None = None) -> None:  # fmt: skip
    """Add or change one mapping (inside the caller's write transaction)."""
    if conn.execute("SELECT 1 FROM categories WHERE code = ?", (category,)).fetchone() is None:
        raise ValueError(f"unknown category {category!r}")
    conn.execute(
        "INSERT INTO category_mappings (source, source_code, category, note, edited_by, edited_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(source, source_code) DO UPDATE SET category = excluded.category, "
        "note = coalesce(excluded.note, note), edited_by = excluded.edited_by, edited_at = excluded.edited_at",
        (source, source_code.strip(), category, note, actor, timeutil.now_iso()),
    )


def column_map(conn: sqlite3.Connection, fmt: str) -> dict[str, str]:
    """The saved header mapping of a format: ``header → canonical field``."""
    return {r[0]: r[1] for r in conn.execute("SELECT header, field FROM column_mappings WHERE format = ?", (fmt,))}


def save_column_map(conn: sqlite3.Connection, fmt: str, mapping: dict[str, str], *, actor: str) -> None:
    at = timeutil.now_iso()
    conn.executemany(
        "INSERT INTO column_mappings (format, header, field, edited_by, edited_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(format, header) DO UPDATE SET field = excluded.field, edited_by = excluded.edited_by, "
        "edited_at = excluded.edited_at",
        [(fmt, h, f, actor, at) for h, f in mapping.items()],
    )
