"""The bench case `evaluate` in quick mode: `synthgate evaluate` as a whole process and the report's steps one
by one, with the whole-process targets reported (never asserted)."""

from __future__ import annotations

import math

import pytest

from bench import run_bench
from bench.cases import CASES
from bench.evaluate_case import CPU_BEFORE_S, QUICK_ROWS

pytestmark = pytest.mark.slow


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def case() -> dict:
    results = run_bench(quick=True, cases=["evaluate"])
    (case,) = results["cases"]
    return case


def test_the_case_is_the_last_one() -> None:
    assert list(CASES)[-1] == "evaluate"


def test_whole_process_and_steps_are_measured(case: dict) -> None:
    assert case["ok"], case.get("errors")
    assert case["setup"]["rows"] == QUICK_ROWS and case["setup"]["columns"] == 15
    runs = {(ln["run"], ln["stage"]): ln for ln in case["lines"]}
    process = runs[("synthgate evaluate (whole process)", "process")]
    assert _positive(process["cpu_s"]) and _positive(process["wall_s"]) and _positive(process["peak_rss_mib"])
    for stage in ("import", "read and conform", "split", "report", "html", "json"):
        assert ("steps one by one", stage) in runs, stage
    report = runs[("steps one by one", "report")]
    assert _positive(report["cpu_s"]) and report["cpu_s"] < process["cpu_s"]  # a part of the whole process


def test_every_section_is_timed_and_computed(case: dict) -> None:
    sections = case["figures"]["sections_cpu_s"]
    for name in ("synthetic", "fidelity", "utility", "privacy", "figures"):
        assert sections[name] >= 0, name
    assert set(case["figures"]["statuses"].values()) == {"computed"}
    summary = case["figures"]["summary"]
    assert summary["synthetic_rows"] == QUICK_ROWS and summary["synthetic_columns"] == 15
    assert 0 <= summary["fidelity_score"] <= 1


def test_targets_are_reported_not_asserted(case: dict) -> None:
    cpu = case["targets"]["whole-process CPU seconds"]
    rss = case["targets"]["whole-process peak RSS (MiB)"]
    assert cpu["target"] == f"<= {CPU_BEFORE_S / 4:g}" and cpu["met"] in (True, False)
    assert rss["target"] == "<= 1536" and rss["met"] in (True, False)
    assert cpu["value"] == case["figures"]["process_cpu_s"]
