"""Disclosure control on hand-made tables: each rule checked exactly."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from privacy.disclosure import (
    apply_disclosure_control,
    apply_small_cell_rules,
    class_sizes,
    k_anonymity,
    l_diversity,
)
from privacy.errors import SchemaError
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema, enforce_schema, validate_table


def schema_of(columns: dict, qis: list[str] = (), sensitive: list[str] = ()) -> PublicSchema:
    return PublicSchema.from_dict({"columns": columns, "quasi_identifiers": list(qis), "sensitive": list(sensitive)})


GROUP = {"kind": "categorical", "values": ["a", "b", "c", "d"]}
VALUE = {"kind": "ordinal", "min": 0, "max": 100}


def released_is_described(table: pd.DataFrame, schema: PublicSchema) -> None:
    """The released schema describes the released table exactly."""
    assert list(table.columns) == schema.output_columns
    assert validate_table(table, schema) == []
    again = enforce_schema(table, schema)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), table.reset_index(drop=True), check_dtype=False)


# ----------------------------------------------------------------------------------
# suppression and k-anonymity
# ----------------------------------------------------------------------------------


def test_a_unique_row_is_suppressed_and_the_rest_kept():
    table = pd.DataFrame({"g": ["a"] * 5 + ["b"] * 5 + ["c"], "v": range(11)})
    schema = schema_of({"g": GROUP, "v": VALUE}, qis=["g"])
    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=5))

    assert out["v"].tolist() == list(range(10))  # only the unique row (v = 10) is gone, order kept
    assert report.rows_in == 11 and report.rows_out == 10
    assert report.suppression["rows_suppressed"] == 1
    assert report.suppression["classes_suppressed"] == 1
    assert report.k_anonymity_before["smallest_class"] == 1
    assert report.k_anonymity_before["share_rows_below_k"] == pytest.approx(1 / 11)
    assert report.k_anonymity["smallest_class"] == 5
    assert report.k_anonymity["rows_in_classes_below_k"] == 0
    assert report.k_anonymity["share_rows_below_k"] == 0.0
    released_is_described(out, released)
    json.dumps(report.to_dict())


def test_classes_of_four_and_five_at_k5_the_four_go_the_five_stay():
    table = pd.DataFrame(
        {
            "sex": ["F"] * 4 + ["M"] * 5,
            "zip": ["100"] * 9,
            "v": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        }
    )
    schema = schema_of(
        {
            "sex": {"kind": "categorical", "values": ["F", "M"]},
            "zip": {"kind": "categorical", "values": ["100", "200"]},
            "v": VALUE,
        },
        qis=["sex", "zip"],
    )
    out, _, report = apply_disclosure_control(table, schema, DatasetPolicy(k=5, suppression="suppress"))
    assert out["sex"].tolist() == ["M"] * 5
    assert out["v"].tolist() == [5, 6, 7, 8, 9]
    assert report.suppression["rows_suppressed"] == 4
    assert report.k_anonymity_before["classes_below_k"] == 1
    assert report.k_anonymity_before["rows_in_classes_below_k"] == 4
    assert report.k_anonymity["smallest_class"] == 5

    # at k = 4 both classes stay
    out4, _, report4 = apply_disclosure_control(table, schema, DatasetPolicy(k=4))
    assert len(out4) == 9 and report4.rows_suppressed == 0


def test_only_declared_columns_are_released_in_schema_order():
    table = pd.DataFrame({"v": range(5), "extra": ["secret"] * 5, "g": ["a"] * 5})
    schema = schema_of({"g": GROUP, "v": VALUE}, qis=["g"])
    out, released, _ = apply_disclosure_control(table, schema, DatasetPolicy(k=5))
    assert list(out.columns) == ["g", "v"]
    released_is_described(out, released)


def test_k_defaults_to_5_when_quasi_identifiers_are_declared():
    table = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 5, "v": range(9)})
    schema = schema_of({"g": GROUP, "v": VALUE}, qis=["g"])
    out, _, report = apply_disclosure_control(table, schema, DatasetPolicy(suppression="suppress"))
    assert report.k == 5
    assert out["g"].tolist() == ["b"] * 5


def test_nulls_form_a_class_of_their_own():
    table = pd.DataFrame({"g": ["a"] * 5 + [None] * 2, "v": range(7)})
    schema = schema_of({"g": {**GROUP, "nullable": True}, "v": VALUE}, qis=["g"])
    assert class_sizes(enforce_schema(table, schema), ["g"]).tolist() == [5] * 5 + [2] * 2
    out, _, report = apply_disclosure_control(
        enforce_schema(table, schema), schema, DatasetPolicy(k=3, suppression="suppress")
    )
    assert out["v"].tolist() == [0, 1, 2, 3, 4] and report.rows_suppressed == 2


def test_no_quasi_identifiers_no_suppression():
    table = pd.DataFrame({"g": ["a", "b", "c"], "v": [1, 2, 3]})
    schema = schema_of({"g": GROUP, "v": VALUE})
    out, _, report = apply_disclosure_control(table, schema, DatasetPolicy())
    assert len(out) == 3 and report.k is None
    assert report.k_anonymity == {"applicable": False, "reason": "no quasi-identifiers declared"}


def test_everything_suppressed_gives_an_empty_but_valid_table():
    table = pd.DataFrame({"g": ["a", "b", "c", "d"], "v": [1, 2, 3, 4]})
    schema = schema_of({"g": GROUP, "v": VALUE}, qis=["g"])
    out, _released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=2, suppression="suppress"))
    assert len(out) == 0 and report.rows_suppressed == 4
    assert report.k_anonymity["smallest_class"] is None
    assert list(out.columns) == ["g", "v"]
    json.dumps(report.to_dict())


# ----------------------------------------------------------------------------------
# l-diversity
# ----------------------------------------------------------------------------------


def test_l_diversity_fails_in_a_class_with_one_sensitive_value():
    table = pd.DataFrame(
        {
            "g": ["a"] * 5 + ["b"] * 5,
            "disease": ["flu"] * 5 + ["flu", "cold", "flu", "cold", "flu"],
        }
    )
    schema = schema_of(
        {"g": GROUP, "disease": {"kind": "categorical", "values": ["flu", "cold", "hiv"]}},
        qis=["g"],
        sensitive=["disease"],
    )
    out, _, report = apply_disclosure_control(table, schema, DatasetPolicy(k=5, l=2))
    assert len(out) == 10  # l-diversity is measured, not enforced by deleting rows
    ld = report.l_diversity["disease"]
    assert ld["smallest_l"] == 1
    assert ld["classes_below_l"] == 1
    assert ld["share_classes_below_l"] == 0.5
    assert ld["rows_in_classes_below_l"] == 5
    assert ld["share_rows_below_l"] == 0.5

    three = l_diversity(table, ["g"], ["disease"], 3)["disease"]
    assert three["classes_below_l"] == 2 and three["share_classes_below_l"] == 1.0


def test_l_diversity_ignores_nulls_in_the_sensitive_column():
    table = pd.DataFrame({"g": ["a"] * 3, "s": ["x", None, None]})
    assert l_diversity(table, ["g"], ["s"], 2)["s"]["smallest_l"] == 1


def test_k_anonymity_function_on_its_own():
    table = pd.DataFrame({"a": [1, 1, 1, 2, 2, 3], "b": ["x", "x", "y", "y", "y", "z"]})
    ka = k_anonymity(table, ["a", "b"], 2)
    assert ka["classes"] == 4 and ka["smallest_class"] == 1
    assert ka["classes_below_k"] == 2 and ka["rows_in_classes_below_k"] == 2
    assert ka["share_rows_below_k"] == pytest.approx(2 / 6)


# ----------------------------------------------------------------------------------
# generalisation before suppression
# ----------------------------------------------------------------------------------


def age_schema(**hierarchy) -> PublicSchema:
    return schema_of(
        {"age": {"kind": "ordinal", "min": 17, "max": 90, "hierarchy": hierarchy}, "v": VALUE}, qis=["age"]
    )


def test_age_bands_spare_rows_that_suppression_alone_removes():
    table = pd.DataFrame({"age": [20, 21, 22, 23, 24, 40, 40, 40, 40, 40, 90], "v": range(11)})
    schema = age_schema(band=5)

    only, _, rep_only = apply_disclosure_control(table, schema, DatasetPolicy(k=5, suppression="suppress"))
    assert rep_only.rows_suppressed == 6 and only["age"].tolist() == [40] * 5

    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=5, suppression="generalise"))
    assert report.rows_suppressed == 1  # only the 90-year-old, alone in "85-90"
    assert out["age"].tolist() == ["20-24"] * 5 + ["40-44"] * 5
    assert report.generalisation["age"]["rows_generalised"] == 11
    assert report.lattice["levels"] == {"age": 1} and report.lattice["rows_suppressed"] == 1
    spec = released.columns["age"]
    assert spec.kind == "ordinal"
    assert spec.values == [
        "17-19",
        "20-24",
        "25-29",
        "30-34",
        "35-39",
        "40-44",
        "45-49",
        "50-54",
        "55-59",
        "60-64",
        "65-69",
        "70-74",
        "75-79",
        "80-84",
        "85-90",
    ]
    assert spec.hierarchy is None
    released_is_described(out, released)


def test_numeric_edges_on_a_continuous_column():
    schema = schema_of(
        {"income": {"kind": "continuous", "min": 0, "max": 1000, "hierarchy": {"edges": [100, 500]}}, "v": VALUE},
        qis=["income"],
    )
    table = pd.DataFrame({"income": [0.0, 99.9, 100.0, 499.0, 500.0, 1000.0], "v": range(6)})
    out, released, _ = apply_disclosure_control(table, schema, DatasetPolicy(k=2))
    assert out["income"].tolist() == ["[0, 100)", "[0, 100)", "[100, 500)", "[100, 500)", "[500, 1000]", "[500, 1000]"]
    assert released.columns["income"].values == ["[0, 100)", "[100, 500)", "[500, 1000]"]
    released_is_described(out, released)


def test_category_groups_spare_rows():
    marital = {
        "kind": "categorical",
        "values": ["Married-civ-spouse", "Married-AF-spouse", "Divorced", "Widowed", "Never-married"],
        "hierarchy": {
            "groups": {
                "Married": ["Married-civ-spouse", "Married-AF-spouse"],
                "Previously-married": ["Divorced", "Widowed"],
            }
        },
    }
    schema = schema_of({"m": marital, "v": VALUE}, qis=["m"])
    table = pd.DataFrame(
        {
            "m": ["Married-civ-spouse"] * 2
            + ["Married-AF-spouse"]
            + ["Divorced", "Widowed", "Widowed"]
            + ["Never-married"] * 3,
            "v": range(9),
        }
    )
    _only, _, rep_only = apply_disclosure_control(table, schema, DatasetPolicy(k=3, suppression="suppress"))
    assert rep_only.rows_suppressed == 6

    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=3))
    assert report.rows_suppressed == 0
    assert out["m"].tolist() == ["Married"] * 3 + ["Previously-married"] * 3 + ["Never-married"] * 3
    assert released.columns["m"].kind == "categorical"
    assert released.columns["m"].values == ["Married", "Previously-married", "Never-married"]
    released_is_described(out, released)


def test_dates_generalised_to_month_and_to_year():
    dates = pd.to_datetime(["2021-03-01", "2021-03-09", "2021-03-31", "2021-04-02", "2021-04-30", "2022-01-15"])
    for granularity, expected, kept in [
        ("month", ["2021-03"] * 3 + ["2021-04"] * 2, 5),
        ("year", [2021] * 5, 5),
    ]:
        schema = schema_of(
            {
                "d": {
                    "kind": "datetime",
                    "min": dt.date(2020, 1, 1),
                    "max": dt.date(2022, 12, 31),
                    "hierarchy": {"granularity": granularity},
                },
                "v": VALUE,
            },
            qis=["d"],
        )
        table = pd.DataFrame({"d": dates, "v": range(6)})
        _only, _, rep_only = apply_disclosure_control(table, schema, DatasetPolicy(k=2, suppression="suppress"))
        assert rep_only.rows_suppressed == 6
        # one row of six may go: the declared level is then the least loss (the decade would keep it)
        out, released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=2, max_suppression=0.2))
        assert report.rows_suppressed == 1  # 2022-01-15 is alone in its month and its year
        assert out["d"].tolist() == expected and len(out) == kept
        released_is_described(out, released)
        if granularity == "month":
            assert released.columns["d"].values[0] == "2020-01" and released.columns["d"].values[-1] == "2022-12"
            assert len(released.columns["d"].values) == 36
        else:
            spec = released.columns["d"]
            assert (spec.kind, spec.min, spec.max, spec.is_integer) == ("ordinal", 2020, 2022, True)


def test_suppressing_a_few_rows_or_generalising_is_decided_by_the_suppression_limit():
    # grouping 'g' merges two singleton rows into one class of 2: at k = 3 only '*' spares them
    schema = schema_of(
        {
            "g": {**GROUP, "hierarchy": {"groups": {"ab": ["a", "b"]}}},
            "age": {"kind": "ordinal", "min": 17, "max": 90, "hierarchy": {"band": 10}},
        },
        qis=["g", "age"],
    )
    table = pd.DataFrame({"g": ["a", "b"] + ["c"] * 6, "age": [30, 30, 31, 32, 33, 34, 35, 36]})
    # 2 of 8 rows may go: banding age and suppressing the two singletons loses least
    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=3, max_suppression=0.25))
    assert list(report.generalisation) == ["age"] and report.rows_suppressed == 2
    assert out["g"].tolist() == ["c"] * 6 and out["age"].tolist() == ["30-39"] * 6
    assert released.columns["g"].kind == "categorical" and released.columns["g"].values == ["a", "b", "c", "d"]
    released_is_described(out, released)
    # none may go (10% of 8 rows is 0 rows): g is released as '*', age in bands of 10
    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=3))
    assert report.rows_suppressed == 0 and report.lattice["levels"] == {"g": 2, "age": 1}
    assert out["g"].tolist() == ["*"] * 8 and out["age"].tolist() == ["30-39"] * 8
    assert released.columns["g"].values == ["*"] and not released.columns["g"].nullable
    assert report.lattice["node"] == "g suppressed (*), age to bands of 10"
    released_is_described(out, released)


def test_the_suppression_limit_is_a_share_of_the_rows():
    table = pd.DataFrame({"age": [20, 21] + [40] * 98, "v": [1] * 100})
    schema = age_schema(band=5)
    # suppressing the two loses less than banding 100 rows, when the policy lets 2% go; not when only 1% may
    _, _, rep5 = apply_disclosure_control(table, schema, DatasetPolicy(k=2, max_suppression=0.05))
    _, _, rep1 = apply_disclosure_control(table, schema, DatasetPolicy(k=2, max_suppression=0.01))
    assert rep5.generalisation == {} and rep5.rows_suppressed == 2
    assert list(rep1.generalisation) == ["age"] and rep1.rows_suppressed == 0


def test_generalisation_is_idempotent_on_the_released_table():
    table = pd.DataFrame({"age": [20, 21, 22, 23, 24, 40, 41, 42, 43, 44, 90], "v": range(11)})
    out, released, _ = apply_disclosure_control(table, age_schema(band=5), DatasetPolicy(k=5))
    again, released2, report2 = apply_disclosure_control(out, released, DatasetPolicy(k=5))
    pd.testing.assert_frame_equal(again, out)
    assert released2 == released and report2.rows_suppressed == 0


def test_hierarchy_of_the_wrong_kind_is_refused_with_a_message():
    schema = schema_of({"g": {**GROUP, "hierarchy": {"band": 5}}, "v": VALUE}, qis=["g"])
    table = pd.DataFrame({"g": ["a"] * 3, "v": [1, 2, 3]})
    with pytest.raises(SchemaError, match="use groups"):
        apply_disclosure_control(table, schema, DatasetPolicy(k=2))


# ----------------------------------------------------------------------------------
# top/bottom coding and rounding
# ----------------------------------------------------------------------------------


def test_top_bottom_coding_and_rounding_exact():
    schema = schema_of(
        {
            "income": {
                "kind": "continuous",
                "min": 0,
                "max": 1_000_000,
                "top_code": 100_000,
                "bottom_code": 1000,
                "round_to": 1000,
                "nullable": True,
            },
        }
    )
    table = pd.DataFrame({"income": [0.0, 499.0, 500.0, 1499.0, 123_456.0, 99_999.5, np.nan, 5000.0]})
    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy())
    got = out["income"].tolist()
    assert got[:6] == [1000.0, 1000.0, 1000.0, 1000.0, 100_000.0, 100_000.0]
    assert np.isnan(got[6]) and got[7] == 5000.0
    assert report.coding["income"]["rounded"] == 5  # 499, 500, 1499, 123456, 99999.5 change; 0 and 5000 do not
    assert report.coding["income"]["top_coded"] == 1  # 123000 after rounding
    assert report.coding["income"]["bottom_coded"] == 2  # 0 and 0 (from 499) after rounding
    spec = released.columns["income"]
    assert (spec.min, spec.max) == (1000, 100_000)
    released_is_described(out, released)


def test_rounding_an_integer_column_keeps_it_integer_and_moves_its_bounds():
    schema = schema_of({"age": {"kind": "ordinal", "min": 17, "max": 90, "round_to": 5}})
    table = pd.DataFrame({"age": [17, 22, 23, 90, 88]})
    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy())
    assert out["age"].tolist() == [15, 20, 25, 90, 90]
    assert str(out["age"].dtype) == "Int64"
    assert (released.columns["age"].min, released.columns["age"].max) == (15, 90)
    assert report.coding["age"]["rounded"] == 4
    released_is_described(out, released)


def test_rounding_to_a_decimal_step_has_no_float_dust():
    schema = schema_of({"x": {"kind": "continuous", "min": 0, "max": 1, "round_to": 0.1}})
    out, _, _ = apply_disclosure_control(pd.DataFrame({"x": [0.14, 0.15, 0.25, 0.35, 0.96]}), schema, DatasetPolicy())
    assert out["x"].tolist() == [0.1, 0.2, 0.3, 0.4, 1.0]


def test_coding_before_generalisation_of_a_quasi_identifier():
    schema = schema_of(
        {"age": {"kind": "ordinal", "min": 17, "max": 90, "top_code": 80, "hierarchy": {"band": 10}}, "v": VALUE},
        qis=["age"],
    )
    table = pd.DataFrame({"age": [81, 85, 90, 80, 30, 31], "v": range(6)})
    out, released, report = apply_disclosure_control(table, schema, DatasetPolicy(k=2))
    assert report.coding["age"]["top_coded"] == 3
    # bands run to the coded maximum, the last one closed: 70..80 (80 meaning "80 and over")
    assert out["age"].tolist() == ["70-80"] * 4 + ["30-39"] * 2
    assert released.columns["age"].values[0] == "17-19" and released.columns["age"].values[-1] == "70-80"
    assert released.columns["age"].top_code is None
    released_is_described(out, released)


def test_coding_declared_on_a_category_is_refused():
    schema = schema_of({"g": {**GROUP, "top_code": 3}})
    with pytest.raises(SchemaError, match="numeric columns only"):
        apply_disclosure_control(pd.DataFrame({"g": ["a"]}), schema, DatasetPolicy())


# ----------------------------------------------------------------------------------
# small-cell rules
# ----------------------------------------------------------------------------------


def test_small_cell_rules_exact():
    table = pd.DataFrame(
        {
            "cell": ["a", "b", "c", "d", "e", "f", "g", "total"],
            "count": [3, 9.6, 10, 12, 12.5, 27, -2, 1076.1],
        }
    )
    out, report = apply_small_cell_rules(table, ["count"], threshold=10, rounding_base=5, label_columns=["cell"])
    assert out["count"].tolist() == [pd.NA, pd.NA, 10, 10, 15, 25, pd.NA, 1075]
    assert out["count_suppressed"].tolist() == [True, True, False, False, False, False, True, False]
    assert report.suppressed == {"count": 3}
    assert report.suppressed_after_rounding == {"count": 0}
    assert report.rounded == {"count": 4}  # 12, 12.5, 27, 1076.1
    assert report.min_published == 10
    assert out["cell"].tolist() == table["cell"].tolist()
    json.dumps(report.to_dict())


def test_a_cell_that_rounding_brings_under_the_threshold_is_suppressed():
    table = pd.DataFrame({"n": [10, 12, 13, 40]})
    out, report = apply_small_cell_rules(table, ["n"], threshold=11, rounding_base=5)
    # 10 < 11 suppressed; 12 rounds to 10 < 11 suppressed after rounding; 13 -> 15
    assert out["n"].tolist() == [pd.NA, pd.NA, 15, 40]
    assert report.suppressed == {"n": 1} and report.suppressed_after_rounding == {"n": 1}
    assert report.cells_suppressed == 2
    assert report.min_published == 15


def test_small_cell_rules_on_several_count_columns():
    table = pd.DataFrame({"men": [4, 50], "women": [30, 8]})
    out, report = apply_small_cell_rules(table, ["men", "women"], threshold=10, rounding_base=10)
    assert out["men"].tolist() == [pd.NA, 50] and out["women"].tolist() == [30, pd.NA]
    assert report.cells == 4 and report.cells_suppressed == 2


def test_a_suppressed_cell_is_suppressed_whole():
    table = pd.DataFrame(
        {
            "breakdown": ["sex"] * 4,
            "group": ["sex=F", "sex=M", "sex=X", "sex=(null)"],
            "column": ["age"] * 4,
            "count": [4, 120, 12, None],
            "nonnull_count": [4, 118, 8, None],
            "mean": [61.5, 38.2, 44.0, 50.0],
            "variance": [3.1, 170.0, 12.0, 1.0],
            "q0.5": ["2001-03-04", "1999-01-01", "1998-05-05", "2000-01-01"],  # dates are published as text
        }
    )
    out, report = apply_small_cell_rules(table, ["count", "nonnull_count"], threshold=10, rounding_base=5)
    assert out["count"].tolist() == [pd.NA, 120, 10, pd.NA]
    assert out["nonnull_count"].tolist() == [pd.NA, 120, pd.NA, pd.NA]
    # a cell with a small count (F), a small non-null count (X) or no count at all publishes no statistic
    for col in ("mean", "variance", "q0.5"):
        assert out[col].isna().tolist() == [True, False, True, True], col
    assert out.loc[1, "mean"] == 38.2 and out.loc[1, "q0.5"] == "1999-01-01"
    # the labels still say which cell was suppressed
    assert out["group"].tolist() == table["group"].tolist() and out["column"].tolist() == ["age"] * 4
    assert out["count_suppressed"].tolist() == [True, False, False, False]
    assert report.cells_suppressed == 2 + 1


def test_the_bins_of_a_suppressed_cell_are_withheld_with_it():
    table = pd.DataFrame(
        {
            "group": ["sex=F"] * 2 + ["sex=M"] * 2,
            "bin": ["[0, 50)", "[50, 100]"] * 2,
            "count": [11, 2, 60, 55],  # noise lifted one bin of the small cell F over the threshold
            "cell_count": [9, 9, 115, 115],  # the size of the cell each bin belongs to
        }
    )
    out, report = apply_small_cell_rules(table, ["count", "cell_count"], threshold=10, rounding_base=5)
    assert out["count"].tolist() == [pd.NA, pd.NA, 60, 55]
    assert out["cell_count"].tolist() == [pd.NA, pd.NA, 115, 115]
    assert out["count_suppressed"].tolist() == [True, True, False, False]
    assert report.suppressed_with_cell == {"count": 1}
    assert report.cells_suppressed == 1 + 1 + 2
    assert report.min_published == 55


def test_small_cell_rules_refuse_unknown_columns():
    with pytest.raises(SchemaError):
        apply_small_cell_rules(pd.DataFrame({"n": [1]}), ["count"], 10, 5)


def test_decimal_bands_put_values_on_a_boundary_in_the_upper_band():
    schema = schema_of({"x": {"kind": "continuous", "min": 0, "max": 1, "hierarchy": {"band": 0.1}}}, qis=["x"])
    table = pd.DataFrame({"x": [0.3, 0.3, 0.29, 0.29, 1.0, 0.95]})
    out, released, _ = apply_disclosure_control(table, schema, DatasetPolicy(k=2))
    assert out["x"].tolist() == ["[0.3, 0.4)", "[0.3, 0.4)", "[0.2, 0.3)", "[0.2, 0.3)", "[0.9, 1]", "[0.9, 1]"]
    assert len(released.columns["x"].values) == 10
