"""The register form in real headless Chromium: two invalid fields are both reported in one round and
the chosen file is kept, so the fixed form registers without choosing it again; a CSV with duplicated
column names gets an error naming them next to the file field."""

from __future__ import annotations

import pytest

from core.storage import sha256_file
from tests.browser.support import DEMO_CSV
from tests.browser.test_release_flow import open_session
from tests.browser.test_schema_editor import shoot_section

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def test_register_form_reports_every_field_and_keeps_the_file(web, chromium, tmp_path):
    svc = web
    steward = open_session(chromium, svc, "steward")
    steward.goto(svc.url + "/datasets/new")
    steward.fill("#name", "census 2024!")
    steward.fill("#epsilon_budget", "lots")
    steward.fill("#description", "the census sample again")
    steward.set_input_files("#file", str(DEMO_CSV))
    steward.click("#register-form button[type=submit]")

    steward.wait_for_selector("#field-name .field-error")
    assert "letters, digits" in steward.inner_text("#field-name .field-error")
    assert "epsilon_budget must be a number" in steward.inner_text("#field-epsilon_budget .field-error")
    assert steward.inner_text("#staged-file") == "using adult_sample.csv (choose another to replace)"
    assert steward.input_value("#description") == "the census sample again"
    shoot_section(steward, "#register-form", "register-form-errors")
    assert [d["name"] for d in svc.api("steward", "GET", "/datasets").json()["datasets"]] == ["adult"]

    steward.fill("#name", "census-2024")
    steward.fill("#epsilon_budget", "2")
    steward.click("#register-form button[type=submit]")  # no file chosen this time
    steward.wait_for_url(f"{svc.url}/datasets/*")
    assert "Dataset registered" in steward.inner_text("main")
    ds = svc.api("steward", "GET", "/datasets/census-2024").json()["dataset"]
    assert ds["internal"]["original_filename"] == "adult_sample.csv"
    assert ds["internal"]["sha256"] == sha256_file(DEMO_CSV)

    dup = tmp_path / "people.csv"
    dup.write_text("age,sex,age,income\n30,F,31,low\n40,M,41,high\n")
    steward.goto(svc.url + "/datasets/new")
    steward.fill("#name", "people")
    steward.set_input_files("#file", str(dup))
    steward.click("#register-form button[type=submit]")
    steward.wait_for_selector("#field-file .field-error")
    error = steward.inner_text("#field-file .field-error")
    assert "people.csv has duplicate column names: 'age'" in error and "distinct name" in error
    assert steward.locator("#staged-file").count() == 0  # a broken file is not kept
    assert steward.input_value("#name") == "people"
    assert steward.js_errors == []
