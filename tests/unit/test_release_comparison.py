"""When the headline fidelity score and SDMetrics' score rank two releases differently, the steward's
comparison says so and explains what each measures; every report carries the explanation beside both
scores. The comparison is computed on real rows: analysts never see it."""

from __future__ import annotations

import pytest

from core.db import write_session
from core.models import ReleaseJob
from evaluation.compare import SCORES_EXPLAINED, rank_disagreements
from tests.browser.support import make_app_env, register_demo, request_release


def test_only_pairs_ordered_oppositely_beyond_the_tolerance_disagree():
    rows = [
        {"id": 1, "fidelity_score": 0.90, "sdmetrics_quality": 0.70},
        {"id": 2, "fidelity_score": 0.80, "sdmetrics_quality": 0.85},  # opposite to 1 on both: disagrees
        {"id": 3, "fidelity_score": 0.902, "sdmetrics_quality": 0.60},  # a tie with 1 on fidelity: no
        {"id": 4, "fidelity_score": None, "sdmetrics_quality": 0.99},  # not scored: left out
        {"id": 5, "fidelity_score": 0.95, "sdmetrics_quality": float("nan")},
    ]
    found = rank_disagreements(rows)
    assert [d["releases"] for d in found] == [[1, 2], [2, 3]]
    first = found[0]
    assert first["fidelity_ahead"] == 1 and first["sdmetrics_ahead"] == 2
    assert first["fidelity_score"] == {1: 0.90, 2: 0.80} and first["sdmetrics_quality"] == {1: 0.70, 2: 0.85}
    assert rank_disagreements(rows[:1]) == []
    assert rank_disagreements([rows[0], {"id": 9, "fidelity_score": 0.5, "sdmetrics_quality": 0.5}]) == []


@pytest.fixture
def env(tmp_path):
    from core.db import dispose_engines

    env = make_app_env(tmp_path)
    register_demo(env)
    yield env
    dispose_engines()


def _finish(env, job_id: int, fidelity: float, sdmetrics: float) -> None:
    with write_session(env.settings) as s:
        job = s.get(ReleaseJob, job_id)
        job.status = "awaiting_approval"
        job.summary = {"fidelity_score": fidelity, "sdmetrics_quality": sdmetrics, "utility_ratio": 0.9}
        job.gate = {"overall": "pass", "checks": []}


def test_the_steward_sees_the_disagreement_explained_and_the_analyst_sees_no_comparison(env):
    a, b = request_release(env), request_release(env)
    _finish(env, a, 0.912345, 0.71)
    _finish(env, b, 0.85, 0.83)
    steward = env.pages("steward").get("/datasets/1").get_data(as_text=True)
    assert 'id="release-comparison"' in steward
    assert f'id="compare-{a}"' in steward and f'id="compare-{b}"' in steward
    assert "0.9123" in steward  # figures to 4 significant digits
    assert 'id="scores-disagree"' in steward
    assert f"the fidelity score puts #{a} ahead, SDMetrics puts #{b} ahead" in steward
    assert "Column Pair Trends" in steward  # what SDMetrics measures

    analyst = env.pages("analyst").get("/datasets/1").get_data(as_text=True)
    assert "release-comparison" not in analyst and "0.9123" not in analyst and "SDMetrics" not in analyst

    _finish(env, b, 0.85, 0.60)  # both scores now agree that the first is better
    steward = env.pages("steward").get("/datasets/1").get_data(as_text=True)
    assert 'id="release-comparison"' in steward and 'id="scores-disagree"' not in steward


def test_every_report_explains_both_scores_beside_them():
    from evaluation.render import _fidelity_html

    html = _fidelity_html({"fidelity_score": 0.8, "sdmetrics_quality": {"score": 0.7}})
    assert "id='scores-explained'" in html
    assert "Column Shapes" in SCORES_EXPLAINED and "Column Shapes" in html
