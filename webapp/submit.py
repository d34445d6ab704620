"""Submit a release request: record it (its cost reserved in the ledger), then hand it to the job queue.

Both front ends submit through `submit_release`: the JSON API (webapp/api.py) and
the request form (webapp/pages/request_pages.py). If the queue cannot take the
job, the job is failed at once (its reservation given back, nothing charged)
and `QueueUnavailable` is raised; the API answers it with a 503, the form
shows it on the release page.
"""

from __future__ import annotations

import logging

from core import releases
from core.db import write_session
from core.errors import ServiceUnavailable
from core.models import User
from core.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["QueueUnavailable", "submit_release"]


class QueueUnavailable(ServiceUnavailable):
    """The job queue did not take the release; the job was failed and nothing was charged."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            "the job queue is unavailable; the request was cancelled and nothing was charged. Try again shortly",
            code="queue_unavailable",
        )
        self.job_id = job_id


def submit_release(settings: Settings, user: User, req: releases.ReleaseRequest) -> int:
    """Record the release `user` requests and queue it; the new job's id.

    `user` may be detached: it is merged into the write session without a reload.
    Refusals of the request itself (service and privacy errors) are raised before
    anything is queued; a queue that cannot take the job raises QueueUnavailable.
    """
    with write_session(settings) as s:
        job = releases.request_release(s, s.merge(user, load=False), req, settings)
        job_id = job.id
    from workers.enqueue import enqueue_release

    try:
        enqueue_release(job_id, settings)
    except Exception as exc:
        log.exception("could not enqueue job %s", job_id)
        from workers.jobs import fail_job

        fail_job(
            settings,
            job_id,
            "queue_unavailable",
            "the job queue is unavailable; nothing was charged. Try again shortly.",
            repr(exc),
        )
        raise QueueUnavailable(job_id) from exc
    return job_id
