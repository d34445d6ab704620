"""The marginal methods of privacy/synthesizers/smartnoise.py: MST's model, MWEM and PAC-Synth.

`_noisy_total_mst_class` is smartnoise's MST at a fixed rho with a DP total;
`_MWEMMethod` and `_PACSynthMethod` hold what MWEM and PAC-Synth add to the
shared base of smartnoise.py (options, preflight, fit, sampling), where the
registered classes are assembled. They rely on that base for `options`,
`_encoder`, `_count_rows` and `derived_seed`.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privacy.bounds import BOUNDS_OPTION_HELP, MethodBudget
from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import DomainTooLarge, MethodOptionError
from privacy.schema import PublicSchema
from privacy.synthesizers._smartnoise_codecs import _codes_transformer, _decode_codes
from privacy.synthesizers._smartnoise_support import _quiet
from privacy.synthesizers.base import ProgressCallback

if TYPE_CHECKING:
    # type-checked as subclasses of the base smartnoise.py puts them on; plain mixins at run time, so
    # that this module does not import smartnoise.py
    from privacy.synthesizers.smartnoise import _CubeBase as _OnCubeBase
else:
    _OnCubeBase = object


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
                new_measurements.append(
                    LinearMeasurement(y2, m.clique, m.stddev, query=lambda factor, w=weights: factor.datavector() * w)
                )
            undo = lambda synthetic: self.reverse_data(synthetic, supports)  # noqa: E731
            return self.transform_data(data, supports), new_measurements, undo

        def MST(self, data: Any, epsilon: float, delta: float) -> None:
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
                data.domain,
                log1 + log2,
                known_total=total,
                iters=self.estimation_iters,
                marginal_oracle=marginal_oracles.message_passing_stable,
            )

    return FixedRhoMST


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


class _MWEMMethod(_OnCubeBase):
    """MWEM's options, preflight and fit; `SmartnoiseMWEMSynthesizer` puts them on the shared base."""

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
        "bins": (
            int,
            32,
            "equal-width bins for continuous and datetime columns without `bins` in the schema",
            (2, 10_000),
        ),
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
        return PrivacyCost(requested.epsilon, Fraction(0), requested.finite_epsilon**2 / 2)

    def _domain_sizes(self, schema: PublicSchema) -> list[int]:
        """Codes per column as the encoder will make them (an open column: its bins and a null code)."""
        bins = self.options["bins"]
        closed = [n for n in schema.synthesized_columns if not schema.columns[n].is_open]
        sizes = (
            dict(zip(closed, DomainEncoder(schema, default_bins=bins, columns=closed).sizes, strict=True))
            if closed
            else {}
        )
        return [sizes.get(n, bins + 1) for n in schema.synthesized_columns]

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        for key in ("max_cells", "max_columns", "iterations", "marginal_width", "mult_weights_iterations", "bins"):
            if self.options[key] is None or self.options[key] < 1:
                raise MethodOptionError(f"option {key} of mwem must be a positive integer", field="options")
        if self.options["max_cells"] > 50_000:
            raise MethodOptionError(
                "mwem's max_cells may be at most 50000 (memory and time grow with it)", field="options"
            )
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

    def _fit_method(
        self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback
    ) -> None:
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
                progress(
                    0.05 + 0.9 * min(self.steps_done / total_steps, 1.0),
                    f"iteration {self.steps_done} of {total_steps}",
                )
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
            epsilon=float(rest.epsilon),
            splits=[list(s) for s in splits],
            iterations=self.options["iterations"],
            q_count=None,
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


class _PACSynthMethod(_OnCubeBase):
    """PAC-Synth's options, preflight, fit, encoder and sampling; `SmartnoisePACSynthSynthesizer` puts them
    on the shared base."""

    name = "pacsynth"
    description = (
        "PAC-Synth (Microsoft's private aggregate seeded synthesizer) through smartnoise-synth; (epsilon, delta)-DP "
        "marginals up to `reporting_length` columns."
    )
    zcdp = False
    needs_delta = True
    option_spec = {
        "bins": (
            int,
            32,
            "equal-width bins for continuous, datetime and wide ordinal columns without `bins` in the schema",
            (2, 10_000),
        ),
        "reporting_length": (
            int,
            2,
            "widest combination of columns measured (each row counts in every "
            "combination up to this width, so wider means more noise)",
            (1, 5),
        ),
        "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        super().preflight(schema, requested)
        if not 1 <= (self.options["reporting_length"] or 0) <= 6:
            raise MethodOptionError("reporting_length must be between 1 and 6", field="options")

    def _fit_method(
        self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback
    ) -> None:
        from snsynth.aggregate_seeded import AggregateSeededSynthesizer

        self._enc = self._encoder(schema)
        codes = pd.DataFrame(self._enc.encode(table).astype(np.int64), columns=self._enc.columns)
        model = AggregateSeededSynthesizer(
            reporting_length=min(self.options["reporting_length"], len(self._enc.columns)),
            epsilon=float(budget.epsilon),
            delta=float(budget.delta),
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
                field="method",
            ) from exc
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
                col[missing] = (
                    rng.choice(present, missing.sum()) if present.size else rng.integers(0, enc.size, missing.sum())
                )
            raw.iloc[:, j] = col
        progress(1.0, "sampled")
        return _decode_codes(self._enc, raw, rng)
