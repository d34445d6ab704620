"""A long stage shows its estimated time left on the release page, in real headless Chromium: rendered
by the server, then kept current by the page's polling; to the second for the steward, in whole minutes
for the analyst. No worker runs here: the running job's progress is written as a worker writes it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_release_flow import open_session

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The web app with the demo table, and no worker: a release stays where the test puts it."""
    from core.db import dispose_engines
    from tests.browser.support import demo_service

    svc = demo_service(tmp_path_factory.mktemp(f"eta-{secrets.token_hex(2)}"), worker=False)
    try:
        yield svc
    finally:
        svc.stop()
        dispose_engines()


def _running(svc: Any, job_id: int, eta: int | None) -> None:
    from core.db import session_scope
    from core.models import ReleaseJob

    with session_scope(svc.settings) as s:
        job = s.get(ReleaseJob, job_id)
        job.status, job.stage, job.progress, job.eta_seconds = "running", "evaluate", 0.8, eta


def test_the_release_page_shows_and_updates_the_running_stage_s_time_left(idle, chromium):
    from playwright.sync_api import expect

    svc = idle
    resp = svc.api(
        "analyst", "POST", "/releases", json={"dataset": "adult", "method": "mst", "epsilon": 0.5, "delta": 1e-9}
    )
    assert resp.status_code in (201, 202), resp.text
    job_id = resp.json()["release"]["id"]
    _running(svc, job_id, 42)

    analyst = open_session(chromium, svc, "analyst")
    analyst.goto(f"{svc.url}/releases/{job_id}")
    assert analyst.inner_text("#job-eta") == "about 1 min left in this stage"
    steward = open_session(chromium, svc, "steward")
    steward.goto(f"{svc.url}/releases/{job_id}")
    assert steward.inner_text("#job-eta") == "about 42 s left in this stage"

    _running(svc, job_id, 200)  # the next progress write: both pages follow by polling
    expect(analyst.locator("#job-eta")).to_have_text("about 4 min left in this stage", timeout=10_000)
    expect(steward.locator("#job-eta")).to_have_text("about 4 min left in this stage", timeout=10_000)
    _running(svc, job_id, None)  # a new stage, too young for an estimate
    expect(steward.locator("#job-eta")).to_have_text("", timeout=10_000)
    assert analyst.js_errors == [] and steward.js_errors == []
