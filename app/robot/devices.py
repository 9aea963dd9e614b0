"""Device health (物联设备健康): IoT devices that went silent, or that chatter with alarms.

- **Silent** (``silent:<uid>``): no sign of life (the later of ``devices.last_seen_at`` and its
  newest reading in ``device_readings``) for ``silent_hours`` hours. Devices marked
  ``retired`` are ignored.
- **Chattering** (``chatter:<uid>``): at least ``alarm_count`` alarm readings
  (``device_readings.is_alarm``) within the last ``chatter_hours`` hours — a faulty sensor or a
  real problem nobody fixed.
"""

from __future__ import annotations

from app.robot.base import Finding, Param, Rule, RuleContext, grid_names, place_text

KIND_ZH = {"camera": "雪亮摄像机", "door_sensor": "智能门磁", "manhole": "智能井盖", "throwing_detector": "高空抛物监测"}


class DeviceHealthRule(Rule):
    name = "device_health"
    title_zh = "设备健康"
    title_en = "Device health"
    accept_category = "ASSIGN.SUPERIOR"
    auto_clear = True
    params = {
        "silent_hours": Param(48, "失联时长", "小时", 1, 24 * 90, label_en="Silent for", unit_en="hours"),
        "alarm_count": Param(20, "频繁告警次数", "次", 2, 100000, label_en="Frequent alarms count", unit_en="alarms"),
        "chatter_hours": Param(24, "频繁告警时间窗", "小时", 1, 24 * 30, label_en="Frequent alarms window", unit_en="hours"),
    }

    def find(self, ctx: RuleContext) -> list[Finding]:
        names = grid_names(ctx.conn)
        now_iso = ctx.iso(ctx.now)
        silent_before = ctx.ago(hours=ctx.p("silent_hours"))
        latest = dict(ctx.conn.execute(
            "SELECT device_uid, max(at) FROM device_readings WHERE at >= ? AND at <= ? GROUP BY device_uid",
            (silent_before, now_iso)).fetchall())  # fmt: skip
        out: list[Finding] = []
        devs = ctx.conn.execute(
            "SELECT uid, kind, name, grid_id, street_code, lon, lat, status, last_seen_at FROM devices"
        ).fetchall()
        by_uid = {d[0]: d for d in devs}
        for uid, kind, name, grid, street, lon, lat, status, seen in devs:
            if status == "retired" or latest.get(uid):
                continue
            if seen is None or seen >= silent_before:
                continue
            out.append(
                Finding(
                    key=f"silent:{uid}",
                    severity=3,
                    explanation_zh=(
                        f"{place_text(names, grid)}的{KIND_ZH.get(kind, kind)}“{name}”自 {seen[:16].replace('T', ' ')} "
                        f"起再无数据上报，已失联超过 {ctx.p('silent_hours'):g} 小时，所在区域存在感知盲区。"
                    ),
                    suggested_action="通知设备运维单位检修（供电、网络、设备故障），修复前由网格长加强该点位人工巡查。",
                    grid_id=grid, street_code=street, lon=lon, lat=lat, devices=[uid],
                )  # fmt: skip
            )
        if len(out) > max(20, 0.3 * len(devs)):  # a feed outage, not thousands of broken devices
            out = [
                Finding(
                    key="silent:feed",
                    severity=2,
                    explanation_zh=f"{len(out)} 台物联设备（共 {len(devs)} 台）同时超过 {ctx.p('silent_hours'):g} 小时无数据，"
                    "更可能是物联数据接入中断，而不是设备各自故障。",
                    suggested_action="检查物联感知平台与本系统之间的数据接入（接口、网络、账号），恢复后复核设备在线情况。",
                    devices=[f.devices[0] for f in out],
                )
            ]
        n_alarm = int(ctx.p("alarm_count"))
        for uid, count, first, last in ctx.conn.execute(
            "SELECT device_uid, count(*), min(at), max(at) FROM device_readings WHERE is_alarm = 1 AND at >= ? "
            "AND at <= ? GROUP BY device_uid HAVING count(*) >= ?",
            (ctx.ago(hours=ctx.p("chatter_hours")), now_iso, n_alarm),
        ):
            d = by_uid.get(uid)
            grid, street, lon, lat = (d[3], d[4], d[5], d[6]) if d else (None, None, None, None)
            label = f"{KIND_ZH.get(d[1], d[1])}“{d[2]}”" if d else f"设备 {uid}"
            out.append(
                Finding(
                    key=f"chatter:{uid}",
                    severity=2 if count >= 3 * n_alarm else 3,
                    explanation_zh=(
                        f"{place_text(names, grid)}的{label}近 {ctx.p('chatter_hours'):g} 小时告警 {count} 次"
                        f"（{first[5:16].replace('T', ' ')} 至 {last[5:16].replace('T', ' ')}），疑似设备误报或隐患长期未消除。"
                    ),
                    suggested_action="派网格长现场核实告警是否属实：属实的立即处置，误报的通知运维校准或更换设备。",
                    grid_id=grid, street_code=street, lon=lon, lat=lat, devices=[uid],
                )  # fmt: skip
            )
        return out
