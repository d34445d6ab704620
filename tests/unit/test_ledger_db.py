"""The ledger on a real SQLite file: transitions are idempotent, append-only and never refund after data access."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import select

from core import ledger, releases
from core.db import dispose_engines, session_scope, write_session
from core.errors import Conflict, Forbidden
from core.models import JobStatus, LedgerEntry, ReleaseJob
from privacy.errors import BudgetExceeded, PolicyViolation
from tests.unit.db_support import release_db, user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path):
    yield release_db(tmp_path, "pums", "1")
    dispose_engines()


_user = user


def _request(settings, epsilon=0.25, method="dp-marginals", user="analyst", delta=0):
    """dp-marginals at delta 0 is pure epsilon-DP (Laplace), so basic composition decides."""
    with write_session(settings) as s:
        req = releases.ReleaseRequest(dataset="pums", method=method, epsilon=epsilon, delta=delta, rows=10)
        return releases.request_release(s, _user(s, user), req, settings).id


def _actions(settings, job_id):
    with session_scope(settings) as s:
        return [
            e.action
            for e in s.execute(
                select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)
            ).scalars()
        ]


def test_spend_is_idempotent_and_release_after_spend_keeps_the_charge(env):
    job_id = _request(env)
    for _ in range(3):  # retries and redelivered tasks
        with write_session(env) as s:
            ledger.mark_spent(s, s.get(ReleaseJob, job_id))
    with write_session(env) as s:
        assert ledger.release_reservation(s, s.get(ReleaseJob, job_id), "late failure") is False
    assert _actions(env, job_id) == ["reserve", "spend"]
    with session_scope(env) as s:
        assert ledger.job_charge_state(s, job_id) == "spent"


def test_release_before_data_access_frees_the_budget_once(env):
    job_id = _request(env, epsilon=1.0)
    with pytest.raises(BudgetExceeded):
        _request(env, epsilon=0.5)
    with write_session(env) as s:
        assert ledger.release_reservation(s, s.get(ReleaseJob, job_id), "failed early") is True
        assert ledger.release_reservation(s, s.get(ReleaseJob, job_id), "again") is False
        with pytest.raises(Conflict):
            ledger.mark_spent(s, s.get(ReleaseJob, job_id))
    assert _actions(env, job_id) == ["reserve", "release"]
    _request(env, epsilon=0.5)  # the freed budget can be used


def test_rejection_never_refunds(env):
    job_id = _request(env, epsilon=0.6)
    with write_session(env) as s:
        job = s.get(ReleaseJob, job_id)
        ledger.mark_spent(s, job)
        job.status = JobStatus.awaiting_approval.value
    with write_session(env) as s:
        releases.reject(s, _user(s, "steward"), s.get(ReleaseJob, job_id), "not useful")
    with session_scope(env) as s:
        ds = releases.get_dataset(s, _user(s, "steward"), "pums")
        status = ledger.ledger_summary(s, ds).status
        assert status.spent.epsilon == Fraction(3, 5)
        assert status.remaining_epsilon == Fraction(2, 5)
    with pytest.raises(BudgetExceeded):
        _request(env, epsilon=0.5)


def test_four_eyes_a_steward_cannot_approve_their_own_request(env):
    job_id = _request(env, epsilon=0.2, user="steward")
    with write_session(env) as s:
        s.get(ReleaseJob, job_id).status = JobStatus.awaiting_approval.value
    with write_session(env) as s, pytest.raises(Forbidden, match="four-eyes"):
        releases.approve(s, _user(s, "steward"), s.get(ReleaseJob, job_id))
    with write_session(env) as s:
        releases.approve(s, _user(s, "steward2"), s.get(ReleaseJob, job_id), comment="ok")
        assert s.get(ReleaseJob, job_id).status == "approved"


def test_failed_gate_needs_a_written_override(env):
    job_id = _request(env, epsilon=0.2)
    with write_session(env) as s:
        job = s.get(ReleaseJob, job_id)
        job.status = JobStatus.awaiting_approval.value
        job.gate = {"overall": "fail", "checks": [{"name": "k_anonymity", "status": "fail"}]}
    with write_session(env) as s, pytest.raises(Conflict, match="override"):
        releases.approve(s, _user(s, "steward"), s.get(ReleaseJob, job_id), override="  ")
    with write_session(env) as s:
        releases.approve(s, _user(s, "steward"), s.get(ReleaseJob, job_id), override="reviewed by the DPO")
    with session_scope(env) as s:
        from core.models import AuditEvent

        actions = [e.action for e in s.execute(select(AuditEvent)).scalars()]
        assert "release.override" in actions


def test_non_dp_needs_the_policy_and_then_the_ledger_says_so(env):
    with pytest.raises(PolicyViolation):
        _request(env, method="gaussian-copula", epsilon=None)
    with write_session(env) as s:
        ds = releases.get_dataset(s, _user(s, "steward"), "pums")
        releases.update_policy(s, _user(s, "steward"), ds, {"privacy": "allow-non-dp"})
    job_id = _request(env, method="gaussian-copula", epsilon=None)
    assert _actions(env, job_id) == ["reserve"]
    with session_scope(env) as s:
        ds = releases.get_dataset(s, _user(s, "steward"), "pums")
        status = ledger.ledger_summary(s, ds).status
        assert status.non_dp_releases == 1
        assert "NO FORMAL GUARANTEE" in status.guarantee()


def test_zcdp_admits_what_basic_composition_would_refuse(env):
    _request(env, epsilon=1.0, delta=1e-9)
    job_id = _request(env, epsilon=0.5, delta=1e-9)  # basic total 1.5 > 1, zCDP total below 1
    with session_scope(env) as s:
        row = s.execute(select(LedgerEntry).where(LedgerEntry.job_id == job_id)).scalar_one()
        assert "zcdp" in row.note
        ds = releases.get_dataset(s, _user(s, "steward"), "pums")
        status = ledger.ledger_summary(s, ds).status
        assert status.zcdp_epsilon_committed <= 1 < status.reserved.epsilon


def test_budget_cannot_be_lowered_below_what_is_committed(env):
    _request(env, epsilon=0.5)
    with write_session(env) as s:
        ds = releases.get_dataset(s, _user(s, "steward"), "pums")
        with pytest.raises(Conflict, match="below what is already committed"):
            releases.update_policy(s, _user(s, "steward"), ds, None, epsilon_budget="0.4")


def test_rows_not_asked_for_default_to_the_public_row_count_never_the_table_s(env):
    from core.models import Dataset

    with write_session(env) as s:
        req = releases.ReleaseRequest(dataset="pums", method="dp-marginals", epsilon=0.1, delta=0)
        job = releases.request_release(s, _user(s, "analyst"), req, env)
        assert job.rows == releases.DEFAULT_ROWS  # no public figure declared: the service's default
        ds = s.execute(select(Dataset).where(Dataset.name == "pums")).scalar_one()
        ds.policy = {**(ds.policy or {}), "public_row_count": 777}
    with write_session(env) as s:
        req = releases.ReleaseRequest(dataset="pums", method="dp-marginals", epsilon=0.1, delta=0)
        job = releases.request_release(s, _user(s, "analyst"), req, env)
        assert job.rows == 777
        req = releases.ReleaseRequest(dataset="pums", method="dp-marginals", epsilon=0.1, delta=0, rows=50)
        assert releases.request_release(s, _user(s, "analyst"), req, env).rows == 50
