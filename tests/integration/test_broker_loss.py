"""The broker loses its queue (Redis restarted without its data) while 2 jobs are queued and 1 runs:
all 3 finish exactly once, each charged once. The database, not the broker, is the source of truth.

The test runs its own redis-server on a free port (never the shared one) and restarts it empty.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import _free_port, make_settings, setup_service
from tests.integration.test_release_path import ledger_rows, register_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_MST = {"method": "mst", "epsilon": 0.25, "delta": 1e-9, "rows": 200, "options": {"iters": 2500}}
QUICK_MST = {"method": "mst", "epsilon": 0.25, "delta": 1e-9, "rows": 200, "options": {"iters": 50}}


def _start_redis(port: int, workdir: Path) -> subprocess.Popen:
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not on PATH"
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if client.ping():
                return proc
        except redis.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def test_jobs_survive_a_broker_that_lost_its_queue(tmp_path, pg_url):
    port = _free_port()
    rdir = tmp_path / "redis"
    rdir.mkdir()
    broker = _start_redis(port, rdir)
    data, logs = tmp_path / "svc", tmp_path / "logs"
    data.mkdir()
    logs.mkdir()
    settings = make_settings(
        data,
        "embedded",
        database_url=pg_url,
        broker_url=f"redis://127.0.0.1:{port}/0",
        lease_seconds=6,
        heartbeat_seconds=1,
        reaper_seconds=2,
        requeue_after_seconds=8,
    )
    svc = setup_service(settings, logs)
    try:
        svc.start_web()
        name = register_demo(svc)["name"]
        svc.start_worker()

        def post(body: dict) -> int:
            resp = svc.api("analyst", "POST", "/releases", json={"dataset": name, **body})
            assert resp.status_code == 202, resp.text
            return resp.json()["release"]["id"]

        running = post(SLOW_MST)
        svc.wait_for(
            "steward", running, predicate=lambda r: r["status"] == "running" and r["stage"] == "fit", timeout=300
        )
        queued = [post(QUICK_MST), post(QUICK_MST)]
        held = redis.Redis(host="127.0.0.1", port=port).llen("releases")
        assert held == 2, held  # both wait in the broker behind the running job

        # the broker dies and comes back empty
        _stop(broker)
        broker = _start_redis(port, rdir)
        # the two queued messages are gone (the web and worker reconnect at once and may write their own
        # bookkeeping keys, so the queue itself is what is checked, not the whole keyspace)
        assert redis.Redis(host="127.0.0.1", port=port).llen("releases") == 0

        jobs = [running, *queued]
        for job_id in jobs:
            done = svc.wait_for("steward", job_id, timeout=600)
            assert done["status"] == "awaiting_approval", (done, svc.worker_logs())
            assert done["internal"]["attempts"] == 1, done

        history = ledger_rows(svc, name)
        audit = svc.api("steward", "GET", "/audit?limit=2000").json()
        assert audit["chain"]["ok"]
        for job_id in jobs:
            assert sorted(h["action"] for h in history if h["job_id"] == job_id) == ["reserve", "spend"]
            actions = [e["action"] for e in audit["events"] if e["object_id"] == str(job_id)]
            assert actions.count("release.start") == 1 and actions.count("release.ready") == 1, actions
        for job_id in queued:  # the two lost messages were sent again from the database, once each
            resends = [e for e in audit["events"] if e["object_id"] == str(job_id) and e["action"] == "release.resend"]
            assert len(resends) == 1, resends
        assert not [e for e in audit["events"] if e["object_id"] == str(running) and e["action"] == "release.resend"]
        ledger = svc.api("steward", "GET", f"/datasets/{name}/ledger").json()["ledger"]
        assert ledger["spent"]["epsilon"] == "3/4" and ledger["reserved"]["epsilon"] == "0"
    finally:
        svc.stop()
        _stop(broker)
        from core.db import dispose_engines

        dispose_engines()
