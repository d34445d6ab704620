"""The release pipeline, stage by stage.

load -> conform to the public schema -> hold out a real test split -> fit (the
reservation becomes spent here) -> sample -> post-process (rebalancing of DP
output, disclosure control) -> real-row checks -> evaluate -> gate -> privacy
statement -> write artifacts. Each stage reports progress through JobControl.

The pipeline only orchestrates: every computation lives in `privacy/` or
`evaluation/`. Nothing here is shown to an analyst: the artifacts wait in
private storage until a steward approves the release.

Secrets and charges:

* The job's seed seeds the mechanism's noise and is secret. Every auxiliary
  draw (the holdout split, the report's samples, rebalancing) gets its own
  sub-seed derived from it by HMAC-SHA256 (`sub_seed`), which reveals nothing
  about it; neither the seed nor a sub-seed is written into any artifact.
* The reservation becomes spent before the raw file is read: every outcome
  from then on depends on the data, so every failure from then on keeps the
  charge, and its public message says nothing about the data.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pandas as pd

from core.bundle import safe_csv_bytes
from core.candidates import candidate_prefix, sample_key, sample_meta_key
from core.db import session_scope
from core.models import ReleaseJob
from core.settings import Settings
from core.storage import Storage
from privacy._random import sub_seed
from privacy.catalogue import method_entry
from privacy.constraints import enforce_constraints
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema
from workers.jobs import JobControl
from workers.postprocess import (
    PostProcessed,
    Sampled,
    _keep_sample,
    balanced_target,
    post_process,
)
from workers.stages import (
    DATA_FAILURE_MESSAGE,
    RERUN_STAGES,
    STAGES,
    JobSpec,
    PipelineError,
    _check_reservation,
    _jsonable,
    _ledger_text,
    _load,
    _parquet_bytes,
    _plan,
    _raw_options,
    _Stage,
    _store,
    _within,
    load_spec,
)

log = logging.getLogger(__name__)

__all__ = [
    "DATA_FAILURE_MESSAGE",
    "RERUN_STAGES",
    "STAGES",
    "JobSpec",
    "PipelineError",
    "PostProcessed",
    "Sampled",
    "balanced_target",
    "load_spec",
    "post_process",
    "run_pipeline",
    "run_rerun",
]


def run_pipeline(job_id: int, control: JobControl, settings: Settings, storage: Storage) -> None:
    """Run one job to awaiting_approval, by the kind of release it is."""
    spec = load_spec(job_id, settings)
    raw_options = _raw_options(job_id, settings)
    entry = method_entry(spec.method)
    if entry.whole_table:
        _run_statistics(spec, raw_options, control, settings, storage)
    elif not entry.reads_rows:
        _run_data_free(spec, control, settings, storage)
    else:
        _run_synthetic(spec, raw_options, control, settings, storage)


def _run_synthetic(
    spec: JobSpec, raw_options: dict[str, Any], control: JobControl, settings: Settings, storage: Storage
) -> None:
    """dp-synthetic, synthetic and oversample releases: fit on the training split, sample, control, evaluate."""
    job_id = spec.job_id
    prefix = f"jobs/{job_id}"
    entry = method_entry(spec.method)
    options = dict(spec.options)
    if "target" in entry.cls.option_spec and spec.target and not options.get("target"):
        options["target"] = spec.target  # the request's target is the class to balance
    plan = _plan(spec, options, raw_options.get("rebalance"))
    _check_reservation(spec, plan.cost)
    synth = entry.create(seed=spec.seed, options=plan.options)
    table, conform_report = _load(spec, control, storage)

    from evaluation import split_holdout
    from evaluation.split import EmptySplit

    with _Stage(control, "split", spec):
        holdout = float(raw_options.get("holdout", 0.2))
        try:
            train, test, split_info = split_holdout(
                table, spec.schema, target=spec.target, holdout=holdout, seed=sub_seed(spec.seed, "holdout split")
            )
        except EmptySplit as exc:
            raise PipelineError(exc.code, DATA_FAILURE_MESSAGE, exc.message) from exc
        del table

    with _Stage(control, "fit", spec) as st:
        cost = synth.fit(train, spec.schema, spec.requested, progress=st)
        if spec.reserved is not None and not _within(cost, spec.reserved):
            raise PipelineError(
                "cost_mismatch",
                "the fit cost more than was reserved; the release was stopped",
                f"fit {cost.describe()} vs reserved {spec.reserved.describe()}",
            )

    with _Stage(control, "sample", spec) as st:
        synthetic = synth.sample(spec.rows, progress=st)
        synthetic, constraints = enforce_constraints(
            synthetic, spec.schema, resample=synth.sample_more, seed=sub_seed(spec.seed, "constraints")
        )

    with _Stage(control, "postprocess", spec) as st:
        rebalance = raw_options.get("rebalance")
        rebalanced = None
        if rebalance:
            from privacy.synthesizers.rebalance import rebalance_output

            before = len(synthetic)
            synthetic = rebalance_output(
                synthetic, spec.schema, spec.target, rebalance, seed=sub_seed(spec.seed, "rebalance")
            )
            rebalanced = {"method": rebalance, "rows_added": len(synthetic) - before}
        st(0.2, "keeping the sample for re-runs of post-processing")
        method_info = _jsonable(synth.fit_info())
        _keep_sample(
            synthetic,
            spec,
            storage,
            method_info=method_info,
            rebalanced=rebalanced,
            holdout=holdout,
            cost=cost,
            constraints=constraints.to_dict(),
        )

    outcome = post_process(
        spec,
        Sampled(
            synthetic=synthetic,
            train=train,
            test=test,
            schema=spec.schema,
            policy=spec.policy,
            cost=cost,
            method_info=method_info,
            rebalanced=rebalanced,
            split_info=split_info,
            conform=conform_report.to_dict(),
            prefix=prefix,
            constraints=constraints.to_dict(),
        ),
        control,
        settings,
        storage,
    )
    finished = control.finish(
        cost=cost.to_dict(),
        split=split_info,
        artifacts=outcome.artifacts,
        summary=outcome.summary,
        gate=outcome.gate,
        timings=spec.timings,
    )
    if not finished:
        log.warning("job %s: finished but another worker owns it now; results discarded", job_id)


def run_rerun(candidate_id: int, control: JobControl, settings: Settings, storage: Storage) -> None:
    """Re-run post-processing of a finished job on its stored sample, as candidate `number`.

    Never fits or samples: it reads the stored sample and, exactly as the original run did, the real
    table for the internal checks and the report (the same holdout split, from the job's seed). The
    ledger is not touched: this is post-processing of one DP output."""
    from core.models import ReleaseCandidate
    from evaluation import split_holdout
    from privacy.postprocessing import apply_settings, rows_subset

    with session_scope(settings) as s:
        cand = s.get(ReleaseCandidate, candidate_id)
        assert cand is not None
        job_id, number = cand.job_id, cand.number
        requested = dict((cand.settings or {}).get("requested") or {})
        job = s.get(ReleaseJob, job_id)
        assert job is not None
        original_split = dict(job.split or {})
    spec = load_spec(job_id, settings)
    spec.stages = RERUN_STAGES
    try:
        meta = json.loads(storage.get_bytes(sample_meta_key(job_id)))
        sample = pd.read_parquet(io.BytesIO(storage.get_bytes(sample_key(job_id))))
    except Exception as exc:
        raise PipelineError(
            "no_sample",
            "the sample of this release is not in storage; it cannot be re-run",
            f"{type(exc).__name__}: {exc}",
        ) from exc
    # the schema and policy the sample was first post-processed under, changed by the re-run's settings
    spec.schema = PublicSchema.from_dict(meta["schema"])
    chosen = apply_settings(spec.schema, DatasetPolicy.from_dict(meta["policy"]), requested, len(sample))
    table, conform_report = _load(spec, control, storage, charge=False)
    with _Stage(control, "split", spec):
        train, test, split_info = split_holdout(
            table,
            spec.schema,
            target=spec.target,
            holdout=float(meta["holdout"]),
            seed=sub_seed(spec.seed, "holdout split"),
        )
        del table
        if _jsonable(split_info) != original_split:
            raise PipelineError(
                "split_mismatch",
                "the real table no longer splits as it did for the release; it cannot be re-run",
                f"split now {split_info}, at the release {original_split}",
            )
    # seeded by the row count alone: the same settings give the same candidate, so repeating a re-run
    # cannot draw subsets until one looks lucky on the internal checks
    synthetic = rows_subset(sample, chosen.rows, sub_seed(spec.seed, f"re-run rows {chosen.rows}"))
    del sample
    outcome = post_process(
        spec,
        Sampled(
            synthetic=synthetic,
            train=train,
            test=test,
            schema=chosen.schema,
            policy=chosen.policy,
            cost=meta["cost"],
            method_info=meta["method_info"],
            rebalanced=meta.get("rebalanced"),
            split_info=split_info,
            conform=conform_report.to_dict(),
            prefix=candidate_prefix(job_id, number),
            release_facts={"postprocessing": {"candidate": number, "settings": chosen.describe()}},
            constraints=meta.get("constraints"),
        ),
        control,
        settings,
        storage,
    )
    if not control.finish(
        artifacts=outcome.artifacts,
        summary=outcome.summary,
        gate=outcome.gate,
        timings=spec.timings,
        rows_released=outcome.rows_released,
    ):
        log.warning("job %s candidate %s: finished but another worker owns it now; results discarded", job_id, number)


def _run_statistics(
    spec: JobSpec, raw_options: dict[str, Any], control: JobControl, settings: Settings, storage: Storage
) -> None:
    """dp-statistics: DP aggregates of the whole table, then small-cell rules. No holdout, no report on rows."""
    from privacy.gate import evaluate_gate
    from privacy.statement import privacy_statement
    from privacy.statistics import dp_statistics, long_table, release_tables

    prefix = f"jobs/{spec.job_id}"
    plan = _plan(spec, spec.options)
    _check_reservation(spec, plan.cost)
    table, conform_report = _load(spec, control, storage)
    split_info = {"holdout": 0.0, "reason": "aggregate release: every row is measured, none held out"}
    with _Stage(control, "fit", spec) as st:
        release = dp_statistics(table, spec.schema, spec.requested, options=spec.options, seed=spec.seed, progress=st)
        cost = release.cost
        if spec.reserved is not None and not _within(cost, spec.reserved):
            raise PipelineError(
                "cost_mismatch",
                "the statistics cost more than was reserved; the release was stopped",
                f"{cost.describe()} vs reserved {spec.reserved.describe()}",
            )
        del table
    with _Stage(control, "postprocess", spec):
        released, small_cells = release_tables(release, spec.policy.small_cell_threshold, spec.policy.rounding_base)
    with _Stage(control, "write", spec) as st:
        gate = evaluate_gate(spec.policy, disclosure=None, small_cells=small_cells)
        long = long_table(released)
        draft = privacy_statement(
            method=method_entry(spec.method).info(spec.options),
            cost=cost,
            schema=spec.schema,
            dataset_guarantee=_ledger_text(spec, settings),
            release={
                "id": spec.job_id,
                "dataset": spec.dataset_name,
                "kind": spec.kind,
                "holdout": 0.0,
                "schema_version": spec.schema_version,
            },
            small_cells=small_cells,
            gate=gate,
            include_internal=True,
        )
        summary = {"tables": {name: len(df) for name, df in released.items()}, "budget": release.budget}
        report_doc = {
            "schema_version": "1",
            "kind": plan.kind,
            "public": True,
            "summary": summary,
            "small_cells": small_cells,
            "budget": release.budget,
            "tables": {name: json.loads(df.to_json(orient="records")) for name, df in released.items()},
        }
        html = _statistics_html(released, release.budget, small_cells)
        files = {
            "data.csv": safe_csv_bytes(long),
            "data.parquet": _parquet_bytes(long.astype({c: "string" for c in long.columns if long[c].dtype == object})),
            "schema.json": json.dumps(
                {"kind": plan.kind, "tables": {n: list(df.columns) for n, df in released.items()}}, indent=2
            ).encode(),
            "report.json": json.dumps(report_doc, indent=2, default=str).encode(),
            "report_public.json": json.dumps(report_doc, indent=2, default=str).encode(),
            "report.html": html.encode(),
            "report_public.html": html.encode(),
            "privacy_draft.md": draft.encode(),
            "disclosure.json": json.dumps(
                {"small_cells": small_cells, "conform": conform_report.to_dict()}, indent=2, default=str
            ).encode(),
        }
        artifacts = _store(files, prefix, storage, st)
    control.finish(
        cost=cost.to_dict(),
        split=split_info,
        artifacts=artifacts,
        summary=_jsonable(summary),
        gate=_jsonable(gate.to_dict(include_internal=True)),
        timings=spec.timings,
    )


def _statistics_html(tables: dict[str, pd.DataFrame], budget: dict[str, Any], small_cells: Any) -> str:
    import html as _html

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>DP statistics</title>",
        "<style>body{font-family:sans-serif;margin:2rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem}</style></head><body>",
        "<h1>Differentially private statistics</h1>",
        "<p>Every figure below was measured with a DP mechanism on bounds and domains from the public "
        "schema; small cells were suppressed and counts rounded afterwards (post-processing).</p>",
        f"<h2>Budget split</h2><pre>{_html.escape(json.dumps(budget, indent=2, default=str))}</pre>",
    ]
    for name, df in tables.items():
        parts.append(f"<h2>{_html.escape(name)}</h2>")
        parts.append(df.to_html(index=False, na_rep="suppressed", border=0))
    parts.append("</body></html>")
    return "".join(parts)


def _run_data_free(spec: JobSpec, control: JobControl, settings: Settings, storage: Storage) -> None:
    """scenario / spec: generated from options alone; no real row is read, nothing is charged."""
    from evaluation import build_report
    from privacy.gate import evaluate_gate
    from privacy.statement import privacy_statement

    prefix = f"jobs/{spec.job_id}"
    plan = _plan(spec, spec.options)
    synth = method_entry(spec.method).create(seed=spec.seed, options=plan.options)
    with _Stage(control, "fit", spec) as st:
        cost = synth.fit(None, None, spec.requested, progress=st)
        schema = synth.output_schema()
    with _Stage(control, "sample", spec) as st:
        generated = synth.sample(spec.rows, progress=st)
        generated, constraints = enforce_constraints(
            generated, schema, resample=synth.sample_more, seed=sub_seed(spec.seed, "constraints")
        )
    with _Stage(control, "evaluate", spec) as st:
        empty = generated.iloc[:0]
        report = build_report(
            empty,
            empty,
            generated,
            schema,
            schema.target,
            include=set(),
            seed=sub_seed(spec.seed, "report"),
            progress=st,
        )
    with _Stage(control, "write", spec) as st:
        gate = evaluate_gate(spec.policy, disclosure=None)
        draft = privacy_statement(
            method=synth.info(),
            cost=cost,
            schema=schema,
            dataset_guarantee=_ledger_text(spec, settings),
            release={
                "id": spec.job_id,
                "dataset": spec.dataset_name,
                "kind": spec.kind,
                "constraints": constraints.to_dict(),
            },
            gate=gate,
            include_internal=True,
        )
        files = {
            "data.csv": safe_csv_bytes(generated),
            "data.parquet": _parquet_bytes(generated),
            "schema.json": json.dumps(schema.to_dict(), indent=2).encode(),
            "report.json": json.dumps(report.to_dict(include_internal=True), indent=2, default=str).encode(),
            "report_public.json": json.dumps(report.to_dict(include_internal=False), indent=2, default=str).encode(),
            "report.html": report.to_html(include_internal=True).encode(),
            "report_public.html": report.to_html(include_internal=False).encode(),
            "privacy_draft.md": draft.encode(),
            "disclosure.json": json.dumps({"data_free": True, "constraints": constraints.to_dict()}).encode(),
        }
        artifacts = _store(files, prefix, storage, st)
    control.finish(
        cost=cost.to_dict(),
        split={"holdout": 0.0, "reason": "data-free: no real rows"},
        artifacts=artifacts,
        summary=_jsonable(report.summary),
        gate=_jsonable(gate.to_dict(include_internal=True)),
        timings=spec.timings,
    )
