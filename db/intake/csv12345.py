"""12345 hotline work orders (工单) exported as CSV.

Typical headers: 工单编号, 来电时间, 诉求类型, 诉求内容, 地址, 联系人, 联系电话, 经度, 纬度, 坐标系 (the
datum of that row), optionally 状态, 标题, 更新时间. Common variants (工单号, 受理时间, 问题描述 …)
are recognised; anything else is mapped with a saved header mapping (``--mapping FILE``, a JSON
object ``{"file header": "canonical header"}``, stored in ``column_mappings`` for next time).

Streaming: ``csv.reader`` over the decoded text, one batch of rows at a time, the rows turned into
columns with one ``zip``. A record's raw text is the physical line(s) it came from. A last line
that ends without a newline and has too few cells is a "truncated line"; other rows with a wrong
number of cells are quarantined as such.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from db.intake.fast12345 import _UNSAFE, clean_block, clean_bytes, read_block
from db.intake.records import FIELDS, FormatError, RawBatch
from db.intake.textio import ERRORS, REPLACEMENT, FeedFile, decode_errors_seen

BLOCK_CHARS = 1 << 20
MIN_FAST_RUN = 32  # clean lines in a row worth a column-wise read inside an unclean block
FORMAT = "12345-csv"
SOURCE = "hotline_12345"

#: canonical field → the standard header (used in reasons: "missing field: 工单编号")
STANDARD_HEADERS: dict[str, str] = {
    "ext_id": "工单编号",
    "time": "来电时间",
    "code": "诉求类型",
    "content": "诉求内容",
    "address": "地址",
    "name": "联系人",
    "phone": "联系电话",
    "lon": "经度",
    "lat": "纬度",
    "datum": "坐标系",
    "status": "状态",
    "title": "标题",
    "updated": "更新时间",
    "code_alt": "诉求子类",
}

ALIASES: dict[str, tuple[str, ...]] = {
    "ext_id": ("工单编号", "工单号", "工单编码", "工单id", "编号", "order_id", "ticket_id", "id"),
    "time": ("来电时间", "受理时间", "来电日期", "登记时间", "创建时间", "诉求时间", "report_time", "time", "created_at"),
    "code": ("诉求类型", "诉求分类", "问题类型", "问题分类", "事项类型", "诉求类别", "类型", "category", "type"),
    "code_alt": ("诉求子类", "问题子类", "子类", "subcategory"),
    "content": ("诉求内容", "诉求描述", "问题描述", "来电内容", "工单内容", "内容", "描述", "content", "description"),
    "title": ("标题", "诉求标题", "工单标题", "title"),
    "address": ("地址", "事发地址", "诉求地址", "事发地点", "发生地点", "地点", "address"),
    "name": ("联系人", "来电人", "诉求人", "姓名", "name", "contact"),
    "phone": ("联系电话", "来电号码", "联系方式", "电话", "手机", "phone", "mobile"),
    "lon": ("经度", "lon", "lng", "long", "longitude", "x"),
    "lat": ("纬度", "lat", "latitude", "y"),
    "datum": ("坐标系", "坐标类型", "坐标系统", "datum", "crs", "coord_sys"),
    "status": ("状态", "工单状态", "办理状态", "处理状态", "status"),
    "updated": ("更新时间", "最后更新时间", "办结时间", "结案时间", "updated", "updated_at"),
}
_ALIAS_INDEX = {a.casefold(): key for key, names in ALIASES.items() for a in names}


def resolve_field(name: str) -> str | None:
    """A mapping target (canonical key, standard header or alias) → canonical key."""
    n = str(name).strip()
    if n in FIELDS:
        return n
    return _ALIAS_INDEX.get(n.casefold())


def _clean_header(h: str) -> str:
    return h.replace("\ufeff", "").strip().strip('"').strip()


def _cut_lines(txt, k: int):
    """``txt`` split after its ``k``-th line: (first k lines, the rest), without the newline between."""
    if isinstance(txt, bytes):
        import numpy as np

        nl = np.flatnonzero(np.frombuffer(txt, dtype=np.uint8) == 10)
        cut = int(nl[k - 1])
        if cut and txt[cut - 1] == 13:  # CRLF: the CR belongs to the line end
            return txt[: cut - 1], txt[cut + 1 :]
    else:
        cut = -1
        for _ in range(k):
            cut = txt.index("\n", cut + 1)
    return txt[:cut], txt[cut + 1 :]


class FastBlock:
    """Consecutive clean lines, one record each, read column-wise."""

    __slots__ = ("first_line", "text", "n")

    def __init__(self, first_line: int, text: str, n: int) -> None:
        self.first_line, self.text, self.n = first_line, text, n


class Csv12345Reader:
    format = FORMAT
    source = SOURCE
    fast = True  # clean blocks go column-wise (db.intake.fast12345); False: per record

    def __init__(self, feed: FeedFile, *, mapping: dict[str, str] | None = None,
                 saved_mapping: dict[str, str] | None = None) -> None:  # fmt: skip
        self.feed = feed
        self._errors_before = decode_errors_seen()
        self.mapping = {(_clean_header(k)): v for k, v in (mapping or {}).items()}
        self.saved = {(_clean_header(k)): v for k, v in (saved_mapping or {}).items()}
        self.batch_size = 10_000
        self.labels: dict[str, str] = dict(STANDARD_HEADERS)
        self._text = feed.text(newline="")
        self._line = 0
        first = self._first_line()
        if first is None:
            raise FormatError("empty file: no header row")
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        self._delimiter = delimiter
        self._line = self._header_line
        header = next(csv.reader([first], delimiter=delimiter))
        self.header = [_clean_header(h) for h in header]
        self.columns = self._resolve(self.header)
        self.ncols = len(self.header)

    def _binary_start(self):
        """The file's binary handle positioned after the header, when the rest can be read as raw
        UTF-8 (``utf-8``/``utf-8-sig``, header lines without a lone CR); else None (text mode)."""
        if self.feed.encoding.replace("_", "-").lower() not in ("utf-8", "utf-8-sig", "utf8"):
            return None
        sample = self.feed.sample
        start = 3 if sample.startswith(b"\xef\xbb\xbf") else 0
        pos = start
        for _ in range(self._header_line):
            j = sample.find(b"\n", pos)
            if j < 0:
                return None
            pos = j + 1
        head = sample[start:pos].decode("utf-8", errors="replace")
        if head.count("\r") != head.count("\r\n") or "\ufffd" in head:
            return None
        fh = self.feed.binary()
        fh.seek(pos)
        return fh

    def _first_line(self) -> str | None:
        n = 0
        for line in self._text:
            n += 1
            if line.strip():
                self._header_line = n
                return line
        return None

    def _resolve(self, header: list[str]) -> dict[str, int]:
        cols: dict[str, int] = {}
        for j, h in enumerate(header):
            target = None
            if h in self.mapping:
                target = resolve_field(self.mapping[h])
                if target is None:
                    raise FormatError(f"mapping: {h!r} → {self.mapping[h]!r} is not a known field")
            elif h in self.saved:
                target = resolve_field(self.saved[h])
            if target is None:
                target = _ALIAS_INDEX.get(h.casefold())
            if target is not None and target not in cols:
                cols[target] = j
                self.labels[target] = h
        missing = [STANDARD_HEADERS[k] for k in ("ext_id", "time", "content") if k not in cols]
        if not (("lon" in cols and "lat" in cols) or "address" in cols):
            missing.append("经度/纬度 or 地址")
        if missing:
            shown = ", ".join(header[:12]) + (" …" if len(header) > 12 else "")
            raise FormatError(
                f"not a 12345 work-order CSV: no column for {', '.join(missing)} (headers: {shown}); "
                "map the headers with --mapping FILE"
            )
        return cols

    def __iter__(self) -> Iterator[RawBatch]:
        return self.batches()

    def _records(self, fast: bool = False) -> Iterator:
        """Blocks of ``(start line, raw text, cells, structural error)``, as lists (one list per
        block of text). Lines without a quote character are split with ``str.split`` (the common
        case, several times faster than ``csv``); a line with quotes goes through ``csv``, joined
        with the following lines while a quoted field is open. With ``fast``, a clean block (see
        :func:`db.intake.fast12345.clean_block`) comes as a :class:`FastBlock` instead."""
        text = self._text
        delim = self._delimiter
        ncols = self.ncols
        line_no = self._line
        carry = ""
        errors_before = self._errors_before
        braw = self._binary_start() if fast else None
        bcarry = b""
        bdelim = delim.encode()
        while True:
            if braw is not None:  # UTF-8 bytes straight to the column reader while blocks are clean
                chunk_b = braw.read(BLOCK_CHARS)
                final = not chunk_b
                data_b = bcarry + chunk_b
                if not final:
                    cut = data_b.rfind(b"\n")
                    if cut < 0:
                        bcarry = data_b
                        continue
                    bcarry = data_b[cut + 1 :]
                    data_b = data_b[: cut - 1] if cut and data_b[cut - 1 : cut] == b"\r" else data_b[:cut]
                else:
                    bcarry = b""
                    if data_b.endswith(b"\n"):
                        data_b = data_b[:-2] if data_b.endswith(b"\r\n") else data_b[:-1]
                    elif not data_b and not carry:
                        return
                if not carry:
                    nfast = clean_bytes(data_b, bdelim, ncols)
                    if nfast:
                        yield FastBlock(line_no + 1, data_b, nfast)
                        line_no += nfast
                        if final:
                            return
                        continue
                data = carry + data_b.decode(self.feed.encoding, errors=ERRORS)
                carry = ""
            else:
                chunk = text.read(BLOCK_CHARS)
                final = not chunk
                data = carry + chunk
            if braw is not None:
                if final and data.endswith("\n"):
                    data = data[:-1]
            elif not final:
                cut = data.rfind("\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                data = data[: cut - 1] if cut and data[cut - 1] == "\r" else data[:cut]  # CRLF: one line end
            else:
                carry = ""
                if data.endswith("\n"):
                    data = data[:-2] if data.endswith("\r\n") else data[:-1]
                elif not data:
                    return
            if "\r" in data:
                data = data.replace("\r\n", "\n").replace("\r", "\n")
            if fast:
                nfast = clean_block(data, delim, ncols)
                if nfast:
                    yield FastBlock(line_no + 1, data, nfast)
                    line_no += nfast
                    if final:
                        return
                    continue
            lines = data.split("\n")
            marked = REPLACEMENT in data and decode_errors_seen() != errors_before
            if fast and '"' not in data:
                # line by line: runs of clean lines column-wise, the others per record
                unsafe = _UNSAFE.search
                want = ncols - 1
                flags = [ln.count(delim) == want and not unsafe(ln) for ln in lines]
                nl = len(lines)
                a = 0
                while a < nl:
                    b = a + 1
                    while b < nl and flags[b] == flags[a]:
                        b += 1
                    if flags[a] and b - a >= MIN_FAST_RUN:
                        yield FastBlock(line_no + 1 + a, "\n".join(lines[a:b]), b - a)
                    else:
                        while b < nl and not (flags[b] and sum(flags[b : b + MIN_FAST_RUN]) >= MIN_FAST_RUN):
                            b += 1
                        yield self._plain(lines[a:b], line_no + a, marked, final and b == nl)
                    a = b
                line_no += nl
                if final:
                    return
                continue
            out_line: list[int] = []
            out_raw: list[str] = []
            out_cells: list = []
            out_err: list = []
            if '"' not in data:
                rows = [ln.split(delim) for ln in lines]
                for k, (ln, row) in enumerate(zip(lines, rows, strict=True)):
                    err = None
                    if len(row) != ncols:
                        row, err = _fit_cells(ln, row, ncols)
                        if row is None:
                            continue  # blank line
                    out_line.append(line_no + 1 + k)
                    out_raw.append(ln)
                    out_cells.append(row)
                    out_err.append(err)
                line_no += len(lines)
            else:
                k = 0
                nl = len(lines)
                while k < nl:
                    ln = lines[k]
                    start = line_no + 1
                    if '"' not in ln:
                        row = ln.split(delim)
                        k += 1
                        line_no += 1
                        if len(row) == 1 and not ln.strip():
                            continue
                    else:
                        j = k
                        quotes = ln.count('"')
                        while quotes % 2 and j + 1 < nl:
                            j += 1
                            quotes += lines[j].count('"')
                        if quotes % 2 and not final:  # the record goes on in the next block
                            carry = "\n".join(lines[k:]) + "\n" + carry
                            break
                        ln = "\n".join(lines[k : j + 1])
                        line_no += j + 1 - k
                        k = j + 1
                        try:
                            row = next(csv.reader([ln], delimiter=delim, strict=True))
                        except (csv.Error, StopIteration) as exc:
                            row = None
                            err = "truncated line" if quotes % 2 and final else f"malformed CSV: {exc}"
                    err = None
                    if row is None:
                        err = "truncated line" if final and k >= nl else "malformed CSV: unbalanced quotes"
                    elif len(row) != ncols:
                        if len(row) > ncols and not any(c.strip() for c in row[ncols:]):
                            row = row[:ncols]
                        else:
                            n = len(row)
                            err = f"too few fields: {n} of {ncols}" if n < ncols else f"too many fields: {n} of {ncols}"
                    out_line.append(start)
                    out_raw.append(ln)
                    out_cells.append(row)
                    out_err.append(err)
            self._mark_errors(out_raw, out_err, marked, final)
            yield out_line, out_raw, out_cells, out_err
            if final:
                return

    def _mark_errors(self, out_raw: list[str], out_err: list, marked: bool, last: bool) -> None:
        """Undecodable bytes name the encoding; an unfinished last record of the file is "truncated line"."""
        if marked:
            for i, raw in enumerate(out_raw):
                if out_err[i] is None and REPLACEMENT in raw:
                    out_err[i] = f"encoding error: bytes that are not {self.feed.encoding} (try --encoding)"
        if last and out_raw and out_err[-1] is not None and out_err[-1].startswith(("too few", "malformed")):
            if not self.feed.ends_with_newline:
                out_err[-1] = "truncated line"

    def _plain(self, lines: list[str], line_no: int, marked: bool, last: bool) -> tuple:
        """Records of quote-free lines, per record (as the block loop of :meth:`_records` does)."""
        delim, ncols = self._delimiter, self.ncols
        out_line: list[int] = []
        out_raw: list[str] = []
        out_cells: list = []
        out_err: list = []
        for k, ln in enumerate(lines):
            row = ln.split(delim)
            err = None
            if len(row) != ncols:
                row, err = _fit_cells(ln, row, ncols)
                if row is None:
                    continue  # blank line
            out_line.append(line_no + 1 + k)
            out_raw.append(ln)
            out_cells.append(row)
            out_err.append(err)
        self._mark_errors(out_raw, out_err, marked, last)
        return out_line, out_raw, out_cells, out_err

    def batches(self, skip_before: int = 1) -> Iterator[RawBatch]:
        """Batches of about ``self.batch_size`` records; records numbered below ``skip_before``
        are read but not returned (a resumed run)."""
        ncols = self.ncols
        blank = [""] * ncols
        item = 0
        acc_items: list[int] = []
        acc_lines: list[int] = []
        acc_raw: list[str] = []
        acc_cells: list = []
        acc_err: list = []

        def flush() -> RawBatch:
            rows = [c if e is None else blank for c, e in zip(acc_cells, acc_err, strict=True)]
            cols = list(zip(*rows, strict=True)) if rows else [()] * ncols
            b = RawBatch(list(acc_items), list(acc_lines), list(acc_raw), list(acc_err))
            b.cols = {k: list(map(str.strip, cols[j])) for k, j in self.columns.items()}
            for k in FIELDS:
                b.cols.setdefault(k, [""] * len(b.items))
            b.clean = True
            for lst in (acc_items, acc_lines, acc_raw, acc_cells, acc_err):
                lst.clear()
            return b

        pend: list[FastBlock] = []
        pend_n = 0

        def flush_fast(limit: int | None = None) -> Iterator[RawBatch]:
            """The pending clean lines (at most ``limit``; the rest stays pending) as one batch."""
            nonlocal pend_n
            if not pend:
                return
            if len(pend) == 1:
                txt = pend[0].text
            elif all(isinstance(b.text, bytes) for b in pend):
                txt = b"\n".join(b.text for b in pend)
            else:
                txt = "\n".join(b.text if isinstance(b.text, str) else b.text.decode("utf-8") for b in pend)
            first_line, total = pend[0].first_line, pend_n
            first_item = pend_first[0]
            pend.clear()
            pend_n = 0
            if limit is not None and limit < total:
                txt, rest = _cut_lines(txt, limit)
                pend.append(FastBlock(first_line + limit, rest, total - limit))
                pend_first[0] = first_item + limit
                pend_n = total - limit
                total = limit
            df = read_block(txt, self._delimiter, self.columns, total)
            if df is None:  # e.g. bytes that are not UTF-8: the per-record path, as if never clean
                if isinstance(txt, bytes):
                    txt = txt.decode("utf-8", errors=ERRORS).replace("\r\n", "\n")
                ls, raws, cells, errs = self._plain(txt.split("\n"), first_line - 1, REPLACEMENT in txt, False)
                rows = [c if e is None else [""] * self.ncols for c, e in zip(cells, errs, strict=True)]
                cols = list(zip(*rows, strict=True))
                b = RawBatch(list(range(first_item, first_item + len(raws))), ls, raws, errs)
                b.cols = {k: list(map(str.strip, cols[j])) for k, j in self.columns.items()}
                for k in FIELDS:
                    b.cols.setdefault(k, [""] * len(raws))
                b.clean = True
                yield b
                return
            b = RawBatch(range(first_item, first_item + total), range(first_line, first_line + total), [], [])
            b.frame, b.text, b.clean = df, txt, True
            yield b

        pend_first = [0]
        for rec in self._records(fast=self.fast):
            if isinstance(rec, FastBlock):
                first = item + 1
                item += rec.n
                if item < skip_before:
                    continue
                lo = max(0, skip_before - first)
                if lo:
                    cut = 0
                    nl_ = b"\n" if isinstance(rec.text, bytes) else "\n"
                    for _ in range(lo):
                        cut = rec.text.index(nl_, cut) + 1
                    rec = FastBlock(rec.first_line + lo, rec.text[cut:], rec.n - lo)
                    first += lo
                if acc_items:
                    yield flush()
                if not pend:
                    pend_first[0] = first
                pend.append(rec)
                pend_n += rec.n
                while pend_n >= self.batch_size:
                    yield from flush_fast(self.batch_size)
                continue
            if pend:
                yield from flush_fast()
            lines, raws, cells, errs = rec
            n = len(raws)
            first = item + 1
            item += n
            if item < skip_before:
                continue
            lo = max(0, skip_before - first)
            acc_items.extend(range(first + lo, item + 1))
            acc_lines.extend(lines[lo:] if lo else lines)
            acc_raw.extend(raws[lo:] if lo else raws)
            acc_cells.extend(cells[lo:] if lo else cells)
            acc_err.extend(errs[lo:] if lo else errs)
            while len(acc_items) >= self.batch_size:
                size = self.batch_size
                rest = [lst[size:] for lst in (acc_items, acc_lines, acc_raw, acc_cells, acc_err)]
                for lst in (acc_items, acc_lines, acc_raw, acc_cells, acc_err):
                    del lst[size:]
                yield flush()
                for lst, r in zip((acc_items, acc_lines, acc_raw, acc_cells, acc_err), rest, strict=True):
                    lst.extend(r)
        if pend:
            yield from flush_fast()
        if acc_items:
            yield flush()
        self.total_items = item


def _fit_cells(line: str, row: list[str], ncols: int) -> tuple[list[str] | None, str | None]:
    """A row whose cell count differs from the header's: ``(None, None)`` for a blank line, the row
    cut to ``ncols`` when the extra cells are empty (trailing delimiters), else the row and its reason."""
    n = len(row)
    if n == 1 and not line.strip():
        return None, None
    if n > ncols and not any(c.strip() for c in row[ncols:]):
        return row[:ncols], None
    return row, (f"too few fields: {n} of {ncols}" if n < ncols else f"too many fields: {n} of {ncols}")
