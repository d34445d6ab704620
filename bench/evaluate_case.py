"""Case `evaluate`: `synthgate evaluate` on 1,000,000 x 15 rows as a whole process, and the report's
sections one by one.

REAL is adult resampled with replacement to 1,000,000 rows (quick mode: 10,000); SYNTH is native
MST's output at epsilon 1 fitted on adult itself (48,842 rows, not on REAL) and sampled to as many
rows as REAL. `synthgate evaluate REAL.csv SYNTH.csv --schema S --target income -o r.html --json r.json`
runs as a whole process (the kernel's CPU, wall and peak RSS, interpreter start to exit); a second
child (`bench.evaluate_case:evaluate_stages`) runs the same steps one by one (read and conform,
split, each section of the report, the figures, the HTML and JSON renderings) so that the process's
cost can be placed. Targets: the whole process at most 39.5 / 4 CPU seconds (39.5 s was measured
before the report was made proportionate) and a peak RSS of at most 1536 MiB.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.config import BenchConfig, _fail, _line, _process_line, _stage_lines, _synthgate_argv, _target, new_case
from bench.data import ADULT_CSV, ADULT_SCHEMA, ROOT, write_adult_resample
from bench.measure import Meter, run_in_child, run_program

__all__ = ["case_evaluate", "evaluate_stages"]

FULL_ROWS = 1_000_000
QUICK_ROWS = 10_000
TARGET = "income"
CPU_BEFORE_S = 39.5  # `synthgate evaluate` on 1M x 15 rows before the report was made proportionate
SECTION_ORDER = ("synthetic", "fidelity", "utility", "classes", "privacy", "figures")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def case_evaluate(cfg: BenchConfig) -> dict[str, Any]:
    rows = QUICK_ROWS if cfg.quick else FULL_ROWS
    case = new_case(
        title=f"synthgate evaluate on adult resampled to {rows:,} x 15 rows against MST's output of the same shape: "
        "whole process, then the report's sections one by one",
        setup={"rows": rows, "columns": 15, "target": TARGET, "seed": cfg.seed, "synthetic": "mst, epsilon 1"},
        notes=[
            "REAL = adult resampled with replacement; SYNTH = native MST (epsilon 1, delta 1e-9) fitted on adult "
            "(48,842 rows) and sampled to as many rows as REAL; REAL is split 80/20 by the command",
            "whole process = the kernel's CPU (user + system) and peak RSS of `synthgate evaluate REAL SYNTH "
            "--schema S --target income -o r.html --json r.json`, from interpreter start to exit",
            "sections = the same steps in a second child, one section at a time (the command runs the utility "
            "section on a second thread alongside the others), each section's CPU measured around it; "
            "'views and other' is what the report does outside any section: the tables' shared encoding "
            "(declared text columns as categoricals, once per table), the column views, and the imports of "
            "scikit-learn's ensemble module",
        ],
    )
    folder = cfg.folder / "evaluate"
    cfg.log(f"[evaluate] writing adult resampled to {rows:,} rows")
    real_csv, schema_path = write_adult_resample(folder / "real", rows, seed=cfg.seed)
    synth_csv = folder / f"mst-{rows}.csv"
    cfg.log(f"[evaluate] MST on adult, sampling {rows:,} rows")
    mst = run_program(
        [
            *_synthgate_argv(),
            "synth",
            str(ADULT_CSV),
            "--schema",
            str(ADULT_SCHEMA),
            "--method",
            "mst",
            "--epsilon",
            "1",
            "--delta",
            "1e-9",
            "--rows",
            str(rows),
            "--seed",
            str(cfg.seed + 1),
            "-q",
            "-o",
            str(synth_csv),
        ],
        env=_env(),
        cwd=ROOT,
        timeout=cfg.params.timeout,
    )
    if not mst["ok"]:
        _fail(case, "synthgate synth (the synthetic table)", mst)
        return case
    argv = [
        *_synthgate_argv(),
        "evaluate",
        str(real_csv),
        str(synth_csv),
        "--schema",
        str(schema_path),
        "--target",
        TARGET,
        "--seed",
        str(cfg.seed),
        "-q",
        "-o",
        str(folder / "r.html"),
        "--json",
        str(folder / "r.json"),
    ]
    cfg.log(f"[evaluate] synthgate evaluate on {rows:,} x 15 (whole process)")
    process = run_program(argv, env=_env(), cwd=ROOT, timeout=cfg.params.timeout)
    if not process["ok"]:
        _fail(case, "synthgate evaluate (whole process)", process)
    else:
        case["lines"].append(_process_line("synthgate evaluate (whole process)", process))
    cfg.log(f"[evaluate] the same steps one by one on {rows:,} x 15")
    stages = run_in_child(
        "bench.evaluate_case:evaluate_stages",
        timeout=cfg.params.timeout,
        real_csv=str(real_csv),
        synth_csv=str(synth_csv),
        schema_path=str(schema_path),
        target_column=TARGET,
        seed=cfg.seed,
    )
    if not stages.ok:
        _fail(case, "steps one by one", stages)
        return case
    case["lines"].extend(_stage_lines("steps one by one", stages))
    for name, s in stages.info.get("sections", {}).items():
        case["lines"].append(_line("report sections", name, s["wall_s"], s["cpu_s"]))
    case["figures"] = {
        "process_cpu_s": process["cpu_s"] if process["ok"] else None,
        "process_wall_s": process["wall_s"] if process["ok"] else None,
        "process_peak_rss_mib": process["peak_rss_mib"] if process["ok"] else None,
        "sections_cpu_s": {k: v["cpu_s"] for k, v in stages.info.get("sections", {}).items()},
        "statuses": stages.info.get("statuses"),
        "html_kib": stages.info.get("html_kib"),
        "summary": stages.info.get("summary"),
    }
    if process["ok"]:
        case["targets"]["whole-process CPU seconds"] = _target(process["cpu_s"], "<=", round(CPU_BEFORE_S / 4, 3))
        case["targets"]["whole-process peak RSS (MiB)"] = _target(process["peak_rss_mib"], "<=", 1536)
    return case


def evaluate_stages(
    meter: Meter, *, real_csv: str, synth_csv: str, schema_path: str, target_column: str, seed: int = 0
) -> None:
    """The steps of `synthgate evaluate`, measured one by one; each report section's CPU in `info`."""
    import json
    from pathlib import Path

    with meter.stage("import"):
        import evaluation.report as report_module
        from evaluation import EvaluationLimits, build_report, split_holdout
        from privacy.schema import conform_table, load_schema, read_table

    sections: dict[str, dict[str, float]] = {}

    def timed(key: str, started: tuple[float, float]) -> None:
        cpu, wall = time.process_time() - started[0], time.perf_counter() - started[1]
        before = sections.get(key, {"cpu_s": 0.0, "wall_s": 0.0})  # the figures are drawn in two calls
        sections[key] = {"cpu_s": round(before["cpu_s"] + cpu, 3), "wall_s": round(before["wall_s"] + wall, 3)}

    run_section, draw_figures = report_module._run_section, report_module.draw_figures

    def run_section_timed(section: Any, fn: Any) -> Any:
        started = (time.process_time(), time.perf_counter())
        out = run_section(section, fn)
        timed(section.key, started)
        return out

    def draw_figures_timed(*args: Any, **kwargs: Any) -> Any:
        started = (time.process_time(), time.perf_counter())
        out = draw_figures(*args, **kwargs)
        timed("figures", started)
        return out

    report_module._run_section = run_section_timed  # type: ignore[assignment]
    report_module.draw_figures = draw_figures_timed  # type: ignore[assignment]

    with meter.stage("read and conform"):
        schema = load_schema(Path(schema_path))
        # as `synthgate evaluate` reads them (webapp/cli/evaluate.py): text columns as categoricals, and
        # declared text domains kept as categoricals of the declared values by conform
        real, _ = conform_table(read_table(real_csv, categories=True), schema, strict=True, categories=True)
        synthetic, _ = conform_table(read_table(synth_csv, categories=True), schema, strict=False, categories=True)
    with meter.stage("split"):
        train, holdout, _ = split_holdout(real, schema, target=target_column, seed=seed)
        del real
    with meter.stage("report") as extra:
        # one section at a time, so that each section's CPU is its own (the command runs utility on a
        # second thread alongside the others: evaluation/lanes.py)
        report = build_report(
            train,
            holdout,
            synthetic,
            schema,
            target_column,
            seed=seed,
            limits=EvaluationLimits(parallel_sections=False),
        )
    with meter.stage("html"):
        html_internal = report.to_html(True)
    with meter.stage("json"):
        text = json.dumps(report.to_dict(True), indent=2)
    report_cpu = meter.stages[-3]["cpu_s"]
    sections["views and other"] = {
        "cpu_s": round(report_cpu - sum(s["cpu_s"] for s in sections.values()), 3),
        "wall_s": round(meter.stages[-3]["wall_s"] - sum(s["wall_s"] for s in sections.values()), 3),
    }
    extra["sections"] = len(report.sections)
    order = [k for k in SECTION_ORDER if k in sections] + [k for k in sections if k not in SECTION_ORDER]
    meter.info.update(
        sections={k: sections[k] for k in order},
        statuses={k: s.status for k, s in report.sections.items()},
        html_kib=len(html_internal) // 1024,
        json_kib=len(text) // 1024,
        summary={k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.summary.items()},
    )
