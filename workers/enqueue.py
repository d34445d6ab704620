"""Enqueue a release job by id, and look into the broker for jobs it still holds.

Imports only Celery and the broker's client, never the pipeline.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from core.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["enqueue_release", "enqueue_rerun", "held_job_ids"]


def enqueue_release(job_id: int, settings: Settings | None = None, method: str | None = None) -> None:
    """Send the job to its method's queue (`queue_for`); raises if the broker cannot take it."""
    from workers.celery_app import TASK_RUN_RELEASE, get_celery, queue_for

    if method is None:
        method = _method_of(job_id, settings)
    queue = queue_for(method)
    get_celery(settings).send_task(TASK_RUN_RELEASE, args=[int(job_id)], queue=queue)
    log.info("enqueued release job %s on %s", job_id, queue)


def _method_of(job_id: int, settings: Settings | None) -> str | None:
    from core.db import session_scope
    from core.models import ReleaseJob
    from core.settings import get_settings

    with session_scope(settings or get_settings()) as s:
        job = s.get(ReleaseJob, int(job_id))
        return job.method if job is not None else None


def enqueue_rerun(candidate_id: int, settings: Settings | None = None) -> None:
    """Send a re-run of post-processing (a release candidate) to the queue; raises if the broker cannot take it."""
    from workers.celery_app import QUEUE, TASK_RERUN_POSTPROCESS, get_celery

    get_celery(settings).send_task(TASK_RERUN_POSTPROCESS, args=[int(candidate_id)], queue=QUEUE)
    log.info("enqueued re-run candidate %s", candidate_id)


def held_job_ids(settings: Settings) -> set[int] | None:
    """Ids of the release jobs whose message the broker holds (waiting, or delivered and not acked).

    None when this broker cannot be inspected; the caller then relies on time alone.
    Used by the sweep so that a job merely waiting its turn is not sent twice.
    """
    try:
        if settings.uses_filesystem_broker:
            return _filesystem_held(settings.broker_folder / "queue")
        if settings.broker_url.startswith(("redis://", "rediss://")):
            return _redis_held(settings.broker_url)
    except Exception:  # a broker that cannot be read now: fall back to time alone
        log.warning("could not inspect the broker's queue", exc_info=True)
    return None


def _job_id(message: Any) -> int | None:
    """The job id of one serialized Celery message of the release task, else None."""
    from workers.celery_app import TASK_RUN_RELEASE

    if not isinstance(message, dict) or (message.get("headers") or {}).get("task") != TASK_RUN_RELEASE:
        return None
    body = message.get("body")
    if (message.get("properties") or {}).get("body_encoding") == "base64" and isinstance(body, str):
        body = base64.b64decode(body)
    args = json.loads(body)[0] if body else None
    return int(args[0]) if args else None


def _redis_held(url: str) -> set[int]:
    import redis

    from workers.celery_app import QUEUES

    client = redis.Redis.from_url(url)
    try:
        keys = [k for q in QUEUES for k in (q, *(f"{q}\x06\x16{p}" for p in (3, 6, 9)))]  # kombu's priority lists
        raw = [m for key in keys for m in client.lrange(key, 0, -1)]
        raw += [json.loads(v)[0] for v in client.hvals("unacked")]
    finally:
        client.close()
    held = set()
    for item in raw:
        job_id = _job_id(json.loads(item) if isinstance(item, bytes | str) else item)
        if job_id is not None:
            held.add(job_id)
    return held


def _filesystem_held(folder: Path) -> set[int]:
    from workers.celery_app import QUEUE

    held = set()
    for path in folder.glob(f"*.{QUEUE}.msg"):
        try:
            job_id = _job_id(json.loads(path.read_bytes()))
        except (OSError, ValueError):
            continue  # taken by a worker meanwhile, or being written
        if job_id is not None:
            held.add(job_id)
    return held
