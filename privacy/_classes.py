"""Quasi-identifier classes as integer ids: the arithmetic disclosure control and the lattice search share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["codes_of", "combine_codes", "sizes_from_ids"]


def codes_of(s: pd.Series) -> np.ndarray:
    """Integer codes of a column; null is a value of its own."""
    codes, _ = pd.factorize(s, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def combine_codes(code_columns: Sequence[np.ndarray], n: int) -> np.ndarray:
    """One class id per row from several code columns (compacted whenever the product could overflow)."""
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for codes in code_columns:
        width = int(codes.max()) + 1 if len(codes) else 1
        if span * width >= 2**62:
            key = np.asarray(pd.factorize(key)[0], dtype=np.int64)
            span = int(key.max()) + 1 if len(key) else 1
        key = key * width + codes
        span *= width
    return np.asarray(pd.factorize(key)[0], dtype=np.int64)


def sizes_from_ids(ids: np.ndarray) -> np.ndarray:
    """For each row, the size of its class."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.bincount(ids)[ids]
