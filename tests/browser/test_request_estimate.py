"""The request form's time estimate, in real headless Chromium: server-rendered for the preselected
method, updated by request.js when the method or the options change, with the policy's limit, and no
script blocked by the Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_analyst_view import EXACT_ROWS, _register
from tests.browser.test_release_flow import open_session

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

PUBLIC_ROWS = 20_000


def test_the_request_form_shows_the_estimate_and_follows_the_method(web, chromium, screenshots):
    svc = web
    _register(svc, "adult-timed", {"public_row_count": PUBLIC_ROWS, "max_estimated_minutes": 2})
    ds_id = svc.api("analyst", "GET", "/datasets/adult-timed").json()["dataset"]["id"]
    analyst = open_session(chromium, svc, "analyst")
    analyst.goto(f"{svc.url}/datasets/{ds_id}/request")
    analyst.wait_for_selector("#request-form")
    method = analyst.input_value("#method")
    # rendered by the server for the preselected method, at the public row count
    first = analyst.inner_text("#estimate-text")
    assert re.fullmatch(r"~\d+ (s|min)", first), first
    detail = analyst.locator("#estimate-detail")
    expect(detail).to_contain_text("20,000 rows x")
    expect(detail).to_contain_text("the dataset's limit is 2 min")
    assert str(EXACT_ROWS) not in analyst.inner_text("#estimate")

    # a slow method with many epochs: over the limit, with the change that fits
    analyst.select_option("#method", "dpctgan")
    analyst.fill("#options", "epochs = 40")
    expect(detail).to_contain_text("Over the limit", timeout=15000)
    expect(detail).to_contain_text("epochs=")
    expect(analyst.locator("#estimate")).to_have_class(re.compile(r"\bwarn\b"))
    slow = analyst.inner_text("#estimate-text")
    assert slow.endswith(("min", "h")), slow
    screenshots(analyst, "request-form-estimate-over-limit")

    # back to the quick method: under the limit again
    analyst.fill("#options", "")
    analyst.select_option("#method", method)
    expect(detail).not_to_contain_text("Over the limit", timeout=15000)
    expect(analyst.locator("#estimate-text")).to_have_text(first)
    assert analyst.js_errors == []  # type: ignore[attr-defined]
