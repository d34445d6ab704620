"""Editing a confirmed public schema from the dataset page and the API (Flask test client on a real
SQLite file and storage directory).

The steward edits the current schema's YAML and gets the next version, with the disclosure preflight
warnings; a refused edit shows its error next to the text, keeps the text typed and changes nothing;
stewards see the history with its notes, analysts the version in force only.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
import yaml

from core.db import dispose_engines
from tests.browser.support import DEMO_SCHEMA, make_app_env, register_demo
from tests.integration.test_webapp_pages import field_error

pytestmark = [pytest.mark.integration]


@pytest.fixture
def env(tmp_path):
    env = make_app_env(tmp_path)
    register_demo(env)
    yield env
    dispose_engines()


def textarea(html: str, name: str) -> str:
    m = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', html, re.S)
    assert m, f"no textarea {name}"
    return unescape(m.group(1)).removeprefix("\r\n")  # WTForms starts a textarea with a line break


def edited_schema(band: int) -> str:
    doc = yaml.safe_load(DEMO_SCHEMA.read_text())
    doc["columns"]["age"]["hierarchy"] = {"band": band}
    return yaml.safe_dump(doc, sort_keys=False)


def versions(env) -> list[int]:
    return [v["version"] for v in env.api("steward", "GET", "/datasets/adult/schema/versions").get_json()["versions"]]


def test_the_steward_edits_the_schema_on_the_page_and_sees_the_history(env):
    steward = env.pages("steward")
    page = steward.get("/datasets/1").get_data(as_text=True)
    assert 'id="edit-schema"' in page and 'id="confirm-schema"' not in page
    # prefilled with the schema in force, edited from version 1
    assert (
        yaml.safe_load(textarea(page, "schema_text"))
        == env.api("steward", "GET", "/datasets/adult").get_json()["dataset"]["schema"]
    )
    assert re.search(r'name="base_version" type="hidden" value="1"', page)

    resp = steward.post_form(
        "/datasets/1",
        "/datasets/1/schema",
        {"schema_text": edited_schema(10), "note": "age bands of 10 (census tables)", "base_version": "1"},
    )
    assert resp.status_code == 302
    page = steward.get("/datasets/1").get_data(as_text=True)
    assert "Public schema version 2 recorded (changed: age)" in unescape(page)
    assert "version 2" in page.split('id="schema-version-tag"', 1)[1].split("</span>", 1)[0]
    history = page.split('id="schema-history"', 1)[1].split("</table>", 1)[0]
    assert [int(v) for v in re.findall(r'data-version="(\d+)"', history)] == [2, 1]
    assert "age bands of 10 (census tables)" in history and env.users["steward"] in history
    assert 'value="2"' in page.split('id="edit-schema"', 1)[1].split("</form>", 1)[0]
    assert env.api("steward", "GET", "/datasets/adult").get_json()["dataset"]["schema"]["columns"]["age"][
        "hierarchy"
    ] == {"band": 10.0}

    # the analyst sees the version in force, neither the history nor the note nor the form
    analyst = env.pages("analyst").get("/datasets/1").get_data(as_text=True)
    assert 'id="schema-version"' in analyst and "<strong>2</strong>" in analyst.split('id="schema-version"', 1)[1]
    assert 'id="schema-history"' not in analyst and "census tables" not in analyst
    assert 'id="edit-schema"' not in analyst
    token_page = env.pages("analyst")
    resp = token_page.post_raw(
        "/datasets/1/schema", {"schema_text": edited_schema(20), "csrf_token": token_page.csrf()}
    )
    assert resp.status_code == 403 and versions(env) == [2, 1]


def test_a_refused_edit_keeps_the_text_and_the_version_in_force(env):
    steward = env.pages("steward")
    bad = edited_schema(10).replace("kind: ordinal", "kind: ordinall", 1)
    resp = steward.post_form(
        "/datasets/1", "/datasets/1/schema", {"schema_text": bad, "note": "typo", "base_version": "1"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "columns.age.kind" in field_error(html, "schema_text")
    assert textarea(html, "schema_text") == bad  # nothing typed is lost
    assert textarea(html, "note") == "typo"
    assert re.search(r'<details id="edit-schema-panel"\s+open', html)
    assert versions(env) == [1]

    # a table the schema does not fit
    missing = edited_schema(10).replace("columns:\n", "columns:\n  badge:\n    kind: ordinal\n", 1)
    resp = steward.post_form("/datasets/1", "/datasets/1/schema", {"schema_text": missing, "base_version": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "version 1 stays in force" in field_error(html, "schema_text")
    assert textarea(html, "schema_text") == missing

    # edited from a version another steward has replaced meanwhile
    r = env.api("steward2", "PUT", "/datasets/adult/schema", json={"schema": edited_schema(20), "note": "bands of 20"})
    assert r.status_code == 200 and r.get_json()["dataset"]["schema_version"] == 2
    resp = steward.post_form(
        "/datasets/1", "/datasets/1/schema", {"schema_text": edited_schema(10), "base_version": "1"}
    )
    html = unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and f"version 2 was confirmed by {env.users['steward2']}" in html
    assert versions(env) == [2, 1]

    # without the CSRF token nothing happens
    resp = steward.post_raw("/datasets/1/schema", {"schema_text": edited_schema(10)})
    assert resp.status_code == 400 and versions(env) == [2, 1]


def test_the_api_records_versions_returns_the_preflight_and_shows_history_to_staff_only(env):
    r = env.api(
        "steward",
        "PUT",
        "/datasets/adult/schema",
        json={"schema": edited_schema(10), "note": "bands of 10", "base_version": 1},
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["dataset"]["schema_version"] == 2
    assert isinstance(body["issues"], list)
    # the same schema again: nothing recorded, and said so
    r = env.api("steward", "PUT", "/datasets/adult/schema", json={"schema": edited_schema(10)})
    assert r.status_code == 200 and r.get_json()["dataset"]["schema_version"] == 2
    assert "schema_unchanged" in [i["code"] for i in r.get_json()["issues"]]
    # a stale base version is a conflict naming the version in force
    r = env.api("steward", "PUT", "/datasets/adult/schema", json={"schema": edited_schema(20), "base_version": 1})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "schema_version_conflict"

    history = env.api("admin", "GET", "/datasets/adult/schema/versions").get_json()["versions"]
    assert [(v["version"], v["note"]) for v in history] == [(2, "bands of 10"), (1, None)]
    assert history[0]["schema"]["columns"]["age"]["hierarchy"] == {"band": 10.0}
    assert history[1]["schema"]["columns"]["age"]["hierarchy"] == {"band": 5.0}
    r = env.api("analyst", "GET", "/datasets/adult/schema/versions")
    assert r.status_code == 403
    assert env.api("analyst2", "GET", "/datasets/adult/schema/versions").status_code == 404
    shown = env.api("analyst", "GET", "/datasets/adult").get_json()["dataset"]
    assert shown["schema_version"] == 2 and "bands of 10" not in str(shown)

    # a release requested now records version 2 and the analyst sees it
    r = env.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "adult", "method": "dp-marginals", "epsilon": 0.25, "delta": 0, "rows": 300},
    )
    assert r.status_code == 202, r.get_json()
    job = r.get_json()["release"]
    assert job["schema_version"] == 2
    page = env.pages("analyst").get(f"/releases/{job['id']}").get_data(as_text=True)
    assert "version 2" in page.split('id="job-schema-version"', 1)[1].split("</td>", 1)[0]
