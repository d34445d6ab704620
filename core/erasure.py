"""Erasing a dataset's raw data: a steward's erasure (a GDPR request) or the end of the policy's
retention period (`retention_days`), run by the workers' periodic sweep.

What goes, from private storage:

* the raw table (`Dataset.storage_key`, everything under `datasets/<id>/`);
* every file of a release of the dataset that read its rows and was not approved: the
  outputs of a release awaiting approval, rejected or failed, its kept sample, its re-runs'
  outputs (`jobs/<id>/`);
* of an approved release, the kept sample and the outputs of candidates that were not chosen.

The schema proposal's suggestions learned from the rows (`Dataset.schema_suggestions`) are cleared.

What stays: the dataset's row and its schema versions, the ledger, the audit trail, every
release's record, and of an approved release its signed bundle and the files it was built
from (the released table, the public and internal reports the steward approved it on, the
statement): they are the release's record, and hold figures and approved outputs, not rows.
Releases that read no rows (data-free scenarios) are untouched.

Unfinished releases that read the rows stop, as when a grant is revoked (`core.jobs_state.stop_job`):
a queued one (or a running one that had not read the data yet) gets its reservation back, one
that read the data keeps its charge, a release awaiting approval included (it can no longer be
approved: its outputs are erased). From then on every path that needs the raw rows refuses
before any budget is reserved (`require_raw_data`).

The erasure is recorded on the dataset (`raw_erased_at`, `raw_erased_by`, `raw_erasure_reason`)
and audited as `dataset.erase_raw` with the file's SHA-256, never a value of it. The reason is
the steward's note: stewards and admins see it (and the audit log keeps it); analysts see the date.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.access import require_role
from core.errors import Conflict, InvalidRequest, NotFound
from core.jobs_state import stop_job
from core.models import Dataset, JobStatus, ReleaseCandidate, ReleaseJob, Role, User, utcnow
from core.settings import Settings
from core.storage import Storage, get_storage
from privacy.errors import SchemaError, UnknownMethod
from privacy.policy import DatasetPolicy

log = logging.getLogger(__name__)

__all__ = [
    "ACTION",
    "ALREADY_ERASED",
    "MAX_REASON",
    "RAW_ERASED",
    "SYSTEM",
    "erase_expired",
    "erase_raw_data",
    "erasure_view",
    "reads_rows",
    "remove_leftovers",
    "require_raw_data",
    "retention_ends",
]

ACTION = "dataset.erase_raw"
RAW_ERASED = "raw_erased"  # the error code of a refusal that needs the erased rows
ALREADY_ERASED = "already_erased"
MAX_REASON = 2000
SYSTEM = "system"  # the actor of the retention sweep
UNFINISHED = (JobStatus.queued.value, JobStatus.running.value, JobStatus.awaiting_approval.value)


def _day(t: dt.datetime) -> str:
    return t.date().isoformat()


def require_raw_data(dataset: Dataset, needed_for: str) -> None:
    """Refuse `needed_for` (e.g. "a release that reads the rows") once the dataset's raw data is erased.

    The message names the date only: the reason is the steward's note, not every caller's to read."""
    if dataset.raw_erased_at is None:
        return
    raise Conflict(
        f"the raw data of dataset '{dataset.name}' was erased on {_day(dataset.raw_erased_at)}: {needed_for} "
        "needs it, so it can no longer be done. The dataset's ledger, audit trail and approved releases remain; "
        "releases that read no rows (data-free scenarios) can still be requested",
        field="dataset",
        code=RAW_ERASED,
    )


def retention_ends(dataset: Dataset) -> dt.datetime | None:
    """When the policy's retention period of the raw data ends (None: no retention period)."""
    days = DatasetPolicy.from_dict(dataset.policy).retention_days
    if days is None or dataset.created_at is None:
        return None
    return dataset.created_at + dt.timedelta(days=days)


def erasure_view(dataset: Dataset, staff: bool) -> dict[str, Any]:
    """The erasure state of a dataset as a user sees it: everyone the date (and when the retention period
    ends), stewards and admins also who erased it and why."""
    ends = retention_ends(dataset)
    view: dict[str, Any] = {
        "raw_erased_at": None if dataset.raw_erased_at is None else dataset.raw_erased_at.isoformat(timespec="minutes"),
        "retention_until": None if ends is None else ends.isoformat(timespec="minutes"),
    }
    if staff:
        view["raw_erased_by"] = dataset.raw_erased_by
        view["raw_erasure_reason"] = dataset.raw_erasure_reason
    return view


def erase_raw_data(
    session: Session,
    actor: User,
    dataset: Dataset,
    reason: Any,
    *,
    storage: Storage | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Erase `dataset`'s raw data for `actor` (a steward or an admin), who gives a reason.

    Runs in the caller's write transaction; storage is emptied last, so a failure leaves the erasure
    unrecorded and it can be asked for again. A second erasure is a Conflict (`already_erased`).
    Returns what was done: the releases stopped and those whose files were removed.
    """
    require_role(actor, Role.steward, Role.admin)
    return _erase(session, actor, dataset, _reason(reason), storage or get_storage(settings), retention_days=None)


def erase_expired(settings: Settings, storage: Storage | None = None, now: dt.datetime | None = None) -> list[str]:
    """The retention sweep: erase the raw data of every dataset whose policy's retention period has ended,
    as the `system` actor, each in its own transaction. Returns the names of the datasets erased."""
    from core.db import session_scope, write_session

    now = now or utcnow()
    with session_scope(settings) as s:
        candidates = [
            (ds.id, ds.name)
            for ds in s.execute(select(Dataset).where(Dataset.raw_erased_at.is_(None)).order_by(Dataset.id)).scalars()
            if (ends := _ends_or_none(ds)) is not None and ends <= now
        ]
    if not candidates:
        return []
    store = storage or get_storage(settings)
    erased = []
    for ds_id, name in candidates:
        try:
            with write_session(settings) as s:
                ds = s.get(Dataset, ds_id)
                if ds is None:
                    continue
                days = DatasetPolicy.from_dict(ds.policy).retention_days
                ends = retention_ends(ds)
                if days is None or ends is None or ends > now:  # the policy changed since the listing
                    continue
                reason = f"retention period of {days} day{'' if days == 1 else 's'} ended"
                _erase(s, SYSTEM, ds, reason, store, retention_days=days)
            erased.append(name)
            log.info("dataset %s: raw data erased at the end of its retention period", name)
        except Conflict as exc:
            if exc.code != ALREADY_ERASED:  # another worker's sweep erased it first: nothing to do
                log.warning("dataset %s: retention erasure refused: %s", name, exc.message)
        except Exception:
            log.exception("dataset %s: retention erasure failed; the next sweep tries again", name)
    return erased


def remove_leftovers(settings: Settings, storage: Storage | None = None, now: dt.datetime | None = None) -> list[int]:
    """Remove files a stopped release's worker wrote after its dataset's erasure.

    A running release stops at its worker's next heartbeat after the erasure; one writing its outputs
    just then may leave files under `jobs/<id>/`. While such a run could still be going (its time limit
    and a lease after the erasure), the sweep removes the files of every release of an erased dataset
    that read rows and was not approved. Returns the ids of the releases whose files were removed."""
    from core.db import session_scope

    now = now or utcnow()
    with session_scope(settings) as s:
        rows = s.execute(
            select(ReleaseJob.id, ReleaseJob.method, Dataset.raw_erased_at)
            .join(Dataset, Dataset.id == ReleaseJob.dataset_id)
            .where(Dataset.raw_erased_at.is_not(None), ReleaseJob.status != JobStatus.approved.value)
            .order_by(ReleaseJob.id)
        ).all()
    store = storage or get_storage(settings)
    cleaned = []
    for job_id, method, erased_at in rows:
        limit = dt.timedelta(seconds=settings.job_time_limit(method) + 2 * settings.lease_seconds)
        if erased_at is None or erased_at + limit < now or not reads_rows(method):
            continue
        if store.list_keys(f"jobs/{job_id}"):
            store.delete_prefix(f"jobs/{job_id}")
            cleaned.append(job_id)
            log.warning("release %s: files written after its dataset's erasure were removed", job_id)
    return cleaned


def _ends_or_none(ds: Dataset) -> dt.datetime | None:
    try:
        return retention_ends(ds)
    except SchemaError:  # a stored policy that no longer reads: the steward's policy page says why
        log.warning("dataset %s: its policy could not be read; no retention sweep", ds.name)
        return None


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest(
            "an erasure needs a reason (for example the erasure request it answers); it is kept in the audit log",
            field="reason",
        )
    if len(reason.strip()) > MAX_REASON:
        raise InvalidRequest(f"the reason must be at most {MAX_REASON} characters", field="reason")
    return reason.strip()


def _erase(
    session: Session,
    actor: User | str,
    dataset: Dataset,
    reason: str,
    storage: Storage,
    *,
    retention_days: int | None,
) -> dict[str, Any]:
    locked = session.execute(
        select(Dataset).where(Dataset.id == dataset.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if locked is None:
        raise NotFound(f"no dataset {dataset.name!r}", field="dataset")
    if locked.raw_erased_at is not None:
        raise Conflict(
            f"the raw data of dataset '{locked.name}' was already erased on {_day(locked.raw_erased_at)} "
            f"by {locked.raw_erased_by}: there is nothing left to erase",
            field="dataset",
            code=ALREADY_ERASED,
        )
    actor_name = actor.username if isinstance(actor, User) else actor
    jobs = [
        job
        for job in session.execute(
            select(ReleaseJob).where(ReleaseJob.dataset_id == locked.id).order_by(ReleaseJob.id).with_for_update()
        ).scalars()
        if reads_rows(job.method)
    ]
    message = f"cancelled: the raw data of {locked.name} was erased"
    stopped = [stop_job(session, actor, job, message) for job in jobs if job.status in UNFINISHED]
    for job in jobs:
        _stop_candidates(session, job, message)
    removed, pruned = [], []
    keys: list[str] = []
    for job in jobs:
        if job.status == JobStatus.approved.value:
            pruned.append(job.id)
            for cand in _candidates(session, job.id):
                if cand.number != job.candidate:  # not the one released: its files go
                    cand.artifacts = None
        else:
            removed.append(job.id)
            job.artifacts = None
            for cand in _candidates(session, job.id):
                cand.artifacts = None
    now = utcnow()
    locked.raw_erased_at = now
    locked.raw_erased_by = actor_name
    locked.raw_erasure_reason = reason
    locked.schema_suggestions = None  # what the proposal learned from the rows: stewards' only, never released
    detail: dict[str, Any] = {
        "name": locked.name,
        "sha256": locked.file_sha256,
        "storage_key": locked.storage_key,
        "reason": reason,
        "cancelled_releases": [s["id"] for s in stopped],
        "releases_erased": removed,
        "approved_releases_kept": pruned,
    }
    if retention_days is not None:
        detail["retention_days"] = retention_days
    audit.record(session, ACTION, actor=actor, object_type="dataset", object_id=locked.id, detail=detail)
    session.flush()
    # storage last: when it fails the transaction rolls back and the erasure can be asked for again
    storage.delete_prefix(f"datasets/{locked.id}")
    if storage.exists(locked.storage_key):
        storage.delete_prefix(locked.storage_key)
    for job in jobs:
        if job.id in removed:
            storage.delete_prefix(f"jobs/{job.id}")
        else:
            keys.extend(_prune_approved(storage, job))
    return {
        "dataset": locked.name,
        "raw_erased_at": now.isoformat(timespec="seconds"),
        "raw_erased_by": actor_name,
        "cancelled_releases": stopped,
        "releases_erased": removed,
        "approved_releases_kept": pruned,
        "files_removed_from_approved": len(keys),
    }


def reads_rows(method: str) -> bool:
    """Whether a release by `method` reads the dataset's rows; an unknown method is taken to (a request for
    one is refused later by the plan, a job of one no longer in the catalogue did read them)."""
    from privacy import catalogue

    try:
        return bool(catalogue.method_entry(method).reads_rows)
    except UnknownMethod:
        return True


def _candidates(session: Session, job_id: int) -> list[ReleaseCandidate]:
    return list(
        session.execute(
            select(ReleaseCandidate).where(ReleaseCandidate.job_id == job_id).order_by(ReleaseCandidate.number)
        ).scalars()
    )


def _stop_candidates(session: Session, job: ReleaseJob, message: str) -> None:
    """Re-runs of post-processing still queued or running stop; their worker notices the lost lease."""
    for cand in _candidates(session, job.id):
        if cand.status in ("queued", "running"):
            cand.status = "failed"
            cand.error_code = "cancelled"
            cand.message = message
            cand.error = message
            cand.finished_at = utcnow()
            cand.lease_owner = None
            cand.lease_expires_at = None


def _prune_approved(storage: Storage, job: ReleaseJob) -> list[str]:
    """Of an approved release's files, remove all but its bundle and the files it was built from."""
    kept = {str(k) for k in (job.artifacts or {}).values()}
    if job.bundle_key:
        kept.add(job.bundle_key)
    try:
        stored = storage.list_keys(f"jobs/{job.id}")
    except NotImplementedError:  # a backend that cannot list: the sample at least goes
        stored = [f"jobs/{job.id}/sample/sample.parquet", f"jobs/{job.id}/sample/sample.json"]
    gone = [k for k in stored if k not in kept]
    for key in gone:
        storage.delete_prefix(key)
    return gone
