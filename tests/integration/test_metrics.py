"""GET /metrics: Prometheus figures of the whole installation, behind their own bearer token."""

from __future__ import annotations

import secrets

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_release_path import register_demo

pytestmark = [pytest.mark.integration]


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_after_a_release(service_factory):
    """The PostgreSQL database is shared by the test session, so the counts are compared before and after."""
    token = secrets.token_urlsafe(24)
    svc = service_factory("redis-postgres", metrics_token=token)
    svc.start_web()
    svc.start_worker()
    auth = {"Authorization": f"Bearer {token}"}

    def scrape() -> dict[tuple[str, tuple], float]:
        r = requests.get(svc.url + "/metrics", headers=auth, timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        return _samples(r.text)

    ready = ("synthgate_release_jobs", (("kind", "dp-synthetic"), ("status", "awaiting_approval")))
    fit_runs = ("synthgate_stage_runs_total", (("stage", "fit"),))
    fit_seconds = ("synthgate_stage_seconds_total", (("stage", "fit"),))
    before = scrape()
    name = register_demo(svc)["name"]
    resp = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": name, "method": "dp-marginals", "epsilon": 0.1, "delta": 0, "rows": 200},
    )
    assert resp.status_code == 202, resp.text
    job = svc.wait_for("analyst", resp.json()["release"]["id"])
    assert job["status"] == "awaiting_approval", svc.worker_logs()

    assert requests.get(svc.url + "/metrics", timeout=30).status_code == 401
    assert requests.get(svc.url + "/metrics", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
    # an analyst's API token is not the metrics token
    assert (
        requests.get(
            svc.url + "/metrics", headers={"Authorization": f"Bearer {svc.tokens['analyst']}"}, timeout=30
        ).status_code
        == 401
    )
    m = scrape()
    assert m[ready] == before.get(ready, 0) + 1
    assert m[fit_runs] == before.get(fit_runs, 0) + 1
    assert m[fit_seconds] > before.get(fit_seconds, 0)
    assert m[("synthgate_budget_epsilon", (("dataset", name), ("state", "spent")))] == pytest.approx(0.1)
    assert m[("synthgate_budget_epsilon", (("dataset", name), ("state", "budget")))] == pytest.approx(3)
    assert m[("synthgate_queue_depth", (("queue", "releases"),))] == 0
    assert ("synthgate_queue_depth", (("queue", "releases-heavy"),)) in m


def test_metrics_are_off_without_a_token(service_factory):
    svc = service_factory("embedded")
    svc.start_web()
    assert requests.get(svc.url + "/metrics", timeout=30).status_code == 404
