"""Checking rows against the constraints: which rows of a table violate which rule.

`violation_counts` measures any table; the row masks here are what the
repair and the enforcement act on. Reads only the rows it is given and the
public schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privacy._expression import Expression, parse_expression
from privacy._values import _key
from privacy.constraints.rules import Constraint, Determined, Formula

if TYPE_CHECKING:
    from privacy.schema import PublicSchema


# ----------------------------------------------------------------------------------
# checking rows
# ----------------------------------------------------------------------------------


def _numbers(s: pd.Series) -> np.ndarray:
    """A column as floats (datetimes as days since 1970-01-01), NaN for null."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return ((s - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _keys(s: pd.Series) -> np.ndarray:
    """A categorical column as its declared keys (None for null)."""
    return np.array([None if _isna(v) else _key(v) for v in s], dtype=object)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _expression_inputs(df: pd.DataFrame, names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        s = df[name]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s) or s.dtype == bool:
            out[name] = _numbers(s.astype("Float64") if s.dtype == "boolean" else s)
        else:
            num = pd.to_numeric(s, errors="coerce")
            if bool((num.notna() | s.isna()).all()):
                out[name] = num.to_numpy(dtype=float, na_value=np.nan)
            else:
                out[name] = np.array([None if _isna(v) else v for v in s], dtype=object)
    return out


def _formula_values(rule: Formula, df: pd.DataFrame, schema: PublicSchema) -> np.ndarray:
    spec = schema.columns[rule.column]
    expr = _parsed(rule, schema)
    x = expr.evaluate(_expression_inputs(df, expr.columns), len(df))
    nulls = np.zeros(len(df), dtype=bool)
    for name in expr.columns:
        nulls |= df[name].isna().to_numpy()
    x = np.where(nulls, np.nan, x)
    if spec.has_bounds:
        lo, hi = spec.numeric_bounds()
        x = np.clip(x, lo, hi)
    if spec.is_integer:
        x = np.round(x)
    return x


def _parsed(rule: Formula, schema: PublicSchema) -> Expression:
    readable = {n for n, s in schema.columns.items() if not s.is_dropped and n != rule.column}
    return parse_expression(rule.expression, readable)


def _band_of(rule: Determined, x: np.ndarray) -> np.ndarray:
    """The key of the first band holding each value (None where no band does)."""
    out = np.full(len(x), None, dtype=object)
    free = ~np.isnan(x)
    for value, (lo, hi) in (rule.bands or {}).items():
        hit = free & (x >= lo) & (x <= hi)
        out[hit] = _key(value)
        free &= ~hit
    return out


def _violations(c: Constraint, df: pd.DataFrame, schema: PublicSchema) -> np.ndarray:
    """True where a row violates `c` (nulls never do)."""
    n = len(df)
    if c.inequality is not None:
        a, b = _numbers(df[c.inequality.low]), _numbers(df[c.inequality.high])
        with np.errstate(invalid="ignore"):
            bad = (a >= b) if c.inequality.strict else (a > b)
        return bad & ~np.isnan(a) & ~np.isnan(b)
    if c.determined is not None:
        rule = c.determined
        have = _keys(df[rule.column])
        if rule.bands is not None:
            x = _numbers(df[rule.by])
            want = _band_of(rule, x)
            present = ~np.isnan(x) & np.array([h is not None for h in have])
            return present & (want != have)
        mapping = {_key(k): _key(v) for k, v in (rule.mapping or {}).items()}
        src = _keys(df[rule.by])
        want = np.array([mapping.get(s) if s is not None else None for s in src], dtype=object)
        present = np.array([w is not None and h is not None for w, h in zip(want, have, strict=True)], dtype=bool)
        return present & (want != have)
    if c.combinations is not None:
        combo = c.combinations
        allowed = {tuple(_key(v) for v in row) for row in combo.allowed}
        cols = [_keys(df[name]) for name in combo.columns]
        out = np.zeros(n, dtype=bool)
        for i in range(n):
            row = tuple(col[i] for col in cols)
            out[i] = None not in row and row not in allowed
        return out
    assert c.formula is not None
    want = _formula_values(c.formula, df, schema)
    have = _numbers(df[c.formula.column])
    both_null = np.isnan(want) & np.isnan(have)
    close = np.isclose(have, want, rtol=1e-9, atol=1e-9)
    return ~(both_null | close)


def violation_counts(df: pd.DataFrame, schema: PublicSchema) -> dict[str, int]:
    """Rows of `df` violating each constraint of the schema (by its `describe()` text).

    On a real table the counts are facts about real rows: for the steward, never for a release.
    """
    return {c.describe(): int(_violations(c, df, schema).sum()) for c in schema.constraints}


def _row_checked(schema: PublicSchema) -> list[Constraint]:
    return [c for c in schema.constraints if c.kind != "formula"]


def _any_violation(df: pd.DataFrame, schema: PublicSchema) -> np.ndarray:
    out = np.zeros(len(df), dtype=bool)
    for c in _row_checked(schema):
        out |= _violations(c, df, schema)
    return out
