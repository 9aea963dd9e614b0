"""Open311 GeoReport v2 service requests, JSON or XML (detected from the content).

Fields follow the spec's names: ``service_request_id``, ``status`` (open|closed), ``status_notes``,
``service_name``, ``service_code``, ``description``, ``agency_responsible``, ``service_notice``,
``requested_datetime``, ``updated_datetime``, ``expected_datetime``, ``address``, ``address_id``,
``zipcode``, ``lat``, ``long``, ``media_url``. JSON is the spec's top-level array (or an object
holding it under ``service_requests``/``requests``); XML is ``<service_requests><request>…``.
Coordinates are WGS-84 per the spec unless ``--datum`` says otherwise (or an extension field
``datum``/``coordinate_system`` per request).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from db.intake.jsonstream import JsonStream
from db.intake.records import FormatError, RawBatch, batch_from_dicts, text
from db.intake.textio import REPLACEMENT, FeedFile, decode_errors_seen

FORMAT = "open311"
SOURCE = "open311"
LABELS = {
    "ext_id": "service_request_id",
    "time": "requested_datetime",
    "content": "description",
    "code": "service_code",
    "code_alt": "service_name",
    "address": "address",
    "lon": "long",
    "lat": "lat",
    "datum": "datum",
    "status": "status",
    "updated": "updated_datetime",
    "title": "service_name",
    "name": "first_name/last_name",
    "phone": "phone",
}
EXTRA_FIELDS = ("status_notes", "agency_responsible", "service_notice", "expected_datetime", "address_id",
                "zipcode", "media_url")  # fmt: skip
ARRAY_KEYS = ("service_requests", "requests", "service_request", "data", "items", "records")
_DECL_ENC = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def to_fields(rec: dict) -> tuple[dict, dict]:
    """(canonical fields, extra fields) of one service request."""
    g = rec.get
    name = " ".join(text(g(k)) for k in ("first_name", "last_name") if text(g(k))) or None
    fields = {
        "ext_id": text(g("service_request_id")),
        "time": g("requested_datetime"),
        "content": text(g("description")) or text(g("service_name")),
        "title": text(g("service_name")) or None,
        "code": text(g("service_code")),
        "code_alt": text(g("service_name")),
        "address": text(g("address")),
        "name": name,
        "phone": text(g("phone")) or None,
        "lon": g("long", g("lon")),
        "lat": g("lat"),
        "datum": text(g("datum") or g("coordinate_system") or g("coord_sys")),
        "status": text(g("status")),
        "updated": g("updated_datetime"),
    }
    extra = {k: g(k) for k in EXTRA_FIELDS if g(k) not in (None, "", [])}
    return fields, extra


class Open311Reader:
    format = FORMAT
    source = SOURCE
    labels = LABELS

    def __init__(self, feed: FeedFile) -> None:
        self.feed = feed
        self.batch_size = 5_000
        head = feed.sample.lstrip(b"\xef\xbb\xbf \t\r\n")
        if head[:1] == b"<":
            self.kind = "xml"
            m = _DECL_ENC.match(feed.sample)
            if m and feed.detected and not feed.sample.startswith(b"\xef\xbb\xbf"):
                from db.intake.textio import check_encoding

                try:
                    feed.encoding = check_encoding(m.group(1).decode("ascii"))
                except ValueError:
                    pass
        elif head[:1] in (b"[", b"{"):
            self.kind = "json"
        elif not head:
            raise FormatError("empty file: no service requests")
        else:
            raise FormatError(
                f"not Open311 GeoReport v2 JSON or XML (starts with {head[:40].decode('utf-8', 'ignore')[:12]!r})"
            )

    def batches(self, skip_before: int = 1) -> Iterator[RawBatch]:
        it = self._json() if self.kind == "json" else self._xml()
        buf: list[tuple] = []
        item = 0
        for line, raw, rec, err in it:
            item += 1
            if item < skip_before:
                continue
            buf.append((item, line, raw, rec, err))
            if len(buf) >= self.batch_size:
                yield self._batch(buf)
                buf = []
        if buf:
            yield self._batch(buf)
        self.total_items = item

    def _batch(self, buf: list[tuple]) -> RawBatch:
        records, extras, errors = [], [], []
        for _, _, _, rec, err in buf:
            if err is None and not isinstance(rec, dict):
                err = f"not a service request object: {type(rec).__name__}"
            if err is None:
                fields, extra = to_fields(rec)
                records.append(fields)
                extras.append(extra or None)
            else:
                records.append(None)
                extras.append(None)
            errors.append(err)
        return batch_from_dicts([b[0] for b in buf], [b[1] for b in buf], [b[2] for b in buf], errors, records, extras)

    def _json(self) -> Iterator[tuple]:
        before = decode_errors_seen()
        for line, raw, rec, err in JsonStream(self.feed.text(newline=""), ARRAY_KEYS):
            if err is None and REPLACEMENT in raw and decode_errors_seen() != before:
                err = f"encoding error: bytes that are not {self.feed.encoding} (try --encoding)"
            yield line, raw, rec, err

    def _xml(self) -> Iterator[tuple]:
        parser = ET.XMLPullParser(events=("start", "end"))
        stream = self.feed.text(newline=None)
        depth = 0
        stack: list = []
        open_req = None
        n = 0
        while True:
            chunk = stream.read(1 << 20)
            try:
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
                for event, el in parser.read_events():
                    tag = _local(el.tag)
                    if event == "start":
                        depth += 1
                        stack.append(el)
                        if tag == "request" and open_req is None:
                            open_req = el
                        continue
                    depth -= 1
                    stack.pop()
                    if el is open_req:
                        open_req = None
                        n += 1
                        rec = {_local(c.tag): (c.text or "").strip() for c in el}
                        raw = ET.tostring(el, encoding="unicode").strip()
                        el.clear()
                        if stack:
                            stack[-1].remove(el)  # constant memory however long the file
                        yield n, raw, rec, None
            except ET.ParseError as exc:
                line = exc.position[0] if exc.position else 0
                if open_req is not None:
                    raw = ET.tostring(open_req, encoding="unicode").strip()
                    reason = "truncated record" if not chunk else f"malformed XML: {exc}"
                    yield n + 1, raw, None, reason
                elif chunk or n == 0:
                    if n == 0 and depth == 0:
                        raise FormatError(f"not Open311 XML: {exc}") from None
                    yield n + 1, "", None, f"malformed XML: {exc}; the rest of the file (from line {line}) could not be read"
                return
            if not chunk:
                return
