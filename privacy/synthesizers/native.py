"""`mst` and `aim` on the native marginal engine (numpy and scipy only; `privacy.engine`).

Both are zCDP: a request (epsilon, delta) runs at rho = zcdp_rho(epsilon, delta),
split between selections and measurements as `privacy.engine.accounting`
documents, and the fit reports exactly (epsilon, delta, rho). The domain comes
from the public schema alone (`DomainEncoder`): declared categories, bins
between declared bounds, a code for each declared special value (released
exactly), nulls as their own code; with `adaptive_bins_share` > 0 that share
of rho first places the bins of the numeric columns (`privacy.bin_placement`,
charged to the same ledger) and the method runs on the rest, so the whole
fit still spends exactly rho. Nothing about the data is
learned except through the charged measurements and selections; the number of
records the model stands for is itself estimated from the noisy measurements,
so neither method uses the exact row count. The engine's progress (AIM's
adaptive rounds, the estimation's early stop) depends on the data; the
requester sees fixed milestones instead (privacy/synthesizers/_progress.py).
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import DomainTooLarge, MethodOptionError
from privacy.schema import PublicSchema
from privacy.synthesizers._progress import Milestones
from privacy.synthesizers.base import ProgressCallback, Synthesizer

__all__ = ["MAX_MARGINAL_CELLS", "NativeAIMSynthesizer", "NativeMSTSynthesizer"]

# Largest share of a fit's rho that may go to placing bins (`adaptive_bins_share`).
MAX_ADAPTIVE_BINS_SHARE = 0.5

# Largest marginal table the engine will count (float64 cells): 2^22 cells = 32 MB.
MAX_MARGINAL_CELLS = 2**22
_MB_CELLS = 2**20 // 8


def _describe_sizes(encoder: DomainEncoder, names: list[str]) -> str:
    sizes = dict(zip(encoder.columns, encoder.sizes, strict=True))
    return ", ".join(f"'{n}' ({sizes[n]} codes)" for n in names)


class _NativeMarginalSynthesizer(Synthesizer):
    guarantee = "dp"
    zcdp = True
    needs_delta = True
    # what the requester sees while the engine runs, and the engine's fixed messages passed on as they are
    progress_message: str = "fitting the model"
    public_messages: frozenset[str] = frozenset()
    row_count_use = "the exact number of rows is not used: the total is estimated from the noisy marginals"
    takes_categories = True  # the encoder keys a categorical's categories once (privacy/encoding.py)

    def _encoder(self, schema: PublicSchema, edges: dict[str, tuple[float, ...]] | None = None) -> DomainEncoder:
        return DomainEncoder(schema, default_bins=self.options["bins"], edges=edges)

    def _check_options(self) -> None:
        if self.options["bins"] < 1:
            raise MethodOptionError(f"bins of {self.name} must be at least 1", field="options")
        share = self.options["adaptive_bins_share"]
        if not (0 <= share <= MAX_ADAPTIVE_BINS_SHARE):
            raise MethodOptionError(
                f"adaptive_bins_share of {self.name} must be between 0 and {MAX_ADAPTIVE_BINS_SHARE}", field="options"
            )

    def _check_one_way(self, encoder: DomainEncoder) -> None:
        too_big = [n for n, s in zip(encoder.columns, encoder.sizes, strict=True) if s > MAX_MARGINAL_CELLS]
        if too_big:
            raise DomainTooLarge(
                f"{self.name}: the domain of {_describe_sizes(encoder, too_big)} is larger than "
                f"{MAX_MARGINAL_CELLS} codes; coarsen it (fewer declared values, or `bins`)",
                field="schema",
            )

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        self._check_options()
        self._check_domain(self._encoder(schema))

    def _check_domain(self, encoder: DomainEncoder) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost:
        from privacy.bin_placement import place_bin_edges
        from privacy.engine.accounting import ZCDPLedger, request_rho
        from privacy.engine.table import EncodedTable

        seeds = np.random.SeedSequence(self.seed).spawn(3)
        rho = request_rho(requested)
        ledger = ZCDPLedger(rho)
        encoder = self._encoder(schema)
        share = Fraction(str(self.options["adaptive_bins_share"]))
        self._bin_placement = None
        if share > 0:
            progress(0.0, "placing bins")
            self._bin_placement = place_bin_edges(table, encoder, ledger, rho * share, np.random.default_rng(seeds[2]))
            encoder = self._encoder(schema, self._bin_placement.edges)
        progress(0.0, "encoding the table on the public domain")
        table_codes = EncodedTable(encoder.encode(table), encoder.sizes)
        milestones = Milestones(progress, self.progress_message, 0.0, 1.0, absolute=True, public=self.public_messages)
        result = self._run(table_codes, ledger.remaining, np.random.default_rng(seeds[0]), milestones)
        milestones.finish()
        # the bin placement's steps, then the method's: one ledger for the whole fit
        ledger = ZCDPLedger(rho, ledger.steps + result.ledger.steps)
        result = replace(result, ledger=ledger)
        cost = ledger.cost(requested)
        planned = self.planned_cost(requested)
        if cost != planned:  # pragma: no cover - the engine spends exactly the planned rho
            raise AssertionError(f"{self.name}: cost {cost} differs from the planned {planned}")
        self._encoder_fitted = encoder
        self._result = result
        self._sample_rng = np.random.default_rng(seeds[1])
        progress(1.0, "fitted")
        return cost

    def _run(self, table: Any, rho: Any, rng: np.random.Generator, progress: ProgressCallback) -> Any:
        raise NotImplementedError  # pragma: no cover

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        codes = self._result.sample_codes(n, self._sample_rng)
        progress(0.8, "sampled codes")
        out = self._encoder_fitted.decode(codes, self._sample_rng)
        progress(1.0, "decoded")
        return out

    # ----- what the fit did, for reports and the privacy statement -------------------------
    def privacy_steps(self) -> list[dict[str, Any]]:
        """Every selection and measurement with its rho (as the ledger recorded them)."""
        if getattr(self, "_result", None) is None:
            return []
        return [s.to_dict() for s in self._result.ledger.steps]

    def bin_placement(self) -> dict[str, Any] | None:
        """How the bins were placed (share, rho, mechanism, columns), or None for equal-width bins."""
        placement = getattr(self, "_bin_placement", None)
        if placement is None:
            return None
        return {"share": self.options["adaptive_bins_share"], **placement.to_dict()}

    def fit_info(self) -> dict[str, Any]:
        info = super().fit_info()
        placement = self.bin_placement()
        if placement is not None:
            info["bin_placement"] = placement
        return info

    def selected_marginals(self) -> list[list[str]]:
        """The marginals the method chose to measure (a DP output), by column name."""
        if getattr(self, "_result", None) is None:
            return []
        names = self._encoder_fitted.columns
        return [[names[a] for a in c] for c in self._result.selected]


class NativeMSTSynthesizer(_NativeMarginalSynthesizer):
    name = "mst"
    description = (
        "MST (McKenna et al. 2021) on the native engine: DP one-way marginals, a maximum spanning "
        "tree of two-way marginals picked by the exponential mechanism, a tree graphical model."
    )
    progress_message = "fitting MST"
    public_messages = frozenset(
        {
            "measured one-way marginals",
            "selected the tree",
            "measured the tree's two-way marginals",
            "estimated the model",
        }
    )
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
            "share of rho spent placing the bins of numeric columns at DP quantiles (0: equal-width bins)",
            (0.0, MAX_ADAPTIVE_BINS_SHARE),
        ),
        "iters": (int, 1000, "mirror-descent iterations of the final estimation", (0, 20_000)),
        "compress": (bool, True, "merge codes measured below 3 sigma into one (as MST does)"),
    }

    def _check_options(self) -> None:
        super()._check_options()
        if self.options["iters"] < 0:
            raise MethodOptionError("iters of mst must be >= 0", field="options")

    def _check_domain(self, encoder: DomainEncoder) -> None:
        """Refuse schemas whose two-way marginals would not fit in memory, naming what to coarsen."""
        self._check_one_way(encoder)
        pairs = sorted(zip(encoder.sizes, encoder.columns, strict=True), reverse=True)
        if len(pairs) < 2:
            return
        s1, s2 = pairs[0][0], pairs[1][0]
        if s1 * s2 <= MAX_MARGINAL_CELLS:
            return
        # every column that is part of a pair over the limit, largest first
        culprits = [
            n
            for i, (s, n) in enumerate(pairs)
            if s * max(o for j, (o, _) in enumerate(pairs) if j != i) > MAX_MARGINAL_CELLS
        ]
        raise DomainTooLarge(
            f"mst: the two-way marginals of {_describe_sizes(encoder, culprits)} would have up to "
            f"{s1 * s2:,} cells (limit {MAX_MARGINAL_CELLS:,}); coarsen these columns (declare fewer "
            f"values, a `bins` in the schema, or a smaller `bins` option)",
            field="schema",
        )

    def _run(self, table: Any, rho: Any, rng: np.random.Generator, progress: ProgressCallback) -> Any:
        from privacy.engine.mst import fit_mst

        return fit_mst(
            table, rho, rng, iters=self.options["iters"], compress=self.options["compress"], progress=progress
        )


class NativeAIMSynthesizer(_NativeMarginalSynthesizer):
    name = "aim"
    description = (
        "AIM (McKenna et al. 2022) on the native engine: adaptive rounds that measure the workload "
        "marginals the model answers worst, under a model-size limit. The first one-way measurements "
        "are shrunk towards uniform before estimation (James-Stein; `shrink_one_way`), which matters on "
        "small tables where the noise swamps the counts. The estimation has a work budget (`max_work`, "
        "model cells x iterations): when the rounds left would exceed it, the rest of the budget is spent "
        "in fewer, less noisy rounds, decided from the selected marginals alone, so the whole budget is "
        "still spent and large tables finish in bounded time."
    )
    progress_message = "running AIM rounds"
    public_messages = frozenset({"measured one-way marginals", "estimated the model"})
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
            "share of rho spent placing the bins of numeric columns at DP quantiles (0: equal-width bins)",
            (0.0, MAX_ADAPTIVE_BINS_SHARE),
        ),
        "degree": (int, 2, "the workload: every marginal of this many columns (2 or 3)", (2, 3)),
        "max_model_size": (float, 80.0, "largest junction tree, in megabytes of float64 cells", (0.001, 1024)),
        "max_cells": (int, 10000, "workload marginals with more cells are left out", (1, 1_000_000)),
        "max_work": (
            float,
            150.0,
            "work budget of the estimation, in millions of model cells x mirror-descent iterations; when "
            "the rounds left would exceed it, the rest of the privacy budget goes to fewer, larger rounds",
            (1.0, 1_000_000.0),
        ),
        "rounds": (int, None, "rounds the budget is first divided into (default 16 x columns)", (1, 10_000)),
        "round_iters": (int, 100, "mirror-descent iterations after each measurement", (0, 5000)),
        "final_iters": (int, 1000, "mirror-descent iterations of the final estimation", (0, 20_000)),
        "shrink_one_way": (
            bool,
            True,
            "fit the first one-way measurements shrunk towards uniform (James-Stein); false: as published",
        ),
    }

    def _check_options(self) -> None:
        super()._check_options()
        o = self.options
        if o["degree"] not in (2, 3):
            raise MethodOptionError("degree of aim must be 2 or 3", field="options")
        if not (o["max_model_size"] > 0 and math.isfinite(o["max_model_size"])):
            raise MethodOptionError("max_model_size of aim must be a positive number of megabytes", field="options")
        if o["max_cells"] < 1 or o["max_cells"] > MAX_MARGINAL_CELLS:
            raise MethodOptionError(f"max_cells of aim must be between 1 and {MAX_MARGINAL_CELLS}", field="options")
        if o["round_iters"] < 0 or o["final_iters"] < 0:
            raise MethodOptionError("iteration counts of aim must be >= 0", field="options")

    def _check_domain(self, encoder: DomainEncoder) -> None:
        """Refuse schemas whose one-way marginals alone exceed the model size, naming the largest columns."""
        self._check_one_way(encoder)
        rounds = self.options["rounds"]
        d = len(encoder.sizes)
        if rounds is not None and rounds <= d:
            raise MethodOptionError(f"rounds of aim must be more than the number of columns ({d})", field="options")
        limit = self.options["max_model_size"] * _MB_CELLS
        if sum(encoder.sizes) > limit:
            ranked = sorted(zip(encoder.sizes, encoder.columns, strict=True), reverse=True)
            culprits, rest = [], sum(encoder.sizes)
            for s, n in ranked:
                if rest <= limit:
                    break
                culprits.append(n)
                rest -= s - 1
            raise DomainTooLarge(
                f"aim: the one-way marginals alone need {sum(encoder.sizes):,} cells, over the model size "
                f"of {self.options['max_model_size']} MB; coarsen {_describe_sizes(encoder, culprits)} "
                f"or raise max_model_size",
                field="schema",
            )

    def _run(self, table: Any, rho: Any, rng: np.random.Generator, progress: ProgressCallback) -> Any:
        from privacy.engine.aim import fit_aim

        o = self.options
        return fit_aim(
            table,
            rho,
            rng,
            degree=o["degree"],
            max_model_size=o["max_model_size"],
            max_cells=o["max_cells"],
            max_work=o["max_work"],
            rounds=o["rounds"],
            round_iters=o["round_iters"],
            final_iters=o["final_iters"],
            shrink_one_way=o["shrink_one_way"],
            progress=progress,
        )
