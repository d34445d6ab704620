"""The per-column schema editor in real headless Chromium: a steward confirms a proposed schema column
by column (a kind changed, a quasi-identifier with a hierarchy, a suggestion accepted), a broken value is
shown in its column's row with everything typed kept and nothing saved, and an edit becomes the next
version in the history. The pages' CSP lets nothing inline run: any CSP refusal fails the test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.db import write_session
from core.models import Dataset
from tests.browser.support import register_demo_table
from tests.browser.test_release_flow import open_session

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

SUGGESTIONS = {
    "quasi_identifiers": [{"column": "sex", "reason": "recorded in public registers"}],
    "sensitive": [{"column": "income", "reason": "an outcome people keep private"}],
    "target": None,
    "hierarchies": {"age": {"band": 10}},
    "flags": [{"column": "fnlwgt", "issue": "weight", "message": "fnlwgt looks like a survey weight, not a fact"}],
}


def shoot_section(page, selector: str, name: str) -> None:
    """A PNG of one section of the page into $SYNTHGATE_SCREENSHOTS (the README's docs/screenshots), if set."""
    target = os.environ.get("SYNTHGATE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.locator(selector).screenshot(path=str(Path(target) / f"{name}.png"))


def dataset(svc, name: str) -> dict:
    return svc.api("steward", "GET", f"/datasets/{name}").json()["dataset"]


def test_steward_confirms_and_edits_the_schema_column_by_column(web, chromium):
    svc = web
    ds_id = register_demo_table(svc, "census", schema=False, grant=None, epsilon_budget="2", delta_budget="1e-6")["id"]
    with write_session(svc.settings) as s:
        s.get(Dataset, ds_id).schema_suggestions = SUGGESTIONS

    steward = open_session(chromium, svc, "steward")
    steward.goto(f"{svc.url}/datasets/{ds_id}")
    assert steward.locator("#schema-editor").is_visible()
    assert steward.locator("#confirm-schema").is_hidden()  # the YAML is folded under "YAML (experts)"
    assert "suggested: quasi-identifier — recorded in public registers" in steward.inner_text("#col-sex")
    assert "suggested hierarchy: band 10" in steward.inner_text("#col-age")
    assert "survey weight" in steward.inner_text("#col-fnlwgt")
    assert steward.input_value("#col-sex-role") == ""  # nothing suggested is applied until accepted

    # accepting fills the fields it concerns; unticking gives back what was there
    steward.check("#accept-age")
    assert steward.input_value("#col-age-hierarchy") == "band 10"
    steward.uncheck("#accept-age")
    assert steward.input_value("#col-age-hierarchy") == ""
    steward.check("#accept-sex")
    assert steward.input_value("#col-sex-role") == "quasi-identifier"

    # a kind changed: the inputs it does not use are hidden, those it uses shown
    assert steward.locator("#col-hours-per-week-values").is_visible()  # an ordinal takes bounds or values
    steward.select_option("#col-hours-per-week-kind", "continuous")
    assert steward.locator("#col-hours-per-week-values").is_hidden()
    assert steward.locator("#col-hours-per-week-max").is_visible()
    steward.fill("#col-hours-per-week-max", "99")
    steward.select_option("#col-age-role", "quasi-identifier")
    steward.fill("#col-age-min", "17")
    steward.fill("#col-age-max", "ninety")  # broken
    steward.fill("#col-age-hierarchy", "band 5")
    steward.click("#schema-editor button[type=submit]")

    steward.wait_for_selector("#col-age-error")
    assert "max must be a number" in steward.inner_text("#col-age-error")
    assert steward.locator("#col-sex-error").count() == 0
    assert steward.input_value("#col-age-max") == "ninety" and steward.input_value("#col-age-hierarchy") == "band 5"
    assert steward.input_value("#col-hours-per-week-kind") == "continuous"
    assert steward.input_value("#col-hours-per-week-max") == "99"
    assert steward.is_checked("#accept-sex") and steward.input_value("#col-sex-role") == "quasi-identifier"
    assert not dataset(svc, "census")["schema_confirmed"]
    shoot_section(steward, "#schema", "schema-editor")

    steward.fill("#col-age-max", "90")
    steward.click("#schema-editor button[type=submit]")
    steward.wait_for_selector(".flash")
    assert "confirmed as version 1" in steward.inner_text("main")
    confirmed = dataset(svc, "census")
    schema = confirmed["schema"]
    assert confirmed["schema_confirmed"] and confirmed["schema_version"] == 1
    assert schema["quasi_identifiers"] == ["age", "sex"]
    assert schema["columns"]["age"]["hierarchy"] == {"band": 5} and schema["columns"]["age"]["max"] == 90
    assert schema["columns"]["hours-per-week"]["kind"] == "continuous" and "sensitive" not in schema
    assert schema["columns"]["hours-per-week"]["max"] == 99

    # an edit of the confirmed schema, through the same editor, becomes version 2
    steward.click("#schema-editor-panel summary")
    assert steward.input_value("#col-age-hierarchy") == "band 5"
    steward.fill("#col-age-hierarchy", "edges 30, 50")
    steward.fill("#editor-note", "age cut at 30 and 50")
    steward.click("#schema-editor button[type=submit]")
    steward.wait_for_selector(".flash")
    assert "version 2 recorded" in steward.inner_text("main")
    rows = steward.locator("#schema-history tbody tr")
    assert rows.count() == 2 and "age cut at 30 and 50" in rows.nth(0).inner_text()
    assert dataset(svc, "census")["schema"]["columns"]["age"]["hierarchy"] == {"edges": [30, 50]}
    # the YAML view shows the version in force
    steward.click("#edit-schema-panel summary")
    assert "30" in steward.input_value("#edit-schema textarea[name=schema_text]")

    resp = svc.api("steward", "POST", "/datasets/census/grants", json={"user": svc.tokens["analyst:username"]})
    assert resp.status_code == 201, resp.text
    analyst = open_session(chromium, svc, "analyst")
    analyst.goto(f"{svc.url}/datasets/{ds_id}")
    text = analyst.inner_text("main")
    assert "suggested" not in text and "survey weight" not in text
    assert analyst.locator("#schema-editor").count() == 0
    assert steward.js_errors == [] and analyst.js_errors == []


def test_the_editor_is_a_plain_form_without_javascript(web, chromium):
    svc = web
    from tests.browser.support import PASSWORD

    context = chromium.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    page.goto(svc.url + "/login")
    page.fill("#username", svc.tokens["steward:username"])
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(svc.url + "/")
    page.goto(svc.url + "/datasets/1")
    page.click("#schema-editor-panel summary")  # <details> opens without script
    # no script: every input stays visible, whatever the kind
    assert page.locator("#col-fnlwgt-values").is_visible() and page.locator("#col-sex-min").is_visible()
    before = dataset(svc, "adult")["schema_version"]
    page.fill("#col-age-hierarchy", "band 10")
    page.fill("#col-workclass-values", "Private, nowhere-gov")  # a category list edited as text
    page.click("#schema-editor button[type=submit]")
    page.wait_for_selector(".flash")
    assert f"version {before + 1} recorded" in page.inner_text("main")
    schema = dataset(svc, "adult")["schema"]
    assert schema["columns"]["age"]["hierarchy"] == {"band": 10}
    assert schema["columns"]["workclass"]["values"] == ["Private", "nowhere-gov"]
    context.close()
