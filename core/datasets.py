"""Datasets: registration, the public schema and its versions, policy and budget, grants.

Every function takes the acting user and checks its role (core/access.py).
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, ledger, schema_versions
from core.access import require_role
from core.erasure import require_raw_data
from core.errors import Conflict, InvalidRequest, NotFound
from core.jobs_state import stop_job
from core.models import Dataset, Grant, JobStatus, ReleaseJob, Role, User
from core.settings import Settings
from core.storage import Storage, sha256_file
from privacy import catalogue
from privacy.budget import PrivacyBudget, PrivacyCost, format_value
from privacy.errors import SchemaError
from privacy.policy import DatasetPolicy, load_policy
from privacy.schema import PublicSchema, load_schema, propose_schema, read_table, suggest_roles, validate_table

DEFAULT_ROWS = catalogue.DEFAULT_ROWS
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DATASET_NAME_RULE = "name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"


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
    if not name or not DATASET_NAME.match(name):
        raise InvalidRequest(DATASET_NAME_RULE, field="name")
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
        suggestions = scan.suggestions
    else:
        table = read_table(upload_path)  # the file's problems first, then the schema's
        given = _schema_from_request(schema_text) if schema_text else None
        n_rows = len(table)
        schema = given if given is not None else propose_schema(table)
        # roles, hierarchies and flags for the steward to accept: learned from the rows, as the proposal is
        suggestions = suggest_roles(table, schema) if given is None else None
        issues = validate_table(table, schema)
        del table
    delta_issues = _check_max_delta(policy, n_rows)
    confirmed = given is not None
    errors = [i for i in issues if i.severity == "error"]
    if errors and confirmed:
        raise SchemaError("the table does not fit the schema: " + "; ".join(i.message for i in errors), field="schema")
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
        schema_suggestions=suggestions,
    )
    session.add(ds)
    session.flush()
    ext = ".parquet" if suffix in (".parquet", ".pq") else ".csv"
    ds.storage_key = f"datasets/{ds.id}/raw{ext}"
    if confirmed:
        schema_versions.record_version(session, user, ds, ds.public_schema, note=None)
    audit.record(
        session,
        "dataset.register",
        actor=user,
        object_type="dataset",
        object_id=ds.id,
        detail={
            "name": name,
            "schema_confirmed": confirmed,
            "budget": budget.to_dict(),
            "policy": policy.privacy,
            "sha256": ds.file_sha256,
        },
    )
    session.flush()
    pending_issue = []
    if wanted is not None:
        change = confirmations.request_change(
            session,
            user,
            confirmations.BUDGET,
            "dataset",
            ds.id,
            {"epsilon_budget": str(wanted.epsilon), "delta_budget": str(wanted.delta), "dataset": name},
        )
        pending_issue.append(
            {
                "column": "",
                "code": "budget_awaits_confirmation",
                "severity": "warning",
                "message": f"the budget asked for (epsilon {format_value(wanted.epsilon)}, delta "
                f"{format_value(wanted.delta)}) is above the ceiling: the dataset starts "
                f"at epsilon {format_value(budget.epsilon)}, delta "
                f"{format_value(budget.delta)} until another steward confirms change "
                f"{change.id}",
            }
        )
    storage.put_file(ds.storage_key, upload_path)
    return ds, pending_issue + delta_issues + [
        {"column": i.column or "", "code": i.code, "message": i.message, "severity": i.severity} for i in issues
    ]


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
            "(1/(10 rows))",
            field="policy",
        )
    if max_delta * n_rows * 10 > 1:
        return [
            {
                "column": "",
                "code": "max_delta_not_small",
                "severity": "warning",
                "message": f"the policy's max_delta {format_value(max_delta)} is not well below 1/rows for this "
                f"table of {n_rows} rows; consider {suggestion} or less",
            }
        ]
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


def confirm_schema(
    session: Session,
    user: User,
    dataset: Dataset,
    schema_text: str | dict[str, Any],
    storage: Storage,
    *,
    note: Any = None,
    base_version: Any = None,
) -> list[dict[str, str]]:
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
    require_raw_data(dataset, "checking a schema against the stored table")
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
        raise SchemaError(
            "the table does not fit the schema: " + "; ".join(i.message for i in errors) + kept, field="schema"
        )
    if base is not None and (current.version if current else 0) != base:
        if current is None:
            raise Conflict(
                f"the schema of '{locked.name}' has no version {base} yet: it was never confirmed",
                field="schema",
                code="schema_version_conflict",
            )
        raise Conflict(
            f"the schema was changed since you opened it: version {current.version} was confirmed by "
            f"{current.confirmed_by_name} at {current.confirmed_at.isoformat(timespec='minutes')}. "
            f"Reload it, make your change to version {current.version} and submit again",
            field="schema",
            code="schema_version_conflict",
        )
    document = json.loads(json.dumps(schema.to_dict(), default=str))
    notes = [{"column": i.column or "", "code": i.code, "message": i.message, "severity": i.severity} for i in issues]
    if current is not None and locked.schema_confirmed and current.schema == document:
        notes.append(
            {
                "column": "",
                "code": "schema_unchanged",
                "severity": "warning",
                "message": f"the schema is the same as version {current.version}, which stays in force; "
                "no new version was recorded",
            }
        )
    else:
        row = schema_versions.record_version(session, user, locked, document, note)
        if current is None:
            audit.record(
                session,
                "dataset.confirm_schema",
                actor=user,
                object_type="dataset",
                object_id=locked.id,
                detail={"learned_kept": schema.learned_columns, "version": row.version},
            )
        else:
            audit.record(
                session,
                "dataset.schema_version",
                actor=user,
                object_type="dataset",
                object_id=locked.id,
                detail={
                    "from_version": current.version,
                    "to_version": row.version,
                    "changes": schema_versions.changed_parts(current.schema, document),
                    "learned_kept": schema.learned_columns,
                },
            )
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


def update_policy(
    session: Session,
    user: User,
    dataset: Dataset,
    policy: str | dict[str, Any],
    epsilon_budget: Any = None,
    delta_budget: Any = None,
    settings: Settings | None = None,
) -> Any:
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
            _number(epsilon_budget, "epsilon_budget")
            if epsilon_budget is not None
            else Fraction(locked.epsilon_budget),
            _number(delta_budget, "delta_budget") if delta_budget is not None else Fraction(locked.delta_budget),
        )
        spent, reserved = ledger.committed_costs(session, locked.id)
        committed = sum((c for c in spent + reserved if c.is_dp), PrivacyCost.zero())
        if committed.epsilon > budget.epsilon or committed.delta > budget.delta:
            raise Conflict(
                f"the new budget is below what is already committed (epsilon {format_value(committed.epsilon)}, "
                f"delta {format_value(committed.delta)}): a budget cannot be lowered below its spending",
                field="epsilon_budget",
            )
        current = (Fraction(locked.epsilon_budget), Fraction(locked.delta_budget))
        if confirmations.check_budget(settings or get_settings(), budget.epsilon, budget.delta, current):
            pending = confirmations.request_change(
                session,
                user,
                confirmations.BUDGET,
                "dataset",
                locked.id,
                {"epsilon_budget": str(budget.epsilon), "delta_budget": str(budget.delta), "dataset": locked.name},
            )
        else:
            locked.epsilon_budget = str(budget.epsilon)
            locked.delta_budget = str(budget.delta)
    locked.policy = new_policy.to_dict()
    audit.record(
        session,
        "dataset.update_policy",
        actor=user,
        object_type="dataset",
        object_id=dataset.id,
        detail={
            "before": before,
            "after": {
                "policy": locked.policy,
                "epsilon_budget": locked.epsilon_budget,
                "delta_budget": locked.delta_budget,
            },
            "budget_awaits_confirmation": pending.id if pending is not None else None,
        },
    )
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
    audit.record(
        session, "dataset.grant", actor=actor, object_type="dataset", object_id=dataset.id, detail={"user": username}
    )
    session.flush()
    return g


def revoke_grant(session: Session, actor: User, dataset: Dataset, username: str) -> bool:
    require_role(actor, Role.steward, Role.admin)
    target = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if target is None:
        raise NotFound(f"no user '{username}'", field="user")
    g = session.execute(
        select(Grant).where(Grant.dataset_id == dataset.id, Grant.user_id == target.id)
    ).scalar_one_or_none()
    if g is None:
        return False
    session.delete(g)
    # the user's unfinished jobs on the dataset stop with the grant; a queued one never read the data,
    # so its reservation is given back, a running one that read it keeps its charge
    pending = (
        session.execute(
            select(ReleaseJob)
            .where(
                ReleaseJob.dataset_id == dataset.id,
                ReleaseJob.requester_id == target.id,
                ReleaseJob.status.in_((JobStatus.queued.value, JobStatus.running.value)),
            )
            .order_by(ReleaseJob.id)
            .with_for_update()
        )
        .scalars()
        .all()
    )
    cancelled = [
        stop_job(session, actor, job, f"cancelled: {username}'s access to {dataset.name} was revoked")
        for job in pending
    ]
    audit.record(
        session,
        "dataset.revoke",
        actor=actor,
        object_type="dataset",
        object_id=dataset.id,
        detail={"user": username, "cancelled_releases": [c["id"] for c in cancelled]},
    )
    return True
