"""A HistGradientBoosting model's predictions through its binned traversal (evaluation.importance.predict,
predict_proba) are its own predictions to the last bit: on rows with missing values, numbers outside the
training range and categories the model never saw, for classifiers (two and three classes), a regressor and
a pipeline around one; and where binning could differ, the model's own method answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from evaluation.importance import predict, predict_proba


def _data(rows: int, seed: int, categories: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(size=rows),
            rng.integers(0, categories, size=rows).astype(float),  # categorical codes
            rng.exponential(size=rows),
            rng.integers(0, 3, size=rows).astype(float),  # categorical codes
        ]
    )
    X[rng.random(rows) < 0.05, 0] = np.nan
    X[rng.random(rows) < 0.05, 1] = np.nan
    return X


def _holdout() -> np.ndarray:
    X = _data(3_000, 1, categories=9)  # codes 6, 7 and 8 never seen in training
    X[:50, 0] = 1e6  # beyond every threshold
    X[50:100, 2] = -5.0
    X[100:150, 3] = -1.0  # a negative category: missing
    return X


def _target(X: np.ndarray, kind: str) -> np.ndarray:
    X = np.nan_to_num(X)
    signal = X[:, 0] + 0.6 * (X[:, 1] % 3) - 0.4 * X[:, 2] + 0.5 * X[:, 3]
    if kind == "regression":
        return signal
    if kind == "binary":
        return (signal > 0.3).astype(int)
    return np.digitize(signal, [-0.3, 0.8])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("wrapped", [False, True])
def test_binned_predictions_are_the_models_own(kind: str, wrapped: bool) -> None:
    X = _data(4_000, 0)
    cls = HistGradientBoostingRegressor if kind == "regression" else HistGradientBoostingClassifier
    model = cls(max_iter=40, categorical_features=[False, True, False, True], random_state=0).fit(X, _target(X, kind))
    if wrapped:
        model = Pipeline([("model", model)])
    test = _holdout()
    assert np.array_equal(predict(model, test), model.predict(test))
    if kind != "regression":
        assert np.array_equal(predict_proba(model, test), model.predict_proba(test))


def test_a_categorical_value_binning_could_misplace_is_left_to_the_model() -> None:
    X = _data(2_000, 0)
    model = HistGradientBoostingClassifier(max_iter=20, categorical_features=[False, True, False, True]).fit(
        X, _target(X, "binary")
    )
    test = _holdout()
    test[:10, 1] = 2.5  # not a whole number: the float traversal truncates it, binning would round it up
    assert np.array_equal(predict_proba(model, test), model.predict_proba(test))
    assert np.array_equal(predict(model, test), model.predict(test))


def test_other_models_answer_themselves() -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.nan_to_num(_data(500, 0))
    model = LogisticRegression().fit(X, _target(X, "binary"))
    assert np.array_equal(predict_proba(model, X), model.predict_proba(X))
