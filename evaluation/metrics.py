"""Metrics: pure functions in one registry, each with its goal and range.

Names follow scikit-learn: `*_score` is better when higher, `*_distance`,
`*_error` and `*_rate` are better when lower. Every entry of `METRICS`
declares its `goal` ("max" or "min"), its `range` and its `ideal`: the value a
perfect synthetic table gets (for fidelity metrics: a copy of the real table;
for privacy metrics: rows drawn independently of the training rows).

Scopes and signatures:

* ``column``: ``f(real: Series, synthetic: Series, spec: ColumnSpec) -> float``
* ``pair``: ``f(real: DataFrame, synthetic: DataFrame, schema) -> float`` on two columns
* ``table``: ``f(real: DataFrame, synthetic: DataFrame, schema) -> float``
* ``privacy``: ``f(train, holdout, synthetic, schema, *, seed=0) -> float``

A metric that cannot score its input (a column entirely null, a constant
column for a correlation) raises `NotScorable` with the reason; the report
records the reason and goes on.

The kernels (`ks_statistic`, `tv_distance_counts`, `joint_tv_distance`,
`cramers_v`, ...) are what the report computes with on large tables; the
registry functions are thin wrappers around the same kernels. The kernels and
`NotScorable` live in evaluation.kernels (below the report's sections, which
use them too) and are importable from here as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluation import fidelity, privacy_risk
from evaluation._tables import ColumnView, column_view, table_views
from evaluation.kernels import (
    FIDELITY_SCORE_DEFINITION,
    MIN_PAIR_WEIGHT,  # noqa: F401 - re-exported
    NotScorable,
    _correlation,
    average_ranks,
    category_coverage,
    chi2_homogeneity_pvalue,
    cramers_v,
    fidelity_from_codes,
    joint_tv_distance,
    ks_statistic,
    pearson_correlation,
    range_coverage,
    sample_pairs,
    tv_distance_counts,
)
from privacy.schema import ColumnSpec, PublicSchema

__all__ = [
    "FIDELITY_SCORE_DEFINITION",
    "METRICS",
    "Metric",
    "NotScorable",
    "average_ranks",
    "chi2_homogeneity_pvalue",
    "cramers_v",
    "fidelity_from_codes",
    "joint_tv_distance",
    "ks_statistic",
    "metric",
    "metrics_for",
    "pearson_correlation",
    "tv_distance_counts",
]

Goal = Literal["max", "min"]
Scope = Literal["column", "pair", "table", "privacy"]


@dataclass(frozen=True)
class Metric:
    """One registered metric."""

    name: str
    func: Callable[..., float]
    goal: Goal
    range: tuple[float, float]
    scope: Scope
    ideal: float
    description: str
    kinds: frozenset[str] = field(default_factory=lambda: frozenset({"numeric", "categorical"}))

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        value = float(self.func(*args, **kwargs))
        if math.isnan(value):
            raise NotScorable(f"{self.name} is undefined for this input")
        return value

    def better(self, a: float, b: float) -> bool:
        """True when `a` is strictly better than `b` for this metric."""
        return a > b if self.goal == "max" else a < b

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "range": list(self.range),
            "scope": self.scope,
            "ideal": self.ideal,
            "kinds": sorted(self.kinds),
            "description": self.description,
        }


# ---------------------------------------------------------------------------------
# column metrics
# ---------------------------------------------------------------------------------


def _view(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> ColumnView:
    return column_view(str(real.name), spec, real, synthetic, quantiles_from=real)


def _numeric_pair(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    view = _view(real, synthetic, spec)
    if view.kind != "numeric":
        raise NotScorable("applies to numeric, ordinal and datetime columns")
    return view.numeric(real), view.numeric(synthetic)


def ks_distance(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Kolmogorov-Smirnov statistic of a numeric, ordinal or datetime column (non-null values)."""
    a, b = _numeric_pair(real, synthetic, spec)
    return ks_statistic(a, b)


def tv_distance(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Total variation distance on the public-schema discretisation (null is a cell)."""
    view = _view(real, synthetic, spec)
    return tv_distance_counts(
        np.bincount(view.codes(real), minlength=view.size), np.bincount(view.codes(synthetic), minlength=view.size)
    )


def chi2_homogeneity_score(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Chi-square homogeneity p-value of a categorical column (null is a category)."""
    view = _view(real, synthetic, spec)
    if view.kind != "categorical":
        raise NotScorable("applies to categorical columns")
    return chi2_homogeneity_pvalue(
        np.bincount(view.codes(real), minlength=view.size), np.bincount(view.codes(synthetic), minlength=view.size)
    )


def null_rate_error(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Absolute difference of the share of nulls."""
    if len(real) == 0 or len(synthetic) == 0:
        raise NotScorable("an empty table has no null rate")
    return float(abs(real.isna().mean() - synthetic.isna().mean()))


def range_coverage_score(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Share of the real value range that the synthetic values span."""
    a, b = _numeric_pair(real, synthetic, spec)
    return range_coverage(a, b)


def category_coverage_score(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Share of the real column's categories that appear in the synthetic column."""
    view = _view(real, synthetic, spec)
    if view.kind != "categorical":
        raise NotScorable("applies to categorical columns")
    return category_coverage(view.codes(real), view.codes(synthetic), view.null_code)


# ---------------------------------------------------------------------------------
# pair metrics
# ---------------------------------------------------------------------------------


def _pair_views(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema) -> tuple[ColumnView, ColumnView]:
    if real.shape[1] != 2 or list(real.columns) != list(synthetic.columns):
        raise ValueError("a pair metric takes two tables with the same two columns")
    views = table_views(schema.subset(list(real.columns)), real, synthetic, quantiles_from=real)
    if len(views) != 2:
        raise NotScorable("both columns must be modelled columns of the schema")
    a, b = views.values()
    return a, b


def _correlation_error(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, method: Literal["pearson", "spearman"]
) -> float:
    va, vb = _pair_views(real, synthetic, schema)
    if va.kind != "numeric" or vb.kind != "numeric":
        raise NotScorable("applies to pairs of numeric, ordinal or datetime columns")
    ra, rb = va.numeric(real[va.name]), vb.numeric(real[vb.name])
    sa, sb = va.numeric(synthetic[va.name]), vb.numeric(synthetic[vb.name])
    return abs(_correlation(ra, rb, method) - _correlation(sa, sb, method)) / 2.0


def pearson_error(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema) -> float:
    """Half the absolute difference of the Pearson correlations of a numeric pair."""
    return _correlation_error(real, synthetic, schema, "pearson")


def spearman_error(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema) -> float:
    """Half the absolute difference of the Spearman correlations of a numeric pair."""
    return _correlation_error(real, synthetic, schema, "spearman")


def cramers_v_error(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema) -> float:
    """Absolute difference of Cramer's V on the discretised pair (any kinds)."""
    va, vb = _pair_views(real, synthetic, schema)
    v_real = cramers_v(va.codes(real[va.name]), vb.codes(real[vb.name]), va.size, vb.size)
    v_syn = cramers_v(va.codes(synthetic[va.name]), vb.codes(synthetic[vb.name]), va.size, vb.size)
    return abs(v_real - v_syn)


def pair_tv_distance(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema) -> float:
    """TVD of the two-way marginal on the public-schema discretisation."""
    va, vb = _pair_views(real, synthetic, schema)
    return joint_tv_distance(
        [va.codes(real[va.name]), vb.codes(real[vb.name])],
        [va.codes(synthetic[va.name]), vb.codes(synthetic[vb.name])],
        [va.size, vb.size],
    )


# ---------------------------------------------------------------------------------
# table metrics
# ---------------------------------------------------------------------------------


def fidelity_score(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, max_pairs: int = 300, seed: int = 0
) -> float:
    """The report's overall fidelity score (see FIDELITY_SCORE_DEFINITION)."""
    views = table_views(schema, real, synthetic, quantiles_from=real)
    if not views:
        raise NotScorable("no modelled column is present in both tables")
    if len(real) == 0 or len(synthetic) == 0:
        raise NotScorable("an empty table has no distribution")
    rc = {n: v.codes(real[n]) for n, v in views.items()}
    sc = {n: v.codes(synthetic[n]) for n, v in views.items()}
    pairs = sample_pairs(list(views), max_pairs, seed)
    return fidelity_from_codes(rc, sc, {n: v.size for n, v in views.items()}, pairs)["score"]


def sdmetrics_quality_score(
    real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, max_rows: int = 20_000, seed: int = 0
) -> float:
    """SDMetrics' QualityReport score (column shapes and pair trends), for comparison with other tools."""
    return fidelity.sdmetrics_quality(real, synthetic, schema, max_rows=max_rows, seed=seed)["score"]


# ---------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------


def _privacy(name: str) -> Callable[..., float]:
    def call(
        train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *, seed: int = 0
    ) -> float:
        return getattr(privacy_risk, name)(train, holdout, synthetic, schema, seed=seed)

    call.__name__ = name
    return call


NUMERIC = frozenset({"numeric"})
CATEGORICAL = frozenset({"categorical"})
BOTH = frozenset({"numeric", "categorical"})

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric(
            "ks_distance",
            ks_distance,
            "min",
            (0.0, 1.0),
            "column",
            0.0,
            "Kolmogorov-Smirnov statistic between the real and synthetic values",
            NUMERIC,
        ),
        Metric(
            "tv_distance",
            tv_distance,
            "min",
            (0.0, 1.0),
            "column",
            0.0,
            "total variation distance of the column on the public-schema discretisation",
            BOTH,
        ),
        Metric(
            "chi2_homogeneity_score",
            chi2_homogeneity_score,
            "max",
            (0.0, 1.0),
            "column",
            1.0,
            "chi-square homogeneity p-value (tiny on large tables for any small difference)",
            CATEGORICAL,
        ),
        Metric(
            "null_rate_error",
            null_rate_error,
            "min",
            (0.0, 1.0),
            "column",
            0.0,
            "absolute difference of the share of nulls",
            BOTH,
        ),
        Metric(
            "range_coverage_score",
            range_coverage_score,
            "max",
            (0.0, 1.0),
            "column",
            1.0,
            "share of the real value range spanned by the synthetic values",
            NUMERIC,
        ),
        Metric(
            "category_coverage_score",
            category_coverage_score,
            "max",
            (0.0, 1.0),
            "column",
            1.0,
            "share of the real categories present in the synthetic column",
            CATEGORICAL,
        ),
        Metric(
            "pearson_error",
            pearson_error,
            "min",
            (0.0, 1.0),
            "pair",
            0.0,
            "half the absolute difference of Pearson correlations",
            NUMERIC,
        ),
        Metric(
            "spearman_error",
            spearman_error,
            "min",
            (0.0, 1.0),
            "pair",
            0.0,
            "half the absolute difference of Spearman correlations",
            NUMERIC,
        ),
        Metric(
            "cramers_v_error",
            cramers_v_error,
            "min",
            (0.0, 1.0),
            "pair",
            0.0,
            "absolute difference of Cramer's V on the discretised pair",
            BOTH,
        ),
        Metric(
            "pair_tv_distance",
            pair_tv_distance,
            "min",
            (0.0, 1.0),
            "pair",
            0.0,
            "total variation distance of the two-way marginal",
            BOTH,
        ),
        Metric("fidelity_score", fidelity_score, "max", (0.0, 1.0), "table", 1.0, FIDELITY_SCORE_DEFINITION),
        Metric(
            "sdmetrics_quality_score",
            sdmetrics_quality_score,
            "max",
            (0.0, 1.0),
            "table",
            1.0,
            "SDMetrics QualityReport score (mean of Column Shapes and Column Pair Trends)",
        ),
        Metric(
            "exact_match_rate",
            _privacy("exact_match_rate"),
            "min",
            (0.0, 1.0),
            "privacy",
            0.0,
            "share of synthetic rows identical to a training row on every modelled column",
        ),
        Metric(
            "dcr_share_closer_to_train",
            _privacy("dcr_share_closer_to_train"),
            "min",
            (0.0, 1.0),
            "privacy",
            0.5,
            "share of synthetic rows closer to a training row than to a holdout row (equal-size samples; "
            "ties count half); about 0.5 is ideal",
        ),
        Metric(
            "membership_auc_distance",
            _privacy("membership_auc_distance"),
            "min",
            (0.0, 1.0),
            "privacy",
            0.5,
            "AUC of a membership attack scoring a real row by its distance to the closest synthetic row",
        ),
        Metric(
            "membership_auc_classifier",
            _privacy("membership_auc_classifier"),
            "min",
            (0.0, 1.0),
            "privacy",
            0.5,
            "AUC of a membership attack using a shadow model of the generator's density: a classifier "
            "trained to tell synthetic rows from reference real rows",
        ),
    ]
}


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric '{name}'; available: {', '.join(sorted(METRICS))}") from None


def metrics_for(scope: Scope, kind: str | None = None) -> list[Metric]:
    """Registered metrics of one scope (and, for columns, one kind)."""
    return [m for m in METRICS.values() if m.scope == scope and (kind is None or kind in m.kinds)]
