"""Streaming the records of a JSON document without loading it (stdlib only).

Accepted shapes: a top-level array of records; an object holding the array under a known key
(``{"service_requests": [...]}``, ``{"code": 0, "data": {"list": [...]}}`` …); a single record
object; concatenated objects or JSON lines. Each record is decoded with the C decoder
(``raw_decode``) from a sliding buffer. A record that fails to decode is cut out with a
string-aware bracket scan and reported (``malformed JSON: …``) while the rest goes on; a record
cut off by the end of the file is reported as ``truncated record``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TextIO

from db.intake.records import FormatError

CHUNK = 1 << 20
MAX_RECORD = 64 << 20  # a record larger than this is reported malformed rather than buffered on
_WS = re.compile(r"[ \t\r\n]*")
_SCAN = re.compile(r'[\\"{}\[\],]')
_DECODER = json.JSONDecoder()


class JsonStream:
    """Iterate ``(line, raw, record | None, error | None)`` over the records of a JSON text."""

    def __init__(self, text: TextIO, keys: tuple[str, ...], chunk: int = CHUNK) -> None:
        self.f = text
        self.keys = {k.casefold() for k in keys}
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._line = 1
        self._line_pos = 0
        self._pin: int | None = None  # a position compaction must keep (a rewind point)

    # -- buffer ---------------------------------------------------------------------------------
    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(self.chunk)
        if not data:
            self.eof = True
            return False
        keep = self.pos if self._pin is None else min(self.pos, self._pin)
        if keep > self.chunk:  # drop what is consumed
            if self._line_pos < keep:
                self._line += self.buf.count("\n", self._line_pos, keep)
                self._line_pos = keep
            self.buf = self.buf[keep:]
            self._line_pos -= keep
            self.pos -= keep
            if self._pin is not None:
                self._pin -= keep
        self.buf += data
        return True

    def line_at(self, p: int) -> int:
        if p > self._line_pos:
            self._line += self.buf.count("\n", self._line_pos, p)
            self._line_pos = p
        return self._line

    def _peek(self) -> str:
        """Skip whitespace; the next character ('' at the end of the text)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _scan_end(self, start: int) -> int | None:
        """End of the JSON value starting at ``start`` by bracket counting (strings respected);
        ``None`` if the buffer ends first."""
        buf = self.buf
        depth = 0
        i = start
        in_str = False
        n = len(buf)
        while i < n:
            if in_str:
                j = buf.find('"', i)
                k = buf.find("\\", i)
                if j < 0:
                    return None
                if 0 <= k < j:
                    i = k + 2
                    continue
                in_str = False
                i = j + 1
                if depth == 0:
                    return i
                continue
            m = _SCAN.search(buf, i)
            if m is None:
                return None
            c = m.group()
            i = m.end()
            if c == '"':
                in_str = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    return i
                if depth < 0:
                    return i - 1
            elif c == "," and depth == 0:
                return i - 1
        return None

    def _value(self):
        """Decode the value at ``pos``: ``(raw, obj, None)`` or ``(raw, None, error)``."""
        while True:
            start = self.pos
            try:
                obj, end = _DECODER.raw_decode(self.buf, start)
                if end >= len(self.buf) and not self.eof and self._fill():
                    continue  # a number or literal may go on in the next chunk
                self.pos = end
                return self.buf[start:end], obj, None
            except json.JSONDecodeError as exc:
                end = self._scan_end(start)
                if end is not None and end > start:
                    self.pos = end
                    return self.buf[start:end], None, f"malformed JSON: {exc.msg} (column {exc.pos - start + 1})"
                if len(self.buf) - start > MAX_RECORD and end is None:
                    raw = self.buf[start : start + 2000]
                    self.pos = len(self.buf)
                    return raw, None, f"malformed JSON: record larger than {MAX_RECORD >> 20} MiB"
                if self._fill():
                    continue
                raw = self.buf[start:]
                self.pos = len(self.buf)
                return raw, None, "truncated record"

    # -- document shapes -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, str, object, str | None]]:
        c = self._peek()
        if c == "":
            raise FormatError("empty file: no JSON document")
        if c not in "[{":
            raise FormatError(f"not a JSON document (starts with {self.buf[self.pos : self.pos + 20]!r})")
        if c == "[":
            self.pos += 1
            yield from self._array()
        else:
            yield from self._object_or_records()
        # concatenated objects / JSON lines after the first value
        while True:
            c = self._peek()
            if c == "":
                return
            if c in ",]}":
                self.pos += 1
                continue
            line = self.line_at(self.pos)
            raw, obj, err = self._value()
            yield line, raw, obj, err

    def _array(self) -> Iterator[tuple[int, str, object, str | None]]:
        while True:
            c = self._peek()
            if c == "]":
                self.pos += 1
                return
            if c == "":
                return  # unterminated array after a complete record: nothing is lost
            if c == ",":
                self.pos += 1
                continue
            line = self.line_at(self.pos)
            raw, obj, err = self._value()
            yield line, raw, obj, err

    def _object_or_records(self) -> Iterator[tuple[int, str, object, str | None]]:
        """At '{': stream a records array found under a known key (also nested in ``data``),
        else the object itself is one record."""
        start_line = self.line_at(self.pos)
        self._pin = self.pos
        try:
            found = yield from self._scan_object(depth=0)
            start = self._pin
        finally:
            self._pin = None
        if not found:
            self.pos = start
            self._line, self._line_pos = start_line, start
            raw, obj, err = self._value()
            yield start_line, raw, obj, err

    def _scan_object(self, depth: int):
        """Walk an object's keys looking for a records array; True if one was streamed."""
        if depth > 3:
            return False
        self.pos += 1  # '{'
        found = False
        while True:
            c = self._peek()
            if c == "}":
                self.pos += 1
                return found
            if c == ",":
                self.pos += 1
                continue
            if c != '"':
                if found:
                    return True
                return False
            _, key, err = self._value()
            if err or not isinstance(key, str):
                return found
            if self._peek() != ":":
                return found
            self.pos += 1
            c = self._peek()
            if c == "[" and key.casefold() in self.keys:
                self.pos += 1
                yield from self._array()
                found = True
            elif c == "{" and key.casefold() in self.keys | {"data", "result", "body"}:
                if (yield from self._scan_object(depth + 1)):
                    found = True
            else:
                _, _, err = self._value()
                if err:
                    return found
