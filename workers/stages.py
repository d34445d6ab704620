"""The plumbing of the release pipeline (workers/pipeline.py): the job as recorded, its stages and
their progress, the plan checked again before any row is read, the charged read of the raw table,
and the writing of artifacts.

Nothing here decides what a release computes: that is the pipeline's, and the computations are
`privacy/`'s and `evaluation/`'s.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pandas as pd

from core.db import session_scope
from core.ledger import ledger_summary
from core.models import Dataset, ReleaseJob, User
from core.settings import Settings
from core.storage import Storage
from privacy.budget import PrivacyCost
from privacy.catalogue import ReleasePlan, plan_release
from privacy.policy import DatasetPolicy
from privacy.schema import PublicSchema, conform_table, read_table
from workers.jobs import JobControl

# stage -> (start, end) of overall progress
STAGES: dict[str, tuple[float, float]] = {
    "load": (0.00, 0.05),
    "split": (0.05, 0.08),
    "fit": (0.08, 0.60),
    "sample": (0.60, 0.68),
    "postprocess": (0.68, 0.72),
    "evaluate": (0.72, 0.95),
    "write": (0.95, 1.00),
}
# a re-run of post-processing: no fit, no sample
RERUN_STAGES: dict[str, tuple[float, float]] = {
    "load": (0.00, 0.10),
    "split": (0.10, 0.15),
    "postprocess": (0.15, 0.30),
    "evaluate": (0.30, 0.95),
    "write": (0.95, 1.00),
}


# what a requester is told when a release fails after the data was read: nothing data-derived
DATA_FAILURE_MESSAGE = (
    "the release could not be produced from the data; the charge is kept, as for any "
    "release that read the data. The steward can see the details"
)


class PipelineError(Exception):
    """A failure a user can act on. `public` is safe for the requester; `detail` is for stewards."""

    def __init__(self, code: str, public: str, detail: str | None = None) -> None:
        super().__init__(public)
        self.code = code
        self.public = public
        self.detail = detail or public


@dataclass
class JobSpec:
    """Everything the pipeline needs, loaded from the database by job id."""

    job_id: int
    dataset_id: int
    dataset_name: str
    storage_key: str
    schema: PublicSchema
    policy: DatasetPolicy
    kind: str
    method: str
    requested: PrivacyCost
    reserved: PrivacyCost | None
    rows: int
    target: str | None
    options: dict[str, Any]
    seed: int
    requester: str
    # the version of the public schema recorded at request time (None: requested before versions existed)
    schema_version: int | None = None
    ledger_text: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    stages: dict[str, tuple[float, float]] = field(default_factory=lambda: STAGES)


def load_spec(job_id: int, settings: Settings) -> JobSpec:
    """The job as recorded: its schema is the version it was requested under, not the one in force now."""
    from core.ledger import entry_cost
    from core.models import LedgerEntry
    from core.schema_versions import schema_for_job

    with session_scope(settings) as s:
        job = s.get(ReleaseJob, job_id)
        assert job is not None
        ds = s.get(Dataset, job.dataset_id)
        assert ds is not None
        requester = s.get(User, job.requester_id)
        reserve = s.query(LedgerEntry).filter_by(job_id=job_id, action="reserve").one_or_none()
        if job.epsilon == "inf":
            requested = PrivacyCost.non_dp()
        else:
            requested = PrivacyCost(Fraction(job.epsilon), Fraction(job.delta))
        schema, schema_version = schema_for_job(s, job, ds)
        return JobSpec(
            job_id=job.id,
            dataset_id=ds.id,
            dataset_name=ds.name,
            storage_key=ds.storage_key,
            schema=PublicSchema.from_dict(schema),
            policy=DatasetPolicy.from_dict(ds.policy),
            kind=job.kind,
            method=job.method,
            requested=requested,
            reserved=entry_cost(reserve) if reserve is not None else None,
            rows=int(job.rows or 10_000),
            target=job.target,
            options={k: v for k, v in (job.options or {}).items() if k not in ("rebalance", "comment", "holdout")},
            seed=int(job.seed),
            requester=requester.username if requester else "?",
            schema_version=schema_version,
        )


#: a stage shows an estimate of its time left once it has run this long and done this much of its work
ETA_AFTER_SECONDS = 5.0
ETA_AFTER_FRACTION = 0.05


def stage_eta(elapsed: float, done: float) -> float | None:
    """Seconds left in a stage that took `elapsed` seconds for the fraction `done` of its work, at the
    rate so far; None while the stage is too young or too little done for the rate to mean anything,
    so short stages never show one."""
    if elapsed < ETA_AFTER_SECONDS or done < ETA_AFTER_FRACTION:
        return None
    if done >= 1.0:
        return 0.0
    return elapsed * (1.0 - done) / done


class _Stage:
    """Maps a stage's own 0..1 progress onto the job's overall bar."""

    def __init__(self, control: JobControl, name: str, spec: JobSpec) -> None:
        self.control = control
        self.name = name
        self.spec = spec
        self.start, self.end = spec.stages[name]
        self.t0 = time.perf_counter()

    def __enter__(self) -> _Stage:
        self.control.progress(self.name, self.start, f"{self.name}")
        return self

    def __call__(self, fraction: float, message: str = "") -> None:
        done = max(0.0, min(1.0, float(fraction)))
        f = self.start + (self.end - self.start) * done
        eta = stage_eta(time.perf_counter() - self.t0, done)
        self.control.progress(self.name, f, f"{self.name}: {message}" if message else self.name, eta_seconds=eta)

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.t0
        self.spec.timings[self.name] = round(self.spec.timings.get(self.name, 0.0) + elapsed, 4)


def _plan(spec: JobSpec, options: dict[str, Any], rebalance: str | None = None) -> ReleasePlan:
    """The job's plan, checked again before any row is read: the same questions the request was asked."""
    requested = spec.requested
    return plan_release(
        spec.method,
        requested.epsilon if requested.is_dp else None,
        requested.delta,
        options,
        spec.schema,
        kind=spec.kind,
        rows=spec.rows,
        target=spec.target,
        rebalance=rebalance,
    )


def _check_reservation(spec: JobSpec, planned: PrivacyCost) -> None:
    if spec.reserved is not None and not _within(planned, spec.reserved):
        raise PipelineError(
            "cost_mismatch",
            "the method's cost differs from the reservation; the job was stopped",
            f"planned {planned.describe()} vs reserved {spec.reserved.describe()}",
        )


def _load(spec: JobSpec, control: JobControl, storage: Storage, *, charge: bool = True) -> tuple[pd.DataFrame, Any]:
    """Read and conform the raw table. The charge is spent once the file is found and before it is
    read: a missing file says nothing about the rows, everything after it depends on them. A re-run
    of post-processing (`charge=False`) reads it for the internal checks and the report only.

    Text columns are read dictionary-encoded (`read_table(categories=True)`), each distinct text made
    once: the raw frame is only conformed, and `conform_table` gives the same table and report from it
    as from the plain read."""
    with _Stage(control, "load", spec) as st:
        with storage.local_path(spec.storage_key) as path:
            if charge:
                control.mark_data_read()
            raw = read_table(path, categories=True)
        st(0.6, "conforming to the public schema")
        table, conform_report = conform_table(raw, spec.schema)
        del raw
        if len(table) < 10:
            raise PipelineError(
                "too_few_rows",
                DATA_FAILURE_MESSAGE,
                f"the dataset has too few usable rows for a release: {len(table)} rows after conforming to the schema",
            )
    return table, conform_report


def _ledger_text(spec: JobSpec, settings: Settings) -> str:
    with session_scope(settings) as s:
        ds = s.get(Dataset, spec.dataset_id)
        assert ds is not None
        return ledger_summary(s, ds).status.guarantee()


def _store(files: dict[str, bytes], prefix: str, storage: Storage, st: _Stage) -> dict[str, str]:
    for i, (name, data) in enumerate(files.items()):
        storage.put_bytes(f"{prefix}/{name}", data)
        st((i + 1) / len(files), name)
    return {name: f"{prefix}/{name}" for name in files}


def _within(actual: PrivacyCost, reserved: PrivacyCost) -> bool:
    if not reserved.is_dp:
        return True
    if not actual.is_dp:
        return False
    return actual.epsilon <= reserved.epsilon and actual.delta <= reserved.delta


def _raw_options(job_id: int, settings: Settings) -> dict[str, Any]:
    with session_scope(settings) as s:
        job = s.get(ReleaseJob, job_id)
        assert job is not None
        return dict(job.options or {})


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _as_dict(obj: Any) -> Any:
    if obj is None:
        return None
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    return _jsonable(obj)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
