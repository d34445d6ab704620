"""The holdout split made before any fit.

The synthesizer sees only the training part; the holdout is what TSTR is
scored on and what the privacy attacks use as non-members. The split is
stratified on the target when it is categorical, so a rare class is in both
parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import MethodOptionError, SchemaError
from privacy.schema import PublicSchema

__all__ = ["split_holdout"]

MIN_ROWS = 4


def split_holdout(df: pd.DataFrame, schema: PublicSchema, target: str | None = None, holdout: float = 0.2,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Split a conformed table into (train, holdout, split_info).

    `target` defaults to the schema's target. Rows keep their index, so the
    split can be checked against the source table. `split_info` is a small
    JSON-able record of how the split was made (internal: it holds row counts).
    """
    from sklearn.model_selection import train_test_split

    if not isinstance(holdout, int | float) or isinstance(holdout, bool) or not 0.0 < float(holdout) < 1.0:
        raise MethodOptionError(f"holdout must be a fraction between 0 and 1 (exclusive), got {holdout!r}",
                                  field="holdout")
    if len(df) < MIN_ROWS:
        raise MethodOptionError(f"a table of {len(df)} rows is too small to hold out a test split",
                                  field="holdout")
    target = target if target is not None else schema.target
    if target is not None and target not in df.columns:
        raise SchemaError(f"the target '{target}' is not a column of the table", field="target")
    n_holdout = min(max(1, int(round(len(df) * float(holdout)))), len(df) - 1)
    stratify = None
    method = "random"
    reason = None
    if target is not None and schema.columns[target].kind == "categorical":
        labels = df[target].astype("string").fillna("\x00null")
        counts = labels.value_counts()
        if counts.min() >= 2 and n_holdout >= counts.size and len(df) - n_holdout >= counts.size:
            stratify = labels.to_numpy()
            method = "stratified"
        else:
            reason = "a class has fewer than 2 rows, or there are more classes than holdout rows"
    elif target is not None:
        reason = f"the target '{target}' is not categorical"
    positions = np.arange(len(df))
    train_pos, holdout_pos = train_test_split(positions, test_size=n_holdout, random_state=seed, stratify=stratify,
                                              shuffle=True)
    train_df = df.iloc[np.sort(train_pos)]
    holdout_df = df.iloc[np.sort(holdout_pos)]
    info: dict[str, Any] = {
        "method": method,
        "holdout_fraction": float(holdout),
        "seed": int(seed),
        "stratified_on": target if method == "stratified" else None,
        "train_rows": len(train_df),
        "holdout_rows": len(holdout_df),
    }
    if reason:
        info["not_stratified_because"] = reason
    return train_df, holdout_df, info
