"""`dp-marginals`: independent DP histograms of every column.

The baseline every DP method must beat: it keeps each column's distribution
and none of the relationships between columns. Each one-way histogram is
measured with the Gaussian mechanism (zCDP, when delta > 0) or the Laplace
mechanism (pure DP, delta = 0); the budget is split equally over columns.
With `adaptive_bins_share` (zCDP only), that share of rho first places the bins
of the numeric columns (`privacy.bin_placement`) and the rest is split over the
columns.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from privacy.accounting import gaussian_sigma
from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import MethodOptionError
from privacy.schema import PublicSchema
from privacy.synthesizers.base import ProgressCallback, Synthesizer


class DPMarginalsSynthesizer(Synthesizer):
    name = "dp-marginals"
    description = "Independent DP histogram of each column (baseline: keeps no relationships between columns)."
    guarantee = "dp"
    zcdp = True
    row_count_use = "the exact number of rows is not used: each noisy histogram is normalised to probabilities"
    option_spec = {
        "bins": (
            int,
            32,
            "equal-width bins for continuous and datetime columns without `bins` in the schema",
            (2, 10_000),
        ),
        "adaptive_bins_share": (
            float,
            0.0,
            "share of rho spent placing the bins of numeric columns at DP quantiles (0: equal-width bins; "
            "needs delta > 0)",
            (0.0, 0.5),
        ),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        if self.options["adaptive_bins_share"] > 0 and requested.delta <= 0:
            raise MethodOptionError(
                "adaptive_bins_share of dp-marginals needs a delta > 0 (the bins are placed with the Gaussian "
                "mechanism); set delta or leave the share at 0",
                field="options",
            )

    @classmethod
    def planned_cost(cls, requested: PrivacyCost) -> PrivacyCost:
        if requested.delta > 0:
            return super().planned_cost(requested)
        # pure epsilon-DP implies (epsilon^2 / 2)-zCDP (Bun & Steinke 2016, Prop. 1.4)
        return PrivacyCost(requested.epsilon, Fraction(0), requested.finite_epsilon**2 / 2)

    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost:
        rng = np.random.default_rng(self.seed)
        self._encoder = DomainEncoder(schema, default_bins=self.options["bins"])
        cost = self.planned_cost(requested)
        rho = cost.rho
        share = Fraction(str(self.options["adaptive_bins_share"]))
        self._bin_placement = None
        if share > 0:
            from privacy.bin_placement import place_bin_edges
            from privacy.engine.accounting import ZCDPLedger

            assert rho is not None
            ledger = ZCDPLedger(rho)
            progress(0.0, "placing bins")
            self._bin_placement = place_bin_edges(
                table, self._encoder, ledger, rho * share, np.random.default_rng(self.derived_seed("bins"))
            )
            self._encoder = DomainEncoder(schema, default_bins=self.options["bins"], edges=self._bin_placement.edges)
            rho = ledger.remaining
        codes = self._encoder.encode(table)
        d = codes.shape[1]
        self._probs: list[np.ndarray] = []
        if requested.delta > 0:
            # Gaussian mechanism: each histogram has L2 sensitivity 1 (add/remove one row)
            assert rho is not None
            sigma = gaussian_sigma(rho / d)
            noise = lambda size: rng.normal(0.0, sigma, size)  # noqa: E731
        else:
            # Laplace: L1 sensitivity 1 per histogram, epsilon split over columns
            scale = d / float(requested.epsilon)
            noise = lambda size: rng.laplace(0.0, scale, size)  # noqa: E731
        for j, enc in enumerate(self._encoder.encodings):
            counts = np.bincount(codes[:, j], minlength=enc.size).astype(float)
            noisy = np.clip(counts + noise(enc.size), 0.0, None)
            total = noisy.sum()
            self._probs.append(noisy / total if total > 0 else np.full(enc.size, 1.0 / enc.size))
            progress((j + 1) / d, f"measured {enc.name}")
        return cost

    def fit_info(self) -> dict:
        info = super().fit_info()
        placement = getattr(self, "_bin_placement", None)
        if placement is not None:
            info["bin_placement"] = {"share": self.options["adaptive_bins_share"], **placement.to_dict()}
        return info

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        rng = np.random.default_rng(self.derived_seed("sample"))
        codes = np.empty((n, len(self._probs)), dtype=np.int64)
        for j, p in enumerate(self._probs):
            codes[:, j] = rng.choice(len(p), size=n, p=p)
        progress(1.0, "sampled")
        return self._encoder.decode(codes, rng)
