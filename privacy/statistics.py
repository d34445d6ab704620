"""`dp-statistics`: DP counts, means, variances, quantiles and histograms, overall and by groups.

Every value released is measured with a diffprivlib mechanism on bounds and
domains from the public schema (a bound left open can be learned first with
`bounds_epsilon`, privacy/bounds.py, out of the same request).

Neighbouring tables differ by adding or removing one row. A *breakdown* is the
whole table ("overall") or its split into the cells of one or more declared
categorical columns (`by`); the cells are enumerated from the declared domain
(nulls included), so an empty cell is reported like any other and no category
is learned from the data. Within a breakdown a row lies in exactly one cell,
so each measurement costs its epsilon once for all cells (parallel
composition). Measurements per breakdown:

* the row count of every cell (Geometric mechanism, sensitivity 1);
* per numeric or date column, as requested: the count of non-null values (when
  the column is nullable and a mean or variance is asked), the sum of
  x - c and of (x - c)^2 with c the midpoint of the declared bounds (Laplace,
  sensitivity (max - min) / 2 and ((max - min) / 2)^2), the quantiles
  (diffprivlib's exponential-mechanism `quantile`, the epsilon split over the
  quantiles), and an equal-width histogram with a null bin (Geometric);
* per categorical column: its histogram over the declared values and null.

mean = c + S1 / n, variance = S2 / n - (S1 / n)^2, with n the DP count (of
non-null values when the column is nullable), clipped to what the bounds allow
(post-processing).

Every row of the numeric table carries its cell's DP row count as `count` (and
the DP non-null count as `nonnull_count` when that was measured), and every
histogram row carries it as `cell_count` (the same measurement, already paid
for), so the small-cell rules of `privacy.disclosure` suppress a small cell
whole: its count, mean, variance, quantiles and histogram bins alike.

Two mechanisms (option `mechanism`), `laplace` (default, pure epsilon-DP) and `gaussian` (zCDP): see
privacy/statistics_noise.py for how each divides the budget among the measurements.

Every count, histogram bin, mean and variance comes with a 95% interval for the
mechanism's noise, and every quantile with a rank interval: privacy/statistics_noise.py.

Small-cell suppression and rounding are not applied here: every table is a
plain DataFrame with a `count` column (and `*_count` columns) for
`privacy.disclosure.apply_small_cell_rules`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from privacy._random import full_seed_random_state
from privacy.bounds import learn_open_bounds
from privacy.budget import PrivacyCost, format_value
from privacy.schema import ColumnSpec, PublicSchema, _category_keys, _key
from privacy.statistics_noise import (
    CONFIDENCE,
    MAX_INTEGER_GRID,
    QUANTILE_GRID,
    _moment_box,
    _Noise,
    grid_quantiles,
    quantile_grid,
    quantile_rank_moe,
)
from privacy.statistics_plan import (
    MAX_CELLS,
    MECHANISMS,
    NAME,
    STATISTICS,
    _breakdowns,
    _group_domain,
    _measurements,
    _numeric_columns,
    method_info,
    planned_cost,
    preflight_statistics,
    statistics_options,
)

__all__ = [
    "CONFIDENCE",
    "MAX_CELLS",
    "MAX_INTEGER_GRID",
    "MECHANISMS",
    "QUANTILE_GRID",
    "STATISTICS",
    "StatisticsRelease",
    "dp_statistics",
    "grid_quantiles",
    "long_table",
    "method_info",
    "planned_cost",
    "preflight_statistics",
    "quantile_grid",
    "quantile_rank_moe",
    "release_tables",
    "statistics_options",
]


ProgressCallback = Callable[[float, str], None]


@dataclass
class StatisticsRelease:
    """The released tables (plain DataFrames with a `count` column), the cost and the budget split."""

    counts: pd.DataFrame
    numeric: pd.DataFrame
    histograms: pd.DataFrame
    cost: PrivacyCost
    budget: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"counts": self.counts, "numeric": self.numeric, "histograms": self.histograms}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the tables as lists of records, the cost and the budget split."""

        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            out = []
            for row in df.to_dict(orient="records"):
                out.append({k: _jsonable(v) for k, v in row.items()})
            return out

        return {
            "method": NAME,
            "cost": self.cost.to_dict(),
            "budget": self.budget,
            "tables": {name: records(df) for name, df in self.tables().items()},
        }


def release_tables(
    release: StatisticsRelease, threshold: int | float, rounding_base: int | float
) -> tuple[dict[str, pd.DataFrame], dict[str, Any] | None]:
    """The tables as released: small-cell rules on every count column (post-processing of the DP values).

    Returns the tables and the merged small-cell report (None when no table had counts).
    """
    from privacy.disclosure import apply_small_cell_rules

    released: dict[str, pd.DataFrame] = {}
    reports: dict[str, Any] = {}
    for name, df in release.tables().items():
        count_cols = [c for c in df.columns if c == "count" or c.endswith("_count")]
        if df.empty or not count_cols:
            released[name] = df
            continue
        released[name], rep = apply_small_cell_rules(df, count_cols, threshold, rounding_base)
        reports[name] = rep.to_dict()
    return released, _merge_small_cell_reports(reports)


def _merge_small_cell_reports(reports: dict[str, Any]) -> dict[str, Any] | None:
    if not reports:
        return None
    merged: dict[str, Any] = {"tables": reports}
    for key in ("cells_suppressed", "cells", "suppressed"):
        vals = [r.get(key) for r in reports.values() if isinstance(r.get(key), int | float)]
        if vals:
            merged[key] = sum(vals)
    first = next(iter(reports.values()))
    for key in ("threshold", "rounding_base"):
        if key in first:
            merged[key] = first[key]
    for key, value in first.items():
        merged.setdefault(key, value)
    return merged


def long_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every released table in one, with a `table` column first (the bundle's data.csv)."""
    long = pd.concat([df.assign(table=name) for name, df in tables.items() if not df.empty], ignore_index=True)
    return long[["table", *[c for c in long.columns if c != "table"]]]


def _jsonable(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if np.isnan(v) else float(v)
    if isinstance(v, pd.Timestamp | dt.date):
        return v.isoformat()
    return v


def _label(names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    if not names:
        return "all"
    return ", ".join(f"{n}={'(null)' if v is None else v}" for n, v in zip(names, values, strict=True))


def _cell_index(
    table: pd.DataFrame, schema: PublicSchema, group: tuple[str, ...]
) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Each row's cell number, and the cells (declared values) in order."""
    domains = [_group_domain(g, schema.columns[g]) for g in group]
    cells = list(itertools.product(*domains)) if group else [()]
    idx = np.zeros(len(table), dtype=np.int64)
    for g, dom in zip(group, domains, strict=True):
        lookup = {_key(v): i for i, v in enumerate(dom) if v is not None}
        null_pos = len(dom) - 1 if dom and dom[-1] is None else None
        codes = np.empty(len(table), dtype=np.int64)
        for r, v in enumerate(table[g].tolist()):
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                code = null_pos
            else:
                code = lookup.get(_key(v))
            if code is None:  # conform_table prevents this; keep the row out of every cell rather than guess
                code = -1
            codes[r] = code
        idx = np.where((idx < 0) | (codes < 0), -1, idx * len(dom) + codes)
    return idx, cells


def _values(s: pd.Series, spec: ColumnSpec) -> np.ndarray:
    if spec.kind == "datetime":
        t = pd.to_datetime(s, errors="coerce")
        return ((t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _present(value: float, spec: ColumnSpec, spread: bool = False) -> Any:
    """A location statistic of a date column as an ISO date; numbers unchanged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if spec.kind == "datetime" and not spread:
        return (pd.Timestamp("1970-01-01") + pd.Timedelta(days=float(value))).date().isoformat()
    return float(value)


def dp_statistics(
    table: pd.DataFrame,
    schema: PublicSchema,
    requested: PrivacyCost,
    *,
    options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
) -> StatisticsRelease:
    """Measure the requested statistics of a conformed table; returns the tables and the exact cost.

    options: statistics (subset of count, mean, variance, quantiles, histogram),
    columns (default: every modelled column), by (list of group columns, or of
    lists for cross-tabulations), quantiles (default 0.25, 0.5, 0.75), bins
    (numeric histograms, default 10 or the schema's `bins`), bounds_epsilon
    (to learn open bounds), overall (default true).
    """
    progress = progress or (lambda f, m: None)
    preflight_statistics(schema, requested, options)
    o = statistics_options(schema, options)
    cost = planned_cost(requested, options)
    rng = full_seed_random_state(seed)

    bounds_spent = Fraction(0)
    numeric = _numeric_columns(schema, o.columns)
    if any(schema.columns[c].is_open for c in numeric):
        learned = learn_open_bounds(table, schema, o.bounds_epsilon, columns=numeric, seed=seed)
        schema = learned.schema
        bounds_spent = o.bounds_epsilon
    breakdowns = _breakdowns(o)
    units = sum(_measurements(schema, o, g) for g in breakdowns)
    assert isinstance(requested.epsilon, Fraction)
    noise = _Noise.for_request(o.mechanism, requested, cost, bounds_spent, units, rng)
    e = noise.epsilon  # the quantiles' exponential mechanism
    stats = set(o.statistics)
    noisy_count = noise.count
    count_moe = noise.count_margin(1 - CONFIDENCE)

    count_rows: list[dict[str, Any]] = []
    numeric_rows: list[dict[str, Any]] = []
    hist_rows: list[dict[str, Any]] = []
    spent_units = 0
    for b, group in enumerate(breakdowns):
        bname = "overall" if not group else " x ".join(group)
        cell_of_row, cells = _cell_index(table, schema, group)
        n_cells = len(cells)
        row_counts = np.bincount(cell_of_row[cell_of_row >= 0], minlength=n_cells)
        dp_rows = [noisy_count(c) for c in row_counts]
        spent_units += 1
        if "count" in stats or not o.columns:
            for cell, c in zip(cells, dp_rows, strict=True):
                count_rows.append(
                    {"breakdown": bname, "group": _label(group, cell), "count": c, "count_moe": count_moe}
                )
        members = [np.flatnonzero(cell_of_row == k) for k in range(n_cells)]
        for col in o.columns:
            if col in group:
                continue
            spec = schema.columns[col]
            if col in numeric:
                lo, hi = spec.numeric_bounds()
                mid, half = (lo + hi) / 2, (hi - lo) / 2
                x_all = np.clip(_values(table[col], spec), lo, hi)
                moments = bool(stats & {"mean", "variance"})
                # every row names its cell's DP row count, so that small-cell rules can suppress the cell
                # whole, whichever statistics were asked for
                per_cell: list[dict[str, Any]] = [{"count": c} for c in dp_rows]
                if moments:
                    if spec.nullable:
                        nn = [noisy_count(int(np.count_nonzero(~np.isnan(x_all[m])))) for m in members]
                        spent_units += 1
                    else:
                        nn = dp_rows
                    s1 = [noise.sum(float(np.nansum(x_all[m] - mid)), half) for m in members]
                    spent_units += 1
                    s2 = None
                    if "variance" in stats:
                        s2 = [noise.sum(float(np.nansum((x_all[m] - mid) ** 2)), half * half) for m in members]
                        spent_units += 1
                    # Bonferroni: the count and the one or two sums each within their margin
                    parts = 3 if s2 is not None else 2
                    tail = (1 - CONFIDENCE) / parts
                    margins = (
                        noise.count_margin(tail),
                        noise.sum_margin(half, tail),
                        noise.sum_margin(half * half, tail),
                    )
                    for k in range(n_cells):
                        n_k = max(nn[k], 1)
                        m1 = s1[k] / n_k
                        if spec.nullable:
                            per_cell[k]["nonnull_count"] = nn[k]
                        box = _moment_box(nn[k], s1[k], None if s2 is None else s2[k], margins, half)
                        if "mean" in stats:
                            per_cell[k]["mean"] = _present(float(np.clip(mid + m1, lo, hi)), spec)
                            per_cell[k]["mean_low"] = _present(mid + box[0], spec)
                            per_cell[k]["mean_high"] = _present(mid + box[1], spec)
                        if s2 is not None:
                            var = s2[k] / n_k - m1 * m1
                            per_cell[k]["variance"] = float(np.clip(var, 0.0, half * half))
                            per_cell[k]["variance_low"], per_cell[k]["variance_high"] = box[2], box[3]
                if "quantiles" in stats and o.quantiles:
                    for k, m in enumerate(members):
                        qs, rank_moe = grid_quantiles(
                            x_all[m],
                            o.quantiles,
                            e,
                            lo,
                            hi,
                            integer=spec.is_integer or spec.kind == "datetime",
                            rng=rng,
                        )
                        qs = np.sort(qs)  # post-processing: quantiles in order
                        for q, v in zip(sorted(o.quantiles), qs, strict=True):
                            per_cell[k][f"q{q:g}"] = _present(float(v), spec)
                            per_cell[k][f"q{q:g}_rank_moe"] = rank_moe
                    spent_units += 1
                if any(len(vals) > 1 for vals in per_cell):
                    for cell, vals in zip(cells, per_cell, strict=True):
                        numeric_rows.append({"breakdown": bname, "group": _label(group, cell), "column": col, **vals})
                if "histogram" in stats:
                    n_bins = spec.bins or o.bins
                    edges = np.linspace(lo, hi, n_bins + 1)
                    labels = [_bin_label(edges[i], edges[i + 1], spec, i == n_bins - 1) for i in range(n_bins)]
                    if spec.nullable:
                        labels.append("(null)")
                    for cell, m, cell_size in zip(cells, members, dp_rows, strict=True):
                        x = x_all[m]
                        isnull = np.isnan(x)
                        codes = np.minimum(np.searchsorted(edges, x[~isnull], side="right") - 1, n_bins - 1)
                        counts = np.bincount(np.maximum(codes, 0), minlength=n_bins)
                        if spec.nullable:
                            counts = np.append(counts, int(isnull.sum()))
                        for lab, c in zip(labels, counts, strict=True):
                            hist_rows.append(
                                {
                                    "breakdown": bname,
                                    "group": _label(group, cell),
                                    "column": col,
                                    "bin": lab,
                                    "count": noisy_count(int(c)),
                                    "count_moe": count_moe,
                                    "cell_count": cell_size,
                                }
                            )
                    spent_units += 1
            elif "histogram" in stats or "count" in stats:
                values = list(spec.values or [])
                keys = {k: i for i, k in enumerate(_category_keys(values))}
                labels = [str(v) for v in values] + (["(null)"] if spec.nullable else [])
                codes_all = np.array(
                    [len(values) if pd.isna(v) else keys.get(_key(v), len(values)) for v in table[col].tolist()],
                    dtype=np.int64,
                )
                for cell, m, cell_size in zip(cells, members, dp_rows, strict=True):
                    counts = np.bincount(codes_all[m], minlength=len(values) + 1)[: len(labels)]
                    for lab, c in zip(labels, counts, strict=True):
                        hist_rows.append(
                            {
                                "breakdown": bname,
                                "group": _label(group, cell),
                                "column": col,
                                "bin": lab,
                                "count": noisy_count(int(c)),
                                "count_moe": count_moe,
                                "cell_count": cell_size,
                            }
                        )
                spent_units += 1
        progress((b + 1) / len(breakdowns), f"measured breakdown {bname}")
    if spent_units != units:  # pragma: no cover - the unit count above and the loop must agree
        raise RuntimeError(f"dp-statistics made {spent_units} measurements but budgeted {units}")

    budget = {
        "mechanism": o.mechanism,
        "epsilon": format_value(requested.epsilon),
        "bounds_epsilon": format_value(bounds_spent),
        "measurements": units,
        **noise.describe(),
        "breakdowns": ["overall" if not g else " x ".join(g) for g in breakdowns],
        "composition": (
            "basic; cells of one breakdown are disjoint (parallel composition)"
            if o.mechanism == "laplace"
            else "zCDP (rho adds up); cells of one breakdown are disjoint (parallel composition)"
        ),
        "neighbouring": "add or remove one row",
        "confidence": (
            f"{CONFIDENCE:.0%} intervals of the mechanism's noise (count_moe, mean_low/high, "
            "variance_low/high; q*_rank_moe: the released quantile's rank among the real values is "
            "within that many rows of the quantile's rank), from its known distribution: they cover the "
            "table's own statistic, not sampling error"
        ),
    }
    numeric_cols = [
        "breakdown",
        "group",
        "column",
        "count",
        "nonnull_count",
        "mean",
        "mean_low",
        "mean_high",
        "variance",
        "variance_low",
        "variance_high",
    ] + [c for q in o.quantiles for c in (f"q{q:g}", f"q{q:g}_rank_moe")]
    numeric_df = pd.DataFrame(numeric_rows)
    if not numeric_df.empty:
        numeric_df = numeric_df[[c for c in numeric_cols if c in numeric_df.columns]]
    return StatisticsRelease(
        counts=pd.DataFrame(count_rows, columns=["breakdown", "group", "count", "count_moe"]),
        numeric=numeric_df if not numeric_df.empty else pd.DataFrame(columns=["breakdown", "group", "column", "count"]),
        histograms=pd.DataFrame(
            hist_rows, columns=["breakdown", "group", "column", "bin", "count", "count_moe", "cell_count"]
        ),
        cost=cost,
        budget=budget,
    )


def _bin_label(lo: float, hi: float, spec: ColumnSpec, last: bool) -> str:
    close = "]" if last else ")"
    if spec.kind == "datetime":
        a = (pd.Timestamp("1970-01-01") + pd.Timedelta(days=lo)).date().isoformat()
        b = (pd.Timestamp("1970-01-01") + pd.Timedelta(days=hi)).date().isoformat()
        return f"[{a}, {b}{close}"
    return f"[{lo:g}, {hi:g}{close}"
