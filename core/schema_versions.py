"""Versions of a dataset's confirmed public schema.

Invariants:

* versions are numbered 1, 2, ... per dataset, in the order they were confirmed, and a version row is
  never changed or removed; `Dataset.public_schema` is a copy of the latest (the one in force);
* a release records the version it was checked under when it was requested, and the worker runs it
  under that version, whatever was confirmed in between (`schema_for_job`);
* a new version is numbered under the dataset's row lock, the lock reservations take, so two edits
  cannot both become version n + 1 (the unique (dataset, version) constraint backs this up).

What a version says about its change (`changed_parts`) names columns and schema keys only, never
a value: the audit log and the history stay free of anything but names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Dataset, ReleaseJob, SchemaVersion, User, utcnow

__all__ = [
    "MAX_NOTE",
    "changed_parts",
    "current_version",
    "history",
    "record_version",
    "schema_for_job",
    "version_of",
    "version_view",
]

MAX_NOTE = 2000
#: keys of a schema besides its columns that a change summary names
_TOP_KEYS = ("quasi_identifiers", "sensitive", "target", "constraints")


def current_version(session: Session, dataset_id: int) -> SchemaVersion | None:
    """The version in force (the latest), or None while the schema is only proposed."""
    return session.execute(
        select(SchemaVersion)
        .where(SchemaVersion.dataset_id == dataset_id)
        .order_by(SchemaVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def version_of(session: Session, dataset_id: int, number: int) -> SchemaVersion | None:
    return session.execute(
        select(SchemaVersion).where(SchemaVersion.dataset_id == dataset_id, SchemaVersion.version == number)
    ).scalar_one_or_none()


def history(session: Session, dataset_id: int) -> list[SchemaVersion]:
    """Every version of the dataset's schema, newest first."""
    return list(
        session.execute(
            select(SchemaVersion).where(SchemaVersion.dataset_id == dataset_id).order_by(SchemaVersion.version.desc())
        ).scalars()
    )


def changed_parts(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[str]]:
    """Which columns were added, removed or changed, and which other schema keys changed: names only."""
    old_cols = dict((old or {}).get("columns") or {})
    new_cols = dict(new.get("columns") or {})
    return {
        "added": [c for c in new_cols if c not in old_cols],
        "removed": [c for c in old_cols if c not in new_cols],
        "changed": [c for c in new_cols if c in old_cols and old_cols[c] != new_cols[c]],
        "other": [k for k in _TOP_KEYS if (old or {}).get(k) != new.get(k)],
    }


def describe_change(parts: dict[str, list[str]]) -> str:
    """One line for a steward: 'changed: dob; added: x; quasi_identifiers'."""
    bits = [f"{what}: {', '.join(parts[what])}" for what in ("changed", "added", "removed") if parts[what]]
    bits += parts["other"]
    return "; ".join(bits) or "no column changed"


def record_version(
    session: Session,
    user: User,
    dataset: Dataset,
    schema: dict[str, Any],
    note: str | None,
    at: dt.datetime | None = None,
) -> SchemaVersion:
    """Add the next version (the caller holds the dataset's row lock) and make it the one in force."""
    latest = current_version(session, dataset.id)
    row = SchemaVersion(
        dataset_id=dataset.id,
        version=(latest.version + 1) if latest else 1,
        schema=schema,
        confirmed_by=user.id,
        confirmed_by_name=user.username,
        confirmed_at=at or utcnow(),
        note=(note or "").strip()[:MAX_NOTE] or None,
    )
    session.add(row)
    session.flush()
    dataset.public_schema = schema
    dataset.schema_confirmed = True
    return row


def schema_for_job(session: Session, job: ReleaseJob, dataset: Dataset) -> tuple[dict[str, Any], int | None]:
    """The schema document a job runs under and its version: the one recorded at request time.

    A job requested before versions were recorded has none and runs under the schema in force."""
    if job.schema_version is None:
        return dataset.public_schema, None
    row = version_of(session, dataset.id, job.schema_version)
    if row is None:  # versions are never removed: a missing one is a broken database, not a user mistake
        from core.errors import InternalError

        raise InternalError(
            f"release {job.id} recorded schema version {job.schema_version} of dataset "
            f"{dataset.name}, which is not in the database"
        )
    return row.schema, row.version


def version_view(row: SchemaVersion, staff: bool, *, with_schema: bool = False) -> dict[str, Any]:
    """A version as a user may see it: the note and who confirmed it for stewards and admins only."""
    view: dict[str, Any] = {"version": row.version, "confirmed_at": row.confirmed_at.isoformat(timespec="seconds")}
    if staff:
        view["confirmed_by"] = row.confirmed_by_name
        view["note"] = row.note
    if with_schema:
        view["schema"] = row.schema
    return view
