"""Schema versions through the real service (gunicorn, a Celery worker process, SQLite or PostgreSQL).

A request the disclosure preflight refuses is fixed by the steward following its advice with a new
schema version (and the policy it names); the same request is then accepted, produced under that
version and released with it named in the manifest and the privacy statement. A release queued
before an edit is produced under the version it was requested under.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml

from tests.integration.conftest import PG_ADMIN_DSN
from tests.integration.release_support import approve_and_download, register_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1] / "data"


def register(svc, table: str, name: str, policy: str | None = None) -> None:
    dataset = register_table(svc, table, name, policy)
    assert dataset["schema_version"] == 1


def approved_bundle(svc, job_id: int) -> dict:
    """Approve a finished release as the steward; the analyst's bundle, opened."""
    content = approve_and_download(svc, job_id)
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return {
            "manifest": json.loads(zf.read("manifest.json")),
            "statement": zf.read("privacy.md").decode(),
            "schema": json.loads(zf.read("schema.json")),
            "data": pd.read_parquet(io.BytesIO(zf.read("data.parquet"))),
        }


def test_a_refused_request_is_fixed_by_a_new_schema_version(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    register(svc, "compas", "compas", policy="suppression: suppress\n")
    request = {"dataset": "compas", "method": "dp-marginals", "epsilon": 1, "delta": 0, "rows": 5000}
    resp = svc.api("analyst", "POST", "/releases", json=request)
    assert resp.status_code == 422, resp.text
    advice = resp.json()["error"]["message"]
    assert resp.json()["error"]["code"] == "disclosure_infeasible"
    assert "declare a hierarchy for dob (granularity: year) and use suppression: generalise" in advice

    # the steward follows the advice: the hierarchy as schema version 2, then the policy it names
    ds = svc.api("steward", "GET", "/datasets/compas").json()["dataset"]
    schema = ds["schema"]
    schema["columns"]["dob"]["hierarchy"] = {"granularity": "year"}
    resp = svc.api(
        "steward",
        "PUT",
        "/datasets/compas/schema",
        json={
            "schema": yaml.safe_dump(schema),
            "note": "dob generalised by year at least",
            "base_version": ds["schema_version"],
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["dataset"]["schema_version"] == 2
    # the preflight still refuses under suppression: suppress, and says so to the steward
    assert any(
        i["code"] == "disclosure_preflight" and "would be refused" in i["message"] for i in resp.json()["issues"]
    )
    resp = svc.api("steward", "PUT", "/datasets/compas/policy", json={"policy": {"suppression": "generalise"}})
    assert resp.status_code == 200, resp.text

    resp = svc.api("analyst", "POST", "/releases", json=request)
    assert resp.status_code == 202, resp.text
    job = resp.json()["release"]
    assert job["schema_version"] == 2
    bundle = approved_bundle(svc, job["id"])
    assert bundle["manifest"]["schema_version"] == 2
    assert "**public schema version**: 2" in bundle["statement"]
    # produced under version 2: dob is generalised, and never to months, which version 2 does not offer
    assert bundle["schema"]["columns"]["dob"]["kind"] != "datetime"
    chosen = re.search(r"generalisation chosen on the synthetic output: ([^\n]*)", bundle["statement"])
    assert chosen and "dob" in chosen.group(1)
    assert "month" not in chosen.group(1).split("dob", 1)[1].split(",", 1)[0]
    assert len(bundle["data"]) >= 0.9 * request["rows"]
    history = svc.api("steward", "GET", "/datasets/compas/schema/versions").json()["versions"]
    assert [(v["version"], v["note"]) for v in history] == [(2, "dob generalised by year at least"), (1, None)]


def test_a_release_queued_before_an_edit_runs_under_its_version(service_factory, backend):
    svc = service_factory(backend)
    svc.start_web()  # no worker yet: the first request waits in the queue
    register(svc, "penguins", "penguins")
    request = {"dataset": "penguins", "method": "dp-marginals", "epsilon": 0.5, "delta": 0, "rows": 300}
    resp = svc.api("analyst", "POST", "/releases", json=request)
    assert resp.status_code == 202, resp.text
    before = resp.json()["release"]
    assert before["schema_version"] == 1 and before["status"] == "queued"

    # version 2 stops releasing bill depth
    schema = svc.api("steward", "GET", "/datasets/penguins").json()["dataset"]["schema"]
    schema["columns"]["bill_depth_mm"] = {"kind": "identifier", "description": "withheld from releases"}
    resp = svc.api(
        "steward",
        "PUT",
        "/datasets/penguins/schema",
        json={"schema": schema, "note": "bill depth withheld", "base_version": 1},
    )
    assert resp.status_code == 200 and resp.json()["dataset"]["schema_version"] == 2, resp.text
    resp = svc.api("analyst", "POST", "/releases", json=request)
    assert resp.status_code == 202, resp.text
    after = resp.json()["release"]
    assert after["schema_version"] == 2

    svc.start_worker()
    first, second = approved_bundle(svc, before["id"]), approved_bundle(svc, after["id"])
    assert svc.api("analyst", "GET", f"/releases/{before['id']}").json()["release"]["schema_version"] == 1
    assert (first["manifest"]["schema_version"], second["manifest"]["schema_version"]) == (1, 2)
    assert "**public schema version**: 1" in first["statement"]
    assert "bill_depth_mm" in first["data"].columns and first["data"]["bill_depth_mm"].notna().any()
    assert "bill_depth_mm" not in second["data"].columns


def test_the_migration_backfills_versions_on_postgresql(tmp_path):
    """The backfill of migration 0005 on PostgreSQL (the SQLite run is in tests/unit)."""
    import secrets

    from core.db import dispose_engines
    from core.settings import Settings
    from tests.unit.test_schema_versions import migrate_existing_data

    name = f"synthgate_migrate_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        user = conn.execute("SELECT current_user").fetchone()[0]
    host = dict(p.split("=", 1) for p in PG_ADMIN_DSN.split())
    url = f"postgresql+psycopg://{user}@{host.get('host', '127.0.0.1')}:{host.get('port', '5432')}/{name}"
    try:
        migrate_existing_data(Settings.from_env(environ={}, data_dir=str(tmp_path), database_url=url))
    finally:
        dispose_engines()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
