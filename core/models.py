"""Database models (SQLAlchemy 2). Migrations live in core/migrations.

Exact privacy values are stored as text fractions ("1/10"), never floats, and
summed in Python inside the locked transaction. The ledger and the audit log
are append-only: rows are inserted, never updated or deleted.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Dataset",
    "Grant",
    "JobStatus",
    "LedgerAction",
    "LedgerEntry",
    "PendingChange",
    "ReleaseCandidate",
    "ReleaseJob",
    "Role",
    "SchemaVersion",
    "User",
    "UserSession",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def to_minute(t: dt.datetime) -> str:
    """A time as analysts see it: to the minute (finer ones would time a job's fit)."""
    return t.replace(second=0, microsecond=0).isoformat(timespec="minutes")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Role(enum.StrEnum):
    steward = "steward"
    analyst = "analyst"
    admin = "admin"


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    rejected = "rejected"
    failed = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.awaiting_approval, JobStatus.approved, JobStatus.rejected, JobStatus.failed)


class LedgerAction(enum.StrEnum):
    reserve = "reserve"
    spend = "spend"
    release = "release"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # set on accounts an admin created with a password it chose: the owner must choose their own first
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # where notifications about the user's releases go (core/notifications.py); none: no mail
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    user: Mapped[User] = relationship(back_populates="tokens")


class UserSession(Base):
    """One logged-in browser session, revocable on the server.

    The cookie carries a random session id; only its SHA-256 is stored. Logout
    ends one session; a password change, a role change or disabling the
    account ends all of the user's sessions.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PendingChange(Base):
    """A change that takes effect only when a second steward confirms it
    (role elevation, a budget raise above the ceiling). See core/confirmations.py."""

    __tablename__ = "pending_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    requested_by_name: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    storage_key: Mapped[str] = mapped_column(String(512))
    original_filename: Mapped[str] = mapped_column(String(256))
    file_sha256: Mapped[str] = mapped_column(String(64))
    n_rows: Mapped[int] = mapped_column(BigInteger)  # internal: steward only
    public_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    schema_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    epsilon_budget: Mapped[str] = mapped_column(String(64))
    delta_budget: Mapped[str] = mapped_column(String(64))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # bumped on every reservation under the row lock; detects lost updates
    ledger_version: Mapped[int] = mapped_column(Integer, default=0)
    # what the proposal suggested (roles, hierarchies, flags), learned from the raw rows: stewards only
    schema_suggestions: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # set when a steward erased the raw data: the ledger, audit trail and released bundles' records stay
    raw_erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    raw_erased_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raw_erasure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class SchemaVersion(Base):
    """One confirmed public schema of a dataset: version 1 is the first confirmation, each edit adds the
    next. Rows are inserted, never changed, so the version a release recorded (ReleaseJob.schema_version)
    always names the schema it was checked and run under. Dataset.public_schema is a copy of the latest.

    The note is the steward's own words about the change: stewards and admins see it, analysts do not.
    """

    __tablename__ = "schema_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_schema_version_dataset_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    confirmed_by_name: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Grant(Base):
    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("dataset_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ReleaseJob(Base):
    __tablename__ = "release_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(64))
    epsilon: Mapped[str] = mapped_column(String(64))
    delta: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the noise seed: secret for DP methods (whoever knows it can subtract the noise)
    seed: Mapped[int] = mapped_column(BigInteger)

    status: Mapped[str] = mapped_column(String(32), default=JobStatus.queued.value, index=True)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    # the running stage's estimated seconds left (from its own progress rate); None when unknown
    eta_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    # at-most-one runner: a lease renewed by the running worker's heartbeat
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    data_read: Mapped[bool] = mapped_column(Boolean, default=False)
    # when a queued job was last sent to the broker: the sweep re-sends one left unclaimed too long
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    split: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cost: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    artifacts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    decision_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    include_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    bundle_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    bundle_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the public schema version (schema_versions.version) the request was checked under and the job runs
    # under; None for a job requested before versions were recorded
    schema_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the candidate (release_candidates.number) whose artifacts the job holds once approved; None: the
    # original run, when no re-run of post-processing was made
    candidate: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ReleaseCandidate(Base):
    """One output of post-processing for a job: disclosure control, real-row checks, evaluation and
    gate run on the job's stored DP sample with some settings.

    Number 0 is the original run (recorded when the first re-run is asked for); 1.. are re-runs, each
    with its own artifacts under the job's private storage. A re-run reads the sample, never the
    mechanism, so it charges nothing. It runs in a worker under its own lease, like a job.
    """

    __tablename__ = "release_candidates"
    __table_args__ = (UniqueConstraint("job_id", "number", name="uq_candidate_job_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("release_jobs.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    # the settings asked for (policy overrides, schema coding/hierarchies, rows) and those in effect
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    status: Mapped[str] = mapped_column(String(32), default="queued", index=True)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    # the running stage's estimated seconds left (from its own progress rate); None when unknown
    eta_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    rows_released: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    artifacts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class LedgerEntry(Base):
    """One append-only ledger line. A job's state is its latest action:
    reserve -> spend, or reserve -> release. (job_id, action) is unique, which
    makes every transition idempotent under retries and redelivery."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("job_id", "action", name="uq_ledger_job_action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("release_jobs.id"), nullable=True, index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    epsilon: Mapped[str] = mapped_column(String(64))  # exact fraction text, or "inf"
    delta: Mapped[str] = mapped_column(String(64))
    rho: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """Append-only, hash-chained: hash = sha256(prev_hash + canonical JSON of the event)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
