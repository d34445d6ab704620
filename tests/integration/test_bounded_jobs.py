"""Bounded work on the real service: option bounds at request time, a hard time limit per method,
and cancellation of queued and running jobs (API, CLI and the release page)."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_cli_client import cli
from tests.integration.test_release_path import ledger_rows, register_demo

pytestmark = [pytest.mark.integration]

FAST = {"lease_seconds": 6, "heartbeat_seconds": 1, "reaper_seconds": 2, "stop_grace_seconds": 20}
# a fit that would take minutes on the demo table: mst's estimation reports progress as it goes
LONG_MST = {"method": "mst", "epsilon": 0.5, "delta": 1e-9, "rows": 200, "options": {"iters": 20_000}}
SPEC = {"method": "spec", "rows": 20, "options": {"spec": {"columns": {"x": {"distribution": "norm"}}}}}


def _charges(svc, name: str, job_id: int) -> list[str]:
    return sorted(h["action"] for h in ledger_rows(svc, name) if h["job_id"] == job_id)


def _events(svc, job_id: int) -> list[str]:
    audit = svc.api("steward", "GET", "/audit?limit=1000").json()
    assert audit["chain"]["ok"]
    return [e["action"] for e in audit["events"] if e["object_id"] == str(job_id)]


def _post(svc, name: str, body: dict) -> dict:
    resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **body})
    assert resp.status_code == 202, resp.text
    return resp.json()["release"]


def _worker_is_free(svc, name: str) -> None:
    """The worker takes the next job: the stopped one no longer holds it."""
    done = svc.wait_for("analyst", _post(svc, name, SPEC)["id"], timeout=120)
    assert done["status"] == "awaiting_approval", svc.worker_logs()


def test_options_beyond_their_bounds_are_refused_at_request_time(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    name = register_demo(svc)["name"]
    for method, options, bound in (
        ("mst", {"iters": 10**12}, "between 0 and 20,000"),
        ("aim", {"rounds": 10**9}, "between 1 and 10,000"),
        ("dpctgan", {"epochs": 10**7}, "between 1 and 5,000"),
    ):
        resp = svc.api(
            "analyst",
            "POST",
            "/releases",
            json={"dataset": name, "method": method, "epsilon": 0.5, "delta": 1e-9, "options": options},
        )
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["field"] == "options" and bound in error["message"], error
    # NaN and infinity pass every comparison with a bound: they are refused as numbers first
    for method, options in (
        ("aim", {"max_work": float("nan")}),
        ("aim", {"max_model_size": float("inf")}),
        ("dpctgan", {"sigma": float("nan")}),
        ("dpctgan", {"minutes": "nan"}),
    ):
        body = {"dataset": name, "method": method, "epsilon": 0.5, "delta": 1e-9, "options": options}
        resp = svc.api(
            "analyst",
            "POST",
            "/releases",
            data=json.dumps(body),  # json.dumps writes NaN and Infinity, as a careless client would
            headers={"Content-Type": "application/json"},
        )
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["field"] == "options" and "must be a finite number" in error["message"], error
    assert ledger_rows(svc, name) == []
    assert svc.api("analyst", "GET", "/releases").json()["releases"] == []
    # the bounds are documented where the methods are listed
    mst = next(m for m in svc.api("analyst", "GET", "/methods").json()["methods"] if m["name"] == "mst")
    assert (mst["options"]["iters"]["min"], mst["options"]["iters"]["max"]) == (0, 20_000)


def test_a_job_over_its_time_limit_fails_and_keeps_its_charge(service_factory):
    svc = service_factory("redis-postgres", job_time_limits="mst=8", **FAST)
    svc.start_web()
    svc.start_worker()
    name = register_demo(svc)["name"]
    job_id = _post(svc, name, LONG_MST)["id"]
    done = svc.wait_for("steward", job_id, timeout=240)
    assert done["status"] == "failed" and done["error_code"] == "time_limit", (done, svc.worker_logs())
    assert "time limit (8 s)" in done["message"]
    assert done["charge"] == "spent" and _charges(svc, name, job_id) == ["reserve", "spend"]
    assert done["internal"]["attempts"] == 1 and not done["internal"]["error"].startswith("Traceback")
    _worker_is_free(svc, name)
    events = _events(svc, job_id)
    assert events.count("release.fail") == 1 and "release.ready" not in events and "release.requeue" not in events


def test_cancel_a_queued_and_a_running_job(service_factory):
    svc = service_factory("redis-postgres", **FAST)
    svc.start_web()
    name = register_demo(svc)["name"]

    # queued (no worker yet): only the requester or a steward may cancel; the reservation comes back
    queued = _post(svc, name, LONG_MST)["id"]
    assert svc.api("analyst2", "POST", f"/releases/{queued}/cancel", json={}).status_code == 404
    resp = svc.api("analyst", "POST", f"/releases/{queued}/cancel", json={"reason": "wrong epsilon"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["cancelled"] == {"id": queued, "was": "queued", "data_read": False, "reservation_released": True}
    release = resp.json()["release"]
    assert release["status"] == "failed" and release["error_code"] == "cancelled"
    assert "wrong epsilon" in release["message"] and release["charge"] == "released"
    again = svc.api("analyst", "POST", f"/releases/{queued}/cancel", json={})
    assert again.status_code == 409 and "only a queued or running release" in again.json()["error"]["message"]

    # running, after the mechanism read the data: the steward cancels with the CLI; the charge stays
    svc.start_worker()
    running = _post(svc, name, LONG_MST)["id"]
    svc.wait_for(
        "steward",
        running,
        predicate=lambda r: r["status"] == "running" and r["charge"] == "spent" and r["stage"] == "fit",
        timeout=240,
    )
    r = cli(svc, "steward", "releases", "cancel", str(running), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cancelled"] == {
        "id": running,
        "was": "running",
        "data_read": True,
        "reservation_released": False,
    }
    _worker_is_free(svc, name)
    done = svc.api("steward", "GET", f"/releases/{running}").json()["release"]
    assert done["status"] == "failed" and done["error_code"] == "cancelled" and done["charge"] == "spent"
    assert "release.ready" not in _events(svc, running) and _events(svc, running).count("release.cancel") == 1
    assert _charges(svc, name, running) == ["reserve", "spend"]
    # the queued job's message was delivered and found nothing to claim: it never ran
    assert svc.api("steward", "GET", f"/releases/{queued}").json()["release"]["internal"]["attempts"] == 0
    assert _charges(svc, name, queued) == ["release", "reserve"]


def test_release_page_cancel_button(tmp_path):
    from core.db import dispose_engines
    from tests.browser.support import make_app_env, register_demo, request_release

    env = make_app_env(tmp_path)
    try:
        register_demo(env)
        job = request_release(env)
        other = env.pages("analyst2").get(f"/releases/{job}")
        assert other.status_code == 404
        analyst = env.pages("analyst")
        page = analyst.get(f"/releases/{job}").get_data(as_text=True)
        assert 'id="cancel"' in page
        resp = analyst.post_form(f"/releases/{job}", f"/releases/{job}/cancel", {})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        page = analyst.get(f"/releases/{job}").get_data(as_text=True)
        assert "reservation was given back" in page and 'id="cancel"' not in page and "(cancelled)" in page
        view = env.api("analyst", "GET", f"/releases/{job}").get_json()["release"]
        assert view["status"] == "failed" and view["charge"] == "released"
    finally:
        dispose_engines()
