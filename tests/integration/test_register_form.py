"""The register form (Flask test client on a real SQLite file and storage directory): every invalid field
is reported in one round, the uploaded table is kept in the steward's private staging so the fixed form
registers without choosing it again, a table with duplicated column names is refused next to the file
field, and a staged upload is the uploader's only and expires."""

from __future__ import annotations

import io
import re
import time
from html import unescape

import pytest
from sqlalchemy import func, select

from core import staging
from core.db import dispose_engines, session_scope
from core.models import Dataset
from core.storage import get_storage, sha256_file
from tests.browser.support import DEMO_CSV, DEMO_SCHEMA, make_app_env
from tests.integration.test_webapp_pages import field_error

pytestmark = [pytest.mark.integration]


@pytest.fixture
def env(tmp_path):
    env = make_app_env(tmp_path)
    yield env
    dispose_engines()


def staged_token(html: str) -> str:
    m = re.search(r'name="staged" type="hidden" value="([^"]*)"', html)
    assert m, "no staged field on the form"
    return m.group(1)


def staged_files(env) -> list[str]:
    return [k for k in get_storage(env.settings).list_keys("staging/") if not k.endswith("meta.json")]


def datasets(env) -> int:
    with session_scope(env.settings) as s:
        return s.execute(select(func.count()).select_from(Dataset)).scalar_one()


def csv_file(data: bytes = b"", name: str = "adult.csv") -> tuple[io.BytesIO, str]:
    return io.BytesIO(data or DEMO_CSV.read_bytes()), name


def test_every_invalid_field_in_one_round_then_registered_without_choosing_the_file_again(env):
    steward = env.pages("steward")
    resp = steward.post_form(
        "/datasets/new",
        "/datasets/new",
        {
            "name": "bad name!",
            "epsilon_budget": "lots",
            "delta_budget": "-1",
            "policy_text": "privacy: [not, a, mode]\n",
            "schema_text": "columns: [",
            "description": "kept as typed",
            "file": csv_file(),
        },
        content_type="multipart/form-data",
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "letters, digits" in field_error(html, "name")
    assert "epsilon_budget must be a number" in field_error(html, "epsilon_budget")
    assert "delta_budget" in field_error(html, "delta_budget")
    assert "not valid YAML" in unescape(field_error(html, "schema_text"))
    assert field_error(html, "policy_text")
    assert field_error(html, "file") == ""
    assert "using <strong>adult.csv</strong> (choose another to replace)" in html
    assert "kept as typed" in html and 'value="bad name!"' in unescape(html)
    token = staged_token(html)
    assert token and len(staged_files(env)) == 1 and datasets(env) == 0

    # fixed, and sent with no file chosen: the kept upload is registered
    resp = steward.post_form(
        "/datasets/new",
        "/datasets/new",
        {
            "name": "adult",
            "epsilon_budget": "3",
            "delta_budget": "1e-6",
            "schema_text": DEMO_SCHEMA.read_text(),
            "description": "kept as typed",
            "staged": token,
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302, unescape(resp.get_data(as_text=True))[:3000]
    ds = env.api("steward", "GET", "/datasets/adult").get_json()["dataset"]
    assert ds["schema_confirmed"] and ds["internal"]["original_filename"] == "adult.csv"
    assert ds["internal"]["sha256"] == sha256_file(DEMO_CSV) and ds["internal"]["rows"] == 3000
    assert staged_files(env) == []  # the staged copy is gone once registered


def test_a_staged_upload_is_the_uploaders_only(env):
    steward = env.pages("steward")
    html = steward.post_form(
        "/datasets/new",
        "/datasets/new",
        {"name": "", "epsilon_budget": "3", "delta_budget": "1e-6", "file": csv_file()},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    token = staged_token(html)
    other = env.pages("steward2")
    resp = other.post_form(
        "/datasets/new",
        "/datasets/new",
        {"name": "stolen", "epsilon_budget": "3", "delta_budget": "1e-6", "staged": token},
        content_type="multipart/form-data",
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "choose the table to upload" in field_error(html, "file")
    assert "adult.csv" not in html and datasets(env) == 0


def test_a_table_with_duplicated_column_names_is_refused_next_to_the_file(env):
    steward = env.pages("steward")
    data = b"age,sex,age,income,sex\n30,F,31,low,F\n40,M,41,high,M\n"
    resp = steward.post_form(
        "/datasets/new",
        "/datasets/new",
        {"name": "dups", "epsilon_budget": "3", "delta_budget": "1e-6", "file": csv_file(data, "people.csv")},
        content_type="multipart/form-data",
    )
    html = unescape(resp.get_data(as_text=True))
    assert resp.status_code == 422
    error = field_error(html, "file")
    assert "people.csv has duplicate column names: 'age', 'sex'" in error and "distinct name" in error
    assert 'id="staged-file"' not in html and staged_token(html) == ""  # a broken file is not kept
    assert staged_files(env) == [] and datasets(env) == 0

    # with another invalid field, both are reported in the same round
    resp = steward.post_form(
        "/datasets/new",
        "/datasets/new",
        {"name": "bad name!", "epsilon_budget": "3", "delta_budget": "1e-6", "file": csv_file(data, "people.csv")},
        content_type="multipart/form-data",
    )
    html = unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400
    assert "duplicate column names" in field_error(html, "file") and "letters, digits" in field_error(html, "name")


def test_the_schema_file_is_kept_as_text_and_a_table_that_does_not_fit_keeps_the_upload(env):
    steward = env.pages("steward")
    schema = "columns:\n  age: {kind: ordinal, min: 17, max: 90}\n"
    resp = steward.post_form(
        "/datasets/new",
        "/datasets/new",
        {
            "name": "adult",
            "epsilon_budget": "3",
            "delta_budget": "1e-6",
            "file": csv_file(),
            "schema_file": (io.BytesIO(schema.encode()), "schema.yaml"),
        },
        content_type="multipart/form-data",
    )
    html = unescape(resp.get_data(as_text=True))
    assert resp.status_code == 422 and "the table does not fit the schema" in field_error(html, "schema_text")
    assert "age: {kind: ordinal, min: 17, max: 90}" in html  # the schema file's text, now in the field
    assert "using <strong>adult.csv</strong>" in html and len(staged_files(env)) == 1


def test_staged_uploads_expire(env, tmp_path):
    storage = get_storage(env.settings)
    kept = staging.stage(storage, 7, io.BytesIO(b"a,b\n1,2\n"), "t.csv", tmp_path)
    assert staging.find(storage, 7, kept.token) == kept
    assert staging.find(storage, 8, kept.token) is None  # looked up under its user only
    assert staging.find(storage, 7, "../../datasets/1") is None
    assert staging.sweep(storage, now=time.time() + 60) == 0
    assert staging.sweep(storage, now=time.time() + staging.STAGED_SECONDS + 1) == 1
    assert staging.find(storage, 7, kept.token) is None and storage.list_keys("staging/") == []
