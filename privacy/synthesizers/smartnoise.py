"""DP synthesizers from smartnoise-synth 1.0.8, fed only with the public schema.

smartnoise infers column types, category sets and (with `preprocessor_eps`)
bounds from the data. Here every column is encoded before smartnoise sees it,
with transformers built from the public schema:

* marginal methods (`mst-smartnoise`, `aim-smartnoise`, `mwem`, `pacsynth`)
  get the `DomainEncoder` codes (declared categories, integers or equal-width
  bins of the declared bounds, a code per declared special value, a null code)
  through a transformer whose cardinalities are the declared domain sizes;
* GANs (`dpctgan`, `patectgan`) get declared categories one-hot and numbers and
  dates scaled from their declared bounds to [-1, 1], with a null flag for
  nullable columns (declared special values are not modelled apart: a GAN's
  numbers are continuous and land on one only by chance).

The transformers are complete before `fit`, so smartnoise's `preprocessor_eps`
is 0 and nothing is learned from the data outside the mechanism. A bound the
schema leaves open is learned first with the option `bounds_epsilon`
(privacy/bounds.py), out of the requested budget.

Corrections to smartnoise 1.0.8, each found by reading its code:

* MST and AIM run at the rho our accountant derives from (epsilon, delta)
  (`zcdp_rho`, never above smartnoise's own `cdp_rho`), and report it. MST's
  estimation uses the mean of its noisy one-way totals instead of the exact
  row count, and its domain compression scales the merged cell's query like
  its measurement (smartnoise's port to mbi 1.x scales only the measurement,
  which shrinks the mass of rare categories; an accuracy defect, not a
  privacy one).
* MWEM takes its histogram sizes from the schema, not from the minimum and
  maximum code present in the data, its number of iterations and marginal
  width from options instead of the row count, and splits the columns into
  groups whose histograms stay below `max_cells` (measured on the schema
  before fitting; a column too large on its own is refused).
* DPCTGAN and PATECTGAN sample conditional vectors from the exact category
  frequencies of the data and, at generation time, from real rows; that is
  not private. Here the conditional vector is switched off: real rows are
  drawn uniformly, and the generator sees noise only.
* DPCTGAN stops only after an epoch has overrun its epsilon; here the number
  of epochs is fixed beforehand to the largest whose opacus RDP accounting
  stays within the request.
* PATECTGAN in 1.0.8 uses one discriminator object for every teacher and the
  student, so no vote is private, and a data-dependent moments bound. Here the
  PATE-GAN training loop is rebuilt on smartnoise's networks: distinct teacher
  discriminators on disjoint random partitions of the rows, a separate
  student, and the data-independent moments bound of the noisy vote
  (2 * gamma^2 * l * (l + 1) per query, gamma = `noise_multiplier`), from
  which the number of iterations is fixed before training.

The number of rows is not public. Where a method's parameters follow it, a
share of the method's own epsilon (`ROW_COUNT_SHARE` of each class, part of the
request, never extra) buys a row count with the two-sided geometric mechanism
(`dp_row_count`), and every such parameter follows the noisy count, never the
exact one:

* MWEM: the total of its synthetic histograms (smartnoise starts them at the
  exact row count, which sets the multiplicative-weights step);
* DPCTGAN: the batch size (capped at half the rows), the steps of an epoch and
  the sampling rate of the DP-SGD accountant. These come from a lower bound of
  the count that exceeds the true count with probability at most half the
  request's delta (`ROW_COUNT_FAILURE_SHARE`); that probability is part of the
  delta, and the rate is batch / (lower bound - 1), which over-states the rate
  of the table and of its neighbour with one row fewer, the safe direction.
  smartnoise's training loop is given a placeholder table of that many rows,
  built from the schema, so it never sees the exact count; the batches are
  drawn from the real rows;
* PATECTGAN: the number of teachers and the batch size.

MST and AIM estimate their totals from their noisy marginals, and PAC-Synth's
noise scales follow (epsilon, delta) and a DP percentile alone, so they spend
nothing on a count. No progress message or fraction carries a value that
follows from the rows (privacy/synthesizers/_progress.py).

What the guarantee does not cover: DPCTGAN's accounting is opacus's RDP
analysis of the subsampled Gaussian, applied to batches drawn uniformly with
replacement, the usual approximation of Poisson sampling. Its DP-SGD noise
comes from a torch generator opacus seeds from os.urandom (not a cryptographic
sampler, but not predictable either), so DPCTGAN is not reproducible with a
seed. smartnoise draws MST's, AIM's, MWEM's and PAC-Synth's noise from OpenDP's
sampler, which takes no seed either (MWEM's selections and query pool are drawn
from the job's seed, its Laplace measurements are not). PATECTGAN, whose loop is ours, is
reproducible with a seed on the same machine.

Layout: this module holds the shared bases (the DP row count is taken in
`_SmartnoiseBase._count_rows`), MST and AIM, and assembles the registered
MWEM, PAC-Synth and GAN classes from their parts in
privacy/synthesizers/_smartnoise_marginal.py and _smartnoise_gan.py; the
schema transformers are in _smartnoise_codecs.py, and the log routing and the
row-count mechanism in _smartnoise_support.py.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from privacy.bounds import BOUNDS_OPTION_HELP, MethodBudget, OpenBoundsSupport
from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import MethodOptionError
from privacy.schema import PublicSchema
from privacy.synthesizers._progress import Milestones
from privacy.synthesizers._smartnoise_codecs import _codes_transformer, _decode_codes
from privacy.synthesizers._smartnoise_codecs import _GanCodec as _GanCodec
from privacy.synthesizers._smartnoise_gan import (
    _DPCTGANMethod,
    _PATECTGANMethod,
    _seeded,
    dpctgan_max_epochs,
    dpctgan_sample_rate,
    pate_epsilon,
)
from privacy.synthesizers._smartnoise_gan import _opacus_epsilon as _opacus_epsilon
from privacy.synthesizers._smartnoise_marginal import (
    _MWEMMethod,
    _noisy_total_mst_class,
    _PACSynthMethod,
    mwem_splits,
)
from privacy.synthesizers._smartnoise_support import (
    _GAN_LOCK,
    DPRowCount,
    _import_snsynth,
    _quiet,
    dp_row_count,
)
from privacy.synthesizers.base import ProgressCallback, Synthesizer

__all__ = [
    "DPRowCount",
    "SmartnoiseAIMSynthesizer",
    "SmartnoiseDPCTGANSynthesizer",
    "SmartnoiseMSTSynthesizer",
    "SmartnoiseMWEMSynthesizer",
    "SmartnoisePACSynthSynthesizer",
    "SmartnoisePATECTGANSynthesizer",
    "dp_row_count",
    "dpctgan_max_epochs",
    "dpctgan_sample_rate",
    "mwem_splits",
    "pate_epsilon",
]


# ----------------------------------------------------------------------------------
# base
# ----------------------------------------------------------------------------------


class _SmartnoiseBase(OpenBoundsSupport, Synthesizer):
    guarantee = "dp"
    reproducible = False
    # ROW_COUNT_SHARE of epsilon is spent on a DP row count (ROW_COUNT_FAILURE_SHARE of delta bounds the
    # chance its lower bound exceeds the true count); see Synthesizer
    row_count_use = "the exact number of rows is not used: totals are estimated from the noisy measurements"

    def _count_rows(self, table: pd.DataFrame, budget: MethodBudget) -> tuple[DPRowCount, MethodBudget]:
        """Spend `ROW_COUNT_SHARE` of the method's epsilon on the row count; return it and what is left.

        The count is epsilon_c-DP. The rest runs at epsilon - epsilon_c; with a
        failure share beta of delta, the rest gets (delta - beta) * exp(-epsilon_c),
        so that count, failure and the rest compose to (epsilon, delta).
        """
        eps_c = budget.epsilon * self.ROW_COUNT_SHARE
        beta = budget.delta * self.ROW_COUNT_FAILURE_SHARE
        rng = np.random.default_rng(self.derived_seed("row count"))
        count = dp_row_count(len(table), float(eps_c), float(beta) if beta > 0 else 0.5, rng)
        rest_delta = budget.delta
        if beta > 0:  # rounded down, a little below the float product
            rest_delta = Fraction(float(budget.delta - beta) * math.exp(-float(eps_c)) * (1 - 1e-9))
        self.row_count = count
        return count, MethodBudget(budget.epsilon - eps_c, rest_delta, None)

    def _fit(
        self, table: pd.DataFrame, schema: PublicSchema, requested: PrivacyCost, progress: ProgressCallback
    ) -> PrivacyCost:
        _import_snsynth()
        schema, _bounds_cost, budget = self._fill_bounds(table, schema, requested, progress)
        self._fit_method(table, schema, budget, progress)
        progress(1.0, "fitted")
        return self.planned_cost(requested)

    def _fit_method(
        self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback
    ) -> None:
        raise NotImplementedError


class _CubeBase(_SmartnoiseBase):
    """Methods on integer codes of the declared domain."""

    default_bins = 32
    _model: Any  # the fitted smartnoise model
    _enc: Any  # the fitted domain encoder

    def _encoder(self, schema: PublicSchema) -> DomainEncoder:
        return DomainEncoder(schema, default_bins=self.options.get("bins") or self.default_bins)

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        rng = np.random.default_rng(self.derived_seed("sample"))
        with _quiet():
            raw = self._model.sample(n)
        if not isinstance(raw, pd.DataFrame):
            raw = pd.DataFrame(list(raw))
        progress(1.0, "sampled")
        return _decode_codes(self._enc, raw.reset_index(drop=True), rng)


class SmartnoiseMSTSynthesizer(_CubeBase):
    name = "mst-smartnoise"
    description = (
        "MST (maximum spanning tree of two-way marginals, Private-PGM) through smartnoise-synth; zCDP. "
        "Numbers are binned on their declared bounds."
    )
    zcdp = True
    needs_delta = True
    option_spec = {
        "bins": (
            int,
            32,
            "equal-width bins for continuous and datetime columns without `bins` in the schema",
            (2, 10_000),
        ),
        "iters": (int, 5000, "mirror-descent iterations of the final estimation (post-processing)", (1, 20_000)),
        "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        if self.options["iters"] is None or self.options["iters"] < 1:
            raise MethodOptionError("option iters of mst-smartnoise must be a positive integer", field="options")

    def _fit_method(
        self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback
    ) -> None:
        assert budget.rho is not None
        self._enc = self._encoder(schema)
        codes = pd.DataFrame(self._enc.encode(table).astype(np.int64), columns=self._enc.columns)
        cls = _noisy_total_mst_class()
        model = cls(epsilon=float(budget.epsilon), delta=float(budget.delta))
        model.fixed_rho = float(budget.rho)
        model.estimation_iters = int(self.options["iters"])
        model.progress = progress
        progress(0.05, "measuring")
        with _quiet():
            model.fit(codes, transformer=_codes_transformer(self._enc), preprocessor_eps=0.0)
        self._model = model


class SmartnoiseAIMSynthesizer(_CubeBase):
    """AIM; `rounds` must exceed the number of columns.

    smartnoise's AIM measures every one-way marginal at the per-round noise
    scale, which costs columns x 0.9 rho / rounds: with fewer rounds than
    columns that alone is more than the whole budget. Such requests are refused.
    """

    name = "aim-smartnoise"
    description = (
        "AIM (adaptive and iterative selection of marginals, Private-PGM) through smartnoise-synth; zCDP. "
        "Slow on wide tables: limit `rounds` for a quicker fit."
    )
    zcdp = True
    needs_delta = True
    option_spec = {
        "bins": (
            int,
            32,
            "equal-width bins for continuous and datetime columns without `bins` in the schema",
            (2, 10_000),
        ),
        "rounds": (int, None, "number of selection rounds (default 16 x columns, as in AIM)", (1, 10_000)),
        "max_model_size": (int, 80, "largest model (MB) AIM may grow", (1, 1024)),
        "degree": (int, 2, "width of the workload marginals", (2, 3)),
        "max_cells": (int, 10000, "workload marginals larger than this are skipped", (1, 1_000_000)),
        "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        d = len(schema.synthesized_columns)
        rounds, degree = self.options["rounds"], self.options["degree"]
        if rounds is not None and rounds <= d:
            raise MethodOptionError(
                f"aim-smartnoise: rounds ({rounds}) must be more than the number of columns ({d}); its one-way "
                "measurements alone would otherwise spend more than the budget",
                field="options",
            )
        if degree is None or not 1 <= degree <= d:
            raise MethodOptionError(
                f"aim-smartnoise: degree must lie between 1 and the number of columns ({d})", field="options"
            )
        for key in ("max_model_size", "max_cells"):
            if self.options[key] is None or self.options[key] < 1:
                raise MethodOptionError(f"aim-smartnoise: {key} must be a positive integer", field="options")

    def _fit_method(
        self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback
    ) -> None:
        assert budget.rho is not None
        from snsynth.aim import AIMSynthesizer

        rho = float(budget.rho)

        class FixedRhoAIM(AIMSynthesizer):
            rounds_done = 0

            def AIM(self, data: Any, workload: Any) -> None:
                self.rho = rho  # the rho our accountant charges, not smartnoise's cdp_rho
                self.expected_rounds = self.rounds or 16 * len(data.domain)
                super().AIM(data, workload)

            def _worst_approximated(self, *args: Any, **kwargs: Any) -> Any:
                self.rounds_done += 1
                # how many rounds AIM runs depends on the data: the requester sees fixed milestones only
                milestones(min(self.rounds_done / self.expected_rounds, 1.0))
                return super()._worst_approximated(*args, **kwargs)

        self._enc = self._encoder(schema)
        codes = pd.DataFrame(self._enc.encode(table).astype(np.int64), columns=self._enc.columns)
        model = FixedRhoAIM(
            epsilon=float(budget.epsilon),
            delta=float(budget.delta),
            rounds=self.options["rounds"],
            max_model_size=self.options["max_model_size"],
            degree=self.options["degree"],
            max_cells=self.options["max_cells"],
        )
        progress(0.05, "running AIM rounds")
        milestones = Milestones(progress, "running AIM rounds")
        with _quiet():
            model.fit(codes, transformer=_codes_transformer(self._enc), preprocessor_eps=0.0)
        milestones.finish()
        self._model = model


class SmartnoiseMWEMSynthesizer(_MWEMMethod, _CubeBase):
    """MWEM through smartnoise-synth (privacy/synthesizers/_smartnoise_marginal.py)."""


class SmartnoisePACSynthSynthesizer(_PACSynthMethod, _CubeBase):
    """PAC-Synth through smartnoise-synth (privacy/synthesizers/_smartnoise_marginal.py)."""


class _GanBase(_SmartnoiseBase):
    _codec: Any  # the fitted table codec
    heavy = True
    needs_delta = True
    zcdp = False
    reproducible = True

    def _gan_batch(self, n: int) -> int:
        batch = min(int(self.options["batch_size"]), max(2, (n // 2) // 2 * 2))
        return max(2, batch - batch % 2)

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        with _GAN_LOCK, _seeded(self.derived_seed("sample")), _quiet():
            raw = self._generate(n)
        if not isinstance(raw, pd.DataFrame):
            raw = pd.DataFrame(list(raw))
        progress(1.0, "sampled")
        return self._codec.decode(raw.reset_index(drop=True))

    def _generate(self, n: int) -> Any:
        raise NotImplementedError


class SmartnoiseDPCTGANSynthesizer(_DPCTGANMethod, _GanBase):
    """DP-CTGAN through smartnoise-synth (privacy/synthesizers/_smartnoise_gan.py)."""


class SmartnoisePATECTGANSynthesizer(_PATECTGANMethod, _GanBase):
    """PATE-CTGAN on smartnoise-synth's networks (privacy/synthesizers/_smartnoise_gan.py)."""
