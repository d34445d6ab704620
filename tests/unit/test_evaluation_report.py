"""The report as the steward and the analyst see it: figures, public/internal split, rendering."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from evaluation import EvaluationLimits, Report, build_report, judge, split_holdout
from privacy.budget import PrivacyCost
from privacy.schema import PublicSchema, conform_table, load_schema
from privacy.synthesizers import create_synthesizer
from tests.conftest import DATA

THRESHOLDS = {
    "min_fidelity": 0.6,
    "min_utility_ratio": 0.7,
    "max_membership_auc": 0.6,
    "max_exact_match_rate": 0.0,
    "warn_margin": 0.1,
}
NO_PLOTS = {"fidelity", "utility", "privacy"}


@pytest.fixture(scope="module")
def adult(adult_df: pd.DataFrame) -> dict[str, object]:
    """6,000 training rows, 1,500 holdout rows and 6,000 other real rows of adult."""
    schema = load_schema(DATA / "adult" / "schema.yaml")
    df = conform_table(adult_df, schema)[0].sample(13_500, random_state=0).reset_index(drop=True)
    train, holdout, _ = split_holdout(df.iloc[:7500], schema, seed=0)
    return {"schema": schema, "train": train, "holdout": holdout, "other": df.iloc[7500:].reset_index(drop=True)}


@pytest.fixture(scope="module")
def copy_report(adult: dict) -> Report:
    return build_report(
        adult["train"],
        adult["holdout"],
        adult["train"].reset_index(drop=True),
        adult["schema"],
        thresholds=THRESHOLDS,
        include=NO_PLOTS,
    )


@pytest.fixture(scope="module")
def independent_report(adult: dict) -> Report:
    return build_report(
        adult["train"], adult["holdout"], adult["other"], adult["schema"], thresholds=THRESHOLDS, include=NO_PLOTS
    )


@pytest.fixture(scope="module")
def marginals_report(adult: dict) -> Report:
    synth = create_synthesizer("dp-marginals", seed=5)
    synth.fit(adult["train"], adult["schema"], PrivacyCost(1, 1e-6))
    synthetic = synth.sample(len(adult["train"]))
    return build_report(
        adult["train"], adult["holdout"], synthetic, adult["schema"], thresholds=THRESHOLDS, include=NO_PLOTS
    )


def check(report: Report, name: str) -> str:
    return next(c.status for c in report.checks if c.name == name)


# ------------------------------------------------------------------------------ what the figures say


def test_a_copy_of_the_training_rows_is_perfectly_faithful_and_flagged_as_exposed(copy_report: Report) -> None:
    s = copy_report.summary
    assert all(sec.status == "computed" for sec in copy_report.sections.values())
    assert s["fidelity_score"] == pytest.approx(1.0)
    assert s["sdmetrics_quality"] > 0.98
    assert s["utility_ratio"] == pytest.approx(1.0)
    assert s["exact_match_rate"] == pytest.approx(1.0)
    assert s["exact_match_rate_holdout"] < 0.01
    # equal-size reference samples: a full copy lands at h/t + (1 - h/t) / 2 = 0.625 for a 20% holdout
    assert s["dcr_share_closer_to_train"] > 0.58
    assert s["dcr_p5_train"] == 0.0 < s["dcr_p5_holdout"]
    assert s["membership_auc_distance"] > 0.95
    assert check(copy_report, "fidelity") == "pass"
    assert check(copy_report, "exact_match_rate") == "fail"
    assert check(copy_report, "membership_auc") == "fail"
    assert copy_report.overall_status == "fail"


def test_rows_the_generator_never_saw_look_like_a_fresh_sample(independent_report: Report) -> None:
    s = independent_report.summary
    assert 0.45 < s["dcr_share_closer_to_train"] < 0.55
    assert s["membership_auc"] < 0.58
    assert abs(s["exact_match_rate"] - s["exact_match_rate_holdout"]) < 0.01
    # an independent sample is as faithful as the real holdout (the sampling-noise reference)
    assert s["fidelity_score"] == pytest.approx(s["fidelity_score_holdout_reference"], abs=0.02)
    assert 0.97 < s["fidelity_score"] < 1.0
    assert s["utility_ratio"] > 0.85
    assert check(independent_report, "membership_auc") == "pass"


def test_independent_marginals_keep_columns_and_lose_relationships(
    marginals_report: Report, independent_report: Report
) -> None:
    m, ind = marginals_report.summary, independent_report.summary
    fid = marginals_report.sections["fidelity"].data
    categorical = [c for c in fid["columns"].values() if c["kind"] == "categorical"]
    # category counts are kept (numbers are smeared inside the method's bins, e.g. capital-gain's zeros)
    assert max(c["metrics"]["tv_distance"]["value"] for c in categorical) < 0.05
    assert m["mean_two_way_tvd"] > 3 * ind["mean_two_way_tvd"]
    assert m["fidelity_score"] < ind["fidelity_score"] - 0.1
    # education and education-num say the same thing; independent columns cannot
    assert fid["cramers_v"]["max_abs_difference"] > 0.8
    # no relationship to learn: the ratio is 0 up to chance (a slope fitted on noise, e.g. a 0.03 correlation of
    # capital-gain with the label in one sample, ranks real rows by a truly predictive column: one sample gave 0.37,
    # another -0.01); a method that keeps relationships scores 0.8-1
    assert m["utility_ratio"] < 0.5
    assert check(marginals_report, "utility_ratio") == "fail"
    assert m["exact_match_rate"] == 0.0


def test_utility_reports_both_models_and_the_minority_class(copy_report: Report) -> None:
    u = copy_report.sections["utility"].data
    assert u["task"] == "classification" and u["positive_class"] == ">50K"
    for model in ("linear", "hist_gradient_boosting"):
        r = u["models"][model]
        for setting in ("tstr", "trtr"):
            assert 0.5 < r[setting]["roc_auc"] <= 1.0
            assert 0.0 <= r[setting]["minority_f1"] <= 1.0
            assert 0.0 <= r[setting]["balanced_accuracy"] <= 1.0
        assert r["gap"]["roc_auc"] == pytest.approx(0.0)
        assert r["importance_rank_agreement"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------ public vs internal


def test_public_rendering_holds_public_sections_and_public_figures_only(independent_report: Report) -> None:
    public = independent_report.to_dict(include_internal=False)
    internal = independent_report.to_dict(include_internal=True)
    assert public["schema_version"] == internal["schema_version"] == "5"
    assert public["audience"] == "public" and internal["audience"] == "internal"
    assert set(public["sections"]) == {"synthetic"}
    assert set(public["withheld_sections"]) == {"fidelity", "utility", "privacy"}
    assert set(public["summary"]) == {"synthetic_rows", "synthetic_columns"}
    assert all(c["status"] == "withheld" and "value" not in c for c in public["checks"])
    assert {"fidelity", "utility", "privacy"} <= set(internal["sections"])
    assert internal["summary"]["membership_auc"] is not None
    for doc in (public, internal):
        json.dumps(doc, allow_nan=False)


def _canary_tables() -> tuple[PublicSchema, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Penguins with an open island domain and open bill-length bounds; real rows carry canaries."""
    base = load_schema(DATA / "penguins" / "schema.yaml").to_dict()
    base["columns"]["island"] = {"kind": "categorical"}
    base["columns"]["bill_length_mm"] = {"kind": "continuous", "nullable": True}
    schema = PublicSchema.from_dict(base)
    df = conform_table(pd.read_csv(DATA / "penguins" / "penguins.csv"), schema)[0]
    real = df.iloc[:250].copy()
    real.loc[real.index[:5], "island"] = "ZZCANARYISLAND"
    real.loc[real.index[5:10], "bill_length_mm"] = 987654.321
    train, holdout, _ = split_holdout(real, schema, seed=0)
    synthetic = df.iloc[250:].reset_index(drop=True)
    return schema, train, holdout, synthetic


def test_no_value_from_a_real_row_reaches_the_public_rendering() -> None:
    schema, train, holdout, synthetic = _canary_tables()
    report = build_report(train, holdout, synthetic, schema, thresholds=THRESHOLDS)
    assert all(s.status == "computed" for s in report.sections.values())
    canaries = ("ZZCANARY", "987654", "9.877e+05", "9.87654")
    internal = json.dumps(report.to_dict(include_internal=True))
    # the internal report does read the real rows: the canary is there, so the test below can fail
    assert "ZZCANARYISLAND" in internal
    public_json = json.dumps(report.to_dict(include_internal=False))
    public_html = report.to_html(include_internal=False)
    for text in (public_json, public_html):
        for canary in canaries:
            assert canary not in text


def test_public_rendering_is_the_same_whatever_the_real_rows() -> None:
    schema, train, holdout, synthetic = _canary_tables()
    other_real = pd.concat([holdout, train]).sample(frac=1.0, random_state=3)
    other_train, other_holdout, _ = split_holdout(other_real.iloc[::-1], schema, seed=9)
    a = build_report(train, holdout, synthetic, schema, thresholds=THRESHOLDS, seed=1)
    b = build_report(other_train.iloc[:120], other_holdout, synthetic, schema, thresholds=THRESHOLDS, seed=1)
    assert all(s.status == "computed" for r in (a, b) for s in r.sections.values())
    assert a.to_dict(include_internal=True) != b.to_dict(include_internal=True)
    assert a.to_dict(include_internal=False) == b.to_dict(include_internal=False)
    assert a.to_html(include_internal=False) == b.to_html(include_internal=False)


def test_html_is_one_self_contained_page_with_inline_figures() -> None:
    schema, train, holdout, synthetic = _canary_tables()
    report = build_report(train, holdout, synthetic, schema, thresholds=THRESHOLDS)
    assert all(s.status == "computed" for s in report.sections.values())
    assert not [n for s in report.sections.values() for n in s.notes if "could not be drawn" in n]
    internal, public = report.to_html(include_internal=True), report.to_html(include_internal=False)
    for page in (internal, public):
        assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page, re.IGNORECASE)
        assert "<script" not in page.lower() and "<link" not in page.lower()
        assert "data:image/png;base64," in page
    # real vs synthetic overlays, the three heatmaps, ROC curves and the DCR histogram are internal
    assert internal.count("<img") >= public.count("<img") + 4
    assert "Internal report" in internal and "Public report" in public
    for color in ("#2e7d32", "#c62828"):  # the summary's green / red badges
        assert color in internal


# ------------------------------------------------------------------------------ robustness


def test_a_column_that_cannot_be_scored_is_reported_and_the_report_goes_on() -> None:
    schema = load_schema(DATA / "penguins" / "schema.yaml")
    df = conform_table(pd.read_csv(DATA / "penguins" / "penguins.csv"), schema)[0]
    train, holdout, _ = split_holdout(df, schema, seed=0)
    synthetic = df.sample(200, random_state=1).reset_index(drop=True)
    synthetic["bill_depth_mm"] = np.nan  # declared nullable: a legal but unscorable synthetic column
    synthetic = synthetic.drop(columns=["year"])
    report = build_report(train, holdout, synthetic, schema, include=NO_PLOTS)
    assert all(s.status == "computed" for s in report.sections.values())
    cols = report.sections["fidelity"].data["columns"]
    assert cols["year"]["not_scored"] == "the column is missing from the synthetic table"
    assert cols["bill_depth_mm"]["metrics"]["ks_distance"]["value"] is None
    assert "synthetic" in cols["bill_depth_mm"]["metrics"]["ks_distance"]["not_scored"]
    assert cols["bill_depth_mm"]["metrics"]["null_rate_error"]["value"] > 0.9
    assert report.summary["fidelity_score"] is not None
    assert report.sections["synthetic"].data["missing_columns"] == ["year"]
    json.dumps(report.to_dict(include_internal=True), allow_nan=False)


def test_sections_can_be_left_out_and_utility_needs_a_target() -> None:
    schema = load_schema(DATA / "penguins" / "schema.yaml").model_copy(update={"target": None})
    df = conform_table(pd.read_csv(DATA / "penguins" / "penguins.csv"), schema)[0]
    train, holdout, _ = split_holdout(df, schema, seed=0)
    only = build_report(train, holdout, df.sample(100, random_state=2), schema, include={"fidelity"})
    assert set(only.sections) == {"synthetic", "fidelity"}
    assert not any(s.figures for s in only.sections.values())
    assert only.summary["membership_auc"] is None
    assert all(c.status == "not_run" for c in only.checks)
    no_target = build_report(train, holdout, df.sample(100, random_state=2), schema, include={"utility"})
    assert no_target.sections["utility"].status == "not_computed"
    assert "target" in (no_target.sections["utility"].reason or "")
    with pytest.raises(ValueError, match="unknown report sections"):
        build_report(train, holdout, df, schema, include={"fidelity", "charts"})
    with pytest.raises(ValueError, match="unknown thresholds"):
        build_report(train, holdout, df, schema, thresholds={"min_fidelty": 0.5})


@pytest.mark.parametrize(
    ("target", "task", "scores"),
    [
        ("species", "classification", ("roc_auc", "balanced_accuracy", "minority_f1")),
        ("body_mass_g", "regression", ("r2", "mae")),
    ],
)
def test_utility_handles_multiclass_and_numeric_targets(target: str, task: str, scores: tuple[str, ...]) -> None:
    schema = load_schema(DATA / "penguins" / "schema.yaml")
    df = conform_table(pd.read_csv(DATA / "penguins" / "penguins.csv"), schema)[0]
    train, holdout, _ = split_holdout(df, schema, target=target, seed=0)
    report = build_report(train, holdout, train.reset_index(drop=True), schema, target, include={"utility"})
    u = report.sections["utility"].data
    assert report.sections["utility"].status == "computed", report.sections["utility"].reason
    assert u["task"] == task
    for model in ("linear", "hist_gradient_boosting"):
        for name in scores:
            assert u["models"][model]["tstr"][name] is not None
    primary = u["models"]["hist_gradient_boosting"]["trtr"]["r2" if task == "regression" else "roc_auc"]
    assert primary > (0.7 if task == "regression" else 0.95)
    assert report.summary["utility_ratio"] == pytest.approx(1.0)


def test_progress_runs_from_zero_to_one(adult: dict) -> None:
    seen: list[tuple[float, str]] = []
    limits = EvaluationLimits(fidelity_rows=2000, model_train_rows=2000, dcr_synthetic_rows=500)
    build_report(
        adult["train"],
        adult["holdout"],
        adult["other"].head(2000),
        adult["schema"],
        include=NO_PLOTS,
        progress=lambda f, m: seen.append((f, m)),
        limits=limits,
    )
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
    assert all(m for _, m in seen)


@pytest.fixture(scope="module")
def sampled_report(adult: dict) -> Report:
    """Every table over the limits: each figure estimated on a sample states its standard error."""
    limits = EvaluationLimits(
        fidelity_rows=1000,
        model_train_rows=1500,
        dcr_synthetic_rows=300,
        dcr_reference_rows=400,
        membership_targets=200,
    )
    return build_report(
        adult["train"], adult["holdout"], adult["other"], adult["schema"], include=NO_PLOTS, limits=limits
    )


def test_samples_follow_the_limits(sampled_report: Report) -> None:
    report = sampled_report
    assert report.sections["fidelity"].data["rows_compared"] == {"real": 1000, "synthetic": 1000}
    assert report.sections["utility"].data["rows"]["synthetic_train"] <= 1500
    dcr = report.sections["privacy"].data["dcr"]
    assert dcr["synthetic_rows_searched"] == 300 and dcr["reference_rows_each"] == 400
    assert report.sections["privacy"].data["membership_inference"]["distance"]["members"] == 200
    assert report.to_dict(include_internal=False)["settings"]["limits"]["fidelity_rows"] == 1000


# the summary's standard errors of the fidelity and privacy sections' figures
SECTION_SES = {"fidelity_score_se": "fidelity", "attribute_inference_advantage_se": "privacy"}


def test_the_summary_carries_the_sections_standard_errors(sampled_report: Report) -> None:
    summary = sampled_report.to_dict(include_internal=True)["summary"]
    for key, section in SECTION_SES.items():
        stated = sampled_report.sections[section].data[key]
        assert stated > 0 and summary[key] == stated == sampled_report.summary[key]
    # the steward's page shows each beside its figure
    page = sampled_report.to_html(include_internal=True)
    for figure in ("fidelity_score", "attribute_inference_advantage"):
        assert f"{sampled_report.summary[figure]:.4g} ± {sampled_report.summary[f'{figure}_se']:.2g}" in page


def test_the_summary_standard_errors_stay_out_of_the_public_rendering(sampled_report: Report) -> None:
    """Computed on real rows, like the figures they go with: internal report only."""
    internal = json.dumps(sampled_report.to_dict(include_internal=True))
    public_json = json.dumps(sampled_report.to_dict(include_internal=False))
    public_html = sampled_report.to_html(include_internal=False)
    for key in SECTION_SES:
        assert key in internal and key not in public_json and key not in public_html
    # no figure with its standard error at all on the analyst's page; the steward's has them
    assert "±" in sampled_report.to_html(include_internal=True) and "±" not in public_html


# ------------------------------------------------------------------------------ the traffic lights


@pytest.mark.parametrize(
    ("value", "threshold", "direction", "expected"),
    [
        (0.80, 0.6, "min", "pass"),
        (0.62, 0.6, "min", "warn"),  # within 10% of the minimum
        (0.60, 0.6, "min", "warn"),  # exactly at a non-zero threshold
        (0.59, 0.6, "min", "fail"),
        (0.50, 0.6, "max", "pass"),
        (0.58, 0.6, "max", "warn"),
        (0.61, 0.6, "max", "fail"),
        (0.0, 0.0, "max", "pass"),  # no warn zone at 0
        (0.001, 0.0, "max", "fail"),
        (None, 0.6, "min", "not_run"),
        (0.7, None, "min", "not_run"),
    ],
)
def test_judge_follows_the_gate_rule(value, threshold, direction, expected) -> None:
    assert judge(value, threshold, direction, 0.1) == expected


# ------------------------------------------------------------------------------ the JSON contract

TOP_LEVEL = {
    "schema_version",
    "kind",
    "audience",
    "summary",
    "sections",
    "withheld_sections",
    "settings",
    "definitions",
    "checks",
}
SUMMARY = {
    "synthetic_rows",
    "synthetic_columns",
    "fidelity_score",
    "fidelity_score_se",
    "fidelity_score_holdout_reference",
    "sdmetrics_quality",
    "mean_one_way_tvd",
    "mean_two_way_tvd",
    "worst_two_way_tvd",
    "utility_ratio",
    "utility_primary_score",
    "tstr_score",
    "trtr_score",
    "exact_match_rate",
    "exact_match_rate_holdout",
    "dcr_share_closer_to_train",
    "dcr_share_closer_to_train_se",
    "dcr_p5_train",
    "dcr_p5_train_se",
    "dcr_p5_holdout",
    "dcr_p5_holdout_se",
    "membership_auc",
    "membership_auc_se",
    "membership_auc_distance",
    "membership_auc_distance_se",
    "membership_auc_classifier",
    "membership_auc_classifier_se",
    "attribute_inference_advantage",
    "attribute_inference_advantage_se",
    "utility_leakage",
    "rebalanced_target",
    "minority_classes",
    "classwise_fidelity_score",
    "classwise_fidelity_holdout_reference",
    "minority_f1_ratio",
    "minority_recall_ratio",
    "tstr_minority_f1",
    "trtr_minority_f1",
}


def _keys(obj: object) -> list[str]:
    if isinstance(obj, dict):
        return list(obj) + [k for v in obj.values() for k in _keys(v)]
    if isinstance(obj, list):
        return [k for v in obj for k in _keys(v)]
    return []


def test_json_layout_is_the_versioned_one(independent_report: Report) -> None:
    """Changing these keys is a new schema_version: the pipeline, the gate and the bundle read them."""
    internal = independent_report.to_dict(include_internal=True)
    assert set(internal) == TOP_LEVEL | {"overall_status"}
    assert set(independent_report.to_dict(include_internal=False)) == TOP_LEVEL
    assert set(internal["summary"]) == SUMMARY
    assert [c["name"] for c in internal["checks"]] == [
        "fidelity",
        "utility_ratio",
        "membership_auc",
        "exact_match_rate",
    ]
    for section in internal["sections"].values():
        assert set(section) == {"title", "visibility", "status", "reason", "data", "notes", "figures"}
    # arrays kept for drawing (ROC points, every distance) stay out of the JSON
    assert not [k for k in _keys(internal) if k.startswith("_")]


def test_an_empty_synthetic_table_gives_a_report_that_says_why(adult: dict) -> None:
    report = build_report(
        adult["train"], adult["holdout"], adult["other"].head(0), adult["schema"], thresholds=THRESHOLDS
    )
    assert report.sections["synthetic"].status == "computed" and report.summary["synthetic_rows"] == 0
    for key in ("fidelity", "utility", "privacy"):
        assert report.sections[key].status == "not_computed" and report.sections[key].reason
    assert all(c.status == "not_run" for c in report.checks)
    json.dumps(report.to_dict(include_internal=True), allow_nan=False)
    assert "not computed" in report.to_html(include_internal=True)


def test_a_generalised_column_is_described_by_its_released_labels() -> None:
    """Age generalised to bands is released as "20-24", ...: the public summary names bands, not ranks."""
    from evaluation._tables import column_view
    from evaluation.public import synthetic_summary
    from privacy.disclosure import apply_disclosure_control
    from privacy.policy import DatasetPolicy
    from privacy.schema import conform_table, load_schema, read_table
    from tests.conftest import ADULT

    schema = load_schema(ADULT.parent / "schema.yaml")
    table, _ = conform_table(read_table(ADULT).sample(5000, random_state=0), schema)
    # at 20% suppression age is banded (at 10%, the least-loss node releases it as '*')
    released, released_schema, report = apply_disclosure_control(
        table, schema, DatasetPolicy(suppression="generalise", max_suppression=0.2)
    )
    assert report.generalisation["age"]["type"] == "intervals"
    views = {n: column_view(n, released_schema.columns[n], released[n]) for n in ["age", "hours-per-week"]}
    summary = synthetic_summary(released, released_schema, views)["columns"]
    bands = set(released_schema.columns["age"].values or [])
    age = summary["age"]
    for key in ("min", "p5", "p25", "median", "p75", "p95", "max"):
        assert age[key] in bands, (key, age[key])
    assert "mean" not in age and "std" not in age  # a mean of ranks would mean nothing
    assert isinstance(summary["hours-per-week"]["median"], float)  # plain numbers unchanged


def test_a_target_that_leaks_from_a_feature_is_not_shown_as_good_utility(adult: dict) -> None:
    """adult with a column that restates income: any synthetic table scores a high ratio, which says
    nothing; the report and the gate say so instead of passing it."""
    from privacy.gate import evaluate_gate
    from privacy.policy import DatasetPolicy
    from privacy.schema import ColumnSpec, PublicSchema

    schema = adult["schema"]
    leaky = PublicSchema(
        **{
            **schema.model_dump(),
            "columns": {**schema.columns, "income_band": ColumnSpec(kind="categorical", values=["low", "high"])},
        }
    )

    def with_leak(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out["income_band"] = out["income"].map({"<=50K": "low", ">50K": "high"})
        return out

    train, holdout = with_leak(adult["train"]), with_leak(adult["holdout"])
    report = build_report(train, holdout, with_leak(adult["other"]), leaky, thresholds=THRESHOLDS, include=NO_PLOTS)
    leakage = report.sections["utility"].data["leakage"]
    assert leakage["suspected"] and leakage["duplicates"][0]["feature"] == "income_band", leakage
    check = next(c for c in report.checks if c.name == "utility_ratio")
    assert check.status == "warn" and "not meaningful" in check.message, check
    gate = evaluate_gate(
        DatasetPolicy(),
        disclosure=None,
        utility_ratio=report.summary["utility_ratio"],
        utility_leakage=report.summary["utility_leakage"],
    )
    assert gate.check("utility_ratio").status == "warn"
    # the same table without the leak: no warning
    plain = build_report(
        adult["train"], adult["holdout"], adult["other"], schema, thresholds=THRESHOLDS, include=NO_PLOTS
    )
    assert not plain.sections["utility"].data["leakage"]["suspected"] and plain.summary["utility_leakage"] is None


def test_a_job_sub_seed_of_62_bits_runs_every_section() -> None:
    """The service seeds the report with a 62-bit HMAC sub-seed; scikit-learn takes at most 2**32 - 1, and the
    utility and membership sections used to fail on it (the release then had no utility ratio)."""
    from evaluation import build_report, split_holdout
    from privacy._random import sub_seed
    from privacy.schema import conform_table, load_schema, read_table
    from tests.conftest import PENGUINS

    schema = load_schema(PENGUINS.parent / "schema.yaml")
    table, _ = conform_table(read_table(PENGUINS), schema)
    train, holdout, _ = split_holdout(table, schema, target="species", seed=1)
    seed = sub_seed(2**61 + 7, "report")
    assert seed >= 2**32
    report = build_report(train, holdout, train.sample(frac=1.0, random_state=2), schema, "species", seed=seed)
    assert report.summary["utility_ratio"] is not None
    assert report.summary["membership_auc_classifier"] is not None


def test_association_heatmaps_of_many_columns_show_those_that_differ_most():
    """At 40+ columns the panels keep the columns whose synthetic - real associations are largest."""
    from evaluation.plots import MAX_HEATMAP_COLUMNS, association_heatmaps, focus_columns

    n = 45
    names = [f"column_{i}" for i in range(n)]
    real = [[1.0 if i == j else 0.1 for j in range(n)] for i in range(n)]
    synthetic = [row[:] for row in real]
    for a, b in ((3, 40), (7, 41)):  # two pairs the synthetic table gets wrong
        synthetic[a][b] = synthetic[b][a] = 0.9
    diff = [[s - r for r, s in zip(rr, sr, strict=True)] for rr, sr in zip(real, synthetic, strict=True)]
    matrices = {"real": real, "synthetic": synthetic, "synthetic - real": diff}

    kept, cut = focus_columns(names, matrices, "synthetic - real", MAX_HEATMAP_COLUMNS)
    assert len(kept) == MAX_HEATMAP_COLUMNS
    assert {"column_3", "column_40", "column_7", "column_41"} <= set(kept)
    assert kept == sorted(kept, key=names.index)  # original order kept
    i, j = kept.index("column_3"), kept.index("column_40")
    assert cut["synthetic"][i][j] == 0.9 and cut["real"][i][j] == 0.1
    assert all(len(m) == len(kept) and all(len(row) == len(kept) for row in m) for m in cut.values())
    # a table that fits is left whole
    assert focus_columns(names[:10], {"x": [r[:10] for r in real[:10]]}, "x", MAX_HEATMAP_COLUMNS)[0] == names[:10]

    png = association_heatmaps(names, matrices, "associations", rank_by="synthetic - real")
    assert png.startswith(b"\x89PNG")
