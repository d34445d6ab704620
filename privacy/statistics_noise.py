"""The noise of `dp-statistics` (privacy/statistics.py): its mechanisms, their 95% intervals, and the
exponential-mechanism quantiles.

Two mechanisms (option `mechanism`):

* `laplace` (default): counts and histograms with the Geometric mechanism,
  sums with Laplace. The requested epsilon minus `bounds_epsilon` is divided
  equally among all measurements of all breakdowns; they compose by basic
  composition to exactly that epsilon. Pure epsilon-DP (delta = 0, hence
  epsilon^2/2-zCDP); a delta offered with the request is not used or charged.
* `gaussian`: the request's (epsilon, delta > 0) is turned into the rho of a
  zCDP mechanism (`zcdp_rho`), charged as such, so that it composes with MST,
  AIM and other zCDP releases of the dataset by adding rho. `bounds_epsilon`
  costs bounds_epsilon^2/2 of it; the rest is divided equally among the
  measurements, each a Gaussian mechanism with sigma = sensitivity /
  sqrt(2 rho_unit) (counts rounded, post-processing), and the quantiles an
  exponential mechanism at epsilon_unit = sqrt(2 rho_unit).

Every count, histogram bin, mean and variance comes with a 95% interval for the
mechanism's noise, computed from its known noise distribution and the released
values alone (post-processing: no privacy cost): `count_moe` (a count lies within
that many of the true count), and `mean_low`/`mean_high`,
`variance_low`/`variance_high` (from the intervals of the noisy sums and counts,
Bonferroni-combined, so at least 95%). The intervals cover the statistic of the
table as measured (values clipped to the bounds), not sampling error. The
quantiles come with a rank interval instead: `q<level>_rank_moe`. Each quantile is
an exponential mechanism over a fixed grid of G candidate values (the integers
between the bounds for integer and date columns, `QUANTILE_GRID` equal steps
otherwise; values are rounded up to the grid), with utility minus the number of
rows by which a candidate misses the quantile's rank (sensitivity 1). With
probability at least 95% the released value misses by at most
rank_moe = 2 ln(G / 0.05) / epsilon_q rows: the released q-quantile is a true
quantile of the column (on the grid) at a level within q +/- rank_moe / n. The
bound follows from the mechanism alone (the best candidate misses by 0 rows and
at most G candidates compete), so it costs nothing and reads no data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from privacy.budget import PrivacyCost, format_value

__all__ = [
    "CONFIDENCE",
    "MAX_INTEGER_GRID",
    "QUANTILE_GRID",
    "grid_quantiles",
    "quantile_grid",
    "quantile_rank_moe",
]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class _Noise:
    """The noise of one request's measurements: each a count or a sum, all at the same share of the budget."""

    mechanism: str
    epsilon: float  # laplace: each measurement's epsilon; gaussian: the quantiles' epsilon sqrt(2 rho_unit)
    sigma: float  # gaussian: the noise of a sensitivity-1 measurement; 0 for laplace
    rng: Any
    text: dict[str, str]

    @classmethod
    def for_request(
        cls, mechanism: str, requested: PrivacyCost, cost: PrivacyCost, bounds_spent: Fraction, units: int, rng: Any
    ) -> _Noise:
        if mechanism == "gaussian":
            from privacy.accounting import gaussian_sigma

            assert cost.rho is not None
            rho_unit = (cost.rho - bounds_spent**2 / 2) / units
            sigma = gaussian_sigma(rho_unit)
            return cls(
                mechanism,
                math.sqrt(2 * float(rho_unit)),
                sigma,
                rng,
                {
                    "rho": format_value(cost.rho),
                    "rho_per_measurement": format_value(rho_unit),
                    "sigma_per_unit_sensitivity": f"{sigma:.6g}",
                },
            )
        assert isinstance(requested.epsilon, Fraction)
        eps_unit = (requested.epsilon - bounds_spent) / units
        return cls(mechanism, float(eps_unit), 0.0, rng, {"epsilon_per_measurement": format_value(eps_unit)})

    def describe(self) -> dict[str, str]:
        return dict(self.text)

    def count(self, c: int) -> int:
        """A noisy count, at least 0 (post-processing)."""
        from diffprivlib.mechanisms import Geometric

        if self.mechanism == "gaussian":
            return max(0, int(round(c + self.rng.normal(0.0, self.sigma))))
        return max(0, int(Geometric(epsilon=self.epsilon, sensitivity=1, random_state=self.rng).randomise(int(c))))

    def sum(self, x: float, sensitivity: float) -> float:
        from diffprivlib.mechanisms import Laplace

        if self.mechanism == "gaussian":
            return float(x + self.rng.normal(0.0, self.sigma * max(sensitivity, 1e-12)))
        return float(
            Laplace(epsilon=self.epsilon, sensitivity=max(sensitivity, 1e-12), random_state=self.rng).randomise(
                float(x)
            )
        )

    def count_margin(self, tail: float) -> int:
        """m such that a noisy count is within m of the true count with probability >= 1 - tail."""
        if self.mechanism == "gaussian":
            from scipy.stats import norm

            return math.ceil(float(norm.ppf(1 - tail / 2)) * self.sigma + 0.5)  # +0.5: the rounding
        # two-sided geometric, P(X = k) ~ a^|k|: P(|X| >= k) = 2 a^k / (1 + a)
        a = math.exp(-self.epsilon)
        return max(0, math.ceil(math.log(tail * (1 + a) / 2) / math.log(a)) - 1)

    def sum_margin(self, sensitivity: float, tail: float) -> float:
        """t such that a noisy sum is within t of the true sum with probability >= 1 - tail."""
        if self.mechanism == "gaussian":
            from scipy.stats import norm

            return float(norm.ppf(1 - tail / 2)) * self.sigma * sensitivity
        return sensitivity / self.epsilon * math.log(1 / tail)  # Laplace: P(|X| > t) = exp(-t / b)


def _moment_box(
    n: int, s1: float, s2: float | None, margins: tuple[int, float, float], half: float
) -> tuple[float, float, float | None, float | None]:
    """Intervals of the (centred) mean and of the variance when the count and the sums lie within their margins.

    With n in [n - m_n, n + m_n] (at least 1) and S1, S2 in theirs, S1 / n and S2 / n are monotone in each
    variable, so their extremes are at the corners; the variance S2 / n - (S1 / n)^2 is bounded by combining
    them. Clipped to what the bounds allow. A count whose interval reaches 0 gives the whole range.
    """
    m_n, m_1, m_2 = margins
    n_lo, n_hi = n - m_n, n + m_n
    if n_lo < 1:
        return -half, half, (0.0 if s2 is not None else None), (half * half if s2 is not None else None)
    ratios = [(s1 + d) / k for d in (-m_1, m_1) for k in (n_lo, n_hi)]
    a, b = max(min(ratios), -half), min(max(ratios), half)
    if s2 is None:
        return a, b, None, None
    seconds = [max(s2 + d, 0.0) / k for d in (-m_2, m_2) for k in (n_lo, n_hi)]
    lowest_square = 0.0 if a <= 0 <= b else min(a * a, b * b)
    var_lo = float(np.clip(min(seconds) - max(a * a, b * b), 0.0, half * half))
    var_hi = float(np.clip(max(seconds) - lowest_square, 0.0, half * half))
    return a, b, var_lo, var_hi


QUANTILE_GRID = 1024
MAX_INTEGER_GRID = 200_000


def quantile_grid(lo: float, hi: float, *, integer: bool) -> np.ndarray:
    """The candidate values of the quantile mechanism: public, from the bounds only."""
    if integer and math.floor(hi) - math.ceil(lo) + 1 <= MAX_INTEGER_GRID:
        return np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=float)
    return np.linspace(lo, hi, QUANTILE_GRID)


def quantile_rank_moe(grid_size: int, epsilon: float, tail: float = 1 - CONFIDENCE) -> int:
    """Rows by which an exponential-mechanism quantile misses its rank, exceeded with probability <= tail."""
    return int(math.ceil(2.0 * math.log(grid_size / tail) / epsilon))


def grid_quantiles(
    x: np.ndarray,
    quantiles: Sequence[float],
    epsilon: float,
    lo: float,
    hi: float,
    *,
    integer: bool,
    rng: np.random.RandomState,
) -> tuple[np.ndarray, int]:
    """epsilon-DP quantiles (epsilon split equally among them) and their 95% rank margin.

    Each quantile is an exponential mechanism over `quantile_grid`: a candidate t
    scores -max(0, q n - #{x <= t}, #{x < t} - q n) with x rounded up to the grid,
    so the true quantile scores 0 and one row more or less moves any score by at
    most 1. Sampling uses the Gumbel-max trick on the log-weights epsilon_q u / 2.
    """
    grid = quantile_grid(lo, hi, integer=integer)
    values = x[~np.isnan(x)]
    idx = np.clip(np.searchsorted(grid, np.clip(values, lo, hi), side="left"), 0, len(grid) - 1)
    at = np.bincount(idx, minlength=len(grid)).astype(float)
    le = np.cumsum(at)
    lt = le - at
    n = float(len(values))
    eps_q = epsilon / max(1, len(quantiles))
    out = np.empty(len(quantiles))
    for i, q in enumerate(quantiles):
        target = q * n
        score = -np.maximum(0.0, np.maximum(target - le, lt - target))
        gumbel = -np.log(-np.log(rng.random_sample(len(grid)).clip(1e-300, 1.0)))
        out[i] = grid[int(np.argmax(eps_q * score / 2.0 + gumbel))]
    return out, quantile_rank_moe(len(grid), eps_q)
