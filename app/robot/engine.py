"""One robot pass: every rule over one read snapshot, then one write of the warnings.

A rule that raises (odd data: missing positions, empty grids, a broken row) is logged and
skipped — it is reported in the pass's ``errors`` and never stops the other rules. Rules that
ran cleanly and clear themselves (``Rule.auto_clear``) clear their open warnings that no longer
hold.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from app import timeutil
from app.robot.anomalies import AnomalyRule
from app.robot.base import Finding, Rule, RuleContext
from app.robot.care import CareRule
from app.robot.deadlines import DeadlineRiskRule
from app.robot.devices import DeviceHealthRule
from app.robot.hotspots import HotspotRule
from app.robot.patrol import PatrolGapRule
from app.robot.repeats import RepeatRule
from db import robot_store

log = logging.getLogger(__name__)

RULES: tuple[Rule, ...] = (
    HotspotRule(),
    RepeatRule(),
    PatrolGapRule(),
    CareRule(),
    DeadlineRiskRule(),
    AnomalyRule(),
    DeviceHealthRule(),
)
RULES_BY_NAME = {r.name: r for r in RULES}
DEFAULT_INTERVAL_S = 300
"""The console runs a pass every 5 minutes (and on demand)."""


@dataclass
class PassResult:
    new: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    run_id: int | None = None


def rule(name: str) -> Rule:
    try:
        return RULES_BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown robot rule {name!r}; rules: {', '.join(RULES_BY_NAME)}") from None


def thresholds(conn, rules: Sequence[Rule] = RULES) -> dict[str, dict[str, float]]:
    """Each rule's thresholds: its defaults overridden by ``robot_settings`` rows."""
    out = {r.name: r.defaults() for r in rules}
    for name, key, value in conn.execute("SELECT rule, key, value FROM robot_settings"):
        if name in out and key in out[name]:
            out[name][key] = float(value)
    return out


def set_threshold(replica, rule_name: str, key: str, value: float, *, actor: str) -> float:
    """Validate against the rule's :class:`~app.robot.base.Param` and store it."""
    r = rule(rule_name)
    if key not in r.params:
        raise ValueError(f"rule {rule_name} has no threshold {key!r}; it has: {', '.join(r.params)}")
    v = r.params[key].check(value)
    robot_store.set_threshold(replica, rule_name, key, v, actor=actor)
    return v


def find_all(conn, now: dt.datetime, rules: Sequence[Rule] = RULES, is_workday=None):
    """``(findings by rule, errors, timings, truncated)`` over one connection; a failing rule is
    skipped; ``truncated`` names the rules that found more than their limit (rule → total)."""
    from db import calendar

    params = thresholds(conn, rules)
    if is_workday is None:
        try:
            is_workday = calendar.is_workday_fn(conn)
        except Exception:  # noqa: BLE001 - an odd calendar must not stop the robot
            from app.workcal import default_is_workday as is_workday
    found: dict[str, list[Finding]] = {}
    errors: list[dict] = []
    timings: dict[str, float] = {}
    truncated: dict[str, int] = {}
    for r in rules:
        t0 = time.perf_counter()
        ctx = RuleContext(conn, now, params[r.name], is_workday)
        try:
            items = r.find(ctx)
            if len(items) > ctx.limit:
                ctx.found_total = len(items)
                items = sorted(items, key=lambda f: (f.severity, -len(f.events)))[: ctx.limit]
            found[r.name] = items
            if ctx.found_total:
                log.warning("robot rule %s: %d findings, kept the %d largest", r.name, ctx.found_total, ctx.limit)
                truncated[r.name] = ctx.found_total
        except Exception as exc:  # noqa: BLE001 - one rule's failure never stops the others
            log.exception("robot rule %s failed; skipped in this pass", r.name)
            errors.append({"rule": r.name, "error": f"{type(exc).__name__}: {exc}"})
        timings[r.name] = time.perf_counter() - t0
    return found, errors, timings, truncated


def run_pass(replica, *, now: dt.datetime | None = None, rules: Sequence[Rule] = RULES,
             actor: str = "robot") -> PassResult:  # fmt: skip
    """Run every rule once over one snapshot and store the warnings (one write transaction)."""
    now = (now or timeutil.now()).astimezone(timeutil.TZ)
    started = timeutil.to_iso(timeutil.now())
    conn = replica.reader()
    try:
        conn.execute("BEGIN")  # one read snapshot for every rule
        try:
            found, errors, timings, truncated = find_all(conn, now, rules)
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()
    t0 = time.perf_counter()
    payload = {
        name: [dict(vars(f), evidence=f.evidence()) for f in items] for name, items in found.items()
    }
    clear = {r.name for r in rules if r.auto_clear and r.name in found and r.name not in truncated}
    stored = robot_store.apply_findings(
        replica, payload, now=timeutil.to_iso(now), actor=actor, clear_rules=clear, errors=errors, started_at=started
    )
    timings["store"] = time.perf_counter() - t0
    return PassResult(
        new=stored["new"], updated=stored["updated"], seen=stored["seen"], cleared=stored["cleared"],
        errors=errors, counts={k: len(v) for k, v in found.items()}, timings=timings, run_id=stored["run_id"],
        truncated=truncated,
    )  # fmt: skip
