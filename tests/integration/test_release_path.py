"""The whole release path on real components, on both backends.

steward registers -> analyst requests a DP release -> a Celery worker process
produces it -> the steward approves -> the analyst downloads a bundle that verifies.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from core.bundle import verify_bundle
from privacy.schema import load_schema, validate_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DEMO_CSV = ROOT / "core" / "demo" / "adult_sample.csv"
DEMO_SCHEMA = ROOT / "core" / "demo" / "adult_schema.yaml"


def register_demo(svc, name: str | None = None, epsilon_budget: str = "3") -> dict:
    """Register the demo table; the name is unique per service (the PostgreSQL database is shared)."""
    name = name or f"adult-{svc.tokens['steward:username'].rsplit('-', 1)[-1]}"
    with open(DEMO_CSV, "rb") as fh:
        resp = svc.api(
            "steward",
            "POST",
            "/datasets",
            files={"file": ("adult.csv", fh)},
            data={
                "name": name,
                "schema": DEMO_SCHEMA.read_text(),
                "epsilon_budget": epsilon_budget,
                "delta_budget": "1e-6",
            },
        )
    assert resp.status_code == 201, resp.text
    ds = resp.json()["dataset"]
    resp = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens["analyst:username"]})
    assert resp.status_code == 201, resp.text
    return ds


def ledger_rows(svc, dataset: str) -> list[dict]:
    return svc.api("steward", "GET", f"/datasets/{dataset}/ledger").json()["ledger"]["history"]


def test_release_end_to_end(service_factory, backend):
    svc = service_factory(backend)
    svc.start_web()
    svc.start_worker()
    name = register_demo(svc)["name"]

    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": name, "method": "mst", "epsilon": 1.0, "delta": 1e-9, "rows": 2000},
    )
    assert resp.status_code == 202, resp.text
    job = resp.json()["release"]
    assert job["status"] == "queued" and job["charge"] == "reserved"

    done = svc.wait_for("analyst", job["id"])
    assert done["status"] == "awaiting_approval", svc.worker_logs()
    seen = done["_progress_seen"]
    assert seen == sorted(seen) and seen[-1] == 1.0  # progress only moves forward
    # what the analyst sees before approval: status, no gate, no report figures
    assert "gate" not in done and "summary" not in done and done["can_download"] is False

    # nobody downloads before approval; another analyst cannot even see it
    r = svc.api("analyst", "GET", f"/releases/{job['id']}/bundle")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_approved"
    assert svc.api("analyst2", "GET", f"/releases/{job['id']}").status_code == 404
    assert svc.api("analyst2", "GET", f"/releases/{job['id']}/bundle").status_code == 404

    steward_view = svc.api("steward", "GET", f"/releases/{job['id']}").json()["release"]
    assert steward_view["gate"]["overall"] in ("pass", "warn", "fail")
    body = {"comment": "fit for purpose"}
    if steward_view["gate"]["overall"] == "fail":
        body["override"] = "integration test: reviewed"
    r = svc.api("steward", "POST", f"/releases/{job['id']}/approve", json=body)
    assert r.status_code == 200, r.text

    r = svc.api("analyst", "GET", f"/releases/{job['id']}/bundle")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["Cache-Control"] == "no-store"
    pem = svc.api("", "GET", "/signing-key").json()["public_key_pem"]
    check = verify_bundle(r.content, pem)
    assert check.ok, check.problems
    assert check.signature_checked

    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = set(zf.namelist())
        assert {
            "data.csv",
            "data.parquet",
            "schema.json",
            "privacy.md",
            "manifest.json",
            "manifest.sig",
            "report.html",
            "report.json",
        } <= names
        data = pd.read_parquet(io.BytesIO(zf.read("data.parquet")))
        manifest = json.loads(zf.read("manifest.json"))
        privacy_md = zf.read("privacy.md").decode()
        released_schema = load_schema(json.loads(zf.read("schema.json")))
    schema = load_schema(DEMO_SCHEMA)
    assert list(data.columns) == [c for c in schema.columns if c in released_schema.columns]
    # the released table fits its released schema exactly (generalised columns included)
    assert [i.message for i in validate_table(data, released_schema)] == []
    assert set(data["sex"].dropna()) <= {"Male", "Female"}
    assert len(data) > 0
    assert manifest["method"] == "mst" and manifest["job_id"] == job["id"]
    assert manifest["cost"]["epsilon"] == "1" and "withheld" in str(manifest["seed"])
    assert "epsilon" in privacy_md.lower()

    # one reservation, one spend, nothing else
    rows = [h for h in ledger_rows(svc, name) if h["job_id"] == job["id"]]
    assert sorted(h["action"] for h in rows) == ["reserve", "spend"]
    ledger = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    assert ledger["spent"]["epsilon"] == "1" and ledger["reserved"]["epsilon"] == "0"

    # every transition is in the audit log, and the chain verifies
    audit = svc.api("steward", "GET", "/audit?limit=500").json()
    assert audit["chain"]["ok"] is True
    actions = [e["action"] for e in audit["events"] if e["object_id"] == str(job["id"])]
    for expected in (
        "release.request",
        "release.start",
        "ledger.spend",
        "release.ready",
        "release.approve",
        "release.download",
    ):
        assert expected in actions, actions


def test_failure_before_data_access_releases_the_reservation(service_factory):
    """A job whose stored table disappeared fails before reading data: its reservation is released."""
    svc = service_factory("embedded")
    svc.start_web()
    register_demo(svc, "adult-missing")
    # the raw file vanishes from storage (e.g. an operator error) before a worker runs the job
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "adult-missing", "method": "mst", "epsilon": 0.5, "delta": 1e-9, "rows": 100},
    )
    assert resp.status_code == 202
    job_id = resp.json()["release"]["id"]
    for p in (svc.settings.storage_dir / "datasets").rglob("raw.*"):
        p.unlink()
    svc.start_worker()
    done = svc.wait_for("analyst", job_id, timeout=180)
    assert done["status"] == "failed"
    assert done["charge"] == "released"
    ledger = svc.api("steward", "GET", "/datasets/adult-missing/ledger").json()["ledger"]
    assert ledger["spent"]["epsilon"] == "0" and ledger["reserved"]["epsilon"] == "0"
