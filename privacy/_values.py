"""Value helpers below the public schema and its constraints (both import them): the key a
declared category is matched by, a date or number as a float, and fresh fake ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["_as_number", "_category_keys", "_key", "fake_ids"]


def _category_keys(values: list[Any]) -> dict[str, Any]:
    return {_key(v): v for v in values}


def _key(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _as_number(v: Any) -> float:
    if isinstance(v, dt.datetime):
        return (v - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0
    if isinstance(v, dt.date):
        return float((v - dt.date(1970, 1, 1)).days)
    return float(v)


def fake_ids(n: int, rng: np.random.Generator) -> pd.Series:
    """n fresh, distinct ids for an `identifier: fake` column, in random order."""
    return pd.Series([f"SYN-{i:08d}" for i in rng.permutation(n) + 1], dtype="string")
