"""Views: what each role may see of a dataset and of a release.

Staff (steward, admin) see everything; an analyst sees nothing derived from real
rows beyond an approved bundle.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import ledger, schema_versions
from core.access import can_download
from core.erasure import erasure_view
from core.models import Dataset, Grant, JobStatus, ReleaseJob, Role, User, to_minute
from privacy.budget import format_value


def dataset_view(session: Session, user: User, ds: Dataset, *, with_ledger: bool = False) -> dict[str, Any]:
    staff = user.role in (Role.steward.value, Role.admin.value)
    # a proposed schema was read from the raw rows: only the steward sees it until they confirm it
    schema = ds.public_schema if (ds.schema_confirmed or staff) else None
    view: dict[str, Any] = {
        "id": ds.id,
        "name": ds.name,
        "description": ds.description,
        "schema": schema,
        "schema_confirmed": ds.schema_confirmed,
        "schema_version": _current_version_number(session, ds),
        "budget": {
            "epsilon": format_value(Fraction(ds.epsilon_budget)),
            "delta": format_value(Fraction(ds.delta_budget)),
        },
        "policy": ds.policy,
        "created_at": ds.created_at.isoformat(timespec="seconds"),
        # the raw data's erasure (core/erasure.py): the date for everyone, who and why for staff only
        **erasure_view(ds, staff),
    }
    if staff:
        # facts read from the raw file: steward and admin only
        view["internal"] = {"rows": ds.n_rows, "original_filename": ds.original_filename, "sha256": ds.file_sha256}
        view["grants"] = list(
            session.execute(
                select(User.username).join(Grant, Grant.user_id == User.id).where(Grant.dataset_id == ds.id)
            ).scalars()
        )
    if with_ledger:
        view["ledger"] = ledger.ledger_summary(session, ds, user).to_dict()
    return view


def _current_version_number(session: Session, ds: Dataset) -> int | None:
    if not ds.schema_confirmed:
        return None
    current = schema_versions.current_version(session, ds.id)
    return current.version if current is not None else None


def job_view(session: Session, user: User, job: ReleaseJob) -> dict[str, Any]:
    """A release as `user` may see it.

    Staff see everything. The requester (and any other analyst who may see the
    job) sees nothing derived from real rows beyond the approved bundle: no gate,
    no report figures, no override reason (it speaks of the internal checks);
    times to the minute only (finer ones would time the fit); while running,
    the stage but not the method's own progress text; after a failure that
    happened once the data was read, one fixed message whatever the cause, and
    neither the stage nor the progress it stopped at.
    """
    ds = session.get(Dataset, job.dataset_id)
    requester = session.get(User, job.requester_id)
    decider = session.get(User, job.decided_by) if job.decided_by else None
    staff = user.role in (Role.steward.value, Role.admin.value)

    def when(t: Any) -> str | None:
        if t is None:
            return None
        return t.isoformat(timespec="seconds") if staff else to_minute(t)

    failed = job.status == JobStatus.failed.value
    message = job.message
    error_code = job.error_code if failed else None
    stage, progress = job.stage, round(float(job.progress or 0.0), 4)
    if not staff:
        if job.status == JobStatus.running.value:
            message = job.stage or job.status
        elif failed and job.data_read:
            message = (
                "the release could not be produced from the data; the charge is kept, as for any release "
                "that read the data. The steward can see the details"
            )
            error_code = "failed_after_data_read"
            # where it stopped (loading, splitting, fitting) would tell one cause from another
            stage, progress = None, 0.0
    view: dict[str, Any] = {
        "id": job.id,
        "dataset": {"id": job.dataset_id, "name": ds.name if ds else None},
        "requester": requester.username if requester else None,
        "kind": job.kind,
        "method": job.method,
        "epsilon": job.epsilon,
        "delta": job.delta,
        "rows": job.rows,
        "target": job.target,
        "options": job.options,
        "schema_version": job.schema_version,
        "status": job.status,
        "stage": stage,
        "progress": progress,
        "message": message,
        "error_code": error_code,
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
        "cost": job.cost,
        "charge": ledger.job_charge_state(session, job.id),
        "decision": None
        if job.decided_at is None
        else {
            "by": decider.username if decider else None,
            "at": when(job.decided_at),
            "comment": job.decision_comment,
            **({"override": job.override_reason} if staff else {}),
        },
        "can_download": can_download(user, job),
    }
    if staff:
        # the gate, the report summary and failure details are computed on real rows
        view["gate"] = job.gate
        view["summary"] = job.summary
        view["internal"] = {"split": job.split, "attempts": job.attempts, "timings": job.timings, "error": job.error}
        # re-runs of post-processing on the job's sample: stewards and admins only (core/candidates.py)
        from core.candidates import candidate_view, candidates_of

        view["candidate"] = job.candidate
        view["candidates"] = [candidate_view(c) for c in candidates_of(session, job.id)]
    return view
