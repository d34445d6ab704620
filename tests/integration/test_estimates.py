"""Time estimates against a real service: the estimate endpoint, the release view's estimate, a request
over the policy's limit refused (422) before any reservation, and the CLI (`releases estimate`,
`releases request`)."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.release_support import cli, register_table

pytestmark = [pytest.mark.integration]

# a public row count at which DPCTGAN's default plan (ten epochs, or as many as fit 5 CPU minutes) is over 2 minutes
POLICY = "max_estimated_minutes: 2\npublic_row_count: 100000\n"


def _reserved(svc, name):  # type: ignore[no-untyped-def]
    ledger = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
    return json.dumps(ledger, sort_keys=True)


def test_estimates_through_the_api_and_the_cli(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    register_table(svc, "penguins", "peng", policy=POLICY)

    quick = svc.api("analyst", "GET", "/datasets/peng/estimate?method=mst&epsilon=1")
    assert quick.status_code == 200, quick.text
    est = quick.json()["estimate"]
    # the public row count drives it, not the table's 344 rows
    assert est["rows"] == 100000 and est["method"] == "mst"
    assert est["over_limit"] is False and est["limit_minutes"] == 2
    assert 0 < est["low_seconds"] < est["total_seconds"] < est["high_seconds"] and est["basis"]

    slow = svc.api("analyst", "GET", "/datasets/peng/estimate?method=dpctgan&epsilon=1&delta=1e-7&option=epochs=40")
    assert slow.status_code == 200, slow.text
    over = slow.json()["estimate"]
    assert over["over_limit"] is True and over["total_seconds"] > 60
    assert any(s.startswith("epochs=") for s in over["suggestions"]), over
    posted = svc.api(
        "analyst",
        "POST",
        "/datasets/peng/estimate",
        json={"method": "dpctgan", "epsilon": 1, "delta": 1e-7, "options": {"epochs": 40}},
    )
    assert posted.status_code == 200 and posted.json()["estimate"]["total_seconds"] == over["total_seconds"]

    bad = svc.api("analyst", "GET", "/datasets/peng/estimate?method=dpctgan&option=epochs=0")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_option", bad.text
    assert svc.api("analyst", "GET", "/datasets/peng/estimate").status_code == 400

    before = _reserved(svc, "peng")
    refused = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "peng", "method": "dpctgan", "epsilon": 1.0, "delta": 1e-7, "options": {"epochs": 40}},
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (
        error["code"] == "estimate_over_limit" and "2 min limit" in error["message"] and "epochs=" in error["message"]
    )
    assert _reserved(svc, "peng") == before
    assert svc.api("analyst", "GET", "/releases?dataset=peng").json()["releases"] == []

    accepted = svc.api(
        "analyst", "POST", "/releases", json={"dataset": "peng", "method": "mst", "epsilon": 0.5, "delta": 1e-7}
    )
    assert accepted.status_code == 202, accepted.text
    release = accepted.json()["release"]
    assert release["estimate"]["rows"] == 100000 and release["estimate"]["over_limit"] is False
    shown = svc.api("analyst", "GET", f"/releases/{release['id']}").json()["release"]
    assert shown["estimate"] == release["estimate"]

    conn = ["--url", svc.url, "--token", svc.tokens["analyst"]]
    out = cli(["releases", "estimate", "peng", "--method", "dpctgan", "--option", "epochs=40", *conn])
    assert out.returncode == 0, out.stderr
    assert "OVER the policy's limit" in out.stdout and "under the limit with: epochs=" in out.stdout
    out = cli(["releases", "estimate", "peng", "--method", "mst", "--epsilon", "1", "--json", *conn])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["estimate"]["over_limit"] is False
    out = cli(["releases", "request", "peng", "--method", "mst", "--epsilon", "0.2", "--delta", "1e-7", *conn])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("estimate: ~") and "for 100,000 rows x" in out.stdout
    out = cli(
        ["releases", "request", "peng", "--method", "mst", "--epsilon", "0.2", "--delta", "1e-7", "--json", *conn]
    )
    assert json.loads(out.stdout)["release"]["estimate"]["method"] == "mst"
    before = _reserved(svc, "peng")
    over_args = ["--method", "dpctgan", "--epsilon", "1", "--delta", "1e-7", "--option", "epochs=40", "--json"]
    out = cli(["releases", "request", "peng", *over_args, *conn])
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert json.loads(out.stderr.strip().splitlines()[-1])["error"]["code"] == "estimate_over_limit"
    assert _reserved(svc, "peng") == before


def _log_with(path, line: str, timeout: float = 300) -> str:  # type: ignore[no-untyped-def]
    """The worker's log once it holds `line` (the pool process logs it after celery's `ready.`)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = path.read_text() if path.exists() else ""
        if line in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"no {line!r} in the worker's log: {path.read_text() if path.exists() else 'no log'}")


def test_a_default_dpctgan_request_is_planned_within_the_policys_limit(service_factory):
    svc = service_factory("redis-postgres")
    svc.start_web()
    register_table(svc, "penguins", "peng", policy=POLICY)  # at 100,000 rows DPCTGAN's default plan is over 2 min
    query = "/datasets/peng/estimate?method=dpctgan&epsilon=1&delta=1e-7"
    est = svc.api("analyst", "GET", query).json()["estimate"]
    assert est["over_limit"] is False and est["total_seconds"] <= 120, est
    # the method's own default target (5 minutes) is over the policy's 2
    assert svc.api("analyst", "GET", query + "&option=minutes=5").json()["estimate"]["over_limit"] is True

    resp = svc.api(
        "analyst", "POST", "/releases", json={"dataset": "peng", "method": "dpctgan", "epsilon": 1.0, "delta": 1e-7}
    )
    assert resp.status_code == 202, resp.text
    release = resp.json()["release"]
    assert 0.5 <= release["options"]["minutes"] < 2 and release["estimate"] == est
    ledger = svc.api("steward", "GET", "/datasets/peng/ledger").json()["ledger"]["history"]
    assert [float(h["epsilon"]) for h in ledger if h["job_id"] == release["id"]] == [1.0]  # charged as asked
    refused = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": "peng", "method": "dpctgan", "epsilon": 1.0, "delta": 1e-7, "options": {"minutes": 5}},
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "estimate_over_limit", refused.text
    cancelled = svc.api("analyst", "POST", f"/releases/{release['id']}/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"]["reservation_released"] is True

    # the worker that serves the heavy queue runs torch on one thread; a quick-only one does not load torch
    svc.start_worker("quick", queues="releases")
    svc.start_worker("heavy", queues="releases-heavy")
    assert svc.logs is not None
    _log_with(svc.logs / "worker-heavy.log", "torch set to one thread for the heavy methods")
    spec = {"method": "spec", "rows": 20, "options": {"spec": {"columns": {"x": {"distribution": "norm"}}}}}
    quick = svc.api("analyst", "POST", "/releases", json={"dataset": "peng", **spec})
    assert quick.status_code == 202, quick.text
    done = svc.wait_for("analyst", quick.json()["release"]["id"], timeout=300)  # the quick pool process is up
    assert done["status"] == "awaiting_approval", svc.worker_logs()
    assert "torch set to one thread" not in (svc.logs / "worker-quick.log").read_text()
