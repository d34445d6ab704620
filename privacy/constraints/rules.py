"""The constraint rules as declared in the schema, and their validation against its columns.

The models (`Constraint` and the four kinds of rule it holds) and
`check_constraints`, which refuses a rule that names an undeclared column or
one of the wrong kind. The meaning of each rule is documented in
`privacy.constraints`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from privacy._expression import ExpressionError, parse_expression
from privacy._values import _as_number, _key

if TYPE_CHECKING:
    from privacy.schema import ColumnSpec

Scalar = str | int | float | bool
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
            raise ValueError(
                f"determined '{self.column}' needs exactly one of `bands` (for a numeric `by`) or "
                "`mapping` (for a categorical `by`)"
            )
        for value, (lo, hi) in (self.bands or {}).items():
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(
                    f"determined '{self.column}': band '{value}' must be [min, max] with finite "
                    f"min <= max, got [{lo}, {hi}]"
                )
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
                raise ValueError(
                    f"'{data}' is not a constraint; write 'low <= high' (or <, >=, >) with two column "
                    "names, or a mapping such as {inequality: {low: a, high: b}}"
                )
            a, op, b = m.groups()
            low, high = (a, b) if op in ("<=", "<") else (b, a)
            return {"inequality": {"low": low, "high": high, "strict": op in ("<", ">")}}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Constraint:
        given = [k for k in ("inequality", "determined", "combinations", "formula") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "each constraint is exactly one of inequality, determined, combinations or formula"
                + (f"; this one gives {given}" if given else "")
            )
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
                raise ValueError(
                    f"constraints[{i}]: column '{t}' is already computed by constraints[{targets[t]}]; "
                    "a column can be determined by one constraint only"
                )
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
                    raise ValueError(
                        f"{where}: '{name}' is computed by constraints[{targets[name]}]; constrain its "
                        "source columns instead"
                    )
        else:
            reads = [n for n in c.columns if n != c.target]
            for name in reads:
                if name in targets and targets[name] > i:
                    raise ValueError(
                        f"{where}: it reads '{name}', which constraints[{targets[name]}] computes; list "
                        "that constraint first"
                    )
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
        raise ValueError(
            f"{where} names '{name}', an {spec.kind} column, which is not released; constrain modelled columns only"
        )
    return spec


def _is_number(spec: ColumnSpec) -> bool:
    return spec.kind in _NUMERIC and spec.values is None


def _check_inequality(rule: Inequality, columns: Mapping[str, ColumnSpec], where: str) -> None:
    low, high = columns[rule.low], columns[rule.high]
    if rule.low == rule.high:
        raise ValueError(f"{where}: '{rule.low}' is compared with itself")
    if not ((_is_number(low) and _is_number(high)) or (low.kind == high.kind == "datetime")):
        raise ValueError(
            f"{where}: '{rule.low}' ({_kind_text(low)}) and '{rule.high}' ({_kind_text(high)}) cannot "
            "be compared; an inequality takes two numeric columns (ordinal/continuous without `values`) "
            "or two datetime columns"
        )
    if low.min is not None and high.max is not None:
        lo, hi = (
            low.numeric_bounds()[0] if low.has_bounds else _num(low.min),
            high.numeric_bounds()[1] if high.has_bounds else _num(high.max),
        )
        if lo > hi or (rule.strict and lo >= hi):
            raise ValueError(
                f"{where}: no row can satisfy it: the smallest '{rule.low}' ({low.min}) is above the "
                f"largest '{rule.high}' ({high.max}); widen the bounds or drop the constraint"
            )


def _num(v: Any) -> float:
    return _as_number(v)


def _kind_text(spec: ColumnSpec) -> str:
    return f"{spec.kind} with values" if spec.values is not None else spec.kind


def _check_determined(rule: Determined, columns: Mapping[str, ColumnSpec], where: str) -> None:
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
        raise ValueError(
            f"{where}: {unknown} not among the declared values of '{rule.column}' "
            f"({list(target.values)}); use declared values"
        )
    if rule.bands is not None:
        if not _is_number(source):
            raise ValueError(
                f"{where}: bands need a numeric '{rule.by}' (ordinal/continuous without `values`), "
                f"but it is {_kind_text(source)}; use a mapping instead"
            )
        if source.has_bounds:
            lo, hi = source.numeric_bounds()
            for value, (b_lo, b_hi) in rule.bands.items():
                if b_hi < lo or b_lo > hi:
                    raise ValueError(
                        f"{where}: band '{value}' [{b_lo}, {b_hi}] lies outside the bounds of "
                        f"'{rule.by}' [{source.min}, {source.max}]"
                    )
    else:
        if source.values is None:
            raise ValueError(
                f"{where}: a mapping needs '{rule.by}' to declare `values` (it is "
                f"{_kind_text(source)}); use bands for a numeric column"
            )
        source_keys = {_key(v) for v in source.values}
        stray = [k for k in (rule.mapping or {}) if _key(k) not in source_keys]
        if stray:
            raise ValueError(f"{where}: the mapping lists {stray}, which are not declared values of '{rule.by}'")


def _check_combinations(rule: Combinations, columns: Mapping[str, ColumnSpec], where: str) -> None:
    for j, name in enumerate(rule.columns):
        spec = columns[name]
        if spec.values is None:
            raise ValueError(
                f"{where}: '{name}' must declare `values` to take part in combinations (it is {_kind_text(spec)})"
            )
        keys = {_key(v) for v in spec.values}
        stray = sorted({str(row[j]) for row in rule.allowed if _key(row[j]) not in keys})
        if stray:
            raise ValueError(f"{where}: {stray} are not declared values of '{name}'")


def _check_formula(rule: Formula, columns: Mapping[str, ColumnSpec], where: str) -> None:
    spec = _declared(rule.column, columns, where)
    if not _is_number(spec):
        raise ValueError(
            f"{where}: '{rule.column}' is {_kind_text(spec)}; a formula computes a numeric column "
            "(ordinal/continuous without `values`)"
        )
    readable = {n for n, s in columns.items() if not s.is_dropped and n != rule.column}
    try:
        expr = parse_expression(rule.expression, readable)
    except ExpressionError as exc:
        if rule.column in _names_in(rule.expression):
            raise ValueError(f"{where}: the formula of '{rule.column}' reads '{rule.column}' itself") from exc
        raise ValueError(f"{where}: {exc}") from exc
    nullable = [n for n in expr.columns if columns[n].nullable]
    if nullable and not spec.nullable:
        raise ValueError(
            f"{where}: the formula of '{rule.column}' reads nullable column(s) {nullable}, so it can be "
            f"null; declare '{rule.column}' nullable"
        )


def _check_no_cycle(rules: list[Inequality]) -> None:
    edges: dict[str, set[str]] = {}
    for r in rules:
        edges.setdefault(r.low, set()).add(r.high)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                raise ValueError(
                    f"the inequalities form a cycle ({' <= '.join(cycle)}); columns that must be equal "
                    "are one column, or one defined by a formula"
                )
            if state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in list(edges):
        if state.get(start) is None:
            visit(start, [start])
