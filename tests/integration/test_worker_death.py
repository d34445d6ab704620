"""A worker killed with SIGKILL mid-job: the job ends exactly once, charged once."""

from __future__ import annotations

import pytest

from tests.integration.test_release_path import ledger_rows, register_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# short leases so that a dead worker is noticed within seconds
FAST_LEASE = {"lease_seconds": 6, "heartbeat_seconds": 1, "reaper_seconds": 2}


def test_killed_worker_job_finishes_once(service_factory, backend):
    svc = service_factory(backend, **FAST_LEASE)
    svc.start_web()
    name = register_demo(svc)["name"]
    first = svc.start_worker("doomed")

    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={
            "dataset": name,
            "method": "dpctgan",
            "epsilon": 1.0,
            "delta": 1e-6,
            "rows": 500,
            "options": {"epochs": 40},
        },
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["release"]["id"]

    # wait until the mechanism is reading the data (the charge is spent), then kill the worker
    running = svc.wait_for(
        "steward",
        job_id,
        predicate=lambda r: r["status"] == "running" and r["charge"] == "spent" and r["stage"] == "fit",
        timeout=300,
    )
    assert running["internal"]["attempts"] == 1
    svc.kill(first)

    svc.start_worker("rescuer")
    done = svc.wait_for("steward", job_id, timeout=900)
    assert done["status"] == "awaiting_approval", svc.worker_logs()
    assert done["internal"]["attempts"] == 2

    rows = [h for h in ledger_rows(svc, name) if h["job_id"] == job_id]
    assert sorted(h["action"] for h in rows) == ["reserve", "spend"], rows
    ledger = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    assert ledger["spent"]["epsilon"] == "1"

    audit = svc.api("steward", "GET", "/audit?limit=1000").json()
    assert audit["chain"]["ok"]
    actions = [e["action"] for e in audit["events"] if e["object_id"] == str(job_id)]
    assert actions.count("release.ready") == 1
    assert actions.count("release.requeue") == 1
    assert actions.count("release.start") == 2
