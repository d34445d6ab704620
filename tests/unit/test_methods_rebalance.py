"""Rebalancing: on real training rows (non-DP, real rows released) and on DP output (post-processing)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from privacy.budget import INFINITE, PrivacyCost
from privacy.errors import MethodOptionError, SchemaError, UnknownMethod
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer, synthesizer_class
from privacy.synthesizers.rebalance import REBALANCE_METHODS, rebalance_output, rebalance_table
from tests.conftest import ADULT, PENGUINS


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(ADULT.parent / "schema.yaml")
    table, _ = conform_table(adult_df.sample(3000, random_state=1), schema)
    return table, schema


@pytest.fixture(scope="module")
def penguins(penguins_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(PENGUINS.parent / "schema.yaml")
    table, _ = conform_table(penguins_df, schema)
    return table, schema


@pytest.mark.parametrize("method", REBALANCE_METHODS)
def test_balances_classes_and_keeps_the_real_rows(adult, method: str) -> None:
    table, schema = adult
    synth = create_synthesizer(method, seed=3)
    cost = synth.fit(table, schema, PrivacyCost.non_dp())
    assert cost.epsilon is INFINITE
    assert synthesizer_class(method).releases_real_rows
    balanced = synth.balanced_table
    counts = balanced["income"].value_counts()
    majority = int(table["income"].value_counts().max())
    assert counts["<=50K"] == majority
    # ADASYN adds about as many rows as needed, not exactly
    assert abs(int(counts[">50K"]) - majority) <= (0.1 * majority if method == "adasyn" else 0)
    # every training row is in the release, unchanged (the statement has to say so)
    head = balanced.iloc[: len(table)].reset_index(drop=True)
    pd.testing.assert_frame_equal(head, table.reset_index(drop=True), check_dtype=False)
    new = balanced.iloc[len(table) :]
    assert set(new["income"]) == {">50K"}
    assert set(new["workclass"].dropna()) <= set(schema.columns["workclass"].values)
    assert str(new["age"].dtype) == "Int64" and new["age"].between(17, 90).all()


def test_rebalance_output_of_a_dp_method_is_post_processing(penguins) -> None:
    table, schema = penguins
    dp = create_synthesizer("dp-copula", seed=2)
    cost = dp.fit(table, schema, PrivacyCost(1, Fraction(1, 10**9)))
    synthetic = dp.sample(600)
    balanced = rebalance_output(synthetic, schema, "species", "smote", seed=4)
    # the DP rows are all kept, the new ones only interpolate between them
    pd.testing.assert_frame_equal(balanced.iloc[: len(synthetic)].reset_index(drop=True), synthetic, check_dtype=False)
    counts = balanced["species"].value_counts()
    assert counts.nunique() == 1, counts.to_dict()
    assert cost.is_dp  # the DP method's cost is what the release pays; rebalancing adds nothing
    for col in ("bill_length_mm", "body_mass_g"):
        values = balanced[col].dropna().astype(float)
        lo, hi = schema.columns[col].numeric_bounds()
        assert values.min() >= lo and values.max() <= hi


def test_nulls_in_numeric_features_survive_rebalancing(penguins) -> None:
    table, schema = penguins
    balanced = rebalance_table(table, schema, "species", "smotenc", seed=1)
    assert balanced["sex"].isna().sum() >= table["sex"].isna().sum()
    assert len(balanced) == 3 * int(table["species"].value_counts().max())


def test_a_class_with_one_row_is_left_alone(penguins) -> None:
    table, schema = penguins
    tiny = pd.concat([table[table["species"] != "Chinstrap"], table[table["species"] == "Chinstrap"].head(1)])
    out = rebalance_table(tiny, schema, "species", "smote", seed=1)
    counts = out["species"].value_counts()
    assert counts["Chinstrap"] == 1
    assert counts["Gentoo"] == counts["Adelie"]


def test_requests_without_a_usable_target_are_refused(penguins) -> None:
    _table, schema = penguins
    data = schema.to_dict()
    data.pop("target")
    no_target = PublicSchema.from_dict(data)
    with pytest.raises(SchemaError, match="target"):
        create_synthesizer("smote").preflight(no_target, PrivacyCost.non_dp())
    with pytest.raises(SchemaError, match="categorical"):
        create_synthesizer("smote", options={"target": "body_mass_g"}).preflight(schema, PrivacyCost.non_dp())
    with pytest.raises(UnknownMethod):
        rebalance_output(_table, schema, "species", "random-oversampling")


def test_smotenc_needs_a_numeric_column(penguins) -> None:
    _table, schema = penguins
    only_categories = schema.subset(["species", "island", "sex"])
    with pytest.raises(MethodOptionError, match="smotenc"):
        create_synthesizer("smotenc").preflight(only_categories, PrivacyCost.non_dp())


def test_smotenc_on_numbers_only_is_refused_from_the_schema(penguins) -> None:
    """SMOTE-NC needs a categorical feature: without one imbalanced-learn fails, after the data was read."""
    from imblearn.over_sampling import SMOTENC

    table, schema = penguins
    numbers_only = schema.subset(["species", "bill_length_mm", "bill_depth_mm", "body_mass_g"])
    with pytest.raises(MethodOptionError, match="at least one categorical column"):
        create_synthesizer("smotenc").preflight(numbers_only, PrivacyCost.non_dp())
    x = table[["bill_length_mm", "bill_depth_mm", "body_mass_g"]].dropna().to_numpy()
    with pytest.raises(ValueError, match="numerical features"):  # what the library alone says, too late
        SMOTENC(categorical_features=[], random_state=0).fit_resample(x, np.arange(len(x)) % 2)


def test_sample_draws_rows_of_the_balanced_table(penguins) -> None:
    table, schema = penguins
    synth = create_synthesizer("smote", seed=9)
    synth.fit(table, schema, PrivacyCost.non_dp())
    out = synth.sample(100)
    assert len(out) == 100
    balanced = synth.balanced_table.astype(str)
    keys = set(map(tuple, balanced.to_numpy()))
    assert all(tuple(row) in keys for row in out.astype(str).to_numpy())
    assert balanced.drop_duplicates().shape[0] == len(balanced)
    assert out.astype(str).drop_duplicates().shape[0] == 100  # drawn without replacement


def test_adasyn_balances_a_class_that_lies_apart_from_the_others(penguins) -> None:
    """Gentoo penguins have no neighbour of another species: imblearn's ADASYN raises on such a class."""
    from imblearn.over_sampling import ADASYN

    from privacy.synthesizers.rebalance import _Encoding, _feature_columns

    table, schema = penguins
    # an 80% sample, as a training split is: on this one a species has no neighbour of another
    table = table.dropna(subset=["species"]).sample(frac=0.8, random_state=2).reset_index(drop=True)
    features = _feature_columns(schema, "species")
    encoding = _Encoding(table, schema, features, nominal_as_codes=False)
    x, y = encoding.encode(table), table["species"].astype(str).to_numpy()
    majority = int(table["species"].value_counts().max())
    strategy = {c: majority for c, k in table["species"].value_counts().items() if k < majority}
    with pytest.raises(RuntimeError, match="neigbours"):  # the library alone fails on this table
        ADASYN(sampling_strategy=strategy, random_state=0, n_neighbors=5).fit_resample(x, y)

    balanced = rebalance_table(table, schema, "species", "adasyn", seed=5)
    counts = balanced["species"].value_counts()
    for cls in strategy:
        assert abs(int(counts[cls]) - majority) <= 0.1 * majority, counts
    head = balanced.iloc[: len(table)].reset_index(drop=True)
    pd.testing.assert_frame_equal(head, table, check_dtype=False)
