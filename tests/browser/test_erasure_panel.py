"""A steward erases a dataset's raw data from its page in real headless Chromium: a wrong confirmation
name is refused beside the field without losing the reason, the right one erases; the page then shows
the erasure (who and why to the steward, the date only to the analyst), with no CSP error."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.support import register_demo_table, release_method
from tests.browser.test_release_flow import open_session

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

REASON = "erasure request ER-7 from the survey's respondents"


def test_steward_erases_the_raw_data_from_the_dataset_page(web, chromium, screenshots):
    svc = web
    ds = register_demo_table(svc, "adult-erase", policy="retention_days: 3650\n")
    raw = svc.settings.storage_dir / "datasets" / str(ds["id"]) / "raw.csv"
    assert raw.exists()
    until = (dt.datetime.fromisoformat(ds["created_at"]) + dt.timedelta(days=3650)).date().isoformat()

    steward = open_session(chromium, svc, "steward")
    steward.goto(f"{svc.url}/datasets/{ds['id']}")
    assert until in steward.inner_text("#retention")
    assert steward.locator("#erase-raw").is_hidden()  # folded until asked for
    steward.click("#erasure summary")

    # a wrong name: refused beside the field, the reason kept, nothing erased
    steward.fill("#erase-raw textarea[name=reason]", REASON)
    steward.fill("#erase-raw input[name=confirm_name]", "adult")
    steward.click("#erase-raw button[type=submit]")
    error = steward.inner_text("#field-confirm_name .field-error")
    assert "does not match" in error and "adult-erase" in error
    assert steward.input_value("#erase-raw textarea[name=reason]") == REASON
    assert raw.exists()
    assert svc.api("steward", "GET", "/datasets/adult-erase").json()["dataset"]["raw_erased_at"] is None

    steward.fill("#erase-raw input[name=confirm_name]", "adult-erase")
    steward.click("#erase-raw button[type=submit]")
    steward.wait_for_selector(".flash")
    assert "was erased" in steward.inner_text(".flash")
    shown = steward.inner_text("#raw-erased")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert f"erased on {today} by {svc.tokens['steward:username']}: {REASON}" in shown
    assert steward.locator("#erase-raw").count() == 0
    assert not raw.exists()
    screenshots(steward, "dataset-raw-erased")

    analyst = open_session(chromium, svc, "analyst")
    analyst.goto(f"{svc.url}/datasets/{ds['id']}")
    shown = analyst.inner_text("#raw-erased")
    assert f"Raw data erased on {today}" in shown
    assert REASON not in analyst.inner_text("main") and svc.tokens["steward:username"] not in shown
    assert analyst.locator("#erase-raw").count() == 0

    # a release that reads the rows is refused on the request form, with the erasure's date, nothing charged
    analyst.goto(f"{svc.url}/datasets/{ds['id']}/request")
    analyst.select_option("#method", release_method())
    analyst.fill("#epsilon", "0.5")
    analyst.fill("#delta", "1e-9")
    analyst.fill("#rows", "100")
    analyst.click("#request-form button[type=submit]")
    refused = analyst.inner_text("main")
    assert f"was erased on {today}" in refused and REASON not in refused
    assert svc.api("steward", "GET", "/datasets/adult-erase/ledger").json()["ledger"]["history"] == []
    assert steward.js_errors == [] and analyst.js_errors == []
