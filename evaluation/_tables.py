"""Column views of conformed tables on the public schema.

Every metric works on one of two views of a column:

* a *numeric view* (float64, NaN for null) for continuous, ordinal and
  datetime columns (datetimes as days since 1970-01-01; an ordinal declared
  with `values` as the value itself when the values are numbers, else its rank);
* *codes* (int32 in [0, size), the last code is null) that discretise every
  column: one code per declared category, one per integer for a small ordinal
  range, otherwise bins.

Two discretisations of numbers:

* ``schema`` (public): equal-width bins between the declared bounds. Used for
  what the analyst may see.
* ``quantile`` (internal): bins cut at the quantiles of a real column (ties
  merged), as SDMetrics and most fidelity tools do, so that a skewed column
  (a capital gain that is 0 for 90% of rows) is not one bin wide. Used where
  the synthetic table is compared with real rows; the cut points are real
  values, so such views and everything drawn with them are internal.

Domains and bounds come from the public schema. Where the schema leaves one
open, the view learns it from the tables it is given (`domain_sources`): such a
view is internal when a real table is among them, and public only when built
from synthetic data alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from privacy.schema import ColumnSpec, PublicSchema

__all__ = [
    "ColumnView",
    "MixedDistanceEncoder",
    "column_view",
    "model_matrix",
    "numeric_values",
    "table_views",
    "with_declared_categories",
]

DEFAULT_BINS = 20
QUANTILE_BINS = 10
MAX_EXACT_INTEGERS = 128  # schema views: one code per integer up to this many
MAX_EXACT_INTEGERS_QUANTILE = 20  # quantile views: one code per integer up to this many
EPOCH = pd.Timestamp("1970-01-01")


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def numeric_values(s: pd.Series, spec: ColumnSpec) -> np.ndarray:
    """The numeric view of a column (float64, NaN for null)."""
    if spec.kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        return ((t - EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
    if spec.values is not None:
        values = list(spec.values)
        codes = _category_codes(s, values)
        if all(_is_number(v) for v in values):
            lookup = np.array([float(v) for v in values] + [np.nan])
        else:
            lookup = np.arange(len(values) + 1, dtype=float)
            lookup[-1] = np.nan
        return lookup[np.where(codes < 0, len(values), codes)]
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _category_codes(s: pd.Series, categories: list) -> np.ndarray:
    """Index of each value in `categories` (-1 for null or undeclared)."""
    codes = pd.Categorical(s, categories=categories).codes.astype(np.int32)
    missing = codes < 0
    if not missing.any():  # every value matched: no null to tell from an undeclared value
        return codes
    unmatched = missing & s.notna().to_numpy()
    if unmatched.any():
        # the table's values are typed differently from the schema (e.g. "1" vs 1): match as text
        keys = [_text_key(v) for v in categories]
        as_text = s.map(lambda v: None if pd.isna(v) else _text_key(v))
        codes = pd.Categorical(as_text, categories=keys).codes.astype(np.int32)
    return codes


def with_declared_categories(df: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    """`df` with each text column whose values the schema declares as a pandas Categorical of those values.

    The values and nulls are the same; only the storage changes (the caller's frame is not touched). Every
    section reads a column's codes, its nulls and its samples many times: on a Categorical of the declared
    values each is a look-up of small integer codes, where on text it matched every string again. A
    Categorical given (`read_table(categories=True)`) is recoded from its own codes, without reading a string.
    A column holding a value the schema does not declare, or declared values that are not all text, is
    left as it is.
    """
    columns: dict[str, pd.Series] = {}
    for name in df.columns:
        s = df[name]
        spec = schema.columns.get(name)
        columns[name] = s
        if spec is None or spec.values is None or not all(isinstance(v, str) for v in spec.values):
            continue
        categorical = isinstance(s.dtype, pd.CategoricalDtype)
        if categorical:
            if not all(isinstance(v, str) for v in s.cat.categories):
                continue
        elif not pd.api.types.is_string_dtype(s.dtype):
            continue
        categories = list(spec.values)
        codes = pd.Categorical(s, categories=categories).codes
        unmatched = np.flatnonzero(codes < 0)
        if unmatched.size and s.iloc[unmatched].notna().any():
            continue
        if categorical and list(s.cat.categories) == categories:
            continue
        columns[name] = pd.Series(pd.Categorical.from_codes(codes, categories=categories), index=s.index, name=name)
    return pd.DataFrame(columns, index=df.index, copy=False)


def _text_key(v: object) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class ColumnView:
    """How one column is read by the metrics: kind, domain and discretisation."""

    name: str
    spec: ColumnSpec
    kind: Literal["numeric", "categorical"]
    categories: tuple | None  # categorical (or ordinal with values): the domain
    mode: Literal["category", "integer", "bins", "quantile"]
    lo: float = 0.0
    hi: float = 0.0
    n_value_codes: int = 0
    learned_domain: bool = False  # the domain or bounds came from the tables, not the schema
    edges: tuple[float, ...] = ()  # quantile mode: cut points read from a real column

    @property
    def size(self) -> int:
        """Number of codes, the null code included."""
        return self.n_value_codes + 1

    @property
    def null_code(self) -> int:
        return self.n_value_codes

    @property
    def is_datetime(self) -> bool:
        return self.spec.kind == "datetime"

    def numeric(self, s: pd.Series) -> np.ndarray:
        if self.kind != "numeric":
            raise TypeError(f"column '{self.name}' is categorical: it has no numeric view")
        return numeric_values(s, self.spec)

    def codes(self, s: pd.Series) -> np.ndarray:
        """Codes in [0, size): the last code is null (undeclared values count as null)."""
        if self.mode == "category":
            if self.learned_domain and self.spec.values is None:
                text = s.map(lambda v: None if pd.isna(v) else _text_key(v))
                codes = pd.Categorical(text, categories=list(self.categories or ())).codes.astype(np.int32)
            else:
                codes = _category_codes(s, list(self.categories or ()))
            return np.where(codes < 0, self.null_code, codes).astype(np.int32)
        x = self.numeric(s)
        null = np.isnan(x)
        if self.mode != "quantile":
            x = np.clip(np.nan_to_num(x, nan=self.lo), self.lo, self.hi)
        else:
            x = np.nan_to_num(x, nan=self.lo)
        if self.mode == "integer":
            codes = np.rint(x).astype(np.int64) - int(round(self.lo))
            codes = np.clip(codes, 0, self.n_value_codes - 1)
        elif self.mode == "quantile":
            codes = np.searchsorted(np.asarray(self.edges[1:-1]), x, side="right").astype(np.int64)
        else:
            width = (self.hi - self.lo) / self.n_value_codes if self.hi > self.lo else 1.0
            codes = np.minimum(((x - self.lo) / width).astype(np.int64), self.n_value_codes - 1)
        codes[null] = self.null_code
        return codes.astype(np.int32)

    def labels(self) -> list[str]:
        """A short label per code, for tables and plots."""
        if self.mode == "category":
            out = [str(v) for v in (self.categories or ())]
        elif self.mode == "integer":
            out = [str(int(round(self.lo)) + i) for i in range(self.n_value_codes)]
        elif self.mode == "quantile":
            out = []
            for i, e in enumerate(self.edges[:-1]):
                if i > 0 and e == np.nextafter(self.edges[i - 1], np.inf):
                    out.append(">" + _format_edge(self.edges[i - 1], self.is_datetime))  # above a point mass
                else:
                    out.append(_format_edge(e, self.is_datetime))
        else:
            width = (self.hi - self.lo) / self.n_value_codes
            out = [_format_edge(self.lo + i * width, self.is_datetime) for i in range(self.n_value_codes)]
        return [*out, "(null)"]

    def bin_edges(self) -> np.ndarray:
        """Edges on the numeric view, for histograms."""
        if self.mode == "integer":
            return np.arange(self.n_value_codes + 1, dtype=float) + self.lo - 0.5
        if self.mode == "bins":
            return np.linspace(self.lo, self.hi, self.n_value_codes + 1)
        if self.mode == "quantile":
            return np.asarray(self.edges)
        raise TypeError(f"column '{self.name}' is read by category, not by bins")


def _format_edge(x: float, is_datetime: bool) -> str:
    if is_datetime:
        return (EPOCH + pd.Timedelta(days=float(x))).strftime("%Y-%m-%d")
    return f"{x:.4g}"


def column_view(
    name: str,
    spec: ColumnSpec,
    *domain_sources: pd.Series,
    bins: int = DEFAULT_BINS,
    quantiles_from: pd.Series | None = None,
    quantile_bins: int = QUANTILE_BINS,
) -> ColumnView:
    """The view of one column; open domains or bounds are learned from `domain_sources`.

    With `quantiles_from` (a real column), numbers are binned at its quantiles
    (an internal view); otherwise at equal widths between the bounds.
    """
    if spec.kind == "categorical":
        if spec.values is not None:
            return ColumnView(name, spec, "categorical", tuple(spec.values), "category", n_value_codes=len(spec.values))
        seen: set[str] = set()
        for s in domain_sources:
            seen.update(_text_key(v) for v in pd.unique(s.dropna()))
        cats = tuple(sorted(seen))
        return ColumnView(name, spec, "categorical", cats, "category", n_value_codes=len(cats), learned_domain=True)
    if spec.values is not None:  # ordinal with a declared list of levels
        nums = [float(v) if _is_number(v) else float(i) for i, v in enumerate(spec.values)]
        return ColumnView(
            name, spec, "numeric", tuple(spec.values), "category", min(nums), max(nums), n_value_codes=len(spec.values)
        )
    learned = not spec.has_bounds
    if spec.has_bounds:
        lo, hi = spec.numeric_bounds()
    else:
        lo, hi = _observed_range([numeric_values(s, spec) for s in domain_sources])
    max_exact = MAX_EXACT_INTEGERS if quantiles_from is None else MAX_EXACT_INTEGERS_QUANTILE
    if spec.kind == "ordinal" and spec.bins is None and hi - lo + 1 <= max_exact:
        ilo, ihi = math.ceil(lo), math.floor(hi)
        return ColumnView(
            name,
            spec,
            "numeric",
            None,
            "integer",
            float(ilo),
            float(max(ihi, ilo)),
            n_value_codes=max(ihi - ilo + 1, 1),
            learned_domain=learned,
        )
    if quantiles_from is not None:
        x = numeric_values(quantiles_from, spec)
        x = x[np.isfinite(x)]
        if x.size:
            inner = _quantile_cuts(x, quantile_bins)
            edges = (min(lo, float(x.min())), *inner, max(hi, float(x.max())))
            return ColumnView(
                name,
                spec,
                "numeric",
                None,
                "quantile",
                lo,
                hi,
                n_value_codes=len(edges) - 1,
                learned_domain=True,
                edges=tuple(edges),
            )
    n_bins = spec.bins or bins
    if spec.is_integer and hi > lo:
        n_bins = int(min(n_bins, math.floor(hi) - math.ceil(lo) + 1))
    return ColumnView(name, spec, "numeric", None, "bins", lo, hi, n_value_codes=max(n_bins, 1), learned_domain=learned)


def _quantile_cuts(x: np.ndarray, n_bins: int) -> list[float]:
    """Inner cut points at the quantiles of x; a value holding several quantiles (a point mass,
    such as the zeros of a capital gain) gets a bin of its own."""
    q = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    values, counts = np.unique(q, return_counts=True)
    cuts = set(np.unique(q[1:-1]).tolist())
    for v in values[counts > 1]:
        cuts.update((float(v), float(np.nextafter(v, np.inf))))
    low = float(x.min())
    return sorted(c for c in cuts if low < c <= float(x.max()))


def _observed_range(arrays: list[np.ndarray]) -> tuple[float, float]:
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return 0.0, 1.0
    lo = float(min(a.min() for a in finite))
    hi = float(max(a.max() for a in finite))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def table_views(
    schema: PublicSchema, *tables: pd.DataFrame, bins: int = DEFAULT_BINS, quantiles_from: pd.DataFrame | None = None
) -> dict[str, ColumnView]:
    """Views of every modelled column present in all `tables` (quantile bins from `quantiles_from`)."""
    names = [n for n in schema.synthesized_columns if all(n in t.columns for t in tables)]
    return {
        n: column_view(
            n,
            schema.columns[n],
            *(t[n] for t in tables),
            bins=bins,
            quantiles_from=None if quantiles_from is None else quantiles_from[n],
        )
        for n in names
    }


class MixedDistanceEncoder:
    """Rows as vectors whose Euclidean distance is a mixed-type distance.

    A number contributes its difference scaled by the column's range (declared
    bounds, or the view's learned range), so at most 1; a categorical column is
    one-hot scaled by 1/sqrt(2), so a mismatch contributes exactly 1 to the
    squared distance; a null in a numeric column is one more indicator. Two rows
    at distance 0 are identical on every modelled column (numbers are not binned here). An ordinal
    declared with `values` is read as its value (or its rank), like a number.
    """

    def __init__(self, views: dict[str, ColumnView]) -> None:
        self.views = views

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        n = len(df)
        # each column's part first (codes, or the scaled number and its null flag), then one matrix
        # written in place: no block per column to allocate and copy again
        parts: list[tuple[ColumnView, np.ndarray, np.ndarray | None]] = []
        width = 0
        for name, view in self.views.items():
            if view.kind == "categorical":
                parts.append((view, view.codes(df[name]), None))
                width += view.size
                continue
            x = view.numeric(df[name])
            null = np.isnan(x)
            span = view.hi - view.lo if view.hi > view.lo else 1.0
            scaled = np.clip((np.nan_to_num(x, nan=view.lo) - view.lo) / span, 0.0, 1.0)
            flag = null if view.spec.nullable or null.any() else None
            parts.append((view, scaled, flag))
            width += 1 if flag is None else 2
        out = np.zeros((n, width), dtype=np.float64)
        at = 0
        for view, values, flag in parts:
            if view.kind == "categorical":
                out[np.arange(n), at + values] = 1.0 / math.sqrt(2.0)
                at += view.size
                continue
            out[:, at] = values
            at += 1
            if flag is not None:
                out[:, at] = flag
                at += 1
        return out


def model_matrix(views: dict[str, ColumnView], df: pd.DataFrame) -> tuple[np.ndarray, list[bool], list[int]]:
    """Features for scikit-learn: numbers as they are, categories as codes (NaN for null).

    Returns the matrix, a per-column "is categorical" mask and the number of
    categories of each column (0 for numbers).
    """
    cols: list[np.ndarray] = []
    is_cat: list[bool] = []
    n_cats: list[int] = []
    for name, view in views.items():
        if view.kind == "categorical":
            codes = view.codes(df[name]).astype(float)
            codes[codes == view.null_code] = np.nan
            cols.append(codes)
            is_cat.append(True)
            n_cats.append(view.n_value_codes)
        else:
            cols.append(view.numeric(df[name]))
            is_cat.append(False)
            n_cats.append(0)
    matrix = np.column_stack(cols) if cols else np.zeros((len(df), 0))
    return matrix, is_cat, n_cats
