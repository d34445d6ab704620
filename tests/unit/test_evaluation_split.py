"""The holdout split the worker makes before any fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evaluation import split_holdout
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import ColumnSpec, PublicSchema, conform_table, load_schema
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
    assert len(holdout) == round(0.2 * len(df))
    # rows keep their index, so they can be traced to the source table
    pd.testing.assert_frame_equal(holdout, df.loc[holdout.index])
    assert info["train_rows"] == len(train) and info["holdout_rows"] == len(holdout)
    json.dumps(info)


def test_split_is_stratified_on_a_categorical_target(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    train, holdout, info = split_holdout(df, schema, seed=0)
    assert info["method"] == "stratified" and info["stratified_on"] == "income"
    share = df["income"].eq(">50K").mean()
    assert train["income"].eq(">50K").mean() == pytest.approx(share, abs=0.001)
    assert holdout["income"].eq(">50K").mean() == pytest.approx(share, abs=0.001)


def test_split_is_reproducible_with_its_seed(adult: tuple[pd.DataFrame, PublicSchema]) -> None:
    df, schema = adult
    a = split_holdout(df, schema, seed=11)[1].index
    b = split_holdout(df, schema, seed=11)[1].index
    c = split_holdout(df, schema, seed=12)[1].index
    assert a.equals(b) and not a.equals(c)


def test_numeric_target_or_no_target_gives_a_random_split(pums_df: pd.DataFrame) -> None:
    schema = load_schema(DATA / "pums" / "schema.yaml")
    df = conform_table(pums_df, schema)[0]
    _, holdout, info = split_holdout(df, schema, target="income", holdout=0.3, seed=0)
    assert info["method"] == "random" and "not categorical" in info["not_stratified_because"]
    assert len(holdout) == 300
    no_target = schema.model_copy(update={"target": None})
    assert split_holdout(df, no_target, seed=0)[2]["method"] == "random"


def test_a_class_with_one_row_falls_back_to_a_random_split() -> None:
    schema = PublicSchema(columns={"a": ColumnSpec(kind="continuous", min=0, max=1),
                                   "t": ColumnSpec(kind="categorical", values=["x", "y", "z"])}, target="t")
    df = pd.DataFrame({"a": np.linspace(0, 1, 50), "t": pd.array(["x"] * 30 + ["y"] * 19 + ["z"], dtype="string")})
    train, holdout, info = split_holdout(df, schema, seed=0)
    assert info["method"] == "random" and "fewer than 2 rows" in info["not_stratified_because"]
    assert len(train) == 40 and len(holdout) == 10


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
