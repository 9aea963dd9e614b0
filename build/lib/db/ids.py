"""Stable global ids (ULID) for records that centres will share."""

from __future__ import annotations

import random

from ulid import ULID


def new_ulid() -> str:
    return str(ULID())


def ulid_at(ms: int, rng: random.Random) -> str:
    """A deterministic ULID for generated data: timestamp ``ms`` plus 80 bits from ``rng``."""
    return str(ULID.from_bytes(int(ms).to_bytes(6, "big") + rng.getrandbits(80).to_bytes(10, "big")))
