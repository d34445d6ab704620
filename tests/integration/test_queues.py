"""Queues per workload: a long GAN fit on the heavy queue never holds up a quick MST release."""

from __future__ import annotations

import pytest

from tests.integration.test_release_path import register_demo
from workers.celery_app import HEAVY_QUEUE, QUEUE, queue_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_methods_go_to_their_queue() -> None:
    for method in ("dpctgan", "patectgan", "ctgan", "tvae", "copulagan", "mwem"):
        assert queue_for(method) == HEAVY_QUEUE, method
    for method in ("mst", "aim", "dp-copula", "dp-marginals", "gaussian-copula", "smote", "dp-statistics", None):
        assert queue_for(method) == QUEUE, method


def test_a_gan_on_the_heavy_queue_does_not_delay_mst(service_factory):
    svc = service_factory("redis-postgres")
    svc.start_web()
    name = register_demo(svc)["name"]
    svc.start_worker("heavy", queues=HEAVY_QUEUE)
    svc.start_worker("light", queues=QUEUE)
    gan = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={
            "dataset": name,
            "method": "dpctgan",
            "epsilon": 1.0,
            "delta": 5e-7,
            "rows": 300,
            "options": {"epochs": 200},
        },
    )
    assert gan.status_code == 202, gan.text
    gan_id = gan.json()["release"]["id"]
    svc.wait_for("steward", gan_id, predicate=lambda r: r["status"] == "running", timeout=300)
    mst = svc.api(
        "analyst",
        "POST",
        "/releases",
        json={"dataset": name, "method": "mst", "epsilon": 0.5, "delta": 1e-7, "rows": 300},
    )
    assert mst.status_code == 202, mst.text
    done = svc.wait_for("analyst", mst.json()["release"]["id"], timeout=600)
    assert done["status"] == "awaiting_approval", svc.worker_logs()
    # the MST release went through while the GAN was still fitting on its own worker
    assert svc.api("steward", "GET", f"/releases/{gan_id}").json()["release"]["status"] == "running"
    stop = svc.api("steward", "POST", f"/releases/{gan_id}/cancel", json={"reason": "test over"})
    assert stop.status_code == 200, stop.text
