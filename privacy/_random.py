"""Random states seeded from every bit of a job's seed.

numpy's legacy `RandomState(int)` accepts only 32 bits, and `seed % 2**32` would
leave a 62-bit noise seed with 32 unknown bits: few enough to search offline
against a release (a right guess makes the de-noised counts whole numbers).
Seeding the Mersenne Twister through a `SeedSequence` keeps the whole seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["full_seed_random_state", "seed_global_numpy"]


def full_seed_random_state(seed: int | None) -> np.random.RandomState:
    """A legacy RandomState (as diffprivlib and scikit-learn take) seeded from all of `seed`; None is fresh entropy."""
    if seed is None:
        return np.random.RandomState()
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence(int(seed))))


def seed_global_numpy(seed: int) -> None:
    """Seed numpy's global generator (used inside third-party libraries) from all of `seed`."""
    np.random.set_state(full_seed_random_state(seed).get_state())
