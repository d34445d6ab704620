"""Suggested roles of a proposed schema (quasi-identifiers, sensitive columns, target, hierarchies, flags) on the
real tables and on small frames, and the proposal's fixes: free text by length and cardinality, empty columns,
datetimes with times of day."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from privacy.generalise import column_levels
from privacy.schema import (
    Hierarchy,
    PublicSchema,
    apply_suggestions,
    conform_table,
    load_schema,
    propose_schema,
    read_table,
    suggest_roles,
)
from tests.conftest import ADULT, PENGUINS_RAW, PUMS

COMPAS = ADULT.parent.parent / "compas" / "compas.csv"


def _suggest(df: pd.DataFrame) -> tuple[PublicSchema, dict]:
    schema = propose_schema(df)
    return schema, suggest_roles(df, schema)


def _columns(entries: list[dict]) -> list[str]:
    return [e["column"] for e in entries]


@pytest.fixture(scope="module")
def adult() -> tuple[PublicSchema, dict]:
    return _suggest(read_table(ADULT))


@pytest.fixture(scope="module")
def compas() -> tuple[PublicSchema, dict]:
    return _suggest(read_table(COMPAS))


def test_adult_suggests_its_demographics_as_quasi_identifiers_and_income_as_target(adult) -> None:
    _schema, sug = adult
    qis = _columns(sug["quasi_identifiers"])
    assert {"age", "sex", "race", "native-country"} <= set(qis)
    assert not {"fnlwgt", "hours-per-week", "income", "workclass"} & set(qis)
    assert sug["target"]["column"] == "income" and "two-valued" in sug["target"]["reason"]
    assert "income" in _columns(sug["sensitive"])
    reasons = {q["column"]: q["reason"] for q in sug["quasi_identifiers"]}
    assert reasons["age"] == "name looks like an age" and "geography" in reasons["native-country"]
    assert sug["hierarchies"]["age"] == {"band": 10.0}  # adult's proposed bounds 15-95: bands of ten years
    regions = sug["hierarchies"]["native-country"]["groups"]
    assert regions["Northern America"] == ["Canada", "United-States"]
    assert {"England", "Holand-Netherlands", "Yugoslavia"} <= set(regions["Europe"]) and "Hong" in regions["Asia"]
    partial = [
        f["message"] for f in sug["flags"] if f == {**f, "column": "native-country", "issue": "partial_hierarchy"}
    ]
    assert len(partial) == 1 and "'South'" in partial[0]  # ambiguous: left for the steward to place


def test_compas_suggests_birth_date_demographics_and_event_dates(compas) -> None:
    _schema, sug = compas
    qis = _columns(sug["quasi_identifiers"])
    assert {"dob", "sex", "race", "age", "c_jail_in", "c_jail_out"} <= set(qis)
    assert "id" not in qis and "priors_count" not in qis
    assert sug["hierarchies"]["dob"] == {"granularity": "year"}
    assert sug["hierarchies"]["c_jail_in"] == {"granularity": "month"}
    assert sug["target"]["column"] == "two_year_recid"
    assert "priors_count" in _columns(sug["sensitive"])
    assert {"column": "id", "issue": "identifier"} in [{k: f[k] for k in ("column", "issue")} for f in sug["flags"]]


def test_pums_suggests_age_sex_race_and_no_target_for_a_numeric_income() -> None:
    _schema, sug = _suggest(read_table(PUMS))
    assert _columns(sug["quasi_identifiers"]) == ["age", "sex", "race"]
    assert _columns(sug["sensitive"]) == ["income"]
    assert sug["target"] is None  # income is continuous; nothing two-valued is named like an outcome


@pytest.mark.parametrize("path", [ADULT, COMPAS, PUMS, PENGUINS_RAW], ids=["adult", "compas", "pums", "penguins"])
def test_every_suggested_quasi_identifier_has_a_hierarchy_the_schema_accepts_or_a_flag(path) -> None:
    df = read_table(path)
    schema, sug = _suggest(df)
    json.dumps(sug)  # stored as JSON with the dataset
    assert set(sug) == {"quasi_identifiers", "sensitive", "target", "hierarchies", "flags"}
    no_hierarchy = {f["column"] for f in sug["flags"] if f["issue"] == "no_hierarchy"}
    for q in sug["quasi_identifiers"]:
        name = q["column"]
        assert q["reason"] and not schema.columns[name].is_dropped
        if name in no_hierarchy:
            assert name not in sug["hierarchies"]
            continue
        h = Hierarchy.model_validate(sug["hierarchies"][name])
        spec = schema.columns[name].model_copy(update={"hierarchy": h})
        levels = column_levels(name, spec, df[name])  # the generaliser takes it as declared
        assert any(level is not None and level.get("declared") for level in levels), name
    for f in sug["flags"]:
        assert set(f) == {"column", "issue", "message"} and f["message"]
    accepted = apply_suggestions(schema, sug)
    again = load_schema(accepted.to_yaml())
    assert again.quasi_identifiers == _columns(sug["quasi_identifiers"])
    assert again.sensitive == _columns(sug["sensitive"])
    assert again.target == (sug["target"] or {}).get("column")
    for name in sug["hierarchies"]:
        assert again.columns[name].hierarchy == Hierarchy.model_validate(sug["hierarchies"][name])
        # bands and groups are derived from learned bounds or values; a granularity from the name alone
        assert ("hierarchy" in again.columns[name].learned) == ("granularity" not in sug["hierarchies"][name])


@pytest.mark.parametrize(
    "name,reason",
    [
        ("DOB", "date of birth"),
        ("birth_date", "date of birth"),
        ("DateOfBirth", "date of birth"),
        ("patient_age", "age"),
        ("Gender", "sex or gender"),
        ("ethnicity", "race or ethnicity"),
        ("zip_code", "ZIP or postal code"),
        ("Postcode", "ZIP or postal code"),
        ("county_fips", "geography"),
        ("admission_date", "date of an event"),
        ("discharge_dt", "date of an event"),
    ],
)
def test_names_common_in_hospital_and_bank_exports(name: str, reason: str) -> None:
    df = pd.DataFrame({name: ["a", "b", "c", "d"] * 10, "other": range(40)})
    _schema, sug = _suggest(df)
    assert _columns(sug["quasi_identifiers"]) == [name]
    assert reason in sug["quasi_identifiers"][0]["reason"]


def test_words_containing_age_or_date_are_not_taken_for_them() -> None:
    df = pd.DataFrame({"mileage": range(40), "page": range(40), "usage_kwh": range(40), "stage": ["I", "II"] * 20})
    _schema, sug = _suggest(df)
    assert sug["quasi_identifiers"] == [] and sug["target"] is None


def test_sensitive_columns_and_an_outcome_target() -> None:
    n = 60
    df = pd.DataFrame(
        {
            "icd10_code": ["E11", "I10", "J45"] * (n // 3),
            "medication": ["metformin", "none"] * (n // 2),
            "balance": range(n),
            "readmitted": [0, 1, 1] * (n // 3),
            "severity": [1, 2, 3, 4] * (n // 4),
        }
    )
    _schema, sug = _suggest(df)
    assert _columns(sug["sensitive"]) == ["icd10_code", "medication", "balance", "readmitted"]
    assert sug["target"] == {
        "column": "readmitted",
        "reason": "a two-valued column whose name looks like an outcome to predict",
    }


def test_zip_codes_are_grouped_by_prefix_and_geography_codes_by_state() -> None:
    zips = ["02139", "02138", "02142", "10001", "10003", "94103"] * 10
    fips = [25017, 25025, 36061, 36047, 6075, 6037] * 10  # county FIPS codes as numbers
    df = pd.DataFrame({"zip": zips, "county_fips": pd.Series(fips).astype(str).str.zfill(5), "x": range(60)})
    _schema, sug = _suggest(df)
    assert sug["hierarchies"]["zip"] == {
        "groups": {"021**": ["02138", "02139", "02142"], "100**": ["10001", "10003"], "941**": ["94103"]}
    }
    assert sug["hierarchies"]["county_fips"]["groups"] == {
        "06***": ["06037", "06075"],
        "25***": ["25017", "25025"],
        "36***": ["36047", "36061"],
    }
    numeric = pd.DataFrame({"zipcode": [2139, 10001, 94103, 60601] * 10, "x": range(40)})
    schema, sug = _suggest(numeric)
    assert schema.columns["zipcode"].kind in ("ordinal", "continuous")
    assert sug["hierarchies"]["zipcode"] == {"band": 100.0}  # the 3-digit prefixes of 5-digit ZIPs
    assert [f["issue"] for f in sug["flags"] if f["column"] == "zipcode"] == ["code_as_number"]


def test_us_states_are_grouped_by_census_region_by_code_or_name() -> None:
    df = pd.DataFrame(
        {"state": ["MA", "NY", "TX", "CA", "WA", "OH"] * 5, "State Name": ["Texas", "Ohio", "Florida"] * 10}
    )
    _schema, sug = _suggest(df)
    assert sug["hierarchies"]["state"]["groups"] == {
        "Northeast": ["MA", "NY"],
        "South": ["TX"],
        "West": ["CA", "WA"],
        "Midwest": ["OH"],
    }
    assert sug["hierarchies"]["State Name"]["groups"] == {"Midwest": ["Ohio"], "South": ["Florida", "Texas"]}
    assert not [f for f in sug["flags"] if f["issue"] in ("partial_hierarchy", "no_hierarchy")]


def test_codes_that_do_not_fit_stay_ungrouped_and_flagged_and_one_group_of_all_is_no_hierarchy() -> None:
    df = pd.DataFrame({"zip": ["02139", "02138", "10001", "10003", "unknown"] * 8, "x": range(40)})
    _schema, sug = _suggest(df)
    assert sug["hierarchies"]["zip"]["groups"] == {"021**": ["02138", "02139"], "100**": ["10001", "10003"]}
    [partial] = [f for f in sug["flags"] if f["issue"] == "partial_hierarchy"]
    assert partial["column"] == "zip" and "1 value(s) in no group ('unknown')" in partial["message"]
    one = pd.DataFrame({"zip": ["02139", "02138", "02142"] * 8, "x": range(24)})
    _schema, sug = _suggest(one)
    assert "zip" not in sug["hierarchies"]  # a single group of every value would be `*` itself
    assert [f["issue"] for f in sug["flags"] if f["column"] == "zip"] == ["no_hierarchy"]


def test_uk_postcodes_are_grouped_by_outward_code() -> None:
    df = pd.DataFrame({"postcode": ["SW1A 1AA", "SW1A 2AB", "EC1A 1BB", "EC1A 7BE", "M1 1AE"] * 8, "x": range(40)})
    _schema, sug = _suggest(df)
    assert sug["hierarchies"]["postcode"]["groups"] == {
        "EC1A *": ["EC1A 1BB", "EC1A 7BE"],
        "M1 *": ["M1 1AE"],
        "SW1A *": ["SW1A 1AA", "SW1A 2AB"],
    }


def test_direct_identifiers_and_dates_not_read_as_dates_are_flagged() -> None:
    df = pd.DataFrame(
        {
            "patient_name": ["Ann Lee", "Bo Chan", "Cy Diaz"] * 7,
            "admission_date": ["03/15/2020", "04/01/2020", "05/02/2021"] * 7,
            "x": range(21),
        }
    )
    _schema, sug = _suggest(df)
    issues = {(f["column"], f["issue"]) for f in sug["flags"]}
    assert ("patient_name", "identifier") in issues and ("admission_date", "not_datetime") in issues


# ----------------------------------------------------------------------------------
# the proposal
# ----------------------------------------------------------------------------------

CHARGES = [f"Battery on Law Enforcement Officer {i:02d}" for i in range(80)]  # 37 characters


def test_charge_descriptions_are_free_text_however_the_column_is_named() -> None:
    n = 200
    df = pd.DataFrame(
        {
            "c_charge_desc": [CHARGES[i % 80] for i in range(n)],  # 80 distinct descriptions
            "distinct_desc": [f"Possession of Cocaine count {i:03d}" for i in range(n)],  # every one different
            "c_charge_degree": ["F", "M"] * (n // 2),
            "species": ["Adelie Penguin (Pygoscelis adeliae)", "Gentoo penguin (Pygoscelis papua)"] * (n // 2),
        }
    )
    schema, sug = _suggest(df)
    assert schema.columns["c_charge_desc"].kind == "text" and schema.columns["c_charge_desc"].values is None
    assert schema.columns["distinct_desc"].kind == "text"  # unique, but sentences rather than ids
    assert schema.columns["c_charge_degree"].kind == "categorical"
    # long labels with few distinct values are categories, not free text
    assert schema.columns["species"].kind == "categorical" and len(schema.columns["species"].values or []) == 2
    assert not any(c in schema.to_yaml() for c in CHARGES)  # no real text in the proposal
    flagged = {f["column"] for f in sug["flags"] if f["issue"] == "free_text"}
    assert flagged == {"c_charge_desc", "distinct_desc"}
    assert "c_charge_desc" not in _columns(sug["sensitive"])  # a dropped column takes no role


def test_an_empty_column_is_dropped_and_flagged_not_declared_categorical() -> None:
    df = pd.DataFrame({"age": range(18, 58), "unused": [None] * 40})
    schema, sug = _suggest(df)
    spec = schema.columns["unused"]
    assert spec.kind == "text" and spec.values is None and spec.nullable and spec.is_dropped
    assert spec.learned == ["kind", "nullable"]
    assert "(empty)" not in schema.to_yaml()
    assert [f["issue"] for f in sug["flags"] if f["column"] == "unused"] == ["empty"]
    out, report = conform_table(df, load_schema(schema.to_yaml()))
    assert list(out.columns) == ["age"] and report.dropped_columns == ["unused"]


def test_a_table_of_nothing_but_ids_and_empty_columns_is_refused_with_what_to_do() -> None:
    from privacy.errors import SchemaError

    with pytest.raises(SchemaError, match="give a schema that declares the columns to release"):
        propose_schema(pd.DataFrame({"id": [f"P{i:03d}" for i in range(30)], "unused": [None] * 30}))


def test_a_datetime_with_times_of_day_keeps_its_time_through_yaml_and_conformance() -> None:
    times = pd.date_range("2013-01-01 06:03:42", periods=100, freq="83h").astype(str).tolist()
    times[-1] = "2014-12-31 22:41:07"  # on the last day of the last year, late in the evening
    df = pd.DataFrame({"c_jail_in": times, "dob": ["1980-02-03", "1975-12-31"] * 50})
    schema = propose_schema(df)
    jail = schema.columns["c_jail_in"]
    assert jail.kind == "datetime"
    assert isinstance(jail.max, dt.datetime) and jail.max == dt.datetime(2014, 12, 31, 23, 59, 59)
    dob = schema.columns["dob"]  # dates only: whole days stay dates
    assert type(dob.min) is dt.date and type(dob.max) is dt.date and dob.max == dt.date(1980, 12, 31)
    again = load_schema(schema.to_yaml())
    assert again.columns["c_jail_in"].max == jail.max
    out, report = conform_table(df, again)
    assert "c_jail_in" not in report.clipped
    assert out["c_jail_in"].tolist() == pd.to_datetime(pd.Series(times)).tolist()
    assert out["c_jail_in"].iloc[-1] == pd.Timestamp("2014-12-31 22:41:07")


def test_a_learned_hierarchy_reads_as_words_in_the_privacy_statement():
    from privacy._statement_sections import _not_covered
    from privacy.schema import PublicSchema

    schema = PublicSchema.from_dict(
        {
            "columns": {
                "age": {
                    "kind": "ordinal",
                    "min": 17,
                    "max": 90,
                    "integer": True,
                    "hierarchy": {"band": 10},
                    "learned": ["min", "max", "hierarchy"],
                },
                "region": {
                    "kind": "categorical",
                    "values": ["a", "b", "c"],
                    "hierarchy": {"groups": {"ab": ["a", "b"], "c": ["c"]}},
                    "learned": ["values", "hierarchy"],
                },
            },
            "quasi_identifiers": ["age", "region"],
        }
    )
    text = "\n".join(_not_covered(schema, "dp"))
    assert "hierarchy bands of 10" in text
    assert "hierarchy groups ab: a, b; c: c" in text
    assert "edges=None" not in text and "granularity=" not in text


def test_synthetic_datetimes_keep_times_of_day_when_the_schema_declares_them():
    import numpy as np
    import pandas as pd

    from privacy.encoding import DomainEncoder
    from privacy.schema import PublicSchema

    def decoded(schema_max):
        schema = PublicSchema.from_dict(
            {"columns": {"t": {"kind": "datetime", "min": "2020-01-01T00:00:00", "max": schema_max}}}
        )
        enc = DomainEncoder(schema)
        real = pd.DataFrame(
            {"t": pd.to_datetime(["2020-03-01 08:15:00", "2020-06-02 17:45:30", "2020-09-09 23:10:00"])}
        )
        return enc.decode(enc.encode(real), np.random.default_rng(0))["t"]

    with_times = decoded("2020-12-31T23:59:59")
    assert (with_times.dt.normalize() != with_times).all()  # times of day, drawn inside each bin
    assert (with_times >= pd.Timestamp("2020-01-01")).all() and (with_times <= pd.Timestamp("2021-01-01")).all()
    dates_only = decoded("2020-12-31")
    assert (dates_only.dt.normalize() == dates_only).all()  # a date-bounded column stays in whole days
