"""The public schema: parsing, proposals marked as learned, validation messages, conformance."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from privacy.errors import SchemaError
from privacy.schema import (
    PublicSchema,
    conform_table,
    enforce_schema,
    load_schema,
    propose_schema,
    read_table,
    validate_table,
)
from tests.conftest import ADULT, PENGUINS_RAW, PUMS

SCHEMA = {
    "columns": {
        "age": {"kind": "ordinal", "min": 18, "max": 90},
        "colour": {"kind": "categorical", "values": ["red", "green"], "nullable": True},
        "income": {"kind": "continuous", "min": 0, "max": 1000, "integer": True},
        "visit": {"kind": "datetime", "min": "2020-01-01", "max": "2020-12-31"},
        "id": {"kind": "identifier", "identifier": "fake"},
    },
    "quasi_identifiers": ["age"],
    "sensitive": ["income"],
}


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [17, 30, 95, 40],
            "colour": ["red", "blue", None, "green"],
            "income": [10.4, 2000, -5, 500],
            "visit": ["2019-06-01", "2020-02-03", "2020-05-05", "2021-01-01"],
            "id": ["a", "b", "c", "d"],
        }
    )


def test_schema_round_trips_through_yaml_and_json():
    s = PublicSchema.from_dict(SCHEMA)
    assert PublicSchema.from_text(s.to_yaml()) == s
    assert PublicSchema.from_text(s.to_json()) == s
    assert s.columns["visit"].min == dt.date(2020, 1, 1)
    assert s.synthesized_columns == ["age", "colour", "income", "visit"]
    assert s.output_columns == ["age", "colour", "income", "visit", "id"]


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"columns": {}}, "declares no columns"),
        ({"columns": {"a": {"kind": "categorical", "min": 1}}}, "takes `values`"),
        ({"columns": {"a": {"kind": "continuous", "min": 5, "max": 1}}}, "above max"),
        ({"columns": {"a": {"kind": "categorical", "values": ["x", "x"]}}}, "duplicates"),
        (
            {"columns": {"a": {"kind": "ordinal", "min": 1, "max": 2}}, "quasi_identifiers": ["b"]},
            "not a declared column",
        ),
        ({"columns": {"a": {"kind": "wrong"}}}, "kind"),
        ({"columns": {"a": {"kind": "ordinal", "min": 1, "max": 2, "colour": 1}}}, "colour"),
        ({"columns": {"a": {"kind": "identifier"}}}, "nothing to synthesize"),
    ],
)
def test_malformed_schemas_are_refused_with_a_precise_message(bad, message):
    with pytest.raises(SchemaError, match=message):
        PublicSchema.from_dict(bad)


def test_validation_names_each_problem():
    s = PublicSchema.from_dict(SCHEMA)
    df = table().assign(extra=1).drop(columns=["income"])
    issues = {(i.column, i.code, i.severity) for i in validate_table(df, s)}
    assert ("extra", "unknown_column", "error") in issues
    assert ("income", "missing_column", "error") in issues
    assert ("age", "out_of_bounds", "warning") in issues
    assert ("colour", "undeclared_category", "warning") in issues
    wrong = table().assign(age=["x", "30", "40", "50"])
    assert any(i.code == "wrong_kind" and i.column == "age" for i in validate_table(wrong, s))


def test_conform_clips_maps_undeclared_to_null_and_drops_identifiers():
    s = PublicSchema.from_dict(SCHEMA)
    out, report = conform_table(table(), s)
    assert list(out.columns) == ["age", "colour", "income", "visit"]
    assert out["age"].tolist() == [18, 30, 90, 40]
    assert out["income"].tolist() == [10, 1000, 0, 500] and str(out["income"].dtype) == "Int64"
    assert out["colour"].isna().tolist() == [False, True, True, False]  # "blue" was not declared
    assert out["visit"].min() == pd.Timestamp("2020-01-01") and out["visit"].max() == pd.Timestamp("2020-12-31")
    assert report.clipped == {"age": 2, "income": 2, "visit": 2}
    assert report.undeclared_to_null == {"colour": 1}
    assert report.dropped_columns == ["id"]


def test_rows_with_nulls_in_non_nullable_columns_are_dropped():
    s = PublicSchema.from_dict(SCHEMA)
    df = table()
    df.loc[1, "age"] = np.nan
    out, report = conform_table(df, s)
    assert len(out) == 3 and report.dropped_rows == 1


def test_enforce_schema_puts_any_output_back_inside_the_schema():
    s = PublicSchema.from_dict(SCHEMA)
    raw = pd.DataFrame(
        {
            "age": [10.6, 50.2, 99.0],
            "colour": ["green", "purple", None],
            "income": [1e9, -1, 3.7],
            "visit": ["2019-01-01", "2020-06-15", None],
        }
    )
    out = enforce_schema(raw, s, seed=1)
    assert list(out.columns) == ["age", "colour", "income", "visit", "id"]
    assert out["age"].tolist() == [18, 50, 90]
    assert out["colour"].tolist()[:2] == ["green", None] or out["colour"].isna().sum() == 2
    assert out["income"].tolist() == [1000, 0, 4]
    assert out["id"].str.startswith("SYN-").all() and out["id"].is_unique


def test_proposal_marks_every_learned_value_and_rounds_bounds_outward():
    df = read_table(ADULT)
    s = propose_schema(df, quasi_identifiers=["age", "sex"], target="income")
    age = s.columns["age"]
    assert age.kind == "ordinal" and {"min", "max"} <= set(age.learned)
    assert age.min < df["age"].min() and age.max > df["age"].max()  # the exact extremes are not published
    assert s.columns["workclass"].learned == ["kind", "values", "nullable"] and s.columns["workclass"].nullable
    assert s.target == "income" and s.quasi_identifiers == ["age", "sex"]
    assert s.learned_columns["fnlwgt"] == ["kind", "min", "max", "integer", "nullable"]


@pytest.mark.parametrize("path", [ADULT, PENGUINS_RAW, PUMS])
def test_proposal_marks_every_fact_read_from_the_data(path):
    s = propose_schema(read_table(path))
    for name, spec in s.columns.items():
        assert "kind" in spec.learned, name  # categorical / ordinal / identifier / text: chosen from the values
        if spec.kind != "identifier":
            assert "nullable" in spec.learned, name
        if spec.kind in ("ordinal", "continuous") and spec.values is None:
            assert {"min", "max", "integer"} <= set(spec.learned), name
        if spec.values is not None and spec.values != [False, True]:
            assert "values" in spec.learned, name


def test_the_privacy_statement_names_the_learned_facts():
    from privacy.statement import privacy_statement

    df = pd.DataFrame({"n_children": [0, 1, 2, 3, 1, 0] * 5, "income": [10.5, 2000.25, 0.0, 51.0, 7.0, None] * 5})
    s = propose_schema(df)
    assert s.columns["n_children"].kind == "categorical" and s.columns["income"].kind == "continuous"
    text = privacy_statement(method={"name": "mst", "guarantee": "dp"}, cost=None, schema=s).replace("\\", "")
    assert "`n_children`: kind = categorical; values [0, 1, 2, 3]; nullable = False" in text
    assert "`income`: kind = continuous; min = 0; max = 2500; integer = False; nullable = True" in text


def test_how_an_identifier_is_replaced_is_marked_learned():
    # ids with gaps are dropped, complete ids are regenerated: the choice tells whether the column has nulls
    ids = [f"P{i:05d}" for i in range(40)]
    s = propose_schema(pd.DataFrame({"pid": ids, "pid2": [*ids[:-1], None], "x": range(40)}))
    assert s.columns["pid"].identifier == "fake" and s.columns["pid2"].identifier == "drop"
    assert s.columns["pid"].learned == s.columns["pid2"].learned == ["kind", "identifier"]


def test_a_proposal_writes_no_text_read_from_the_data():
    df = pd.DataFrame({"city": [f"town{i:03d}" for i in range(150)] * 2})
    spec = propose_schema(df, max_categories=100).columns["city"]
    assert spec.kind == "categorical" and spec.values is None and spec.learned == ["kind", "nullable"]
    assert "150" not in str(spec.description) and not any(ch.isdigit() for ch in str(spec.description))
    assert "declare `values`" in str(spec.description)


def test_learned_names_column_fields():
    with pytest.raises(SchemaError, match="learned names"):
        PublicSchema.from_dict({"columns": {"a": {"kind": "ordinal", "min": 0, "max": 1, "learned": ["minimum"]}}})


def test_proposal_detects_identifiers_free_text_and_dates():
    s = propose_schema(read_table(PENGUINS_RAW))
    assert s.columns["Individual ID"].kind == "identifier"
    assert s.columns["Comments"].kind == "text"
    assert s.columns["Date Egg"].kind == "datetime"
    assert s.columns["Sex"].nullable


def test_integer_categories_keep_their_type():
    s = load_schema("tests/data/pums/schema.yaml")
    out, _ = conform_table(read_table(PUMS), s)
    assert str(out["sex"].dtype) == "Int64" and set(out["sex"].unique()) == {0, 1}


@pytest.mark.parametrize(
    "content,message", [(b"", "empty"), (b"a,b\n", "no data rows"), (b"a,,c\n1,2,3\n", "without a header name")]
)
def test_read_table_refuses_unusable_files(tmp_path, content, message):
    p = tmp_path / "t.csv"
    p.write_bytes(content)
    with pytest.raises(SchemaError, match=message):
        read_table(p)


def test_nulls_of_a_non_nullable_column_are_drawn_from_the_output_not_a_constant() -> None:
    """SDV output with NaN in a non-nullable column used to be filled with the bounds' midpoint (a
    sixth of some mammography columns sat on one value); the fill now follows the column's output."""
    from privacy.schema import enforce_schema

    schema = PublicSchema.from_dict(
        {
            "columns": {
                "x": {"kind": "continuous", "min": 0, "max": 100},
                "c": {"kind": "categorical", "values": ["a", "b", "c"]},
                "d": {"kind": "datetime", "min": "2020-01-01", "max": "2020-12-31"},
            }
        }
    )
    rng = np.random.default_rng(0)
    n = 5000
    x = rng.uniform(0, 20, n)  # the model's values: nowhere near the midpoint 50
    x[rng.random(n) < 0.2] = np.nan
    c = np.where(rng.random(n) < 0.9, "b", "c").astype(object)
    c[rng.random(n) < 0.2] = None
    d = pd.Series(pd.to_datetime("2020-03-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D"))
    d[rng.random(n) < 0.2] = pd.NaT
    out = enforce_schema(pd.DataFrame({"x": x, "c": c, "d": d}), schema, seed=1)
    assert out.notna().all().all()
    assert out["x"].between(0, 20).all() and (out["x"] == 50).sum() == 0
    assert set(out["c"].astype(str)) == {"b", "c"} and (out["c"] == "b").mean() > 0.85  # never "a", the first
    assert out["d"].between(pd.Timestamp("2020-03-01"), pd.Timestamp("2020-03-30")).all()
    # no output at all: drawn over the declared domain, not one value
    empty = enforce_schema(pd.DataFrame({"x": [np.nan] * 200, "c": [None] * 200, "d": [pd.NaT] * 200}), schema, seed=2)
    assert empty["x"].nunique() > 100 and empty["c"].nunique() == 3 and empty["d"].nunique() > 50
    with pytest.raises(SchemaError, match="no value for column 'y'"):
        enforce_schema(
            pd.DataFrame({"y": [np.nan] * 3}),
            PublicSchema.from_dict({"columns": {"y": {"kind": "continuous"}}}),
            seed=3,
        )


def _census_style(tmp_path, token: str = "N"):  # type: ignore[no-untyped-def]
    """PUMS as the Census Bureau writes its files: a missing income is the letter N, not an empty cell."""
    raw = pd.read_csv(PUMS)
    missing = np.random.default_rng(0).random(len(raw)) < 0.15
    raw["income"] = raw["income"].astype(object).where(~missing, token)
    path = tmp_path / "pums-census.csv"
    raw.to_csv(path, index=False)
    return path, missing


def test_a_null_token_is_proposed_marked_learned_and_read_as_missing(tmp_path) -> None:
    from privacy.schema import read_table

    path, missing = _census_style(tmp_path)
    table = read_table(path)
    proposed = propose_schema(table)
    income = proposed.columns["income"]
    # without the token the column was categorical with hundreds of values read from the data
    assert income.kind == "continuous" and income.nullable and income.null_tokens == ["N"], income
    assert "null_tokens" in income.learned  # the spelling was read from the data: privacy.md names it
    conformed, _ = conform_table(table, proposed)
    assert conformed["income"].isna().to_numpy().tolist() == missing.tolist()
    assert conformed["income"].notna().sum() == (~missing).sum() and conformed["income"].max() > 10_000


def test_a_declared_null_token_lets_a_numeric_column_validate(tmp_path) -> None:
    from privacy.schema import read_table

    path, missing = _census_style(tmp_path, token="-")
    table = read_table(path)
    schema = load_schema(PUMS.parent / "schema.yaml")
    spec = schema.columns["income"].model_copy(update={"nullable": True})
    plain = PublicSchema(**{**schema.model_dump(), "columns": {**schema.columns, "income": spec}})
    assert any(i.code == "wrong_kind" for i in validate_table(table, plain))  # "-" is not a number
    for declared in (
        plain.model_copy(update={"null_tokens": ["-"]}),  # table-wide
        PublicSchema(
            **{
                **plain.model_dump(),
                "columns": {**plain.columns, "income": spec.model_copy(update={"null_tokens": ["-"]})},
            }
        ),
    ):
        assert not [i for i in validate_table(table, declared) if i.severity == "error"]
        conformed, _ = conform_table(table, declared)
        assert conformed["income"].isna().to_numpy().tolist() == missing.tolist()
    assert PublicSchema.from_dict(declared.to_dict()).columns["income"].null_tokens == ["-"]
