"""Live intake simulator (Qt-free): realistic new reports, lifecycle steps and grid-leader moves.

``onemap --db PATH simulate --rate N/min`` drives a :class:`Simulator` against a replica that
consoles have open at the same time. Each action is one record in one short transaction:

- **create** (≈ 60 %): a new event through :func:`db.event_ops.create_event`. Source and category
  follow the demo generator's proportions (``db.demo.events``); the point is drawn in a grid
  weighted by population; title and description come from :func:`db.demo.texts.render` with the
  replica's estates and roads; hotline and app reports carry a synthetic reporter. External ids
  are ``SIM-<runid>-<n>`` (unique per run). A small share uses the unmapped code
  ``SIM_UNKNOWN`` (stored as 待分类 ``UNCLASSIFIED``, the original code kept in the log). Half of
  the app and hotline reports arrive in GCJ-02, as their map SDKs deliver them.
- **step** (≈ 25 %): the next lifecycle action on an open event (accept → dispatch →
  acknowledge → arrive → handle → verify → close, with the odd reject, return, deferral and
  rework, and an evaluation after closing) through :func:`db.event_ops.apply_action` with the
  version the simulator just read. Another console may act first: the :class:`ConflictError` is
  counted and the simulator moves on.
- **move** (≈ 15 %): a grid leader walks (or goes to the event assigned to them), mostly inside
  their grid: ``people.lon/lat/position_at`` and ``people.rev`` (``replica.next_rev``) in one
  ``replica.write("people")`` transaction.

Arrivals are a Poisson process at ``rate_per_min`` (exponential gaps on a monotonic schedule; a
simulator that falls behind by more than :data:`MAX_LAG_S` drops the backlog instead of
bursting). The first action of :meth:`Simulator.run` is a new event, written at once.

Actors written to the log are ``simulator`` or the person uid who would act (street operator,
grid leader, department liaison).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import math
import random
import secrets
import sqlite3
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app import timeutil
from app.lifecycle import OPEN
from db import event_ops
from db.demo import texts
from db.demo.events import _category_weights, _leaf_categories, _source_for

log = logging.getLogger("onemap.simulate")

ACTOR = "simulator"
MIX: tuple[tuple[str, float], ...] = (("create", 0.60), ("step", 0.25), ("move", 0.15))
UNMAPPED_CODE = "SIM_UNKNOWN"
UNMAPPED_SHARE = 0.03
GCJ_SOURCES = frozenset({"grid_app", "hotline_12345"})
GCJ_SHARE = 0.5
OWN_SHARE = 0.7  # lifecycle steps on events this run created (the rest: the replica's open backlog)
MAX_LAG_S = 5.0
MAX_BUSY_IN_A_ROW = 3
LATENCY_WINDOW = 100_000
_OPEN_SQL = "status NOT IN ('closed', 'rejected', 'merged')"  # the partial indexes' condition
_SATISFACTION = ((1, 0.02), (2, 0.02), (3, 0.05), (4, 0.26), (5, 0.65))


class SimulatorError(RuntimeError):
    """The replica cannot be simulated on (e.g. it holds no grids)."""


@dataclass
class SimRecord:
    """What one :meth:`Simulator.step` did."""

    kind: str  # create | step | move
    ok: bool
    text: str
    latency_ms: float = 0.0
    event_id: int | None = None
    action: str | None = None
    conflict: bool = False


@dataclass
class SimStats:
    created: int = 0
    steps: int = 0
    moves: int = 0
    conflicts: int = 0
    refused: int = 0
    busy: int = 0
    elapsed_s: float = 0.0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    tx_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    first_event_s: float | None = None  # seconds from run() start to the first committed event

    @property
    def records(self) -> int:
        return self.created + self.steps + self.moves

    @staticmethod
    def percentile(values, q: float) -> float | None:
        if not values:
            return None
        return float(np.percentile(np.fromiter(values, float), q))

    def summary(self) -> str:
        text = (
            f"{self.created} events created, {self.steps} steps, {self.moves} moves, "
            f"{self.conflicts} conflicts"
        )
        if self.refused or self.busy:
            text += f", {self.refused} refused, {self.busy} busy"
        text += f" in {self.elapsed_s:.1f} s"
        p50, p95 = self.percentile(self.latencies_ms, 50), self.percentile(self.latencies_ms, 95)
        if p50 is not None:
            text += f"; write latency p50 {p50:.1f} ms, p95 {p95:.1f} ms"
        t50, t95 = self.percentile(self.tx_ms, 50), self.percentile(self.tx_ms, 95)
        if t50 is not None:
            text += f" (transaction p50 {t50:.1f} ms, p95 {t95:.1f} ms)"
        return text


class _TimedReplica:
    """The replica as the write path sees it, timing each write transaction (BEGIN IMMEDIATE →
    COMMIT, lock wait included). Everything else is delegated."""

    def __init__(self, replica, sink: deque) -> None:
        self._replica = replica
        self._sink = sink

    def __getattr__(self, name: str):
        return getattr(self._replica, name)

    @contextlib.contextmanager
    def write(self, *topics: str):
        t0 = time.perf_counter()
        try:
            with self._replica.write(*topics) as conn:
                yield conn
        finally:
            self._sink.append((time.perf_counter() - t0) * 1000.0)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _cum(weights) -> list[float]:
    return list(itertools.accumulate(float(w) for w in weights))


class Simulator:
    """Writes live records into ``replica`` at ``rate_per_min`` actions per minute on average."""

    def __init__(
        self,
        replica,
        *,
        rate_per_min: float,
        seed: int | None = None,
        now_fn: Callable[[], dt.datetime] = timeutil.now,
    ) -> None:
        if not (isinstance(rate_per_min, int | float) and math.isfinite(rate_per_min) and rate_per_min > 0):
            raise ValueError(f"rate_per_min must be a positive number, not {rate_per_min!r}")
        self.rate_per_min = float(rate_per_min)
        self.now_fn = now_fn
        self.stats = SimStats()
        self.replica = replica
        self._w = _TimedReplica(replica, self.stats.tx_ms)
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.run_id = secrets.token_hex(4)
        self._seq = 0
        self._mine: list[int] = []  # events this run created that are still worth a step
        self._open_count: int | None = None
        self._open_checked = 0.0
        self._busy_in_a_row = 0
        self._last_ms = 0.0
        self._mix_kinds = [k for k, _ in MIX]
        self._mix_cum = _cum(w for _, w in MIX)
        self._reader = replica.reader()
        try:
            self._load()
        except BaseException:
            self._reader.close()
            raise

    # -- set-up ------------------------------------------------------------------------------------
    def _load(self) -> None:  # noqa: C901 - one pass over the reference tables
        import shapely

        conn = self._reader
        grids = conn.execute(
            "SELECT id, name, community_code, street_code, population, geometry FROM grids ORDER BY id"
        ).fetchall()
        if not grids:
            raise SimulatorError(
                f"{self.replica.path}: the replica has no grids; generate one first (onemap demo)"
            )
        self._grid_ids = [g["id"] for g in grids]
        self._grid_row = {g["id"]: dict(g) for g in grids}
        polys = [shapely.from_geojson(g["geometry"]) for g in grids]
        shapely.prepare(polys)
        self._poly = dict(zip(self._grid_ids, polys, strict=True))
        self._grid_cum = _cum(max(int(g["population"] or 0), 1) for g in grids)
        self._street_name = {r[0]: r[1] for r in conn.execute("SELECT code, name FROM streets")}

        estates: dict[str, list[str]] = {}
        by_comm: dict[str, list[str]] = {}
        roads: dict[str, list[str]] = {}
        for r in conn.execute(
            "SELECT kind, name, community_code, street_code, grid_id FROM places ORDER BY id"
        ):
            if r["kind"] == "estate":
                if r["grid_id"]:
                    estates.setdefault(r["grid_id"], []).append(r["name"])
                if r["community_code"]:
                    by_comm.setdefault(r["community_code"], []).append(r["name"])
            elif r["kind"] == "road" and r["street_code"]:
                roads.setdefault(r["street_code"], []).append(r["name"])
        for g in grids:  # grids without an estate borrow their community's (as the demo does)
            if not estates.get(g["id"]):
                estates[g["id"]] = by_comm.get(g["community_code"], [])[:3] or [
                    str(g["name"]).replace("网格", "") + "片区"
                ]
        self._estates, self._roads = estates, roads

        self._leaders: list[str] = []
        self._leader_grid: dict[str, str] = {}
        self._leader_of_grid: dict[str, str] = {}
        self._operators: dict[str | None, list[str]] = {}
        self._liaisons: dict[str, list[str]] = {}
        for r in conn.execute(
            "SELECT uid, role, grid_id, street_code, department_code FROM people ORDER BY id"
        ):
            if r["role"] == "grid_leader" and r["grid_id"] in self._poly:
                self._leaders.append(r["uid"])
                self._leader_grid[r["uid"]] = r["grid_id"]
                self._leader_of_grid.setdefault(r["grid_id"], r["uid"])
            elif r["role"] == "operator":
                self._operators.setdefault(r["street_code"], []).append(r["uid"])
            elif r["role"] == "liaison" and r["department_code"]:
                self._liaisons.setdefault(r["department_code"], []).append(r["uid"])

        cats = [dict(r) for r in conn.execute("SELECT * FROM categories ORDER BY code")]
        self._cats = {c["code"]: c for c in cats}
        leaves = _leaf_categories(cats) if cats else []
        self._leaf_codes = [c["code"] for c in leaves]
        self._leaf_cum = _cum(_category_weights(leaves)) if leaves else []

    def close(self) -> None:
        """Close the simulator's read connection (the replica stays open)."""
        self._reader.close()

    # -- helpers ---------------------------------------------------------------------------------
    def _now_iso(self) -> str:
        return timeutil.to_iso(self.now_fn())

    def _pick(self, cum: list[float]) -> int:
        return min(bisect_right(cum, self.rng.random() * cum[-1]), len(cum) - 1)

    def _choice(self, items: list[str] | None) -> str | None:
        return self.rng.choice(items) if items else None

    def _operator(self, street: str | None) -> str:
        return self._choice(self._operators.get(street)) or self._choice(self._operators.get(None)) or ACTOR

    def _sample_in(self, grid_id: str) -> tuple[float, float]:
        from db.spatial import sample_points

        x, y = sample_points(self._poly[grid_id], 1, self.np_rng)
        return float(x[0]), float(y[0])

    def _timed(self, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._last_ms = (time.perf_counter() - t0) * 1000.0

    # -- one action --------------------------------------------------------------------------------
    def step(self, kind: str | None = None) -> SimRecord:
        """Do one action (``create``, ``step`` or ``move``; by default drawn from :data:`MIX`),
        committed on its own. Conflicts and refusals come back as records, not exceptions;
        replica errors other than a passing busy lock propagate."""
        kind = kind or self._mix_kinds[self._pick(self._mix_cum)]
        if kind not in self._mix_kinds:
            raise ValueError(f"unknown simulator action {kind!r}; one of {', '.join(self._mix_kinds)}")
        self._last_ms = 0.0
        try:
            if kind == "move":
                rec = self._move() or self._create()
            elif kind == "step":
                rec = self._lifecycle() or self._create()
            else:
                rec = self._create()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            self._busy_in_a_row += 1
            self.stats.busy += 1
            if self._busy_in_a_row >= MAX_BUSY_IN_A_ROW:
                raise
            return SimRecord(kind, False, f"replica busy, skipped ({exc})", self._last_ms)
        self._busy_in_a_row = 0
        rec.latency_ms = self._last_ms
        if rec.ok:
            self.stats.latencies_ms.append(rec.latency_ms)
            if rec.kind == "create":
                self.stats.created += 1
            elif rec.kind == "step":
                self.stats.steps += 1
            else:
                self.stats.moves += 1
        elif rec.conflict:
            self.stats.conflicts += 1
        else:
            self.stats.refused += 1
        return rec

    # create ----------------------------------------------------------------------------------------
    def new_record(self) -> dict:
        """A realistic new report (the ``record`` of :func:`db.event_ops.create_event`)."""
        rng = self.rng
        gid = self._grid_ids[self._pick(self._grid_cum)]
        g = self._grid_row[gid]
        lon, lat = self._sample_in(gid)
        if self._leaf_codes and rng.random() >= UNMAPPED_SHARE:
            code = self._leaf_codes[self._pick(self._leaf_cum)]
            text_code = code
        else:
            code, text_code = UNMAPPED_CODE, "UNCLASSIFIED"
        source = str(_source_for(text_code, self.np_rng, 1)[0])
        estate = self._choice(self._estates.get(gid)) or "某小区"
        roads = self._roads.get(g["street_code"]) or ["某路"]
        road, road2 = rng.choice(roads), rng.choice(roads)
        junction = f"{road}与{road2}交叉口" if road2 != road else f"{road}路口"
        building = f"{rng.randint(1, 42)}幢"
        title, desc = texts.render(
            text_code, rng, {"road": road, "estate": estate, "junction": junction, "building": building}
        )
        self._seq += 1
        record: dict = {
            "source": source,
            "external_id": f"SIM-{self.run_id}-{self._seq:06d}",
            "category": code,
            "title": title,
            "description": desc,
            "address": f"崇川区{self._street_name.get(g['street_code'], '')}{estate}{building}",
            "lon": lon,
            "lat": lat,
            "datum": "WGS-84",
            "reported_at": self._now_iso(),
        }
        if source in ("hotline_12345", "grid_app", "manual") and rng.random() < (
            0.75 if source == "hotline_12345" else 0.3
        ):
            record["reporter_name"], record["reporter_phone"] = texts.fake_name(rng), texts.fake_phone(rng)
            if source == "hotline_12345" and rng.random() < 0.1:
                record["reporter_id_no"] = texts.fake_id_no(rng)
        cat = self._cats.get(code)
        if cat and cat["class"] == "ordinary":
            u = rng.random()
            if u < 0.15:
                record["priority"] = 4
            elif source == "hotline_12345" and u < 0.15 + 0.08:
                record["priority"] = 2
        if source in GCJ_SOURCES and rng.random() < GCJ_SHARE:
            glon, glat = self._to_gcj02(lon, lat, gid)
            if glon is not None:
                record.update(lon=glon, lat=glat, datum="GCJ-02")
        return record

    def _to_gcj02(self, lon: float, lat: float, gid: str) -> tuple[float | None, float | None]:
        """The point as a GCJ-02 device would send it, if it converts back into the same grid."""
        import shapely

        dlon, dlat = event_ops._gcj_delta(lon, lat)
        glon, glat = round(lon + dlon, 6), round(lat + dlat, 6)
        back = event_ops.to_wgs84(glon, glat, "GCJ-02")
        if shapely.contains_xy(self._poly[gid], round(back[0], 6), round(back[1], 6)):
            return glon, glat
        return None, None

    def _create(self) -> SimRecord:
        record = self.new_record()
        try:
            eid = self._timed(event_ops.create_event, self._w, record, actor=ACTOR)
        except event_ops.EventOpsError as exc:
            return SimRecord("create", False, f"report {record['external_id']} refused: {exc}")
        self._mine.append(eid)
        if len(self._mine) > 5000:
            del self._mine[:1000]
        return SimRecord(
            "create", True,
            f"新事件 #{eid} {record['external_id']} {record['source']} {record['category']} "
            f"[{record['datum']}] {record['title']}",
            event_id=eid, action="report",
        )  # fmt: skip

    # lifecycle -------------------------------------------------------------------------------------
    def _event(self, event_id: int) -> dict | None:
        r = self._reader.execute(
            "SELECT id, status, version, category, grid_id, street_code, assignee_kind, assignee_code, "
            "updated_at, satisfaction, drill_id FROM events WHERE id = ?",
            (event_id,),
        ).fetchone()
        return dict(r) if r else None

    def _backlog_event(self) -> dict | None:
        """A random open event of the replica (not a drill's), through the open-events index."""
        now = time.monotonic()
        if self._open_count is None or now - self._open_checked > 10.0:
            self._open_count = self._reader.execute(
                f"SELECT count(*) FROM events WHERE {_OPEN_SQL}"
            ).fetchone()[0]
            self._open_checked = now
        if not self._open_count:
            return None
        for _ in range(3):
            r = self._reader.execute(
                f"SELECT id, drill_id FROM events WHERE {_OPEN_SQL} ORDER BY priority, reported_at LIMIT 1 OFFSET ?",
                (self.rng.randrange(self._open_count),),
            ).fetchone()
            if r is None:
                self._open_count = None
                return None
            if r["drill_id"] is None:
                return self._event(r["id"])
        return None

    def _candidate(self) -> dict | None:
        for _ in range(4):
            if self._mine and self.rng.random() < OWN_SHARE:
                i = self.rng.randrange(len(self._mine))
                ev = self._event(self._mine[i])
                if ev is None or (ev["status"] not in OPEN and not self._wants_evaluation(ev)):
                    self._mine[i] = self._mine[-1]
                    self._mine.pop()
                    continue
                return ev
            ev = self._backlog_event()
            if ev is not None:
                return ev
        return None

    @staticmethod
    def _wants_evaluation(ev: dict) -> bool:
        return ev["status"] == "closed" and ev["satisfaction"] is None

    def _dispatch_target(self, ev: dict) -> dict:
        cat = self._cats.get(ev["category"]) or {}
        dept = cat.get("default_department")
        leader = self._leader_of_grid.get(ev["grid_id"])
        to_leader = bool(cat.get("arrival_clock")) or not dept
        if ev["status"] == "returned":  # re-route: whoever did not send it back
            to_leader = ev["assignee_kind"] == "department" or not dept
        if to_leader and leader:
            return {"target_kind": "grid", "target": leader}
        if dept:
            return {"target_kind": "department", "target": dept}
        return {"target_kind": "street", "target": ev["street_code"]}

    def _field_actor(self, ev: dict) -> str:
        kind, code = ev["assignee_kind"], ev["assignee_code"]
        if kind == "grid" and code:
            return code
        if kind == "department":
            return self._choice(self._liaisons.get(code)) or ACTOR
        if kind == "street":
            return self._operator(code)
        return ACTOR

    def _next_action(self, ev: dict) -> tuple[str, str | None, dict | None, str] | None:  # noqa: C901
        """(action, note, payload, actor) for the usual next step of ``ev``."""
        rng, status = self.rng, ev["status"]
        op = self._operator(ev["street_code"])
        u = rng.random()
        if status == "reported":
            if u < 0.03:
                return "reject", "不予受理：不属于本平台受理范围，已告知来电人", None, op
            return "accept", None, None, op
        if status in ("accepted", "returned"):
            return "dispatch", None, self._dispatch_target(ev), op
        if status == "dispatched":
            if u < 0.04:
                return "return", "非本单位职责，退回重新派遣", None, self._field_actor(ev)
            return "acknowledge", None, None, self._field_actor(ev)
        if status == "acknowledged":
            if u < 0.03:
                return "defer", "缓办：等待配件/协调产权单位", {"approver": op}, self._field_actor(ev)
            return "arrive", None, None, self._field_actor(ev)
        if status == "deferred":
            return "resume", None, None, self._field_actor(ev)
        if status == "on_site":
            return "handle", None, None, self._field_actor(ev)
        if status == "handled":
            if u < 0.06:
                return "rework", "核查未通过，返工", None, op
            return "verify", None, None, op
        if status == "verified":
            return "close", None, None, op
        if self._wants_evaluation(ev) and ev["id"] in self._mine:
            sat = rng.choices([s for s, _ in _SATISFACTION], [w for _, w in _SATISFACTION])[0]
            return "evaluate", None, {"satisfaction": sat}, ACTOR
        return None

    def _lifecycle(self) -> SimRecord | None:
        ev = self._candidate()
        if ev is None:
            return None
        nxt = self._next_action(ev)
        if nxt is None:
            return None
        action, note, payload, actor = nxt
        now = self._now_iso()
        at = max(now, ev["updated_at"] or now)  # never before the event's last change
        try:
            row = self._timed(
                event_ops.apply_action, self._w, ev["id"], action, actor=actor,
                expected_version=ev["version"], note=note, payload=payload, at=at,
            )  # fmt: skip
        except event_ops.ConflictError as exc:
            return SimRecord("step", False, f"事件 #{ev['id']} {action}: {exc}", event_id=ev["id"],
                             action=action, conflict=True)  # fmt: skip
        except (event_ops.EventOpsError, event_ops.IllegalTransition) as exc:
            return SimRecord("step", False, f"事件 #{ev['id']} {action} refused: {exc}", event_id=ev["id"],
                             action=action)  # fmt: skip
        target = ""
        if payload and payload.get("target"):
            target = f" → {payload['target_kind']}:{payload['target']}"
        return SimRecord(
            "step", True, f"事件 #{ev['id']} {action} {ev['status']}→{row['status']}{target} by {actor}",
            event_id=ev["id"], action=action,
        )  # fmt: skip

    # moves -----------------------------------------------------------------------------------------
    def _move(self) -> SimRecord | None:
        if not self._leaders:
            return None
        import shapely

        from db.spatial import KM_PER_DEG_LAT, KM_PER_DEG_LON

        rng = self.rng
        uid = rng.choice(self._leaders)
        gid = self._leader_grid[uid]
        poly = self._poly[gid]
        cur = self._reader.execute("SELECT id, name, lon, lat FROM people WHERE uid = ?", (uid,)).fetchone()
        if cur is None:
            return None
        how = "walk"
        target = None
        if rng.random() < 0.4:  # go to the event the leader is working on
            target = self._reader.execute(
                "SELECT id, lon, lat FROM events WHERE assignee_kind = 'grid' AND assignee_code = ? "
                "AND status IN ('dispatched', 'acknowledged', 'on_site') AND lon IS NOT NULL "
                "ORDER BY updated_at DESC LIMIT 1",
                (uid,),
            ).fetchone()
        if target is not None:
            d, theta = rng.uniform(3, 25), rng.uniform(0, 2 * math.pi)
            x = target["lon"] + d * math.cos(theta) / 1000 / KM_PER_DEG_LON
            y = target["lat"] + d * math.sin(theta) / 1000 / KM_PER_DEG_LAT
            how = f"to event #{target['id']}"
        elif cur["lon"] is None or cur["lat"] is None:
            x, y = self._sample_in(gid)
            how = "on duty"
        else:
            free = rng.random() < 0.05  # now and then a leader steps out of their grid
            for _ in range(6):
                d, theta = rng.uniform(30, 250), rng.uniform(0, 2 * math.pi)
                x = cur["lon"] + d * math.cos(theta) / 1000 / KM_PER_DEG_LON
                y = cur["lat"] + d * math.sin(theta) / 1000 / KM_PER_DEG_LAT
                if shapely.contains_xy(poly, x, y):
                    break
                if free:
                    try:
                        place = event_ops.locate(self.replica, round(x, 6), round(y, 6))
                    except event_ops.InvalidRecord:
                        continue
                    if place["grid_id"] and not place["nearest"]:
                        how = f"walk into {place['grid_id']}"
                        break
            else:
                x, y = self._sample_in(gid)
                how = "back into the grid"
        x, y = round(x, 6), round(y, 6)
        at = self._now_iso()
        # the robot's position history (issue 8): which grid the leader is in now, if known
        pos_grid = gid if shapely.contains_xy(poly, x, y) else (how[10:] if how.startswith("walk into ") else None)

        def write() -> None:
            with self._w.write("people") as conn:
                rev = self.replica.next_rev(conn)
                conn.execute(
                    "UPDATE people SET lon = ?, lat = ?, position_at = ?, rev = ? WHERE uid = ?",
                    (x, y, at, rev, uid),
                )
                conn.execute(
                    "INSERT INTO leader_positions (person_id, at, lon, lat, grid_id) VALUES (?, ?, ?, ?, ?)",
                    (cur["id"], at, x, y, pos_grid),
                )

        self._timed(write)
        moved = ""
        if cur["lon"] is not None and cur["lat"] is not None:
            dist = math.hypot((x - cur["lon"]) * KM_PER_DEG_LON, (y - cur["lat"]) * KM_PER_DEG_LAT) * 1000
            moved = f" {dist:.0f} m"
        return SimRecord(
            "move", True, f"网格长 {cur['name']} ({uid}) moved{moved} {how} [{gid}]", action="move"
        )

    # -- the loop ------------------------------------------------------------------------------------
    def log_every(self) -> int:
        """Log every record up to 300/min, then every n-th (about 5 lines a second at most)."""
        return max(1, math.ceil(self.rate_per_min / 300.0))

    def run(self, duration_s: float | None = None, stop: threading.Event | None = None) -> SimStats:
        """Act until ``stop`` is set or ``duration_s`` seconds have passed; returns the stats.

        Poisson arrivals at :attr:`rate_per_min`; the first action is a new event, at once.
        """
        stop = stop or threading.Event()
        gap_mean = 60.0 / self.rate_per_min
        every = self.log_every()
        if every > 1:
            log.info("at %.4g/min every %d. record is logged", self.rate_per_min, every)
        start = time.monotonic()
        end = start + duration_s if duration_s is not None else math.inf
        due = start
        first = True
        n = 0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= end:
                    break
                if due > now:
                    if stop.wait(min(due, end) - now):
                        break
                    continue
                rec = self.step("create" if first else None)
                if first and rec.ok:
                    self.stats.first_event_s = time.monotonic() - start
                    first = False
                n += 1
                if rec.conflict:
                    log.info("%s", rec.text)
                elif not rec.ok:
                    log.warning("%s", rec.text)
                elif n == 1 or n % every == 0:
                    log.info("%s (%.1f ms)", rec.text, rec.latency_ms)
                due += self.rng.expovariate(1.0 / gap_mean)
                lag = time.monotonic() - due
                if lag > MAX_LAG_S:  # writes cannot keep up: drop the backlog rather than burst
                    due = time.monotonic()
        finally:
            self.stats.elapsed_s = time.monotonic() - start
        return self.stats


def prewarm(path: str | Path) -> threading.Thread:
    """Build the write path's grid index for ``path`` in a background thread (it takes about a
    second), so it overlaps opening the replica and the first event goes out within 2 s."""

    class _ReadOnly:
        def __init__(self, p: Path) -> None:
            self.path = p

        def reader(self) -> sqlite3.Connection:
            from db.replica import connect

            return connect(self.path, readonly=True)

    def warm() -> None:
        try:
            src = _ReadOnly(Path(path))
            conn = src.reader()
            try:
                r = conn.execute("SELECT lon, lat FROM grids WHERE lon IS NOT NULL LIMIT 1").fetchone()
            finally:
                conn.close()
            if r is not None:
                event_ops.locate(src, r[0], r[1])
        except Exception as exc:  # noqa: BLE001 - only a head start; the real open reports errors
            log.debug("prewarm skipped: %s", exc)

    th = threading.Thread(target=warm, name="simulate-prewarm", daemon=True)
    th.start()
    return th
