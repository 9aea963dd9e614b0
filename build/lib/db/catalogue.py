"""The shipped event catalogue: categories and departments (Qt-free).

``resources/catalogue/categories.csv`` lists event categories in the spirit of GB/T 30428
(digital city management parts and events) and the 12345 hotline classification: a two-level
tree of groups (``parent`` empty) and leaf categories, each with its class (ordinary /
emergency / assigned), default department, response limit in minutes, handling deadline
(``handle_limit`` in ``handle_unit``: working_hours, working_days or calendar hours) and
whether the district's 10-minute grid-worker arrival clock applies.

``resources/catalogue/departments.csv`` lists generic functional departments (code, name,
English name, kind). They are functions, not real named offices.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
CATALOGUE_DIR = RESOURCES / "catalogue"
CATEGORIES_CSV = CATALOGUE_DIR / "categories.csv"
DEPARTMENTS_CSV = CATALOGUE_DIR / "departments.csv"

UNCLASSIFIED = "UNCLASSIFIED"

CATEGORY_FIELDS = (
    "code",
    "parent",
    "name_zh",
    "name_en",
    "class",
    "default_department",
    "response_limit_min",
    "handle_limit",
    "handle_unit",
    "arrival_clock",
)
DEPARTMENT_FIELDS = ("code", "name", "name_en", "kind")

CLASSES = frozenset({"ordinary", "emergency", "assigned"})
HANDLE_UNITS = frozenset({"working_hours", "working_days", "hours"})
DEPARTMENT_KINDS = frozenset({"law", "emergency", "regulator", "municipal", "social", "utility", "other"})

_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*$")
_CONVERTERS = {"response_limit_min": int, "handle_limit": float, "arrival_clock": int}


def _read(path: Path, converters: dict | None = None) -> list[dict]:
    converters = converters or {}
    rows: list[dict] = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        for raw in reader:
            row: dict = {}
            for key, value in raw.items():
                if key is None:  # surplus cells beyond the header: keep them visible to validation
                    row["_extra"] = value
                    continue
                value = value.strip() if isinstance(value, str) else value
                if value in ("", None):
                    row[key] = None
                elif key in converters:
                    try:
                        row[key] = converters[key](value)
                    except ValueError:
                        raise ValueError(
                            f"{Path(path).name} line {reader.line_num}: {key}={value!r} is not a number"
                        ) from None
                else:
                    row[key] = value
            rows.append(row)
    return rows


def load_categories(path: Path | None = None) -> list[dict]:
    """Rows of categories.csv in file order (parents before children); empty cells are ``None``."""
    return _read(path or CATEGORIES_CSV, _CONVERTERS)


def load_departments(path: Path | None = None) -> list[dict]:
    """Rows of departments.csv in file order; empty cells are ``None``."""
    return _read(path or DEPARTMENTS_CSV)


def leaf_codes(categories: list[dict]) -> list[str]:
    """Codes that are no other row's parent (includes ``UNCLASSIFIED``), in file order."""
    parents = {c.get("parent") for c in categories if c.get("parent")}
    return [c["code"] for c in categories if c.get("code") and c["code"] not in parents]


def by_code(rows: list[dict]) -> dict[str, dict]:
    return {r["code"]: r for r in rows if r.get("code")}


def validate_catalogue(categories: list[dict], departments: list[dict]) -> list[str]:
    """Human-readable problems with the catalogue; an empty list when it is consistent."""
    problems: list[str] = []

    dept_codes: set[str] = set()
    for i, d in enumerate(departments, start=2):
        code = d.get("code")
        if "_extra" in d:
            problems.append(f"departments.csv line {i}: more cells than columns")
        if missing := [f for f in DEPARTMENT_FIELDS if f not in d]:
            problems.append(f"departments.csv line {i}: missing columns {', '.join(missing)}")
        if not code:
            problems.append(f"departments.csv line {i}: empty code")
            continue
        if code in dept_codes:
            problems.append(f"department {code}: duplicate code")
        dept_codes.add(code)
        if not d.get("name"):
            problems.append(f"department {code}: empty name")
        if d.get("kind") not in DEPARTMENT_KINDS:
            problems.append(f"department {code}: bad kind {d.get('kind')!r}")

    seen: set[str] = set()
    all_codes = {c.get("code") for c in categories}
    for i, c in enumerate(categories, start=2):
        code = c.get("code")
        if "_extra" in c:
            problems.append(f"categories.csv line {i}: more cells than columns")
        if missing := [f for f in CATEGORY_FIELDS if f not in c]:
            problems.append(f"categories.csv line {i}: missing columns {', '.join(missing)}")
        if not code:
            problems.append(f"categories.csv line {i}: empty code")
            continue
        if code in seen:
            problems.append(f"category {code}: duplicate code")
        if not _CODE_RE.match(code):
            problems.append(f"category {code}: code is not a short upper-case ASCII code")
        parent = c.get("parent")
        if parent:
            if parent not in all_codes:
                problems.append(f"category {code}: missing parent {parent}")
            elif parent not in seen:
                problems.append(f"category {code}: parent {parent} must come before its children")
            if parent == code:
                problems.append(f"category {code}: is its own parent")
        seen.add(code)
        if not c.get("name_zh") or not c.get("name_en"):
            problems.append(f"category {code}: missing name_zh or name_en")
        if c.get("class") not in CLASSES:
            problems.append(f"category {code}: bad class {c.get('class')!r}")
        dept = c.get("default_department")
        if dept is not None and dept not in dept_codes:
            problems.append(f"category {code}: unknown department {dept}")
        if dept is None and code != UNCLASSIFIED:
            problems.append(f"category {code}: no default department")
        if c.get("handle_unit") not in HANDLE_UNITS:
            problems.append(f"category {code}: bad handle_unit {c.get('handle_unit')!r}")
        response = c.get("response_limit_min")
        if not isinstance(response, int) or response <= 0:
            problems.append(f"category {code}: response_limit_min must be a positive integer")
        limit = c.get("handle_limit")
        if not isinstance(limit, int | float) or limit <= 0:
            problems.append(f"category {code}: handle_limit must be positive")
        if c.get("arrival_clock") not in (0, 1):
            problems.append(f"category {code}: arrival_clock must be 0 or 1")

    unclassified = [c for c in categories if c.get("code") == UNCLASSIFIED]
    if len(unclassified) != 1:
        problems.append(f"catalogue needs exactly one {UNCLASSIFIED} row, found {len(unclassified)}")
    else:
        u = unclassified[0]
        if u.get("parent") or u.get("default_department") or u.get("class") != "ordinary":
            problems.append(f"{UNCLASSIFIED} must be a top-level ordinary row with no default department")
        if u.get("arrival_clock") != 0:
            problems.append(f"{UNCLASSIFIED} must not start the arrival clock")
    return problems
