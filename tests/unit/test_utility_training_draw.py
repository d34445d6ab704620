"""The utility section's training-draw standard error, stated when a training table is subsampled.

Over the cap, each model is refitted on a second independent subsample (and model seed); half the squared
difference of the two fits' figures estimates the variance the draw adds. Over repeated report seeds, each
with a fresh holdout from the same distribution, the scores spread as the total standard error says, and
more than the holdout's error alone explains.
"""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import EvaluationLimits, build_report
from tests.unit.test_utility_standard_errors import _table

REPEATS = 24


def _utility(train, holdout, synthetic, schema, cap: int, seed: int) -> dict:
    limits = EvaluationLimits(model_train_rows=cap, importance_rows=100)
    report = build_report(train, holdout, synthetic, schema, include={"utility"}, seed=seed, limits=limits)
    assert report.sections["utility"].status == "computed", report.sections["utility"].reason
    return report.sections["utility"].data


def test_the_training_draw_is_stated_only_for_a_subsampled_table() -> None:
    schema, train = _table(1000, 0)
    _, synthetic = _table(3000, 1)
    _, holdout = _table(1000, 2)
    within = _utility(train, holdout, synthetic, schema, cap=5000, seed=3)
    for key in ("training_draw_se", "training_draw_method", "utility_ratio_se_total", "tstr_score_se_total"):
        assert key not in within, key
    assert all("standard_error_total" not in m and "training_draw_se" not in m for m in within["models"].values())

    over = _utility(train, holdout, synthetic, schema, cap=2000, seed=3)  # the synthetic table only
    assert "synthetic" in over["training_draw_method"] and "real" not in over["training_draw_method"]
    for m in over["models"].values():
        assert m["training_draw_se"]["trtr"] == 0.0  # the real rows are all used: no draw
        assert m["training_draw_se"]["tstr"] > 0.0
        for name, total in m["standard_error_total"].items():
            assert total == pytest.approx(np.hypot(m["standard_error"][name], m["training_draw_se"][name]))
    assert over["utility_ratio_se_total"] == over["models"]["hist_gradient_boosting"]["standard_error_total"]["ratio"]
    assert over["utility_ratio_se_total"] >= over["utility_ratio_se"]
    report_page = build_report(
        train, holdout, synthetic, schema, include={"utility"}, seed=3, limits=EvaluationLimits(model_train_rows=2000)
    )
    assert "training draw included" in report_page.to_html(include_internal=True)
    assert "training draw" not in report_page.to_html(include_internal=False).lower()


def test_scores_over_report_seeds_spread_as_the_total_standard_error_says() -> None:
    schema, train = _table(4000, 0)
    _, synthetic = _table(4000, 1)
    runs = []
    for r in range(REPEATS):
        _, holdout = _table(4000, 100 + r)  # a fresh holdout each time: its draw varies too
        runs.append(_utility(train, holdout, synthetic, schema, cap=150, seed=r))

    def rms(key: str) -> float:
        return float(np.sqrt(np.mean([u[key] ** 2 for u in runs])))

    for score, se in (("tstr_score", "tstr_score_se"), ("utility_ratio", "utility_ratio_se")):
        spread = float(np.std([u[score] for u in runs], ddof=1))
        total = rms(se + "_total")
        assert 0.6 < spread / total < 1.6, (score, spread, total)
        # 150 training rows of 4,000 against 4,000 holdout rows: the draw dominates the holdout's error
        assert spread > 1.5 * rms(se), (score, spread, rms(se))
