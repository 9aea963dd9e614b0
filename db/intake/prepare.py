"""Validation and enrichment of a batch of records, vectorised: from a reader's :class:`RawBatch`
to the rows of the staging table, plus the quarantined records with their exact reasons.

Per batch, column by column: required fields, report times (numpy), coordinates (numpy float
parsing), datums (per record or the file's), conversion to WGS-84 (:mod:`db.datum`), geocoding of
address-only records (:mod:`db.geocode`), grid assignment (:class:`db.spatial.GridIndex`; a point
on the river inside the boundary goes to the nearest grid), category and status mapping (one
lookup per distinct code), handling deadlines (:class:`db.intake.deadlines.WorkClock`) and a
the point where the record came from. Python loops touch only the records that have a problem.

Reasons (one per record, the first problem found):
``missing field: <field>``, ``bad date: '<text>'`` (``… (in the future)``),
``non-numeric coordinate: <field>='<text>'``, ``coordinate out of range: <field>=<text>``,
``unknown datum: '<text>'``, ``address not found: '<address>'``,
``point outside the district: <lon>, <lat>`` (`` (longitude and latitude look swapped)``), and the
readers' structural ones (``truncated line``, ``truncated record``, ``malformed JSON: …``,
``malformed CSV: …``, ``too few fields: n of m``, ``encoding error: …``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import orjson
import shapely

from db import datum as datum_mod
from db.catalogue import UNCLASSIFIED
from db.intake.deadlines import WorkClock, iso_local
from db.intake.records import FIELDS, RawBatch, text
from db.intake.timeparse import BAD, parse_times

TITLE_CHARS = 30
TEXT_FIELDS = tuple(f for f in FIELDS if f not in ("lon", "lat", "time", "updated"))

#: the staging table's columns, in order (``seq`` is the row's position in the staged wave)
STAGE_COLUMNS: tuple[str, ...] = (
    "seq", "uid", "external_id", "category", "needs_classification", "title", "description",
    "reporter_name", "reporter_phone", "lon", "lat", "src_datum", "src_lon", "src_lat", "address",
    "address_note", "grid_id", "community_code", "street_code", "status", "reported_at", "stage_at",
    "handle_due_at", "source_code", "source_status", "item", "line", "log_uid", "log2_uid",
    "log_extra",
)  # fmt: skip
STAGE_INDEX = {c: i for i, c in enumerate(STAGE_COLUMNS)}


@dataclass
class Context:
    """Everything a batch needs that is built once per import."""

    source: str
    format: str
    labels: dict[str, str]
    default_datum: str
    lookup: object  # event_ops._GridLookup
    boundary: object
    tree: object  # shapely.STRtree over the grid polygons
    categories: dict[str, dict]
    cat_map: dict[str, str]
    status_map: dict[str, str]
    street_names: dict[str, str]  # code → name
    clock: WorkClock
    gazetteer_factory: object  # () -> Gazetteer
    now: float = field(default_factory=time.time)
    _gazetteer: object = None
    _street_by_name: dict | None = None
    _code_cache: dict = field(default_factory=dict)
    _named_cache: dict = field(default_factory=dict)

    @property
    def gazetteer(self):
        if self._gazetteer is None:
            self._gazetteer = self.gazetteer_factory()
        return self._gazetteer

    def label(self, key: str) -> str:
        return self.labels.get(key, key)

    def named_street(self, address: str) -> str | None:
        """The code of the first street (…街道) an address names, if any."""
        if self._street_by_name is None:
            self._street_by_name = {n: c for c, n in self.street_names.items()}
        i = address.find("街道")
        if i < 0:
            return None
        key = address[max(0, i - 5) : i + 2]  # the first mention: a match there decides
        hit = self._named_cache.get(key)
        if hit is not None:
            return hit
        while i >= 0:
            for k in (2, 3, 4, 5):
                if i - k >= 0:
                    code = self._street_by_name.get(address[i - k : i + 2])
                    if code:
                        if len(self._named_cache) < 100_000 and address.find("街道") == i:
                            self._named_cache[key] = code
                        return code
            i = address.find("街道", i + 2)
        return None

    def map_code(self, code: str, alt: str) -> str | None:
        key = (code, alt)
        hit = self._code_cache.get(key, 0)
        if hit == 0:
            hit = _map_code(self.cat_map, code, alt)
            hit = hit if hit in self.categories else None
            self._code_cache[key] = hit
        return hit


@dataclass
class Prepared:
    """One batch, validated: staging rows, quarantined records, IoT readings."""

    rows: list[tuple] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    readings: list[dict] = field(default_factory=list)
    records: int = 0  # input records covered
    last_item: int = 0


def _map_code(cmap: dict, code: str, alt: str) -> str | None:
    for c in (code, alt):
        if not c:
            continue
        hit = cmap.get(c.casefold())
        if hit:
            return hit
        for sep in ("-", "/", ">", "＞", "\\", "|", "－"):
            if sep in c:
                hit = cmap.get(c.rsplit(sep, 1)[-1].strip().casefold())
                if hit:
                    return hit
    return None


def _fmt_coord(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _floats(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(numbers with NaN, missing mask, non-numeric mask)."""
    missing = np.fromiter((v is None or v == "" for v in values), dtype=bool, count=len(values))
    try:
        arr = np.array(["nan" if m else v for v, m in zip(values, missing.tolist(), strict=True)], dtype=np.float64)
        if np.isfinite(arr[~missing]).all():
            return arr, missing, np.zeros(len(values), dtype=bool)
    except (ValueError, TypeError):
        pass
    arr = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, (v, m) in enumerate(zip(values, missing.tolist(), strict=True)):
        if m:
            continue
        try:
            x = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            x = float("nan")
        if np.isfinite(x):
            arr[i] = x
        else:
            bad[i] = True
    return arr, missing, bad


def _title(content: str) -> str:
    t = content if len(content) <= TITLE_CHARS else content[: TITLE_CHARS - 1] + "…"
    if "\n" in t or "\r" in t or "\t" in t:
        t = " ".join(t.split())
    return t


def _as_text(values: list) -> list[str]:
    return values if all(type(v) is str for v in values) else [text(v) for v in values]


def prepare(batch: RawBatch, ctx: Context) -> Prepared:  # noqa: C901 - one linear pass, kept together
    if batch.frame is not None:
        from db.intake.fast12345 import prepare_frame

        return prepare_frame(batch, ctx)
    n = len(batch)
    records = batch.input_records if batch.input_records is not None else n
    out = Prepared(records=records, last_item=max(batch.items) if n else 0, readings=batch.readings or [])
    if n == 0:
        return out
    cols = batch.cols
    if not batch.clean:
        cols = dict(cols)
        for f in TEXT_FIELDS:
            cols[f] = _as_text(cols[f])
    err: list[str | None] = list(batch.errors)
    L = ctx.label

    def fail(indices, reason) -> None:
        for i in indices:
            if err[i] is None:
                err[i] = reason(i) if callable(reason) else reason

    ext, content, address = cols["ext_id"], cols["content"], cols["address"]
    fail([i for i, v in enumerate(ext) if not v], f"missing field: {L('ext_id')}")
    epoch, tprob = parse_times(cols["time"], now=ctx.now)
    for i, p in enumerate(tprob):
        if p is not None and err[i] is None:
            shown = text(cols["time"][i])
            err[i] = (f"missing field: {L('time')}" if p == "missing"
                      else f"bad date: '{shown}'" + (" (in the future)" if p == "future" else ""))  # fmt: skip
    fail([i for i, v in enumerate(content) if not v], f"missing field: {L('content')}")

    # coordinates and datums
    lon, lon_miss, lon_bad = _floats(cols["lon"])
    lat, lat_miss, lat_bad = _floats(cols["lat"])
    has_addr = np.fromiter(map(bool, address), dtype=bool, count=n)
    live = np.fromiter((e is None for e in err), dtype=bool, count=n)
    nonnum = live & (lon_bad | lat_bad)
    fail(np.flatnonzero(nonnum).tolist(), lambda i: (
        f"non-numeric coordinate: {L('lon')}='{text(cols['lon'][i])}'" if lon_bad[i]
        else f"non-numeric coordinate: {L('lat')}='{text(cols['lat'][i])}'"))  # fmt: skip
    live &= ~nonnum
    partial = live & (lon_miss | lat_miss)
    geocode_rows = np.flatnonzero(partial & has_addr).tolist()
    fail(np.flatnonzero(partial & ~has_addr & lon_miss & lat_miss).tolist(),
         f"missing field: {L('lon')}/{L('lat')} or {L('address')}")  # fmt: skip
    fail(np.flatnonzero(partial & ~has_addr & (lon_miss ^ lat_miss)).tolist(),
         lambda i: f"missing field: {L('lat') if lat_miss[i] else L('lon')}")  # fmt: skip
    live &= ~partial
    with np.errstate(invalid="ignore"):
        out_lon = live & ((lon < -180.0) | (lon > 180.0))
        out_lat = live & ~out_lon & ((lat < -90.0) | (lat > 90.0))
    fail(np.flatnonzero(out_lon).tolist(), lambda i: f"coordinate out of range: {L('lon')}={text(cols['lon'][i])}")
    fail(np.flatnonzero(out_lat).tolist(), lambda i: f"coordinate out of range: {L('lat')}={text(cols['lat'][i])}")
    live &= ~(out_lon | out_lat)
    dcol = _as_text(cols["datum"])
    dmap: dict[str, str | None] = {}
    for v in set(dcol):
        if not v:
            dmap[v] = ctx.default_datum
        else:
            try:
                dmap[v] = datum_mod.parse_datum(v)
            except datum_mod.UnknownDatum:
                dmap[v] = None
    datums = [dmap[v] for v in dcol]
    if None in dmap.values():
        fail([i for i in np.flatnonzero(live).tolist() if datums[i] is None], lambda i: f"unknown datum: '{dcol[i]}'")
    datums_arr = np.array([d or ctx.default_datum for d in datums], dtype=object)
    live = np.fromiter((e is None for e in err), dtype=bool, count=n) & ~lon_miss & ~lat_miss
    wlon, wlat = np.full(n, np.nan), np.full(n, np.nan)
    if live.any():
        wlon[live], wlat[live] = datum_mod.to_wgs84_np(lon[live], lat[live], datums_arr[live])

    # geocoding fallback
    geo: dict[int, object] = {}
    geocode_rows = [i for i in geocode_rows if err[i] is None]
    if geocode_rows:
        gaz = ctx.gazetteer
        for i in geocode_rows:
            m = gaz.match(address[i])
            if m is None:
                err[i] = f"address not found: '{address[i]}'"
            else:
                geo[i] = m
                wlon[i], wlat[i] = m.lon, m.lat
                datums_arr[i] = datum_mod.WGS84

    # grid assignment
    ok = np.fromiter((e is None for e in err), dtype=bool, count=n)
    idx_ok = np.flatnonzero(ok)
    wlon = np.round(wlon, 6)
    wlat = np.round(wlat, 6)
    grid_idx = np.full(n, -1, dtype=np.int64)
    nearest = np.zeros(n, dtype=bool)
    lookup = ctx.lookup
    if idx_ok.size and lookup.grid_ids:
        grid_idx[idx_ok] = lookup.index.assign(wlon[idx_ok], wlat[idx_ok])
        miss = idx_ok[grid_idx[idx_ok] < 0]
        if miss.size:
            inside = shapely.intersects_xy(ctx.boundary, wlon[miss], wlat[miss])
            near = miss[inside]
            if near.size:
                pairs = ctx.tree.query_nearest(shapely.points(wlon[near], wlat[near]), all_matches=False)
                grid_idx[near[pairs[0]]] = pairs[1]
                nearest[near] = True
            for i in miss[~inside].tolist():
                msg = f"point outside the district: {_fmt_coord(lon[i])}, {_fmt_coord(lat[i])}"
                sw = datum_mod.to_wgs84(float(lat[i]), float(lon[i]), datums_arr[i])
                if -180 <= sw[0] <= 180 and -90 <= sw[1] <= 90 and shapely.intersects_xy(ctx.boundary, *sw):
                    msg += " (longitude and latitude look swapped)"
                err[i] = msg

    # quarantine
    extras = batch.extras
    for i, e in enumerate(err):
        if e is None:
            continue
        rec = {k: cols[k][i] for k in FIELDS if cols[k][i] not in (None, "")}
        if extras and extras[i]:
            rec["_extra"] = extras[i]
        out.quarantine.append({
            "item": batch.items[i], "line": batch.lines[i], "raw": batch.raws[i], "reason": e,
            "fields": orjson.dumps(rec, default=str).decode() if rec else None, "external_id": ext[i] or None,
        })  # fmt: skip
    good = np.flatnonzero(np.fromiter((e is None for e in err), dtype=bool, count=n))
    if good.size == 0:
        return out
    g = good.tolist()
    all_good = len(g) == n

    def pick(values: list) -> list:
        return values if all_good else [values[i] for i in g]

    # categories and statuses (one lookup per distinct value)
    codes, alts = pick(cols["code"]), pick(cols["code_alt"])
    cats = ctx.categories
    mapped = [ctx.map_code(c, a) for c, a in zip(codes, alts, strict=True)]
    fallback = UNCLASSIFIED if UNCLASSIFIED in cats else next(iter(cats), UNCLASSIFIED)
    category = [m or fallback for m in mapped]
    needs = [0 if m else 1 for m in mapped]
    src_code = [c or a or None for c, a in zip(codes, alts, strict=True)]
    st_text = pick(cols["status"])
    smap = ctx.status_map
    status = [smap.get(s.casefold(), "reported") if s else "reported" for s in st_text]

    # times: report, stage (source's last update, never before the report), handling deadline
    g_epoch = epoch[good]
    reported = iso_local(g_epoch)
    upd_raw = pick(cols["updated"])
    if any(upd_raw):
        upd_epoch, _ = parse_times(upd_raw, now=ctx.now)
        upd_epoch = np.where((upd_epoch == BAD) | (upd_epoch < g_epoch), g_epoch, upd_epoch)
        stage_at = iso_local(upd_epoch)
    else:
        stage_at = reported
    codes_of = WorkClock.UNIT_CODES
    limits = {c: (cats.get(c, {}).get("handle_limit") or np.nan, codes_of.get(cats.get(c, {}).get("handle_unit"), 0))
              for c in set(category)}  # fmt: skip
    amount = np.fromiter((limits[c][0] for c in category), dtype=np.float64, count=len(category))
    unit = np.fromiter((limits[c][1] for c in category), dtype=np.int8, count=len(category))
    handle_due = iso_local(ctx.clock.due_codes(g_epoch, amount, unit))

    # place
    gi = grid_idx[good].tolist()
    ids = lookup.grid_ids
    gids = [ids[k] for k in gi]
    streets = [lookup.street[x] for x in gids]
    communities = [lookup.community[x] for x in gids]
    g_lon, g_lat = wlon[good].tolist(), wlat[good].tolist()
    is_src = np.array([d != datum_mod.WGS84 for d in datums_arr[good]]) & ~np.isin(good, list(geo))
    src_lon = np.where(is_src, lon[good], np.nan).tolist()
    src_lat = np.where(is_src, lat[good], np.nan).tolist()
    src_lon = [None if x != x else x for x in src_lon]
    src_lat = [None if x != x else x for x in src_lat]
    g_datum = datums_arr[good].tolist()
    g_addr = pick(address)
    notes: list[str | None] = [None] * len(g)
    names = ctx.street_names
    for k, (a, st) in enumerate(zip(g_addr, streets, strict=True)):
        if a and "街道" in a and g[k] not in geo:
            named = ctx.named_street(a)
            if named and named != st:
                notes[k] = (f"地址所写街道（{names.get(named, named)}）与坐标所在街道（{names.get(st, st)}）不一致"
                            " / the address names another street than the point's")  # fmt: skip
    addr_out = [a or f"崇川区{names.get(st, '')}（{gid} 网格附近）" for a, st, gid in zip(g_addr, streets, gids, strict=True)]

    # log payload extras (only where there is something to say)
    log_extra: list[str | None] = [None] * len(g)
    near_g = nearest[good]
    ex_g = pick(extras) if extras else None
    for k, i in enumerate(g):
        extra = {}
        if needs[k]:
            extra["needs_classification"] = True
            extra["category_original"] = src_code[k]
        if i in geo:
            m = geo[i]
            extra["geocoded"] = {"kind": m.kind, "name": m.name, "address": address[i]}
        if near_g[k]:
            extra["grid_assignment"] = "nearest"
        if notes[k]:
            extra["address_note"] = notes[k]
        if ex_g and ex_g[k]:
            extra["source_fields"] = ex_g[k]
        if extra:
            log_extra[k] = orjson.dumps(extra).decode()

    desc = pick(content)
    titles = pick(cols["title"])
    cut = TITLE_CHARS - 1
    made = [d if len(d) <= TITLE_CHARS else d[:cut] + "…" for d in desc]  # _title, the common case at C speed
    if any("\n" in t or "\r" in t or "\t" in t for t in made):
        made = [_title(t) for t in made]
    titles = [t or m for t, m in zip(titles, made, strict=True)]
    none = repeat(None)
    out.rows = list(zip(
        range(len(g)), none, pick(ext), category, needs, titles, desc,
        [v or None for v in pick(cols["name"])], [v or None for v in pick(cols["phone"])],
        g_lon, g_lat, g_datum, src_lon, src_lat, addr_out, notes, gids, communities, streets, status,
        reported, stage_at, handle_due, src_code, [s or None for s in st_text],
        pick(batch.items), pick(batch.lines), none, none, log_extra, strict=False,
    ))  # fmt: skip
    return out
