"""Constraints of the public schema: declared, checked against the columns, enforced on every output."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from privacy._expression import ExpressionError, parse_expression
from privacy.budget import PrivacyCost
from privacy.constraints import enforce_constraints, repair_constraints, violation_counts
from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import PublicSchema, conform_table, load_schema, read_table
from privacy.statement import privacy_statement
from privacy.synthesizers import create_synthesizer
from privacy.synthesizers.rebalance import rebalance_output, rebalance_table

COMPAS = Path(__file__).resolve().parents[1] / "data" / "compas"
INEQUALITY = "c_jail_in <= c_jail_out"
AGE_CAT = "age_cat determined by age (bands)"

COLUMNS = {
    "start": {"kind": "datetime", "min": "2020-01-01", "max": "2020-12-31", "nullable": True},
    "end": {"kind": "datetime", "min": "2020-01-01", "max": "2021-06-30", "nullable": True},
    "lo": {"kind": "ordinal", "min": 0, "max": 10},
    "hi": {"kind": "continuous", "min": 0, "max": 10},
    "age": {"kind": "ordinal", "min": 18, "max": 90},
    "band": {"kind": "categorical", "values": ["young", "middle", "old"]},
    "state": {"kind": "categorical", "values": ["CA", "NY", "TX"]},
    "region": {"kind": "categorical", "values": ["west", "east", "south"]},
    "sex": {"kind": "categorical", "values": ["F", "M"]},
    "pregnant": {"kind": "categorical", "values": ["yes", "no"]},
    "total": {"kind": "continuous", "min": 0, "max": 20, "integer": True},
    "id": {"kind": "identifier"},
}
BANDS = {
    "determined": {"column": "band", "by": "age", "bands": {"young": [18, 29], "middle": [30, 59], "old": [60, 90]}}
}


def schema_with(*constraints: object) -> PublicSchema:
    return PublicSchema.from_dict({"columns": COLUMNS, "constraints": list(constraints)})


def frame(**overrides: object) -> pd.DataFrame:
    n = 6
    base = {
        "start": pd.to_datetime(["2020-03-01", "2020-05-01", None, "2020-12-31", "2020-02-01", "2020-06-01"]),
        "end": pd.to_datetime(["2020-02-01", "2020-05-02", "2020-01-01", "2021-06-30", None, "2020-07-01"]),
        "lo": pd.array([5, 2, 9, 0, 10, 3], dtype="Int64"),
        "hi": [4.5, 3.0, 1.0, 0.0, 2.0, 3.0],
        "age": pd.array([20, 29, 30, 59, 60, 90], dtype="Int64"),
        "band": pd.array(["old", "young", "young", "middle", "old", "young"], dtype="string"),
        "state": pd.array(["CA", "NY", "TX", "CA", None, "NY"], dtype="string"),
        "region": pd.array(["east", "east", "west", "west", "west", None], dtype="string"),
        "sex": pd.array(["M", "F", "M", "F", "M", "F"], dtype="string"),
        "pregnant": pd.array(["yes", "yes", "no", "no", "no", "yes"], dtype="string"),
        "total": pd.array([9, 5, 10, 0, 12, 6], dtype="Int64"),
    }
    base.update(overrides)
    df = pd.DataFrame(base)
    assert len(df) == n
    return df


# ----------------------------------------------------------------------------------------- the model


def test_constraints_round_trip_through_yaml_in_the_short_and_long_forms() -> None:
    schema = schema_with("lo <= hi", "end > start", BANDS)
    kinds = [(c.kind, c.describe()) for c in schema.constraints]
    assert kinds == [
        ("inequality", "lo <= hi"),
        ("inequality", "start < end"),
        ("determined", "band determined by age (bands)"),
    ]
    again = PublicSchema.from_text(schema.to_yaml())
    assert again.constraints == schema.constraints


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ("lo <= nope", "'nope', which is not a declared column"),
        ("lo <= id", "'id', an identifier column"),
        ("start <= hi", "cannot be compared"),
        ("band <= hi", "cannot be compared"),
        ("lo <= lo", "compared with itself"),
        ("lo is below hi", "write 'low <= high'"),
        (
            {"inequality": {"low": "lo", "high": "hi"}, "formula": {"column": "total", "expression": "lo"}},
            "exactly one of",
        ),
        ({"determined": {"column": "band", "by": "age", "bands": {"ancient": [91, 120]}}}, "['ancient'] not among"),
        ({"determined": {"column": "band", "by": "age", "bands": {"old": [95, 120]}}}, "outside the bounds of 'age'"),
        ({"determined": {"column": "band", "by": "age", "bands": {"old": [60, 50]}}}, "min <= max"),
        ({"determined": {"column": "age", "by": "band", "mapping": {"young": 20}}}, "'age' must declare `values`"),
        ({"determined": {"column": "region", "by": "age", "mapping": {"20": "west"}}}, "needs 'age' to declare"),
        (
            {"determined": {"column": "region", "by": "state", "mapping": {"FL": "south"}}},
            "not declared values of 'state'",
        ),
        ({"determined": {"column": "region", "by": "state"}}, "exactly one of `bands`"),
        ({"combinations": {"columns": ["sex", "age"], "allowed": [["F", 20]]}}, "'age' must declare `values`"),
        ({"combinations": {"columns": ["sex", "pregnant"], "allowed": [["F"]]}}, "give one per column"),
        ({"combinations": {"columns": ["sex", "pregnant"], "allowed": [["X", "yes"]]}}, "['X'] are not declared"),
        ({"formula": {"column": "band", "expression": "age / 10"}}, "a formula computes a numeric column"),
        ({"formula": {"column": "total", "expression": "total + 1"}}, "reads 'total' itself"),
        ({"formula": {"column": "total", "expression": "lo + weight"}}, "'weight' is not a declared column"),
    ],
)
def test_bad_constraints_are_refused_with_what_to_change(constraint: object, message: str) -> None:
    with pytest.raises(SchemaError) as err:
        schema_with(constraint)
    assert message in err.value.message and "constraints" in err.value.message


def test_constraints_on_computed_columns_and_cycles_are_refused() -> None:
    with pytest.raises(SchemaError, match="form a cycle"):
        schema_with("lo <= hi", "hi <= total", "total <= lo")
    with pytest.raises(SchemaError, match="already computed by"):
        schema_with(
            {"formula": {"column": "total", "expression": "lo + hi"}},
            {"formula": {"column": "total", "expression": "lo"}},
        )
    with pytest.raises(SchemaError, match="computed by constraints"):
        schema_with({"formula": {"column": "total", "expression": "lo + hi"}}, "lo <= total")
    with pytest.raises(SchemaError, match="list that constraint first"):
        schema_with(
            {"formula": {"column": "hi", "expression": "total / 2"}},
            {"formula": {"column": "total", "expression": "lo * 2"}},
        )
    columns = {**COLUMNS, "lo": {**COLUMNS["lo"], "nullable": True}}
    with pytest.raises(SchemaError, match="declare 'total' nullable"):
        PublicSchema.from_dict(
            {"columns": columns, "constraints": [{"formula": {"column": "total", "expression": "lo + 1"}}]}
        )


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "lo.__class__",
        "(lambda: 1)()",
        "open('/etc/passwd')",
        "[lo, hi][0]",
        "exp(x=lo)",
        "eval('1')",
        "{'a': 1}",
        "lo if hi else __builtins__",
        "f'{lo}'",
    ],
)
def test_unsafe_expressions_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(text, {"lo", "hi"})
    with pytest.raises(SchemaError, match="constraints"):
        schema_with({"formula": {"column": "total", "expression": text}})


def test_expressions_compute_on_arrays_and_powers_of_constants_overflow_instead_of_hanging() -> None:
    expr = parse_expression("where(sex == 'F', logistic(lo - 2), clip(hi * 3, 0, 5)) + 2 ** 3", {"lo", "hi", "sex"})
    got = expr.evaluate(
        {"lo": np.array([2.0, 2.0]), "hi": np.array([1.0, 9.0]), "sex": np.array(["F", "M"], dtype=object)}, 2
    )
    np.testing.assert_allclose(got, [0.5 + 8, 5 + 8])
    t0 = time.perf_counter()
    huge = parse_expression("9 ** 9 ** 9 ** 9", set()).evaluate({}, 3)
    assert np.isinf(huge).all() and time.perf_counter() - t0 < 5


def test_subset_keeps_only_constraints_on_kept_columns() -> None:
    schema = schema_with("lo <= hi", BANDS)
    assert [c.describe() for c in schema.subset(["lo", "hi", "age"]).constraints] == ["lo <= hi"]


# ----------------------------------------------------------------------------------------- repair


def test_inequality_repair_swaps_then_clips_and_keeps_dtypes_and_bounds() -> None:
    schema = schema_with("start <= end", "lo <= hi")
    df = frame()
    before = violation_counts(df, schema)
    # nulls never violate; row 0 has start after end; rows 0, 2, 4 have lo above hi
    assert before == {"start <= end": 1, "lo <= hi": 3}
    out, changed = repair_constraints(df, schema, seed=1)
    assert violation_counts(out, schema) == {"start <= end": 0, "lo <= hi": 0}
    assert changed == {"start <= end": 1, "lo <= hi": 3}
    assert out.loc[0, "start"] == pd.Timestamp("2020-02-01") and out.loc[0, "end"] == pd.Timestamp("2020-03-01")
    assert out["lo"].dtype == "Int64" and out["start"].dtype == "datetime64[ns]"
    assert out.loc[2, "lo"] == 1 and out.loc[2, "hi"] == 9.0  # swapped
    # a swap that would put end's value outside start's bounds: start is clipped to its max
    df2 = frame(
        start=pd.to_datetime(["2021-05-01"] + ["2020-01-01"] * 5),
        end=pd.to_datetime(["2020-12-31"] + ["2020-02-01"] * 5),
    )
    df2.loc[0, "end"] = pd.Timestamp("2020-06-01")
    df2.loc[0, "start"] = pd.Timestamp("2020-12-31")
    df2.loc[1, "start"] = pd.Timestamp("2020-12-31")
    df2.loc[1, "end"] = pd.Timestamp("2020-01-01")
    out2, _ = repair_constraints(df2, schema_with("start <= end"))
    assert (out2["start"] <= out2["end"]).all()
    assert out2["start"].max() <= pd.Timestamp("2020-12-31")


def test_strict_inequality_separates_equal_values() -> None:
    schema = schema_with("lo < hi")
    df = frame(lo=pd.array([3, 10, 0, 0, 0, 0], dtype="Int64"), hi=[3.0, 10.0, 1.0, 1.0, 1.0, 1.0])
    out, _ = repair_constraints(df, schema)
    assert (out["lo"].astype(float) < out["hi"]).all()
    assert out["hi"].max() <= 10 and out["lo"].min() >= 0


def test_bands_recompute_the_determined_column_and_bring_stray_sources_into_a_band() -> None:
    schema = schema_with({"determined": {"column": "band", "by": "age", "bands": {"young": [18, 29], "old": [60, 90]}}})
    df = frame()
    # ages 20 (filed old), 30 and 59 (in no band: middle has none here), 90 (filed young)
    assert violation_counts(df, schema) == {"band determined by age (bands)": 4}
    out, _ = repair_constraints(df, schema)
    assert violation_counts(out, schema) == {"band determined by age (bands)": 0}
    assert list(out["band"]) == ["young", "young", "young", "old", "old", "old"]
    assert list(out["age"]) == [20, 29, 29, 60, 60, 90]  # 30 -> 29 and 59 -> 60: the nearest band
    assert out["band"].dtype == "string" and out["age"].dtype == "Int64"


def test_mapping_and_combinations_are_repaired_inside_the_declared_domains() -> None:
    schema = schema_with(
        {"determined": {"column": "region", "by": "state", "mapping": {"CA": "west", "NY": "east"}}},
        {"combinations": {"columns": ["pregnant", "sex"], "allowed": [["yes", "F"], ["no", "F"], ["no", "M"]]}},
    )
    df = frame()
    assert violation_counts(df, schema) == {
        "region determined by state (a mapping)": 1,
        "allowed combinations of (pregnant, sex)": 1,
    }
    out, _ = repair_constraints(df, schema, seed=3)
    assert violation_counts(out, schema) == {
        "region determined by state (a mapping)": 0,
        "allowed combinations of (pregnant, sex)": 0,
    }
    assert list(out["region"][:2]) == ["west", "east"] and out.loc[2, "region"] == "west"  # TX is not mapped
    assert tuple(out.loc[0, ["pregnant", "sex"]]) in {("no", "M"), ("yes", "F")}


def test_formulas_are_recomputed_clipped_and_rounded() -> None:
    schema = schema_with({"formula": {"column": "total", "expression": "lo + hi * 2"}})
    df = frame()
    out, changed = repair_constraints(df, schema)
    expected = np.clip(np.round(df["lo"].astype(float) + df["hi"] * 2), 0, 20)
    np.testing.assert_array_equal(out["total"].astype(float), expected)
    assert out["total"].dtype == "Int64" and changed["total = lo + hi * 2"] > 0


def test_reject_and_resample_replaces_violating_rows_with_fresh_valid_draws() -> None:
    schema = schema_with("lo <= hi", BANDS)
    df = frame()
    assert violation_counts(df, schema) == {"lo <= hi": 3, "band determined by age (bands)": 3}
    good = frame(
        lo=pd.array([1] * 6, dtype="Int64"),
        hi=[2.0] * 6,
        band=pd.array(["young", "young", "middle", "middle", "old", "old"], dtype="string"),
    )
    calls: list[int] = []

    def resample(m: int) -> pd.DataFrame:
        calls.append(m)
        return pd.concat([df, good], ignore_index=True)  # half of every draw violates

    out, report = enforce_constraints(df, schema, resample=resample, seed=1)
    assert violation_counts(out, schema) == {"lo <= hi": 0, "band determined by age (bands)": 0}
    assert report.rows_violating == report.rows_resampled == 4 and report.rows_repaired == 0
    assert report.rounds == 1 and calls and len(out) == len(df)
    assert out["lo"].dtype == "Int64" and out["band"].dtype == "string"
    # without a model to draw from, the same rows are repaired instead
    out2, report2 = enforce_constraints(df, schema, seed=1)
    assert report2.rows_resampled == 0 and report2.rows_repaired == 4
    assert violation_counts(out2, schema) == {"lo <= hi": 0, "band determined by age (bands)": 0}


def test_a_model_that_never_satisfies_the_constraints_is_repaired_after_bounded_rounds() -> None:
    schema = schema_with("lo <= hi")
    df = frame()
    calls: list[int] = []

    def resample(m: int) -> pd.DataFrame:
        calls.append(m)
        return df.iloc[[0, 1, 2]]  # one valid row in each draw

    out, report = enforce_constraints(df, schema, resample=resample, max_rounds=2)
    assert len(calls) == 2 and max(calls) <= 4 * len(df)
    assert report.rows_violating == 3 and report.rows_resampled == 2 and report.rows_repaired == 1
    assert violation_counts(out, schema) == {"lo <= hi": 0}


# ----------------------------------------------------------------------------------------- compas


@pytest.fixture(scope="module")
def compas() -> tuple[pd.DataFrame, PublicSchema]:
    schema = load_schema(COMPAS / "schema.yaml")
    table, _ = conform_table(read_table(COMPAS / "compas.csv"), schema)
    return table, schema


def test_compas_declares_its_constraints_and_the_real_rows_break_them(compas) -> None:
    table, schema = compas
    counts = violation_counts(table, schema)
    assert set(counts) == {INEQUALITY, AGE_CAT}
    # the real extract itself has jail stays that end before they start, and ages of 45 filed as "Greater than 45"
    assert counts[INEQUALITY] > 0 and counts[AGE_CAT] > 0


@pytest.mark.parametrize(
    ("method", "cost"),
    [
        ("mst", PrivacyCost(Fraction(1), Fraction(1, 10**9))),
        ("dp-copula", PrivacyCost(Fraction(1), Fraction(0))),
    ],
)
def test_compas_outputs_violate_before_and_not_after_enforcement(compas, method: str, cost: PrivacyCost) -> None:
    table, schema = compas
    synth = create_synthesizer(method, seed=11)
    synth.fit(table, schema, cost)
    sampled = synth.sample(3000)
    before = violation_counts(sampled, schema)
    assert before[INEQUALITY] > 0 and before[AGE_CAT] > 0
    out, report = enforce_constraints(sampled, schema, resample=synth.sample_more, seed=5)
    assert violation_counts(out, schema) == {INEQUALITY: 0, AGE_CAT: 0}
    assert len(out) == 3000 and report.rows_resampled > 0
    assert report.rows_resampled + report.rows_repaired >= report.rows_violating
    assert list(out.dtypes) == list(sampled.dtypes)
    for name in ("c_jail_in", "c_jail_out"):
        assert out[name].min() >= pd.Timestamp("2012-01-01") and out[name].max() <= pd.Timestamp("2016-12-31")
    assert out["age"].between(18, 100).all() and set(out["age_cat"]) <= set(schema.columns["age_cat"].values)


def test_sample_more_draws_fresh_rows(compas) -> None:
    table, schema = compas
    synth = create_synthesizer("dp-copula", seed=2)
    synth.fit(table, schema, PrivacyCost(Fraction(1), Fraction(0)))
    first = synth.sample(200)
    again = synth.sample(200)
    more = synth.sample_more(200)
    pd.testing.assert_frame_equal(first, again)  # a plain second sample repeats itself ...
    assert not first.equals(more)  # ... sample_more does not
    assert len(pd.merge(first, more, how="inner")) < 20


def test_rebalanced_output_satisfies_the_constraints(compas) -> None:
    table, schema = compas
    valid, _ = enforce_constraints(table, schema, seed=1)
    raw = rebalance_table(valid, schema, "is_violent_recid", "smotenc", seed=2)
    assert violation_counts(raw, schema)[AGE_CAT] > 0  # interpolation breaks the banding
    balanced = rebalance_output(valid, schema, "is_violent_recid", "smotenc", seed=2)
    assert len(balanced) == len(raw)
    assert violation_counts(balanced, schema) == {INEQUALITY: 0, AGE_CAT: 0}


def test_offline_synth_enforces_the_schema_constraints(tmp_path: Path) -> None:
    from webapp.cli import cli

    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(
        cli,
        [
            "synth",
            str(COMPAS / "compas.csv"),
            "--schema",
            str(COMPAS / "schema.yaml"),
            "-m",
            "dp-marginals",
            "--epsilon",
            "1",
            "--rows",
            "2000",
            "--seed",
            "3",
            "-o",
            str(out),
            "-q",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.output[result.output.index("{") :])
    assert doc["constraints"]["rows_violating"] > 0
    df = pd.read_parquet(out)
    assert violation_counts(df, load_schema(COMPAS / "schema.yaml")) == {INEQUALITY: 0, AGE_CAT: 0}


def test_generalising_a_constrained_column_drops_its_constraint_from_the_released_schema(compas) -> None:
    from privacy.disclosure import apply_disclosure_control
    from privacy.policy import DatasetPolicy

    table, schema = compas
    data = schema.to_dict()
    data["columns"]["age"]["hierarchy"] = {"band": 10}
    data["quasi_identifiers"] = ["age", "sex", "race"]
    generalising = PublicSchema.from_dict(data)
    released, released_schema, report = apply_disclosure_control(
        table.head(500), generalising, DatasetPolicy.from_dict({"k": 5, "suppression": "generalise"})
    )
    assert "age" in report.generalisation and len(released)
    assert [c.describe() for c in released_schema.constraints] == [INEQUALITY]


# ----------------------------------------------------------------------------------------- data-free


CHURN = {
    "columns": {
        "tenure": {"distribution": "gamma", "a": 2, "scale": 12, "min": 0, "max": 72, "integer": True},
        "charges": {"distribution": "norm", "loc": 70, "scale": 20, "min": 18, "max": 120},
        "signed": {"kind": "datetime", "min": "2020-01-01", "max": "2020-12-31"},
        "renewed": {"kind": "datetime", "min": "2020-01-01", "max": "2021-12-31"},
        "total": {"formula": "tenure * charges", "min": 0, "max": 9000},
        "churn": {"formula": "logistic(1.0 - 0.08 * tenure + 0.02 * charges)", "draw": "bernoulli"},
    },
    "constraints": ["signed <= renewed"],
}


def test_spec_formulas_compute_and_draw_from_earlier_columns() -> None:
    synth = create_synthesizer("spec", seed=21, options={"spec": CHURN})
    synth.fit()
    schema = synth.output_schema()
    assert [c.describe() for c in schema.constraints] == ["total = tenure * charges", "signed <= renewed"]
    assert schema.columns["churn"].values == [0, 1]
    df = synth.sample(20_000)
    np.testing.assert_allclose(df["total"], np.clip(df["tenure"].astype(float) * df["charges"], 0, 9000))
    p = 1 / (1 + np.exp(-(1.0 - 0.08 * df["tenure"].astype(float) + 0.02 * df["charges"])))
    rate = df["churn"].astype(float).mean()
    assert abs(rate - p.mean()) < 4 * np.sqrt(p.mean() * (1 - p.mean()) / len(df))
    # the draw follows p row by row: churn is far more common where p is high
    high = p > p.quantile(0.75)
    low = p < p.quantile(0.25)
    assert df.loc[high, "churn"].astype(float).mean() > df.loc[low, "churn"].astype(float).mean() + 0.2
    before = violation_counts(df, schema)
    assert before == {"total = tenure * charges": 0, "signed <= renewed": before["signed <= renewed"]}
    assert before["signed <= renewed"] > 0
    out, report = enforce_constraints(df, schema, resample=synth.sample_more, seed=1)
    assert violation_counts(out, schema) == {"total = tenure * charges": 0, "signed <= renewed": 0}
    assert report.rows_resampled > 0


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"formula": "later * 2"}, "'later' is not a declared column"),
        ({"formula": "tenure.real"}, "not allowed"),
        ({"formula": "__import__('os')"}, "not an allowed function"),
        ({"formula": "tenure", "draw": "poisson"}, "draw must be bernoulli"),
        ({"formula": "tenure", "draw": "bernoulli", "values": [0, 1, 2]}, "needs two `values`"),
        ({"formula": "tenure", "null_rate": 0.1}, "does not take ['null_rate']"),
    ],
)
def test_spec_formula_errors_say_what_to_change(column: dict, message: str) -> None:
    spec = {
        "columns": {
            "tenure": {"distribution": "norm", "loc": 10, "scale": 2},
            "x": column,
            "later": {"distribution": "norm", "loc": 0, "scale": 1},
        }
    }
    with pytest.raises(MethodOptionError) as err:
        create_synthesizer("spec", options={"spec": spec}).preflight()
    assert message in err.value.message


# ----------------------------------------------------------------------------------------- statement


def test_the_privacy_statement_lists_the_constraints_and_their_counts() -> None:
    schema = schema_with("lo <= hi", BANDS)
    _, report = enforce_constraints(frame(), schema, seed=1)
    text = privacy_statement(
        method={"name": "mst", "guarantee": "dp"},
        cost=PrivacyCost(Fraction(1), Fraction(0)),
        schema=schema,
        release={"constraints": report.to_dict()},
    )
    assert "constraints of the public schema" in text and "no privacy cost" in text
    assert "`lo <= hi`: 3 rows violated it as sampled; 3 rows repaired" in text
    assert "`band determined by age (bands)`: 3 rows violated it as sampled" in text
    plain = privacy_statement(
        method={"name": "mst", "guarantee": "dp"}, cost=PrivacyCost(Fraction(1), Fraction(0)), schema=schema
    )
    assert "constraints of the public schema" not in plain
