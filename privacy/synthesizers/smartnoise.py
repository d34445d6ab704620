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
sampler, which takes no seed either. PATECTGAN, whose loop is ours, is
reproducible with a seed on the same machine.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import warnings
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from privacy._random import seed_global_numpy
from privacy.bounds import BOUNDS_OPTION_HELP, MethodBudget, OpenBoundsSupport
from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import DomainTooLarge, InvalidPrivacyValue, MethodOptionError, MissingDependency
from privacy.schema import PublicSchema
from privacy.synthesizers._progress import Milestones
from privacy.synthesizers.base import OptionSpec, ProgressCallback, Synthesizer

__all__ = [
    "SmartnoiseMSTSynthesizer",
    "SmartnoiseAIMSynthesizer",
    "SmartnoiseMWEMSynthesizer",
    "SmartnoisePACSynthSynthesizer",
    "SmartnoiseDPCTGANSynthesizer",
    "SmartnoisePATECTGANSynthesizer",
    "mwem_splits",
    "dpctgan_max_epochs",
    "dpctgan_sample_rate",
    "pate_epsilon",
    "DPRowCount",
    "dp_row_count",
]

log = logging.getLogger(__name__)

# smartnoise's GAN modules are patched while they run; one at a time per process
_GAN_LOCK = threading.Lock()


class _LogWriter(io.TextIOBase):
    """Sends smartnoise's print() output to the log instead of stdout."""

    def write(self, text: str) -> int:
        text = text.strip()
        if text:
            log.debug("smartnoise: %s", text)
        return len(text)


# warnings of the libraries about their own internals, which a user cannot act on
_LIBRARY_NOISE = (
    "Pandas dataframe inputs are deprecated",  # mbi, called by smartnoise's MST/AIM
    # opacus on fixed-size batches: the caveat is stated in dpctgan's description and this module's docstring
    "The sample rate will be defined from ``batch_size`` and ``sample_size``",
    # DP-SGD noise comes from torch's seeded generator, like every seeded method here (see the docstring)
    "Secure RNG turned off",
    # opacus 0.14 hooks Linear layers with register_backward_hook; per-sample gradients were checked
    # against single-sample backward passes under torch 2.13 (mean loss, as DPCTGAN uses): they agree
    "Using a non-full backward hook when the forward contains multiple autograd Nodes",
)


@contextlib.contextmanager
def _quiet() -> Any:
    """Route smartnoise's prints to the log and drop its internal deprecation noise."""
    with contextlib.redirect_stdout(_LogWriter()), warnings.catch_warnings():
        for message in _LIBRARY_NOISE:
            warnings.filterwarnings("ignore", message=message)
        yield


def _import_snsynth() -> None:
    try:
        import snsynth  # noqa: F401
    except ImportError as exc:  # pragma: no cover - installed with the product
        raise MissingDependency("smartnoise-synth is not installed; pip install smartnoise-synth==1.0.8") from exc


# ----------------------------------------------------------------------------------
# the row count, bought with a share of the method's epsilon
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DPRowCount:
    """A row count released with the two-sided geometric mechanism (epsilon-DP, add/remove one row).

    value: the noisy count (at least 0); lower: a lower bound that exceeds the
    true count with probability at most `failure`.
    """

    value: int
    lower: int
    epsilon: float
    failure: float


def dp_row_count(n: int, epsilon: float, failure: float, rng: np.random.Generator) -> DPRowCount:
    """The number of rows plus two-sided geometric noise, P(k) proportional to exp(-epsilon |k|).

    The lower bound subtracts the smallest k with P(noise > k) = a^(k+1) / (1 + a)
    <= failure (a = exp(-epsilon)), so it overshoots the true count with
    probability at most `failure`.
    """
    if not (epsilon > 0 and math.isfinite(epsilon)) or not 0 < failure < 1:
        raise ValueError(f"row count needs epsilon > 0 and failure in (0, 1), got {epsilon}, {failure}")
    alpha = math.exp(-epsilon)
    # the difference of two geometric variables on {0, 1, ...} is two-sided geometric
    noise = int(rng.geometric(1.0 - alpha)) - int(rng.geometric(1.0 - alpha))
    margin = max(math.ceil(math.log(failure * (1.0 + alpha)) / math.log(alpha)) - 1, 0)
    value = n + noise
    return DPRowCount(max(value, 0), max(value - margin, 0), float(epsilon), float(failure))


# ----------------------------------------------------------------------------------
# transformers built from the schema
# ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _transformer_classes() -> dict[str, type]:
    """Column transformers complete at construction (no fit, no epsilon)."""
    _import_snsynth()
    from snsynth.transform.base import ColumnTransformer
    from snsynth.transform.definitions import ColumnType

    class DeclaredCodes(ColumnTransformer):
        """Integer codes on a declared domain of `size` values (cube-style methods)."""

        def __init__(self, size: int) -> None:
            self.size = int(size)
            super().__init__()

        @property
        def output_type(self) -> Any:
            return ColumnType.CATEGORICAL

        @property
        def cardinality(self) -> list[int]:
            return [self.size]

        def _fit(self, val: Any) -> None:
            return None

        def _clear_fit(self) -> None:
            self._fit_complete = True
            self.output_width = 1

        def _transform(self, val: Any) -> int:
            return int(val)

        def _inverse_transform(self, val: Any) -> Any:
            return None if val is None else int(val)

    class DeclaredOneHot(ColumnTransformer):
        """One-hot over a declared domain of `size` codes (GANs)."""

        def __init__(self, size: int) -> None:
            self.size = int(size)
            super().__init__()

        @property
        def output_type(self) -> Any:
            return ColumnType.CATEGORICAL

        @property
        def cardinality(self) -> list[int]:
            return [2] * self.size

        def _fit(self, val: Any) -> None:
            return None

        def _clear_fit(self) -> None:
            self._fit_complete = True
            self.output_width = self.size

        def _transform(self, val: Any) -> Any:
            if self.size == 1:  # one output: smartnoise expects a scalar, not a 1-tuple
                return 1
            bits = [0] * self.size
            bits[int(val)] = 1
            return tuple(bits)

        def _inverse_transform(self, val: Any) -> int:
            return int(np.argmax(val))

    class DeclaredScale(ColumnTransformer):
        """A number scaled from declared [lo, hi] to [-1, 1], with a null flag when nullable (GANs)."""

        def __init__(self, lo: float, hi: float, nullable: bool) -> None:
            self.lo = float(lo)
            self.hi = float(hi)
            self.nullable = bool(nullable)
            super().__init__()

        @property
        def output_type(self) -> Any:
            return ColumnType.CONTINUOUS

        @property
        def cardinality(self) -> list[Any]:
            return [None, None] if self.nullable else [None]

        def _fit(self, val: Any) -> None:
            return None

        def _clear_fit(self) -> None:
            self._fit_complete = True
            self.output_width = 2 if self.nullable else 1

        def _transform(self, val: Any) -> Any:
            isnull = val is None or (isinstance(val, float) and math.isnan(val))
            if isnull:
                scaled = 0.0
            else:
                span = self.hi - self.lo
                scaled = 2.0 * (min(max(float(val), self.lo), self.hi) - self.lo) / span - 1.0 if span > 0 else 0.0
            if self.nullable:
                return (scaled, 1.0 if isnull else -1.0)
            return scaled

        def _inverse_transform(self, val: Any) -> Any:
            if self.nullable:
                v, flag = val
                if flag > 0:
                    return None
            else:
                v = val
            v = min(max(float(v), -1.0), 1.0)
            return self.lo + (v + 1.0) / 2.0 * (self.hi - self.lo)

    return {"codes": DeclaredCodes, "onehot": DeclaredOneHot, "scale": DeclaredScale}


def _codes_transformer(encoder: DomainEncoder) -> Any:
    from snsynth.transform.table import TableTransformer

    codes_cls = _transformer_classes()["codes"]
    return TableTransformer([codes_cls(size) for size in encoder.sizes])


class _GanCodec:
    """Encodes a conformed table for the GANs and decodes their output, from the schema only."""

    def __init__(self, schema: PublicSchema) -> None:
        self.schema = schema
        self.columns = schema.synthesized_columns
        classes = _transformer_classes()
        self.encoder = DomainEncoder(schema)
        self.transformers = []
        for enc in self.encoder.encodings:
            if enc.mode == "category":
                self.transformers.append(classes["onehot"](enc.size))
            else:
                lo, hi = enc.spec.numeric_bounds()
                self.transformers.append(classes["scale"](lo, hi, enc.spec.nullable))

    def table_transformer(self) -> Any:
        from snsynth.transform.table import TableTransformer

        return TableTransformer(list(self.transformers))

    def encode(self, table: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, Any] = {}
        codes = None
        for j, enc in enumerate(self.encoder.encodings):
            s = table[enc.name]
            if enc.mode == "category":
                if codes is None:
                    codes = self.encoder.encode(table)
                out[enc.name] = codes[:, j].astype(np.int64)
            elif enc.spec.kind == "datetime":
                t = pd.to_datetime(s, errors="coerce")
                out[enc.name] = ((t - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(
                    dtype=float, na_value=np.nan
                )
            else:
                out[enc.name] = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return pd.DataFrame(out)

    def placeholder(self, rows: int) -> pd.DataFrame:
        """`rows` rows built from the schema alone (code 0, lower bounds): for a library loop that takes
        its sizes from the table it is given and must not be given the real one."""
        out: dict[str, Any] = {}
        for enc, tr in zip(self.encoder.encodings, self.transformers, strict=True):
            out[enc.name] = np.zeros(rows, dtype=np.int64) if enc.mode == "category" else np.full(rows, tr.lo)
        return pd.DataFrame(out)

    def decode(self, raw: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for j, enc in enumerate(self.encoder.encodings):
            col = raw.iloc[:, j]
            if enc.mode == "category":
                values = list(enc.spec.values or []) + [None]
                idx = col.to_numpy(dtype=np.int64)
                if enc.null_code is None:
                    idx = np.minimum(idx, len(values) - 2)
                out[enc.name] = [values[i] for i in np.minimum(idx, len(values) - 1)]
            elif enc.spec.kind == "datetime":
                days = pd.to_numeric(col, errors="coerce")
                out[enc.name] = pd.Timestamp("1970-01-01") + pd.to_timedelta(np.floor(days), unit="D")
            else:
                out[enc.name] = pd.to_numeric(col, errors="coerce")
        return pd.DataFrame(out)


def _decode_codes(encoder: DomainEncoder, raw: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Codes from a cube-style method back to values; a missing code becomes null (or a uniform draw)."""
    codes = np.empty((len(raw), len(encoder.encodings)), dtype=np.int64)
    for j, enc in enumerate(encoder.encodings):
        col = pd.to_numeric(raw.iloc[:, j], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(col)
        if missing.any():
            fill = enc.null_code if enc.null_code is not None else rng.integers(0, enc.size, missing.sum())
            col[missing] = fill
        codes[:, j] = np.clip(col.astype(np.int64), 0, enc.size - 1)
    return encoder.decode(codes, rng)


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


def _noisy_total_mst_class() -> type:
    """MSTSynthesizer running at a given rho, with a DP total instead of the exact row count."""
    from mbi import estimation, marginal_oracles
    from snsynth.mst.mst import MSTSynthesizer

    class FixedRhoMST(MSTSynthesizer):
        fixed_rho: float = 0.0
        estimation_iters: int = 5000
        progress: Any = None

        def compress_domain(self, data: Any, measurements: Any) -> Any:
            """Merge each column's cells measured below 3 sigma into one, as Private-PGM's MST does.

            smartnoise 1.0.8 scales the merged cell's measurement by 1/sqrt(k + 1) but, with
            mbi 1.x, no longer scales the query with it, so the model is fitted to a merged mass
            sqrt(k + 1) times too small. Here the query carries the same scale as the measurement.
            """
            import jax.numpy as jnp
            from mbi import LinearMeasurement

            supports = {}
            new_measurements = []
            for m in measurements:
                y = np.asarray(m.noisy_measurement)
                col = m.clique[0]
                sup = y >= 3 * m.stddev
                if sup.sum() < 2 or sup.all():
                    supports[col] = np.ones(y.size, dtype=bool)
                    new_measurements.append(m)
                    continue
                supports[col] = sup
                merged = int(y.size - sup.sum())
                scale = np.ones(int(sup.sum()) + 1)
                scale[-1] = 1.0 / np.sqrt(merged + 1.0)
                y2 = np.append(y[sup], y[~sup].sum()) * scale
                weights = jnp.asarray(scale)
                new_measurements.append(LinearMeasurement(
                    y2, m.clique, m.stddev, query=lambda factor, w=weights: factor.datavector() * w))
            undo = lambda synthetic: self.reverse_data(synthetic, supports)  # noqa: E731
            return self.transform_data(data, supports), new_measurements, undo

        def MST(self, data: Any, epsilon: float, delta: float) -> None:  # noqa: N802 - smartnoise's name
            rho = float(self.fixed_rho)
            sigma = np.sqrt(3 / (2 * rho))
            cliques = [(col,) for col in data.domain]
            log1 = self.measure(data, cliques, sigma)
            # the mean of the noisy one-way totals: DP, unlike len(data)
            total = max(float(np.mean([np.sum(m.noisy_measurement) for m in log1])), 1.0)
            self.progress(0.2, "measured one-way marginals")
            data, log1, undo_compress_fn = self.compress_domain(data, log1)
            self.undo_compress_fn = undo_compress_fn
            cliques = self.select(data, rho / 3.0, log1, total)
            self.progress(0.4, "selected the spanning tree")
            log2 = self.measure(data, cliques, sigma)
            self.progress(0.5, "measured two-way marginals; estimating the model")
            self.synthesizer = estimation.mirror_descent(
                data.domain, log1 + log2, known_total=total, iters=self.estimation_iters,
                marginal_oracle=marginal_oracles.message_passing_stable,
            )

    return FixedRhoMST


class SmartnoiseMSTSynthesizer(_CubeBase):
    name = "mst-smartnoise"
    description = (
        "MST (maximum spanning tree of two-way marginals, Private-PGM) through smartnoise-synth; zCDP. "
        "Numbers are binned on their declared bounds."
    )
    zcdp = True
    needs_delta = True
    option_spec = {
        "bins": (int, 32, "equal-width bins for continuous and datetime columns without `bins` in the schema", (2, 10_000)),
        "iters": (int, 5000, "mirror-descent iterations of the final estimation (post-processing)", (1, 20_000)),
        "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        if self.options["iters"] is None or self.options["iters"] < 1:
            raise MethodOptionError("option iters of mst-smartnoise must be a positive integer", field="options")

    def _fit_method(self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback) -> None:
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
        "bins": (int, 32, "equal-width bins for continuous and datetime columns without `bins` in the schema", (2, 10_000)),
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
                "measurements alone would otherwise spend more than the budget", field="options")
        if degree is None or not 1 <= degree <= d:
            raise MethodOptionError(f"aim-smartnoise: degree must lie between 1 and the number of columns ({d})",
                                    field="options")
        for key in ("max_model_size", "max_cells"):
            if self.options[key] is None or self.options[key] < 1:
                raise MethodOptionError(f"aim-smartnoise: {key} must be a positive integer", field="options")

    def _fit_method(self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback) -> None:
        assert budget.rho is not None
        from snsynth.aim import AIMSynthesizer

        rho = float(budget.rho)

        class FixedRhoAIM(AIMSynthesizer):
            rounds_done = 0

            def AIM(self, data: Any, workload: Any) -> None:  # noqa: N802 - smartnoise's name
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
            epsilon=float(budget.epsilon), delta=float(budget.delta), rounds=self.options["rounds"],
            max_model_size=self.options["max_model_size"], degree=self.options["degree"],
            max_cells=self.options["max_cells"],
        )
        progress(0.05, "running AIM rounds")
        milestones = Milestones(progress, "running AIM rounds")
        with _quiet():
            model.fit(codes, transformer=_codes_transformer(self._enc), preprocessor_eps=0.0)
        milestones.finish()
        self._model = model


# ----------------------------------------------------------------------------------
# MWEM
# ----------------------------------------------------------------------------------


def mwem_splits(sizes: list[int], max_cells: int, max_columns: int = 3) -> list[list[int]]:
    """Group column indices, in order, into histograms of at most `max_cells` cells.

    Raises DomainTooLarge if a single column is larger than `max_cells`.
    """
    splits: list[list[int]] = []
    current: list[int] = []
    cells = 1
    for j, size in enumerate(sizes):
        if size > max_cells:
            raise DomainTooLarge(
                f"column {j} has {size} codes, more than mwem's max_cells ({max_cells})", field="schema"
            )
        if current and (cells * size > max_cells or len(current) >= max_columns):
            splits.append(current)
            current, cells = [], 1
        current.append(j)
        cells *= size
    if current:
        splits.append(current)
    return splits


class SmartnoiseMWEMSynthesizer(_CubeBase):
    heavy = True
    name = "mwem"
    description = (
        "MWEM (multiplicative weights with the exponential mechanism) through smartnoise-synth; pure epsilon-DP "
        "under add/remove of one row: 5% of epsilon buys a noisy row count that sets the total of the synthetic "
        "histograms. Columns are split into small independent histograms (see max_cells)."
    )
    zcdp = False
    default_bins = 32
    ROW_COUNT_SHARE = Fraction(1, 20)
    row_count_use = "the total of the synthetic histograms (the multiplicative-weights step) follows the noisy count"
    option_spec = {
        "bins": (int, 32, "equal-width bins for continuous and datetime columns without `bins` in the schema", (2, 10_000)),
        "max_cells": (int, 5000, "largest histogram (product of domain sizes) of one group of columns", (1, 1_000_000)),
        "max_columns": (int, 3, "most columns in one histogram", (1, 10)),
        "iterations": (int, 30, "MWEM iterations per histogram", (1, 1000)),
        "marginal_width": (int, 2, "widest marginal queried", (1, 5)),
        "mult_weights_iterations": (int, 20, "multiplicative-weights passes per iteration", (1, 1000)),
        "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
    }

    @classmethod
    def planned_cost(cls, requested: PrivacyCost) -> PrivacyCost:
        # pure epsilon-DP whatever delta was offered; epsilon-DP implies (epsilon^2/2)-zCDP
        return PrivacyCost(requested.epsilon, Fraction(0), requested.epsilon**2 / 2)

    def _domain_sizes(self, schema: PublicSchema) -> list[int]:
        """Codes per column as the encoder will make them (an open column: its bins and a null code)."""
        bins = self.options["bins"]
        closed = [n for n in schema.synthesized_columns if not schema.columns[n].is_open]
        sizes = dict(zip(closed, DomainEncoder(schema, default_bins=bins, columns=closed).sizes, strict=True)) \
            if closed else {}
        return [sizes.get(n, bins + 1) for n in schema.synthesized_columns]

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        for key in ("max_cells", "max_columns", "iterations", "marginal_width", "mult_weights_iterations", "bins"):
            if self.options[key] is None or self.options[key] < 1:
                raise MethodOptionError(f"option {key} of mwem must be a positive integer", field="options")
        if self.options["max_cells"] > 50_000:
            raise MethodOptionError("mwem's max_cells may be at most 50000 (memory and time grow with it)",
                                    field="options")
        sizes = self._domain_sizes(schema)
        names = schema.synthesized_columns
        for name, size in zip(names, sizes, strict=True):
            if size > self.options["max_cells"]:
                raise DomainTooLarge(
                    f"mwem: column '{name}' has {size} codes, more than max_cells ({self.options['max_cells']}); "
                    "give it fewer bins (`bins` in the schema or the bins option), declare fewer values, "
                    "raise max_cells, or use mst / dp-copula",
                    field="schema",
                )

    def _fit_method(self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback) -> None:
        from snsynth.mwem import Histogram, MWEMSynthesizer

        self._enc = self._encoder(schema)
        sizes = self._enc.sizes
        splits = mwem_splits(sizes, self.options["max_cells"], self.options["max_columns"])
        codes = pd.DataFrame(self._enc.encode(table).astype(np.int64), columns=self._enc.columns)
        sample_seed = self.derived_seed("sample")
        count, rest = self._count_rows(table, budget)
        synthetic_total = float(max(count.value, 1))

        total_steps = len(splits) * self.options["iterations"]

        class DeclaredMWEM(MWEMSynthesizer):
            """MWEM whose histogram shapes come from the declared domain, sampled with a seeded generator."""

            steps_done = 0

            def _initialize_a(self, histogram: np.ndarray, dimensions: Any) -> np.ndarray:
                """Uniform start at the noisy row count (smartnoise starts at the exact one)."""
                return np.full(np.shape(histogram), synthetic_total / float(np.prod(dimensions)))

            def _exponential_mechanism(self, *args: Any, **kwargs: Any) -> Any:
                self.steps_done += 1
                progress(0.05 + 0.9 * min(self.steps_done / total_steps, 1.0),
                         f"iteration {self.steps_done} of {total_steps}")
                return super()._exponential_mechanism(*args, **kwargs)

            def _histogram_from_data_attributes(self, data: np.ndarray, splits: Any = ()) -> list[Any]:
                histograms = []
                for split in splits:
                    dims = [sizes[i] for i in split]
                    for i in split:
                        self.mins_maxes[str(i)] = (0, sizes[i] - 1)
                        self.scale[str(i)] = 1
                    hist = Histogram.histogramdd_indexes(np.asarray(data[:, split], dtype=np.int64), dims)
                    histograms.append(Histogram(hist.astype(float), dims, [None] * len(dims), split))
                return histograms

            def sample(self, samples: int) -> Any:
                rng = np.random.default_rng(sample_seed)
                parts = []
                for fake, _hist, _split in self.synthetic_histograms:
                    p = np.ravel(fake).astype(float)
                    p = p / p.sum()
                    flat = rng.choice(p.size, size=samples, p=p)
                    parts.append(np.column_stack(np.unravel_index(flat, fake.shape)))
                combined = np.hstack(parts)
                return self._transformer.inverse_transform(combined[:, self._reorder(self.splits)])

        model = DeclaredMWEM(
            epsilon=float(rest.epsilon), splits=[list(s) for s in splits],
            iterations=self.options["iterations"], q_count=None,
            marginal_width=self.options["marginal_width"],
            mult_weights_iterations=self.options["mult_weights_iterations"],
        )
        progress(0.05, f"MWEM on {len(splits)} histogram(s)")
        with _quiet(), warnings.catch_warnings():
            # MWEM warns when a small histogram has fewer cells than iterations: a matter of accuracy, not privacy
            warnings.filterwarnings("ignore", message="Flattened dimensionality of synthetic histogram")
            model.fit(codes, transformer=_codes_transformer(self._enc), preprocessor_eps=0.0)
        spent = float(np.sum(model.accountant))
        if spent > float(rest.epsilon) * (1 + 1e-9):  # pragma: no cover - a defect of the library if it happens
            raise RuntimeError(f"mwem spent {spent} epsilon, more than its budget {float(rest.epsilon)}")
        self._model = model


# ----------------------------------------------------------------------------------
# PAC-Synth
# ----------------------------------------------------------------------------------


class SmartnoisePACSynthSynthesizer(_CubeBase):
    name = "pacsynth"
    description = (
        "PAC-Synth (Microsoft's private aggregate seeded synthesizer) through smartnoise-synth; (epsilon, delta)-DP "
        "marginals up to `reporting_length` columns."
    )
    zcdp = False
    needs_delta = True
    option_spec = {
        "bins": (int, 32, "equal-width bins for continuous, datetime and wide ordinal columns without `bins` "
                          "in the schema", (2, 10_000)),
        "reporting_length": (int, 2, "widest combination of columns measured (each row counts in every "
                                     "combination up to this width, so wider means more noise)", (1, 5)),
        "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        if not 1 <= (self.options["reporting_length"] or 0) <= 6:
            raise MethodOptionError("reporting_length must be between 1 and 6", field="options")

    def _fit_method(self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback) -> None:
        from snsynth.aggregate_seeded import AggregateSeededSynthesizer

        self._enc = self._encoder(schema)
        codes = pd.DataFrame(self._enc.encode(table).astype(np.int64), columns=self._enc.columns)
        model = AggregateSeededSynthesizer(
            reporting_length=min(self.options["reporting_length"], len(self._enc.columns)),
            epsilon=float(budget.epsilon), delta=float(budget.delta),
            # pac-synth also releases a noisy row count; with smartnoise's 0.5% share of epsilon that count
            # comes out negative on small tables and pac-synth aborts. 5% keeps it positive in practice.
            number_of_records_epsilon_proportion=0.05,
        )
        progress(0.05, "measuring aggregates")
        try:
            with _quiet():
                model.fit(codes, transformer=_codes_transformer(self._enc), preprocessor_eps=0.0)
        except BaseException as exc:  # pac-synth's Rust panics are BaseExceptions (pyo3 PanicException)
            if type(exc).__name__ != "PanicException":
                raise
            raise MethodOptionError(
                f"pac-synth stopped: {str(exc).splitlines()[0] if str(exc) else 'internal error'}. The table is "
                "probably too small for this epsilon; ask for more epsilon or use another method",
                field="method") from exc
        self._model = model

    def _encoder(self, schema: PublicSchema) -> DomainEncoder:
        """Wide ordinals are binned too: pac-synth suppresses rare values, so a column with many
        sparse codes (an age in years) would come out empty."""
        bins = self.options["bins"]
        cols = dict(schema.columns)
        for name in schema.synthesized_columns:
            spec = cols[name]
            if spec.kind == "ordinal" and spec.values is None and spec.bins is None and spec.has_bounds:
                lo, hi = spec.numeric_bounds()
                if hi - lo + 1 > bins:
                    cols[name] = spec.model_copy(update={"bins": bins})
        return DomainEncoder(schema.model_copy(update={"columns": cols}), default_bins=bins)

    def _sample(self, n: int, progress: ProgressCallback) -> pd.DataFrame:
        """pac-synth leaves an attribute empty where its DP aggregates cannot support it; such a
        value is drawn from the same column's synthesized values (post-processing of DP output),
        or uniformly from the declared domain when the column came out entirely empty."""
        rng = np.random.default_rng(self.derived_seed("sample"))
        with _quiet():
            raw = self._model.sample(n)
        if not isinstance(raw, pd.DataFrame):
            raw = pd.DataFrame(list(raw))
        raw = raw.reset_index(drop=True)
        for j, enc in enumerate(self._enc.encodings):
            col = pd.to_numeric(raw.iloc[:, j], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            missing = np.isnan(col)
            if missing.any():
                present = col[~missing]
                col[missing] = rng.choice(present, missing.sum()) if present.size else \
                    rng.integers(0, enc.size, missing.sum())
            raw.iloc[:, j] = col
        progress(1.0, "sampled")
        return _decode_codes(self._enc, raw, rng)


# ----------------------------------------------------------------------------------
# GANs
# ----------------------------------------------------------------------------------


class _UnconditionalSampler:
    """Stand-in for smartnoise's DataSampler: no conditional vector, rows drawn uniformly."""

    discrete_column_category_prob = None

    def __init__(self, data: np.ndarray, transformers: Any = None, **_: Any) -> None:
        self._data = data

    def sample_condvec(self, batch: int) -> None:
        return None

    def sample_original_condvec(self, batch: int) -> None:
        return None

    def sample_data(self, n: int, col: Any, opt: Any) -> np.ndarray:
        return self._data[np.random.randint(len(self._data), size=n)]

    def dim_cond_vec(self) -> int:
        return 0


_DPCTGAN_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def _opacus_epsilon(sample_rate: float, sigma: float, steps: int, delta: float) -> float:
    from opacus import privacy_analysis

    if steps == 0:
        return 0.0
    rdp = privacy_analysis.compute_rdp(sample_rate, sigma, steps, _DPCTGAN_ALPHAS)
    eps, _alpha = privacy_analysis.get_privacy_spent(_DPCTGAN_ALPHAS, rdp, delta)
    return float(eps)


def dpctgan_sample_rate(batch: int, rows_lower: int) -> float:
    """The sampling rate DP-SGD is accounted at: batch / (lower bound - 1), at most 1.

    With the lower bound below the true count n, this is above batch / n and
    batch / (n - 1), the rates of the table and of its neighbour with one row
    fewer: over-stating the rate is the safe direction.
    """
    return min(1.0, batch / max(rows_lower - 1, 1))


def dpctgan_max_epochs(sample_rate: float, steps_per_epoch: int, sigma: float, epsilon: float, delta: float,
                       limit: int) -> int:
    """The most epochs (<= limit) whose opacus RDP epsilon stays within `epsilon`.

    Each DPCTGAN step makes two private optimizer steps (fake and real batches).
    """
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _opacus_epsilon(sample_rate, sigma, 2 * steps_per_epoch * mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid - 1
    return lo


def pate_epsilon(queries: int, gamma: float, delta: float, max_order: int = 100) -> float:
    """Epsilon of `queries` noisy PATE votes under the data-independent moments bound."""
    if queries == 0:
        return 0.0
    best = math.inf
    log_inv_delta = math.log(1.0 / delta)
    for order in range(1, max_order + 1):
        alpha = queries * 2.0 * gamma**2 * order * (order + 1)
        best = min(best, (alpha + log_inv_delta) / order)
    return best


@contextlib.contextmanager
def _seeded(seed: int | None) -> Any:
    """Seed numpy's and torch's global generators for the block, then restore them."""
    import torch

    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            seed_global_numpy(seed)  # every bit of the seed, not its low 32
            torch.manual_seed(seed)
        else:
            # torch starts every process from the same fixed seed: draw a fresh one
            torch.seed()
        try:
            yield
        finally:
            np.random.set_state(np_state)


@contextlib.contextmanager
def _no_reseed(module: Any) -> Any:
    """smartnoise's discriminators call torch.manual_seed(0) when built, which would make every later
    draw (the DP-SGD noise included) the same in every run. While the block runs, `module` sees a torch
    whose manual_seed does nothing, so the caller's stream (seeded or fresh) continues."""
    import types

    import torch

    class _Cuda(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(torch.cuda, name)

        @staticmethod
        def manual_seed(seed: int) -> None:
            return None

    class _Torch(types.ModuleType):
        cuda = _Cuda("torch.cuda")

        def __getattr__(self, name: str) -> Any:
            return getattr(torch, name)

        @staticmethod
        def manual_seed(seed: int) -> None:
            return None

    original = module.torch
    module.torch = _Torch("torch")
    try:
        yield
    finally:
        module.torch = original


class _GanBase(_SmartnoiseBase):
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


_GAN_OPTIONS: dict[str, OptionSpec] = {
    "epochs": (int, 10, "most training epochs (fewer if the budget runs out first)", (1, 5000)),
    "batch_size": (int, 128, "batch size (even; capped at half the rows)", (2, 10_000)),
    "embedding_dim": (int, 64, "size of the generator's noise input", (1, 1024)),
    "generator_dim": (int, 128, "width of the generator's two residual layers", (1, 1024)),
    "discriminator_dim": (int, 128, "width of the discriminator's two layers", (1, 1024)),
    "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
}


class SmartnoiseDPCTGANSynthesizer(_GanBase):
    name = "dpctgan"
    reproducible = False  # opacus seeds its noise (and torch's global generator) from os.urandom
    description = (
        "DP-CTGAN (a GAN whose discriminator is trained with DP-SGD, opacus) through smartnoise-synth; "
        "(epsilon, delta)-DP under add/remove of one row: 10% of epsilon buys a noisy row count whose lower "
        "bound (exceeded with probability at most delta/2, part of delta) sets the batch size, the steps of "
        "an epoch and the sampling rate of opacus's RDP accounting (batches are drawn uniformly with "
        "replacement, the usual approximation of Poisson sampling). Needs many rows."
    )
    option_spec = {
        **_GAN_OPTIONS,
        "sigma": (float, 5.0, "noise multiplier of DP-SGD"),
    }
    ROW_COUNT_SHARE = Fraction(1, 10)
    ROW_COUNT_FAILURE_SHARE = Fraction(1, 2)
    row_count_use = (
        "batch size, steps per epoch and the DP-SGD sampling rate follow a lower bound of the noisy count; "
        "the chance that the bound exceeds the true count is part of delta"
    )

    def _fit_method(self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback) -> None:
        import snsynth.pytorch.nn.dpctgan as dpctgan_module

        count, rest = self._count_rows(table, budget)
        rows = count.lower  # below the true count but with probability <= failure
        batch = self._gan_batch(rows)
        sample_rate = dpctgan_sample_rate(batch, rows)
        steps_per_epoch = max(rows // batch, 1)
        sigma = float(self.options["sigma"])
        eps, delta = float(rest.epsilon), float(rest.delta)
        epochs = dpctgan_max_epochs(sample_rate, steps_per_epoch, sigma, eps, delta, int(self.options["epochs"]))
        if epochs < 1:
            raise InvalidPrivacyValue(
                f"dpctgan cannot train one epoch within epsilon {float(budget.epsilon):g} at sigma {sigma:g}; "
                "ask for more epsilon, raise the option sigma, or lower batch_size",
                field="epsilon",
            )
        self.epochs_run = epochs
        self.training_plan = {"batch_size": batch, "sample_rate": sample_rate, "steps_per_epoch": steps_per_epoch,
                              "epochs": epochs}
        self._codec = _GanCodec(schema)
        transformer = self._codec.table_transformer()
        real = np.array([[float(x) if x is not None else 0.0 for x in row]
                         for row in transformer.transform(self._codec.encode(table))], dtype=float)

        class _RealRows(_UnconditionalSampler):
            """The batches come from the real rows, whatever table smartnoise's loop was given."""

            def __init__(self, data: np.ndarray, transformers: Any = None, **_: Any) -> None:
                super().__init__(real)

        model = dpctgan_module.DPCTGAN(
            embedding_dim=self.options["embedding_dim"],
            generator_dim=(self.options["generator_dim"],) * 2,
            discriminator_dim=(self.options["discriminator_dim"],) * 2,
            batch_size=batch, epochs=epochs, sigma=sigma, epsilon=eps, delta=delta,
            verbose=False, cuda=False, loss="cross_entropy",
        )
        progress(0.05, "training the GAN")
        # smartnoise's loop takes its steps per epoch and opacus's sample size from the length of the table
        # it is given: a placeholder of `rows` rows built from the schema, never the exact count
        placeholder = self._codec.placeholder(max(rows, batch))
        original_sampler = dpctgan_module.DataSampler
        with _GAN_LOCK, _seeded(self.seed), _quiet(), _no_reseed(dpctgan_module):
            dpctgan_module.DataSampler = _RealRows
            try:
                model.fit(placeholder, transformer=transformer, preprocessor_eps=0.0)
            finally:
                dpctgan_module.DataSampler = original_sampler
        spent = _opacus_epsilon(sample_rate, sigma, 2 * steps_per_epoch * len(model.loss_d_list), delta)
        if len(model.loss_d_list) > epochs or spent > eps:  # pragma: no cover - guards the accounting above
            raise RuntimeError(f"dpctgan overran its budget: {spent} > {eps}")
        self._model = model

    def _generate(self, n: int) -> Any:
        return self._model.generate(n)


class SmartnoisePATECTGANSynthesizer(_GanBase):
    name = "patectgan"
    description = (
        "PATE-CTGAN (teacher discriminators on disjoint parts of the data, a student trained on their noisy "
        "votes) on smartnoise-synth's networks; (epsilon, delta)-DP under add/remove of one row by the "
        "data-independent moments bound, with 5% of epsilon spent on a noisy row count that sets the number "
        "of teachers and the batch size. Weak at small epsilon."
    )
    ROW_COUNT_SHARE = Fraction(1, 20)
    row_count_use = "the number of teachers and the batch size follow the noisy count"
    option_spec = {
        **_GAN_OPTIONS,
        "batch_size": (int, 64, "generated samples per student step (each is one PATE query)", (2, 10_000)),
        "epochs": (int, 200, "most generator iterations (fewer if the budget runs out first)", (1, 5000)),
        "noise_multiplier": (float, 1e-3, "gamma: the vote noise is Laplace(1/gamma); smaller is more private"),
        "teacher_iters": (int, 5, "teacher discriminator steps per iteration", (1, 100)),
        "student_iters": (int, 5, "student steps (PATE queries x batch) per iteration", (1, 100)),
        "sample_per_teacher": (int, 1000, "rows per teacher (the number of teachers follows)", (10, 1_000_000)),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        """What the request alone decides, before any data is read: a positive gamma, and one iteration.

        The smallest batch is 2 queries per student step, and the rest of the budget is at most epsilon
        less the row count's share (and `bounds_epsilon` when bounds are learned) at the whole delta: if
        even that cannot pay for one iteration, no table can, and the fit would fail after reading it.
        """
        super().preflight(schema, requested)
        gamma = self.options["noise_multiplier"]
        if gamma is None or not (math.isfinite(gamma) and gamma > 0):
            raise MethodOptionError("noise_multiplier of patectgan must be a positive number", field="options")
        if not requested.is_dp or requested.delta <= 0:
            return
        eps = float(requested.epsilon)
        if schema.open_columns:
            eps -= float(self.options["bounds_epsilon"] or 0)
        eps *= float(1 - self.ROW_COUNT_SHARE)
        if eps <= 0 or pate_epsilon(int(self.options["student_iters"]) * 2, float(gamma),
                                    float(requested.delta)) > eps:
            raise InvalidPrivacyValue(
                f"patectgan cannot make one iteration within epsilon {float(requested.epsilon):g} "
                f"(noise_multiplier {float(gamma):g}, student_iters {self.options['student_iters']}) on any table; "
                "ask for more epsilon, or lower noise_multiplier or student_iters", field="epsilon")

    def _fit_method(self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback) -> None:
        import snsynth.pytorch.nn.patectgan as patectgan_module
        import torch
        from snsynth.pytorch.nn.patectgan import PATECTGAN, Discriminator, Generator
        from snsynth.pytorch.nn.privacy_utils import pate, weights_init

        n = len(table)
        count, rest = self._count_rows(table, budget)
        batch = self._gan_batch(count.value)
        gamma = float(self.options["noise_multiplier"])
        student_iters = int(self.options["student_iters"])
        teacher_iters = int(self.options["teacher_iters"])
        if gamma <= 0 or student_iters < 1 or teacher_iters < 1:
            raise MethodOptionError("noise_multiplier, student_iters and teacher_iters must be positive",
                                    field="options")
        eps, delta = float(rest.epsilon), float(rest.delta)
        per_iteration = student_iters * batch
        iterations = 0
        while iterations < int(self.options["epochs"]) and pate_epsilon(per_iteration * (iterations + 1), gamma, delta) <= eps:
            iterations += 1
        if iterations < 1:
            raise InvalidPrivacyValue(
                f"patectgan cannot make one iteration within epsilon {float(budget.epsilon):g} (gamma {gamma:g}); "
                "ask for more epsilon, or lower noise_multiplier, batch_size or student_iters",
                field="epsilon",
            )
        self.iterations_run = iterations
        self._codec = _GanCodec(schema)
        prepared = self._codec.encode(table)
        model = PATECTGAN(
            embedding_dim=self.options["embedding_dim"],
            generator_dim=(self.options["generator_dim"],) * 2,
            discriminator_dim=(self.options["discriminator_dim"],) * 2,
            batch_size=batch, epsilon=eps, delta=delta, verbose=False, cuda=False, pac=1,
            loss="cross_entropy", noise_multiplier=gamma,
        )
        transformer = self._codec.table_transformer()
        with _GAN_LOCK, _seeded(self.seed), _quiet():
            model._transformer = transformer
            train = transformer.transform(prepared)
            data = np.array([[float(x) if x is not None else 0.0 for x in row] for row in train], dtype=np.float32)
            n_teachers = max(2, count.value // max(1, int(self.options["sample_per_teacher"])))
            self.training_plan = {"batch_size": batch, "teachers": n_teachers, "iterations": iterations}
            assignment = np.random.randint(n_teachers, size=n)
            parts = [data[assignment == t] for t in range(n_teachers)]
            data_dim = transformer.output_width
            emb = self.options["embedding_dim"]
            model._generator = Generator(emb, model._generator_dim, data_dim)
            with _no_reseed(patectgan_module):
                teachers = [Discriminator(data_dim, model._discriminator_dim, "cross_entropy", 1) for _ in parts]
                student = Discriminator(data_dim, model._discriminator_dim, "cross_entropy", 1)
            for disc in [*teachers, student]:
                disc.apply(weights_init)
            opt_g = torch.optim.Adam(model._generator.parameters(), lr=2e-4, betas=(0.5, 0.9), weight_decay=1e-6)
            opt_t = [torch.optim.Adam(t.parameters(), lr=2e-4, betas=(0.5, 0.9), weight_decay=1e-6) for t in teachers]
            opt_s = torch.optim.Adam(student.parameters(), lr=2e-4, betas=(0.5, 0.9))
            bce = torch.nn.BCELoss()
            ones = torch.ones(batch)
            zeros = torch.zeros(batch)

            def generated() -> torch.Tensor:
                z = torch.randn(batch, emb)
                return model._apply_activate(model._generator(z))

            milestones = Milestones(progress, "training the GAN")
            for it in range(iterations):
                for _ in range(teacher_iters):
                    for t, part in enumerate(parts):
                        if len(part) == 0:
                            continue
                        real = torch.from_numpy(part[np.random.randint(len(part), size=batch)])
                        fake = generated().detach()
                        opt_t[t].zero_grad()
                        out = torch.cat([teachers[t](fake), teachers[t](real)]).squeeze()
                        bce(out, torch.cat([zeros, ones])).backward()
                        opt_t[t].step()
                for _ in range(student_iters):
                    fake = generated().detach()
                    labels, _votes = pate(fake, teachers, gamma)
                    opt_s.zero_grad()
                    bce(student(fake).squeeze(), labels.float().squeeze()).backward()
                    opt_s.step()
                opt_g.zero_grad()
                bce(student(generated()).squeeze(), ones).backward()
                opt_g.step()
                milestones((it + 1) / iterations)
            milestones.finish()
            model.cond_generator = _UnconditionalSampler(data[:0])
        spent = pate_epsilon(per_iteration * iterations, gamma, delta)
        if spent > eps:  # pragma: no cover - guards the loop above
            raise RuntimeError(f"patectgan overran its budget: {spent} > {eps}")
        self._model = model

    def _generate(self, n: int) -> Any:
        return self._model.generate(n)

