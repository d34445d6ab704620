"""Case `estimates`: the time estimate (privacy/estimate.py) against measured fits and reports.

Each method is fitted on adult subsets (rows x columns, small settings) in a
fresh process (`bench.measure.run_in_child`); the stage's CPU seconds are
compared with `estimate_release`'s prediction for the same public schema, row
count and options. CPU seconds, not wall seconds: the machine is shared, and a
fit whose process waits for a core is not slower work.
"""

from __future__ import annotations

from typing import Any

from bench.measure import Meter

__all__ = ["fit_workload", "report_workload"]


def fit_workload(
    meter: Meter,
    *,
    method: str,
    rows: int,
    columns: list[str] | None,
    options: dict[str, Any] | None = None,
    epsilon: float = 1.0,
    delta: float = 1e-6,
    seed: int = 0,
) -> None:
    """Fit `method` on `rows` rows of adult restricted to `columns`, then sample as many rows."""
    from bench.workloads import _quiet, _requested

    with meter.stage("import"):
        from bench.data import adult_table
        from privacy.synthesizers import create_synthesizer, synthesizer_class

        cls = synthesizer_class(method)
        if cls.heavy:  # as the workers of the heavy queue run it: torch imported and on one thread before the job
            from privacy.synthesizers._torch_threads import one_torch_thread

            one_torch_thread()
        synth = create_synthesizer(method, seed=seed, options=options)
        table, schema = adult_table(rows, columns, seed=seed, replace=rows > 48_842)
    requested = _requested(cls, epsilon, delta)
    with meter.stage("fit"), _quiet():
        synth.fit(table, schema, requested)
    with meter.stage("sample"), _quiet():
        synth.sample(rows)
    meter.info.update(method=method, rows=rows, columns=len(schema.synthesized_columns), options=options or {})


def report_workload(meter: Meter, *, rows: int, columns: int, seed: int = 0) -> None:
    """The evaluation report on rows x columns (bench.workloads.report_large's tables)."""
    from bench.workloads import report_large

    report_large(meter, rows=rows, columns=columns, seed=seed)


# the runs of each mode: (method, rows, columns of adult (6, 10 or 15), options); "report" is the evaluation.
# Quick mode: tiny fits of the quick methods and of MWEM and DPCTGAN, about 20 CPU seconds in all, run by the
# test suite (tests/unit/test_bench_estimates.py)
QUICK_RUNS: tuple[tuple[str, int, int, dict[str, Any] | None], ...] = (
    ("mst", 2_000, 6, None),
    ("aim", 2_000, 6, {"rounds": 10}),
    ("mwem", 1_000, 6, {"iterations": 3}),
    ("mwem", 1_000, 6, {"iterations": 9}),
    ("dpctgan", 1_000, 6, {"epochs": 1}),
)
FULL_RUNS: tuple[tuple[str, int, int, dict[str, Any] | None], ...] = (
    ("mst", 5_000, 6, None),
    ("mst", 20_000, 10, None),
    ("mst", 48_842, 15, None),
    ("aim", 5_000, 6, {"rounds": 20}),
    ("aim", 20_000, 10, {"rounds": 40}),
    ("aim", 48_842, 10, {"rounds": 80}),
    ("mwem", 2_000, 6, {"iterations": 3}),
    ("mwem", 2_000, 6, {"iterations": 9}),
    ("mwem", 2_000, 6, {"iterations": 20}),
    ("mwem", 2_000, 6, {"iterations": 30}),
    ("mwem", 8_000, 10, {"iterations": 3}),
    ("mwem", 8_000, 10, {"iterations": 10}),
    ("mwem", 8_000, 10, {"iterations": 20}),
    ("mwem", 2_000, 6, {"iterations": 10, "mult_weights_iterations": 5}),
    ("mwem", 8_000, 10, {"iterations": 60}),
    ("mwem", 27_000, 10, None),
    ("mwem", 2_000, 15, None),
    ("dpctgan", 1_000, 6, {"epochs": 1}),
    ("dpctgan", 4_000, 6, {"epochs": 1}),
    ("dpctgan", 2_000, 10, {"epochs": 2}),
    ("dpctgan", 8_000, 10, {"epochs": 1}),
    ("patectgan", 2_000, 6, {"epochs": 2}),
    ("patectgan", 8_000, 10, {"epochs": 4}),
    ("patectgan", 8_000, 10, {"epochs": 20}),
    ("ctgan", 2_000, 6, {"epochs": 2}),
    ("ctgan", 8_000, 10, {"epochs": 20}),
    ("ctgan", 27_000, 10, {"epochs": 5}),
    ("tvae", 4_000, 10, {"epochs": 2}),
    ("tvae", 8_000, 10, {"epochs": 20}),
    ("copulagan", 4_000, 10, {"epochs": 2}),
    ("copulagan", 8_000, 10, {"epochs": 20}),
    ("gaussian-copula", 5_000, 10, None),
    ("gaussian-copula", 20_000, 15, None),
    ("dp-copula", 20_000, 10, None),
    ("report", 2_000, 6, None),
    ("report", 8_000, 10, None),
    ("report", 4_000, 20, None),
    ("report", 20_000, 30, None),
)
#: the target: the estimate's median absolute error per method, for the slow methods
TARGET_MEDIAN_ERROR = 0.30
TARGET_METHODS = ("mwem", "dpctgan")


def _adult_columns(width: int) -> list[str] | None:
    from bench.data import AIM_COLUMNS, QUICK_COLUMNS

    return {6: QUICK_COLUMNS, 10: AIM_COLUMNS}.get(width)


def predicted_seconds(method: str, rows: int, width: int, options: dict[str, Any] | None, epsilon: float, delta: float):  # type: ignore[no-untyped-def]
    """The estimate of one run: the fit's (with sampling), or for "report" the report's."""
    from bench.data import ADULT_SCHEMA, subset_schema
    from privacy.estimate import COEFFICIENTS, estimate_release
    from privacy.schema import load_schema

    if method == "report":
        k = COEFFICIENTS["report"]
        return k["a"] + k["b"] * rows * width + k["c"] * width * width
    schema = subset_schema(load_schema(ADULT_SCHEMA), _adult_columns(width))
    return estimate_release(method, schema, rows, options, epsilon, delta=delta, report=False).fit_seconds


def case_estimates(cfg: Any) -> dict[str, Any]:
    """Predicted against measured CPU seconds, per run, and the median absolute percentage error per method."""
    import statistics

    from bench.config import _fail, _line, _target, new_case
    from bench.measure import run_in_child

    runs = QUICK_RUNS if cfg.quick else FULL_RUNS
    case = new_case(
        title="Time estimates (privacy/estimate.py) against measured CPU seconds of fits and reports on adult",
        setup={"runs": len(runs), "epsilon": cfg.epsilon, "delta": cfg.delta, "clock": "CPU seconds"},
        notes=[
            "CPU seconds (user + system) of the fit and sample stages in a fresh process, library import "
            "included; reports: the evaluation on bench.workloads.report_large's generated tables",
            "the machine may be shared: CPU rather than wall seconds",
        ],
    )
    errors: dict[str, list[float]] = {}
    for method, rows, width, options in runs:
        run = f"{method} {rows:,} x {width}" + (f" {options}" if options else "")
        cfg.log(f"[estimates] {run}")
        if method == "report":
            result = run_in_child(
                "bench.estimates:report_workload", timeout=cfg.params.timeout, rows=rows, columns=width
            )
            stages = ("split", "report")
        else:
            result = run_in_child(
                "bench.estimates:fit_workload",
                timeout=cfg.params.timeout,
                method=method,
                rows=rows,
                columns=_adult_columns(width),
                options=options,
                epsilon=cfg.epsilon,
                delta=cfg.delta,
                seed=cfg.seed,
            )
            stages = ("fit", "sample")
        if not result.ok:
            _fail(case, run, result)
            continue
        chosen = [s for s in result.stages if s["stage"] in stages]
        cpu = sum(s["cpu_s"] for s in chosen)
        wall = sum(s["wall_s"] for s in chosen)
        predicted = predicted_seconds(method, rows, width, options, cfg.epsilon, cfg.delta)
        error = abs(predicted - cpu) / cpu if cpu > 0 else 0.0
        errors.setdefault(method, []).append(error)
        case["lines"].append(
            _line(
                f"{run}: predicted {predicted:.2f} s",
                "+".join(stages),
                wall,
                cpu,
                max(s["peak_rss_mib"] for s in chosen),
                predicted_s=round(predicted, 2),
                error=round(error, 3),
            )
        )
    medians = {m: round(statistics.median(v), 3) for m, v in errors.items()}
    case["figures"] = {"median_abs_error": medians, "runs": {m: len(v) for m, v in errors.items()}}
    for method, median in medians.items():
        case["ratio"][f"{method}: median absolute error, runs: {len(errors[method])}"] = median
    for method in TARGET_METHODS:
        if method in medians:
            case["targets"][f"{method}: median absolute error of the estimate"] = _target(
                medians[method], "<=", TARGET_MEDIAN_ERROR
            )
    return case
