"""Case 9, `synth_process`: `synthgate synth --method mst` as a whole process against the engine's fit
and sample on the same CSV.

The input is adult resampled with replacement to 1,000,000 rows (quick mode: 50,000), written as
CSV; the command writes as many rows as it reads. The whole process (interpreter start, imports,
reading, conforming, encoding, fit, sample, decoding, writing the CSV) is measured by the kernel's
accounting; a second child runs the same stages one by one (`bench.workloads:synth_engine`), whose
fit + sample CPU is the engine's. Target: the whole process costs at most 2x the engine's CPU.

In full mode each is run three times, alternated, and the ratio is of their medians: one run's CPU
varies here by up to a second (the kernel's time on page faults; more in the first run after the
input was written), which a single run cannot tell from the code.

Measured as installed: the project's packages are compiled first (`python -m compileall`, as `make install`
and the Dockerfile do), so the process reads their .pyc files instead of compiling every module from
source at start (which it does where PYTHONDONTWRITEBYTECODE is set and nothing compiled them).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from typing import Any

from bench.config import (
    BenchConfig,
    _fail,
    _line,
    _process_line,
    _ratio,
    _stage_lines,
    _synthgate_argv,
    _target,
    new_case,
)
from bench.data import ROOT, write_adult_resample
from bench.measure import run_in_child, run_program

__all__ = ["case_synth_process"]

PACKAGES = ("core", "privacy", "evaluation", "workers", "webapp", "bench", "synthgate_client")  # as the Makefile's
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
FULL_RUNS = 3  # the whole process and the stages alternated; the ratio is of their medians
QUICK_RUNS = 1


def case_synth_process(cfg: BenchConfig) -> dict[str, Any]:
    rows = QUICK_ROWS if cfg.quick else FULL_ROWS
    case = new_case(
        title=f"synthgate synth --method mst on adult resampled to {rows:,} rows x 15 columns (CSV in, CSV out): "
        "whole-process CPU against the engine's fit + sample",
        setup={
            "rows": rows,
            "sample_rows": rows,
            "epsilon": cfg.epsilon,
            "delta": cfg.delta,
            "seed": cfg.seed,
            "compiled": True,
        },
        notes=[
            "as installed: the project's packages compiled to .pyc files first (python -m compileall, as "
            "`make install` and the Dockerfile do)",
            "whole process = the kernel's CPU (user + system) and peak RSS of `synthgate synth FILE --schema S "
            "--method mst --rows N -o OUT.csv`, from interpreter start to exit",
            "engine = fit_mst and sample_codes in a second child on the same CSV (mst's default options, the "
            "schema's default bins); its other stages show where the rest of the process goes",
            f"full mode: {FULL_RUNS} runs of each, alternated; the ratio is of the medians (one run's CPU "
            "varies by up to a second here, mostly the kernel's time on page faults)",
        ],
    )
    folder = cfg.folder / "synth-process"
    cfg.log(f"[synth_process] writing adult resampled to {rows:,} rows")
    csv_path, schema_path = write_adult_resample(folder, rows, seed=cfg.seed)
    argv = [
        *_synthgate_argv(),
        "synth",
        str(csv_path),
        "--schema",
        str(schema_path),
        "--method",
        "mst",
        "--epsilon",
        repr(cfg.epsilon),
        "--delta",
        repr(cfg.delta),
        "--rows",
        str(rows),
        "--seed",
        str(cfg.seed),
        "-q",
        "-o",
        str(folder / "out.csv"),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cfg.log("[synth_process] compiling the project's packages (as installed)")
    subprocess.run([sys.executable, "-m", "compileall", "-q", *PACKAGES], cwd=ROOT, check=True, capture_output=True)
    runs = QUICK_RUNS if cfg.quick else FULL_RUNS
    processes: list[dict[str, Any]] = []
    engines: list[float] = []
    for i in range(1, runs + 1):
        tag = f", run {i} of {runs}" if runs > 1 else ""
        cfg.log(f"[synth_process] synthgate synth --method mst on {rows:,} rows (whole process{tag})")
        process = run_program(argv, env=env, cwd=ROOT, timeout=cfg.params.timeout)
        if not process["ok"]:
            _fail(case, "synthgate synth (whole process)", process)
            return case
        processes.append(process)
        case["lines"].append(_process_line(f"synthgate synth (whole process){tag}", process))
        cfg.log(f"[synth_process] the same stages one by one on {rows:,} rows{tag}")
        stages = run_in_child(
            "bench.workloads:synth_engine",
            timeout=cfg.params.timeout,
            csv_path=str(csv_path),
            schema_path=str(schema_path),
            rows=rows,
            epsilon=cfg.epsilon,
            delta=cfg.delta,
            seed=cfg.seed,
        )
        if not stages.ok:
            _fail(case, "stages one by one", stages)
            return case
        case["lines"].extend(_stage_lines(f"stages one by one{tag}", stages))
        fit, sample = stages.stage("fit"), stages.stage("sample")
        engines.append(fit["cpu_s"] + sample["cpu_s"])
        case["lines"].append(
            _line(
                f"engine (fit + sample){tag}",
                "fit+sample",
                round(fit["wall_s"] + sample["wall_s"], 3),
                round(engines[-1], 3),
                max(fit["peak_rss_mib"], sample["peak_rss_mib"]),
            )
        )
    process_cpu = statistics.median(p["cpu_s"] for p in processes)
    engine_cpu = statistics.median(engines)
    case["figures"] = {
        "process_cpu_s": round(process_cpu, 3),
        "process_cpu_s_runs": [p["cpu_s"] for p in processes],
        "process_peak_rss_mib": max(p["peak_rss_mib"] for p in processes),
        "engine_cpu_s": round(engine_cpu, 3),
        "engine_cpu_s_runs": [round(e, 3) for e in engines],
        "csv_bytes": stages.info.get("csv_bytes"),
    }
    key = "whole-process CPU / engine fit+sample CPU"
    case["ratio"][key] = _ratio(process_cpu, engine_cpu)
    case["targets"][key] = _target(case["ratio"][key], "<=", 2)
    return case
