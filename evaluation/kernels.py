"""The kernels of the metrics: two-sample distances and associations on arrays, and NotScorable.

Pure numpy (scipy for the chi-square test, loaded when called). The metric
registry (evaluation.metrics) and the report's sections (fidelity, utility,
privacy_risk, classwise, public) all compute with these, so they live below
every one of them; evaluation.metrics re-exports them under their old names.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "DENSE_CELLS",
    "FIDELITY_SCORE_DEFINITION",
    "MIN_PAIR_WEIGHT",
    "Contingency",
    "NotScorable",
    "average_ranks",
    "category_coverage",
    "chi2_homogeneity_pvalue",
    "counted_densely",
    "cramers_v",
    "cramers_v_table",
    "fidelity_from_codes",
    "joint_cells",
    "joint_tv_distance",
    "ks_statistic",
    "pearson_correlation",
    "range_coverage",
    "sample_pairs",
    "sparse_pair_weight",
    "tv_distance_counts",
]


class NotScorable(ValueError):
    """The metric does not apply to this input; the message says why."""


# ---------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)]


def ks_statistic(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (the largest CDF gap), nulls ignored."""
    a, b = _finite(real), _finite(synthetic)
    if a.size == 0 or b.size == 0:
        raise NotScorable("no non-null values in the " + ("real" if a.size == 0 else "synthetic") + " column")
    counted = _whole_number_counts(a, b)
    if counted is not None:  # the rows at or below each value present, by counting instead of sorting
        count_a, count_b = counted
        present = (count_a + count_b) > 0
        cdf_a = np.cumsum(count_a)[present] / a.size
        cdf_b = np.cumsum(count_b)[present] / b.size
        return float(np.max(np.abs(cdf_a - cdf_b)))
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _whole_number_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Counts of each whole number from the smallest to the largest value of finite a and b, when both
    hold only whole numbers spanning fewer values than their rows (else None)."""
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    if hi - lo >= a.size + b.size or not ((a == np.floor(a)).all() and (b == np.floor(b)).all()):
        return None
    cells = int(hi - lo) + 1
    return (
        np.bincount((a - lo).astype(np.int64), minlength=cells),
        np.bincount((b - lo).astype(np.int64), minlength=cells),
    )


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


DENSE_CELLS = 4_000_000  # joint cells counted densely (every cell); past it, only the cells present


def counted_densely(cells: int) -> bool:
    """Whether a joint distribution of `cells` cells is counted over every cell (else over those present)."""
    return cells <= DENSE_CELLS


def joint_cells(
    real_codes: Sequence[np.ndarray], synthetic_codes: Sequence[np.ndarray], sizes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(each real row's cell, each synthetic row's cell, real counts, synthetic counts) of the joint
    distribution of several discretised columns. The cells are every combination of codes (in the order of
    the joint code) while there are at most `DENSE_CELLS` of them, else the combinations present in either
    table, in the same order: a cell empty in both holds no count and no sampling noise."""
    jr, cells = _joint_codes(real_codes, sizes)
    js, _ = _joint_codes(synthetic_codes, sizes)
    if not counted_densely(cells):
        keys = np.union1d(jr, js)
        jr, js, cells = np.searchsorted(keys, jr), np.searchsorted(keys, js), keys.size
    return jr, js, np.bincount(jr, minlength=cells), np.bincount(js, minlength=cells)


def joint_tv_distance(
    real_codes: Sequence[np.ndarray], synthetic_codes: Sequence[np.ndarray], sizes: Sequence[int]
) -> float:
    """TVD between the joint distributions of several discretised columns."""
    if len(real_codes[0]) == 0 or len(synthetic_codes[0]) == 0:
        raise NotScorable("an empty table has no distribution")
    _, _, real_counts, synthetic_counts = joint_cells(real_codes, synthetic_codes, sizes)
    return tv_distance_counts(real_counts, synthetic_counts)


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
    return cramers_v_table(np.bincount(joint, minlength=size_a * size_b).reshape(size_a, size_b), n)


def cramers_v_table(counts: np.ndarray, n: int) -> float:
    """Cramer's V of a two-way table of counts over n rows."""
    if n == 0:
        raise NotScorable("an empty table has no association")
    table = counts.astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if min(r, c) < 2:
        raise NotScorable("a constant column has no association")
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(min(1.0, math.sqrt(chi2 / (n * (min(r, c) - 1)))))


class Contingency:
    """The discretised columns of one table, with each two-way table of counts counted once.

    The fidelity score's two-way TVDs and pair weights, the holdout reference and the association
    matrices all read the same pairs of the same samples: each pair is counted once and shared.
    """

    def __init__(self, codes: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
        self.codes, self.sizes = codes, sizes
        self._tables: dict[tuple[str, str], np.ndarray] = {}
        self._wide: dict[str, np.ndarray] = {}  # each column's codes as int64, made once for all its pairs

    def __len__(self) -> int:
        return len(next(iter(self.codes.values()))) if self.codes else 0

    def table(self, a: str, b: str) -> np.ndarray:
        """Counts of (a, b), of shape (size a, size b)."""
        key = (a, b)
        if key not in self._tables:
            sa, sb = int(self.sizes[a]), int(self.sizes[b])
            if a not in self._wide:
                self._wide[a] = self.codes[a].astype(np.int64)
            joint = self._wide[a] * sb + self.codes[b]
            self._tables[key] = np.bincount(joint, minlength=sa * sb).reshape(sa, sb)
        return self._tables[key]

    def cramers_v(self, a: str, b: str) -> float:
        return cramers_v_table(self.table(a, b), len(self))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks of the non-null values (NaN stays NaN): Spearman is Pearson on these.

    Whole numbers spanning fewer values than there are rows (an age, hours per week) are ranked by
    counting: the rows of a value v share the rank (rows below v) + (rows at v + 1) / 2, a half-integer,
    exactly what the sort-based ranking (pandas') gives; other columns are ranked by pandas.
    """
    x = np.asarray(x, dtype=float)
    present = ~np.isnan(x)
    v = x[present]
    if v.size:
        lo, hi = float(v.min()), float(v.max())
        if math.isfinite(lo) and math.isfinite(hi) and hi - lo < v.size and bool((v == np.floor(v)).all()):
            k = (v - lo).astype(np.int64)
            counts = np.bincount(k)
            below = np.cumsum(counts) - counts
            out = np.full(x.shape, np.nan)
            out[present] = (below + (counts + 1) / 2.0)[k]
            return out
    return pd.Series(x).rank().to_numpy()


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


def _association(counts: Contingency, a: str, b: str) -> float:
    try:
        return counts.cramers_v(a, b)
    except NotScorable:
        return 0.0


def _two_way_tvd(real: Contingency, synthetic: Contingency, a: str, b: str) -> float:
    if len(real) == 0 or len(synthetic) == 0:
        raise NotScorable("an empty table has no distribution")
    return tv_distance_counts(real.table(a, b).ravel(), synthetic.table(a, b).ravel())


def fidelity_from_codes(
    real: dict[str, np.ndarray] | Contingency,
    synthetic: dict[str, np.ndarray] | Contingency,
    sizes: dict[str, int],
    pairs: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """The fidelity score and its parts from discretised columns (or their `Contingency`, to share counts)."""
    real_t = real if isinstance(real, Contingency) else Contingency(real, sizes)
    syn_t = synthetic if isinstance(synthetic, Contingency) else Contingency(synthetic, sizes)
    rc, sc = real_t.codes, syn_t.codes
    one_way = {n: joint_tv_distance([rc[n]], [sc[n]], [sizes[n]]) for n in rc}
    two_way: dict[tuple[str, str], float] = {}
    weights: dict[tuple[str, str], float] = {}
    for a, b in pairs:
        if not counted_densely(sizes[a] * sizes[b]):
            two_way[(a, b)] = joint_tv_distance([rc[a], rc[b]], [sc[a], sc[b]], [sizes[a], sizes[b]])
            weights[(a, b)] = sparse_pair_weight(rc, sc, sizes, a, b)
            continue
        two_way[(a, b)] = _two_way_tvd(real_t, syn_t, a, b)
        weights[(a, b)] = max(_association(real_t, a, b), _association(syn_t, a, b), MIN_PAIR_WEIGHT)
    mean_one = float(np.mean(list(one_way.values()))) if one_way else float("nan")
    if two_way:
        mean_two = float(np.mean(list(two_way.values())))
        w = np.array([weights[p] for p in two_way])
        weighted_two = float((w * np.array(list(two_way.values()))).sum() / w.sum())
    else:
        mean_two = weighted_two = mean_one
    return {
        "score": 1.0 - (mean_one + weighted_two) / 2.0,
        "mean_one_way_tvd": mean_one,
        "mean_two_way_tvd": mean_two if two_way else None,
        "weighted_two_way_tvd": weighted_two if two_way else None,
        "one_way": one_way,
        "two_way": two_way,
    }


def sparse_pair_weight(
    real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray], sizes: dict[str, int], a: str, b: str
) -> float:
    """The weight in the fidelity score of a pair too large to count densely: the stronger of its real and
    synthetic Cramer's V, from the codes, at least MIN_PAIR_WEIGHT."""
    return max(
        _association_codes(real[a], real[b], sizes[a], sizes[b]),
        _association_codes(synthetic[a], synthetic[b], sizes[a], sizes[b]),
        MIN_PAIR_WEIGHT,
    )


def _association_codes(codes_a: np.ndarray, codes_b: np.ndarray, size_a: int, size_b: int) -> float:
    try:
        return cramers_v(codes_a, codes_b, size_a, size_b)
    except NotScorable:
        return 0.0


def sample_pairs(names: Sequence[str], max_pairs: int, seed: int) -> list[tuple[str, str]]:
    """All column pairs, or a seeded sample of `max_pairs` of them."""
    pairs = list(itertools.combinations(names, 2))
    if len(pairs) <= max_pairs:
        return pairs
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(pairs), size=max_pairs, replace=False))
    return [pairs[i] for i in keep]


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


def category_coverage(real_codes: np.ndarray, synthetic_codes: np.ndarray, null_code: int) -> float:
    """Share of the categories seen in the real column that the synthetic column has."""
    seen = np.unique(real_codes[real_codes != null_code])
    if seen.size == 0:
        raise NotScorable("no non-null values in the real column")
    return float(np.isin(seen, synthetic_codes).mean())
