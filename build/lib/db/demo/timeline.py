"""Vectorised helpers for generated timestamps (epoch seconds ↔ stored ISO text)."""

from __future__ import annotations

import numpy as np

from db.ids import ulid_at

SHANGHAI_OFFSET_S = 8 * 3600
MISSING = np.int64(-1)


def iso_array(seconds: np.ndarray) -> list[str | None]:
    """Epoch seconds → ``YYYY-MM-DDTHH:MM:SS+08:00``; negative entries become None."""
    secs = np.asarray(seconds, dtype=np.int64)
    valid = secs >= 0
    out: list[str | None] = [None] * len(secs)
    if valid.any():
        local = (secs[valid] + SHANGHAI_OFFSET_S).astype("datetime64[s]")
        text = np.char.add(np.datetime_as_string(local, unit="s"), "+08:00")
        idx = np.flatnonzero(valid)
        for i, s in zip(idx.tolist(), text.tolist(), strict=True):
            out[i] = s
    return out


def ulids(ms: np.ndarray, rng) -> list[str]:
    """Deterministic ULIDs for generated rows, from their times (ms) and ``rng`` (random.Random)."""
    return [ulid_at(int(m), rng) for m in np.asarray(ms, dtype=np.int64).tolist()]


def lognormal(rng: np.random.Generator, median_s: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    """Positive durations in seconds with the given median."""
    return np.asarray(median_s, dtype=float) * np.exp(rng.normal(0.0, sigma, n))
