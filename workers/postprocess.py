"""Post-processing of a release's sample, shared by its run and its re-runs on the stored sample
(workers/pipeline.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.bundle import safe_csv_bytes
from core.candidates import sample_key, sample_meta_key
from core.settings import Settings
from core.storage import Storage
from privacy._random import sub_seed
from privacy.budget import PrivacyCost
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema
from workers.jobs import JobControl
from workers.stages import (
    JobSpec,
    _as_dict,
    _jsonable,
    _ledger_text,
    _parquet_bytes,
    _Stage,
    _store,
)

# ------------------------------------------------------------------------------------------------
# post-processing: shared by a release's run and its re-runs on the stored sample
# ------------------------------------------------------------------------------------------------


def _keep_sample(
    synthetic: pd.DataFrame,
    spec: JobSpec,
    storage: Storage,
    *,
    method_info: dict[str, Any],
    rebalanced: dict[str, Any] | None,
    holdout: float,
    cost: PrivacyCost,
    constraints: dict[str, Any] | None = None,
) -> None:
    """Store the DP sample (before disclosure control) in the job's private storage, with the schema and
    policy it was post-processed under, so that a steward can re-run post-processing without a new fit.
    Never part of a bundle or of any view: it is not yet disclosure-controlled."""
    storage.put_bytes(sample_key(spec.job_id), _parquet_bytes(synthetic))
    meta = {
        "rows": len(synthetic),
        "schema": spec.schema.to_dict(),
        "policy": spec.policy.to_dict(),
        "method_info": method_info,
        "rebalanced": rebalanced,
        "holdout": holdout,
        "cost": cost.to_dict(),
        "constraints": constraints,
    }
    storage.put_bytes(sample_meta_key(spec.job_id), json.dumps(meta, default=str).encode())


@dataclass
class Sampled:
    """What post-processing works on: a DP sample, the real split it is checked and evaluated against,
    and the schema and policy of its disclosure control."""

    synthetic: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    schema: PublicSchema
    policy: DatasetPolicy
    cost: PrivacyCost | dict[str, Any]
    method_info: dict[str, Any]
    rebalanced: dict[str, Any] | None
    split_info: dict[str, Any]
    conform: dict[str, Any]
    prefix: str
    release_facts: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, Any] | None = None  # what enforcing the schema's constraints did to the sample


@dataclass
class PostProcessed:
    artifacts: dict[str, str]
    summary: dict[str, Any]
    gate: dict[str, Any]
    rows_released: int


def post_process(
    spec: JobSpec, inp: Sampled, control: JobControl, settings: Settings, storage: Storage
) -> PostProcessed:
    """Disclosure control, real-row checks, evaluation, gate and artifacts of one sample.

    Charges nothing: it reads the sample and, for the internal checks and the report only, the real
    split the caller passes."""
    from privacy.disclosure import apply_disclosure_control, real_row_checks, recode_like

    schema, policy = inp.schema, inp.policy
    train, test = inp.train, inp.test
    with _Stage(control, "postprocess", spec) as st:
        st(0.3, "disclosure control")
        released, released_schema, disclosure = apply_disclosure_control(inp.synthetic, schema, policy)
        st(0.7, "checks against real rows")
        released, real_checks = real_row_checks(released, train, schema, policy, disclosure=disclosure)
        # the real holdout in the released representation: the baseline's rows here, the report's below
        test_view = recode_like(test, disclosure)
        # the same check on real people who were not in the training split: how often fresh rows of the
        # population reproduce a unique training combination by chance (the gate's baseline)
        _, baseline = real_row_checks(
            test_view,
            train,
            schema,
            policy.model_copy(update={"remove_real_matches": False}),
            disclosure=disclosure,
        )
        unique_baseline = baseline.unique_match_rate
        exact_baseline = (baseline.exact_match_rate, baseline.rows_checked)
        unique_bound = None if unique_baseline is None else (unique_baseline, baseline.rows_checked)

    from evaluation import build_report
    from evaluation._common import release_limits

    with _Stage(control, "evaluate", spec) as st:
        thresholds = {
            "min_fidelity": policy.min_fidelity,
            "min_utility_ratio": policy.min_utility_ratio,
            "max_membership_auc": policy.max_membership_auc,
            "max_exact_match_rate": policy.max_exact_match_rate,
            "warn_margin": policy.warn_margin,
        }
        # compare what is released with the real rows in the released representation
        train_view = recode_like(train, disclosure)
        report = build_report(
            train_view,
            test_view,
            released,
            released_schema,
            spec.target,
            thresholds=thresholds,
            seed=sub_seed(spec.seed, "report"),
            progress=st,
            rebalanced_target=balanced_target(spec, inp),
            limits=release_limits(),
        )
        del train_view, test_view

    from privacy.gate import evaluate_gate
    from privacy.statement import privacy_statement

    with _Stage(control, "write", spec) as st:
        summary = report.summary
        gate = evaluate_gate(
            policy,
            disclosure=disclosure,
            real_checks=real_checks,
            membership_auc=summary.get("membership_auc"),
            utility_ratio=summary.get("utility_ratio"),
            utility_leakage=summary.get("utility_leakage"),
            fidelity=summary.get("fidelity_score"),
            unique_match_baseline=unique_bound,
            exact_match_baseline=exact_baseline,
            class_aware=report.class_aware,
        )
        ledger_text = _ledger_text(spec, settings)
        # the steward's draft; the bundle's statement is written at approval, with the decision
        draft = privacy_statement(
            method=inp.method_info,
            cost=inp.cost,
            schema=schema,
            dataset_guarantee=ledger_text,
            release={
                "id": spec.job_id,
                "dataset": spec.dataset_name,
                "kind": spec.kind,
                "rows": len(released),
                "rebalanced": inp.rebalanced,
                "holdout": inp.split_info["holdout_fraction"],
                "constraints": inp.constraints,
                "schema_version": spec.schema_version,
                **inp.release_facts,
            },
            disclosure=disclosure,
            real_checks=real_checks,
            gate=gate,
            include_internal=True,
        )
        files = {
            "data.csv": safe_csv_bytes(released),
            "data.parquet": _parquet_bytes(released),
            "schema.json": json.dumps(released_schema.to_dict(), indent=2).encode(),
            "report.json": json.dumps(report.to_dict(include_internal=True), indent=2, default=str).encode(),
            "report_public.json": json.dumps(report.to_dict(include_internal=False), indent=2, default=str).encode(),
            "report.html": report.to_html(include_internal=True).encode(),
            "report_public.html": report.to_html(include_internal=False).encode(),
            "privacy_draft.md": draft.encode(),
            "disclosure.json": json.dumps(
                {
                    "disclosure": _as_dict(disclosure),
                    "real_checks": _as_dict(real_checks),
                    "holdout_unique_match_rate": unique_baseline,
                    "holdout_exact_match_rate": exact_baseline[0],
                    "rebalanced": inp.rebalanced,
                    "conform": inp.conform,
                    "constraints": inp.constraints,
                },
                indent=2,
                default=str,
            ).encode(),
        }
        artifacts = _store(files, inp.prefix, storage, st)
    return PostProcessed(
        artifacts=artifacts,
        summary=_jsonable(summary),
        gate=_jsonable(gate.to_dict(include_internal=True)),
        rows_released=len(released),
    )


def balanced_target(spec: JobSpec, inp: Sampled) -> str | None:
    """The target whose classes the sample was balanced on: by rebalancing a DP output (`inp.rebalanced`) or
    by an oversampling method. Read from what the sample's metadata keeps, so a re-run is judged the same way."""
    from privacy.catalogue import rebalancers
    from privacy.synthesizers.rebalance import resolve_target

    if inp.rebalanced:
        return resolve_target(inp.schema, spec.target)
    if inp.method_info.get("name") in rebalancers():
        return resolve_target(inp.schema, spec.options.get("target") or spec.target)
    return None
