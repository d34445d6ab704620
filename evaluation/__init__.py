"""Fidelity, utility and privacy-risk evaluation of synthetic tables (a pure library).

    from evaluation import build_report, split_holdout
    train, holdout, split_info = split_holdout(real, schema, seed=0)
    report = build_report(train, holdout, synthetic, schema, thresholds={...})
    report.summary                        # headline figures (internal ones included)
    report.to_dict(include_internal=False)  # public JSON: nothing computed from real rows
    report.to_html(include_internal=True)   # the steward's page

Metrics live in one registry, `METRICS` (name -> `Metric` with goal and range).
Heavy libraries (scikit-learn, SDMetrics, matplotlib) load when a report is
built, not on import.
"""

from evaluation._common import EvaluationLimits
from evaluation.metrics import METRICS, Metric, NotScorable, metric, metrics_for
from evaluation.report import SCHEMA_VERSION, SECTIONS, Check, Figure, Report, Section, build_report, judge
from evaluation.split import split_holdout

__all__ = [
    "METRICS",
    "SCHEMA_VERSION",
    "SECTIONS",
    "Check",
    "EvaluationLimits",
    "Figure",
    "Metric",
    "NotScorable",
    "Report",
    "Section",
    "build_report",
    "judge",
    "metric",
    "metrics_for",
    "split_holdout",
]
