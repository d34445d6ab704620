"""Job control: at most one live runner per job, and no job stuck in running.

* `claim` is one conditional UPDATE: a worker takes a job that is queued, or
  running with an expired lease (its worker died). Whoever's update matches
  runs it; a redelivered or duplicate task finds nothing to claim and stops.
* While it runs, a heartbeat renews the lease. A worker that lost its lease
  (it was presumed dead) stops before writing anything.
* `reap` runs periodically in every worker: jobs whose lease expired go back to
  queued and are sent again, up to `max_attempts`, then are marked failed.
* A re-run uses the job's stored seed, so it computes the same output; the
  ledger charges a job at most once (see core/ledger.py). The output of a run
  that died is never stored, so only one output of the mechanism ever exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from sqlalchemy import and_, or_, select, update

from core import audit, ledger
from core.db import session_scope, write_session
from core.models import JobStatus, ReleaseJob, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["worker_identity", "claim", "JobControl", "LeaseLost", "reap", "Reaper", "fail_job"]


class LeaseLost(Exception):
    """This worker no longer owns the job (it was presumed dead and the job moved on)."""


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(job_id: int, owner: str, settings: Settings) -> bool:
    """Take the job if it is queued or its previous runner's lease expired."""
    now = utcnow()
    with write_session(settings) as s:
        res = s.execute(
            update(ReleaseJob)
            .where(
                ReleaseJob.id == job_id,
                or_(
                    ReleaseJob.status == JobStatus.queued.value,
                    and_(ReleaseJob.status == JobStatus.running.value, ReleaseJob.lease_expires_at < now),
                ),
            )
            .values(
                status=JobStatus.running.value,
                lease_owner=owner,
                lease_expires_at=now + dt.timedelta(seconds=settings.lease_seconds),
                attempts=ReleaseJob.attempts + 1,
                stage="starting",
                message="a worker picked up the job",
            )
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:
            return False
        job = s.get(ReleaseJob, job_id)
        assert job is not None
        if job.started_at is None:
            job.started_at = now
        audit.record(s, "release.start", actor="worker", object_type="release", object_id=job_id,
                     detail={"worker": owner, "attempt": job.attempts})
        return True


class JobControl:
    """What a running pipeline uses to report progress, mark data access and finish."""

    def __init__(self, job_id: int, owner: str, settings: Settings) -> None:
        self.job_id = job_id
        self.owner = owner
        self.settings = settings
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._last_write = 0.0
        self._stage: str | None = None
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    # ----- lease ------------------------------------------------------------------------------
    def __enter__(self) -> JobControl:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _renew(self, **values: Any) -> bool:
        now = utcnow()
        with session_scope(self.settings) as s:
            res = s.execute(
                update(ReleaseJob)
                .where(ReleaseJob.id == self.job_id, ReleaseJob.lease_owner == self.owner,
                       ReleaseJob.status == JobStatus.running.value)
                .values(lease_expires_at=now + dt.timedelta(seconds=self.settings.lease_seconds), **values)
                .execution_options(synchronize_session=False)
            )
            return res.rowcount == 1

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            try:
                if not self._renew():
                    log.warning("job %s: lease lost; this worker stops working on it", self.job_id)
                    self._lost.set()
                    return
            except Exception:  # a database hiccup must not kill the heartbeat
                log.exception("job %s: heartbeat failed", self.job_id)

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(f"job {self.job_id} is no longer owned by {self.owner}")

    # ----- progress ---------------------------------------------------------------------------
    def progress(self, stage: str, fraction: float, message: str | None = None) -> None:
        """Record the stage and overall progress (0..1); throttled except on stage change."""
        self.check()
        now = time.monotonic()
        if stage == self._stage and now - self._last_write < 0.5:
            return
        self._stage = stage
        self._last_write = now
        if not self._renew(stage=stage, progress=max(0.0, min(1.0, float(fraction))), message=message or stage):
            self._lost.set()
            self.check()

    # ----- privacy-relevant transitions --------------------------------------------------------
    def mark_data_read(self) -> None:
        """The mechanism is about to read real rows: the reservation becomes spent (once)."""
        self.check()
        with write_session(self.settings) as s:
            job = s.get(ReleaseJob, self.job_id)
            assert job is not None
            if job.lease_owner != self.owner:
                raise LeaseLost(f"job {self.job_id} moved to another worker")
            if ledger.mark_spent(s, job):
                audit.record(s, "ledger.spend", actor="worker", object_type="release", object_id=job.id,
                             detail={"dataset_id": job.dataset_id})
            job.data_read = True

    def finish(self, **fields: Any) -> bool:
        """Store results and move to awaiting_approval, if this worker still owns the job."""
        self.check()
        with write_session(self.settings) as s:
            job = s.get(ReleaseJob, self.job_id)
            assert job is not None
            if job.lease_owner != self.owner or job.status != JobStatus.running.value:
                return False
            for key, value in fields.items():
                setattr(job, key, value)
            job.status = JobStatus.awaiting_approval.value
            job.stage = "done"
            job.progress = 1.0
            job.message = "ready for the steward's review"
            job.finished_at = utcnow()
            job.lease_owner = None
            job.lease_expires_at = None
            audit.record(s, "release.ready", actor="worker", object_type="release", object_id=job.id,
                         detail={"gate": (fields.get("gate") or {}).get("overall")})
            return True


def fail_job(settings: Settings, job_id: int, code: str, public_message: str, internal_detail: str | None = None,
             owner: str | None = None) -> bool:
    """Mark a job failed. Its reservation is released only if no mechanism read the data."""
    with write_session(settings) as s:
        job = s.get(ReleaseJob, job_id)
        if job is None or JobStatus(job.status).terminal:
            return False
        if owner is not None and job.lease_owner not in (owner, None):
            return False
        job.status = JobStatus.failed.value
        job.error_code = code
        job.message = public_message
        job.error = internal_detail or public_message
        job.finished_at = utcnow()
        job.lease_owner = None
        job.lease_expires_at = None
        released = False
        if not job.data_read:
            released = ledger.release_reservation(s, job, f"job failed before reading data: {code}")
        audit.record(s, "release.fail", actor="worker", object_type="release", object_id=job.id,
                     detail={"code": code, "message": public_message, "data_read": job.data_read,
                             "reservation_released": released})
        return True


def reap(settings: Settings, send: Any) -> list[int]:
    """Requeue (or fail) running jobs whose lease expired. Returns the ids requeued."""
    now = utcnow()
    requeued: list[int] = []
    with session_scope(settings) as s:
        stale = list(s.execute(
            select(ReleaseJob.id, ReleaseJob.attempts).where(
                ReleaseJob.status == JobStatus.running.value, ReleaseJob.lease_expires_at < now)
        ).all())
    for job_id, attempts in stale:
        if attempts >= settings.max_attempts:
            fail_job(settings, job_id, "worker_lost",
                     f"the worker running this release stopped unexpectedly {attempts} times; "
                     "the job was stopped. Ask the steward to check the workers' logs.")
            continue
        with write_session(settings) as s:
            res = s.execute(
                update(ReleaseJob)
                .where(ReleaseJob.id == job_id, ReleaseJob.status == JobStatus.running.value,
                       ReleaseJob.lease_expires_at < now)
                .values(status=JobStatus.queued.value, lease_owner=None, lease_expires_at=None,
                        stage="queued", message="requeued: the previous worker stopped")
                .execution_options(synchronize_session=False)
            )
            if res.rowcount != 1:
                continue
            audit.record(s, "release.requeue", actor="worker", object_type="release", object_id=job_id,
                         detail={"attempts": attempts})
        send(job_id)
        requeued.append(job_id)
        log.warning("job %s: lease expired, requeued (attempt %s done)", job_id, attempts)
    return requeued


class Reaper(threading.Thread):
    """Background thread of a worker's main process that calls `reap` periodically."""

    def __init__(self, settings: Settings, send: Any) -> None:
        super().__init__(name="synthgate-reaper", daemon=True)
        self.settings = settings
        self.send = send
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.settings.reaper_seconds):
            try:
                reap(self.settings, self.send)
            except Exception:
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self.stopped.set()
