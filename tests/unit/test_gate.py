"""The release gate: statuses at, below, above and within the warn margin of each threshold."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from privacy.disclosure import apply_disclosure_control, apply_small_cell_rules, real_row_checks
from privacy.gate import CHECK_NAMES, GateResult, evaluate_gate
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema

POLICY = DatasetPolicy(
    k=5,
    l=2,
    max_exact_match_rate=0.05,
    max_unique_match_rate=0.01,
    max_membership_auc=0.6,
    min_utility_ratio=0.7,
    min_fidelity=0.6,
    small_cell_threshold=10,
    warn_margin=0.1,
)


def disclosure(smallest_class: int | None, smallest_l: int | None = None, rows: int = 100) -> dict:
    """A disclosure report as the worker stores it (plain dict)."""
    report = {
        "quasi_identifiers": ["age"],
        "rows_in": rows,
        "rows_out": rows,
        "suppression": {"rows_suppressed": 0},
        "k_anonymity": {"applicable": True, "rows": rows, "smallest_class": smallest_class},
        "l_diversity": {},
    }
    if smallest_l is not None:
        report["l_diversity"] = {"disease": {"smallest_l": smallest_l, "share_classes_below_l": 0.0}}
    return report


def real(exact: float, unique: float | None) -> dict:
    return {
        "released_exact_match_rate": exact,
        "released_unique_match_rate": unique,
        "unique_match_rate": unique,
        "filtering_applied": False,
    }


# (check, keyword builder, value -> expected status) for each rule of POLICY
CASES = {
    # maximum 0.6, margin 0.06: (0.54, 0.6] warns
    "membership_auc": (
        lambda v: {"membership_auc": v},
        [(0.61, "fail"), (0.6, "warn"), (0.57, "warn"), (0.53, "pass"), (0.5, "pass")],
    ),
    # minimum 0.7, margin 0.07: [0.7, 0.77) warns
    "utility_ratio": (
        lambda v: {"utility_ratio": v},
        [(0.69, "fail"), (0.7, "warn"), (0.75, "warn"), (0.78, "pass"), (1.0, "pass")],
    ),
    "fidelity": (lambda v: {"fidelity": v}, [(0.59, "fail"), (0.6, "warn"), (0.65, "warn"), (0.67, "pass")]),
    # maximum 0.05, margin 0.005: (0.045, 0.05] warns
    "exact_match_rate": (
        lambda v: {"real_checks": real(v, 0.0)},
        [(0.051, "fail"), (0.05, "warn"), (0.047, "warn"), (0.04, "pass"), (0.0, "pass")],
    ),
    "unique_match_rate": (
        lambda v: {"real_checks": real(0.0, v)},
        [(0.02, "fail"), (0.01, "warn"), (0.0095, "warn"), (0.005, "pass")],
    ),
    # whole units: floor(0.1 * 5) = 0, no warn zone
    "k_anonymity": (lambda v: {"disclosure": disclosure(v)}, [(4, "fail"), (5, "pass"), (6, "pass")]),
    "l_diversity": (lambda v: {"disclosure": disclosure(5, v)}, [(1, "fail"), (2, "pass"), (3, "pass")]),
    # whole units: floor(0.1 * 10) = 1, so 10 warns
    "small_cells": (
        lambda v: {"small_cells": {"min_published": v, "cells": 4, "cells_suppressed": 0}},
        [(9, "fail"), (10, "warn"), (11, "pass"), (500, "pass")],
    ),
}


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [(name, v, s) for name, (_, cases) in CASES.items() for v, s in cases],
)
def test_each_rule_at_below_above_and_within_the_margin(check, value, expected):
    build, _ = CASES[check]
    kwargs = {"disclosure": None, **build(value)}
    result = evaluate_gate(POLICY, **kwargs)
    got = result.check(check)
    assert got.status == expected, got.message
    assert got.value == pytest.approx(value)
    assert result.overall == expected
    assert result.blocks_approval == (expected == "fail")


def test_whole_unit_margins_for_a_larger_k_and_l():
    policy = DatasetPolicy(k=20, l=10, warn_margin=0.2)
    statuses = {
        v: evaluate_gate(policy, disclosure=disclosure(v)).check("k_anonymity").status for v in (19, 20, 23, 24, 30)
    }
    assert statuses == {19: "fail", 20: "warn", 23: "warn", 24: "pass", 30: "pass"}
    l_statuses = {
        v: evaluate_gate(policy, disclosure=disclosure(30, v)).check("l_diversity").status for v in (9, 10, 11, 12)
    }
    assert l_statuses == {9: "fail", 10: "warn", 11: "warn", 12: "pass"}


def test_a_zero_threshold_has_no_warn_zone():
    policy = DatasetPolicy(max_exact_match_rate=0.0)
    assert evaluate_gate(policy, disclosure=None, real_checks=real(0.0, 0.0)).check("exact_match_rate").status == "pass"
    assert (
        evaluate_gate(policy, disclosure=None, real_checks=real(1e-6, 0.0)).check("exact_match_rate").status == "fail"
    )


def test_no_margin_no_warning():
    policy = DatasetPolicy(min_fidelity=0.6, warn_margin=0.0)
    assert evaluate_gate(policy, disclosure=None, fidelity=0.6).check("fidelity").status == "pass"


def test_figures_not_computed_are_not_run_and_do_not_decide():
    result = evaluate_gate(POLICY, disclosure=None, membership_auc=float("nan"))
    assert [c.name for c in result.checks] == list(CHECK_NAMES)
    assert all(c.status == "not_run" for c in result.checks)
    assert result.overall == "pass" and not result.blocks_approval
    assert "not computed" in result.check("membership_auc").message


def test_l_not_set_and_no_quasi_identifiers_are_not_run():
    policy = DatasetPolicy(l=None)
    assert evaluate_gate(policy, disclosure=disclosure(5, 1)).check("l_diversity").status == "not_run"
    no_qi = {"quasi_identifiers": [], "k_anonymity": {"applicable": False}, "l_diversity": {}}
    assert evaluate_gate(policy, disclosure=no_qi).check("k_anonymity").status == "not_run"


def test_an_empty_release_fails_k_anonymity_with_advice():
    check = evaluate_gate(POLICY, disclosure=disclosure(None, rows=0)).check("k_anonymity")
    assert check.status == "fail" and "lower k" in check.message


def test_overall_fail_beats_warn_beats_pass():
    assert evaluate_gate(POLICY, disclosure=None, fidelity=0.9, utility_ratio=0.9).overall == "pass"
    mixed = evaluate_gate(POLICY, disclosure=None, fidelity=0.61, utility_ratio=0.9)
    assert mixed.overall == "warn" and mixed.warned == ["fidelity"] and not mixed.blocks_approval
    failing = evaluate_gate(POLICY, disclosure=None, fidelity=0.61, utility_ratio=0.5, membership_auc=0.99)
    assert failing.overall == "fail" and failing.failed == ["membership_auc", "utility_ratio"]
    assert failing.blocks_approval


def test_json_round_trip_and_public_form():
    result = evaluate_gate(
        POLICY,
        disclosure=disclosure(7, 3),
        real_checks=real(0.0, 0.004),
        membership_auc=0.5731,
        utility_ratio=0.9,
        fidelity=0.8,
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert GateResult.from_dict(data) == result
    public = json.dumps(result.to_dict(include_internal=False))
    assert "0.5731" not in public and "0.004" not in public
    pub = json.loads(public)
    assert {c["name"]: c["status"] for c in pub["checks"]}["membership_auc"] == "withheld"
    assert {c["name"]: c["value"] for c in pub["checks"]}["k_anonymity"] == 7
    assert pub["overall_public"] == "pass"


def test_gate_reads_the_reports_made_by_the_disclosure_functions():
    schema = PublicSchema.from_dict(
        {
            "columns": {
                "g": {"kind": "categorical", "values": ["a", "b", "c"]},
                "s": {"kind": "categorical", "values": ["x", "y"]},
            },
            "quasi_identifiers": ["g"],
            "sensitive": ["s"],
        }
    )
    synth = pd.DataFrame({"g": ["a"] * 5 + ["b"] * 6 + ["c"], "s": ["x"] * 5 + ["x", "y"] * 3 + ["x"]})
    realrows = pd.DataFrame({"g": ["a", "b", "c"], "s": ["x", "y", "y"]})
    released, _, dis = apply_disclosure_control(synth, schema, POLICY)
    out, rc = real_row_checks(released, realrows, schema, POLICY, disclosure=dis)
    result = evaluate_gate(POLICY, disclosure=dis, real_checks=rc)
    assert (
        result.check("k_anonymity").status == "pass"
        and "1 of 12 rows suppressed" in result.check("k_anonymity").message
    )
    assert result.check("l_diversity").status == "fail" and "'s'" in result.check("l_diversity").message
    # rows equal to real rows ('a','x') and ('b','y'): 8 of 11
    assert result.check("exact_match_rate").value == pytest.approx(8 / 11)
    assert result.check("exact_match_rate").status == "fail"
    # every real (g) combination is unique in the real rows: all 11 released rows reproduce one
    assert result.check("unique_match_rate").value == pytest.approx(1.0)

    _, cells = apply_small_cell_rules(pd.DataFrame({"n": [3, 40]}), ["n"], 10, 5)
    assert evaluate_gate(POLICY, disclosure=None, small_cells=cells).check("small_cells").status == "pass"

    # with removal, k and l are read from the table after filtering
    filt = POLICY.model_copy(update={"remove_real_matches": True})
    out, rc2 = real_row_checks(released, realrows, schema, filt, disclosure=dis)
    assert len(out) == 0
    after = evaluate_gate(filt, disclosure=dis, real_checks=rc2)
    assert after.check("k_anonymity").status == "fail"  # nothing left to release
    assert after.check("exact_match_rate").value == 0.0
    assert not math.isnan(after.check("unique_match_rate").value)


def test_unique_match_limit_rises_to_the_holdout_baseline():
    """Fresh real people match unique training combinations at some rate; a release matching no more
    often is not blamed, and one matching more still fails."""

    policy = DatasetPolicy(max_unique_match_rate=0.01, warn_margin=0.1)
    real = {"unique_match_rate": 0.05, "released_unique_match_rate": 0.05, "released_exact_match_rate": 0.0}
    plain = evaluate_gate(policy, disclosure=None, real_checks=real)
    assert plain.check("unique_match_rate").status == "fail"
    with_baseline = evaluate_gate(policy, disclosure=None, real_checks=real, unique_match_baseline=0.08)
    check = with_baseline.check("unique_match_rate")
    assert check.status == "pass" and check.threshold == 0.08 and "holdout baseline" in check.message
    above = evaluate_gate(
        policy, disclosure=None, real_checks={**real, "released_unique_match_rate": 0.09}, unique_match_baseline=0.08
    )
    assert above.check("unique_match_rate").status == "fail"
    # a baseline below the policy's maximum changes nothing
    low = evaluate_gate(policy, disclosure=None, real_checks=real, unique_match_baseline=0.001)
    assert low.check("unique_match_rate").threshold == 0.01


@pytest.mark.parametrize(
    "table,released,baseline,rows",
    [
        # figures measured on the categorical columns of the test tables (MST at epsilon 1; holdout baseline)
        ("adult", 0.5627, 0.6678, 2000),
        ("pums", 0.8613, 0.9308, 200),
    ],
)
def test_exact_match_limit_rises_to_the_holdout_baseline(table, released, baseline, rows):
    """Where columns are coarse most fresh people equal a training row: a DP release matching no more
    often than they do passes without an override; a copy of the training rows still fails."""
    policy = DatasetPolicy()  # max_exact_match_rate 0
    real = {"released_exact_match_rate": released, "released_unique_match_rate": None}
    assert evaluate_gate(policy, disclosure=None, real_checks=real).check("exact_match_rate").status == "fail"
    gate = evaluate_gate(policy, disclosure=None, real_checks=real, exact_match_baseline=(baseline, rows))
    check = gate.check("exact_match_rate")
    wald = baseline + 2 * math.sqrt(baseline * (1 - baseline) / rows)
    assert check.status == "pass" and baseline < check.threshold < wald + 0.01, check  # Wilson, close to Wald here
    assert "holdout baseline" in check.message
    copy = evaluate_gate(
        policy,
        disclosure=None,
        real_checks={**real, "released_exact_match_rate": 1.0},
        exact_match_baseline=(baseline, rows),
    )
    assert copy.check("exact_match_rate").status == "fail"


def test_a_holdout_without_matches_bounds_the_rate_by_its_size():
    """No match among 69 held-out penguins does not show the rate is 0: Wilson's bound is 5.5%. On a large
    holdout the bound is near 0, and a release of copies fails either way."""
    policy = DatasetPolicy()
    real = {"released_exact_match_rate": 0.03, "released_unique_match_rate": 0.03}
    small = evaluate_gate(
        policy, disclosure=None, real_checks=real, exact_match_baseline=(0.0, 69), unique_match_baseline=(0.0, 69)
    )
    for name in ("exact_match_rate", "unique_match_rate"):
        assert small.check(name).status == "pass" and small.check(name).threshold == pytest.approx(0.0548, abs=1e-3)
    large = evaluate_gate(policy, disclosure=None, real_checks=real, exact_match_baseline=(0.0, 20000))
    assert large.check("exact_match_rate").status == "fail" and large.check("exact_match_rate").threshold < 0.001
    copies = evaluate_gate(
        policy, disclosure=None, real_checks={**real, "released_exact_match_rate": 1.0}, exact_match_baseline=(0.0, 69)
    )
    assert copies.check("exact_match_rate").status == "fail"


def test_mst_on_coarse_adult_columns_passes_and_a_copy_fails():
    """On adult's categorical columns (a census-like table where combinations repeat), a DP release
    passes the exact-match check without an override; the training rows themselves fail it."""
    from fractions import Fraction

    from evaluation.split import split_holdout
    from privacy.budget import PrivacyCost
    from privacy.disclosure import recode_like
    from privacy.schema import conform_table, load_schema, read_table
    from privacy.synthesizers import create_synthesizer
    from tests.conftest import ADULT

    schema = load_schema(ADULT.parent / "schema.yaml")
    cats = [c for c, spec in schema.columns.items() if spec.values is not None]
    schema = schema.subset(cats).model_copy(update={"quasi_identifiers": [], "sensitive": []})
    table, _ = conform_table(read_table(ADULT)[cats].sample(5000, random_state=0), schema)
    train, test, _ = split_holdout(table, schema, seed=1)
    policy = DatasetPolicy()
    synth = create_synthesizer("mst", seed=2)
    synth.fit(train, schema, PrivacyCost(1, Fraction(1, 10**6)))
    outcomes = {}
    for name, rows in (("mst", synth.sample(len(train))), ("copy", train.reset_index(drop=True))):
        released, _, dis = apply_disclosure_control(rows, schema, policy)
        _, real = real_row_checks(released, train, schema, policy, disclosure=dis)
        _, base = real_row_checks(recode_like(test, dis), train, schema, policy, disclosure=dis)
        gate = evaluate_gate(
            policy, disclosure=dis, real_checks=real, exact_match_baseline=(base.exact_match_rate, base.rows_checked)
        )
        outcomes[name] = (real.exact_match_rate, base.exact_match_rate, gate.check("exact_match_rate").status)
    assert outcomes["mst"][0] > 0.3 and outcomes["mst"][2] == "pass", outcomes  # many matches, as fresh rows have
    assert outcomes["copy"][0] == 1.0 and outcomes["copy"][2] == "fail", outcomes


def test_a_rebalanced_release_is_judged_on_its_class_aware_figures():
    """With `class_aware`, the fidelity and utility checks judge the class-wise fidelity and the minority-class F1
    ratio under the same thresholds, and their messages name the figure judged and the one it replaces."""
    marginal = {"fidelity": 0.55, "utility_ratio": 0.65}  # both below POLICY's minima
    plain = evaluate_gate(POLICY, disclosure=None, **marginal)
    assert plain.check("fidelity").status == plain.check("utility_ratio").status == "fail"
    aware = {"target": "income", "minority_classes": [">50K"], "fidelity": 0.9, "utility_ratio": 0.95}
    result = evaluate_gate(POLICY, disclosure=None, **marginal, class_aware=aware)
    fid, util = result.check("fidelity"), result.check("utility_ratio")
    assert (fid.status, fid.value, fid.threshold) == ("pass", 0.9, POLICY.min_fidelity)
    assert (util.status, util.value, util.threshold) == ("pass", 0.95, POLICY.min_utility_ratio)
    assert "class-wise fidelity score" in fid.message and "'income'" in fid.message
    assert "marginal fidelity score (0.55, for information)" in fid.message
    assert "minority-class F1 ratio" in util.message and "'>50K'" in util.message and "0.65" in util.message
    assert fid.internal and util.internal
    # the same thresholds, the same margins: a poor class-aware figure fails, a missing one is not run
    bad = evaluate_gate(
        POLICY,
        disclosure=None,
        fidelity=0.9,
        utility_ratio=0.9,
        class_aware={**aware, "fidelity": 0.5, "utility_ratio": None},
    )
    assert bad.check("fidelity").status == "fail" and bad.check("utility_ratio").status == "not_run"
    # a leaking target still turns a passing ratio into a warning
    leak = evaluate_gate(POLICY, disclosure=None, class_aware=aware, utility_leakage="the target is a copy")
    assert leak.check("utility_ratio").status == "warn" and "not meaningful" in leak.check("utility_ratio").message
    assert GateResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
