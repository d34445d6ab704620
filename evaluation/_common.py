"""Small shared pieces: sampling limits, seeded samples, JSON-safe values."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

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
    # the utility section on a second lane while the main one computes the others (evaluation/lanes.py):
    # the same results. `synthgate evaluate` runs it on a thread (1,000,000 rows: 15.2 -> 12.2 s wall, the
    # same CPU); release jobs in a forked process (`release_limits`). Off by default: a caller that runs
    # several reports at once, or on a machine with one core, has no idle core to lend
    parallel_sections: bool = False
    # the second lane as a thread, or as a forked child process (evaluation/lanes.py `ProcessLane`: no GIL
    # shared with the main thread; Linux only, a thread elsewhere)
    second_lane: Literal["thread", "process"] = "thread"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def release_limits() -> EvaluationLimits:
    """The limits a release job's report runs with: the utility section in a forked child beside the
    others (evaluation/lanes.py `ProcessLane`). On adult in a Celery worker the evaluate stage's wall time
    fell from about 4.4 s to 2.8-3.2 s, for about 10% more CPU (copy-on-write pages and two cores' shared
    caches); a thread lane shares the GIL with the main one and saved almost nothing there."""
    return EvaluationLimits(parallel_sections=True, second_lane="process")


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


_warn_lock = threading.Lock()
_warn_local = threading.local()
_warn_state: dict[str, Any] = {"depth": 0}


@contextmanager
def quiet_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect third-party warnings (convergence, deprecations) instead of raising or printing them.

    Safe to use from several threads at once (the report computes two sections at a time,
    evaluation/lanes.py), which `warnings.catch_warnings` is not: each of its exits restores the
    state its own entry saw, so interleaved blocks leave the wrong one, and every block records every
    thread's warnings. Here the first block to open saves the process's warning state and the last to
    close restores it; meanwhile each warning goes to the innermost open block of the thread that
    raised it (a thread with none open shows it as before)."""
    caught: list[warnings.WarningMessage] = []
    stack: list[list[warnings.WarningMessage]] = _warn_local.__dict__.setdefault("stack", [])
    with _warn_lock:
        if _warn_state["depth"] == 0:
            saved = warnings.catch_warnings()
            saved.__enter__()
            _warn_state["saved"], _warn_state["show"] = saved, warnings.showwarning
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
        _warn_state["depth"] += 1
    stack.append(caught)
    try:
        yield caught
    finally:
        stack.pop()
        with _warn_lock:
            _warn_state["depth"] -= 1
            if _warn_state["depth"] == 0:
                _warn_state.pop("show")
                _warn_state.pop("saved").__exit__(None, None, None)


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    stack = getattr(_warn_local, "stack", None)
    if stack:
        stack[-1].append(warnings.WarningMessage(message, category, filename, lineno, file, line))
        return
    show = _warn_state.get("show") or warnings.showwarning
    if show is _show_warning:  # closed meanwhile by another thread
        return
    show(message, category, filename, lineno, file, line)
