"""Data-free generators: no data read, zero cost, their own schema, and the controls they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from privacy.budget import PrivacyCost
from privacy.errors import MethodOptionError
from privacy.synthesizers import create_synthesizer

SPEC = """
columns:
  age:    {distribution: norm, loc: 40, scale: 12, min: 17, max: 90, integer: true}
  income: {distribution: lognorm, s: 0.8, scale: 30000, min: 0, max: 500000, null_rate: 0.1}
  region: {values: [north, south, east], probabilities: [0.5, 0.3, 0.2]}
  joined: {kind: datetime, min: 2000-01-01, max: 2020-12-31}
  visits: {distribution: poisson, mu: 3}
correlation:
  columns: [age, income]
  matrix: [[1.0, 0.6], [0.6, 1.0]]
"""


def test_scenario_reads_nothing_and_costs_nothing() -> None:
    synth = create_synthesizer("scenario", seed=1)
    synth.preflight()
    assert synth.fit() == PrivacyCost.zero()
    assert synth.fit(pd.DataFrame(), None, PrivacyCost(5)) == PrivacyCost.zero()  # a table given is ignored
    out = synth.sample(50)
    assert list(out.columns) == synth.output_schema().output_columns == ["x1", "x2", "x3", "x4", "x5", "target"]


def test_scenario_class_weights_and_feature_bounds() -> None:
    synth = create_synthesizer(
        "scenario",
        seed=2,
        options={
            "weights": "0.9,0.1",
            "flip_y": 0,
            "n_features": 6,
            "n_informative": 4,
            "n_redundant": 2,
            "feature_bound": 3,
        },
    )
    synth.fit()
    out = synth.sample(5000)
    share = out["target"].value_counts(normalize=True)
    assert abs(share[1] - 0.1) < 0.02
    features = out.drop(columns="target").to_numpy(dtype=float)
    assert features.min() >= -3 and features.max() <= 3
    # redundant features are linear combinations of the informative ones: the matrix has rank 4
    unclipped = create_synthesizer(
        "scenario",
        seed=2,
        options={
            "weights": [0.9, 0.1],
            "flip_y": 0,
            "n_features": 6,
            "n_informative": 4,
            "n_redundant": 2,
            "feature_bound": 1000,
        },
    )
    unclipped.fit()
    assert np.linalg.matrix_rank(unclipped.sample(500).drop(columns="target").to_numpy(dtype=float), tol=1e-6) == 4


def test_scenario_regression_noise_and_target_bound() -> None:
    quiet = create_synthesizer("scenario", seed=3, options={"task": "regression", "noise": 0.0, "n_informative": 5})
    noisy = create_synthesizer(
        "scenario", seed=3, options={"task": "regression", "noise": 50.0, "n_informative": 5, "target_bound": 100}
    )
    for s in (quiet, noisy):
        s.fit()
    q, n = quiet.sample(2000), noisy.sample(2000)
    fit_q = np.linalg.lstsq(q.drop(columns="target").to_numpy(float), q["target"].to_numpy(float), rcond=None)[1]
    assert fit_q.size == 0 or fit_q[0] < 1e-6  # an exact linear target without noise
    assert n["target"].abs().max() <= 100
    assert noisy.output_schema().columns["target"].max == 100


@pytest.mark.parametrize(
    "options",
    [
        {"n_informative": 5, "n_redundant": 3, "n_features": 6},
        {"task": "clustering"},
        {"weights": "0.5,x"},
        {"n_classes": 3, "weights": "0.5,0.2,0.2,0.1"},
    ],
)
def test_scenario_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(MethodOptionError):
        create_synthesizer("scenario", options=options).preflight()


def test_spec_marginals_correlation_and_nulls() -> None:
    synth = create_synthesizer("spec", seed=4, options={"spec": SPEC})
    assert synth.fit() == PrivacyCost.zero()
    out = synth.sample(6000)
    schema = synth.output_schema()
    assert list(out.columns) == ["age", "income", "region", "joined", "visits"]
    assert str(out["age"].dtype) == "Int64" and out["age"].between(17, 90).all()
    assert abs(out["age"].astype(float).mean() - 40) < 1.0
    assert abs(out["income"].isna().mean() - 0.1) < 0.02
    assert out["income"].dropna().between(0, 500000).all()
    share = out["region"].value_counts(normalize=True)
    assert abs(share["north"] - 0.5) < 0.03 and abs(share["east"] - 0.2) < 0.03
    assert pd.api.types.is_datetime64_any_dtype(out["joined"])
    assert out["joined"].min() >= pd.Timestamp("2000-01-01") and out["joined"].max() <= pd.Timestamp("2020-12-31")
    assert schema.columns["visits"].is_integer  # a discrete distribution gives integers
    both = out[["age", "income"]].dropna().astype(float)
    # a Gaussian copula with latent correlation 0.6 has Spearman correlation 6/pi * asin(0.3)
    expected = 6 / np.pi * np.arcsin(0.3)
    assert abs(stats.spearmanr(both["age"], both["income"])[0] - expected) < 0.04
    assert abs(stats.spearmanr(out["age"].astype(float), out["visits"].astype(float))[0]) < 0.05


@pytest.mark.parametrize("as_text", [str, lambda p: p.name, lambda p: f"~/{p.name}"])
def test_spec_refuses_a_file_path(tmp_path, as_text) -> None:
    # a path names a file on the server, which the requester must never make it read
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    with pytest.raises(MethodOptionError, match="names a file path"):
        create_synthesizer("spec", seed=1, options={"spec": as_text(path)}).preflight()


def test_spec_content_is_size_limited() -> None:
    from privacy.synthesizers.datafree import MAX_SPEC_CHARS

    huge = SPEC + "#" + "x" * MAX_SPEC_CHARS + "\n"
    with pytest.raises(MethodOptionError, match="characters long"):
        create_synthesizer("spec", options={"spec": huge}).preflight()
    many = {"columns": {f"c{i}": {"distribution": "norm"} for i in range(201)}}
    with pytest.raises(MethodOptionError, match="at most 200"):
        create_synthesizer("spec", options={"spec": many}).preflight()


def test_spec_accepts_yaml_text() -> None:
    synth = create_synthesizer("spec", seed=1, options={"spec": SPEC})
    synth.fit()
    assert len(synth.sample(10)) == 10


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, "needs the option"),
        ({"columns": {"a": {"distribution": "no_such_distribution"}}}, "not a scipy.stats distribution"),
        (
            {
                "columns": {"a": {"distribution": "norm", "loc": 0, "scale": 1}, "b": {"distribution": "norm"}},
                "correlation": {"matrix": [[1, 1.5], [1.5, 1]]},
            },
            "symmetric",
        ),
        (
            {
                "columns": {
                    "a": {"distribution": "norm"},
                    "b": {"distribution": "norm"},
                    "c": {"distribution": "norm"},
                },
                "correlation": {"matrix": [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]},
            },
            "positive semi-definite",
        ),
        ({"columns": {"a": {"values": ["x", "y"], "probabilities": [1]}}}, "probabilities"),
        # NaN and infinity pass every comparison: each number of a spec is checked to be finite
        ({"columns": {"a": {"values": ["x", "y"], "probabilities": [float("nan"), 1]}}}, "finite `probabilities`"),
        ({"columns": {"a": {"values": ["x", "y"], "probabilities": [float("inf"), 1]}}}, "finite `probabilities`"),
        ({"columns": {"a": {"values": ["x", "y"], "probabilities": ["many", 1]}}}, "finite `probabilities`"),
        ({"columns": {"a": {"distribution": "norm", "min": float("nan")}}}, "min must be a finite number"),
        ({"columns": {"a": {"distribution": "norm", "max": float("inf")}}}, "max must be a finite number"),
        ({"columns": {"a": {"distribution": "norm", "min": "low"}}}, "min must be a finite number"),
        ({"columns": {"a": {"kind": "datetime", "min": "2000-01-01", "max": "soon"}}}, "max must be an ISO date"),
        ({"columns": {"a": {"formula": "1", "min": float("-inf")}}}, "min must be a finite number"),
        ({"columns": {"a": {"distribution": "norm", "null_rate": float("nan")}}}, "null_rate must lie in"),
        ({"columns": {"a": {"distribution": "norm", "null_rate": "some"}}}, "null_rate must lie in"),
        ({"columns": {"a": {"distribution": "norm", "loc": float("nan")}}}, "no finite median"),
    ],
)
def test_spec_errors_say_what_to_change(spec, message: str) -> None:
    with pytest.raises(MethodOptionError, match=message):
        create_synthesizer("spec", options={"spec": spec}).preflight()


@pytest.mark.parametrize(
    "raw",
    [
        {"distribution": "poisson", "mu": 2},
        {"distribution": "binom", "n": 10, "p": 0.3},
        {"distribution": "geom", "p": 0.4},
        {"distribution": "nbinom", "n": 3, "p": 0.5},
        {"distribution": "bernoulli", "p": 0.3},
        {"distribution": "randint", "low": 1, "high": 7},
        {"distribution": "betabinom", "n": 8, "a": 2, "b": 3},
        {"distribution": "poisson", "mu": 4, "min": 2, "max": 6},  # truncated on both sides
    ],
)
def test_discrete_columns_follow_their_pmf(raw: dict) -> None:
    """Every value of the support between min and max, the lowest one included, at its (truncated) pmf."""
    from scipy import stats

    from privacy.synthesizers.datafree import _Column

    col = _Column("x", raw)
    rng = np.random.default_rng(0)
    n = 200_000
    drawn = np.asarray(col.values_from(rng.random(n), rng), dtype=float)
    dist = getattr(stats, raw["distribution"])(
        **{k: v for k, v in raw.items() if k not in ("distribution", "min", "max")}
    )
    support = np.arange(int(col.lo) if np.isfinite(col.lo) else 0, int(drawn.max()) + 1)
    lo, hi = raw.get("min", -np.inf), raw.get("max", np.inf)
    support = support[(support >= lo) & (support <= hi)]
    pmf = dist.pmf(support)
    pmf = pmf / pmf.sum()
    freq = np.array([(drawn == k).mean() for k in support])
    assert freq.sum() > 0.999  # nothing outside the support
    shown = dict(zip(support.tolist(), zip(freq.round(4), pmf.round(4), strict=True), strict=True))
    assert np.abs(freq - pmf).sum() / 2 < 0.01, shown
    assert drawn.min() == support[0]  # the lowest value is drawn (P(0) of poisson(2) is 13.5%)
