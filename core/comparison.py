"""The steward's comparison of a dataset's finished releases: each one's fidelity, SDMetrics and utility
figures side by side, and the pairs the two fidelity scores rank differently, with what each measures.

Every figure here is computed on real rows (the job's internal summary): stewards and admins only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Dataset, JobStatus, ReleaseJob
from evaluation.compare import SCORES_DIFFER, SCORES_EXPLAINED, rank_disagreements

FINISHED = (JobStatus.awaiting_approval.value, JobStatus.approved.value, JobStatus.rejected.value)


def release_comparison(session: Session, dataset: Dataset, limit: int = 50) -> dict[str, Any]:
    """The latest `limit` finished releases of `dataset` with their headline figures, and the pairs
    whose fidelity and SDMetrics scores disagree on which is better."""
    jobs = (
        session.execute(
            select(ReleaseJob)
            .where(ReleaseJob.dataset_id == dataset.id, ReleaseJob.status.in_(FINISHED))
            .order_by(ReleaseJob.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
    rows = []
    for job in reversed(jobs):
        summary = job.summary or {}
        rows.append(
            {
                "id": job.id,
                "method": job.method,
                "epsilon": job.epsilon,
                "status": job.status,
                "fidelity_score": summary.get("fidelity_score"),
                "fidelity_reference": summary.get("fidelity_score_holdout_reference"),
                "sdmetrics_quality": summary.get("sdmetrics_quality"),
                "utility_ratio": summary.get("utility_ratio"),
                "gate": (job.gate or {}).get("overall"),
            }
        )
    disagreements = rank_disagreements(rows)
    return {
        "releases": rows,
        "disagreements": disagreements,
        "explanation": SCORES_EXPLAINED if disagreements else None,
        "headline": SCORES_DIFFER if disagreements else None,
    }
