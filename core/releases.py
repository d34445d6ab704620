"""Release operations shared by the JSON API, the pages and the CLI.

Every function takes the acting user and checks, on the server and by object,
what that user may see and do. An object a user may not see is reported as
not found, never as forbidden, so ids cannot be probed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, object_session

from core import audit, ledger, schema_versions
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.models import Dataset, Grant, JobStatus, ReleaseJob, Role, User, to_minute, utcnow
from core.settings import Settings
from core.storage import Storage, sha256_file
from privacy import catalogue
from privacy.budget import PrivacyBudget, PrivacyCost, format_value
from privacy.catalogue import KINDS, ROW_LEVEL_KINDS
from privacy.errors import RequestRefused, SchemaError
from privacy.policy import DatasetPolicy, load_policy
from privacy.schema import PublicSchema, load_schema, propose_schema, read_table, validate_table

log = logging.getLogger(__name__)

__all__ = [
    "ReleaseRequest",
    "KINDS",
    "ROW_LEVEL_KINDS",
    "DEFAULT_ROWS",
    "register_dataset",
    "confirm_schema",
    "disclosure_issues",
    "update_policy",
    "grant",
    "revoke_grant",
    "visible_datasets",
    "get_dataset",
    "request_release",
    "visible_jobs",
    "get_job",
    "approve",
    "reject",
    "cancel_release",
    "can_download",
    "dataset_view",
    "job_view",
    "method_kind",
]

DEFAULT_ROWS = catalogue.DEFAULT_ROWS
MAX_GENERATED_CELLS = catalogue.MAX_GENERATED_CELLS
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# ------------------------------------------------------------------------------------------------
# access rules
# ------------------------------------------------------------------------------------------------


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


def visible_jobs(session: Session, user: User, dataset_id: int | None = None,
                 status: str | None = None) -> list[ReleaseJob]:
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


# ------------------------------------------------------------------------------------------------
# datasets
# ------------------------------------------------------------------------------------------------


def _budget(epsilon: Any, delta: Any) -> PrivacyBudget:
    return PrivacyBudget(_number(epsilon, "epsilon_budget"), _number(delta, "delta_budget"))


def _number(value: Any, field: str) -> Fraction:
    """Numbers from JSON (int/float) or from a form/CLI (text), exactly."""
    from privacy.budget import parse_number, to_fraction

    if isinstance(value, str):
        return parse_number(value, field)
    return to_fraction(value, field)


def register_dataset(
    session: Session,
    storage: Storage,
    user: User,
    *,
    upload_path: Path,
    filename: str,
    name: str,
    schema_text: str | None = None,
    epsilon_budget: Any = None,
    delta_budget: Any = None,
    policy_text: str | dict[str, Any] | None = None,
    description: str | None = None,
    settings: Settings | None = None,
    file_sha256: str | None = None,
) -> tuple[Dataset, list[dict[str, str]]]:
    """Register a table. With a schema it is confirmed at once; without one a
    schema is proposed from the data and releases wait for the steward to confirm it.

    A file above `batch_read_above_mb` is read in batches (`privacy.table_scan`), so the
    process's memory does not grow with the file; `file_sha256`, when the caller hashed the
    upload while copying it, saves reading the file once more.
    Returns the dataset and the validation issues (warnings; errors raise).
    Storage is written last and removed if the transaction fails, so a failed
    registration leaves nothing behind.
    """
    require_role(user, Role.steward)
    if not name or not _NAME.match(name):
        raise InvalidRequest("name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
                             field="name")
    if session.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one_or_none() is not None:
        raise Conflict(f"a dataset named '{name}' already exists; choose another name", field="name")
    eps = epsilon_budget if epsilon_budget is not None else (settings.default_epsilon_budget if settings else "3")
    dlt = delta_budget if delta_budget is not None else (settings.default_delta_budget if settings else "1e-6")
    budget = _budget(eps, dlt)
    from core import confirmations
    from core.settings import get_settings

    limits_from = settings or get_settings()
    wanted = budget if confirmations.check_budget(limits_from, budget.epsilon, budget.delta) else None
    if wanted is not None:  # above the ceiling: start at the ceiling until a second steward confirms the rest
        budget = PrivacyBudget(*confirmations.capped_budget(limits_from, budget.epsilon, budget.delta))
    policy = load_policy(policy_text) if policy_text is not None else DatasetPolicy()
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq", ".txt", ""):
        raise InvalidRequest(f"unsupported file type '{suffix}': upload a CSV or Parquet file", field="file")
    if Path(upload_path).stat().st_size > limits_from.batch_read_above_mb * 1024 * 1024:
        from privacy.table_scan import scan_table

        given = _schema_from_request(schema_text) if schema_text else None
        scan = scan_table(upload_path, given)
        n_rows, schema, issues = scan.n_rows, scan.schema, scan.issues
    else:
        table = read_table(upload_path)  # the file's problems first, then the schema's
        given = _schema_from_request(schema_text) if schema_text else None
        n_rows = len(table)
        schema = given if given is not None else propose_schema(table)
        issues = validate_table(table, schema)
        del table
    delta_issues = _check_max_delta(policy, n_rows)
    confirmed = given is not None
    errors = [i for i in issues if i.severity == "error"]
    if errors and confirmed:
        raise SchemaError("the table does not fit the schema: " + "; ".join(i.message for i in errors),
                          field="schema")
    ds = Dataset(
        name=name,
        owner_id=user.id,
        storage_key="pending",
        original_filename=Path(filename).name[:256] or "upload.csv",
        file_sha256=file_sha256 or sha256_file(upload_path),
        n_rows=n_rows,
        public_schema=schema.to_dict(),
        schema_confirmed=confirmed,
        epsilon_budget=str(budget.epsilon),
        delta_budget=str(budget.delta),
        policy=policy.to_dict(),
        description=description,
    )
    session.add(ds)
    session.flush()
    ext = ".parquet" if suffix in (".parquet", ".pq") else ".csv"
    ds.storage_key = f"datasets/{ds.id}/raw{ext}"
    if confirmed:
        schema_versions.record_version(session, user, ds, ds.public_schema, note=None)
    audit.record(session, "dataset.register", actor=user, object_type="dataset", object_id=ds.id,
                 detail={"name": name, "schema_confirmed": confirmed, "budget": budget.to_dict(),
                         "policy": policy.privacy, "sha256": ds.file_sha256})
    session.flush()
    pending_issue = []
    if wanted is not None:
        change = confirmations.request_change(session, user, confirmations.BUDGET, "dataset", ds.id,
                                              {"epsilon_budget": str(wanted.epsilon),
                                               "delta_budget": str(wanted.delta), "dataset": name})
        pending_issue.append({"column": "", "code": "budget_awaits_confirmation", "severity": "warning",
                              "message": f"the budget asked for (epsilon {format_value(wanted.epsilon)}, delta "
                                         f"{format_value(wanted.delta)}) is above the ceiling: the dataset starts "
                                         f"at epsilon {format_value(budget.epsilon)}, delta "
                                         f"{format_value(budget.delta)} until another steward confirms change "
                                         f"{change.id}"})
    storage.put_file(ds.storage_key, upload_path)
    return ds, pending_issue + delta_issues + [{"column": i.column or "", "code": i.code, "message": i.message,
                                 "severity": i.severity} for i in issues]


def _check_max_delta(policy: DatasetPolicy, n_rows: int) -> list[dict[str, str]]:
    """Refuse a policy whose max_delta is not below 1/rows; warn when it is not well below (1/(10 rows)).

    A delta is the chance that the guarantee fails outright: at 1/rows or more, a mechanism that
    publishes one random row whole would meet it. Only the steward sees this (the row count is not
    public); analysts see the max_delta the steward chose.
    """
    max_delta = policy.max_delta_exact
    if n_rows <= 0 or max_delta == 0:
        return []
    well_under = Fraction(1, 10 * n_rows)
    digits = 1 - math.floor(math.log10(well_under))  # two significant digits, rounded down
    suggestion = f"{math.floor(well_under * 10**digits) / 10**digits:.{digits}f}"
    if max_delta * n_rows >= 1:
        raise InvalidRequest(
            f"the policy's max_delta {format_value(max_delta)} is not below 1/rows for this table of {n_rows} "
            f"rows, so one row could be published whole within it; set max_delta to at most {suggestion} "
            "(1/(10 rows))", field="policy")
    if max_delta * n_rows * 10 > 1:
        return [{"column": "", "code": "max_delta_not_small", "severity": "warning",
                 "message": f"the policy's max_delta {format_value(max_delta)} is not well below 1/rows for this "
                            f"table of {n_rows} rows; consider {suggestion} or less"}]
    return []


def disclosure_issues(schema: PublicSchema, policy: DatasetPolicy, rows: int = DEFAULT_ROWS) -> list[dict[str, str]]:
    """What k-anonymity is expected to do to a release of `rows` rows (the default request), as warnings.

    The same schema-only preflight that refuses requests at request time; a steward sees it when confirming a
    schema or a policy, so that a schema every request would fail on is fixed before any budget is spent.
    """
    from privacy.generalise import preflight_disclosure

    result = preflight_disclosure(schema, policy, rows)
    notes = list(result.warnings)
    if result.refused and result.message:
        notes.insert(0, f"a release of {rows:,} rows (the default request) would be refused: {result.message}")
    return [{"column": "", "code": "disclosure_preflight", "severity": "warning", "message": m} for m in notes]


def _schema_from_request(schema: str | dict[str, Any] | PublicSchema) -> PublicSchema:
    """A schema sent by a user: text, a mapping or a schema object, never a name of a server file."""
    if isinstance(schema, str):
        return PublicSchema.from_text(schema)
    return load_schema(schema)


def confirm_schema(session: Session, user: User, dataset: Dataset, schema_text: str | dict[str, Any],
                   storage: Storage, *, note: Any = None, base_version: Any = None) -> list[dict[str, str]]:
    """Confirm a dataset's public schema, or edit a confirmed one: either way the schema is checked
    against the stored table and, when it differs from the one in force, recorded as the next version
    (core/schema_versions.py). Releases requested from then on run under it; releases already
    requested keep theirs.

    `base_version`: the version the steward edited; when another was confirmed since, the edit is
    refused rather than silently undoing it. Returns the validation notes and the disclosure preflight
    warnings; an error raises and leaves the version in force unchanged.
    """
    require_role(user, Role.steward)
    if note is not None and not isinstance(note, str):
        raise InvalidRequest("note must be text", field="note")
    if note is not None and len(note) > schema_versions.MAX_NOTE:
        raise InvalidRequest(f"note must be at most {schema_versions.MAX_NOTE} characters", field="note")
    base = _version_number(base_version)
    schema = _schema_from_request(schema_text)
    with storage.local_path(dataset.storage_key) as path:
        table = read_table(path)
    issues = validate_table(table, schema)
    errors = [i for i in issues if i.severity == "error"]
    locked = ledger.lock_dataset(session, dataset.id)
    assert locked is not None
    current = schema_versions.current_version(session, locked.id)
    kept = f"; version {current.version} stays in force" if current is not None else ""
    if errors:
        raise SchemaError("the table does not fit the schema: " + "; ".join(i.message for i in errors) + kept,
                          field="schema")
    if base is not None and (current.version if current else 0) != base:
        if current is None:
            raise Conflict(f"the schema of '{locked.name}' has no version {base} yet: it was never confirmed",
                           field="schema", code="schema_version_conflict")
        raise Conflict(f"the schema was changed since you opened it: version {current.version} was confirmed by "
                       f"{current.confirmed_by_name} at {current.confirmed_at.isoformat(timespec='minutes')}. "
                       f"Reload it, make your change to version {current.version} and submit again",
                       field="schema", code="schema_version_conflict")
    document = json.loads(json.dumps(schema.to_dict(), default=str))
    notes = [{"column": i.column or "", "code": i.code, "message": i.message, "severity": i.severity}
             for i in issues]
    if current is not None and locked.schema_confirmed and current.schema == document:
        notes.append({"column": "", "code": "schema_unchanged", "severity": "warning",
                      "message": f"the schema is the same as version {current.version}, which stays in force; "
                                 "no new version was recorded"})
    else:
        row = schema_versions.record_version(session, user, locked, document, note)
        if current is None:
            audit.record(session, "dataset.confirm_schema", actor=user, object_type="dataset", object_id=locked.id,
                         detail={"learned_kept": schema.learned_columns, "version": row.version})
        else:
            audit.record(session, "dataset.schema_version", actor=user, object_type="dataset", object_id=locked.id,
                         detail={"from_version": current.version, "to_version": row.version,
                                 "changes": schema_versions.changed_parts(current.schema, document),
                                 "learned_kept": schema.learned_columns})
    return notes + disclosure_issues(schema, DatasetPolicy.from_dict(locked.policy))


def _version_number(value: Any) -> int | None:
    """A version number sent by a form (text) or JSON (integer); None when not given."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest("base_version must be a schema version number such as 2", field="base_version")
    if isinstance(value, str):
        if not (value.isascii() and value.strip().isdigit()):
            raise InvalidRequest("base_version must be a schema version number such as 2", field="base_version")
        value = int(value.strip())
    if value < 0 or value >= 2**31:
        raise InvalidRequest("base_version must be a schema version number such as 2", field="base_version")
    return value


def update_policy(session: Session, user: User, dataset: Dataset, policy: str | dict[str, Any],
                  epsilon_budget: Any = None, delta_budget: Any = None,
                  settings: Settings | None = None) -> Any:
    """Change a dataset's policy and budget. A budget raise above the ceiling is not applied: it is
    returned as a change awaiting a second steward (core/confirmations.py); None otherwise."""
    from core import confirmations
    from core.settings import get_settings

    require_role(user, Role.steward)
    pending = None
    new_policy = load_policy(policy) if policy is not None else DatasetPolicy.from_dict(dataset.policy)
    locked = ledger.lock_dataset(session, dataset.id)
    assert locked is not None
    _check_max_delta(new_policy, int(locked.n_rows or 0))
    before = {"policy": locked.policy, "epsilon_budget": locked.epsilon_budget, "delta_budget": locked.delta_budget}
    if epsilon_budget is not None or delta_budget is not None:
        budget = PrivacyBudget(
            _number(epsilon_budget, "epsilon_budget") if epsilon_budget is not None else Fraction(locked.epsilon_budget),
            _number(delta_budget, "delta_budget") if delta_budget is not None else Fraction(locked.delta_budget))
        spent, reserved = ledger.committed_costs(session, locked.id)
        committed = sum((c for c in spent + reserved if c.is_dp), PrivacyCost.zero())
        if committed.epsilon > budget.epsilon or committed.delta > budget.delta:
            raise Conflict(
                f"the new budget is below what is already committed (epsilon {format_value(committed.epsilon)}, "
                f"delta {format_value(committed.delta)}): a budget cannot be lowered below its spending",
                field="epsilon_budget")
        current = (Fraction(locked.epsilon_budget), Fraction(locked.delta_budget))
        if confirmations.check_budget(settings or get_settings(), budget.epsilon, budget.delta, current):
            pending = confirmations.request_change(
                session, user, confirmations.BUDGET, "dataset", locked.id,
                {"epsilon_budget": str(budget.epsilon), "delta_budget": str(budget.delta), "dataset": locked.name})
        else:
            locked.epsilon_budget = str(budget.epsilon)
            locked.delta_budget = str(budget.delta)
    locked.policy = new_policy.to_dict()
    audit.record(session, "dataset.update_policy", actor=user, object_type="dataset", object_id=dataset.id,
                 detail={"before": before, "after": {"policy": locked.policy, "epsilon_budget": locked.epsilon_budget,
                                                     "delta_budget": locked.delta_budget},
                         "budget_awaits_confirmation": pending.id if pending is not None else None})
    return pending


def grant(session: Session, actor: User, dataset: Dataset, username: str) -> Grant:
    require_role(actor, Role.steward, Role.admin)
    target = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if target is None:
        raise NotFound(f"no user '{username}'", field="user")
    existing = session.execute(
        select(Grant).where(Grant.dataset_id == dataset.id, Grant.user_id == target.id)
    ).scalar_one_or_none()
    if existing:
        return existing
    g = Grant(dataset_id=dataset.id, user_id=target.id, granted_by=actor.id)
    session.add(g)
    audit.record(session, "dataset.grant", actor=actor, object_type="dataset", object_id=dataset.id,
                 detail={"user": username})
    session.flush()
    return g


def revoke_grant(session: Session, actor: User, dataset: Dataset, username: str) -> bool:
    require_role(actor, Role.steward, Role.admin)
    target = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if target is None:
        raise NotFound(f"no user '{username}'", field="user")
    g = session.execute(select(Grant).where(Grant.dataset_id == dataset.id, Grant.user_id == target.id)).scalar_one_or_none()
    if g is None:
        return False
    session.delete(g)
    # the user's unfinished jobs on the dataset stop with the grant; a queued one never read the data,
    # so its reservation is given back, a running one that read it keeps its charge
    pending = session.execute(
        select(ReleaseJob).where(ReleaseJob.dataset_id == dataset.id, ReleaseJob.requester_id == target.id,
                                 ReleaseJob.status.in_((JobStatus.queued.value, JobStatus.running.value)))
        .order_by(ReleaseJob.id).with_for_update()
    ).scalars().all()
    cancelled = [_stop_job(session, actor, job, f"cancelled: {username}'s access to {dataset.name} was revoked")
                 for job in pending]
    audit.record(session, "dataset.revoke", actor=actor, object_type="dataset", object_id=dataset.id,
                 detail={"user": username, "cancelled_releases": [c["id"] for c in cancelled]})
    return True


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
    if not dataset.schema_confirmed:
        raise Conflict(f"dataset '{dataset.name}' has a proposed schema the steward has not confirmed yet; "
                       "releases open once it is confirmed", field="dataset")
    # the version in force now: the request is checked under it and the job records it (versions never change)
    version = schema_versions.current_version(session, dataset.id)
    schema = PublicSchema.from_dict(version.schema if version is not None else dataset.public_schema)
    limits = catalogue.DatasetLimits(name=dataset.name, policy=DatasetPolicy.from_dict(dataset.policy),
                                     delta_budget=Fraction(dataset.delta_budget), max_rows=settings.max_rows)
    try:
        plan = catalogue.plan_release(req.method, req.epsilon, req.delta, req.options, schema, kind=req.kind,
                                      rows=req.rows, target=req.target, rebalance=req.rebalance, dataset=limits)
    except RequestRefused as exc:
        raise InvalidRequest(exc.message, field=exc.field, code=exc.code) from exc
    locked = ledger.lock_dataset(session, dataset.id)
    assert locked is not None
    job = ReleaseJob(
        dataset_id=dataset.id,
        requester_id=user.id,
        kind=plan.kind,
        method=req.method,
        epsilon=plan.recorded["epsilon"],
        delta=plan.recorded["delta"],
        rows=plan.rows,
        target=plan.target,
        options={**req.options, **({"rebalance": req.rebalance} if req.rebalance else {}),
                 **({"comment": req.comment} if req.comment else {})},
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
    audit.record(session, "release.request", actor=user, object_type="release", object_id=job.id,
                 detail={"dataset": dataset.name, "method": req.method, "kind": job.kind,
                         "cost": plan.cost.to_dict(), "rows": plan.rows, "accountant": accountant,
                         "schema_version": job.schema_version})
    return job


def approve(session: Session, user: User, job: ReleaseJob, comment: str | None = None,
            override: str | None = None, include_internal: bool = False, candidate: Any = None) -> None:
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
    if gate.get("overall") == "fail":
        if not override or not override.strip():
            raise Conflict("the release gate failed ("
                           + ", ".join(c["name"] for c in gate.get("checks", []) if c.get("status") == "fail")
                           + "); approving needs an override with a written reason", field="override")
    job.status = JobStatus.approved.value
    job.decided_by = user.id
    job.decided_at = utcnow()
    job.decision_comment = comment
    job.override_reason = override.strip() if override else None
    job.include_internal = bool(include_internal)
    audit.record(session, "release.approve", actor=user, object_type="release", object_id=job.id,
                 detail={"comment": comment, "override": job.override_reason, "gate": gate.get("overall"),
                         "include_internal": job.include_internal,
                         **({"candidate": job.candidate} if job.candidate is not None else {})})
    if job.override_reason:
        audit.record(session, "release.override", actor=user, object_type="release", object_id=job.id,
                     detail={"reason": job.override_reason})


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
    audit.record(session, "release.reject", actor=user, object_type="release", object_id=job.id,
                 detail={"comment": job.decision_comment})


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
        raise Conflict(f"release {job.id} is {locked.status}; only a queued or running release can be cancelled",
                       field="release")
    note = f"cancelled by {user.username}" + (f": {reason.strip()}" if reason and reason.strip() else "")
    return _stop_job(session, user, locked, note[:2000])


def _stop_job(session: Session, actor: User, job: ReleaseJob, message: str) -> dict[str, Any]:
    """End a queued or running job (row locked by the caller) as failed/cancelled, and audit it."""
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
    audit.record(session, "release.cancel", actor=actor, object_type="release", object_id=job.id,
                 detail={**outcome, "message": message})
    return outcome


# ------------------------------------------------------------------------------------------------
# views (what each role may see)
# ------------------------------------------------------------------------------------------------


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
        "budget": {"epsilon": format_value(Fraction(ds.epsilon_budget)), "delta": format_value(Fraction(ds.delta_budget))},
        "policy": ds.policy,
        "created_at": ds.created_at.isoformat(timespec="seconds"),
    }
    if staff:
        # facts read from the raw file: steward and admin only
        view["internal"] = {"rows": ds.n_rows, "original_filename": ds.original_filename, "sha256": ds.file_sha256}
        view["grants"] = [
            u for u in session.execute(
                select(User.username).join(Grant, Grant.user_id == User.id).where(Grant.dataset_id == ds.id)
            ).scalars()
        ]
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
            message = ("the release could not be produced from the data; the charge is kept, as for any release "
                       "that read the data. The steward can see the details")
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
        "decision": None if job.decided_at is None else {
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
        view["internal"] = {"split": job.split, "attempts": job.attempts, "timings": job.timings,
                            "error": job.error}
        # re-runs of post-processing on the job's sample: stewards and admins only (core/candidates.py)
        from core.candidates import candidate_view, candidates_of

        view["candidate"] = job.candidate
        view["candidates"] = [candidate_view(c) for c in candidates_of(session, job.id)]
    return view


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
            raise InvalidRequest(f"the body is not valid UTF-8 (byte 0x{text[exc.start]:02x} at position "
                                 f"{exc.start}); send JSON encoded as UTF-8") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise InvalidRequest(f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects "
                             "and arrays are accepted; send a flatter document") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidRequest(f"the body is not acceptable JSON: {exc}; send plain numbers, "
                             "strings, arrays and objects") from exc
    if _json_depth(body) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"the body is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects "
                             "and arrays are accepted; send a flatter document")
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
    from core.bundle import build_bundle, publish_public_key, signing_key

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
        "approved_at": to_minute(job.decided_at)
        if job.decided_at else None,
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
    release = {"id": job.id, "dataset": ds.name, "kind": job.kind, "rebalanced": stored.get("rebalanced"),
               "constraints": stored.get("constraints"),
               "approved_at": to_minute(job.decided_at)
               if job.decided_at else None,
               "approval_comment": job.decision_comment,
               # a data-free release describes its own output: no version of the dataset's schema applies
               "schema_version": job.schema_version if entry.reads_rows else None}
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
