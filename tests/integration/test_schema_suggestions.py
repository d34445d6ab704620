"""Suggestions stored with a proposed schema: the steward sees them through the API, an analyst never does
(neither in the API's views nor on the dataset page), and a steward's own schema stores none.

The web app runs in process on a real SQLite file and storage directory (tests/browser/support.py).
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from core.db import dispose_engines, session_scope
from core.models import Dataset
from tests.browser.support import DEMO_CSV, DEMO_SCHEMA, make_app_env, register_demo

pytestmark = [pytest.mark.integration]

ZIPS = ["02139-4307", "02138-2901", "10001-2062", "10003-1502", "94103-1127", "94110-3305"]  # ZIP+4, as text
ROWS = 240
CSV = "age,zip,sex,balance,readmitted\n" + "".join(
    f"{20 + i % 60},{ZIPS[i % 6]},{'FM'[i % 2]},{1000 + 37 * i},{(i // 3) % 2}\n" for i in range(ROWS)
)
CONFIRMED = """
columns:
  age: {kind: ordinal, min: 0, max: 100}
  zip: {kind: identifier}
  sex: {kind: categorical, values: [F, M]}
  balance: {kind: continuous, min: 0, max: 100000}
  readmitted: {kind: categorical, values: [0, 1]}
"""
# what the suggestions say: words of their reasons and flags, and ZIPs read from the rows (the hierarchy's groups)
MARKS = ["schema_suggestions", "name looks like", "no hierarchy suggested", "two-valued column", "021**", *ZIPS]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_app_env(tmp_path_factory.mktemp("suggest"))
    r = env.api(
        "steward",
        "POST",
        "/datasets",
        data={
            "name": "visits",
            "epsilon_budget": "3",
            "delta_budget": "1e-6",
            "file": (io.BytesIO(CSV.encode()), "v.csv"),
        },
    )
    assert r.status_code == 201, r.get_json()
    assert env.api("steward", "POST", "/datasets/visits/grants", json={"user": env.users["analyst"]}).status_code == 201
    yield env
    dispose_engines()


def _hidden(text: str) -> None:
    for mark in MARKS:
        assert mark not in text, mark


def test_registration_without_a_schema_stores_suggestions_the_steward_sees(env) -> None:
    with session_scope(env.settings) as s:
        stored = s.execute(select(Dataset.schema_suggestions).where(Dataset.name == "visits")).scalar_one()
    assert [q["column"] for q in stored["quasi_identifiers"]] == ["age", "zip", "sex"]
    groups = stored["hierarchies"]["zip"]["groups"]
    assert groups == {"021**": ["02138-2901", "02139-4307"], "100**": ZIPS[2:4], "941**": ZIPS[4:]}
    assert stored["target"]["column"] == "readmitted"
    for who in ("steward", "admin"):
        view = env.api(who, "GET", "/datasets/visits").get_json()["dataset"]
        assert view["schema_suggestions"] == stored


def test_an_analyst_sees_no_suggestion_in_the_api_or_on_the_page(env) -> None:
    def analyst_sees() -> None:
        one = env.api("analyst", "GET", "/datasets/visits")
        assert one.status_code == 200 and "schema_suggestions" not in one.get_json()["dataset"]
        _hidden(one.get_data(as_text=True))
        listed = env.api("analyst", "GET", "/datasets")
        assert listed.status_code == 200 and any(d["name"] == "visits" for d in listed.get_json()["datasets"])
        _hidden(listed.get_data(as_text=True))
        with session_scope(env.settings) as s:
            ds_id = s.execute(select(Dataset.id).where(Dataset.name == "visits")).scalar_one()
        page = env.pages("analyst").get(f"/datasets/{ds_id}")
        assert page.status_code == 200 and "visits" in page.get_data(as_text=True)
        _hidden(page.get_data(as_text=True))

    analyst_sees()  # while the proposal awaits confirmation
    r = env.api("steward", "PUT", "/datasets/visits/schema", json={"schema": CONFIRMED})
    assert r.status_code == 200, r.get_json()
    analyst_sees()  # and once the steward confirmed a schema of their own


def test_a_schema_given_at_registration_stores_no_suggestions(env) -> None:
    view = register_demo(env, "with-schema", grant=None)
    assert view["schema_confirmed"] and view["schema_suggestions"] is None
    assert DEMO_SCHEMA.exists() and DEMO_CSV.exists()


def test_a_large_file_read_in_batches_stores_suggestions_too(tmp_path) -> None:
    env = make_app_env(tmp_path, batch_read_above_mb=0)
    try:
        view = register_demo(env, "batched", grant=None, schema=False)
        assert not view["schema_confirmed"]
        sug = view["schema_suggestions"]
        assert {"age", "sex", "race", "native-country"} <= {q["column"] for q in sug["quasi_identifiers"]}
        assert sug["target"]["column"] == "income" and sug["hierarchies"]["age"]["band"] > 0
    finally:
        dispose_engines()
