"""Bench case `estimates` (bench/estimates.py): the real quick list, each fit measured in a fresh process and
compared with the estimate. The quick list (tiny MST, AIM, MWEM and DPCTGAN fits) takes about 20 CPU seconds,
so the case runs with the rest of the suite."""

from __future__ import annotations

import pytest

from bench import estimates
from bench.cases import CASES, resolve_cases
from bench.config import BenchConfig

pytestmark = pytest.mark.slow


def _label(options: dict | None) -> str:
    return f" {options}" if options else ""


def test_the_case_is_registered_by_name_and_number():
    assert CASES["estimates"] is estimates.case_estimates
    assert resolve_cases(["10"]) == ["estimates"]


def test_the_quick_list_covers_the_slow_methods_on_tiny_tables():
    methods = {method for method, _rows, _width, _options in estimates.QUICK_RUNS}
    assert {"mst", "mwem", "dpctgan"} <= methods
    assert set(estimates.TARGET_METHODS) <= methods
    assert all(rows <= 2_000 and width <= 6 for _m, rows, width, _o in estimates.QUICK_RUNS)


def test_the_quick_estimates_case_reports_predicted_measured_and_the_error():
    case = estimates.case_estimates(BenchConfig(quick=True, epsilon=1.0, delta=1e-6, log=lambda m: None))
    assert case["ok"], case.get("errors")
    assert [ln["run"].rsplit(": predicted", 1)[0] for ln in case["lines"]] == [
        f"{method} {rows:,} x {width}{_label(options)}" for method, rows, width, options in estimates.QUICK_RUNS
    ]
    for line in case["lines"]:
        assert line["cpu_s"] > 0 and line["predicted_s"] > 0
        # the error is taken before predicted_s and cpu_s are rounded to 0.01 s: allow for that rounding
        rounding = 0.01 + 0.006 * (1 + line["error"]) / line["cpu_s"]
        assert line["error"] == pytest.approx(abs(line["predicted_s"] - line["cpu_s"]) / line["cpu_s"], abs=rounding)
    methods = {method for method, *_ in estimates.QUICK_RUNS}
    assert set(case["figures"]["median_abs_error"]) == methods
    for method in estimates.TARGET_METHODS:
        target = case["targets"][f"{method}: median absolute error of the estimate"]
        assert target["target"] == "<= 0.3" and target["met"] in (True, False)
    runs = case["figures"]["runs"]
    assert (
        case["ratio"][f"mst: median absolute error, runs: {runs['mst']}"] == case["figures"]["median_abs_error"]["mst"]
    )
