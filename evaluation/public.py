"""The public part of the report: computed from the synthetic table and the public schema only.

Nothing here may read a real row: these figures go into the analyst's bundle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evaluation._common import section_rng
from evaluation._tables import EPOCH, ColumnView
from evaluation.fidelity import association_matrix
from evaluation.kernels import average_ranks
from privacy.schema import PublicSchema

__all__ = ["synthetic_summary"]

QUANTILES = {"p5": 5, "p25": 25, "median": 50, "p75": 75, "p95": 95}
TOP_CATEGORIES = 10


def _ranked_labels(view: ColumnView) -> list[Any] | None:
    """The levels of an ordinal column declared by labels (a generalised age: "20-24", ...), else None.

    Its numeric view is the rank of the level, which means nothing to a reader: its location
    statistics are given as the label of the level, and no mean or spread is given.
    """
    values = view.spec.values
    if values is None or view.spec.kind != "ordinal":
        return None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    return list(values)


def _as_value(x: float, view: ColumnView) -> Any:
    if not np.isfinite(x):
        return None
    if view.is_datetime:
        return (EPOCH + pd.Timedelta(days=float(x))).strftime("%Y-%m-%d")
    labels = _ranked_labels(view)
    if labels is not None:
        return labels[min(max(int(x), 0), len(labels) - 1)]
    return float(x)


def _numeric_summary(x: np.ndarray, view: ColumnView) -> dict[str, Any]:
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return {"values": 0}
    labelled = _ranked_labels(view) is not None
    # levels: a quantile is a level that a row has ("lower"), never a point between two levels
    q = np.percentile(finite, list(QUANTILES.values()), method="lower" if labelled else "linear")
    out: dict[str, Any] = {"values": int(finite.size), "min": _as_value(finite.min(), view)}
    out.update({k: _as_value(v, view) for k, v in zip(QUANTILES, q, strict=True)})
    out["max"] = _as_value(finite.max(), view)
    if not view.is_datetime and not labelled:
        out["mean"] = float(finite.mean())
        out["std"] = float(finite.std())
    return out


def synthetic_summary(
    synthetic: pd.DataFrame,
    schema: PublicSchema,
    views: dict[str, ColumnView],
    *,
    association_rows: int = 200_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Column summaries (all rows) and associations (a seeded sample) of the synthetic table.

    `views` must be built from the synthetic table (and the schema) alone.
    """
    columns: dict[str, Any] = {}
    codes: dict[str, np.ndarray] = {}
    numeric: dict[str, np.ndarray] = {}
    for name, view in views.items():
        s = synthetic[name]
        c = view.codes(s)
        codes[name] = c
        counts = np.bincount(c, minlength=view.size)
        shares = counts / max(counts.sum(), 1)
        entry: dict[str, Any] = {"kind": view.spec.kind, "null_rate": float(s.isna().mean()) if len(s) else None}
        if view.kind == "numeric":
            numeric[name] = view.numeric(s)
            entry.update(_numeric_summary(numeric[name], view))
        else:
            labels = view.labels()
            order = np.argsort(-counts[:-1], kind="stable")
            entry["categories_present"] = int((counts[:-1] > 0).sum())
            entry["categories_declared"] = None if view.learned_domain else view.n_value_codes
            entry["top"] = [
                {"value": labels[i], "share": float(shares[i])} for i in order[:TOP_CATEGORIES] if counts[i] > 0
            ]
        entry["histogram"] = {"labels": view.labels(), "synthetic": shares.tolist()}
        columns[name] = entry
    missing = [n for n in schema.synthesized_columns if n not in synthetic.columns]
    keep = None
    if len(synthetic) > association_rows:
        keep = np.sort(section_rng(seed, "public").choice(len(synthetic), size=association_rows, replace=False))
    ranked = {n: average_ranks(x if keep is None else x[keep]) for n, x in numeric.items()}
    sampled_codes = codes if keep is None else {n: c[keep] for n, c in codes.items()}
    return {
        "rows": len(synthetic),
        "columns": columns,
        "missing_columns": missing,
        "association": {
            "columns": list(views),
            "synthetic": association_matrix(views, ranked, sampled_codes),
            "rows": len(synthetic) if keep is None else association_rows,
            "definition": "Spearman correlation between two numeric columns; Cramer's V on the "
            "discretised columns otherwise",
        },
        "learned_domains": [n for n, v in views.items() if v.learned_domain],
    }
