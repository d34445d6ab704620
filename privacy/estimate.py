"""Time estimates of a release, before it is submitted, from public facts only.

`estimate_release(method, schema, rows, options)` predicts the CPU seconds of
the fit (with sampling) and of the report (the evaluation, the gate and the
bundle), from:

* the public schema: the number of modelled columns and their domain sizes as
  the method's encoder makes them (its `bins` option applies);
* `rows`: the row count the steward declared public (`public_row_count`), or
  the rows requested, or `catalogue.DEFAULT_ROWS`; never the table's own count,
  which the estimate would otherwise leak;
* the method's options that drive its time (epochs, batch size, iterations,
  rounds, bins, teachers), defaults filled in from the method's option spec.

The model of each method (n rows, d columns, CPU seconds)::

    mst, dp-marginals, dp-copula, gaussian-copula, ...:  a + b * n * d
    aim:        a + min(b * n * d, w * max_work) + c * rounds * d**2   (rounds default 16 * d; the
                estimation's work budget bounds what grows with the rows: privacy.engine.aim)
    mwem:       a + b * sum over histograms h of T * (T + 1) / 2 * mwi * k_h + c * sum of T * k_h
                (T iterations, mwi multiplicative-weights passes, k_h the mean number of slices of a
                histogram's marginal query sets: every pass re-applies every query set measured so far,
                slice by slice, hence T squared; each measurement draws k_h Laplace noises)
    dpctgan:    a + epochs * n * (b + c / batch)  (each row of an epoch costs b, each DP-SGD step of
                `batch` rows c; epochs and batch as the fit chooses them from the public row count, the
                options and the budget: _smartnoise_gan.dpctgan_plan)
    ctgan, tvae, copulagan:   a + b * epochs * n + c * n * k  (epochs: the option, an upper bound; k the
                numeric columns, those without a category domain: before training, SDV fits a Bayesian
                Gaussian mixture to each, up to 100 passes over the rows; the other columns' width moved
                the measured cost little; batch_size at its default)
    patectgan:  a + b * T * (teacher_iters * teachers + student_iters) * batch + c * n * d
                (teachers = n / sample_per_teacher; T the iterations the budget allows when epsilon
                and delta are given, the option `epochs` otherwise)
    report:     a + b * n * d + c * d**2  (row-level releases only: the evaluation and the gate; its
                pairwise measures grow with the square of the columns)

The coefficients (`COEFFICIENTS`, CPU seconds) were fitted by least squares on
the relative error to two runs of the bench's measurements (`synthgate bench
--cases estimates`, bench/estimates.py): adult subsets of 6, 10 and 15 columns and 1,000 to 48,842 rows, each run in a
fresh process, CPU seconds of the fit and sample stages (user + system, the
library import included), on 2026-12-07 on the project's 2-core build machine
(shared, hence CPU rather than wall seconds); MWEM's and DPCTGAN's were refitted
to later runs of the same harness after MWEM's loop was vectorised and DPCTGAN
came to choose its batch size (12 MWEM and 7 DPCTGAN fits, batch 128 to 1,024), and DPCTGAN's again
when the workers came to run torch on one thread (privacy/synthesizers/_torch_threads.py: a
quarter of the CPU seconds or less; 16 fits, batch 128 to 1,024, 1,000 to 27,000 rows).
PATECTGAN's, CTGAN's, TVAE's and CopulaGAN's were refitted in the same way on one torch thread, each to
21 fits of 2,000 to 48,842 rows and 6 to 15 columns (1 to 30 epochs; PATECTGAN 2 to 20 iterations)
in four passes (bench/results/estimates-torch-2026-12-07.md).
docs/time-estimates.md gives the measurements and the errors. Methods the bench does not measure use the
generic form with a deliberately high coefficient and say so in `basis`.

The range is [0.5, 2] x the estimate: the same run measured twice differed by up
to 40% in CPU seconds on the shared machine, and wall time there was 1.2 to 5.6
times the CPU time. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privacy.errors import RequestRefused
from privacy.schema import PublicSchema
from privacy.synthesizers._dpctgan_time import DPCTGAN_COEFFICIENTS, dpctgan_epoch_seconds, dpctgan_fixed_seconds

__all__ = [
    "COEFFICIENTS",
    "Estimate",
    "EstimateOverLimit",
    "check_estimate",
    "dpctgan_epoch_seconds",
    "dpctgan_fixed_seconds",
    "estimate_release",
    "faster_options",
    "method_options",
]

#: per method: the model's coefficients (CPU seconds); see the module docstring for the forms
COEFFICIENTS: dict[str, dict[str, float]] = {
    "mst": {"a": 0.71, "b": 1.06e-6},
    # w: CPU seconds per million junction-tree cells x mirror-descent iterations (~50 ns each), the bound
    # AIM's work budget (option max_work) puts on the part of its time that grows with the rows
    "aim": {"a": 0.65, "b": 5.77e-6, "c": 9.33e-5, "w": 0.05},
    "mwem": {"a": 1.04, "b": 2.02e-7, "c": 1.89e-4},
    "dpctgan": DPCTGAN_COEFFICIENTS,
    "patectgan": {"a": 2.63, "b": 4.22e-5, "c": 6.47e-6},
    # c: per row and numeric column, SDV's Gaussian mixture of each numeric column before training
    "ctgan": {"a": 2.02, "b": 1.06e-4, "c": 1.7e-4},
    "tvae": {"a": 2.44, "b": 2.14e-5, "c": 1.24e-4},
    "copulagan": {"a": 2.35, "b": 1.14e-4, "c": 1.5e-4},
    "gaussian-copula": {"a": 3.09, "b": 1.84e-5},
    "dp-copula": {"a": 0.0, "b": 3.61e-6},
    "dp-marginals": {"a": 0.0, "b": 3.61e-6},
    "report": {"a": 5.3, "b": 4.38e-7, "c": 0.0156},
    # not measured by the bench: the generic form a + b * n * d, generous
    "generic": {"a": 5.0, "b": 2.0e-5},
}
#: the methods whose model is epochs x rows
_EPOCH_METHODS = ("ctgan", "tvae", "copulagan")
#: bounds of the range around the estimate
LOW, HIGH = 0.5, 2.0
#: the quick methods a refusal may suggest instead, when installed (both DP: every policy allows them)
FAST_ALTERNATIVES = ("mst", "aim")


@dataclass(frozen=True)
class Estimate:
    """Predicted CPU seconds of one release, and what the prediction rests on."""

    method: str
    rows: int
    columns: int
    fit_seconds: float
    report_seconds: float
    basis: str

    @property
    def total_seconds(self) -> float:
        return self.fit_seconds + self.report_seconds

    @property
    def low_seconds(self) -> float:
        return self.total_seconds * LOW

    @property
    def high_seconds(self) -> float:
        return self.total_seconds * HIGH

    @property
    def minutes(self) -> float:
        return self.total_seconds / 60

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rows": self.rows,
            "columns": self.columns,
            "fit_seconds": round(self.fit_seconds, 1),
            "report_seconds": round(self.report_seconds, 1),
            "total_seconds": round(self.total_seconds, 1),
            "low_seconds": round(self.low_seconds, 1),
            "high_seconds": round(self.high_seconds, 1),
            "text": describe_seconds(self.total_seconds),
            "basis": self.basis,
        }


class EstimateOverLimit(RequestRefused):
    """The release's time estimate exceeds the dataset policy's `max_estimated_minutes`; refused up front."""

    code = "estimate_over_limit"
    status = 422


def describe_seconds(seconds: float) -> str:
    """`~40 s`, `~4 min`, `~1.5 h`."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def method_options(method: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's options checked and coerced (text from a form or a query string), defaults filled in;
    MethodOptionError names an unknown or out-of-range one."""
    from privacy.catalogue import SynthesizerEntry, method_entry

    entry = method_entry(method)
    if not isinstance(entry, SynthesizerEntry):
        return dict(options or {})
    return entry.cls.validate_options(options or {})


def _domain_sizes(schema: PublicSchema, bins: int) -> list[int]:
    """Codes per modelled column as a binning encoder makes them (an open column: its bins and a null code)."""
    from privacy.encoding import DomainEncoder

    names = schema.synthesized_columns
    closed = [n for n in names if not schema.columns[n].is_open]
    sizes = (
        dict(zip(closed, DomainEncoder(schema, default_bins=bins, columns=closed).sizes, strict=True)) if closed else {}
    )
    return [int(sizes.get(n, bins + 1)) for n in names]


def _numeric_columns(schema: PublicSchema) -> int:
    """Modelled columns without a category domain: SDV's GANs and TVAE fit a Gaussian mixture to each."""
    return sum(1 for n in schema.synthesized_columns if schema.columns[n].values is None)


def _mwem_features(sizes: list[int], opts: Mapping[str, Any]) -> tuple[float, float, int]:
    """MWEM's work, summed over its histograms: (slice updates, noise draws, histograms).

    A histogram's query pool repeats its 1- to `marginal_width`-way marginals (query sets of as many
    slices as the marginal has cells); `k` is their mean size. Iteration i measures one more set and
    re-applies all i sets `mult_weights_iterations` times, slice by slice: T (T + 1) / 2 x mwi x k slice
    updates (a scalar step each; the marginal and the product over the histogram of each set cost little
    at these sizes), and T x k Laplace draws (OpenDP's sampler, about 0.2 ms each).
    """
    from itertools import combinations

    from privacy.synthesizers._smartnoise_marginal import mwem_splits

    cap = int(opts["max_cells"])
    splits = mwem_splits([min(s, cap) for s in sizes], cap, int(opts["max_columns"]))
    t, mwi, width = int(opts["iterations"]), int(opts["mult_weights_iterations"]), int(opts["marginal_width"])
    slices = draws = 0.0
    for split in splits:
        dims = [sizes[j] for j in split]
        marginals = [math.prod(c) for w in range(1, min(width, len(dims)) + 1) for c in combinations(dims, w)]
        k = sum(marginals) / len(marginals)
        slices += t * (t + 1) / 2 * mwi * k
        draws += t * k
    return slices, draws, len(splits)


def _dpctgan_plan(opts: Mapping[str, Any], rows: int, epsilon: float | None, delta: float | None) -> tuple[int, int]:
    """The (batch, epochs) DPCTGAN's fit will choose, with the budget less its row count's shares."""
    from privacy.synthesizers._smartnoise_gan import DPCTGAN_MINUTES, DPCTGAN_SIGMA, _DPCTGANMethod, dpctgan_plan

    eps = dl = None
    if epsilon is not None and delta and epsilon > 0:
        eps = float(epsilon) * float(1 - _DPCTGANMethod.ROW_COUNT_SHARE)
        dl = float(delta) * float(1 - _DPCTGANMethod.ROW_COUNT_FAILURE_SHARE)
    return dpctgan_plan(
        rows,
        batch_size=opts.get("batch_size"),
        epochs=opts.get("epochs"),
        minutes=float(DPCTGAN_MINUTES if opts.get("minutes") is None else opts["minutes"]),
        sigma=float(DPCTGAN_SIGMA if opts.get("sigma") is None else opts["sigma"]),
        epsilon=eps,
        delta=dl,
    )


def _pate_iterations(opts: Mapping[str, Any], rows: int, epsilon: float | None, delta: float | None) -> int:
    """PATECTGAN's iterations: the option, or fewer when the budget runs out first (as its fit decides)."""
    limit = int(opts["epochs"])
    if epsilon is None or not delta or epsilon <= 0:
        return limit
    from privacy.synthesizers._smartnoise_gan import pate_epsilon

    batch = max(2, min(int(opts["batch_size"]), max(2, rows // 2)))
    per_iteration = int(opts["student_iters"]) * batch
    eps = epsilon * 0.95
    gamma = float(opts["noise_multiplier"])
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if pate_epsilon(per_iteration * mid, gamma, delta) <= eps:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 1)


def estimate_release(
    method: str,
    schema: PublicSchema,
    rows: int,
    options: Mapping[str, Any] | None = None,
    epsilon: float | None = None,
    *,
    delta: float | None = None,
    report: bool | None = None,
) -> Estimate:
    """Predict the CPU seconds of a release of `method` on `rows` rows of a table with `schema`.

    `rows` must be a public figure (see the module docstring). `report`: whether
    the release builds an evaluation report (None: row-level kinds do).
    """
    from privacy.catalogue import method_entry

    entry = method_entry(method)
    opts = method_options(method, options)
    n = max(int(rows), 1)
    d = max(len(schema.synthesized_columns), 1)
    nd = n * d
    k = COEFFICIENTS.get(method)
    if method == "mst" or method == "dp-marginals" or method == "dp-copula" or method == "gaussian-copula":
        assert k is not None
        fit = k["a"] + k["b"] * nd
        basis = f"{method}: {k['a']} s + {k['b']:g} s x rows x columns"
    elif method == "aim":
        k = COEFFICIENTS["aim"]
        rounds = int(opts.get("rounds") or 16 * d)
        cap = k["w"] * float(opts.get("max_work") or 150.0)
        fit = k["a"] + min(k["b"] * nd, cap) + k["c"] * rounds * d * d
        basis = (
            f"aim: {k['a']} s + {k['b']:g} s x rows x columns, at most {k['w']:g} s x max_work "
            f"({cap:.1f} s), + {k['c']:g} s x rounds ({rounds}) x columns^2"
        )
    elif method == "mwem":
        k = COEFFICIENTS["mwem"]
        slices, draws, histograms = _mwem_features(_domain_sizes(schema, int(opts["bins"])), opts)
        fit = k["a"] + k["b"] * slices + k["c"] * draws
        basis = (
            f"mwem: {k['a']} s + {k['b']:g} s x slice updates ({slices:,.0f}) + {k['c']:g} s x noise draws "
            f"({draws:,.0f}) over {histograms} histogram(s), from "
            f"iterations ({opts['iterations']}), mult_weights_iterations ({opts['mult_weights_iterations']}) "
            "and the marginals' sizes"
        )
    elif method == "dpctgan":
        k = COEFFICIENTS["dpctgan"]
        batch, epochs = _dpctgan_plan(opts, n, epsilon, delta)
        epochs = max(epochs, 1)
        fit = k["a"] + epochs * dpctgan_epoch_seconds(n, batch)
        basis = f"dpctgan: {k['a']} s + epochs ({epochs}) x rows x ({k['b']:g} s + {k['c']:g} s / batch ({batch}))"
    elif method in _EPOCH_METHODS:
        k = COEFFICIENTS[method]
        epochs = int(opts["epochs"])
        numeric = _numeric_columns(schema)
        fit = k["a"] + k["b"] * epochs * n + k["c"] * n * numeric
        basis = (
            f"{method}: {k['a']} s + {k['b']:g} s x epochs ({epochs}, at most) x rows "
            f"+ {k['c']:g} s x rows x numeric columns ({numeric})"
        )
    elif method == "patectgan":
        k = COEFFICIENTS["patectgan"]
        iterations = _pate_iterations(opts, n, epsilon, delta)
        teachers = max(2, n // max(1, int(opts["sample_per_teacher"])))
        batch = max(2, min(int(opts["batch_size"]), max(2, n // 2)))
        work = iterations * (int(opts["teacher_iters"]) * teachers + int(opts["student_iters"])) * batch
        fit = k["a"] + k["b"] * work + k["c"] * nd
        basis = (
            f"patectgan: {k['a']} s + {k['b']:g} s x iterations ({iterations}) x (teacher_iters x teachers "
            f"({teachers}) + student_iters) x batch ({batch}) + {k['c']:g} s x rows x columns"
        )
    else:
        k = COEFFICIENTS["generic"]
        fit = k["a"] + k["b"] * nd
        basis = f"{method}: not measured by the bench; generic {k['a']} s + {k['b']:g} s x rows x columns"
    with_report = entry.row_level if report is None else report
    rep = 0.0
    if with_report:
        kr = COEFFICIENTS["report"]
        rep = kr["a"] + kr["b"] * nd + kr["c"] * d * d
        basis += f"; report: {kr['a']} s + {kr['b']:g} s x rows x columns + {kr['c']:g} s x columns^2"
    basis += f"; {n:,} rows x {d} columns; CPU seconds on the bench machine"
    return Estimate(method=method, rows=n, columns=d, fit_seconds=fit, report_seconds=rep, basis=basis)


def _largest_under(make: Any, lo: int, hi: int, limit_seconds: float) -> tuple[int, Estimate] | None:
    """The largest integer v in [lo, hi] whose estimate `make(v)` is within the limit (estimates grow with v)."""
    best = make(lo)
    if best.total_seconds > limit_seconds:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        est = make(mid)
        if est.total_seconds <= limit_seconds:
            lo, best = mid, est
        else:
            hi = mid - 1
    return lo, best


#: per method, the options a refusal may lower, and the smallest value each may take
_TUNABLE: dict[str, tuple[tuple[str, int], ...]] = {
    "dpctgan": (("epochs", 1),),
    "ctgan": (("epochs", 1),),
    "tvae": (("epochs", 1),),
    "copulagan": (("epochs", 1),),
    "patectgan": (("epochs", 1), ("teacher_iters", 1)),
    "mwem": (("iterations", 1), ("bins", 2), ("max_cells", 1)),
    "aim": (("rounds", 1),),
}


def faster_options(
    method: str,
    schema: PublicSchema,
    rows: int,
    options: Mapping[str, Any] | None,
    limit_seconds: float,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    alternatives: tuple[str, ...] = FAST_ALTERNATIVES,
) -> list[str]:
    """Concrete changes that bring the estimate within `limit_seconds`, each with the estimate it gives.

    One option at a time, at the largest value that fits (same model as the
    estimate), then the quick methods of `alternatives` that fit.
    """
    opts = method_options(method, options)
    out: list[str] = []
    for name, floor in _TUNABLE.get(method, ()):
        current = opts.get(name)
        if name == "rounds" and current is None:
            current = 16 * len(schema.synthesized_columns)
        if method == "dpctgan" and name == "epochs" and current is None:
            current = _dpctgan_plan(opts, max(int(rows), 1), epsilon, delta)[1]
        if current is None or int(current) <= floor:
            continue

        def make(v: int, name: str = name) -> Estimate:
            return estimate_release(method, schema, rows, {**opts, name: v}, epsilon, delta=delta)

        if name == "max_cells":
            # coarser histograms: fewer columns per histogram costs nothing in accuracy of the margins
            est = estimate_release(method, schema, rows, {**opts, "max_columns": 1}, epsilon, delta=delta)
            if est.total_seconds <= limit_seconds:
                out.append(f"max_columns=1 ({describe_seconds(est.total_seconds)})")
            continue
        found = _largest_under(make, floor, int(current) - 1, limit_seconds)
        if found is not None:
            value, est = found
            out.append(f"{name}={value} ({describe_seconds(est.total_seconds)})")
    from privacy.catalogue import catalogue_names

    installed = set(catalogue_names())
    for alt in alternatives:
        if alt == method or alt not in installed:
            continue
        est = estimate_release(alt, schema, rows, None, epsilon, delta=delta)
        if est.total_seconds <= limit_seconds:
            out.append(f"method {alt} ({describe_seconds(est.total_seconds)})")
    return out


def check_estimate(
    method: str,
    schema: PublicSchema,
    rows: int,
    options: Mapping[str, Any] | None,
    max_minutes: float | None,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    dataset: str | None = None,
) -> Estimate:
    """The estimate; EstimateOverLimit when it exceeds `max_minutes` (None: no limit), naming what fits."""
    est = estimate_release(method, schema, rows, options, epsilon, delta=delta)
    if max_minutes is None or est.total_seconds <= max_minutes * 60:
        return est
    limit = max_minutes * 60
    changes = faster_options(method, schema, rows, options, limit, epsilon=epsilon, delta=delta)
    where = f" of dataset '{dataset}'" if dataset else ""
    hint = (
        "; any of these brings it under: " + ", ".join(changes)
        if changes
        else "; ask for fewer rows, or ask the steward to raise max_estimated_minutes"
    )
    raise EstimateOverLimit(
        f"{method} is estimated at {describe_seconds(est.total_seconds)} ({est.rows:,} rows x {est.columns} "
        f"columns), over the {max_minutes:g} min limit (max_estimated_minutes) of the policy{where}{hint}",
        field="options",
    )
