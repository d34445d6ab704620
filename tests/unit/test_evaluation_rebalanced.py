"""A rebalanced release judged class by class: adult's training rows oversampled with SMOTE (the `smote`
method), a good rebalancing and two broken ones, through the report and the gate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evaluation import Report, build_report, split_holdout
from privacy.budget import PrivacyCost
from privacy.gate import evaluate_gate
from privacy.policy import DatasetPolicy
from privacy.schema import conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from tests.conftest import DATA

SECTIONS = {"fidelity", "utility"}
# a steward strict about fidelity: nine tenths of a perfect score, a narrow warn zone
STRICT = DatasetPolicy(min_fidelity=0.9, min_utility_ratio=0.8, warn_margin=0.05)


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> dict[str, object]:
    """6,000 training rows and 1,500 holdout rows of adult (income: about 24% >50K)."""
    schema = load_schema(DATA / "adult" / "schema.yaml")
    df = conform_table(adult_df, schema)[0].sample(7500, random_state=0).reset_index(drop=True)
    train, holdout, _ = split_holdout(df, schema, target="income", seed=1)
    return {"schema": schema, "train": train, "holdout": holdout}


@pytest.fixture(scope="module")
def releases(adult: dict) -> dict[str, pd.DataFrame]:
    """The SMOTE-balanced training rows, and two broken rebalancings of them."""
    smote = create_synthesizer("smote", seed=5)
    smote.fit(adult["train"], adult["schema"], PrivacyCost.non_dp())
    good = smote.balanced_table
    features = [c for c in good.columns if c != "income"]
    # labels flipped: every row claims the other class
    flipped = good.assign(income=good["income"].map({">50K": "<=50K", "<=50K": ">50K"}))
    # the new minority rows carry the features of real majority rows: the labels say >50K, the rows do not
    added = np.arange(len(adult["train"]), len(good))
    majority = adult["train"][adult["train"]["income"] == "<=50K"]
    wrong = good.copy()
    wrong.loc[added, features] = majority.sample(len(added), replace=True, random_state=1)[features].to_numpy()
    return {"good": good, "flipped": flipped, "majority_features": wrong}


@pytest.fixture(scope="module")
def reports(adult: dict, releases: dict) -> dict[str, Report]:
    return {
        name: build_report(
            adult["train"],
            adult["holdout"],
            rel,
            adult["schema"],
            "income",
            seed=3,
            include=SECTIONS,
            rebalanced_target="income",
        )
        for name, rel in releases.items()
    }


def gates(report: Report, policy: DatasetPolicy) -> tuple[dict[str, str], dict[str, str]]:
    """(old, new) statuses of the fidelity and utility checks: the marginal figures, and the class-aware ones."""
    s = report.summary
    old = evaluate_gate(policy, disclosure=None, fidelity=s["fidelity_score"], utility_ratio=s["utility_ratio"])
    new = evaluate_gate(
        policy,
        disclosure=None,
        fidelity=s["fidelity_score"],
        utility_ratio=s["utility_ratio"],
        class_aware=report.class_aware,
    )
    return (
        {c: old.check(c).status for c in ("fidelity", "utility_ratio")},
        {c: new.check(c).status for c in ("fidelity", "utility_ratio")},
    )


def test_the_class_section_reports_shares_fidelity_within_each_class_and_minority_scores(reports, adult) -> None:
    report = reports["good"]
    section = report.sections["classes"]
    assert section.status == "computed" and section.visibility == "internal"
    d = section.data
    assert d["majority_class"] == "<=50K" and d["minority_classes"] == [">50K"]
    shares = {c["class"]: c for c in d["classes"]}
    real_share = (adult["train"]["income"] == ">50K").mean()
    assert shares[">50K"]["real_share"] == pytest.approx(real_share) and real_share < 0.3
    assert shares[">50K"]["released_share"] == pytest.approx(0.5)  # SMOTE raised the minority to the majority
    # the real rows of each class are in the release: within each class it is as faithful as the holdout or more
    for c in d["classes"]:
        assert c["fidelity_score"] >= c["holdout_reference"] - 0.02, c
    assert d["classwise_fidelity_score"] == pytest.approx(np.mean([c["fidelity_score"] for c in d["classes"]]))
    # the marginal score counts the class shares moved by design; the class-wise one does not
    assert report.summary["fidelity_score"] < d["classwise_fidelity_score"] - 0.05
    # the minority scores come from the utility section's models: the same minority F1
    u, util = d["utility"], report.sections["utility"].data
    primary = util["models"][util["primary_model"]]
    assert u["models"][util["primary_model"]]["tstr"]["minority_f1"] == pytest.approx(primary["tstr"]["minority_f1"])
    assert u["minority_f1_ratio"] == pytest.approx(u["tstr_minority_f1"] / u["trtr_minority_f1"])
    # trained on balanced rows, the model finds more of the minority class than the one trained on real rows
    assert u["tstr_minority_recall"] > u["trtr_minority_recall"]
    assert report.summary["minority_f1_ratio"] == u["minority_f1_ratio"]
    assert report.summary["classwise_fidelity_score"] == d["classwise_fidelity_score"]


def test_a_good_rebalanced_release_passes_without_override_and_the_old_way_fails_it(reports) -> None:
    report = reports["good"]
    old, new = gates(report, DatasetPolicy())
    assert new == {"fidelity": "pass", "utility_ratio": "pass"}
    # the report's own checks judge the same figures and say which
    checks = {c.name: c for c in report.checks}
    assert checks["fidelity"].value == report.summary["classwise_fidelity_score"]
    assert checks["utility_ratio"].value == report.summary["minority_f1_ratio"]
    assert "class-wise fidelity" in checks["fidelity"].message and "rebalanced" in checks["fidelity"].message
    assert "minority-class F1" in checks["utility_ratio"].message
    # under a steward's stricter fidelity minimum, the marginal score fails the same release
    old, new = gates(report, STRICT)
    assert old["fidelity"] in ("fail", "warn") and new["fidelity"] == "pass", (old, new)
    assert new["utility_ratio"] == "pass"


def test_a_broken_rebalancing_fails_class_by_class(reports) -> None:
    good = reports["good"].summary
    # flipped labels: the rows of each class look like the other class, and the minority is not found
    flipped = reports["flipped"].summary
    assert flipped["classwise_fidelity_score"] < good["classwise_fidelity_score"] - 0.2
    assert gates(reports["flipped"], DatasetPolicy())[1]["utility_ratio"] == "fail"
    assert gates(reports["flipped"], STRICT)[1] == {"fidelity": "fail", "utility_ratio": "fail"}
    # minority rows with majority features: the marginals look more like the real ones than a good rebalancing's
    # do, so the old way ranks it above the good release; within the minority class it is far off
    wrong = reports["majority_features"]
    assert wrong.summary["fidelity_score"] > good["fidelity_score"]
    assert wrong.summary["classwise_fidelity_score"] < good["classwise_fidelity_score"]
    minority = {c["class"]: c["fidelity_score"] for c in wrong.sections["classes"].data["classes"]}
    good_minority = {c["class"]: c["fidelity_score"] for c in reports["good"].sections["classes"].data["classes"]}
    assert minority[">50K"] < good_minority[">50K"] - 0.1
    old, new = gates(wrong, STRICT)
    assert new["fidelity"] == "fail" and old["fidelity"] != "fail", (old, new)


def test_the_class_section_is_internal_and_rendered_for_the_steward_only(reports) -> None:
    report = reports["good"]
    internal, public = report.to_dict(include_internal=True), report.to_dict(include_internal=False)
    assert "classes" in internal["sections"] and "classes" not in public["sections"]
    assert "classes" in public["withheld_sections"]
    assert set(public["summary"]) == {"synthetic_rows", "synthetic_columns"}
    text = json.dumps(internal, allow_nan=False)
    assert '"_predictions"' not in text
    html_internal, html_public = report.to_html(include_internal=True), report.to_html(include_internal=False)
    assert "Class by class" in html_internal and "minority-class F1 ratio" in html_internal
    assert "Class by class" not in html_public and "minority-class F1" not in html_public
    assert report.class_aware == {
        "target": "income",
        "minority_classes": [">50K"],
        "fidelity": report.summary["classwise_fidelity_score"],
        "utility_ratio": report.summary["minority_f1_ratio"],
    }


def test_a_release_that_was_not_rebalanced_has_no_class_section_and_the_usual_checks(adult) -> None:
    report = build_report(
        adult["train"],
        adult["holdout"],
        adult["train"].reset_index(drop=True),
        adult["schema"],
        "income",
        include={"fidelity"},
        thresholds={"min_fidelity": 0.6},
    )
    assert "classes" not in report.sections and report.class_aware is None
    assert report.summary["rebalanced_target"] is None and report.summary["classwise_fidelity_score"] is None
    check = next(c for c in report.checks if c.name == "fidelity")
    assert check.value == report.summary["fidelity_score"] and check.label == "fidelity score"
