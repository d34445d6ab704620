"""The public schema: what the steward declares public about a table.

Every bound and category domain in a confirmed `PublicSchema` is treated as
public knowledge: synthesizers build their encodings from it, never from the
data. A proposal made from the data (`propose_schema`) marks every value it read
as `learned`; the steward edits and confirms it, and the privacy statement lists
whatever they kept.

The schema is a small YAML/JSON document::

    columns:
      age:       {kind: ordinal, min: 17, max: 90}
      workclass: {kind: categorical, values: [Private, ...], nullable: true}
      fnlwgt:    {kind: continuous, min: 0, max: 1500000, integer: true}
      gain:      {kind: continuous, min: 0, max: 100000, integer: true, special_values: [0]}
      dob:       {kind: datetime, min: 1920-01-01, max: 2005-12-31}
      id:        {kind: identifier}
    quasi_identifiers: [age, sex, race]
    sensitive: [income]
    target: income
    constraints:                    # between columns: see privacy/constraints/
      - c_jail_in <= c_jail_out

`special_values` are point masses of a numeric column (a 0 most rows hold, a
-1 meaning "not applicable", a top code): public values, each of which every
marginal method gives a code of its own, so that it comes back exactly instead
of being spread over an equal-width bin (privacy/encoding.py). They lie within
the declared bounds, are distinct, integers in an integer column, and at most
`MAX_SPECIAL_VALUES`. A proposal suggests the values that hold a large share
of a binned column's rows, marked `learned` like every fact read from the data.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from privacy.constraints import Constraint, check_constraints
from privacy.errors import SchemaError

__all__ = [
    "ColumnKind",
    "ColumnSpec",
    "MAX_EXACT_ORDINAL",
    "MAX_SPECIAL_VALUES",
    "Hierarchy",
    "PublicSchema",
    "SchemaIssue",
    "ConformReport",
    "propose_schema",
    "validate_table",
    "conform_table",
    "load_schema",
    "read_table",
]

ColumnKind = Literal["categorical", "ordinal", "continuous", "datetime", "identifier", "text"]
Scalar = str | int | float | bool

NUMERIC_KINDS = ("ordinal", "continuous")
DROPPED_KINDS = ("identifier", "text")

#: An ordinal with at most this many integers in its bounds gets one code per integer; wider ones are binned.
MAX_EXACT_ORDINAL = 128
#: Most point masses a column may declare (each is a code of its own in every marginal).
MAX_SPECIAL_VALUES = 8
#: Share of a column's rows one value must hold for a proposal to suggest it as a special value.
SPECIAL_VALUE_SHARE = 0.10


class Hierarchy(BaseModel):
    """How a quasi-identifier may be generalised before rare rows are suppressed.

    numeric: `band` (width of equal bands, e.g. 5 for age bands) or `edges`;
    datetime: `granularity` ("month" or "year"); categorical: `groups`
    (group name -> member values).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    band: float | None = Field(default=None, gt=0)
    edges: list[float] | None = None
    granularity: Literal["month", "year"] | None = None
    groups: dict[str, list[Scalar]] | None = None


class ColumnSpec(BaseModel):
    """One column of the public schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ColumnKind
    values: list[Scalar] | None = None
    min: float | int | dt.date | dt.datetime | None = None
    max: float | int | dt.date | dt.datetime | None = None
    nullable: bool = False
    integer: bool = False
    bins: int | None = Field(default=None, ge=2, le=10_000)
    identifier: Literal["drop", "fake"] = "drop"
    learned: list[str] = Field(default_factory=list)
    description: str | None = None
    # spellings of a missing value in this column's file (e.g. "N" in census files), besides the table's own
    null_tokens: list[str] | None = None
    # disclosure control (post-processing on the synthetic output only)
    top_code: float | None = None
    bottom_code: float | None = None
    round_to: float | None = Field(default=None, gt=0)
    hierarchy: Hierarchy | None = None
    # point masses of a numeric column: each gets its own code and decodes exactly (privacy/encoding.py)
    special_values: list[float | int] | None = None

    @field_validator("values")
    @classmethod
    def _distinct_values(cls, v: list[Scalar] | None) -> list[Scalar] | None:
        if v is None:
            return v
        if len(v) == 0:
            raise ValueError("values must list at least one category")
        keys = [str(x) for x in v]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"values lists duplicates: {dup}")
        return v

    @field_validator("learned")
    @classmethod
    def _learned_names_fields(cls, v: list[str]) -> list[str]:
        """`learned` names the fields whose values were read from the data (the privacy statement shows them)."""
        fields = set(cls.model_fields) - {"learned"}
        unknown = [f for f in v if f not in fields]
        if unknown:
            raise ValueError(f"learned names {unknown}, which are not column fields; use some of {sorted(fields)}")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.kind == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError("a categorical column takes `values`, not min/max")
        if self.kind in ("continuous", "datetime") and self.values is not None:
            raise ValueError(f"a {self.kind} column takes min/max, not `values`")
        if self.kind == "datetime":
            for name in ("min", "max"):
                v = getattr(self, name)
                if v is not None and not isinstance(v, dt.date):
                    raise ValueError(f"datetime {name} must be a date such as 2001-12-31, got {v!r}")
        elif self.kind in NUMERIC_KINDS:
            for name in ("min", "max"):
                v = getattr(self, name)
                if v is not None and (isinstance(v, dt.date) or not math.isfinite(float(v))):
                    raise ValueError(f"{name} must be a finite number, got {v!r}")
        if self.min is not None and self.max is not None and _as_number(self.min) > _as_number(self.max):
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.kind == "ordinal" and self.values is None and (self.min is None or self.max is None):
            # open ordinal bounds are allowed (learned with epsilon); nothing to check here
            pass
        if self.special_values is not None:
            self._check_special_values(self.special_values)
        return self

    def _check_special_values(self, special: list[float | int]) -> None:
        if self.kind not in NUMERIC_KINDS or self.values is not None:
            raise ValueError(f"special_values are for numeric columns (ordinal or continuous with min/max); "
                             f"this {self.kind} column declares {'values' if self.values is not None else 'dates'}")
        if not special:
            raise ValueError("special_values lists no value; leave it out instead")
        if len(special) > MAX_SPECIAL_VALUES:
            raise ValueError(f"special_values lists {len(special)} values, more than {MAX_SPECIAL_VALUES}; "
                             "keep the few values most rows hold")
        for v in special:
            if isinstance(v, bool) or not math.isfinite(float(v)):
                raise ValueError(f"special_values must be finite numbers, got {v!r}")
        if len({float(v) for v in special}) != len(special):
            raise ValueError(f"special_values lists duplicates: {special}")
        if not self.has_bounds:
            raise ValueError("special_values need declared bounds: declare min and max")
        lo, hi = self.numeric_bounds()
        outside = [v for v in special if not lo <= float(v) <= hi]
        if outside:
            raise ValueError(f"special_values {outside} lie outside [{self.min}, {self.max}]")
        if self.is_integer:
            fractional = [v for v in special if not float(v).is_integer()]
            if fractional:
                raise ValueError(f"special_values {fractional} are not integers, and the column is")

    # ----- derived, public facts -------------------------------------------------
    @property
    def is_dropped(self) -> bool:
        return self.kind in DROPPED_KINDS

    @property
    def has_bounds(self) -> bool:
        return self.min is not None and self.max is not None

    @property
    def is_open(self) -> bool:
        """True when a bound or a domain is missing and would have to be learned."""
        if self.kind == "categorical":
            return self.values is None
        if self.kind == "ordinal" and self.values is not None:
            return False
        if self.kind in ("ordinal", "continuous", "datetime"):
            return not self.has_bounds
        return False

    @property
    def is_integer(self) -> bool:
        return self.integer or (self.kind == "ordinal" and self.values is None)

    def numeric_bounds(self) -> tuple[float, float]:
        """Bounds as floats (datetimes as days since 1970-01-01)."""
        if not self.has_bounds:
            raise SchemaError("column has open bounds; declare min and max", field="schema")
        return _as_number(self.min), _as_number(self.max)

    @property
    def special_points(self) -> tuple[float, ...]:
        """The declared special values, as sorted floats (empty when none)."""
        return tuple(sorted(float(v) for v in self.special_values or ()))

    def domain_size(self, default_bins: int = 32) -> int:
        """Number of distinct codes a marginal method needs for this column (nulls included).

        Never below what `DomainEncoder` makes: a binned column counts one code per special value on top of its
        bins (an ordinal given one code per integer already has a code for each of them).
        """
        if self.kind == "categorical" or (self.kind == "ordinal" and self.values is not None):
            n = len(self.values or [])
        elif self.kind == "ordinal" and self.has_bounds and self.bins is None:
            lo, hi = self.numeric_bounds()
            n = int(math.floor(hi) - math.ceil(lo)) + 1  # binned beyond MAX_EXACT_ORDINAL, into fewer codes
        else:
            n = (self.bins or default_bins) + len(self.special_points)
        return n + (1 if self.nullable else 0)


def _as_number(v: Any) -> float:
    if isinstance(v, dt.datetime):
        return (v - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0
    if isinstance(v, dt.date):
        return float((v - dt.date(1970, 1, 1)).days)
    return float(v)


class PublicSchema(BaseModel):
    """The public description of a table, confirmed by the steward."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, ColumnSpec]
    quasi_identifiers: list[str] = Field(default_factory=list)
    sensitive: list[str] = Field(default_factory=list)
    target: str | None = None
    # spellings of a missing value anywhere in the file, besides the usual ones (NA_VALUES)
    null_tokens: list[str] = Field(default_factory=list)
    # public rules between columns (inequalities, fixed combinations, formulas), enforced on every output
    constraints: list[Constraint] = Field(default_factory=list)
    version: int = 1

    def null_tokens_of(self, name: str) -> set[str]:
        """What reads as missing in column `name`: the table's tokens and the column's own."""
        spec = self.columns.get(name)
        return {*self.null_tokens, *((spec.null_tokens or []) if spec is not None else [])}

    @model_validator(mode="after")
    def _references(self) -> PublicSchema:
        if not self.columns:
            raise ValueError("the schema declares no columns")
        for group in ("quasi_identifiers", "sensitive"):
            for name in getattr(self, group):
                if name not in self.columns:
                    raise ValueError(f"{group} names '{name}', which is not a declared column")
                if self.columns[name].is_dropped:
                    raise ValueError(f"{group} names '{name}', which is an {self.columns[name].kind} column")
        if self.target is not None:
            if self.target not in self.columns:
                raise ValueError(f"target '{self.target}' is not a declared column")
            if self.columns[self.target].is_dropped:
                raise ValueError(f"target '{self.target}' is an {self.columns[self.target].kind} column")
        if not any(not c.is_dropped for c in self.columns.values()):
            raise ValueError("every column is an identifier or text: nothing to synthesize")
        check_constraints(self.constraints, self.columns)
        return self

    # ----- construction -----------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublicSchema:
        if not isinstance(data, Mapping):
            raise SchemaError("the schema must be a mapping with a `columns` key", field="schema")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise SchemaError(_pydantic_message(exc), field="schema") from exc

    @classmethod
    def from_text(cls, text: str) -> PublicSchema:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"the schema is not valid YAML or JSON: {exc}", field="schema") from exc
        if data is None:
            raise SchemaError("the schema document is empty", field="schema")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_defaults=True)
        data.setdefault("columns", {})
        for name, spec in self.columns.items():
            data["columns"].setdefault(name, {"kind": spec.kind})
            data["columns"][name]["kind"] = spec.kind
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    # ----- views ------------------------------------------------------------------
    @property
    def synthesized_columns(self) -> list[str]:
        """Columns a synthesizer models (identifiers and free text are not)."""
        return [n for n, c in self.columns.items() if not c.is_dropped]

    @property
    def output_columns(self) -> list[str]:
        """Columns of a released table: modelled ones plus regenerated identifiers."""
        return [n for n, c in self.columns.items() if not c.is_dropped or (c.kind == "identifier" and c.identifier == "fake")]

    @property
    def open_columns(self) -> list[str]:
        return [n for n in self.synthesized_columns if self.columns[n].is_open]

    @property
    def learned_columns(self) -> dict[str, list[str]]:
        return {n: list(c.learned) for n, c in self.columns.items() if c.learned}

    def subset(self, names: list[str]) -> PublicSchema:
        cols = {n: self.columns[n] for n in names}
        return PublicSchema(
            columns=cols,
            quasi_identifiers=[q for q in self.quasi_identifiers if q in cols],
            sensitive=[s for s in self.sensitive if s in cols],
            target=self.target if self.target in cols else None,
            constraints=[c for c in self.constraints if all(n in cols for n in c.columns)],
        )

    def with_bounds(self, bounds: Mapping[str, tuple[Any, Any]]) -> PublicSchema:
        """A copy with open bounds filled in (by a DP mechanism that paid for them)."""
        cols = dict(self.columns)
        for name, (lo, hi) in bounds.items():
            cols[name] = cols[name].model_copy(update={"min": lo, "max": hi})
        return self.model_copy(update={"columns": cols})

    def with_special_values(self, special: Mapping[str, list[float | int] | None]) -> PublicSchema:
        """A copy with these columns' special values declared (None removes them), validated."""
        cols = dict(self.columns)
        for name, values in special.items():
            if name not in cols:
                raise SchemaError(f"special_values names '{name}', which is not a declared column", field="schema")
            data = cols[name].model_dump(exclude_defaults=True) | {"kind": cols[name].kind, "special_values": values}
            try:
                cols[name] = ColumnSpec.model_validate(data)
            except ValidationError as exc:
                raise SchemaError(_pydantic_message(exc), field="schema") from exc
        return self.model_copy(update={"columns": cols})

    def domain_cells(self, columns: list[str] | None = None, default_bins: int = 32) -> int:
        cells = 1
        for n in columns or self.synthesized_columns:
            cells *= self.columns[n].domain_size(default_bins)
        return cells


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"] if not (isinstance(x, str) and x in ("function-after",)))
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "invalid public schema: " + "; ".join(parts)


def load_schema(path_or_text: str | Path | Mapping[str, Any] | PublicSchema) -> PublicSchema:
    """Read a schema from a file path, YAML/JSON text, a mapping or a schema."""
    if isinstance(path_or_text, PublicSchema):
        return path_or_text
    if isinstance(path_or_text, Mapping):
        return PublicSchema.from_dict(path_or_text)
    p = Path(path_or_text) if not (isinstance(path_or_text, str) and "\n" in path_or_text) else None
    if p is not None and p.exists():
        return PublicSchema.from_text(p.read_text(encoding="utf-8"))
    if isinstance(path_or_text, Path):
        raise SchemaError(f"schema file not found: {path_or_text}", field="schema")
    return PublicSchema.from_text(str(path_or_text))


# ----------------------------------------------------------------------------------
# reading tables
# ----------------------------------------------------------------------------------

NA_VALUES = ["", "?", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


def read_table(path: str | Path, *, max_rows: int | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame with a clear error on bad input.

    CSV is parsed with pyarrow; "?" and the usual NA spellings are nulls. Refused
    with a SchemaError that says what to change: an empty file, text that is not
    UTF-8, duplicate or missing column names, list/struct/binary columns
    (Parquet), and infinite values in a numeric column.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    parquet = suffix in (".parquet", ".pq")
    if p.exists() and p.stat().st_size == 0:
        raise SchemaError(f"{p.name} has no data rows (the file is empty); upload a table with a header and rows",
                          field="file")
    try:
        if parquet:
            df = _read_parquet(p)
        else:
            _check_utf8(p)
            df = pd.read_csv(p, na_values=NA_VALUES, keep_default_na=True, engine="pyarrow")
    except FileNotFoundError as exc:
        raise SchemaError(f"file not found: {p}", field="file") from exc
    except SchemaError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for malformed input
        raise SchemaError(
            f"could not read {p.name} as {'Parquet' if parquet else 'CSV'}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
            "Upload a UTF-8 CSV with a header row, or a Parquet file.",
            field="file",
        ) from exc
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise SchemaError(
            f"{p.name} has no data rows (shape {df.shape[0]} x {df.shape[1]}); upload a table with a header and rows",
            field="file",
        )
    _check_column_names(p.name, [str(c) for c in df.columns])
    _check_finite(p.name, df)
    if max_rows is not None:
        df = df.head(max_rows)
    return df


def _check_utf8(p: Path, chunk_size: int = 1 << 20) -> None:
    """Refuse a text file that is not UTF-8, naming the line and byte of the first bad byte."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes of the file read before this chunk
    lines = 0  # newlines in them
    with p.open("rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                pos = max(offset - pending + exc.start, 0)
                line = lines + chunk[: max(pos - offset, 0)].count(b"\n") + 1
                raise SchemaError(
                    f"could not read {p.name} as CSV: it is not UTF-8 text (byte {pos}, on line {line}, "
                    "is not valid UTF-8). "
                    "Save the file as UTF-8 (in a spreadsheet: 'CSV UTF-8') and upload it again.",
                    field="file") from exc
            if not chunk:
                return
            offset += len(chunk)
            lines += chunk.count(b"\n")


def _read_parquet(p: Path) -> pd.DataFrame:
    """Read Parquet, refusing columns that are not one plain value per cell."""
    _check_parquet_columns(p)
    return pd.read_parquet(p)


def _check_parquet_columns(p: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pq.read_schema(p)
    _check_column_names(p.name, list(arrow.names))
    nested = [f"{f.name} ({f.type})" for f in arrow if pa.types.is_nested(f.type)]
    if nested:
        raise SchemaError(
            f"{p.name} has list, struct or map columns: {', '.join(nested)}. A column must hold one plain "
            "value (number, text, date) per cell: flatten them into separate columns and upload again.",
            field="file")
    binary = [f.name for f in arrow if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
              or pa.types.is_fixed_size_binary(f.type)]
    if binary:
        raise SchemaError(
            f"{p.name} has columns of raw bytes: {', '.join(binary)}. Store them as text (UTF-8 strings) "
            "or drop them, and upload again.", field="file")


def _check_column_names(filename: str, names: list[str]) -> None:
    unnamed = [c for c in names if c.startswith("Unnamed:") or c.strip() == ""]
    if unnamed:
        raise SchemaError(f"{filename} has columns without a header name: {unnamed}", field="file")
    seen: set[str] = set()
    duplicates: list[str] = []
    for name in names:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    if duplicates:
        raise SchemaError(
            f"{filename} has duplicate column names: {', '.join(repr(d) for d in duplicates)}. "
            "Give every column a distinct name in the header and upload again.", field="file")


def _check_finite(filename: str, df: pd.DataFrame, first_row: int = 0) -> None:
    """Refuse infinite values: no bound, mean or synthesizer can use them (`first_row`: rows before `df`)."""
    bad: list[str] = []
    for name in df.columns:
        col = df[name]
        if pd.api.types.is_float_dtype(col.dtype):
            inf = np.isinf(col.to_numpy(dtype=float, na_value=np.nan))
            if inf.any():
                bad.append(f"{name} (first at data row {first_row + int(np.argmax(inf)) + 1})")
    if bad:
        raise SchemaError(
            f"{filename} has infinite values in numeric columns: {', '.join(bad)}. Replace them with "
            "a finite number or leave the cell empty (a null), and upload again.", field="file")


# ----------------------------------------------------------------------------------
# proposal
# ----------------------------------------------------------------------------------

_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|ssn|key|number|no)$|^id[_\s-]|identifier", re.IGNORECASE)
_TEXT_NAME = re.compile(r"comment|note|description|remark|free.?text|narrative", re.IGNORECASE)


def _round_out(lo: float, hi: float) -> tuple[float, float]:
    """Round bounds outward to a 'nice' step so the exact extremes are not published."""
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 1.0
    step = 10 ** math.floor(math.log10(span)) / 2 if span > 0 else 1.0
    step = max(step, 1.0) if float(lo).is_integer() and float(hi).is_integer() else step
    new_lo = math.floor(lo / step) * step
    new_hi = math.ceil(hi / step) * step
    if new_lo == lo and lo != 0:
        new_lo -= step
    if new_hi == hi:
        new_hi += step
    if lo >= 0 and new_lo < 0:
        new_lo = 0.0
    return new_lo, new_hi


def _clean_number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(round(x, 10))


#: Order of the fields in a proposal's `learned` list (the privacy statement lists them in this order).
_LEARNED_ORDER = ("kind", "values", "min", "max", "integer", "nullable", "special_values", "identifier", "null_tokens")

# a short spelling of "missing" that a numeric column may use instead of an empty cell (census files write N)
_NULL_TOKEN = re.compile(r"^(?:[A-Za-z]|[-.*/]+|\(?[Xx]\)?)$")


def _null_token(nonnull: pd.Series) -> str | None:
    """The one short token in an otherwise numeric text column (`N`, `-`, `.`, `*`), or None."""
    if nonnull.empty or pd.api.types.is_numeric_dtype(nonnull):
        return None
    text = nonnull.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    others = text[numbers.isna()].unique()
    if len(others) != 1 or numbers.notna().mean() < 0.5 or not _NULL_TOKEN.match(str(others[0])):
        return None
    return str(others[0])


def apply_null_tokens(df: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    """`df` with the schema's null tokens read as missing (numbers written as text then read as numbers)."""
    out = None
    for name in schema.columns:
        tokens = schema.null_tokens_of(name)
        if not tokens or name not in df.columns:
            continue
        s = df[name]
        hit = s.notna() & s.astype(str).str.strip().isin(tokens)
        if not hit.any():
            continue
        out = df.copy() if out is None else out
        rest = s.where(~hit)
        numbers = pd.to_numeric(rest, errors="coerce")
        if int(numbers.notna().sum()) == int(rest.notna().sum()):  # every other value is a number
            rest = numbers
        out[name] = rest
    return df if out is None else out


def _point_masses(nonnull: pd.Series) -> list[float | int]:
    """Values holding at least `SPECIAL_VALUE_SHARE` of a numeric column's rows, ascending (at most
    `MAX_SPECIAL_VALUES`, the most frequent): a binned column would spread each of them over its bin."""
    shares = nonnull.value_counts(normalize=True, sort=True)
    kept = shares[shares >= SPECIAL_VALUE_SHARE].head(MAX_SPECIAL_VALUES)
    return sorted(_clean_number(float(v)) for v in kept.index)


def _proposed(learned: tuple[str, ...], **fields: Any) -> ColumnSpec:
    """A proposed column whose `learned` names every field in `learned` (each read from the data)."""
    return ColumnSpec(**fields, learned=[f for f in _LEARNED_ORDER if f in learned])


def propose_schema(
    df: pd.DataFrame,
    *,
    max_categories: int = 100,
    quasi_identifiers: list[str] | None = None,
    sensitive: list[str] | None = None,
    target: str | None = None,
) -> PublicSchema:
    """Propose a public schema from the data, for the steward to edit and confirm.

    Every fact read from the data is listed in the column's `learned` field, so
    that the privacy statement names whatever the steward keeps: the kind (chosen
    from the values: few distinct integers, their range, uniqueness, string
    lengths, dates), category domains, bounds, `integer`, nullability, special
    values (a value holding `SPECIAL_VALUE_SHARE` or more of a binned numeric
    column's rows), and how an identifier is replaced. Numeric bounds are
    rounded outward; identifiers (unique values, id-like names) and free text
    (long, mostly unique strings) are detected. No text derived from the data (counts of values, examples)
    is written into the schema.
    """
    cols: dict[str, ColumnSpec] = {}
    n = len(df)
    tokens: dict[str, str] = {}
    for name in df.columns:
        token = _null_token(df[name].dropna())
        if token is not None:
            tokens[str(name)] = token
    if tokens:
        df = apply_null_tokens(df, PublicSchema(columns={
            name: ColumnSpec(kind="continuous", null_tokens=[tok]) for name, tok in tokens.items()}))
    for name in df.columns:
        s = df[name]
        nullable = bool(s.isna().any())
        nonnull = s.dropna()
        nunique = int(nonnull.nunique())
        sname = str(name)
        if nonnull.empty:
            cols[sname] = _proposed(("kind", "values", "nullable"), kind="categorical", values=["(empty)"],
                                    nullable=True)
            continue
        if pd.api.types.is_bool_dtype(s):
            # [False, True] is the whole domain of the type; that the column has the type was read from the data
            cols[sname] = _proposed(("kind", "nullable"), kind="categorical", values=[False, True], nullable=nullable)
            continue
        if pd.api.types.is_datetime64_any_dtype(s) or (s.dtype == object and _looks_like_dates(nonnull)):
            values = pd.to_datetime(nonnull, errors="coerce")
            lo, hi = values.min(), values.max()
            cols[sname] = _proposed(("kind", "min", "max", "nullable"), kind="datetime",
                                    min=dt.date(lo.year, 1, 1), max=dt.date(hi.year, 12, 31), nullable=nullable)
            continue
        if pd.api.types.is_numeric_dtype(s):
            is_int = bool(np.all(np.mod(nonnull.to_numpy(dtype=float), 1) == 0))
            if is_int and nunique == n and n > 20 and _ID_NAME.search(sname):
                cols[sname] = _proposed(("kind",), kind="identifier", identifier="fake")
                continue
            lo, hi = float(nonnull.min()), float(nonnull.max())
            if is_int and nunique <= 12 and (hi - lo) < 20:
                cols[sname] = _proposed(("kind", "values", "nullable"), kind="categorical",
                                        values=sorted(int(v) for v in nonnull.unique()), nullable=nullable)
                continue
            rlo, rhi = _round_out(lo, hi)
            kind: ColumnKind = "ordinal" if is_int and (rhi - rlo) <= 200 else "continuous"
            # point masses only where the column is binned (an ordinal with a code per integer keeps them)
            binned = kind == "continuous" or rhi - rlo + 1 > MAX_EXACT_ORDINAL
            special = _point_masses(nonnull) if binned else []
            learned = ("kind", "min", "max", "integer", "nullable", *(("special_values",) if special else ()))
            cols[sname] = _proposed(learned, kind=kind, min=_clean_number(rlo), max=_clean_number(rhi),
                                    integer=is_int, nullable=nullable, special_values=special or None)
            continue
        # strings
        as_str = nonnull.astype(str)
        mean_len = float(as_str.str.len().mean())
        if nunique == len(nonnull) and len(nonnull) > 20 and (mean_len < 40 or _ID_NAME.search(sname)):
            # whether ids are regenerated or dropped depends on the column having nulls: learned as well
            cols[sname] = _proposed(("kind", "identifier"), kind="identifier",
                                    identifier="fake" if not nullable else "drop")
            continue
        if _ID_NAME.search(sname) and nunique > 0.3 * len(nonnull) and len(nonnull) > 20:
            cols[sname] = _proposed(("kind",), kind="identifier")
            continue
        if (
            mean_len > 40
            or _TEXT_NAME.search(sname)
            or (nunique > max_categories and as_str.str.contains(" ").mean() > 0.5)
        ):
            cols[sname] = _proposed(("kind", "nullable"), kind="text", nullable=nullable)
            continue
        cats = sorted(as_str.unique().tolist())
        if len(cats) > max_categories:
            # keep the column, but the steward must declare a domain (or coarsen) before any release; the
            # description says so without repeating anything read from the data (such as how many values)
            cols[sname] = _proposed(("kind", "nullable"), kind="categorical", values=None, nullable=nullable,
                                    description=OPEN_DOMAIN_DESCRIPTION)
            continue
        cols[sname] = _proposed(("kind", "values", "nullable"), kind="categorical", values=cats, nullable=nullable)
    for name, token in tokens.items():  # the spelling of "missing" was read from the data too
        spec = cols[name]
        cols[name] = spec.model_copy(update={
            "null_tokens": [token], "learned": [f for f in _LEARNED_ORDER if f in {*spec.learned, "null_tokens"}]})
    return PublicSchema(
        columns=cols,
        quasi_identifiers=[q for q in (quasi_identifiers or []) if q in cols],
        sensitive=[q for q in (sensitive or []) if q in cols],
        target=target if target in cols else None,
    )


OPEN_DOMAIN_DESCRIPTION = (
    "no category domain proposed: declare `values` (or coarsen the column), or drop it with kind: identifier"
)


def _looks_like_dates(nonnull: pd.Series) -> bool:
    sample = nonnull.astype(str).head(200)
    if not sample.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    return bool(pd.to_datetime(sample, errors="coerce").notna().all())


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


def _category_keys(values: list[Scalar]) -> dict[str, Scalar]:
    return {_key(v): v for v in values}


def _key(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def validate_table(df: pd.DataFrame, schema: PublicSchema) -> list[SchemaIssue]:
    """Check a table against a schema; the messages say what to change.

    Errors: missing or unknown columns, a numeric column with text, a date column
    that does not parse. Warnings: values outside the declared bounds or domain
    (they will be clipped or mapped to null), nulls in a non-nullable column.
    These counts come from real rows: show them to the steward only.
    """
    df = apply_null_tokens(df, schema)
    issues: list[SchemaIssue] = []
    declared = set(schema.columns)
    present = {str(c) for c in df.columns}
    for name in sorted(present - declared):
        issues.append(SchemaIssue(name, "unknown_column",
                                  f"column '{name}' is in the table but not in the schema; declare it "
                                  "(kind: identifier or text to drop it)"))
    for name in [n for n in schema.columns if n not in present]:
        issues.append(SchemaIssue(name, "missing_column",
                                  f"column '{name}' is declared in the schema but missing from the table"))
    for name, spec in schema.columns.items():
        if name not in present or spec.is_dropped:
            continue
        s = df[name]
        nonnull = s.dropna()
        if spec.kind in NUMERIC_KINDS and spec.values is None:
            num = pd.to_numeric(nonnull, errors="coerce")
            bad = int(num.isna().sum())
            if bad:
                example = nonnull[num.isna()].iloc[0]
                issues.append(SchemaIssue(name, "wrong_kind",
                                          f"column '{name}' is declared {spec.kind} but {bad} value(s) are not numbers "
                                          f"(e.g. {str(example)[:30]!r}); declare it categorical or fix the values",
                                          count=bad))
                continue
            if spec.has_bounds:
                lo, hi = spec.numeric_bounds()
                out = int(((num < lo) | (num > hi)).sum())
                if out:
                    issues.append(SchemaIssue(name, "out_of_bounds",
                                              f"{out} value(s) of '{name}' lie outside [{spec.min}, {spec.max}]; "
                                              "they will be clipped to the bounds", "warning", count=out))
        elif spec.kind == "datetime":
            parsed = pd.to_datetime(nonnull, errors="coerce")
            bad = int(parsed.isna().sum())
            if bad:
                issues.append(SchemaIssue(name, "wrong_kind",
                                          f"column '{name}' is declared datetime but {bad} value(s) do not parse as dates",
                                          count=bad))
                continue
        elif spec.values is not None:
            keys = _category_keys(spec.values)
            seen = nonnull.map(_key)
            undeclared = int((~seen.isin(list(keys))).sum())
            if undeclared:
                examples = sorted(set(seen[~seen.isin(list(keys))].head(1000)))[:3]
                issues.append(SchemaIssue(name, "undeclared_category",
                                          f"{undeclared} value(s) of '{name}' are not in the declared values "
                                          f"(e.g. {examples}); they will be treated as null. Add them to `values` "
                                          "if they should be kept", "warning", count=undeclared))
        elif spec.kind == "categorical":
            issues.append(SchemaIssue(name, "open_domain",
                                      f"column '{name}' has no declared `values`; list its categories (or drop it with "
                                      "kind: identifier) before requesting a release", "warning"))
        if not spec.nullable and s.isna().any():
            issues.append(SchemaIssue(name, "unexpected_null",
                                      f"column '{name}' has nulls but is not declared nullable; set nullable: true "
                                      "or the rows will be dropped", "warning"))
    return issues


def conform_table(df: pd.DataFrame, schema: PublicSchema, *, strict: bool = True) -> tuple[pd.DataFrame, ConformReport]:
    """Make a table fit its public schema before any mechanism sees it.

    Drops identifier and text columns; clips numbers and dates to declared
    bounds; maps undeclared categories to null (and drops rows with nulls in
    non-nullable columns); casts category values to the declared types. The
    returned report counts what changed: internal, never shown to analysts.
    With strict=True, structural errors (missing or unknown columns, wrong kinds)
    raise SchemaError.
    """
    df = apply_null_tokens(df, schema)
    issues = [i for i in validate_table(df, schema) if i.severity == "error"]
    if strict and issues:
        raise SchemaError("; ".join(i.message for i in issues), field="schema")
    report = ConformReport()
    out: dict[str, pd.Series] = {}
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
        elif spec.values is not None:
            keys = _category_keys(spec.values)
            mapped = _map_declared(s, keys)
            n_bad = int((mapped.isna() & s.notna()).sum())
            if n_bad:
                report.undeclared_to_null[name] = n_bad
            out[name] = pd.Series(pd.array(mapped.tolist(), dtype=_category_dtype(spec.values)), index=s.index)
        elif spec.kind in NUMERIC_KINDS:
            num = pd.to_numeric(s, errors="coerce").astype("float64")
            report.unparseable_to_null[name] = int(num.isna().sum() - s.isna().sum())
            if spec.has_bounds:
                lo, hi = spec.numeric_bounds()
                n_clip = int(((num < lo) | (num > hi)).sum())
                if n_clip:
                    report.clipped[name] = n_clip
                num = num.clip(lo, hi)
            if spec.is_integer:
                num = num.round()
            out[name] = num
        else:  # categorical with an open domain: keep strings, the method must refuse or pay
            out[name] = s.astype("string")
    result = pd.DataFrame(out, index=df.index)
    report.unparseable_to_null = {k: v for k, v in report.unparseable_to_null.items() if v}
    required = [n for n in result.columns if not schema.columns[n].nullable]
    if required:
        mask = result[required].isna().any(axis=1)
        report.dropped_rows = int(mask.sum())
        if report.dropped_rows:
            result = result.loc[~mask]
    result = result.reset_index(drop=True)
    return _restore_output_dtypes(result, schema), report


def _map_declared(s: pd.Series, keys: dict[str, Scalar]) -> pd.Series:
    """Each value's declared category (by its key), or None: once per distinct value, not per cell."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    looked_up = np.array([keys.get(_key(v)) for v in uniques] + [None], dtype=object)
    return pd.Series(looked_up[codes], index=s.index, dtype=object)


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
        if spec.kind in NUMERIC_KINDS and spec.values is None and spec.is_integer:
            df[name] = df[name].round().astype("Int64")
    return df


def enforce_schema(df: pd.DataFrame, schema: PublicSchema, *, seed: int | None = None) -> pd.DataFrame:
    """Post-process a synthesizer's output onto the schema (public: uses no real data).

    Orders and casts the columns, clips to the declared bounds, maps values
    outside the declared domain to null, fills nulls of a non-nullable column
    with draws from that column's own output values (`_fill_from_output`),
    rounds integers and regenerates `identifier: fake` columns as fresh ids. Keeps the DP guarantee: it reads only the output and
    the schema.
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
        elif spec.values is not None:
            keys = _category_keys(spec.values)
            mapped = _map_declared(s, keys)
            if not spec.nullable:
                mapped = _fill_from_output(mapped, rng, name, list(spec.values))
            out[name] = pd.Series(pd.array(mapped.tolist(), dtype=_category_dtype(spec.values)))
        elif spec.kind in NUMERIC_KINDS:
            num = pd.to_numeric(s, errors="coerce").astype("float64")
            if spec.has_bounds:
                lo, hi = spec.numeric_bounds()
                num = num.clip(lo, hi)
            if not spec.nullable:
                num = _fill_from_output(num, rng, name, spec.numeric_bounds() if spec.has_bounds else None)
            if spec.is_integer:
                out[name] = num.round().astype("Int64")
            else:
                out[name] = num
        else:
            out[name] = s.astype("string")
        if not spec.nullable and spec.kind == "datetime":
            bounds = (pd.Timestamp(spec.min), pd.Timestamp(spec.max)) if spec.has_bounds else None
            out[name] = _fill_from_output(out[name], rng, name, bounds)
    return pd.DataFrame(out)


def fake_ids(n: int, rng: np.random.Generator) -> pd.Series:
    """n fresh, distinct ids for an `identifier: fake` column, in random order."""
    return pd.Series([f"SYN-{i:08d}" for i in rng.permutation(n) + 1], dtype="string")


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
        raise SchemaError(f"the synthesizer produced no value for column '{name}', which may not be null and has "
                          "no declared bounds to draw from: declare its bounds, or let it be nullable",
                          field="schema")
    filled = s.copy().astype(object) if s.dtype == object else s.copy()
    filled.iloc[np.flatnonzero(missing)] = drawn
    return filled


__all__ += ["enforce_schema", "fake_ids", "NA_VALUES"]
