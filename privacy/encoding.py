"""Integer encoding of a table on the public schema's domain.

Each modelled column becomes small non-negative integer codes:

* categorical (and ordinal with `values`): the index of the declared value;
* ordinal with bounds: one code per integer when the range is small, else bins;
* continuous and datetime: `bins` equal-width bins between the declared bounds;
* a nullable column gets one extra code, the last, for null.

Everything about the domain comes from the schema; the data only supplies the
codes. Decoding draws numbers uniformly inside their bin, so the output never
carries a value learned from the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from privacy.errors import SchemaError
from privacy.schema import NUMERIC_KINDS, ColumnSpec, PublicSchema, _category_keys, _key

__all__ = ["ColumnEncoding", "DomainEncoder", "smallest_uint"]

MAX_EXACT_ORDINAL = 128


def smallest_uint(max_value: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
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

    @property
    def null_code(self) -> int | None:
        return self.size - 1 if self.spec.nullable else None


class DomainEncoder:
    """Encode and decode a table on the domain its public schema declares."""

    def __init__(self, schema: PublicSchema, *, default_bins: int = 32, columns: list[str] | None = None) -> None:
        self.schema = schema
        self.columns = list(columns or schema.synthesized_columns)
        self.encodings: list[ColumnEncoding] = [self._column(n, schema.columns[n], default_bins) for n in self.columns]

    @staticmethod
    def _column(name: str, spec: ColumnSpec, default_bins: int) -> ColumnEncoding:
        extra = 1 if spec.nullable else 0
        if spec.values is not None:
            n = len(spec.values)
            return ColumnEncoding(name, spec, n + extra, "category", n_value_codes=n)
        if spec.kind == "categorical":
            raise SchemaError(f"column '{name}' has no declared values; declare them in the public schema", field="schema")
        if not spec.has_bounds:
            raise SchemaError(f"column '{name}' has open bounds; declare min and max in the public schema", field="schema")
        lo, hi = spec.numeric_bounds()
        if spec.kind == "ordinal" and spec.bins is None:
            ilo, ihi = math.ceil(lo), math.floor(hi)
            if ihi - ilo + 1 <= MAX_EXACT_ORDINAL:
                n = ihi - ilo + 1
                return ColumnEncoding(name, spec, n + extra, "integer", float(ilo), float(ihi), n)
        bins = spec.bins or default_bins
        if spec.is_integer:
            bins = int(min(bins, math.floor(hi) - math.ceil(lo) + 1))
        return ColumnEncoding(name, spec, bins + extra, "bins", lo, hi, bins)

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
            if s.dtype == object:
                # mixed Python objects: key every value (True and 1 must stay apart)
                codes = s.map(lambda v: keys.get(_key(v), -1) if not pd.isna(v) else -1).to_numpy(dtype=np.int64)
            else:
                # one dtype (as conform_table leaves it): key each distinct value once, spread to the rows
                inverse, uniques = pd.factorize(s, use_na_sentinel=True)
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
            else:
                width = (enc.hi - enc.lo) / enc.n_value_codes if enc.hi > enc.lo else 1.0
                codes = np.minimum(((x - enc.lo) / width).astype(np.int64), enc.n_value_codes - 1)
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
        """A DataFrame from codes; numbers are drawn uniformly inside their bin."""
        out: dict[str, object] = {}
        for j, enc in enumerate(self.encodings):
            c = codes[:, j].astype(np.int64)
            isnull = c == enc.null_code if enc.null_code is not None else np.zeros(len(c), dtype=bool)
            spec = enc.spec
            if enc.mode == "category":
                values = np.array(list(spec.values or []) + [None], dtype=object)
                out[enc.name] = values[np.where(isnull, len(values) - 1, np.minimum(c, len(values) - 2))]
                continue
            if enc.mode == "integer":
                x = c.astype(float) + enc.lo
            else:
                width = (enc.hi - enc.lo) / enc.n_value_codes if enc.hi > enc.lo else 0.0
                x = enc.lo + (c + rng.random(len(c))) * width
                if spec.is_integer:
                    # an integer column: draw an integer within the bin's integer range
                    lo_i = np.ceil(enc.lo + c * width)
                    hi_i = np.maximum(np.floor(enc.lo + (c + 1) * width - 1e-9), lo_i)
                    x = lo_i + np.floor(rng.random(len(c)) * (hi_i - lo_i + 1))
                x = np.clip(x, enc.lo, enc.hi)
            x[isnull] = np.nan
            if spec.kind == "datetime":
                t = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(np.nan_to_num(x, nan=0.0)), unit="D")
                t = pd.Series(t).where(~isnull)
                out[enc.name] = t
            elif spec.kind in NUMERIC_KINDS:
                out[enc.name] = x
        return pd.DataFrame(out)
