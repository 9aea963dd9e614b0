"""What the intake screens read and decide, Qt-free (issue 4): the import formats and their
labels, the quarantine list with its counts, merge suggestions with whether they can be
accepted now, and the search of past events by phone number or address (section 6).

Views call these on a worker thread with their own read connection; nothing here imports Qt.

Personal data: :func:`may_see_personal` decides whether reporters' names and phones are shown;
when they may not be, :func:`search_history` masks them *here*, before they reach any widget
(``138****1234``, ``张**``).
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass, field

import orjson

from app import access, labels, masking
from app.lifecycle import TRANSITIONS
from app.queue import clean_text, fts_phrase, like_pattern

# -- import -----------------------------------------------------------------------------------------
#: the importer's formats, in menu order, with what an operator calls them
IMPORT_FORMATS: dict[str, str] = {
    "12345-csv": "12345热线工单（CSV）",
    "open311": "Open311 服务请求（JSON / XML）",
    "citymgmt": "数字城管案件（JSON）",
    "iot-jsonl": "物联感知告警（JSON Lines）",
}
ENCODINGS: dict[str | None, str] = {
    None: "自动检测（UTF-8 / GB18030）",
    "utf-8": "UTF-8",
    "gb18030": "GB18030",
    "gbk": "GBK",
}
IMPORT_FORMATS_EN: dict[str, str] = {
    "12345-csv": "12345 hotline tickets (CSV)",
    "open311": "Open311 service requests (JSON / XML)",
    "citymgmt": "City-management cases (JSON)",
    "iot-jsonl": "IoT sensor alarms (JSON Lines)",
}
ENCODINGS_EN: dict[str | None, str] = {None: "Auto-detect (UTF-8 / GB18030)"}
DATUMS_EN: dict[str, str] = {
    "WGS-84": "WGS-84 (GPS)",
    "GCJ-02": "GCJ-02 (Amap / Tencent)",
    "BD-09": "BD-09 (Baidu)",
    "CGCS2000": "CGCS2000 (China 2000)",
}
DATUMS: dict[str, str] = {
    "WGS-84": "WGS-84（GPS）",
    "GCJ-02": "GCJ-02（高德 / 腾讯 火星坐标）",
    "BD-09": "BD-09（百度）",
    "CGCS2000": "CGCS2000（国家2000）",
}


def guess_format(path: str) -> str | None:
    """The likely format of a file from its name (the operator can change it)."""
    name = str(path).lower()
    if name.endswith(".csv") or name.endswith(".txt"):
        return "12345-csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "iot-jsonl"
    if name.endswith(".xml"):
        return "open311"
    if name.endswith(".json"):
        return "citymgmt" if any(k in name for k in ("citymgmt", "cgj", "城管", "case")) else "open311"
    return None


# -- quarantine ---------------------------------------------------------------------------------------
QUARANTINE_STATUSES: dict[str | None, str] = {
    "open": "待处理",
    "fixed": "已修复",
    "discarded": "已丢弃",
    None: "全部",
}
QUARANTINE_STATUSES_EN: dict[str | None, str] = {
    "open": "Open",
    "fixed": "Fixed",
    "discarded": "Discarded",
    None: "All",
}
#: reason kinds (the text before the first colon) → Chinese, for the operator; the exact reason
#: is always shown next to it
REASON_ZH: dict[str, str] = {
    "missing field": "缺少必填项",
    "bad date": "时间无效",
    "non-numeric coordinate": "坐标不是数字",
    "coordinate out of range": "坐标超出范围",
    "unknown datum": "坐标系无法识别",
    "address not found": "地址未匹配",
    "point outside the district": "坐标不在崇川区内",
    "truncated line": "行不完整（被截断）",
    "truncated record": "记录不完整（被截断）",
    "malformed JSON": "JSON 格式错误",
    "malformed CSV": "CSV 格式错误",
    "malformed XML": "XML 格式错误",
    "too few fields": "字段数不足",
    "encoding error": "编码错误",
}
#: the same kinds in English (the stored reason itself is English data, shown as it is)
REASON_EN: dict[str, str] = {
    "missing field": "Missing required field",
    "bad date": "Invalid date/time",
    "non-numeric coordinate": "Coordinate is not a number",
    "coordinate out of range": "Coordinate out of range",
    "unknown datum": "Unknown datum",
    "address not found": "Address not found",
    "point outside the district": "Point outside Chongchuan District",
    "truncated line": "Truncated line",
    "truncated record": "Truncated record",
    "malformed JSON": "Malformed JSON",
    "malformed CSV": "Malformed CSV",
    "malformed XML": "Malformed XML",
    "too few fields": "Too few fields",
    "encoding error": "Encoding error",
}
_CJK_RUN = re.compile(
    r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff0f\uff1a-\uff20]+"
    r"(?:\s*[\d,.]+\s*[\u3400-\u4dbf\u4e00-\u9fff]+)*\s*"
)  # a Chinese run, with numbers inside it ("写入 12 条记录")
_BILINGUAL = re.compile(r"[\d,.\s]*[\u3400-\u4dbf\u4e00-\u9fff]")  # opens in Chinese (after a count)


def tr(zh: str, en: str, lang: str = "zh") -> str:
    """``en`` in English mode, else ``zh``."""
    return en if lang == "en" else zh


def english_part(text: str | None) -> str:
    """The English part of a back end's bilingual message (``"已取消 cancelled: …"`` → ``"cancelled: …"``;
    ``"12 条记录已写入 records written"`` → ``"12 records written"``). A text without any Latin
    letters (a data value), or one that does not open in Chinese (an English reason naming a
    Chinese address, a path), comes back as it is."""
    text = text or ""
    if not re.search(r"[A-Za-z]", text) or not _BILINGUAL.match(text):
        return text
    return re.sub(r"\s{2,}", " ", _CJK_RUN.sub(" ", text)).strip()


def bilingual(text: str | None, lang: str = "zh") -> str:
    """A back end's ``中文 english`` message as the UI language shows it (Chinese: unchanged)."""
    return english_part(text) if lang == "en" else (text or "")


def quarantine_status(status: str | None, lang: str = "zh") -> str:
    """待处理 / Open, 已修复 / Fixed, …"""
    table = QUARANTINE_STATUSES_EN if lang == "en" else QUARANTINE_STATUSES
    return table.get(status, str(status))


def reason_label(kind: str, lang: str = "zh") -> str:
    """The operator's name of a reason kind (``unknown datum`` → 坐标系无法识别 / Unknown datum);
    an unknown kind comes back as it is."""
    table = REASON_EN if lang == "en" else REASON_ZH
    return table.get(kind, kind)


def reason_kind(reason: str | None) -> str:
    return (reason or "").split(":", 1)[0].strip()


def reason_zh(reason: str | None, lang: str = "zh") -> str:
    """``坐标系无法识别 · unknown datum: 'XYZ'`` (the exact reason kept as it is); in English
    ``Unknown datum · unknown datum: 'XYZ'``."""
    if not reason:
        return ""
    kind = reason_kind(reason)
    name = (REASON_EN if lang == "en" else REASON_ZH).get(kind)
    return f"{name} · {reason}" if name else reason


def reason_short(reason: str | None, lang: str = "zh") -> str:
    """``坐标系无法识别：'XYZ'`` — the kind's label and the detail after the colon (for tables);
    in English ``Unknown datum: 'XYZ'``."""
    if not reason:
        return ""
    kind, _, detail = reason.partition(":")
    name = (REASON_EN if lang == "en" else REASON_ZH).get(kind.strip())
    if name is None:
        return reason
    sep = ": " if lang == "en" else "："
    return f"{name}{sep}{detail.strip()}" if detail.strip() else name


_RESOLUTIONS = (
    ("re-submitted with corrected text", "按修改后的原文重新提交"),
    ("re-submitted with corrected fields", "按修改后的字段重新提交："),
    ("re-submitted unchanged", "原样重新提交"),
    ("superseded: the record was imported by run", "该记录已由导入批次导入："),
)


def resolution_zh(note: str | None, lang: str = "zh") -> str:
    """The back end's resolution note with its fixed English phrases in Chinese (in English: as it is)."""
    text = note or ""
    if lang == "en":
        return text
    for en, zh in _RESOLUTIONS:
        if text.startswith(en):
            rest = text[len(en):].lstrip(" :")
            if zh.endswith("："):
                return zh + rest if rest else zh.rstrip("：")
            return zh + (f"：{rest}" if rest else "")
    return text


IMPORT_COUNTS: dict[str, tuple[str, str]] = {
    "created": ("新建", "Created"),
    "updated": ("更新", "Updated"),
    "unchanged": ("未变", "Unchanged"),
    "quarantined": ("隔离", "Quarantined"),
}


def import_summary(result, lang: str = "zh") -> str:
    """``新建 4 · 更新 0 · 未变 0 · 隔离 8`` for an ``ImportResult`` (``Created 4 · …`` in English)."""
    return " · ".join(f"{tr(zh, en, lang)} {getattr(result, k):,}" for k, (zh, en) in IMPORT_COUNTS.items())


def import_details(result, lang: str = "zh") -> str:
    """The line under the counts: records, resumed, to classify, merge suggestions, readings,
    encoding and time."""
    r, en = result, lang == "en"
    bits = [f"{r.records:,} records" if en else f"共 {r.records:,} 条记录"]
    if r.skipped:
        bits.append(f"resumed: {r.skipped:,} already committed skipped" if en else f"续传：跳过已提交的 {r.skipped:,} 条")
    if r.needs_classification:
        bits.append(f"{r.needs_classification:,} to classify" if en else f"{r.needs_classification:,} 件待分类")
    if r.suggestions:
        bits.append(f"{r.suggestions:,} merge suggestion(s)" if en else f"{r.suggestions:,} 条合并建议")
    if r.readings:
        bits.append(f"sensor readings {r.readings:,} ({r.invalid_readings:,} invalid)" if en
                    else f"传感读数 {r.readings:,}（无效 {r.invalid_readings:,}）")  # fmt: skip
    bits.append(f"{tr('编码', 'encoding', lang)} {r.encoding or '—'}")
    bits.append(f"{r.elapsed_s:.1f} s" if en else f"用时 {r.elapsed_s:.1f} 秒")
    return " · ".join(bits)


def import_reason_line(kind: str, n: int, examples: list, lang: str = "zh") -> str:
    """``坐标系无法识别 × 1（第 5 行） — unknown datum: 'XYZ'`` for one reason kind of a result."""
    en = lang == "en"
    lines = (", " if en else "、").join(str(line) for line, _ in examples) + ("…" if n > len(examples) else "")
    where = (f" (line {lines})" if en else f"（第 {lines} 行）") if examples else ""
    return f"{reason_label(kind, lang)} × {n:,}{where}" + (f" — {examples[0][1]}" if examples else "")


def excerpt(text: str | None, n: int = 80) -> str:
    """One line of at most ``n`` characters (line breaks shown as ⏎)."""
    if not text:
        return ""
    one = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", " ⏎ ").replace("\t", " ")
    return one if len(one) <= n else one[: n - 1] + "…"


@dataclass
class QuarantineView:
    rows: list[dict]
    counts: dict[str, int]
    status: str | None
    truncated: bool


def load_quarantine(conn: sqlite3.Connection, status: str | None = "open", *, limit: int = 500) -> QuarantineView:
    """One read snapshot: the rows with ``status`` (None = all), newest first, and the counts per
    status. Each row carries ``fields_dict`` (the canonical fields the reader found, or {})."""
    from db import quarantine

    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        rows = quarantine.list_quarantine(conn, status=status, limit=limit + 1)
        counts = quarantine.counts(conn)
    finally:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
    _decorate(conn, rows)
    return QuarantineView(rows[:limit], {k: counts.get(k, 0) for k in ("open", "fixed", "discarded")},
                          status, len(rows) > limit)  # fmt: skip


def load_quarantine_row(conn: sqlite3.Connection, qid: int) -> dict | None:
    """One quarantine row (any status) decorated like :func:`load_quarantine`'s, or None."""
    r = conn.execute("SELECT * FROM quarantine WHERE id = ?", (qid,)).fetchone()
    if r is None:
        return None
    rows = [dict(r)]
    _decorate(conn, rows)
    return rows[0]


def _decorate(conn: sqlite3.Connection, rows: list[dict]) -> None:
    """``fields_dict`` (the canonical fields the reader found, or {}) and ``resolved_by_name``."""
    uids = sorted({r["resolved_by"] for r in rows if r.get("resolved_by")})
    names = {}
    if uids:
        names = dict(conn.execute("SELECT uid, name FROM people WHERE uid IN (SELECT value FROM json_each(?))",
                                  (orjson.dumps(uids).decode(),)).fetchall())  # fmt: skip
    for r in rows:
        try:
            r["fields_dict"] = orjson.loads(r["fields"]) if r.get("fields") else {}
        except orjson.JSONDecodeError:
            r["fields_dict"] = {}
        r["resolved_by_name"] = names.get(r.get("resolved_by")) or r.get("resolved_by") or ""


def changed_fields(original: dict, edited: dict) -> dict:
    """The canonical fields the operator changed (blank = cleared → None)."""
    out: dict = {}
    for k, v in edited.items():
        v = (v or "").strip() if isinstance(v, str) else v
        old = original.get(k)
        old = "" if old is None else str(old)
        if (v or "") != old:
            out[k] = v if v != "" else None
    return out


# -- merge suggestions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MergeCheck:
    ok: bool
    why: str = ""


def merge_check(row: dict, session=None, lang: str | None = None) -> MergeCheck:
    """Can ``row`` (a ``db.merge_suggestions.list_suggestions`` row) be accepted now: merge the
    newer event into the older one? Checks the lifecycle (``merge`` from the event's state), the
    target (a live event) and, with ``session``, the role and scope. ``why`` is in ``lang``
    (default: the session's language, else Chinese)."""
    lang = lang or getattr(session, "lang", None) or "zh"
    st, other = row.get("event_status"), row.get("other_status")
    if "merge" not in TRANSITIONS.get(st, {}):
        if lang == "en":
            allowed = ", ".join(labels.label("status", s, "en") for s, t in TRANSITIONS.items() if "merge" in t)
            return MergeCheck(False, f"event #{row['event_id']} is {labels.label('status', st, 'en')}; "
                                     f"only events that are {allowed} can be merged")  # fmt: skip
        allowed = "、".join(labels.label("status", s) for s, t in TRANSITIONS.items() if "merge" in t)
        return MergeCheck(False, f"事件 #{row['event_id']} 处于「{labels.label('status', st)}」，"
                                 f"只有「{allowed}」状态的事件可以合并")  # fmt: skip
    if other in ("merged", "rejected"):
        if lang == "en":
            return MergeCheck(False, f"target event #{row['other_id']} is {labels.label('status', other, 'en')}: "
                                     "nothing can be merged into it")  # fmt: skip
        return MergeCheck(False, f"目标事件 #{row['other_id']} 已{labels.label('status', other)}，不能并入")
    if session is not None:
        event = {"id": row["event_id"], "street_code": row.get("event_street"), "drill_id": row.get("event_drill")}
        try:
            access.check(session, "merge", event)
        except access.AccessDenied as exc:
            return MergeCheck(False, tr(f"无权合并：{exc.reason}", f"not allowed to merge: {bilingual(exc.reason, 'en')}",
                                        lang))  # fmt: skip
    return MergeCheck(True)


def load_suggestions(conn: sqlite3.Connection, *, status: str | None = "open", limit: int = 200) -> list[dict]:
    """Open merge suggestions with both events' titles and states, plus what the role check
    needs (street, drill) and the other event's category name."""
    from db import merge_suggestions

    rows = merge_suggestions.list_suggestions(conn, status=status, limit=limit)
    if not rows:
        return rows
    ids = sorted({r["event_id"] for r in rows} | {r["other_id"] for r in rows})
    extra = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT e.id, e.street_code, e.drill_id, c.name_zh, s.name, c.name_en FROM events e "
            "LEFT JOIN categories c ON c.code = e.category LEFT JOIN streets s ON s.code = e.street_code "
            "WHERE e.id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(ids).decode(),),
        )
    }
    for r in rows:
        street, drill, cat, street_name, cat_en = extra.get(r["event_id"], (None, None, None, None, None))
        r.update(event_street=street, event_drill=drill, category_name=cat or r.get("category"),
                 category_name_en=cat_en or cat or r.get("category"), street_name=street_name or street or "")  # fmt: skip
    return rows


def accept_suggestion(service, row: dict) -> dict:
    """Accept a merge suggestion as ``service``'s session: the role/scope check (a refusal is
    logged to ``access_log``), the lifecycle check, then :func:`db.merge_suggestions.accept` —
    the ``merge`` transition with its ``event_log`` row and the suggestion marked accepted, in
    one transaction, against the event version the operator saw. Returns the merged event row.
    Raises ``AccessDenied``, ``IllegalTransition``, ``ConflictError``, ``SuggestionError``."""
    from app.lifecycle import IllegalTransition
    from db import merge_suggestions

    event = service.get(row["event_id"])  # the read check (logged if refused)
    try:
        access.check(service.session, "merge", event)
    except access.AccessDenied as exc:
        access.record_refusal(service.replica, service.session, "merge", row["event_id"], exc.reason,
                              actor=service.actor)  # fmt: skip
        raise
    check = merge_check({**row, "event_status": event["status"]}, lang=getattr(service.session, "lang", None))
    if not check.ok:
        raise IllegalTransition(check.why)
    guard = service._guard("merge")  # again inside the transaction, on both events
    try:
        return merge_suggestions.accept(service.replica, int(row["id"]), actor=service.actor,
                                        expected_version=int(row["event_version"]), guard=guard)  # fmt: skip
    except access.AccessDenied as exc:
        access.record_refusal(service.replica, service.session, "merge", row["event_id"], exc.reason,
                              actor=service.actor)  # fmt: skip
        raise


# -- search history (section 6) ------------------------------------------------------------------
PERSONAL_ROLES = frozenset({"district", "street"})
_DIGITS = re.compile(r"\D+")
_PHONE_LIKE = re.compile(r"^[\d\s+\-()（）]+$")
FTS_MIN_CHARS = 3  # the trigram tokenizer matches 3 characters and more
HISTORY_LIMIT = 200


def may_see_personal(session) -> bool:
    """Reporters' names and phones are shown to the district and street roles (a street role only
    ever reads its own street's events); department, drill and wall roles see them masked."""
    return getattr(session, "role", None) in PERSONAL_ROLES


def mask_phone(phone: str | None) -> str:
    """``138****1234`` (see :func:`app.masking.mask_phone`, the one implementation)."""
    return masking.mask_phone(phone)


def mask_name(name: str | None) -> str:
    return masking.mask_name(name)


def mask_phones_in(text: str | None) -> str:
    return masking.MOBILE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), text or "")


def search_mode(text: str) -> str:
    """``phone`` when the text is a number (digits, spaces, + - ( )) with at least 3 digits,
    else ``address``."""
    t = clean_text(text)
    if t and _PHONE_LIKE.match(t) and len(_DIGITS.sub("", t)) >= 3:
        return "phone"
    return "address"


@dataclass
class HistoryResult:
    query: str
    mode: str  # phone | address
    rows: list[dict] = field(default_factory=list)
    truncated: bool = False
    personal: bool = False  # names and phones shown as they are
    elapsed_ms: float = 0.0
    message: str = ""


_HISTORY_COLUMNS = (
    "e.id, e.uid, e.source, e.external_id, e.title, e.status, e.address, e.reported_at, e.closed_at, "
    "e.category, e.street_code, e.drill_id, e.reporter_name, e.reporter_phone, "
    "c.name_zh AS category_name, c.name_en AS category_name_en, s.name AS street_name"
)


def search_history(conn: sqlite3.Connection, session, text: str, mode: str = "auto", *,
                   limit: int = HISTORY_LIMIT, lang: str | None = None) -> HistoryResult:  # fmt: skip
    """Past events (every status, drills included and marked) matching a phone number or an
    address, newest first, restricted to what ``session`` may read.

    ``phone`` (3+ digits): ``reporter_phone`` equal to the number (as typed or as bare digits) or,
    for a partial number, containing it; or the digits in the description through the trigram
    index (``events_fts``). ``address``: the trigram index on the address (3+ characters), else
    a ``LIKE`` walk of the events newest first for 1–2 characters. Names and phones are masked unless :func:`may_see_personal`.
    Labels and messages are in ``lang`` (default: the session's language).
    """
    t0 = time.perf_counter()
    lang = lang or getattr(session, "lang", None) or "zh"
    q = clean_text(text)[:100]
    mode = search_mode(q) if mode in (None, "", "auto") else mode
    if mode not in ("phone", "address"):
        raise ValueError(f"unknown search mode {mode!r}; use phone, address or auto")
    personal = may_see_personal(session)
    res = HistoryResult(q, mode, personal=personal)
    vis, params = access.visible_filter(session, "e")
    params = dict(params)
    order = " ORDER BY e.reported_at DESC, e.id DESC LIMIT :limit"
    if mode == "phone":
        digits = _DIGITS.sub("", q)
        if len(digits) < FTS_MIN_CHARS:
            res.message = tr("请输入至少 3 位号码", "Enter at least 3 digits", lang)
            return res
        params.update(phone=digits, phone_raw=q, fts="description : " + fts_phrase(digits))
        # a whole number is a seek in ix_events_reporter_phone (m005); a partial one (3–10 digits)
        # matches anywhere in the number, a scan of that narrow index rather than of the events
        own = "reporter_phone IN (:phone, :phone_raw)"
        if len(digits) < 11:
            params["phone_like"] = like_pattern(digits)
            own += " OR reporter_phone LIKE :phone_like ESCAPE '\\'"
        where = (f"e.id IN (SELECT id FROM events WHERE {own} "
                 "UNION SELECT rowid FROM events_fts WHERE events_fts MATCH :fts)")  # fmt: skip
    elif not q:
        res.message = tr("请输入地址关键词", "Enter an address keyword", lang)
        return res
    elif len(q) >= FTS_MIN_CHARS:
        params["fts"] = "address : " + fts_phrase(q)
        where = "e.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH :fts)"
    else:
        # 1–2 characters are below the trigram index: walk the events newest first and stop at
        # the limit (a common word stops early; a rare one scans them all, ≈120 ms at 100k)
        params["like"] = like_pattern(q)
        where = "e.address LIKE :like ESCAPE '\\'"
    params["limit"] = limit + 1
    sql = (
        f"SELECT {_HISTORY_COLUMNS} FROM events e "
        "LEFT JOIN categories c ON c.code = e.category LEFT JOIN streets s ON s.code = e.street_code "
        f"WHERE {where} AND {vis}{order}"
    )
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    res.truncated = len(rows) > limit
    rows = rows[:limit]
    digits = _DIGITS.sub("", q) if mode == "phone" else ""
    for r in rows:
        phone = r.get("reporter_phone") or ""
        r["matched"] = ("phone" if digits and digits in _DIGITS.sub("", phone) else "description") \
            if mode == "phone" else "address"  # fmt: skip
        r["status_label"] = labels.label("status", r["status"], lang)
        r["source_label"] = labels.label("source", r["source"], lang)
        if not personal:
            r["reporter_phone"] = mask_phone(phone)
            r["reporter_name"] = mask_name(r.get("reporter_name"))
            r["title"] = mask_phones_in(r.get("title"))
            r["address"] = mask_phones_in(r.get("address"))
    res.rows = rows
    res.elapsed_ms = (time.perf_counter() - t0) * 1000
    if not rows:
        res.message = tr("未找到历史事件", "No past events found", lang)
    return res


__all__ = [
    "DATUMS", "ENCODINGS", "IMPORT_FORMATS", "QUARANTINE_STATUSES", "HistoryResult", "MergeCheck",
    "QuarantineView", "accept_suggestion", "changed_fields", "excerpt", "guess_format", "load_quarantine",
    "load_quarantine_row", "load_suggestions", "QUARANTINE_STATUSES_EN", "REASON_EN", "bilingual", "english_part",
    "import_details", "import_reason_line", "quarantine_status", "reason_label", "tr", "mask_name", "mask_phone", "may_see_personal", "merge_check", "reason_short", "reason_zh", "resolution_zh",
    "import_summary",
    "search_history", "search_mode",
]  # fmt: skip
