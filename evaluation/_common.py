"""Small shared pieces: sampling limits, seeded samples, JSON-safe values."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "EvaluationLimits",
    "ProgressCallback",
    "jsonable",
    "no_progress",
    "quiet_warnings",
    "sample_rows",
    "section_rng",
]

ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    return None


@dataclass(frozen=True)
class EvaluationLimits:
    """How many rows each part of the report reads at most (samples are seeded).

    The defaults keep a report on 1,000,000 x 20 rows within a minute on two
    cores; every sample taken is listed in the report.
    """

    fidelity_rows: int = 200_000  # rows of each table for marginals, pairs and correlations
    max_pairs: int = 300  # column pairs for two-way marginals (all pairs when fewer)
    max_qi_triples: int = 50  # three-way marginals on the quasi-identifiers
    sdmetrics_rows: int = 20_000  # rows of each table given to SDMetrics' QualityReport
    model_train_rows: int = 50_000  # rows to train each TSTR / TRTR model on
    model_test_rows: int = 50_000  # holdout rows to score them on
    importance_rows: int = 2_000  # holdout rows for permutation importance
    dcr_synthetic_rows: int = 5_000  # synthetic rows drawn for the DCR search ...
    # ... of which at most this many, a seeded share of them, are searched: the DCR figures are shares and
    # percentiles over these rows and carry their standard errors (a share's is at most 0.016 at 1,000)
    dcr_searched_rows: int = 1_000
    dcr_reference_rows: int = 50_000  # rows of train and of holdout searched (equal sizes)
    distance_work: float = 2e10  # cap on queries x references x dimensions of one search (~0.5 s of BLAS)
    membership_targets: int = 2_000  # members and as many non-members attacked
    membership_synthetic_rows: int = 50_000  # synthetic rows the distance attack searches
    attribute_targets: int = 5_000  # rows attacked per sensitive column
    attribute_train_rows: int = 20_000  # synthetic rows the attribute-inference model learns from
    max_sensitive: int = 5  # sensitive columns attacked
    max_plot_columns: int = 40  # columns drawn in the per-column figures
    # BLAS / OpenMP threads while the report is built (None: the libraries' default). One thread by
    # default: on a shared two-core machine under load, HistGradientBoosting with 2 OpenMP threads was
    # measured 10-20x slower than with 1 (spin-waiting threads), and 1 costs at most ~2x when idle.
    threads: int | None = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def section_rng(seed: int, section: str) -> np.random.Generator:
    """An independent generator per section, so one section's draws never shift another's."""
    return np.random.default_rng([int(seed), *section.encode()])


def sample_rows(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most n rows without replacement, in their original order."""
    if len(df) <= n:
        return df
    keep = np.sort(rng.choice(len(df), size=n, replace=False))
    return df.iloc[keep]


def jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN and inf as None, tuples as lists."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, tuple) else " x ".join(map(str, k)): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return x if math.isfinite(x) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


@contextmanager
def quiet_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect third-party warnings (convergence, deprecations) instead of raising or printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
