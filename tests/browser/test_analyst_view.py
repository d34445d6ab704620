"""What the analyst sees, in real headless Chromium: the request form's advice and public defaults,
the public part of a release before the steward's decision, and the "Fit for the stated purpose?"
answer after it.

The table has an unusual number of rows (2,347) that the steward does not publish; the policy declares
1,500 as the public row count. The exact count must appear on none of the analyst's pages and API views.
"""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.browser.support import DEMO_CSV, DEMO_SCHEMA, release_method
from tests.browser.test_release_flow import open_session

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

EXACT_ROWS = 2347
PUBLIC_ROWS = 1500
PURPOSE = "train a churn model for the outreach study"


def _exact_count_in(text: str) -> list[str]:
    return re.findall(rf"(?<![\w.]){EXACT_ROWS}(?![\w]|\.\d)|2,347|2 347|2_347", text)


def _register(svc: Any, name: str, policy: dict[str, Any]) -> None:
    table = pd.read_csv(DEMO_CSV).head(EXACT_ROWS).to_csv(index=False).encode()
    r = svc.api(
        "steward",
        "POST",
        "/datasets",
        files={"file": (f"{name}.csv", io.BytesIO(table))},
        data={"name": name, "schema": DEMO_SCHEMA.read_text(), "epsilon_budget": "6", "delta_budget": "1e-6"},
    )
    assert r.status_code == 201, r.text
    r = svc.api("steward", "PUT", f"/datasets/{name}/policy", json={"policy": policy})
    assert r.status_code == 200, r.text
    r = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens["analyst:username"]})
    assert r.status_code == 201, r.text


def _settle(svc: Any, job_id: int, timeout: float = 400) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        release = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]
        if release["status"] not in ("queued", "running"):
            assert release["status"] == "awaiting_approval", release
            return release
        time.sleep(0.5)
    raise AssertionError(f"release {job_id} did not finish in {timeout}s")


def test_the_analyst_sees_advice_public_defaults_the_public_part_and_the_fit_for_purpose(web, chromium, screenshots):
    svc = web
    _register(svc, "adult-small", {"public_row_count": PUBLIC_ROWS})
    _register(svc, "adult-filtered", {"remove_real_matches": True})
    ds_id = svc.api("analyst", "GET", "/datasets/adult-small").json()["dataset"]["id"]
    filtered_id = svc.api("analyst", "GET", "/datasets/adult-filtered").json()["dataset"]["id"]

    analyst = open_session(chromium, svc, "analyst")
    analyst.goto(f"{svc.url}/datasets/{ds_id}/request")
    analyst.wait_for_selector("#request-form")
    # the purpose is a field of its own, first, labelled as a question; not among the method options
    assert analyst.inner_text("#purpose label[for=comment]") == "What is this release for?"
    assert analyst.locator("#field-options #comment").count() == 0
    # the rows default to the count the steward declared public, never the table's own
    assert analyst.input_value("#rows") == str(PUBLIC_ROWS)
    assert "the row count the steward declared public" in analyst.inner_text("#field-rows")
    # the policy is dp-only: the SDV and SMOTE methods are not offered, and the page says why
    offered = analyst.eval_on_selector_all("#method option", "os => os.map(o => o.value)")
    assert "mst" in offered and not {"gaussian-copula", "ctgan", "tvae", "copulagan", "smote"} & set(offered)
    assert "policy (dp-only) refuses" in analyst.inner_text("#refused-methods")
    # a recommendation with its reason, which follows the epsilon typed
    assert analyst.inner_text("#advice-method") == "mst" and "give epsilon" in analyst.inner_text("#advice-reason")
    analyst.fill("#epsilon", "5")
    expect(analyst.locator("#advice-method")).to_have_text("aim", timeout=15000)
    assert "1,500 rows (the declared public row count)" in analyst.inner_text("#advice-reason")
    assert analyst.locator("#advice-use").is_visible()  # the select still says mst
    analyst.click("#advice-use")
    assert analyst.input_value("#method") == "aim" and not analyst.locator("#advice-use").is_visible()
    analyst.select_option("#method", "mst")
    analyst.fill("#epsilon", "0.1")
    expect(analyst.locator("#advice-method")).to_have_text("mst", timeout=15000)
    assert "epsilon 0.1 is small" in analyst.inner_text("#advice-reason")
    assert not analyst.locator("#advice-use").is_visible()  # the select already says mst
    screenshots(analyst, "request-form-advice")
    assert not _exact_count_in(analyst.content())
    # the API refuses a method the form hides, naming the policy
    r = svc.api("analyst", "POST", "/releases", json={"dataset": "adult-small", "method": "gaussian-copula"})
    assert r.status_code in (400, 403) and "dp-only" in r.text and "gaussian-copula" in r.text

    analyst.fill("#comment", PURPOSE)
    analyst.select_option("#method", release_method())
    analyst.fill("#epsilon", "1")
    analyst.fill("#delta", "1e-9")
    analyst.fill("#rows", "300")
    analyst.click("#request-form button[type=submit]")
    analyst.wait_for_url(f"{svc.url}/releases/*")
    job_id = int(analyst.url.rsplit("/", 1)[1])
    # the same purpose through the API, under its own name
    r = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={
            "dataset": "adult-filtered",
            "method": release_method(),
            "epsilon": 1.0,
            "delta": 1e-9,
            "rows": 300,
            "purpose": PURPOSE,
        },
    )
    assert r.status_code == 202, r.text
    filtered_job = r.json()["release"]["id"]
    assert r.json()["release"]["purpose"] == PURPOSE
    _settle(svc, job_id)
    steward_view = _settle(svc, filtered_job)
    assert steward_view["options"]["comment"] == PURPOSE

    # before approval: the guarantee, the public statement draft and the synthetic-only summaries
    analyst.goto(f"{svc.url}/releases/{job_id}")
    analyst.wait_for_selector("#public-preview")
    assert analyst.inner_text("#job-purpose") == PURPOSE
    assert "public draft" in analyst.inner_text("#statement h2")
    assert "Privacy parameters" in analyst.inner_text("#statement pre")
    assert "differentially private" in analyst.inner_text("#preview-guarantee")
    assert "synthetic rows" in analyst.inner_text("#preview-summaries")
    frame = analyst.frame_locator("iframe.report-frame")
    assert "report" in frame.locator("h1").first.inner_text(timeout=15000).lower()
    assert analyst.locator("#gate").count() == 0 and analyst.locator("#download").count() == 0
    assert analyst.locator("#fit-for-purpose").count() == 0
    screenshots(analyst, "release-analyst-before-approval")
    pages = [analyst.content(), analyst.inner_text("#statement")]

    # rows were removed after a comparison with real rows: the summaries wait for the decision
    analyst.goto(f"{svc.url}/releases/{filtered_job}")
    analyst.wait_for_selector("#public-preview")
    withheld = analyst.inner_text("#summaries-withheld")
    assert withheld.startswith("Available after approval") and "remove_real_matches" in withheld
    assert analyst.locator("iframe.report-frame").count() == 0
    statement = analyst.inner_text("#statement pre")
    assert statement.count("Available after approval") == 3 and "rows were removed because" not in statement
    assert svc.api("analyst", "GET", f"/releases/{filtered_job}/report").status_code == 403
    pages.append(analyst.content())

    # no view of the analyst shows the table's exact size
    analyst.goto(f"{svc.url}/datasets/{ds_id}")
    pages.append(analyst.content())
    analyst.goto(f"{svc.url}/datasets/{filtered_id}/request")
    pages.append(analyst.content())
    for path in (
        "/datasets/adult-small",
        "/datasets/adult-filtered",
        f"/releases/{job_id}",
        f"/releases/{filtered_job}",
    ):
        pages.append(svc.api("analyst", "GET", path).text)
    analyst.goto(f"{svc.url}/datasets/{ds_id}/request/advice?epsilon=2")
    advice = analyst.content()
    assert '"method": "aim"' in advice or '"method":"aim"' in advice
    pages.append(advice)
    hits = [hit for text in pages for hit in _exact_count_in(text)]
    assert not hits, hits
    # while the steward's view has it
    assert svc.api("steward", "GET", "/datasets/adult-small").json()["dataset"]["internal"]["rows"] == EXACT_ROWS

    # the steward approves; the analyst's page and the bundle's report answer "fit for the stated purpose?"
    body: dict[str, Any] = {"comment": "fine for the outreach model"}
    gate_fails = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]["gate"]["overall"] == "fail"
    if gate_fails:
        body["override"] = "steward-only reason 5c2"
    r = svc.api("steward2", "POST", f"/releases/{job_id}/approve", json=body)
    assert r.status_code == 200, r.text
    analyst.goto(f"{svc.url}/releases/{job_id}")
    analyst.wait_for_selector("#fit-for-purpose")
    assert analyst.inner_text("#fit-purpose") == PURPOSE
    verdict = analyst.inner_text("#fit-verdict")
    if gate_fails:
        assert verdict.startswith("Approved with an override") and "steward-only reason" not in verdict
    else:
        assert verdict.startswith("The steward reviewed the utility and fidelity checks for this purpose and approved")
    assert "fine for the outreach model" in verdict
    assert analyst.locator("#public-preview").count() == 0
    frame = analyst.frame_locator("iframe.report-frame")
    assert "Fit for the stated purpose?" in frame.locator("#fit-for-purpose h2").inner_text(timeout=15000)
    screenshots(analyst, "release-analyst-fit-for-purpose")
    assert analyst.js_errors == []
