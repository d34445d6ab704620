"""Settings of a re-run of post-processing (privacy/postprocessing.py) and what its statement says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privacy.errors import PostprocessSettingError
from privacy.policy import DatasetPolicy
from privacy.postprocessing import POLICY_FIELDS, apply_settings, rows_subset
from privacy.schema import PublicSchema
from privacy.statement import privacy_statement

ROOT = Path(__file__).resolve().parents[2]
ADULT = PublicSchema.from_text((ROOT / "tests/data/adult/schema.yaml").read_text())
POLICY = DatasetPolicy.from_dict({"k": 5, "min_fidelity": 0.5})


def test_no_settings_keep_the_original_ones():
    chosen = apply_settings(ADULT, POLICY, {}, 300)
    assert chosen.schema == ADULT and chosen.policy == POLICY and chosen.rows == 300
    assert chosen.describe()["k"] == 5 and chosen.describe()["rows"] == 300
    assert chosen.describe()["columns"]["age"] == {"hierarchy": {"band": 5.0}}


def test_k_suppression_rows_and_coding_change_and_nothing_else():
    chosen = apply_settings(
        ADULT,
        POLICY,
        {
            "policy": {"k": 12, "suppression": "suppress"},
            "schema": {
                "columns": {"age": {"hierarchy": {"band": 10}, "top_code": 80}, "education": {"hierarchy": None}}
            },
            "rows": 120,
        },
        300,
    )
    assert chosen.policy.k == 12 and chosen.policy.suppression == "suppress"
    assert chosen.policy.min_fidelity == POLICY.min_fidelity  # the gate's thresholds are the policy's
    assert chosen.schema.columns["age"].hierarchy.band == 10 and chosen.schema.columns["age"].top_code == 80
    assert chosen.schema.columns["education"].hierarchy is None
    assert chosen.schema.columns["age"].min == ADULT.columns["age"].min  # what was sampled is unchanged
    assert chosen.schema.quasi_identifiers == ADULT.quasi_identifiers
    assert chosen.rows == 120
    described = chosen.describe()
    assert described["k"] == 12 and described["suppression"] == "suppress" and described["rows"] == 120
    assert described["columns"]["age"] == {"hierarchy": {"band": 10.0}, "top_code": 80.0}
    assert "education" not in described["columns"]


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"policy": {"k": 0}}, "policy", "k"),
        ({"policy": {"k": "many"}}, "policy", "k"),
        ({"policy": {"suppression": "delete"}}, "policy", "suppression"),
        ({"policy": {"min_fidelity": 0.1}}, "policy", "min_fidelity"),
        ({"policy": {"privacy": "allow-non-dp"}}, "policy", "privacy"),
        ({"policy": ["k", 3]}, "policy", "mapping"),
        ({"rows": 301}, "rows", "301"),
        ({"rows": 0}, "rows", "at least 1"),
        ({"rows": 2.5}, "rows", "whole number"),
        ({"rows": True}, "rows", "whole number"),
        ({"schema": {"columns": {"height": {"top_code": 3}}}}, "schema", "unknown column 'height'"),
        ({"schema": {"columns": {"age": {"max": 60}}}}, "schema", "'max'"),
        ({"schema": {"columns": {"age": {"kind": "continuous"}}}}, "schema", "'kind'"),
        ({"schema": {"columns": {"age": {"hierarchy": {"band": -1}}}}}, "schema", "age"),
        ({"schema": {"quasi_identifiers": ["age"]}}, "schema", "columns"),
        ({"seed": 3}, "seed", "unknown setting"),
    ],
)
def test_bad_settings_are_refused_with_the_field_and_what_to_change(settings, field, words):
    with pytest.raises(PostprocessSettingError) as err:
        apply_settings(ADULT, POLICY, settings, 300)
    assert err.value.field == field
    assert words in err.value.message
    assert err.value.status == 400


def test_policy_fields_are_those_of_the_policy_model():
    assert {"k", "l", "suppression", "remove_real_matches"} <= set(POLICY_FIELDS)
    assert set(POLICY_FIELDS) <= set(DatasetPolicy.model_fields)


def test_rows_subset_is_seeded_ordered_and_without_replacement():
    sample = pd.DataFrame({"i": np.arange(1000)})
    a, b = rows_subset(sample, 250, seed=7), rows_subset(sample, 250, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 250 and a["i"].is_unique and a["i"].is_monotonic_increasing
    assert not rows_subset(sample, 250, seed=8)["i"].equals(a["i"])
    pd.testing.assert_frame_equal(rows_subset(sample, 1000, seed=7), sample)


def test_the_statement_names_the_candidate_its_settings_and_the_count():
    chosen = apply_settings(ADULT, POLICY, {"policy": {"k": 12}, "rows": 120}, 300)
    text = privacy_statement(
        method={"name": "mst", "guarantee": "dp", "zcdp": True},
        cost={"epsilon": "1", "delta": "0"},
        schema=ADULT,
        release={
            "id": 3,
            "dataset": "adult",
            "postprocessing": {"candidate": 2, "candidates": 3, "settings": chosen.describe()},
        },
    )
    assert "candidate 2 (re-run 2) of 3 candidates" in text
    assert "no privacy cost" in text
    assert "- **k**: 12" in text and "- **rows**: 120" in text
    plain = privacy_statement(
        method={"name": "mst", "guarantee": "dp"}, cost={"epsilon": "1", "delta": "0"}, schema=ADULT, release={"id": 3}
    )
    assert "candidate" not in plain
