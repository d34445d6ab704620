"""Release operations shared by the JSON API, the pages and the CLI.

Every function takes the acting user and checks, on the server and by object,
what that user may see and do. An object a user may not see is reported as
not found, never as forbidden, so ids cannot be probed.
"""

from __future__ import annotations

import json
import logging
import secrets
from fractions import Fraction
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.orm import Session

from core import audit, ledger, schema_versions

# access rules, datasets and views live in their own modules; imported from here as before
from core.access import (
    can_download,
    get_dataset,
    get_job,
    require_role,
    visible_datasets,
    visible_jobs,
)
from core.datasets import (
    confirm_schema,
    disclosure_issues,
    grant,
    register_dataset,
    revoke_grant,
    update_policy,
)
from core.erasure import reads_rows, require_raw_data
from core.errors import Conflict, Forbidden, InvalidRequest
from core.estimates import check_request_estimate, time_target_options
from core.jobs_state import stop_job
from core.models import Dataset, JobStatus, ReleaseJob, Role, User, to_minute, utcnow
from core.settings import Settings
from core.storage import Storage
from core.views import dataset_view, fit_for_purpose, job_view
from privacy import catalogue
from privacy.catalogue import KINDS, ROW_LEVEL_KINDS
from privacy.errors import RequestRefused
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ROWS",
    "KINDS",
    "ROW_LEVEL_KINDS",
    "ReleaseRequest",
    "approve",
    "authorise_download",
    "can_download",
    "cancel_release",
    "confirm_schema",
    "dataset_view",
    "disclosure_issues",
    "get_dataset",
    "get_job",
    "grant",
    "job_view",
    "method_kind",
    "register_dataset",
    "reject",
    "request_release",
    "revoke_grant",
    "update_policy",
    "visible_datasets",
    "visible_jobs",
]

DEFAULT_ROWS = catalogue.DEFAULT_ROWS
MAX_GENERATED_CELLS = catalogue.MAX_GENERATED_CELLS


# ------------------------------------------------------------------------------------------------
# release requests
# ------------------------------------------------------------------------------------------------

Number = StrictInt | StrictFloat


class ReleaseRequest(BaseModel):
    """What an analyst asks for. Numbers must be JSON numbers, not strings."""

    model_config = ConfigDict(extra="forbid")

    dataset: int | str
    method: str = Field(min_length=1, max_length=64)
    kind: str | None = None
    epsilon: Number | None = None
    delta: Number = 0
    rows: StrictInt | None = Field(default=None, ge=1)
    target: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    rebalance: str | None = None
    comment: str | None = Field(default=None, max_length=2000)
    # what the release is for: the same field as `comment`, under its own name (give one of the two)
    purpose: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _purpose(self) -> ReleaseRequest:
        if self.purpose is not None:
            if self.comment is not None and self.comment != self.purpose:
                raise ValueError("give the purpose once: `purpose` and `comment` are the same field")
            self.comment, self.purpose = self.purpose, None
        return self

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None and v not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        return v

    @classmethod
    def parse(cls, data: Any) -> ReleaseRequest:
        if not isinstance(data, dict):
            raise InvalidRequest("the request body must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else None
            msg = err["msg"].removeprefix("Value error, ")
            if field in ("epsilon", "delta") and err["type"] in ("int_type", "float_type"):
                msg = f"{field} must be a JSON number such as 0.5, not {err.get('input')!r}"
            raise InvalidRequest(f"{field}: {msg}" if field else msg, field=field) from exc


def method_kind(method: str) -> str:
    """The kind of release `method` makes (its catalogue entry's)."""
    return catalogue.method_entry(method).kind


def __getattr__(name: str) -> Any:
    if name == "OVERSAMPLERS":  # the rebalancing methods, from the catalogue (imports their module)
        return catalogue.rebalancers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def request_release(
    session: Session,
    user: User,
    req: ReleaseRequest,
    settings: Settings,
) -> ReleaseJob:
    """Validate, reserve the cost atomically and create the job (status queued).

    The caller runs this in a `write_session` and enqueues the job after the
    commit. Budget or policy refusals raise before anything is written.
    """
    require_role(user, Role.analyst, Role.steward)
    ds_ref = req.dataset
    dataset = get_dataset(session, user, ds_ref)
    if reads_rows(req.method):
        require_raw_data(dataset, "a release that reads the rows")
    if not dataset.schema_confirmed:
        raise Conflict(
            f"dataset '{dataset.name}' has a proposed schema the steward has not confirmed yet; "
            "releases open once it is confirmed",
            field="dataset",
        )
    # the version in force now: the request is checked under it and the job records it (versions never change)
    version = schema_versions.current_version(session, dataset.id)
    schema = PublicSchema.from_dict(version.schema if version is not None else dataset.public_schema)
    policy = DatasetPolicy.from_dict(dataset.policy)
    limits = catalogue.DatasetLimits(
        name=dataset.name, policy=policy, delta_budget=Fraction(dataset.delta_budget), max_rows=settings.max_rows
    )
    # rows not asked for: the row count the steward declared public (capped), never the table's own
    rows = req.rows
    if rows is None and policy.public_row_count is not None:
        rows = min(policy.public_row_count, settings.max_rows)
    try:
        plan = catalogue.plan_release(
            req.method,
            req.epsilon,
            req.delta,
            req.options,
            schema,
            kind=req.kind,
            rows=rows,
            target=req.target,
            rebalance=req.rebalance,
            dataset=limits,
        )
    except RequestRefused as exc:
        raise InvalidRequest(exc.message, field=exc.field, code=exc.code) from exc
    # a time target the request leaves unset follows the policy's limit; stored, so the worker plans the same
    options = time_target_options(schema, policy, req.method, req.options, plan.rows)
    # a release estimated over the policy's time limit: refused (422) before any reservation
    check_request_estimate(
        schema, policy, dataset.name, req.method, {**plan.options, **options}, plan.rows, req.epsilon, req.delta
    )
    locked = ledger.lock_dataset(session, dataset.id)
    assert locked is not None
    if reads_rows(req.method):  # erased while the request was checked: refused before any reservation
        session.refresh(locked)
        require_raw_data(locked, "a release that reads the rows")
    job = ReleaseJob(
        dataset_id=dataset.id,
        requester_id=user.id,
        kind=plan.kind,
        method=req.method,
        epsilon=plan.recorded["epsilon"],
        delta=plan.recorded["delta"],
        rows=plan.rows,
        target=plan.target,
        options={
            **options,
            **({"rebalance": req.rebalance} if req.rebalance else {}),
            **({"comment": req.comment} if req.comment else {}),
        },
        seed=secrets.randbits(62),
        schema_version=version.version if version is not None else None,
        status=JobStatus.queued.value,
        enqueued_at=utcnow(),
        stage="queued",
        message="waiting for a worker",
    )
    session.add(job)
    session.flush()
    accountant = "none"
    if not plan.cost.is_zero:
        accountant = ledger.reserve(session, locked, job, plan.cost, user)
    audit.record(
        session,
        "release.request",
        actor=user,
        object_type="release",
        object_id=job.id,
        detail={
            "dataset": dataset.name,
            "method": req.method,
            "kind": job.kind,
            "cost": plan.cost.to_dict(),
            "rows": plan.rows,
            "accountant": accountant,
            "schema_version": job.schema_version,
        },
    )
    return job


def approve(
    session: Session,
    user: User,
    job: ReleaseJob,
    comment: str | None = None,
    override: str | None = None,
    include_internal: bool = False,
    candidate: Any = None,
) -> None:
    """Approve a release awaiting approval. When the steward re-ran its post-processing, `candidate`
    chooses which candidate is released (default: the latest ready one; see core/candidates.py)."""
    from core import candidates

    require_role(user, Role.steward)
    if job.requester_id == user.id:
        # the caller audits the refusal outside this transaction, which the error rolls back
        raise Forbidden("you requested this release: another steward must approve it (four-eyes rule)")
    if job.status != JobStatus.awaiting_approval.value:
        raise Conflict(f"release {job.id} is {job.status}; only a release awaiting approval can be approved")
    chosen = candidates.choose_for_approval(session, job, candidate)
    if chosen is not None:
        candidates.adopt(job, chosen)
    gate = job.gate or {}
    if gate.get("overall") == "fail" and (not override or not override.strip()):
        raise Conflict(
            "the release gate failed ("
            + ", ".join(c["name"] for c in gate.get("checks", []) if c.get("status") == "fail")
            + "); approving needs an override with a written reason",
            field="override",
        )
    job.status = JobStatus.approved.value
    job.decided_by = user.id
    job.decided_at = utcnow()
    job.decision_comment = comment
    job.override_reason = override.strip() if override else None
    job.include_internal = bool(include_internal)
    audit.record(
        session,
        "release.approve",
        actor=user,
        object_type="release",
        object_id=job.id,
        detail={
            "comment": comment,
            "override": job.override_reason,
            "gate": gate.get("overall"),
            "include_internal": job.include_internal,
            **({"candidate": job.candidate} if job.candidate is not None else {}),
        },
    )
    if job.override_reason:
        audit.record(
            session,
            "release.override",
            actor=user,
            object_type="release",
            object_id=job.id,
            detail={"reason": job.override_reason},
        )


def reject(session: Session, user: User, job: ReleaseJob, comment: str) -> None:
    require_role(user, Role.steward)
    if not comment or not comment.strip():
        raise InvalidRequest("a rejection needs a comment that tells the requester why", field="comment")
    if job.status != JobStatus.awaiting_approval.value:
        raise Conflict(f"release {job.id} is {job.status}; only a release awaiting approval can be rejected")
    job.status = JobStatus.rejected.value
    job.decided_by = user.id
    job.decided_at = utcnow()
    job.decision_comment = comment.strip()
    # no refund: the output exists, and refunds after seeing it would allow retrying until a lucky draw
    audit.record(
        session,
        "release.reject",
        actor=user,
        object_type="release",
        object_id=job.id,
        detail={"comment": job.decision_comment},
    )


def cancel_release(session: Session, user: User, job: ReleaseJob, reason: str | None = None) -> dict[str, Any]:
    """Cancel a queued or running release, by its requester or a steward.

    A queued job's reservation is given back; a running job that already read the
    data keeps its charge (the mechanism ran). The worker running it notices at its
    next heartbeat or progress report and stops without writing an output.
    """
    if job.requester_id != user.id and user.role != Role.steward.value:
        raise Forbidden("only the requester or a steward may cancel a release")
    locked = session.get(ReleaseJob, job.id, with_for_update=True, populate_existing=True)
    assert locked is not None
    if locked.status not in (JobStatus.queued.value, JobStatus.running.value):
        raise Conflict(
            f"release {job.id} is {locked.status}; only a queued or running release can be cancelled", field="release"
        )
    note = f"cancelled by {user.username}" + (f": {reason.strip()}" if reason and reason.strip() else "")
    return stop_job(session, user, locked, note[:2000])


MAX_JSON_DEPTH = 32


def json_body(text: str | bytes | None) -> Any:
    """Parse a request body as JSON, refusing what would fail later with a clear InvalidRequest.

    Bytes must be UTF-8; nesting deeper than MAX_JSON_DEPTH is refused (no
    request needs more, and a deep body would exhaust the parser's stack).
    """
    if not text:
        return {}
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(
                f"the body is not valid UTF-8 (byte 0x{text[exc.start]:02x} at position "
                f"{exc.start}); send JSON encoded as UTF-8"
            ) from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise InvalidRequest(
            f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects "
            "and arrays are accepted; send a flatter document"
        ) from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidRequest(
            f"the body is not acceptable JSON: {exc}; send plain numbers, strings, arrays and objects"
        ) from exc
    if _json_depth(body) > MAX_JSON_DEPTH:
        raise InvalidRequest(
            f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects "
            "and arrays are accepted; send a flatter document"
        )
    return body


def _json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return depth
        deepest = max(deepest, depth)
        stack.extend((c, depth) for c in children)
    return deepest


# ------------------------------------------------------------------------------------------------
# bundles
# ------------------------------------------------------------------------------------------------

PUBLIC_BUNDLE_FILES = ("data.csv", "data.parquet", "schema.json")


def make_bundle(session: Session, storage: Storage, settings: Settings, job: ReleaseJob) -> str:
    """Build and store the signed zip of an approved release; returns its storage key."""
    from core.bundle import build_bundle, publish_public_key, signing_key, with_fit_for_purpose

    if job.status != JobStatus.approved.value:
        raise Conflict(f"release {job.id} is {job.status}: a bundle exists only once it is approved")
    artifacts = job.artifacts or {}
    files: dict[str, bytes] = {name: storage.get_bytes(artifacts[name]) for name in PUBLIC_BUNDLE_FILES}
    if job.include_internal:
        files["report.html"] = storage.get_bytes(artifacts["report.html"])
        files["report.json"] = storage.get_bytes(artifacts["report.json"])
    else:
        files["report.html"] = storage.get_bytes(artifacts["report_public.html"])
        files["report.json"] = storage.get_bytes(artifacts["report_public.json"])
    # the public report says whether the release is fit for the purpose stated with the request
    files = with_fit_for_purpose(files, fit_for_purpose(job))
    ds = session.get(Dataset, job.dataset_id)
    assert ds is not None
    files["privacy.md"] = final_statement(session, storage, job, ds).encode()
    approver = session.get(User, job.decided_by) if job.decided_by else None
    requester = session.get(User, job.requester_id)
    manifest = {
        "job_id": job.id,
        "dataset": ds.name,
        "kind": job.kind,
        "method": job.method,
        "cost": job.cost,
        # the rows in data.csv / data.parquet (after suppression and filtering), and the rows asked for
        "rows": _parquet_rows(files["data.parquet"]),
        "rows_requested": job.rows,
        # the version of the dataset's public schema the release was requested and produced under
        "schema_version": job.schema_version,
        "requester": requester.username if requester else None,
        "approved_by": approver.username if approver else None,
        "approved_at": to_minute(job.decided_at) if job.decided_at else None,
        "report_sections": "public and internal" if job.include_internal else "public only",
        # the seed of a mechanism's noise is a secret: knowing it, one could subtract the noise. The
        # override reason speaks of checks on real rows: it stays with the steward (and the audit log).
        "seed": "withheld (the seed of the release's randomness is secret)",
    }
    if job.candidate is not None:  # which post-processing of the one DP sample this bundle holds
        manifest["candidate"] = job.candidate
    manifest["audit_head"] = audit.head_for_manifest(session, settings, storage, job.id)
    data = build_bundle(files, manifest, signing_key(settings))
    publish_public_key(settings, storage)
    key = f"jobs/{job.id}/bundle-{job.id}.zip"
    storage.put_bytes(key, data)
    import hashlib

    job.bundle_key = key
    job.bundle_sha256 = hashlib.sha256(data).hexdigest()
    return key


def _parquet_rows(data: bytes) -> int:
    import io

    import pyarrow.parquet as pq

    return int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)


def final_statement(session: Session, storage: Storage, job: ReleaseJob, ds: Dataset) -> str:
    """privacy.md of the bundle: the statement with the steward's decision and the ledger as it stands."""
    from privacy.statement import privacy_statement

    entry = catalogue.method_entry(job.method)
    artifacts = job.artifacts or {}
    stored = json.loads(storage.get_bytes(artifacts["disclosure.json"]))
    release = {
        "id": job.id,
        "dataset": ds.name,
        "kind": job.kind,
        "rebalanced": stored.get("rebalanced"),
        "constraints": stored.get("constraints"),
        "approved_at": to_minute(job.decided_at) if job.decided_at else None,
        "approval_comment": job.decision_comment,
        # a data-free release describes its own output: no version of the dataset's schema applies
        "schema_version": job.schema_version if entry.reads_rows else None,
    }
    from core.candidates import statement_facts

    postprocessing = statement_facts(session, job)
    if postprocessing is not None:
        release["postprocessing"] = postprocessing
    split = job.split or {}
    if str(split.get("method", "")).startswith("independent"):
        release["holdout"] = split.get("holdout_fraction")  # the requested fraction, not the sizes
    elif entry.whole_table:
        release["holdout"] = 0.0
    method = entry.info(job.options)
    # a data-free release describes its own output; every other release the version of the dataset's public
    # schema it ran under
    if not entry.reads_rows:
        schema = json.loads(storage.get_bytes(artifacts["schema.json"]))
    else:
        schema, _ = schema_versions.schema_for_job(session, job, ds)
    return privacy_statement(
        method=method,
        cost=job.cost,
        schema=schema,
        dataset_guarantee=ledger.ledger_summary(session, ds).status.guarantee(),
        release=release,
        disclosure=stored.get("disclosure"),
        real_checks=stored.get("real_checks"),
        small_cells=stored.get("small_cells"),
        gate=job.gate,
        # the override speaks of the internal checks: in the bundle only with the internal sections
        override_reason=job.override_reason if job.include_internal else None,
        include_internal=job.include_internal,
    )


def authorise_download(
    session: Session, storage: Storage, settings: Settings, user: User, job: ReleaseJob, via: str | None = None
) -> tuple[str | None, Conflict | Forbidden | None]:
    """One download of a release's bundle, audited: (the bundle's storage key, None), building the bundle if
    it is missing; or (None, the refusal) once the denial is recorded. The caller commits the session before it
    raises the refusal, so the denial stays in the audit log. `via` names a channel other than the API."""
    extra = {"via": via} if via else {}
    if not can_download(user, job):
        audit.record(
            session,
            "authz.denied",
            actor=user,
            object_type="release",
            object_id=job.id,
            detail={"action": "download", "status": job.status, **extra},
        )
        if job.status != JobStatus.approved.value:
            return None, Conflict(
                f"release {job.id} is {job.status}: it can be downloaded once a steward approves it",
                code="not_approved",
                field="release",
            )
        return None, Forbidden("only the requester, a steward or an admin may download this bundle")
    if not job.bundle_key:
        make_bundle(session, storage, settings, job)
    audit.record(
        session,
        "release.download",
        actor=user,
        object_type="release",
        object_id=job.id,
        detail={"sha256": job.bundle_sha256, **extra},
    )
    return job.bundle_key, None
