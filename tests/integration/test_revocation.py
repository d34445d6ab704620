"""Revoking a grant stops the analyst's queued work on the dataset and their access to its outputs."""

from __future__ import annotations

import pytest

from tests.integration.test_release_path import ledger_rows, register_demo

pytestmark = [pytest.mark.integration]

QUICK_MST = {"method": "mst", "epsilon": 0.25, "delta": 1e-9, "rows": 200, "options": {"iters": 50}}


def test_revocation_cancels_queued_jobs_and_bundles_recheck_the_grant(service_factory):
    svc = service_factory("redis-postgres", lease_seconds=6, heartbeat_seconds=1, reaper_seconds=2)
    svc.start_web()
    name = register_demo(svc)["name"]
    analyst = svc.tokens["analyst:username"]
    worker = svc.start_worker()

    resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **QUICK_MST})
    assert resp.status_code == 202, resp.text
    finished = resp.json()["release"]["id"]
    assert svc.wait_for("analyst", finished, timeout=300)["status"] == "awaiting_approval", svc.worker_logs()
    svc.kill(worker)  # the next job stays queued

    resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **QUICK_MST})
    assert resp.status_code == 202, resp.text
    queued = resp.json()["release"]["id"]

    resp = svc.api("steward", "DELETE", f"/datasets/{name}/grants/{analyst}")
    assert resp.status_code == 200 and resp.json()["revoked"] is True
    view = svc.api("steward", "GET", f"/releases/{queued}").json()["release"]
    assert view["status"] == "failed" and view["error_code"] == "cancelled" and view["charge"] == "released"
    assert "revoked" in view["message"]
    history = [h for h in ledger_rows(svc, name) if h["job_id"] == queued]
    assert sorted(h["action"] for h in history) == ["release", "reserve"]

    # the steward approves the finished release; its revoked requester reads neither bundle nor report
    resp = svc.api(
        "steward", "POST", f"/releases/{finished}/approve", json={"comment": "ok", "override": "reviewed for the test"}
    )
    assert resp.status_code == 200, resp.text
    assert svc.api("analyst", "GET", f"/releases/{finished}/bundle").status_code in (403, 404)
    assert svc.api("analyst", "GET", f"/releases/{finished}/report").status_code in (403, 404)
    shown = svc.api("analyst", "GET", f"/releases/{finished}")
    assert shown.status_code == 404 or shown.json()["release"]["can_download"] is False

    # the cancelled job's message is still in the queue: a worker finds nothing to claim
    svc.start_worker("w2")
    probe = svc.api(
        "steward",
        "POST",
        "/releases",
        json={"dataset": name, "method": "spec", "rows": 10, "options": {"spec": {"columns": {"x": {"values": [1]}}}}},
    )
    assert probe.status_code == 202, probe.text
    assert svc.wait_for("steward", probe.json()["release"]["id"], timeout=120)["status"] == "awaiting_approval"
    view = svc.api("steward", "GET", f"/releases/{queued}").json()["release"]
    assert view["status"] == "failed" and view["internal"]["attempts"] == 0

    # granted again, the requester downloads their approved release
    resp = svc.api("steward", "POST", f"/datasets/{name}/grants", json={"user": analyst})
    assert resp.status_code == 201, resp.text
    bundle = svc.api("analyst", "GET", f"/releases/{finished}/bundle")
    assert bundle.status_code == 200 and bundle.content[:2] == b"PK"
