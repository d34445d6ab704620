"""Integer encoding of a table on the public schema's domain.

Each modelled column becomes small non-negative integer codes:

* categorical (and ordinal with `values`): the index of the declared value;
* ordinal with bounds: one code per integer when the range is small, else bins;
* continuous and datetime: `bins` equal-width bins between the declared bounds,
  or, for a numeric column given explicit `edges` (placed by a paid DP
  measurement, `privacy.bin_placement`), the bins between those edges;
* a binned numeric column with declared `special_values` gets one code per
  special value, placed among the bins' codes in the order of the values (a
  special value on a bin edge sits between the bins on either side, one inside
  a bin right after that bin, so codes stay ordered like the numbers); a value
  equal to a special value takes its code, and the bins hold only the other
  values. An ordinal with one code per integer already has a code for each
  special value;
* a nullable column gets one extra code, the last, for null.

Everything about the domain comes from the schema; the data only supplies the
codes. Decoding gives a special value's code exactly that value; within a bin
it draws uniformly (nothing about the shape inside a bin is measured or
declared), an integer column's draws being the bin's integers other than its
special values. So the output never carries a value learned from the data that
the steward did not confirm in the schema.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from privacy._values import factorize
from privacy.errors import SchemaError
from privacy.schema import MAX_EXACT_ORDINAL, NUMERIC_KINDS, ColumnSpec, PublicSchema, _category_keys, _key

__all__ = ["MAX_EXACT_ORDINAL", "ColumnEncoding", "DomainEncoder", "check_edges", "smallest_uint"]


def smallest_uint(max_value: int) -> np.dtype:
    for kind in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(kind).max:
            return np.dtype(kind)
    return np.dtype(np.uint64)


@dataclass(frozen=True)
class ColumnEncoding:
    name: str
    spec: ColumnSpec
    size: int  # number of codes, null code included
    mode: str  # "category", "integer", "bins"
    lo: float = 0.0
    hi: float = 0.0
    n_value_codes: int = 0
    # "bins" mode: the equal-width bins, the special values (ascending) and what each value code stands for:
    # a bin's index (>= 0), or -(j + 1) for the j-th special value
    n_bins: int = 0
    specials: tuple[float, ...] = ()
    layout: tuple[int, ...] = ()
    # explicit bin edges (n_bins + 1, ascending, lo and hi outermost); empty: equal-width bins
    edges: tuple[float, ...] = ()

    @property
    def null_code(self) -> int | None:
        return self.size - 1 if self.spec.nullable else None

    @property
    def bin_width(self) -> float:
        return (self.hi - self.lo) / self.n_bins if self.hi > self.lo else 0.0

    def bin_codes(self) -> np.ndarray:
        """The code of each bin."""
        layout = np.asarray(self.layout, dtype=np.int64)
        out = np.empty(self.n_bins, dtype=np.int64)
        out[layout[layout >= 0]] = np.flatnonzero(layout >= 0)
        return out

    def special_codes(self) -> np.ndarray:
        """The code of each special value (in the order of `specials`)."""
        layout = np.asarray(self.layout, dtype=np.int64)
        out = np.empty(len(self.specials), dtype=np.int64)
        out[-layout[layout < 0] - 1] = np.flatnonzero(layout < 0)
        return out


def _bins_layout(
    n_bins: int, lo: float, hi: float, specials: tuple[float, ...], edges: tuple[float, ...] = ()
) -> tuple[int, ...]:
    """Bins and special values in the order of the numbers: a special value comes before the first bin
    whose lower edge is at or above it (on an edge, exactly between the bins either side; inside a bin,
    right after that bin)."""
    if edges:
        lower = np.asarray(edges[:-1], dtype=float)
        before = [int(np.searchsorted(lower, v, side="left")) for v in specials]
    else:
        width = (hi - lo) / n_bins if hi > lo else 0.0
        before = [0 if width == 0 else min(max(math.ceil((v - lo) / width - 1e-9), 0), n_bins) for v in specials]
    layout: list[int] = []
    for k in range(n_bins + 1):
        layout += [-(j + 1) for j, b in enumerate(before) if b == k]
        if k < n_bins:
            layout.append(k)
    return tuple(layout)


def check_edges(edges: Sequence[float], lo: float, hi: float, *, integer: bool = False) -> tuple[float, ...]:
    """Explicit bin edges, checked: finite, strictly ascending, the declared bounds outermost; for an
    integer column every bin must hold at least one integer."""
    e = tuple(float(v) for v in edges)
    if len(e) < 2 or e[0] != lo or e[-1] != hi:
        raise SchemaError(
            f"bin edges must start at the declared min {lo} and end at the declared max {hi}", field="schema"
        )
    if not all(math.isfinite(v) for v in e) or any(b <= a for a, b in itertools.pairwise(e)):
        raise SchemaError("bin edges must be finite and strictly ascending", field="schema")
    if integer:
        # a bin [a, b) holds the integers ceil(a) .. ceil(b) - 1; the last one [a, hi] up to floor(hi)
        last = len(e) - 2
        if any(
            (math.floor(b) if i == last else math.ceil(b) - 1) < math.ceil(a)
            for i, (a, b) in enumerate(itertools.pairwise(e))
        ):
            raise SchemaError(
                "bin edges of an integer column must leave at least one integer in every bin", field="schema"
            )
    return e


class DomainEncoder:
    """Encode and decode a table on the domain its public schema declares."""

    def __init__(
        self,
        schema: PublicSchema,
        *,
        default_bins: int = 32,
        columns: list[str] | None = None,
        edges: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """`edges`: explicit bin edges for some binned numeric columns (see `check_edges`), in place of
        the equal-width bins; they must come from the public schema or a paid DP measurement."""
        self.schema = schema
        self.columns = list(columns or schema.synthesized_columns)
        edges = dict(edges or {})
        self.encodings: list[ColumnEncoding] = [self._column(n, schema.columns[n], default_bins) for n in self.columns]
        unknown = sorted(
            set(edges) - {e.name for e in self.encodings if e.mode == "bins" and e.spec.kind in NUMERIC_KINDS}
        )
        if unknown:
            raise SchemaError(
                f"bin edges given for columns that are not binned numeric columns: {unknown}", field="schema"
            )
        self.encodings = [
            self._with_edges(e, check_edges(edges[e.name], e.lo, e.hi, integer=e.spec.is_integer))
            if e.name in edges
            else e
            for e in self.encodings
        ]

    @staticmethod
    def _with_edges(enc: ColumnEncoding, edges: tuple[float, ...]) -> ColumnEncoding:
        bins = len(edges) - 1
        n = bins + len(enc.specials)
        return replace(
            enc,
            size=n + (1 if enc.spec.nullable else 0),
            n_value_codes=n,
            n_bins=bins,
            edges=edges,
            layout=_bins_layout(bins, enc.lo, enc.hi, enc.specials, edges),
        )

    @staticmethod
    def _column(name: str, spec: ColumnSpec, default_bins: int) -> ColumnEncoding:
        extra = 1 if spec.nullable else 0
        if spec.values is not None:
            n = len(spec.values)
            return ColumnEncoding(name, spec, n + extra, "category", n_value_codes=n)
        if spec.kind == "categorical":
            raise SchemaError(
                f"column '{name}' has no declared values; declare them in the public schema", field="schema"
            )
        if not spec.has_bounds:
            raise SchemaError(
                f"column '{name}' has open bounds; declare min and max in the public schema", field="schema"
            )
        lo, hi = spec.numeric_bounds()
        if spec.kind == "ordinal" and spec.bins is None:
            ilo, ihi = math.ceil(lo), math.floor(hi)
            if ihi - ilo + 1 <= MAX_EXACT_ORDINAL:
                n = ihi - ilo + 1
                return ColumnEncoding(name, spec, n + extra, "integer", float(ilo), float(ihi), n)
        bins = spec.bins or default_bins
        if spec.is_integer:
            bins = int(min(bins, math.floor(hi) - math.ceil(lo) + 1))
        specials = spec.special_points
        n = bins + len(specials)
        return ColumnEncoding(
            name,
            spec,
            n + extra,
            "bins",
            lo,
            hi,
            n,
            n_bins=bins,
            specials=specials,
            layout=_bins_layout(bins, lo, hi, specials),
        )

    @property
    def sizes(self) -> list[int]:
        return [e.size for e in self.encodings]

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Codes of a conformed table, shape (rows, columns), smallest unsigned dtype."""
        dtype = smallest_uint(max(self.sizes) - 1)
        out = np.empty((len(df), len(self.encodings)), dtype=dtype)
        for j, enc in enumerate(self.encodings):
            out[:, j] = self._encode_column(df[enc.name], enc)
        return out

    def _encode_column(self, s: pd.Series, enc: ColumnEncoding) -> np.ndarray:
        spec = enc.spec
        if enc.mode == "category":
            keys = {k: i for i, k in enumerate(_category_keys(spec.values or []))}
            if isinstance(s.dtype, pd.CategoricalDtype):
                # key each category once, spread to the rows by the column's own codes
                categories = s.cat.categories
                lookup = np.array([keys.get(_key(v), -1) for v in categories] + [-1], dtype=np.int64)
                own = s.cat.codes.to_numpy()
                codes = lookup[np.where(own < 0, len(categories), own)]
            elif s.dtype == object:
                # mixed Python objects: key every value (True and 1 must stay apart)
                codes = s.map(lambda v: keys.get(_key(v), -1) if not pd.isna(v) else -1).to_numpy(dtype=np.int64)
            else:
                # one dtype (as conform_table leaves it): key each distinct value once, spread to the rows
                inverse, uniques = factorize(s)
                lookup = np.array([keys.get(_key(v), -1) for v in uniques] + [-1], dtype=np.int64)
                codes = lookup[inverse]
        else:
            if spec.kind == "datetime":
                t = pd.to_datetime(s, errors="coerce")
                x = (t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
                x = x.to_numpy(dtype=float, na_value=np.nan)
            else:
                x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            isnull = np.isnan(x)
            x = np.clip(np.nan_to_num(x, nan=enc.lo), enc.lo, enc.hi)
            if enc.mode == "integer":
                codes = np.rint(x).astype(np.int64) - int(enc.lo)
            elif enc.edges:
                bins = np.searchsorted(np.asarray(enc.edges[1:-1], dtype=float), x, side="right")
                codes = enc.bin_codes()[bins]
                for v, code in zip(enc.specials, enc.special_codes(), strict=True):
                    codes[x == v] = code
            else:
                width = enc.bin_width or 1.0
                bins = np.minimum(((x - enc.lo) / width).astype(np.int64), enc.n_bins - 1)
                codes = enc.bin_codes()[bins]
                for v, code in zip(enc.specials, enc.special_codes(), strict=True):
                    codes[x == v] = code
            codes[isnull] = -1
        missing = codes < 0
        if missing.any():
            if enc.null_code is None:
                raise SchemaError(
                    f"column '{enc.name}' has nulls or undeclared values but is not nullable; conform the table first",
                    field="schema",
                )
            codes[missing] = enc.null_code
        return codes

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """A DataFrame from codes: special values exactly, other numbers drawn uniformly inside their bin
        (integers of an integer column, never one of its special values)."""
        out: dict[str, object] = {}
        for j, enc in enumerate(self.encodings):
            spec = enc.spec
            if enc.mode == "category":
                declared = list(spec.values or [])
                categories = _as_categories(declared)
                if categories is not None:  # the codes as they are, no Python object per cell
                    index = _category_index(codes[:, j], len(declared), enc.null_code)
                    out[enc.name] = pd.Categorical.from_codes(index, dtype=pd.CategoricalDtype(categories))
                    continue
            c = codes[:, j].astype(np.int64)
            isnull = c == enc.null_code if enc.null_code is not None else np.zeros(len(c), dtype=bool)
            if enc.mode == "category":
                values = np.array([*declared, None], dtype=object)
                out[enc.name] = values[np.where(isnull, len(values) - 1, np.minimum(c, len(values) - 2))]
                continue
            if enc.mode == "integer":
                x = c.astype(float) + enc.lo
            else:
                x = _decode_bins(enc, np.where(isnull, 0, c), rng)
            x[isnull] = np.nan
            if spec.kind == "datetime":
                days = np.nan_to_num(x, nan=0.0)
                if _keeps_time_of_day(spec):  # to the second inside the day drawn, like the real values
                    t = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(days * 86_400.0), unit="s")
                else:
                    t = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(days), unit="D")
                t = pd.Series(t).where(~isnull)
                out[enc.name] = t
            elif spec.kind in NUMERIC_KINDS:
                out[enc.name] = x
        return pd.DataFrame(out, copy=False)


def _category_index(column: np.ndarray, n: int, null_code: int | None) -> np.ndarray:
    """`np.where(column == null_code, -1, np.minimum(column, n - 1))`: each row's category (-1 for a
    null) by one lookup per row, in the integer type pandas keeps the codes of n categories in."""
    size = max(int(column.max()) + 1 if column.size else 0, n, 0 if null_code is None else null_code + 1)
    dtype = np.int8 if n < 127 else np.int16 if n < 32767 else np.int32 if n < 2**31 - 1 else np.int64
    lookup = np.minimum(np.arange(size), n - 1).astype(dtype)
    if null_code is not None:
        lookup[null_code] = -1
    return lookup[column]


def _as_categories(values: Sequence[object]) -> pd.Index | None:
    """The declared values as the categories of a pandas categorical, each with the key (`_key`) of its
    declared value; None when pandas would merge or change some of them (True and 1, a null)."""
    if not values or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    categories = pd.Index(values)
    if not categories.is_unique or len(categories) != len(values):
        return None
    if any(_key(a) != _key(b) for a, b in zip(categories, values, strict=True)):
        return None
    return categories


def _keeps_time_of_day(spec: ColumnSpec) -> bool:
    """A datetime column whose declared bounds carry a time of day holds times, not just dates."""
    return any(isinstance(b, dt.datetime) and b.time() != dt.time(0) for b in (spec.min, spec.max))


def _decode_bins(enc: ColumnEncoding, c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Values of a binned column's (non-null) codes.

    What a value's draw needs from its code (lower end, span, special value) is worked out once per
    code and spread to the rows: the same arithmetic on the same numbers, so the same values."""
    k = np.minimum(c, enc.n_value_codes - 1)
    layout = np.asarray(enc.layout, dtype=np.int64)
    special = layout < 0
    b = np.where(special, 0, layout)
    width = enc.bin_width
    u = rng.random(len(c))
    if enc.edges:
        edges = np.asarray(enc.edges, dtype=float)
        lower, upper = edges[b], edges[b + 1]
    else:
        lower, upper = enc.lo + b * width, enc.lo + (b + 1) * width
    if enc.spec.is_integer:
        # the bin's integers, less the special values among them (they have codes of their own)
        lo_i = np.ceil(lower)
        hi_i = np.maximum(np.floor(upper - 1e-9), lo_i)
        if b.size and enc.n_bins:
            hi_i[b == enc.n_bins - 1] = np.maximum(np.floor(enc.hi), lo_i[b == enc.n_bins - 1])
        inside = [(lo_i <= v) & (v <= hi_i) for v in enc.specials]
        left = hi_i - lo_i + 1 - sum(inside, np.zeros(len(layout)))
        # a bin holding nothing but special values: draw among all its integers
        exclude = left > 0
        x = lo_i[k] + np.floor(u * np.where(exclude, left, hi_i - lo_i + 1)[k])
        for v, within in zip(enc.specials, inside, strict=True):  # ascending: skip past each excluded value
            x += (exclude & within)[k] & (x >= v)
    elif enc.edges:
        x = lower[k] + u * (upper - lower)[k]
    else:
        x = enc.lo + (b.astype(float)[k] + u) * width
    x = np.clip(x, enc.lo, enc.hi)
    if enc.specials:
        rows = special[k]
        x[rows] = np.asarray(enc.specials)[-layout[k[rows]] - 1]
    return x
