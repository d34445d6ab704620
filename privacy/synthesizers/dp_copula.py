"""`dp-copula`: DP one-way marginals joined by a DP Gaussian copula.

Every column is first encoded on the public schema's domain (`DomainEncoder`:
declared categories, integer values or equal-width bins of the declared
bounds with a code of its own for each declared special value, and a null code
for nullable columns), so the domain never comes from the data. Then, with the budget split by the option `marginal_share`
(default 1/2):

1. Marginals: one noisy histogram per column (Gaussian mechanism when
   delta > 0, Laplace when delta = 0), L2/L1 sensitivity 1 per column under
   add/remove of one row; the columns share the marginal budget equally.
2. Normal scores: each code is replaced by the mean of a standard normal over
   the code's interval of the DP marginal's CDF (public once the marginal is
   released). Nominal categories are ordered by their DP frequency; numbers,
   ordinals and dates keep their order; the null code is the last.
3. Correlation: the sums of products of scores over rows, for every pair of
   columns, measured once with noise. Each row's score vector is clipped to L2
   norm C = sqrt(2d + 8), so one row moves the d(d-1)/2 pair sums by at most
   C^2 / sqrt(2) in L2 norm (Gaussian) and (d-1) C^2 / 2 in L1 norm (Laplace).
   The latent correlation is estimated as sum / (n_hat * v_j * v_k), where v
   is the variance of the scores under the DP marginal (the first Hermite
   term of the attenuation the discretisation causes) and n_hat the mean of
   the noisy marginal totals; the matrix is then projected onto the nearest
   valid correlation matrix.
4. Sampling: Z ~ N(0, R), U = Phi(Z), each column's code is the DP
   marginal's quantile of U; numbers are drawn uniformly within their bin, and
   special values come back exactly.

Accounting: with delta > 0 the whole run is rho-zCDP, rho being the largest
that converts to the requested (epsilon, delta); the marginals get
`marginal_share * rho` and the correlation the rest. With delta = 0 it is pure
epsilon-DP (and so epsilon^2/2-zCDP), split the same way in epsilon.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd

from privacy.accounting import gaussian_sigma
from privacy.bounds import BOUNDS_OPTION_HELP, OpenBoundsSupport
from privacy.budget import PrivacyCost, to_fraction
from privacy.encoding import DomainEncoder
from privacy.errors import MethodOptionError
from privacy.schema import PublicSchema
from privacy.synthesizers.base import ProgressCallback, Synthesizer

__all__ = ["DPCopulaSynthesizer", "interval_normal_scores", "nearest_correlation"]


def interval_normal_scores(probs: np.ndarray) -> np.ndarray:
    """E[Z | Z in the k-th interval] for a standard normal Z cut at the quantiles of `probs`."""
    from scipy.stats import norm

    p = np.clip(np.asarray(probs, dtype=float), 0.0, None)
    p = p / p.sum()
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    cdf[-1] = 1.0
    edges = norm.ppf(np.clip(cdf, 0.0, 1.0))
    dens = norm.pdf(edges)  # 0 at +-inf
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (dens[:-1] - dens[1:]) / p
    # an empty interval: its midpoint (it carries no probability either way)
    mid = norm.ppf(np.clip((cdf[:-1] + cdf[1:]) / 2, 1e-12, 1 - 1e-12))
    return np.where(p > 1e-12, scores, mid)


def nearest_correlation(matrix: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Symmetric, positive definite, unit diagonal: eigenvalues floored, then rescaled."""
    m = (matrix + matrix.T) / 2
    vals, vecs = np.linalg.eigh(m)
    fixed = (vecs * np.maximum(vals, floor)) @ vecs.T
    d = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return out


class DPCopulaSynthesizer(OpenBoundsSupport, Synthesizer):
    name = "dp-copula"
    description = (
        "DP one-way marginals plus a DP correlation matrix of normal scores, sampled through a Gaussian copula "
        "(keeps each column's distribution and the monotone pairwise relationships)."
    )
    guarantee = "dp"
    zcdp = True
    row_count_use = (
        "the exact number of rows is not used: the correlation is scaled by the mean of the noisy marginal totals"
    )
    option_spec = {
        "bins": (
            int,
            32,
            "equal-width bins for continuous and datetime columns without `bins` in the schema",
            (2, 10_000),
        ),
        "marginal_share": (float, 0.5, "share of the budget spent on the marginals (the rest on correlations)"),
        "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
    }

    def __init__(self, *, seed: int | None = None, options: dict | None = None) -> None:
        super().__init__(seed=seed, options=options)
        share = self.options["marginal_share"]
        if not 0 < share < 1:
            raise MethodOptionError("marginal_share must lie strictly between 0 and 1", field="options")
        if self.options["bins"] < 2:
            raise MethodOptionError("bins must be at least 2", field="options")

    @classmethod
    def planned_cost(cls, requested: PrivacyCost) -> PrivacyCost:
        if requested.delta > 0:
            return super().planned_cost(requested)
        # pure epsilon-DP implies (epsilon^2 / 2)-zCDP (Bun & Steinke 2016, Prop. 1.4)
        return PrivacyCost(requested.epsilon, Fraction(0), requested.finite_epsilon**2 / 2)

    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost:
        from scipy.stats import norm  # noqa: F401 - loaded once here rather than per column

        rng = np.random.default_rng(self.seed)
        schema, _bounds_cost, budget = self._fill_bounds(table, schema, requested, progress)
        self._encoder = DomainEncoder(schema, default_bins=self.options["bins"])
        codes = self._encoder.encode(table)
        _n, d = codes.shape
        share = to_fraction(self.options["marginal_share"], "marginal_share") if d > 1 else Fraction(1)
        gaussian = budget.rho is not None
        if gaussian:
            assert budget.rho is not None
            rho_marg = budget.rho * share
            rho_corr = budget.rho - rho_marg
            marg_sigma = gaussian_sigma(rho_marg / d)
            marg_noise_scale = marg_sigma
            marg_noise = lambda size: rng.normal(0.0, marg_sigma, size)  # noqa: E731
        else:
            eps_marg = budget.epsilon * share
            eps_corr = budget.epsilon - eps_marg
            marg_scale = d / float(eps_marg)
            marg_noise_scale = marg_scale * math.sqrt(2.0)  # the Laplace standard deviation
            marg_noise = lambda size: rng.laplace(0.0, marg_scale, size)  # noqa: E731

        # 1. marginals
        self._probs: list[np.ndarray] = []
        score_probs: list[np.ndarray] = []
        totals = []
        for j, enc in enumerate(self._encoder.encodings):
            counts = np.bincount(codes[:, j], minlength=enc.size).astype(float)
            noisy = counts + marg_noise(enc.size)
            totals.append(noisy.sum())
            clipped = np.clip(noisy, 0.0, None)
            total = clipped.sum()
            self._probs.append(clipped / total if total > 0 else np.full(enc.size, 1.0 / enc.size))
            # for the scores, drop cells below twice the noise scale: noise on empty cells would otherwise
            # put phantom mass in the tails and shrink the real rows' scores (and the correlations)
            kept = np.where(noisy > 2.0 * marg_noise_scale, noisy, 0.0)
            score_probs.append(kept / kept.sum() if kept.sum() > 0 else self._probs[-1])
            progress(0.5 * (j + 1) / d, f"measured the marginal of {enc.name}")
        n_hat = max(float(np.mean(totals)), 1.0)

        # 2. orders and normal scores (post-processing of the DP marginals)
        self._orders: list[np.ndarray] = []
        self._cdfs: list[np.ndarray] = []
        score_of_code: list[np.ndarray] = []
        variances = np.empty(d)
        for j, enc in enumerate(self._encoder.encodings):
            p = self._probs[j]
            if enc.mode == "category" and enc.spec.kind == "categorical":
                order = np.argsort(-p, kind="stable")
            else:
                order = np.arange(enc.size)
            q = score_probs[j][order]
            scores = interval_normal_scores(q)
            by_code = np.empty(enc.size)
            by_code[order] = scores
            score_of_code.append(by_code)
            variances[j] = float(np.sum(q * scores**2))
            self._orders.append(order)
            cdf = np.cumsum(p[order])
            cdf[-1] = 1.0
            self._cdfs.append(cdf)

        # 3. correlation of the normal scores
        corr = np.eye(d)
        if d > 1:
            clip_sq = 2.0 * d + 8.0
            s = np.column_stack([score_of_code[j][codes[:, j]] for j in range(d)])
            norms = np.sqrt(np.sum(s * s, axis=1))
            s *= np.minimum(1.0, math.sqrt(clip_sq) / np.maximum(norms, 1e-12))[:, None]
            progress(0.6, "measuring correlations")
            iu = np.triu_indices(d, k=1)
            sums = (s.T @ s)[iu]
            if gaussian:
                sigma = (clip_sq / math.sqrt(2.0)) / math.sqrt(2.0 * float(rho_corr))
                sums = sums + rng.normal(0.0, sigma, sums.size)
            else:
                scale = (d - 1) * clip_sq / 2.0 / float(eps_corr)
                sums = sums + rng.laplace(0.0, scale, sums.size)
            vv = np.maximum(variances, 1e-3)
            est = sums / (n_hat * vv[iu[0]] * vv[iu[1]])
            corr[iu] = np.clip(est, -0.99, 0.99)
            corr[(iu[1], iu[0])] = corr[iu]
            # a column with (almost) a single value carries no correlation
            flat = variances < 1e-3
            corr[flat, :] = 0.0
            corr[:, flat] = 0.0
            np.fill_diagonal(corr, 1.0)
            corr = nearest_correlation(corr)
        self._corr = corr
        self._chol = np.linalg.cholesky(corr)
        progress(1.0, "copula fitted")
        return self.planned_cost(requested)

    @property
    def correlation(self) -> np.ndarray:
        """The DP latent correlation matrix (public: post-processing of DP measurements)."""
        return self._corr.copy()

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        from scipy.stats import norm

        rng = np.random.default_rng(self.derived_seed("sample"))
        d = len(self._probs)
        z = rng.standard_normal((n, d)) @ self._chol.T
        u = norm.cdf(z)
        codes = np.empty((n, d), dtype=np.int64)
        for j in range(d):
            rank = np.minimum(np.searchsorted(self._cdfs[j], u[:, j], side="right"), len(self._cdfs[j]) - 1)
            codes[:, j] = self._orders[j][rank]
        progress(1.0, "sampled")
        return self._encoder.decode(codes, rng)
