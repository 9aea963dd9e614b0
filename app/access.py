"""Roles and scopes, enforced below the UI (Qt-free).

| role | reads | acts on |
|---|---|---|
| district | everything | everything |
| street (scope = NBS street code) | its street's events | its street's events, any action, incl. whistles up to district level (escalation) |
| department (scope = department code) | events dispatched to it (``assignee_kind = 'department'``) and events whose whistles summoned it | its dispatched events: acknowledge, return, arrive, defer, resume, handle, note, check-in; summoned events: check-in and note |
| drill | everything | drill events only (``drill_id`` set) |
| wall | everything | nothing (read-only) |

:func:`check` is pure and raises :class:`AccessDenied`; :func:`record_refusal` writes the refusal
to the append-only ``access_log`` through ``db/``; :func:`visible_filter` gives the SQL term
that restricts a query on ``events e`` to what the session may read.
"""

from __future__ import annotations

from db import event_ops

ROLES = ("district", "street", "department", "drill", "wall")
READ = "read"
CREATE = "create"
HANDOVER = "handover"
# What a department may do on an event dispatched to it / on one it was only summoned to.
DEPARTMENT_ACTIONS = frozenset(
    {READ, "acknowledge", "return", "arrive", "defer", "resume", "handle", "note", "check_in"}
)
SUMMONED_ACTIONS = frozenset({READ, "note", "check_in"})


class AccessDenied(PermissionError):
    """An action outside the session's role or scope; ``reason`` says which rule refused it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def actor_of(session) -> str:
    """The actor written to logs: the session's user, else ``role:scope``."""
    if session.user:
        return str(session.user)
    return f"{session.role}:{session.scope}" if session.scope else str(session.role)


def _label(event: dict | None) -> str:
    if not event or event.get("id") is None:
        return "新事件 new event"
    return f"事件 #{event['id']}"


def check(session, action: str, event: dict | None = None) -> None:
    """Raise :class:`AccessDenied` unless ``session`` may do ``action`` on ``event``.

    ``action`` is a lifecycle action, an overlay, ``'read'``, ``'create'`` (``event`` is then
    the record being created, with its located ``street_code`` and ``drill_id``) or
    ``'handover'`` (no event). ``event`` may carry ``summoned_departments`` (the write path
    adds it); without it a department only sees its dispatched events.
    """
    role = session.role
    scope = session.scope
    if role not in ROLES:
        raise AccessDenied(f"未知角色 unknown role {role!r}")
    if role == "district":
        return
    if role == "wall":
        if action == READ:
            return
        raise AccessDenied(f"大屏为只读 the wall is read-only: '{action}' refused")
    if action == HANDOVER:
        return
    if role == "drill":
        if action == READ:
            return
        if event is not None and event.get("drill_id") is not None:
            return
        raise AccessDenied(
            f"演练角色只能操作演练事件 the drill role acts on drill events only; {_label(event)} is not a drill event"
        )
    if not scope:
        raise AccessDenied(f"角色 {role} 未指定范围 role {role} needs --scope CODE")
    if event is None:
        raise AccessDenied(f"'{action}' needs an event")
    if role == "street":
        if event.get("street_code") == scope:
            return
        raise AccessDenied(
            f"超出街道范围 {_label(event)} belongs to street {event.get('street_code')}, outside your scope {scope}"
        )
    # department
    if action == CREATE:
        raise AccessDenied(
            "部门不能直接上报事件 a department receives dispatched work; it does not create events"
        )
    assigned = event.get("assignee_kind") == "department" and event.get("assignee_code") == scope
    summoned = scope in (event.get("summoned_departments") or ())
    if assigned and action in DEPARTMENT_ACTIONS:
        return
    if summoned and action in SUMMONED_ACTIONS:
        return
    if assigned or summoned:
        raise AccessDenied(
            f"部门 {scope} 无权执行 '{action}' department {scope} may not '{action}' {_label(event)}"
        )
    raise AccessDenied(f"非本部门事件 {_label(event)} was not dispatched to department {scope}")


def desk_session(role: str, scope: str | None, desk_street: str | None,
                 desk_dept: str | None) -> tuple[str, str | None, str | None]:  # fmt: skip
    """The console's role on a sync desk whose upstream role is limited to ``desk_street`` or
    ``desk_dept`` (both None: a district desk, anything goes). Returns ``(role, scope, note)``:
    a wider role is narrowed to the desk's scope (the upstream would refuse its changes anyway),
    with ``note`` saying so; the read-only wall keeps its role."""
    if role == "wall" or not (desk_street or desk_dept):
        return role, scope, None
    if desk_dept:
        if role == "department" and scope == desk_dept:
            return role, scope, None
        return ("department", desk_dept,
                f"此工作站的上游账号仅限部门 {desk_dept}：按部门岗位打开 this desk's upstream role is limited to "
                f"department {desk_dept}: opened as that department")  # fmt: skip
    if role in ("street", "department") and (role == "department" or scope == desk_street):
        return role, scope, None
    return ("street", desk_street,
            f"此工作站的上游账号仅限街道 {desk_street}：按街道岗位打开 this desk's upstream role is limited to "
            f"street {desk_street}: opened as that street")  # fmt: skip


def allowed(session, action: str, event: dict | None = None) -> bool:
    try:
        check(session, action, event)
    except AccessDenied:
        return False
    return True


def record_refusal(
    replica, session, action: str, event_id: int | None, reason: str, *, actor: str | None = None
) -> int:
    """Append the refusal to ``access_log`` (append-only; its own transaction)."""
    return event_ops.log_refusal(
        replica, actor=actor or actor_of(session), role=session.role, scope=session.scope, action=action,
        event_id=event_id, reason=reason,
    )  # fmt: skip


def enforce(replica, session, action: str, event: dict | None) -> None:
    """:func:`check`, logging a refusal before re-raising it."""
    try:
        check(session, action, event)
    except AccessDenied as exc:
        record_refusal(replica, session, action, event.get("id") if event else None, exc.reason)
        raise


def visible_filter(session, alias: str = "e") -> tuple[str, dict]:
    """``(sql_term, params)`` restricting a query on ``events {alias}`` to what the session may
    read; named parameters (``:access_scope``) so it composes with ``app.queue`` filters."""
    role = session.role
    if role in ("district", "drill", "wall"):
        return "1", {}
    if role == "street" and session.scope:
        return f"{alias}.street_code = :access_scope", {"access_scope": session.scope}
    if role == "department" and session.scope:
        return (
            f"(({alias}.assignee_kind = 'department' AND {alias}.assignee_code = :access_scope)"
            f" OR {alias}.id IN (SELECT w.event_id FROM whistle_departments wd"
            " JOIN whistles w ON w.id = wd.whistle_id WHERE wd.department_code = :access_scope))",
            {"access_scope": session.scope},
        )
    return "0", {}
