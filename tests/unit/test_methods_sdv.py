"""The SDV wrappers: metadata and bounds from the public schema, honest non-DP cost."""

from __future__ import annotations

import pandas as pd
import pytest

from privacy.budget import INFINITE, PrivacyCost
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from privacy.synthesizers.sdv import find_point_masses, sdv_metadata
from tests.conftest import ADULT, PENGUINS


@pytest.fixture(scope="module")
def penguins(penguins_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(PENGUINS.parent / "schema.yaml")
    table, _ = conform_table(penguins_df, schema)
    return table, schema


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(ADULT.parent / "schema.yaml")
    table, _ = conform_table(adult_df.sample(8000, random_state=0), schema)
    return table.reset_index(drop=True), schema


def test_metadata_is_built_from_the_schema(penguins) -> None:
    _table, schema = penguins
    meta = sdv_metadata(schema).to_dict()
    columns = meta["tables"]["table"]["columns"]
    assert list(columns) == schema.synthesized_columns
    assert columns["species"]["sdtype"] == "categorical"
    assert columns["body_mass_g"]["sdtype"] == "numerical"


def test_sdv_does_not_learn_min_max_or_rounding_and_the_schema_bounds_hold(penguins) -> None:
    table, schema = penguins
    # declare narrower bounds than the data: only the schema may decide where the output is clipped
    data = schema.to_dict()
    data["columns"]["body_mass_g"].update({"min": 3000, "max": 5000})
    narrow = PublicSchema.from_dict(data)
    narrowed, _ = conform_table(table, narrow)
    synth = create_synthesizer("gaussian-copula", seed=1)
    cost = synth.fit(narrowed, narrow, PrivacyCost.non_dp())
    assert cost.epsilon is INFINITE
    models = synth.fitted_models()
    assert len(models) == 3  # penguins' target (species): one copula per class
    assert all(m.enforce_min_max_values is False and m.enforce_rounding is False for m in models)
    out = synth.sample(500)
    mass = out["body_mass_g"].dropna()
    assert mass.min() >= 3000 and mass.max() <= 5000
    assert str(out["body_mass_g"].dtype) == "Int64" and str(out["flipper_length_mm"].dtype) == "Int64"
    assert set(out["species"].dropna()) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_gan_progress_reports_each_epoch(penguins) -> None:
    table, schema = penguins
    messages: list[str] = []
    synth = create_synthesizer("ctgan", seed=2, options={"epochs": 3, "batch_size": 100})
    synth.fit(table, schema, PrivacyCost.non_dp(), progress=lambda f, m: messages.append(m))
    assert [m for m in messages if m.startswith("epoch")] == ["epoch 1 of 3", "epoch 2 of 3", "epoch 3 of 3"]


def test_bad_options_and_open_domains_are_refused(penguins) -> None:
    _table, schema = penguins
    with pytest.raises(MethodOptionError, match="batch_size"):
        create_synthesizer("ctgan", options={"batch_size": 15}).preflight(schema, PrivacyCost.non_dp())
    with pytest.raises(MethodOptionError, match="default_distribution"):
        create_synthesizer("gaussian-copula", options={"default_distribution": "cauchy"}).preflight(
            schema, PrivacyCost.non_dp()
        )
    data = schema.to_dict()
    data["columns"]["island"] = {"kind": "categorical"}
    with pytest.raises(SchemaError, match="island"):
        create_synthesizer("tvae").preflight(PublicSchema.from_dict(data), PrivacyCost.non_dp())


def test_gaussian_copula_keeps_point_masses_exact(adult) -> None:
    """capital-gain is exactly 0 in 92% of adult's rows; a beta marginal alone gave 1% zeros."""
    table, schema = adult
    real_zeros = float((table["capital-gain"] == 0).mean())
    synth = create_synthesizer("gaussian-copula", seed=3)
    synth.fit(table, schema, PrivacyCost.non_dp())
    out = synth.sample(3000)
    assert abs(float((out["capital-gain"] == 0).mean()) - real_zeros) < 0.03
    # a value held by few rows is never reproduced as a point mass, a value held by many is
    one = schema.subset(["capital-loss"])
    rare = pd.DataFrame({"capital-loss": [1.5] * 20 + [float(i) for i in range(380)]})
    assert find_point_masses(rare, one) == {}
    common = pd.DataFrame({"capital-loss": [2.5] * 40 + [float(i) for i in range(360)]})
    assert find_point_masses(common, one) == {"capital-loss": 2.5}


def test_gaussian_copula_keeps_each_class_of_the_target(penguins) -> None:
    """One copula per species: the class means of the measurements stay where they are (a joint copula
    put Gentoo's mean flipper length at 198 mm against a real 217)."""
    table, schema = penguins
    synth = create_synthesizer("gaussian-copula", seed=4)
    synth.fit(table, schema, PrivacyCost.non_dp())
    out = synth.sample(3000)
    real = table.groupby("species")["flipper_length_mm"].mean()
    fake = out.groupby("species")["flipper_length_mm"].mean()
    for species in real.index:
        assert abs(float(fake[species]) - float(real[species])) < 4, (species, fake[species], real[species])
    shares = out["species"].value_counts(normalize=True)
    real_shares = table["species"].value_counts(normalize=True)
    assert (shares - real_shares).abs().max() < 0.04
