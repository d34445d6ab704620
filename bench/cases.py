"""The benchmark cases: what is measured, on what inputs, in full and quick mode.

1. `mst`: MST at epsilon 1 on adult, native (cold and warm fit) against
   smartnoise-synth's MSTSynthesizer called directly (cold and warm), and
   `synthgate synth --method mst` against a fresh interpreter running smartnoise.
2. `aim`: AIM likewise on a 10-column subset of adult.
3. `service` (in bench.service_cases): one release end to end through the service (HTTP request to
   awaiting_approval, real worker process, embedded backend) against the sum of
   its library calls made directly.
4. `report`: `evaluation.build_report` on 1,000,000 x 20 rows.
5. `throughput` (in bench.service_cases): 20 releases submitted at once to 1 worker, then to 2 workers.
6. `scale`: fit and sample of `mst`, `dp-copula`, `gaussian-copula` at 10k,
   100k and 1M rows (adult resampled with replacement).
7. `methods`: fit time of every registered method on adult at epsilon 1.
8. `engine`: the native engine alone on encoded tables of 1M and 10M rows.
9. `synth_process` (in bench.io_cases): `synthgate synth --method mst` on 1M rows as a whole process
   against the engine's fit and sample on the same CSV.
10. `estimates` (in bench.estimates): the time estimate of privacy/estimate.py against measured CPU seconds.
11. `aim_scale` (in bench.aim_scale): native AIM on adult resampled to 1,000,000 x 15 against native MST on
    the same table (time), and against AIM on adult's own 48,842 rows (two-way TVD).
12. `evaluate` (in bench.evaluate_case): `synthgate evaluate` on adult resampled to 1,000,000 x 15 rows
    against MST's output of the same shape as a whole process, and the report's sections one by one.

Each case returns a plain dict (see `bench.__init__` for the layout). Figures
are never asserted here: targets are reported as met or not. The run's
configuration (`BenchConfig`, `Params`, `FULL`, `QUICK`) and the helpers the
cases build their results with are in bench.config.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.aim_scale import case_aim_scale
from bench.config import (
    FULL,
    METHOD_SETTINGS,
    METHODS_NOTE,
    QUICK,
    BenchConfig,
    Params,
    _adult_shape,
    _fail,
    _line,
    _load_1min,
    _ratio,
    _row_steps,
    _stage_lines,
    _sum,
    _synthgate_argv,
    _target,
    new_case,
)
from bench.data import ROOT, write_adult_subset
from bench.estimates import case_estimates
from bench.evaluate_case import case_evaluate
from bench.io_cases import case_synth_process
from bench.measure import run_in_child, run_program
from bench.service_cases import case_service, case_throughput

__all__ = ["CASES", "CASE_NUMBERS", "FULL", "QUICK", "BenchConfig", "Params", "resolve_cases", "run_case"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# 1, 2: MST and AIM
# ---------------------------------------------------------------------------------------------


def case_marginal(cfg: BenchConfig, algo: str) -> dict[str, Any]:
    """Native `mst`/`aim` against smartnoise-synth's own synthesizer, in process and process against process."""
    p = cfg.params
    columns = p.mst_columns if algo == "mst" else p.aim_columns
    options = p.aim_options if algo == "aim" else None
    rows = p.marginal_rows
    shape = _adult_shape(rows, columns)
    case = new_case(
        title=f"{algo.upper()} at epsilon {cfg.epsilon:g} on adult ({shape}): native engine against "
        f"smartnoise-synth {algo.upper()}Synthesizer",
        setup={
            "rows": rows or 48_842,
            "columns": columns or "all 15",
            "epsilon": cfg.epsilon,
            "delta": cfg.delta,
            "sample_rows": "as many as the input",
            "options": options or "defaults",
        },
        notes=[
            "cold = first fit in a fresh interpreter; warm = a second fit in the same process",
            "both fit on the same integer codes of the public domain (privacy.encoding.DomainEncoder); smartnoise "
            "gets them through its stock LabelTransformer fitted on the declared code range, preprocessor_eps=0",
            "tvd = mean two-way total variation distance of the output against the input (lower is better)",
        ],
    )
    common = {"rows": rows, "columns": columns, "epsilon": cfg.epsilon, "delta": cfg.delta, "fits": 2, "seed": cfg.seed}
    cfg.log(f"[{algo}] native {algo}, cold and warm fit ({shape})")
    native = run_in_child("bench.workloads:native_marginal", timeout=p.timeout, method=algo, options=options, **common)
    sn_fits = p.aim_smartnoise_fits if algo == "aim" else 2
    cfg.log(
        f"[{algo}] smartnoise {algo.upper()}Synthesizer, {'cold and warm fit' if sn_fits > 1 else 'cold fit'} ({shape})"
    )
    bare = run_in_child(
        "bench.workloads:smartnoise_marginal",
        timeout=p.timeout,
        algo=algo,
        aim_options=options,
        **{**common, "fits": sn_fits},
    )
    if sn_fits < 2:
        case["notes"].append(
            f"smartnoise {algo.upper()}: one (cold) fit only in this mode; a fit takes minutes "
            "here, so its warm ratios are not measured"
        )
    for label, result in ((f"native {algo}", native), (f"smartnoise {algo.upper()}Synthesizer", bare)):
        if not result.ok:
            _fail(case, label, result)
        case["lines"].extend(_stage_lines(label, result))
    case["figures"] = {
        "native_tvd": {k: v for k, v in native.info.items() if k.startswith("tvd_")},
        "smartnoise_tvd": {k: v for k, v in bare.info.items() if k.startswith("tvd_")},
        "native_process_peak_rss_mib": native.process_peak_rss_mib,
        "smartnoise_process_peak_rss_mib": bare.process_peak_rss_mib,
    }
    if native.ok and bare.ok:
        n_cold, n_warm = _sum(native, "fit_cold", "sample_cold"), _sum(native, "fit_warm", "sample_warm")
        s_cold = _sum(bare, "fit_cold", "sample_cold")
        s_warm = _sum(bare, "fit_warm", "sample_warm") if sn_fits > 1 else None
        r = case["ratio"]
        if s_warm is not None:
            r["fit+sample: smartnoise warm / native warm"] = _ratio(s_warm["wall_s"], n_warm["wall_s"])
        r["fit+sample: smartnoise cold / native cold"] = _ratio(s_cold["wall_s"], n_cold["wall_s"])
        r["fit+sample: smartnoise cold / native warm"] = _ratio(s_cold["wall_s"], n_warm["wall_s"])
        r["fit: smartnoise cold / native warm"] = _ratio(
            bare.stage("fit_cold")["wall_s"], native.stage("fit_warm")["wall_s"]
        )
        if s_warm is not None:
            r["fit: smartnoise warm / native warm"] = _ratio(
                bare.stage("fit_warm")["wall_s"], native.stage("fit_warm")["wall_s"]
            )
        r["fit CPU: smartnoise cold / native cold"] = _ratio(
            bare.stage("fit_cold")["cpu_s"], native.stage("fit_cold")["cpu_s"]
        )
        r["peak memory of the run: smartnoise / native"] = _ratio(
            bare.process_peak_rss_mib, native.process_peak_rss_mib
        )
        t = case["targets"]
        if algo == "mst":
            t["fit+sample: smartnoise warm / native warm"] = _target(
                r["fit+sample: smartnoise warm / native warm"], ">=", 10
            )
            t["fit+sample: smartnoise cold / native cold"] = _target(
                r["fit+sample: smartnoise cold / native cold"], ">=", 30
            )
            t["fit: smartnoise cold / native warm"] = _target(r["fit: smartnoise cold / native warm"], ">=", 4)
            t["native peak memory (MiB)"] = _target(native.process_peak_rss_mib, "<=", 512)
        else:
            for key in ("fit+sample: smartnoise cold / native cold", "fit+sample: smartnoise warm / native warm"):
                if key in r:
                    t[key] = _target(r[key], ">=", 5)
    if algo not in p.process_algos:
        case["notes"].append(
            f"whole process against whole process is measured for MST in this mode (a smartnoise "
            f"{algo.upper()} process would repeat its cold fit)"
        )
        return case
    # whole process against whole process
    folder = cfg.folder / f"process-{algo}"
    csv_path, schema_path = write_adult_subset(folder, rows, columns, seed=cfg.seed)
    n_out = rows or 48_842
    ours_argv = [
        *_synthgate_argv(),
        "synth",
        str(csv_path),
        "--schema",
        str(schema_path),
        "--method",
        algo,
        "--epsilon",
        repr(cfg.epsilon),
        "--delta",
        repr(cfg.delta),
        "--rows",
        str(n_out),
        "--seed",
        str(cfg.seed),
        "-q",
        "-o",
        str(folder / "ours.csv"),
    ]
    for key, value in (options or {}).items():
        ours_argv += ["--option", f"{key}={value}"]
    bare_argv = [
        sys.executable,
        "-m",
        "bench.bare",
        algo,
        str(csv_path),
        str(schema_path),
        "--epsilon",
        repr(cfg.epsilon),
        "--delta",
        repr(cfg.delta),
        "--rows",
        str(n_out),
        "-o",
        str(folder / "bare.csv"),
    ]
    if options and "rounds" in options:
        bare_argv += ["--rounds", str(options["rounds"])]
    cfg.log(f"[{algo}] process against process: synthgate synth --method {algo} vs python -m bench.bare {algo}")
    ours = run_program(ours_argv, cwd=ROOT, timeout=p.timeout)
    theirs = run_program(bare_argv, cwd=ROOT, timeout=p.timeout)
    for label, run in (("synthgate synth (whole process)", ours), ("python + smartnoise (whole process)", theirs)):
        if not run["ok"]:
            _fail(case, label, run)
        case["lines"].append(_line(label, "process", run["wall_s"], run["cpu_s"], run["peak_rss_mib"]))
    if ours["ok"] and theirs["ok"]:
        value = _ratio(theirs["wall_s"], ours["wall_s"])
        case["ratio"]["process: smartnoise / synthgate synth"] = value
        if algo == "mst":
            case["targets"]["process: smartnoise / synthgate synth"] = _target(value, ">=", 20)
    return case


def case_mst(cfg: BenchConfig) -> dict[str, Any]:
    return case_marginal(cfg, "mst")


def case_aim(cfg: BenchConfig) -> dict[str, Any]:
    return case_marginal(cfg, "aim")


# ---------------------------------------------------------------------------------------------
# 4: the report on a large table
# ---------------------------------------------------------------------------------------------


def case_report(cfg: BenchConfig) -> dict[str, Any]:
    p = cfg.params
    case = new_case(
        title=f"The full report (evaluation.build_report) on {p.report_rows:,} x {p.report_columns} rows",
        setup={
            "rows": p.report_rows,
            "columns": p.report_columns,
            "tables": "real and synthetic generated by evaluation._bench (latent-factor model), split 80/20",
        },
        notes=["peak memory of a stage includes the tables the process already holds (real, synthetic)"],
    )
    cfg.log(f"[report] build_report on {p.report_rows:,} x {p.report_columns}")
    result = run_in_child(
        "bench.workloads:report_large", timeout=p.timeout, rows=p.report_rows, columns=p.report_columns, seed=cfg.seed
    )
    if not result.ok:
        _fail(case, "report", result)
        return case
    case["lines"].extend(_stage_lines("report", result))
    rep = result.stage("report")
    html = result.stage("html")
    case["figures"] = {
        "sections_s": result.info.get("sections_s"),
        "statuses": result.info.get("statuses"),
        "table_mib": result.stage("generate").get("table_mib"),
    }
    case["targets"]["report seconds"] = _target(rep["wall_s"], "<=", 60)
    case["targets"]["report + html seconds"] = _target(rep["wall_s"] + html["wall_s"], "<=", 60)
    case["targets"]["report peak memory (MiB)"] = _target(rep["peak_rss_mib"], "<=", 4096)
    return case


# ---------------------------------------------------------------------------------------------
# 6: scale
# ---------------------------------------------------------------------------------------------


def case_scale(cfg: BenchConfig) -> dict[str, Any]:
    p = cfg.params
    case = new_case(
        title=f"Scale: fit and sample at {', '.join(f'{r:,}' for r in p.scale_rows)} rows (adult resampled "
        f"with replacement, 15 columns) for {', '.join(p.scale_methods)}",
        setup={
            "rows": list(p.scale_rows),
            "methods": list(p.scale_methods),
            "epsilon": cfg.epsilon,
            "delta": cfg.delta,
            "sample_rows": "as many as the input",
        },
        notes=["peak memory of a stage includes the input table the process holds (table_mib)"],
    )
    timings: dict[str, dict[int, tuple[float, float, float]]] = {}
    for method in p.scale_methods:
        for rows in p.scale_rows:
            cfg.log(f"[scale] {method} at {rows:,} rows")
            result = run_in_child(
                "bench.workloads:scale_fit",
                timeout=p.timeout,
                method=method,
                rows=rows,
                epsilon=cfg.epsilon,
                delta=cfg.delta,
                seed=cfg.seed,
            )
            run = f"{method} @ {rows:,}"
            if not result.ok:
                _fail(case, run, result)
                continue
            prep = result.stage("prepare")
            fit, sample = result.stage("fit"), result.stage("sample")
            case["lines"].append(
                _line(run, "fit", fit["wall_s"], fit["cpu_s"], fit["peak_rss_mib"], table_mib=prep.get("table_mib"))
            )
            case["lines"].append(_line(run, "sample", sample["wall_s"], sample["cpu_s"], sample["peak_rss_mib"]))
            timings.setdefault(method, {})[rows] = (fit["wall_s"], sample["wall_s"], fit["peak_rss_mib"])
    growth: dict[str, Any] = {}
    for method, by_rows in timings.items():
        for small, big in _row_steps(by_rows):
            key = f"{method}: fit {big:,} / {small:,} rows"
            growth[key] = _ratio(by_rows[big][0], by_rows[small][0])
            case["ratio"][key] = growth[key]
    case["figures"] = {"growth": growth, "note": "linear growth in rows is a ratio of 10 per 10x rows"}
    return case


# ---------------------------------------------------------------------------------------------
# 7: every method
# ---------------------------------------------------------------------------------------------


def case_methods(cfg: BenchConfig) -> dict[str, Any]:
    from privacy.synthesizers import method_names, synthesizer_class

    p = cfg.params
    methods = list(p.methods) if p.methods else method_names()
    case = new_case(
        title=f"Fit time of {'every registered method' if p.methods is None else 'a few methods'} on adult "
        f"at epsilon {cfg.epsilon:g} (DP methods), each in a fresh process",
        setup={
            "methods": methods,
            "rows": p.method_rows or 48_842,
            "epsilon": cfg.epsilon,
            "delta": cfg.delta,
            "sample_rows": 1_000,
        },
        notes=[METHODS_NOTE, "sample = 1,000 rows"],
        table=[],
    )
    for method in methods:
        rows, options, note = METHOD_SETTINGS.get(method, (None, {}, ""))
        if p.method_rows is not None:
            rows = p.method_rows if rows is None else min(rows, p.method_rows)
        cls = synthesizer_class(method)
        if cls.guarantee == "data-free":
            rows = None
        cfg.log(f"[methods] {method}")
        t0 = time.perf_counter()
        result = run_in_child(
            "bench.workloads:method_fit",
            timeout=min(p.timeout, 1200),
            method=method,
            rows=rows,
            epsilon=cfg.epsilon,
            delta=cfg.delta,
            sample_rows=1_000,
            seed=cfg.seed,
            options=options or None,
        )
        entry: dict[str, Any] = {
            "method": method,
            "guarantee": cls.guarantee,
            "rows": 0 if cls.guarantee == "data-free" else (rows or 48_842),
            "settings": note or "defaults",
            "ok": result.ok,
        }
        if result.ok:
            imp, fit, sample = result.stage("import"), result.stage("fit"), result.stage("sample")
            entry.update(
                import_s=imp["wall_s"],
                fit_s=fit["wall_s"],
                fit_cpu_s=fit["cpu_s"],
                sample_s=sample["wall_s"],
                peak_rss_mib=result.process_peak_rss_mib,
            )
            case["lines"].append(
                _line(
                    method,
                    "fit",
                    fit["wall_s"],
                    fit["cpu_s"],
                    fit["peak_rss_mib"],
                    rows=entry["rows"],
                    settings=entry["settings"],
                )
            )
        else:
            entry["error"] = (result.error or "")[-600:]
            entry["elapsed_s"] = round(time.perf_counter() - t0, 1)
            case["lines"].append(_line(method, "fit (failed)", None, rows=entry["rows"], settings=entry["settings"]))
        case["table"].append(entry)
    failed = [e["method"] for e in case["table"] if not e["ok"]]
    if failed:
        case["ok"] = False
        case["errors"] = [f"{e['method']}: {e['error']}" for e in case["table"] if not e["ok"]]
    return case


# ---------------------------------------------------------------------------------------------
# 8: the native engine at 1M and 10M rows
# ---------------------------------------------------------------------------------------------


def case_engine(cfg: BenchConfig) -> dict[str, Any]:
    p = cfg.params
    sizes = ", ".join(f"{r:,}" for r in p.engine_rows)
    case = new_case(
        title=f"The native engine alone at {sizes} rows x 15 columns (adult's codes resampled with "
        f"replacement): time against rows, peak memory against the encoded table",
        setup={
            "rows": list(p.engine_rows),
            "methods": list(p.engine_methods),
            "epsilon": cfg.epsilon,
            "delta": cfg.delta,
            "sample_rows": "as many as the input",
        },
        notes=[
            "the table is built column by column as codes on the public domain (no DataFrame of that size); "
            "memory = peak RSS of the stage minus the process's RSS just before the table was built (after a "
            "warm-up fit and sample on adult's 48,842 rows, which loads the engine's code), so it counts the "
            "encoded table, the engine's work and, when sampling, the sampled codes",
            "memory / table: that memory over the encoded table's bytes (target: within 3x)",
            "linear growth in rows is a time ratio of 10 per 10x rows",
            "MST only: AIM's time is set by what it decides to measure, not by its passes over the rows. On adult "
            "resampled to 1,000,000 rows the noise is 20x smaller next to the counts, so its rounds keep finding "
            "marginals worth measuring instead of annealing early, and the model grows towards max_model_size "
            "(a 1,000,000-row fit ran over 12 CPU minutes here without finishing, against 5 s on adult's 48,842)",
        ],
    )
    times: dict[str, dict[int, float]] = {}
    for method in p.engine_methods:
        for rows in p.engine_rows:
            cfg.log(f"[engine] {method} at {rows:,} rows")
            result = run_in_child(
                "bench.workloads:engine_scale",
                timeout=p.timeout,
                method=method,
                rows=rows,
                epsilon=cfg.epsilon,
                delta=cfg.delta,
                seed=cfg.seed,
            )
            run = f"{method} @ {rows:,}"
            if not result.ok:
                _fail(case, run, result)
                continue
            base, table_mib = result.info["baseline_rss_mib"], result.info["table_mib"]
            worst = 0.0
            for stage in ("prepare", "fit", "sample"):
                s = result.stage(stage)
                above = round(s["peak_rss_mib"] - base, 1)
                worst = max(worst, above)
                case["lines"].append(
                    _line(
                        run,
                        stage,
                        s["wall_s"],
                        s["cpu_s"],
                        s["peak_rss_mib"],
                        table_mib=table_mib,
                        above_baseline_mib=above,
                    )
                )
            fit_sample = result.stage("fit")["wall_s"] + result.stage("sample")["wall_s"]
            times.setdefault(method, {})[rows] = fit_sample
            if rows >= 1_000_000:  # below that the allocator's reuse of freed pages blurs a few MiB of table
                key = f"{method} @ {rows:,}: memory / table"
                case["ratio"][key] = _ratio(worst, table_mib)
                case["targets"][key] = _target(case["ratio"][key], "<=", 3)
    for method, by_rows in times.items():
        for small, big in _row_steps(by_rows):
            key = f"{method}: fit+sample {big:,} / {small:,} rows"
            case["ratio"][key] = _ratio(by_rows[big], by_rows[small])
            case["targets"][key] = _target(case["ratio"][key], "<=", big / small)
    return case


CASES: dict[str, Callable[[BenchConfig], dict[str, Any]]] = {
    "mst": case_mst,
    "aim": case_aim,
    "service": case_service,
    "report": case_report,
    "throughput": case_throughput,
    "scale": case_scale,
    "methods": case_methods,
    "engine": case_engine,
    "synth_process": case_synth_process,
    "estimates": case_estimates,
    "aim_scale": case_aim_scale,
    "evaluate": case_evaluate,
}
CASE_NUMBERS = {str(i + 1): name for i, name in enumerate(CASES)}


def resolve_cases(names: list[str] | None) -> list[str]:
    """Case ids from names or numbers (1-10); every case when none are given."""
    if not names:
        return list(CASES)
    out: list[str] = []
    for raw in names:
        name = CASE_NUMBERS.get(raw.strip(), raw.strip())
        if name not in CASES:
            known = ", ".join(f"{i} {n}" for i, n in CASE_NUMBERS.items())
            raise ValueError(f"unknown case {raw!r}; cases: {known}")
        if name not in out:
            out.append(name)
    return out


def run_case(name: str, cfg: BenchConfig) -> dict[str, Any]:
    """Run one case; an exception becomes a failed case entry, never a crash of the whole run."""
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_start = _load_1min()
    try:
        case = CASES[name](cfg)
    except Exception as exc:
        log.exception("case %s failed", name)
        case = {
            "title": name,
            "ok": False,
            "errors": [f"{type(exc).__name__}: {exc}"],
            "lines": [],
            "ratio": {},
            "targets": {},
        }
    return {
        "id": name,
        "number": list(CASES).index(name) + 1,
        **case,
        "started": started,
        "seconds": round(time.perf_counter() - t0, 1),
        "load_average_1min": [load_start, _load_1min()],
    }
