"""Repair of the rows that still violate a constraint, in the fixed order documented in `privacy.constraints`.

Inequalities first, then combinations, then determined columns and formulas in
the order they are listed; repaired values stay inside the declared bounds and
domains and keep their dtypes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privacy._values import _category_keys, _key
from privacy.constraints.checks import (
    _band_of,
    _formula_values,
    _keys,
    _numbers,
    _violations,
    violation_counts,
)
from privacy.constraints.rules import Combinations, Determined, Formula, Inequality, _num

if TYPE_CHECKING:
    from privacy.schema import ColumnSpec, PublicSchema


# ----------------------------------------------------------------------------------
# repair
# ----------------------------------------------------------------------------------


def _assign(df: pd.DataFrame, name: str, rows: np.ndarray, values: Any) -> None:
    """Set `df[name]` at the positions `rows`, keeping the column's dtype."""
    col = df[name].copy()
    positions = np.flatnonzero(rows)
    if pd.api.types.is_datetime64_any_dtype(col):
        col.iloc[positions] = pd.to_datetime(pd.Series(values)).to_numpy()
    elif isinstance(col.dtype, pd.Int64Dtype):
        col.iloc[positions] = pd.array(np.round(np.asarray(values, dtype=float)).astype("int64"), dtype="Int64")
    else:
        col.iloc[positions] = values
    df[name] = col


def _repair_inequality(rule: Inequality, df: pd.DataFrame, schema: PublicSchema, bad: np.ndarray) -> None:
    low_spec, high_spec = schema.columns[rule.low], schema.columns[rule.high]
    is_date = low_spec.kind == "datetime"
    a, b = _numbers(df[rule.low])[bad], _numbers(df[rule.high])[bad]
    new_a, new_b = np.minimum(a, b), np.maximum(a, b)  # swap
    lo_a, hi_a = _bounds(low_spec)
    lo_b, hi_b = _bounds(high_spec)
    new_a, new_b = np.clip(new_a, lo_a, hi_a), np.clip(new_b, lo_b, hi_b)
    # only possible when the two columns have different bounds: meet where both can be
    new_a = np.where(new_a > new_b, np.maximum(lo_a, np.minimum(new_a, new_b)), new_a)
    new_b = np.where(new_a > new_b, np.minimum(hi_b, np.maximum(new_b, new_a)), new_b)
    if rule.strict:
        step = _step(high_spec, is_date)
        tie = new_a >= new_b
        up = np.minimum(new_a + step, hi_b)
        new_b = np.where(tie & (up > new_a), up, new_b)
        tie = new_a >= new_b
        new_a = np.where(tie, np.maximum(new_b - _step(low_spec, is_date), lo_a), new_a)
    for name, values in ((rule.low, new_a), (rule.high, new_b)):
        if is_date:
            _assign(df, name, bad, pd.Timestamp("1970-01-01") + pd.to_timedelta(values, unit="D"))
        else:
            _assign(df, name, bad, values)


def _bounds(spec: ColumnSpec) -> tuple[float, float]:
    lo = _num(spec.min) if spec.min is not None else -np.inf
    hi = _num(spec.max) if spec.max is not None else np.inf
    return lo, hi


def _step(spec: ColumnSpec, is_date: bool) -> float:
    if is_date:
        return 1.0 / 86400.0  # one second
    return 1.0 if spec.is_integer else 1e-9


def _repair_combinations(
    rule: Combinations, df: pd.DataFrame, schema: PublicSchema, bad: np.ndarray, rng: np.random.Generator
) -> None:
    allowed = [[_key(v) for v in row] for row in rule.allowed]
    originals = [list(row) for row in rule.allowed]
    cols = [_keys(df[name]) for name in rule.columns]
    chosen: list[list[Any]] = []
    for i in np.flatnonzero(bad):
        row = [col[i] for col in cols]
        shared = np.array([sum(a == r for a, r in zip(cand, row, strict=True)) for cand in allowed])
        best = np.flatnonzero(shared == shared.max())
        chosen.append(originals[int(best[rng.integers(0, len(best))])])
    for j, name in enumerate(rule.columns):
        _assign_category(df, name, schema.columns[name], bad, [row[j] for row in chosen])


def _assign_category(df: pd.DataFrame, name: str, spec: ColumnSpec, rows: np.ndarray, values: list[Any]) -> None:
    """Set declared category values (given as declared or as keys) keeping the column's dtype."""
    declared = _category_keys(list(spec.values or []))
    _assign(df, name, rows, pd.array([declared[_key(v)] for v in values], dtype=df[name].dtype))


def _repair_determined(rule: Determined, df: pd.DataFrame, schema: PublicSchema, bad: np.ndarray) -> None:
    target = schema.columns[rule.column]
    if rule.bands is not None:
        source = schema.columns[rule.by]
        x = _numbers(df[rule.by])
        want = _band_of(rule, x)
        lost = bad & ~np.isnan(x) & np.array([w is None for w in want])
        if lost.any():  # outside every band: move the source into the nearest band (within its bounds)
            lo_s, hi_s = _bounds(source)
            moved = []
            for v in x[lost]:
                best = None
                for b_lo, b_hi in rule.bands.values():
                    lo, hi = max(b_lo, lo_s), min(b_hi, hi_s)
                    if source.is_integer:
                        lo, hi = math.ceil(lo), math.floor(hi)
                    if lo > hi:
                        continue
                    cand = min(max(v, lo), hi)
                    if best is None or abs(cand - v) < abs(best - v):
                        best = cand
                moved.append(v if best is None else best)
            _assign(df, rule.by, lost, np.array(moved, dtype=float))
            x = _numbers(df[rule.by])
            want = _band_of(rule, x)
        fix = bad & np.array([w is not None for w in want])
        _assign_category(df, rule.column, target, fix, list(want[fix]))
        return
    mapping = {_key(k): v for k, v in (rule.mapping or {}).items()}
    src = _keys(df[rule.by])
    _assign_category(df, rule.column, target, bad, [mapping[s] for s in src[bad]])


def _repair_formula(rule: Formula, df: pd.DataFrame, schema: PublicSchema, bad: np.ndarray) -> None:
    values = _formula_values(rule, df, schema)[bad]
    spec = schema.columns[rule.column]
    if np.isnan(values).any() and not spec.nullable:  # e.g. 0 / 0 from non-null inputs
        lo, hi = _bounds(spec)
        fill = (lo + hi) / 2 if math.isfinite(lo) and math.isfinite(hi) else 0.0
        values = np.where(np.isnan(values), fill, values)
    if isinstance(df[rule.column].dtype, pd.Int64Dtype):
        col = df[rule.column].copy()
        col.iloc[np.flatnonzero(bad)] = pd.array([None if np.isnan(v) else int(v) for v in values], dtype="Int64")
        df[rule.column] = col
    else:
        _assign(df, rule.column, bad, values)


def repair_constraints(
    df: pd.DataFrame, schema: PublicSchema, *, seed: int | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """A copy of `df` with every violation repaired, and the rows changed per constraint.

    Order: inequalities (repeated until chains settle), combinations, then determined columns and
    formulas in their listed order. Raises RuntimeError if a violation is left (a bug).
    """
    out, changed = _repair(df, schema, seed)
    return out, {k: int(v.sum()) for k, v in changed.items()}


def _repair(df: pd.DataFrame, schema: PublicSchema, seed: int | None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    out = df.reset_index(drop=True).copy()
    changed: dict[str, np.ndarray] = {c.describe(): np.zeros(len(out), dtype=bool) for c in schema.constraints}
    if not schema.constraints or not len(out):
        return out, changed
    rng = np.random.default_rng(seed)
    inequalities = [c for c in schema.constraints if c.inequality is not None]
    for _ in range(2 * len(inequalities) + 2):
        any_fixed = False
        for c in inequalities:
            bad = _violations(c, out, schema)
            if bad.any():
                assert c.inequality is not None
                _repair_inequality(c.inequality, out, schema, bad)
                changed[c.describe()] |= bad
                any_fixed = True
        if not any_fixed:
            break
    for c in schema.constraints:
        if c.combinations is not None:
            bad = _violations(c, out, schema)
            if bad.any():
                _repair_combinations(c.combinations, out, schema, bad, rng)
                changed[c.describe()] |= bad
    for c in schema.constraints:
        if c.determined is None and c.formula is None:
            continue
        bad = _violations(c, out, schema)
        if bad.any():
            if c.determined is not None:
                _repair_determined(c.determined, out, schema, bad)
            else:
                assert c.formula is not None
                _repair_formula(c.formula, out, schema, bad)
            changed[c.describe()] |= bad
    left = {k: v for k, v in violation_counts(out, schema).items() if v}
    if left:
        raise RuntimeError(f"constraint repair left violations: {left}")
    return out, changed
