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
from core.estimates import job_estimate
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
        # roles, hierarchies and flags suggested with a proposed schema, learned from the raw rows
        view["schema_suggestions"] = ds.schema_suggestions
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


def stage_eta_view(eta_seconds: int | None, staff: bool) -> int | None:
    """The running stage's estimated seconds left: to the second for staff, rounded up to whole minutes
    for analysts (like the times they see: finer ones would time the fit)."""
    if eta_seconds is None:
        return None
    if staff:
        return int(eta_seconds)
    return max(60, -(-int(eta_seconds) // 60) * 60)


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
        # what the requester said the release is for (requested as `comment` or `purpose`; kept in the options)
        "purpose": purpose_of(job),
        "schema_version": job.schema_version,
        "status": job.status,
        "stage": stage,
        "progress": progress,
        "eta_seconds": stage_eta_view(job.eta_seconds if job.status == JobStatus.running.value else None, staff),
        # the time estimate from public facts (core/estimates.py): what the request was predicted to take
        "estimate": job_estimate(session, job),
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
        "fit_for_purpose": fit_for_purpose(job),
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


def purpose_of(job: ReleaseJob) -> str | None:
    """The purpose the requester stated (the request's `comment`, or `purpose`); None when none was given."""
    text = (job.options or {}).get("comment")
    return str(text) if text else None


#: what the steward reviewed, by kind of release: a public fact of the kind, whatever the checks found
_REVIEWED = {
    "dp-synthetic": "the utility and fidelity checks",
    "synthetic": "the utility and fidelity checks",
    "oversample": "the utility and fidelity checks",
    "dp-statistics": "the small-cell rules and the noise of each figure",
    "scenario": "the generated data",
}


def fit_for_purpose(job: ReleaseJob) -> dict[str, Any] | None:
    """The "Fit for the stated purpose?" answer of an approved release; None before approval.

    Built from the steward's decision only: approved, or approved with an override (which says that a
    check of the gate failed, the one bit of the gate's verdict the steward publishes by overriding),
    with the steward's public comment. No figure computed on real rows, unless the steward put the
    internal sections in the bundle (`include_internal`): then each check's outcome and figure too.
    """
    if job.status != JobStatus.approved.value:
        return None
    purpose = purpose_of(job)
    reviewed = _REVIEWED.get(job.kind, "the release's checks")
    for_what = "for this purpose" if purpose else "(no purpose was stated with the request)"
    comment = (job.decision_comment or "").strip() or None
    if job.override_reason and (job.gate or {}).get("overall") == "fail":
        verdict = "approved_with_override"
        text = (
            f"Approved with an override: the steward reviewed {reviewed} {for_what}; at least one check did "
            "not meet the dataset's threshold, and the steward approved the release nonetheless. "
            + (f"The steward's comment: {comment}" if comment else "The steward left no public comment.")
        )
    else:
        verdict = "approved"
        text = f"The steward reviewed {reviewed} {for_what} and approved the release." + (
            f" The steward's comment: {comment}" if comment else ""
        )
    out: dict[str, Any] = {
        "purpose": purpose,
        "verdict": verdict,
        "text": text,
        "steward_comment": comment,
        "basis": "the steward's decision on the release gate; no figure computed on real rows",
    }
    if job.include_internal:
        out["basis"] = (
            "the steward's decision, and the gate's checks, which the steward chose to publish: their "
            "figures were computed on real rows and no privacy guarantee covers them"
        )
        out["checks"] = [
            {k: c.get(k) for k in ("name", "status", "value", "threshold", "direction")}
            for c in (job.gate or {}).get("checks", [])
        ]
    return out
