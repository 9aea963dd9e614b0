"""Digital city management (数字城管) cases as JSON, with their part/event category codes.

A case carries its id, whether it is a part (部件) or an event (事件) case, the big class (大类) and
small class (小类) codes and names (GB/T 30428 / CJ/T 214 style, e.g. 事件 05 街面秩序 / 04 店外经营),
a description, the report time, coordinates with their datum, an address and a status. Both
English-style keys (``case_id``, ``main_type_code``, ``sub_type_code``, ``x``/``y``, ``coord_sys`` …)
and Chinese keys (案卷编号, 大类代码, 小类代码, 经度/纬度, 坐标系 …) are read; coordinates may also come
as ``coordinates: [lon, lat]``, ``location: {lon, lat}`` or a GeoJSON Point ``geometry``.

The category lookup tries ``部件:0101`` (kind + big + small code), then the bare code, then the
small-class name; an unknown code still imports, as 待分类.
"""

from __future__ import annotations

from collections.abc import Iterator

from db.intake.jsonstream import JsonStream
from db.intake.records import RawBatch, batch_from_dicts, text
from db.intake.textio import REPLACEMENT, FeedFile, decode_errors_seen

FORMAT = "citymgmt"
SOURCE = "citymgmt"
LABELS = {
    "ext_id": "case_id",
    "time": "report_time",
    "content": "description",
    "code": "sub_type_code",
    "code_alt": "sub_type_name",
    "address": "address",
    "lon": "x",
    "lat": "y",
    "datum": "coord_sys",
    "status": "status",
    "updated": "update_time",
    "title": "title",
}
ARRAY_KEYS = ("cases", "records", "list", "items", "rows", "data", "result")

_KEYS = {
    "ext_id": ("case_id", "caseId", "case_no", "caseNo", "案卷编号", "案件编号", "案卷号", "task_id", "taskId", "id"),
    "kind": ("case_type", "caseType", "案卷类型", "案件类型", "问题类型", "type_kind", "kind"),
    "big_code": ("main_type_code", "mainTypeCode", "bigclass_code", "big_class_code", "big_class", "大类代码", "大类编码",
                 "main_category"),
    "small_code": ("sub_type_code", "subTypeCode", "smallclass_code", "small_class_code", "small_class", "小类代码",
                   "小类编码", "sub_category"),
    "big_name": ("main_type_name", "mainTypeName", "bigclass_name", "big_class_name", "大类名称", "大类"),
    "small_name": ("sub_type_name", "subTypeName", "smallclass_name", "small_class_name", "小类名称", "小类"),
    "content": ("description", "desc", "问题描述", "案卷描述", "案件描述", "content"),
    "title": ("title", "标题"),
    "time": ("report_time", "reportTime", "上报时间", "发现时间", "time", "created_at", "create_time"),
    "updated": ("update_time", "updateTime", "updated_at", "更新时间", "结案时间"),
    "lon": ("x", "lon", "lng", "longitude", "经度"),
    "lat": ("y", "lat", "latitude", "纬度"),
    "datum": ("coord_sys", "coordSys", "coordinate_system", "datum", "crs", "坐标系"),
    "address": ("address", "地址", "位置描述", "问题位置", "location_desc"),
    "status": ("status", "状态", "案卷状态", "环节", "stage"),
    "name": ("reporter", "上报人", "监督员"),
    "phone": ("reporter_phone", "联系电话"),
}  # fmt: skip
_KIND = {"部件": "部件", "part": "部件", "component": "部件", "parts": "部件", "1": "部件",
         "事件": "事件", "event": "事件", "events": "事件", "2": "事件"}  # fmt: skip


def _get(rec: dict, key: str):
    for k in _KEYS[key]:
        if k in rec and rec[k] not in (None, ""):
            return rec[k]
    return None


def _code(value) -> str:
    t = text(value)
    return t.zfill(2) if t.isdigit() and len(t) == 1 else t


def to_fields(rec: dict) -> tuple[dict, dict]:
    kind = _KIND.get(text(_get(rec, "kind")).casefold(), text(_get(rec, "kind")))
    big, small = _code(_get(rec, "big_code")), _code(_get(rec, "small_code"))
    code = small if len(small) >= 4 or not big else big + small
    if code and kind:
        code = f"{kind}:{code}"
    lon, lat = _get(rec, "lon"), _get(rec, "lat")
    if lon is None and lat is None:
        loc = rec.get("coordinates") or rec.get("location") or rec.get("geometry")
        if isinstance(loc, dict) and loc.get("type") == "Point":
            loc = loc.get("coordinates")
        if isinstance(loc, list | tuple) and len(loc) >= 2:
            lon, lat = loc[0], loc[1]
        elif isinstance(loc, dict):
            lon, lat = loc.get("lon", loc.get("lng", loc.get("x"))), loc.get("lat", loc.get("y"))
    small_name, big_name = text(_get(rec, "small_name")), text(_get(rec, "big_name"))
    fields = {
        "ext_id": text(_get(rec, "ext_id")),
        "time": _get(rec, "time"),
        "content": text(_get(rec, "content")),
        "title": text(_get(rec, "title")) or small_name or None,
        "code": code,
        "code_alt": small_name,
        "address": text(_get(rec, "address")),
        "name": text(_get(rec, "name")) or None,
        "phone": text(_get(rec, "phone")) or None,
        "lon": lon,
        "lat": lat,
        "datum": text(_get(rec, "datum")),
        "status": text(_get(rec, "status")),
        "updated": _get(rec, "updated"),
    }
    extra = {k: v for k, v in (("kind", kind), ("big_class", big), ("big_name", big_name),
                               ("small_class", small), ("small_name", small_name)) if v}  # fmt: skip
    return fields, extra


class CityMgmtReader:
    format = FORMAT
    source = SOURCE
    labels = LABELS

    def __init__(self, feed: FeedFile) -> None:
        self.feed = feed
        self.batch_size = 5_000
        self._stream = JsonStream(feed.text(newline=""), ARRAY_KEYS)

    def batches(self, skip_before: int = 1) -> Iterator[RawBatch]:
        buf: list[tuple] = []
        item = 0
        before = decode_errors_seen()
        for line, raw, rec, err in self._stream:
            item += 1
            if item < skip_before:
                continue
            if err is None and not isinstance(rec, dict):
                err = f"not a case object: {type(rec).__name__}"
            if err is None and REPLACEMENT in raw and decode_errors_seen() != before:
                err = f"encoding error: bytes that are not {self.feed.encoding} (try --encoding)"
            buf.append((item, line, raw, rec, err))
            if len(buf) >= self.batch_size:
                yield self._batch(buf)
                buf = []
        if buf:
            yield self._batch(buf)
        self.total_items = item

    @staticmethod
    def _batch(buf: list[tuple]) -> RawBatch:
        records, extras = [], []
        for _, _, _, rec, err in buf:
            if err is None:
                fields, extra = to_fields(rec)
                records.append(fields)
                extras.append(extra or None)
            else:
                records.append(None)
                extras.append(None)
        return batch_from_dicts([b[0] for b in buf], [b[1] for b in buf], [b[2] for b in buf],
                                [b[4] for b in buf], records, extras)  # fmt: skip
