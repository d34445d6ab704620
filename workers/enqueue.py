"""Enqueue a release job by id. Imports only Celery, never the pipeline."""

from __future__ import annotations

import logging

from core.settings import Settings

log = logging.getLogger(__name__)


def enqueue_release(job_id: int, settings: Settings | None = None) -> None:
    """Send the job to the queue; raises if the broker cannot take it."""
    from workers.celery_app import QUEUE, TASK_RUN_RELEASE, get_celery

    get_celery(settings).send_task(TASK_RUN_RELEASE, args=[int(job_id)], queue=QUEUE)
    log.info("enqueued release job %s", job_id)
