"""The permutation importance of a HistGradientBoosting model, predicted tree by tree (only the rows whose
path tests the permuted feature are predicted again), equals the one that predicts every permuted copy
with the model's own `predict`, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from evaluation.importance import _importance, _permutations, _tree_predictions


def _data(n: int, seed: int, classes: int) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Two categorical columns (one with missing values and codes the model never saw), three numbers (one
    with missing values, one unused), and a target that depends on most of them."""
    rng = np.random.default_rng(seed)
    cat_a = rng.integers(0, 6, n).astype(float)
    cat_b = rng.integers(0, 4, n).astype(float)
    cat_b[rng.random(n) < 0.1] = np.nan
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    x2[rng.random(n) < 0.1] = np.nan
    noise = rng.normal(size=n)
    signal = (cat_a % 3) - 1 + np.nan_to_num(cat_b) * 0.5 + x1 + np.nan_to_num(x2, nan=1.0) * 0.7
    signal += rng.normal(scale=0.8, size=n)
    if classes:
        y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1]))
    else:
        y = signal
    # the categorical column is not the first one: the model's preprocessing moves it
    X = np.column_stack([x1, cat_a, x2, cat_b, noise])
    return X, y, [False, True, False, True, False]


def _batched(model, X: np.ndarray, perms: list[list[np.ndarray]]) -> np.ndarray:
    n, d = X.shape
    repeats = len(perms[0])
    batch = np.tile(X, (d * repeats, 1))
    for j in range(d):
        for r in range(repeats):
            block = (j * repeats + r) * n
            batch[block : block + n, j] = X[perms[j][r], j]
    return model.predict(batch)


@pytest.mark.parametrize("classes", [2, 3, 0])
@pytest.mark.parametrize("native", [True, False])
def test_tree_by_tree_predictions_are_those_of_predict(classes: int, native: bool) -> None:
    X, y, is_cat = _data(3000, classes + 10 * native, classes)
    cls = HistGradientBoostingClassifier if classes else HistGradientBoostingRegressor
    model = Pipeline(
        [("model", cls(max_iter=30, categorical_features=is_cat if native else None, random_state=0))]
    ).fit(X[:2500], y[:2500])
    holdout = X[2500:].copy()
    holdout[:5, 1] = 17.0  # a category the model never saw
    perms = _permutations(np.random.default_rng(3), holdout.shape[0], holdout.shape[1], 2)
    fast = _tree_predictions(model, holdout, perms, model.predict(holdout))
    assert fast is not None
    expected = _batched(model, holdout, perms)
    assert fast.dtype == expected.dtype
    assert np.array_equal(fast, expected)


def test_importance_of_a_tree_model_is_that_of_the_batched_predictions() -> None:
    X, y, is_cat = _data(3000, 1, 2)
    model = HistGradientBoostingClassifier(max_iter=30, categorical_features=is_cat, random_state=0)
    model.fit(X[:2500], y[:2500])
    holdout, target = X[2500:], y[2500:]
    importance = _importance(model, holdout, target, "classification", seed=5, repeats=2)

    class Opaque:  # the same model, seen only through predict: every copy predicted in one batch
        def predict(self, rows: np.ndarray) -> np.ndarray:
            return model.predict(rows)

    assert np.array_equal(importance, _importance(Opaque(), holdout, target, "classification", seed=5, repeats=2))
    assert importance[4] < importance[0]  # the unused column matters less than the strongest one


def test_other_models_are_predicted_in_one_batch() -> None:
    X, y, _ = _data(500, 2, 2)
    X = np.nan_to_num(X)
    model = Pipeline([("model", LogisticRegression())]).fit(X, y)
    perms = _permutations(np.random.default_rng(0), 100, X.shape[1], 1)
    assert _tree_predictions(model, X[:100], perms, model.predict(X[:100])) is None
