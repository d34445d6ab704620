"""dp-copula: it keeps relationships dp-marginals loses, and spends exactly what was asked."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from privacy.accounting import zcdp_rho
from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from privacy.synthesizers.dp_copula import interval_normal_scores, nearest_correlation
from tests.conftest import ADULT, PENGUINS

DELTA = Fraction(1, 10**9)


def average_two_way_tvd(real: pd.DataFrame, synthetic: pd.DataFrame, schema: PublicSchema) -> float:
    """Mean total variation distance over all two-way marginals, on the schema's codes."""
    enc = DomainEncoder(schema)
    a, b, sizes = enc.encode(real).astype(np.int64), enc.encode(synthetic).astype(np.int64), enc.sizes
    tvds = []
    for i, j in itertools.combinations(range(a.shape[1]), 2):
        cells = sizes[i] * sizes[j]
        pa = np.bincount(a[:, i] * sizes[j] + a[:, j], minlength=cells) / len(a)
        pb = np.bincount(b[:, i] * sizes[j] + b[:, j], minlength=cells) / len(b)
        tvds.append(0.5 * np.abs(pa - pb).sum())
    return float(np.mean(tvds))


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(ADULT.parent / "schema.yaml")
    table, _ = conform_table(adult_df, schema)
    return table, schema


@pytest.fixture(scope="module")
def penguins(penguins_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(PENGUINS.parent / "schema.yaml")
    table, _ = conform_table(penguins_df, schema)
    return table, schema


@pytest.mark.parametrize("delta", [DELTA, Fraction(0)])
def test_beats_dp_marginals_on_two_way_marginals_of_adult_at_epsilon_1(adult, delta: Fraction) -> None:
    table, schema = adult
    scores = {}
    for method in ("dp-marginals", "dp-copula"):
        synth = create_synthesizer(method, seed=3)
        synth.fit(table, schema, PrivacyCost(1, delta))
        scores[method] = average_two_way_tvd(table, synth.sample(len(table)), schema)
    assert scores["dp-copula"] < scores["dp-marginals"] - 0.005, scores


def test_keeps_a_strong_monotone_relationship_that_dp_marginals_loses(penguins) -> None:
    table, schema = penguins
    real = table[["flipper_length_mm", "body_mass_g"]].dropna().astype(float).corr(method="spearman").iloc[0, 1]
    found = {}
    for method in ("dp-marginals", "dp-copula"):
        synth = create_synthesizer(method, seed=5)
        synth.fit(table, schema, PrivacyCost(10, DELTA))
        out = synth.sample(2000)[["flipper_length_mm", "body_mass_g"]].dropna().astype(float)
        found[method] = out.corr(method="spearman").iloc[0, 1]
    assert real > 0.8
    assert found["dp-copula"] > 0.6, found
    assert abs(found["dp-marginals"]) < 0.1, found


def test_cost_is_exactly_the_request_in_both_accountings(penguins) -> None:
    table, schema = penguins
    synth = create_synthesizer("dp-copula", seed=1)
    cost = synth.fit(table, schema, PrivacyCost(Fraction(7, 10), DELTA))
    assert cost == PrivacyCost(Fraction(7, 10), DELTA, zcdp_rho(Fraction(7, 10), DELTA))
    pure = create_synthesizer("dp-copula", seed=1).fit(table, schema, PrivacyCost(Fraction(1, 2)))
    assert pure == PrivacyCost(Fraction(1, 2), 0, Fraction(1, 8))


def test_open_bounds_are_paid_for_out_of_the_request(adult) -> None:
    table, schema = adult
    data = schema.to_dict()
    data["columns"]["hours-per-week"] = {"kind": "ordinal"}
    open_schema = PublicSchema.from_dict(data)
    with pytest.raises(SchemaError, match="bounds_epsilon"):
        create_synthesizer("dp-copula").preflight(open_schema, PrivacyCost(1, DELTA))
    for requested in (PrivacyCost(1, DELTA), PrivacyCost(1)):
        synth = create_synthesizer("dp-copula", seed=2, options={"bounds_epsilon": 0.1})
        cost = synth.fit(table, open_schema, requested)
        # the bounds are inside the cost, which is still exactly the request (and what the ledger reserved)
        assert cost == synth.planned_cost(requested)
        assert cost.epsilon == 1 and cost.delta == requested.delta
        learned = synth.schema.columns["hours-per-week"]
        # grid points around the bulk of the data (1 to 99), not the data's own extremes
        assert learned.has_bounds and learned.min <= 20 and 60 <= learned.max <= 128
        out = synth.sample(500)["hours-per-week"].dropna()
        assert out.min() >= learned.min and out.max() <= learned.max


def test_nulls_keep_roughly_their_share(adult) -> None:
    table, schema = adult
    synth = create_synthesizer("dp-copula", seed=4)
    synth.fit(table, schema, PrivacyCost(1, DELTA))
    out = synth.sample(20000)
    for col in ("workclass", "occupation"):
        assert abs(out[col].isna().mean() - table[col].isna().mean()) < 0.02


def test_bad_options_are_refused() -> None:
    with pytest.raises(MethodOptionError):
        create_synthesizer("dp-copula", options={"marginal_share": 1.0})
    with pytest.raises(MethodOptionError):
        create_synthesizer("dp-copula", options={"no_such_option": 1})


def test_interval_scores_have_mean_zero_and_are_ordered() -> None:
    p = np.array([0.1, 0.0, 0.6, 0.3])
    s = interval_normal_scores(p)
    assert abs(float(np.sum(p * s))) < 1e-9
    nonzero = s[p > 0]
    assert np.all(np.diff(nonzero) > 0)


def test_nearest_correlation_is_a_valid_correlation_matrix() -> None:
    bad = np.array([[1.0, 0.99, -0.9], [0.99, 1.0, 0.9], [-0.9, 0.9, 1.0]])  # not positive definite
    fixed = nearest_correlation(bad)
    assert np.allclose(np.diag(fixed), 1.0)
    assert np.linalg.eigvalsh(fixed).min() > 0
    np.linalg.cholesky(fixed)
