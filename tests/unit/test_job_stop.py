"""A run over its time limit is failed in the database, then stopped: by an exception raised in its
thread, or, stuck in native code, by ending its (pool) process. Each run is a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from core.db import session_scope
from core.models import AuditEvent, ReleaseJob
from tests.unit.test_ledger_db import _actions, _request, env  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]

RUN = textwrap.dedent("""
    import sys, time
    from core.settings import Settings
    from workers.jobs import JobControl, JobStopped, claim
    settings = Settings.from_env(environ={}, data_dir=sys.argv[1], heartbeat_seconds=1, stop_grace_seconds=2)
    job_id, stuck = int(sys.argv[2]), sys.argv[3] == "stuck"
    assert claim(job_id, "w1", settings)
    started = time.monotonic()
    try:
        with JobControl(job_id, "w1", settings, time_limit=2, hard_exit=True) as control:
            control.mark_data_read()
            while time.monotonic() - started < 120:
                if stuck:
                    time.sleep(120)  # one long call into C: no exception can be delivered
                sum(range(1000))
    except JobStopped:
        print("stopped after", round(time.monotonic() - started), "s")
        sys.exit(0)
    sys.exit(3)
""")


def _run(settings, job_id: int, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN, str(settings.data_dir), str(job_id), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _failed(settings, job_id: int) -> tuple[str, str | None]:
    with session_scope(settings) as s:
        job = s.get(ReleaseJob, job_id)
        return job.status, job.error_code


def test_a_busy_run_is_stopped_by_an_exception(env):  # noqa: F811
    job_id = _request(env)
    out = _run(env, job_id, "busy")
    assert out.returncode == 0, out.stderr
    assert "stopped after" in out.stdout
    assert _failed(env, job_id) == ("failed", "time_limit")
    assert _actions(env, job_id) == ["reserve", "spend"]  # the data was read: the charge stays


def test_a_run_stuck_in_native_code_has_its_process_ended(env):  # noqa: F811
    job_id = _request(env)
    out = _run(env, job_id, "stuck")
    assert out.returncode == 70, (out.returncode, out.stderr)
    assert _failed(env, job_id) == ("failed", "time_limit")
    assert _actions(env, job_id) == ["reserve", "spend"]
    with session_scope(env) as s:
        fails = (
            s.execute(
                select(AuditEvent.action).where(
                    AuditEvent.object_id == str(job_id), AuditEvent.action == "release.fail"
                )
            )
            .scalars()
            .all()
        )
    assert len(fails) == 1
