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
* Every run has a hard time limit (per method, `Settings.job_time_limit`). The
  heartbeat thread enforces it and notices a cancellation (the job is no longer
  running under this worker's lease): it marks the job failed first, so the
  database holds the outcome, then stops the pipeline by raising `JobStopped`
  in the task's thread; a run stuck in native code that has not stopped after
  `stop_grace_seconds` has its pool process ended (its message is then
  redelivered and finds nothing to claim).
* The database, not the broker, is the source of truth: `requeue_unclaimed`
  sends again every job queued longer than `requeue_after_seconds` that no
  worker claimed (a broker that lost its queue), once per period, by a
  compare-and-set on `enqueued_at`; a duplicate delivery finds nothing to claim.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import math
import os
import socket
import threading
import time
import uuid
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from core import audit, ledger, notifications
from core.db import session_scope, write_session
from core.models import JobStatus, ReleaseJob, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "JobControl",
    "JobStopped",
    "LeaseLost",
    "Reaper",
    "claim",
    "fail_job",
    "reap",
    "requeue_unclaimed",
    "worker_identity",
]


class LeaseLost(Exception):
    """This worker no longer owns the job (it was presumed dead, cancelled, or timed out)."""


class JobStopped(BaseException):
    """Raised asynchronously in a running pipeline whose job was cancelled or ran out of time.

    A BaseException, so that no `except Exception` in library code swallows it.
    """


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def take_lease(
    session: Any, model: Any, row_id: int, owner: str, settings: Settings, *, queued: str, running: str, **values: Any
) -> bool:
    """Set a job's (or a re-run's) row to running under `owner`'s lease if it is queued or its previous
    runner's lease expired; `values` are further columns to set. True when this call took it."""
    now = utcnow()
    res = session.execute(
        update(model)
        .where(
            model.id == row_id,
            or_(model.status == queued, and_(model.status == running, model.lease_expires_at < now)),
        )
        .values(
            status=running,
            lease_owner=owner,
            lease_expires_at=now + dt.timedelta(seconds=settings.lease_seconds),
            attempts=model.attempts + 1,
            stage="starting",
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1


def claim(job_id: int, owner: str, settings: Settings) -> bool:
    """Take the job if it is queued or its previous runner's lease expired."""
    now = utcnow()
    with write_session(settings) as s:
        if not take_lease(
            s,
            ReleaseJob,
            job_id,
            owner,
            settings,
            queued=JobStatus.queued.value,
            running=JobStatus.running.value,
            message="a worker picked up the job",
        ):
            return False
        job = s.get(ReleaseJob, job_id)
        assert job is not None
        if job.started_at is None:
            job.started_at = now
        audit.record(
            s,
            "release.start",
            actor="worker",
            object_type="release",
            object_id=job_id,
            detail={"worker": owner, "attempt": job.attempts},
        )
        return True


class JobControl:
    """What a running pipeline uses to report progress, mark data access and finish.

    Its heartbeat thread renews the lease and stops the run when the job was
    cancelled or exceeds `time_limit` seconds (see the module docstring).
    """

    def __init__(
        self, job_id: int, owner: str, settings: Settings, time_limit: float | None = None, hard_exit: bool = False
    ) -> None:
        self.job_id = job_id
        self.owner = owner
        self.settings = settings
        self.time_limit = time_limit
        self.hard_exit = hard_exit  # end the process if a stopped run does not stop (pool processes only)
        self.stop_reason: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._target: int | None = None  # ident of the thread running the pipeline, while it runs
        self._last_write = 0.0
        self._stage: str | None = None
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    # ----- lease ------------------------------------------------------------------------------
    def __enter__(self) -> JobControl:
        self._started = time.monotonic()
        self._target = threading.get_ident()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._guard:
            target, self._target = self._target, None
        if target is not None:  # drop a stop that was raised but not yet delivered
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)
        self._stop.set()
        self._thread.join(timeout=5)

    def _renew(self, **values: Any) -> bool:
        now = utcnow()
        with session_scope(self.settings) as s:
            res = s.execute(
                update(ReleaseJob)
                .where(
                    ReleaseJob.id == self.job_id,
                    ReleaseJob.lease_owner == self.owner,
                    ReleaseJob.status == JobStatus.running.value,
                )
                .values(lease_expires_at=now + dt.timedelta(seconds=self.settings.lease_seconds), **values)
                .execution_options(synchronize_session=False)
            )
            return res.rowcount == 1

    def _beat(self) -> None:
        tick = max(0.2, min(1.0, float(self.settings.heartbeat_seconds)))
        next_renew = time.monotonic() + self.settings.heartbeat_seconds
        while not self._stop.wait(tick):
            if self.time_limit is not None and time.monotonic() - self._started > self.time_limit:
                self._time_out()
                return
            if time.monotonic() < next_renew:
                continue
            next_renew = time.monotonic() + self.settings.heartbeat_seconds
            try:
                if not self._renew():
                    log.warning(
                        "job %s: lease lost (cancelled or taken over); this worker stops working on it", self.job_id
                    )
                    self.stop_reason = self.stop_reason or "lease_lost"
                    self._lost.set()
                    self._interrupt()
                    return
            except Exception:  # a database hiccup must not kill the heartbeat
                log.exception("job %s: heartbeat failed", self.job_id)

    def _time_out(self) -> None:
        """Fail the job for its time limit (the charge stays if data was read), then stop the run."""
        limit = int(self.time_limit or 0)
        log.warning("job %s: time limit of %ss reached; stopping it", self.job_id, limit)
        self.stop_reason = "time_limit"
        try:
            fail_job(
                self.settings,
                self.job_id,
                "time_limit",
                f"the release ran longer than its time limit ({limit} s) and was stopped; ask for fewer rows "
                "or a cheaper method or options (fewer iterations, epochs or bins)",
                owner=self.owner,
            )
        except Exception:
            log.exception("job %s: could not record the time limit", self.job_id)
        self._lost.set()
        self._interrupt()

    def _interrupt(self) -> None:
        """Raise JobStopped in the pipeline's thread; end the process if it has not stopped in time."""
        with self._guard:
            if self._target is None:
                return
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target), ctypes.py_object(JobStopped))
        if self._stop.wait(self.settings.stop_grace_seconds) or not self.hard_exit:
            return
        log.error(
            "job %s: still running %ss after it was stopped (native code?); ending this worker process",
            self.job_id,
            self.settings.stop_grace_seconds,
        )
        logging.shutdown()
        os._exit(70)

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(f"job {self.job_id} is no longer owned by {self.owner}")

    # ----- progress ---------------------------------------------------------------------------
    def progress(
        self, stage: str, fraction: float, message: str | None = None, eta_seconds: float | None = None
    ) -> None:
        """Record the stage, overall progress (0..1) and the stage's estimated seconds left; throttled
        except on stage change."""
        self.check()
        now = time.monotonic()
        if stage == self._stage and now - self._last_write < 0.5:
            return
        self._stage = stage
        self._last_write = now
        eta = None if eta_seconds is None else max(0, int(math.ceil(eta_seconds)))
        values = {"stage": stage, "progress": max(0.0, min(1.0, float(fraction))), "message": message or stage}
        if not self._renew(**values, eta_seconds=eta):
            self._lost.set()
            self.check()

    # ----- privacy-relevant transitions --------------------------------------------------------
    def mark_data_read(self) -> None:
        """The mechanism is about to read real rows: the reservation becomes spent (once)."""
        self.check()
        with write_session(self.settings) as s:
            # the row lock orders this against a concurrent cancel: either the cancel sees data_read, or
            # this sees the job is no longer ours
            job = s.get(ReleaseJob, self.job_id, with_for_update=True)
            assert job is not None
            if job.lease_owner != self.owner or job.status != JobStatus.running.value:
                raise LeaseLost(f"job {self.job_id} moved to another worker or was stopped")
            if ledger.mark_spent(s, job):
                audit.record(
                    s,
                    "ledger.spend",
                    actor="worker",
                    object_type="release",
                    object_id=job.id,
                    detail={"dataset_id": job.dataset_id},
                )
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
            audit.record(
                s,
                "release.ready",
                actor="worker",
                object_type="release",
                object_id=job.id,
                detail={"gate": (fields.get("gate") or {}).get("overall")},
            )
            notifications.after_commit(s, self.settings, notifications.READY, job.id)
            return True


def fail_job(
    settings: Settings,
    job_id: int,
    code: str,
    public_message: str,
    internal_detail: str | None = None,
    owner: str | None = None,
) -> bool:
    """Mark a job failed. Its reservation is released only if no mechanism read the data."""
    with write_session(settings) as s:
        job = s.get(ReleaseJob, job_id, with_for_update=True)
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
        audit.record(
            s,
            "release.fail",
            actor="worker",
            object_type="release",
            object_id=job.id,
            detail={
                "code": code,
                "message": public_message,
                "data_read": job.data_read,
                "reservation_released": released,
            },
        )
        notifications.after_commit(s, settings, notifications.FAILED, job.id)
        return True


def reap(settings: Settings, send: Any) -> list[int]:
    """Requeue (or fail) running jobs whose lease expired. Returns the ids requeued."""
    now = utcnow()
    requeued: list[int] = []
    with session_scope(settings) as s:
        stale = list(
            s.execute(
                select(ReleaseJob.id, ReleaseJob.attempts).where(
                    ReleaseJob.status == JobStatus.running.value, ReleaseJob.lease_expires_at < now
                )
            ).all()
        )
    for job_id, attempts in stale:
        if attempts >= settings.max_attempts:
            fail_job(
                settings,
                job_id,
                "worker_lost",
                f"the worker running this release stopped unexpectedly {attempts} times; "
                "the job was stopped. Ask the steward to check the workers' logs.",
            )
            continue
        with write_session(settings) as s:
            res = s.execute(
                update(ReleaseJob)
                .where(
                    ReleaseJob.id == job_id,
                    ReleaseJob.status == JobStatus.running.value,
                    ReleaseJob.lease_expires_at < now,
                )
                .values(
                    status=JobStatus.queued.value,
                    lease_owner=None,
                    lease_expires_at=None,
                    stage="queued",
                    message="requeued: the previous worker stopped",
                    enqueued_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if res.rowcount != 1:
                continue
            audit.record(
                s,
                "release.requeue",
                actor="worker",
                object_type="release",
                object_id=job_id,
                detail={"attempts": attempts},
            )
        send(job_id)
        requeued.append(job_id)
        log.warning("job %s: lease expired, requeued (attempt %s done)", job_id, attempts)
    return requeued


def requeue_unclaimed(settings: Settings, send: Any, held: Any = None) -> list[int]:
    """Send again the jobs queued longer than `requeue_after_seconds` that no worker claimed.

    The broker may have lost them (Redis restarted without its data). `held()`, when
    given, returns the ids whose message the broker still holds (or None if it cannot
    tell): those are only waiting their turn and are left alone. Each job is re-sent
    at most once per period however many workers sweep: the update of `enqueued_at`
    is a compare-and-set. Should a message exist after all, the second delivery finds
    nothing to claim. Returns the ids re-sent.
    """
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=settings.requeue_after_seconds)
    since = func.coalesce(ReleaseJob.enqueued_at, ReleaseJob.created_at)
    with session_scope(settings) as s:
        stale = list(
            s.execute(
                select(ReleaseJob.id, ReleaseJob.enqueued_at)
                .where(ReleaseJob.status == JobStatus.queued.value, since < cutoff)
                .order_by(ReleaseJob.id)
            ).all()
        )
    sent: list[int] = []
    in_broker = held() if (held is not None and stale) else None
    for job_id, enqueued_at in stale:
        if in_broker is not None and job_id in in_broker:
            continue
        with write_session(settings) as s:
            same = ReleaseJob.enqueued_at.is_(None) if enqueued_at is None else ReleaseJob.enqueued_at == enqueued_at
            res = s.execute(
                update(ReleaseJob)
                .where(ReleaseJob.id == job_id, ReleaseJob.status == JobStatus.queued.value, same)
                .values(enqueued_at=now, message="sent to the queue again: no worker had claimed it")
                .execution_options(synchronize_session=False)
            )
            if res.rowcount != 1:
                continue  # claimed, cancelled, or re-sent by another worker meanwhile
            audit.record(
                s,
                "release.resend",
                actor="worker",
                object_type="release",
                object_id=job_id,
                detail={"queued_since": (enqueued_at.isoformat(timespec="seconds") if enqueued_at else None)},
            )
        send(job_id)
        sent.append(job_id)
        log.warning("job %s: queued and unclaimed for over %ss; sent again", job_id, settings.requeue_after_seconds)
    return sent


class Reaper(threading.Thread):
    """Background thread of a worker's main process: `reap` and `requeue_unclaimed`, periodically."""

    def __init__(self, settings: Settings, send: Any, held: Any = None, sweeps: dict[str, Any] | None = None) -> None:
        super().__init__(name="synthgate-reaper", daemon=True)
        self.settings = settings
        self.send = send
        self.held = held
        self.sweeps = dict(sweeps or {})  # further passes by name, e.g. the re-runs' (workers/rerun.py)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.settings.reaper_seconds):
            try:
                reap(self.settings, self.send)
            except Exception:
                log.exception("reaper pass failed")
            try:
                requeue_unclaimed(self.settings, self.send, held=self.held)
            except Exception:
                log.exception("requeue pass failed")
            for name, sweep in self.sweeps.items():
                try:
                    sweep()
                except Exception:
                    log.exception("%s sweep failed", name)

    def stop(self) -> None:
        self.stopped.set()
