"""The benchmark harness (bench/): measurement in fresh processes, and a quick-mode run of the library cases.

Nothing here asserts a timing: the checks are that every case is produced,
that every figure is a positive number, that the promised ratios are present,
and that memory measured in one process or stage does not leak into another.
The service cases (3, 5) run in tests/integration/test_bench_service.py.
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from bench import render_markdown, render_text, run_bench
from bench.cases import CASES, resolve_cases
from bench.measure import Meter, run_in_child, run_program

pytestmark = pytest.mark.slow

ALLOCATE_MIB = 300


# ----- workloads run in child processes by the tests below (imported there by name) ----------------------


def allocate_then_idle(meter: Meter, mib: int) -> None:
    """Stage `big` holds `mib` MiB, then frees it; stage `small` allocates nothing."""
    import numpy as np

    with meter.stage("big"):
        block = np.ones(mib * 2**20 // 8)
        block[::512] = 2.0  # touch every page
        meter.info["sum"] = float(block[:1024].sum())
        del block
    with meter.stage("small"):
        meter.info["small"] = sum(range(1000))


def idle(meter: Meter) -> None:
    with meter.stage("idle"):
        meter.info["idle"] = True


def raises(meter: Meter) -> None:
    with meter.stage("before"):
        pass
    raise RuntimeError("the workload failed on purpose")


def sleeps(meter: Meter, seconds: float) -> None:
    import time

    with meter.stage("sleep"):
        time.sleep(seconds)


# ----- measurement ---------------------------------------------------------------------------------------


def test_stage_peaks_are_per_stage_and_processes_do_not_share_them() -> None:
    big = run_in_child(f"{__name__}:allocate_then_idle", mib=ALLOCATE_MIB)
    assert big.ok, big.error
    assert [s["stage"] for s in big.stages] == ["big", "small"]
    peak_big, peak_small = big.stage("big")["peak_rss_mib"], big.stage("small")["peak_rss_mib"]
    assert peak_big >= ALLOCATE_MIB
    if big.stage("small")["peak_scope"] == "stage":  # the kernel allows resetting the peak mark
        assert peak_small < peak_big - ALLOCATE_MIB / 2
    assert big.process_peak_rss_mib >= peak_big
    # a second fresh process does not inherit the first one's peak
    other = run_in_child(f"{__name__}:idle")
    assert other.ok and other.info == {"idle": True}
    assert other.process_peak_rss_mib < big.process_peak_rss_mib - ALLOCATE_MIB / 2
    for s in big.stages + other.stages:
        assert s["wall_s"] >= 0 and s["cpu_s"] >= 0 and s["peak_rss_mib"] > 0


def test_a_failing_or_overrunning_workload_is_reported_not_raised() -> None:
    failed = run_in_child(f"{__name__}:raises")
    assert not failed.ok
    assert "the workload failed on purpose" in failed.error
    assert [s["stage"] for s in failed.stages] == ["before"]  # what was measured before the failure is kept
    slow = run_in_child(f"{__name__}:sleeps", timeout=3, seconds=60)
    assert not slow.ok and "timed out" in slow.error
    missing = run_in_child("bench.workloads:no_such_workload")
    assert not missing.ok and "no_such_workload" in missing.error


def test_run_program_reports_the_child_processes_own_usage() -> None:
    import sys

    ok = run_program(
        [sys.executable, "-c", "import numpy as np; a = np.ones(40 * 2**20 // 8); a[::512] = 2; print(a.sum() > 0)"]
    )
    assert ok["ok"] and ok["returncode"] == 0 and "True" in ok["stdout"]
    assert ok["peak_rss_mib"] >= 40 and ok["wall_s"] > 0 and ok["cpu_s"] > 0
    bad = run_program([sys.executable, "-c", "import sys; sys.exit('no such input')"])
    assert not bad["ok"] and bad["returncode"] == 1 and "no such input" in bad["stderr"]


def test_cases_are_chosen_by_name_or_number() -> None:
    assert resolve_cases(None) == list(CASES)
    assert resolve_cases(["1", "aim", "7", "mst"]) == ["mst", "aim", "methods"]
    with pytest.raises(ValueError, match="unknown case 'nope'"):
        resolve_cases(["nope"])


# ----- a quick-mode run ----------------------------------------------------------------------------------

LIBRARY_CASES = ["mst", "aim", "report", "scale", "methods", "engine"]


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def quick_results() -> dict:
    return run_bench(quick=True, cases=LIBRARY_CASES)


def test_quick_run_produces_every_case_with_sane_fields(quick_results: dict) -> None:
    assert quick_results["mode"] == "quick"
    assert [c["id"] for c in quick_results["cases"]] == LIBRARY_CASES
    assert quick_results["host"]["cpus"] >= 1 and len(quick_results["host"]["load_average_start"]) == 3
    for case in quick_results["cases"]:
        assert case["ok"], (case["id"], case.get("errors"))
        assert case["lines"], case["id"]
        for line in case["lines"]:
            for key in ("wall_s", "cpu_s", "peak_rss_mib"):
                value = line[key]
                assert value is None or (isinstance(value, (int, float)) and value >= 0), (case["id"], line)
            assert line["wall_s"] is not None, (case["id"], line)
        # every measured stage used memory and (but for trivial stages) time
        assert all(_positive(ln["peak_rss_mib"]) for ln in case["lines"] if ln["peak_rss_mib"] is not None)
        for value in case["ratio"].values():
            assert _positive(value), (case["id"], case["ratio"])
        for target in case["targets"].values():
            assert target["met"] in (True, False)


def test_quick_run_has_the_promised_ratios(quick_results: dict) -> None:
    cases = {c["id"]: c for c in quick_results["cases"]}
    mst = cases["mst"]
    for key in (
        "fit+sample: smartnoise warm / native warm",
        "fit+sample: smartnoise cold / native cold",
        "fit: smartnoise cold / native warm",
        "process: smartnoise / synthgate synth",
    ):
        assert key in mst["ratio"], key
    stages = {(ln["run"], ln["stage"]) for ln in mst["lines"]}
    for run in ("native mst", "smartnoise MSTSynthesizer"):
        for stage in ("import", "fit_cold", "sample_cold", "fit_warm", "sample_warm"):
            assert (run, stage) in stages
    assert ("synthgate synth (whole process)", "process") in stages
    assert ("python + smartnoise (whole process)", "process") in stages
    # both sides report the quality of what they produced, so that speed is not bought with accuracy
    assert 0 < mst["figures"]["native_tvd"]["tvd_cold"]["mean"] < 1
    assert 0 < mst["figures"]["smartnoise_tvd"]["tvd_cold"]["mean"] < 1
    assert "fit+sample: smartnoise cold / native cold" in cases["aim"]["ratio"]
    report = {ln["stage"] for ln in cases["report"]["lines"]}
    assert {"report", "html"} <= report
    assert set(cases["report"]["figures"]["statuses"]) >= {"fidelity"}
    scale_runs = {ln["run"] for ln in cases["scale"]["lines"]}
    assert scale_runs == {"mst @ 10,000", "dp-copula @ 10,000", "gaussian-copula @ 10,000"}
    methods = cases["methods"]["table"]
    assert [m["method"] for m in methods] == ["mst", "dp-marginals", "dp-copula", "scenario"]
    assert all(m["ok"] and _positive(m["import_s"]) and m["fit_s"] >= 0 for m in methods)
    engine = cases["engine"]
    assert {ln["run"] for ln in engine["lines"]} == {"mst @ 20,000", "mst @ 200,000"}
    assert "mst: fit+sample 200,000 / 20,000 rows" in engine["targets"]
    # the memory ratio is taken against the table the case says it built: one byte per code on adult's domain
    for ln in engine["lines"]:
        rows = int(ln["run"].split("@")[1].replace(",", ""))
        assert ln["table_mib"] == pytest.approx(rows * 15 / 2**20, abs=0.01), ln


def test_results_render_as_text_markdown_and_json(quick_results: dict) -> None:
    text = render_text(quick_results)
    markdown = render_markdown(quick_results)
    for case in quick_results["cases"]:
        assert f"{case['number']}. {case['title']}" in text
        assert f"## {case['number']}. {case['title']}" in markdown
    assert "fit+sample: smartnoise cold / native cold" in text
    assert json.loads(json.dumps(quick_results)) == quick_results


def test_cli_writes_json_with_one_entry_per_case(tmp_path) -> None:
    from webapp.cli import cli

    out = tmp_path / "results.json"
    md = tmp_path / "results.md"
    result = CliRunner().invoke(
        cli, ["bench", "--quick", "--cases", "7", "--json", "-q", "-o", str(out), "--markdown", str(md)]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    saved = json.loads(out.read_text())
    assert printed["cases"][0]["id"] == saved["cases"][0]["id"] == "methods"
    assert len(saved["cases"]) == 1
    assert "| method | guarantee |" in md.read_text()
    bad = CliRunner().invoke(cli, ["bench", "--cases", "99"])
    assert bad.exit_code == 2 and "unknown case" in bad.output


def test_synth_process_case_compares_the_whole_process_with_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.io_cases

    monkeypatch.setattr(bench.io_cases, "QUICK_RUNS", 2)  # full mode's repeated runs, on the quick input
    results = run_bench(quick=True, cases=["synth_process"])
    (case,) = results["cases"]
    assert case["ok"], case.get("errors")
    runs = {(ln["run"], ln["stage"]): ln for ln in case["lines"]}
    processes = [runs[(f"synthgate synth (whole process), run {i} of 2", "process")] for i in (1, 2)]
    engines = [runs[(f"engine (fit + sample), run {i} of 2", "fit+sample")] for i in (1, 2)]
    for i in (1, 2):
        for stage in ("read", "conform", "encode", "fit", "sample", "decode", "write"):
            assert (f"stages one by one, run {i} of 2", stage) in runs, stage
    for process, engine in zip(processes, engines, strict=True):
        assert _positive(process["cpu_s"]) and _positive(process["peak_rss_mib"]) and _positive(engine["cpu_s"])
    figures = case["figures"]
    assert figures["process_cpu_s_runs"] == [p["cpu_s"] for p in processes]
    assert figures["engine_cpu_s_runs"] == [e["cpu_s"] for e in engines]
    process_cpu = (processes[0]["cpu_s"] + processes[1]["cpu_s"]) / 2  # the median of two
    engine_cpu = (engines[0]["cpu_s"] + engines[1]["cpu_s"]) / 2
    assert figures["process_cpu_s"] == pytest.approx(process_cpu, abs=0.001)
    key = "whole-process CPU / engine fit+sample CPU"
    assert case["ratio"][key] == pytest.approx(process_cpu / engine_cpu, abs=0.01)
    assert case["targets"][key]["target"] == "<= 2" and case["targets"][key]["met"] in (True, False)
    assert case["figures"]["csv_bytes"] > 50_000 * 15  # the sampled rows were written
