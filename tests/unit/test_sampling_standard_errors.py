"""The standard errors of the fidelity figures computed on row samples, and of the attribute-inference advantages.

Each is checked against what it estimates: over repeated independent samples of fixed tables (seeded, so
the test is deterministic), the spread of the figure must match the standard error the report states
(their ratio within 0.6 to 1.6 over 40 samples).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import ensemble
from threadpoolctl import threadpool_limits

import evaluation.fidelity as fidelity
import evaluation.kernels as kernels
from evaluation._bench import make_schema, make_table
from evaluation._common import EvaluationLimits
from evaluation._tables import table_views
from evaluation.fidelity_se import fpc, tvd_standard_error
from evaluation.kernels import NotScorable, tv_distance_counts
from evaluation.privacy_risk import _attribute_inference, _Context, privacy_section
from privacy.schema import PublicSchema

REPEATS = 40
LOW, HIGH = 0.6, 1.6
ROWS, SAMPLED = 12_000, 2_400  # each table, and the rows of each compared (the 1M report's 200,000 / 1,000,000)
SCORES = ("fidelity_score", "mean_one_way_tvd", "mean_two_way_tvd", "weighted_two_way_tvd")


def _no_sdmetrics(*args: object, **kwargs: object) -> dict:
    raise NotScorable("not part of this test")


def _tables(shift: float) -> tuple[pd.DataFrame, pd.DataFrame, PublicSchema]:
    schema = make_schema(7)
    return make_table(schema, ROWS, 0), make_table(schema, ROWS, 1, shift=shift), schema


def _fidelity_runs(shift: float, rows: int, repeats: int, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    monkeypatch.setattr(fidelity, "sdmetrics_quality", _no_sdmetrics)
    real, synthetic, schema = _tables(shift)
    views = table_views(schema, real, synthetic, quantiles_from=real)
    limits = EvaluationLimits(fidelity_rows=rows)
    return [fidelity.fidelity_section(real, synthetic, schema, views, limits, seed) for seed in range(repeats)]


def _ratio(values: list[float], standard_errors: list[float]) -> float:
    return float(np.std(values, ddof=1) / np.mean(standard_errors))


# a synthetic table from a shifted model (every cell off by more than its sampling noise: the usual case), and
# one from the same model (cells off by about their noise: the delta method's worst case, see fidelity_se)
@pytest.mark.parametrize("shift", [0.1, 0.0])
def test_fidelity_standard_errors_match_the_spread_over_samples(shift: float, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _fidelity_runs(shift, SAMPLED, REPEATS, monkeypatch)
    ratios = {k: _ratio([r[k] for r in runs], [r[f"{k}_se"] for r in runs]) for k in SCORES}
    for name in runs[0]["columns"]:
        tvd = [r["columns"][name]["metrics"]["tv_distance"] for r in runs]
        ratios[name] = _ratio([t["value"] for t in tvd], [t["value_se"] for t in tvd])
    outside = {k: round(v, 2) for k, v in ratios.items() if not LOW <= v <= HIGH}
    assert not outside, f"spread / stated standard error outside [{LOW}, {HIGH}]: {outside} (all: {ratios})"


def test_the_holdout_reference_and_the_worst_quasi_identifier_marginal_carry_their_standard_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real holdout scored as if it were synthetic (a third table of the real one's model), and the
    three quasi-identifiers' joint TVD: their spread over samples matches the stated errors."""
    monkeypatch.setattr(fidelity, "sdmetrics_quality", _no_sdmetrics)
    real, synthetic, schema = _tables(0.1)
    holdout = make_table(schema, ROWS, 2)
    views = table_views(schema, real, holdout, synthetic, quantiles_from=real)
    limits = EvaluationLimits(fidelity_rows=SAMPLED)
    runs = [
        fidelity.fidelity_section(real, synthetic, schema, views, limits, seed, holdout=holdout)
        for seed in range(REPEATS)
    ]
    refs = [r["holdout_reference"] for r in runs]
    qis = [r["quasi_identifier_marginals"] for r in runs]
    assert all(q["combinations"] == 1 for q in qis)  # one triple: the worst is always the same columns
    ratios = {k: _ratio([r[k] for r in refs], [r[f"{k}_se"] for r in refs]) for k in SCORES[:3]}
    ratios["qi"] = _ratio([q["worst_tv_distance"] for q in qis], [q["worst_tv_distance_se"] for q in qis])
    outside = {k: round(v, 2) for k, v in ratios.items() if not LOW <= v <= HIGH}
    assert not outside, f"spread / stated standard error outside [{LOW}, {HIGH}]: {outside} (all: {ratios})"
    # nothing sampled, no error
    whole = fidelity.fidelity_section(
        real, synthetic, schema, views, EvaluationLimits(fidelity_rows=ROWS), 0, holdout=holdout
    )
    assert whole["holdout_reference"]["fidelity_score_se"] == 0.0
    assert whole["quasi_identifier_marginals"]["worst_tv_distance_se"] == 0.0


def test_the_mean_quasi_identifier_marginal_carries_its_standard_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four quasi-identifiers, so four triples sharing columns: the mean of their joint TVDs (delta method
    over the rows, every triple a row is counted in) spreads over samples as stated."""
    monkeypatch.setattr(fidelity, "sdmetrics_quality", _no_sdmetrics)
    schema = make_schema(9)
    real, synthetic = make_table(schema, ROWS, 0), make_table(schema, ROWS, 1, shift=0.1)
    views = table_views(schema, real, synthetic, quantiles_from=real)
    limits = EvaluationLimits(fidelity_rows=SAMPLED)
    qis = [
        fidelity.fidelity_section(real, synthetic, schema, views, limits, seed)["quasi_identifier_marginals"]
        for seed in range(REPEATS)
    ]
    assert all(q["combinations"] == 4 for q in qis)
    ratio = _ratio([q["mean_tv_distance"] for q in qis], [q["mean_tv_distance_se"] for q in qis])
    assert LOW <= ratio <= HIGH, ratio
    whole = fidelity.fidelity_section(real, synthetic, schema, views, EvaluationLimits(fidelity_rows=ROWS), 0)
    assert whole["quasi_identifier_marginals"]["mean_tv_distance_se"] == 0.0


def test_joint_distributions_too_large_to_count_densely_keep_their_figures_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past `kernels.DENSE_CELLS` a joint distribution is counted over the cells present in either sample:
    every TVD is the same, and so are the delta-method errors that read its counts (the empty cells carry no
    noise and no row); the bootstraps draw in another order, so they agree to within their replicates."""
    monkeypatch.setattr(fidelity, "sdmetrics_quality", _no_sdmetrics)
    schema = make_schema(9)
    real, synthetic = make_table(schema, ROWS, 0), make_table(schema, ROWS, 1, shift=0.1)
    holdout = make_table(schema, ROWS, 2)
    views = table_views(schema, real, holdout, synthetic, quantiles_from=real)
    limits = EvaluationLimits(fidelity_rows=SAMPLED)
    dense = fidelity.fidelity_section(real, synthetic, schema, views, limits, 3, holdout=holdout)
    monkeypatch.setattr(kernels, "DENSE_CELLS", 1)  # every one- and two-way table, and every triple, sparse
    sparse = fidelity.fidelity_section(real, synthetic, schema, views, limits, 3, holdout=holdout)
    for k in SCORES:
        assert sparse[k] == pytest.approx(dense[k], abs=1e-12), k
        assert sparse[f"{k}_se"] == pytest.approx(dense[f"{k}_se"], rel=1e-9), k
    for k in SCORES[:3]:
        assert sparse["holdout_reference"][f"{k}_se"] == pytest.approx(dense["holdout_reference"][f"{k}_se"], rel=1e-9)
    qi_d, qi_s = dense["quasi_identifier_marginals"], sparse["quasi_identifier_marginals"]
    for k in ("mean_tv_distance", "mean_tv_distance_se", "worst_tv_distance"):
        assert qi_s[k] == pytest.approx(qi_d[k], rel=1e-9), k
    # a bootstrap: its draws follow the worst pairs' (drawn from the sparse pairs' own generator here)
    assert qi_s["worst_tv_distance_se"] == pytest.approx(qi_d["worst_tv_distance_se"], rel=0.3)
    assert [w["columns"] for w in sparse["worst_two_way_pairs"]] == [w["columns"] for w in dense["worst_two_way_pairs"]]
    for d, s in zip(dense["worst_two_way_pairs"], sparse["worst_two_way_pairs"], strict=True):
        assert s["tv_distance"] == pytest.approx(d["tv_distance"], abs=1e-12)
        assert s["tv_distance_se"] is not None and s["tv_distance_se"] == pytest.approx(d["tv_distance_se"], rel=0.3)


def test_a_pair_tvd_standard_error_matches_the_spread_over_samples() -> None:
    """The bootstrap over a two-way table's cells, on two populations of 12 x 5 cells differing by a little."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(60, 2.0))
    q = p * np.exp(rng.normal(scale=0.15, size=60))
    q /= q.sum()
    pop_r, pop_s = rng.choice(60, size=50_000, p=p), rng.choice(60, size=40_000, p=q)
    n = 8_000
    correction = (fpc(n, pop_r.size), fpc(n, pop_s.size))
    values, ses = [], []
    for _ in range(REPEATS):
        cr = np.bincount(rng.choice(pop_r, n, replace=False), minlength=60).reshape(12, 5)
        cs = np.bincount(rng.choice(pop_s, n, replace=False), minlength=60).reshape(12, 5)
        values.append(tv_distance_counts(cr.ravel(), cs.ravel()))
        ses.append(tvd_standard_error(cr, cs, *correction, rng))
    assert LOW <= _ratio(values, ses) <= HIGH


def test_worst_pairs_carry_their_standard_error(monkeypatch: pytest.MonkeyPatch) -> None:
    (run,) = _fidelity_runs(0.1, SAMPLED, 1, monkeypatch)
    assert run["worst_two_way_pairs"] and all(w["tv_distance_se"] > 0 for w in run["worst_two_way_pairs"])
    assert run["worst_two_way_tvd_se"] == run["worst_two_way_pairs"][0]["tv_distance_se"]
    assert run["standard_errors"]


def test_nothing_sampled_no_sampling_error(monkeypatch: pytest.MonkeyPatch) -> None:
    (run,) = _fidelity_runs(0.1, ROWS, 1, monkeypatch)
    assert run["rows_compared"] == {"real": ROWS, "synthetic": ROWS}
    assert all(run[f"{k}_se"] == 0.0 for k in SCORES)
    assert all(w["tv_distance_se"] == 0.0 for w in run["worst_two_way_pairs"])
    assert all(c["metrics"]["tv_distance"]["value_se"] == 0.0 for c in run["columns"].values())


def test_one_table_sampled_only_its_error() -> None:
    rng = np.random.default_rng(3)
    counts = rng.multinomial(5_000, np.full(8, 1 / 8), size=2)
    both = tvd_standard_error(counts[0], counts[1], 0.5, 0.5, np.random.default_rng(1))
    one = tvd_standard_error(counts[0], counts[1], 0.5, 0.0, np.random.default_rng(1))
    assert 0 < one < both


def _attribute_schema() -> PublicSchema:
    """The generated table's schema with two sensitive columns: x0 (numeric) and c0 (two categories)."""
    schema = make_schema(8)
    qis = [q for q in schema.quasi_identifiers if q != "c0"]
    return PublicSchema(columns=schema.columns, quasi_identifiers=qis, sensitive=["x0", "c0"], target="target")


def _fitted_once(cls: type) -> Callable[..., Any]:
    """`cls` fitted once per training set (random_state 0): the same model on every draw of the targets."""
    cache: dict[tuple[bytes, bytes], Any] = {}

    class Once:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = {**kwargs, "random_state": 0}

        def fit(self, X: np.ndarray, y: np.ndarray) -> Once:
            key = (np.ascontiguousarray(X).tobytes(), np.ascontiguousarray(y).tobytes())
            if key not in cache:
                cache[key] = cls(**self.kwargs).fit(X, y)
            self.model = cache[key]
            return self

        def predict(self, X: np.ndarray) -> np.ndarray:
            return self.model.predict(X)

    return Once


def test_attribute_inference_standard_errors_match_the_spread_over_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard error is over the attacked rows, the model held fixed: each draw attacks other training
    and holdout rows with the same model (trained once on the synthetic table, which is read whole)."""
    monkeypatch.setattr(
        ensemble, "HistGradientBoostingClassifier", _fitted_once(ensemble.HistGradientBoostingClassifier)
    )
    monkeypatch.setattr(ensemble, "HistGradientBoostingRegressor", _fitted_once(ensemble.HistGradientBoostingRegressor))
    schema = _attribute_schema()
    real, synthetic = make_table(schema, 24_000, 0), make_table(schema, 2_000, 1, shift=0.1)
    train, holdout = real.iloc[:16_000], real.iloc[16_000:]
    views = table_views(schema, train, holdout, synthetic, quantiles_from=train)
    limits = EvaluationLimits(attribute_targets=1_500)
    with threadpool_limits(limits=1):  # as the report runs it (EvaluationLimits.threads)
        runs = [
            _attribute_inference(_Context(train, holdout, synthetic, views, limits, s), schema) for s in range(REPEATS)
        ]
    for column in ("x0", "c0"):
        values = [r[column]["value"] for r in runs]
        ratio = _ratio(values, [r[column]["value_se"] for r in runs])
        assert LOW <= ratio <= HIGH, (column, ratio)


def test_the_headline_advantage_takes_its_columns_standard_error() -> None:
    schema = _attribute_schema()
    real, synthetic = make_table(schema, 3_000, 0), make_table(schema, 2_000, 1, shift=0.1)
    train, holdout = real.iloc[:2_400], real.iloc[2_400:]
    views = table_views(schema, train, holdout, synthetic, quantiles_from=train)
    with threadpool_limits(limits=1):
        section = privacy_section(train, holdout, synthetic, schema, views, EvaluationLimits(), 0)
    columns = section["attribute_inference"]
    best = max(("x0", "c0"), key=lambda c: columns[c]["value"])
    assert section["attribute_inference_advantage"] == columns[best]["value"]
    assert section["attribute_inference_advantage_se"] == columns[best]["value_se"] > 0
