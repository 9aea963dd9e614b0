"""Opening feed files for streaming: encoding detection, decode-error marking, progress in bytes.

Detection: a UTF-8 BOM → ``utf-8-sig``; a UTF-16 BOM → ``utf-16``; else the first 256 KiB decode
as strict UTF-8 → ``utf-8``; else ``gb18030`` (a superset of GBK and GB2312, which is what
Chinese Excel and older government systems write). ``--encoding`` overrides.

Undecodable bytes never stop a read: they become U+FFFD through the ``onemap_intake_mark`` error
handler, which also counts them, so a reader can quarantine the records that contain them
("encoding error") and carry on with the rest.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import threading
from pathlib import Path

SAMPLE_BYTES = 256 * 1024
ERRORS = "onemap_intake_mark"
REPLACEMENT = "\ufffd"

_errors_lock = threading.Lock()
_error_count = [0]


def _mark(exc: UnicodeError):
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    with _errors_lock:
        _error_count[0] += 1
    return REPLACEMENT, exc.end


codecs.register_error(ERRORS, _mark)


def decode_errors_seen() -> int:
    """How many undecodable byte runs this process has met so far (any reader)."""
    return _error_count[0]


class EncodingError(ValueError):
    """An ``--encoding`` name Python does not know."""


def check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise EncodingError(f"unknown encoding: {name!r} (e.g. utf-8, gbk, gb18030)") from None


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """The encoding of a file from its first bytes (``complete``: the sample is the whole file)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class FeedFile:
    """A feed file opened for one streaming pass."""

    def __init__(self, path: str | os.PathLike, encoding: str | None = None) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self._fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        sample = self._fh.read(SAMPLE_BYTES)
        self._fh.seek(0)
        self.sample = sample
        self.detected = encoding is None
        self.encoding = check_encoding(encoding) if encoding else detect_encoding(sample, complete=len(sample) < SAMPLE_BYTES)
        if self.encoding in ("utf-8", "utf_8") and sample.startswith(codecs.BOM_UTF8):
            self.encoding = "utf-8-sig"
        self.ends_with_newline = True
        if self.size:
            self._fh.seek(self.size - 1)
            self.ends_with_newline = self._fh.read(1) in (b"\n", b"\r")
            self._fh.seek(0)

    def text(self, *, newline: str | None = "") -> io.TextIOWrapper:
        """The file as text (universal newlines kept untranslated, as the csv module wants)."""
        return io.TextIOWrapper(self._fh, encoding=self.encoding, errors=ERRORS, newline=newline)

    def binary(self):
        return self._fh

    @property
    def position(self) -> int:
        try:
            return self._fh.tell()
        except (OSError, ValueError):
            return self.size

    @property
    def fraction(self) -> float:
        return min(1.0, self.position / self.size) if self.size else 1.0

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass

    def __enter__(self) -> FeedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
