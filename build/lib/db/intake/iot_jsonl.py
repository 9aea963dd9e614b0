"""IoT sensor and camera-AI alarms as JSON lines: one record per line.

A record has an id, a device id, a type, a time, a value and a free ``payload`` (optionally
``lon``/``lat``/``datum``, ``address``, ``message``, ``kind``: alarm|reading). Rules:

- A record lacking its id, time or device is quarantined ("missing field: device_id").
- Every valid record is stored in ``device_readings``. A value that is impossible for its type
  (a tilt of 720°, humidity of 140 %, a NaN) is stored there flagged invalid (``valid = 0`` with the
  reason), not quarantined, and raises no alarm.
- Alarms (``kind`` = alarm, or a type the ``iot`` category mapping knows) are debounced per device
  and type: alarms less than ``window`` apart form one burst, which becomes ONE event whose log
  payload carries the count, first/last time and the record ids. A burst is emitted when it is
  over (a later alarm of the device is beyond the window, the stream's clock has moved past it,
  or the file ends), so the same file always yields the same bursts.
- The event's location is the record's coordinates, else the registered device's position.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import orjson

from db.intake.records import RawBatch, batch_from_dicts, text
from db.intake.textio import REPLACEMENT, FeedFile, decode_errors_seen
from db.intake.timeparse import BAD, parse_times

FORMAT = "iot-jsonl"
SOURCE = "iot"
WINDOW_S = 600
LABELS = {
    "ext_id": "id",
    "time": "time",
    "content": "message",
    "code": "type",
    "address": "address",
    "lon": "lon",
    "lat": "lat",
    "datum": "datum",
    "status": "status",
    "device": "device_id",
}
_KEYS = {
    "id": ("id", "record_id", "msg_id", "event_id", "alarm_id", "uuid"),
    "device": ("device_id", "deviceId", "device", "device_uid", "sn", "设备编号"),
    "type": ("type", "alarm_type", "event_type", "metric", "类型"),
    "time": ("time", "ts", "timestamp", "at", "datetime", "时间"),
    "value": ("value", "val", "reading", "值"),
    "kind": ("kind", "level", "category_kind"),
    "message": ("message", "msg", "content", "description", "描述"),
}
#: physically possible values per reading type (inclusive)
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (-60.0, 150.0), "humidity": (0.0, 100.0), "battery": (0.0, 100.0),
    "tilt": (0.0, 180.0), "tilt_angle": (0.0, 180.0), "manhole_tilt": (0.0, 180.0),
    "water_level": (-10.0, 60.0), "waterlog": (0.0, 10.0), "noise": (0.0, 194.0), "noise_db": (0.0, 194.0),
    "pm25": (0.0, 2000.0), "pm10": (0.0, 3000.0), "smoke": (0.0, 100000.0), "co": (0.0, 10000.0),
    "voltage": (0.0, 1000.0), "signal": (-150.0, 0.0), "ph": (0.0, 14.0), "do": (0.0, 25.0),
    "door": (0.0, 1.0), "door_open": (0.0, 1.0), "confidence": (0.0, 1.0),
}  # fmt: skip


def _get(rec: dict, key: str):
    for k in _KEYS[key]:
        v = rec.get(k)
        if v not in (None, ""):
            return v
    return None


def check_value(kind: str, value) -> tuple[float | None, str | None]:
    """(numeric value, reason it is impossible or None)."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return float(value), None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None, f"non-numeric value: {value!r}"
    if not math.isfinite(x):
        return None, f"impossible value: {value!r}"
    rng = RANGES.get(kind.casefold())
    if rng and not (rng[0] <= x <= rng[1]):
        return x, f"impossible value: {x:g} ({kind} must be {rng[0]:g}…{rng[1]:g})"
    return x, None


class _Burst:
    __slots__ = ("key", "device", "type", "first_item", "first_line", "raw", "first", "last", "count", "ids",
                 "values", "rec", "dev")  # fmt: skip

    def __init__(self, key, device, type_, item, line, raw, t, rid, value, rec, dev) -> None:
        self.key, self.device, self.type = key, device, type_
        self.first_item, self.first_line, self.raw = item, line, raw
        self.first = self.last = t
        self.count = 1
        self.ids = [rid]
        self.values = [value] if value is not None else []
        self.rec, self.dev = rec, dev

    def add(self, t: int, rid: str, value) -> None:
        self.count += 1
        self.first = min(self.first, t)
        self.last = max(self.last, t)
        if len(self.ids) < 50:
            self.ids.append(rid)
        if value is not None and len(self.values) < 50:
            self.values.append(value)


class IotReader:
    format = FORMAT
    source = SOURCE
    labels = LABELS

    def __init__(self, feed: FeedFile, *, devices: dict[str, dict] | None = None, alarm_types=(),
                 type_names: dict[str, str] | None = None, window_s: int = WINDOW_S) -> None:  # fmt: skip
        self.feed = feed
        self.batch_size = 10_000
        self.devices = devices or {}
        self.alarm_types = {t.casefold() for t in alarm_types}
        self.type_names = {k.casefold(): v for k, v in (type_names or {}).items()}
        self.window = int(window_s)
        self._open: dict[tuple[str, str], _Burst] = {}
        self.total_items = 0

    def _lines(self) -> Iterator[tuple[int, int, str, dict | None, str | None]]:
        before = decode_errors_seen()
        item = 0
        held = None
        for lineno, raw in enumerate(self.feed.text(newline=None), start=1):
            if not raw.strip():
                continue
            item += 1
            try:
                rec = orjson.loads(raw)
                err = None if isinstance(rec, dict) else f"not a JSON object: {type(rec).__name__}"
            except orjson.JSONDecodeError as exc:
                rec, err = None, f"malformed JSON: {str(exc).split(':')[0]}"
            if err is None and REPLACEMENT in raw and decode_errors_seen() != before:
                err = f"encoding error: bytes that are not {self.feed.encoding} (try --encoding)"
            if held is not None:
                yield held
            held = (item, lineno, raw.rstrip("\r\n"), rec, err, raw.endswith("\n"))
        if held is not None:
            it, ln, raw, rec, err, complete = held
            if err and err.startswith("malformed JSON") and not complete:
                err = "truncated line"
            held = (it, ln, raw, rec, err, complete)
            yield held
        self.total_items = item

    def batches(self, skip_before: int = 1) -> Iterator[RawBatch]:
        """IoT runs are always replayed from the start (bursts need the whole stream); writes are
        idempotent, so a resumed run creates nothing twice. ``skip_before`` is ignored."""
        buf: list[tuple] = []
        for rec in self._lines():
            buf.append(rec)
            if len(buf) >= self.batch_size:
                yield self._process(buf, final=False)
                buf = []
        yield self._process(buf, final=True)

    def _device(self, ident: str) -> dict | None:
        return self.devices.get(ident) or self.devices.get(ident.casefold())

    def _process(self, buf: list[tuple], *, final: bool) -> RawBatch:
        out_items, out_lines, out_raws, out_errors, out_records, out_extras = [], [], [], [], [], []
        readings: list[dict] = []

        def bad(item, line, raw, reason) -> None:
            out_items.append(item)
            out_lines.append(line)
            out_raws.append(raw)
            out_errors.append(reason)
            out_records.append(None)
            out_extras.append(None)

        parsed = []
        for item, line, raw, rec, err, _ in buf:
            if err is not None:
                bad(item, line, raw, err)
                continue
            missing = [LABELS["ext_id"] if _get(rec, "id") is None else None,
                       LABELS["time"] if _get(rec, "time") is None else None,
                       LABELS["device"] if _get(rec, "device") is None else None]  # fmt: skip
            missing = [m for m in missing if m]
            if missing:
                bad(item, line, raw, f"missing field: {missing[0]}")
                continue
            parsed.append((item, line, raw, rec))
        epoch, problems = parse_times([_get(r[3], "time") for r in parsed])
        watermark = None
        for (item, line, raw, rec), t, prob in zip(parsed, epoch.tolist(), problems, strict=True):
            if prob is not None or t == BAD:
                shown = _get(rec, "time")
                suffix = " (in the future)" if prob == "future" else ""
                bad(item, line, raw, f"bad date: '{shown}'{suffix}")
                continue
            rid = text(_get(rec, "id"))
            dev_id = text(_get(rec, "device"))
            dev = self._device(dev_id)
            dtype = text(_get(rec, "type")) or "unknown"
            kind = text(_get(rec, "kind")).casefold()
            is_alarm = kind == "alarm" or dtype.casefold() in self.alarm_types
            value, invalid = check_value(dtype, _get(rec, "value"))
            payload = rec.get("payload", rec.get("data"))
            readings.append({
                "device_uid": dev["uid"] if dev else dev_id, "record_id": rid, "type": dtype, "t": t,
                "value": value, "raw_value": None if _get(rec, "value") is None else text(_get(rec, "value")),
                "valid": 0 if invalid else 1, "invalid_reason": invalid, "is_alarm": int(is_alarm),
                "payload": orjson.dumps(payload).decode() if payload is not None else None, "ext_id": None,
            })  # fmt: skip
            watermark = t if watermark is None else max(watermark, t)
            if not is_alarm or invalid:
                continue
            key = (dev["uid"] if dev else dev_id, dtype.casefold())
            burst = self._open.get(key)
            if burst is not None and abs(t - burst.last) <= self.window and t >= burst.first - self.window:
                burst.add(t, rid, value)
                readings[-1]["ext_id"] = self._ext_id(burst)
                continue
            if burst is not None:
                self._emit(burst, out_items, out_lines, out_raws, out_errors, out_records, out_extras)
            burst = _Burst(key, key[0], dtype, item, line, raw, t, rid, value, rec, dev)
            self._open[key] = burst
            readings[-1]["ext_id"] = self._ext_id(burst)
        # bursts the stream's clock has left behind, and everything at the end
        for key, burst in list(self._open.items()):
            if final or (watermark is not None and burst.last < watermark - self.window):
                self._emit(burst, out_items, out_lines, out_raws, out_errors, out_records, out_extras)
                del self._open[key]
        batch = batch_from_dicts(out_items, out_lines, out_raws, out_errors, out_records, out_extras)
        batch.readings = readings
        batch.input_records = len(buf)
        return batch

    @staticmethod
    def _ext_id(burst: _Burst) -> str:
        return f"{burst.device}:{burst.type}:{burst.ids[0]}"

    def _emit(self, b: _Burst, items, lines, raws, errors, records, extras) -> None:
        from app.timeutil import epoch_to_iso

        rec, dev = b.rec, b.dev
        label = self.type_names.get(b.type.casefold()) or b.type
        message = text(_get(rec, "message"))
        first, last = epoch_to_iso(b.first), epoch_to_iso(b.last)
        content = message or f"{label}报警"
        if b.count > 1:
            content += f"（{b.count} 次报警，{first[11:16]}–{last[11:16]}）"
        lon, lat, datum = rec.get("lon", rec.get("lng")), rec.get("lat"), text(rec.get("datum"))
        if lon in (None, "") and lat in (None, "") and dev is not None and dev.get("lon") is not None:
            lon, lat, datum = dev["lon"], dev["lat"], "WGS-84"
        address = text(rec.get("address")) or (dev["name"] if dev else "")
        if (lon in (None, "") or lat in (None, "")) and not text(rec.get("address")):
            items.append(b.first_item)
            lines.append(b.first_line)
            raws.append(b.raw)
            errors.append(f"unknown device without coordinates: '{b.device}'")
            records.append(None)
            extras.append(None)
            return
        items.append(b.first_item)
        lines.append(b.first_line)
        raws.append(b.raw)
        errors.append(None)
        records.append({
            "ext_id": self._ext_id(b), "time": first, "content": content,
            "title": f"{label}：{dev['name'] if dev else b.device}" + (f" ×{b.count}" if b.count > 1 else ""),
            "code": b.type, "code_alt": "", "address": address, "lon": lon, "lat": lat, "datum": datum,
            "status": text(rec.get("status")), "updated": last if b.count > 1 else None, "name": None, "phone": None,
        })  # fmt: skip
        extras.append({"device": b.device, "type": b.type, "count": b.count, "first_at": first, "last_at": last,
                       "record_ids": b.ids, "values": b.values[:20]})  # fmt: skip
