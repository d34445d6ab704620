"""The holdout split made before any fit.

The synthesizer sees only the training part; the holdout is what TSTR is
scored on and what the privacy attacks use as non-members.

Each row goes to the holdout on its own, with probability `holdout`, by an
independent draw (Bernoulli sampling), whatever the other rows are. So adding
or removing one row of the table changes the training part by at most that
row, and a DP fit on the training part is DP with respect to add/remove-one-row
neighbours of the whole table (a fixed-size split would instead turn adding a
row into a substitution). The sizes of the two parts are therefore random, and
data-derived: `split_info` holds them and is internal. There is no
stratification: it would tie the rows' draws together; independent draws are
balanced in expectation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import MethodOptionError, PrivacyError, SchemaError
from privacy.schema import PublicSchema

__all__ = ["EmptySplit", "split_holdout"]

MIN_ROWS = 4


class EmptySplit(PrivacyError):
    """The independent draws left the training part or the holdout empty."""

    code = "empty_split"


def split_holdout(
    df: pd.DataFrame, schema: PublicSchema, target: str | None = None, holdout: float = 0.2, seed: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Split a conformed table into (train, holdout, split_info) by independent per-row draws.

    `seed` seeds the draws (None: fresh entropy); it must not be a secret used
    elsewhere, because the draws are not meant to hide it. `target` (default:
    the schema's) is only checked to be a column. Rows keep their index, so the
    split can be checked against the source table. `split_info` is a small
    JSON-able record of the split; it holds the sizes, which are data-derived,
    and never the seed. Raises `EmptySplit` when a part comes out empty (with a
    holdout of 0.2 that happens with probability 0.8^n + 0.2^n for n rows).
    """
    if not isinstance(holdout, int | float) or isinstance(holdout, bool) or not 0.0 < float(holdout) < 1.0:
        raise MethodOptionError(
            f"holdout must be a fraction between 0 and 1 (exclusive), got {holdout!r}", field="holdout"
        )
    if len(df) < MIN_ROWS:
        raise MethodOptionError(f"a table of {len(df)} rows is too small to hold out a test split", field="holdout")
    target = target if target is not None else schema.target
    if target is not None and target not in df.columns:
        raise SchemaError(f"the target '{target}' is not a column of the table", field="target")
    rng = np.random.default_rng(seed)
    in_holdout = rng.random(len(df)) < float(holdout)
    if in_holdout.all() or not in_holdout.any():
        raise EmptySplit("the random holdout split left one part empty; submit the release again", field="holdout")
    train_df = df.iloc[np.flatnonzero(~in_holdout)]
    holdout_df = df.iloc[np.flatnonzero(in_holdout)]
    info: dict[str, Any] = {
        "method": "independent per-row draws (Bernoulli sampling)",
        "holdout_fraction": float(holdout),
        "train_rows": len(train_df),
        "holdout_rows": len(holdout_df),
    }
    return train_df, holdout_df, info
