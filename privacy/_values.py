"""Value helpers below the public schema and its constraints (both import them): the key a
declared category is matched by, a date or number as a float, and fresh fake ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["_as_number", "_category_keys", "_key", "_keyed_codes", "factorize", "fake_ids"]

# object columns whose distinct values (as pandas hashes them) have distinct keys: equal values of these
# kinds have equal keys, so a column of them can be keyed once per distinct value
_ONE_KEY_PER_VALUE = frozenset({"empty", "string", "integer", "floating", "mixed-integer-float", "boolean"})


def _category_keys(values: list[Any]) -> dict[str, Any]:
    return {_key(v): v for v in values}


def _key(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def factorize(s: pd.Series) -> tuple[np.ndarray, Any]:
    """`pd.factorize(s, use_na_sentinel=True)`; a column of python-stored strings is factorized on its
    object array (twice as fast; the uniques come as that array's strings)."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "python":
        return pd.factorize(np.asarray(s.array), use_na_sentinel=True)
    return pd.factorize(s, use_na_sentinel=True)


def _keyed_codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(codes, keys): each cell's index into `keys` (-1 for a null), and the key of each distinct value.

    Keys each distinct value once. Only a column mixing kinds that pandas would take as one value
    (True and 1) is keyed cell by cell, so that the keys stay `_key`'s.
    """
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in _ONE_KEY_PER_VALUE:
        null = s.isna().to_numpy()
        cells = np.array([None if n else _key(v) for v, n in zip(s.tolist(), null, strict=True)], dtype=object)
        codes, uniques = pd.factorize(cells, use_na_sentinel=True)
        return codes, [str(u) for u in uniques]
    codes, uniques = factorize(s)
    return codes, [_key(v) for v in uniques]


def _as_number(v: Any) -> float:
    if isinstance(v, dt.datetime):
        return (v - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0
    if isinstance(v, dt.date):
        return float((v - dt.date(1970, 1, 1)).days)
    return float(v)


def fake_ids(n: int, rng: np.random.Generator) -> pd.Series:
    """n fresh, distinct ids for an `identifier: fake` column, in random order."""
    return pd.Series([f"SYN-{i:08d}" for i in rng.permutation(n) + 1], dtype="string")
