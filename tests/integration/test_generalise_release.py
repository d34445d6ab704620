"""k-anonymity on real tables through the real service: a release either keeps at least 90% of the
requested rows at k = 5, or is refused before any budget is reserved, with advice that works."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from privacy.disclosure import class_sizes
from privacy.schema import load_schema, validate_table
from tests.integration.release_support import register_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1] / "data"


register = register_table


def ledger(svc, name: str) -> dict:
    return svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]


def released_bundle(svc, name: str, rows: int) -> tuple[pd.DataFrame, dict, str]:
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": name, "method": "mst", "epsilon": 1, "delta": 1e-9, "rows": rows},
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["release"]["id"]
    done = svc.wait_for("analyst", job_id, timeout=900)
    assert done["status"] == "awaiting_approval", svc.worker_logs()
    view = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]
    body = {"comment": "ok"}
    if view["gate"]["overall"] == "fail":
        body["override"] = "reviewed for the test"
    assert svc.api("steward", "POST", f"/releases/{job_id}/approve", json=body).status_code == 200
    resp = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
    assert resp.status_code == 200, resp.text
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        data = pd.read_parquet(io.BytesIO(zf.read("data.parquet")))
        released_schema = json.loads(zf.read("schema.json"))
        statement = zf.read("privacy.md").decode()
    described = load_schema(released_schema)
    dropped = {c for c, spec in described.columns.items() if spec.is_dropped}  # identifiers are not released
    assert [i.message for i in validate_table(data, described) if i.column not in dropped] == []
    return data, released_schema, statement


@pytest.mark.parametrize("table,rows", [("compas", 5000), ("penguins", 1000)])
def test_default_policy_releases_at_least_90_percent_at_k5(service_factory, table, rows):
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    name = f"{table}-generalise"
    register(svc, table, name)
    data, released_schema, statement = released_bundle(svc, name, rows)
    qis = load_schema(DATA / table / "schema.yaml").quasi_identifiers
    assert len(data) >= 0.9 * rows
    assert class_sizes(data, qis).min() >= 5
    produced = re.search(r"rows produced: (\d+); rows after post-processing: (\d+)", statement)
    assert produced and int(produced.group(2)) == len(data) and int(produced.group(1)) == rows
    assert "generalisation chosen on the synthetic output" in statement
    if table == "compas":  # a day-level dob cannot stay: the release describes what it became
        assert "dob" in statement.split("generalisation chosen")[1].split("\n")[0]
        assert released_schema["columns"]["dob"]["kind"] != "datetime"
    spent = ledger(svc, name)["spent"]["epsilon"]
    assert spent == "1"


def test_requests_kanonymity_would_empty_are_refused_before_reservation(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    register(svc, "compas", "compas-suppress", policy="suppression: suppress\n")
    before = ledger(svc, "compas-suppress")
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "compas-suppress", "method": "mst", "epsilon": 1, "delta": 1e-9, "rows": 5000},
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "disclosure_infeasible" and error["field"] == "rows"
    assert "dob" in error["message"] and "use suppression: generalise" in error["message"]
    after = ledger(svc, "compas-suppress")
    assert after == before and after["reserved"]["epsilon"] == "0" and after["history"] == before["history"]
    assert svc.api("analyst", "GET", "/releases").json()["releases"] == []

    # fewer rows than k: refused under the default policy too
    register(svc, "penguins", "penguins-tiny")
    before = ledger(svc, "penguins-tiny")
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "penguins-tiny", "method": "mst", "epsilon": 1, "delta": 1e-9, "rows": 3},
    )
    assert resp.status_code == 422 and "at least 5 rows" in resp.json()["error"]["message"]
    assert ledger(svc, "penguins-tiny") == before

    # the steward following the advice: the policy change is accepted and the request is no longer refused
    resp = svc.api("steward", "PUT", "/datasets/compas-suppress/policy", json={"policy": {"suppression": "generalise"}})
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json()["issues"], list)
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "compas-suppress", "method": "mst", "epsilon": 1, "delta": 1e-9, "rows": 5000},
    )
    assert resp.status_code == 202, resp.text
    assert ledger(svc, "compas-suppress")["reserved"]["epsilon"] == "1"
