"""Every field of the register form checked in one round, so the steward sees all that is wrong at once.

`register_dataset` (core/datasets.py) stays the authority and checks everything again; these checks use
the same functions and messages, but do not stop at the first refusal. The table itself is read only
when another field is wrong: otherwise `register_dataset` reads it (once) and reports its problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.datasets import DATASET_NAME, DATASET_NAME_RULE
from core.errors import ServiceError
from core.models import Dataset
from core.settings import Settings
from privacy.errors import PrivacyError


@dataclass(frozen=True)
class FieldProblem:
    field: str  # the service's field name: name, file, schema, epsilon_budget, delta_budget, policy
    message: str
    status: int


def _problem(exc: ServiceError | PrivacyError, field: str) -> FieldProblem:
    return FieldProblem(exc.field or field, exc.message, exc.status)


def check_fields(
    s: Session, *, name: str, epsilon: str, delta: str, schema_text: str | None, policy_text: str | None
) -> tuple[list[FieldProblem], Any]:
    """The problems of the fields other than the file, and the parsed schema (None if none or invalid)."""
    from privacy.budget import PrivacyBudget, parse_number
    from privacy.policy import load_policy
    from privacy.schema import PublicSchema

    problems: list[FieldProblem] = []
    if not name or not DATASET_NAME.match(name):
        problems.append(FieldProblem("name", DATASET_NAME_RULE, 400))
    elif s.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one_or_none() is not None:
        problems.append(FieldProblem("name", f"a dataset named '{name}' already exists; choose another name", 409))
    for field, text, make in (
        ("epsilon_budget", epsilon, lambda v: PrivacyBudget(v, 0)),
        ("delta_budget", delta, lambda v: PrivacyBudget(0, v)),
    ):
        if not text.strip():
            continue  # the form's own check says it is required
        try:
            make(parse_number(text, field))
        except PrivacyError as exc:
            problems.append(_problem(exc, field))
    schema = None
    if schema_text:
        try:
            schema = PublicSchema.from_text(schema_text)
        except PrivacyError as exc:
            problems.append(_problem(exc, "schema"))
    if policy_text:
        try:
            load_policy(policy_text)
        except PrivacyError as exc:
            problems.append(_problem(exc, "policy"))
    return problems, schema


def named(message: str, path: Path, filename: str) -> str:
    """A message about the stored copy (`upload.csv`) told with the name the steward uploaded."""
    return message.replace(path.name, Path(filename).name) if filename else message


def check_table(path: Path, filename: str, schema: Any, settings: Settings) -> list[FieldProblem]:
    """What reading the table finds (the file's problems, then how it fits the schema), as register does."""
    from privacy.schema import read_table, validate_table

    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq", ".txt", ""):
        return [FieldProblem("file", f"unsupported file type '{suffix}': upload a CSV or Parquet file", 400)]
    try:
        if path.stat().st_size > settings.batch_read_above_mb * 1024 * 1024:
            from privacy.table_scan import scan_table

            issues = scan_table(path, schema).issues
        else:
            table = read_table(path)
            issues = validate_table(table, schema) if schema is not None else []
    except PrivacyError as exc:
        return [FieldProblem(exc.field or "file", named(exc.message, path, filename), exc.status)]
    errors = [i.message for i in issues if i.severity == "error"]
    if errors and schema is not None:
        return [FieldProblem("schema", "the table does not fit the schema: " + "; ".join(errors), 422)]
    return []
