"""Bench case `aim_scale` (bench/aim_scale.py) in quick mode: AIM and MST on adult resampled to 20,000 x 8,
and AIM on 5,000 rows, each in a fresh process. Nothing here asserts a timing or a TVD value: the checks are
that every run is measured, that the ratios and targets the case promises are present and sane, and that the
quality figures are distances in [0, 1]."""

from __future__ import annotations

import math

import pytest

from bench import aim_scale
from bench.cases import CASES, resolve_cases
from bench.config import BenchConfig

pytestmark = pytest.mark.slow


def test_the_case_is_registered_by_name_and_number() -> None:
    assert CASES["aim_scale"] is aim_scale.case_aim_scale
    assert resolve_cases(["11"]) == ["aim_scale"]


@pytest.fixture(scope="module")
def quick_case() -> dict:
    return aim_scale.case_aim_scale(BenchConfig(quick=True, epsilon=1.0, delta=1e-9, log=lambda m: None))


def test_a_quick_run_measures_every_run_and_stage(quick_case: dict) -> None:
    assert quick_case["ok"], quick_case.get("errors")
    p = aim_scale.QUICK_AIM_SCALE
    runs = [f"aim @ {p.rows:,}", f"mst @ {p.rows:,}", f"aim @ {p.base_rows:,}"]
    stages = {(ln["run"], ln["stage"]) for ln in quick_case["lines"]}
    assert stages == {(run, stage) for run in runs for stage in ("prepare", "fit", "sample")}
    for line in quick_case["lines"]:
        assert line["wall_s"] >= 0 and line["cpu_s"] >= 0 and line["peak_rss_mib"] > 0
        assert line["model_cells"] > 0
        assert (line["rounds"] is None) == line["run"].startswith("mst")
    assert quick_case["setup"]["rows"] == p.rows and quick_case["setup"]["columns"] == p.columns
    figures = quick_case["figures"]
    assert list(figures) == runs
    for run, fig in figures.items():
        assert fig["fit_sample_cpu_s"] > 0 and fig["process_peak_rss_mib"] > 0, run
        assert 0 < fig["tvd"]["mean"] <= fig["tvd"]["max"] <= 1, run
        assert fig["tvd"]["pairs"] == math.comb(len(p.columns or []), 2), run
    assert figures[runs[0]]["rounds"] >= 1 and figures[runs[2]]["rounds"] >= 1


def test_a_quick_run_has_the_promised_ratios_and_targets(quick_case: dict) -> None:
    p = aim_scale.QUICK_AIM_SCALE
    time_key = f"aim / mst: fit+sample CPU @ {p.rows:,}"
    tvd_key = f"aim tvd: {p.rows:,} / {p.base_rows:,}"
    assert set(quick_case["ratio"]) == set(quick_case["targets"]) == {time_key, tvd_key}
    figures = quick_case["figures"]
    runs = list(figures)
    assert quick_case["ratio"][time_key] == pytest.approx(
        figures[runs[0]]["fit_sample_cpu_s"] / figures[runs[1]]["fit_sample_cpu_s"], rel=0.05, abs=0.01
    )
    assert quick_case["ratio"][tvd_key] == pytest.approx(
        figures[runs[0]]["tvd"]["mean"] / figures[runs[2]]["tvd"]["mean"], rel=0.05, abs=0.01
    )
    assert quick_case["targets"][time_key]["target"] == "<= 10"
    assert quick_case["targets"][tvd_key]["target"] == "<= 1"
    for target in quick_case["targets"].values():
        assert target["met"] in (True, False) and target["value"] > 0


def test_codes_tvd_is_zero_on_the_same_table_and_one_on_disjoint_tables() -> None:
    import numpy as np

    from privacy.engine.table import EncodedTable

    a = EncodedTable(np.array([[0, 0], [1, 1], [0, 1]]), (2, 2))
    assert aim_scale.codes_tvd(a, a) == {"mean": 0.0, "max": 0.0, "pairs": 1}
    b = EncodedTable(np.array([[1, 0], [1, 0]]), (2, 2))
    assert aim_scale.codes_tvd(a, b)["mean"] == 1.0
