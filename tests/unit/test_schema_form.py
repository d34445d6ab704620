"""The per-column schema editor's logic (webapp/pages/schema_form.py): a posted form becomes the schema
document confirm_schema checks, what the editor does not show is kept, suggestions apply only when
accepted, and every error lands in the row of the column it names."""

from __future__ import annotations

import pytest

from privacy.schema import PublicSchema
from webapp.pages.schema_form import (
    EditorState,
    hierarchy_text,
    parse_hierarchy,
    place_message,
    rows_from_schema,
    schema_from_form,
    values_text,
)

DOC = {
    "columns": {
        "age": {"kind": "ordinal", "min": 17, "max": 90, "learned": ["min", "max"]},
        "sex": {"kind": "categorical", "values": ["Female", "Male"], "nullable": True},
        "grade": {"kind": "categorical", "values": [1, 2, 3]},
        "income": {"kind": "continuous", "min": 0, "max": 100000, "integer": True, "top_code": 90000},
        "joined": {"kind": "datetime", "min": "2000-01-01", "max": "2020-12-31"},
        "id": {"kind": "identifier", "identifier": "fake"},
    },
    "quasi_identifiers": ["sex", "age"],
    "target": "income",
    "null_tokens": ["N"],
    "constraints": [{"inequality": {"low": "age", "high": "income"}}],
}

SUGGESTIONS = {
    "quasi_identifiers": [{"column": "joined", "reason": "a date narrows a person down"}],
    "sensitive": [{"column": "grade", "reason": "grades are personal"}],
    "target": None,
    "hierarchies": {"joined": {"granularity": "month"}, "age": {"band": 10}},
    "flags": [
        {"column": "id", "issue": "identifier", "message": "id looks like a direct identifier"},
        {"column": None, "issue": "rows", "message": "few rows"},
    ],
}


def posted(doc=DOC, suggestions=None, **changes):
    """The form a browser posts for `doc` unchanged, with `changes` ({'col-0-kind': ...}) applied."""
    state = rows_from_schema(doc, suggestions)
    form = {"constraints": state.constraints}
    for r in state.rows:
        p = f"col-{r.index}-"
        form |= {p + "name": r.name, p + "kind": r.kind, p + "role": r.role, p + "min": r.min, p + "max": r.max}
        form |= {p + "values": r.values, p + "hierarchy": r.hierarchy}
        if r.nullable:
            form[p + "nullable"] = "y"
    for key, value in changes.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    return form


def row(state: EditorState, name: str):
    return next(r for r in state.rows if r.name == name)


def test_an_unchanged_form_gives_back_the_same_schema():
    schema, state = schema_from_form(posted(), DOC)
    assert not state.has_errors
    assert PublicSchema.model_validate(schema).to_dict() == PublicSchema.model_validate(DOC).to_dict()


def test_rows_show_each_column_as_text():
    state = rows_from_schema(DOC)
    assert [r.name for r in state.rows] == list(DOC["columns"])
    age, sex, grade = row(state, "age"), row(state, "sex"), row(state, "grade")
    assert (age.kind, age.min, age.max, age.role, age.learned) == (
        "ordinal",
        "17",
        "90",
        "quasi-identifier",
        ["min", "max"],
    )
    assert (sex.values, sex.nullable, grade.values) == ("Female, Male", True, "1, 2, 3")
    assert row(state, "income").role == "target" and row(state, "id").role == ""
    assert "inequality" in state.constraints
    assert not any(r.has_suggestion for r in state.rows)  # no suggestions unless given


def test_edits_change_kind_role_bounds_values_hierarchy_and_keep_the_rest():
    form = posted(
        **{
            "col-0-min": "18",  # age: a bound changed is no longer learned; the other stays learned
            "col-0-hierarchy": "band 5",
            "col-1-values": "Female\nMale\nOther",
            "col-1-nullable": None,
            "col-2-kind": "ordinal",  # grade: categorical -> ordinal, its values keep their type
            "col-2-role": "sensitive",
            "col-3-hierarchy": "edges 0, 20000, 50000",
            "col-4-role": "quasi-identifier",
            "col-4-hierarchy": "granularity: year",
        }
    )
    schema, state = schema_from_form(form, DOC)
    assert not state.has_errors, [(r.name, r.errors) for r in state.rows]
    cols = schema["columns"]
    assert cols["age"] == {"kind": "ordinal", "min": 18, "max": 90, "learned": ["max"], "hierarchy": {"band": 5}}
    assert cols["sex"] == {"kind": "categorical", "values": ["Female", "Male", "Other"]}
    assert cols["grade"] == {"kind": "ordinal", "values": [1, 2, 3]}
    assert cols["income"]["integer"] is True and cols["income"]["top_code"] == 90000  # not in the editor: kept
    assert cols["income"]["hierarchy"] == {"edges": [0, 20000, 50000]}
    assert cols["joined"]["hierarchy"] == {"granularity": "year"}
    assert cols["id"] == {"kind": "identifier", "identifier": "fake"}
    assert schema["quasi_identifiers"] == ["sex", "age", "joined"]  # the listed order kept, new ones after
    assert schema["sensitive"] == ["grade"] and schema["target"] == "income" and schema["null_tokens"] == ["N"]
    PublicSchema.model_validate(schema)


def test_a_changed_kind_drops_what_no_longer_fits():
    schema, state = schema_from_form(
        posted(**{"col-3-kind": "categorical", "col-3-values": "low, high", "constraints": ""}), DOC
    )
    assert not state.has_errors
    assert schema["columns"]["income"] == {"kind": "categorical", "values": ["low", "high"]}


def test_bad_text_is_reported_in_its_row_with_the_typed_values_kept():
    form = posted(
        **{
            "col-0-min": "seventeen",
            "col-1-hierarchy": "band 10",
            "col-3-max": "-5",
            "col-4-role": "target",
            "col-5-kind": "whatever",
        }
    )
    schema, state = schema_from_form(form, DOC)
    assert schema is None
    assert "min must be a number" in row(state, "age").errors[0] and row(state, "age").min == "seventeen"
    assert "band/edges apply to ordinal or continuous" in row(state, "sex").errors[0]
    assert "only one column can be the target" in " ".join(row(state, "income").errors)
    assert "only one column can be the target" in " ".join(row(state, "joined").errors)
    assert "kind must be one of" in row(state, "id").errors[0] and row(state, "id").kind == "whatever"
    assert row(state, "grade").errors == [] and state.errors == []


def test_model_errors_are_placed_by_column():
    # max below min is the schema model's rule: its error goes to that column's row only
    schema, state = schema_from_form(posted(**{"col-3-min": "500", "col-3-max": "100"}), DOC)
    assert schema is None
    assert "min (500) is above max (100)" in row(state, "income").errors[0]
    assert all(r.errors == [] for r in state.rows if r.name != "income") and state.errors == []


def test_constraint_errors_go_next_to_the_constraints():
    schema, state = schema_from_form(posted(constraints="- age <= nowhere\n"), DOC)
    assert schema is None and "nowhere" in " ".join(state.constraint_errors)
    assert all(r.errors == [] for r in state.rows)
    schema, state = schema_from_form(posted(constraints="{not: [a list"), DOC)
    assert schema is None and "not valid YAML" in state.constraint_errors[0]
    schema, state = schema_from_form(posted(constraints=""), DOC)
    assert schema is not None and "constraints" not in schema


def test_suggestions_are_shown_and_applied_only_when_accepted():
    state = rows_from_schema(DOC, SUGGESTIONS)
    joined = row(state, "joined")
    assert (joined.suggested_role, joined.suggested_reason) == ("quasi-identifier", "a date narrows a person down")
    assert joined.suggested_hierarchy == "month" and row(state, "age").suggested_hierarchy == "band 10"
    assert row(state, "grade").suggested_role == "sensitive"
    assert row(state, "id").warnings == ["id looks like a direct identifier"] and state.warnings == ["few rows"]

    schema, _ = schema_from_form(posted(suggestions=SUGGESTIONS), DOC, SUGGESTIONS)
    assert "joined" not in schema["quasi_identifiers"] and "hierarchy" not in schema["columns"]["joined"]
    assert schema["sensitive"] == []

    schema, state = schema_from_form(posted(suggestions=SUGGESTIONS, **{"col-4-accept": "y"}), DOC, SUGGESTIONS)
    assert not state.has_errors
    assert schema["quasi_identifiers"] == ["sex", "age", "joined"]
    assert schema["columns"]["joined"]["hierarchy"] == {"granularity": "month"}
    assert schema["sensitive"] == [] and "hierarchy" not in schema["columns"]["age"]
    # an accept box without a suggestion behind it does nothing
    schema, _ = schema_from_form(posted(**{"col-4-accept": "y"}), DOC)
    assert "joined" not in schema["quasi_identifiers"]


def test_a_form_for_other_columns_is_refused_whole():
    schema, state = schema_from_form(posted(**{"col-0-name": "age2"}), DOC)
    assert schema is None and "reload" in state.errors[0]


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("band 10", "ordinal", {"band": 10}),
        ("band: 2.5", "continuous", {"band": 2.5}),
        ("edges 0,18,65", "ordinal", {"edges": [0, 18, 65]}),
        ("edges 0, 18 65", "continuous", {"edges": [0, 18, 65]}),
        ("month", "datetime", {"granularity": "month"}),
        ("granularity year", "datetime", {"granularity": "year"}),
        ("young: 18-25, 26-35; old: 66+", "categorical", {"groups": {"young": ["18-25", "26-35"], "old": ["66+"]}}),
        ("groups a: x\nb: y, z", "categorical", {"groups": {"a": ["x"], "b": ["y", "z"]}}),
        ("", "ordinal", None),
    ],
)
def test_hierarchy_text(text, kind, expected):
    assert parse_hierarchy(text, kind) == expected
    if expected is not None:
        assert parse_hierarchy(hierarchy_text(expected), kind) == expected


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("band ten", "ordinal", "must be a number"),
        ("band 0", "ordinal", "above 0"),
        ("month", "ordinal", "applies to datetime"),
        ("a: x", "continuous", "groups apply to categorical"),
        ("whatever", "categorical", "cannot read the hierarchy"),
    ],
)
def test_hierarchy_text_refused(text, kind, message):
    with pytest.raises(ValueError, match=message):
        parse_hierarchy(text, kind)


def test_an_ordinal_with_listed_values_is_grouped_not_banded():
    assert parse_hierarchy("low: 1, 2; high: 3", "ordinal", with_values=True) == {
        "groups": {"low": ["1", "2"], "high": ["3"]}
    }
    with pytest.raises(ValueError, match="use groups"):
        parse_hierarchy("band 2", "ordinal", with_values=True)


def test_values_text_uses_lines_when_a_value_has_a_comma():
    assert values_text(["a", "b"]) == "a, b"
    assert values_text(["1,000-2,000", "other"]) == "1,000-2,000\nother"


def test_table_errors_are_split_into_their_columns():
    state = rows_from_schema(DOC)
    place_message(
        "the table does not fit the schema: column 'age' is declared ordinal but 3 value(s) are not numbers "
        "(e.g. 'x'); declare it categorical or fix the values; column 'extra' is in the table but not in the "
        "schema; declare it (kind: identifier or text to drop it); version 2 stays in force",
        state,
    )
    assert row(state, "age").errors == [
        "column 'age' is declared ordinal but 3 value(s) are not numbers (e.g. 'x'); declare it categorical or "
        "fix the values"
    ]
    assert len(state.errors) == 1
    assert "column 'extra' is in the table" in state.errors[0] and "version 2 stays in force" in state.errors[0]
    assert state.errors[0].startswith("the table does not fit the schema: ")


def test_a_message_about_no_column_goes_to_the_top():
    state = rows_from_schema(DOC)
    place_message("the schema was changed since you opened it: version 3 was confirmed", state)
    assert state.errors == ["the schema was changed since you opened it: version 3 was confirmed"]
    assert all(r.errors == [] for r in state.rows)


def test_an_error_of_the_whole_schema_goes_to_the_column_it_names():
    # a role on a dropped column is refused by the schema model as a whole; the message names the column
    schema, state = schema_from_form(posted(**{"col-5-role": "quasi-identifier"}), DOC)
    assert schema is None
    assert "quasi_identifiers names 'id', which is an identifier column" in row(state, "id").errors[0]
    assert state.errors == [] and all(r.errors == [] for r in state.rows if r.name != "id")
