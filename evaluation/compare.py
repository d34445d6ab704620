"""Two fidelity scores, and what to say when they rank releases differently.

Every report carries the headline fidelity score (evaluation.kernels) and SDMetrics' QualityReport
score. They measure different things, so two releases can be ordered one way by one and the other way
by the other. `rank_disagreements` finds those pairs; `SCORES_EXPLAINED` is what the report and the
steward's comparison of releases say about them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SCORES_DIFFER", "SCORES_EXPLAINED", "rank_disagreements"]

SCORES_EXPLAINED = (
    "The fidelity score compares distributions cell by cell: 1 minus the mean total variation distance of "
    "each column and of pairs of columns, on one shared discretisation, with each pair weighted by the "
    "strength of its association, so the relationships that matter count most and an invented one is "
    "penalised. SDMetrics' quality score is the mean of two averages over all columns and pairs, unweighted: "
    "Column Shapes (a Kolmogorov-Smirnov complement on raw numeric values, a TVD complement on categories) "
    "and Column Pair Trends (how close the correlation coefficient or the contingency table of each pair "
    "is). SDMetrics rewards a matching correlation coefficient even when the joint distribution behind it "
    "differs, counts a pair of independent columns as much as a strongly related one, and compares numbers "
    "value by value where the fidelity score compares bins. Use the fidelity score (with the holdout's own "
    "score as its reference) to judge this release; SDMetrics' score is there to compare with other tools."
)

SCORES_DIFFER = (
    "The fidelity score and SDMetrics' quality score order these releases differently: the first is ahead "
    "on distributions and weighted relationships, the second on unweighted per-column shapes and "
    "correlation coefficients."
)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def rank_disagreements(releases: Iterable[Mapping[str, Any]], *, tolerance: float = 0.005) -> list[dict[str, Any]]:
    """Pairs of releases the two scores order differently.

    Each release is a mapping with `id`, `fidelity_score` and `sdmetrics_quality`; releases missing either
    score are left out. A pair counts only when both differences exceed `tolerance` in opposite directions
    (a tie within sampling noise is no disagreement). Each result names the releases, the one each score
    puts ahead, and both scores of each.
    """
    scored = [
        (r["id"], f, q)
        for r in releases
        if (f := _finite(r.get("fidelity_score"))) is not None
        and (q := _finite(r.get("sdmetrics_quality"))) is not None
    ]
    out = []
    for (a, fa, qa), (b, fb, qb) in itertools.combinations(scored, 2):
        df, dq = fa - fb, qa - qb
        if abs(df) > tolerance and abs(dq) > tolerance and (df > 0) != (dq > 0):
            out.append(
                {
                    "releases": [a, b],
                    "fidelity_ahead": a if df > 0 else b,
                    "sdmetrics_ahead": a if dq > 0 else b,
                    "fidelity_score": {a: fa, b: fb},
                    "sdmetrics_quality": {a: qa, b: qb},
                }
            )
    return out
