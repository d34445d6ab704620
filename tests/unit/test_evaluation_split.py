"""The holdout split the worker makes before any fit: independent per-row draws."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evaluation import split_holdout
from evaluation.split import EmptySplit
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema
from tests.conftest import DATA


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(DATA / "adult" / "schema.yaml")
    return conform_table(adult_df, schema)[0], schema


def test_split_is_a_partition_of_the_rows(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    train, holdout, info = split_holdout(df, schema, seed=3)
    assert len(train) + len(holdout) == len(df)
    assert set(train.index).isdisjoint(holdout.index)
    assert set(train.index) | set(holdout.index) == set(df.index)
    # rows keep their index, so they can be traced to the source table
    pd.testing.assert_frame_equal(holdout, df.loc[holdout.index])
    assert info["train_rows"] == len(train) and info["holdout_rows"] == len(holdout)
    json.dumps(info)


def test_split_info_never_holds_the_seed(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    seed = 987_654_321_123
    info = split_holdout(df.head(200), schema, seed=seed)[2]
    assert "seed" not in info and str(seed) not in json.dumps(info)
    assert str(seed % 2**32) not in json.dumps(info)


def test_the_holdout_size_is_random_not_fixed(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    """Independent draws: the size is Binomial(n, 0.2), not round(0.2 n)."""
    df, schema = adult
    sizes = [len(split_holdout(df.head(1000), schema, seed=s)[1]) for s in range(40)]
    assert len(set(sizes)) > 5
    assert abs(np.mean(sizes) - 200) < 15  # expectation 200, sd of the mean about 2


def test_adding_a_row_changes_the_training_part_by_at_most_that_row(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    """Neighbour-preserving: with the same draws, a table with one more row (at the end) gives
    the same training rows, plus possibly the new one; never a substitution of another row."""
    df, schema = adult
    small, large = df.head(500), df.head(501)
    for seed in range(20):
        train_s = split_holdout(small, schema, seed=seed)[0]
        train_l = split_holdout(large, schema, seed=seed)[0]
        extra = set(train_l.index) - set(train_s.index)
        assert set(train_s.index) <= set(train_l.index)
        assert extra <= {large.index[-1]}


def test_each_row_is_held_out_with_the_requested_probability(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    """Every row, whatever its class, is held out with probability `holdout` (no stratification
    that would tie rows together): over many splits each of the first rows is held out about 30%."""
    df, schema = adult
    head = df.head(60)
    counts = np.zeros(len(head))
    runs = 400
    for seed in range(runs):
        held = split_holdout(head, schema, holdout=0.3, seed=seed)[1].index
        counts += head.index.isin(held)
    assert np.all(np.abs(counts / runs - 0.3) < 0.1)


def test_split_is_reproducible_with_its_seed(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    a = split_holdout(df, schema, seed=11)[1].index
    b = split_holdout(df, schema, seed=11)[1].index
    c = split_holdout(df, schema, seed=12)[1].index
    assert a.equals(b) and not a.equals(c)


def test_an_empty_part_fails_cleanly(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    tiny = df.head(4)
    outcomes = set()
    for seed in range(200):
        try:
            split_holdout(tiny, schema, holdout=0.2, seed=seed)
            outcomes.add("split")
        except EmptySplit as exc:
            assert exc.code == "empty_split" and "submit the release again" in exc.message
            outcomes.add("empty")
    assert outcomes == {"split", "empty"}  # 0.8^4 = 41% of draws leave the holdout empty


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, "0.2", True])
def test_bad_holdout_fraction_is_refused(fraction: object, adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    with pytest.raises(MethodOptionError, match="holdout must be a fraction"):
        split_holdout(df.head(100), schema, holdout=fraction)  # type: ignore[arg-type]


def test_unknown_target_and_tiny_tables_are_refused(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    with pytest.raises(SchemaError, match="nope"):
        split_holdout(df.head(100), schema, target="nope")
    with pytest.raises(MethodOptionError, match="too small"):
        split_holdout(df.head(3), schema)
