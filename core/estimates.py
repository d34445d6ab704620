"""Time estimates of releases for the service: before a request (the API, the form, the CLI), when it is
made (refused over the policy's limit before any reservation) and on the release's view.

The model is privacy/estimate.py. Its input sizes are public facts only: the
schema in force, and as rows the row count the steward declared public, else
the rows asked for, else the default; never the table's own row count.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from core import schema_versions
from core.errors import InvalidRequest
from core.models import Dataset, ReleaseJob
from privacy import catalogue
from privacy.estimate import Estimate, check_estimate, estimate_release, faster_options
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema

__all__ = [
    "check_request_estimate",
    "estimate_rows",
    "estimate_view",
    "job_estimate",
    "request_estimate",
    "time_target_options",
]


def estimate_rows(policy: DatasetPolicy, rows: int | None) -> int:
    """The rows the estimate is made for: the public row count, else the rows asked for, else the default."""
    return policy.public_row_count or rows or catalogue.DEFAULT_ROWS


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _schema(session: Session, dataset: Dataset, version: int | None = None) -> PublicSchema:
    found = (
        schema_versions.current_version(session, dataset.id)
        if version is None
        else schema_versions.version_of(session, dataset.id, version)
    )
    return PublicSchema.from_dict(found.schema if found is not None else dataset.public_schema)


def time_target_options(
    schema: PublicSchema, policy: DatasetPolicy, method: str, options: dict[str, Any], rows: int | None
) -> dict[str, Any]:
    """`options` with the time target of a method that chooses its work for one (option `minutes`, DPCTGAN)
    set from the policy when the request leaves it unset and the policy's limit is the tighter.

    The target is the CPU minutes of the fit, the limit those of the whole release: it becomes the limit
    less the report's estimate when that is below the method's default, never below the option's least
    value; otherwise `options` are returned as they are. The request stores the result as its options,
    so the estimate, the job's view and the worker's plan all follow the same target. Public inputs only
    (the policy, the schema and the estimate's rows); the privacy cost does not depend on it.
    """
    limit = policy.max_estimated_minutes
    entry = catalogue.method_entry(method)
    spec = getattr(getattr(entry, "cls", None), "option_spec", {}).get("minutes")
    if limit is None or spec is None or options.get("minutes") not in (None, ""):
        return dict(options)
    report = estimate_release(method, schema, estimate_rows(policy, rows)).report_seconds
    target = (limit * 60 - report) / 60
    default, least = float(spec[1]), float(spec[3][0])
    if target >= default:
        return dict(options)
    return {**options, "minutes": max(least, math.floor(target * 100) / 100)}


def estimate_view(est: Estimate, policy: DatasetPolicy, suggestions: list[str] | None = None) -> dict[str, Any]:
    """The estimate with the policy's limit and whether it is over it."""
    limit = policy.max_estimated_minutes
    view = est.to_dict()
    view["limit_minutes"] = limit
    view["over_limit"] = limit is not None and est.total_seconds > limit * 60
    if suggestions is not None:
        view["suggestions"] = suggestions
    return view


def check_request_estimate(
    schema: PublicSchema,
    policy: DatasetPolicy,
    dataset: str,
    method: str,
    options: dict[str, Any],
    rows: int | None,
    epsilon: Any,
    delta: Any,
) -> Estimate:
    """The request's estimate; EstimateOverLimit (422) when it exceeds the policy's max_estimated_minutes."""
    return check_estimate(
        method,
        schema,
        estimate_rows(policy, rows),
        options,
        policy.max_estimated_minutes,
        epsilon=_finite(epsilon),
        delta=_finite(delta),
        dataset=dataset,
    )


def request_estimate(session: Session, dataset: Dataset, query: dict[str, Any]) -> dict[str, Any]:
    """The estimate of a release not yet asked for: `query` has method, and optionally epsilon, delta, rows
    and options (values as text or JSON). Over the limit, it lists the changes that fit."""
    method = query.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequest("give the method to estimate, for example method=mst", field="method")
    options = query.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidRequest("options must be a mapping of option names to values", field="options")
    rows: int | None = None
    if query.get("rows") not in (None, ""):
        try:
            rows = int(str(query["rows"]))
        except ValueError:
            raise InvalidRequest("rows must be a whole number such as 10000", field="rows") from None
        if rows < 1:
            raise InvalidRequest("rows must be at least 1", field="rows")
    policy = DatasetPolicy.from_dict(dataset.policy)
    schema = _schema(session, dataset)
    n = estimate_rows(policy, rows)
    options = time_target_options(schema, policy, method, options, rows)
    eps, dlt = _finite(query.get("epsilon")), _finite(query.get("delta"))
    est = estimate_release(method, schema, n, options, eps, delta=dlt)
    limit = policy.max_estimated_minutes
    suggestions = None
    if limit is not None and est.total_seconds > limit * 60:
        suggestions = faster_options(method, schema, n, options, limit * 60, epsilon=eps, delta=dlt)
    return estimate_view(est, policy, suggestions)


def job_estimate(session: Session, job: ReleaseJob) -> dict[str, Any] | None:
    """The estimate of a release as requested (its schema version, options and rows); None if it cannot
    be made (a method no longer installed, options no longer valid)."""
    ds = session.get(Dataset, job.dataset_id)
    if ds is None or not ds.public_schema:
        return None
    policy = DatasetPolicy.from_dict(ds.policy)
    options = {k: v for k, v in (job.options or {}).items() if k not in ("rebalance", "comment")}
    try:
        schema = _schema(session, ds, job.schema_version)
        est = estimate_release(
            job.method,
            schema,
            estimate_rows(policy, job.rows),
            options,
            _finite(job.epsilon),
            delta=_finite(job.delta),
        )
    except Exception:  # noqa: BLE001 - the view shows no estimate rather than failing
        return None
    return estimate_view(est, policy)
