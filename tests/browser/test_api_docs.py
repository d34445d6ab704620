"""The interactive API documentation in real headless Chromium: Swagger UI served by the app itself,
under the pages' Content-Security-Policy (a blocked script or style is counted as an error), renders every
operation of the OpenAPI document."""

from __future__ import annotations

import pytest
import requests

from tests.browser.test_release_flow import open_session

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def test_swagger_ui_renders_every_operation_under_the_page_csp(web, chromium, screenshots):
    svc = web
    spec = requests.get(svc.url + "/api/v1/openapi.json", timeout=30).json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert operations > 30

    page = open_session(chromium, svc, "analyst")
    page.click("nav >> text=API docs")
    page.wait_for_selector("#swagger-ui .opblock", timeout=30_000)
    assert page.locator("#swagger-ui .opblock").count() == operations
    assert "/releases/{job_id}/approve" in page.inner_text("#swagger-ui")
    assert "synthgate API" in page.inner_text("#swagger-ui .info")
    csp = requests.get(svc.url + "/docs/api", timeout=30).headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    screenshots(page, "api-docs")
    assert page.js_errors == []

    # only the two files the page loads are served from the bundle (its index.html runs inline script)
    assert requests.get(svc.url + "/docs/api/assets/swagger-ui-bundle.js", timeout=30).status_code == 200
    for name in ("index.html", "swagger-initializer.js", "..%2Fswagger-ui.css"):
        assert requests.get(svc.url + f"/docs/api/assets/{name}", timeout=30).status_code == 404, name
