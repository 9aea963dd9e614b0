"""The event lifecycle: one pure state machine (DESIGN.md's table is the contract).

Transitions change ``events.status``; overlays are logged actions that leave it alone.
Both are written to ``event_log`` by the write path in ``db/``.
"""

from __future__ import annotations

from dataclasses import dataclass

# state -> {action: next state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "reported": {"accept": "accepted", "reject": "rejected", "merge": "merged"},
    "accepted": {"dispatch": "dispatched", "merge": "merged", "reject": "rejected"},
    "dispatched": {"acknowledge": "acknowledged", "return": "returned"},
    "returned": {"dispatch": "dispatched", "reject": "rejected"},
    "acknowledged": {"arrive": "on_site", "return": "returned", "defer": "deferred"},
    "on_site": {"handle": "handled", "defer": "deferred"},
    "deferred": {"resume": "acknowledged", "arrive": "on_site"},
    "handled": {"verify": "verified", "rework": "dispatched"},
    "verified": {"close": "closed"},
    "closed": {},
    "rejected": {},
    "merged": {},
}

STATES: tuple[str, ...] = tuple(TRANSITIONS)
TERMINAL: frozenset[str] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
OPEN: frozenset[str] = frozenset(STATES) - TERMINAL

# The timestamp column set when an event enters a state.
STAGE_COLUMN: dict[str, str] = {
    "accepted": "accepted_at",
    "dispatched": "dispatched_at",
    "acknowledged": "acknowledged_at",
    "on_site": "on_site_at",
    "handled": "handled_at",
    "verified": "verified_at",
    "closed": "closed_at",
    "rejected": "rejected_at",
}

OVERLAYS: frozenset[str] = frozenset(
    {"whistle", "check_in", "supervise", "extend", "note", "evaluate", "imported"}
)

# Actions that need a reason in the note.
NEEDS_REASON: frozenset[str] = frozenset({"reject", "return", "defer", "rework", "extend"})

ACTION_LABELS_ZH: dict[str, str] = {
    "report": "上报",
    "accept": "受理",
    "reject": "不予受理",
    "merge": "合并",
    "dispatch": "派遣",
    "return": "退回",
    "acknowledge": "签收",
    "arrive": "到场",
    "defer": "缓办",
    "resume": "恢复办理",
    "handle": "处置完毕",
    "verify": "核查通过",
    "rework": "返工",
    "close": "结案",
    "whistle": "吹哨",
    "check_in": "部门报到",
    "supervise": "督办",
    "extend": "延期",
    "note": "备注",
    "evaluate": "综合评价",
    "imported": "导入",
}

ACTION_LABELS_EN: dict[str, str] = {
    "report": "Report",
    "accept": "Accept",
    "reject": "Reject",
    "merge": "Merge",
    "dispatch": "Dispatch",
    "return": "Return",
    "acknowledge": "Acknowledge",
    "arrive": "On site",
    "defer": "Defer",
    "resume": "Resume",
    "handle": "Handled",
    "verify": "Verify",
    "rework": "Rework",
    "close": "Close",
    "whistle": "Whistle",
    "close_whistle": "End whistle",
    "check_in": "Dept check-in",
    "supervise": "Supervise",
    "extend": "Extend",
    "note": "Note",
    "evaluate": "Evaluate",
    "imported": "Imported",
}


def action_label(action: str, lang: str = "zh") -> str:
    """The display label of ``action`` ('zh' or 'en'); an unknown action is shown as itself."""
    if lang == "en":
        return ACTION_LABELS_EN.get(action, action)
    if action == "close_whistle":
        return "结束吹哨"
    return ACTION_LABELS_ZH.get(action, action)


class IllegalTransition(ValueError):
    """An action that the lifecycle does not allow from the current state."""


@dataclass(frozen=True)
class Step:
    action: str
    from_status: str
    to_status: str


def next_status(status: str, action: str) -> str:
    """The state after ``action`` from ``status``; raises ``IllegalTransition`` naming the rule."""
    if status not in TRANSITIONS:
        raise IllegalTransition(f"未知状态 unknown status '{status}'")
    if action in OVERLAYS:
        return status
    allowed = TRANSITIONS[status]
    if action not in allowed:
        options = ", ".join(sorted(allowed)) or "none (terminal state)"
        raise IllegalTransition(
            f"不允许的操作：'{action}' from '{status}' is not in the lifecycle table; "
            f"allowed from '{status}': {options}"
        )
    return allowed[action]


def check_overlay(status: str, action: str) -> None:
    """Overlays have their own preconditions (e.g. evaluation only once handled)."""
    if action not in OVERLAYS:
        raise IllegalTransition(f"'{action}' is not an overlay")
    if action == "evaluate" and status not in {"handled", "verified", "closed"}:
        raise IllegalTransition(f"综合评价只能在处置完毕后进行: evaluate needs handled/verified/closed, not '{status}'")
    if action in {"whistle", "check_in", "supervise", "extend"} and status in TERMINAL:
        raise IllegalTransition(f"'{action}' is not allowed on a {status} event")


def legal_actions(status: str) -> list[str]:
    """Transitions available from ``status`` in table order."""
    return list(TRANSITIONS.get(status, {}))


def path_to(target: str, *, rework: int = 0, deferred: bool = False) -> list[Step]:
    """The usual route from ``reported`` to ``target`` (used by generators and tests).

    ``rework`` inserts handled → dispatched loops; ``deferred`` adds a 缓办 suspension.
    """
    main = ["accept", "dispatch", "acknowledge", "arrive", "handle", "verify", "close"]
    if target == "rejected":
        actions = ["reject"]
    elif target == "merged":
        actions = ["merge"]
    elif target == "returned":
        actions = ["accept", "dispatch", "return"]
    elif target == "deferred":
        actions = ["accept", "dispatch", "acknowledge", "defer"]
    else:
        actions = []
        for a in main:
            actions.append(a)
            if a == "acknowledge" and deferred:
                actions += ["defer", "resume"]
            if a == "handle" and rework:
                for _ in range(rework):
                    actions += ["rework", "acknowledge", "arrive", "handle"]
            if TRANSITIONS_TARGET.get(a) == target:
                break
        if target == "reported":
            actions = []
    steps: list[Step] = []
    status = "reported"
    for a in actions:
        nxt = next_status(status, a)
        steps.append(Step(a, status, nxt))
        status = nxt
    if status != target:
        raise IllegalTransition(f"no standard path to '{target}'")
    return steps


TRANSITIONS_TARGET: dict[str, str] = {
    "accept": "accepted",
    "dispatch": "dispatched",
    "acknowledge": "acknowledged",
    "arrive": "on_site",
    "handle": "handled",
    "verify": "verified",
    "close": "closed",
}
