"""Ending a release job from the service side (a cancellation, a revoked grant): the job's state, its
reservation and the audit event, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core import audit, ledger
from core.models import JobStatus, ReleaseJob, User, utcnow

__all__ = ["stop_job"]


def stop_job(session: Session, actor: User | str, job: ReleaseJob, message: str) -> dict[str, Any]:
    """End an unfinished job (row locked by the caller) as failed/cancelled, and audit it. `actor` is a user,
    or the name of a service actor (the retention sweep's `system`)."""
    was = job.status
    job.status = JobStatus.failed.value
    job.error_code = "cancelled"
    job.message = message
    job.error = message
    job.finished_at = utcnow()
    job.lease_owner = None
    job.lease_expires_at = None
    released = False if job.data_read else ledger.release_reservation(session, job, message)
    outcome = {"id": job.id, "was": was, "data_read": bool(job.data_read), "reservation_released": released}
    audit.record(
        session,
        "release.cancel",
        actor=actor,
        object_type="release",
        object_id=job.id,
        detail={**outcome, "message": message},
    )
    return outcome
