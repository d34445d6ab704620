"""The benchmark's service cases in quick mode: a real gunicorn, real Celery worker processes, embedded backend.

Case 3 (one release through the service against its library calls) and case
5 (releases submitted at once to 1 and 2 workers). No timing is asserted: the
checks are that every release reached awaiting_approval, that each stage and
ratio the harness promises is there and is a finite number, and that the
harness stopped every process it started.
"""

from __future__ import annotations

import math
import os

import pytest

from bench import run_bench

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def results() -> dict:
    return run_bench(quick=True, cases=["service", "throughput"])


def test_service_case_compares_the_release_with_its_library_calls(results: dict) -> None:
    case = results["cases"][0]
    assert case["id"] == "service" and case["ok"], case.get("errors")
    stages = {(ln["run"], ln["stage"]): ln for ln in case["lines"]}
    for label in ("cold", "warm"):
        run = f"service ({label} worker)"
        for stage in (
            "request (HTTP POST)",
            "queue wait",
            "load",
            "split",
            "fit",
            "sample",
            "postprocess",
            "evaluate",
            "write",
            "request to awaiting_approval",
        ):
            assert (run, stage) in stages, (run, stage)
        total = stages[(run, "request to awaiting_approval")]
        assert total["wall_s"] > 0 and total["cpu_s"] > 0 and total["peak_rss_mib"] > 0
        for stage in ("load", "split", "fit", "sample", "postprocess", "evaluate"):
            lib = stages[("library calls (direct)", f"{stage}_{label}")]
            assert lib["wall_s"] >= 0 and lib["peak_rss_mib"] > 0
    for key in (
        "service warm / library calls warm",
        "service warm / library calls warm (CPU)",
        "service cold / (library imports + calls cold)",
    ):
        assert case["ratio"][key] > 0, key
    # a share of the service's time: below 1, and negative only when the library run was the slower one
    assert _number(case["ratio"]["overhead share (warm)"]) and case["ratio"]["overhead share (warm)"] < 1
    # the release through the service against `synthgate synth --method mst` as one process, same file
    for key in ("service warm / synth process", "service warm / synth process (CPU)"):
        assert _number(case["ratio"][key]) and case["ratio"][key] > 0, key
        assert case["targets"][key]["target"] == "<= 3" and case["targets"][key]["value"] == case["ratio"][key]
    assert _number(case["ratio"]["service cold / synth process"])
    assert ("synthgate synth (whole process)", "process") in stages
    figures = case["figures"]
    assert figures["synth_process"]["wall_s"] > 0 and figures["synth_process"]["cpu_s"] > 0
    assert set(figures["overhead_by_stage_warm_s"]) >= {"queue wait", "fit", "evaluate", "write", "outside stages"}
    assert figures["policy"]["privacy"] == "dp-only"


def test_throughput_case_runs_every_release_on_one_and_two_workers(results: dict) -> None:
    case = results["cases"][1]
    assert case["id"] == "throughput" and case["ok"], case.get("errors")
    by_workers = case["figures"]["by_workers"]
    assert set(by_workers) == {1, 2}
    for workers, res in by_workers.items():
        assert res["releases_per_minute"] > 0 and res["makespan_s"] > 0
        assert 0 <= res["queue_wait_mean_s"] <= res["queue_wait_max_s"]
        assert sum(res["releases_per_worker_process"].values()) == 4
        assert len(res["releases_per_worker_process"]) <= workers
    assert case["ratio"]["throughput: 2 workers / 1 worker"] > 0


def test_the_harness_stopped_its_service(results: dict) -> None:
    pids = [int(p) for p in results["cases"][0]["figures"]["worker_peak_rss_mib"]]
    assert pids
    assert not any(_alive(pid) for pid in pids)
