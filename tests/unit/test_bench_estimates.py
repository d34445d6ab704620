"""Bench case `estimates` (bench/estimates.py): one real run of the quick list (MST, seconds), measured in a
fresh process and compared with the estimate. The whole quick list (GAN and MWEM fits included) takes
longer than the CI's quick bench allows, so it is run by `synthgate bench --quick --cases estimates`."""

from __future__ import annotations

import pytest

from bench import estimates
from bench.cases import CASES, resolve_cases
from bench.config import BenchConfig

pytestmark = pytest.mark.slow


def test_the_case_is_registered_by_name_and_number():
    assert CASES["estimates"] is estimates.case_estimates
    assert resolve_cases(["10"]) == ["estimates"]


def test_a_quick_estimates_run_reports_predicted_measured_and_the_error(monkeypatch):
    monkeypatch.setattr(estimates, "QUICK_RUNS", (("mst", 2_000, 6, None), ("mwem", 1_000, 6, {"iterations": 3})))
    case = estimates.case_estimates(BenchConfig(quick=True, epsilon=1.0, delta=1e-6, log=lambda m: None))
    assert case["ok"], case.get("errors")
    assert [ln["run"].rsplit(": predicted", 1)[0] for ln in case["lines"]] == [
        "mst 2,000 x 6",
        "mwem 1,000 x 6 {'iterations': 3}",
    ]
    for line in case["lines"]:
        assert line["cpu_s"] > 0 and line["predicted_s"] > 0
        assert line["error"] == pytest.approx(abs(line["predicted_s"] - line["cpu_s"]) / line["cpu_s"], abs=0.01)
    assert set(case["figures"]["median_abs_error"]) == {"mst", "mwem"}
    target = case["targets"]["mwem: median absolute error of the estimate"]
    assert target["target"] == "<= 0.3" and target["met"] in (True, False)
    assert case["ratio"]["mst: median absolute error, runs: 1"] == case["figures"]["median_abs_error"]["mst"]
