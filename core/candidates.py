"""Candidates of a release: its post-processing, run once by the release and again by a steward.

A synthetic release (dp-synthetic, synthetic, oversample) keeps its sample, the
synthesizer's output after any rebalancing and before disclosure control, in
the job's private storage (`sample_key`). A steward may re-run disclosure
control, the real-row checks, the report and the gate on that sample with other
settings (privacy/postprocessing.py): each re-run is a candidate numbered 1..,
with its own artifacts beside the job's, and the original run is candidate 0.

Rules kept here:

* A re-run never runs the mechanism: it charges nothing, and the ledger is not
  touched. It is asked for by a steward (audited as `release.rerun`) while the
  release awaits approval, and runs in a worker (workers/rerun.py).
* Candidates are for stewards and admins. An analyst never sees them, their
  settings or their figures; after approval the analyst gets the approved
  candidate's bundle, as for any release.
* Approval chooses one ready candidate (by default the latest); its artifacts,
  report summary and gate become the job's, and the bundle is built from them.
  The four-eyes rule and the gate's override apply to the chosen candidate.
* The sample is never part of a bundle, a view or a page.
"""

from __future__ import annotations

import io
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.erasure import require_raw_data
from core.errors import Conflict, InvalidRequest, NotFound
from core.models import Dataset, JobStatus, ReleaseCandidate, ReleaseJob, Role, User, utcnow
from core.storage import Storage
from privacy.catalogue import ROW_LEVEL_KINDS

__all__ = [
    "MAX_CANDIDATES",
    "RERUN_KINDS",
    "adopt",
    "candidate_prefix",
    "candidate_report_key",
    "candidate_view",
    "candidates_of",
    "choose_for_approval",
    "request_rerun",
    "sample_key",
    "sample_meta_key",
    "statement_facts",
]

RERUN_KINDS = ROW_LEVEL_KINDS  # releases of rows: their sample is kept
MAX_CANDIDATES = 50  # re-runs of one release: each takes a worker and storage


def sample_key(job_id: int) -> str:
    return f"jobs/{job_id}/sample/sample.parquet"


def sample_meta_key(job_id: int) -> str:
    return f"jobs/{job_id}/sample/sample.json"


def candidate_prefix(job_id: int, number: int) -> str:
    """Where a re-run's artifacts live: beside the job's, in its private storage."""
    return f"jobs/{job_id}/candidates/{number}"


def _require_steward(user: User) -> None:
    if user.role != Role.steward.value:
        from core.errors import Forbidden

        raise Forbidden(f"re-running post-processing needs the steward role; you are {user.role}")


def candidates_of(session: Session, job_id: int) -> list[ReleaseCandidate]:
    return list(
        session.execute(
            select(ReleaseCandidate).where(ReleaseCandidate.job_id == job_id).order_by(ReleaseCandidate.number)
        ).scalars()
    )


def _sample_meta(storage: Storage, job: ReleaseJob) -> dict[str, Any]:
    if job.kind not in RERUN_KINDS:
        raise Conflict(
            f"release {job.id} is a {job.kind} release: only {', '.join(RERUN_KINDS)} releases have "
            "a sample to post-process again",
            field="release",
            code="no_sample",
        )
    key = sample_meta_key(job.id)
    if not storage.exists(key) or not storage.exists(sample_key(job.id)):
        raise Conflict(
            f"release {job.id} has no stored sample (it ran before samples were kept, or failed "
            "before sampling): request a new release instead",
            field="release",
            code="no_sample",
        )
    return json.loads(storage.get_bytes(key))


def request_rerun(
    session: Session, storage: Storage, user: User, job: ReleaseJob, body: dict[str, Any]
) -> ReleaseCandidate:
    """Validate a re-run's settings and create its candidate (queued). The caller enqueues it after
    the commit. Refusals raise before anything is written."""
    from privacy.policy import DatasetPolicy
    from privacy.postprocessing import apply_settings
    from privacy.schema import PublicSchema

    _require_steward(user)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise InvalidRequest("comment must be text of at most 2000 characters", field="comment")
    settings = {k: v for k, v in body.items() if k != "comment"}
    locked = session.get(ReleaseJob, job.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    dataset = session.get(Dataset, locked.dataset_id)
    if dataset is not None:
        require_raw_data(dataset, "a re-run of post-processing (its real-row checks and report)")
    if locked.status != JobStatus.awaiting_approval.value:
        state = (
            "is already decided"
            if locked.status in (JobStatus.approved.value, JobStatus.rejected.value)
            else "has not finished"
        )
        raise Conflict(
            f"release {job.id} {state} ({locked.status}): post-processing can be re-run only while a "
            "finished release awaits approval",
            field="release",
        )
    meta = _sample_meta(storage, locked)
    chosen = apply_settings(
        PublicSchema.from_dict(meta["schema"]), DatasetPolicy.from_dict(meta["policy"]), settings, int(meta["rows"])
    )
    _original_candidate(session, storage, locked, meta)
    last = (
        session.execute(select(func.max(ReleaseCandidate.number)).where(ReleaseCandidate.job_id == job.id)).scalar()
        or 0
    )
    if last >= MAX_CANDIDATES:
        raise Conflict(
            f"release {job.id} has {last} re-runs already, the most one release may have: approve or "
            "reject one of its candidates",
            field="release",
            code="too_many_candidates",
        )
    now = utcnow()
    cand = ReleaseCandidate(
        job_id=job.id,
        number=last + 1,
        created_by=user.id,
        created_at=now,
        settings={"requested": settings, "effective": chosen.describe(), "comment": comment},
        status="queued",
        stage="queued",
        progress=0.0,
        message="waiting for a worker",
        attempts=0,
        enqueued_at=now,
    )
    session.add(cand)
    session.flush()
    audit.record(
        session,
        "release.rerun",
        actor=user,
        object_type="release",
        object_id=job.id,
        detail={"candidate": cand.number, "settings": settings, "effective": chosen.describe(), "comment": comment},
    )
    return cand


def _original_candidate(session: Session, storage: Storage, job: ReleaseJob, meta: dict[str, Any]) -> None:
    """Record the original run as candidate 0, from the job's own results, the first time it is needed."""
    from privacy.policy import DatasetPolicy
    from privacy.postprocessing import apply_settings
    from privacy.schema import PublicSchema

    exists = session.execute(
        select(ReleaseCandidate.id).where(ReleaseCandidate.job_id == job.id, ReleaseCandidate.number == 0)
    ).scalar()
    if exists is not None:
        return
    original = apply_settings(
        PublicSchema.from_dict(meta["schema"]), DatasetPolicy.from_dict(meta["policy"]), {}, int(meta["rows"])
    )
    artifacts = dict(job.artifacts or {})
    session.add(
        ReleaseCandidate(
            job_id=job.id,
            number=0,
            created_by=None,
            created_at=job.finished_at or utcnow(),
            settings={"requested": {}, "effective": original.describe(), "comment": "the original run"},
            status="ready",
            stage="done",
            progress=1.0,
            message="the release's own run",
            attempts=job.attempts or 0,
            started_at=job.started_at,
            finished_at=job.finished_at,
            rows_released=_parquet_rows(storage, artifacts),
            artifacts=artifacts,
            summary=job.summary,
            gate=job.gate,
            timings=job.timings,
        )
    )
    session.flush()


def _parquet_rows(storage: Storage, artifacts: dict[str, Any]) -> int | None:
    if "data.parquet" not in artifacts:
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(io.BytesIO(storage.get_bytes(artifacts["data.parquet"]))).metadata.num_rows)


def candidate_report_key(session: Session, user: User, job: ReleaseJob, number: int, fmt: str) -> str:
    """The storage key of a candidate's internal report (html or json), for stewards and admins."""
    if user.role not in (Role.steward.value, Role.admin.value):
        from core.errors import Forbidden

        raise Forbidden("the candidates of a release are for stewards and admins")
    cand = next((c for c in candidates_of(session, job.id) if c.number == number), None)
    if cand is None:
        raise NotFound(f"release {job.id} has no candidate {number}", field="candidate")
    if cand.status != "ready" or not cand.artifacts:
        raise NotFound(f"candidate {number} of release {job.id} has no report yet ({cand.status})", field="candidate")
    return cand.artifacts["report.json" if fmt == "json" else "report.html"]


def candidate_view(cand: ReleaseCandidate) -> dict[str, Any]:
    """A candidate as a steward sees it: its settings, rows released, gate and k-anonymity."""
    gate = cand.gate or {}
    k_check = next((c for c in gate.get("checks", []) if c.get("name") == "k_anonymity"), None)
    settings = cand.settings or {}
    return {
        "number": cand.number,
        "status": cand.status,
        "stage": cand.stage,
        "progress": round(float(cand.progress or 0.0), 4),
        "eta_seconds": cand.eta_seconds if cand.status == "running" else None,
        "message": cand.message,
        "error_code": cand.error_code,
        "error": cand.error,
        "settings": settings.get("effective"),
        "requested": settings.get("requested"),
        "comment": settings.get("comment"),
        "rows_released": cand.rows_released,
        "gate": gate.get("overall"),
        "k_anonymity": None
        if k_check is None
        else {"smallest_class": k_check.get("value"), "k": k_check.get("threshold"), "status": k_check.get("status")},
        "gate_checks": gate.get("checks"),
        "created_at": cand.created_at.isoformat(timespec="seconds") if cand.created_at else None,
        "finished_at": cand.finished_at.isoformat(timespec="seconds") if cand.finished_at else None,
        "timings": cand.timings,
    }


def choose_for_approval(session: Session, job: ReleaseJob, number: Any) -> ReleaseCandidate | None:
    """The candidate an approval releases: `number`, or by default the latest ready one. None when the
    release has no re-runs (its own results are released, as candidate 0)."""
    if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
        raise InvalidRequest(
            f"candidate must be a whole number (0 for the original run), got {number!r}", field="candidate"
        )
    cands = candidates_of(session, job.id)
    if not cands:
        if number not in (None, 0):
            raise NotFound(
                f"release {job.id} has no candidate {number}: it has only its original run (0)", field="candidate"
            )
        return None
    if number is None:
        ready = [c for c in cands if c.status == "ready"]
        return ready[-1]
    chosen = next((c for c in cands if c.number == number), None)
    if chosen is None:
        raise NotFound(
            f"release {job.id} has no candidate {number} (it has 0 to {cands[-1].number})", field="candidate"
        )
    if chosen.status != "ready":
        raise Conflict(
            f"candidate {number} of release {job.id} is {chosen.status}: only a ready candidate can be approved",
            field="candidate",
        )
    return chosen


def adopt(job: ReleaseJob, cand: ReleaseCandidate) -> None:
    """Make the chosen candidate's results the job's (what the bundle and the views are built from)."""
    job.artifacts = dict(cand.artifacts or {})
    job.summary = cand.summary
    job.gate = cand.gate
    job.candidate = cand.number


def statement_facts(session: Session, job: ReleaseJob) -> dict[str, Any] | None:
    """What privacy.md says of the candidates: which one this is, its settings, how many were made."""
    if job.candidate is None:
        return None
    cands = candidates_of(session, job.id)
    chosen = next((c for c in cands if c.number == job.candidate), None)
    return {
        "candidate": job.candidate,
        "candidates": sum(1 for c in cands if c.status == "ready"),
        "settings": ((chosen.settings or {}).get("effective") if chosen else None),
    }
