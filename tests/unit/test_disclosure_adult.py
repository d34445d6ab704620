"""Disclosure control on adult with its six quasi-identifiers at k = 5.

Two inputs: a `dp-marginals` synthetic table at epsilon 1, and, as a worst
case, the real training rows themselves. After control no class below 5 may
remain, generalisation must cost fewer rows than suppression alone, and the
released schema must describe the released table.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from privacy.budget import PrivacyCost
from privacy.disclosure import apply_disclosure_control, class_sizes, real_row_checks
from privacy.gate import evaluate_gate
from privacy.policy import DatasetPolicy
from privacy.schema import conform_table, load_schema, validate_table
from privacy.synthesizers import create_synthesizer
from tests.conftest import DATA

QIS = ["age", "sex", "race", "marital-status", "education", "native-country"]


@pytest.fixture(scope="module")
def adult_schema():
    schema = load_schema(DATA / "adult" / "schema.yaml")
    assert schema.quasi_identifiers == QIS
    return schema


@pytest.fixture(scope="module")
def adult_train(adult_df, adult_schema) -> pd.DataFrame:
    table, _ = conform_table(adult_df, adult_schema)
    order = np.random.default_rng(2026).permutation(len(table))
    return table.iloc[order[: int(0.8 * len(table))]].reset_index(drop=True)


@pytest.fixture(scope="module")
def adult_marginals(adult_train, adult_schema) -> pd.DataFrame:
    synth = create_synthesizer("dp-marginals", seed=11)
    synth.fit(adult_train, adult_schema, PrivacyCost(1))
    return synth.sample(len(adult_train))


@pytest.mark.parametrize("source", ["dp-marginals", "real-train"])
def test_adult_at_k5_leaves_no_class_below_5(source, adult_marginals, adult_train, adult_schema):
    table = adult_marginals if source == "dp-marginals" else adult_train
    policy = DatasetPolicy(k=5)

    before = class_sizes(table, QIS)
    assert (before < 5).sum() > 0  # the six QIs make rare combinations in both inputs

    out, released, report = apply_disclosure_control(table, adult_schema, policy)
    assert class_sizes(out, QIS).min() >= 5
    assert report.k_anonymity["smallest_class"] >= 5
    assert report.k_anonymity["share_rows_below_k"] == 0.0
    assert report.rows_out == len(out) == len(table) - report.rows_suppressed
    assert report.k_anonymity_before["rows_in_classes_below_k"] == int((before < 5).sum())

    # generalisation costs fewer rows than suppression alone
    only, _, report_only = apply_disclosure_control(table, adult_schema, DatasetPolicy(k=5, suppression="suppress"))
    assert class_sizes(only, QIS).min() >= 5
    assert report_only.rows_suppressed == int((before < 5).sum())
    assert report.rows_suppressed < report_only.rows_suppressed
    assert "age" in report.generalisation  # the band is the most helpful hierarchy on adult
    assert released.columns["age"].values[0] == "17-19"

    # the released schema describes the released table
    assert validate_table(out, released) == []
    assert set(out["age"].dropna()) <= set(released.columns["age"].values)

    # l-diversity of income is measured on the released classes
    assert report.l_diversity["income"]["smallest_l"] in (1, 2)

    gate = evaluate_gate(policy, disclosure=report)
    assert gate.check("k_anonymity").status == "pass"
    json.dumps(report.to_dict())
    print(
        f"\n{source}: {report.rows_in} rows, generalised {list(report.generalisation)}, "
        f"suppressed {report.rows_suppressed} ({report.suppression['share_rows_suppressed']:.2%}); "
        f"suppression only: {report_only.rows_suppressed} ({report_only.suppression['share_rows_suppressed']:.2%})"
    )


def test_adult_real_rows_checked_against_themselves(adult_train, adult_schema):
    """Worst case: releasing the training rows. Every released row is an exact copy; after k = 5
    suppression none can reproduce a combination unique in the real data."""
    policy = DatasetPolicy(k=5)
    out, _, report = apply_disclosure_control(adult_train, adult_schema, policy)
    _, real = real_row_checks(out, adult_train, adult_schema, policy, disclosure=report)
    assert real.exact_match_rate == 1.0
    assert real.unique_matches == 0
    gate = evaluate_gate(policy, disclosure=report, real_checks=real)
    assert gate.check("exact_match_rate").status == "fail"
    assert gate.blocks_approval
