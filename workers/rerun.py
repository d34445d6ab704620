"""Control of re-runs of post-processing (release_candidates rows), the counterpart of workers/jobs.py.

A re-run has its own lease, heartbeat and time limit, like a job, but the
job's row is never touched while it runs: the job stays awaiting approval, and
its status, lease and ledger entries are the original run's. A re-run charges
nothing, so it may be repeated freely: a candidate whose worker died is sent
again (up to `max_attempts`) and recomputes the same output (its row subset is
seeded from the job's seed and the candidate number).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import and_, or_, select, update

from core import audit
from core.db import session_scope, write_session
from core.errors import InternalError
from core.models import ReleaseCandidate, utcnow
from core.settings import Settings
from workers.jobs import JobControl, take_lease

log = logging.getLogger(__name__)

__all__ = [
    "CANDIDATE_FAILED",
    "CANDIDATE_QUEUED",
    "CANDIDATE_READY",
    "CANDIDATE_RUNNING",
    "CandidateControl",
    "claim_candidate",
    "fail_candidate",
    "reap_candidates",
]

CANDIDATE_QUEUED = "queued"
CANDIDATE_RUNNING = "running"
CANDIDATE_READY = "ready"
CANDIDATE_FAILED = "failed"


def claim_candidate(candidate_id: int, owner: str, settings: Settings) -> bool:
    """Take the re-run if it is queued or its previous runner's lease expired."""
    with write_session(settings) as s:
        return take_lease(
            s,
            ReleaseCandidate,
            candidate_id,
            owner,
            settings,
            queued=CANDIDATE_QUEUED,
            running=CANDIDATE_RUNNING,
            message="a worker picked up the re-run",
            started_at=utcnow(),
        )


class CandidateControl(JobControl):
    """JobControl for a re-run: the lease, progress and outcome live on the candidate's row.

    A re-run never reads data as a charge: `mark_data_read` is refused."""

    def __init__(
        self,
        candidate_id: int,
        job_id: int,
        owner: str,
        settings: Settings,
        time_limit: float | None = None,
        hard_exit: bool = False,
    ) -> None:
        super().__init__(job_id, owner, settings, time_limit=time_limit, hard_exit=hard_exit)
        self.candidate_id = candidate_id

    def _renew(self, **values: Any) -> bool:
        now = utcnow()
        with session_scope(self.settings) as s:
            res = s.execute(
                update(ReleaseCandidate)
                .where(
                    ReleaseCandidate.id == self.candidate_id,
                    ReleaseCandidate.lease_owner == self.owner,
                    ReleaseCandidate.status == CANDIDATE_RUNNING,
                )
                .values(lease_expires_at=now + dt.timedelta(seconds=self.settings.lease_seconds), **values)
                .execution_options(synchronize_session=False)
            )
            return res.rowcount == 1

    def _time_out(self) -> None:
        limit = int(self.time_limit or 0)
        log.warning(
            "job %s candidate %s: time limit of %ss reached; stopping it", self.job_id, self.candidate_id, limit
        )
        self.stop_reason = "time_limit"
        try:
            fail_candidate(
                self.settings,
                self.candidate_id,
                "time_limit",
                f"the re-run ran longer than its time limit ({limit} s) and was stopped",
                owner=self.owner,
            )
        except Exception:
            log.exception("candidate %s: could not record the time limit", self.candidate_id)
        self._lost.set()
        self._interrupt()

    def mark_data_read(self) -> None:
        raise InternalError("a re-run of post-processing must not charge the ledger")

    def finish(self, **fields: Any) -> bool:
        """Store the candidate's results and mark it ready, if this worker still owns it."""
        self.check()
        with write_session(self.settings) as s:
            cand = s.get(ReleaseCandidate, self.candidate_id, with_for_update=True)
            if cand is None or cand.lease_owner != self.owner or cand.status != CANDIDATE_RUNNING:
                return False
            for key, value in fields.items():
                setattr(cand, key, value)
            cand.status = CANDIDATE_READY
            cand.stage = "done"
            cand.progress = 1.0
            cand.message = "ready for the steward's review"
            cand.finished_at = utcnow()
            cand.lease_owner = None
            cand.lease_expires_at = None
            audit.record(
                s,
                "release.rerun_ready",
                actor="worker",
                object_type="release",
                object_id=cand.job_id,
                detail={
                    "candidate": cand.number,
                    "gate": (fields.get("gate") or {}).get("overall"),
                    "rows_released": fields.get("rows_released"),
                },
            )
            return True


def fail_candidate(
    settings: Settings, candidate_id: int, code: str, message: str, detail: str | None = None, owner: str | None = None
) -> bool:
    """Mark a re-run failed (nothing to give back: it charged nothing)."""
    with write_session(settings) as s:
        cand = s.get(ReleaseCandidate, candidate_id, with_for_update=True)
        if cand is None or cand.status in (CANDIDATE_READY, CANDIDATE_FAILED):
            return False
        if owner is not None and cand.lease_owner not in (owner, None):
            return False
        cand.status = CANDIDATE_FAILED
        cand.error_code = code
        cand.message = message
        cand.error = detail or message
        cand.finished_at = utcnow()
        cand.lease_owner = None
        cand.lease_expires_at = None
        audit.record(
            s,
            "release.rerun_fail",
            actor="worker",
            object_type="release",
            object_id=cand.job_id,
            detail={"candidate": cand.number, "code": code, "message": message},
        )
        return True


def reap_candidates(settings: Settings, send: Any) -> list[int]:
    """Send again re-runs whose worker died (lease expired) or that no worker claimed in time (the broker
    lost them); fail those that used up their attempts. Returns the candidate ids sent."""
    now = utcnow()
    unclaimed = now - dt.timedelta(seconds=settings.requeue_after_seconds)
    with session_scope(settings) as s:
        stale = list(
            s.execute(
                select(ReleaseCandidate.id, ReleaseCandidate.attempts, ReleaseCandidate.status).where(
                    or_(
                        and_(ReleaseCandidate.status == CANDIDATE_RUNNING, ReleaseCandidate.lease_expires_at < now),
                        and_(ReleaseCandidate.status == CANDIDATE_QUEUED, ReleaseCandidate.enqueued_at < unclaimed),
                    )
                )
            ).all()
        )
    sent = []
    for cand_id, attempts, status in stale:
        if status == CANDIDATE_RUNNING and attempts >= settings.max_attempts:
            fail_candidate(
                settings,
                cand_id,
                "worker_lost",
                f"the worker running this re-run stopped unexpectedly {attempts} times",
            )
            continue
        with write_session(settings) as s:
            cond = (
                and_(ReleaseCandidate.status == CANDIDATE_RUNNING, ReleaseCandidate.lease_expires_at < now)
                if status == CANDIDATE_RUNNING
                else and_(ReleaseCandidate.status == CANDIDATE_QUEUED, ReleaseCandidate.enqueued_at < unclaimed)
            )
            res = s.execute(
                update(ReleaseCandidate)
                .where(ReleaseCandidate.id == cand_id, cond)
                .values(
                    status=CANDIDATE_QUEUED,
                    lease_owner=None,
                    lease_expires_at=None,
                    stage="queued",
                    message="sent to the queue again",
                    enqueued_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if res.rowcount != 1:
                continue
        send(cand_id)
        sent.append(cand_id)
        log.warning(
            "candidate %s: %s; sent again", cand_id, "lease expired" if status == CANDIDATE_RUNNING else "unclaimed"
        )
    return sent
