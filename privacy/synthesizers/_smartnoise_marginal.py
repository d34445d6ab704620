"""The marginal methods of privacy/synthesizers/smartnoise.py: MST's model, MWEM and PAC-Synth.

`_noisy_total_mst_class` is smartnoise's MST at a fixed rho with a DP total;
`_MWEMMethod` and `_PACSynthMethod` hold what MWEM and PAC-Synth add to the
shared base of smartnoise.py (options, preflight, fit, sampling), where the
registered classes are assembled. They rely on that base for `options`,
`_encoder`, `_count_rows` and `derived_seed`.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privacy._random import seed_global_numpy
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


#: one marginal query set of a histogram, as MWEM's vectorised loop uses it: the histogram axes it keeps and,
#: per slice in the library's order, the flat (C order) index of its cell in the marginal over those axes
_MarginalPlan = tuple[tuple[int, ...], np.ndarray]


def marginal_plan(queries: Any, dimensions: Any) -> list[_MarginalPlan] | None:
    """The marginal form of smartnoise's MWEM queries (`Cuboid`s of marginal `Query` slices), or None when one
    of them is not a marginal (a range query), which the vectorised loop does not handle.

    A slice indexes the transposed histogram (`hist.T[...]`): one entry per axis, last axis first, an integer
    for a kept axis and `slice(None)` for a summed one.
    """
    from snsynth.mwem import Cuboid

    dims = [int(d) for d in dimensions]
    plans: list[_MarginalPlan] = []
    seen: dict[int, _MarginalPlan] = {}
    for query in queries:
        if not isinstance(query, Cuboid) or not query.queries:
            return None
        if id(query) in seen:
            plans.append(seen[id(query)])
            continue
        first = list(reversed(query.queries[0].query))
        if len(first) != len(dims):
            return None
        axes = tuple(j for j, s in enumerate(first) if not isinstance(s, slice))
        if not axes:
            return None
        kept = [dims[j] for j in axes]
        cells = np.empty((len(query.queries), len(axes)), dtype=np.int64)
        for k, sl in enumerate(query.queries):
            entries = list(reversed(sl.query))
            for j, entry in enumerate(entries):
                if j in axes:
                    if isinstance(entry, slice) or not 0 <= int(entry) < dims[j]:
                        return None
                elif entry != slice(None):
                    return None
            cells[k] = [int(entries[j]) for j in axes]
        index = np.asarray(np.ravel_multi_index(tuple(cells.T), kept), dtype=np.int64)
        if len(np.unique(index)) != int(np.prod(kept)):  # a cuboid's slices cover its marginal exactly once
            return None
        seen[id(query)] = (axes, index)
        plans.append(seen[id(query)])
    return plans


def _marginal(array: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The sums of `array` over every axis not in `axes`, flattened in C order."""
    others = tuple(j for j in range(array.ndim) if j not in axes)
    return np.ravel(array.sum(axis=others) if others else array)


def _vector_mwem_class() -> type:
    """smartnoise's MWEMSynthesizer with its query evaluation vectorised over the histogram.

    The mechanism is the library's, step for step: the same queries, the exponential mechanism over the same
    scores with the same epsilon, the Laplace measurements of every slice of the chosen query at the same
    scale (OpenDP's sampler), the same accountant entries, and the same multiplicative-weights passes applied
    slice by slice in the library's order. What changes is how the answers are computed: a query set (a
    cuboid) is answered at once from the marginal of the histogram over its axes (the real histogram's
    marginals once per histogram), and a multiplicative-weights pass over a cuboid's slices, whose updates
    are disjoint and differ only by the renormalisation after each, runs as a scalar recurrence over the
    slices followed by one multiplication of the histogram, instead of one full-histogram mask, exponential
    and sum per slice.

    `rng`: the generator of the exponential mechanism's draws (a seeded one makes the selection
    reproducible); None draws them as the library does, from the `random` and `numpy.random` modules.
    """
    import random

    import snsynth.mwem as sn_mwem

    class VectorMWEM(sn_mwem.MWEMSynthesizer):
        _plans: list[_MarginalPlan] | None = None  # None: the library's own loop runs (range queries)
        _real: dict[tuple[int, ...], np.ndarray] = {}

        def __init__(self, *args: Any, rng: np.random.Generator | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._rng = rng

        def _uniform(self) -> float:
            return float(self._rng.random()) if self._rng is not None else random.random()

        def _pick(self, options: list[int]) -> int:
            if self._rng is not None:
                return options[int(self._rng.integers(len(options)))]
            return int(np.random.choice(options))

        def _laplace_many(self, scale: float, size: int) -> np.ndarray:
            return np.asarray(sn_mwem.laplace_noise(scale, size=size), dtype=float)

        def mwem(self) -> list[tuple[np.ndarray, np.ndarray, Any]]:
            plans = [marginal_plan(h.queries, h.dimensions) for h in self.histograms]
            if any(p is None for p in plans):
                self._plans = None
                return super().mwem()
            a_values = []
            for h, plan in zip(self.histograms, plans, strict=True):
                assert plan is not None
                hist = h.data
                synth_hist = self._initialize_a(hist, h.dimensions)
                if 2 * h.dimensionality <= h.iterations:
                    warnings.warn(
                        "Flattened dimensionality of synthetic histogram is less than the number of iterations. "
                        f"This is a privacy risk. Dim: {h.dimensionality} Split: {h.split}",
                        Warning,
                        stacklevel=2,
                    )
                self._plans = plan
                self._real = {axes: _marginal(np.asarray(hist, dtype=float), axes) for axes, _ in plan}
                eps = h.meas_eps if not self.measure_only else 2 * h.meas_eps
                measurements: dict[int, np.ndarray] = {}
                for i in range(h.iterations):
                    qi = self._exponential_mechanism(hist, synth_hist, h.queries, eps, measurements, i)
                    axes, index = plan[qi]
                    measurements[qi] = self._real[axes][index] + self._laplace_many(1.0 / eps, len(index))
                    self.accountant.append(eps)
                    synth_hist = self._multiplicative_weights(
                        synth_hist, h.queries, measurements, hist, self.mult_weights_iterations
                    )
                a_values.append((synth_hist, hist, h.split))
            return a_values

        def _exponential_mechanism(
            self, hist: Any, synth_hist: np.ndarray, queries: Any, eps: float, measurements: Any, iteration: int
        ) -> int:
            if self._plans is None:
                return int(super()._exponential_mechanism(hist, synth_hist, queries, eps, measurements, iteration))
            diffs: dict[tuple[int, ...], np.ndarray] = {}
            scores: dict[int, float] = {}
            errors = []
            for axes, index in self._plans:
                key = id(index)
                if key not in scores:
                    if axes not in diffs:
                        diffs[axes] = np.abs(self._real[axes] - _marginal(synth_hist, axes))
                    err = float(np.sum(diffs[axes][index])) / len(index)
                    scores[key] = (err if err > 0.0 else 0.0) * (eps / 2.0)
                errors.append(scores[key])
            maxi = max(errors)
            exp_errors = [math.exp(e - maxi) for e in errors]
            count_retries = 0
            qi: int | None = None
            while qi is None or qi in measurements:
                if self.measure_only or count_retries > self.max_retries_exp_mechanism:
                    qi = self._pick([i for i in range(len(errors)) if i not in measurements])
                else:
                    r = self._uniform()
                    e_s = sum(exp_errors)
                    c = 0.0
                    qi = len(exp_errors) - 1
                    for i, value in enumerate(exp_errors):
                        c += value
                        if c > r * e_s:
                            qi = i
                            break
                    count_retries += 1
            if not self.measure_only:
                self.accountant.append(eps)
            return qi

        def _multiplicative_weights(
            self, synth_hist: np.ndarray, queries: Any, m: dict[int, np.ndarray], hist: Any, iterate: int
        ) -> np.ndarray:
            if self._plans is None:
                return np.asarray(super()._multiplicative_weights(synth_hist, queries, m, hist, iterate))
            sum_a = float(np.sum(synth_hist))
            two_sum = 2.0 * sum_a
            exp = math.exp
            for _ in range(iterate):
                for qi, measured in m.items():
                    axes, index = self._plans[qi]
                    answers = _marginal(synth_hist, axes)[index].tolist()
                    factors = [1.0] * len(answers)
                    scale = 1.0  # the renormalisations so far, which every cell shares
                    for k, (y, answer) in enumerate(zip(measured.tolist(), answers, strict=True)):
                        current = scale * answer
                        factor = exp((y - current) / two_sum)
                        if factor == 0.0:
                            factor = 1.0
                        factors[k] = factor
                        scale *= sum_a / (sum_a + current * (factor - 1.0))
                    per_cell = np.empty(len(index))
                    per_cell[index] = np.asarray(factors) * scale
                    shape = [synth_hist.shape[j] if j in axes else 1 for j in range(synth_hist.ndim)]
                    synth_hist = synth_hist * per_cell.reshape(shape)
            return synth_hist

    return VectorMWEM


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
        from snsynth.mwem import Histogram

        self._enc = self._encoder(schema)
        sizes = self._enc.sizes
        splits = mwem_splits(sizes, self.options["max_cells"], self.options["max_columns"])
        codes = pd.DataFrame(self._enc.encode(table).astype(np.int64), columns=self._enc.columns)
        sample_seed = self.derived_seed("sample")
        count, rest = self._count_rows(table, budget)
        synthetic_total = float(max(count.value, 1))

        total_steps = len(splits) * self.options["iterations"]

        class DeclaredMWEM(_vector_mwem_class()):  # type: ignore[misc]
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
            rng=np.random.default_rng(self.derived_seed("mwem selection")),
        )
        progress(0.05, f"MWEM on {len(splits)} histogram(s)")
        with _quiet(), warnings.catch_warnings():
            # MWEM warns when a small histogram has fewer cells than iterations: a matter of accuracy, not privacy
            warnings.filterwarnings("ignore", message="Flattened dimensionality of synthetic histogram")
            # smartnoise draws the subset of the query pool from numpy's global generator: seeded from the job
            state = np.random.get_state()
            queries_seed = self.derived_seed("mwem queries")
            if queries_seed is not None:
                seed_global_numpy(queries_seed)
            try:
                model.fit(codes, transformer=_codes_transformer(self._enc), preprocessor_eps=0.0)
            finally:
                np.random.set_state(state)
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
