"""Case 11, `aim_scale`: native AIM on adult resampled to 1,000,000 rows, against native MST on the same table
and against AIM on adult's own 48,842 rows.

With a million rows the noise of a measurement at epsilon 1 is small next to the counts, so AIM's rounds
rarely anneal: left unbounded, it keeps measuring and its model grows towards `max_model_size`, and every
round's estimation costs more. The case reports AIM's fit + sample time over MST's on the same table (target:
within 10x) and AIM's mean two-way total variation distance at a million rows against AIM's on the original
rows (target: no worse). Each run is a fresh child process (`bench.measure.run_in_child`) with CPU, wall and
peak RSS per stage.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.config import _fail, _line, _ratio, _target, new_case
from bench.measure import Meter, run_in_child

if TYPE_CHECKING:
    from bench.config import BenchConfig

__all__ = ["FULL_AIM_SCALE", "QUICK_AIM_SCALE", "AIMScaleParams", "aim_scale_fit", "case_aim_scale", "codes_tvd"]

# the 8 columns of quick mode: small domains, so that AIM at 20,000 rows fits in seconds
QUICK_AIM_SCALE_COLUMNS = [
    "workclass",
    "education",
    "marital-status",
    "relationship",
    "race",
    "sex",
    "native-country",
    "income",
]


@dataclass(frozen=True)
class AIMScaleParams:
    """Sizes of one mode: the large resampled table and the original-size table AIM is compared with."""

    rows: int  # adult resampled with replacement to this many rows
    base_rows: int | None  # None: adult's own 48,842 rows (no resampling)
    columns: list[str] | None  # None: all 15 columns
    timeout: float


FULL_AIM_SCALE = AIMScaleParams(rows=1_000_000, base_rows=None, columns=None, timeout=3600)
QUICK_AIM_SCALE = AIMScaleParams(rows=20_000, base_rows=5_000, columns=QUICK_AIM_SCALE_COLUMNS, timeout=300)


def codes_tvd(real: Any, synthetic: Any) -> dict[str, float]:
    """Mean and worst total variation distance over every two-way marginal of two encoded tables."""
    import numpy as np

    d = real.n_attributes
    tvds = []
    for pair in itertools.combinations(range(d), 2):
        p = real.marginal(pair)
        q = synthetic.marginal(pair)
        tvds.append(0.5 * float(np.abs(p / max(p.sum(), 1.0) - q / max(q.sum(), 1.0)).sum()))
    if not tvds:
        return {"mean": 0.0, "max": 0.0, "pairs": 0}
    return {"mean": round(float(np.mean(tvds)), 4), "max": round(float(np.max(tvds)), 4), "pairs": len(tvds)}


def aim_scale_fit(
    meter: Meter,
    *,
    method: str,
    rows: int | None,
    columns: list[str] | None,
    epsilon: float,
    delta: float,
    seed: int = 0,
    options: dict | None = None,
) -> None:
    """`fit_aim` or `fit_mst` on adult's codes (resampled with replacement to `rows`; None: as they are),
    then a sample of as many rows, scored by the mean two-way TVD against the input."""
    with meter.stage("import"):
        import numpy as np

        from bench.data import adult_table
        from privacy.budget import PrivacyCost, to_fraction
        from privacy.encoding import DomainEncoder
        from privacy.engine.accounting import request_rho
        from privacy.engine.aim import fit_aim
        from privacy.engine.mst import fit_mst
        from privacy.engine.table import EncodedTable

        rho = request_rho(PrivacyCost(to_fraction(epsilon), to_fraction(delta)))
        fit = fit_mst if method == "mst" else fit_aim
    rng = np.random.default_rng(seed)
    with meter.stage("prepare"):
        table, schema = adult_table(None, columns, seed=seed)
        encoder = DomainEncoder(schema)
        base = encoder.encode(table)
        del table
        if rows is not None:
            base = base[np.random.default_rng(seed).integers(0, len(base), rows)]
        encoded = EncodedTable(base, encoder.sizes)
        del base
    with meter.stage("fit"):
        result = fit(encoded, rho, rng, **(options or {}))
    with meter.stage("sample"):
        out = result.sample_codes(encoded.n_rows, rng)
    with meter.stage("score"):
        tvd = codes_tvd(encoded, EncodedTable(out, encoder.sizes))
    meter.info.update(
        method=method,
        rows=encoded.n_rows,
        columns=len(encoder.sizes),
        tvd=tvd,
        rounds=len(result.selected) if method == "aim" else None,
        model_cells=int(result.model.jt.cells),
        spent_rho=str(result.ledger.spent),
        total_rho=str(result.ledger.total),
        options=options or {},
    )


def case_aim_scale(cfg: BenchConfig) -> dict[str, Any]:
    """AIM against MST on the large table, and AIM's quality there against its quality on the original rows."""
    p = QUICK_AIM_SCALE if cfg.quick else FULL_AIM_SCALE
    width = len(p.columns) if p.columns else 15
    base_label = f"{p.base_rows:,}" if p.base_rows else "48,842 (original)"
    case = new_case(
        title=f"AIM at epsilon {cfg.epsilon:g} on adult resampled to {p.rows:,} x {width}: time against MST on "
        f"the same table, two-way TVD against AIM on {base_label} rows",
        setup={
            "rows": p.rows,
            "base_rows": p.base_rows or 48_842,
            "columns": p.columns or "all 15",
            "epsilon": cfg.epsilon,
            "delta": cfg.delta,
            "sample_rows": "as many as the input",
        },
        notes=[
            "the engine alone (fit_aim / fit_mst with default options) on adult's codes on the public domain, "
            "resampled with replacement; each run in a fresh process",
            "time = CPU seconds of fit + sample; aim / mst is taken in one run (target: <= 10)",
            "tvd = mean two-way total variation distance of the sample against the run's own input (lower is "
            "better); AIM at the large table against AIM at the base table (target: large / base <= 1)",
        ],
    )
    common = {"columns": p.columns, "epsilon": cfg.epsilon, "delta": cfg.delta, "seed": cfg.seed}
    runs = {
        f"aim @ {p.rows:,}": {"method": "aim", "rows": p.rows},
        f"mst @ {p.rows:,}": {"method": "mst", "rows": p.rows},
        f"aim @ {base_label}": {"method": "aim", "rows": p.base_rows},
    }
    got: dict[str, Any] = {}
    for run, kwargs in runs.items():
        cfg.log(f"[aim_scale] {run}")
        result = run_in_child("bench.aim_scale:aim_scale_fit", timeout=p.timeout, **kwargs, **common)
        if not result.ok:
            _fail(case, run, result)
            continue
        got[run] = result
        for stage in ("prepare", "fit", "sample"):
            s = result.stage(stage)
            case["lines"].append(
                _line(
                    run,
                    stage,
                    s["wall_s"],
                    s["cpu_s"],
                    s["peak_rss_mib"],
                    rounds=result.info.get("rounds"),
                    model_cells=result.info.get("model_cells"),
                )
            )
    aim_big, mst_big, aim_base = (got.get(run) for run in runs)
    case["figures"] = {
        run: {
            "fit_sample_cpu_s": round(r.stage("fit")["cpu_s"] + r.stage("sample")["cpu_s"], 3),
            "tvd": r.info["tvd"],
            "rounds": r.info["rounds"],
            "model_cells": r.info["model_cells"],
            "process_peak_rss_mib": r.process_peak_rss_mib,
        }
        for run, r in got.items()
    }
    if aim_big is not None and mst_big is not None:
        key = f"aim / mst: fit+sample CPU @ {p.rows:,}"
        case["ratio"][key] = _ratio(
            aim_big.stage("fit")["cpu_s"] + aim_big.stage("sample")["cpu_s"],
            mst_big.stage("fit")["cpu_s"] + mst_big.stage("sample")["cpu_s"],
        )
        case["targets"][key] = _target(case["ratio"][key], "<=", 10)
    if aim_big is not None and aim_base is not None:
        key = f"aim tvd: {p.rows:,} / {base_label}"
        case["ratio"][key] = _ratio(aim_big.info["tvd"]["mean"], aim_base.info["tvd"]["mean"])
        case["targets"][key] = _target(case["ratio"][key], "<=", 1)
    return case
