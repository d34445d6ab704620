"""A release of a table whose public schema declares constraints: its bundle's rows satisfy them all."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from privacy.constraints import violation_counts
from privacy.schema import load_schema
from tests.integration.release_support import approved_release

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPAS = Path(__file__).resolve().parents[1] / "data" / "compas"


def test_a_constrained_schema_gives_a_bundle_without_violations(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    svc.start_worker()
    name = f"compas-{svc.tokens['steward:username'].rsplit('-', 1)[-1]}"
    with open(COMPAS / "compas.csv", "rb") as fh:
        # k = 1: no row is suppressed for its (unique) date of birth, so every sampled row reaches the bundle
        resp = svc.api(
            "steward",
            "POST",
            "/datasets",
            files={"file": ("compas.csv", fh)},
            data={
                "name": name,
                "schema": (COMPAS / "schema.yaml").read_text(),
                "epsilon_budget": "3",
                "delta_budget": "1e-6",
                "policy": "k: 1\n",
            },
        )
    assert resp.status_code == 201, resp.text
    resp = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens["analyst:username"]})
    assert resp.status_code == 201, resp.text

    _job_id, bundle = approved_release(svc, name)
    schema = load_schema(COMPAS / "schema.yaml")
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        data = pd.read_parquet(io.BytesIO(zf.read("data.parquet")))
        released_schema = json.loads(zf.read("schema.json"))
        statement = zf.read("privacy.md").decode()
    assert len(data) == 200
    assert violation_counts(data, schema) == {"c_jail_in <= c_jail_out": 0, "age_cat determined by age (bands)": 0}
    assert [c.describe() for c in load_schema(released_schema).constraints] == [
        "c_jail_in <= c_jail_out",
        "age_cat determined by age (bands)",
    ]
    # independent marginals break both as sampled; the statement says how many rows and what was done
    sampled = re.search(r"`c_jail_in <= c_jail_out`: (\d+) rows? violated it as sampled", statement)
    banded = re.search(r"`age_cat determined by age \(bands\)`: (\d+) rows? violated it as sampled", statement)
    assert sampled and banded, statement
    assert int(sampled.group(1)) > 0 and int(banded.group(1)) > 0
    assert "replaced by fresh rows from the fitted model" in statement
