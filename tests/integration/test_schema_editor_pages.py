"""The per-column schema editor on the dataset page (Flask test client on a real SQLite file and storage
directory): the form a browser would post, read from the page, goes through confirm_schema; errors are
shown in their column's row with everything typed kept; suggestions are for stewards only."""

from __future__ import annotations

from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest

from core.db import dispose_engines, write_session
from core.models import AuditEvent, Dataset
from tests.browser.support import csrf_token, make_app_env, register_demo

pytestmark = [pytest.mark.integration]

SUGGESTIONS = {
    "quasi_identifiers": [{"column": "sex", "reason": "sex is public in most registers"}],
    "sensitive": [{"column": "income", "reason": "income is the outcome people keep private"}],
    "target": {"column": "income", "reason": "a two-valued outcome"},
    "hierarchies": {"age": {"band": 10}},
    "flags": [{"column": "fnlwgt", "issue": "weight", "message": "fnlwgt looks like a survey weight"}],
}


class FormReader(HTMLParser):
    """What a browser posts for the form with id `form_id`: text, hidden, checked boxes, selects, textareas."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            if a.get("type") != "checkbox" or "checked" in a:
                self.data[name] = a.get("value") or ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.data):
            self.data[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea] += data


def editor_form(html: str) -> dict[str, Any]:
    reader = FormReader("schema-editor")
    reader.feed(html)
    assert reader.data, "no schema editor on the page"
    return reader.data


def col(form: dict[str, Any], name: str) -> str:
    """The field prefix of column `name` (col-<i>-)."""
    key = next(k for k, v in form.items() if k.endswith("-name") and v == name)
    return key.removesuffix("name")


def row_error(html: str, slug: str) -> str:
    start = html.find(f'id="col-{slug}-error"')
    return unescape(html[html.index(">", start) + 1 : html.index("</p>", start)]) if start >= 0 else ""


@pytest.fixture
def env(tmp_path):
    env = make_app_env(tmp_path)
    register_demo(env, schema=False)
    with write_session(env.settings) as s:
        s.get(Dataset, 1).schema_suggestions = SUGGESTIONS
    yield env
    dispose_engines()


def schema_of(env) -> dict[str, Any]:
    return env.api("steward", "GET", "/datasets/adult").get_json()["dataset"]


def test_the_steward_confirms_a_proposed_schema_column_by_column(env):
    steward = env.pages("steward")
    html = steward.get("/datasets/1").get_data(as_text=True)
    assert 'id="schema-editor"' in html and 'id="confirm-schema"' in html  # the YAML stays, for experts
    text = unescape(html)
    assert "suggested: quasi-identifier — sex is public in most registers" in text
    assert "suggested hierarchy: band 10" in text and "fnlwgt looks like a survey weight" in text
    assert 'id="accept-sex"' in html and 'id="accept-age"' in html

    form = editor_form(html)
    age, sex, income, hours = col(form, "age"), col(form, "sex"), col(form, "income"), col(form, "hours-per-week")
    assert form[age + "kind"] == "ordinal" and form[sex + "role"] == ""  # nothing suggested is applied
    form |= {
        age + "min": "17",
        age + "max": "90",
        age + "role": "quasi-identifier",
        age + "hierarchy": "band 5",
        sex + "accept": "y",  # accept the suggested role of sex
        income + "role": "target",
        hours + "kind": "continuous",
    }
    resp = steward.client.post("/datasets/1/schema/columns", data=form)
    assert resp.status_code == 302, unescape(resp.get_data(as_text=True))[:3000]
    ds = schema_of(env)
    assert ds["schema_confirmed"] and ds["schema_version"] == 1
    schema = ds["schema"]
    assert schema["columns"]["age"]["hierarchy"] == {"band": 5} and schema["columns"]["age"]["min"] == 17
    assert schema["quasi_identifiers"] == ["age", "sex"] and schema["target"] == "income"
    assert schema["columns"]["hours-per-week"]["kind"] == "continuous"
    assert schema["columns"]["hours-per-week"]["integer"] is True  # not in the editor: kept
    assert "hierarchy" not in schema["columns"]["sex"]  # only what was accepted
    with write_session(env.settings) as s:
        kinds = [e.action for e in s.query(AuditEvent).filter(AuditEvent.object_type == "dataset")]
    assert "dataset.confirm_schema" in kinds  # the same path as the YAML form, audited the same way
    page = steward.get("/datasets/1").get_data(as_text=True)
    assert "Public schema confirmed as version 1" in page


def test_errors_are_shown_in_their_row_with_everything_typed_kept(env):
    steward = env.pages("steward")
    form = editor_form(steward.get("/datasets/1").get_data(as_text=True))
    age, workclass, sex = col(form, "age"), col(form, "workclass"), col(form, "sex")
    form |= {age + "min": "seventeen", age + "hierarchy": "band 5", sex + "role": "sensitive"}
    resp = steward.client.post("/datasets/1/schema/columns", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "min must be a number" in row_error(html, "age") and row_error(html, "sex") == ""
    again = editor_form(html)
    assert again[age + "min"] == "seventeen" and again[age + "hierarchy"] == "band 5"
    assert again[sex + "role"] == "sensitive"
    assert not schema_of(env)["schema_confirmed"]

    # the table check (confirm_schema's) puts its finding in the row of the column it names
    form |= {age + "min": "17", workclass + "kind": "continuous", workclass + "values": ""}
    resp = steward.client.post("/datasets/1/schema/columns", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "'workclass' is declared continuous" in row_error(html, "workclass")
    assert row_error(html, "age") == ""
    assert editor_form(html)[workclass + "kind"] == "continuous"
    assert not schema_of(env)["schema_confirmed"]


def test_an_edit_becomes_the_next_version_and_analysts_see_no_suggestion(env):
    steward = env.pages("steward")
    form = editor_form(steward.get("/datasets/1").get_data(as_text=True))
    assert steward.client.post("/datasets/1/schema/columns", data=form).status_code == 302
    html = steward.get("/datasets/1").get_data(as_text=True)
    assert 'id="schema-editor-panel"' in html and 'id="edit-schema-panel"' in html
    form = editor_form(html)
    assert form["base_version"] == "1"
    form |= {col(form, "age") + "hierarchy": "edges 30, 50", "note": "age cut at 30 and 50"}
    assert steward.client.post("/datasets/1/schema/columns", data=form).status_code == 302
    ds = schema_of(env)
    assert ds["schema_version"] == 2 and ds["schema"]["columns"]["age"]["hierarchy"] == {"edges": [30, 50]}
    history = steward.get("/datasets/1").get_data(as_text=True).split('id="schema-history"', 1)[1]
    assert "age cut at 30 and 50" in history.split("</table>", 1)[0]

    analyst = env.pages("analyst")
    page = unescape(analyst.get("/datasets/1").get_data(as_text=True))
    assert "suggested" not in page and "survey weight" not in page and 'id="schema-editor"' not in page
    resp = analyst.post_raw("/datasets/1/schema/columns", {**form, "csrf_token": csrf_token(page)})
    assert resp.status_code == 403 and schema_of(env)["schema_version"] == 2
    admin_page = unescape(env.pages("admin").get("/datasets/1").get_data(as_text=True))
    assert "suggested" not in admin_page and 'id="schema-editor"' not in admin_page


def test_a_proposal_confirmed_meanwhile_by_another_steward_is_not_overwritten(env):
    steward = env.pages("steward")
    form = editor_form(steward.get("/datasets/1").get_data(as_text=True))
    assert form["base_version"] == "0"
    other = env.pages("steward2")
    assert (
        other.client.post(
            "/datasets/1/schema/columns", data=editor_form(other.get("/datasets/1").get_data(as_text=True))
        ).status_code
        == 302
    )
    form[col(form, "age") + "hierarchy"] = "band 5"
    resp = steward.client.post("/datasets/1/schema/columns", data=form)
    html = unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and f"version 1 was confirmed by {env.users['steward2']}" in html
    assert editor_form(resp.get_data(as_text=True))[col(form, "age") + "hierarchy"] == "band 5"
    assert "hierarchy" not in schema_of(env)["schema"]["columns"]["age"] and schema_of(env)["schema_version"] == 1
