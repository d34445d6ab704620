"""Random states seeded from every bit of a job's seed.

numpy's legacy `RandomState(int)` accepts only 32 bits, and `seed % 2**32` would
leave a 62-bit noise seed with 32 unknown bits: few enough to search offline
against a release (a right guess makes the de-noised counts whole numbers).
Seeding the Mersenne Twister through a `SeedSequence` keeps the whole seed.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np

__all__ = ["full_seed_random_state", "seed_global_numpy", "sub_seed"]


def sub_seed(seed: int, purpose: str) -> int:
    """A 62-bit seed for one auxiliary draw of a job, derived from the job's secret seed.

    HMAC-SHA256 keyed with the secret: a re-run of the job draws the same, and
    the value (or anything drawn from it, such as the released rows) reveals
    nothing about the secret or about the sub-seeds of other purposes, unlike
    `seed + constant`, from which the secret follows at once.
    """
    value = int(seed)
    key = value.to_bytes(max(8, (value.bit_length() + 8) // 8), "big", signed=True)
    digest = hmac.new(key, purpose.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def full_seed_random_state(seed: int | None) -> np.random.RandomState:
    """A legacy RandomState (as diffprivlib and scikit-learn take) seeded from all of `seed`; None is fresh entropy."""
    if seed is None:
        return np.random.RandomState()
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence(int(seed))))


def seed_global_numpy(seed: int) -> None:
    """Seed numpy's global generator (used inside third-party libraries) from all of `seed`."""
    np.random.set_state(full_seed_random_state(seed).get_state())
