"""Security headers through the real service (gunicorn, a Celery worker, SQLite).

Every API response: nosniff and Cache-Control: no-store, errors included. The
API's HTML report gets the sandboxing CSP and frame protection of the report
page route. HSTS is sent exactly when the session cookies are secure.
"""

from __future__ import annotations

import pytest

from core.db import dispose_engines
from tests.integration.live_support import login, register_penguins, start_live

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    svc = start_live(tmp_path_factory.mktemp("headers"))
    svc.start_worker()
    register_penguins(svc, "penguins", epsilon_budget="3", delta_budget="1e-6")
    # a data-free release: it reads no rows and still gets a report
    r = svc.api("analyst", "POST", "/releases", json={"dataset": "penguins", "method": "scenario", "rows": 50})
    assert r.status_code == 202, r.text
    job = svc.wait_for("analyst", r.json()["release"]["id"], timeout=400)
    assert job["status"] == "awaiting_approval", job
    svc.job_id = job["id"]  # type: ignore[attr-defined]
    yield svc
    svc.stop()
    dispose_engines()


def _api_calls(svc) -> list:
    return [
        svc.api("", "GET", "/health"),
        svc.api("", "GET", "/openapi.json"),
        svc.api("", "GET", "/signing-key"),
        svc.api("analyst", "GET", "/datasets"),
        svc.api("analyst", "GET", "/datasets/penguins/ledger"),
        svc.api("analyst", "GET", f"/releases/{svc.job_id}"),
        svc.api("", "GET", "/datasets"),  # 401
        svc.api("analyst", "GET", "/datasets/no-such"),  # 404
        svc.api("analyst", "GET", "/no-such-route"),  # 404 outside any route
        svc.api("analyst", "POST", "/releases", data="{", headers={"Content-Type": "application/json"}),  # 400
        svc.api("analyst", "GET", "/audit"),  # 403
        svc.api("steward", "GET", f"/releases/{svc.job_id}/report"),
        svc.api("steward", "GET", f"/releases/{svc.job_id}/report", params={"format": "json"}),
    ]


def test_every_api_response_is_nosniff_and_not_stored(live):
    statuses = set()
    for r in _api_calls(live):
        statuses.add(r.status_code)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (r.url, dict(r.headers))
        assert r.headers.get("Cache-Control") == "no-store", (r.url, dict(r.headers))
        assert "Strict-Transport-Security" not in r.headers  # cookies are not secure on this service
    assert {200, 400, 401, 403, 404} <= statuses


def test_api_json_cannot_be_framed(live):
    r = live.api("analyst", "GET", "/datasets")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"


def test_api_report_has_the_sandbox_and_frame_rules_of_the_report_page(live):
    api = live.api("steward", "GET", f"/releases/{live.job_id}/report")
    assert api.status_code == 200 and api.headers["Content-Type"].startswith("text/html")
    page = login(live, "steward").get(f"{live.url}/releases/{live.job_id}/report", timeout=60)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    for name in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Cache-Control"):
        assert api.headers.get(name) == page.headers.get(name), (name, api.headers.get(name), page.headers.get(name))
    csp = api.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "frame-ancestors 'self'" in csp and "default-src 'none'" in csp
    assert api.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_hsts_when_session_cookies_are_secure(service_factory):
    svc = service_factory("embedded", session_cookie_secure=True)
    svc.start_web()
    assert svc.url is not None
    import requests

    for r in (
        svc.api("", "GET", "/health"),
        svc.api("analyst", "GET", "/datasets"),
        svc.api("analyst", "GET", "/datasets/no-such"),
        requests.get(svc.url + "/login", timeout=60),
        requests.get(svc.url + "/static/style.css", timeout=60),
    ):
        hsts = r.headers.get("Strict-Transport-Security", "")
        assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 15552000, (r.url, hsts)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", r.url
