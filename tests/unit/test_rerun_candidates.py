"""Re-runs of post-processing on a real SQLite file, run in this process: the state rules of
core/candidates.py, the worker's run on the stored sample (workers/pipeline.py:run_rerun), and
approval of a chosen candidate. The service-level test with real workers is
tests/integration/test_rerun_postprocessing.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from core import candidates, releases
from core.db import dispose_engines, session_scope, write_session
from core.errors import Conflict, Forbidden, InternalError, InvalidRequest, NotFound
from core.models import AuditEvent, JobStatus, LedgerEntry, ReleaseCandidate, ReleaseJob
from core.storage import get_storage
from privacy.errors import PostprocessSettingError
from tests.unit.db_support import release_db, user
from workers.jobs import JobControl, claim
from workers.pipeline import run_pipeline, run_rerun
from workers.rerun import CandidateControl, claim_candidate

ROOT = Path(__file__).resolve().parents[2]
ROWS = 300


@pytest.fixture
def env(tmp_path):
    yield release_db(tmp_path, "pums", "3")
    dispose_engines()


_user = user


def _request(settings, user: str = "analyst") -> int:
    with write_session(settings) as s:
        req = releases.ReleaseRequest(dataset="pums", method="dp-marginals", epsilon=0.5, delta=0, rows=ROWS)
        return releases.request_release(s, _user(s, user), req, settings).id


def _run(settings, job_id: int) -> None:
    assert claim(job_id, "test-worker", settings)
    with JobControl(job_id, "test-worker", settings) as control:
        run_pipeline(job_id, control, settings, get_storage(settings))


def _rerun(settings, job_id: int, body: dict, user: str = "steward") -> ReleaseCandidate:
    with write_session(settings) as s:
        cand = candidates.request_rerun(s, get_storage(settings), _user(s, user), s.get(ReleaseJob, job_id), body)
        cand_id = cand.id
    assert claim_candidate(cand_id, "test-worker", settings)
    with CandidateControl(cand_id, job_id, "test-worker", settings) as control:
        run_rerun(cand_id, control, settings, get_storage(settings))
    with session_scope(settings) as s:
        done = s.get(ReleaseCandidate, cand_id)
        s.expunge(done)
        return done


def _ledger(settings) -> list[tuple]:
    with session_scope(settings) as s:
        return [
            (e.id, e.job_id, e.action, e.epsilon, e.delta, e.rho, e.note, e.created_at)
            for e in s.execute(select(LedgerEntry).order_by(LedgerEntry.id)).scalars()
        ]


def _rows(settings, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(get_storage(settings).get_bytes(key)))


def test_a_rerun_uses_the_sample_charges_nothing_and_its_candidate_is_approved(env):
    job_id = _request(env)
    _run(env, job_id)
    storage = get_storage(env)
    sample = _rows(env, candidates.sample_key(job_id))
    assert len(sample) == ROWS
    before = _ledger(env)

    cand = _rerun(env, job_id, {"policy": {"k": 9, "suppression": "suppress"}, "rows": 120})
    assert cand.status == "ready", cand.error
    assert _ledger(env) == before
    released = _rows(env, cand.artifacts["data.parquet"])
    assert len(released) == cand.rows_released <= 120
    # disclosure control on 120 rows of the sample: every class of the quasi-identifiers has 9 or more rows
    schema = json.loads(storage.get_bytes(cand.artifacts["schema.json"]))
    if len(released):
        assert released.groupby(schema["quasi_identifiers"], dropna=False).size().min() >= 9
    disclosure = json.loads(storage.get_bytes(cand.artifacts["disclosure.json"]))["disclosure"]
    assert (disclosure["k"], disclosure["rows_in"], disclosure["suppression_mode"]) == (9, 120, "suppress")
    assert all(key.startswith(f"jobs/{job_id}/candidates/1/") for key in cand.artifacts.values())

    with session_scope(env) as s:
        numbers = [c.number for c in candidates.candidates_of(s, job_id)]
        original = s.get(ReleaseJob, job_id).artifacts
        events = [e.detail for e in s.execute(select(AuditEvent).where(AuditEvent.action == "release.rerun")).scalars()]
    assert numbers == [0, 1]
    assert events == [
        {
            "candidate": 1,
            "settings": {"policy": {"k": 9, "suppression": "suppress"}, "rows": 120},
            "effective": events[0]["effective"],
            "comment": None,
        }
    ]
    assert events[0]["effective"]["k"] == 9

    with write_session(env) as s:
        job = s.get(ReleaseJob, job_id)
        with pytest.raises(NotFound):
            releases.approve(s, _user(s, "steward2"), job, candidate=5)
        with pytest.raises(InvalidRequest):
            releases.approve(s, _user(s, "steward2"), job, candidate="1")
    with write_session(env) as s:
        job = s.get(ReleaseJob, job_id)
        releases.approve(s, _user(s, "steward2"), job, comment="k 9", override="reviewed", candidate=1)
        releases.make_bundle(s, storage, env, job)
        assert job.candidate == 1 and job.artifacts == cand.artifacts and job.artifacts != original
        statement = releases.final_statement(s, storage, job, job_dataset(s, job))
    assert "candidate 1 (re-run 1) of 2 candidates" in statement and "- **k**: 9" in statement
    assert _ledger(env) == before


def job_dataset(s, job):
    from core.models import Dataset

    return s.get(Dataset, job.dataset_id)


def test_the_same_settings_give_the_same_candidate_and_approval_defaults_to_the_latest(env):
    job_id = _request(env)
    _run(env, job_id)
    first = _rerun(env, job_id, {"rows": 100})
    again = _rerun(env, job_id, {"rows": 100})
    other = _rerun(env, job_id, {"rows": 101})
    assert (first.number, again.number, other.number) == (1, 2, 3)
    # repeating a re-run cannot draw another subset of the sample (no fishing for a lucky one)
    pd.testing.assert_frame_equal(
        _rows(env, first.artifacts["data.parquet"]), _rows(env, again.artifacts["data.parquet"])
    )
    assert first.gate == again.gate
    sample = _rows(env, candidates.sample_key(job_id))
    assert len(sample) == ROWS and first.rows_released <= 100 and other.rows_released <= 101
    with write_session(env) as s:
        job = s.get(ReleaseJob, job_id)
        releases.approve(s, _user(s, "steward2"), job, override="reviewed")
        assert job.candidate == 3 and job.artifacts == other.artifacts


def test_refusals(env):
    queued = _request(env)
    with write_session(env) as s, pytest.raises(Conflict, match="has not finished"):
        candidates.request_rerun(s, get_storage(env), _user(s, "steward"), s.get(ReleaseJob, queued), {})
    _run(env, queued)
    with write_session(env) as s:
        job = s.get(ReleaseJob, queued)
        with pytest.raises(Forbidden):
            candidates.request_rerun(s, get_storage(env), _user(s, "analyst"), job, {"rows": 10})
        with pytest.raises(PostprocessSettingError, match=f"more than the {ROWS} rows"):
            candidates.request_rerun(s, get_storage(env), _user(s, "steward"), job, {"rows": ROWS + 1})
        with pytest.raises(PostprocessSettingError, match="unknown column 'height'"):
            candidates.request_rerun(
                s, get_storage(env), _user(s, "steward"), job, {"schema": {"columns": {"height": {"round_to": 5}}}}
            )
        with pytest.raises(InvalidRequest):
            candidates.request_rerun(s, get_storage(env), _user(s, "steward"), job, {"comment": 3})
    with session_scope(env) as s:
        assert candidates.candidates_of(s, queued) == []  # nothing was recorded for a refusal
    # a release whose sample is gone (one that ran before samples were kept) cannot be re-run
    get_storage(env).delete_prefix(f"jobs/{queued}/sample")
    with write_session(env) as s, pytest.raises(Conflict, match="no stored sample"):
        candidates.request_rerun(s, get_storage(env), _user(s, "steward"), s.get(ReleaseJob, queued), {})

    decided = _request(env)
    _run(env, decided)
    with write_session(env) as s:
        releases.approve(s, _user(s, "steward"), s.get(ReleaseJob, decided), override="reviewed")
    with write_session(env) as s:
        assert s.get(ReleaseJob, decided).status == JobStatus.approved.value
        with pytest.raises(Conflict, match="already decided"):
            candidates.request_rerun(s, get_storage(env), _user(s, "steward"), s.get(ReleaseJob, decided), {})


def test_four_eyes_holds_for_a_candidate_and_a_rerun_never_charges(env):
    job_id = _request(env, user="steward")
    _run(env, job_id)
    _rerun(env, job_id, {"policy": {"k": 3}})
    with write_session(env) as s, pytest.raises(Forbidden, match="four-eyes"):
        releases.approve(s, _user(s, "steward"), s.get(ReleaseJob, job_id), candidate=1, override="x")
    control = CandidateControl(1, job_id, "test-worker", env)
    with pytest.raises(InternalError):
        control.mark_data_read()


def test_a_rerun_whose_worker_died_is_sent_again_and_then_completes(env):
    import datetime as dt

    from workers.rerun import reap_candidates

    job_id = _request(env)
    _run(env, job_id)
    with write_session(env) as s:
        cand_id = candidates.request_rerun(
            s, get_storage(env), _user(s, "steward"), s.get(ReleaseJob, job_id), {"policy": {"k": 4}}
        ).id
    assert claim_candidate(cand_id, "dead-worker", env)
    assert not claim_candidate(cand_id, "other-worker", env)  # one runner at a time
    sent: list[int] = []
    assert reap_candidates(env, sent.append) == [] and sent == []  # its lease still runs
    with write_session(env) as s:  # the dead worker's lease runs out
        s.get(ReleaseCandidate, cand_id).lease_expires_at = dt.datetime(2000, 1, 1)
    assert reap_candidates(env, sent.append) == [cand_id] and sent == [cand_id]
    with session_scope(env) as s:
        assert s.get(ReleaseCandidate, cand_id).status == "queued"
    before = _ledger(env)
    assert claim_candidate(cand_id, "test-worker", env)
    with CandidateControl(cand_id, job_id, "test-worker", env) as control:
        run_rerun(cand_id, control, env, get_storage(env))
    with session_scope(env) as s:
        cand = s.get(ReleaseCandidate, cand_id)
        assert (cand.status, cand.attempts) == ("ready", 2)
    assert _ledger(env) == before
