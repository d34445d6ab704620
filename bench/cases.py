"""The benchmark cases: what is measured, on what inputs, in full and quick mode.

1. `mst`: MST at epsilon 1 on adult, native (cold and warm fit) against
   smartnoise-synth's MSTSynthesizer called directly (cold and warm), and
   `synthgate synth --method mst` against a fresh interpreter running smartnoise.
2. `aim`: AIM likewise on a 10-column subset of adult.
3. `service`: one release end to end through the service (HTTP request to
   awaiting_approval, real worker process, embedded backend) against the sum of
   its library calls made directly.
4. `report`: `evaluation.build_report` on 1,000,000 x 20 rows.
5. `throughput`: 20 releases submitted at once to 1 worker, then to 2 workers.
6. `scale`: fit and sample of `mst`, `dp-copula`, `gaussian-copula` at 10k,
   100k and 1M rows (adult resampled with replacement).
7. `methods`: fit time of every registered method on adult at epsilon 1.

Each case returns a plain dict (see `bench.__init__` for the layout). Figures
are never asserted here: targets are reported as met or not.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data import AIM_COLUMNS, QUICK_COLUMNS, ROOT, write_adult_subset
from bench.measure import ChildResult, run_in_child, run_program

__all__ = ["CASES", "CASE_NUMBERS", "BenchConfig", "Params", "FULL", "QUICK", "run_case", "resolve_cases"]

log = logging.getLogger(__name__)

DEMO_CSV = ROOT / "core" / "demo" / "adult_sample.csv"
DEMO_SCHEMA = ROOT / "core" / "demo" / "adult_schema.yaml"


@dataclass(frozen=True)
class Params:
    """Input sizes of one mode."""

    marginal_rows: int | None  # None: all 48,842 rows of adult
    mst_columns: list[str] | None  # None: all 15 columns
    aim_columns: list[str]
    aim_options: dict[str, Any] | None
    aim_smartnoise_fits: int  # smartnoise AIM takes minutes per fit on adult: full mode fits it once
    process_algos: tuple[str, ...]  # cases with a whole-process comparison
    service_rows: int | None
    service_columns: list[str] | None
    release_rows: int
    report_rows: int
    report_columns: int
    throughput_jobs: int
    throughput_data: tuple[int, list[str]] | None  # (rows, columns) of adult; None: the demo sample
    throughput_rows: int
    throughput_epsilon: float
    scale_rows: tuple[int, ...]
    scale_methods: tuple[str, ...]
    methods: tuple[str, ...] | None  # None: every registered method
    method_rows: int | None
    engine_rows: tuple[int, ...]
    engine_methods: tuple[str, ...]
    timeout: float


FULL = Params(
    marginal_rows=None, mst_columns=None, aim_columns=AIM_COLUMNS, aim_options=None,
    aim_smartnoise_fits=1, process_algos=("mst",),
    service_rows=None, service_columns=None, release_rows=48_842,
    report_rows=1_000_000, report_columns=20,
    throughput_jobs=20, throughput_data=None, throughput_rows=1_000, throughput_epsilon=0.1,
    scale_rows=(10_000, 100_000, 1_000_000), scale_methods=("mst", "dp-copula", "gaussian-copula"),
    methods=None, method_rows=None, engine_rows=(1_000_000, 10_000_000), engine_methods=("mst",),
    timeout=3600,
)

QUICK = Params(
    marginal_rows=2_000, mst_columns=QUICK_COLUMNS, aim_columns=QUICK_COLUMNS, aim_options={"rounds": 8},
    aim_smartnoise_fits=1, process_algos=("mst",),
    service_rows=1_000, service_columns=QUICK_COLUMNS, release_rows=300,
    report_rows=5_000, report_columns=20,
    throughput_jobs=4, throughput_data=(500, QUICK_COLUMNS), throughput_rows=200, throughput_epsilon=0.1,
    scale_rows=(10_000,), scale_methods=("mst", "dp-copula", "gaussian-copula"),
    methods=("mst", "dp-marginals", "dp-copula", "scenario"), method_rows=2_000,
    engine_rows=(20_000, 200_000), engine_methods=("mst",), timeout=600,
)

# slow methods in the per-method table: (rows of adult, options, what the output says about it)
_GAN = {"epochs": 2}
METHOD_SETTINGS: dict[str, tuple[int | None, dict[str, Any], str]] = {
    "dpctgan": (5_000, {"epochs": 2}, "5,000-row sample, 2 epochs"),
    "patectgan": (5_000, {"epochs": 2}, "5,000-row sample, 2 epochs"),
    "ctgan": (5_000, _GAN, "5,000-row sample, 2 epochs"),
    "tvae": (5_000, _GAN, "5,000-row sample, 2 epochs"),
    "copulagan": (5_000, _GAN, "5,000-row sample, 2 epochs"),
    "aim-smartnoise": (None, {"rounds": 32}, "32 rounds (default 16 x columns = 240)"),
    "spec": (None, {"spec": {"columns": {
        "age": {"distribution": "norm", "loc": 38, "scale": 13, "min": 17, "max": 90, "integer": True},
        "sex": {"values": ["Female", "Male"], "probabilities": [0.33, 0.67]},
        "hours-per-week": {"distribution": "norm", "loc": 40, "scale": 12, "min": 1, "max": 99, "integer": True},
        "income": {"values": ["<=50K", ">50K"], "probabilities": [0.76, 0.24]},
    }}}, "data-free: a 4-column spec, no data read"),
    "scenario": (None, {}, "data-free: default scenario, no data read"),
}


METHODS_NOTE = ("import = loading synthgate's registry and creating the synthesizer; fit = the first fit in a fresh "
                "interpreter, which includes loading the method's own libraries (torch, SDV, JAX, imbalanced-learn), "
                "imported lazily by the methods")


@dataclass
class BenchConfig:
    """One run of the harness: mode, privacy parameters, scratch folder, progress log."""

    quick: bool = False
    epsilon: float = 1.0
    delta: float = 1e-9
    seed: int = 0
    workdir: Path | None = None
    log: Callable[[str], None] = field(default=lambda msg: log.info("%s", msg))
    _service: Any = None
    _tmp: Any = None

    @property
    def params(self) -> Params:
        return QUICK if self.quick else FULL

    @property
    def folder(self) -> Path:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="synthgate-bench-")
            self.workdir = Path(self._tmp.name)
        return self.workdir

    def service(self) -> Any:
        """The scratch installation shared by the service cases (started once, web + worker w1)."""
        if self._service is None:
            from bench.service import BenchService

            svc = BenchService(self.folder / "service")
            try:
                self.log("starting the web server (gunicorn) and worker w1")
                svc.start_web()
                svc.start_worker("w1")
            except BaseException:
                svc.stop()
                raise
            self._service = svc
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 2)


def _line(run: str, stage: str, wall_s: float | None, cpu_s: float | None = None,
          peak_rss_mib: float | None = None, **extra: Any) -> dict[str, Any]:
    out = {"run": run, "stage": stage, "wall_s": None if wall_s is None else round(wall_s, 3),
           "cpu_s": None if cpu_s is None else round(cpu_s, 3), "peak_rss_mib": peak_rss_mib}
    out.update(extra)
    return out


def _stage_lines(run: str, result: ChildResult) -> list[dict[str, Any]]:
    return [_line(run, s["stage"], s["wall_s"], s["cpu_s"], s["peak_rss_mib"]) for s in result.stages]


def _sum(result: ChildResult, *stages: str) -> dict[str, float]:
    chosen = [result.stage(s) for s in stages]
    return {"wall_s": sum(s["wall_s"] for s in chosen), "cpu_s": sum(s["cpu_s"] for s in chosen),
            "peak_rss_mib": max(s["peak_rss_mib"] for s in chosen)}


def _row_steps(by_rows: dict[int, Any]) -> list[tuple[int, int]]:
    """Consecutive (smaller, larger) row counts measured, for growth ratios."""
    ordered = sorted(by_rows)
    return list(zip(ordered, ordered[1:], strict=False))


def _target(value: float | None, op: str, bound: float) -> dict[str, Any]:
    met = None if value is None else (value >= bound if op == ">=" else value <= bound)
    return {"target": f"{op} {bound:g}", "met": met, "value": value}


def _fail(case: dict[str, Any], what: str, result: ChildResult | dict[str, Any]) -> None:
    error = result.error if isinstance(result, ChildResult) else (result.get("stderr") or "failed")
    case["ok"] = False
    case.setdefault("errors", []).append(f"{what}: {(error or '').strip()[-1500:]}")


def _load_1min() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _synthgate_argv() -> list[str]:
    script = Path(sys.executable).parent / "synthgate"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from webapp.cli import main; main()"]


def _adult_shape(rows: int | None, columns: list[str] | None) -> str:
    return f"{rows or 48_842:,} x {len(columns) if columns else 15}"


def new_case(*, title: str, setup: dict[str, Any], notes: list[str], **extra: Any) -> dict[str, Any]:
    """A case's result before it runs: ok until a step fails; lines, ratios and targets filled in."""
    return {"title": title, "ok": True, "setup": setup, "lines": [], "ratio": {}, "targets": {}, "notes": notes,
            **extra}


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
        setup={"rows": rows or 48_842, "columns": columns or "all 15", "epsilon": cfg.epsilon, "delta": cfg.delta,
               "sample_rows": "as many as the input", "options": options or "defaults"},
        notes=[
            "cold = first fit in a fresh interpreter; warm = a second fit in the same process",
            "both fit on the same integer codes of the public domain (privacy.encoding.DomainEncoder); smartnoise "
            "gets them through its stock LabelTransformer fitted on the declared code range, preprocessor_eps=0",
            "tvd = mean two-way total variation distance of the output against the input (lower is better)",
        ],
    )
    common = {"rows": rows, "columns": columns, "epsilon": cfg.epsilon, "delta": cfg.delta, "fits": 2,
              "seed": cfg.seed}
    cfg.log(f"[{algo}] native {algo}, cold and warm fit ({shape})")
    native = run_in_child("bench.workloads:native_marginal", timeout=p.timeout, method=algo, options=options,
                          **common)
    sn_fits = p.aim_smartnoise_fits if algo == "aim" else 2
    cfg.log(f"[{algo}] smartnoise {algo.upper()}Synthesizer, {'cold and warm fit' if sn_fits > 1 else 'cold fit'} "
            f"({shape})")
    bare = run_in_child("bench.workloads:smartnoise_marginal", timeout=p.timeout, algo=algo,
                        aim_options=options, **{**common, "fits": sn_fits})
    if sn_fits < 2:
        case["notes"].append(f"smartnoise {algo.upper()}: one (cold) fit only in this mode; a fit takes minutes "
                             "here, so its warm ratios are not measured")
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
        r["fit: smartnoise cold / native warm"] = _ratio(bare.stage("fit_cold")["wall_s"],
                                                          native.stage("fit_warm")["wall_s"])
        if s_warm is not None:
            r["fit: smartnoise warm / native warm"] = _ratio(bare.stage("fit_warm")["wall_s"],
                                                              native.stage("fit_warm")["wall_s"])
        r["fit CPU: smartnoise cold / native cold"] = _ratio(bare.stage("fit_cold")["cpu_s"],
                                                              native.stage("fit_cold")["cpu_s"])
        r["peak memory of the run: smartnoise / native"] = _ratio(bare.process_peak_rss_mib,
                                                                   native.process_peak_rss_mib)
        t = case["targets"]
        if algo == "mst":
            t["fit+sample: smartnoise warm / native warm"] = _target(r["fit+sample: smartnoise warm / native warm"],
                                                                     ">=", 10)
            t["fit+sample: smartnoise cold / native cold"] = _target(r["fit+sample: smartnoise cold / native cold"],
                                                                     ">=", 30)
            t["fit: smartnoise cold / native warm"] = _target(r["fit: smartnoise cold / native warm"], ">=", 4)
            t["native peak memory (MiB)"] = _target(native.process_peak_rss_mib, "<=", 512)
        else:
            for key in ("fit+sample: smartnoise cold / native cold", "fit+sample: smartnoise warm / native warm"):
                if key in r:
                    t[key] = _target(r[key], ">=", 5)
    if algo not in p.process_algos:
        case["notes"].append(f"whole process against whole process is measured for MST in this mode (a smartnoise "
                             f"{algo.upper()} process would repeat its cold fit)")
        return case
    # whole process against whole process
    folder = cfg.folder / f"process-{algo}"
    csv_path, schema_path = write_adult_subset(folder, rows, columns, seed=cfg.seed)
    n_out = rows or 48_842
    ours_argv = [*_synthgate_argv(), "synth", str(csv_path), "--schema", str(schema_path), "--method", algo,
                 "--epsilon", repr(cfg.epsilon), "--delta", repr(cfg.delta), "--rows", str(n_out),
                 "--seed", str(cfg.seed), "-q", "-o", str(folder / "ours.csv")]
    for key, value in (options or {}).items():
        ours_argv += ["--option", f"{key}={value}"]
    bare_argv = [sys.executable, "-m", "bench.bare", algo, str(csv_path), str(schema_path), "--epsilon",
                 repr(cfg.epsilon), "--delta", repr(cfg.delta), "--rows", str(n_out), "-o", str(folder / "bare.csv")]
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
# 3: the service against the sum of its library calls
# ---------------------------------------------------------------------------------------------

PIPELINE_STAGES = ("load", "split", "fit", "sample", "postprocess", "evaluate")


def case_service(cfg: BenchConfig) -> dict[str, Any]:
    p = cfg.params
    shape = _adult_shape(p.service_rows, p.service_columns)
    case = new_case(
        title=f"One release end to end through the service (mst, epsilon {cfg.epsilon:g}, adult {shape}, "
              f"{p.release_rows:,} rows out) against the sum of its library calls",
        setup={"method": "mst", "rows_in": p.service_rows or 48_842, "rows_out": p.release_rows,
               "epsilon": cfg.epsilon, "delta": cfg.delta, "backend": "embedded (SQLite, file-system broker)",
               "web": "gunicorn, 2 workers x 4 threads", "worker": "1 Celery worker process, concurrency 1"},
        notes=[
            "service = request POST to awaiting_approval, from the job's database timestamps (created_at to "
            "finished_at); cold = the worker's first release, warm = its second",
            "library = load/conform + split + fit + sample + disclosure control + report, called directly in a "
            "fresh process with the same arguments as workers/pipeline.py, twice: the first pass (cold) pays the "
            "lazy imports as a fresh worker does, the second (warm) compares with the warm worker",
            "service CPU = CPU seconds of the gunicorn and worker processes (all their processes) during the "
            "release; under a shared machine's load, CPU shares are steadier than wall-clock shares",
            "the service's write stage (CSV, Parquet, JSON, HTML artifacts to storage) has no library "
            "counterpart: it is service work; `serialise` shows what building those bytes alone costs",
        ],
    )
    folder = cfg.folder / "service-inputs"
    csv_path, schema_path = write_adult_subset(folder, p.service_rows, p.service_columns, seed=cfg.seed)
    svc = cfg.service()
    svc.register("bench-release", csv_path, schema_path)
    policy = svc.dataset_policy("bench-release")
    jobs = []
    cpu: dict[str, dict[str, float]] = {}
    for label in ("cold", "warm"):
        cfg.log(f"[service] release through the service ({label} worker)")
        cpu0 = svc.cpu_s()
        job_id, request_s = svc.request("bench-release", "mst", cfg.epsilon, cfg.delta, p.release_rows)
        done, _waited = svc.wait([job_id], timeout=p.timeout)
        cpu1 = svc.cpu_s()
        job = done[0]
        cpu[label] = {k: round(cpu1[k] - cpu0[k], 3) for k in cpu0}
        if job.status != "awaiting_approval":
            case["ok"] = False
            case.setdefault("errors", []).append(f"{label} release ended {job.status}: {job.error}")
            return case
        jobs.append((label, job, request_s))
    cfg.log("[service] the same library calls, directly, in a fresh process (twice: cold, warm)")
    lib = run_in_child("bench.workloads:library_release", timeout=p.timeout, csv_path=str(csv_path),
                       schema_path=str(schema_path), method="mst", epsilon=cfg.epsilon, delta=cfg.delta,
                       rows=p.release_rows, seed=cfg.seed + 12345, policy=policy, passes=2)
    if not lib.ok:
        _fail(case, "library calls", lib)
        return case
    case["lines"].extend(_stage_lines("library calls (direct)", lib))
    sums = {label: _sum(lib, *(f"{s}_{label}" for s in PIPELINE_STAGES)) for label in ("cold", "warm")}
    library = {label: v["wall_s"] for label, v in sums.items()}
    library_cpu = {label: v["cpu_s"] for label, v in sums.items()}
    imports_s = lib.stage("import")["wall_s"]
    for label in ("cold", "warm"):
        case["lines"].append(_line("library calls (direct)", f"sum of calls ({label})", library[label],
                                   library_cpu[label], sums[label]["peak_rss_mib"]))
    peaks = svc.worker_peak_rss_mib()
    for label, job, request_s in jobs:
        run = f"service ({label} worker)"
        case["lines"].append(_line(run, "request (HTTP POST)", request_s))
        case["lines"].append(_line(run, "queue wait", job.queue_wait_s))
        for stage in (*PIPELINE_STAGES, "write"):
            if stage in job.timings:
                case["lines"].append(_line(run, stage, job.timings[stage]))
        tracked = sum(job.timings.values())
        case["lines"].append(_line(run, "outside stages (claim, spec, finish)", (job.run_s or 0) - tracked))
        case["lines"].append(_line(run, "request to awaiting_approval", job.total_s,
                                   cpu[label]["web"] + cpu[label]["workers"],
                                   peak_rss_mib=max(peaks.values()) if peaks else None))
    cold, warm = jobs[0][1], jobs[1][1]
    r = case["ratio"]
    r["service warm / library calls warm"] = _ratio(warm.total_s, library["warm"])
    r["service cold / (library imports + calls cold)"] = _ratio(cold.total_s, library["cold"] + imports_s)
    overhead = (warm.total_s or 0) - library["warm"]
    share = round(overhead / warm.total_s, 4) if warm.total_s else None
    service_cpu = cpu["warm"]["web"] + cpu["warm"]["workers"]
    cpu_share = round((service_cpu - library_cpu["warm"]) / service_cpu, 4) if service_cpu > 0 else None
    r["service warm / library calls warm (CPU)"] = _ratio(service_cpu, library_cpu["warm"])
    case["figures"] = {
        "library_calls_s": {k: round(v, 3) for k, v in library.items()},
        "library_imports_s": round(imports_s, 3),
        "service_warm_s": warm.total_s,
        "service_cold_s": cold.total_s,
        "overhead_warm_s": round(overhead, 3),
        "overhead_share_warm": share,
        "service_cpu_s": cpu,
        "library_cpu_s": {k: round(v, 3) for k, v in library_cpu.items()},
        "overhead_share_warm_cpu": cpu_share,
        "overhead_by_stage_warm_s": {
            "queue wait": warm.queue_wait_s,
            **{s: round(warm.timings.get(s, 0.0) - lib.stage(f"{s}_warm")["wall_s"], 3) for s in PIPELINE_STAGES},
            "write": warm.timings.get("write"),
            "outside stages": round((warm.run_s or 0) - sum(warm.timings.values()), 3),
        },
        "serialise_warm_s": lib.stage("serialise_warm")["wall_s"],
        "worker_peak_rss_mib": peaks,
        "policy": policy,
    }
    r["overhead share (warm)"] = share
    r["overhead share (warm, CPU)"] = cpu_share
    case["targets"]["overhead share (warm)"] = _target(share, "<=", 0.10)
    case["targets"]["overhead share (warm, CPU)"] = _target(cpu_share, "<=", 0.10)
    return case


# ---------------------------------------------------------------------------------------------
# 4: the report on a large table
# ---------------------------------------------------------------------------------------------


def case_report(cfg: BenchConfig) -> dict[str, Any]:
    p = cfg.params
    case = new_case(
        title=f"The full report (evaluation.build_report) on {p.report_rows:,} x {p.report_columns} rows",
        setup={"rows": p.report_rows, "columns": p.report_columns,
               "tables": "real and synthetic generated by evaluation._bench (latent-factor model), split 80/20"},
        notes=["peak memory of a stage includes the tables the process already holds (real, synthetic)"],
    )
    cfg.log(f"[report] build_report on {p.report_rows:,} x {p.report_columns}")
    result = run_in_child("bench.workloads:report_large", timeout=p.timeout, rows=p.report_rows,
                          columns=p.report_columns, seed=cfg.seed)
    if not result.ok:
        _fail(case, "report", result)
        return case
    case["lines"].extend(_stage_lines("report", result))
    rep = result.stage("report")
    html = result.stage("html")
    case["figures"] = {"sections_s": result.info.get("sections_s"), "statuses": result.info.get("statuses"),
                       "table_mib": result.stage("generate").get("table_mib")}
    case["targets"]["report seconds"] = _target(rep["wall_s"], "<=", 60)
    case["targets"]["report + html seconds"] = _target(rep["wall_s"] + html["wall_s"], "<=", 60)
    case["targets"]["report peak memory (MiB)"] = _target(rep["peak_rss_mib"], "<=", 4096)
    return case


# ---------------------------------------------------------------------------------------------
# 5: throughput with 1 and 2 workers
# ---------------------------------------------------------------------------------------------


def _warm_every_worker(cfg: BenchConfig, svc: Any, dataset: str, rows: int) -> None:
    """Run releases until every worker's pool process has run one (so no cold import lands in the measure)."""
    from bench.service import _descendants

    pool = {str(pid) for proc in svc.workers for pid in _descendants(proc.pid)}
    seen: set[str] = set()
    for _ in range(4):
        ids = [svc.request(dataset, "mst", cfg.params.throughput_epsilon, cfg.delta, rows)[0]
               for _ in range(len(svc.workers))]
        svc.wait(ids, timeout=cfg.params.timeout)
        seen |= {pid for pid in svc.worker_pids(ids).values() if pid}
        if pool <= seen:
            return


def case_throughput(cfg: BenchConfig) -> dict[str, Any]:
    p = cfg.params
    n = p.throughput_jobs
    case = new_case(
        title=f"{n} releases submitted at once (mst, epsilon {p.throughput_epsilon:g}, adult "
              f"{'demo sample 3,000 x 15' if p.throughput_data is None else _adult_shape(*p.throughput_data)}, "
              f"{p.throughput_rows:,} rows out) to 1 worker and to 2 workers",
        setup={"releases": n, "method": "mst", "rows_out": p.throughput_rows, "epsilon": p.throughput_epsilon,
               "backend": "embedded (SQLite, file-system broker)", "worker": "Celery, concurrency 1 per process"},
        notes=[
            "throughput = releases / (last finished - first requested) x 60; queue wait = started - requested",
            "every worker ran a release before the measured batch (warm workers)",
            "the machine has 2 cores shared with other work: scaling is bounded by the free cores (see the load)",
        ],
    )
    svc = cfg.service()
    if p.throughput_data is None:
        csv_path, schema_path = DEMO_CSV, DEMO_SCHEMA
    else:
        csv_path, schema_path = write_adult_subset(cfg.folder / "throughput-inputs", *p.throughput_data,
                                                   seed=cfg.seed)
    svc.register("bench-throughput", csv_path, schema_path)
    results: dict[int, dict[str, Any]] = {}
    for workers in (1, 2):
        while len(svc.workers) < workers:
            cfg.log(f"[throughput] starting worker w{len(svc.workers) + 1}")
            svc.start_worker(f"w{len(svc.workers) + 1}")
        _warm_every_worker(cfg, svc, "bench-throughput", p.throughput_rows)
        cfg.log(f"[throughput] {n} releases at once to {workers} worker(s)")
        with ThreadPoolExecutor(max_workers=n) as pool:
            submitted = list(pool.map(
                lambda _i: svc.request("bench-throughput", "mst", p.throughput_epsilon, cfg.delta,
                                       p.throughput_rows), range(n)))
        ids = [job_id for job_id, _took in submitted]
        jobs, _waited = svc.wait(ids, timeout=p.timeout)
        failed = [j for j in jobs if j.status != "awaiting_approval"]
        if failed:
            case["ok"] = False
            case.setdefault("errors", []).append(f"{len(failed)} of {n} releases failed with {workers} worker(s): "
                                                 f"{failed[0].error}")
            continue
        first = min(j.created_at for j in jobs)
        last = max(j.finished_at for j in jobs if j.finished_at is not None)
        makespan = (last - first).total_seconds()
        waits = [j.queue_wait_s or 0.0 for j in jobs]
        runs = [j.run_s or 0.0 for j in jobs]
        by_worker: dict[str, int] = {}
        for pid in svc.worker_pids(ids).values():
            by_worker[pid or "?"] = by_worker.get(pid or "?", 0) + 1
        res = {
            "workers": workers,
            "makespan_s": round(makespan, 2),
            "releases_per_minute": round(n / makespan * 60, 2) if makespan > 0 else None,
            "queue_wait_mean_s": round(statistics.mean(waits), 2),
            "queue_wait_median_s": round(statistics.median(waits), 2),
            "queue_wait_max_s": round(max(waits), 2),
            "run_mean_s": round(statistics.mean(runs), 2),
            "request_mean_s": round(statistics.mean(t for _i, t in submitted), 3),
            "releases_per_worker_process": by_worker,
        }
        results[workers] = res
        run = f"{workers} worker{'s' if workers > 1 else ''}"
        case["lines"].append(_line(run, "batch (first request to last done)", makespan,
                                   releases_per_minute=res["releases_per_minute"]))
        case["lines"].append(_line(run, "queue wait, mean", res["queue_wait_mean_s"]))
        case["lines"].append(_line(run, "queue wait, max", res["queue_wait_max_s"]))
        case["lines"].append(_line(run, "run time per release, mean", res["run_mean_s"]))
    case["figures"] = {"by_workers": results}
    if 1 in results and 2 in results:
        scaling = _ratio(results[2]["releases_per_minute"], results[1]["releases_per_minute"])
        case["ratio"]["throughput: 2 workers / 1 worker"] = scaling
        case["targets"]["throughput: 2 workers / 1 worker"] = _target(scaling, ">=", 1.5)
    return case


# ---------------------------------------------------------------------------------------------
# 6: scale
# ---------------------------------------------------------------------------------------------


def case_scale(cfg: BenchConfig) -> dict[str, Any]:
    p = cfg.params
    case = new_case(
        title=f"Scale: fit and sample at {', '.join(f'{r:,}' for r in p.scale_rows)} rows (adult resampled "
              f"with replacement, 15 columns) for {', '.join(p.scale_methods)}",
        setup={"rows": list(p.scale_rows), "methods": list(p.scale_methods), "epsilon": cfg.epsilon,
               "delta": cfg.delta, "sample_rows": "as many as the input"},
        notes=["peak memory of a stage includes the input table the process holds (table_mib)"],
    )
    timings: dict[str, dict[int, tuple[float, float, float]]] = {}
    for method in p.scale_methods:
        for rows in p.scale_rows:
            cfg.log(f"[scale] {method} at {rows:,} rows")
            result = run_in_child("bench.workloads:scale_fit", timeout=p.timeout, method=method, rows=rows,
                                  epsilon=cfg.epsilon, delta=cfg.delta, seed=cfg.seed)
            run = f"{method} @ {rows:,}"
            if not result.ok:
                _fail(case, run, result)
                continue
            prep = result.stage("prepare")
            fit, sample = result.stage("fit"), result.stage("sample")
            case["lines"].append(_line(run, "fit", fit["wall_s"], fit["cpu_s"], fit["peak_rss_mib"],
                                       table_mib=prep.get("table_mib")))
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
        setup={"methods": methods, "rows": p.method_rows or 48_842, "epsilon": cfg.epsilon, "delta": cfg.delta,
               "sample_rows": 1_000},
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
        result = run_in_child("bench.workloads:method_fit", timeout=min(p.timeout, 1200), method=method, rows=rows,
                              epsilon=cfg.epsilon, delta=cfg.delta, sample_rows=1_000, seed=cfg.seed,
                              options=options or None)
        entry: dict[str, Any] = {"method": method, "guarantee": cls.guarantee,
                                 "rows": 0 if cls.guarantee == "data-free" else (rows or 48_842),
                                 "settings": note or "defaults", "ok": result.ok}
        if result.ok:
            imp, fit, sample = result.stage("import"), result.stage("fit"), result.stage("sample")
            entry.update(import_s=imp["wall_s"], fit_s=fit["wall_s"], fit_cpu_s=fit["cpu_s"],
                         sample_s=sample["wall_s"], peak_rss_mib=result.process_peak_rss_mib)
            case["lines"].append(_line(method, "fit", fit["wall_s"], fit["cpu_s"], fit["peak_rss_mib"],
                                       rows=entry["rows"], settings=entry["settings"]))
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
        setup={"rows": list(p.engine_rows), "methods": list(p.engine_methods), "epsilon": cfg.epsilon,
               "delta": cfg.delta, "sample_rows": "as many as the input"},
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
            result = run_in_child("bench.workloads:engine_scale", timeout=p.timeout, method=method, rows=rows,
                                  epsilon=cfg.epsilon, delta=cfg.delta, seed=cfg.seed)
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
                case["lines"].append(_line(run, stage, s["wall_s"], s["cpu_s"], s["peak_rss_mib"],
                                           table_mib=table_mib, above_baseline_mib=above))
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
}
CASE_NUMBERS = {str(i + 1): name for i, name in enumerate(CASES)}


def resolve_cases(names: list[str] | None) -> list[str]:
    """Case ids from names or numbers (1-8); every case when none are given."""
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
    except Exception as exc:  # noqa: BLE001 - the harness reports the failure and moves on
        log.exception("case %s failed", name)
        case = {"title": name, "ok": False, "errors": [f"{type(exc).__name__}: {exc}"], "lines": [], "ratio": {},
                "targets": {}}
    case = {"id": name, "number": list(CASES).index(name) + 1, **case, "started": started,
            "seconds": round(time.perf_counter() - t0, 1), "load_average_1min": [load_start, _load_1min()]}
    return case
