"""The gate of a rebalanced release through the real service: its fidelity and utility checks judge the
class-wise fidelity and the minority-class F1 ratio, and say so to the steward."""

from __future__ import annotations

import pytest

from tests.integration.test_release_path import register_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _release(svc, body: dict) -> dict:
    r = svc.api("analyst", "POST", "/releases", json=body)
    assert r.status_code == 202, r.text
    done = svc.wait_for("steward", r.json()["release"]["id"], timeout=600)
    assert done["status"] == "awaiting_approval", (done.get("internal"), svc.worker_logs())
    return done


def test_a_smote_release_passes_fidelity_and_utility_class_by_class(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    name = register_demo(svc)["name"]
    r = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"policy": {"privacy": "allow-non-dp"}})
    assert r.status_code == 200, r.text

    done = _release(svc, {"dataset": name, "method": "smote", "rows": 2000})
    checks = {c["name"]: c for c in done["gate"]["checks"]}
    fidelity, utility = checks["fidelity"], checks["utility_ratio"]
    assert fidelity["message"].startswith("class-wise fidelity score (mean over the classes of 'income')")
    assert utility["message"].startswith("minority-class F1 ratio (TSTR / TRTR; '>50K' of 'income')")
    assert "replaces the marginal fidelity score" in fidelity["message"]
    # the real training rows plus SMOTE rows: faithful within each class, as useful for the minority class
    assert (fidelity["status"], utility["status"]) == ("pass", "pass"), (fidelity, utility)
    # the steward's report holds the class section
    report = svc.api("steward", "GET", f"/releases/{done['id']}/report", params={"format": "json"})
    assert report.status_code == 200, report.text
    assert "classes" in report.json()["sections"], list(report.json()["sections"])

    # a DP release rebalanced in post-processing is judged the same way
    done = _release(
        svc, {"dataset": name, "method": "mst", "epsilon": 0.5, "delta": 1e-9, "rows": 2000, "rebalance": "smote"}
    )
    checks = {c["name"]: c for c in done["gate"]["checks"]}
    assert checks["fidelity"]["message"].startswith("class-wise fidelity score")
    assert checks["utility_ratio"]["message"].startswith("minority-class F1 ratio")
    assert checks["fidelity"]["value"] is not None and checks["utility_ratio"]["value"] is not None
