"""The command line that starts a Celery worker process, for whatever supervises workers.

Used by `synthgate serve`, `synthgate worker`, the demo, the benchmark harness
and the test services. Celery itself loads only in the worker process: the
queue names are imported when the command is built, not when this module is.
"""

from __future__ import annotations

import sys


def worker_command(
    settings,
    concurrency: int = 1,
    hostname: str | None = None,  # type: ignore[no-untyped-def]
    queues: str | None = None,
) -> list[str]:
    from workers.celery_app import QUEUES

    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-Q",
        queues or ",".join(QUEUES),
        "--concurrency",
        str(concurrency),
        "--loglevel",
        settings.log_level,
        "--without-gossip",
        "--without-mingle",
        "--pool",
        "prefork",
    ]
    if hostname:
        cmd += ["--hostname", hostname]
    return cmd
