"""Access rules shared by the JSON API, the pages and the CLI.

What a user may see and do, checked on the server and by object. An object a user
may not see is reported as not found, never as forbidden, so ids cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, object_session

from core.errors import Forbidden, NotFound
from core.models import Dataset, Grant, JobStatus, ReleaseJob, Role, User


def require_role(user: User, *roles: Role) -> None:
    if user.role not in {r.value for r in roles}:
        names = " or ".join(r.value for r in roles)
        raise Forbidden(f"this action needs the {names} role; you are {user.role}")


def _granted_ids(session: Session, user: User) -> set[int]:
    return set(session.execute(select(Grant.dataset_id).where(Grant.user_id == user.id)).scalars())


def visible_datasets(session: Session, user: User) -> list[Dataset]:
    q = select(Dataset).order_by(Dataset.id)
    if user.role == Role.analyst.value:
        q = q.where(Dataset.id.in_(_granted_ids(session, user) or {-1}))
    return list(session.execute(q).scalars())


def get_dataset(session: Session, user: User, ref: int | str) -> Dataset:
    """A dataset by id or name, if the user may see it (404 otherwise)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isascii() and ref.isdigit()):
        ds = session.get(Dataset, int(ref)) if 0 < int(ref) < 2**63 else None  # beyond any id: none
    else:
        ds = session.execute(select(Dataset).where(Dataset.name == ref)).scalar_one_or_none()
    if ds is None or (user.role == Role.analyst.value and ds.id not in _granted_ids(session, user)):
        raise NotFound(f"no dataset {ref!r} (or it is not shared with you)", field="dataset")
    return ds


def visible_jobs(
    session: Session, user: User, dataset_id: int | None = None, status: str | None = None
) -> list[ReleaseJob]:
    q = select(ReleaseJob).order_by(ReleaseJob.id.desc())
    if dataset_id is not None:
        q = q.where(ReleaseJob.dataset_id == dataset_id)
    if status is not None:
        q = q.where(ReleaseJob.status == status)
    if user.role == Role.analyst.value:
        granted = _granted_ids(session, user) or {-1}
        q = q.where(
            or_(
                ReleaseJob.requester_id == user.id,
                (ReleaseJob.status == JobStatus.approved.value) & ReleaseJob.dataset_id.in_(granted),
            )
        )
    return list(session.execute(q).scalars())


def get_job(session: Session, user: User, job_id: int) -> ReleaseJob:
    job = session.get(ReleaseJob, job_id)
    if job is None or not _can_see_job(session, user, job):
        raise NotFound(f"no release {job_id} (or it is not yours to see)", field="release")
    return job


def _can_see_job(session: Session, user: User, job: ReleaseJob) -> bool:
    if user.role in (Role.steward.value, Role.admin.value):
        return True
    if job.requester_id == user.id:
        return True
    return job.status == JobStatus.approved.value and job.dataset_id in _granted_ids(session, user)


def can_download(user: User, job: ReleaseJob) -> bool:
    """May `user` read this job's bundle and public report: approved, and the requester
    (still granted the dataset, checked now) or a steward or admin."""
    if job.status != JobStatus.approved.value:
        return False
    if user.role in (Role.steward.value, Role.admin.value):
        return True
    if job.requester_id != user.id:
        return False
    session = object_session(job)
    return session is not None and job.dataset_id in _granted_ids(session, user)
