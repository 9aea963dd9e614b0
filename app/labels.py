"""Display labels (Chinese and English) for the replica's codes. Qt-free.

``label(kind, code, lang)`` is the one lookup the views use; an unknown code is shown
as itself (never hidden), so a new status or source from an import stays visible.
"""

from __future__ import annotations

from collections.abc import Mapping

# code -> (zh, en); dict order is the display order (combos, legends).
STATUSES: dict[str, tuple[str, str]] = {
    "reported": ("上报", "Reported"),
    "accepted": ("受理", "Accepted"),
    "dispatched": ("派遣", "Dispatched"),
    "returned": ("退回", "Returned"),
    "acknowledged": ("签收", "Acknowledged"),
    "on_site": ("到场", "On site"),
    "deferred": ("缓办", "Deferred"),
    "handled": ("处置完毕", "Handled"),
    "verified": ("核查通过", "Verified"),
    "closed": ("结案", "Closed"),
    "rejected": ("不予受理", "Rejected"),
    "merged": ("已合并", "Merged"),
}

SOURCES: dict[str, tuple[str, str]] = {
    "grid_app": ("网格通App", "Grid app"),
    "hotline_12345": ("12345热线", "12345 hotline"),
    "citymgmt": ("数字城管", "Digital city management"),
    "video_ai": ("雪亮视频AI", "Xueliang video AI"),
    "iot": ("物联感知", "IoT sensor"),
    "ecology_eye": ("长江生态眼", "Yangtze ecology eye"),
    "robot": ("网格机器人", "Grid robot"),
    "manual": ("人工录入", "Manual entry"),
    "drill": ("演练注入", "Drill inject"),
}

CLASSES: dict[str, tuple[str, str]] = {
    "ordinary": ("一般", "Ordinary"),
    "emergency": ("紧急", "Emergency"),
    "assigned": ("交办", "Assigned"),
}

# Priority 1 is the highest; shown with the national four-level warning numerals,
# always in words (colour alone never carries the level).
PRIORITIES: dict[int, tuple[str, str]] = {
    1: ("Ⅰ级", "P1"),
    2: ("Ⅱ级", "P2"),
    3: ("Ⅲ级", "P3"),
    4: ("Ⅳ级", "P4"),
}

QUEUE_TABS: dict[str, tuple[str, str]] = {
    "pending": ("待处理", "Pending"),
    "open": ("办理中", "Open"),
    "overdue": ("超时", "Overdue"),
}

WINDOWS: dict[str | None, tuple[str, str]] = {
    "1h": ("近1小时", "Last hour"),
    "24h": ("近24小时", "Last 24 h"),
    "7d": ("近7天", "Last 7 days"),
    "30d": ("近30天", "Last 30 days"),
    None: ("全部", "Any time"),
}

CLOCKS: dict[str, tuple[str, str]] = {
    "response": ("响应", "Response"),
    "arrival": ("到场", "Arrival"),
    "handle": ("办理", "Handling"),
}

# issue 9: the console's sync indicator and refusals dialog (widgets/sync_status.py)
SYNC: dict[str, tuple[str, str]] = {
    "online": ("在线", "Online"),
    "offline": ("离线", "Offline"),
    "unknown": ("连接中", "Connecting"),
    "idle": ("未启动同步", "Sync not running"),
    "not_client": ("非同步副本", "Not a sync replica"),
    "pending": ("待同步", "Pending"),
    "last_sync": ("上次同步", "Last sync"),
    "never": ("从未", "never"),
    "refused": ("被拒", "Refused"),
    "refusals_title": ("被拒绝的改动", "Refused changes"),
    "ack": ("知道了", "Acknowledge"),
    "ack_all": ("全部知道了", "Acknowledge all"),
    "close": ("关闭", "Close"),
    "col_time": ("拒绝时间", "Refused at"),
    "col_event": ("事件", "Event"),
    "col_action": ("操作", "Action"),
    "col_reason": ("原因", "Reason"),
    "col_state": ("已回退到", "Rolled back to"),
    "upstream": ("上级服务器", "Upstream"),
    "client_id": ("客户端标识", "Client id"),
    "cursor": ("已拉取至", "Pulled up to"),
    "oldest": ("最早待同步", "Oldest pending"),
    "error": ("最近错误", "Last error"),
    "unsynced": ("未同步", "unsynced"),
}

TABLES: dict[str, Mapping] = {
    "status": STATUSES,
    "source": SOURCES,
    "class": CLASSES,
    "priority": PRIORITIES,
    "tab": QUEUE_TABS,
    "window": WINDOWS,
    "clock": CLOCKS,
    "sync": SYNC,
}


def label(kind: str, code, lang: str = "zh") -> str:
    """The label of ``code`` in table ``kind`` ('status', 'source', 'class', 'priority', ...).

    ``lang`` is 'zh' (default) or 'en'. Unknown codes come back as ``str(code)``;
    ``None`` comes back as '' (except in tables that label ``None``, like 'window').
    """
    table = TABLES.get(kind)
    if table is None:
        raise KeyError(f"unknown label kind {kind!r}; known: {', '.join(TABLES)}")
    pair = table.get(code)
    if pair is None and kind == "priority" and code is not None:
        try:
            pair = table.get(int(code))
        except (TypeError, ValueError):
            pair = None
    if pair is None:
        return "" if code is None else str(code)
    return pair[1] if lang == "en" else pair[0]


def choices(kind: str, lang: str = "zh") -> list[tuple[object, str]]:
    """``[(code, label), ...]`` in display order, for combos and legends."""
    return [(code, label(kind, code, lang)) for code in TABLES[kind]]
