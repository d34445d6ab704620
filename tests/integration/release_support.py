"""Approved releases on a real service (gunicorn + Celery worker), for the integrity and audit tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.test_release_path import register_demo

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SYNTHGATE = str(Path(sys.executable).parent / "synthgate")


def approved_release(svc: Any, dataset: str | None = None) -> tuple[int, bytes]:
    """Request a small dp-marginals release as the analyst, let the worker run it, approve it as the
    steward and download its bundle as the analyst. Returns (job id, bundle bytes)."""
    if dataset is None:
        dataset = register_demo(svc)["name"]
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": dataset, "method": "dp-marginals", "epsilon": 0.1, "delta": 0, "rows": 200},
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["release"]["id"]
    return job_id, approve_and_download(svc, job_id)


def approve_and_download(svc: Any, job_id: int, timeout: float = 600) -> bytes:
    """Wait for the release to await approval, approve it as the steward (with an override when its gate
    failed) and download its bundle as the analyst."""
    done = svc.wait_for("analyst", job_id, timeout=timeout)
    assert done["status"] == "awaiting_approval", svc.worker_logs()
    view = svc.api("steward", "GET", f"/releases/{job_id}").json()["release"]
    body = {"comment": "ok"}
    if view["gate"]["overall"] == "fail":
        body["override"] = "reviewed for the test"
    resp = svc.api("steward", "POST", f"/releases/{job_id}/approve", json=body)
    assert resp.status_code == 200, resp.text
    resp = svc.api("analyst", "GET", f"/releases/{job_id}/bundle")
    assert resp.status_code == 200, resp.text
    return resp.content


def register_table(svc: Any, table: str, name: str, policy: str | None = None) -> dict[str, Any]:
    """Register tests/data/<table> (its CSV and schema.yaml) as the steward with epsilon 4 and delta 1e-6,
    grant it to the analyst, and return the dataset's view."""
    data = {
        "name": name,
        "schema": (DATA / table / "schema.yaml").read_text(),
        "epsilon_budget": "4",
        "delta_budget": "1e-6",
    }
    if policy is not None:
        data["policy"] = policy
    csv = next(p for p in (DATA / table).glob("*.csv") if not p.name.endswith("-raw.csv"))
    with open(csv, "rb") as fh:
        resp = svc.api("steward", "POST", "/datasets", files={"file": (csv.name, fh)}, data=data)
    assert resp.status_code == 201, resp.text
    dataset = resp.json()["dataset"]
    resp = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": svc.tokens["analyst:username"]})
    assert resp.status_code == 201, resp.text
    return dataset


def cli(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """The installed `synthgate` command, with only PATH, HOME, PYTHONPATH and `env` in its environment."""
    child = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd or ROOT), "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [SYNTHGATE, *args], env=child, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT
    )


def assert_csv_reads_back_as_parquet(bundle: bytes) -> None:
    """The bundle's data.csv, read by pandas, equals its data.parquet.

    Text columns are read as text (a label "-1" is a label, as in the Parquet file), and dates as
    dates; a cell neutralised for spreadsheets (a formula) would differ, and none of our test tables
    has one.
    """
    import io
    import zipfile

    import pandas as pd

    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        parquet = pd.read_parquet(io.BytesIO(zf.read("data.parquet")))
        raw = zf.read("data.csv")
    text = [
        c
        for c in parquet.columns
        if pd.api.types.is_object_dtype(parquet[c])
        or pd.api.types.is_string_dtype(parquet[c])
        or isinstance(parquet[c].dtype, pd.CategoricalDtype)
    ]
    dates = [c for c in parquet.columns if pd.api.types.is_datetime64_any_dtype(parquet[c])]
    csv = pd.read_csv(io.BytesIO(raw), dtype=dict.fromkeys(text, str), parse_dates=dates)
    expected = parquet.copy()
    for c in text:  # compared as the text a reader sees
        expected[c] = (
            expected[c].astype(object).where(expected[c].notna(), None).map(lambda v: v if v is None else str(v))
        )
        csv[c] = csv[c].astype(object).where(csv[c].notna(), None)
    pd.testing.assert_frame_equal(csv, expected, check_dtype=False, check_categorical=False)
