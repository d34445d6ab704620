"""What a benchmark run is configured with, and the pieces every case builds its result from.

`Params` are the input sizes of full and quick mode, `BenchConfig` one run
(mode, privacy parameters, scratch folder, the service shared by the service
cases); the helpers make a case's result dict, its measured lines, ratios and
targets. The cases themselves are in bench.cases, which re-exports the
configuration names.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data import AIM_COLUMNS, QUICK_COLUMNS, ROOT
from bench.measure import ChildResult

log = logging.getLogger("bench.cases")  # the name the harness's progress log has always had

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
    marginal_rows=None,
    mst_columns=None,
    aim_columns=AIM_COLUMNS,
    aim_options=None,
    aim_smartnoise_fits=1,
    process_algos=("mst",),
    service_rows=None,
    service_columns=None,
    release_rows=48_842,
    report_rows=1_000_000,
    report_columns=20,
    throughput_jobs=20,
    throughput_data=None,
    throughput_rows=1_000,
    throughput_epsilon=0.1,
    scale_rows=(10_000, 100_000, 1_000_000),
    scale_methods=("mst", "dp-copula", "gaussian-copula"),
    methods=None,
    method_rows=None,
    engine_rows=(1_000_000, 10_000_000),
    engine_methods=("mst",),
    timeout=3600,
)

QUICK = Params(
    marginal_rows=2_000,
    mst_columns=QUICK_COLUMNS,
    aim_columns=QUICK_COLUMNS,
    aim_options={"rounds": 8},
    aim_smartnoise_fits=1,
    process_algos=("mst",),
    service_rows=1_000,
    service_columns=QUICK_COLUMNS,
    release_rows=300,
    report_rows=5_000,
    report_columns=20,
    throughput_jobs=4,
    throughput_data=(500, QUICK_COLUMNS),
    throughput_rows=200,
    throughput_epsilon=0.1,
    scale_rows=(10_000,),
    scale_methods=("mst", "dp-copula", "gaussian-copula"),
    methods=("mst", "dp-marginals", "dp-copula", "scenario"),
    method_rows=2_000,
    engine_rows=(20_000, 200_000),
    engine_methods=("mst",),
    timeout=600,
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
    "spec": (
        None,
        {
            "spec": {
                "columns": {
                    "age": {"distribution": "norm", "loc": 38, "scale": 13, "min": 17, "max": 90, "integer": True},
                    "sex": {"values": ["Female", "Male"], "probabilities": [0.33, 0.67]},
                    "hours-per-week": {
                        "distribution": "norm",
                        "loc": 40,
                        "scale": 12,
                        "min": 1,
                        "max": 99,
                        "integer": True,
                    },
                    "income": {"values": ["<=50K", ">50K"], "probabilities": [0.76, 0.24]},
                }
            }
        },
        "data-free: a 4-column spec, no data read",
    ),
    "scenario": (None, {}, "data-free: default scenario, no data read"),
}


METHODS_NOTE = (
    "import = loading synthgate's registry and creating the synthesizer; fit = the first fit in a fresh "
    "interpreter, which includes loading the method's own libraries (torch, SDV, JAX, imbalanced-learn), "
    "imported lazily by the methods"
)


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


def _line(
    run: str,
    stage: str,
    wall_s: float | None,
    cpu_s: float | None = None,
    peak_rss_mib: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out = {
        "run": run,
        "stage": stage,
        "wall_s": None if wall_s is None else round(wall_s, 3),
        "cpu_s": None if cpu_s is None else round(cpu_s, 3),
        "peak_rss_mib": peak_rss_mib,
    }
    out.update(extra)
    return out


def _process_line(run: str, process: dict[str, Any]) -> dict[str, Any]:
    """The line of a whole program's run (`bench.measure.run_program`)."""
    return _line(run, "process", process["wall_s"], process["cpu_s"], process["peak_rss_mib"])


def _stage_lines(run: str, result: ChildResult) -> list[dict[str, Any]]:
    return [_line(run, s["stage"], s["wall_s"], s["cpu_s"], s["peak_rss_mib"]) for s in result.stages]


def _sum(result: ChildResult, *stages: str) -> dict[str, float]:
    chosen = [result.stage(s) for s in stages]
    return {
        "wall_s": sum(s["wall_s"] for s in chosen),
        "cpu_s": sum(s["cpu_s"] for s in chosen),
        "peak_rss_mib": max(s["peak_rss_mib"] for s in chosen),
    }


def _row_steps(by_rows: dict[int, Any]) -> list[tuple[int, int]]:
    """Consecutive (smaller, larger) row counts measured, for growth ratios."""
    ordered = sorted(by_rows)
    return list(itertools.pairwise(ordered))


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
    return {
        "title": title,
        "ok": True,
        "setup": setup,
        "lines": [],
        "ratio": {},
        "targets": {},
        "notes": notes,
        **extra,
    }
