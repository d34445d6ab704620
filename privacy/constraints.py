"""Constraints between columns, declared in the public schema and enforced on every method's output.

The steward declares them under `constraints:`, as public knowledge about the
table (never learned from its rows)::

    constraints:
      - c_jail_in <= c_jail_out                        # short form of an inequality
      - inequality: {low: c_jail_in, high: c_jail_out, strict: false}
      - determined:                                     # a column fixed by another, by bands ...
          column: age_cat
          by: age
          bands: {Less than 25: [18, 24], 25 - 45: [25, 45], Greater than 45: [46, 100]}
      - determined: {column: region, by: state, mapping: {CA: west, NY: east}}   # ... or a mapping
      - combinations:                                   # the only allowed combinations of categories
          columns: [pregnant, sex]
          allowed: [[yes, Female], [no, Female], [no, Male]]
      - formula: {column: bmi, expression: "weight / (height / 100) ** 2"}

Meaning, row by row; a null in any column a constraint reads never violates it:

* inequality: `low <= high` (`<` when strict), between two numeric or two datetime columns;
* determined: the `column`'s value is the band that holds `by` (bands are inclusive
  `[min, max]`, the first that holds a value wins), or `mapping[by]` (values of `by`
  that the mapping does not list are not constrained);
* combinations: the tuple of the listed columns is one of `allowed`;
* formula: the numeric `column` equals the expression, clipped to its bounds and
  rounded if it is an integer. Expressions are parsed by `privacy._expression`
  (arithmetic, comparisons and a few named functions, never `eval`).

Enforcement (`enforce_constraints`), on the synthetic output only, in this order:

1. **Reject and resample.** Rows violating an inequality, a determination or a
   combination are replaced by fresh rows drawn from the fitted synthesizer (the
   caller's `resample`), keeping only draws that satisfy every such constraint, for at
   most `max_rounds` rounds. The output keeps its requested row count, and the kept
   rows follow the model conditioned on the constraints.
2. **Repair what is left**, in a fixed order so that no repair undoes another:
   inequalities (swap the two values, then clip each to its declared bounds; repeated
   until chains such as a <= b <= c settle), combinations (the allowed combination
   sharing most values with the row, ties broken by a seeded draw), then determined
   columns and formulas in the order they are listed (the determined column is
   recomputed from its source; a source outside every band is first moved to the
   nearest band). Repaired values stay inside the declared bounds and domains and
   keep their dtypes.
3. **Check.** No row violates a constraint afterwards; anything else is a bug and raises.

Formulas are definitions rather than checks: they are not grounds for rejection, the
column is recomputed on every row. Everything here reads only the synthetic rows and
the public schema, so it is post-processing and costs no privacy budget; the counts in
`ConstraintReport` are counts of synthetic rows. `violation_counts` measures any table
(for example a real one, for the steward) and is not used by a release.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from privacy._expression import Expression, ExpressionError, parse_expression

if TYPE_CHECKING:
    from privacy.schema import ColumnSpec, PublicSchema

__all__ = [
    "Combinations",
    "Constraint",
    "ConstraintReport",
    "Determined",
    "Formula",
    "Inequality",
    "check_constraints",
    "constraints_valid_for",
    "enforce_constraints",
    "repair_constraints",
    "violation_counts",
]

log = logging.getLogger(__name__)

Scalar = str | int | float | bool
DEFAULT_ROUNDS = 5
# a round draws at most this many times the output's rows (a model that almost never satisfies the
# constraints is repaired rather than sampled without end)
MAX_DRAW_FACTOR = 4
_NUMERIC = ("ordinal", "continuous")


class Inequality(BaseModel):
    """`low <= high` (or `<` when strict) on every row where both are present."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: str
    high: str
    strict: bool = False


class Determined(BaseModel):
    """`column` is fixed by `by`: through numeric `bands` (value -> [min, max]) or a `mapping`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    by: str
    bands: dict[Scalar, tuple[int | float, int | float]] | None = None
    mapping: dict[Scalar, Scalar] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Determined:
        if (self.bands is None) == (self.mapping is None):
            raise ValueError(f"determined '{self.column}' needs exactly one of `bands` (for a numeric `by`) or "
                             "`mapping` (for a categorical `by`)")
        for value, (lo, hi) in (self.bands or {}).items():
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(f"determined '{self.column}': band '{value}' must be [min, max] with finite "
                                 f"min <= max, got [{lo}, {hi}]")
        if self.mapping is not None and not self.mapping:
            raise ValueError(f"determined '{self.column}': the mapping lists nothing")
        if self.bands is not None and not self.bands:
            raise ValueError(f"determined '{self.column}': no bands are listed")
        return self


class Combinations(BaseModel):
    """The only combinations of values that the listed categorical columns may take together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] = Field(min_length=2)
    allowed: list[list[Scalar]] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> Combinations:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"combinations list a column twice: {self.columns}")
        for row in self.allowed:
            if len(row) != len(self.columns):
                raise ValueError(f"combination {row} has {len(row)} values; give one per column of {self.columns}")
        return self


class Formula(BaseModel):
    """A numeric column defined by an expression of other columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    expression: str


_SHORT = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(<=|<|>=|>)\s*([A-Za-z_][\w]*)\s*$")


class Constraint(BaseModel):
    """One entry of `constraints:`: exactly one of its kinds (or `"a <= b"` for an inequality)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inequality: Inequality | None = None
    determined: Determined | None = None
    combinations: Combinations | None = None
    formula: Formula | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            m = _SHORT.match(data)
            if not m:
                raise ValueError(f"'{data}' is not a constraint; write 'low <= high' (or <, >=, >) with two column "
                                 "names, or a mapping such as {inequality: {low: a, high: b}}")
            a, op, b = m.groups()
            low, high = (a, b) if op in ("<=", "<") else (b, a)
            return {"inequality": {"low": low, "high": high, "strict": op in ("<", ">")}}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Constraint:
        given = [k for k in ("inequality", "determined", "combinations", "formula") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("each constraint is exactly one of inequality, determined, combinations or formula"
                             + (f"; this one gives {given}" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("inequality", "determined", "combinations", "formula") if getattr(self, k) is not None)

    @property
    def target(self) -> str | None:
        """The column this constraint computes (determined and formula), else None."""
        if self.determined is not None:
            return self.determined.column
        if self.formula is not None:
            return self.formula.column
        return None

    @property
    def columns(self) -> list[str]:
        """Every column the constraint reads or sets."""
        if self.inequality is not None:
            return [self.inequality.low, self.inequality.high]
        if self.determined is not None:
            return [self.determined.column, self.determined.by]
        if self.combinations is not None:
            return list(self.combinations.columns)
        assert self.formula is not None
        return [self.formula.column, *_names_in(self.formula.expression)]

    def describe(self) -> str:
        """One line for people: what the constraint says."""
        if self.inequality is not None:
            return f"{self.inequality.low} {'<' if self.inequality.strict else '<='} {self.inequality.high}"
        if self.determined is not None:
            how = "bands" if self.determined.bands is not None else "a mapping"
            return f"{self.determined.column} determined by {self.determined.by} ({how})"
        if self.combinations is not None:
            return f"allowed combinations of ({', '.join(self.combinations.columns)})"
        assert self.formula is not None
        return f"{self.formula.column} = {self.formula.expression}"


def _names_in(expression: str) -> list[str]:
    import ast

    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return []
    return list(dict.fromkeys(n.id for n in ast.walk(tree) if isinstance(n, ast.Name)))


# ----------------------------------------------------------------------------------
# validation against the schema's columns
# ----------------------------------------------------------------------------------


def check_constraints(constraints: Sequence[Constraint], columns: Mapping[str, ColumnSpec]) -> None:
    """Raise ValueError, saying what to change, unless every constraint fits the declared columns."""
    targets: dict[str, int] = {}
    for i, c in enumerate(constraints):
        t = c.target
        if t is not None:
            if t in targets:
                raise ValueError(f"constraints[{i}]: column '{t}' is already computed by constraints[{targets[t]}]; "
                                 "a column can be determined by one constraint only")
            targets[t] = i
    for i, c in enumerate(constraints):
        where = f"constraints[{i}] ({c.kind})"
        if c.kind != "formula":
            for name in c.columns:
                _declared(name, columns, where)
        if c.inequality is not None:
            _check_inequality(c.inequality, columns, where)
        elif c.determined is not None:
            _check_determined(c.determined, columns, where)
        elif c.combinations is not None:
            _check_combinations(c.combinations, columns, where)
        else:
            assert c.formula is not None
            _check_formula(c.formula, columns, where)
        if c.kind in ("inequality", "combinations"):
            for name in c.columns:
                if name in targets:
                    raise ValueError(f"{where}: '{name}' is computed by constraints[{targets[name]}]; constrain its "
                                     "source columns instead")
        else:
            reads = [n for n in c.columns if n != c.target]
            for name in reads:
                if name in targets and targets[name] > i:
                    raise ValueError(f"{where}: it reads '{name}', which constraints[{targets[name]}] computes; list "
                                     "that constraint first")
    _check_no_cycle([c.inequality for c in constraints if c.inequality is not None])


def constraints_valid_for(constraints: Sequence[Constraint], columns: Mapping[str, ColumnSpec]) -> list[Constraint]:
    """The constraints that keep their meaning on `columns`, each checked alone: after disclosure
    control recodes a column (age into bands, say), a constraint on its old values no longer applies."""
    kept: list[Constraint] = []
    for c in constraints:
        try:
            check_constraints([c], columns)
        except ValueError:
            continue
        kept.append(c)
    return kept


def _declared(name: str, columns: Mapping[str, ColumnSpec], where: str) -> ColumnSpec:
    if name not in columns:
        raise ValueError(f"{where} names '{name}', which is not a declared column (columns: {', '.join(columns)})")
    spec = columns[name]
    if spec.is_dropped:
        raise ValueError(f"{where} names '{name}', an {spec.kind} column, which is not released; constrain modelled "
                         "columns only")
    return spec


def _is_number(spec: ColumnSpec) -> bool:
    return spec.kind in _NUMERIC and spec.values is None


def _check_inequality(rule: Inequality, columns: Mapping[str, ColumnSpec], where: str) -> None:
    low, high = columns[rule.low], columns[rule.high]
    if rule.low == rule.high:
        raise ValueError(f"{where}: '{rule.low}' is compared with itself")
    if not ((_is_number(low) and _is_number(high)) or (low.kind == high.kind == "datetime")):
        raise ValueError(f"{where}: '{rule.low}' ({_kind_text(low)}) and '{rule.high}' ({_kind_text(high)}) cannot "
                         "be compared; an inequality takes two numeric columns (ordinal/continuous without `values`) "
                         "or two datetime columns")
    if low.min is not None and high.max is not None:
        lo, hi = low.numeric_bounds()[0] if low.has_bounds else _num(low.min), \
            high.numeric_bounds()[1] if high.has_bounds else _num(high.max)
        if lo > hi or (rule.strict and lo >= hi):
            raise ValueError(f"{where}: no row can satisfy it: the smallest '{rule.low}' ({low.min}) is above the "
                             f"largest '{rule.high}' ({high.max}); widen the bounds or drop the constraint")


def _num(v: Any) -> float:
    from privacy.schema import _as_number

    return _as_number(v)


def _kind_text(spec: ColumnSpec) -> str:
    return f"{spec.kind} with values" if spec.values is not None else spec.kind


def _check_determined(rule: Determined, columns: Mapping[str, ColumnSpec], where: str) -> None:
    from privacy.schema import _key

    if rule.column == rule.by:
        raise ValueError(f"{where}: '{rule.column}' cannot be determined by itself")
    target, source = columns[rule.column], columns[rule.by]
    if target.values is None:
        raise ValueError(f"{where}: '{rule.column}' must declare `values` to be determined by bands or a mapping")
    declared = {_key(v) for v in target.values}
    given = rule.bands if rule.bands is not None else {}
    out_values = list(given) if rule.bands is not None else list((rule.mapping or {}).values())
    unknown = [v for v in out_values if _key(v) not in declared]
    if unknown:
        raise ValueError(f"{where}: {unknown} not among the declared values of '{rule.column}' "
                         f"({list(target.values)}); use declared values")
    if rule.bands is not None:
        if not _is_number(source):
            raise ValueError(f"{where}: bands need a numeric '{rule.by}' (ordinal/continuous without `values`), "
                             f"but it is {_kind_text(source)}; use a mapping instead")
        if source.has_bounds:
            lo, hi = source.numeric_bounds()
            for value, (b_lo, b_hi) in rule.bands.items():
                if b_hi < lo or b_lo > hi:
                    raise ValueError(f"{where}: band '{value}' [{b_lo}, {b_hi}] lies outside the bounds of "
                                     f"'{rule.by}' [{source.min}, {source.max}]")
    else:
        if source.values is None:
            raise ValueError(f"{where}: a mapping needs '{rule.by}' to declare `values` (it is "
                             f"{_kind_text(source)}); use bands for a numeric column")
        source_keys = {_key(v) for v in source.values}
        stray = [k for k in (rule.mapping or {}) if _key(k) not in source_keys]
        if stray:
            raise ValueError(f"{where}: the mapping lists {stray}, which are not declared values of '{rule.by}'")


def _check_combinations(rule: Combinations, columns: Mapping[str, ColumnSpec], where: str) -> None:
    from privacy.schema import _key

    for j, name in enumerate(rule.columns):
        spec = columns[name]
        if spec.values is None:
            raise ValueError(f"{where}: '{name}' must declare `values` to take part in combinations (it is "
                             f"{_kind_text(spec)})")
        keys = {_key(v) for v in spec.values}
        stray = sorted({str(row[j]) for row in rule.allowed if _key(row[j]) not in keys})
        if stray:
            raise ValueError(f"{where}: {stray} are not declared values of '{name}'")


def _check_formula(rule: Formula, columns: Mapping[str, ColumnSpec], where: str) -> None:
    spec = _declared(rule.column, columns, where)
    if not _is_number(spec):
        raise ValueError(f"{where}: '{rule.column}' is {_kind_text(spec)}; a formula computes a numeric column "
                         "(ordinal/continuous without `values`)")
    readable = {n for n, s in columns.items() if not s.is_dropped and n != rule.column}
    try:
        expr = parse_expression(rule.expression, readable)
    except ExpressionError as exc:
        if rule.column in _names_in(rule.expression):
            raise ValueError(f"{where}: the formula of '{rule.column}' reads '{rule.column}' itself") from exc
        raise ValueError(f"{where}: {exc}") from exc
    nullable = [n for n in expr.columns if columns[n].nullable]
    if nullable and not spec.nullable:
        raise ValueError(f"{where}: the formula of '{rule.column}' reads nullable column(s) {nullable}, so it can be "
                         f"null; declare '{rule.column}' nullable")


def _check_no_cycle(rules: list[Inequality]) -> None:
    edges: dict[str, set[str]] = {}
    for r in rules:
        edges.setdefault(r.low, set()).add(r.high)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                raise ValueError(f"the inequalities form a cycle ({' <= '.join(cycle)}); columns that must be equal "
                                 "are one column, or one defined by a formula")
            if state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in list(edges):
        if state.get(start) is None:
            visit(start, [start])


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
    from privacy.schema import _key

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
    from privacy.schema import _key

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
        from privacy.schema import _key

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
        from privacy.schema import _key

        rule = c.combinations
        allowed = {tuple(_key(v) for v in row) for row in rule.allowed}
        cols = [_keys(df[name]) for name in rule.columns]
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


def _repair_combinations(rule: Combinations, df: pd.DataFrame, schema: PublicSchema, bad: np.ndarray,
                         rng: np.random.Generator) -> None:
    from privacy.schema import _key

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
    from privacy.schema import _category_keys, _key

    declared = _category_keys(list(spec.values or []))
    _assign(df, name, rows, pd.array([declared[_key(v)] for v in values], dtype=df[name].dtype))


def _repair_determined(rule: Determined, df: pd.DataFrame, schema: PublicSchema, bad: np.ndarray) -> None:
    from privacy.schema import _key

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


def repair_constraints(df: pd.DataFrame, schema: PublicSchema, *, seed: int | None = None
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


# ----------------------------------------------------------------------------------
# enforcement
# ----------------------------------------------------------------------------------


@dataclass
class ConstraintReport:
    """What enforcement did to one output. Counts of synthetic rows only: public."""

    rows: int
    constraints: list[dict[str, Any]] = field(default_factory=list)
    rows_violating: int = 0
    rows_resampled: int = 0
    rows_drawn: int = 0
    rounds: int = 0
    rows_repaired: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "constraints": self.constraints,
            "rows_violating": self.rows_violating,
            "rows_resampled": self.rows_resampled,
            "rows_drawn": self.rows_drawn,
            "rounds": self.rounds,
            "rows_repaired": self.rows_repaired,
            "seconds": self.seconds,
        }


Resample = Callable[[int], pd.DataFrame]


def enforce_constraints(df: pd.DataFrame, schema: PublicSchema, *, resample: Resample | None = None,
                        seed: int | None = None, max_rounds: int = DEFAULT_ROUNDS
                        ) -> tuple[pd.DataFrame, ConstraintReport]:
    """`df` with every constraint of `schema` satisfied, and what it took (see the module docstring).

    `resample(m)` returns m fresh rows of the same synthesizer, already fitted to the schema
    (`Synthesizer.sample_more`); without it, violations are repaired only. Reads only `df`, the
    rows `resample` draws and the public schema: post-processing, no privacy cost.
    """
    t0 = time.perf_counter()
    report = ConstraintReport(rows=len(df))
    if not schema.constraints:
        return df, report
    out = df.reset_index(drop=True).copy()
    before = {c.describe(): _violations(c, out, schema) for c in schema.constraints}
    bad = np.zeros(len(out), dtype=bool)
    for c in _row_checked(schema):
        bad |= before[c.describe()]
    report.rows_violating = int(bad.sum())
    if resample is not None and bad.any():
        out, report.rows_resampled, report.rows_drawn, report.rounds = _reject_and_resample(
            out, bad, schema, resample, max_rounds)
    out, changed = _repair(out, schema, seed)
    if report.rows_resampled:
        out = _fresh_fake_ids(out, schema, seed)
    touched = np.zeros(len(out), dtype=bool)
    for c in schema.constraints:
        key = c.describe()
        touched |= changed[key]
        report.constraints.append({"constraint": key, "kind": c.kind, "violations_before": int(before[key].sum()),
                                   "repaired": int(changed[key].sum())})
    report.rows_repaired = int(touched.sum())
    report.seconds = round(time.perf_counter() - t0, 4)
    log.info("constraints: %d of %d rows violated; %d resampled in %d round(s), %d repaired",
             report.rows_violating, report.rows, report.rows_resampled, report.rounds, report.rows_repaired)
    return out, report


def _reject_and_resample(df: pd.DataFrame, bad: np.ndarray, schema: PublicSchema, resample: Resample,
                         max_rounds: int) -> tuple[pd.DataFrame, int, int, int]:
    """Replace violating rows by fresh draws that satisfy every row-checked constraint.

    Returns the frame, the rows replaced, the rows drawn and the rounds run. Rows that no round
    could replace stay as they are (for repair).
    """
    positions = np.flatnonzero(bad)
    need = len(positions)
    rate = max(1.0 - float(bad.mean()), 0.05)
    found: list[pd.DataFrame] = []
    drawn = rounds = 0
    for _ in range(max_rounds):
        if need <= 0:
            break
        m = int(min(math.ceil(1.2 * need / rate) + 16, MAX_DRAW_FACTOR * len(df)))
        extra = resample(m).reset_index(drop=True)
        drawn += len(extra)
        rounds += 1
        if not len(extra):
            break
        ok = ~_any_violation(extra, schema)
        rate = max(float(ok.mean()), 0.05)
        take = extra.loc[ok].head(need)
        found.append(take)
        need -= len(take)
    if not found:
        return df, 0, drawn, rounds
    replacements = pd.concat(found, ignore_index=True)
    replacements = replacements[list(df.columns)]
    targets = positions[:len(replacements)]
    out = df.copy()
    for name in out.columns:
        col = out[name].copy()
        col.iloc[targets] = replacements[name].astype(col.dtype).to_numpy()
        out[name] = col
    return out, len(targets), drawn, rounds


def _fresh_fake_ids(df: pd.DataFrame, schema: PublicSchema, seed: int | None) -> pd.DataFrame:
    """Regenerated `identifier: fake` columns: replacement rows would otherwise repeat ids."""
    from privacy.schema import fake_ids

    fakes = [n for n, s in schema.columns.items() if s.kind == "identifier" and s.identifier == "fake" and n in df]
    if not fakes:
        return df
    rng = np.random.default_rng(seed)
    for name in fakes:
        df[name] = fake_ids(len(df), rng)
    return df
