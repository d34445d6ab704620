"""Transformers built from the public schema for the smartnoise wrappers (privacy/synthesizers/smartnoise.py).

Marginal methods get the `DomainEncoder` codes through a transformer whose
cardinalities are the declared domain sizes; GANs get declared categories
one-hot and numbers and dates scaled from their declared bounds. Every
transformer is complete before `fit`: nothing is learned from the data.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from privacy.encoding import DomainEncoder
from privacy.schema import PublicSchema
from privacy.synthesizers._smartnoise_support import _import_snsynth

# ----------------------------------------------------------------------------------
# transformers built from the schema
# ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _transformer_classes() -> dict[str, type]:
    """Column transformers complete at construction (no fit, no epsilon)."""
    _import_snsynth()
    from snsynth.transform.base import ColumnTransformer
    from snsynth.transform.definitions import ColumnType

    class DeclaredCodes(ColumnTransformer):
        """Integer codes on a declared domain of `size` values (cube-style methods)."""

        def __init__(self, size: int) -> None:
            self.size = int(size)
            super().__init__()

        @property
        def output_type(self) -> Any:
            return ColumnType.CATEGORICAL

        @property
        def cardinality(self) -> list[int]:
            return [self.size]

        def _fit(self, val: Any) -> None:
            return None

        def _clear_fit(self) -> None:
            self._fit_complete = True
            self.output_width = 1

        def _transform(self, val: Any) -> int:
            return int(val)

        def _inverse_transform(self, val: Any) -> Any:
            return None if val is None else int(val)

    class DeclaredOneHot(ColumnTransformer):
        """One-hot over a declared domain of `size` codes (GANs)."""

        def __init__(self, size: int) -> None:
            self.size = int(size)
            super().__init__()

        @property
        def output_type(self) -> Any:
            return ColumnType.CATEGORICAL

        @property
        def cardinality(self) -> list[int]:
            return [2] * self.size

        def _fit(self, val: Any) -> None:
            return None

        def _clear_fit(self) -> None:
            self._fit_complete = True
            self.output_width = self.size

        def _transform(self, val: Any) -> Any:
            if self.size == 1:  # one output: smartnoise expects a scalar, not a 1-tuple
                return 1
            bits = [0] * self.size
            bits[int(val)] = 1
            return tuple(bits)

        def _inverse_transform(self, val: Any) -> int:
            return int(np.argmax(val))

    class DeclaredScale(ColumnTransformer):
        """A number scaled from declared [lo, hi] to [-1, 1], with a null flag when nullable (GANs)."""

        def __init__(self, lo: float, hi: float, nullable: bool) -> None:
            self.lo = float(lo)
            self.hi = float(hi)
            self.nullable = bool(nullable)
            super().__init__()

        @property
        def output_type(self) -> Any:
            return ColumnType.CONTINUOUS

        @property
        def cardinality(self) -> list[Any]:
            return [None, None] if self.nullable else [None]

        def _fit(self, val: Any) -> None:
            return None

        def _clear_fit(self) -> None:
            self._fit_complete = True
            self.output_width = 2 if self.nullable else 1

        def _transform(self, val: Any) -> Any:
            isnull = val is None or (isinstance(val, float) and math.isnan(val))
            if isnull:
                scaled = 0.0
            else:
                span = self.hi - self.lo
                scaled = 2.0 * (min(max(float(val), self.lo), self.hi) - self.lo) / span - 1.0 if span > 0 else 0.0
            if self.nullable:
                return (scaled, 1.0 if isnull else -1.0)
            return scaled

        def _inverse_transform(self, val: Any) -> Any:
            if self.nullable:
                v, flag = val
                if flag > 0:
                    return None
            else:
                v = val
            v = min(max(float(v), -1.0), 1.0)
            return self.lo + (v + 1.0) / 2.0 * (self.hi - self.lo)

    return {"codes": DeclaredCodes, "onehot": DeclaredOneHot, "scale": DeclaredScale}


def _codes_transformer(encoder: DomainEncoder) -> Any:
    from snsynth.transform.table import TableTransformer

    codes_cls = _transformer_classes()["codes"]
    return TableTransformer([codes_cls(size) for size in encoder.sizes])


class _GanCodec:
    """Encodes a conformed table for the GANs and decodes their output, from the schema only."""

    def __init__(self, schema: PublicSchema) -> None:
        self.schema = schema
        self.columns = schema.synthesized_columns
        classes = _transformer_classes()
        self.encoder = DomainEncoder(schema)
        self.transformers = []
        for enc in self.encoder.encodings:
            if enc.mode == "category":
                self.transformers.append(classes["onehot"](enc.size))
            else:
                lo, hi = enc.spec.numeric_bounds()
                self.transformers.append(classes["scale"](lo, hi, enc.spec.nullable))

    def table_transformer(self) -> Any:
        from snsynth.transform.table import TableTransformer

        return TableTransformer(list(self.transformers))

    def encode(self, table: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, Any] = {}
        codes = None
        for j, enc in enumerate(self.encoder.encodings):
            s = table[enc.name]
            if enc.mode == "category":
                if codes is None:
                    codes = self.encoder.encode(table)
                out[enc.name] = codes[:, j].astype(np.int64)
            elif enc.spec.kind == "datetime":
                t = pd.to_datetime(s, errors="coerce")
                out[enc.name] = ((t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(
                    dtype=float, na_value=np.nan
                )
            else:
                out[enc.name] = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return pd.DataFrame(out)

    def placeholder(self, rows: int) -> pd.DataFrame:
        """`rows` rows built from the schema alone (code 0, lower bounds): for a library loop that takes
        its sizes from the table it is given and must not be given the real one."""
        out: dict[str, Any] = {}
        for enc, tr in zip(self.encoder.encodings, self.transformers, strict=True):
            out[enc.name] = np.zeros(rows, dtype=np.int64) if enc.mode == "category" else np.full(rows, tr.lo)
        return pd.DataFrame(out)

    def decode(self, raw: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for j, enc in enumerate(self.encoder.encodings):
            col = raw.iloc[:, j]
            if enc.mode == "category":
                values = [*list(enc.spec.values or []), None]
                idx = col.to_numpy(dtype=np.int64)
                if enc.null_code is None:
                    idx = np.minimum(idx, len(values) - 2)
                out[enc.name] = [values[i] for i in np.minimum(idx, len(values) - 1)]
            elif enc.spec.kind == "datetime":
                days = pd.to_numeric(col, errors="coerce")
                out[enc.name] = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(days), unit="D")
            else:
                out[enc.name] = pd.to_numeric(col, errors="coerce")
        return pd.DataFrame(out)


def _decode_codes(encoder: DomainEncoder, raw: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Codes from a cube-style method back to values; a missing code becomes null (or a uniform draw)."""
    codes = np.empty((len(raw), len(encoder.encodings)), dtype=np.int64)
    for j, enc in enumerate(encoder.encodings):
        col = pd.to_numeric(raw.iloc[:, j], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(col)
        if missing.any():
            fill = enc.null_code if enc.null_code is not None else rng.integers(0, enc.size, missing.sum())
            col[missing] = fill
        codes[:, j] = np.clip(col.astype(np.int64), 0, enc.size - 1)
    return encoder.decode(codes, rng)
