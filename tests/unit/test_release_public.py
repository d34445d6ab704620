"""What a requester sees before and after the steward's decision: the withhold decision
(core/release_public.py), the fit-for-purpose answer (core/views.py) and its place in the signed bundle."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.bundle import build_bundle, verify_bundle, with_fit_for_purpose
from core.models import ReleaseJob
from core.release_public import AFTER_APPROVAL, _scrub, withhold_reason
from core.views import fit_for_purpose, purpose_of

CLEAN = {"real_checks": {"filtering_applied": False, "exact_matches": 3}}
FILTERED = {"real_checks": {"filtering_applied": True, "removed_rows": 7}}


def test_a_dp_output_no_real_row_step_touched_is_shown() -> None:
    assert withhold_reason(kind="dp-synthetic", guarantee="dp", releases_real_rows=False, record=CLEAN) is None
    # data-free: nothing was read at all, whatever was recorded
    assert withhold_reason(kind="scenario", guarantee="data-free", releases_real_rows=False, record=None) is None


@pytest.mark.parametrize(
    ("kind", "guarantee", "real_rows", "record", "words"),
    [
        ("dp-synthetic", "dp", False, FILTERED, "remove_real_matches"),
        ("synthetic", "non-dp", False, CLEAN, "not differentially private"),
        ("oversample", "non-dp", True, CLEAN, "not differentially private"),
        ("dp-synthetic", "dp", True, CLEAN, "not differentially private"),  # a DP label but real rows released
        ("dp-statistics", "dp", False, {"small_cells": {}}, "the release itself"),
        ("dp-synthetic", "dp", False, None, "when in doubt"),
        ("dp-synthetic", "dp", False, {"disclosure": {}}, "when in doubt"),  # no record of the real-row step
        ("dp-synthetic", "dp", False, {"real_checks": {}}, "remove_real_matches"),  # filtering not recorded as off
    ],
)
def test_the_summaries_wait_for_the_decision_when_real_rows_shaped_the_output_or_in_doubt(
    kind: str, guarantee: str, real_rows: bool, record: dict | None, words: str
) -> None:
    reason = withhold_reason(kind=kind, guarantee=guarantee, releases_real_rows=real_rows, record=record)
    assert reason is not None and words in reason


def test_withheld_sections_of_the_statement_are_replaced_whole() -> None:
    statement = "\n".join(
        [
            "# Privacy statement",
            "## Privacy parameters",
            "- epsilon: 1",
            "## Post-processing applied",
            "- rows produced: 500; rows after post-processing: 493",
            "## Checks that used real rows",
            "12 rows were removed because of these checks",
            "## Release gate",
            "| k_anonymity | pass | 5 |",
            "## Files",
            "data.csv",
        ]
    )
    out = _scrub(statement, "because")
    assert "493" not in out and "12 rows" not in out and "k_anonymity" not in out
    assert "- epsilon: 1" in out and "data.csv" in out
    assert out.count(f"_{AFTER_APPROVAL.capitalize()}: because._") == 3


def _job(**kw) -> ReleaseJob:
    base = {
        "kind": "dp-synthetic",
        "status": "approved",
        "options": {"comment": "train a churn model"},
        "gate": {
            "overall": "pass",
            "checks": [{"name": "membership_auc", "status": "pass", "value": 0.5123, "threshold": 0.6}],
        },
        "decision_comment": "fine for modelling",
        "override_reason": None,
        "include_internal": False,
    }
    base.update(kw)
    return ReleaseJob(**base)


def test_fit_for_purpose_says_approved_without_any_figure() -> None:
    assert fit_for_purpose(_job(status="awaiting_approval")) is None
    fit = fit_for_purpose(_job())
    assert fit is not None
    assert fit["purpose"] == "train a churn model" and fit["verdict"] == "approved"
    assert fit["text"].startswith("The steward reviewed the utility and fidelity checks for this purpose and approved")
    assert "fine for modelling" in fit["text"]
    assert "checks" not in fit and "0.5123" not in json.dumps(fit)


def test_an_override_is_said_with_the_public_comment_never_the_reason() -> None:
    job = _job(
        gate={"overall": "fail", "checks": [{"name": "fidelity", "status": "fail", "value": 0.41, "threshold": 0.6}]},
        override_reason="internal-reason-91",
        decision_comment="good enough for a first model",
    )
    fit = fit_for_purpose(job)
    assert fit is not None and fit["verdict"] == "approved_with_override"
    assert fit["text"].startswith("Approved with an override") and "good enough for a first model" in fit["text"]
    assert "internal-reason-91" not in json.dumps(fit) and "0.41" not in json.dumps(fit)
    # an override given where no check failed is not an override of the gate
    assert fit_for_purpose(_job(override_reason="x"))["verdict"] == "approved"  # type: ignore[index]


def test_the_internal_figures_only_when_the_steward_included_them() -> None:
    fit = fit_for_purpose(_job(include_internal=True))
    assert fit is not None and fit["checks"] == [
        {"name": "membership_auc", "status": "pass", "value": 0.5123, "threshold": 0.6, "direction": None}
    ]
    assert "no privacy guarantee covers them" in fit["basis"]


def test_no_purpose_stated() -> None:
    job = _job(options={"bins": 8})
    assert purpose_of(job) is None
    fit = fit_for_purpose(job)
    assert fit is not None and fit["purpose"] is None and "no purpose was stated" in fit["text"]


def test_the_bundle_with_its_fit_section_still_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    files = {
        "report.json": json.dumps({"audience": "public", "summary": {"synthetic_rows": 500}}).encode(),
        "report.html": b"<html><body><h1>Report</h1></body></html>",
        "data.csv": b"a\r\n1\r\n",
    }
    fit = fit_for_purpose(_job(options={"comment": "<script>x</script> study"}))
    with_fit = with_fit_for_purpose(files, fit)
    assert json.loads(with_fit["report.json"])["fit_for_purpose"]["verdict"] == "approved"
    page = with_fit["report.html"].decode()
    assert page.index('id="fit-for-purpose"') < page.index("</body>")
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt; study" in page
    assert with_fit["data.csv"] == files["data.csv"]
    check = verify_bundle(build_bundle(with_fit, {"job_id": 1}, key), pem)
    assert check.ok and check.signature_checked, check.problems
    assert with_fit_for_purpose(files, None) == files
