"""A steward edits a confirmed public schema in real headless Chromium: a broken edit is shown next
to the text without losing it, a good one becomes version 2 in the history; the analyst sees the
version in force and nothing of the history."""

from __future__ import annotations

import pytest
import yaml

from tests.browser.test_release_flow import open_session

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def test_steward_edits_the_schema_as_a_new_version(web, chromium, screenshots):
    svc = web
    steward = open_session(chromium, svc, "steward")
    steward.goto(svc.url + "/datasets/1")
    assert "version 1" in steward.inner_text("#schema-version-tag")
    assert steward.locator("#edit-schema").is_hidden()  # folded until asked for
    steward.click("#edit-schema-panel summary")
    text = steward.input_value("#edit-schema textarea[name=schema_text]")
    schema = yaml.safe_load(text)
    assert schema == svc.api("steward", "GET", "/datasets/adult").json()["dataset"]["schema"]

    # a broken edit: the error is beside the text, the text and the note stay as typed
    broken = text.replace("kind: ordinal", "kind: ordinary", 1)
    steward.fill("#edit-schema textarea[name=schema_text]", broken)
    steward.fill("#edit-schema textarea[name=note]", "age bands of 10")
    steward.click("#edit-schema button[type=submit]")
    error = steward.inner_text("#field-schema_text .field-error")
    assert "kind" in error and "ordinal" in error
    assert steward.input_value("#edit-schema textarea[name=schema_text]") == broken
    assert steward.input_value("#edit-schema textarea[name=note]") == "age bands of 10"
    assert svc.api("steward", "GET", "/datasets/adult").json()["dataset"]["schema_version"] == 1

    schema["columns"]["age"]["hierarchy"] = {"band": 10}
    steward.fill("#edit-schema textarea[name=schema_text]", yaml.safe_dump(schema, sort_keys=False))
    steward.click("#edit-schema button[type=submit]")
    steward.wait_for_selector(".flash")
    assert "version 2 recorded" in steward.inner_text("main")
    assert "version 2" in steward.inner_text("#schema-version-tag")
    rows = steward.locator("#schema-history tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-version") == "2" and "age bands of 10" in rows.nth(0).inner_text()
    assert svc.tokens["steward:username"] in rows.nth(0).inner_text()
    assert rows.nth(1).get_attribute("data-version") == "1"
    screenshots(steward, "dataset-schema-history")

    analyst = open_session(chromium, svc, "analyst")
    analyst.goto(svc.url + "/datasets/1")
    assert "Version 2" in analyst.inner_text("#schema-version")
    assert analyst.locator("#schema-history").count() == 0 and analyst.locator("#edit-schema").count() == 0
    assert "age bands of 10" not in analyst.inner_text("main")
    assert steward.js_errors == [] and analyst.js_errors == []
