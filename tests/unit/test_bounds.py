"""Learning open bounds with declared epsilon: grid points, not data values, heavy tails kept, an exact cost."""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from privacy.accounting import zcdp_rho
from privacy.bounds import (
    GRID_STEPS_PER_DOUBLING,
    BoundsNotFound,
    bounds_cost,
    check_bounds_request,
    dp_range,
    dp_upper_bound,
    learn_open_bounds,
    split_request,
)
from privacy.budget import PrivacyCost
from privacy.errors import InvalidPrivacyValue, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema, read_table
from privacy.synthesizers import synthesizer_class
from tests.conftest import ADULT, PENGUINS_RAW, PUMS


def _on_grid(x: float) -> bool:
    if -1 <= x <= 1:
        return x in (-1.0, 0.0, 1.0)
    k = math.log2(abs(x)) * GRID_STEPS_PER_DOUBLING
    return abs(k - round(k)) < 1e-9


def test_dp_range_covers_the_bulk_with_grid_points(adult_df: pd.DataFrame) -> None:
    ages = adult_df["age"].to_numpy(dtype=float)
    lo, hi = dp_range(ages, 1.0, random_state=1)
    assert _on_grid(lo) and _on_grid(hi)
    assert lo <= 17 and 76 <= hi <= 91  # 17..90 in the data; the bins around them are reported, not 17 and 90


def test_a_lone_outlier_does_not_move_the_bounds(adult_df: pd.DataFrame) -> None:
    ages = adult_df["age"].to_numpy(dtype=float)
    with_outlier = np.append(ages, 1e9)
    assert dp_range(with_outlier, 1.0, random_state=2)[1] < 1000
    assert dp_range(np.append(ages, -1e9), 1.0, random_state=2)[0] > -1000


def test_heavy_tailed_income_keeps_its_upper_tail() -> None:
    """PINCP: 12% zeros and a long right tail; the learned range must not collapse onto the zeros."""
    income = read_table(PUMS)["income"].to_numpy(dtype=float)
    schema = PublicSchema.from_dict({"columns": {"income": {"kind": "continuous", "integer": True}}})
    covered, sane = 0, 0
    for seed in range(20):
        rows = np.random.default_rng(seed).choice(income, 4000, replace=True)
        learned = learn_open_bounds(pd.DataFrame({"income": rows}), schema, Fraction(1, 10), seed=seed)
        assert learned.cost == bounds_cost(Fraction(1, 10))  # both searches inside the 0.1 asked for
        lo, hi = learned.bounds["income"]
        assert lo <= np.percentile(rows, 10)
        covered += hi >= np.percentile(rows, 90)
        sane += hi <= 2 * rows.max()
    assert covered >= 19 and sane >= 19


@pytest.mark.parametrize("column", ["capital-gain", "lognormal"])
def test_skewed_columns_keep_their_upper_tail(adult_df: pd.DataFrame, column: str) -> None:
    if column == "lognormal":
        values, quantile = np.random.default_rng(0).lognormal(10, 1.5, 4000), 90
    else:  # 92% zeros: the 90th percentile is 0, so ask for the 99th
        values, quantile = adult_df[column].to_numpy(dtype=float), 99
    target = np.percentile(values, quantile)
    his = [dp_range(values, 0.1, random_state=seed)[1] for seed in range(20)]
    assert sum(hi >= target for hi in his) >= 19, (target, his)
    assert sum(hi <= 4 * values.max() for hi in his) >= 19, (values.max(), his)


def test_the_bound_is_not_a_function_of_the_extremes() -> None:
    income = read_table(PUMS)["income"].to_numpy(dtype=float)
    rows = np.random.default_rng(7).choice(income, 4000, replace=True)
    moved = rows.copy()
    moved[np.argmax(moved)] = 1e12  # the richest row moves far away
    same = 0
    for seed in range(20):
        a = dp_upper_bound(rows, 0.05, random_state=seed)
        b = dp_upper_bound(moved, 0.05, random_state=seed)
        assert b <= a * 2 ** (2 / GRID_STEPS_PER_DOUBLING)  # at most two grid steps, never out to the outlier
        same += a == b
    assert same >= 18


def test_too_few_rows_for_the_epsilon_fails_clearly() -> None:
    with pytest.raises(BoundsNotFound, match="declare min and max"):
        dp_range(np.arange(20, dtype=float), 0.1, random_state=0)


def test_learn_open_bounds_fills_the_schema_and_costs_exactly_epsilon(adult_df: pd.DataFrame) -> None:
    schema = load_schema(ADULT.parent / "schema.yaml")
    data = schema.to_dict()
    data["columns"]["age"] = {"kind": "ordinal"}
    data["columns"]["hours-per-week"] = {"kind": "ordinal", "min": 1}  # one side declared: kept
    open_schema = PublicSchema.from_dict(data)
    table, _ = conform_table(adult_df, open_schema)
    learned = learn_open_bounds(table, open_schema, Fraction(1, 2), seed=3)
    assert learned.cost == bounds_cost(Fraction(1, 2)) == PrivacyCost(Fraction(1, 2), 0, Fraction(1, 8))
    age = learned.schema.columns["age"]
    assert isinstance(age.min, int) and isinstance(age.max, int)
    assert age.min <= 17 and age.max >= 76
    assert learned.schema.columns["hours-per-week"].min == 1
    assert not learned.schema.open_columns
    # nothing open: nothing spent
    assert learn_open_bounds(table, schema, 1).cost.is_zero


def test_open_datetime_bounds_are_learned_as_dates() -> None:
    raw = read_table(PENGUINS_RAW)[["Date Egg", "Species"]]
    raw = pd.concat([raw] * 20, ignore_index=True)  # enough rows for a small epsilon
    schema = PublicSchema.from_dict({"columns": {"Date Egg": {"kind": "datetime"}, "Species": {"kind": "text"}}})
    table, _ = conform_table(raw, schema)
    learned = learn_open_bounds(table, schema, 1.0, seed=1)
    spec = learned.schema.columns["Date Egg"]
    assert isinstance(spec.min, dt.date) and isinstance(spec.max, dt.date)
    assert spec.min <= dt.date(2007, 11, 9) and spec.max >= dt.date(2009, 12, 1)


def test_open_categorical_domains_are_refused() -> None:
    schema = PublicSchema.from_dict({"columns": {"c": {"kind": "categorical"}, "x": {"kind": "continuous"}}})
    with pytest.raises(SchemaError, match="declare `values`"):
        learn_open_bounds(pd.DataFrame({"c": ["a"], "x": [1.0]}), schema, 1)
    with pytest.raises(SchemaError, match="'c'"):
        check_bounds_request(synthesizer_class("dp-copula"), schema, PrivacyCost(1), 0.1)


def test_split_request_composes_to_the_request_exactly() -> None:
    schema = PublicSchema.from_dict(
        {"columns": {"x": {"kind": "continuous"}, "y": {"kind": "ordinal", "min": 0, "max": 5}}}
    )
    delta = Fraction(1, 10**9)
    mst = synthesizer_class("mst-smartnoise")
    spent, budget = split_request(mst, schema, PrivacyCost(1, delta), 0.1)
    assert spent == Fraction(1, 10)
    assert budget.rho + bounds_cost(spent).rho == zcdp_rho(1, delta)  # zCDP: the rhos add up exactly
    mwem = synthesizer_class("mwem")
    spent, budget = split_request(mwem, schema, PrivacyCost(1), 0.25)
    assert spent + budget.epsilon == 1 and budget.rho is None  # pure DP: the epsilons add up exactly


def test_bounds_epsilon_requests_that_cannot_work_are_refused() -> None:
    schema = PublicSchema.from_dict({"columns": {"x": {"kind": "continuous"}}})
    delta = Fraction(1, 10**9)
    with pytest.raises(SchemaError, match="bounds_epsilon"):
        check_bounds_request(synthesizer_class("mwem"), schema, PrivacyCost(1), 0)
    with pytest.raises(InvalidPrivacyValue, match="below the requested epsilon"):
        check_bounds_request(synthesizer_class("mwem"), schema, PrivacyCost(1), 1)
    # for a zCDP method the bounds' rho (epsilon_b^2 / 2) must leave some of the request's rho
    with pytest.raises(InvalidPrivacyValue, match="zCDP budget"):
        check_bounds_request(synthesizer_class("mst-smartnoise"), schema, PrivacyCost(1, delta), 0.5)
    check_bounds_request(synthesizer_class("mst-smartnoise"), schema, PrivacyCost(1, delta), 0.1)
