"""A rebalanced release through the worker's pipeline, in this process on a SQLite file: the report and the gate
compare it class by class, and a re-run of post-processing on its stored sample is judged the same way."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from core import candidates, releases
from core.db import dispose_engines, session_scope, write_session
from core.models import ReleaseCandidate, ReleaseJob
from core.storage import get_storage
from privacy.schema import load_schema
from tests.unit.db_support import release_db, user
from workers.jobs import JobControl, claim
from workers.pipeline import balanced_target, run_pipeline, run_rerun
from workers.rerun import CandidateControl, claim_candidate

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "tests/data/penguins"


@pytest.fixture
def env(tmp_path):
    yield release_db(tmp_path, "penguins", "3", stewards=1)
    dispose_engines()


_user = user


def _fidelity_and_utility(gate: dict) -> dict[str, str]:
    return {c["name"]: c["message"] for c in gate["checks"] if c["name"] in ("fidelity", "utility_ratio")}


def test_a_rebalanced_dp_release_and_its_rerun_are_judged_class_by_class(env):
    with write_session(env) as s:
        req = releases.ReleaseRequest(
            dataset="penguins", method="mst", epsilon=1.0, delta=1e-7, rows=400, rebalance="smote"
        )
        job_id = releases.request_release(s, _user(s, "analyst"), req, env).id
    assert claim(job_id, "test-worker", env)
    with JobControl(job_id, "test-worker", env) as control:
        run_pipeline(job_id, control, env, get_storage(env))
    with session_scope(env) as s:
        job = s.get(ReleaseJob, job_id)
        assert job.status == "awaiting_approval", job.error
        summary, gate, artifacts = dict(job.summary), dict(job.gate), dict(job.artifacts)
    assert summary["rebalanced_target"] == "species"
    assert summary["classwise_fidelity_score"] is not None and summary["minority_f1_ratio"] is not None
    messages = _fidelity_and_utility(gate)
    assert messages["fidelity"].startswith("class-wise fidelity score (mean over the classes of 'species')")
    assert messages["utility_ratio"].startswith("minority-class F1 ratio")
    checks = {c["name"]: c for c in gate["checks"]}
    assert checks["fidelity"]["value"] == pytest.approx(summary["classwise_fidelity_score"])
    assert checks["utility_ratio"]["value"] == pytest.approx(summary["minority_f1_ratio"])
    storage = get_storage(env)
    internal = json.loads(storage.get_bytes(artifacts["report.json"]))
    public = json.loads(storage.get_bytes(artifacts["report_public.json"]))
    assert internal["sections"]["classes"]["visibility"] == "internal"
    assert "classes" not in public["sections"] and "classes" in public["withheld_sections"]
    assert "Class by class" in storage.get_bytes(artifacts["report.html"]).decode()
    assert "Class by class" not in storage.get_bytes(artifacts["report_public.html"]).decode()

    # a re-run on the stored sample (fewer rows) is judged class by class as well
    with write_session(env) as s:
        cand = candidates.request_rerun(s, storage, _user(s, "steward"), s.get(ReleaseJob, job_id), {"rows": 300})
        cand_id = cand.id
    assert claim_candidate(cand_id, "test-worker", env)
    with CandidateControl(cand_id, job_id, "test-worker", env) as control:
        run_rerun(cand_id, control, env, storage)
    with session_scope(env) as s:
        done = s.get(ReleaseCandidate, cand_id)
        assert done.status == "ready", done.error
        rerun_summary, rerun_gate = dict(done.summary), dict(done.gate)
    assert rerun_summary["rebalanced_target"] == "species"
    rerun_messages = _fidelity_and_utility(rerun_gate)
    assert rerun_messages["fidelity"].startswith("class-wise fidelity score")
    assert rerun_messages["utility_ratio"].startswith("minority-class F1 ratio")


def test_the_balanced_target_comes_from_the_rebalancing_or_the_oversampling_method():
    schema = load_schema(PENGUINS / "schema.yaml")
    spec = SimpleNamespace(target=None, options={})
    rebalanced = SimpleNamespace(
        schema=schema, rebalanced={"method": "smote", "rows_added": 10}, method_info={"name": "mst"}
    )
    oversampled = SimpleNamespace(schema=schema, rebalanced=None, method_info={"name": "borderline-smote"})
    plain = SimpleNamespace(schema=schema, rebalanced=None, method_info={"name": "mst"})
    assert balanced_target(spec, rebalanced) == "species"  # the schema's target, as rebalance_output resolves it
    assert balanced_target(spec, oversampled) == "species"
    assert balanced_target(SimpleNamespace(target=None, options={"target": "island"}), oversampled) == "island"
    assert balanced_target(spec, plain) is None
