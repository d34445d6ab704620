"""The release path as people use it, in real headless Chromium.

An analyst logs in, requests a release with the form and watches its progress
bar move; a steward reviews the gate and the report and approves; the analyst
downloads the bundle through its signed link and the zip verifies with the
server's public key. A steward cannot approve their own request; an analyst
cannot open another analyst's release.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

import pytest
import requests

from core.bundle import verify_bundle
from tests.browser.support import PASSWORD, release_method

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

ACTIVE = ("queued", "running")


def open_session(chromium: Any, svc: Any, who: str) -> Any:
    """A fresh browser context logged in as `who` through the login form."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))  # type: ignore[attr-defined]
    # anything the Content-Security-Policy blocked would break the page silently: count it as an error
    page.on(
        "console",
        lambda msg: (
            page.js_errors.append(msg.text)  # type: ignore[attr-defined]
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None
        ),
    )
    page.goto(svc.url + "/login")
    page.fill("#username", svc.tokens[f"{who}:username"])
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(svc.url + "/")
    return page


def request_through_form(page: Any, svc: Any, epsilon: str, rows: int) -> int:
    page.goto(svc.url + "/")
    page.click("#datasets >> text=Request a release")
    page.wait_for_selector("#request-form")
    page.select_option("#method", release_method())
    page.fill("#epsilon", epsilon)
    page.fill("#delta", "1e-9")
    page.fill("#rows", str(rows))
    page.click("#request-form button[type=submit]")
    page.wait_for_url(f"{svc.url}/releases/*")
    return int(page.url.rsplit("/", 1)[1])


def watch_progress(page: Any, timeout: float = 240) -> list[tuple[str, float]]:
    """Read the progress bar as the page's own polling updates it, without reloading,
    until the job leaves queued/running. Returns (status, value) pairs seen."""
    seen: list[tuple[str, float]] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status = page.get_attribute("#job-status", "data-status", timeout=5000)
            value = page.get_attribute("#job-progress", "value", timeout=5000)
        except Exception:  # noqa: BLE001 - the page reloads itself when the job finishes
            time.sleep(0.2)
            continue
        seen.append((status, float(value)))
        if status not in ACTIVE:
            return seen
        time.sleep(0.15)
    raise AssertionError(f"the job did not finish in {timeout}s; progress seen: {seen[-10:]}")


def wait_until_settled(svc: Any, job_id: int, timeout: float = 240) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        resp = svc.api("steward", "GET", f"/releases/{job_id}")
        assert resp.status_code == 200, resp.text
        release = resp.json()["release"]
        if release["status"] not in ACTIVE:
            return release
        time.sleep(0.5)
    raise AssertionError(f"release {job_id} did not finish in {timeout}s")


def test_analyst_requests_steward_approves_analyst_downloads(web, chromium, screenshots, tmp_path):
    svc = web
    analyst = open_session(chromium, svc, "analyst")
    assert "adult" in analyst.inner_text("#datasets")
    analyst.goto(svc.url + "/")
    analyst.click("#datasets >> text=Request a release")
    analyst.wait_for_selector("#request-form")
    # the method's description and whether it is DP are shown beside the select
    analyst.select_option("#method", release_method())
    info = analyst.locator(f".method-info[data-method='{release_method()}']")
    assert info.is_visible() and "differentially private" in info.inner_text()
    assert "Remaining: ε 4" in analyst.inner_text("#field-epsilon")
    screenshots(analyst, "request-form")

    # a bad epsilon is refused next to the field, and nothing is queued
    analyst.fill("#epsilon", "lots")
    analyst.click("#request-form button[type=submit]")
    assert "epsilon must be a number" in analyst.inner_text("#field-epsilon .field-error")
    assert svc.api("analyst", "GET", "/releases").json()["releases"] == []

    job_id = request_through_form(analyst, svc, "0.5", 2000)
    seen = watch_progress(analyst)
    while_active = [v for status, v in seen if status in ACTIVE]
    values = sorted(set(while_active))
    assert len(values) >= 2 and any(0 < v < 1 for v in values), f"the bar did not move: {seen}"
    assert while_active == sorted(while_active), "progress went backwards"
    # the page reloads itself once the job is done
    analyst.wait_for_selector("#public-preview", timeout=30000)
    assert analyst.get_attribute("#job-status", "data-status") == "awaiting_approval"
    # before approval the analyst sees the public part (tests/browser/test_analyst_view.py), never the gate
    assert analyst.locator("#gate").count() == 0 and analyst.locator("#summary").count() == 0
    assert analyst.locator("#download").count() == 0

    steward = open_session(chromium, svc, "steward")
    queue = steward.inner_text("#queue")
    assert f"#{job_id}" in queue
    screenshots(steward, "dashboard-steward")
    steward.click(f"#queue >> text=#{job_id}")
    steward.wait_for_selector("#gate")
    overall = steward.inner_text("#gate-overall .gate").strip().lower()
    assert overall in ("pass", "warn", "fail")
    # the internal report renders in its sandboxed frame
    frame = steward.frame_locator("iframe.report-frame")
    assert "report" in frame.locator("h1").first.inner_text(timeout=15000).lower()
    assert steward.locator("#statement").count() == 1
    screenshots(steward, "release-steward")
    steward.fill("#approve-form textarea[name=comment]", "Fit for the stated purpose.")
    if overall == "fail":
        steward.fill(
            "#approve-form textarea[name=override]", "Baseline release for a demo; reviewed the failing checks."
        )
    steward.click("#approve")
    steward.wait_for_selector("#job-status[data-status=approved]")
    assert "approved" in steward.inner_text(".flash").lower()

    analyst.goto(f"{svc.url}/releases/{job_id}")
    assert analyst.get_attribute("#job-status", "data-status") == "approved"
    public_frame = analyst.frame_locator("iframe.report-frame")
    assert "report" in public_frame.locator("h1").first.inner_text(timeout=15000).lower()
    assert "as in the bundle" in analyst.inner_text("#statement")
    screenshots(analyst, "release-analyst-approved")
    with analyst.expect_download() as download_info:
        analyst.click("#download")
    path = tmp_path / "bundle.zip"
    download_info.value.save_as(path)
    pem = requests.get(svc.url + "/api/v1/signing-key", timeout=30).json()["public_key_pem"]
    check = verify_bundle(path, pem)
    assert check.ok and check.signature_checked, check.problems
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert {"data.csv", "data.parquet", "privacy.md", "report.html"} <= set(zf.namelist())
        data_csv = zf.read("data.csv").decode()
    assert manifest["job_id"] == job_id and manifest["method"] == release_method()
    assert manifest["approved_by"] == svc.tokens["steward:username"]
    import pandas as pd

    assert len(pd.read_csv(io.StringIO(data_csv))) > 0

    events = svc.api("steward", "GET", "/audit?limit=500").json()
    assert events["chain"]["ok"] is True
    downloads = [e for e in events["events"] if e["action"] == "release.download" and e["object_id"] == str(job_id)]
    assert downloads and downloads[0]["detail"]["via"] == "signed link"
    steward.goto(svc.url + "/audit")
    assert "Hash chain verified" in steward.inner_text("#chain-status")
    screenshots(steward, "audit")
    steward.goto(svc.url + "/datasets/1")
    assert steward.locator("#ledger").inner_text().count("spend") >= 1
    screenshots(steward, "dataset")
    analyst.goto(svc.url + "/")
    screenshots(analyst, "dashboard-analyst")
    assert analyst.js_errors == [] and steward.js_errors == []


def test_steward_cannot_approve_own_request(web, chromium):
    svc = web
    steward = open_session(chromium, svc, "steward")
    job_id = request_through_form(steward, svc, "0.25", 300)
    watch_progress(steward)
    steward.wait_for_selector("#decide", timeout=30000)  # the page reloads itself once the job is done
    notice = steward.inner_text("#four-eyes")
    assert "another steward must approve" in notice
    assert steward.locator("#approve").count() == 0

    # a hand-made POST with a valid CSRF token is refused by the server all the same
    token = steward.get_attribute("#reject-form input[name=csrf_token]", "value")
    resp = steward.request.post(
        f"{svc.url}/releases/{job_id}/approve", form={"csrf_token": token, "comment": "looks fine to me"}
    )
    assert resp.status == 403
    assert "four-eyes" in resp.text()
    assert svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]["status"] == "awaiting_approval"
    denied = svc.api("steward2", "GET", "/audit?action=authz.denied").json()["events"]
    assert any(e["object_id"] == str(job_id) and "four-eyes" in json.dumps(e["detail"]) for e in denied)

    # another steward may approve it
    other = open_session(chromium, svc, "steward2")
    other.goto(f"{svc.url}/releases/{job_id}")
    assert other.locator("#four-eyes").count() == 0
    if other.locator("#approve-form textarea[name=override]").count():
        other.fill("#approve-form textarea[name=override]", "reviewed")
    other.click("#approve")
    other.wait_for_selector("#job-status[data-status=approved]")
    assert steward.js_errors == [] and other.js_errors == []


def test_analyst_cannot_open_another_analysts_release(web, chromium):
    svc = web
    # analyst2 is granted the dataset too: a grant still does not show another analyst's work
    resp = svc.api("steward", "POST", "/datasets/adult/grants", json={"user": svc.tokens["analyst2:username"]})
    assert resp.status_code == 201
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "adult", "method": release_method(), "epsilon": 0.25, "delta": 1e-9, "rows": 300},
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["release"]["id"]

    intruder = open_session(chromium, svc, "analyst2")
    assert f"#{job_id}" not in intruder.inner_text("main")
    for path in (
        f"/releases/{job_id}",
        f"/releases/{job_id}/report",
        f"/releases/{job_id}/download",
        f"/api/v1/releases/{job_id}",
    ):
        response = intruder.goto(svc.url + path)
        assert response.status == 404, (path, response.status)
        assert "not yours to see" in intruder.inner_text("body")
    assert "not yours to see" not in json.dumps(svc.api("analyst", "GET", f"/releases/{job_id}").json())

    # the owner sees it, and the refusals are in the audit log
    owner = open_session(chromium, svc, "analyst")
    owner.goto(f"{svc.url}/releases/{job_id}")
    assert owner.get_attribute("#job-status", "data-status") in (*ACTIVE, "awaiting_approval")
    events = svc.api("steward", "GET", "/audit?limit=500").json()["events"]
    refused = [
        e
        for e in events
        if e["actor"] == svc.tokens["analyst2:username"]
        and e["action"] in ("authz.denied", "auth.failed")
        and str(job_id) in json.dumps(e)
    ]
    assert len(refused) >= 4
    wait_until_settled(svc, job_id)
