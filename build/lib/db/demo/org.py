"""Synthetic people and devices for the demo replica (names and phones are made up)."""

from __future__ import annotations

import random

import numpy as np

from db.demo import texts
from db.ids import ulid_at
from db.spatial import sample_points

PEOPLE_COLUMNS = (
    "id", "uid", "name", "phone", "role", "position", "grid_id", "street_code", "department_code",
    "lon", "lat", "position_at", "status", "rev",
)  # fmt: skip
DEVICE_COLUMNS = ("id", "uid", "kind", "name", "grid_id", "street_code", "lon", "lat", "status", "last_seen_at")
DEVICE_COUNTS = {"camera": 1200, "door_sensor": 600, "manhole": 500, "throwing_detector": 250}
DEVICE_LABEL = {"camera": "雪亮摄像机", "door_sensor": "智能门磁", "manhole": "智能井盖", "throwing_detector": "高空抛物监测"}


def build_people(
    grids: list[dict], streets: list[dict], departments: list[dict], *, seed: int, until_ms: int, until_iso: str
) -> list[tuple]:
    """Grid leaders (one per grid), volunteers, department liaisons, operators and drill coordinators."""
    prng = random.Random(seed + 11)
    rng = np.random.default_rng(seed + 11)
    rows: list[tuple] = []

    def add(role, position, grid_id, street, dept, lon=None, lat=None, pos_at=None):
        pid = len(rows) + 1
        rows.append(
            (
                pid, ulid_at(until_ms - 86400_000 * 400 + pid, prng), texts.fake_name(prng), texts.fake_phone(prng),
                role, position, grid_id, street, dept, lon, lat, pos_at, "available", 0,
            )
        )  # fmt: skip

    for s in streets:
        for _ in range(2):
            add("operator", f"{s['name']}指挥中心值班员", None, s["code"], None)
    for _ in range(8):
        add("operator", "区指挥中心值班员", None, None, None)
    for _ in range(3):
        add("drill_coordinator", "区指挥中心演练协调员", None, None, None)
    for d in departments:
        for _ in range(2):
            add("liaison", f"{d['name']}联络员", None, None, d["code"])
    for g in grids:
        x, y = sample_points(g["geometry"], 1, rng)
        add("grid_leader", "网格长", g["id"], g["street_code"], None, round(float(x[0]), 6), round(float(y[0]), 6), until_iso)
    for g in grids:
        if g["kind"] != "comprehensive":
            continue
        add("grid_volunteer", "网格信息员", g["id"], g["street_code"], None)
        if prng.random() < 0.6:
            add("grid_volunteer", "网格志愿服务员", g["id"], g["street_code"], None)
    return rows


def build_devices(grids: list[dict], grid_index, *, seed: int, until_ms: int, until_iso: str) -> list[tuple]:
    """Cameras, door sensors, manhole covers and throwing detectors placed by population."""
    prng = random.Random(seed + 23)
    rng = np.random.default_rng(seed + 23)
    pops = np.array([g["population"] for g in grids], dtype=float)
    rows: list[tuple] = []
    for kind, count in DEVICE_COUNTS.items():
        gi = rng.choice(len(grids), count, p=pops / pops.sum())
        for k, idx in enumerate(gi.tolist()):
            g = grids[idx]
            x, y = sample_points(g["geometry"], 1, rng)
            did = len(rows) + 1
            status = "offline" if prng.random() < 0.03 else "online"
            rows.append(
                (
                    did, ulid_at(until_ms - 86400_000 * 300 + did, prng), kind,
                    f"{DEVICE_LABEL[kind]}-{k + 1:04d}", g["id"], g["street_code"],
                    round(float(x[0]), 6), round(float(y[0]), 6), status, until_iso,
                )
            )  # fmt: skip
    return rows
