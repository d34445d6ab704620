"""A long stage shows its estimated time left: from the stage's own progress rate, stored by the worker,
to the second for staff and in whole minutes for the analyst; short or young stages show none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core import releases
from core.db import session_scope
from core.models import ReleaseJob
from tests.unit.db_support import user
from tests.unit.test_ledger_db import _request, env  # noqa: F401 - the fixture
from webapp.pages.hooks import eta_text
from workers import stages
from workers.jobs import JobControl, claim
from workers.stages import STAGES, _Stage, stage_eta


def test_the_estimate_is_the_rate_so_far_and_absent_while_it_would_mean_nothing():
    assert stage_eta(2.0, 0.5) is None  # too young: a stage of a few seconds never shows one
    assert stage_eta(30.0, 0.01) is None  # too little done for a rate
    assert stage_eta(10.0, 0.25) == pytest.approx(30.0)
    assert stage_eta(12.0, 0.75) == pytest.approx(4.0)
    assert stage_eta(40.0, 1.0) == 0.0


def test_the_words_match_the_pages_script():
    assert eta_text(None) == ""
    assert eta_text(0) == "about 1 s left in this stage"
    assert eta_text(42) == "about 42 s left in this stage"
    assert eta_text(61) == "about 2 min left in this stage"
    assert eta_text(180) == "about 3 min left in this stage"


def _views(settings, job_id):
    with session_scope(settings) as s:
        job = s.get(ReleaseJob, job_id)
        return (
            releases.job_view(s, user(s, "steward"), job)["eta_seconds"],
            releases.job_view(s, user(s, "analyst"), job)["eta_seconds"],
            job.eta_seconds,
        )


def test_a_running_stage_stores_its_estimate_and_each_role_sees_it_at_its_resolution(env, monkeypatch):  # noqa: F811
    job_id = _request(env)
    assert claim(job_id, "w1", env)
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(stages.time, "perf_counter", lambda: clock.now)
    spec = SimpleNamespace(stages=STAGES, timings={})
    with JobControl(job_id, "w1", env) as control:
        with _Stage(control, "evaluate", spec) as st:
            assert _views(env, job_id) == (None, None, None)  # just entered: no rate yet
            control._last_write = 0.0  # past the write throttle (two writes within 0.5 s of a stage)
            clock.now += 10.0
            st(0.1, "fidelity")  # 10 s for a tenth: 90 s left
            assert _views(env, job_id) == (90, 120, 90)  # the analyst's rounded up to whole minutes
            control._last_write = 0.0
            clock.now += 10.0
            st(0.8, "privacy risk")  # 20 s for 80%: 5 s left
            assert _views(env, job_id) == (5, 60, 5)
        with _Stage(control, "write", spec):
            assert _views(env, job_id)[:2] == (None, None)  # a new stage starts without an estimate
    # once the job is no longer running, no estimate is shown whatever is stored
    with session_scope(env) as s:
        job = s.get(ReleaseJob, job_id)
        job.status = "awaiting_approval"
        job.eta_seconds = 30
    assert _views(env, job_id)[:2] == (None, None)
