"""The column-wise fast path for 12345 CSV files (polars + numpy; no per-record Python).

:class:`db.intake.csv12345.Csv12345Reader` hands over blocks of *clean* text (no quote, no
replacement character, no control separator, no blank line, every line with exactly the header's
number of cells) as a polars frame of the canonical fields (:func:`read_block`). :func:`prepare_frame`
then validates and enriches the frame with polars expressions and numpy: required fields, report
times (``YYYY-MM-DD[ T]HH:MM[:SS]``), plain decimal coordinates in range, datums (per row or the
file's), conversion to WGS-84, grid assignment (a point on the river inside the boundary goes to the
nearest grid), category/status mapping on the distinct codes, titles, deadlines, street notes.

Every record that fails one of these checks, or needs something the fast path does not do
(geocoding, another time format, a tab in the content …), goes through the per-record
:func:`db.intake.prepare.prepare` unchanged, so quarantine reasons and rows are exactly those of
the per-record path (tests/db/test_intake_fast.py checks fast == slow).
"""

from __future__ import annotations

import io
import re
from itertools import repeat

import numpy as np
import orjson
import polars as pl
import shapely

from db import datum as datum_mod
from db.catalogue import UNCLASSIFIED
from db.intake.deadlines import WorkClock, iso_local
from db.intake.prepare import Prepared, prepare
from db.intake.records import FIELDS, RawBatch
from db.intake.timeparse import FUTURE_SLACK_S, MIN_EPOCH, OFFSET_S

TITLE_CHARS = 30
_UNSAFE = re.compile("[\"\ufffd\x1c-\x1f]")  # quotes, decode errors, chars str.strip and polars trim differ on
_TIME_RE = r"^\d{4}-\d{2}-\d{2}[ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"
_NUM_RE = r"^[+-]?\d+(\.\d+)?$"
DATUM_CODE = {name: i for i, name in enumerate(datum_mod.DATUMS)}
_DATUM_NAMES = np.asarray(datum_mod.DATUMS, dtype=object)


def clean_block(data: str, delim: str, ncols: int) -> int:
    """Lines in ``data`` when the block can be read column-wise (else 0): no quote, no replacement
    character, no blank line, and every line with exactly ``ncols`` cells (the total count is
    checked here; :func:`read_block` fails on a line with too many, hence on any mismatch)."""
    if not data or data[0] == "\n" or data[-1] == "\n" or "\n\n" in data or _UNSAFE.search(data):
        return 0
    lines = data.count("\n") + 1
    if data.count(delim) != lines * (ncols - 1):
        return 0
    return lines


def clean_bytes(data: bytes, delim: bytes, ncols: int) -> int:
    """:func:`clean_block` for raw UTF-8 bytes: lines, or 0. Lines may end in CRLF (the CR is
    stripped with the cell's whitespace). Byte scans with numpy (bytes.count is several times slower)."""
    if not data or data[:1] == b"\n" or data[-1:] == b"\n" or ncols < 3:
        return 0
    if b'"' in data or b"\x1c" in data or b"\x1d" in data or b"\x1e" in data or b"\x1f" in data:
        return 0
    arr = np.frombuffer(data, dtype=np.uint8)
    last = arr.size - 1
    nl = np.flatnonzero(arr == 10)
    # a line holds at least ncols - 1 >= 2 delimiters: two newlines closer than 3 bytes mean a
    # blank (or broken) line, which the per-record path skips or rejects
    if nl.size and (nl[0] < 2 or (nl.size > 1 and int(np.diff(nl).min()) < 3)):
        return 0
    cr = np.flatnonzero(arr == 13)
    if cr.size and (cr[-1] == last or not (arr[cr + 1] == 10).all()):  # CR only as part of CRLF
        return 0
    ef = np.flatnonzero(arr == 0xEF)  # U+FFFD (EF BF BD) in the source: as if undecodable
    if ef.size:
        ef = ef[ef + 2 <= last]
        if ((arr[ef + 1] == 0xBF) & (arr[ef + 2] == 0xBD)).any():
            return 0
    lines = nl.size + 1
    if np.count_nonzero(arr == delim[0]) != lines * (ncols - 1):
        return 0
    return lines


def read_block(data: str | bytes, delim: str, columns: dict[str, int], lines: int) -> pl.DataFrame | None:
    """The canonical fields of a clean block as stripped strings ('' for empty), or None."""
    order = sorted(columns.items(), key=lambda kv: kv[1])
    try:
        df = pl.read_csv(
            io.BytesIO(data.encode("utf-8") if isinstance(data, str) else data), has_header=False, separator=delim, quote_char=None,
            infer_schema=False, columns=[j for _, j in order], new_columns=[k for k, _ in order],
            eol_char="\n", raise_if_empty=False,
        )  # fmt: skip
    except pl.exceptions.PolarsError:
        return None
    if df.height != lines:
        return None
    df = df.select(pl.col(k).fill_null("").str.strip_chars() for k, _ in order)
    missing = [pl.lit("").alias(k) for k in FIELDS if k not in columns]
    return df.with_columns(missing) if missing else df


class LazyPrepared(Prepared):
    """A :class:`Prepared` whose staging rows are made from the columns on first use (by the
    writer); ``row_count`` is known before."""

    _build = None
    _rows: list | None = None
    row_count = 0

    @property
    def rows(self) -> list[tuple]:
        if self._rows is None:
            self._rows = self._build() if self._build is not None else []
            self._build = None
        return self._rows

    @rows.setter
    def rows(self, value: list[tuple]) -> None:
        self._rows = value
        self.row_count = len(value)

    def defer(self, build, count: int) -> None:
        self._rows, self._build, self.row_count = None, build, count


def prepare_frame(batch: RawBatch, ctx):  # noqa: C901 - one linear pass, like prepare()
    df: pl.DataFrame = batch.frame
    n = df.height
    first_item, first_line = batch.items[0], batch.lines[0]
    out = Prepared(records=n, last_item=first_item + n - 1)
    if n == 0:
        return out
    now = ctx.now
    # datums: one parse per distinct value, as small codes; unknown → the per-record path
    codes: dict[str, int | None] = {}
    for v in df["datum"].unique().to_list():
        try:
            codes[v] = DATUM_CODE[ctx.default_datum if not v else datum_mod.parse_datum(v)]
        except (datum_mod.UnknownDatum, KeyError):
            codes[v] = None
    t = pl.col("time").str.replace("T", " ", literal=True)
    chk = df.select(
        ok=(pl.col("ext_id") != "") & (pl.col("content") != "")
        & ~pl.col("content").str.contains("\t", literal=True) & ~pl.col("title").str.contains("\t", literal=True)
        & pl.col("time").str.contains(_TIME_RE) & pl.col("lon").str.contains(_NUM_RE)
        & pl.col("lat").str.contains(_NUM_RE),
        e=pl.when(t.str.len_bytes() == 16).then(t + ":00").otherwise(t)
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False).dt.epoch("s").fill_null(-1),
        lon=pl.col("lon").cast(pl.Float64, strict=False).fill_null(np.nan),
        lat=pl.col("lat").cast(pl.Float64, strict=False).fill_null(np.nan),
        d=pl.col("datum").replace_strict(codes, return_dtype=pl.Int8, default=None).fill_null(-1),
    )  # fmt: skip
    epoch = chk["e"].to_numpy().astype(np.int64)
    epoch = np.where(epoch >= 0, epoch - OFFSET_S, -1)
    lon, lat = chk["lon"].to_numpy(), chk["lat"].to_numpy()
    dcode = chk["d"].to_numpy()
    fast = chk["ok"].to_numpy() & (dcode >= 0)
    limit = int(now + FUTURE_SLACK_S)
    fast &= (epoch >= MIN_EPOCH) & (epoch <= limit)
    with np.errstate(invalid="ignore"):
        fast &= (lon >= -180.0) & (lon <= 180.0) & (lat >= -90.0) & (lat <= 90.0)
    # conversion and grid assignment of the candidates
    idx = np.flatnonzero(fast)
    dat = dcode[idx]
    wlon, wlat = lon[idx].copy(), lat[idx].copy()
    for code in (DATUM_CODE[datum_mod.GCJ02], DATUM_CODE[datum_mod.BD09]):
        sel = np.flatnonzero(dat == code)
        if sel.size:
            wlon[sel], wlat[sel] = datum_mod.to_wgs84_np(wlon[sel], wlat[sel], datum_mod.DATUMS[code])
    wlon, wlat = np.round(wlon, 6), np.round(wlat, 6)
    lookup = ctx.lookup
    gidx = lookup.index.assign(wlon, wlat) if idx.size else np.empty(0, dtype=np.int64)
    nearest = np.zeros(idx.size, dtype=bool)
    miss = np.flatnonzero(gidx < 0)
    if miss.size:
        inside = shapely.intersects_xy(ctx.boundary, wlon[miss], wlat[miss])
        near = miss[inside]
        if near.size:
            pairs = ctx.tree.query_nearest(shapely.points(wlon[near], wlat[near]), all_matches=False)
            gidx[near[pairs[0]]] = pairs[1]
            nearest[near] = True
        keep = np.ones(idx.size, dtype=bool)
        keep[miss[~inside]] = False  # outside the district: quarantined by the per-record path
        fast[idx[~keep]] = False
        idx, dat, wlon, wlat, gidx, nearest = idx[keep], dat[keep], wlon[keep], wlat[keep], gidx[keep], nearest[keep]

    # the per-record path for everything else
    slow_rows: list[tuple] = []
    slow = np.flatnonzero(~fast)
    if slow.size:
        txt = batch.text
        raws = (txt.decode("utf-8").replace("\r\n", "\n") if isinstance(txt, bytes) else txt).split("\n") if txt is not None else None
        sub = df[slow]
        sl = slow.tolist()
        rb = RawBatch(
            [first_item + i for i in sl], [first_line + i for i in sl],
            [raws[i] for i in sl] if raws else [""] * len(sl), [None] * len(sl),
            {k: sub[k].to_list() for k in FIELDS},
        )  # fmt: skip
        rb.clean = True
        sp = prepare(rb, ctx)
        out.quarantine = sp.quarantine
        slow_rows = sp.rows
    if idx.size == 0:
        out.rows = slow_rows
        return out

    m = idx.size
    g = df if m == n else df[idx]
    # categories: one lookup per distinct (code, alt)
    cats = ctx.categories
    fallback = UNCLASSIFIED if UNCLASSIFIED in cats else next(iter(cats), UNCLASSIFIED)
    if (g["code_alt"] == "").all():  # the usual case: one code column, no join needed
        cat_of = {c: ctx.map_code(c, "") for c in g["code"].unique().to_list()}
        category = g["code"].replace_strict({c: x or fallback for c, x in cat_of.items()}, return_dtype=pl.String)
        needs = g["code"].replace_strict({c: 0 if x else 1 for c, x in cat_of.items()}, return_dtype=pl.Int64)
        needs = needs.to_numpy()
    else:
        pairs = g.select("code", "code_alt").unique()
        mapped = [ctx.map_code(c, a) for c, a in pairs.iter_rows()]
        pairs = pairs.with_columns(
            pl.Series("_cat", [x or fallback for x in mapped], dtype=pl.String),
            pl.Series("_needs", [0 if x else 1 for x in mapped], dtype=pl.Int64),
        )
        joined = g.select("code", "code_alt").join(pairs, on=["code", "code_alt"], how="left", maintain_order="left")
        category, needs = joined["_cat"], joined["_needs"].to_numpy()
    smap = ctx.status_map
    st_unique = g["status"].unique().to_list()
    st_codes = {s: (smap.get(s.casefold(), "reported") if s else "reported") for s in st_unique}
    status = g["status"].replace_strict(st_codes, return_dtype=pl.String)

    # times
    g_epoch = epoch[idx]
    reported = iso_local(g_epoch, as_bytes=True)
    upd = g["updated"]
    if (upd != "").any():
        from db.intake.timeparse import BAD, parse_times

        upd_epoch, _ = parse_times(upd.to_list(), now=now)
        upd_epoch = np.where((upd_epoch == BAD) | (upd_epoch < g_epoch), g_epoch, upd_epoch)
        stage_at = iso_local(upd_epoch, as_bytes=True)
    else:
        stage_at = reported
    units = WorkClock.UNIT_CODES
    cat_u = category.unique().to_list()
    amount_of = {c: float(cats.get(c, {}).get("handle_limit") or np.nan) for c in cat_u}
    unit_of = {c: units.get(cats.get(c, {}).get("handle_unit"), 0) for c in cat_u}
    amount = category.replace_strict(amount_of, return_dtype=pl.Float64).to_numpy()
    unit = category.replace_strict(unit_of, return_dtype=pl.Int8).to_numpy()
    due = ctx.clock.due_codes(g_epoch, amount, unit)
    handle_due = iso_local(due, as_bytes=True)
    no_due = np.flatnonzero(due < 0)

    # place: one look-up per distinct grid
    gser = pl.Series("g", gidx, dtype=pl.Int64)
    ug = np.unique(gidx).tolist()
    ids = lookup.grid_ids
    gid = gser.replace_strict({k: ids[k] for k in ug}, return_dtype=pl.String)
    street = gser.replace_strict({k: lookup.street[ids[k]] for k in ug}, return_dtype=pl.String)
    community = gser.replace_strict({k: lookup.community[ids[k]] for k in ug}, return_dtype=pl.String)
    is_src = dat != DATUM_CODE[datum_mod.WGS84]
    src_lon = pl.Series(np.where(is_src, lon[idx], np.nan)).fill_nan(None)
    src_lat = pl.Series(np.where(is_src, lat[idx], np.nan)).fill_nan(None)

    # street named in the address vs the point's street (one look-up per distinct first mention)
    names = ctx.street_names
    addr = g["address"]
    parts = addr.str.splitn("街道", 2)
    has = parts.struct.field("field_1").is_not_null()
    keys = pl.select(pl.when(has).then(parts.struct.field("field_0").str.slice(-5) + "街道")).to_series()
    if ctx._street_by_name is None:
        ctx._street_by_name = {nm: c for c, nm in ctx.street_names.items()}
    key_code: dict[str, str | None] = {}
    for k in keys.drop_nulls().unique().to_list():
        code = None
        for w in (2, 3, 4, 5):  # as Context.named_street: the first mention decides when it names a street
            if w <= len(k) - 2:
                code = ctx._street_by_name.get(k[len(k) - w - 2 :])
                if code:
                    break
        key_code[k] = code
    named = keys.replace_strict(key_code, return_dtype=pl.String, default=None) if key_code else keys
    undecided = np.flatnonzero((has & named.is_null()).to_numpy())
    if undecided.size:  # the first mention is no street name: look further, per record
        a_list = addr.to_list()
        vals = named.to_list()
        for j in undecided.tolist():
            vals[j] = ctx.named_street(a_list[j])
        named = pl.Series(vals, dtype=pl.String)
    pair = pl.select(pl.when(named.is_not_null() & (named != street)).then(named + "|" + street)).to_series()
    pair_note: dict[str, str] = {}
    for pk in pair.drop_nulls().unique().to_list():
        nc, sc = pk.split("|", 1)
        pair_note[pk] = (f"地址所写街道（{names.get(nc, nc)}）与坐标所在街道（{names.get(sc, sc)}）不一致"
                         " / the address names another street than the point's")  # fmt: skip
    note = pair.replace_strict(pair_note, return_dtype=pl.String, default=None) if pair_note else pair
    sname = street.replace_strict({c: names.get(c, "") for c in street.unique().to_list()}, return_dtype=pl.String)
    addr_out = pl.select(
        pl.when(addr != "").then(addr).otherwise(pl.concat_str([pl.lit("崇川区"), sname, pl.lit("（"), gid, pl.lit(" 网格附近）")]))
    ).to_series()  # fmt: skip

    # codes kept, log extras where there is something to say (one JSON text per distinct combination)
    code_s, alt_s = g["code"], g["code_alt"]
    src_code = pl.select(pl.when(code_s != "").then(code_s).when(alt_s != "").then(alt_s)).to_series()
    # the JSON text orjson writes for {needs_classification, category_original, grid_assignment,
    # address_note}, assembled column-wise from the JSON of the distinct codes and notes
    cj = {c: orjson.dumps(c).decode() for c in src_code.drop_nulls().unique().to_list()}
    cjson = (src_code.replace_strict(cj, return_dtype=pl.String, default=None) if cj else src_code).fill_null("null")
    nj = {k: orjson.dumps(v).decode() for k, v in pair_note.items()}
    njson = pair.replace_strict(nj, return_dtype=pl.String, default=None) if nj else pair
    ns, rs = pl.Series(needs == 1), pl.Series(nearest)
    log_extra = pl.select(
        pl.when(ns | rs | njson.is_not_null()).then(pl.concat_str([
            pl.lit("{"),
            pl.concat_str([
                pl.when(ns).then(pl.lit('"needs_classification":true,"category_original":') + cjson),
                pl.when(rs).then(pl.lit('"grid_assignment":"nearest"')),
                pl.when(njson.is_not_null()).then(pl.lit('"address_note":') + njson),
            ], separator=",", ignore_nulls=True),
            pl.lit("}"),
        ]))
    ).to_series()  # fmt: skip

    content = g["content"]
    title = g["title"]
    made = pl.select(
        pl.when(title != "").then(title)
        .when(content.str.len_chars() <= TITLE_CHARS).then(content)
        .otherwise(content.str.slice(0, TITLE_CHARS - 1) + "…")
    ).to_series()  # fmt: skip

    def nullable(s: pl.Series) -> pl.Series:
        return pl.select(pl.when(s != "").then(s)).to_series()

    cols = (
        g["ext_id"], category, needs, made, content, nullable(g["name"]), nullable(g["phone"]), wlon, wlat,
        _DATUM_NAMES[dat],
        src_lon, src_lat, addr_out, note, gid, community, street, status, reported, stage_at, handle_due,
        src_code, nullable(g["status"]), idx + first_item, idx + first_line, log_extra,
    )  # fmt: skip

    def build() -> list[tuple]:
        as_list = [c.to_list() if isinstance(c, pl.Series) else c.astype("U25").tolist() if c.dtype.kind == "S"
                   else c.tolist() if isinstance(c, np.ndarray) else c for c in cols]  # fmt: skip
        if no_due.size:
            hd = as_list[20]
            for k in no_due.tolist():
                hd[k] = None
        none = repeat(None)
        rows = list(zip(range(m), none, *as_list[:23], *as_list[23:25], none, none, as_list[25], strict=False))
        if slow_rows:
            from db.intake.prepare import STAGE_INDEX

            it, sq = STAGE_INDEX["item"], STAGE_INDEX["seq"]
            merged = sorted(rows + slow_rows, key=lambda r: r[it])
            rows = [(k, *r[sq + 1 :]) for k, r in enumerate(merged)]
        return rows

    lazy = LazyPrepared(records=out.records, last_item=out.last_item, quarantine=out.quarantine)
    lazy.defer(build, m + len(slow_rows))
    return lazy
