"""What the requester sees of a release before the steward decides (docs/analyst-outputs.md).

Before approval, the requester may see only what does not depend on the raw rows beyond what the
ledger already charged and what the steward would publish anyway:

* the privacy statement as a draft (public version: no figure computed on real rows) and the
  guarantee (method, epsilon, delta, accounting, what the schema kept as learned from the data);
* the synthetic-only summaries (the public report), when they are a function of a DP output alone.

The summaries are withheld ("available after approval") when the output is not DP (a non-DP method,
or one that releases real rows), when a step that read real rows shaped it (real-match removal and
the suppression that follows it), when the release is an aggregate (its report is the release
itself), or when the job's record does not say: when in doubt, withhold. The decision is
`withhold_reason`, from what the job recorded; in the withheld cases the statement's sections on
post-processing, the real-row checks and the gate also wait for the decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from core.models import Dataset, JobStatus, ReleaseJob
from core.storage import Storage
from privacy import catalogue

__all__ = ["AFTER_APPROVAL", "preview", "report_before_approval", "withhold_reason"]

AFTER_APPROVAL = "available after approval"
#: statement sections whose figures come from the output or from the checks on real rows
_OUTPUT_SECTIONS = ("## Post-processing applied", "## Checks that used real rows", "## Release gate")


def withhold_reason(
    *, kind: str, guarantee: str, releases_real_rows: bool, record: Mapping[str, Any] | None
) -> str | None:
    """Why summaries of the output must wait for the steward's decision; None when they may be shown.

    `record` is what the job stored of its post-processing (`disclosure.json`): for a row-level DP release,
    its `real_checks` says whether rows were removed because of real rows (`filtering_applied`).
    """
    if guarantee == "data-free":
        return None
    if kind == "dp-statistics":
        return (
            "the statistics are the release itself: the steward decides whether they are published, "
            "so they are shown once the release is approved"
        )
    if guarantee != "dp" or releases_real_rows:
        return (
            "the method is not differentially private: its output, and any summary of it, depends on the real "
            "rows without a bound, so the steward reviews it before anything of it is shown"
        )
    if not isinstance(record, Mapping) or not isinstance(record.get("real_checks"), Mapping):
        return (
            "the release's record does not say which steps shaped its output; when in doubt, nothing of the "
            "output is shown before the steward's review"
        )
    if record["real_checks"].get("filtering_applied") is not False:
        return (
            "rows were removed from the output after comparing it with the real rows (the dataset's policy "
            "sets remove_real_matches): what remains depends on the real rows beyond what the ledger charged, "
            "so the steward reviews it before anything of it is shown"
        )
    return None


def _record(storage: Storage, job: ReleaseJob) -> dict[str, Any] | None:
    key = (job.artifacts or {}).get("disclosure.json")
    if not key:
        return None
    try:
        data = json.loads(storage.get_bytes(key))
    except (OSError, ValueError, KeyError):
        return None
    return data if isinstance(data, dict) else None


def _reason(storage: Storage, job: ReleaseJob) -> str | None:
    entry = catalogue.method_entry(job.method)
    info = entry.info(job.options)
    return withhold_reason(
        kind=job.kind,
        guarantee=str(info.get("guarantee", entry.guarantee)),
        releases_real_rows=bool(info.get("releases_real_rows")),
        record=_record(storage, job),
    )


def report_before_approval(storage: Storage, job: ReleaseJob) -> bool:
    """Whether the public report (synthetic-only summaries) may be shown while the release awaits approval."""
    if job.status != JobStatus.awaiting_approval.value or not (job.artifacts or {}).get("report_public.html"):
        return False
    return _reason(storage, job) is None


def _scrub(statement: str, reason: str) -> str:
    """The statement with the sections that speak of the output's figures replaced by a note."""
    out: list[str] = []
    skipping = False
    for line in statement.split("\n"):
        if line.startswith("## "):
            skipping = line.strip() in _OUTPUT_SECTIONS
            out.append(line)
            if skipping:
                out += ["", f"_{AFTER_APPROVAL.capitalize()}: {reason}._", ""]
            continue
        if not skipping:
            out.append(line)
    return "\n".join(out)


def _guarantee(session: Session, job: ReleaseJob, ds: Dataset) -> dict[str, Any]:
    from core.schema_versions import schema_for_job
    from privacy.schema import PublicSchema

    entry = catalogue.method_entry(job.method)
    info = entry.info(job.options)
    guarantee = str(info.get("guarantee", entry.guarantee))
    learned: dict[str, list[str]] = {}
    if entry.reads_rows:
        schema, _ = schema_for_job(session, job, ds)
        learned = {k: list(v) for k, v in PublicSchema.from_dict(schema).learned_columns.items()}
    accounting = {
        "dp": "zero-concentrated DP (rho), composed in zCDP" if info.get("zcdp") else "(epsilon, delta), composed",
        "non-dp": "none: no formal guarantee (epsilon is infinite)",
        "data-free": "none needed: no real row is read, nothing is charged",
    }.get(guarantee, guarantee)
    return {
        "method": job.method,
        "guarantee": guarantee,
        "epsilon": job.epsilon,
        "delta": job.delta,
        "cost": job.cost,
        "accounting": accounting,
        # schema values kept as read from the data: the guarantee does not cover them (privacy.md lists them)
        "learned_from_data": learned,
    }


def preview(session: Session, storage: Storage, job: ReleaseJob) -> dict[str, Any] | None:
    """The public part of a release awaiting approval, as its requester sees it; None in any other state.

    `{"statement", "guarantee", "summaries", "report", "withheld"}`: `summaries` (the public report's
    figures of the synthetic table) and `report` (whether its page may be shown) only when
    `withhold_reason` allows; otherwise `withheld` says why they are available after approval.
    """
    if job.status != JobStatus.awaiting_approval.value or not job.artifacts:
        return None
    from core.releases import final_statement

    ds = session.get(Dataset, job.dataset_id)
    assert ds is not None
    reason = _reason(storage, job)
    statement = final_statement(session, storage, job, ds)
    if reason is not None:
        statement = _scrub(statement, reason)
    head, _, rest = statement.partition("\n")
    statement = (
        head + "\n\n_Draft, before the steward's decision: the approved bundle's statement adds the decision._\n" + rest
    )
    out: dict[str, Any] = {
        "statement": statement,
        "guarantee": _guarantee(session, job, ds),
        "summaries": None,
        "report": False,
        "withheld": None if reason is None else {"summaries": AFTER_APPROVAL, "reason": reason},
    }
    if reason is None:
        key = (job.artifacts or {}).get("report_public.json")
        public = json.loads(storage.get_bytes(key)) if key else {}
        out["summaries"] = {
            "summary": public.get("summary") or {},
            "sections": sorted((public.get("sections") or {}).keys()),
        }
        out["report"] = bool((job.artifacts or {}).get("report_public.html"))
    return out
