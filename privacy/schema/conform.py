"""Validation and conformance of a table to its schema, and enforcement of the schema on synthetic output.

`validate_table` lists how a table departs from the schema, `conform_table`
brings a real table into the declared domains, and `enforce_schema` makes a
synthesizer's output keep the declared domains and dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from privacy._values import _category_keys, _key, _keyed_codes, factorize, fake_ids
from privacy.errors import SchemaError
from privacy.schema.model import NUMERIC_KINDS, PublicSchema, Scalar
from privacy.schema.proposal import apply_null_tokens

# ----------------------------------------------------------------------------------
# validation and conformance
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaIssue:
    """One way the table departs from the schema. `error` issues stop registration."""

    column: str | None
    code: str
    message: str
    severity: Literal["error", "warning"] = "error"
    count: int | None = None  # how many values the issue concerns, where the message gives a count


@dataclass
class ConformReport:
    """What conformance changed. Internal: counts derived from real rows."""

    clipped: dict[str, int] = field(default_factory=dict)
    undeclared_to_null: dict[str, int] = field(default_factory=dict)
    dropped_rows: int = 0
    dropped_columns: list[str] = field(default_factory=list)
    unparseable_to_null: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "internal": True,
            "clipped": self.clipped,
            "undeclared_to_null": self.undeclared_to_null,
            "unparseable_to_null": self.unparseable_to_null,
            "dropped_rows": self.dropped_rows,
            "dropped_columns": self.dropped_columns,
        }


def validate_table(df: pd.DataFrame, schema: PublicSchema) -> list[SchemaIssue]:
    """Check a table against a schema; the messages say what to change.

    Errors: missing or unknown columns, a numeric column with text, a date column
    that does not parse. Warnings: values outside the declared bounds or domain
    (they will be clipped or mapped to null), nulls in a non-nullable column.
    These counts come from real rows: show them to the steward only.
    """
    return _issues(apply_null_tokens(_plain_unless_declared(df, schema), schema), schema, errors_only=False)


def _plain_unless_declared(df: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    """`df` with its categorical columns (`read_table(categories=True)`) as plain object columns of the
    same values (None for a null) where the schema reads their values one by one: a column with null
    tokens, or a number, date or open-domain column. The others stay categorical: a declared domain is
    matched once per category, and a dropped or unknown column is not read."""

    def reads_cells(name: str) -> bool:
        spec = schema.columns.get(name)
        if spec is None:
            return False
        return bool(schema.null_tokens_of(name)) or (spec.values is None and not spec.is_dropped)

    plain = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype) and reads_cells(str(c))]
    if not plain:
        return df
    out = df.copy(deep=False)
    for c in plain:
        out[c] = pd.Series(df[c].to_numpy(dtype=object, na_value=None), index=df.index, name=c, dtype=object)
    return out


def _issues(df: pd.DataFrame, schema: PublicSchema, *, errors_only: bool) -> list[SchemaIssue]:
    """`validate_table`'s issues of a table whose null tokens are applied; only the errors with errors_only."""
    issues: list[SchemaIssue] = []
    declared = set(schema.columns)
    present = {str(c) for c in df.columns}
    for name in sorted(present - declared):
        issues.append(
            SchemaIssue(
                name,
                "unknown_column",
                f"column '{name}' is in the table but not in the schema; declare it "
                "(kind: identifier or text to drop it)",
            )
        )
    for name in [n for n in schema.columns if n not in present]:
        issues.append(
            SchemaIssue(name, "missing_column", f"column '{name}' is declared in the schema but missing from the table")
        )
    for name, spec in schema.columns.items():
        if name not in present or spec.is_dropped:
            continue
        s = df[name]
        nulls: bool | None = None  # whether s has nulls, where a branch already knows
        if spec.kind in NUMERIC_KINDS and spec.values is None:
            if pd.api.types.is_numeric_dtype(s.dtype):  # numbers already: none to coerce; a null compares False
                num, bad = s, 0
            else:
                nonnull = s.dropna()
                num = pd.to_numeric(nonnull, errors="coerce")
                bad = int(num.isna().sum())
            if bad:
                example = nonnull[num.isna()].iloc[0]
                issues.append(
                    SchemaIssue(
                        name,
                        "wrong_kind",
                        f"column '{name}' is declared {spec.kind} but {bad} value(s) are not numbers "
                        f"(e.g. {str(example)[:30]!r}); declare it categorical or fix the values",
                        count=bad,
                    )
                )
                continue
            if spec.has_bounds and not errors_only:
                lo, hi = spec.numeric_bounds()
                out = int(((num < lo) | (num > hi)).sum())
                if out:
                    issues.append(
                        SchemaIssue(
                            name,
                            "out_of_bounds",
                            f"{out} value(s) of '{name}' lie outside [{spec.min}, {spec.max}]; "
                            "they will be clipped to the bounds",
                            "warning",
                            count=out,
                        )
                    )
        elif spec.kind == "datetime":
            nonnull = s.dropna()
            parsed = pd.to_datetime(nonnull, errors="coerce")
            bad = int(parsed.isna().sum())
            if bad:
                issues.append(
                    SchemaIssue(
                        name,
                        "wrong_kind",
                        f"column '{name}' is declared datetime but {bad} value(s) do not parse as dates",
                        count=bad,
                    )
                )
                continue
        elif errors_only:  # the rest are warnings
            continue
        elif spec.values is not None:
            keys = _category_keys(spec.values)
            codes, seen = _keyed_codes(s)
            nulls = bool((codes < 0).any())
            outside = np.array([k not in keys for k in seen] + [False], dtype=bool)[codes]
            undeclared = int(outside.sum())
            if undeclared:
                examples = sorted({seen[c] for c in codes[outside][:1000]})[:3]
                issues.append(
                    SchemaIssue(
                        name,
                        "undeclared_category",
                        f"{undeclared} value(s) of '{name}' are not in the declared values "
                        f"(e.g. {examples}); they will be treated as null. Add them to `values` "
                        "if they should be kept",
                        "warning",
                        count=undeclared,
                    )
                )
        elif spec.kind == "categorical":
            issues.append(
                SchemaIssue(
                    name,
                    "open_domain",
                    f"column '{name}' has no declared `values`; list its categories (or drop it with "
                    "kind: identifier) before requesting a release",
                    "warning",
                )
            )
        if not spec.nullable and not errors_only and (s.isna().any() if nulls is None else nulls):
            issues.append(
                SchemaIssue(
                    name,
                    "unexpected_null",
                    f"column '{name}' has nulls but is not declared nullable; set nullable: true "
                    "or the rows will be dropped",
                    "warning",
                )
            )
    return issues


def conform_table(
    df: pd.DataFrame, schema: PublicSchema, *, strict: bool = True, categories: bool = False
) -> tuple[pd.DataFrame, ConformReport]:
    """Make a table fit its public schema before any mechanism sees it.

    Drops identifier and text columns; clips numbers and dates to declared
    bounds; maps undeclared categories to null (and drops rows with nulls in
    non-nullable columns); casts category values to the declared types. The
    returned report counts what changed: internal, never shown to analysts.
    With strict=True, structural errors (missing or unknown columns, wrong kinds)
    raise SchemaError. With `categories`, a declared domain of text values comes as a
    categorical of the declared values (as `enforce_schema` gives it), for a synthesizer that
    takes one (`Synthesizer.takes_categories`); the default is a "string" column.
    """
    df = apply_null_tokens(_plain_unless_declared(df, schema), schema)
    issues = _issues(df, schema, errors_only=True)
    if strict and issues:
        raise SchemaError("; ".join(i.message for i in issues), field="schema")
    report = ConformReport()
    out: dict[str, pd.Series] = {}
    nulls: dict[str, np.ndarray] = {}  # each kept column's null mask
    for name, spec in schema.columns.items():
        if spec.is_dropped:
            if name in df.columns:
                report.dropped_columns.append(name)
            continue
        s = df[name]
        if spec.kind == "datetime":
            parsed = pd.to_datetime(s, errors="coerce")
            if parsed.dt.tz is not None:
                parsed = parsed.dt.tz_convert(None)
            report.unparseable_to_null[name] = int(parsed.isna().sum() - s.isna().sum())
            if spec.has_bounds:
                lo = pd.Timestamp(spec.min)
                hi = pd.Timestamp(spec.max)
                n_clip = int(((parsed < lo) | (parsed > hi)).sum())
                if n_clip:
                    report.clipped[name] = n_clip
                parsed = parsed.clip(lower=lo, upper=hi)
            out[name] = parsed.astype("datetime64[ns]")
            nulls[name] = out[name].isna().to_numpy()
        elif spec.values is not None:
            declared, codes = _declared(s, _category_keys(spec.values), spec.values)
            nulls[name] = declared.isna()[codes]
            n_bad = int((nulls[name] & (codes < len(declared) - 1)).sum())  # the last: nulls
            if n_bad:
                report.undeclared_to_null[name] = n_bad
            out[name] = _declared_column(declared, codes, spec.values if categories else None, s.index)
        elif spec.kind in NUMERIC_KINDS and spec.is_integer and (ints := _conformed_ints(s, spec)) is not None:
            out[name], n_clip = ints
            if n_clip:
                report.clipped[name] = n_clip
            nulls[name] = np.zeros(len(s), dtype=bool)  # a numpy integer column: no nulls, all parsed
        elif spec.kind in NUMERIC_KINDS:
            x = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
            nulls[name] = np.isnan(x)
            report.unparseable_to_null[name] = int(nulls[name].sum() - s.isna().sum())
            if spec.has_bounds:
                lo, hi = spec.numeric_bounds()
                n_clip = int(((x < lo) | (x > hi)).sum())
                if n_clip:
                    report.clipped[name] = n_clip
                    x = np.clip(x, lo, hi)
            if spec.is_integer:
                x = np.round(x)
            out[name] = pd.Series(x, index=s.index, name=s.name)
        else:  # categorical with an open domain: keep strings, the method must refuse or pay
            out[name] = s.astype("string")
            nulls[name] = out[name].isna().to_numpy()
    result = pd.DataFrame(out, index=df.index, copy=False)  # no consolidation: a copy of every column
    report.unparseable_to_null = {k: v for k, v in report.unparseable_to_null.items() if v}
    required = [n for n in result.columns if not schema.columns[n].nullable]
    if required:
        mask = np.logical_or.reduce([nulls[n] for n in required])
        report.dropped_rows = int(mask.sum())
        if report.dropped_rows:
            result = result.loc[~mask]
    if not result.index.equals(pd.RangeIndex(len(result))):  # (the columns are already new arrays)
        result = result.reset_index(drop=True)
    elif not isinstance(result.index, pd.RangeIndex):
        result.index = pd.RangeIndex(len(result))
    return _restore_output_dtypes(result, schema), report


def _declared(s: pd.Series, keys: dict[str, Scalar], values: list[Scalar]) -> tuple[Any, np.ndarray]:
    """(array, codes): the declared category of each distinct value of `s` (NA when undeclared, and a last
    NA for nulls) in the column's dtype, and each cell's index into it. `array.take(codes)` is the column.
    A categorical column is matched once per category, on its own codes."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        categories = s.cat.categories
        cat_codes = s.cat.codes.to_numpy()
        looked_up = [keys.get(_key(v)) for v in categories] + [None]
        where = cat_codes.astype(np.intp)
        where[where < 0] = len(categories)
        return pd.array(looked_up, dtype=_category_dtype(values)), where
    codes, uniques = factorize(s)
    looked_up = [keys.get(_key(v)) for v in uniques] + [None]
    return pd.array(looked_up, dtype=_category_dtype(values)), np.where(codes < 0, len(uniques), codes)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _category_dtype(values: list[Scalar]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "Int64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "Float64"
    return "string"


def _restore_output_dtypes(df: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    """Integers stay integers (nullable Int64), as the schema says."""
    for name in df.columns:
        spec = schema.columns[name]
        if spec.kind in NUMERIC_KINDS and spec.values is None and spec.is_integer and df[name].dtype != "Int64":
            df[name] = _rounded_int64(df[name])
    return df


_EXACT = 2**53  # integers up to this size are exact as float64


def _conformed_ints(s: pd.Series, spec: Any) -> tuple[pd.Series, int] | None:
    """A numpy integer column of an integer spec conformed without a detour through floats: (the Int64
    column, how many values were clipped), what the float path gives when every value and bound is
    exact as a float64; else None (the float path)."""
    if s.dtype.kind not in "iu" or not isinstance(s.dtype, np.dtype) or len(s) == 0:
        return None
    x = s.to_numpy()
    if int(x.min()) < -_EXACT or int(x.max()) > _EXACT:
        return None
    ints = x.astype(np.int64, copy=True)
    n_clip = 0
    if spec.has_bounds:
        lo, hi = spec.numeric_bounds()
        if not (-_EXACT <= lo <= _EXACT and -_EXACT <= hi <= _EXACT):
            return None
        outside = (ints < lo) | (ints > hi)
        n_clip = int(outside.sum())
        if n_clip:  # clipped and rounded as the float path does
            ints[outside] = np.round(np.clip(ints[outside].astype(np.float64), lo, hi)).astype(np.int64)
    column = pd.Series(pd.arrays.IntegerArray(ints, np.zeros(len(ints), dtype=bool)), index=s.index, name=s.name)
    return column, n_clip


def _rounded_int64(num: pd.Series) -> pd.Series:
    """`num.round().astype("Int64")`, built from the rounded floats and their null mask at once."""
    if num.dtype != np.float64:
        return num.round().astype("Int64")
    x = np.round(num.to_numpy())  # a fresh array: set in place below
    if not _within(x, -_INT64_FLOAT_MAX, _INT64_FLOAT_MAX):  # infinite or too large: as astype refuses it
        return num.round().astype("Int64")
    null = np.isnan(x)
    if null.any():
        x[null] = 0
    return pd.Series(pd.arrays.IntegerArray(x.astype(np.int64), null), index=num.index, name=num.name)


_INT64_FLOAT_MAX = float(np.nextafter(2.0**63, 0))  # the largest float below 2**63


def _within(x: np.ndarray, lo: float, hi: float) -> bool:
    """Whether every number of x (nulls aside) lies in [lo, hi]: clipping would change nothing."""
    return not x.size or bool(lo <= np.fmin.reduce(x) and np.fmax.reduce(x) <= hi) or bool(np.isnan(x).all())


def enforce_schema(
    df: pd.DataFrame, schema: PublicSchema, *, seed: int | None = None, categories: bool = False
) -> pd.DataFrame:
    """Post-process a synthesizer's output onto the schema (public: uses no real data).

    Orders and casts the columns, clips to the declared bounds, maps values
    outside the declared domain to null, fills nulls of a non-nullable column
    with draws from that column's own output values (`_fill_from_output`),
    rounds integers and regenerates `identifier: fake` columns as fresh ids. Keeps the DP guarantee: it reads only the output and
    the schema.

    With `categories`, a declared domain of text values comes as a pandas categorical of the declared
    values (in their declared order) instead of a "string" column: the same cells, drawn with the same
    random numbers, but each row a code (`core.bundle.safe_csv_bytes` then writes each value once).
    For callers that only write the table (`synthgate synth`); the default keeps every other consumer's
    dtypes.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    n = len(df)
    for name, spec in schema.columns.items():
        if spec.kind == "identifier":
            if spec.identifier == "fake":
                out[name] = fake_ids(n, rng)
            continue
        if spec.kind == "text":
            continue
        if name not in df.columns:
            raise SchemaError(f"the synthesizer did not produce column '{name}'", field="schema")
        s = df[name].reset_index(drop=True)
        if spec.kind == "datetime":
            parsed = pd.to_datetime(s, errors="coerce")
            if spec.has_bounds:
                parsed = parsed.clip(lower=pd.Timestamp(spec.min), upper=pd.Timestamp(spec.max))
            out[name] = parsed.astype("datetime64[ns]")
        elif spec.values is not None and categories and _is_declared_categorical(s, spec.values, spec.nullable):
            out[name] = s  # already the declared categorical, every cell declared (or a null it may have)
        elif spec.values is not None:
            declared, codes = _declared(s, _category_keys(spec.values), spec.values)
            missing = declared.isna()[codes]
            if spec.nullable or not missing.any():
                out[name] = _declared_column(declared, codes, spec.values if categories else None)
            elif missing.all():  # nothing in the output to draw from: the declared domain
                mapped = _fill_from_output(pd.Series([None] * n, dtype=object), rng, name, list(spec.values))
                out[name] = pd.Series(pd.array(mapped.tolist(), dtype=_category_dtype(spec.values)))
            else:  # as `_fill_from_output` draws from the output's values, on their codes
                present = codes[~missing]
                codes = codes.copy()
                codes[missing] = present[rng.integers(0, present.size, int(missing.sum()))]
                out[name] = _declared_column(declared, codes, spec.values if categories else None)
        elif spec.kind in NUMERIC_KINDS:
            num = pd.to_numeric(s, errors="coerce").astype("float64")
            if spec.has_bounds:
                lo, hi = spec.numeric_bounds()
                if not _within(num.to_numpy(), lo, hi):
                    num = num.clip(lo, hi)
            if not spec.nullable:
                num = _fill_from_output(num, rng, name, spec.numeric_bounds() if spec.has_bounds else None)
            if spec.is_integer:
                out[name] = _rounded_int64(num)
            else:
                out[name] = num
        else:
            out[name] = s.astype("string")
        if not spec.nullable and spec.kind == "datetime":
            bounds = (pd.Timestamp(spec.min), pd.Timestamp(spec.max)) if spec.has_bounds else None
            out[name] = _fill_from_output(out[name], rng, name, bounds)
    return pd.DataFrame(out, copy=False)


def _is_declared_categorical(s: pd.Series, values: list[Scalar], nullable: bool) -> bool:
    """Whether `s` is what `_declared_column` makes of it with `values`: an unordered categorical of the
    declared text values, in their order (each its own declared value), with no null unless `nullable`."""
    if not isinstance(s.dtype, pd.CategoricalDtype) or s.cat.ordered:
        return False
    categories = s.cat.categories
    if categories.dtype != object or len(categories) != len(values) or len(set(values)) < len(values):
        return False
    if not all(isinstance(v, str) for v in values) or list(categories) != list(values):
        return False
    return nullable or not bool((s.cat.codes.to_numpy() < 0).any())


def _declared_column(declared: Any, codes: np.ndarray, values: list[Scalar] | None, index: Any = None) -> pd.Series:
    """`declared.take(codes)` as a Series; with `values` (declared text values, distinct), the same
    cells as a categorical of those values, its codes spread from `declared`'s (one lookup per entry)."""
    if values is None or not values or not all(isinstance(v, str) for v in values) or len(set(values)) < len(values):
        return pd.Series(declared.take(codes), index=index)
    position = {v: i for i, v in enumerate(values)}
    lookup = np.array([-1 if pd.isna(v) else position[v] for v in declared], dtype=np.int64)
    categories = pd.CategoricalDtype(pd.Index(values, dtype=object))
    return pd.Series(pd.Categorical.from_codes(lookup[codes], dtype=categories), index=index)


def _fill_from_output(s: pd.Series, rng: np.random.Generator, name: str, fallback: Any) -> pd.Series:
    """Missing values of a non-nullable column, drawn from the column's own output values.

    Post-processing of the output alone: the filled values follow the model's marginal for the
    column, never a constant (a fill with the bounds' midpoint piled a sixth of some SDV columns
    onto one value). With no value in the output to draw from, a declared domain (a list) or
    bounds (lo, hi) is drawn from uniformly; with neither, the column cannot be filled honestly.
    """
    missing = s.isna().to_numpy()
    if not missing.any():
        return s
    present = s[~missing].to_numpy()
    k = int(missing.sum())
    if present.size:
        drawn: Any = present[rng.integers(0, present.size, k)]
    elif isinstance(fallback, list) and fallback:
        drawn = np.array(fallback, dtype=object)[rng.integers(0, len(fallback), k)]
    elif isinstance(fallback, tuple):
        lo, hi = fallback
        if isinstance(lo, pd.Timestamp):
            days = rng.uniform(0, (hi - lo) / pd.Timedelta(days=1), k)
            drawn = (lo + pd.to_timedelta(np.floor(days), unit="D")).to_numpy()
        else:
            drawn = rng.uniform(float(lo), float(hi), k)
    else:
        raise SchemaError(
            f"the synthesizer produced no value for column '{name}', which may not be null and has "
            "no declared bounds to draw from: declare its bounds, or let it be nullable",
            field="schema",
        )
    filled = s.copy().astype(object) if s.dtype == object else s.copy()
    filled.iloc[np.flatnonzero(missing)] = drawn
    return filled
