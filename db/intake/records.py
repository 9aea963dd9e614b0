"""What readers hand to the pipeline: batches of source records in columns of canonical fields.

Every reader turns its format into the same canonical fields (``FIELDS``) so one vectorised
validation step (:mod:`db.intake.prepare`) serves all formats. A record the reader could not even
split into fields (a truncated line, malformed JSON) arrives with ``errors[i]`` set and is
quarantined with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# canonical fields of an event-like record
FIELDS: tuple[str, ...] = (
    "ext_id",  # the source's own id (verbatim)
    "time",  # when it was reported
    "content",  # what the resident / sensor / inspector said
    "title",
    "code",  # the source's category code (service_code, 诉求类型, part/event code …)
    "code_alt",  # a second code to try (service_name, 小类 name …)
    "address",
    "name",  # reporter name (personal)
    "phone",  # reporter phone (personal)
    "lon",
    "lat",
    "datum",  # per-record datum (坐标系); empty → the file's --datum
    "status",  # the source's status text
    "updated",  # when the source last changed the record
)

#: Required fields and the location rule: coordinates (lon AND lat) or an address.
REQUIRED: tuple[str, ...] = ("ext_id", "time", "content")


class FormatError(ValueError):
    """The file is not in the format it was given as (or cannot be read at all): nothing imported."""


@dataclass
class RawBatch:
    """Consecutive source records, column-wise. ``items`` are 1-based record numbers in the file
    (the resume pointer and quarantine identity), ``lines`` the line each record starts on."""

    items: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    cols: dict[str, list] = field(default_factory=dict)
    extras: list[dict | None] | None = None  # per-record extra source fields for the log payload
    readings: list[dict] | None = None  # IoT: sensor readings to store (device_readings)
    input_records: int | None = None  # IoT: input records behind this batch (bursts fold many into one)
    clean: bool = False  # every text column holds stripped str ('' for missing)
    frame: object = None  # 12345 CSV fast path: a polars frame of the canonical fields (cols unused)
    text: str | None = None  # fast path: the block's text, one record per line (raws on demand)

    def __len__(self) -> int:
        return len(self.items)


def batch_from_dicts(items, lines, raws, errors, records: list[dict | None], extras=None) -> RawBatch:
    """A batch from per-record dicts of canonical fields (missing keys → None)."""
    cols = {k: [(r.get(k) if r else None) for r in records] for k in FIELDS}
    return RawBatch(list(items), list(lines), list(raws), list(errors), cols, extras)


def text(value) -> str:
    """A field value as stripped text ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()
