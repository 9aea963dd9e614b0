"""Masking of personal data for public displays (the wall), on the data, before any widget sees it.

What is masked, in fields and inside free text:
- mobile numbers ``13812345678`` → ``138****5678``; landlines ``0513-85123456`` → ``0513-****3456``;
- resident ID numbers (18 characters) → ``320613********123X``;
- names: a field that holds a name keeps its first character (``张**``); inside free text, a
  name after a marker word (居民、市民、联系人、来电人、家属 …) or before 先生/女士, and every
  name in ``known_names`` (reporters, staff) of the replica;
- exact house numbers: the digits before 号/幢/栋/室/单元/楼 (``工农路88号`` → ``工农路**号``).

Edge cases: ``None`` and ``""`` come back unchanged; masking is idempotent (masked text stays as
it is); numbers that are neither phones nor IDs (counts, years, times) are kept.
``find_personal(text)`` lists what would still count as personal data (tests use it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
LANDLINE_RE = re.compile(r"(?<!\d)(0\d{2,3})[-－ ]?(\d{3,4})(\d{4})(?!\d)")
ID_NO_RE = re.compile(r"(?<![\dXx])(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
_NAME_MARKERS = (
    "居民", "市民", "村民", "住户", "业主", "租户", "家属", "联系人", "来电人", "报告人", "反映人", "举报人",
    "投诉人", "当事人", "户主", "老人", "网格员", "网格长", "信息员", "负责人", "姓名[:：]?", "师傅",
)  # fmt: skip
_CJK = "\u4e00-\u9fff"
NAME_AFTER_MARKER_RE = re.compile(
    rf"((?:{'|'.join(_NAME_MARKERS)})\s*)([{_CJK}])([{_CJK}]{{1,2}}?)(?=反映|来电|称|说|，|,|。|、|\s|；|;|电话|联系|$|多次|投诉|举报)"
)
NAME_TITLE_RE = re.compile(rf"([{_CJK}])([{_CJK}]{{0,2}})(?=先生|女士|师傅|阿姨|大爷)")
HOUSE_NO_RE = re.compile(r"(\d+)(?=\s*(?:号楼|号|幢|栋|室|单元|弄))")
MASK = "*"


def mask_phone(phone: str | None) -> str:
    """``138****1234``: first 3 and last 4 digits of a mobile; a landline keeps its last 4."""
    if not phone:
        return ""
    digits = re.sub(r"\D+", "", phone)
    if len(digits) >= 11:
        return digits[-11:-8] + "****" + digits[-4:]
    if len(digits) >= 7:
        return "****" + digits[-4:]
    return "*" * max(len(digits) - 2, 2) + digits[-2:]


def mask_name(name: str | None) -> str:
    """``张**``: the first character, then one star per further character (at least one)."""
    if not name:
        return ""
    return name[0] + MASK * max(len(name) - 1, 1)


def mask_id_no(id_no: str | None) -> str:
    if not id_no:
        return ""
    s = str(id_no)
    return s[:6] + MASK * max(len(s) - 10, 4) + s[-4:] if len(s) > 10 else MASK * len(s)


def mask_text(text: str | None, known_names: Iterable[str] = ()) -> str:
    """Mask phones, ID numbers, names and exact house numbers inside free text."""
    if not text:
        return text or ""
    s = ID_NO_RE.sub(lambda m: m.group(1) + MASK * 8 + m.group(2), str(text))
    s = MOBILE_RE.sub(lambda m: m.group(1) + MASK * 4 + m.group(3), s)
    s = LANDLINE_RE.sub(lambda m: m.group(1) + "-" + MASK * len(m.group(2)) + m.group(3), s)
    s = _mask_known(s, _name_set(known_names))
    s = NAME_AFTER_MARKER_RE.sub(lambda m: m.group(1) + m.group(2) + MASK * len(m.group(3)), s)
    s = NAME_TITLE_RE.sub(lambda m: m.group(1) + MASK * len(m.group(2)), s)
    s = HOUSE_NO_RE.sub(lambda m: MASK * len(m.group(1)), s)
    return s


NAME_LENGTHS = (4, 3, 2)  # Chinese names: 2–4 characters, longest match first


def _name_set(names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, frozenset):
        return names
    return frozenset(n for n in names if n and len(n) >= 2)


def _mask_known(s: str, names: frozenset[str]) -> str:
    """Mask every occurrence of a known name: one set lookup per position and length (fast for
    tens of thousands of names, unlike one replace per name)."""
    if not names:
        return s
    out, i, n = [], 0, len(s)
    while i < n:
        for length in NAME_LENGTHS:
            if i + length <= n and s[i:i + length] in names:
                out.append(mask_name(s[i:i + length]))
                i += length
                break
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


NAME_FIELDS = frozenset({"reporter_name", "name", "leader_name", "actor_name", "person_name"})
PHONE_FIELDS = frozenset({"reporter_phone", "phone", "leader_phone"})
ID_FIELDS = frozenset({"reporter_id_no", "id_no"})
TEXT_FIELDS = frozenset({"title", "description", "address", "text", "note", "label", "summary", "popup"})


def mask_record(row: Mapping, known_names: Iterable[str] = (), *, name_fields: Iterable[str] = NAME_FIELDS) -> dict:
    """A copy of ``row`` with personal fields masked and free-text fields passed through :func:`mask_text`."""
    name_fields = frozenset(name_fields)
    own = {v for k in name_fields if isinstance(v := row.get(k), str) and len(v) >= 2}
    names = _name_set(known_names) | own if own else _name_set(known_names)
    out = dict(row)
    for k, v in row.items():
        if not isinstance(v, str) or not v:
            continue
        if k in name_fields:
            out[k] = mask_name(v)
        elif k in PHONE_FIELDS:
            out[k] = mask_phone(v)
        elif k in ID_FIELDS:
            out[k] = mask_id_no(v)
        elif k in TEXT_FIELDS:
            out[k] = mask_text(v, names)
    return out


def mask_feature_collection(fc: dict, known_names: Iterable[str] = ()) -> dict:
    """A copy of a GeoJSON FeatureCollection with every feature's properties masked."""
    names = _name_set(known_names)
    feats = [
        {**f, "properties": mask_record(f.get("properties") or {}, names)} for f in fc.get("features", [])
    ]
    return {**fc, "features": feats}


def known_names(conn, limit: int = 50_000) -> frozenset[str]:
    """Names of people and of recent reporters in the replica (to find them inside free text)."""
    names: set[str] = set()
    for sql in (
        "SELECT name FROM people",
        f"SELECT reporter_name FROM events WHERE reporter_name IS NOT NULL ORDER BY id DESC LIMIT {int(limit)}",
    ):
        try:
            names.update(r[0] for r in conn.execute(sql) if r[0])
        except Exception:  # noqa: BLE001 - an older replica without the column: nothing to add
            continue
    return frozenset(n for n in names if len(n) >= 2)


def find_personal(text: str, known_names: Iterable[str] = ()) -> list[str]:
    """Unmasked phones, ID numbers and known names found in ``text`` (empty when clean)."""
    found = [m.group(0) for m in MOBILE_RE.finditer(text or "")]
    found += [m.group(0) for m in ID_NO_RE.finditer(text or "")]
    found += [n for n in _name_set(known_names) if n in (text or "")]
    return found


_LAYER_FIELDS = {"events": ("title", "address", "description"), "staff": ("name",)}


def mask_layer(key: str, fc: dict, known_names: Iterable[str] = ()) -> dict:
    """A map layer's FeatureCollection with personal data masked: event texts and staff names
    (grid, street and device names are not personal and stay as they are)."""
    fields = _LAYER_FIELDS.get(key)
    if not fields:
        return fc
    names = _name_set(known_names)
    feats = []
    for f in fc.get("features", []):
        props = dict(f.get("properties") or {})
        for k in fields:
            v = props.get(k)
            if isinstance(v, str) and v:
                props[k] = mask_name(v) if (key == "staff" and k == "name") else mask_text(v, names)
        feats.append({**f, "properties": props})
    return {**fc, "features": feats}


def mask_map_delta(delta: dict, known_names: Iterable[str] = ()) -> dict:
    """A map delta (``layers.command.build_delta``) with its point layers masked like :func:`mask_layer`."""
    out: dict = {}
    for key, part in delta.items():
        if isinstance(part, dict) and isinstance(part.get("upsert"), list):
            part = {**part, "upsert": mask_layer(key, {"features": part["upsert"]}, known_names)["features"]}
        out[key] = part
    return out
