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
registry functions are thin wrappers around the same kernels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluation._tables import ColumnView, column_view, table_views
from privacy.schema import ColumnSpec, PublicSchema

__all__ = [
    "Metric",
    "METRICS",
    "NotScorable",
    "metric",
    "metrics_for",
    "ks_statistic",
    "tv_distance_counts",
    "joint_tv_distance",
    "cramers_v",
    "chi2_homogeneity_pvalue",
    "pearson_correlation",
    "average_ranks",
    "fidelity_from_codes",
    "FIDELITY_SCORE_DEFINITION",
]

Goal = Literal["max", "min"]
Scope = Literal["column", "pair", "table", "privacy"]


class NotScorable(ValueError):  # noqa: N818 - a reason, not a failure
    """The metric does not apply to this input; the message says why."""


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
        return {"name": self.name, "goal": self.goal, "range": list(self.range), "scope": self.scope,
                "ideal": self.ideal, "kinds": sorted(self.kinds), "description": self.description}


# ---------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)]


def ks_statistic(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (the largest CDF gap), nulls ignored."""
    a, b = np.sort(_finite(real)), np.sort(_finite(synthetic))
    if a.size == 0 or b.size == 0:
        raise NotScorable("no non-null values in the " + ("real" if a.size == 0 else "synthetic") + " column")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def tv_distance_counts(real_counts: np.ndarray, synthetic_counts: np.ndarray) -> float:
    """Total variation distance between two histograms on the same cells."""
    p, q = np.asarray(real_counts, float), np.asarray(synthetic_counts, float)
    if p.sum() <= 0 or q.sum() <= 0:
        raise NotScorable("an empty table has no distribution")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def _joint_codes(codes: Sequence[np.ndarray], sizes: Sequence[int]) -> tuple[np.ndarray, int]:
    joint = np.zeros(len(codes[0]), dtype=np.int64)
    cells = 1
    for c, s in zip(codes, sizes, strict=True):
        joint = joint * int(s) + c.astype(np.int64)
        cells *= int(s)
    return joint, cells


def joint_tv_distance(real_codes: Sequence[np.ndarray], synthetic_codes: Sequence[np.ndarray],
                      sizes: Sequence[int]) -> float:
    """TVD between the joint distributions of several discretised columns."""
    jr, cells = _joint_codes(real_codes, sizes)
    js, _ = _joint_codes(synthetic_codes, sizes)
    if jr.size == 0 or js.size == 0:
        raise NotScorable("an empty table has no distribution")
    if cells <= 4_000_000:
        return tv_distance_counts(np.bincount(jr, minlength=cells), np.bincount(js, minlength=cells))
    ur, cr = np.unique(jr, return_counts=True)
    us, cs = np.unique(js, return_counts=True)
    keys = np.union1d(ur, us)
    p = np.zeros(keys.size)
    q = np.zeros(keys.size)
    p[np.searchsorted(keys, ur)] = cr
    q[np.searchsorted(keys, us)] = cs
    return tv_distance_counts(p, q)


def chi2_homogeneity_pvalue(real_counts: np.ndarray, synthetic_counts: np.ndarray) -> float:
    """p-value of the chi-square test that both samples share one distribution.

    Cells empty in both are left out. With very large samples any small
    difference gives a tiny p-value: read it with the TVD beside it.
    """
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(real_counts, float), np.asarray(synthetic_counts, float)])
    if table[0].sum() <= 0 or table[1].sum() <= 0:
        raise NotScorable("an empty table has no distribution")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(chi2_contingency(table, correction=False)[1])


def cramers_v(codes_a: np.ndarray, codes_b: np.ndarray, size_a: int, size_b: int) -> float:
    """Cramer's V association of two discretised columns (0 none, 1 perfect)."""
    n = codes_a.size
    if n == 0:
        raise NotScorable("an empty table has no association")
    joint = codes_a.astype(np.int64) * size_b + codes_b
    table = np.bincount(joint, minlength=size_a * size_b).reshape(size_a, size_b).astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if min(r, c) < 2:
        raise NotScorable("a constant column has no association")
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(min(1.0, math.sqrt(chi2 / (n * (min(r, c) - 1)))))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks of the non-null values (NaN stays NaN): Spearman is Pearson on these."""
    return pd.Series(np.asarray(x, dtype=float)).rank().to_numpy()


def pearson_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over the rows where both values are present."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        x, y = x[ok], y[ok]
    if x.size < 3:
        raise NotScorable("fewer than 3 rows with both values")
    xc, yc = x - x.mean(), y - y.mean()
    sx, sy = np.sqrt((xc * xc).sum()), np.sqrt((yc * yc).sum())
    if sx == 0 or sy == 0:
        raise NotScorable("a constant column has no correlation")
    return float(np.clip((xc * yc).sum() / (sx * sy), -1.0, 1.0))


def _correlation(x: np.ndarray, y: np.ndarray, method: Literal["pearson", "spearman"]) -> float:
    if method == "spearman":
        x, y = average_ranks(x), average_ranks(y)
    return pearson_correlation(x, y)


FIDELITY_SCORE_DEFINITION = (
    "fidelity score = 1 - (mean one-way TVD + weighted mean two-way TVD) / 2. A TVD is the total variation "
    "distance between the real training and the synthetic distribution of one column (one-way) or of a pair "
    "of columns (two-way, over all pairs or a seeded sample of them). Each pair weighs the stronger of its "
    "real and synthetic association (Cramer's V, at least 0.05), so pairs that carry a relationship, or that "
    "the synthetic table invents one for, count most. Columns are discretised with one cell per declared "
    "category, one per value of an ordinal column spanning at most 20 integers, otherwise 10 bins cut at the "
    "deciles of the real training column (a value holding several deciles gets a bin of its own), plus a "
    "cell for null. The score lies in [0, 1]: 1 means the distributions agree cell for cell, 0 that they "
    "share no cell. Two independent samples of one population score below 1 by sampling noise alone: the "
    "report gives the real holdout's own score as that reference."
)
MIN_PAIR_WEIGHT = 0.05


def _association(codes_a: np.ndarray, codes_b: np.ndarray, size_a: int, size_b: int) -> float:
    try:
        return cramers_v(codes_a, codes_b, size_a, size_b)
    except NotScorable:
        return 0.0


def fidelity_from_codes(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray], sizes: dict[str, int],
                        pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The fidelity score and its parts from discretised columns."""
    one_way = {n: joint_tv_distance([real[n]], [synthetic[n]], [sizes[n]]) for n in real}
    two_way: dict[tuple[str, str], float] = {}
    weights: dict[tuple[str, str], float] = {}
    for a, b in pairs:
        two_way[(a, b)] = joint_tv_distance([real[a], real[b]], [synthetic[a], synthetic[b]], [sizes[a], sizes[b]])
        weights[(a, b)] = max(_association(real[a], real[b], sizes[a], sizes[b]),
                              _association(synthetic[a], synthetic[b], sizes[a], sizes[b]), MIN_PAIR_WEIGHT)
    mean_one = float(np.mean(list(one_way.values()))) if one_way else float("nan")
    if two_way:
        mean_two = float(np.mean(list(two_way.values())))
        w = np.array([weights[p] for p in two_way])
        weighted_two = float((w * np.array(list(two_way.values()))).sum() / w.sum())
    else:
        mean_two = weighted_two = mean_one
    return {"score": 1.0 - (mean_one + weighted_two) / 2.0, "mean_one_way_tvd": mean_one,
            "mean_two_way_tvd": mean_two if two_way else None,
            "weighted_two_way_tvd": weighted_two if two_way else None, "one_way": one_way, "two_way": two_way}


def sample_pairs(names: Sequence[str], max_pairs: int, seed: int) -> list[tuple[str, str]]:
    """All column pairs, or a seeded sample of `max_pairs` of them."""
    pairs = list(itertools.combinations(names, 2))
    if len(pairs) <= max_pairs:
        return pairs
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(pairs), size=max_pairs, replace=False))
    return [pairs[i] for i in keep]


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
    return tv_distance_counts(np.bincount(view.codes(real), minlength=view.size),
                              np.bincount(view.codes(synthetic), minlength=view.size))


def chi2_homogeneity_score(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Chi-square homogeneity p-value of a categorical column (null is a category)."""
    view = _view(real, synthetic, spec)
    if view.kind != "categorical":
        raise NotScorable("applies to categorical columns")
    return chi2_homogeneity_pvalue(np.bincount(view.codes(real), minlength=view.size),
                                   np.bincount(view.codes(synthetic), minlength=view.size))


def null_rate_error(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:  # noqa: ARG001
    """Absolute difference of the share of nulls."""
    if len(real) == 0 or len(synthetic) == 0:
        raise NotScorable("an empty table has no null rate")
    return float(abs(real.isna().mean() - synthetic.isna().mean()))


def range_coverage(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Share of the real [min, max] covered by the synthetic [min, max]."""
    a, b = _finite(real), _finite(synthetic)
    if a.size == 0:
        raise NotScorable("no non-null values in the real column")
    if b.size == 0:
        return 0.0
    lo, hi = a.min(), a.max()
    if hi == lo:
        return 1.0 if b.min() <= lo <= b.max() else 0.0
    overlap = max(0.0, min(hi, b.max()) - max(lo, b.min()))
    return float(overlap / (hi - lo))


def range_coverage_score(real: pd.Series, synthetic: pd.Series, spec: ColumnSpec) -> float:
    """Share of the real value range that the synthetic values span."""
    a, b = _numeric_pair(real, synthetic, spec)
    return range_coverage(a, b)


def category_coverage(real_codes: np.ndarray, synthetic_codes: np.ndarray, null_code: int) -> float:
    """Share of the categories seen in the real column that the synthetic column has."""
    seen = np.unique(real_codes[real_codes != null_code])
    if seen.size == 0:
        raise NotScorable("no non-null values in the real column")
    return float(np.isin(seen, synthetic_codes).mean())


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


def _correlation_error(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema,
                       method: Literal["pearson", "spearman"]) -> float:
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
    return joint_tv_distance([va.codes(real[va.name]), vb.codes(real[vb.name])],
                             [va.codes(synthetic[va.name]), vb.codes(synthetic[vb.name])], [va.size, vb.size])


# ---------------------------------------------------------------------------------
# table metrics
# ---------------------------------------------------------------------------------


def fidelity_score(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *,
                   max_pairs: int = 300, seed: int = 0) -> float:
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


def sdmetrics_quality_score(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema, *,
                            max_rows: int = 20_000, seed: int = 0) -> float:
    """SDMetrics' QualityReport score (column shapes and pair trends), for comparison with other tools."""
    from evaluation.fidelity import sdmetrics_quality

    return sdmetrics_quality(real, synthetic, schema, max_rows=max_rows, seed=seed)["score"]


# ---------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------


def _privacy(name: str) -> Callable[..., float]:
    def call(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema,
             *, seed: int = 0) -> float:
        from evaluation import privacy_risk

        return getattr(privacy_risk, name)(train, holdout, synthetic, schema, seed=seed)

    call.__name__ = name
    return call


NUMERIC = frozenset({"numeric"})
CATEGORICAL = frozenset({"categorical"})
BOTH = frozenset({"numeric", "categorical"})

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("ks_distance", ks_distance, "min", (0.0, 1.0), "column", 0.0,
               "Kolmogorov-Smirnov statistic between the real and synthetic values", NUMERIC),
        Metric("tv_distance", tv_distance, "min", (0.0, 1.0), "column", 0.0,
               "total variation distance of the column on the public-schema discretisation", BOTH),
        Metric("chi2_homogeneity_score", chi2_homogeneity_score, "max", (0.0, 1.0), "column", 1.0,
               "chi-square homogeneity p-value (tiny on large tables for any small difference)", CATEGORICAL),
        Metric("null_rate_error", null_rate_error, "min", (0.0, 1.0), "column", 0.0,
               "absolute difference of the share of nulls", BOTH),
        Metric("range_coverage_score", range_coverage_score, "max", (0.0, 1.0), "column", 1.0,
               "share of the real value range spanned by the synthetic values", NUMERIC),
        Metric("category_coverage_score", category_coverage_score, "max", (0.0, 1.0), "column", 1.0,
               "share of the real categories present in the synthetic column", CATEGORICAL),
        Metric("pearson_error", pearson_error, "min", (0.0, 1.0), "pair", 0.0,
               "half the absolute difference of Pearson correlations", NUMERIC),
        Metric("spearman_error", spearman_error, "min", (0.0, 1.0), "pair", 0.0,
               "half the absolute difference of Spearman correlations", NUMERIC),
        Metric("cramers_v_error", cramers_v_error, "min", (0.0, 1.0), "pair", 0.0,
               "absolute difference of Cramer's V on the discretised pair", BOTH),
        Metric("pair_tv_distance", pair_tv_distance, "min", (0.0, 1.0), "pair", 0.0,
               "total variation distance of the two-way marginal", BOTH),
        Metric("fidelity_score", fidelity_score, "max", (0.0, 1.0), "table", 1.0, FIDELITY_SCORE_DEFINITION),
        Metric("sdmetrics_quality_score", sdmetrics_quality_score, "max", (0.0, 1.0), "table", 1.0,
               "SDMetrics QualityReport score (mean of Column Shapes and Column Pair Trends)"),
        Metric("exact_match_rate", _privacy("exact_match_rate"), "min", (0.0, 1.0), "privacy", 0.0,
               "share of synthetic rows identical to a training row on every modelled column"),
        Metric("dcr_share_closer_to_train", _privacy("dcr_share_closer_to_train"), "min", (0.0, 1.0),
               "privacy", 0.5,
               "share of synthetic rows closer to a training row than to a holdout row (equal-size samples; "
               "ties count half); about 0.5 is ideal"),
        Metric("membership_auc_distance", _privacy("membership_auc_distance"), "min", (0.0, 1.0), "privacy",
               0.5, "AUC of a membership attack scoring a real row by its distance to the closest synthetic row"),
        Metric("membership_auc_classifier", _privacy("membership_auc_classifier"), "min", (0.0, 1.0),
               "privacy", 0.5,
               "AUC of a membership attack using a shadow model of the generator's density: a classifier "
               "trained to tell synthetic rows from reference real rows"),
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
