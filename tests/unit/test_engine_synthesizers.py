"""`mst` and `aim` on the synthesizer interface: the contract (schema, bounds, canary, exact cost),
degenerate inputs, refusals before data is read, progress, reproducibility, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privacy.budget import PrivacyCost
from privacy.errors import DomainTooLarge, InvalidPrivacyValue, MethodOptionError
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from tests.conftest import ADULT, PENGUINS, PUMS

REQUEST = PrivacyCost(1, Fraction(1, 10**9))
FAST = {"mst": {"iters": 200}, "aim": {"round_iters": 30, "final_iters": 200}}
ROOT = Path(__file__).resolve().parents[2]


def _check_contract(out: pd.DataFrame, schema: PublicSchema, rows: int) -> None:
    assert list(out.columns) == schema.output_columns
    assert len(out) == rows
    for name in schema.synthesized_columns:
        spec = schema.columns[name]
        col = out[name]
        if not spec.nullable:
            assert not col.isna().any(), name
        values = col.dropna()
        if spec.values is not None:
            declared = {str(v) for v in spec.values}
            assert {str(v) for v in values.unique()} <= declared, name
        elif spec.kind in ("ordinal", "continuous"):
            lo, hi = spec.numeric_bounds()
            assert values.astype(float).between(lo, hi).all(), name
            if spec.is_integer:
                assert str(col.dtype) == "Int64", name
        elif spec.kind == "datetime":
            assert values.between(pd.Timestamp(spec.min), pd.Timestamp(spec.max)).all(), name


def _with_canary(df: pd.DataFrame, schema: PublicSchema) -> pd.DataFrame:
    """A row with every number far out of bounds and every category undeclared."""
    row = {}
    for name in df.columns:
        spec = schema.columns.get(name)
        if spec is not None and spec.values is None and spec.kind in ("ordinal", "continuous") and spec.has_bounds:
            row[name] = spec.numeric_bounds()[1] * 10 + 12345
        else:
            row[name] = "CANARY-Zq"
    return pd.concat([df, pd.DataFrame([row])], ignore_index=True)


CASES = [("pums", PUMS), ("penguins", PENGUINS)]


@pytest.mark.parametrize("method", ["mst", "aim"])
@pytest.mark.parametrize("dataset,path", CASES)
def test_contract_on_real_tables(method: str, dataset: str, path: Path, request) -> None:
    df = request.getfixturevalue(f"{dataset}_df")
    schema = load_schema(path.parent / "schema.yaml")
    raw = _with_canary(df, schema)
    table, _ = conform_table(raw, schema, strict=False)
    synth = create_synthesizer(method, seed=11, options=FAST[method])
    cost = synth.fit(table, schema, REQUEST)
    assert cost == synth.planned_cost(REQUEST)
    out = synth.sample(700)
    _check_contract(out, schema, 700)
    text = out.astype(str).to_numpy().ravel()
    assert not any("CANARY" in t for t in text)
    for name in schema.synthesized_columns:
        spec = schema.columns[name]
        if spec.values is None and spec.kind in ("ordinal", "continuous"):
            assert out[name].dropna().astype(float).max() <= spec.numeric_bounds()[1]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mst", "aim"])
def test_contract_on_adult(method: str, adult_df: pd.DataFrame) -> None:
    schema = load_schema(ADULT.parent / "schema.yaml")
    table, _ = conform_table(_with_canary(adult_df, schema), schema, strict=False)
    synth = create_synthesizer(method, seed=3)
    cost = synth.fit(table, schema, REQUEST)
    assert cost == synth.planned_cost(REQUEST)
    out = synth.sample(len(table))
    _check_contract(out, schema, len(table))
    assert "CANARY-Zq" not in set(out["native-country"].dropna())
    assert out["age"].max() <= 90
    assert len(synth.selected_marginals()) >= len(schema.synthesized_columns) - 1


@pytest.mark.parametrize("method", ["mst", "aim"])
def test_same_seed_same_output_and_fresh_draws_after(method: str, pums_df: pd.DataFrame) -> None:
    schema = load_schema(PUMS.parent / "schema.yaml")
    table, _ = conform_table(pums_df, schema)
    outs = []
    for seed in (4, 4, 5):
        synth = create_synthesizer(method, seed=seed, options=FAST[method])
        synth.fit(table, schema, REQUEST)
        outs.append(synth.sample(300))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert not outs[0].equals(outs[2])


@pytest.mark.parametrize("method", ["mst", "aim"])
def test_progress_is_reported_during_fit(method: str, pums_df: pd.DataFrame) -> None:
    schema = load_schema(PUMS.parent / "schema.yaml")
    table, _ = conform_table(pums_df, schema)
    seen: list[tuple[float, str]] = []
    synth = create_synthesizer(method, seed=1, options=FAST[method])
    synth.fit(table, schema, REQUEST, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert len(seen) >= 4
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert any("measured" in m for _, m in seen)


# ----- degenerate inputs ------------------------------------------------------------------------


def _schema(columns: dict) -> PublicSchema:
    return PublicSchema.from_dict({"columns": columns})


DEGENERATE = {
    "one column": (
        {"colour": {"kind": "categorical", "values": ["red", "green", "blue"]}},
        lambda n, rng: pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], n, p=[0.6, 0.3, 0.1])}),
    ),
    "constant columns": (
        {
            "only": {"kind": "categorical", "values": ["x"]},
            "fixed": {"kind": "ordinal", "min": 5, "max": 5},
            "size": {"kind": "continuous", "min": 0, "max": 10},
            "group": {"kind": "categorical", "values": ["a", "b"]},
        },
        lambda n, rng: pd.DataFrame(
            {"only": ["x"] * n, "fixed": [5] * n, "size": rng.uniform(0, 10, n), "group": rng.choice(["a", "b"], n)}
        ),
    ),
    "all-null column": (
        {
            "missing": {"kind": "categorical", "values": ["u", "v"], "nullable": True},
            "score": {"kind": "continuous", "min": 0, "max": 1, "nullable": True},
            "group": {"kind": "categorical", "values": ["a", "b", "c"]},
            "when": {"kind": "datetime", "min": "2020-01-01", "max": "2020-12-31"},
        },
        lambda n, rng: pd.DataFrame(
            {
                "missing": [None] * n,
                "score": [np.nan] * n,
                "group": rng.choice(["a", "b", "c"], n),
                "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            }
        ),
    ),
}


@pytest.mark.parametrize("method", ["mst", "aim"])
@pytest.mark.parametrize("case", sorted(DEGENERATE))
@pytest.mark.parametrize("epsilon", [1.0, 1e-3, 1e-9])
def test_degenerate_inputs_give_valid_output(method: str, case: str, epsilon: float) -> None:
    columns, make = DEGENERATE[case]
    schema = _schema(columns)
    table, _ = conform_table(make(500, np.random.default_rng(0)), schema)
    synth = create_synthesizer(method, seed=2, options=FAST[method])
    requested = PrivacyCost(epsilon, Fraction(1, 10**9))
    assert synth.fit(table, schema, requested) == synth.planned_cost(requested)
    out = synth.sample(400)
    _check_contract(out, schema, 400)
    if case == "constant columns":
        assert set(out["only"]) == {"x"} and set(out["fixed"]) == {5}
    if case == "all-null column" and epsilon == 1.0:
        # 500 nulls measured at epsilon 1: the output is (almost) all null too
        assert out["missing"].isna().mean() > 0.9
    if case == "one column" and epsilon == 1.0:
        assert out["colour"].value_counts(normalize=True)["red"] == pytest.approx(0.6, abs=0.08)


@pytest.mark.parametrize("method", ["mst", "aim"])
def test_empty_table_still_gives_valid_output(method: str) -> None:
    columns, make = DEGENERATE["constant columns"]
    schema = _schema(columns)
    table, _ = conform_table(make(0, np.random.default_rng(0)), schema)
    synth = create_synthesizer(method, seed=2, options=FAST[method])
    synth.fit(table, schema, REQUEST)
    _check_contract(synth.sample(50), schema, 50)


class _Untouchable:
    """A stand-in table that fails the test if anything reads it."""

    def __getattr__(self, name: str):
        raise AssertionError(f"data was read ({name}) before the refusal")

    def __len__(self) -> int:
        raise AssertionError("data was read (len) before the refusal")

    def __getitem__(self, key):
        raise AssertionError("data was read (item) before the refusal")


def test_mst_refuses_a_domain_too_large_before_reading_data() -> None:
    schema = _schema(
        {
            "zip": {"kind": "categorical", "values": [f"z{i}" for i in range(3000)]},
            "street": {"kind": "categorical", "values": [f"s{i}" for i in range(2500)]},
            "sex": {"kind": "categorical", "values": ["f", "m"]},
        }
    )
    synth = create_synthesizer("mst")
    with pytest.raises(DomainTooLarge) as err:
        synth.fit(_Untouchable(), schema, REQUEST)  # type: ignore[arg-type]
    message = str(err.value)
    assert "'zip' (3000 codes)" in message and "'street' (2500 codes)" in message
    assert "sex" not in message
    assert "coarsen" in message


def test_mst_bins_option_decides_the_domain_size() -> None:
    schema = _schema({"a": {"kind": "continuous", "min": 0, "max": 1}, "b": {"kind": "continuous", "min": 0, "max": 1}})
    create_synthesizer("mst", options={"bins": 2000}).preflight(schema, REQUEST)
    with pytest.raises(DomainTooLarge, match="'a' \\(2100 codes\\)"):
        create_synthesizer("mst", options={"bins": 2100}).preflight(schema, REQUEST)


def test_aim_refuses_one_way_marginals_over_the_model_size() -> None:
    schema = _schema(
        {
            "big": {"kind": "categorical", "values": list(range(4000))},
            "mid": {"kind": "categorical", "values": list(range(300))},
            "small": {"kind": "categorical", "values": [0, 1]},
        }
    )
    synth = create_synthesizer("aim", options={"max_model_size": 0.01})  # 1310 cells
    with pytest.raises(DomainTooLarge) as err:
        synth.fit(_Untouchable(), schema, REQUEST)  # type: ignore[arg-type]
    assert "'big' (4000 codes)" in str(err.value) and "small" not in str(err.value)
    create_synthesizer("aim").preflight(schema, REQUEST)  # fits the default 80 MB


def test_requests_and_options_are_checked_before_data() -> None:
    schema = _schema({"a": {"kind": "categorical", "values": ["x", "y"]}, "b": {"kind": "ordinal", "min": 0, "max": 3}})
    with pytest.raises(InvalidPrivacyValue, match="delta"):
        create_synthesizer("mst").fit(_Untouchable(), schema, PrivacyCost(1))  # type: ignore[arg-type]
    with pytest.raises(MethodOptionError):
        create_synthesizer("aim", options={"degree": 4}).preflight(schema, REQUEST)
    with pytest.raises(MethodOptionError, match="rounds"):
        create_synthesizer("aim", options={"rounds": 2}).preflight(schema, REQUEST)
    with pytest.raises(MethodOptionError, match="unknown option"):
        create_synthesizer("mst", options={"degree": 2})


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"shrink_one_way": "false"}, ("shrink_one_way", False)),
        ({"shrink_one_way": " Yes"}, ("shrink_one_way", True)),
        ({"shrink_one_way": 0}, ("shrink_one_way", False)),
        ({"rounds": "40"}, ("rounds", 40)),
        ({"rounds": 40.0}, ("rounds", 40)),
        ({"max_model_size": "0.5"}, ("max_model_size", 0.5)),
    ],
)
def test_options_from_text_and_numbers_are_read_exactly(options: dict, expected: tuple) -> None:
    key, value = expected
    got = create_synthesizer("aim", options=options).options[key]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shrink_one_way": "maybe"}, "shrink_one_way of aim must be true or false, got 'maybe'"),
        ({"shrink_one_way": 2}, "must be true or false"),
        ({"rounds": 2.7}, "rounds of aim must be a whole number, got 2.7"),
        ({"rounds": True}, "must be a whole number"),
        ({"rounds": "1e3"}, "must be a whole number"),
        ({"max_model_size": True}, "max_model_size of aim must be a number"),
        ({"max_model_size": "big"}, "must be a number"),
    ],
)
def test_options_that_are_not_what_they_claim_are_refused(options: dict, message: str) -> None:
    """Nothing is guessed: "maybe" is not false, 2.7 rounds is not 2, True is not 1."""
    with pytest.raises(MethodOptionError, match=message):
        create_synthesizer("aim", options=options)


def test_no_heavy_library_is_imported() -> None:
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
import privacy.synthesizers.native
from privacy.budget import PrivacyCost
from privacy.schema import conform_table, load_schema, read_table
from privacy.synthesizers import create_synthesizer
schema = load_schema({str(PUMS.parent / "schema.yaml")!r})
table, _ = conform_table(read_table({str(PUMS)!r}), schema)
for method in ("mst", "aim"):
    synth = create_synthesizer(method, seed=0, options={{"final_iters": 20}} if method == "aim" else {{"iters": 20}})
    synth.fit(table, schema, PrivacyCost(1, 1e-9))
    synth.sample(100)
heavy = ("torch", "jax", "jaxlib", "sdv", "snsynth", "mbi", "opacus", "opendp", "ctgan", "rdt")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
