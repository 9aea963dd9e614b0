"""Use cases of the closed loop, as the console and the CLI call them (Qt-free).

``EventService(replica, session)`` checks the session's role and scope (:mod:`app.access`)
*inside* each write transaction (the check sees the event as it is at that moment), logs
refusals to ``access_log`` and writes through :mod:`db.event_ops`. Listeners registered with
``replica.on_commit`` hear the topics after COMMIT only.

Errors the UI shows as they are: ``AccessDenied`` (scope), ``IllegalTransition`` (the
lifecycle rule), ``ConflictError`` ("changed by X at T": reload and retry), ``InvalidAction`` /
``InvalidRecord`` (missing reason, bad payload), ``EventNotFound``.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app import access, clocks
from app.access import AccessDenied
from app.lifecycle import OVERLAYS, TRANSITIONS, check_overlay
from db import event_ops
from db.spatial import KM_PER_DEG_LAT, KM_PER_DEG_LON


@dataclass(frozen=True)
class Suggestion:
    """A dispatch target the console proposes: ``kind`` department|grid|street and ``code``
    (department code, grid leader's person uid, street code) — exactly the ``target_kind`` /
    ``target`` of a dispatch payload."""

    kind: str
    code: str
    name: str
    reason: str
    distance_m: float | None = None

    @property
    def payload(self) -> dict:
        return {"target_kind": self.kind, "target": self.code}


class EventService:
    """The closed-loop use cases for one console session."""

    def __init__(self, replica, session) -> None:
        self.replica = replica
        self.session = session
        self._actor: str | None = None

    # -- identity ----------------------------------------------------------------------------------
    @property
    def actor(self) -> str:
        """The person uid written to logs (``--user`` accepts ``people.id`` or ``people.uid``)."""
        if self._actor is None:
            user = self.session.user
            actor = access.actor_of(self.session)
            if user and str(user).isdigit():
                with self._read() as conn:
                    r = conn.execute("SELECT uid FROM people WHERE id = ?", (int(user),)).fetchone()
                if r:
                    actor = r[0]
            self._actor = actor
        return self._actor

    def _read(self):
        return _Reader(self.replica)

    def _guard(self, action: str):
        session = self.session

        def guard(row: dict) -> None:
            access.check(session, action, row)

        return guard

    def _refused(self, action: str, event_id: int | None, exc: AccessDenied) -> None:
        access.record_refusal(self.replica, self.session, action, event_id, exc.reason, actor=self.actor)

    # -- reads ------------------------------------------------------------------------------------
    def get(self, event_id: int) -> dict:
        """The event row (with ``summoned_departments``), if the session may read it."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                raise event_ops.EventNotFound(f"没有该事件 no event #{event_id}")
            event = dict(row)
            event["summoned_departments"] = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT wd.department_code FROM whistles w JOIN whistle_departments wd "
                    "ON wd.whistle_id = w.id WHERE w.event_id = ?",
                    (event_id,),
                )
            ]
        try:
            access.check(self.session, access.READ, event)
        except AccessDenied as exc:
            self._refused(access.READ, event_id, exc)
            raise
        return event

    def whistles(self, event_id: int) -> list[dict]:
        self.get(event_id)
        with self._read() as conn:
            return event_ops.get_whistles(conn, event_id)

    def visible_filter(self, alias: str = "e") -> tuple[str, dict]:
        return access.visible_filter(self.session, alias)

    def department_queue_filter(self, alias: str = "e") -> tuple[str, dict]:
        """The department liaison's queue: open events dispatched to the department (returned ones
        wait for re-dispatch and drop out) or summoned by one of its open whistles. Other roles get
        :func:`visible_filter`. Combine with ``app.queue``'s open term."""
        if self.session.role != "department" or not self.session.scope:
            return self.visible_filter(alias)
        return (
            f"(({alias}.assignee_kind = 'department' AND {alias}.assignee_code = :access_scope"
            f" AND {alias}.status <> 'returned')"
            f" OR {alias}.id IN (SELECT w.event_id FROM whistle_departments wd JOIN whistles w ON w.id = wd.whistle_id"
            " WHERE wd.department_code = :access_scope AND w.closed_at IS NULL))",
            {"access_scope": self.session.scope},
        )

    def legal_actions(self, event: dict) -> list[str]:
        """Transitions and overlays this session may apply to ``event`` now (for the action bar)."""
        status = event.get("status")
        out = [a for a in TRANSITIONS.get(status, {}) if access.allowed(self.session, a, event)]
        for a in sorted(OVERLAYS - {"imported"}):
            if a == "check_in" and not event.get("summoned_departments"):
                continue  # nothing to check in to without a whistle
            try:
                check_overlay(status, a)
            except event_ops.IllegalTransition:
                continue
            if access.allowed(self.session, a, event):
                out.append(a)
        return out

    def sla(self, event: dict, now: str | dt.datetime | None = None) -> dict:
        return clocks.sla_state(event, now)

    # -- writes -----------------------------------------------------------------------------------
    def act(
        self,
        event_id: int,
        action: str,
        expected_version: int | None,
        note: str | None = None,
        payload: Mapping | None = None,
        *,
        at: str | dt.datetime | None = None,
    ) -> dict:
        """Any transition or overlay (see :func:`db.event_ops.apply_action`); returns the new row."""
        try:
            return event_ops.apply_action(
                self.replica, event_id, action, actor=self.actor, expected_version=expected_version,
                note=note, payload=payload, at=at, guard=self._guard(action),
            )  # fmt: skip
        except AccessDenied as exc:
            self._refused(action, event_id, exc)
            raise

    def dispatch(self, event_id: int, target_kind: str, target: str, expected_version: int,
                 note: str | None = None) -> dict:  # fmt: skip
        return self.act(
            event_id, "dispatch", expected_version, note, {"target_kind": target_kind, "target": target}
        )

    def bulk_dispatch(self, versions: Mapping[int, int], target_kind: str, target: str,
                      note: str | None = None) -> list[event_ops.BulkResult]:  # fmt: skip
        """Dispatch every ``{event_id: version}`` to one target; refusals are logged per event."""
        results = event_ops.bulk_dispatch(
            self.replica, list(versions), {"target_kind": target_kind, "target": target}, actor=self.actor,
            versions=versions, note=note, guard=self._guard("dispatch"),
        )  # fmt: skip
        for r in results:
            if r.refused and r.error:
                access.record_refusal(
                    self.replica, self.session, "dispatch", r.event_id, r.error, actor=self.actor
                )
        return results

    def create(self, record: Mapping, *, at: str | dt.datetime | None = None) -> int:
        """A new report; a street may only create in its street, drill only drill events."""
        try:
            return event_ops.create_event(self.replica, record, actor=self.actor, at=at,
                                          guard=self._guard(access.CREATE))  # fmt: skip
        except AccessDenied as exc:
            self._refused(access.CREATE, None, exc)
            raise

    def whistle(self, event_id: int, level: str, departments: Sequence[str], deadline_minutes: float = 30,
                reason: str = "", *, at: str | dt.datetime | None = None) -> int:  # fmt: skip
        """吹哨 (or escalate to a higher level); returns the whistle id."""
        try:
            return event_ops.blow_whistle(
                self.replica, event_id, level=level, departments=departments, deadline_minutes=deadline_minutes,
                actor=self.actor, reason=reason, at=at, guard=self._guard("whistle"),
            )  # fmt: skip
        except AccessDenied as exc:
            self._refused("whistle", event_id, exc)
            raise

    def check_in(self, whistle_id: int, department_code: str | None = None, *,
                 at: str | dt.datetime | None = None) -> dict:  # fmt: skip
        """报到 for ``department_code`` (a department session checks in for itself only)."""
        dept = department_code or (self.session.scope if self.session.role == "department" else None)
        base = self._guard("check_in")
        session = self.session
        seen: dict = {}

        def guard(row: dict) -> None:
            seen["id"] = row["id"]
            base(row)
            if session.role == "department" and dept != session.scope:
                raise AccessDenied(
                    f"部门 {session.scope} 只能为本部门报到 may check in only for itself, not {dept}"
                )

        try:
            return event_ops.check_in(self.replica, whistle_id, dept, actor=self.actor, at=at, guard=guard)
        except AccessDenied as exc:
            self._refused("check_in", seen.get("id"), exc)
            raise

    def close_whistle(self, whistle_id: int, outcome: str, *, at: str | dt.datetime | None = None) -> dict:
        base = self._guard("whistle")
        seen: dict = {}

        def guard(row: dict) -> None:
            seen["id"] = row["id"]
            base(row)

        try:
            return event_ops.close_whistle(self.replica, whistle_id, actor=self.actor, outcome=outcome, at=at,
                                           guard=guard)  # fmt: skip
        except AccessDenied as exc:
            self._refused("whistle", seen.get("id"), exc)
            raise

    def supervise(self, event_id: int, note: str | None = None, *, remind_by=None,
                  at: str | dt.datetime | None = None) -> int:  # fmt: skip
        """督办: a reminder record (``supervisions`` view); returns the log id."""
        try:
            return event_ops.supervise(self.replica, event_id, actor=self.actor, note=note, remind_by=remind_by,
                                       at=at, guard=self._guard("supervise"))  # fmt: skip
        except AccessDenied as exc:
            self._refused("supervise", event_id, exc)
            raise

    def handover(self, shift: str, text: str, open_items: Iterable = (), *,
                 at: str | dt.datetime | None = None) -> int:  # fmt: skip
        """交接班 note for the next shift (not for the read-only wall)."""
        try:
            access.check(self.session, access.HANDOVER, None)
        except AccessDenied as exc:
            self._refused(access.HANDOVER, None, exc)
            raise
        return event_ops.add_handover_note(self.replica, author=self.actor, shift=shift, text=text,
                                           open_items=open_items, at=at)  # fmt: skip

    # -- suggestions ------------------------------------------------------------------------------
    def suggest_targets(self, event_id: int, *, leaders: int = 3) -> list[Suggestion]:
        """Dispatch targets for an event, best first: category × area routing rules, the
        category's default department, the nearest available grid leaders (straight line)
        and, for reference, the event's street."""
        event = self.get(event_id)
        out: list[Suggestion] = []
        seen: set[tuple[str, str]] = set()

        def add(s: Suggestion) -> None:
            if (s.kind, s.code) not in seen:
                seen.add((s.kind, s.code))
                out.append(s)

        with self._read() as conn:
            for r in event_ops.routing_rules_for(conn, event["category"], event["street_code"]):
                where = "本街道" if r["street_code"] else "全区"
                add(Suggestion("department", r["department_code"], r["department_name"] or r["department_code"],
                               f"分派规则（{r['category']}，{where}）routing rule #{r['id']}"))  # fmt: skip
            cat = conn.execute(
                "SELECT c.default_department, d.name FROM categories c LEFT JOIN departments d "
                "ON d.code = c.default_department WHERE c.code = ?",
                (event["category"],),
            ).fetchone()
            if cat and cat[0]:
                add(
                    Suggestion(
                        "department", cat[0], cat[1] or cat[0], "类别默认部门 category default department"
                    )
                )
            if event.get("lon") is not None and event.get("lat") is not None:
                for s in _nearest_leaders(conn, event["lon"], event["lat"], leaders):
                    add(s)
            if event.get("street_code"):
                r = conn.execute(
                    "SELECT name FROM streets WHERE code = ?", (event["street_code"],)
                ).fetchone()
                add(Suggestion("street", event["street_code"], r[0] if r else event["street_code"],
                               "属地街道 the event's street"))  # fmt: skip
        return out


def _nearest_leaders(conn: sqlite3.Connection, lon: float, lat: float, n: int) -> list[Suggestion]:
    """The ``n`` nearest available grid leaders by straight-line distance (local metric plane)."""
    # a box first (≈ 3 km, widened if empty), then exact distances
    rows: list = []
    for half_km in (3.0, 10.0, 1e9):
        dlon, dlat = half_km / KM_PER_DEG_LON, half_km / KM_PER_DEG_LAT
        rows = conn.execute(
            "SELECT uid, name, grid_id, lon, lat FROM people WHERE role = 'grid_leader' AND status = 'available' "
            "AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?",
            (lon - dlon, lon + dlon, lat - dlat, lat + dlat),
        ).fetchall()
        if len(rows) >= n:
            break
    scored = []
    for uid, name, grid_id, x, y in rows:
        d = math.hypot((x - lon) * KM_PER_DEG_LON, (y - lat) * KM_PER_DEG_LAT) * 1000.0
        scored.append((d, uid, name, grid_id))
    scored.sort()
    return [
        Suggestion(
            "grid",
            uid,
            f"{name}（{grid_id} 网格长）",
            "最近的在岗网格长 nearest available grid leader",
            round(d, 1),
        )  # fmt: skip
        for d, uid, name, grid_id in scored[:n]
    ]


class _Reader:
    """A short-lived read connection (WAL: never blocks the writer)."""

    def __init__(self, replica) -> None:
        self.replica = replica
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection:
        self.conn = self.replica.reader()
        return self.conn

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.conn.close()


__all__ = ["EventService", "Suggestion", "AccessDenied"]
