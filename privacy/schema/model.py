"""The schema models: `ColumnSpec`, `PublicSchema` and their checks, and `load_schema`.

What a confirmed schema declares (kinds, bounds, category domains, special
values, hierarchies, constraints) and the rules that make a declaration
valid. The document format is described in `privacy.schema`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from privacy._values import _as_number
from privacy.constraints import Constraint, check_constraints
from privacy.errors import SchemaError

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
            raise ValueError(
                f"special_values are for numeric columns (ordinal or continuous with min/max); "
                f"this {self.kind} column declares {'values' if self.values is not None else 'dates'}"
            )
        if not special:
            raise ValueError("special_values lists no value; leave it out instead")
        if len(special) > MAX_SPECIAL_VALUES:
            raise ValueError(
                f"special_values lists {len(special)} values, more than {MAX_SPECIAL_VALUES}; "
                "keep the few values most rows hold"
            )
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
        return [
            n
            for n, c in self.columns.items()
            if not c.is_dropped or (c.kind == "identifier" and c.identifier == "fake")
        ]

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
