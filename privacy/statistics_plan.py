"""dp-statistics before any row is read: its options, what it measures, its planned cost and its
preflight on the public schema (privacy/statistics.py releases the statistics)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from privacy.budget import PrivacyCost, format_value, to_fraction
from privacy.errors import DomainTooLarge, InvalidPrivacyValue, MethodOptionError, SchemaError
from privacy.schema import NUMERIC_KINDS, ColumnSpec, PublicSchema

NAME = "dp-statistics"
STATISTICS = ("count", "mean", "variance", "quantiles", "histogram")
MECHANISMS = ("laplace", "gaussian")
MAX_CELLS = 10_000
DEFAULT_QUANTILES = (0.25, 0.5, 0.75)
MAX_GROUP_INTEGERS = 1000


def _mechanism(options: Mapping[str, Any] | None) -> str:
    mechanism = str((options or {}).get("mechanism") or "laplace").strip().lower()
    if mechanism not in MECHANISMS:
        raise MethodOptionError(f"mechanism must be one of {', '.join(MECHANISMS)}, got {mechanism!r}", field="options")
    return mechanism


# the row count is not public: every count released is a DP measurement paid for in the budget split
ROW_COUNT = {
    "epsilon_share": 0.0,
    "delta_share": 0.0,
    "use": "every count released (rows per cell, non-null values, histogram bins) is a DP measurement "
    "with its share of the budget; the true row count is used nowhere else",
}


def method_info(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the privacy statement says of a dp-statistics release with these options."""
    if _mechanism(options) == "gaussian":
        return {
            "name": NAME,
            "guarantee": "dp",
            "zcdp": True,
            "description": "DP counts, means, variances, quantiles and histograms: Gaussian mechanism (zCDP), "
            "exponential-mechanism quantiles; 95% noise intervals",
            "row_count": dict(ROW_COUNT),
        }
    return {
        "name": NAME,
        "guarantee": "dp",
        "zcdp": False,
        "description": "DP counts, means, variances, quantiles and histograms: Geometric and Laplace "
        "mechanisms (diffprivlib), exponential-mechanism quantiles; 95% noise intervals",
        "row_count": dict(ROW_COUNT),
    }


def planned_cost(requested: PrivacyCost, options: Mapping[str, Any] | None = None) -> PrivacyCost:
    """The cost of a dp-statistics release at `requested`.

    Laplace (default): pure epsilon-DP whatever delta is offered. Gaussian: the
    (epsilon, delta) asked for, run at the rho whose conversion fits it (zCDP).
    """
    if not requested.is_dp or requested.epsilon <= 0:
        raise InvalidPrivacyValue("dp-statistics needs a finite epsilon > 0", field="epsilon")
    if _mechanism(options) == "gaussian":
        if requested.delta <= 0:
            raise InvalidPrivacyValue(
                "the Gaussian mechanism needs a delta > 0 (for example 1e-9); or use "
                "mechanism: laplace, which is pure epsilon-DP",
                field="delta",
            )
        from privacy.accounting import zcdp_rho

        return PrivacyCost(requested.epsilon, requested.delta, zcdp_rho(requested.finite_epsilon, requested.delta))
    return PrivacyCost(requested.epsilon, 0, requested.finite_epsilon**2 / 2)


@dataclass(frozen=True)
class _Options:
    statistics: tuple[str, ...]
    columns: tuple[str, ...]
    by: tuple[tuple[str, ...], ...]
    quantiles: tuple[float, ...]
    bins: int
    bounds_epsilon: Fraction
    overall: bool
    mechanism: str = "laplace"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def statistics_options(schema: PublicSchema, options: Mapping[str, Any] | None) -> _Options:
    """Validate the options of a dp-statistics request against the schema (no data)."""
    options = dict(options or {})
    known = {"statistics", "columns", "by", "quantiles", "bins", "bounds_epsilon", "overall", "mechanism"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise MethodOptionError(
            f"unknown option(s) for {NAME}: {', '.join(unknown)}; known options: {', '.join(sorted(known))}",
            field="options",
        )
    stats = _as_list(options.get("statistics")) or list(STATISTICS)
    bad = [s for s in stats if s not in STATISTICS]
    if bad:
        raise MethodOptionError(f"unknown statistic(s) {bad}; choose among {', '.join(STATISTICS)}", field="options")
    modelled = schema.synthesized_columns
    columns = _as_list(options.get("columns")) or list(modelled)
    for c in columns:
        if c not in schema.columns:
            raise SchemaError(f"{NAME}: column '{c}' is not in the public schema", field="columns")
        if schema.columns[c].is_dropped:
            raise SchemaError(
                f"{NAME}: column '{c}' is an {schema.columns[c].kind} column and is never released", field="columns"
            )
    by_raw = options.get("by") or []
    if isinstance(by_raw, str):
        by_raw = [g for g in by_raw.split(";") if g.strip()]
    by: list[tuple[str, ...]] = []
    for group in by_raw:
        names = tuple(_as_list(group))
        if not names:
            continue
        for g in names:
            if g not in schema.columns or schema.columns[g].is_dropped:
                raise SchemaError(
                    f"{NAME}: group column '{g}' is not a modelled column of the public schema", field="by"
                )
            _group_domain(g, schema.columns[g])  # raises if not groupable
        cells = math.prod(len(_group_domain(g, schema.columns[g])) for g in names)
        if cells > MAX_CELLS:
            raise DomainTooLarge(
                f"{NAME}: grouping by {', '.join(names)} makes {cells} cells, more than "
                f"{MAX_CELLS}; group by fewer or coarser columns",
                field="by",
            )
        by.append(names)
    quantiles = tuple(float(q) for q in (_as_list(options.get("quantiles")) or DEFAULT_QUANTILES))
    if any(not 0 <= q <= 1 for q in quantiles):
        raise MethodOptionError("quantiles must lie in [0, 1]", field="options")
    bins = int(options.get("bins") or 10)
    if not 1 <= bins <= 1000:
        raise MethodOptionError("bins must be between 1 and 1000", field="options")
    for c in columns:
        spec = schema.columns[c]
        if spec.kind == "categorical" and spec.values is None:
            raise SchemaError(
                f"{NAME}: declare the `values` of '{c}' in the public schema (categories cannot be "
                "learned with epsilon)",
                field="schema",
            )
    overall = bool(options.get("overall", True))
    if not overall and not by:
        raise MethodOptionError("overall: false needs at least one `by` group", field="options")
    return _Options(
        tuple(stats),
        tuple(columns),
        tuple(by),
        quantiles,
        bins,
        to_fraction(options.get("bounds_epsilon") or 0, "bounds_epsilon"),
        overall,
        _mechanism(options),
    )


def _group_domain(name: str, spec: ColumnSpec) -> list[Any]:
    """Cell labels of a group column, from the schema; None stands for null."""
    if spec.values is not None:
        values: list[Any] = list(spec.values)
    elif spec.kind == "ordinal" and spec.has_bounds:
        lo, hi = spec.numeric_bounds()
        if hi - lo + 1 > MAX_GROUP_INTEGERS:
            raise SchemaError(
                f"{NAME}: group column '{name}' has more than {MAX_GROUP_INTEGERS} values; group by a "
                "categorical column or declare `values`",
                field="by",
            )
        values = list(range(math.ceil(lo), math.floor(hi) + 1))
    else:
        raise SchemaError(
            f"{NAME}: group column '{name}' must be categorical (declared values) or a bounded ordinal", field="by"
        )
    return values + ([None] if spec.nullable else [])


def _numeric_columns(schema: PublicSchema, columns: tuple[str, ...]) -> list[str]:
    return [
        c
        for c in columns
        if schema.columns[c].values is None and schema.columns[c].kind in (*NUMERIC_KINDS, "datetime")
    ]


def _measurements(schema: PublicSchema, o: _Options, group: tuple[str, ...]) -> int:
    """Number of measurements one breakdown makes (each gets one share of epsilon)."""
    stats = set(o.statistics)
    units = 1  # cell counts
    for c in o.columns:
        if c in group:
            continue
        spec = schema.columns[c]
        if c in _numeric_columns(schema, o.columns):
            moments = bool(stats & {"mean", "variance"})
            units += int(moments and spec.nullable) + int(moments) + int("variance" in stats)
            units += int("quantiles" in stats and bool(o.quantiles)) + int("histogram" in stats)
        elif "histogram" in stats or "count" in stats:
            units += 1
    return units


def _breakdowns(o: _Options) -> list[tuple[str, ...]]:
    return ([()] if o.overall else []) + list(o.by)


def preflight_statistics(
    schema: PublicSchema, requested: PrivacyCost, options: Mapping[str, Any] | None = None
) -> None:
    """Refuse a bad dp-statistics request before any data is read."""
    cost = planned_cost(requested, options)
    o = statistics_options(schema, options)
    open_numeric = [c for c in _numeric_columns(schema, o.columns) if schema.columns[c].is_open]
    if open_numeric and o.bounds_epsilon <= 0:
        raise SchemaError(
            f"{NAME}: the bounds of {', '.join(open_numeric)} are open; declare min and max, or set "
            "bounds_epsilon to learn them out of the requested epsilon",
            field="schema",
        )
    if o.bounds_epsilon < 0 or (open_numeric and o.bounds_epsilon >= requested.epsilon):
        raise InvalidPrivacyValue(
            f"bounds_epsilon must lie between 0 and the requested epsilon {format_value(requested.epsilon)}",
            field="bounds_epsilon",
        )
    if o.mechanism == "gaussian" and open_numeric and cost.rho is not None and o.bounds_epsilon**2 / 2 >= cost.rho:
        raise InvalidPrivacyValue(
            f"bounds_epsilon {format_value(o.bounds_epsilon)} costs rho "
            f"{format_value(o.bounds_epsilon**2 / 2)}, all of the request's rho "
            f"{format_value(cost.rho)}: give a smaller bounds_epsilon or a larger epsilon",
            field="bounds_epsilon",
        )
