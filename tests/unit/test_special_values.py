"""Point masses in the public schema: declared, proposed (marked learned), encoded as codes of their own,
decoded exactly, and kept by the native methods on adult."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privacy.budget import PrivacyCost
from privacy.encoding import DomainEncoder
from privacy.errors import SchemaError
from privacy.schema import (
    MAX_SPECIAL_VALUES,
    PublicSchema,
    conform_table,
    enforce_schema,
    load_schema,
    propose_schema,
)
from privacy.statement import privacy_statement
from privacy.synthesizers import create_synthesizer
from tests.conftest import ADULT

DELTA = 1e-9


def _column(**spec) -> PublicSchema:
    return PublicSchema.from_dict({"columns": {"x": spec}})


def adult_schema_with_zeros() -> PublicSchema:
    """tests/data/adult/schema.yaml with capital-gain and capital-loss declaring 0 as a special value."""
    return load_schema(ADULT.parent / "schema.yaml").with_special_values({"capital-gain": [0], "capital-loss": [0]})


# ----- the schema ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"kind": "categorical", "values": ["a", "b"], "special_values": [0]}, "numeric columns"),
        ({"kind": "ordinal", "values": [1, 2, 3], "special_values": [1]}, "numeric columns"),
        ({"kind": "datetime", "min": "2020-01-01", "max": "2020-12-31", "special_values": [0]}, "numeric columns"),
        ({"kind": "continuous", "min": 0, "max": 10, "special_values": [11]}, r"outside \[0, 10\]"),
        ({"kind": "continuous", "min": 0, "max": 10, "special_values": [-0.5]}, "outside"),
        ({"kind": "continuous", "min": 0, "max": 10, "special_values": [1, 1.0]}, "duplicates"),
        ({"kind": "continuous", "min": 0, "max": 10, "special_values": []}, "no value"),
        (
            {"kind": "continuous", "min": 0, "max": 100, "special_values": list(range(MAX_SPECIAL_VALUES + 1))},
            f"more than {MAX_SPECIAL_VALUES}",
        ),
        ({"kind": "continuous", "min": 0, "max": 10, "integer": True, "special_values": [2.5]}, "not integers"),
        ({"kind": "continuous", "special_values": [0]}, "declare min and max"),
        ({"kind": "continuous", "min": 0, "max": 10, "special_values": [float("nan")]}, "finite"),
    ],
)
def test_special_values_are_validated_with_a_message_that_says_what_to_change(spec, message):
    with pytest.raises(SchemaError, match=message):
        _column(**spec)


def test_with_special_values_validates_and_removes():
    s = _column(kind="continuous", min=0, max=10, integer=True)
    assert s.with_special_values({"x": [0, 10]}).columns["x"].special_values == [0, 10]
    assert s.with_special_values({"x": [0]}).with_special_values({"x": None}) == s
    with pytest.raises(SchemaError, match="outside"):
        s.with_special_values({"x": [11]})
    with pytest.raises(SchemaError, match="not a declared column"):
        s.with_special_values({"y": [0]})


def test_special_values_round_trip_and_count_in_the_domain_size():
    s = _column(kind="continuous", min=-500, max=500, integer=True, special_values=[0, -1], nullable=True)
    assert PublicSchema.from_text(s.to_yaml()) == s
    spec = s.columns["x"]
    assert spec.special_points == (-1.0, 0.0)
    assert spec.domain_size(32) == 32 + 2 + 1 == DomainEncoder(s).sizes[0]
    # an ordinal with one code per integer already has a code for each of its special values
    o = _column(kind="ordinal", min=0, max=20, special_values=[0])
    assert o.columns["x"].domain_size() == 21 == DomainEncoder(o).sizes[0]


def test_the_proposal_suggests_point_masses_of_binned_columns_marked_learned():
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame(
        {
            "gain": np.where(rng.random(n) < 0.9, 0, rng.integers(1, 50_000, n)),
            "days": np.where(rng.random(n) < 0.3, -1, rng.integers(0, 900, n)),
            "income": rng.lognormal(10, 1, n),  # no value holds a large share
            "hours": np.where(rng.random(n) < 0.5, 40, rng.integers(1, 99, n)),  # one code per hour already
        }
    )
    s = propose_schema(df)
    assert s.columns["gain"].special_values == [0]
    assert s.columns["days"].special_values == [-1]
    assert "special_values" in s.columns["gain"].learned and "special_values" in s.columns["days"].learned
    assert s.columns["income"].special_values is None and "special_values" not in s.columns["income"].learned
    assert s.columns["hours"].kind == "ordinal" and s.columns["hours"].special_values is None
    # the privacy statement names them among the values read from the data
    text = privacy_statement(
        method={"name": "mst", "guarantee": "dp", "zcdp": True}, cost=PrivacyCost(1, DELTA), schema=s
    ).replace("\\", "")
    assert "special_values = [0]" in text and "special_values = [-1]" in text


def test_the_proposal_keeps_the_most_frequent_point_masses_up_to_the_limit():
    values = np.repeat(np.arange(10) * 1000, 100)  # ten values, each 10% of the rows
    s = propose_schema(pd.DataFrame({"v": values.astype(float) + 0.5}))
    assert s.columns["v"].special_values is not None
    assert len(s.columns["v"].special_values) == MAX_SPECIAL_VALUES


# ----- encoding --------------------------------------------------------------------------------


def test_special_values_get_their_own_code_and_decode_exactly():
    s = PublicSchema.from_dict(
        {
            "columns": {
                "gain": {"kind": "continuous", "min": 0, "max": 100000, "integer": True, "special_values": [0, 99999]},
                "days": {
                    "kind": "continuous",
                    "min": -500,
                    "max": 500,
                    "integer": True,
                    "special_values": [-1],
                    "nullable": True,
                },
                "ratio": {"kind": "continuous", "min": 0, "max": 1, "special_values": [0.5]},
            }
        }
    )
    rng = np.random.default_rng(1)
    n = 4000
    df = pd.DataFrame(
        {
            "gain": np.where(rng.random(n) < 0.8, 0, rng.integers(0, 100001, n)).astype(float),
            "days": np.where(rng.random(n) < 0.4, -1, rng.integers(-500, 501, n)).astype(float),
            "ratio": np.where(rng.random(n) < 0.3, 0.5, rng.random(n)),
        }
    )
    df.loc[::37, "days"] = np.nan
    enc = DomainEncoder(s, default_bins=16)
    codes = enc.encode(df)
    back = enc.decode(codes, np.random.default_rng(2))
    for name in ("gain", "days", "ratio"):
        col = enc.encodings[[e.name for e in enc.encodings].index(name)]
        for v, code in zip(col.specials, col.special_codes(), strict=True):
            hit = df[name].to_numpy() == v
            assert (codes[hit, enc.columns.index(name)] == code).all()  # every special value has its code
            assert (back[name].to_numpy()[hit] == v).all()  # and comes back exactly
            assert (back[name].to_numpy()[~hit] != v).all()  # nothing else comes back as it
        # every other value decodes into its own bin: encoding the decoded table gives the same codes
        assert (enc.encode(back)[:, enc.columns.index(name)] == codes[:, enc.columns.index(name)]).all()
    for name in ("gain", "days"):  # integer columns give integers, up to their upper bound
        x = back[name].dropna().to_numpy()
        assert np.all(np.mod(x, 1) == 0)
    assert back["days"].isna().sum() == df["days"].isna().sum()


def test_codes_keep_the_order_of_the_numbers():
    s = _column(kind="continuous", min=0, max=100, special_values=[0, 50, 100, 37])
    enc = DomainEncoder(s, default_bins=4)
    # on a bin edge a special value sits between the two bins; inside a bin (37), right after it
    x = np.array([0, 10, 30, 37, 50, 60, 99, 100], dtype=float)
    codes = enc.encode(pd.DataFrame({"x": x}))[:, 0]
    assert codes.tolist() == list(range(8))
    assert enc.sizes == [8]


def test_an_integer_bin_decodes_to_every_integer_but_its_special_values():
    s = _column(kind="continuous", min=0, max=7, integer=True, special_values=[0, 3])
    enc = DomainEncoder(s, default_bins=2)  # bins [0, 3.5) and [3.5, 7]
    first_bin = enc.encodings[0].bin_codes()[0]
    codes = np.full((4000, 1), first_bin)
    x = enc.decode(codes, np.random.default_rng(3))["x"].to_numpy()
    assert set(np.unique(x)) == {1.0, 2.0}
    last = np.full((4000, 1), enc.encodings[0].bin_codes()[1])
    assert set(np.unique(enc.decode(last, np.random.default_rng(4))["x"])) == {4.0, 5.0, 6.0, 7.0}


# ----- on adult --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> tuple[pd.DataFrame, PublicSchema]:
    schema = adult_schema_with_zeros()
    table, _ = conform_table(adult_df, schema)
    return table, schema


@pytest.mark.parametrize("method", ["mst", "dp-marginals", "dp-copula"])
def test_the_share_of_exact_zeros_in_capital_gain_and_loss_is_kept_at_epsilon_1(adult, method):
    table, schema = adult
    synth = create_synthesizer(method, seed=5)
    cost = synth.fit(table, schema, PrivacyCost(1, DELTA))
    assert cost == synth.planned_cost(PrivacyCost(1, DELTA))
    out = enforce_schema(synth.sample(5000), schema, seed=0)
    for name in ("capital-gain", "capital-loss"):
        real = float((table[name] == 0).mean())
        syn = float((out[name] == 0).mean())
        assert abs(syn - real) < 0.02, f"{method} {name}: {syn:.3f} exact zeros, real {real:.3f}"
        assert (out[name].dropna() % 1 == 0).all()
