"""The utility section's standard errors, and the rows its models train on.

The analytic standard errors (DeLong's for ROC AUC, the delta method for R^2, the gap and the ratio of
TSTR to TRTR scored on the same holdout rows) are checked against a paired bootstrap of the same
holdout rows: they estimate the same spread, so they agree to within the bootstrap's own noise.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, normalized_mutual_info_score, r2_score, roc_auc_score

from evaluation import build_report, split_holdout
from evaluation.importance import _balanced_accuracy
from evaluation.utility import _auc_influence, _dense_labels, _nmi, _r2_influence, _se, _standard_errors
from privacy.schema import ColumnSpec, PublicSchema

BOOTSTRAP = 600


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated scores of them, the second the better."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    shared = rng.normal(size=n)
    weak = 0.8 * y + shared + rng.normal(size=n)
    strong = 1.6 * y + shared + 0.5 * rng.normal(size=n)
    return y, weak, strong


def _bootstrap(n: int, statistic, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n, n)) for _ in range(BOOTSTRAP)])


def test_delong_standard_errors_match_a_paired_bootstrap() -> None:
    y, weak, strong = _scores(3000, 0)
    g_weak = 2 * roc_auc_score(y, weak) - 1
    g_strong = 2 * roc_auc_score(y, strong) - 1
    psi_weak, psi_strong = 2 * _auc_influence(y, weak), 2 * _auc_influence(y, strong)
    se = _standard_errors(g_weak, g_strong, psi_weak, psi_strong)

    def figures(i: np.ndarray) -> tuple[float, float, float, float]:
        a = 2 * roc_auc_score(y[i], weak[i]) - 1
        b = 2 * roc_auc_score(y[i], strong[i]) - 1
        return a, b, b - a, a / b

    boot = _bootstrap(y.size, figures).std(axis=0, ddof=1)
    for k, name in enumerate(("tstr", "trtr", "gap", "ratio")):
        assert se[name] == pytest.approx(boot[k], rel=0.15), name
    # the two scores share their errors: the gap's error is smaller than if they were independent
    assert se["gap"] < np.hypot(se["tstr"], se["trtr"])


def test_the_one_vs_rest_mean_and_r2_have_bootstrap_like_errors() -> None:
    rng = np.random.default_rng(3)
    n = 2500
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    psi = np.mean([_auc_influence(y == c, p[:, c]) for c in range(3)], axis=0)
    boot = _bootstrap(n, lambda i: roc_auc_score(y[i], p[i], multi_class="ovr", average="macro"))
    assert _se(psi) == pytest.approx(boot.std(ddof=1), rel=0.15)

    x = rng.normal(size=n)
    target = 2 * x + rng.standard_t(4, size=n)
    pred = 1.8 * x + 0.1
    boot = _bootstrap(n, lambda i: r2_score(target[i], pred[i]))
    assert _se(_r2_influence(target, pred)) == pytest.approx(boot.std(ddof=1), rel=0.15)


def test_errors_shrink_with_the_holdout_and_are_missing_when_undefined() -> None:
    small = _se(_auc_influence(*_scores(500, 4)[:2]))
    large = _se(_auc_influence(*_scores(8000, 4)[:2]))
    assert small is not None and large is not None and large < small / 3
    assert _standard_errors(None, 0.5, None, np.zeros(3)) == {"tstr": None, "trtr": None, "gap": None, "ratio": None}
    # a TRTR score at or below 0 has no ratio, so no error of it
    assert _standard_errors(0.2, 0.0, np.ones(3), np.ones(3))["ratio"] is None
    # one class only: no AUC spread to estimate
    assert _se(_auc_influence(np.ones(10, dtype=bool), np.arange(10.0))) == 0.0


@pytest.mark.parametrize("seed", range(20))
def test_balanced_accuracy_is_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 6))
    y = rng.integers(0, k, int(rng.integers(1, 300)))
    pred = rng.integers(0, k + 2, y.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of predicted classes y does not hold
        expected = balanced_accuracy_score(y, pred)
    assert _balanced_accuracy(y, pred) == expected


@pytest.mark.parametrize("seed", range(20))
def test_the_leakage_checks_mutual_information_is_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    a = rng.integers(-1, int(rng.integers(1, 8)), n)
    b = 2 * a + (rng.random(n) < 0.05) if seed % 2 else rng.integers(0, int(rng.integers(1, 8)), n)
    assert _nmi(a, b) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_the_leakage_checks_labels_are_numpys_unique_inverse(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    low = -3 if seed % 3 == 0 else 0  # negative codes: numpy's own
    codes = rng.choice(rng.integers(low, 60, 8), n).astype(np.int32 if seed % 2 else np.int64)
    if seed == 5:
        codes = codes * 10_000  # sparse codes: numpy's own
    assert np.array_equal(_dense_labels(codes), np.unique(codes, return_inverse=True)[1])


def _table(n: int, seed: int) -> tuple[PublicSchema, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    label = np.where(x + (colour == "red") + rng.normal(size=n) > 0.5, "yes", "no")
    schema = PublicSchema(
        columns={
            "x": ColumnSpec(kind="continuous", min=-5.0, max=5.0),
            "colour": ColumnSpec(kind="categorical", values=["red", "green", "blue"]),
            "label": ColumnSpec(kind="categorical", values=["no", "yes"]),
        },
        target="label",
    )
    return schema, pd.DataFrame({"x": x.clip(-5, 5), "colour": colour, "label": label})


def test_tstr_and_trtr_state_their_errors() -> None:
    schema, real = _table(3000, 0)
    _, synthetic = _table(2000, 1)
    train, holdout, _ = split_holdout(real, schema, target="label", holdout=0.3, seed=0)
    report = build_report(train, holdout, synthetic, schema, include={"utility"}, seed=5)
    u = report.sections["utility"].data
    assert u["rows"]["synthetic_train"] == len(synthetic) and u["rows"]["real_train"] == len(train)
    for key in ("utility_ratio_se", "tstr_score_se", "trtr_score_se"):
        assert isinstance(u[key], float) and 0 < u[key] < 0.2, key
    for model in u["models"].values():
        assert set(model["standard_error"]) == {"tstr", "trtr", "gap", "ratio"}
    assert "DeLong" in u["standard_error_method"]
    page = report.to_html(include_internal=True)
    assert "standard error of the ratio" in page and "Standard errors:" in page
    assert "standard error" not in report.to_html(include_internal=False)


def test_minority_f1_errors_match_a_bootstrap_of_scikit_learns_f1() -> None:
    from sklearn.metrics import f1_score

    from evaluation.classwise import minority_scores

    rng = np.random.default_rng(7)
    n = 3000
    y = rng.choice(3, n, p=[0.7, 0.2, 0.1])
    tstr = np.where(rng.random(n) < 0.6, y, rng.integers(0, 3, n))
    trtr = np.where(rng.random(n) < 0.8, y, rng.integers(0, 3, n))
    utility = {
        "primary_model": "hist_gradient_boosting",
        "_predictions": {"y_true": y, "by_model": {"hist_gradient_boosting": {"tstr": tstr, "trtr": trtr}}},
    }
    scores = minority_scores(utility, ["a", "b", "c"], [1, 2], rng=np.random.default_rng(0))
    se = scores["standard_error"]
    assert scores["minority_f1_ratio_se"] == se["minority_f1_ratio"]

    def figures(i: np.ndarray) -> tuple[float, float, float]:
        a = f1_score(y[i], tstr[i], labels=[1, 2], average="macro", zero_division=0.0)
        b = f1_score(y[i], trtr[i], labels=[1, 2], average="macro", zero_division=0.0)
        return a, b, a / b

    boot = _bootstrap(n, figures, seed=2).std(axis=0, ddof=1)
    for k, name in enumerate(("tstr_minority_f1", "trtr_minority_f1", "minority_f1_ratio")):
        assert se[name] == pytest.approx(boot[k], rel=0.25), name
