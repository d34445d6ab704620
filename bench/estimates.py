"""Case `estimates`: the time estimate (privacy/estimate.py) against measured fits and reports.

Each method is fitted on adult subsets (rows x columns, small settings) in a
fresh process (`bench.measure.run_in_child`); the stage's CPU seconds are
compared with `estimate_release`'s prediction for the same public schema, row
count and options. CPU seconds, not wall seconds: the machine is shared, and a
fit whose process waits for a core is not slower work.
"""

from __future__ import annotations

from typing import Any

from bench.measure import Meter

__all__ = ["fit_workload", "report_workload"]


def fit_workload(
    meter: Meter,
    *,
    method: str,
    rows: int,
    columns: list[str] | None,
    options: dict[str, Any] | None = None,
    epsilon: float = 1.0,
    delta: float = 1e-6,
    seed: int = 0,
) -> None:
    """Fit `method` on `rows` rows of adult restricted to `columns`, then sample as many rows."""
    from bench.workloads import _quiet, _requested

    with meter.stage("import"):
        from bench.data import adult_table
        from privacy.synthesizers import create_synthesizer, synthesizer_class

        cls = synthesizer_class(method)
        synth = create_synthesizer(method, seed=seed, options=options)
        table, schema = adult_table(rows, columns, seed=seed, replace=rows > 48_842)
    requested = _requested(cls, epsilon, delta)
    with meter.stage("fit"), _quiet():
        synth.fit(table, schema, requested)
    with meter.stage("sample"), _quiet():
        synth.sample(rows)
    meter.info.update(method=method, rows=rows, columns=len(schema.synthesized_columns), options=options or {})


def report_workload(meter: Meter, *, rows: int, columns: int, seed: int = 0) -> None:
    """The evaluation report on rows x columns (bench.workloads.report_large's tables)."""
    from bench.workloads import report_large

    report_large(meter, rows=rows, columns=columns, seed=seed)
